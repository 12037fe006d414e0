//! Care insurance on a family, as a caseworker records it: an enrolment
//! with the family's consent, a claim, its decision, a withdrawal — each
//! shown in the case file and the history — and every refusal the rules
//! call for (no consent, a claim on a withdrawn enrolment, a decision
//! twice, …), each changing nothing. Voids undo each step.

use nuanxin_tests::*;
use serde_json::{json, Value};

both_stores!(
    an_enrolment_is_claimed_decided_and_withdrawn,
    refusals_change_nothing,
    every_step_can_be_voided,
);

/// A caseworker of the county and a family of theirs; its member ids
/// (father, mother).
async fn family(app: &TestApp) -> (String, String, String, String) {
    let cw = app.user("caseworker", "450305").await;
    let id = app.register(&cw, "450305001001").await;
    let file = app.get(&format!("/api/v1/families/{id}"), &cw).await;
    let members = file.body["members"].as_array().unwrap();
    let member = |i: usize| members[i]["id"].as_str().unwrap().to_owned();
    (cw, id, member(0), member(1))
}

fn enrolment(member: &str) -> Value {
    json!({
        "member_id": member, "product": "计生家庭关爱保险", "policy_year": 2026,
        "premium_fen": 5000, "paid_by": "association",
        "consent": {"given_on": "2026-02-01", "explained_by": "计生专干 张敏"}
    })
}

fn claim(enrolment: &str, occurred_on: &str) -> Value {
    json!({"enrolment_id": enrolment, "cause": "hospitalisation", "occurred_on": occurred_on,
           "filed_on": "2026-04-20", "claimed_fen": 300000})
}

async fn post_ok(app: &TestApp, token: &str, path: &str, body: Value, status: u16) -> Value {
    let r = app.post(path, token, body).await;
    assert_eq!(r.status.as_u16(), status, "{path}: {}", r.text);
    r.body
}

async fn case_file(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/families/{id}"), token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn an_enrolment_is_claimed_decided_and_withdrawn(app: TestApp) {
    let (cw, id, father, _) = family(&app).await;
    let base = format!("/api/v1/families/{id}/insurance");
    let r = post_ok(
        &app,
        &cw,
        &format!("{base}/enrolments"),
        enrolment(&father),
        201,
    )
    .await;
    let enrolment_id = r["action_id"].as_str().unwrap().to_owned();
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["version"], 2);

    let file = case_file(&app, &cw, &id).await;
    let e = &file["insurance"]["enrolments"][0];
    assert_eq!(e["id"], enrolment_id.as_str());
    assert_eq!(e["member_id"], father.as_str());
    assert_eq!(e["policy_year"], 2026);
    assert_eq!(e["premium_fen"], 5000);
    assert_eq!(e["paid_by"], "association");
    assert_eq!(e["consent"]["given_on"], "2026-02-01");
    assert_eq!(e["consent"]["explained_by"], "计生专干 张敏");
    assert_eq!(e["status"], "in_force");
    assert_eq!(e["in_force"], true);

    let r = post_ok(
        &app,
        &cw,
        &format!("{base}/claims"),
        claim(&enrolment_id, "2026-04-03"),
        201,
    )
    .await;
    let claim_id = r["action_id"].as_str().unwrap().to_owned();
    let decision = format!("{base}/claims/{claim_id}/decision");
    post_ok(
        &app,
        &cw,
        &decision,
        json!({"decided_on": "2026-05-10", "outcome": "paid", "paid_fen": 250000}),
        200,
    )
    .await;
    let file = case_file(&app, &cw, &id).await;
    let c = &file["insurance"]["claims"][0];
    assert_eq!(c["id"], claim_id.as_str());
    assert_eq!(c["enrolment_id"], enrolment_id.as_str());
    assert_eq!(c["member_id"], father.as_str());
    assert_eq!(c["cause"], "hospitalisation");
    assert_eq!(c["claimed_fen"], 300000);
    assert_eq!(c["status"], "paid");
    assert_eq!(c["paid_fen"], 250000);
    assert_eq!(c["decided_on"], "2026-05-10");

    post_ok(
        &app,
        &cw,
        &format!("{base}/withdrawals"),
        json!({"enrolment_id": enrolment_id, "on": "2026-06-01", "reason": "家属决定不再参保"}),
        200,
    )
    .await;
    let file = case_file(&app, &cw, &id).await;
    let e = &file["insurance"]["enrolments"][0];
    assert_eq!(e["status"], "withdrawn");
    assert_eq!(e["in_force"], false);
    assert_eq!(e["withdrawn_on"], "2026-06-01");
    assert_eq!(file["version"], 5);

    // The history shows every step, in order.
    let h = app
        .get(&format!("/api/v1/families/{id}/history"), &cw)
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    let types: Vec<&str> = h.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "FamilyRegistered",
            "InsuranceEnrolled",
            "InsuranceClaimFiled",
            "InsuranceClaimDecided",
            "InsuranceWithdrawn"
        ]
    );

    // A supervisor reads the cover; the claim's occurrence before the
    // withdrawal could still be claimed after it.
    let sup = app.user("supervisor", "4503").await;
    assert_eq!(
        case_file(&app, &sup, &id).await["insurance"]["claims"][0]["status"],
        "paid"
    );
    post_ok(
        &app,
        &cw,
        &format!("{base}/claims"),
        json!({"enrolment_id": enrolment_id, "cause": "accident", "occurred_on": "2026-05-31",
               "filed_on": "2026-06-20", "claimed_fen": 1000}),
        201,
    )
    .await;
}

