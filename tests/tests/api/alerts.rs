//! Overdue-visit alerts, tried as a new user would: families going overdue
//! over a sequence of scan days — each alert appears exactly once,
//! escalates on the right day, resolves after the visit; acknowledging
//! within scope; concurrent scans never duplicate; a real local webhook
//! receiver gets every alert, signed, even after failing for a while and
//! across a server restart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use nuanxin_infra::alerts::ScanMode;
use nuanxin_infra::on_pool;
use nuanxin_infra::users::Secret;
use nuanxin_tests::*;
use serde_json::{json, Value};

both_stores!(
    alerts_are_raised_once_escalate_and_resolve,
    a_scan_acts_and_counts_only_within_the_callers_scope,
    a_day_after_today_is_refused_and_changes_nothing,
    a_key_person_window_alone_resolves_nothing,
    acknowledging_needs_a_note_and_the_scope,
    concurrent_scans_never_duplicate,
    webhooks_get_every_alert_signed_even_after_failures,
    a_restart_mid_retry_loses_nothing,
    two_delivery_workers_post_each_message_once_to_a_slow_receiver,
);

const SECRET: &str = "webhook-test-secret";

/// The server without its daily scheduler: these tests pick the scan days.
/// And without inspection minimums: they count overdue-visit alerts and
/// their messages only (inspection alerts: `tests/api/inspections.rs`).
async fn quiet(app: TestApp) -> TestApp {
    app.restart_with(|s| {
        s.alerts.scheduler = false;
        no_inspection_minimum(s);
    })
    .await
}

fn no_inspection_minimum(s: &mut nuanxin_infra::Settings) {
    s.policy.inspections.city_per_year = 0;
    s.policy.inspections.county_per_year = 0;
    s.policy_configured = true;
}

fn ordinary_family(village: &str) -> Value {
    json!({
        "category": "disabled_child", "village_code": village, "address": "Xincun",
        "registered_on": "2026-01-10",
        "members": [{"name": "Wang Wu", "sex": "male", "birth_date": "1960-01-01",
                     "id_number": "110105196001010017", "phone": "13800138000"}]
    })
}

/// A family whose village contact (assigned 2026-04-01, 30 days) is due on
/// 2026-05-01 — overdue from 2026-05-02. Returns (family id, contact id).
async fn overdue_family(app: &TestApp, token: &str, village: &str) -> (String, String) {
    let r = app
        .post("/api/v1/families", token, ordinary_family(village))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let contact = contact_body("village", "2026-04-01");
    let contact_id = contact["person"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("/api/v1/families/{id}/contacts"), token, contact)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (id, contact_id)
}

/// POST /alerts/scan for `on`: (raised, escalated, resolved).
async fn scan(app: &TestApp, token: &str, on: &str) -> (u64, u64, u64) {
    let r = app
        .post("/api/v1/alerts/scan", token, json!({"on": on}))
        .await;
    assert_eq!(r.status, 200, "scan {on}: {}", r.text);
    assert_eq!(r.body["on"], on);
    let n = |k: &str| r.body[k].as_u64().unwrap();
    (n("raised"), n("escalated"), n("resolved"))
}

