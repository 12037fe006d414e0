//! Auditing: the full history with attribution, voids, filters and pages;
//! the case file as of earlier instants; the tamper-evident hash chain
//! (verified from infra, the CLI and over HTTP after a row is edited
//! behind the server's back); the CSV export; and the access log.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use nuanxin_domain::Clock;
use nuanxin_infra::audit::{self, LinkProblem};
use nuanxin_infra::on_pool;
use nuanxin_infra::Db;
use nuanxin_tests::*;
use serde_json::{json, Value};

/// A server clock that moves one second forward on every reading, so
/// every event gets its own `recorded_at`.
#[derive(Debug)]
struct SteppingClock(AtomicI64);

impl SteppingClock {
    fn new(start: DateTime<Utc>) -> Self {
        Self(AtomicI64::new(start.timestamp_millis()))
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> DateTime<Utc> {
        let ms = self.0.fetch_add(1000, Ordering::SeqCst);
        DateTime::from_timestamp_millis(ms).expect("a valid instant")
    }
}

/// A server on a fresh store whose clock steps (see [`SteppingClock`]).
async fn stepping_app(store: Store) -> Option<TestApp> {
    let db = Arc::new(TestDb::new(store).await?);
    Some(
        TestApp::start(store, db, |s| {
            s.clock = Arc::new(SteppingClock::new(now()));
        })
        .await,
    )
}

/// Like `both_stores!`, with the stepping clock.
macro_rules! both_stores_stepping {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some(app) = super::stepping_app(nuanxin_tests::Store::Sqlite).await {
                        super::$name(app).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = super::stepping_app(nuanxin_tests::Store::Postgres).await {
                        super::$name(app).await;
                    }
                }
            }
        )+
    };
}

both_stores!(
    spreadsheet_formulas_never_reach_a_csv_export,
    history_is_ordered_attributed_and_marks_voids,
    verify_passes_then_finds_a_tampered_row,
    access_log_records_reads_and_is_for_admins,
    out_of_scope_readers_get_404_and_leave_no_trace,
);
both_stores_stepping!(
    history_filters_and_pages,
    case_file_as_of_matches_what_it_said_then,
);

/// A user with a name of our choosing: (token, id).
async fn named_user(app: &TestApp, name: &str, role: &str, scope: &str) -> (String, String) {
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": name, "role": role, "scope": scope}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.body["token"].as_str().unwrap().to_owned(),
        r.body["id"].as_str().unwrap().to_owned(),
    )
}

/// Posts a command and returns its action id.
async fn act(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let r = app.post(path, token, body).await;
    assert!(r.status.is_success(), "{path}: {}", r.text);
    r.body["action_id"].as_str().unwrap().to_owned()
}

fn items(r: &Response) -> &Vec<Value> {
    r.body["items"].as_array().expect("items")
}

async fn open_db(app: &TestApp) -> Db {
    Db::connect(&app.db.url, 1).await.expect("connect")
}

