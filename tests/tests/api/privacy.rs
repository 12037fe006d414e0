//! Crypto-shredding (docs/privacy.md): personal fields are stored sealed
//! with their persons' keys, read in clear through the API, and erased for
//! good by deleting the keys — while the events, their hash chain, dates
//! and counts stay.

use nuanxin_infra::{audit, on_pool, Db};
use nuanxin_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

both_stores!(
    personal_data_is_sealed_in_the_store_and_clear_in_reads,
    erasure_is_refused_unless_an_admin_erases_a_closed_case,
    an_erased_family_reads_as_erased_everywhere_and_the_chain_verifies,
    a_store_with_clear_text_events_reads_them_as_they_are,
    one_new_contact_person_assigned_to_many_families_at_once_gets_one_key,
    fields_of_both_forms_open_with_keys_found_in_the_store,
);

/// The personal values of one scenario: unique per run, so a scan of the
/// store or the log cannot find another test's.
struct Person {
    member: String,
    other_member: String,
    id_number: &'static str,
    phone: String,
    address: String,
    emergency: String,
    contact: String,
    findings: String,
    note: String,
}

impl Person {
    fn new() -> Self {
        let tag = Uuid::new_v4().simple().to_string()[..10].to_owned();
        Self {
            member: format!("Qinmember{tag}"),
            other_member: format!("Qinspouse{tag}"),
            // A valid number (GB 11643) for 1950-03-01, male.
            id_number: "110105195003010016",
            phone: format!(
                "139{}",
                &tag.bytes()
                    .map(|b| (b % 10).to_string())
                    .collect::<String>()[..8]
            ),
            address: format!("Qinaddress{tag}"),
            emergency: format!("Qinneighbour{tag}"),
            contact: format!("Qincadre{tag}"),
            findings: format!("Qinfindings{tag}"),
            note: format!("Qinnote{tag}"),
        }
    }

    /// Every value that must never be stored in clear.
    fn secrets(&self) -> Vec<&str> {
        vec![
            &self.member,
            &self.other_member,
            self.id_number,
            &self.phone,
            &self.address,
            &self.emergency,
            &self.contact,
            &self.findings,
            &self.note,
        ]
    }

    /// The values erasure deletes (the contact person is staff: kept).
    fn erasable(&self) -> Vec<&str> {
        let mut all = self.secrets();
        all.retain(|s| *s != self.contact);
        all
    }
}

