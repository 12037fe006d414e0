//! Group activities as a township caseworker records them: the activity,
//! who attended (landing on each family's case file and history, all or
//! nothing), attendance taken back, the lists seen from each scope, the
//! families that attended nothing for a while, and the refusals — a family
//! outside the caller's scope, a closed case, an activity elsewhere.

use nuanxin_infra::on_pool;
use nuanxin_tests::*;
use serde_json::{json, Value};

both_stores!(
    attendance_lands_on_each_familys_case,
    attendance_is_all_or_nothing_and_refusals_change_nothing,
    activities_are_seen_from_every_overlapping_scope,
    taken_back_attendance_and_the_isolation_list,
);

fn activity(place: &str, held_on: &str) -> Value {
    json!({"kind": "member_day", "title": "5·29 会员活动日", "held_on": held_on,
           "village_code_prefix": place, "organiser": "七星区计生协"})
}

/// Records an activity; its id.
async fn record(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/api/v1/activities", token, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers.get("location").unwrap().to_str().unwrap(),
        format!("/api/v1/activities/{id}")
    );
    assert_eq!(r.body["version"], 1);
    id
}

async fn attend(app: &TestApp, token: &str, activity: &str, families: &[&str]) -> Response {
    app.post(
        &format!("/api/v1/activities/{activity}/attendance"),
        token,
        json!({ "family_ids": families }),
    )
    .await
}

