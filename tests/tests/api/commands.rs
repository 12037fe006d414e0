//! Recording care actions: the walk-through, versions, idempotency,
//! concurrency and restarts.

use nuanxin_tests::*;
use reqwest::Method;
use serde_json::json;

both_stores!(
    walk_through_records_and_reads_a_case,
    if_match_and_versions,
    idempotency_key_replays_and_survives_restart,
    concurrent_commands_lose_nothing,
    restart_keeps_cases_and_versions,
    every_care_action_is_recorded_and_attributed,
    roles_and_scopes_are_enforced,
);

async fn walk_through_records_and_reads_a_case(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let r = app
        .post("/api/v1/families", &cw, family_body("450305001001"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["version"], 1);
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/api/v1/families/{id}")
    );

    let r = app
        .post(
            &format!("/api/v1/families/{id}/contacts"),
            &cw,
            contact_body("village", "2026-01-12"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], 2);

    let r = app
        .post(
            &format!("/api/v1/families/{id}/visits"),
            &cw,
            visit_body("village", "home", "2026-02-01"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["version"], 3);

    let file = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(file.status, 200, "{}", file.text);
    let f = &file.body;
    assert_eq!(f["id"], id.as_str());
    assert_eq!(f["version"], 3);
    assert_eq!(f["status"], "open");
    assert_eq!(f["category"], "bereaved");
    assert_eq!(f["village_code"], "450305001001");
    assert_eq!(f["registered_on"], "2026-01-10");
    assert_eq!(f["members"][0]["id_number_masked"], "110105********0016");
    assert!(
        !file.text.contains("110105195003010016"),
        "raw ID number leaked"
    );
    assert_eq!(f["members"][1]["self_care"], "semi_dependent");
    assert_eq!(f["contacts"]["village"]["person"]["name"], "Li Si");
    assert_eq!(f["contacts"]["village"]["assigned_on"], "2026-01-12");
    assert!(f["contacts"]["township"].is_null());
    // A semi-dependent parent makes the family key: village interval 7 days.
    assert_eq!(f["key_person"], true);
    assert_eq!(f["key_reasons"], json!(["semi_dependent"]));
    assert_eq!(f["visits"]["village"]["last_on"], "2026-02-01");
    assert_eq!(f["visits"]["village"]["last_home_on"], "2026-02-01");
    assert_eq!(f["visits"]["village"]["next_due_on"], "2026-02-08");
    assert!(f["visits"]["township"]["next_due_on"].is_null());

    let list = app
        .get("/api/v1/families?village_code_prefix=4503", &cw)
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["items"][0]["village_contact_name"], "Li Si");
    assert!(list.body["next_cursor"].is_null());

    let me = app.get("/api/v1/me", &cw).await;
    assert_eq!(me.body["role"], "caseworker");
    assert_eq!(me.body["scope"], "450305");
}

async fn if_match_and_versions(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let path = format!("/api/v1/families/{id}/notes");
    let stale = app
        .send(
            Method::POST,
            &path,
            Some(&cw),
            Some(&json!({"text": "hello"})),
            &[("If-Match", "7")],
        )
        .await;
    stale.assert_problem(409);
    let ok = app
        .send(
            Method::POST,
            &path,
            Some(&cw),
            Some(&json!({"text": "hello"})),
            &[("If-Match", "1")],
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.body["version"], 2);
    assert_eq!(ok.headers["etag"].to_str().unwrap(), "\"2\"");
    let quoted = app
        .send(
            Method::POST,
            &path,
            Some(&cw),
            Some(&json!({"text": "again"})),
            &[("If-Match", "\"2\"")],
        )
        .await;
    assert_eq!(quoted.status, 201, "{}", quoted.text);
    let garbage = app
        .send(
            Method::POST,
            &path,
            Some(&cw),
            Some(&json!({"text": "x"})),
            &[("If-Match", "abc")],
        )
        .await;
    garbage.assert_problem(400);
    assert_eq!(app.event_count().await, 3);
}

