//! What an outside probe found (issue 10), each a regression test on both
//! stores: a NUL in text, content after the JSON body, 405 answers, unknown
//! keys echoed in 422 details, implausible data, slow clients.

use std::time::{Duration, Instant};

use nuanxin_tests::*;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

both_stores!(
    nul_in_text_is_refused_alike,
    content_after_the_body_is_refused,
    wrong_method_is_a_problem_after_authentication,
    unknown_keys_are_not_echoed,
    slow_clients_are_cut_off,
    connections_per_address_are_capped,
    command_line_reads_are_in_the_access_log,
    problems_speak_chinese_when_asked,
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

/// Reads what the server sends until it closes the connection (or `limit`
/// passes: then `None`).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// 200 half-sent requests used to stay open for 30 s and more: a request
/// head not complete within the header-read timeout, or a body not read
/// within the body-read timeout, now ends the connection (the body with a
/// 408).
async fn slow_clients_are_cut_off(app: TestApp) {
    let app = app
        .restart_with(|s| {
            s.http.header_read_timeout = Duration::from_secs(1);
            s.http.body_read_timeout = Duration::from_secs(1);
        })
        .await;
    let cw = app.user("caseworker", "45").await;

    // A head that never ends, and a connection that never says anything.
    let started = Instant::now();
    let mut half_head = TcpStream::connect(addr(&app)).await.unwrap();
    half_head
        .write_all(b"POST /api/v1/families HTTP/1.1\r\nHost: x\r\nContent-Type: app")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr(&app)).await.unwrap();
    for stream in [&mut half_head, &mut silent] {
        let closed = read_until_closed(stream, Duration::from_secs(15)).await;
        assert!(closed.is_some(), "the server kept a slow connection open");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the timeout"
    );

    // A body that stops halfway: 408, and nothing recorded.
    let body = serde_json::to_string(&family_body("450305001001")).unwrap();
    let mut half_body = TcpStream::connect(addr(&app)).await.unwrap();
    let head = format!(
        "POST /api/v1/families HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {cw}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    half_body.write_all(head.as_bytes()).await.unwrap();
    half_body
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let answer = read_until_closed(&mut half_body, Duration::from_secs(15))
        .await
        .expect("the server answers and closes");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert_eq!(app.event_count().await, 0);

    // A keep-alive client that is quick enough is served as before.
    let r = app
        .post("/api/v1/families", &cw, family_body("450305001001"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// One address may hold only so many connections; one more is refused
/// with a 429 at once, and a closed connection frees its place.
async fn connections_per_address_are_capped(app: TestApp) {
    let app = app
        .restart_with(|s| s.http.max_connections_per_address = 3)
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    // Let the server accept the three before the fourth arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(addr(&app)).await.unwrap();
    let refused = read_until_closed(&mut fourth, Duration::from_secs(10))
        .await
        .expect("refused at once");
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("application/problem+json"), "{refused}");

    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/api/v1/me", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("a place was free again");
    assert_eq!(r.status(), 200);
}

fn database_url(app: &TestApp) -> String {
    match &app.db.url {
        nuanxin_infra::DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        nuanxin_infra::DatabaseUrl::Postgres(url) => url.clone(),
    }
}

async fn access_log(app: &TestApp) -> Vec<nuanxin_infra::store::access_log::AccessEntry> {
    let db = nuanxin_infra::Db::connect(&app.db.url, 1).await.unwrap();
    let filter = nuanxin_infra::store::access_log::AccessFilter {
        family_id: None,
        user_id: None,
        scope: nuanxin_domain::Scope::everything(),
        before: None,
        limit: 50,
    };
    let entries = nuanxin_infra::store::access_log::list(&db, &filter)
        .await
        .unwrap();
    db.close().await;
    entries
}

/// `nuanxin audit export` and `audit verify` read personal data outside
/// the API: they need a `--reason` and record the read, as the
/// operating-system user, before reading.
async fn command_line_reads_are_in_the_access_log(app: TestApp) {
    use nuanxin_api::cli::{run, Cli};
    let cw = app.user("caseworker", "45").await;
    let family = app.register(&cw, "450305001001").await;
    let url = database_url(&app);
    let key_file = app.db.master_key_file().display().to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["nuanxin", "audit"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &url, "--master-key-file", &key_file]);
        Cli::from_args(all)
    };
    assert!(cli(&["verify"]).is_err(), "--reason is required");
    assert!(
        cli(&["export", "--family", &family]).is_err(),
        "--reason is required"
    );
    let before = access_log(&app).await.len();
    assert!(run(cli(&["verify", "--reason", "  "]).unwrap())
        .await
        .is_err());
    assert!(
        run(cli(&["export", "--family", &family, "--reason", "a\u{0}"]).unwrap())
            .await
            .is_err()
    );
    assert_eq!(
        access_log(&app).await.len(),
        before,
        "a refused read is not recorded"
    );

    run(cli(&[
        "export",
        "--family",
        &family,
        "--reason",
        "county inspection 2026-06",
    ])
    .unwrap())
    .await
    .expect("export runs");
    run(cli(&["verify", "--reason", "monthly check"]).unwrap())
        .await
        .expect("verify runs");
    let log = access_log(&app).await;
    assert_eq!(log.len(), before + 2);
    let (verify, export) = (&log[0], &log[1]);
    assert_eq!(export.record.endpoint, "cli:audit export");
    assert_eq!(export.record.family_id.to_string(), family);
    assert_eq!(export.reason.as_deref(), Some("county inspection 2026-06"));
    assert_eq!(verify.record.endpoint, "cli:audit verify");
    assert!(verify.record.family_id.is_nil(), "the whole log");
    assert_eq!(verify.reason.as_deref(), Some("monthly check"));
    for entry in [verify, export] {
        assert!(entry.record.user_id.is_nil(), "no Nuanxin user");
        assert_eq!(
            entry.os_user.as_deref(),
            Some(nuanxin_api::cli::os_user().as_str())
        );
        assert!(entry.user_name.is_none());
    }
    // API reads carry neither.
    app.get(&format!("/api/v1/families/{family}"), &cw).await;
    let newest = &access_log(&app).await[0];
    assert_eq!(newest.record.endpoint, "case_file");
    assert!(newest.os_user.is_none() && newest.reason.is_none());
}

/// Users read Chinese: `Accept-Language: zh` gets every problem's title,
/// detail and field messages in Chinese (field names stay the API's);
/// anything else gets English.
async fn problems_speak_chinese_when_asked(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let zh = [("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")];
    let visit = json!({"role": "village", "mode": "home", "visited_on": "2026-02-01",
                       "findings": " ", "needs": []});
    let path = format!("/api/v1/families/{id}/visits");

    let r = app
        .send(Method::POST, &path, Some(&cw), Some(&visit), &zh)
        .await;
    r.assert_field_error("findings");
    assert_eq!(r.body["title"], "字段校验未通过", "{}", r.text);
    assert_eq!(r.body["errors"][0]["message"], "不能为空", "{}", r.text);
    assert_eq!(r.body["detail"], "`findings` 不能为空", "{}", r.text);
    assert_eq!(r.headers["content-language"], "zh-CN");

    // A rule of the case's state (409) and a missing token (401).
    let ok_visit = json!({"role": "village", "mode": "home", "visited_on": "2026-02-01",
                          "findings": "well", "needs": []});
    let r = app
        .send(Method::POST, &path, Some(&cw), Some(&ok_visit), &zh)
        .await;
    r.assert_problem(409);
    assert_eq!(r.body["detail"], "尚未指派村级联系人", "{}", r.text);
    let r = app.send(Method::GET, "/api/v1/me", None, None, &zh).await;
    r.assert_problem(401);
    assert_eq!(r.body["detail"], "缺少访问令牌或令牌无效", "{}", r.text);
    let r = app
        .send(
            Method::GET,
            &format!("/api/v1/families/{}", uuid::Uuid::new_v4()),
            Some(&cw),
            None,
            &zh,
        )
        .await;
    r.assert_problem(404);
    assert_eq!(r.body["title"], "未找到");

    // English otherwise.
    for headers in [
        &[][..],
        &[("accept-language", "en-US,en;q=0.9,zh;q=0.5")][..],
    ] {
        let r = app
            .send(Method::POST, &path, Some(&cw), Some(&visit), headers)
            .await;
        r.assert_field_error("findings");
        assert_eq!(
            r.body["errors"][0]["message"], "must not be empty",
            "{}",
            r.text
        );
        assert!(r.headers.get("content-language").is_none());
    }
}
