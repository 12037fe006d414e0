//! Bad input: every case answers problem+json with the right status and
//! appends nothing.

use nuanxin_tests::*;
use reqwest::Method;
use serde_json::json;

both_stores!(
    malformed_and_invalid_bodies,
    state_rules_answer_conflict,
    auth_and_size_limits,
);

async fn malformed_and_invalid_bodies(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let base = app.event_count().await;
    let fam = "/api/v1/families";

    app.post_raw(fam, &cw, "{\"category\": ")
        .await
        .assert_problem(400);
    app.post_raw(fam, &cw, "not json").await.assert_problem(400);

    let with = |key: &str, value: serde_json::Value| {
        let mut b = family_body("450305001001");
        b[key] = value;
        b
    };
    let cases = [
        (with("village_code", json!("4503050010")), "village_code"),
        (with("village_code", json!("45030500100x")), "village_code"),
        (with("category", json!("orphan")), "category"),
        (with("registered_on", json!("2026-13-01")), "registered_on"),
        (with("registered_on", json!("01/02/2026")), "registered_on"),
        (with("address", json!("   ")), "address"),
        (with("unexpected", json!(1)), "body"),
        (
            with(
                "members",
                json!([{"name": "A", "sex": "male", "birth_date": "1950-01-01", "id_number": "110105194912310021"}]),
            ),
            "members[0].id_number",
        ),
        (
            with(
                "members",
                json!([{"name": "A", "sex": "other", "birth_date": "1950-01-01"}]),
            ),
            "members[0].sex",
        ),
        (
            with(
                "members",
                json!([{"name": "A", "sex": "male", "birth_date": "1950-01-01", "self_care": "fine"}]),
            ),
            "members[0].self_care",
        ),
        (
            with(
                "members",
                json!([{"name": "A", "sex": "male", "birth_date": "1950-01-01", "phone": "call me"}]),
            ),
            "members[0].phone",
        ),
        (with("members", json!([])), "members"),
        (with("category", json!(5)), "category"),
    ];
    for (body, field) in cases {
        let r = app.post(fam, &cw, body).await;
        r.assert_field_error(field);
        assert!(
            !r.text.contains("11010519491231002"),
            "no ID number echoed: {}",
            r.text
        );
    }
    let mut missing = family_body("450305001001");
    missing.as_object_mut().unwrap().remove("address");
    app.post(fam, &cw, missing)
        .await
        .assert_field_error("address");

    let p = |s: &str| format!("/api/v1/families/{id}/{s}");
    app.post(&p("contacts"), &cw, json!({"role": "county", "person": {"id": uuid::Uuid::new_v4(), "name": "x", "phone": "13900139000"}, "assigned_on": "2026-02-01"}))
        .await
        .assert_field_error("role");
    app.post(&p("contacts"), &cw, json!({"role": "village", "person": {"id": "nope", "name": "x", "phone": "13900139000"}, "assigned_on": "2026-02-01"}))
        .await
        .assert_field_error("person.id");
    app.post(
        &p("visits"),
        &cw,
        json!({"role": "village", "mode": "letter", "visited_on": "2026-02-01", "findings": "x"}),
    )
    .await
    .assert_field_error("mode");
    app.post(&p("assistance"), &cw, json!({"area": "medical", "amount_fen": -5, "provided_on": "2026-02-01", "description": "x"}))
        .await
        .assert_field_error("amount_fen");
    app.post(&p("assistance"), &cw, json!({"area": "medical", "amount_fen": 1.5, "provided_on": "2026-02-01", "description": "x"}))
        .await
        .assert_field_error("amount_fen");
    app.post(
        &p("emergencies"),
        &cw,
        json!({"occurred_at": "yesterday", "description": "x", "responder": "y", "outcome": "z"}),
    )
    .await
    .assert_field_error("occurred_at");
    app.post(
        &p("voids"),
        &cw,
        json!({"action_id": "not-a-uuid", "reason": "x"}),
    )
    .await
    .assert_field_error("action_id");
    app.post(&p("notes"), &cw, json!({"text": "x", "extra": true}))
        .await
        .assert_field_error("body");
    assert_eq!(app.event_count().await, base, "bad input appended events");
}