async fn idempotency_key_replays_and_survives_restart(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let body = family_body("450305001001");
    let hdr = [("Idempotency-Key", "reg-1")];
    let first = app
        .send(
            Method::POST,
            "/api/v1/families",
            Some(&cw),
            Some(&body),
            &hdr,
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = app
        .send(
            Method::POST,
            "/api/v1/families",
            Some(&cw),
            Some(&body),
            &hdr,
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body, first.body, "a retry answers the first response");
    assert_eq!(app.event_count().await, 1, "a retry appends nothing");

    let mut other = body.clone();
    other["address"] = json!("somewhere else");
    let reused = app
        .send(
            Method::POST,
            "/api/v1/families",
            Some(&cw),
            Some(&other),
            &hdr,
        )
        .await;
    reused.assert_problem(422);

    // Another user may use the same key for their own request.
    let cw2 = app.user("caseworker", "450305").await;
    let theirs = app
        .send(
            Method::POST,
            "/api/v1/families",
            Some(&cw2),
            Some(&body),
            &hdr,
        )
        .await;
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.body["id"], first.body["id"]);

    let app = app.restart().await;
    let after = app
        .send(
            Method::POST,
            "/api/v1/families",
            Some(&cw),
            Some(&body),
            &hdr,
        )
        .await;
    assert_eq!(after.status, 201, "{}", after.text);
    assert_eq!(
        after.body, first.body,
        "idempotency records survive a restart"
    );
    assert_eq!(app.event_count().await, 2);
}

async fn concurrent_commands_lose_nothing(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let id = app.register(&cw, "450305001001").await;
    let path = format!("/api/v1/families/{id}/notes");
    let n = 24;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let client = app.client.clone();
            let url = format!("{}{}", app.base, path);
            let cw = cw.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(cw)
                    .json(&json!({"text": format!("note {i}")}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let ok = statuses.iter().filter(|s| **s == 201).count();
    let file = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(file.body["notes"].as_array().unwrap().len(), ok);
    assert_eq!(file.body["version"], 1 + ok as u64);
    assert_eq!(app.event_count().await, 1 + ok as i64);
    assert_eq!(
        ok, n,
        "every concurrent note lands (serialized per family, retried on conflict)"
    );
}

async fn restart_keeps_cases_and_versions(app: TestApp) {
    let cw = app.user("caseworker", "4503").await;
    let id = app.register(&cw, "450305001001").await;
    app.post(
        &format!("/api/v1/families/{id}/contacts"),
        &cw,
        contact_body("township", "2026-01-11"),
    )
    .await;
    let before = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    let app = app.restart().await;
    let after = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body, before.body);
    // The token and the version survive too.
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/families/{id}/notes"),
            Some(&cw),
            Some(&json!({"text": "after restart"})),
            &[("If-Match", "2")],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["version"], 3);
}