async fn case_file(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/families/{id}"), token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn attendance_lands_on_each_familys_case(app: TestApp) {
    let cw = app.user("caseworker", "450305001").await;
    let f1 = app.register(&cw, "450305001001").await;
    let f2 = app.register(&cw, "450305001002").await;
    let before = app.event_count().await;
    let id = record(&app, &cw, activity("450305001", "2026-05-29")).await;

    let r = attend(&app, &cw, &id, &[&f1, &f2, &f1]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["version"], 2);
    let mut added: Vec<&str> = r.body["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    added.sort();
    let mut both = vec![f1.as_str(), f2.as_str()];
    both.sort();
    assert_eq!(added, both);
    assert_eq!(
        app.event_count().await,
        before + 4,
        "the activity, its attendance and one event per family"
    );

    for f in [&f1, &f2] {
        let file = case_file(&app, &cw, f).await;
        let last = &file["activities"]["last_attended"];
        assert_eq!(last["activity_id"], id.as_str());
        assert_eq!(last["kind"], "member_day");
        assert_eq!(last["title"], "5·29 会员活动日");
        assert_eq!(last["held_on"], "2026-05-29");
        assert_eq!(file["activities"]["attended"], 1);
        assert_eq!(file["version"], 2);
        let h = app.get(&format!("/api/v1/families/{f}/history"), &cw).await;
        let last_event = h.body["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last_event["event_type"], "ActivityAttended");
        assert_eq!(last_event["data"]["activity_id"], id.as_str());
        assert_eq!(h.body["chain_valid"], true);
    }

    // Again with one of them: nothing new is recorded.
    let r = attend(&app, &cw, &id, &[&f1]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["added"], json!([]));
    assert_eq!(r.body["already_attending"], json!([f1]));
    assert_eq!(app.event_count().await, before + 4);

    // The activity, with its families.
    let r = app.get(&format!("/api/v1/activities/{id}"), &cw).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["families_attended"], 2);
    assert_eq!(r.body["organiser"], "七星区计生协");
    assert_eq!(r.body["attendees"].as_array().unwrap().len(), 2);

    // Every stream's chain holds, the activity's too.
    let db = nuanxin_infra::Db::connect(&app.db.url, 1).await.unwrap();
    let report = nuanxin_infra::audit::verify(&db, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.broken);
    assert_eq!(report.streams, 3);

    // The activity tables are rebuilt from the log.
    on_pool!(&db, pool => {
        sqlx::query("DELETE FROM activity_attendance").execute(pool).await.unwrap();
        sqlx::query("DELETE FROM activities").execute(pool).await.unwrap();
    });
    let listed = app.get("/api/v1/activities", &cw).await;
    assert_eq!(listed.body["items"], json!([]));
    assert_eq!(
        nuanxin_infra::streams::rebuild_tables(&db).await.unwrap(),
        (1, 0)
    );
    db.close().await;
    let listed = app.get("/api/v1/activities", &cw).await;
    assert_eq!(listed.body["items"][0]["id"], id.as_str());
    assert_eq!(listed.body["items"][0]["families_attended"], 2);
}

async fn attendance_is_all_or_nothing_and_refusals_change_nothing(app: TestApp) {
    let cw = app.user("caseworker", "450305001").await;
    let mine = app.register(&cw, "450305001001").await;
    let closed = app.register(&cw, "450305001002").await;
    let r = app
        .post(
            &format!("/api/v1/families/{closed}/close"),
            &cw,
            json!({"on": "2026-06-01", "reason": "moved away"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let elsewhere = app.register(ADMIN_TOKEN, "450305002001").await;
    let id = record(&app, &cw, activity("450305001", "2026-05-29")).await;
    let before = app.event_count().await;

    // A family outside the caller's scope, or no family at all: 404 naming
    // its position (never its id), and nothing is recorded.
    let r = attend(&app, &cw, &id, &[&mine, &elsewhere]).await;
    r.assert_problem(404);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.ends_with("at position 1"), "{detail}");
    assert!(!detail.contains(&elsewhere), "{detail}");
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = attend(&app, &cw, &id, &[&unknown, &mine]).await;
    r.assert_problem(404);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .ends_with("at position 0"));
    assert_eq!(app.event_count().await, before, "nothing recorded");
    attend(&app, &cw, &id, &["not-a-uuid"])
        .await
        .assert_field_error("family_ids[0]");
    attend(&app, &cw, &id, &[])
        .await
        .assert_field_error("family_ids");
    // A closed case refuses it, and then the others are not recorded either.
    let r = attend(&app, &cw, &id, &[&mine, &closed]).await;
    r.assert_problem(409);
    assert!(r.body["detail"].as_str().unwrap().contains(&closed));
    assert_eq!(app.event_count().await, before, "all or nothing");
    assert!(case_file(&app, &cw, &mine).await["activities"]["last_attended"].is_null());

    // An activity before the family's registration is refused for it.
    let early = record(&app, &cw, activity("450305001", "2026-01-05")).await;
    attend(&app, &cw, &early, &[&mine])
        .await
        .assert_problem(409);

    // The activity itself: place outside scope, the future, bad fields, roles.
    app.post(
        "/api/v1/activities",
        &cw,
        activity("450305002", "2026-05-29"),
    )
    .await
    .assert_problem(403);
    app.post(
        "/api/v1/activities",
        &cw,
        activity("450305001", "2026-07-01"),
    )
    .await
    .assert_problem(409);
    let mut bad = activity("4503", "2026-13-01");
    bad["kind"] = json!("party");
    let r = app.post("/api/v1/activities", &cw, bad).await;
    r.assert_field_error("kind")
        .assert_field_error("held_on")
        .assert_field_error("village_code_prefix");
    let sup = app.user("supervisor", "4503").await;
    app.post(
        "/api/v1/activities",
        &sup,
        activity("450305001", "2026-05-29"),
    )
    .await
    .assert_problem(403);
    attend(&app, &sup, &id, &[&mine]).await.assert_problem(403);

    // An activity the caller cannot see: not found.
    let other = record(&app, ADMIN_TOKEN, activity("450305002", "2026-05-29")).await;
    attend(&app, &cw, &other, &[&mine])
        .await
        .assert_problem(404);
    attend(&app, &cw, &uuid::Uuid::new_v4().to_string(), &[&mine])
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/activities/{other}"), &cw)
        .await
        .assert_problem(404);
    assert_eq!(
        app.event_count().await,
        before + 2,
        "only the two activities recorded"
    );

    // A retried request with the same Idempotency-Key records once.
    let headers = [("idempotency-key", "attend-1")];
    let body = json!({"family_ids": [mine]});
    let path = format!("/api/v1/activities/{id}/attendance");
    let first = app
        .send(
            reqwest::Method::POST,
            &path,
            Some(&cw),
            Some(&body),
            &headers,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = app
        .send(
            reqwest::Method::POST,
            &path,
            Some(&cw),
            Some(&body),
            &headers,
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.body["added"], json!([mine]));
    assert_eq!(app.event_count().await, before + 4);
}

async fn activities_are_seen_from_every_overlapping_scope(app: TestApp) {
    let township = app.user("caseworker", "450305001").await;
    let village = app.user("caseworker", "450305001001").await;
    let neighbour = app.user("caseworker", "450305001002").await;
    let county = app.user("supervisor", "450305").await;
    let other_county = app.user("supervisor", "450306").await;
    let mine = app.register(&village, "450305001001").await;
    let theirs = app.register(&neighbour, "450305001002").await;
    let id = record(&app, &township, activity("450305001", "2026-05-29")).await;
    record(&app, &township, activity("450305001", "2026-04-01")).await;

    // Each village's caseworker records their own families.
    let r = attend(&app, &village, &id, &[&mine]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    attend(&app, &village, &id, &[&theirs])
        .await
        .assert_problem(404);
    let r = attend(&app, &neighbour, &id, &[&theirs]).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let ids = |r: &Response| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for token in [&township, &village, &county] {
        let r = app.get("/api/v1/activities", token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(ids(&r).len(), 2);
        assert_eq!(ids(&r)[0], id, "newest first");
    }
    assert!(ids(&app.get("/api/v1/activities", &other_county).await).is_empty());
    let r = app
        .get("/api/v1/activities?from=2026-05-01&to=2026-05-31", &county)
        .await;
    assert_eq!(ids(&r), std::slice::from_ref(&id));
    let page = app.get("/api/v1/activities?limit=1", &county).await;
    assert_eq!(ids(&page), std::slice::from_ref(&id));
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .get(
            &format!("/api/v1/activities?limit=1&cursor={cursor}"),
            &county,
        )
        .await;
    assert_eq!(ids(&rest).len(), 1);
    assert_ne!(ids(&rest)[0], id);
    app.get("/api/v1/activities?from=May", &county)
        .await
        .assert_problem(400);

    // Each sees the attendees within their own scope; all are counted.
    let attendees = |r: &Response| r.body["attendees"].as_array().unwrap().len();
    let seen = app.get(&format!("/api/v1/activities/{id}"), &village).await;
    assert_eq!(seen.body["families_attended"], 2);
    assert_eq!(attendees(&seen), 1);
    let seen = app.get(&format!("/api/v1/activities/{id}"), &county).await;
    assert_eq!(attendees(&seen), 2);
}

async fn taken_back_attendance_and_the_isolation_list(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let went = app.register(&cw, "450305001001").await;
    let never = app.register(&cw, "450305001002").await;
    let closed = app.register(&cw, "450305001003").await;
    app.post(
        &format!("/api/v1/families/{closed}/close"),
        &cw,
        json!({"on": "2026-06-01", "reason": "x"}),
    )
    .await;
    let id = record(&app, &cw, activity("450305001", "2026-05-29")).await;
    assert_eq!(attend(&app, &cw, &id, &[&went]).await.status, 200);

    let listed = |r: &Response| -> Vec<(String, Value)> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["family_id"].as_str().unwrap().to_owned(),
                    i["last_attended_on"].clone(),
                )
            })
            .collect()
    };
    // 180 days by default: only the family that never went (not the closed one).
    let r = app.get("/api/v1/isolated-families", &cw).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["days"], 180);
    assert_eq!(r.body["since"], "2026-01-01");
    assert_eq!(listed(&r), [(never.clone(), Value::Null)]);
    // Over the last 20 days, the other one too, with its last activity.
    let r = app.get("/api/v1/isolated-families?days=20", &cw).await;
    let mut got = listed(&r);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (went.clone(), json!("2026-05-29")),
        (never.clone(), Value::Null),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, expected);
    // Another county's supervisor sees none of them.
    let other = app.user("supervisor", "450306").await;
    assert!(listed(&app.get("/api/v1/isolated-families", &other).await).is_empty());
    app.get("/api/v1/isolated-families?days=0", &cw)
        .await
        .assert_problem(400);

    // Taking the attendance back: the case file forgets it, the history keeps both.
    let removals = format!("/api/v1/activities/{id}/attendance/removals");
    app.post(
        &removals,
        &cw,
        json!({"family_ids": [never], "reason": "登记错误"}),
    )
    .await
    .assert_problem(409);
    let r = app
        .post(
            &removals,
            &cw,
            json!({"family_ids": [went], "reason": "登记错误"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["removed"], json!([went]));
    let file = case_file(&app, &cw, &went).await;
    assert!(file["activities"]["last_attended"].is_null());
    assert_eq!(file["activities"]["attended"], 0);
    let h = app
        .get(&format!("/api/v1/families/{went}/history"), &cw)
        .await;
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
            "ActivityAttended",
            "ActivityAttendanceRemoved"
        ]
    );
    // Not voidable from the family's side: the activity records both sides.
    let attended_action = h.body["items"][1]["action_id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/v1/families/{went}/voids"),
        &cw,
        json!({"action_id": attended_action, "reason": "x"}),
    )
    .await
    .assert_problem(409);
    let r = app.get("/api/v1/isolated-families", &cw).await;
    assert_eq!(listed(&r).len(), 2);
    let r = app.get(&format!("/api/v1/activities/{id}"), &cw).await;
    assert_eq!(r.body["families_attended"], 0);
}
