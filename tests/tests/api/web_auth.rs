//! Signing in to the web pages: logins and passwords through the API, the
//! sign-in form, sessions (cookie flags, sign-out, idle expiry, disabled
//! users, password changes), form tokens, rate-limited failures and the
//! page language.

use nuanxin_tests::web::{hidden_fields, PASSWORD};
use nuanxin_tests::*;
use serde_json::json;

both_stores!(
    the_bootstrap_admin_signs_in_as_admin_and_a_page_needs_a_session,
    logins_and_passwords_through_the_api,
    a_wrong_password_answers_the_form_again_and_failures_are_throttled,
    sign_out_and_a_disabled_user_end_the_session,
    a_password_change_ends_the_other_sessions,
    a_post_without_the_form_token_changes_nothing,
    pages_are_chinese_by_default_and_english_on_request,
);

async fn the_bootstrap_admin_signs_in_as_admin_and_a_page_needs_a_session(app: TestApp) {
    // The bootstrap admin has no password until one is set (here: by the
    // API with its token), then signs in as `admin`.
    let web = app.web_anonymous();
    let page = web.get("/account").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/login?next=%2Faccount"));
    let form = web.get("/login").await;
    assert_eq!(form.status, 200);
    form.assert_has(r#"<html lang="zh-CN">"#)
        .assert_has(r#"name="login""#)
        .assert_has(r#"type="password" name="password""#);
    assert_eq!(
        web.sign_in("admin", PASSWORD).await.status,
        401,
        "no password yet"
    );

    let me = app.get("/api/v1/me", ADMIN_TOKEN).await;
    let id = me.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/users/{id}/password"),
            ADMIN_TOKEN,
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let signed = web
        .post_form(
            "/login",
            &[
                ("login", "admin"),
                ("password", PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location.as_deref(), Some("/account"));
    let page = web.get("/").await;
    assert_eq!(page.status, 200);
    page.assert_has("bootstrap admin").assert_has("退出登录");
    // The cookie: HttpOnly, SameSite=Strict, not readable by scripts.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", app.base))
        .form(&[("login", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = raw.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("nx_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // An open redirect is not followed: `next` must be a local path.
    let other = app.web_anonymous();
    let r = other
        .post_form(
            "/login",
            &[
                ("login", "admin"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/"));
}

async fn logins_and_passwords_through_the_api(app: TestApp) {
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "李娟", "role": "caseworker", "scope": "450305", "login": "li.juan",
                   "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["login"], "li.juan");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let token = r.body["token"].as_str().unwrap().to_owned();
    // Without a login, one is made; the list shows logins, never hashes.
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "Wang", "role": "supervisor", "scope": "4503"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let made = r.body["login"].as_str().unwrap().to_owned();
    assert!(made.starts_with("u-") && made.len() == 14, "{made}");
    let list = app.get("/api/v1/users", ADMIN_TOKEN).await;
    assert!(
        !list.text.contains("argon2"),
        "no password hash in the list"
    );
    let items = list.body["items"].as_array().unwrap();
    let li = items.iter().find(|u| u["id"] == id.as_str()).unwrap();
    assert_eq!(li["login"], "li.juan");
    assert_eq!(li["has_password"], true);
    let admin = items
        .iter()
        .find(|u| u["name"] == "bootstrap admin")
        .unwrap();
    assert_eq!(admin["login"], "admin");

    // Refusals: a taken login (409), a bad login or a short password (422,
    // naming the field), none of which creates a user.
    let before = app.get("/api/v1/users", ADMIN_TOKEN).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "x", "role": "caseworker", "scope": "450305", "login": "li.juan"}),
        )
        .await;
    r.assert_problem(409);
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "x", "role": "caseworker", "scope": "450305", "login": "Li Juan"}),
        )
        .await;
    r.assert_problem(422).assert_field_error("login");
    let r = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "x", "role": "caseworker", "scope": "450305", "password": "short"}),
        )
        .await;
    r.assert_problem(422).assert_field_error("password");
    assert!(!r.text.contains("short"), "the password is not echoed");
    let after = app.get("/api/v1/users", ADMIN_TOKEN).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);

    // Users change their own password with the current one; the API token
    // keeps working.
    let path = format!("/api/v1/users/{id}/password");
    let r = app
        .post(
            &path,
            &token,
            json!({"password": "a brand new secret", "current_password": "wrong one!!"}),
        )
        .await;
    r.assert_problem(403);
    let r = app
        .post(
            &path,
            &token,
            json!({"password": "a brand new secret", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(app.get("/api/v1/me", &token).await.status, 200);
    let web = app.web_anonymous();
    assert_eq!(web.sign_in("li.juan", PASSWORD).await.status, 401);
    assert_eq!(
        web.sign_in("li.juan", "a brand new secret").await.status,
        303
    );
    // Another caseworker may not set it; an admin outside the scope gets 404.
    let other = app.user("caseworker", "450305").await;
    app.post(&path, &other, json!({"password": "yet another secret"}))
        .await
        .assert_problem(403);
    let far_admin = app.user("admin", "4501").await;
    app.post(&path, &far_admin, json!({"password": "yet another secret"}))
        .await
        .assert_problem(404);
    app.post(&path, ADMIN_TOKEN, json!({"password": "too short"}))
        .await
        .assert_problem(422)
        .assert_field_error("password");
    assert_eq!(
        web.sign_in("li.juan", "a brand new secret").await.status,
        303,
        "unchanged by refusals"
    );
}

async fn a_wrong_password_answers_the_form_again_and_failures_are_throttled(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let anon = app.web_anonymous();
    let page = anon.sign_in(&web.login, "not the password").await;
    assert_eq!(page.status, 401);
    page.assert_has("登录名或密码不正确")
        .assert_has(&format!(r#"value="{}""#, web.login));
    page.assert_lacks("not the password");
    // An unknown login answers the same.
    let unknown = anon.sign_in("nobody-here", "not the password").await;
    assert_eq!(unknown.status, 401);
    unknown.assert_has("登录名或密码不正确");
    // Five failures within the window: refused even with the right one.
    for _ in 0..4 {
        assert_eq!(anon.sign_in(&web.login, "still wrong!!").await.status, 401);
    }
    let throttled = anon.sign_in(&web.login, PASSWORD).await;
    assert_eq!(throttled.status, 429);
    throttled.assert_has("失败次数过多");
    // Another login is not affected; the signed-in session keeps working.
    assert_eq!(web.get("/").await.status, 200);
}

async fn sign_out_and_a_disabled_user_end_the_session(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    assert_eq!(web.get("/account").await.status, 200);
    let home = web.get("/").await;
    let fields = hidden_fields(&home.body, "/logout");
    let csrf = fields.iter().find(|(k, _)| k == "_csrf").unwrap().1.clone();
    let out = web.post_form("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(web.get("/account").await.status, 303, "signed out");

    let web = app.web_user("caseworker", "450305").await;
    assert_eq!(web.get("/").await.status, 200);
    let r = app
        .post(
            &format!("/api/v1/users/{}/disable", web.user_id),
            ADMIN_TOKEN,
            json!({"reason": "moved away"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let page = web.get("/").await;
    assert_eq!(page.status, 303, "a disabled user's session ends at once");
    assert_eq!(
        app.web_anonymous()
            .sign_in(&web.login, PASSWORD)
            .await
            .status,
        401
    );
}

async fn a_password_change_ends_the_other_sessions(app: TestApp) {
    let phone = app.web_user("caseworker", "450305").await;
    let pc = app.web_anonymous();
    assert_eq!(pc.sign_in(&phone.login, PASSWORD).await.status, 303);
    // Changing it on the phone, with a wrong current password first.
    let wrong = phone
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", "nope nope nope"),
                ("password", "new secret words"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    wrong.assert_has("当前密码不正确");
    let short = phone
        .submit(
            "/account",
            "/account/password",
            &[("current_password", PASSWORD), ("password", "short")],
        )
        .await;
    assert_eq!(short.status, 422);
    short.assert_has("至少需要10个字符");
    let done = phone
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", "new secret words"),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/login?changed=1"));
    assert_eq!(pc.get("/").await.status, 303, "the other session ended");
    assert_eq!(phone.get("/").await.status, 303);
    assert_eq!(
        pc.sign_in(&phone.login, "new secret words").await.status,
        303
    );
}

async fn a_post_without_the_form_token_changes_nothing(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let out = web.post_form("/logout", &[("_csrf", "forged")]).await;
    assert_eq!(out.status, 403);
    out.assert_has("表单已失效");
    assert_eq!(web.get("/").await.status, 200, "still signed in");
    let change = web
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", "new secret words"),
            ],
        )
        .await;
    assert_eq!(change.status, 403);
    assert_eq!(
        app.web_anonymous()
            .sign_in(&web.login, PASSWORD)
            .await
            .status,
        303,
        "password unchanged"
    );
    // A form posted from another site is refused even with the token.
    let home = web.get("/").await;
    let csrf = hidden_fields(&home.body, "/logout")[0].1.clone();
    let r = web
        .client
        .post(format!("{}/logout", web.base))
        .header("origin", "http://evil.example")
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(web.get("/").await.status, 200);
}

async fn pages_are_chinese_by_default_and_english_on_request(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let page = web.get("/").await;
    page.assert_has(r#"<html lang="zh-CN">"#)
        .assert_has("我的工作");
    let en = web.get("/?lang=en").await;
    en.assert_has(r#"<html lang="en">"#)
        .assert_has("My work")
        .assert_lacks("我的工作");
    // Remembered for the next pages.
    web.get("/").await.assert_has(r#"<html lang="en">"#);
    web.get("/?lang=zh")
        .await
        .assert_has(r#"<html lang="zh-CN">"#);
    // Security headers on every page.
    let r = web
        .client
        .get(format!("{}/", web.base))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
}