async fn history_of(app: &TestApp, id: &str, token: &str, query: &str) -> Response {
    let r = app
        .get(&format!("/api/v1/families/{id}/history{query}"), token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

async fn history_is_ordered_attributed_and_marks_voids(app: TestApp) {
    let (li, li_id) = named_user(&app, "Li Wei", "caseworker", "450305").await;
    let (wang, wang_id) = named_user(&app, "Wang Fang", "caseworker", "45").await;
    let id = app.register(&li, "450305001001").await;
    let p = |s: &str| format!("/api/v1/families/{id}/{s}");
    let note = act(&app, &wang, &p("notes"), json!({"text": "first call"})).await;
    act(
        &app,
        &li,
        &p("contacts"),
        contact_body("village", "2026-02-01"),
    )
    .await;
    act(
        &app,
        &wang,
        &p("visits"),
        visit_body("village", "home", "2026-03-01"),
    )
    .await;
    let void = act(
        &app,
        &li,
        &p("voids"),
        json!({"action_id": note, "reason": "wrong family"}),
    )
    .await;

    let h = history_of(&app, &id, &li, "").await;
    assert_eq!(h.body["chain_valid"], true, "{}", h.text);
    assert!(h.body["next_cursor"].is_null());
    let items = items(&h);
    let expected = [
        ("FamilyRegistered", &li_id, "Li Wei"),
        ("NoteAdded", &wang_id, "Wang Fang"),
        ("ContactAssigned", &li_id, "Li Wei"),
        ("VisitRecorded", &wang_id, "Wang Fang"),
        ("ActionVoided", &li_id, "Li Wei"),
    ];
    assert_eq!(items.len(), expected.len(), "{}", h.text);
    for (i, (item, (event_type, by, name))) in items.iter().zip(expected).enumerate() {
        assert_eq!(item["sequence"], i as u64 + 1);
        assert_eq!(item["event_type"], event_type);
        assert_eq!(item["recorded_by"]["id"], by.as_str());
        assert_eq!(item["recorded_by"]["name"], name);
        assert_eq!(item["recorded_by"]["role"], "caseworker");
        assert_eq!(item["recorded_at"], "2026-06-30T04:00:00Z");
        assert_eq!(item["hash"].as_str().map(str::len), Some(64));
        assert!(item["data"].is_object());
    }
    assert_eq!(items[1]["action_id"], note.as_str());
    assert_eq!(items[1]["voided_by"], void.as_str());
    assert_eq!(items[1]["data"]["text"], "first call");
    assert_eq!(items[4]["action_id"], void.as_str());
    assert_eq!(items[4]["data"]["voided_action_id"], note.as_str());
    for i in [0, 2, 3, 4] {
        assert!(items[i]["voided_by"].is_null(), "{}", items[i]);
    }
    // The same masking as the case file.
    let id_number = &items[0]["data"]["members"][0]["id_number"];
    assert_eq!(id_number, "110105********0016");
    assert!(!h.text.contains("110105195003010016"));
}

async fn history_filters_and_pages(app: TestApp) {
    let (a, a_id) = named_user(&app, "A", "caseworker", "45").await;
    let (b, b_id) = named_user(&app, "B", "caseworker", "45").await;
    let id = app.register(&a, "450305001001").await;
    let notes = format!("/api/v1/families/{id}/notes");
    for i in 0..6 {
        let token = if i % 2 == 0 { &b } else { &a };
        act(&app, token, &notes, json!({"text": format!("note {i}")})).await;
    }
    // 7 events: A registered (1), then B, A, B, A, B, A.
    let all = history_of(&app, &id, &a, "").await;
    let all = items(&all).clone();
    assert_eq!(all.len(), 7);
    let at = |i: usize| all[i]["recorded_at"].as_str().unwrap().to_owned();
    let mut times: Vec<_> = (0..7).map(at).collect();
    times.dedup();
    assert_eq!(times.len(), 7, "every event has its own recorded_at");

    let by_b = history_of(&app, &id, &a, &format!("?recorded_by={b_id}")).await;
    let seqs: Vec<_> = items(&by_b).iter().map(|i| i["sequence"].clone()).collect();
    assert_eq!(seqs, vec![json!(2), json!(4), json!(6)]);
    let by_a = history_of(&app, &id, &a, &format!("?recorded_by={a_id}")).await;
    assert!(items(&by_a)
        .iter()
        .all(|i| i["recorded_by"]["id"] == a_id.as_str()));
    assert_eq!(items(&by_a).len(), 4);

    // A time window, both ends inclusive.
    let window = history_of(&app, &id, &a, &format!("?from={}&to={}", at(2), at(4))).await;
    let seqs: Vec<_> = items(&window)
        .iter()
        .map(|i| i["sequence"].clone())
        .collect();
    assert_eq!(seqs, vec![json!(3), json!(4), json!(5)]);
    let both = history_of(
        &app,
        &id,
        &a,
        &format!("?from={}&recorded_by={b_id}", at(3)),
    )
    .await;
    let seqs: Vec<_> = items(&both).iter().map(|i| i["sequence"].clone()).collect();
    assert_eq!(seqs, vec![json!(4), json!(6)]);

    // Pages of 3: 1-3, 4-6, 7.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            None => "?limit=3".to_owned(),
            Some(c) => format!("?limit=3&cursor={c}"),
        };
        let page = history_of(&app, &id, &a, &q).await;
        pages += 1;
        seen.extend(items(&page).iter().map(|i| i["sequence"].as_u64().unwrap()));
        assert_eq!(page.body["chain_valid"], true);
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=7).collect::<Vec<u64>>());
    // A page that ends exactly at the last event has no next page.
    let exact = history_of(&app, &id, &a, "?limit=7").await;
    assert!(exact.body["next_cursor"].is_null());

    for bad in [
        "?limit=0",
        "?limit=501",
        "?limit=x",
        "?cursor=abc",
        "?from=yesterday",
        "?to=2026-06-30",
        "?recorded_by=someone",
        "?unknown=1",
    ] {
        app.get(&format!("/api/v1/families/{id}/history{bad}"), &a)
            .await
            .assert_problem(400);
        app.get(&format!("/api/v1/families/{id}/history.csv{bad}"), &a)
            .await
            .assert_problem(400);
    }
    // `from` after `to` is an empty range, not a malformed question.
    let empty = app
        .get(
            &format!(
                "/api/v1/families/{id}/history?from=2026-06-30T05:00:00Z&to=2026-06-30T04:00:00Z"
            ),
            &a,
        )
        .await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.body["items"], json!([]));
}