async fn every_care_action_is_recorded_and_attributed(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let id = app.register(&cw, "450305001001").await;
    let file = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    let member = file.body["members"][0]["id"].as_str().unwrap().to_owned();
    let p = |s: &str| format!("/api/v1/families/{id}/{s}");
    let steps: Vec<(String, serde_json::Value, u16)> = vec![
        (p("contacts"), contact_body("village", "2026-01-12"), 200),
        (p("contacts"), contact_body("township", "2026-01-12"), 200),
        (
            p("visits"),
            visit_body("township", "holiday", "2026-02-10"),
            201,
        ),
        (
            p(&format!("members/{member}/status")),
            json!({"living_alone": true, "effective_on": "2026-03-01"}),
            200,
        ),
        (
            p("emergency-contacts"),
            json!({"name": "Niece", "relation": "niece", "phone": "13700137000", "priority": 1}),
            201,
        ),
        (
            p("emergencies"),
            json!({"occurred_at": "2026-04-01T09:30:00+08:00", "description": "fall", "responder": "Li Si", "outcome": "hospital"}),
            201,
        ),
        (
            p("elderly-care"),
            json!({"member_id": member, "service": "home_care", "provider": "Town centre", "from": "2026-04-05"}),
            201,
        ),
        (
            p("assistance"),
            json!({"area": "medical", "amount_fen": 50000, "provided_on": "2026-04-06", "description": "hospital bill"}),
            201,
        ),
        (p("notes"), json!({"text": "calm"}), 201),
        (
            p("contacts/village/release"),
            json!({"released_on": "2026-05-01", "reason": "moved job"}),
            200,
        ),
        (
            p("transfer"),
            json!({"village_code": "450305001002", "transferred_on": "2026-05-02", "reason": "moved"}),
            200,
        ),
        (
            p("close"),
            json!({"on": "2026-06-01", "reason": "moved away"}),
            200,
        ),
        (
            p("reopen"),
            json!({"on": "2026-06-02", "reason": "came back"}),
            200,
        ),
    ];
    for (i, (path, body, status)) in steps.iter().enumerate() {
        let r = app.post(path, &cw, body.clone()).await;
        assert_eq!(r.status.as_u16(), *status, "{path}: {}", r.text);
        assert_eq!(r.body["version"], 2 + i as u64, "{path}");
    }
    let note_action = app
        .post(&p("notes"), &cw, json!({"text": "typo"}))
        .await
        .body["action_id"]
        .clone();
    let void = app
        .post(
            &p("voids"),
            &cw,
            json!({"action_id": note_action, "reason": "wrong family"}),
        )
        .await;
    assert_eq!(void.status, 201, "{}", void.text);

    let f = app.get(&format!("/api/v1/families/{id}"), &cw).await.body;
    assert_eq!(f["status"], "open");
    assert_eq!(f["village_code"], "450305001002");
    assert!(f["contacts"]["village"].is_null() && f["contacts"]["township"].is_null());
    assert_eq!(f["members"][0]["living_alone"], true);
    assert_eq!(f["emergency_contacts"][0]["relation"], "niece");
    assert_eq!(f["elderly_care"][0]["service"], "home_care");
    assert_eq!(f["assistance"][0]["amount_fen"], 50000);
    assert_eq!(
        f["notes"].as_array().unwrap().len(),
        1,
        "the voided note is gone"
    );

    let h = app
        .get(&format!("/api/v1/families/{id}/history"), &cw)
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    let items = h.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 16);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["sequence"], i as u64 + 1);
        assert_eq!(item["recorded_by"]["role"], "caseworker");
        assert!(item["recorded_at"].is_string());
        assert!(item["action_id"].is_string());
    }
    assert_eq!(items[14]["voided_by"], items[15]["action_id"]);
    assert!(
        !h.text.contains("110105195003010016"),
        "history must mask ID numbers"
    );
}

async fn roles_and_scopes_are_enforced(app: TestApp) {
    let cw = app.user("caseworker", "450305001").await;
    let other = app.user("caseworker", "450305002").await;
    let sup = app.user("supervisor", "4503").await;
    let far_sup = app.user("supervisor", "4501").await;
    let id = app.register(&cw, "450305001001").await;

    // A caseworker of another village cannot see or touch the family: 404.
    app.get(&format!("/api/v1/families/{id}"), &other)
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/families/{id}/history"), &other)
        .await
        .assert_problem(404);
    app.post(
        &format!("/api/v1/families/{id}/notes"),
        &other,
        json!({"text": "x"}),
    )
    .await
    .assert_problem(404);
    let list = app.get("/api/v1/families", &other).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
    // Registering outside one's scope: 403.
    app.post("/api/v1/families", &other, family_body("450305001001"))
        .await
        .assert_problem(403);
    // A supervisor reads within scope but cannot record: 403.
    assert_eq!(
        app.get(&format!("/api/v1/families/{id}"), &sup)
            .await
            .status,
        200
    );
    app.post(
        &format!("/api/v1/families/{id}/notes"),
        &sup,
        json!({"text": "x"}),
    )
    .await
    .assert_problem(403);
    let far = app.get(&format!("/api/v1/families/{id}"), &far_sup).await;
    far.assert_problem(404);
    assert!(!far.text.contains("450305001001"));
    // Only admins create users.
    app.post(
        "/api/v1/users",
        &sup,
        json!({"name": "x", "role": "caseworker", "scope": "4503"}),
    )
    .await
    .assert_problem(403);
    assert_eq!(app.event_count().await, 1);
}
