//! The read models: overdue and due lists, coverage gaps and the case list
//! hold exactly what the visit policy says, for any day asked; a rebuild
//! answers exactly as the incrementally built tables; a policy change moves
//! due dates without replaying events.

use std::sync::Arc;

use nuanxin_domain::policy::VisitPolicy;
use nuanxin_tests::*;
use serde_json::{json, Value};

both_stores!(
    lists_follow_the_policy_day_by_day,
    rebuild_answers_exactly_as_the_incremental_tables,
    policy_change_moves_due_dates_without_replay,
    case_list_pages_alike_whatever_the_prefix,
);

struct Fixture {
    cw: String,
    f1: String,
    f2: String,
    f3: String,
    f4: String,
    f1_village_contact: String,
    f1_home_visit: String,
}

fn ordinary_family(village: &str) -> Value {
    json!({
        "category": "disabled_child", "village_code": village, "address": "Xincun",
        "registered_on": "2026-01-10",
        "members": [{"name": "A", "sex": "male", "birth_date": "1960-01-01"},
                    {"name": "B", "sex": "female", "birth_date": "1962-01-01"}]
    })
}

async fn fixture(app: &TestApp) -> Fixture {
    let cw = app.user("caseworker", "4503").await;
    let post = |path: String, body: Value| {
        let cw = cw.clone();
        async move {
            let r = app.post(&path, &cw, body).await;
            assert!(r.status.is_success(), "{path}: {}", r.text);
            r.body
        }
    };
    // F1: ordinary; village contact with a home visit, township contact never visited.
    let f1 = post("/api/v1/families".into(), ordinary_family("450305001001")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let village = contact_body("village", "2026-01-12");
    let f1_village_contact = village["person"]["id"].as_str().unwrap().to_owned();
    post(format!("/api/v1/families/{f1}/contacts"), village).await;
    post(
        format!("/api/v1/families/{f1}/contacts"),
        contact_body("township", "2026-01-15"),
    )
    .await;
    let f1_home_visit = post(
        format!("/api/v1/families/{f1}/visits"),
        visit_body("village", "home", "2026-02-01"),
    )
    .await["action_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A phone visit does not count for the township contact.
    post(
        format!("/api/v1/families/{f1}/visits"),
        visit_body("township", "phone", "2026-02-02"),
    )
    .await;
    // F2: key (a semi-dependent parent); only phone visits, so the monthly home floor binds.
    let f2 = post("/api/v1/families".into(), family_body("450305002001")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        format!("/api/v1/families/{f2}/contacts"),
        contact_body("village", "2026-01-12"),
    )
    .await;
    post(
        format!("/api/v1/families/{f2}/visits"),
        visit_body("village", "phone", "2026-03-01"),
    )
    .await;
    // F3: another county, no contacts.
    let f3 = post("/api/v1/families".into(), ordinary_family("450306001001")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // F4: a parent turns 80 on 2026-05-01.
    let mut body = ordinary_family("450305001002");
    body["members"][0]["birth_date"] = json!("1946-05-01");
    let f4 = post("/api/v1/families".into(), body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        format!("/api/v1/families/{f4}/contacts"),
        contact_body("village", "2026-04-20"),
    )
    .await;
    Fixture {
        cw,
        f1,
        f2,
        f3,
        f4,
        f1_village_contact,
        f1_home_visit,
    }
}

/// (family, role, due_on, days_overdue) of every item of a list.
async fn items(app: &TestApp, token: &str, path: &str) -> Vec<(String, String, String, i64)> {
    let r = app.get(path, token).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["family_id"].as_str().unwrap().to_owned(),
                i["role"].as_str().unwrap().to_owned(),
                i["due_on"].as_str().unwrap().to_owned(),
                i["days_overdue"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn item(f: &str, role: &str, due: &str, days: i64) -> (String, String, String, i64) {
    (f.to_owned(), role.to_owned(), due.to_owned(), days)
}

async fn lists_follow_the_policy_day_by_day(app: TestApp) {
    let fx = fixture(&app).await;
    let cw = &fx.cw;
    let overdue = |on: &str| format!("/api/v1/overdue-visits?on={on}&village_code_prefix=4503");

    // F2: key, floor = assigned 01-12 + 30 = 02-11; F1 village: 02-01 + 30 = 03-03.
    assert_eq!(
        items(&app, cw, &overdue("2026-03-04")).await,
        vec![
            item(&fx.f2, "village", "2026-02-11", 21),
            item(&fx.f1, "village", "2026-03-03", 1)
        ]
    );
    // Due on 03-03 is not overdue on 03-03.
    assert_eq!(
        items(&app, cw, &overdue("2026-03-03")).await,
        vec![item(&fx.f2, "village", "2026-02-11", 20)]
    );
    // Township: 01-15 + 90 = 04-15 (the phone visit does not count).
    assert_eq!(
        items(
            &app,
            cw,
            "/api/v1/overdue-visits?on=2026-04-16&role=township"
        )
        .await,
        vec![item(&fx.f1, "township", "2026-04-15", 1)]
    );
    // One contact's list.
    assert_eq!(
        items(
            &app,
            cw,
            &format!(
                "/api/v1/overdue-visits?on=2026-03-04&contact_id={}",
                fx.f1_village_contact
            )
        )
        .await,
        vec![item(&fx.f1, "village", "2026-03-03", 1)]
    );
    // Prefixes: another county is empty; a narrower village holds only F1.
    assert!(items(
        &app,
        cw,
        "/api/v1/overdue-visits?on=2026-03-04&village_code_prefix=450306"
    )
    .await
    .is_empty());
    assert_eq!(
        items(
            &app,
            cw,
            "/api/v1/overdue-visits?on=2026-03-04&village_code_prefix=450305001001"
        )
        .await,
        vec![item(&fx.f1, "village", "2026-03-03", 1)]
    );
    // A caseworker scoped to one village sees only that village.
    let narrow = app.user("caseworker", "450305002").await;
    assert_eq!(
        items(&app, &narrow, "/api/v1/overdue-visits?on=2026-03-04").await,
        vec![item(&fx.f2, "village", "2026-02-11", 21)]
    );

    // The 80th birthday: ordinary (04-20 + 30) the day before, key (04-20 + 7) from it.
    let f4_rows = |v: Vec<(String, String, String, i64)>| {
        v.into_iter().filter(|i| i.0 == fx.f4).collect::<Vec<_>>()
    };
    assert!(f4_rows(items(&app, cw, &overdue("2026-04-30")).await).is_empty());
    assert_eq!(
        f4_rows(items(&app, cw, &overdue("2026-05-01")).await),
        vec![item(&fx.f4, "village", "2026-04-27", 4)]
    );

    // The week ahead: due on or before on + 7, overdue ones marked.
    let due = app
        .get("/api/v1/due-visits?on=2026-02-25&within_days=7", cw)
        .await;
    let due_items = due.body["items"].as_array().unwrap();
    assert_eq!(due_items.len(), 2, "{}", due.text);
    assert_eq!(due_items[0]["family_id"], fx.f2.as_str());
    assert_eq!(due_items[0]["overdue"], true);
    assert_eq!(due_items[1]["family_id"], fx.f1.as_str());
    assert_eq!(due_items[1]["overdue"], false);
    assert_eq!(
        due_items[1]["contact"]["id"],
        fx.f1_village_contact.as_str()
    );
    assert_eq!(due_items[1]["last_visit_on"], "2026-02-01");

    // Pagination walks the same items in the same order.
    let all = items(&app, cw, &overdue("2026-06-30")).await;
    assert!(all.len() >= 4, "{all:?}");
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{}&limit=1&cursor={c}", overdue("2026-06-30")),
            None => format!("{}&limit=1", overdue("2026-06-30")),
        };
        let r = app.get(&path, cw).await;
        walked.extend(r.body["items"].as_array().unwrap().iter().map(|i| {
            item(
                i["family_id"].as_str().unwrap(),
                i["role"].as_str().unwrap(),
                i["due_on"].as_str().unwrap(),
                i["days_overdue"].as_i64().unwrap(),
            )
        }));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, all);

    // Coverage gaps: F3 lacks both contacts, F2 and F4 the township one.
    let gaps = app
        .get("/api/v1/coverage-gaps?village_code_prefix=45", cw)
        .await;
    let mut got: Vec<(String, String)> = gaps.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["family_id"].as_str().unwrap().to_owned(),
                g["missing_roles"].to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (fx.f2.clone(), json!(["township"]).to_string()),
        (fx.f3.clone(), json!(["village", "township"]).to_string()),
        (fx.f4.clone(), json!(["township"]).to_string()),
    ];
    want.sort();
    assert_eq!(got, want);

    // Voiding the latest visit moves the due date back (01-12 + 30).
    let p = format!("/api/v1/families/{}/voids", fx.f1);
    assert_eq!(
        app.post(
            &p,
            cw,
            json!({"action_id": fx.f1_home_visit, "reason": "wrong date"})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        items(
            &app,
            cw,
            &format!(
                "/api/v1/overdue-visits?on=2026-02-12&contact_id={}",
                fx.f1_village_contact
            )
        )
        .await,
        vec![item(&fx.f1, "village", "2026-02-11", 1)]
    );
    // A visit recorded late (dated before a later one) does not move the due date back.
    let v = format!("/api/v1/families/{}/visits", fx.f1);
    app.post(&v, cw, visit_body("village", "home", "2026-03-10"))
        .await;
    app.post(&v, cw, visit_body("village", "video", "2026-03-01"))
        .await;
    assert_eq!(
        items(
            &app,
            cw,
            &format!(
                "/api/v1/due-visits?on=2026-04-09&within_days=0&contact_id={}",
                fx.f1_village_contact
            )
        )
        .await,
        vec![item(&fx.f1, "village", "2026-04-09", 0)]
    );
    // An emergency makes a home visit due the next day.
    app.post(&format!("/api/v1/families/{}/emergencies", fx.f1), cw,
        json!({"occurred_at": "2026-03-20T10:00:00+08:00", "description": "fall", "responder": "Li", "outcome": "ok"})).await;
    assert_eq!(
        items(
            &app,
            cw,
            &format!(
                "/api/v1/overdue-visits?on=2026-03-23&contact_id={}",
                fx.f1_village_contact
            )
        )
        .await,
        vec![item(&fx.f1, "village", "2026-03-21", 2)]
    );
    // A closed case is never due; reopened, it is again.
    let f2 = format!("/api/v1/families/{}", fx.f2);
    app.post(
        &format!("{f2}/close"),
        cw,
        json!({"on": "2026-03-05", "reason": "moved"}),
    )
    .await;
    assert!(items(&app, cw, &overdue("2026-03-04"))
        .await
        .iter()
        .all(|i| i.0 != fx.f2));
    app.post(
        &format!("{f2}/reopen"),
        cw,
        json!({"on": "2026-03-06", "reason": "back"}),
    )
    .await;
    assert!(items(&app, cw, &overdue("2026-03-04"))
        .await
        .iter()
        .any(|i| i.0 == fx.f2));
    // A transfer releases both contacts: F1 leaves the lists and becomes a gap.
    app.post(
        &format!("/api/v1/families/{}/transfer", fx.f1),
        cw,
        json!({"village_code": "450305001003", "transferred_on": "2026-04-01", "reason": "moved"}),
    )
    .await;
    assert!(items(&app, cw, &overdue("2026-06-30"))
        .await
        .iter()
        .all(|i| i.0 != fx.f1));

    // The case list: key families today (2026-06-30) are F2 and F4.
    let list = app.get("/api/v1/families?key_person=true", cw).await;
    let mut keys: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    let mut want = vec![fx.f2.clone(), fx.f4.clone()];
    want.sort();
    assert_eq!(keys, want);
    let f4_summary = app
        .get("/api/v1/families?village_code_prefix=450305001002", cw)
        .await;
    assert_eq!(
        f4_summary.body["items"][0]["village_next_due_on"],
        "2026-04-27"
    );

    // Bad queries.
    app.get("/api/v1/overdue-visits?on=tomorrow", cw)
        .await
        .assert_problem(400);
    app.get("/api/v1/overdue-visits?role=county", cw)
        .await
        .assert_problem(400);
    app.get("/api/v1/overdue-visits?cursor=zzz", cw)
        .await
        .assert_problem(400);
    app.get("/api/v1/due-visits?within_days=1000", cw)
        .await
        .assert_problem(400);
}

/// Every list answer the read models give, for comparison.
async fn snapshot(app: &TestApp, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for on in [
        "2026-02-12",
        "2026-03-04",
        "2026-04-16",
        "2026-05-01",
        "2026-06-30",
    ] {
        out.push(
            app.get(&format!("/api/v1/overdue-visits?on={on}"), token)
                .await
                .body,
        );
        out.push(
            app.get(&format!("/api/v1/due-visits?on={on}&within_days=30"), token)
                .await
                .body,
        );
    }
    out.push(app.get("/api/v1/coverage-gaps", token).await.body);
    out.push(app.get("/api/v1/families", token).await.body);
    out.push(
        app.get("/api/v1/families?key_person=true", token)
            .await
            .body,
    );
    out
}

async fn rebuild_answers_exactly_as_the_incremental_tables(app: TestApp) {
    let fx = fixture(&app).await;
    let before = snapshot(&app, &fx.cw).await;
    assert!(before[1]["items"].as_array().unwrap().len() >= 2);

    let mut settings = nuanxin_infra::Settings::new(app.db.url.clone());
    settings.master_key = nuanxin_infra::privacy::MasterKeySource::File(app.db.master_key_file());
    let services = nuanxin_infra::Nuanxin::open(&settings).await.unwrap();
    // A rebuild killed midway leaves half-filled rebuild tables behind.
    nuanxin_infra::on_pool!(services.db(), pool => {
        sqlx::query("CREATE TABLE rebuild_case_files (junk INTEGER)").execute(pool).await.map(|_| ())
    })
    .unwrap();
    let rebuild = || nuanxin_infra::rebuild::rebuild(&services.core, &|_, _| {});
    let report = rebuild().await.expect("rebuild");
    assert_eq!(report.families, 4);
    assert_eq!(report.events as i64, app.event_count().await);
    assert_eq!(
        snapshot(&app, &fx.cw).await,
        before,
        "the rebuilt tables answer as before"
    );
    // The server keeps serving and projecting after the swap.
    let r = app
        .post(
            &format!("/api/v1/families/{}/visits", fx.f2),
            &fx.cw,
            visit_body("village", "home", "2026-06-29"),
        )
        .await;
    assert_eq!(r.status, 201);
    let file = app
        .get(&format!("/api/v1/families/{}", fx.f2), &fx.cw)
        .await;
    assert_eq!(file.body["visits"]["village"]["last_home_on"], "2026-06-29");
    let (_, settled) = services
        .projector
        .settle(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert!(settled, "the read models reach the head of the log");
    // A second rebuild over the first works too.
    rebuild().await.expect("second rebuild");
    let _ = (fx.f1, fx.f3, fx.f4);
}

async fn policy_change_moves_due_dates_without_replay(app: TestApp) {
    let fx = fixture(&app).await;
    let path = format!(
        "/api/v1/overdue-visits?on=2026-02-25&contact_id={}",
        fx.f1_village_contact
    );
    assert!(
        items(&app, &fx.cw, &path).await.is_empty(),
        "02-01 + 30 is not due yet"
    );
    let store = app.store;
    let db = app.stop().await;
    let mut policy = VisitPolicy::default();
    policy.village.ordinary_days = 20;
    let app = TestApp::start(store, db, |s| {
        s.policy = policy.clone();
        s.policy_configured = true;
    })
    .await;
    assert_eq!(
        items(&app, &fx.cw, &path).await,
        vec![item(&fx.f1, "village", "2026-02-21", 4)]
    );
    // The case file follows too.
    let file = app
        .get(&format!("/api/v1/families/{}", fx.f1), &fx.cw)
        .await;
    assert_eq!(file.body["visits"]["village"]["next_due_on"], "2026-02-21");
    let _ = Arc::new(());
}

/// The case list is planned two ways (walked in family-id order for a wide
/// prefix, found through the village-code index and sorted for a county or
/// narrower): page by page, with and without the key-person filter, every
/// prefix answers exactly the rows of the whole list that fall in it, in
/// family-id order, each once.
async fn case_list_pages_alike_whatever_the_prefix(app: TestApp) {
    let fx = fixture(&app).await;
    let cw = &fx.cw;
    let whole = app.get("/api/v1/families?limit=200", cw).await;
    let whole = whole.body["items"].as_array().unwrap().clone();
    assert_eq!(whole.len(), 4);
    for prefix in ["", "45", "4503", "450305", "450305001", "450305002001"] {
        for key in [None, Some(true), Some(false)] {
            let want: Vec<&Value> = whole
                .iter()
                .filter(|i| i["village_code"].as_str().unwrap().starts_with(prefix))
                .filter(|i| key.is_none_or(|k| i["key_person"] == k))
                .collect();
            let mut got = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/api/v1/families?limit=1&village_code_prefix={prefix}");
                if let Some(k) = key {
                    path.push_str(&format!("&key_person={k}"));
                }
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = app.get(&path, cw).await;
                assert_eq!(page.status, 200, "{path}: {}", page.text);
                got.extend(page.body["items"].as_array().unwrap().iter().cloned());
                match page.body["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
                assert!(got.len() <= 4, "{path} pages on and on");
            }
            let got: Vec<&Value> = got.iter().collect();
            assert_eq!(got, want, "prefix {prefix:?}, key_person {key:?}");
        }
    }
}
