//! Supervision inspections as supervisors record them: within their scope
//! only, follow-ups marked done once, voids; compliance figures pinned on a
//! hand-built year; the daily scan's "inspections behind schedule" alert
//! raised once, delivered to a webhook, resolved when the association
//! catches up and reopened when it falls behind again; and the bulletin's
//! figures as known at an instant. Today is 2026-06-30 in the test clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use nuanxin_infra::on_pool;
use nuanxin_infra::users::Secret;
use nuanxin_tests::*;
use serde_json::{json, Value};

both_stores!(
    inspections_are_recorded_within_scope_by_supervisors,
    compliance_figures_of_a_hand_built_year,
    behind_schedule_alert_is_raised_once_and_delivered,
    figures_are_counted_as_known_at_an_instant,
);

fn inspection(jurisdiction: &str, held_on: &str) -> Value {
    json!({"jurisdiction": jurisdiction, "topic": "visits", "held_on": held_on,
           "findings": "走访记录不全", "follow_ups": ["补齐台账", "培训联系人"]})
}

/// Records an inspection; its id.
async fn record(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/api/v1/inspections", token, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn inspections_are_recorded_within_scope_by_supervisors(app: TestApp) {
    let county = app.user("supervisor", "450305").await;
    let caseworker = app.user("caseworker", "450305").await;
    let township_cw = app.user("caseworker", "450305001").await;
    let other_cw = app.user("caseworker", "450306").await;

    let id = record(&app, &county, inspection("450305001", "2026-06-10")).await;
    let r = app.get(&format!("/api/v1/inspections/{id}"), &county).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = &r.body;
    assert_eq!(v["jurisdiction"], "450305001");
    assert_eq!(
        v["inspected_by"], "450305",
        "the recorder's level by default"
    );
    assert_eq!(v["topic"], "visits");
    assert_eq!(v["follow_ups_open"], 2);
    let follow_up = v["follow_ups"][0]["id"].as_str().unwrap().to_owned();

    // Refusals: a caseworker, a jurisdiction outside the scope or above it,
    // an inspecting association that is not above the jurisdiction.
    app.post(
        "/api/v1/inspections",
        &caseworker,
        inspection("450305001", "2026-06-10"),
    )
    .await
    .assert_problem(403);
    app.post(
        "/api/v1/inspections",
        &county,
        inspection("450306001", "2026-06-10"),
    )
    .await
    .assert_problem(403);
    app.post(
        "/api/v1/inspections",
        &county,
        inspection("4503", "2026-06-10"),
    )
    .await
    .assert_problem(403);
    let mut by_self = inspection("450305001", "2026-06-10");
    by_self["inspected_by"] = json!("450305001");
    app.post("/api/v1/inspections", &county, by_self)
        .await
        .assert_field_error("inspected_by");
    let mut bad = inspection("45030", "2026-06-31");
    bad["topic"] = json!("gossip");
    bad["follow_ups"] = json!([" "]);
    app.post("/api/v1/inspections", &county, bad)
        .await
        .assert_field_error("jurisdiction")
        .assert_field_error("topic")
        .assert_field_error("held_on")
        .assert_field_error("follow_ups[0]");
    app.post(
        "/api/v1/inspections",
        &county,
        inspection("450305001", "2026-07-01"),
    )
    .await
    .assert_problem(409);

    // Follow-ups: done once, by a supervisor within scope.
    let done = format!("/api/v1/inspections/{id}/follow-ups/{follow_up}/done");
    app.post(&done, &caseworker, json!({"done_on": "2026-06-20"}))
        .await
        .assert_problem(403);
    app.post(&done, &county, json!({"done_on": "2026-06-09"}))
        .await
        .assert_field_error("done_on");
    let r = app
        .post(
            &done,
            &county,
            json!({"done_on": "2026-06-20", "note": "已补齐"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["follow_ups"][0]["done_on"], "2026-06-20");
    assert_eq!(r.body["follow_ups"][0]["note"], "已补齐");
    assert_eq!(r.body["follow_ups_open"], 1);
    app.post(&done, &county, json!({"done_on": "2026-06-21"}))
        .await
        .assert_problem(409);
    app.post(
        &format!(
            "/api/v1/inspections/{id}/follow-ups/{}/done",
            uuid::Uuid::new_v4()
        ),
        &county,
        json!({"done_on": "2026-06-21"}),
    )
    .await
    .assert_problem(404);
    // A supervisor of another county does not see it; one of the city does.
    let other_sup = app.user("supervisor", "450306").await;
    app.post(&done, &other_sup, json!({"done_on": "2026-06-21"}))
        .await
        .assert_problem(404);

    // Seen from every overlapping scope.
    let count = |r: &Response| r.body["items"].as_array().unwrap().len();
    assert_eq!(
        count(&app.get("/api/v1/inspections", &township_cw).await),
        1
    );
    assert_eq!(count(&app.get("/api/v1/inspections", &other_cw).await), 0);
    app.get(&format!("/api/v1/inspections/{id}"), &other_cw)
        .await
        .assert_problem(404);

    // Voided: no longer counts, no longer changes.
    let void = format!("/api/v1/inspections/{id}/void");
    let r = app
        .post(&void, &county, json!({"reason": "重复登记"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["voided"], true);
    assert_eq!(r.body["void_reason"], "重复登记");
    app.post(&void, &county, json!({"reason": "again"}))
        .await
        .assert_problem(409);
    let second = r.body["follow_ups"][1]["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/v1/inspections/{id}/follow-ups/{second}/done"),
        &county,
        json!({"done_on": "2026-06-21"}),
    )
    .await
    .assert_problem(409);
}

/// Registers a family in each village (families make their county and
/// city associations count).
async fn families(app: &TestApp, villages: &[&str]) {
    for v in villages {
        app.register(ADMIN_TOKEN, v).await;
    }
}

/// (jurisdiction, level, required, held, short_by, expected_by_now, behind_pace)
type Row = (String, String, u64, u64, u64, u64, bool);

async fn compliance(app: &TestApp, token: &str, query: &str) -> Vec<Row> {
    let r = app
        .get(&format!("/api/v1/inspections/compliance{query}"), token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["jurisdiction"].as_str().unwrap().to_owned(),
                i["level"].as_str().unwrap().to_owned(),
                i["required"].as_u64().unwrap(),
                i["held"].as_u64().unwrap(),
                i["short_by"].as_u64().unwrap(),
                i["expected_by_now"].as_u64().unwrap(),
                i["behind_pace"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn row(j: &str, level: &str, required: u64, held: u64, expected: u64, behind: bool) -> Row {
    (
        j.into(),
        level.into(),
        required,
        held,
        required.saturating_sub(held),
        expected,
        behind,
    )
}

async fn compliance_figures_of_a_hand_built_year(app: TestApp) {
    families(&app, &["450305001001", "450306001001"]).await;
    let city = app.user("supervisor", "4503").await;
    let county = app.user("supervisor", "450305").await;
    // The city inspects county 450305 twice in 2026.
    for on in ["2026-02-10", "2026-05-10"] {
        record(&app, &city, inspection("450305", on)).await;
    }
    // County 450305 inspects its townships: 7 in 2026 (one voided), 1 in 2025.
    let mut ids = Vec::new();
    for on in [
        "2026-01-05",
        "2026-02-05",
        "2026-03-05",
        "2026-04-05",
        "2026-05-05",
        "2026-06-05",
        "2026-06-25",
    ] {
        ids.push(record(&app, &county, inspection("450305001", on)).await);
    }
    record(&app, &county, inspection("450305002", "2025-11-05")).await;
    let r = app
        .post(
            &format!("/api/v1/inspections/{}/void", ids[0]),
            &county,
            json!({"reason": "重复登记"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // On 2026-06-30 five months have ended: a city is due 1, a county 5.
    let expected_2026 = vec![
        row("4503", "city", 4, 2, 1, false),
        row("450305", "county", 12, 6, 5, false),
        row("450306", "county", 12, 0, 5, true),
    ];
    assert_eq!(compliance(&app, &city, "?year=2026").await, expected_2026);
    assert_eq!(
        compliance(&app, ADMIN_TOKEN, "?year=2026&village_code_prefix=4503").await,
        expected_2026
    );
    // A county supervisor sees their own county only.
    assert_eq!(
        compliance(&app, &county, "?year=2026").await,
        vec![row("450305", "county", 12, 6, 5, false)]
    );
    // A past year: the whole minimum was due.
    assert_eq!(
        compliance(&app, &city, "?year=2025").await,
        vec![
            row("4503", "city", 4, 0, 4, true),
            row("450305", "county", 12, 1, 12, true),
            row("450306", "county", 12, 0, 12, true),
        ]
    );
    // Outside the scope: empty; a bad year: 400.
    assert!(compliance(&app, &county, "?village_code_prefix=450306")
        .await
        .is_empty());
    app.get("/api/v1/inspections/compliance?year=1999", &city)
        .await
        .assert_problem(400);

    // The minimum is the policy's.
    let app = app
        .restart_with(|s| {
            s.policy.inspections.county_per_year = 6;
            s.policy_configured = true;
        })
        .await;
    assert_eq!(
        compliance(&app, &county, "?year=2026").await,
        vec![row("450305", "county", 6, 6, 2, false)]
    );
}

/// A local webhook receiver keeping every body it gets.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    async fn hook(State(got): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> StatusCode {
        got.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&body).into_owned());
        StatusCode::OK
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(got.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/hook"), got)
}

/// The inspection messages received so far.
fn inspection_messages(got: &Arc<Mutex<Vec<String>>>) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|v| v["alert_kind"] == "inspections_behind")
        .collect()
}

async fn wait_for(got: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let messages = inspection_messages(got);
        if messages.len() >= n {
            return messages;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "got {} of {n} inspection messages",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// POST /alerts/scan: the inspection part of the answer.
async fn scan(app: &TestApp, token: &str, on: &str) -> (u64, u64, u64) {
    let r = app
        .post("/api/v1/alerts/scan", token, json!({"on": on}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let i = &r.body["inspections_behind"];
    let n = |k: &str| i[k].as_u64().unwrap();
    (n("raised"), n("resolved"), n("reopened"))
}

async fn behind_schedule_alert_is_raised_once_and_delivered(app: TestApp) {
    let (url, got) = receiver().await;
    let app = app
        .restart_with(move |s| {
            s.alerts.scheduler = false;
            s.alerts.webhooks = vec![url];
            s.alerts.secret = Some(Secret::new("inspection-secret"));
        })
        .await;
    families(&app, &["450305001001", "450306001001"]).await;
    let city = app.user("supervisor", "4503").await;
    let keeps_pace = app.user("supervisor", "450306").await;
    let behind = app.user("supervisor", "450305").await;
    // The city and county 450306 keep the pace of 2026-06-30 (1 and 5).
    record(&app, &city, inspection("450306", "2026-03-01")).await;
    for month in 1..=5 {
        record(
            &app,
            &keeps_pace,
            inspection("450306001", &format!("2026-0{month}-15")),
        )
        .await;
    }

    // County 450305 has held none: one alert, raised once.
    assert_eq!(scan(&app, ADMIN_TOKEN, "2026-06-30").await, (1, 0, 0));
    assert_eq!(scan(&app, ADMIN_TOKEN, "2026-06-30").await, (0, 0, 0));
    assert_eq!(scan(&app, &city, "2026-06-30").await, (0, 0, 0));
    let r = app
        .get("/api/v1/inspections/alerts?status=open", &city)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    let a = &items[0];
    assert_eq!(a["jurisdiction"], "450305");
    assert_eq!(a["level"], "county");
    assert_eq!(a["year"], 2026);
    assert_eq!(a["required"], 12);
    assert_eq!(a["expected_by_now"], 5);
    assert_eq!(a["held"], 0);
    assert_eq!(a["raised_on"], "2026-06-30");
    let alert_id = a["id"].as_str().unwrap().to_owned();
    // Seen by the county itself; not by the other county; not an
    // overdue-visit alert.
    let seen = app.get("/api/v1/inspections/alerts", &behind).await;
    assert_eq!(seen.body["items"].as_array().unwrap().len(), 1);
    let unseen = app.get("/api/v1/inspections/alerts", &keeps_pace).await;
    assert!(unseen.body["items"].as_array().unwrap().is_empty());
    let visits = app.get("/api/v1/alerts", ADMIN_TOKEN).await;
    assert!(visits.body["items"].as_array().unwrap().is_empty());

    // Delivered through the outbox to the webhook, signed like every alert.
    let messages = wait_for(&got, 1).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["event"], "inspections_behind.raised");
    assert_eq!(m["alert_id"], alert_id.as_str());
    assert_eq!(m["jurisdiction"], "450305");
    assert_eq!(m["level_name"], "county");
    assert_eq!(m["expected_by_now"], 5);
    assert_eq!(m["held"], 0);
    assert_eq!(m["scan_day"], "2026-06-30");
    let db = nuanxin_infra::Db::connect(&app.db.url, 1).await.unwrap();
    let kinds: Vec<String> = on_pool!(&db, pool => {
        sqlx::query_scalar("SELECT alert_kind FROM alert_outbox")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(kinds, ["inspections_behind"]);
    db.close().await;

    // Catching up resolves it; falling behind again reopens it.
    let mut ids = Vec::new();
    for month in 1..=5 {
        ids.push(
            record(
                &app,
                &behind,
                inspection("450305001", &format!("2026-0{month}-20")),
            )
            .await,
        );
    }
    assert_eq!(scan(&app, &behind, "2026-06-30").await, (0, 1, 0));
    let r = app
        .post(
            &format!("/api/v1/inspections/{}/void", ids[0]),
            &behind,
            json!({"reason": "重复登记"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(scan(&app, &behind, "2026-06-30").await, (0, 0, 1));
    assert_eq!(scan(&app, &behind, "2026-06-30").await, (0, 0, 0));
    let messages = wait_for(&got, 2).await;
    assert_eq!(messages[1]["event"], "inspections_behind.reopened");
    assert_eq!(messages[1]["alert_id"], alert_id.as_str());
    assert_eq!(messages[1]["held"], 4);
    let r = app.get("/api/v1/inspections/alerts?year=2026", &city).await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        1,
        "still one alert"
    );
    assert_eq!(r.body["items"][0]["status"], "open");
    // A day before the pace asked for anything raises nothing.
    assert_eq!(scan(&app, ADMIN_TOKEN, "2026-01-31").await, (0, 0, 0));
}

async fn figures_are_counted_as_known_at_an_instant(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let city = app.user("supervisor", "4503").await;
    let f1 = app.register(&cw, "450305001001").await;
    let f2 = app.register(&cw, "450305001002").await;
    let member = |file: &Value, i: usize| file["members"][i]["id"].as_str().unwrap().to_owned();
    let file1 = app.get(&format!("/api/v1/families/{f1}"), &cw).await.body;
    let enrol = |member: String, payer: &str, premium: i64| {
        json!({"member_id": member, "product": "关爱保险", "policy_year": 2026,
               "premium_fen": premium, "paid_by": payer,
               "consent": {"given_on": "2026-02-01", "explained_by": "张敏"}})
    };
    let path = |f: &str, tail: &str| format!("/api/v1/families/{f}/insurance/{tail}");
    let e1 = app
        .post(
            &path(&f1, "enrolments"),
            &cw,
            enrol(member(&file1, 0), "self", 5000),
        )
        .await;
    assert_eq!(e1.status, 201, "{}", e1.text);
    let e1 = e1.body["action_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &path(&f1, "enrolments"),
            &cw,
            enrol(member(&file1, 1), "association", 6000),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let claim = app
        .post(
            &path(&f1, "claims"),
            &cw,
            json!({"enrolment_id": e1, "cause": "illness", "occurred_on": "2026-03-01",
                   "filed_on": "2026-03-05", "claimed_fen": 20000}),
        )
        .await;
    let claim = claim.body["action_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &path(&f1, &format!("claims/{claim}/decision")),
            &cw,
            json!({"decided_on": "2026-04-01", "outcome": "paid", "paid_fen": 5500}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let activity = app
        .post(
            "/api/v1/activities",
            &cw,
            json!({"kind": "warm_home", "title": "茶话会", "held_on": "2026-05-29",
                   "village_code_prefix": "450305001", "organiser": "协会"}),
        )
        .await;
    let activity = activity.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/activities/{activity}/attendance"),
            &cw,
            json!({"family_ids": [f1, f2]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    record(&app, &city, inspection("450305", "2026-03-01")).await;

    // Later (the server's clock moves a day on): one more claim, rejected.
    let later = "2026-07-01T04:00:00Z";
    let app = app
        .restart_with(move |s| {
            s.clock = Arc::new(nuanxin_domain::FixedClock(later.parse().unwrap()));
        })
        .await;
    let r = app
        .post(
            &path(&f1, "claims"),
            &cw,
            json!({"enrolment_id": e1, "cause": "accident", "occurred_on": "2026-06-01",
                   "filed_on": "2026-06-02", "claimed_fen": 10000}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.body["action_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &path(&f1, &format!("claims/{second}/decision")),
            &cw,
            json!({"decided_on": "2026-06-10", "outcome": "rejected", "reason": "免责"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let figures = |query: &'static str| {
        let app = &app;
        let city = city.clone();
        async move {
            let r = app
                .get(&format!("/api/v1/bulletin/figures{query}"), &city)
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body
        }
    };
    let now = figures("?from=2026-01-01&to=2026-12-31").await;
    assert_eq!(now["village_code_prefix"], "4503");
    let i = &now["insurance"];
    assert_eq!(i["enrolled_families"], 1);
    assert_eq!(i["enrolled_members"], 2);
    assert_eq!(
        i["premiums"]["self"],
        json!({"count": 1, "amount_fen": 5000})
    );
    assert_eq!(
        i["premiums"]["association"],
        json!({"count": 1, "amount_fen": 6000})
    );
    assert_eq!(i["premiums_fen"], 11000);
    assert_eq!(i["claims_filed"], 2);
    assert_eq!(i["claims_paid"], 1);
    assert_eq!(i["claims_rejected"], 1);
    assert_eq!(i["claims_pending"], 0);
    assert_eq!(i["paid_fen"], 5500);
    assert_eq!(i["payout_ratio"], 0.5);
    assert_eq!(
        now["activities"],
        json!({"activities_held": 1, "families_reached": 2})
    );
    assert_eq!(now["inspections"]["inspections_held"], 1);
    // City 4503 (4) and county 450305 (12), for the whole year.
    assert_eq!(now["inspections"]["inspections_required"], 16);

    // As known at the end of the first day: the later claim does not count.
    let then = figures("?from=2026-01-01&to=2026-12-31&known_at=2026-06-30T12:00:00%2B08:00").await;
    let i = &then["insurance"];
    assert_eq!(i["claims_filed"], 1);
    assert_eq!(i["claims_rejected"], 0);
    assert_eq!(i["claims_paid"], 1);
    assert_eq!(then["activities"]["families_reached"], 2);
    // Before anything was recorded: nothing.
    let before = figures("?known_at=2026-06-29T00:00:00Z").await;
    assert_eq!(before["insurance"]["enrolments"], 0);
    assert_eq!(before["activities"]["activities_held"], 0);
    assert_eq!(before["inspections"]["inspections_held"], 0);
    assert!(before["insurance"]["payout_ratio"].is_null());
    // Another county's supervisor counts nothing of these.
    let other = app.user("supervisor", "450306").await;
    let r = app.get("/api/v1/bulletin/figures", &other).await;
    assert_eq!(r.body["insurance"]["enrolments"], 0);
    app.get("/api/v1/bulletin/figures?village_code_prefix=4504", &other)
        .await
        .assert_problem(404);
    app.get(
        "/api/v1/bulletin/figures?from=2026-02-01&to=2026-01-01",
        &city,
    )
    .await
    .assert_problem(400);
}