async fn alerts(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/alerts{query}"), token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

async fn alert(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/alerts/{id}"), token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The scopes of the users an alert goes to, sorted.
fn recipient_scopes(detail: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = detail["recipients"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["role"].as_str().unwrap().to_owned(),
                u["scope"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = v
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    v.sort();
    v
}

async fn alerts_are_raised_once_escalate_and_resolve(app: TestApp) {
    let app = quiet(app).await;
    let cw = app.user("caseworker", "4503").await;
    let _other = app.user("caseworker", "4504").await;
    for scope in ["450305001", "450305", "4503", "45"] {
        app.user("supervisor", scope).await;
    }
    let sup = app.user("supervisor", "4503").await;
    let (f1, contact) = overdue_family(&app, &cw, "450305001001").await;
    let r = app
        .post(
            &format!("/api/v1/families/{f1}/contacts"),
            &cw,
            contact_body("township", "2026-04-01"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Due on 05-01: not overdue that day, overdue the next.
    assert_eq!(scan(&app, &sup, "2026-05-01").await, (0, 0, 0));
    assert_eq!(scan(&app, &sup, "2026-05-02").await, (1, 0, 0));
    assert_eq!(
        scan(&app, &sup, "2026-05-02").await,
        (0, 0, 0),
        "a second scan of the same day raises nothing new"
    );
    let open = alerts(&app, &cw, "?status=open").await;
    assert_eq!(open.len(), 1);
    let a = &open[0];
    let id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(a["family_id"], f1.as_str());
    assert_eq!(a["role"], "village");
    assert_eq!(a["due_on"], "2026-05-01");
    assert_eq!(a["raised_on"], "2026-05-02");
    assert_eq!(a["level"], 0);
    assert_eq!(a["status"], "open");

    // Level 0 goes to the contact, caseworkers and every covering supervisor.
    let d = alert(&app, &cw, &id).await;
    assert_eq!(d["recipients"]["contact"]["id"], contact.as_str());
    assert_eq!(d["recipients"]["contact"]["name"], "Li Si");
    assert_eq!(
        recipient_scopes(&d),
        pairs(&[
            ("admin", ""),
            ("caseworker", "4503"),
            ("supervisor", "450305001"),
            ("supervisor", "450305"),
            ("supervisor", "4503"),
            ("supervisor", "4503"),
            ("supervisor", "45"),
        ])
    );

    // Escalation: one level per 14 days after raising — day 13 no, day 14 yes.
    assert_eq!(scan(&app, &sup, "2026-05-15").await, (0, 0, 0));
    assert_eq!(alert(&app, &cw, &id).await["level"], 0);
    assert_eq!(scan(&app, &sup, "2026-05-16").await, (0, 1, 0));
    assert_eq!(scan(&app, &sup, "2026-05-16").await, (0, 0, 0));
    let d = alert(&app, &cw, &id).await;
    assert_eq!(d["level"], 1);
    assert_eq!(d["level_name"], "township");
    assert_eq!(d["jurisdiction"], "450305001");
    assert_eq!(d["escalated_on"], "2026-05-16");
    assert_eq!(
        recipient_scopes(&d),
        pairs(&[
            ("admin", ""),
            ("supervisor", "450305001"),
            ("supervisor", "450305"),
            ("supervisor", "4503"),
            ("supervisor", "4503"),
            ("supervisor", "45"),
        ]),
        "above level 0 the caseworkers drop out"
    );
    assert_eq!(scan(&app, &sup, "2026-05-29").await, (0, 0, 0));
    assert_eq!(scan(&app, &sup, "2026-05-30").await, (0, 1, 0));
    let d = alert(&app, &cw, &id).await;
    assert_eq!(d["level"], 2);
    assert_eq!(
        recipient_scopes(&d),
        pairs(&[
            ("admin", ""),
            ("supervisor", "450305"),
            ("supervisor", "4503"),
            ("supervisor", "4503"),
            ("supervisor", "45"),
        ])
    );

    // A qualifying visit resolves it on the next scan.
    let r = app
        .post(
            &format!("/api/v1/families/{f1}/visits"),
            &cw,
            visit_body("village", "home", "2026-06-01"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(scan(&app, &sup, "2026-06-02").await, (0, 0, 1));
    assert_eq!(scan(&app, &sup, "2026-06-02").await, (0, 0, 0));
    let d = alert(&app, &cw, &id).await;
    assert_eq!(d["status"], "resolved");
    assert_eq!(d["resolved_on"], "2026-06-02");
    assert!(alerts(&app, &cw, "?status=open").await.is_empty());
    assert_eq!(alerts(&app, &cw, "?status=resolved").await.len(), 1);

    // The township contact (90 days) is due on 06-30: overdue on 07-01,
    // which has to come before it can be scanned.
    assert_eq!(scan(&app, &sup, "2026-06-30").await, (0, 0, 0));
    let app = app
        .restart_with(|s| {
            s.alerts.scheduler = false;
            s.clock = std::sync::Arc::new(nuanxin_domain::FixedClock(
                "2026-07-02T04:00:00Z".parse().unwrap(),
            ));
        })
        .await;
    assert_eq!(scan(&app, &sup, "2026-07-01").await, (1, 0, 0));
    let open = alerts(&app, &cw, "?status=open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["role"], "township");
    assert_eq!(open[0]["due_on"], "2026-06-30");

    // Closing the case removes its schedule: the alert resolves.
    let r = app
        .post(
            &format!("/api/v1/families/{f1}/close"),
            &cw,
            json!({"on": "2026-06-30", "reason": "moved away"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(scan(&app, &sup, "2026-07-02").await, (0, 0, 1));
    assert!(alerts(&app, &cw, "?status=open").await.is_empty());
    assert_eq!(alerts(&app, &cw, "").await.len(), 2);
}

/// A scan acts on the families within the caller's scope only: a
/// supervisor elsewhere neither raises, escalates nor resolves anything of
/// another county, and the answer counts only their own families.
async fn a_scan_acts_and_counts_only_within_the_callers_scope(app: TestApp) {
    let app = quiet(app).await;
    let cw = app.user("caseworker", "45").await;
    let guilin = app.user("supervisor", "4503").await;
    let nowhere = app.user("supervisor", "4599").await;
    let (here, _) = overdue_family(&app, &cw, "450305001001").await;
    let (there, _) = overdue_family(&app, &cw, "450405001001").await;

    assert_eq!(scan(&app, &nowhere, "2026-05-02").await, (0, 0, 0));
    assert!(alerts(&app, ADMIN_TOKEN, "").await.is_empty());
    assert_eq!(scan(&app, &guilin, "2026-05-02").await, (1, 0, 0));
    let all = alerts(&app, ADMIN_TOKEN, "").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["family_id"], here.as_str());
    assert_eq!(scan(&app, ADMIN_TOKEN, "2026-05-02").await, (1, 0, 0));

    // On 05-16 both alerts are due to escalate; Guilin's scan escalates its own.
    assert_eq!(scan(&app, &guilin, "2026-05-16").await, (0, 1, 0));
    let by_family = |items: &[Value], family: &str| -> Value {
        items
            .iter()
            .find(|a| a["family_id"] == family)
            .cloned()
            .expect("an alert of the family")
    };
    let all = alerts(&app, ADMIN_TOKEN, "").await;
    assert_eq!(by_family(&all, &here)["level"], 1);
    assert_eq!(
        by_family(&all, &there)["level"],
        0,
        "another county's alert is not escalated"
    );

    // A visit to the family elsewhere: an outsider's scan resolves nothing.
    let r = app
        .post(
            &format!("/api/v1/families/{there}/visits"),
            &cw,
            visit_body("village", "home", "2026-05-17"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(scan(&app, &nowhere, "2026-05-18").await, (0, 0, 0));
    assert_eq!(scan(&app, &guilin, "2026-05-18").await, (0, 0, 0));
    let all = alerts(&app, ADMIN_TOKEN, "").await;
    assert_eq!(by_family(&all, &there)["status"], "open");
    assert_eq!(scan(&app, ADMIN_TOKEN, "2026-05-18").await, (0, 0, 1));
    let all = alerts(&app, ADMIN_TOKEN, "").await;
    assert_eq!(by_family(&all, &there)["status"], "resolved");
    assert_eq!(by_family(&all, &here)["status"], "open");
}

/// Scanning a day that has not come yet is refused and changes nothing;
/// earlier days (catching up after downtime) stay possible.
async fn a_day_after_today_is_refused_and_changes_nothing(app: TestApp) {
    let app = quiet(app).await;
    let cw = app.user("caseworker", "4503").await;
    let sup = app.user("supervisor", "4503").await;
    overdue_family(&app, &cw, "450305001001").await;
    assert_eq!(scan(&app, &sup, "2026-05-02").await, (1, 0, 0));
    let before = alerts(&app, ADMIN_TOKEN, "").await;

    // "Now" is 2026-06-30 12:00 in Shanghai.
    for (token, day) in [
        (&sup, "2026-07-01"),
        (&sup.clone(), "2031-06-01"),
        (&ADMIN_TOKEN.to_owned(), "2030-01-01"),
    ] {
        // Like an action dated after today: a rule of the present, 409.
        let r = app
            .post("/api/v1/alerts/scan", token, json!({"on": day}))
            .await;
        r.assert_problem(409);
        assert!(!r.text.contains(day), "the refusal does not echo the value");
    }
    assert_eq!(alerts(&app, ADMIN_TOKEN, "").await, before);
    assert_eq!(before[0]["level"], 0);
    // Today and back-dated days still scan.
    assert_eq!(scan(&app, &sup, "2026-06-30").await.1, 1);
    assert_eq!(scan(&app, &sup, "2026-05-20").await, (0, 0, 0));
}

/// A parent's 80th birthday makes the family key and its due date earlier
/// from that day on. That is no action: the alert raised for the ordinary
/// due date stays open beside the new one until a visit resolves both.
async fn a_key_person_window_alone_resolves_nothing(app: TestApp) {
    let app = quiet(app).await;
    let cw = app.user("caseworker", "4503").await;
    let sup = app.user("supervisor", "4503").await;
    let mut body = ordinary_family("450305001001");
    body["members"][0]["birth_date"] = json!("1946-06-15");
    body["members"][0]
        .as_object_mut()
        .unwrap()
        .remove("id_number");
    let r = app.post("/api/v1/families", &cw, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/families/{id}/contacts"),
            &cw,
            contact_body("village", "2026-04-01"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Before the birthday: ordinary, due 05-01 (30 days).
    assert_eq!(scan(&app, &sup, "2026-05-10").await, (1, 0, 0));
    // From 06-15: key, due 04-08 (7 days). Today's scan raises that one and
    // escalates the first (raised 51 days ago: level 3) — and resolves nothing.
    assert_eq!(scan(&app, &sup, "2026-06-30").await, (1, 1, 0));
    let open = alerts(&app, &cw, "?status=open").await;
    let mut due: Vec<&str> = open.iter().map(|a| a["due_on"].as_str().unwrap()).collect();
    due.sort();
    assert_eq!(due, ["2026-04-08", "2026-05-01"]);
    // A back-dated scan inside the ordinary window resolves nothing either.
    assert_eq!(scan(&app, &sup, "2026-06-01").await.2, 0);

    let r = app
        .post(
            &format!("/api/v1/families/{id}/visits"),
            &cw,
            visit_body("village", "home", "2026-06-30"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(scan(&app, &sup, "2026-06-30").await, (0, 0, 2));
    assert!(alerts(&app, &cw, "?status=open").await.is_empty());
}

async fn acknowledging_needs_a_note_and_the_scope(app: TestApp) {
    let app = quiet(app).await;
    let cw = app.user("caseworker", "450305").await;
    let outsider = app.user("caseworker", "4504").await;
    let sup = app.user("supervisor", "4503").await;
    overdue_family(&app, &cw, "450305001001").await;
    overdue_family(&app, &cw, "450305001002").await;
    overdue_family(&app, &cw, "450305002001").await;

    app.post("/api/v1/alerts/scan", &cw, json!({"on": "2026-05-02"}))
        .await
        .assert_problem(403);
    app.post("/api/v1/alerts/scan", &sup, json!({"on": "2 May"}))
        .await
        .assert_field_error("on");
    // An unknown key is named by its position (the body), never repeated.
    app.post("/api/v1/alerts/scan", &sup, json!({"day": "2026-05-02"}))
        .await
        .assert_field_error("body");
    assert_eq!(scan(&app, &sup, "2026-05-02").await, (3, 0, 0));

    // Cursor pagination, and nothing outside the caller's scope.
    let page = app.get("/api/v1/alerts?limit=2", &cw).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/api/v1/alerts?limit=2&cursor={cursor}"), &cw)
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert!(rest.body["next_cursor"].is_null());
    assert!(alerts(&app, &outsider, "").await.is_empty());
    assert_eq!(
        alerts(&app, &cw, "?village_code_prefix=450305002")
            .await
            .len(),
        1
    );
    app.get("/api/v1/alerts?status=late", &cw)
        .await
        .assert_problem(400);

    let id = alerts(&app, &cw, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ack = format!("/api/v1/alerts/{id}/ack");
    app.get(&format!("/api/v1/alerts/{id}"), &outsider)
        .await
        .assert_problem(404);
    app.post(&ack, &outsider, json!({"note": "not mine"}))
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/alerts/{}", uuid::Uuid::new_v4()), &cw)
        .await
        .assert_problem(404);
    app.get("/api/v1/alerts/not-a-uuid", &cw)
        .await
        .assert_problem(404);
    app.post(&ack, &cw, json!({}))
        .await
        .assert_field_error("note");
    app.post(&ack, &cw, json!({"note": "  "}))
        .await
        .assert_field_error("note");

    let r = app
        .post(&ack, &sup, json!({"note": "called the contact"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "acknowledged");
    assert_eq!(r.body["acknowledgement"]["note"], "called the contact");
    assert_eq!(r.body["acknowledgement"]["at"], "2026-06-30T04:00:00Z");
    app.post(&ack, &cw, json!({"note": "again"}))
        .await
        .assert_problem(409);
    assert_eq!(alerts(&app, &cw, "?status=acknowledged").await.len(), 1);
    assert_eq!(alerts(&app, &cw, "?status=open").await.len(), 2);

    // Acknowledged is not resolved: it still escalates, and a visit resolves it.
    assert_eq!(scan(&app, &sup, "2026-05-16").await, (0, 3, 0));
    let d = alert(&app, &cw, &id).await;
    assert_eq!(
        (d["status"].clone(), d["level"].clone()),
        (json!("acknowledged"), json!(1))
    );
    let family = d["family_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/families/{family}/visits"),
            &cw,
            visit_body("village", "phone", "2026-05-20"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(scan(&app, &sup, "2026-05-21").await, (0, 0, 1));
    assert_eq!(alert(&app, &cw, &id).await["status"], "resolved");
    app.post(&ack, &cw, json!({"note": "late"}))
        .await
        .assert_problem(409);
}

async fn count(url: &nuanxin_infra::DatabaseUrl, table: &str) -> i64 {
    let db = nuanxin_infra::Db::connect(url, 1).await.unwrap();
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let n = on_pool!(&db, pool => {
        sqlx::query_scalar::<_, i64>(&sql).fetch_one(pool).await
    })
    .unwrap();
    db.close().await;
    n
}

async fn concurrent_scans_never_duplicate(app: TestApp) {
    let app = quiet(app).await;
    let cw = app.user("caseworker", "45").await;
    let sup = app.user("supervisor", "45").await;
    const FAMILIES: u64 = 6;
    for i in 0..FAMILIES {
        overdue_family(&app, &cw, &format!("45030500{}001", i + 1)).await;
    }
    let app = Arc::new(app);
    let direct = nuanxin_infra::Db::connect(&app.db.url, 4).await.unwrap();
    for (day, field) in [("2026-05-02", 0), ("2026-05-16", 1)] {
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (app, sup) = (app.clone(), sup.clone());
            tasks.push(tokio::spawn(async move {
                let (r, e, _) = scan(&app, &sup, day).await;
                [r, e]
            }));
        }
        for _ in 0..4 {
            let db = direct.clone();
            tasks.push(tokio::spawn(async move {
                let r = nuanxin_infra::alerts::scan::scan(
                    &db,
                    day.parse().unwrap(),
                    "",
                    14,
                    ScanMode::Always,
                )
                .await
                .expect("direct scan")
                .expect("a report");
                [r.raised, r.escalated]
            }));
        }
        let mut total = [0u64; 2];
        for t in tasks {
            let [r, e] = t.await.unwrap();
            total[0] += r;
            total[1] += e;
        }
        let mut expected = [0u64; 2];
        expected[field] = FAMILIES;
        assert_eq!(total, expected, "scans of {day}: [raised, escalated]");
    }
    direct.close().await;
    assert_eq!(count(&app.db.url, "alerts").await, FAMILIES as i64);
    assert_eq!(
        count(&app.db.url, "alert_outbox").await,
        2 * FAMILIES as i64,
        "one message per raise and per escalation"
    );
    let items = alerts(&app, &sup, "").await;
    assert_eq!(items.len(), FAMILIES as usize);
    assert!(items.iter().all(|a| a["level"] == 1));
}

/// A local webhook receiver: answers 500 to its first `fail_first`
/// requests, then 200, keeping what it accepted.
struct Receiver {
    url: String,
    hits: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<(String, String)>>>,
}

#[derive(Clone)]
struct ReceiverState {
    fail_first: usize,
    /// How long each answer takes.
    delay: Duration,
    hits: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<(String, String)>>>,
}

async fn hook(State(s): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    tokio::time::sleep(s.delay).await;
    if s.hits.fetch_add(1, Ordering::SeqCst) < s.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let signature = headers
        .get("x-nuanxin-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    s.accepted
        .lock()
        .unwrap()
        .push((signature, String::from_utf8_lossy(&body).into_owned()));
    StatusCode::OK
}

async fn receiver(fail_first: usize) -> Receiver {
    slow_receiver(fail_first, Duration::ZERO).await
}

/// A receiver as [`receiver`], answering each request after `delay`.
async fn slow_receiver(fail_first: usize, delay: Duration) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ReceiverState {
        fail_first,
        delay,
        hits: Arc::new(AtomicUsize::new(0)),
        accepted: Arc::new(Mutex::new(Vec::new())),
    };
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        hits: state.hits,
        accepted: state.accepted,
    }
}

impl Receiver {
    fn accepted(&self) -> Vec<(String, String)> {
        self.accepted.lock().unwrap().clone()
    }

    /// Waits until the receiver has accepted `n` messages.
    async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {} of {n} messages",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn webhooks(urls: Vec<String>, base_ms: u64) -> impl FnOnce(&mut nuanxin_infra::Settings) {
    move |s| {
        s.alerts.scheduler = false;
        no_inspection_minimum(s);
        s.alerts.webhooks = urls;
        s.alerts.secret = Some(Secret::new(SECRET));
        s.alerts.retry_base = Duration::from_millis(base_ms);
        s.alerts.retry_max = Duration::from_millis(base_ms * 8);
        s.alerts.request_timeout = Duration::from_secs(5);
    }
}

/// Checks `sha256=<hex HMAC-SHA256(SECRET, body)>` independently.
fn assert_signed(signature: &str, body: &str) {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(signature, expected, "signature of {body}");
}

/// Waits until every message of alert `id` is delivered to every URL.
async fn delivered(app: &TestApp, token: &str, id: &str, urls: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = alert(app, token, id).await;
        let done = d["messages"].as_array().unwrap().iter().all(|m| {
            let ds = m["deliveries"].as_array().unwrap();
            ds.len() == urls && ds.iter().all(|x| x["status"] == "delivered")
        });
        if done && !d["messages"].as_array().unwrap().is_empty() {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "not delivered: {d}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn webhooks_get_every_alert_signed_even_after_failures(app: TestApp) {
    let steady = receiver(0).await;
    let flaky = receiver(4).await;
    let app = app
        .restart_with(webhooks(vec![steady.url.clone(), flaky.url.clone()], 50))
        .await;
    let cw = app.user("caseworker", "4503").await;
    let sup = app.user("supervisor", "4503").await;
    overdue_family(&app, &cw, "450305001001").await;
    overdue_family(&app, &cw, "450305001002").await;
    assert_eq!(scan(&app, &sup, "2026-05-02").await, (2, 0, 0));
    assert_eq!(scan(&app, &sup, "2026-05-16").await, (0, 2, 0));

    for r in [&steady, &flaky] {
        let got = r.wait_for(4).await;
        let mut seen = std::collections::BTreeSet::new();
        for (signature, body) in &got {
            assert_signed(signature, body);
            let v: Value = serde_json::from_str(body).unwrap();
            seen.insert((
                v["alert_id"].as_str().unwrap().to_owned(),
                v["event"].as_str().unwrap().to_owned(),
                v["level"].as_i64().unwrap(),
            ));
            for key in [
                "family_id",
                "village_code",
                "role",
                "due_on",
                "contact_id",
                "id",
            ] {
                assert!(v[key].is_string(), "{key} in {body}");
            }
            for personal in [
                "Li Si",
                "Wang Wu",
                "13900139000",
                "13800138000",
                "1101051960",
            ] {
                assert!(!body.contains(personal), "personal data in {body}");
            }
        }
        assert_eq!(seen.len(), 4, "two raises and two escalations: {seen:?}");
        assert_eq!(
            seen.iter()
                .filter(|s| s.1 == "alert.escalated" && s.2 == 1)
                .count(),
            2
        );
    }

    // Every attempt is recorded; the flaky URL failed 4 times in all.
    let mut codes = Vec::new();
    for a in alerts(&app, &cw, "").await {
        let d = delivered(&app, &cw, a["id"].as_str().unwrap(), 2).await;
        for m in d["messages"].as_array().unwrap() {
            for x in m["deliveries"].as_array().unwrap() {
                let attempts = x["attempts"].as_array().unwrap();
                assert_eq!(attempts.last().unwrap()["status_code"], 200, "{x}");
                assert!(x["delivered_at"].is_string());
                if x["url"] == flaky.url.as_str() {
                    codes.extend(attempts.iter().map(|t| t["status_code"].as_i64().unwrap()));
                } else {
                    assert_eq!(attempts.len(), 1, "{x}");
                }
            }
        }
    }
    codes.sort();
    assert_eq!(codes, [200, 200, 200, 200, 500, 500, 500, 500]);
    assert_eq!(flaky.hits.load(Ordering::SeqCst), 8);
}

async fn a_restart_mid_retry_loses_nothing(app: TestApp) {
    let flaky = receiver(3).await;
    let settings = || webhooks(vec![flaky.url.clone()], 400);
    let app = app.restart_with(settings()).await;
    let cw = app.user("caseworker", "4503").await;
    let sup = app.user("supervisor", "4503").await;
    overdue_family(&app, &cw, "450305001001").await;
    assert_eq!(scan(&app, &sup, "2026-05-02").await, (1, 0, 0));
    let id = alerts(&app, &cw, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Stop after the first failure, while the retry is pending.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while flaky.hits.load(Ordering::SeqCst) < 1 {
        assert!(tokio::time::Instant::now() < deadline, "no attempt");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let app = quiet(app).await;
    let d = alert(&app, &cw, &id).await;
    let delivery = &d["messages"][0]["deliveries"][0];
    assert_eq!(delivery["status"], "pending", "{d}");
    assert!(flaky.accepted().is_empty());

    // Back with the webhook configured: the retries go on from the store.
    let app = app.restart_with(settings()).await;
    let got = flaky.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_signed(&got[0].0, &got[0].1);
    let d = delivered(&app, &cw, &id, 1).await;
    let attempts = d["messages"][0]["deliveries"][0]["attempts"]
        .as_array()
        .unwrap()
        .clone();
    let codes: Vec<i64> = attempts
        .iter()
        .map(|t| t["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 500, 200]);
    let numbers: Vec<i64> = attempts
        .iter()
        .map(|t| t["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(flaky.hits.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_the_alert_endpoints() {
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
        ("/api/v1/alerts", "get"),
        ("/api/v1/alerts/scan", "post"),
        ("/api/v1/alerts/{id}", "get"),
        ("/api/v1/alerts/{id}/ack", "post"),
    ] {
        assert!(
            doc.body["paths"][path][method].is_object(),
            "{method} {path} is not described"
        );
    }
}

/// Two delivery workers at once (as two servers' would be, were leadership
/// ever to overlap) and a receiver slower than a round of posts: each post
/// is claimed on its own, with a lease that outlasts it, so every message
/// arrives once. (With one claim per round of 32 under one lease of
/// timeout + 5 s, the last posts of a round outlived their claim and the
/// other worker posted them again.)
async fn two_delivery_workers_post_each_message_once_to_a_slow_receiver(app: TestApp) {
    use nuanxin_infra::alerts::{delivery, AlertConfig};
    let app = quiet(app).await;
    let cw = app.user("caseworker", "45").await;
    let sup = app.user("supervisor", "45").await;
    const FAMILIES: usize = 32;
    for i in 0..FAMILIES {
        overdue_family(&app, &cw, &format!("4503050{:02}001", i + 1)).await;
    }
    assert_eq!(
        scan(&app, &sup, "2026-05-02").await,
        (FAMILIES as u64, 0, 0)
    );
    let slow = slow_receiver(0, Duration::from_millis(2500)).await;
    let config = AlertConfig {
        webhooks: vec![slow.url.clone()],
        request_timeout: Duration::from_secs(3),
        ..AlertConfig::default()
    };
    let db = nuanxin_infra::Db::connect(&app.db.url, 6).await.unwrap();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let client = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .build()
        .unwrap();
    let worker = || {
        let (db, config, client, shutdown) =
            (db.clone(), config.clone(), client.clone(), shutdown.clone());
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            // Each worker keeps stepping, as the real one does, until
            // nothing is left (or long after a lease would have expired).
            while started.elapsed() < Duration::from_secs(40) {
                delivery::step(&db, delivery::OUTBOXES[0], &config, &client, &shutdown)
                    .await
                    .expect("a delivery step");
                let pending: i64 = on_pool!(&db, pool => {
                    sqlx::query_scalar(
                        "SELECT count(*) FROM alert_deliveries WHERE status = 'pending'",
                    )
                    .fetch_one(pool)
                    .await
                    .unwrap()
                });
                if pending == 0 && started.elapsed() > Duration::from_secs(12) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let (a, b) = (worker(), worker());
    a.await.unwrap();
    b.await.unwrap();
    db.close().await;
    let accepted = slow.accepted();
    let mut bodies: Vec<String> = accepted.iter().map(|(_, body)| body.clone()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), FAMILIES, "every message arrived");
    assert_eq!(slow.hits.load(Ordering::SeqCst), FAMILIES, "and none twice");
}