async fn refusals_change_nothing(app: TestApp) {
    let (cw, id, father, mother) = family(&app).await;
    let base = format!("/api/v1/families/{id}/insurance");
    let enrolments = format!("{base}/enrolments");
    let before = app.event_count().await;

    // No consent: insurance is voluntary.
    let mut no_consent = enrolment(&father);
    no_consent.as_object_mut().unwrap().remove("consent");
    app.post(&enrolments, &cw, no_consent)
        .await
        .assert_field_error("consent");
    let mut bad = enrolment(&father);
    bad["consent"]["given_on"] = json!("2027-01-01");
    bad["policy_year"] = json!(2026);
    app.post(&enrolments, &cw, bad).await.assert_problem(409);
    let mut late = enrolment(&father);
    late["policy_year"] = json!(2025);
    app.post(&enrolments, &cw, late)
        .await
        .assert_field_error("consent.given_on");
    let mut early = enrolment(&father);
    early["consent"]["given_on"] = json!("2026-01-09");
    app.post(&enrolments, &cw, early).await.assert_problem(409);
    app.post(
        &enrolments,
        &cw,
        enrolment(&uuid::Uuid::new_v4().to_string()),
    )
    .await
    .assert_problem(404);
    let mut payer = enrolment(&father);
    payer["paid_by"] = json!("employer");
    payer["premium_fen"] = json!(-1);
    let r = app.post(&enrolments, &cw, payer).await;
    r.assert_field_error("paid_by")
        .assert_field_error("premium_fen");
    let sup = app.user("supervisor", "450305").await;
    app.post(&enrolments, &sup, enrolment(&father))
        .await
        .assert_problem(403);
    let elsewhere = app.user("caseworker", "450306").await;
    app.post(&enrolments, &elsewhere, enrolment(&father))
        .await
        .assert_problem(404);
    assert_eq!(app.event_count().await, before, "refusals append nothing");

    // One enrolment per member, product and year.
    let r = post_ok(&app, &cw, &enrolments, enrolment(&father), 201).await;
    let enrolment_id = r["action_id"].as_str().unwrap().to_owned();
    app.post(&enrolments, &cw, enrolment(&father))
        .await
        .assert_problem(409);
    let other = post_ok(&app, &cw, &enrolments, enrolment(&mother), 201).await;
    let mother_enrolment = other["action_id"].as_str().unwrap().to_owned();

    // Claims: on no enrolment (404, like an unknown member), outside the policy year.
    let claims = format!("{base}/claims");
    app.post(
        &claims,
        &cw,
        claim(&uuid::Uuid::new_v4().to_string(), "2026-04-03"),
    )
    .await
    .assert_problem(404);
    app.post(&claims, &cw, claim(&enrolment_id, "2025-12-31"))
        .await
        .assert_field_error("occurred_on");

    // Decisions: once, at most the amount claimed, the outcome's fields.
    let r = post_ok(&app, &cw, &claims, claim(&enrolment_id, "2026-04-03"), 201).await;
    let claim_id = r["action_id"].as_str().unwrap().to_owned();
    let decision = format!("{base}/claims/{claim_id}/decision");
    app.post(
        &decision,
        &cw,
        json!({"decided_on": "2026-05-10", "outcome": "paid", "paid_fen": 300001}),
    )
    .await
    .assert_field_error("paid_fen");
    app.post(
        &decision,
        &cw,
        json!({"decided_on": "2026-05-10", "outcome": "paid"}),
    )
    .await
    .assert_field_error("paid_fen");
    app.post(
        &decision,
        &cw,
        json!({"decided_on": "2026-05-10", "outcome": "rejected"}),
    )
    .await
    .assert_field_error("reason");
    app.post(
        &decision,
        &cw,
        json!({"decided_on": "2026-05-10", "outcome": "maybe"}),
    )
    .await
    .assert_field_error("outcome");
    app.post(
        &format!("{base}/claims/{}/decision", uuid::Uuid::new_v4()),
        &cw,
        json!({"decided_on": "2026-05-10", "outcome": "rejected", "reason": "x"}),
    )
    .await
    .assert_problem(404);
    post_ok(
        &app,
        &cw,
        &decision,
        json!({"decided_on": "2026-05-10", "outcome": "rejected", "reason": "不在保险责任范围"}),
        200,
    )
    .await;
    app.post(
        &decision,
        &cw,
        json!({"decided_on": "2026-05-11", "outcome": "paid", "paid_fen": 1}),
    )
    .await
    .assert_problem(409);
    let file = case_file(&app, &cw, &id).await;
    assert_eq!(file["insurance"]["claims"][0]["status"], "rejected");
    assert_eq!(
        file["insurance"]["claims"][0]["rejection_reason"],
        "不在保险责任范围"
    );

    // A claim on a withdrawn enrolment; a second withdrawal.
    let withdrawals = format!("{base}/withdrawals");
    let withdraw = json!({"enrolment_id": mother_enrolment, "on": "2026-04-01", "reason": "x"});
    post_ok(&app, &cw, &withdrawals, withdraw.clone(), 200).await;
    app.post(&withdrawals, &cw, withdraw)
        .await
        .assert_problem(409);
    app.post(&claims, &cw, claim(&mother_enrolment, "2026-04-03"))
        .await
        .assert_problem(409);
    app.post(
        &withdrawals,
        &cw,
        json!({"enrolment_id": uuid::Uuid::new_v4(), "on": "2026-04-01", "reason": "x"}),
    )
    .await
    .assert_problem(404);
    assert_eq!(
        case_file(&app, &cw, &id).await["version"],
        6,
        "only the five accepted steps were recorded"
    );
}