async fn case_file_as_of_matches_what_it_said_then(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let file = format!("/api/v1/families/{id}");
    let p = |s: &str| format!("/api/v1/families/{id}/{s}");
    // What the case file said after each action.
    let mut said = vec![app.get(&file, &cw).await.body];
    let steps = [
        (p("contacts"), contact_body("village", "2026-02-01")),
        (p("visits"), visit_body("village", "home", "2026-03-01")),
        (p("notes"), json!({"text": "needs a wheelchair"})),
        (
            p("assistance"),
            json!({"area": "medical", "amount_fen": 30000, "provided_on": "2026-04-02",
                   "description": "hospital bill"}),
        ),
        (
            p("contacts/village/release"),
            json!({"released_on": "2026-05-01", "reason": "moved"}),
        ),
        (
            p("close"),
            json!({"on": "2026-06-01", "reason": "moved away"}),
        ),
    ];
    for (path, body) in steps {
        act(&app, &cw, &path, body).await;
        said.push(app.get(&file, &cw).await.body);
    }
    let h = history_of(&app, &id, &cw, "").await;
    let recorded: Vec<DateTime<Utc>> = items(&h)
        .iter()
        .map(|i| i["recorded_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(recorded.len(), said.len());
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);

    for (k, then) in said.iter().enumerate() {
        assert_eq!(then["version"], k as u64 + 1);
        // At the instant the event was recorded, and a moment later.
        for at in [recorded[k], recorded[k] + Duration::milliseconds(500)] {
            let r = app.get(&format!("{file}?as_of={}", rfc(at)), &cw).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(&r.body, then, "as of {at}");
        }
    }
    // The same instant written with an offset.
    let shanghai = recorded[2].with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    let encoded = shanghai.to_rfc3339().replace('+', "%2B");
    let r = app.get(&format!("{file}?as_of={encoded}"), &cw).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, said[2]);
    assert_eq!(r.body["visits"]["village"]["last_home_on"], "2026-03-01");
    assert_eq!(said[6]["status"], "closed");
    // Long after: the case file as it is now.
    let later = app
        .get(&format!("{file}?as_of=2030-01-01T00:00:00Z"), &cw)
        .await;
    assert_eq!(later.body, said[6]);
    // Before registration: 404, no trace.
    let before = app
        .get(
            &format!("{file}?as_of={}", rfc(recorded[0] - Duration::seconds(1))),
            &cw,
        )
        .await;
    before.assert_problem(404);
    assert!(!before.text.contains("450305001001"));
    app.get(&format!("{file}?as_of=last-week"), &cw)
        .await
        .assert_problem(400);
}

/// Rewrites the text of the note at `sequence` of `family` behind the
/// server's back, lifting the append-only trigger as a superuser would.
async fn tamper(db: &Db, family: &str, sequence: i64) {
    match db {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("ALTER TABLE events DISABLE TRIGGER events_no_update_delete")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query(
                "UPDATE events SET payload = jsonb_set(payload, '{NoteAdded,text}', '\"rewritten\"') \
                 WHERE aggregate_id = $1 AND sequence = $2",
            )
            .bind(family)
            .bind(sequence)
            .execute(&mut *conn)
            .await
            .unwrap();
            sqlx::query("ALTER TABLE events ENABLE TRIGGER events_no_update_delete")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("DROP TRIGGER events_no_update")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query(
                "UPDATE events SET payload = json_set(payload, '$.NoteAdded.text', 'rewritten') \
                 WHERE aggregate_id = $1 AND sequence = $2",
            )
            .bind(family)
            .bind(sequence)
            .execute(&mut *conn)
            .await
            .unwrap();
            sqlx::query(
                "CREATE TRIGGER events_no_update BEFORE UPDATE ON events \
                 BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END",
            )
            .execute(&mut *conn)
            .await
            .unwrap();
        }
    }
}

