//! The guarantees of the group-commit write path: a key records once however
//! many copies race; a conflict inside a batch fails that command alone; a
//! retry of a command that succeeded is answered with its first outcome even
//! after the case moved on; a read right after a write sees it.

use std::sync::Arc;

use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_infra::append::{Appended, Appender};
use nuanxin_infra::on_pool;
use nuanxin_infra::store::events::NewEvent;
use nuanxin_infra::store::person_keys::NewKey;
use nuanxin_tests::*;
use reqwest::Method;
use serde_json::json;

both_stores!(
    thirty_two_racing_copies_of_one_key_record_once,
    a_taken_place_in_a_batch_fails_that_event_alone,
    an_event_sealed_with_a_key_that_lost_stays_out,
    a_retry_after_the_case_moved_on_replays_the_first_answer,
    a_read_right_after_a_write_sees_it,
);

async fn thirty_two_racing_copies_of_one_key_record_once(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let id = app.register(&cw, "450305001001").await;
    let app = Arc::new(app);
    let before = app.event_count().await;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (app, cw, id) = (app.clone(), cw.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            app.send(
                Method::POST,
                &format!("/api/v1/families/{id}/notes"),
                Some(&cw),
                Some(&json!({"text": "one note"})),
                &[("Idempotency-Key", "same-key")],
            )
            .await
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 201, "{}", r.text);
        bodies.push(r.body);
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every copy gets the first answer"
    );
    assert_eq!(app.event_count().await, before + 1, "recorded once");
    let file = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(file.body["notes"].as_array().unwrap().len(), 1);
}

fn event(family: &str, sequence: u64, text: &str) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        aggregate_type: "FamilyCase",
        aggregate_id: family.to_owned(),
        sequence,
        event_type: "NoteAdded".into(),
        event_version: "1".into(),
        payload: json!({"NoteAdded": {"action_id": uuid::Uuid::now_v7(), "text": text}}),
        metadata: json!({"recorded_by_id": uuid::Uuid::new_v4(), "recorded_by_name": "t",
            "recorded_by_role": "caseworker", "recorded_at": "2026-06-30T04:00:00Z",
            "request_id": "r"}),
    }
}

/// `n` families registered through the API, and a group commit of this
/// test's own on the app's store, to submit events to directly.
async fn families_and_appender(
    app: &TestApp,
    n: usize,
) -> (Vec<String>, nuanxin_infra::Db, Appender) {
    let cw = app.user("caseworker", "450305").await;
    let mut families = Vec::new();
    for i in 0..n {
        families.push(app.register(&cw, &format!("450305001{:03}", i + 1)).await);
    }
    let settings = nuanxin_infra::Settings::new(app.db.url.clone());
    let db = nuanxin_infra::Db::connect(&settings.database_url, 4)
        .await
        .unwrap();
    let appender = Appender::start(db.clone());
    (families, db, appender)
}

/// Events of several families submitted at once (one batch, or a few): the
/// one whose place in its stream is taken is skipped alone.
async fn a_taken_place_in_a_batch_fails_that_event_alone(app: TestApp) {
    let (families, db, appender) = families_and_appender(&app, 8).await;
    let mut tasks = Vec::new();
    for (i, family) in families.iter().enumerate() {
        // Family 3's event claims sequence 1, which its registration holds.
        let sequence = if i == 3 { 1 } else { 2 };
        let (appender, e) = (appender.clone(), event(family, sequence, "batched"));
        tasks.push(tokio::spawn(async move {
            appender.event(e, None, Vec::new()).await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().expect("no store error"));
    }
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if i == 3 {
            Appended::Taken
        } else {
            Appended::Done
        };
        assert_eq!(*outcome, expected, "family {i}");
    }
    assert_eq!(app.event_count().await, 8 + 7);
    let _ = FamilyCase::default();
    db.close().await;
}

/// A new person's key goes into the store with the first event sealed with
/// it, in that event's group commit. Two events that meet the same new
/// person at once (one contact person assigned to two families) each bring
/// a key of their own: the store keeps one, and the event sealed with the
/// other stays out, `KeyTaken`, for its command to seal again — whether
/// the two share a batch or not. A new key for a person who has one
/// already keeps its event out too.
async fn an_event_sealed_with_a_key_that_lost_stays_out(app: TestApp) {
    let (families, db, appender) = families_and_appender(&app, 3).await;
    let person = uuid::Uuid::new_v4();
    let key = |byte: u8| NewKey {
        subject: person,
        kind: "contact_person",
        family: None,
        wrapped: vec![byte; 60],
        master_key_id: "test".into(),
    };
    let mut tasks = Vec::new();
    for (i, family) in families.iter().take(2).enumerate() {
        let (appender, e, k) = (appender.clone(), event(family, 2, "met"), key(i as u8));
        tasks.push(tokio::spawn(async move {
            appender.event(e, None, vec![k]).await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().expect("no store error"));
    }
    let won = outcomes
        .iter()
        .position(|o| *o == Appended::Done)
        .expect("one of the two went in");
    assert_eq!(outcomes[1 - won], Appended::KeyTaken, "{outcomes:?}");
    let stored: Vec<Vec<u8>> = on_pool!(&db, pool => {
        sqlx::query_scalar("SELECT wrapped FROM person_keys WHERE subject = $1")
            .bind(person.to_string())
            .fetch_all(pool).await.unwrap()
    });
    assert_eq!(stored, vec![vec![won as u8; 60]], "the winner's key, once");

    // Later, a third family's event with yet another key for that person.
    let late = appender
        .event(event(&families[2], 2, "late"), None, vec![key(9)])
        .await
        .expect("no store error");
    assert_eq!(late, Appended::KeyTaken);
    assert_eq!(app.event_count().await, 3 + 1, "only the winner's event");
    db.close().await;
}

/// A retry of a command that succeeded, sent after the case was closed,
/// is answered with the first outcome — not with "the case is closed".
async fn a_retry_after_the_case_moved_on_replays_the_first_answer(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let id = app.register(&cw, "450305001001").await;
    let note = |key: &'static str| {
        let (app, cw, id) = (&app, cw.clone(), id.clone());
        async move {
            app.send(
                Method::POST,
                &format!("/api/v1/families/{id}/notes"),
                Some(&cw),
                Some(&json!({"text": "before closing"})),
                &[("Idempotency-Key", key), ("If-Match", "1")],
            )
            .await
        }
    };
    let first = note("k1").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let r = app
        .post(
            &format!("/api/v1/families/{id}/close"),
            &cw,
            json!({"on": "2026-06-30", "reason": "moved away"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let retry = note("k1").await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    // A new key on the closed case is refused as before.
    note("k2").await.assert_problem(409);
}

async fn a_read_right_after_a_write_sees_it(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let id = app.register(&cw, "450305001001").await;
    for i in 0..20 {
        let r = app
            .post(
                &format!("/api/v1/families/{id}/notes"),
                &cw,
                json!({"text": format!("note {i}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let file = app.get(&format!("/api/v1/families/{id}"), &cw).await;
        assert_eq!(file.body["version"], r.body["version"]);
        assert_eq!(file.body["notes"].as_array().unwrap().len(), i + 1);
    }
}
