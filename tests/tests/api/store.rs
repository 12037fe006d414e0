//! The store itself: an append-only log, and a read model that catches up
//! from the log after a crash between commit and projection.

use nuanxin_infra::on_pool;
use nuanxin_tests::*;
use serde_json::json;

both_stores!(
    events_are_append_only,
    case_files_catch_up_from_the_log,
    command_snapshot_equals_the_full_fold,
);

async fn events_are_append_only(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    app.register(&cw, "450305001001").await;
    let db = nuanxin_infra::Db::connect(&app.db.url, 1).await.unwrap();
    let update = on_pool!(&db, pool => {
        sqlx::query("UPDATE events SET event_type = 'Tampered'").execute(pool).await.map(|_| ())
    });
    assert!(update.is_err(), "UPDATE on events must be rejected");
    let delete = on_pool!(&db, pool => {
        sqlx::query("DELETE FROM events").execute(pool).await.map(|_| ())
    });
    assert!(delete.is_err(), "DELETE on events must be rejected");
    let columns = on_pool!(&db, pool => {
        sqlx::query_as::<_, (i64, String)>("SELECT position, recorded_at || '' FROM events")
            .fetch_all(pool)
            .await
    })
    .unwrap();
    assert_eq!(columns.len(), 1);
    assert!(
        columns[0].0 >= 1,
        "the global position is assigned by the store"
    );
    assert!(!columns[0].1.is_empty(), "recorded_at has a default");
    db.close().await;
    assert_eq!(app.event_count().await, 1);
}

async fn case_files_catch_up_from_the_log(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let note = app
        .post(
            &format!("/api/v1/families/{id}/notes"),
            &cw,
            json!({"text": "first"}),
        )
        .await;
    assert_eq!(note.status, 201);
    let db_handle = app.stop().await;

    // Simulate a crash after an event was committed but before its case
    // file row was written: append an event behind the server's back.
    let db = nuanxin_infra::Db::connect(&db_handle.url, 1).await.unwrap();
    let payload =
        json!({"NoteAdded": {"action_id": uuid::Uuid::new_v4(), "text": "written before a crash"}});
    let metadata = json!({"recorded_by_id": uuid::Uuid::new_v4(), "recorded_by_name": "x",
        "recorded_by_role": "caseworker", "recorded_at": "2026-06-30T03:00:00Z", "request_id": "r"});
    let contact = json!({"ContactAssigned": {"action_id": uuid::Uuid::new_v4(), "role": "village",
        "person": {"id": uuid::Uuid::new_v4(), "name": "Li Si", "phone": "13900139000"},
        "assigned_on": "2026-01-12"}});
    for (sequence, event_type, payload) in
        [(3, "NoteAdded", &payload), (4, "ContactAssigned", &contact)]
    {
        on_pool!(&db, pool => {
            sqlx::query("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                         VALUES ('FamilyCase', $1, $2, $3, '1', $4, $5)")
                .bind(&id)
                .bind(sequence)
                .bind(event_type)
                .bind(payload)
                .bind(&metadata)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .unwrap();
    }
    db.close().await;

    let store = if matches!(db_handle.url, nuanxin_infra::DatabaseUrl::Sqlite(_)) {
        Store::Sqlite
    } else {
        Store::Postgres
    };
    let app = TestApp::start(store, db_handle, |_| {}).await;
    let file = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert_eq!(file.body["version"], 4);
    let notes: Vec<_> = file.body["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(notes, vec!["first", "written before a crash"]);
    // The lists caught up too: the key family's new contact is overdue
    // since 01-12 + 7 days.
    let overdue = app.get("/api/v1/overdue-visits?on=2026-06-30", &cw).await;
    assert_eq!(
        overdue.body["items"][0]["family_id"],
        id.as_str(),
        "{}",
        overdue.text
    );
    assert_eq!(overdue.body["items"][0]["due_on"], "2026-01-19");
    let ready = app
        .send(reqwest::Method::GET, "/readyz", None, None, &[])
        .await;
    assert_eq!(ready.body["projection_lag_events"], 0);
}

/// Commands load the case from its case-file row plus the newer events;
/// that must be exactly the fold of the whole stream, also when the row is
/// behind the log.
async fn command_snapshot_equals_the_full_fold(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let p = |s: &str| format!("/api/v1/families/{id}/{s}");
    app.post(&p("contacts"), &cw, contact_body("village", "2026-01-12"))
        .await;
    let visit = app
        .post(
            &p("visits"),
            &cw,
            visit_body("village", "home", "2026-02-01"),
        )
        .await;
    app.post(
        &p("voids"),
        &cw,
        json!({"action_id": visit.body["action_id"], "reason": "typo"}),
    )
    .await;
    app.post(&p("notes"), &cw, json!({"text": "x"})).await;
    let family_id: uuid::Uuid = id.parse().unwrap();

    let mut settings = nuanxin_infra::Settings::new(app.db.url.clone());
    settings.master_key = nuanxin_infra::privacy::MasterKeySource::File(app.db.master_key_file());
    let services = nuanxin_infra::Nuanxin::open(&settings).await.unwrap();
    let db = services.db().clone();
    let compare = |label: &'static str| {
        let services = &services;
        async move {
            let (version, case) = services.commands.load_for_command(family_id).await.unwrap();
            let folded = services.core.fold(family_id).await.unwrap();
            assert_eq!(version, folded.version, "{label}");
            assert_eq!(
                serde_json::to_value(&case).unwrap(),
                serde_json::to_value(&folded.case).unwrap(),
                "{label}"
            );
        }
    };
    compare("row up to date").await;

    // An event the case-file row does not reflect yet.
    let note = json!({"NoteAdded": {"action_id": uuid::Uuid::new_v4(), "text": "behind the row"}});
    let metadata = json!({"recorded_by_id": uuid::Uuid::new_v4(), "recorded_by_name": "x",
        "recorded_by_role": "caseworker", "recorded_at": "2026-06-30T03:00:00Z", "request_id": "r"});
    on_pool!(&db, pool => {
        sqlx::query("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                     VALUES ('FamilyCase', $1, 6, 'NoteAdded', '1', $2, $3)")
            .bind(&id)
            .bind(&note)
            .bind(&metadata)
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    compare("row behind the log").await;
    let (version, case) = services.commands.load_for_command(family_id).await.unwrap();
    assert_eq!(version, 6);
    assert_eq!(case.notes.len(), 2);
    // A command finds its place taken by the event the row does not reflect,
    // reloads, and lands after it.
    let r = app.post(&p("notes"), &cw, json!({"text": "after"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["version"], 7);
    let file = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(file.body["version"], 7);
    assert_eq!(file.body["notes"].as_array().unwrap().len(), 3);
}