fn database_url(app: &TestApp) -> String {
    match &app.db.url {
        nuanxin_infra::DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        nuanxin_infra::DatabaseUrl::Postgres(url) => url.clone(),
    }
}

/// Runs `nuanxin audit verify [--family ID]` or `nuanxin audit export
/// --family ID` in-process against the test's store.
async fn cli(app: &TestApp, args: &[&str]) -> anyhow::Result<()> {
    use nuanxin_api::cli::{AuditCommand, CheckpointArgs, Cli, Command, StoreArgs};
    let store = StoreArgs {
        database_url: database_url(app),
        db_connections: 1,
        master_key_file: Some(app.db.master_key_file()),
    };
    let family = match args.get(1..) {
        Some(["--family", id]) => Some(id.parse::<uuid::Uuid>()?),
        _ => None,
    };
    let command = match args.first() {
        Some(&"verify") => AuditCommand::Verify {
            store,
            family,
            checkpoint: Vec::new(),
            public_key: None,
            files: CheckpointArgs {
                checkpoint_dir: None,
                signing_key_file: None,
            },
            reason: "audit test".into(),
        },
        Some(&"export") => AuditCommand::Export {
            store,
            family: family.expect("export needs --family"),
            reason: "audit test".into(),
        },
        other => panic!("unknown audit command {other:?}"),
    };
    nuanxin_api::cli::run(Cli {
        command: Command::Audit(command),
    })
    .await
}

async fn verify_passes_then_finds_a_tampered_row(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let a = app.register(&cw, "450305001001").await;
    let b = app.register(&cw, "450305001002").await;
    for family in [&a, &b] {
        for text in ["one", "two", "three"] {
            act(
                &app,
                &cw,
                &format!("/api/v1/families/{family}/notes"),
                json!({"text": text}),
            )
            .await;
        }
    }
    let db = open_db(&app).await;
    // Every event is sealed into its family's chain.
    let sealed: Vec<(String, i64, String)> = on_pool!(&db, pool => {
        sqlx::query_as(
            "SELECT aggregate_id, sequence, metadata FROM events ORDER BY aggregate_id, sequence",
        )
        .fetch_all(pool)
        .await
    })
    .map(|rows: Vec<(String, i64, sqlx::types::Json<Value>)>| {
        rows.into_iter()
            .map(|(f, s, m)| (f, s, m.0.to_string()))
            .collect()
    })
    .unwrap();
    assert_eq!(sealed.len(), 8);
    let mut prev = (String::new(), String::new());
    for (family, sequence, metadata) in &sealed {
        let m: Value = serde_json::from_str(metadata).unwrap();
        let hash = m["hash"].as_str().expect("every event has a hash");
        assert_eq!(hash.len(), 64);
        let expected_prev = if *sequence == 1 { "" } else { prev.1.as_str() };
        assert_eq!(m["prev_hash"], expected_prev, "{family} #{sequence}");
        prev = (family.clone(), hash.to_owned());
    }

    let report = audit::verify(&db, None).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.streams, report.events), (2, 8));
    let one = audit::verify(&db, Some(a.parse().unwrap())).await.unwrap();
    assert_eq!((one.streams, one.events, one.is_intact()), (1, 4, true));
    cli(&app, &["verify"]).await.expect("verify passes");
    cli(&app, &["verify", "--family", &a])
        .await
        .expect("verify passes");

    tamper(&db, &a, 3).await;

    let report = audit::verify(&db, None).await.unwrap();
    assert_eq!(report.broken.len(), 1, "{report:?}");
    let link = &report.broken[0];
    assert_eq!(link.aggregate_id, a);
    assert_eq!(link.sequence, 3);
    assert_eq!(link.problem, LinkProblem::Altered);
    assert!(link
        .to_string()
        .starts_with(&format!("family {a}, sequence 3")));
    let only_b = audit::verify(&db, Some(b.parse().unwrap())).await.unwrap();
    assert!(only_b.is_intact());
    let err = cli(&app, &["verify"]).await.expect_err("verify fails");
    assert!(err.to_string().contains("1 broken"), "{err}");
    assert!(cli(&app, &["verify", "--family", &a]).await.is_err());
    cli(&app, &["verify", "--family", &b])
        .await
        .expect("b is intact");

    // Over HTTP: the flag, on every page, and the CSV header.
    let h = history_of(&app, &a, &cw, "").await;
    assert_eq!(h.body["chain_valid"], false);
    assert_eq!(h.body["chain_broken_at"], 3);
    assert_eq!(items(&h)[2]["data"]["text"], "rewritten", "shown as stored");
    let page = history_of(&app, &a, &cw, "?limit=1").await;
    assert_eq!(page.body["chain_valid"], false);
    let csv = app
        .get(&format!("/api/v1/families/{a}/history.csv"), &cw)
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers["x-chain-valid"], "false");
    let h = history_of(&app, &b, &cw, "").await;
    assert_eq!(h.body["chain_valid"], true);
    assert!(h.body["chain_broken_at"].is_null());

    // The trigger is back: the log is append-only again.
    let update = on_pool!(&db, pool => {
        sqlx::query("UPDATE events SET event_type = 'x'").execute(pool).await.map(|_| ())
    });
    assert!(update.is_err());
    // New events still chain onto the (tampered) stored hashes.
    act(
        &app,
        &cw,
        &format!("/api/v1/families/{b}/notes"),
        json!({"text": "four"}),
    )
    .await;
    let report = audit::verify(&db, Some(b.parse().unwrap())).await.unwrap();
    assert_eq!((report.events, report.is_intact()), (5, true));
    db.close().await;
}

