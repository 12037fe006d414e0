//! What an outside probe found (issue 10), each a regression test on both
//! stores: a NUL in text, content after the JSON body, 405 answers, unknown
//! keys echoed in 422 details, implausible data, slow clients.

use nuanxin_tests::*;
use reqwest::Method;
use serde_json::json;

both_stores!(
    nul_in_text_is_refused_alike,
    content_after_the_body_is_refused,
    wrong_method_is_a_problem_after_authentication,
    unknown_keys_are_not_echoed,
);

/// PostgreSQL cannot store a NUL (`\u0000`) in text or JSON; it used to
/// answer 500 there and store it on SQLite. Both stores now refuse it as a
/// field error and append nothing.
async fn nul_in_text_is_refused_alike(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let base = app.event_count().await;
    app.post(
        &format!("/api/v1/families/{id}/notes"),
        &cw,
        json!({"text": "before\u{0}after"}),
    )
    .await
    .assert_field_error("text");
    let mut family = family_body("450305001001");
    family["members"][1]["name"] = json!("Li\u{0}Mei");
    family["address"] = json!("No. 3\u{0}");
    let r = app.post("/api/v1/families", &cw, family).await;
    r.assert_field_error("members[1].name");
    r.assert_field_error("address");
    app.post(
        &format!("/api/v1/families/{id}/visits"),
        &cw,
        json!({"role": "village", "mode": "home", "visited_on": "2026-02-01",
               "findings": "well", "needs": ["a\u{0}"]}),
    )
    .await
    .assert_field_error("needs[0]");
    app.post(
        "/api/v1/users",
        ADMIN_TOKEN,
        json!({"name": "x\u{0}", "role": "caseworker", "scope": "45"}),
    )
    .await
    .assert_field_error("name");
    // The raw escape, as a client would send it.
    app.post_raw(
        &format!("/api/v1/families/{id}/notes"),
        &cw,
        r#"{"text": "\u0000"}"#,
    )
    .await
    .assert_field_error("text");
    assert_eq!(app.event_count().await, base, "nothing appended");
    // Line breaks and tabs are text, not control characters to refuse.
    let ok = app
        .post(
            &format!("/api/v1/families/{id}/notes"),
            &cw,
            json!({"text": "line one\r\nline\ttwo"}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}

/// `{"text":"first"}{"text":"second"}` used to record the first and drop
/// the second silently.
async fn content_after_the_body_is_refused(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let base = app.event_count().await;
    let notes = format!("/api/v1/families/{id}/notes");
    for body in [
        r#"{"text":"first"}{"text":"second"}"#,
        r#"{"text":"x"} xyz"#,
        r#"{"text":"x"}]"#,
        "{\"text\":\"x\"}\n{\"text\":\"y\"}\n",
    ] {
        let r = app.post_raw(&notes, &cw, body).await;
        r.assert_problem(400);
        assert!(
            r.body["detail"].as_str().unwrap().contains("after"),
            "{}",
            r.text
        );
    }
    app.post_raw("/api/v1/alerts/scan", ADMIN_TOKEN, r#"{} {}"#)
        .await
        .assert_problem(400);
    assert_eq!(app.event_count().await, base, "nothing appended");
    // Whitespace after the value is still fine.
    let r = app.post_raw(&notes, &cw, "{\"text\":\"x\"}\r\n  \n").await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// A known path with a method it does not take: 405 problem+json with
/// `Allow` — but under `/api/v1` only for an authenticated caller.
async fn wrong_method_is_a_problem_after_authentication(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let anonymous = app
        .send(Method::DELETE, "/api/v1/families", None, None, &[])
        .await;
    anonymous.assert_problem(401);
    assert!(
        anonymous.headers.get("allow").is_none(),
        "{:?}",
        anonymous.headers
    );
    app.send(Method::PUT, "/api/v1/families", Some("nx_wrong"), None, &[])
        .await
        .assert_problem(401);

    let r = app
        .send(Method::DELETE, "/api/v1/families", Some(&cw), None, &[])
        .await;
    r.assert_problem(405);
    let allow = r.headers["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");

    let id = uuid::Uuid::new_v4();
    app.send(
        Method::GET,
        &format!("/api/v1/families/{id}/visits"),
        Some(&cw),
        None,
        &[],
    )
    .await
    .assert_problem(405);
    // Operations endpoints take no token: 405 straight away.
    let r = app.send(Method::POST, "/healthz", None, None, &[]).await;
    r.assert_problem(405);
    assert_eq!(r.headers["allow"], "GET,HEAD");
}

/// An unknown key can itself be personal data (an ID number sent as a
/// key): the 422 names where it is, never the key.
async fn unknown_keys_are_not_echoed(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let secret = "45030519500301001X";
    let mut family = family_body("450305001001");
    family[secret] = json!("x");
    let r = app.post("/api/v1/families", &cw, family).await;
    r.assert_field_error("body");
    assert!(!r.text.contains(secret), "{}", r.text);
    assert!(
        r.text.contains("village_code"),
        "lists the allowed keys: {}",
        r.text
    );

    let mut family = family_body("450305001001");
    family["members"][0][secret] = json!(true);
    let r = app.post("/api/v1/families", &cw, family).await;
    r.assert_field_error("members[0]");
    assert!(!r.text.contains(secret), "{}", r.text);

    let r = app
        .post_raw(
            "/api/v1/users",
            ADMIN_TOKEN,
            format!(r#"{{"name":"a","role":"caseworker","scope":"45","{secret}":1}}"#),
        )
        .await;
    r.assert_field_error("body");
    assert!(!r.text.contains(secret), "{}", r.text);
    assert_eq!(app.event_count().await, 0);
}
