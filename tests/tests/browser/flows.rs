//! What users do, in a real browser: a caseworker on a phone records a
//! visit and sees the family leave the overdue list; a double tap records
//! once; a supervisor sees the dashboard and a history and has no record
//! buttons; an admin creates a user who then signs in; an expired session
//! sends the user back to sign in; a caseworker uploads a register on
//! the import page; an admin erases a closed family's personal data and
//! the case file reads erased. Screenshots of the main pages go to
//! `docs/screenshots/` (phone: 360 px wide; desktop: 1280 px).

use std::time::Duration;

use nuanxin_tests::browser::Browser;
use nuanxin_tests::web::{WebClient, PASSWORD};
use nuanxin_tests::*;

both_stores!(
    a_caseworker_records_a_visit_on_a_phone,
    a_double_tap_records_once,
    a_supervisor_sees_the_dashboard_and_a_history_without_record_buttons,
    an_admin_creates_a_user_who_then_signs_in,
    an_expired_session_sends_the_user_to_sign_in,
    a_caseworker_uploads_a_register,
    an_admin_erases_a_closed_familys_personal_data,
);

/// A family of village 450305001001 with both contacts since January and
/// no visit: overdue for both roles on the test day (2026-06-30).
async fn overdue_family(app: &TestApp, token: &str) -> String {
    let family = app.register(token, "450305001001").await;
    for role in ["village", "township"] {
        let r = app
            .post(
                &format!("/api/v1/families/{family}/contacts"),
                token,
                contact_body(role, "2026-01-10"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    family
}

async fn sign_in(b: &Browser, login: &str) {
    b.goto("/login").await;
    b.fill("input[name=login]", login).await;
    b.fill("input[name=password]", PASSWORD).await;
    b.submit("form[action='/login']").await;
    b.wait_for("main").await;
    assert_ne!(b.current_path().await, "/login", "signed in as {login}");
}

/// Non-voided visits of `family`, through the API.
async fn visits(app: &TestApp, web: &WebClient, family: &str) -> usize {
    let r = app
        .get(&format!("/api/v1/families/{family}/history"), &web.token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.text.matches("VisitRecorded").count()
}

async fn a_caseworker_records_a_visit_on_a_phone(app: TestApp) {
    let cw = app.web_user("caseworker", "450305").await;
    let family = overdue_family(&app, &cw.token).await;
    for _ in 0..3 {
        overdue_family(&app, &cw.token).await;
    }
    let Some(b) = Browser::phone(&app).await else {
        return;
    };
    sign_in(&b, &cw.login).await;
    assert_eq!(b.current_path().await, "/");
    let link = format!("a[href='/families/{family}']");
    assert!(
        b.count(&link).await > 0,
        "the overdue family is on my work today"
    );
    b.screenshot("my-work-phone").await;

    b.goto("/overdue").await;
    assert!(b.count(&link).await > 0, "the family is overdue");
    b.click_and_wait(&link).await;
    assert_eq!(b.current_path().await, format!("/families/{family}"));
    b.screenshot("case-file-phone").await;

    let record = format!("a[href^='/families/{family}/visit']");
    b.click_and_wait(&record).await;
    assert!(b
        .current_path()
        .await
        .starts_with(&format!("/families/{family}/visit")));
    // Today's date and the role are filled in; mode and findings are ours.
    let today = b
        .attr("input[name=visited_on]", "value")
        .await
        .unwrap_or_default();
    assert_eq!(today, "2026-06-30", "today prefilled");
    b.click("input[name=role][value=village]").await;
    b.click("input[name=mode][value=home]").await;
    b.fill("textarea[name=findings]", "身体健康，情绪稳定")
        .await;
    b.screenshot("visit-form-phone").await;
    b.submit(&format!("form[action^='/families/{family}/visit']"))
        .await;
    b.wait_for("main").await;
    assert_eq!(
        b.current_path().await,
        format!("/families/{family}"),
        "back on the case file"
    );
    assert!(
        b.text("main").await.contains("身体健康"),
        "the visit is in the timeline"
    );
    assert_eq!(visits(&app, &cw, &family).await, 1);

    b.goto("/overdue?role=village").await;
    b.wait_for("main").await;
    assert_eq!(
        b.count(&link).await,
        0,
        "the family left the village contact's overdue list"
    );
    b.screenshot("overdue-phone").await;
    b.close().await;
}

async fn a_double_tap_records_once(app: TestApp) {
    let cw = app.web_user("caseworker", "450305").await;
    let family = overdue_family(&app, &cw.token).await;
    let Some(b) = Browser::phone(&app).await else {
        return;
    };
    sign_in(&b, &cw.login).await;
    b.goto(&format!("/families/{family}/visit?role=village"))
        .await;
    b.click("input[name=role][value=village]").await;
    b.click("input[name=mode][value=phone]").await;
    b.fill("textarea[name=findings]", "电话问候").await;
    // Two taps on the save button before the first answer arrives.
    b.script(
        "const f = document.querySelector('form[action^=\"/families/\"]'); \
         const s = f.querySelector('button[type=submit]'); s.click(); s.click(); return true",
    )
    .await;
    b.wait_for("main").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.wait_for("main").await;
    assert_eq!(
        visits(&app, &cw, &family).await,
        1,
        "one visit for two taps"
    );
    b.close().await;
}

async fn a_supervisor_sees_the_dashboard_and_a_history_without_record_buttons(app: TestApp) {
    let cw = app.web_user("caseworker", "450305").await;
    let family = overdue_family(&app, &cw.token).await;
    for v in ["450305001002", "450305002001"] {
        app.register(&cw.token, v).await;
    }
    let r = app
        .post(
            &format!("/api/v1/families/{family}/visits"),
            &cw.token,
            visit_body("village", "home", "2026-06-01"),
        )
        .await;
    assert_eq!(r.status, 201);
    let sup = app.web_user("supervisor", "4503").await;
    let Some(b) = Browser::desktop(&app).await else {
        return;
    };
    sign_in(&b, &sup.login).await;
    assert_eq!(b.current_path().await, "/");
    let main = b.text("main").await;
    assert!(main.contains("450305"), "the county's row: {main}");
    assert!(b.count("svg.chart").await > 0, "charts");
    b.screenshot("dashboard-desktop").await;
    b.click_and_wait("a[href='/?prefix=450305']").await;
    assert!(
        b.text("main").await.contains("450305001"),
        "drilled down to the townships"
    );

    b.goto(&format!("/families/{family}")).await;
    b.wait_for("main").await;
    assert_eq!(
        b.count(&format!("a[href^='/families/{family}/visit']"))
            .await,
        0,
        "no record buttons"
    );
    assert_eq!(
        b.count("main form[method=post]").await,
        0,
        "no record forms"
    );
    b.click_and_wait(&format!("a[href='/families/{family}/history']"))
        .await;
    assert!(
        b.text("main").await.contains("哈希链完整"),
        "the chain is shown valid"
    );
    assert_eq!(
        b.count(&format!("a[href^='/families/{family}/visit']"))
            .await,
        0
    );
    b.screenshot("history-desktop").await;
    b.close().await;

    let Some(phone) = Browser::phone(&app).await else {
        return;
    };
    sign_in(&phone, &sup.login).await;
    phone.screenshot("dashboard-phone").await;
    phone.close().await;
}

async fn an_admin_creates_a_user_who_then_signs_in(app: TestApp) {
    let admin = app.web_user("admin", "4503").await;
    let Some(b) = Browser::desktop(&app).await else {
        return;
    };
    sign_in(&b, &admin.login).await;
    b.goto("/admin/users").await;
    b.wait_for("form[action='/admin/users']").await;
    b.fill("form[action='/admin/users'] input[name=name]", "周晓梅")
        .await;
    b.fill("form[action='/admin/users'] input[name=login]", "zhou.xm")
        .await;
    b.fill(
        "form[action='/admin/users'] select[name=role]",
        "caseworker",
    )
    .await;
    b.fill("form[action='/admin/users'] input[name=scope]", "450305")
        .await;
    b.fill(
        "form[action='/admin/users'] input[name=password]",
        "zhou first password",
    )
    .await;
    b.submit("form[action='/admin/users']").await;
    b.wait_for("main").await;
    assert!(
        b.text("main").await.contains("zhou.xm"),
        "the new user is listed"
    );
    b.screenshot("admin-users-desktop").await;
    // Sign out, and in as the new user.
    b.submit("form[action='/logout']").await;
    assert_eq!(b.current_path().await, "/login");
    b.fill("input[name=login]", "zhou.xm").await;
    b.fill("input[name=password]", "zhou first password").await;
    b.submit("form[action='/login']").await;
    b.wait_for("main").await;
    assert_eq!(b.current_path().await, "/");
    assert!(
        b.text("header").await.contains("周晓梅"),
        "signed in as her"
    );
    b.close().await;
}

async fn an_expired_session_sends_the_user_to_sign_in(app: TestApp) {
    let app = app
        .restart_with(|s| s.session_idle = Duration::from_secs(2))
        .await;
    let cw = app.web_user("caseworker", "450305").await;
    let Some(b) = Browser::phone(&app).await else {
        return;
    };
    sign_in(&b, &cw.login).await;
    b.goto("/families").await;
    assert_eq!(b.current_path().await, "/families");
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.goto("/families").await;
    assert_eq!(b.current_path().await, "/login", "the idle session ended");
    // Signing in again brings the user back to the page.
    b.fill("input[name=login]", &cw.login).await;
    b.fill("input[name=password]", PASSWORD).await;
    b.submit("form[action='/login']").await;
    b.wait_for("main").await;
    assert_eq!(b.current_path().await, "/families");
    b.close().await;
}

async fn a_caseworker_uploads_a_register(app: TestApp) {
    let cw = app.web_user("caseworker", "450305").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("台账.csv");
    std::fs::write(
        &file,
        "台账编号,类别,村级区划代码,住址,登记日期,成员1姓名,成员1性别,成员1出生日期\r\n\
         B001,失独,450305001001,新村3号,2024-01-10,张三,男,1950-03-01\r\n\
         B002,其他,450305001002,新村4号,2024-01-10,李四,男,1950-03-01\r\n",
    )
    .expect("the register written");
    let Some(b) = Browser::desktop(&app).await else {
        return;
    };
    sign_in(&b, &cw.login).await;
    b.click_and_wait("nav a[href='/import']").await;
    assert_eq!(b.current_path().await, "/import");
    b.find("input[type=file]")
        .await
        .send_keys(file.to_str().expect("a UTF-8 path"))
        .await
        .expect("the file chosen");
    b.submit("form[action='/import']").await;
    let main = b.text("main").await;
    assert!(
        main.contains("已导入 1 户，此前已导入 0 户，未通过 1 行。"),
        "{main}"
    );
    assert!(main.contains("类别（category）"), "{main}");
    assert!(!main.contains("李四"), "no value of the file: {main}");
    b.screenshot("import-desktop").await;
    let r = app.get("/api/v1/families", &cw.token).await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    b.close().await;
}

async fn an_admin_erases_a_closed_familys_personal_data(app: TestApp) {
    let cw = app.web_user("caseworker", "450305").await;
    let admin = app.web_user("admin", "4503").await;
    let r = app
        .post(
            "/api/v1/families",
            &cw.token,
            serde_json::json!({
                "category": "bereaved", "village_code": "450305001001",
                "address": "长洲区倒水村 3 组", "registered_on": "2026-01-10",
                "members": [
                    {"name": "王秀英", "sex": "female", "birth_date": "1950-03-01",
                     "phone": "13800138000"},
                    {"name": "李建国", "sex": "male", "birth_date": "1949-05-02"}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let family = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/families/{family}/close"),
            &cw.token,
            serde_json::json!({"on": "2026-06-01", "reason": "迁出本县"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let Some(b) = Browser::desktop(&app).await else {
        return;
    };
    sign_in(&b, &admin.login).await;
    b.goto(&format!("/families/{family}")).await;
    assert!(b.text("main").await.contains("王秀英"));
    b.click_and_wait(&format!("a[href='/families/{family}/erase']"))
        .await;
    let form = format!("form[action='/families/{family}/erase']");
    b.wait_for(&form).await;
    b.fill(&format!("{form} select[name=reason]"), "purpose_ended")
        .await;
    // Not confirmed: refused, nothing erased.
    b.submit(&form).await;
    b.wait_for(&form).await;
    assert!(
        b.text("main").await.contains("必须勾选"),
        "the box must be ticked"
    );
    b.screenshot("erase-desktop").await;
    let still = app
        .get(&format!("/api/v1/families/{family}"), &cw.token)
        .await;
    assert_eq!(still.body["members"][0]["name"], "王秀英");
    // Confirmed: erased, and the case file says so.
    b.click(&format!("{form} input[name=confirm]")).await;
    b.submit(&form).await;
    b.wait_for("main").await;
    assert_eq!(b.current_path().await, format!("/families/{family}"));
    let main = b.text("main").await;
    assert!(main.contains("[已删除]"), "{main}");
    assert!(main.contains("个人信息已于"), "the banner says when");
    assert!(!main.contains("王秀英") && !main.contains("李建国") && !main.contains("倒水村"));
    b.screenshot("erased-case-desktop").await;
    b.close().await;

    // On a phone, the caseworker sees the erased case and no way to record.
    let Some(phone) = Browser::phone(&app).await else {
        return;
    };
    sign_in(&phone, &cw.login).await;
    phone.goto(&format!("/families/{family}")).await;
    let main = phone.text("main").await;
    assert!(main.contains("[已删除]"));
    assert_eq!(
        phone
            .count(&format!("a[href='/families/{family}/reopen']"))
            .await,
        0,
        "nothing more is recorded for an erased family"
    );
    phone.screenshot("erased-case-phone").await;
    phone.goto(&format!("/families/{family}/erase")).await;
    assert!(
        phone.text("main").await.contains("不能使用"),
        "a caseworker may not erase"
    );
    phone.close().await;

    // The form on an admin's phone, for another closed family.
    let other = app.register(&cw.token, "450305001001").await;
    let r = app
        .post(
            &format!("/api/v1/families/{other}/close"),
            &cw.token,
            serde_json::json!({"on": "2026-06-01", "reason": "迁出本县"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let Some(phone) = Browser::phone(&app).await else {
        return;
    };
    sign_in(&phone, &admin.login).await;
    phone.goto(&format!("/families/{other}/erase")).await;
    phone
        .wait_for(&format!("form[action='/families/{other}/erase']"))
        .await;
    phone.screenshot("erase-phone").await;
    phone.close().await;
}