async fn access_log_records_reads_and_is_for_admins(app: TestApp) {
    let (cw, cw_id) = named_user(&app, "Li Wei", "caseworker", "450305").await;
    let (sup, sup_id) = named_user(&app, "Zhao Min", "supervisor", "4503").await;
    let (far_admin, _) = named_user(&app, "Far Admin", "admin", "4501").await;
    let id = app.register(&cw, "450305001001").await;
    let other = app.register(&cw, "450305001002").await;

    let reads = [
        (&cw, format!("/api/v1/families/{id}")),
        (&cw, format!("/api/v1/families/{id}/history")),
        (&sup, format!("/api/v1/families/{id}/history.csv")),
        (
            &sup,
            format!("/api/v1/families/{id}?as_of=2030-01-01T00:00:00Z"),
        ),
        (&sup, format!("/api/v1/families/{other}")),
    ];
    let mut request_ids = Vec::new();
    for (token, path) in &reads {
        let r = app.get(path, token).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        request_ids.push(r.headers["x-request-id"].to_str().unwrap().to_owned());
    }
    // Failed reads are not recorded.
    app.get(&format!("/api/v1/families/{}", uuid::Uuid::new_v4()), &cw)
        .await
        .assert_problem(404);
    app.get(
        &format!("/api/v1/families/{id}?as_of=2020-01-01T00:00:00Z"),
        &cw,
    )
    .await
    .assert_problem(404);

    let log = app.get("/api/v1/access-log", ADMIN_TOKEN).await;
    assert_eq!(log.status, 200, "{}", log.text);
    let entries = items(&log);
    assert_eq!(entries.len(), 5, "{}", log.text);
    // Newest first.
    let expected = [
        (
            other.as_str(),
            sup_id.as_str(),
            "Zhao Min",
            "supervisor",
            "case_file",
        ),
        (
            id.as_str(),
            sup_id.as_str(),
            "Zhao Min",
            "supervisor",
            "case_file_as_of",
        ),
        (
            id.as_str(),
            sup_id.as_str(),
            "Zhao Min",
            "supervisor",
            "history.csv",
        ),
        (
            id.as_str(),
            cw_id.as_str(),
            "Li Wei",
            "caseworker",
            "history",
        ),
        (
            id.as_str(),
            cw_id.as_str(),
            "Li Wei",
            "caseworker",
            "case_file",
        ),
    ];
    for (i, (entry, (family, user, name, role, endpoint))) in
        entries.iter().zip(expected).enumerate()
    {
        assert_eq!(entry["family_id"], family, "{entry}");
        assert_eq!(entry["user_id"], user);
        assert_eq!(entry["user_name"], name);
        assert_eq!(entry["user_role"], role);
        assert_eq!(entry["endpoint"], endpoint);
        assert_eq!(entry["at"], "2026-06-30T04:00:00Z");
        assert_eq!(entry["request_id"], request_ids[4 - i].as_str());
        assert!(entry["id"].is_string());
    }
    assert!(log.body["next_cursor"].is_null());

    let by_family = app
        .get(
            &format!("/api/v1/access-log?family_id={other}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(items(&by_family).len(), 1);
    let by_user = app
        .get(&format!("/api/v1/access-log?user_id={cw_id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(items(&by_user).len(), 2);
    let both = app
        .get(
            &format!("/api/v1/access-log?user_id={sup_id}&family_id={id}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(items(&both).len(), 2);

    // Pages of 2, newest first.
    let mut seen = Vec::new();
    let mut path = "/api/v1/access-log?limit=2".to_owned();
    loop {
        let page = app.get(&path, ADMIN_TOKEN).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(items(&page).iter().map(|e| e["id"].clone()));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/access-log?limit=2&cursor={c}"),
            None => break,
        }
    }
    let all_ids: Vec<_> = entries.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(seen, all_ids);

    // Admins only, and only within their scope.
    app.get("/api/v1/access-log", &cw).await.assert_problem(403);
    app.get("/api/v1/access-log", &sup)
        .await
        .assert_problem(403);
    let far = app.get("/api/v1/access-log", &far_admin).await;
    assert_eq!(far.status, 200);
    assert!(items(&far).is_empty(), "{}", far.text);
    for bad in ["family_id=x", "user_id=x", "limit=0", "cursor=x", "nope=1"] {
        app.get(&format!("/api/v1/access-log?{bad}"), ADMIN_TOKEN)
            .await
            .assert_problem(400);
    }
    // Listing the log is not itself a read of a family.
    let again = app.get("/api/v1/access-log", ADMIN_TOKEN).await;
    assert_eq!(items(&again).len(), 5);

    // The log is append-only in the database.
    let db = open_db(&app).await;
    let update = on_pool!(&db, pool => {
        sqlx::query("UPDATE access_log SET endpoint = 'x'").execute(pool).await.map(|_| ())
    });
    assert!(update.is_err(), "UPDATE on access_log must be rejected");
    let delete = on_pool!(&db, pool => {
        sqlx::query("DELETE FROM access_log").execute(pool).await.map(|_| ())
    });
    assert!(delete.is_err(), "DELETE on access_log must be rejected");
    db.close().await;
}

async fn out_of_scope_readers_get_404_and_leave_no_trace(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let (far, far_id) = named_user(&app, "Far", "supervisor", "4501").await;
    let near = app.user("supervisor", "4503").await;
    let id = app.register(&cw, "450305001001").await;
    act(
        &app,
        &cw,
        &format!("/api/v1/families/{id}/notes"),
        json!({"text": "private matter"}),
    )
    .await;
    let unknown = uuid::Uuid::new_v4();
    for family in [id.clone(), unknown.to_string()] {
        for path in [
            format!("/api/v1/families/{family}/history"),
            format!("/api/v1/families/{family}/history?limit=1"),
            format!("/api/v1/families/{family}/history.csv"),
            format!("/api/v1/families/{family}?as_of=2026-06-30T04:00:00Z"),
            format!("/api/v1/families/{family}?as_of=2030-01-01T00:00:00Z"),
            format!("/api/v1/families/{family}"),
        ] {
            let r = app.get(&path, &far).await;
            r.assert_problem(404);
            for secret in [
                "450305001001",
                "Zhang San",
                "private matter",
                "0016",
                "Xincun",
            ] {
                assert!(
                    !r.text.contains(secret),
                    "{path} leaks {secret}: {}",
                    r.text
                );
            }
        }
    }
    // The supervisor in scope reads it all.
    assert_eq!(
        app.get(&format!("/api/v1/families/{id}/history"), &near)
            .await
            .status,
        200
    );
    let log = app
        .get(&format!("/api/v1/access-log?user_id={far_id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(log.status, 200);
    assert!(items(&log).is_empty(), "{}", log.text);
    let log = app
        .get(
            &format!("/api/v1/access-log?family_id={unknown}"),
            ADMIN_TOKEN,
        )
        .await;
    assert!(items(&log).is_empty(), "{}", log.text);
    let log = app
        .get(&format!("/api/v1/access-log?family_id={id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(items(&log).len(), 1, "only the in-scope read: {}", log.text);

    // The CSV export over HTTP is what `nuanxin audit export` prints.
    let csv = app
        .get(&format!("/api/v1/families/{id}/history.csv"), &near)
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type().starts_with("text/csv"));
    assert_eq!(csv.headers["x-chain-valid"], "true");
    let mut lines = csv.text.split("\r\n");
    assert_eq!(
        lines.next(),
        Some(
            "sequence,event_type,recorded_at,recorded_by_id,recorded_by_name,recorded_by_role,\
             action_id,voided_by,data"
        )
    );
    assert!(lines
        .next()
        .unwrap()
        .starts_with("1,FamilyRegistered,2026-06-30T04:00:00"));
    assert!(csv.text.contains("private matter"));
    assert!(
        !csv.text.contains("110105195003010016"),
        "ID numbers are masked"
    );
    assert!(csv.text.contains("110105********0016"));
    // The log as stored holds the personal fields sealed; opened with the
    // store's master key, it is what the export says.
    let db = open_db(&app).await;
    let mut history = audit::family_history(&db, id.parse().unwrap())
        .await
        .unwrap();
    assert!(!audit::history_csv(&history.entries).contains("private matter"));
    let keyring = nuanxin_infra::privacy::Keyring::new(
        nuanxin_infra::privacy::MasterKey::load(&app.db.master_key_file()).unwrap(),
    );
    keyring
        .reveal_values(
            &db,
            history.entries.iter_mut().map(|e| &mut e.data).collect(),
        )
        .await
        .unwrap();
    db.close().await;
    assert_eq!(audit::history_csv(&history.entries), csv.text);
    cli(&app, &["export", "--family", &id])
        .await
        .expect("export");
    assert!(cli(&app, &["export", "--family", &unknown.to_string()])
        .await
        .is_err());
}

#[tokio::test]
async fn openapi_describes_the_audit_endpoints() {
    let app = TestApp::spawn(Store::Sqlite).await.unwrap();
    let doc = app
        .send(
            reqwest::Method::GET,
            "/api/v1/openapi.json",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(doc.status, 200);
    let paths = &doc.body["paths"];
    for path in [
        "/api/v1/families/{id}/history",
        "/api/v1/families/{id}/history.csv",
        "/api/v1/access-log",
    ] {
        assert!(paths[path]["get"].is_object(), "GET {path} missing");
    }
    let params: Vec<_> = paths["/api/v1/families/{id}/history"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["id", "recorded_by", "from", "to", "limit", "cursor"] {
        assert!(params.contains(&name), "history lacks {name}: {params:?}");
    }
    assert!(
        paths["/api/v1/families/{id}/history.csv"]["get"]["responses"]["200"]["content"]
            ["text/csv"]
            .is_object()
    );
    let schemas = &doc.body["components"]["schemas"];
    for s in [
        "History",
        "HistoryItem",
        "RecordedBy",
        "AccessLog",
        "AccessLogItem",
    ] {
        assert!(schemas[s].is_object(), "schema {s} missing");
    }
    let item = &schemas["HistoryItem"]["properties"];
    for field in [
        "sequence",
        "event_type",
        "recorded_at",
        "recorded_by",
        "action_id",
        "data",
        "voided_by",
    ] {
        assert!(item[field].is_object(), "HistoryItem lacks {field}");
    }
    assert!(schemas["History"]["properties"]["chain_valid"].is_object());
}

/// A user named like a spreadsheet formula records an action: the CSV
/// export shows the name as text (a leading `'`), never as a formula.
async fn spreadsheet_formulas_never_reach_a_csv_export(app: TestApp) {
    let formula = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": formula, "role": "caseworker", "scope": "4503"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let cw = r.body["token"].as_str().unwrap().to_owned();
    let id = app.register(&cw, "450305001001").await;
    app.post(
        &format!("/api/v1/families/{id}/notes"),
        &cw,
        json!({"text": "@SUM(1+1)"}),
    )
    .await;
    let csv = app
        .get(&format!("/api/v1/families/{id}/history.csv"), &cw)
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    for line in csv.text.lines().skip(1) {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t']),
                "a cell starts like a formula: {line}"
            );
        }
    }
    assert!(csv.text.contains(",\"'=HYPERLINK("), "{}", csv.text);
}
