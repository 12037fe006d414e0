//! The admin's pages: the users within the admin's scope, creating a user
//! with a first password (who then signs in), the refusals beside their
//! fields (a login taken, a scope outside the admin's), setting a password,
//! disabling a user (their session ends at once; not yourself), the access
//! log, and a 403 page for every other role.

use nuanxin_tests::web::PASSWORD;
use nuanxin_tests::*;

both_stores!(
    an_admin_creates_a_caseworker_who_then_signs_in,
    refusals_of_the_creation_form_sit_beside_their_fields,
    other_roles_get_a_403_page,
    disabling_a_user_ends_their_session_and_passwords_are_set,
    the_access_log_page,
);

async fn an_admin_creates_a_caseworker_who_then_signs_in(app: TestApp) {
    let admin = app.web_user("admin", "450305").await;
    let outsider = app.web_user("caseworker", "450306").await;
    let page = admin.get("/admin/users").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has(&admin.login)
        .assert_has(r#"action="/admin/users""#)
        .assert_has(r#"name="password""#)
        .assert_lacks(&outsider.login);

    let done = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("name", "Wang Fang"),
                ("login", "wang.fang"),
                ("role", "caseworker"),
                ("scope", "450305001"),
                ("password", "a first password"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location.unwrap();
    assert!(
        location.starts_with("/admin/users/") && location.ends_with("?done=created"),
        "{location}"
    );
    let page = admin.get(&location).await;
    assert_eq!(page.status, 200);
    page.assert_has("用户已创建")
        .assert_has("wang.fang")
        .assert_has("450305001")
        .assert_has("工作人员");
    admin.get("/admin/users").await.assert_has("Wang Fang");
    // Through the API too: the same user.
    let users = app.get("/api/v1/users?limit=500", ADMIN_TOKEN).await;
    let created = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "wang.fang")
        .expect("the user")
        .clone();
    assert_eq!(created["role"], "caseworker");
    assert_eq!(created["scope"], "450305001");
    assert_eq!(created["has_password"], true);

    let web = app.web_anonymous();
    let signed = web.sign_in("wang.fang", "a first password").await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    web.get("/account").await.assert_has("Wang Fang");
}

async fn refusals_of_the_creation_form_sit_beside_their_fields(app: TestApp) {
    let admin = app.web_user("admin", "450305").await;
    let taken = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("name", "Zhao Lei"),
                ("login", &admin.login),
                ("role", "caseworker"),
                ("scope", "450305"),
                ("password", "a first password"),
            ],
        )
        .await;
    assert_eq!(taken.status, 422, "{}", taken.body);
    taken
        .assert_has(r#"<p class="field-error" id="login-error" role="alert">该登录名已被使用</p>"#)
        .assert_has(r#"value="Zhao Lei""#)
        .assert_lacks("a first password");

    let outside = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("name", "Zhao Lei"),
                ("login", "zhao.lei"),
                ("role", "supervisor"),
                ("scope", "450306"),
                ("password", "a first password"),
            ],
        )
        .await;
    assert_eq!(outside.status, 422, "{}", outside.body);
    outside
        .assert_has(r#"id="scope-error""#)
        .assert_has("新用户的管辖范围")
        .assert_has(r#"value="450306""#);

    let invalid = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("name", ""),
                ("login", "No Spaces"),
                ("role", "boss"),
                ("scope", "450305"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    for field in ["name", "login", "role", "password"] {
        invalid.assert_has(&format!(r#"id="{field}-error""#));
    }
    let users = app.get("/api/v1/users?limit=500", ADMIN_TOKEN).await;
    assert!(
        !users.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "Zhao Lei"),
        "nothing was created"
    );
}

async fn other_roles_get_a_403_page(app: TestApp) {
    let cw = app.web_user("caseworker", "450305").await;
    let sup = app.web_user("supervisor", "450305").await;
    let target = app.web_user("caseworker", "450305001").await;
    for web in [&cw, &sup] {
        for path in [
            "/admin/users".to_owned(),
            "/admin/access-log".into(),
            format!("/admin/users/{}", target.user_id),
        ] {
            let page = web.get(&path).await;
            assert_eq!(page.status, 403, "{path}");
            page.assert_has("您的角色不能使用这个页面");
        }
        let csrf = nuanxin_tests::web::hidden_fields(&web.get("/account").await.body, "/logout");
        let mut fields: Vec<(&str, &str)> =
            csrf.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        fields.push(("reason", "x"));
        let r = web
            .post_form(&format!("/admin/users/{}/disable", target.user_id), &fields)
            .await;
        assert_eq!(r.status, 403);
    }
    assert_eq!(target.get("/").await.status, 200, "still signed in");
    // An admin of another county does not see the user.
    let other = app.web_user("admin", "450306").await;
    assert_eq!(
        other
            .get(&format!("/admin/users/{}", target.user_id))
            .await
            .status,
        404
    );
}

async fn disabling_a_user_ends_their_session_and_passwords_are_set(app: TestApp) {
    let admin = app.web_user("admin", "450305").await;
    let user = app.web_user("caseworker", "450305001").await;
    assert_eq!(user.get("/").await.status, 200);
    let detail = format!("/admin/users/{}", user.user_id);

    // A new password: the user's sessions end; the new one works.
    let short = admin
        .submit(
            &detail,
            &format!("{detail}/password"),
            &[("password", "short")],
        )
        .await;
    assert_eq!(short.status, 422);
    short.assert_has(r#"id="password-error""#);
    let set = admin
        .submit(
            &detail,
            &format!("{detail}/password"),
            &[("password", "another long password")],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    assert_eq!(user.get("/").await.status, 303, "signed out");
    assert_eq!(user.sign_in(&user.login, PASSWORD).await.status, 401);
    assert_eq!(
        user.sign_in(&user.login, "another long password")
            .await
            .status,
        303
    );
    assert_eq!(user.get("/").await.status, 200);

    // Disabling needs a reason; then the session ends at once.
    let no_reason = admin
        .submit(&detail, &format!("{detail}/disable"), &[("reason", " ")])
        .await;
    assert_eq!(no_reason.status, 422);
    no_reason.assert_has(r#"id="reason-error""#);
    assert_eq!(user.get("/").await.status, 200);
    let done = admin
        .submit(
            &detail,
            &format!("{detail}/disable"),
            &[("reason", "left the job")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = user.get("/account").await;
    assert_eq!(page.status, 303);
    assert!(page.location.unwrap().starts_with("/login"));
    let page = admin.get(&format!("{detail}?done=disabled")).await;
    page.assert_has("用户已停用")
        .assert_has("left the job")
        .assert_lacks(&format!(r#"action="{detail}/disable""#));
    let r = app.get("/api/v1/me", &user.token).await;
    assert_eq!(r.status, 401, "the token too");

    // Not yourself.
    let me = format!("/admin/users/{}", admin.user_id);
    admin
        .get(&me)
        .await
        .assert_lacks(&format!(r#"action="{me}/disable""#));
    let csrf = nuanxin_tests::web::hidden_fields(&admin.get("/account").await.body, "/logout");
    let mut fields: Vec<(&str, &str)> =
        csrf.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    fields.push(("reason", "testing"));
    let r = admin.post_form(&format!("{me}/disable"), &fields).await;
    assert_eq!(r.status, 422);
    r.assert_has("您不能停用自己的账号");
    assert_eq!(admin.get("/admin/users").await.status, 200);
}

async fn the_access_log_page(app: TestApp) {
    let cw = app.user("caseworker", "450305").await;
    let family = app.register(&cw, "450305001001").await;
    let reader = app.web_user("supervisor", "450305").await;
    assert_eq!(
        reader
            .get(&format!("/families/{family}/history"))
            .await
            .status,
        200
    );
    let r = app
        .get(&format!("/api/v1/families/{family}"), &reader.token)
        .await;
    assert_eq!(r.status, 200);
    let admin = app.web_user("admin", "450305").await;
    let page = admin.get("/admin/access-log").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("supervisor 450305")
        .assert_has("案卷历史")
        .assert_has(&family)
        .assert_has(r#"href="/admin/users""#);
    admin
        .get(&format!("/admin/access-log?user_id={}", admin.user_id))
        .await
        .assert_has("没有符合条件的访问记录");
    assert_eq!(
        admin.get("/admin/access-log?family_id=nope").await.status,
        400
    );
    // Another county's admin sees none of it.
    let other = app.web_user("admin", "450306").await;
    other.get("/admin/access-log").await.assert_lacks(&family);
}
