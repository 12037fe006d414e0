//! The user lifecycle: the list of users within the caller's scope,
//! disabling a user (their token refused on the very next request — on
//! PostgreSQL also by a second server on the same database, within a
//! bounded wait), rotating a token, the refusals, last-seen times, and the
//! attribution of what a disabled user recorded.

use std::time::{Duration, Instant};

use nuanxin_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_stores!(
    the_list_holds_only_users_within_the_callers_scope,
    a_disabled_users_token_is_refused_on_the_very_next_request,
    a_rotated_token_is_refused_on_the_very_next_request,
    refusals_of_the_user_lifecycle,
    last_seen_is_recorded_off_the_request_path,
);

/// How long a second server may take to refuse a token disabled or rotated
/// through the first (PostgreSQL NOTIFY to its listener; milliseconds in
/// practice). The documented bound (docs/user-guide.md).
const OTHER_SERVER_BOUND: Duration = Duration::from_secs(2);

/// Creates a user; returns (token, id).
async fn create(app: &TestApp, name: &str, role: &str, scope: &str) -> (String, String) {
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": name, "role": role, "scope": scope}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.body["token"].as_str().unwrap().to_owned(),
        r.body["id"].as_str().unwrap().to_owned(),
    )
}

/// Every user `token`'s holder may list, following the cursors with pages
/// of `limit`.
async fn all_users(app: &TestApp, token: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit={limit}&cursor={c}"),
            None => format!("/api/v1/users?limit={limit}"),
        };
        let r = app.get(&path, token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        out.extend(items.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn names(users: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = users
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

async fn disable(app: &TestApp, token: &str, id: &str, reason: &str) -> Response {
    app.post(
        &format!("/api/v1/users/{id}/disable"),
        token,
        json!({"reason": reason}),
    )
    .await
}

async fn rotate(app: &TestApp, token: &str, id: &str) -> Response {
    app.send(
        reqwest::Method::POST,
        &format!("/api/v1/users/{id}/tokens"),
        Some(token),
        None,
        &[],
    )
    .await
}

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/me", token).await.status
}

async fn the_list_holds_only_users_within_the_callers_scope(app: TestApp) {
    let (county_admin, _) = create(&app, "County Admin", "admin", "450305").await;
    let (township_admin, township_admin_id) =
        create(&app, "Township Admin", "admin", "450305001").await;
    create(&app, "Village Worker", "caseworker", "450305001001").await;
    create(&app, "Other Township", "caseworker", "450305002").await;
    create(&app, "Other County", "caseworker", "450303").await;
    let (supervisor, _) = create(&app, "County Supervisor", "supervisor", "450305").await;

    // A township admin sees their township only: not the county's users,
    // nor another township's, nor another county's.
    let seen = all_users(&app, &township_admin, 1).await;
    assert_eq!(names(&seen), ["Township Admin", "Village Worker"]);
    let me_item = seen
        .iter()
        .find(|u| u["id"] == township_admin_id.as_str())
        .unwrap();
    assert_eq!(me_item["role"], "admin");
    assert_eq!(me_item["scope"], "450305001");
    assert_eq!(me_item["disabled"], false);
    assert!(me_item["disabled_at"].is_null());
    for u in &seen {
        let item = u.as_object().unwrap();
        assert!(
            !item.iter().any(|(k, v)| k == "token"
                || k.contains("hash")
                || v.as_str().is_some_and(|v| v.starts_with("nx_"))),
            "no token or hash in the list: {u}"
        );
    }

    // The county admin sees the county, not the other county.
    let seen = all_users(&app, &county_admin, 2).await;
    assert_eq!(
        names(&seen),
        [
            "County Admin",
            "County Supervisor",
            "Other Township",
            "Township Admin",
            "Village Worker"
        ]
    );
    // Pages are in the order of the ids, without repeats.
    let ids: Vec<&str> = seen.iter().map(|u| u["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);

    // The bootstrap admin sees everyone.
    assert_eq!(all_users(&app, ADMIN_TOKEN, 500).await.len(), 7);

    // Not for supervisors or caseworkers.
    app.get("/api/v1/users", &supervisor)
        .await
        .assert_problem(403);
    // Only `limit` and `cursor`.
    app.get("/api/v1/users?role=admin", ADMIN_TOKEN)
        .await
        .assert_problem(400);
    app.get("/api/v1/users?cursor=nope", ADMIN_TOKEN)
        .await
        .assert_problem(400);
}

async fn a_disabled_users_token_is_refused_on_the_very_next_request(app: TestApp) {
    let (county_admin, _) = create(&app, "County Admin", "admin", "450305").await;
    let (cw, cw_id) = create(&app, "Wang Fang", "caseworker", "450305").await;
    let family = app.register(&cw, "450305001001").await;
    // Read the case file (an access-log row), and warm any token cache.
    for _ in 0..3 {
        assert_eq!(me(&app, &cw).await, 200);
    }
    assert_eq!(
        app.get(&format!("/api/v1/families/{family}"), &cw)
            .await
            .status,
        200
    );

    let r = disable(&app, &county_admin, &cw_id, "left the job").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let county_admin_id = app.get("/api/v1/me", &county_admin).await.body["id"].clone();
    assert_eq!(
        r.body["disabled_by"], county_admin_id,
        "who disabled is kept"
    );
    assert_eq!(r.body["id"], cw_id.as_str());
    assert_eq!(r.body["disabled"], true);
    assert_eq!(r.body["disabled_at"], "2026-06-30T04:00:00Z");
    assert_eq!(r.body["disabled_reason"], "left the job");
    assert_eq!(r.body["name"], "Wang Fang");

    // The very next request, on every endpoint, is 401.
    app.get("/api/v1/me", &cw).await.assert_problem(401);
    app.get(&format!("/api/v1/families/{family}"), &cw)
        .await
        .assert_problem(401);
    app.post(
        &format!("/api/v1/families/{family}/notes"),
        &cw,
        json!({"text": "after leaving"}),
    )
    .await
    .assert_problem(401);
    // Nor can it get itself a new token.
    rotate(&app, &cw, &cw_id).await.assert_problem(401);

    // Disabling again: 409, and nothing changes.
    let again = disable(&app, &county_admin, &cw_id, "once more").await;
    again.assert_problem(409);
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .contains("already disabled"),
        "{}",
        again.text
    );
    // A disabled user gets no new token from an admin either.
    rotate(&app, &county_admin, &cw_id)
        .await
        .assert_problem(409);
    assert_eq!(me(&app, &cw).await, 401);

    // Listed as disabled, with the first reason.
    let listed = all_users(&app, &county_admin, 500).await;
    let item = listed.iter().find(|u| u["id"] == cw_id.as_str()).unwrap();
    assert_eq!(item["disabled"], true);
    assert_eq!(item["disabled_reason"], "left the job");

    // What they recorded keeps their name and id, in the history and in
    // the access log.
    let h = app
        .get(&format!("/api/v1/families/{family}/history"), ADMIN_TOKEN)
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    let first = &h.body["items"][0];
    assert_eq!(first["event_type"], "FamilyRegistered");
    assert_eq!(first["recorded_by"]["id"], cw_id.as_str());
    assert_eq!(first["recorded_by"]["name"], "Wang Fang");
    assert_eq!(h.body["chain_valid"], true);
    let log = app
        .get(&format!("/api/v1/access-log?user_id={cw_id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    let entries = log.body["items"].as_array().unwrap();
    assert!(!entries.is_empty(), "{}", log.text);
    assert!(entries.iter().all(|e| e["user_name"] == "Wang Fang"));

    // Other users are untouched.
    assert_eq!(me(&app, &county_admin).await, 200);
}

async fn a_rotated_token_is_refused_on_the_very_next_request(app: TestApp) {
    let (cw, cw_id) = create(&app, "Wang Fang", "caseworker", "450305").await;
    let (other, _) = create(&app, "Li Wei", "caseworker", "450305").await;
    for _ in 0..3 {
        assert_eq!(me(&app, &cw).await, 200);
    }

    // A user rotates their own token.
    let r = rotate(&app, &cw, &cw_id).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["id"], cw_id.as_str());
    assert_eq!(r.body["name"], "Wang Fang");
    assert_eq!(r.body["role"], "caseworker");
    assert_eq!(r.body["scope"], "450305");
    let new = r.body["token"].as_str().unwrap().to_owned();
    assert!(new.starts_with("nx_") && new.len() == 67, "{new}");
    assert_ne!(new, cw);
    app.get("/api/v1/me", &cw).await.assert_problem(401);
    let who = app.get("/api/v1/me", &new).await;
    assert_eq!(who.status, 200, "{}", who.text);
    assert_eq!(who.body["id"], cw_id.as_str());

    let rotated_by = |users: &[Value]| {
        let item = users.iter().find(|u| u["id"] == cw_id.as_str()).unwrap();
        (
            item["token_rotated_by"].clone(),
            item["token_rotated_at"].is_string(),
        )
    };
    let listed = all_users(&app, ADMIN_TOKEN, 500).await;
    assert_eq!(rotated_by(&listed), (json!(cw_id), true), "by themselves");

    // An admin rotates it for them: the list says which admin (who saw a
    // token that records in the caseworker's name).
    let r = rotate(&app, ADMIN_TOKEN, &cw_id).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let newer = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(me(&app, &new).await, 401);
    assert_eq!(me(&app, &newer).await, 200);
    let admin_id = app.get("/api/v1/me", ADMIN_TOKEN).await.body["id"].clone();
    let listed = all_users(&app, ADMIN_TOKEN, 500).await;
    assert_eq!(rotated_by(&listed), (admin_id, true), "by the admin");

    // Another caseworker may not rotate it.
    rotate(&app, &other, &cw_id).await.assert_problem(403);
    assert_eq!(me(&app, &newer).await, 200);
    // The user still records with the new token.
    app.register(&newer, "450305001001").await;
}

async fn refusals_of_the_user_lifecycle(app: TestApp) {
    let (county_admin, county_admin_id) = create(&app, "County Admin", "admin", "450305").await;
    let (township_admin, _) = create(&app, "Township Admin", "admin", "450305001").await;
    let (cw, cw_id) = create(&app, "Wang Fang", "caseworker", "450305").await;
    let (supervisor, _) = create(&app, "Zhao Min", "supervisor", "450305").await;
    let (_, elsewhere_id) = create(&app, "Other County", "caseworker", "450303").await;

    // Not an admin: 403.
    disable(&app, &cw, &elsewhere_id, "x")
        .await
        .assert_problem(403);
    disable(&app, &supervisor, &cw_id, "x")
        .await
        .assert_problem(403);
    // Outside the admin's scope: 404, as for an unknown id (a user outside
    // it is not revealed). A township admin cannot reach the county's user.
    disable(&app, &county_admin, &elsewhere_id, "x")
        .await
        .assert_problem(404);
    disable(&app, &township_admin, &cw_id, "x")
        .await
        .assert_problem(404);
    rotate(&app, &township_admin, &cw_id)
        .await
        .assert_problem(404);
    let unknown = uuid::Uuid::new_v4().to_string();
    disable(&app, &county_admin, &unknown, "x")
        .await
        .assert_problem(404);
    rotate(&app, &county_admin, &unknown)
        .await
        .assert_problem(404);
    app.post(
        "/api/v1/users/not-a-uuid/disable",
        &county_admin,
        json!({"reason": "x"}),
    )
    .await
    .assert_problem(404);
    // Themselves: 409.
    let own = disable(&app, &county_admin, &county_admin_id, "x").await;
    own.assert_problem(409);
    assert!(
        own.body["detail"].as_str().unwrap().contains("yourself"),
        "{}",
        own.text
    );
    // A reason is required, and must be text.
    app.post(
        &format!("/api/v1/users/{cw_id}/disable"),
        &county_admin,
        json!({}),
    )
    .await
    .assert_field_error("reason");
    disable(&app, &county_admin, &cw_id, "  ")
        .await
        .assert_field_error("reason");
    disable(&app, &county_admin, &cw_id, "bad\u{0}reason")
        .await
        .assert_field_error("reason");
    // In Chinese too.
    let zh = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/users/{county_admin_id}/disable"),
            Some(&county_admin),
            Some(&json!({"reason": "x"})),
            &[("Accept-Language", "zh-CN")],
        )
        .await;
    zh.assert_problem(409);
    assert_eq!(zh.body["detail"], "您不能停用自己的账号", "{}", zh.text);

    // None of it changed anything.
    for t in [&county_admin, &township_admin, &cw, &supervisor] {
        assert_eq!(me(&app, t).await, 200);
    }
    let listed = all_users(&app, ADMIN_TOKEN, 500).await;
    assert!(listed.iter().all(|u| u["disabled"] == false), "{listed:?}");
}

async fn last_seen_is_recorded_off_the_request_path(app: TestApp) {
    let (cw, cw_id) = create(&app, "Wang Fang", "caseworker", "450305").await;
    let find = |users: Vec<Value>| {
        users
            .into_iter()
            .find(|u| u["id"] == cw_id.as_str())
            .unwrap()
    };
    assert!(find(all_users(&app, ADMIN_TOKEN, 500).await)["last_seen_at"].is_null());
    assert_eq!(me(&app, &cw).await, 200);
    // Written by a background task: within a short while.
    let start = Instant::now();
    loop {
        let item = find(all_users(&app, ADMIN_TOKEN, 500).await);
        if !item["last_seen_at"].is_null() {
            // The server's clock (fixed in the tests).
            assert_eq!(item["last_seen_at"], "2026-06-30T04:00:00Z");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "last_seen_at not written: {item}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` until it holds or `bound` passes; returns how long it took.
async fn within<F, Fut>(bound: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > bound {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two servers on one PostgreSQL database, each with its own pool, token
/// cache and listener (as two processes would have): a token disabled or
/// rotated through server A is refused by server B within
/// [`OTHER_SERVER_BOUND`], even though B had it cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_refuses_a_disabled_or_rotated_token_within_the_bound() {
    let Some(a) = TestApp::spawn(Store::Postgres).await else {
        return;
    };
    let b = TestApp::start(Store::Postgres, a.db.clone(), |_| {}).await;
    let (cw, cw_id) = create(&a, "Wang Fang", "caseworker", "450305").await;
    let (other, other_id) = create(&a, "Li Wei", "caseworker", "450305").await;
    // B caches both tokens (once its listener is up; repeat to be sure).
    for _ in 0..5 {
        assert_eq!(me(&b, &cw).await, 200);
        assert_eq!(me(&b, &other).await, 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let r = disable(&a, ADMIN_TOKEN, &cw_id, "left the job").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(me(&a, &cw).await, 401, "A refuses at once");
    let took = within(OTHER_SERVER_BOUND, || async { me(&b, &cw).await == 401 })
        .await
        .expect("B refuses the disabled token within the bound");
    eprintln!("server B refused the disabled token after {took:?}");
    // And keeps refusing it.
    for _ in 0..5 {
        assert_eq!(me(&b, &cw).await, 401);
    }

    let r = rotate(&a, ADMIN_TOKEN, &other_id).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let new = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(me(&a, &other).await, 401, "A refuses at once");
    let took = within(OTHER_SERVER_BOUND, || async { me(&b, &other).await == 401 })
        .await
        .expect("B refuses the rotated token within the bound");
    eprintln!("server B refused the rotated token after {took:?}");
    assert_eq!(me(&b, &new).await, 200);

    // Disabling through B is seen by A.
    let r = disable(&b, ADMIN_TOKEN, &other_id, "left too").await;
    assert_eq!(r.status, 200, "{}", r.text);
    within(OTHER_SERVER_BOUND, || async { me(&a, &new).await == 401 })
        .await
        .expect("A refuses the token disabled through B within the bound");
    a.db.assert_documented();
    b.stop().await;
    a.stop().await;
}