async fn every_step_can_be_voided(app: TestApp) {
    let (cw, id, father, _) = family(&app).await;
    let base = format!("/api/v1/families/{id}/insurance");
    let voids = format!("/api/v1/families/{id}/voids");
    let void = |action: &str| json!({"action_id": action, "reason": "recorded by mistake"});
    let r = post_ok(
        &app,
        &cw,
        &format!("{base}/enrolments"),
        enrolment(&father),
        201,
    )
    .await;
    let enrolment_id = r["action_id"].as_str().unwrap().to_owned();
    let r = post_ok(
        &app,
        &cw,
        &format!("{base}/claims"),
        claim(&enrolment_id, "2026-04-03"),
        201,
    )
    .await;
    let claim_id = r["action_id"].as_str().unwrap().to_owned();
    let decision = format!("{base}/claims/{claim_id}/decision");
    let r = post_ok(
        &app,
        &cw,
        &decision,
        json!({"decided_on": "2026-05-10", "outcome": "paid", "paid_fen": 1000}),
        200,
    )
    .await;
    let decision_id = r["action_id"].as_str().unwrap().to_owned();

    // A decision voided: the claim is pending again and can be decided anew.
    post_ok(&app, &cw, &voids, void(&decision_id), 201).await;
    let file = case_file(&app, &cw, &id).await;
    assert_eq!(file["insurance"]["claims"][0]["status"], "pending");
    post_ok(
        &app,
        &cw,
        &decision,
        json!({"decided_on": "2026-05-12", "outcome": "paid", "paid_fen": 2000}),
        200,
    )
    .await;

    // An enrolment with claims cannot be voided; without them it can.
    app.post(&voids, &cw, void(&enrolment_id))
        .await
        .assert_problem(409);
    post_ok(&app, &cw, &voids, void(&claim_id), 201).await;
    assert!(case_file(&app, &cw, &id).await["insurance"]["claims"]
        .as_array()
        .unwrap()
        .is_empty());

    // A withdrawal voided: the cover is in force again.
    let r = post_ok(
        &app,
        &cw,
        &format!("{base}/withdrawals"),
        json!({"enrolment_id": enrolment_id, "on": "2026-06-01", "reason": "x"}),
        200,
    )
    .await;
    post_ok(
        &app,
        &cw,
        &voids,
        void(r["action_id"].as_str().unwrap()),
        201,
    )
    .await;
    let file = case_file(&app, &cw, &id).await;
    assert_eq!(file["insurance"]["enrolments"][0]["status"], "in_force");

    post_ok(&app, &cw, &voids, void(&enrolment_id), 201).await;
    assert!(case_file(&app, &cw, &id).await["insurance"]["enrolments"]
        .as_array()
        .unwrap()
        .is_empty());
    // The history keeps every step and says which were voided.
    let h = app
        .get(&format!("/api/v1/families/{id}/history"), &cw)
        .await;
    let items = h.body["items"].as_array().unwrap();
    let voided: Vec<&str> = items
        .iter()
        .filter(|e| !e["voided_by"].is_null())
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        voided,
        [
            "InsuranceEnrolled",
            "InsuranceClaimFiled",
            "InsuranceClaimDecided",
            "InsuranceWithdrawn"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_insurance_activities_and_inspections() {
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
    for (path, method) in [
        ("/api/v1/families/{id}/insurance/enrolments", "post"),
        ("/api/v1/families/{id}/insurance/withdrawals", "post"),
        ("/api/v1/families/{id}/insurance/claims", "post"),
        (
            "/api/v1/families/{id}/insurance/claims/{claim_id}/decision",
            "post",
        ),
        ("/api/v1/activities", "post"),
        ("/api/v1/activities", "get"),
        ("/api/v1/activities/{id}", "get"),
        ("/api/v1/activities/{id}/attendance", "post"),
        ("/api/v1/activities/{id}/attendance/removals", "post"),
        ("/api/v1/isolated-families", "get"),
        ("/api/v1/inspections", "post"),
        ("/api/v1/inspections", "get"),
        ("/api/v1/inspections/{id}", "get"),
        (
            "/api/v1/inspections/{id}/follow-ups/{follow_up_id}/done",
            "post",
        ),
        ("/api/v1/inspections/{id}/void", "post"),
        ("/api/v1/inspections/compliance", "get"),
        ("/api/v1/inspections/alerts", "get"),
        ("/api/v1/bulletin/figures", "get"),
    ] {
        assert!(
            doc.body["paths"][path][method].is_object(),
            "{method} {path} is not described"
        );
    }
    // The case file's schema carries the new parts.
    let case_file = &doc.body["components"]["schemas"]["CaseFileView"]["properties"];
    assert!(case_file["insurance"].is_object());
    assert!(case_file["activities"].is_object());
}
