//! End-to-end tests in a real headless Chromium (tests/src/browser.rs):
//! every scenario runs against SQLite and PostgreSQL. Run them alone with
//! `cargo test -p nuanxin-tests --test browser`.

use nuanxin_tests::browser::Browser;
use nuanxin_tests::web::PASSWORD;
use nuanxin_tests::*;
use serde_json::json;

mod flows;

both_stores!(
    the_browser_opens_the_server_as_a_phone,
    login_page_has_the_form,
    signing_in_through_the_form_on_a_desktop,
);

/// The harness itself: a phone-sized Chromium reaches the server, reads
/// the page, runs scripts and takes screenshots of the phone's size.
async fn the_browser_opens_the_server_as_a_phone(app: TestApp) {
    let Some(b) = Browser::phone(&app).await else {
        return;
    };
    b.goto("/healthz").await;
    assert_eq!(b.current_path().await, "/healthz");
    let body = b.text("body").await;
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON in the page");
    assert_eq!(health, json!({"status": "ok"}));

    b.goto("/api/v1/openapi.json").await;
    assert!(
        b.text("body").await.contains(r#""openapi":"3."#),
        "the OpenAPI document shown"
    );

    // The JSON has no <meta name=viewport>: like a real phone, the browser
    // lays it out 980 pixels wide on its 360-pixel screen.
    let shown = b
        .script(
            "return [screen.width, window.innerWidth, window.devicePixelRatio, \
             navigator.language, navigator.maxTouchPoints > 0]",
        )
        .await;
    assert_eq!(
        shown,
        json!([360, 980, 2, "zh-CN", true]),
        "a Chinese phone"
    );
    let png = b.screenshot_png().await;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("IHDR width"));
    assert_eq!(width, 720, "360 CSS pixels at two device pixels each");
    b.close().await;
}

/// The sign-in page has its form and is Chinese by default.
async fn login_page_has_the_form(app: TestApp) {
    let Some(b) = Browser::phone(&app).await else {
        return;
    };
    b.goto("/login").await;
    assert_eq!(b.attr("html", "lang").await.as_deref(), Some("zh-CN"));
    assert_eq!(b.count("input[name=login]").await, 1, "a login field");
    assert_eq!(
        b.attr("input[name=password]", "type").await.as_deref(),
        Some("password"),
        "a hidden password field"
    );
    assert!(
        b.text("form").await.contains("登录名"),
        "labelled in Chinese"
    );
    assert_eq!(
        b.script("return window.innerWidth").await,
        json!(360),
        "laid out for the phone's width"
    );
    b.screenshot("login-phone").await;
    b.close().await;
}

/// The helpers a page test needs, on the real sign-in: typing, a form
/// the browser refuses, a wrong password, the session cookie, forgetting it.
async fn signing_in_through_the_form_on_a_desktop(app: TestApp) {
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "王小红", "role": "caseworker", "scope": "110105",
                   "login": "wangxh", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let Some(b) = Browser::desktop(&app).await else {
        return;
    };
    assert_eq!(b.script("return window.innerWidth").await, json!(1280));
    b.goto("/account").await;
    assert_eq!(
        b.current_path().await,
        "/login",
        "no session: sent to sign in"
    );

    b.fill("input[name=login]", "wangxh").await;
    b.fill("input[name=password]", "not the password").await;
    b.submit("form[action='/login']").await;
    assert_eq!(b.current_path().await, "/login");
    assert!(
        b.text("[role=alert]").await.contains("登录名或密码不正确"),
        "the form again with the reason"
    );
    assert!(b.cookie("nx_session").await.is_none(), "no session");

    b.fill("input[name=login]", "wangxh").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.submit("form[action='/login']").await;
    b.wait_for("main").await;
    assert_eq!(
        b.current_path().await,
        "/account",
        "back where they were going"
    );
    let cookie = b.cookie("nx_session").await.expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));

    b.delete_all_cookies().await;
    b.goto("/account").await;
    assert_eq!(
        b.current_path().await,
        "/login",
        "signed out with the cookie"
    );
    b.close().await;
}