/// A family of `p` with a contact, an emergency contact, a visit and a
/// note, recorded by `token`; its id.
async fn record_family(app: &TestApp, token: &str, p: &Person) -> String {
    let r = app
        .post(
            "/api/v1/families",
            token,
            json!({
                "category": "bereaved",
                "village_code": "450305001001",
                "address": p.address,
                "registered_on": "2026-01-10",
                "members": [
                    {"name": p.member, "sex": "male", "birth_date": "1950-03-01",
                     "id_number": p.id_number, "phone": p.phone},
                    {"name": p.other_member, "sex": "female", "birth_date": "1952-07-15"}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let at = |tail: &str| format!("/api/v1/families/{id}/{tail}");
    for (path, body) in [
        (
            at("contacts"),
            json!({"role": "village", "assigned_on": "2026-01-10",
                   "person": {"id": Uuid::new_v4(), "name": p.contact, "phone": "13900139000"}}),
        ),
        (
            at("emergency-contacts"),
            json!({"name": p.emergency, "relation": "neighbour", "phone": p.phone, "priority": 1}),
        ),
        (
            at("visits"),
            json!({"role": "village", "mode": "home", "visited_on": "2026-02-01",
                   "findings": p.findings, "needs": [p.note]}),
        ),
        (at("notes"), json!({"text": p.note})),
    ] {
        let r = app.post(&path, token, body).await;
        assert!(r.status.is_success(), "{path}: {}", r.text);
    }
    id
}

/// A contact person new to the store, assigned to eight families at once:
/// each command seals the name with a key of its own making, the store
/// keeps the first, and the commands whose key lost seal again with it.
/// Every assignment is recorded, the person has one key, and every case
/// file reads the name.
async fn one_new_contact_person_assigned_to_many_families_at_once_gets_one_key(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let mut families = Vec::new();
    for i in 0..8 {
        families.push(app.register(&cw, &format!("450305001{:03}", i + 1)).await);
    }
    let p = Person::new();
    let person = Uuid::new_v4();
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for id in &families {
        let (app, cw, id, name) = (app.clone(), cw.clone(), id.clone(), p.contact.clone());
        tasks.push(tokio::spawn(async move {
            app.post(
                &format!("/api/v1/families/{id}/contacts"),
                &cw,
                json!({"role": "village", "assigned_on": "2026-01-10",
                       "person": {"id": person, "name": name, "phone": "13900139000"}}),
            )
            .await
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let db = open_db(&app).await;
    let keys: i64 = on_pool!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM person_keys WHERE subject = $1")
            .bind(person.to_string())
            .fetch_one(pool).await.unwrap()
    });
    assert_eq!(keys, 1);
    assert_none_in(&stored_text(&db).await, &[&p.contact], "the store");
    db.close().await;
    for id in &families {
        let f = app.get(&format!("/api/v1/families/{id}"), &cw).await.body;
        assert_eq!(
            f["contacts"]["village"]["person"]["name"],
            p.contact.as_str(),
            "{id}"
        );
    }
}

async fn close(app: &TestApp, token: &str, id: &str) {
    let r = app
        .post(
            &format!("/api/v1/families/{id}/close"),
            token,
            json!({"on": "2026-06-01", "reason": "moved away"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// The admin erases the family (its case closed); the answer, a success.
async fn erase(app: &TestApp, id: &str) -> Response {
    let r = app
        .post(
            &format!("/api/v1/families/{id}/erase"),
            ADMIN_TOKEN,
            json!({"reason": "consent_withdrawn"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

async fn open_db(app: &TestApp) -> Db {
    Db::connect(&app.db.url, 1).await.expect("connect")
}

/// Every row of the tables that hold a family's data, as text.
async fn stored_text(db: &Db) -> String {
    let mut all = String::new();
    for sql in [
        "SELECT CAST(payload AS TEXT) FROM events",
        "SELECT CAST(state AS TEXT) FROM case_files",
        "SELECT COALESCE(village_contact_name, '') || COALESCE(township_contact_name, '') FROM case_files",
        "SELECT contact_name FROM visit_schedule",
    ] {
        let rows: Vec<(String,)> = on_pool!(db, pool => {
            sqlx::query_as(sql).fetch_all(pool).await.expect(sql)
        });
        for (text,) in rows {
            all.push_str(&text);
            all.push('\n');
        }
    }
    all
}

fn assert_none_in(haystack: &str, needles: &[&str], place: &str) {
    for n in needles {
        assert!(
            !haystack.contains(n),
            "{place} holds a personal value in clear"
        );
    }
}

/// The bytes of every file the store keeps (SQLite: the database and its
/// WAL; PostgreSQL: the test database's files and the server's WAL), after
/// asking it to write everything out.
async fn store_files(db: &Db) -> Vec<u8> {
    let mut bytes = Vec::new();
    match db {
        Db::Sqlite(pool) => {
            let path: Vec<(i64, String, String)> = sqlx::query_as("PRAGMA database_list")
                .fetch_all(pool)
                .await
                .unwrap();
            let main = std::path::PathBuf::from(&path[0].2);
            for suffix in ["", "-wal"] {
                let file = format!("{}{suffix}", main.display());
                if let Ok(b) = std::fs::read(&file) {
                    bytes.extend(b);
                }
            }
        }
        Db::Postgres(pool) => {
            sqlx::query("CHECKPOINT").execute(pool).await.unwrap();
            let dir: String = sqlx::query_scalar("SHOW data_directory")
                .fetch_one(pool)
                .await
                .unwrap();
            let oid: String = sqlx::query_scalar(
                "SELECT CAST(oid AS TEXT) FROM pg_database WHERE datname = current_database()",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            let root = std::path::Path::new(&dir);
            for sub in [root.join("base").join(oid), root.join("pg_wal")] {
                let entries = std::fs::read_dir(&sub)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", sub.display()));
                for e in entries.flatten() {
                    if e.path().is_file() {
                        bytes.extend(std::fs::read(e.path()).unwrap_or_default());
                    }
                }
            }
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn personal_data_is_sealed_in_the_store_and_clear_in_reads(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let p = Person::new();
    let id = record_family(&app, &cw, &p).await;

    // Stored: nowhere in clear, in the log or the read models.
    let db = open_db(&app).await;
    let stored = stored_text(&db).await;
    assert_none_in(&stored, &p.secrets(), "the store");
    assert!(stored.contains("nx2:"), "sealed fields are stored");
    assert!(!stored.contains("nx1:"), "in the form written now only");
    // One key per person: the family, two members, the emergency
    // contact, the contact person.
    let keys: i64 = on_pool!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM person_keys WHERE wrapped IS NOT NULL")
            .fetch_one(pool).await.unwrap()
    });
    assert_eq!(keys, 5);
    db.close().await;

    // Read: in clear, ID number masked.
    let r = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let f = &r.body;
    assert_eq!(f["address"], p.address.as_str());
    assert_eq!(f["members"][0]["name"], p.member.as_str());
    assert_eq!(f["members"][0]["id_number_masked"], "110105********0016");
    assert_eq!(f["members"][0]["phone"], p.phone.as_str());
    assert_eq!(
        f["contacts"]["village"]["person"]["name"],
        p.contact.as_str()
    );
    assert_eq!(f["emergency_contacts"][0]["name"], p.emergency.as_str());
    assert_eq!(f["notes"][0]["text"], p.note.as_str());
    assert!(f.get("erased_on").is_none());
    assert!(!r.text.contains("nx2:"), "nothing sealed reaches a reader");

    let h = app
        .get(&format!("/api/v1/families/{id}/history"), &cw)
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert!(h.text.contains(&p.findings));
    assert!(h.text.contains("110105********0016"));
    assert!(!h.text.contains(p.id_number));
    assert!(!h.text.contains("nx2:"));

    let list = app
        .get("/api/v1/families?village_code_prefix=450305", &cw)
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(list.text.contains(&p.contact), "{}", list.text);
    let due = app
        .get(
            "/api/v1/due-visits?village_code_prefix=450305&within_days=365",
            &cw,
        )
        .await;
    assert_eq!(due.status, 200, "{}", due.text);
    assert!(!due.text.contains("nx2:"), "{}", due.text);

    // Nothing personal in the server's log either.
    assert_none_in(&captured_logs(), &p.secrets(), "the server log");
}

async fn erasure_is_refused_unless_an_admin_erases_a_closed_case(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let p = Person::new();
    let id = record_family(&app, &cw, &p).await;
    let erase = format!("/api/v1/families/{id}/erase");
    let before = app.event_count().await;

    // Not an admin.
    app.post(&erase, &cw, json!({"reason": "purpose_ended"}))
        .await
        .assert_problem(403);
    // An unknown reason, a free-text reason, a malformed day, unknown fields.
    app.post(&erase, ADMIN_TOKEN, json!({"reason": "tired of them"}))
        .await
        .assert_field_error("reason");
    app.post(
        &erase,
        ADMIN_TOKEN,
        json!({"reason": "purpose_ended", "on": "yesterday"}),
    )
    .await
    .assert_field_error("on");
    app.post(
        &erase,
        ADMIN_TOKEN,
        json!({"reason": "purpose_ended", "name": "x"}),
    )
    .await
    .assert_problem(422);
    // The case is open.
    let r = app
        .post(&erase, ADMIN_TOKEN, json!({"reason": "purpose_ended"}))
        .await;
    r.assert_problem(409);
    assert!(r.text.contains("close it"), "{}", r.text);
    // An unknown family.
    app.post(
        &format!("/api/v1/families/{}/erase", Uuid::new_v4()),
        ADMIN_TOKEN,
        json!({"reason": "purpose_ended"}),
    )
    .await
    .assert_problem(404);
    // A day before the closing.
    close(&app, &cw, &id).await;
    app.post(
        &erase,
        ADMIN_TOKEN,
        json!({"reason": "purpose_ended", "on": "2026-05-01"}),
    )
    .await
    .assert_problem(409);

    // Nothing changed: no event, every key in place, the data readable.
    assert_eq!(app.event_count().await, before + 1, "only the closing");
    let r = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(r.body["members"][0]["name"], p.member.as_str());
    // Refusals name no personal value.
    assert_none_in(&captured_logs(), &p.secrets(), "the server log");
}

async fn an_erased_family_reads_as_erased_everywhere_and_the_chain_verifies(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let county = app.user("supervisor", "450305").await;
    let p = Person::new();
    let id = record_family(&app, &cw, &p).await;
    // Another family of the same contact person, not erased.
    let q = Person::new();
    let other = record_family(&app, &cw, &q).await;
    close(&app, &cw, &id).await;
    let report_query = "/api/v1/reports/summary?from=2026-01-01&to=2026-06-30";
    let report_before = app.get(report_query, &county).await;
    assert_eq!(report_before.status, 200, "{}", report_before.text);
    let version_before: u64 = app.get(&format!("/api/v1/families/{id}"), &cw).await.body["version"]
        .as_u64()
        .unwrap();

    let r = erase(&app, &id).await;
    // The family's key, its two members', its emergency contact's.
    assert_eq!(r.body["keys_erased"], 4);
    assert_eq!(r.body["version"], version_before + 1);

    // The case file: every personal field erased, dates and codes kept.
    let f = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(f.status, 200, "{}", f.text);
    let f = &f.body;
    assert_eq!(f["erased_on"], "2026-06-30");
    assert_eq!(f["address"], "[已删除]");
    assert_eq!(f["members"][0]["name"], "[已删除]");
    assert_eq!(f["members"][0]["id_number_masked"], "[已删除]");
    assert_eq!(f["members"][0]["phone"], "[已删除]");
    assert_eq!(f["members"][1]["name"], "[已删除]");
    assert_eq!(f["members"][0]["birth_date"], "1950-03-01");
    assert_eq!(f["emergency_contacts"][0]["name"], "[已删除]");
    assert_eq!(f["emergency_contacts"][0]["phone"], "[已删除]");
    assert_eq!(f["notes"][0]["text"], "[已删除]");
    assert_eq!(f["village_code"], "450305001001");
    assert_eq!(f["registered_on"], "2026-01-10");
    assert_eq!(f["visits"]["village"]["last_home_on"], "2026-02-01");
    // The contact person is staff: not erased with the family.
    assert_eq!(
        f["contacts"]["village"]["person"]["name"],
        p.contact.as_str()
    );

    // A case file `as_of` (folded from the log, not the read model):
    // erased too.
    let then = app
        .get(
            &format!("/api/v1/families/{id}?as_of=2026-06-30T04:00:00Z"),
            &cw,
        )
        .await;
    assert_eq!(then.status, 200, "{}", then.text);
    assert_none_in(&then.text, &p.erasable(), "the as_of case file");
    assert!(then.text.contains("[已删除]"));

    // The history: erased, and the erasure attributed to the admin.
    let h = app
        .get(&format!("/api/v1/families/{id}/history"), &county)
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_none_in(&h.text, &p.erasable(), "the history");
    let items = h.body["items"].as_array().unwrap();
    let last = items.last().unwrap();
    assert_eq!(last["event_type"], "FamilyErased");
    assert_eq!(last["data"]["reason"], "consent_withdrawn");
    assert_eq!(last["recorded_by"]["role"], "admin");
    let csv = app
        .get(&format!("/api/v1/families/{id}/history.csv"), &county)
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_none_in(&csv.text, &p.erasable(), "the history CSV");
    assert!(csv.text.contains("[已删除]"));

    // The other family of the same contact person is untouched.
    let o = app.get(&format!("/api/v1/families/{other}"), &cw).await;
    assert_eq!(o.body["members"][0]["name"], q.member.as_str());

    // Counts and dates stay: the period report is the same.
    let report_after = app.get(report_query, &county).await;
    assert_eq!(report_after.status, 200);
    assert_eq!(report_before.body, report_after.body);

    // Nothing more can be recorded; erasing again is refused.
    let r = app
        .post(
            &format!("/api/v1/families/{id}/reopen"),
            &cw,
            json!({"on": "2026-06-30", "reason": "back"}),
        )
        .await;
    r.assert_problem(409);
    assert!(r.text.contains("erased"), "{}", r.text);
    app.post(
        &format!("/api/v1/families/{id}/erase"),
        ADMIN_TOKEN,
        json!({"reason": "consent_withdrawn"}),
    )
    .await
    .assert_problem(409);

    // The chain covers the ciphertext, which did not change: it verifies.
    let db = open_db(&app).await;
    let report = audit::verify(&db, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.broken);
    assert!(report.events >= 12);

    // The store's files, WAL included, hold none of it in clear; neither
    // does the log.
    let files = store_files(&db).await;
    db.close().await;
    assert!(!files.is_empty());
    for s in p.secrets() {
        assert!(
            !contains(&files, s),
            "the store's files hold a personal value in clear"
        );
    }
    assert_none_in(&captured_logs(), &p.secrets(), "the server log");

    // A restarted server (keys loaded from the store) reads the same.
    let app = app.restart().await;
    let f = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(f.body["members"][0]["name"], "[已删除]");
    let o = app.get(&format!("/api/v1/families/{other}"), &cw).await;
    assert_eq!(o.body["members"][0]["name"], q.member.as_str());
}

/// A store written before encryption holds clear payloads; they are read
/// as they are (the upcast), and new events of the same family are sealed.
async fn a_store_with_clear_text_events_reads_them_as_they_are(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let p = Person::new();
    let id = record_family(&app, &cw, &p).await;
    // Append a note as an older server wrote it: in clear, sealed into
    // the chain.
    let db = open_db(&app).await;
    let old_note = "Qinoldnote written in clear";
    let payload = json!({"NoteAdded": {"action_id": Uuid::new_v4(), "text": old_note}});
    insert_clear_event(&db, &id, payload).await;
    db.close().await;
    let app = app.restart().await;

    let f = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(f.status, 200, "{}", f.text);
    let notes: Vec<&str> = f.body["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["text"].as_str())
        .collect();
    assert!(notes.contains(&old_note), "{notes:?}");
    assert!(notes.contains(&p.note.as_str()), "{notes:?}");
    // A new note is sealed again.
    let r = app
        .post(
            &format!("/api/v1/families/{id}/notes"),
            &cw,
            json!({"text": "Qinnewnote after the upgrade"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let db = open_db(&app).await;
    let stored = stored_text(&db).await;
    assert!(!stored.contains("Qinnewnote"));
    assert!(audit::verify(&db, None).await.unwrap().is_intact());
    db.close().await;
}

/// Fields sealed in the first form (`nx1:`, the whole person id) stay
/// readable next to those of the form written now (`nx2:`, the id's last 8
/// bytes), also through a keyring that holds no key yet and must find them
/// in the store by their ids' tails (another process: the CLI, a server
/// just started); erasure erases both.
async fn fields_of_both_forms_open_with_keys_found_in_the_store(app: TestApp) {
    use nuanxin_infra::privacy::{Keyring, MasterKey, Subject, SubjectKind, ERASED};
    let cw = app.user("caseworker", "450305").await;
    let p = Person::new();
    let id = record_family(&app, &cw, &p).await;
    let family: Uuid = id.parse().unwrap();
    let key_file = app.db.master_key_file();
    let fresh_keyring = || Keyring::new(MasterKey::load(&key_file).unwrap());

    // A note as the server before nx2 sealed it, with the family's key.
    let db = open_db(&app).await;
    let writer = fresh_keyring();
    let subject = Subject {
        id: family,
        kind: SubjectKind::Family,
        family: Some(family),
    };
    let keys = writer.keys_for(&db, &[subject]).await.unwrap();
    let old_note = format!("Qinfirstform{}", &p.note[7..]);
    let sealed = writer.seal_first_form(&keys, family, &old_note);
    assert!(sealed.starts_with("nx1:"));
    let payload = json!({"NoteAdded": {"action_id": Uuid::new_v4(), "text": sealed}});
    insert_clear_event(&db, &id, payload).await;

    // A keyring with no key in memory opens both forms from the store.
    let (csv, held) = history_opened_by(&db, family, fresh_keyring()).await;
    assert!(csv.contains(&old_note), "{csv}");
    for clear in [&p.note, &p.findings, &p.member, &p.address, &p.contact] {
        assert!(csv.contains(clear.as_str()), "{clear} in {csv}");
    }
    assert!(!csv.contains("nx1:") && !csv.contains("nx2:"), "{csv}");
    assert_eq!(held, 5, "the keys of the five persons, found by their ids");
    db.close().await;

    // The server folds the old note into the case file and reads it.
    let app = app.restart().await;
    let f = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(f.status, 200, "{}", f.text);
    assert!(
        f.text.contains(&old_note) && f.text.contains(&p.note),
        "{}",
        f.text
    );

    // Erased: both forms read as erased, in the server and from the store.
    close(&app, &cw, &id).await;
    erase(&app, &id).await;
    let f = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(f.status, 200, "{}", f.text);
    assert_none_in(
        &f.text,
        &[&old_note, &p.note, &p.member],
        "the erased case file",
    );
    let db = open_db(&app).await;
    let (csv, _) = history_opened_by(&db, family, fresh_keyring()).await;
    assert_none_in(
        &csv,
        &[&old_note, &p.note, &p.member, &p.address],
        "the erased history",
    );
    assert!(csv.contains(ERASED), "{csv}");
    assert!(
        csv.contains(&p.contact),
        "the contact person is staff: kept"
    );
    db.close().await;
}

/// The family's history as CSV, its fields opened by `keyring` (which
/// holds no key yet), and how many keys the keyring holds after.
async fn history_opened_by(
    db: &Db,
    family: Uuid,
    keyring: nuanxin_infra::privacy::Keyring,
) -> (String, usize) {
    let mut history = audit::family_history(db, family).await.unwrap();
    assert_eq!(keyring.cached(), 0);
    keyring
        .reveal_values(
            db,
            history.entries.iter_mut().map(|e| &mut e.data).collect(),
        )
        .await
        .unwrap();
    (audit::history_csv(&history.entries), keyring.cached())
}

/// Appends `payload` to the family's stream as the next event, in clear,
/// sealed into the chain as an older server did, and refreshes nothing
/// else (the restart's projector folds it).
async fn insert_clear_event(db: &Db, family: &str, payload: Value) {
    let family_id: Uuid = family.parse().unwrap();
    let events = nuanxin_infra::store::events::of_family(db, family_id)
        .await
        .unwrap();
    let last = events.last().unwrap();
    let sequence = last.sequence + 1;
    let prev = last.metadata_str("hash").unwrap_or_default().to_owned();
    let mut metadata = last.metadata.clone();
    metadata["request_id"] = json!("old-server");
    let serialized = cqrs_es::persist::SerializedEvent::new(
        family.to_owned(),
        sequence as usize,
        "FamilyCase".into(),
        "NoteAdded".into(),
        "1".into(),
        payload,
        metadata,
    );
    let sealed = audit::seal(&[serialized], prev).unwrap().pop().unwrap();
    let new = nuanxin_infra::store::events::NewEvent::from_sealed("FamilyCase", sealed);
    let mut tx = db.begin().await.unwrap();
    nuanxin_infra::store::events::append(&mut tx, &[&new])
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