async fn state_rules_answer_conflict(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let p = |s: &str| format!("/api/v1/families/{id}/{s}");
    let base = app.event_count().await;

    // Dated before registration (2026-01-10) or after today (2026-06-30).
    app.post(&p("contacts"), &cw, contact_body("village", "2026-01-09"))
        .await
        .assert_problem(409);
    app.post(&p("contacts"), &cw, contact_body("village", "2026-07-01"))
        .await
        .assert_problem(409);
    // A visit or release for a role without a contact.
    app.post(
        &p("visits"),
        &cw,
        visit_body("village", "home", "2026-02-01"),
    )
    .await
    .assert_problem(409);
    app.post(
        &p("contacts/township/release"),
        &cw,
        json!({"released_on": "2026-02-01", "reason": "x"}),
    )
    .await
    .assert_problem(409);
    // Voiding an unknown action.
    app.post(
        &p("voids"),
        &cw,
        json!({"action_id": uuid::Uuid::new_v4(), "reason": "x"}),
    )
    .await
    .assert_problem(409);
    // Reopening an open case.
    app.post(
        &p("reopen"),
        &cw,
        json!({"on": "2026-02-01", "reason": "x"}),
    )
    .await
    .assert_problem(409);
    assert_eq!(app.event_count().await, base);

    // Void twice.
    let note = app.post(&p("notes"), &cw, json!({"text": "x"})).await.body["action_id"].clone();
    assert_eq!(
        app.post(&p("voids"), &cw, json!({"action_id": note, "reason": "x"}))
            .await
            .status,
        201
    );
    app.post(&p("voids"), &cw, json!({"action_id": note, "reason": "x"}))
        .await
        .assert_problem(409);

    // Everything but reopen on a closed case.
    assert_eq!(
        app.post(
            &p("close"),
            &cw,
            json!({"on": "2026-03-01", "reason": "moved"})
        )
        .await
        .status,
        200
    );
    let closed = app.event_count().await;
    app.post(&p("notes"), &cw, json!({"text": "x"}))
        .await
        .assert_problem(409);
    app.post(&p("contacts"), &cw, contact_body("village", "2026-03-02"))
        .await
        .assert_problem(409);
    assert_eq!(app.event_count().await, closed);
    assert_eq!(
        app.post(
            &p("reopen"),
            &cw,
            json!({"on": "2026-03-05", "reason": "back"})
        )
        .await
        .status,
        200
    );

    // Unknown family and unknown member.
    let unknown = uuid::Uuid::new_v4();
    app.post(
        &format!("/api/v1/families/{unknown}/notes"),
        &cw,
        json!({"text": "x"}),
    )
    .await
    .assert_problem(404);
    app.get(&format!("/api/v1/families/{unknown}"), &cw)
        .await
        .assert_problem(404);
    app.get("/api/v1/families/not-a-uuid", &cw)
        .await
        .assert_problem(404);
    app.post(
        &p(&format!("members/{unknown}/status")),
        &cw,
        json!({"living_alone": true, "effective_on": "2026-03-06"}),
    )
    .await
    .assert_problem(404);
}

async fn auth_and_size_limits(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let sup = app.user("supervisor", "45").await;
    let body = family_body("450305001001");
    let none = app
        .send(Method::POST, "/api/v1/families", None, Some(&body), &[])
        .await;
    none.assert_problem(401);
    app.send(
        Method::POST,
        "/api/v1/families",
        Some("nx_wrong"),
        Some(&body),
        &[],
    )
    .await
    .assert_problem(401);
    app.send(Method::GET, "/api/v1/me", None, None, &[])
        .await
        .assert_problem(401);
    app.post("/api/v1/families", &sup, body)
        .await
        .assert_problem(403);
    let huge = format!("{{\"text\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    app.post_raw("/api/v1/families", &cw, huge)
        .await
        .assert_problem(413);
    app.get("/api/v1/families?limit=0", &cw)
        .await
        .assert_problem(400);
    app.get("/api/v1/families?limit=abc", &cw)
        .await
        .assert_problem(400);
    assert_eq!(app.event_count().await, 0);
}
