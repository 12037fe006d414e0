//! The care-action forms of the web pages: a caseworker records through a
//! form what the API would record (the same event, the same rules and
//! messages, in Chinese beside the field), a double submit records once, a
//! stale form is refused, supervisors and other jurisdictions are kept
//! out, and every form records its own event.

use nuanxin_tests::web::{hidden_fields, Page, WebClient};
use nuanxin_tests::*;
use serde_json::{json, Value};

both_stores!(
    a_caseworker_records_a_visit_through_the_form,
    a_double_submit_records_once,
    a_wrong_field_is_answered_beside_it_and_records_nothing,
    a_stale_form_is_refused_and_can_be_resent,
    a_supervisor_can_neither_open_nor_post_a_form,
    a_family_outside_the_scope_is_not_found,
    registering_a_family_through_the_form,
    voiding_an_action_with_a_reason,
    every_other_form_records_its_event,
);

const VILLAGE: &str = "450305001001";
const TODAY: &str = "2026-06-30";

/// A family in [`VILLAGE`] with a village contact since its registration.
async fn family_with_contact(app: &TestApp) -> String {
    let id = app.register(ADMIN_TOKEN, VILLAGE).await;
    let r = app
        .post(
            &format!("/api/v1/families/{id}/contacts"),
            ADMIN_TOKEN,
            contact_body("village", "2026-01-10"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    id
}

async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/families/{id}/history?limit=500"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().expect("items").clone()
}

async fn events_of(app: &TestApp, id: &str, event_type: &str) -> Vec<Value> {
    history(app, id)
        .await
        .into_iter()
        .filter(|e| e["event_type"] == event_type)
        .collect()
}

async fn case_file(app: &TestApp, id: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/families/{id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn assert_saved(page: &Page, id: &str, slug: &str) {
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("/families/{id}?saved={slug}").as_str())
    );
}

/// The message shown beside field `id` (its `…-error` paragraph).
fn error_beside(page: &Page, field_id: &str) -> String {
    let re = regex::Regex::new(&format!(
        r#"<p class="field-error" id="{field_id}-error"[^>]*>([^<]*)</p>"#
    ))
    .unwrap();
    re.captures(&page.body)
        .map(|c| c[1].to_owned())
        .unwrap_or_else(|| panic!("no error beside {field_id}:\n{}", page.body))
}

/// The hidden `name` of the form posting to `action` on `page`.
fn hidden(page: &Page, action: &str, name: &str) -> String {
    hidden_fields(&page.body, action)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no hidden {name}"))
}

/// Posts the form of `opened` (its hidden fields) with `fields`.
async fn send(web: &WebClient, opened: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
    let mut all = hidden_fields(&opened.body, action);
    all.retain(|(k, _)| !fields.iter().any(|(f, _)| f == k));
    let mut pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.extend_from_slice(fields);
    web.post_form(action, &pairs).await
}

async fn a_caseworker_records_a_visit_through_the_form(app: TestApp) {
    let id = family_with_contact(&app).await;
    let web = app.web_user("caseworker", "450305").await;
    let overdue = |body: &Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["family_id"] == id.as_str() && i["role"] == "village")
    };
    let before = app.get("/api/v1/overdue-visits", &web.token).await;
    assert!(overdue(&before.body), "overdue before: {}", before.text);

    // The quick form: the family, the role and today filled in, the modes
    // as big choices.
    let path = format!("/families/{id}/visit?role=village");
    let form = web.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    form.assert_has("记录走访")
        .assert_has("Zhang San")
        .assert_has(VILLAGE)
        .assert_has("村级联系人（Li Si）")
        .assert_has("乡镇联系人（未指派）")
        .assert_has(r#"name="role" value="village" checked"#)
        .assert_has("入户")
        .assert_has("电话")
        .assert_has("视频")
        .assert_has("节日走访")
        .assert_has(&format!(r#"value="{TODAY}""#))
        .assert_has("保存走访记录");

    let action = format!("/families/{id}/visit");
    let saved = web
        .submit(
            &path,
            &action,
            &[
                ("role", "village"),
                ("mode", "home"),
                ("visited_on", TODAY),
                ("findings", "身体尚好，情绪稳定"),
                ("needs", "送米\n陪同就医，修缮房屋"),
            ],
        )
        .await;
    assert_saved(&saved, &id, "visit");

    let visits = events_of(&app, &id, "VisitRecorded").await;
    assert_eq!(visits.len(), 1);
    let v = &visits[0];
    assert_eq!(v["data"]["mode"], "home");
    assert_eq!(v["data"]["visited_on"], TODAY);
    assert_eq!(v["data"]["needs"], json!(["送米", "陪同就医", "修缮房屋"]));
    assert_eq!(v["recorded_by"]["id"], web.user_id.as_str());
    let case = case_file(&app, &id).await;
    assert_eq!(case["visits"]["village"]["last_on"], TODAY);
    assert_eq!(case["visits"]["village"]["last_home_on"], TODAY);
    let after = app.get("/api/v1/overdue-visits", &web.token).await;
    assert!(!overdue(&after.body), "no longer overdue: {}", after.text);
}

async fn a_double_submit_records_once(app: TestApp) {
    let id = family_with_contact(&app).await;
    let web = app.web_user("caseworker", "450305").await;
    let action = format!("/families/{id}/visit");
    let opened = web.get(&action).await;
    assert_eq!(opened.status, 200);
    let fields = [
        ("role", "village"),
        ("mode", "phone"),
        ("visited_on", TODAY),
        ("findings", "电话问候"),
    ];
    let events = app.event_count().await;
    let first = send(&web, &opened, &action, &fields).await;
    let second = send(&web, &opened, &action, &fields).await;
    assert_saved(&first, &id, "visit");
    assert_saved(&second, &id, "visit");
    assert_eq!(app.event_count().await, events + 1, "recorded once");
    assert_eq!(events_of(&app, &id, "VisitRecorded").await.len(), 1);

    // The same key sent again with other fields (the form changed after
    // it was saved) records nothing and says so, with a fresh key.
    let changed = send(
        &web,
        &opened,
        &action,
        &[
            ("role", "village"),
            ("mode", "video"),
            ("visited_on", TODAY),
            ("findings", "电话问候"),
        ],
    )
    .await;
    assert_eq!(changed.status, 409, "{}", changed.body);
    changed.assert_has("已经保存过一次");
    assert_ne!(
        hidden(&changed, &action, "_key"),
        hidden(&opened, &action, "_key")
    );
    assert_eq!(app.event_count().await, events + 1);

    // A fresh form records a second visit.
    let again = web.get(&action).await;
    assert_ne!(
        hidden(&again, &action, "_key"),
        hidden(&opened, &action, "_key")
    );
    assert_saved(&send(&web, &again, &action, &fields).await, &id, "visit");
    assert_eq!(events_of(&app, &id, "VisitRecorded").await.len(), 2);
}

async fn a_wrong_field_is_answered_beside_it_and_records_nothing(app: TestApp) {
    let id = family_with_contact(&app).await;
    let web = app.web_user("caseworker", "450305").await;
    let action = format!("/families/{id}/visit");
    let events = app.event_count().await;

    // A missing field and a malformed date: both beside their fields, what
    // was typed kept.
    let page = web
        .submit(
            &action,
            &action,
            &[
                ("role", "village"),
                ("mode", "video"),
                ("visited_on", "2026-02-30"),
                ("findings", ""),
                ("needs", "送药"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(error_beside(&page, "findings"), "必填");
    assert_eq!(
        error_beside(&page, "visited_on"),
        "必须是 YYYY-MM-DD 格式的日期"
    );
    page.assert_has(r#"value="2026-02-30""#)
        .assert_has(r#"name="mode" value="video" checked"#)
        .assert_has(">送药</textarea>")
        .assert_has(r#"aria-invalid="true""#);

    // A date in the future: the case's rule, beside the field.
    let page = web
        .submit(
            &action,
            &action,
            &[
                ("role", "village"),
                ("mode", "home"),
                ("visited_on", "2026-07-01"),
                ("findings", "明天再去"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(error_beside(&page, "visited_on"), "晚于今天");
    page.assert_has(r#"value="2026-07-01""#)
        .assert_has(">明天再去</textarea>");

    // A mode that is not one: the API's message, in Chinese.
    let page = web
        .submit(
            &action,
            &action,
            &[
                ("role", "village"),
                ("mode", "letter"),
                ("visited_on", TODAY),
                ("findings", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(error_beside(&page, "mode").starts_with("必须是以下之一"));

    // A role without a contact: the rule's refusal for the whole form.
    let page = web
        .submit(
            &action,
            &action,
            &[
                ("role", "township"),
                ("mode", "home"),
                ("visited_on", TODAY),
                ("findings", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, 409, "{}", page.body);
    page.assert_has("尚未指派乡镇级联系人");

    // An amount that is not one, on the assistance form (in yuan).
    let assist = format!("/families/{id}/assistance");
    let page = web
        .submit(
            &assist,
            &assist,
            &[
                ("area", "medical"),
                ("amount_yuan", "12.345"),
                ("provided_on", TODAY),
                ("description", "药费"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert_eq!(error_beside(&page, "amount_yuan"), "类型或格式错误");
    page.assert_has(r#"value="12.345""#);
    assert_eq!(app.event_count().await, events, "nothing recorded");
}

async fn a_stale_form_is_refused_and_can_be_resent(app: TestApp) {
    let id = family_with_contact(&app).await;
    let web = app.web_user("caseworker", "450305").await;
    let action = format!("/families/{id}/visit");
    let opened = web.get(&action).await;
    let version: u64 = hidden(&opened, &action, "_version").parse().unwrap();
    // Someone else records while the form is open.
    let r = app
        .post(
            &format!("/api/v1/families/{id}/notes"),
            ADMIN_TOKEN,
            json!({"text": "电话回访"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let events = app.event_count().await;

    let fields = [
        ("role", "village"),
        ("mode", "home"),
        ("visited_on", TODAY),
        ("findings", "入户查看"),
    ];
    let stale = send(&web, &opened, &action, &fields).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    stale
        .assert_has("这户的记录在您打开此表单后已有更新")
        .assert_has(">入户查看</textarea>")
        .assert_has(r#"name="mode" value="home" checked"#);
    let now: u64 = hidden(&stale, &action, "_version").parse().unwrap();
    assert_eq!(now, version + 1, "the form carries on from the new version");
    assert_eq!(app.event_count().await, events, "nothing recorded");
    assert!(events_of(&app, &id, "VisitRecorded").await.is_empty());

    // Checked and sent again: recorded.
    let resent = send(&web, &stale, &action, &fields).await;
    assert_saved(&resent, &id, "visit");
    assert_eq!(events_of(&app, &id, "VisitRecorded").await.len(), 1);
}

async fn a_supervisor_can_neither_open_nor_post_a_form(app: TestApp) {
    let id = family_with_contact(&app).await;
    let web = app.web_user("supervisor", "450305").await;
    let events = app.event_count().await;
    for path in [
        format!("/families/{id}/visit"),
        format!("/families/{id}/note"),
        format!("/families/{id}/close"),
        "/families/new".to_owned(),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        page.assert_has("您的角色不能使用这个页面");
    }
    // With a valid form token (from a page a supervisor may open).
    let account = web.get("/account").await;
    let csrf = hidden(&account, "/logout", "_csrf");
    let page = web
        .post_form(
            &format!("/families/{id}/visit"),
            &[
                ("_csrf", csrf.as_str()),
                ("_key", "k1"),
                ("role", "village"),
                ("mode", "home"),
                ("visited_on", TODAY),
                ("findings", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    let page = web
        .post_form(
            "/families/new",
            &[("_csrf", csrf.as_str()), ("category", "bereaved")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(app.event_count().await, events, "nothing recorded");
}

async fn a_family_outside_the_scope_is_not_found(app: TestApp) {
    let elsewhere = app.register(ADMIN_TOKEN, "450306001001").await;
    let web = app.web_user("caseworker", "450305").await;
    let events = app.event_count().await;
    let page = web.get(&format!("/families/{elsewhere}/visit")).await;
    assert_eq!(page.status, 404);
    page.assert_has("不在您的管辖范围内")
        .assert_lacks("Zhang San");
    assert_eq!(web.get("/families/not-a-uuid/note").await.status, 404);
    let account = web.get("/account").await;
    let csrf = hidden(&account, "/logout", "_csrf");
    let page = web
        .post_form(
            &format!("/families/{elsewhere}/note"),
            &[("_csrf", csrf.as_str()), ("_key", "k2"), ("text", "x")],
        )
        .await;
    assert_eq!(page.status, 404);
    page.assert_lacks("Zhang San");
    // Without the form token nothing is even tried.
    let page = web
        .post_form(&format!("/families/{elsewhere}/note"), &[("text", "x")])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(app.event_count().await, events, "nothing recorded");
}

async fn registering_a_family_through_the_form(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let form = web.get("/families/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    form.assert_has("登记家庭")
        .assert_has("失独")
        .assert_has(&format!(r#"value="{TODAY}""#))
        .assert_has(r#"name="members[1].name""#);

    // A wrong member field lands beside it, the rest kept.
    let mut fields = vec![
        ("category", "bereaved"),
        ("village_code", "450305001002"),
        ("address", "新村3号"),
        ("registered_on", "2026-06-01"),
        ("members[0].name", "王芳"),
        ("members[0].sex", "female"),
        ("members[0].birth_date", "1958-04-02"),
        ("members[0].phone", "13800138000"),
        ("members[0].self_care", "independent"),
        ("members[1].name", "李强"),
        ("members[1].sex", "male"),
        ("members[1].birth_date", ""),
        ("members[1].living_alone", "true"),
        ("members[1].self_care", "semi_dependent"),
        ("members[2].self_care", "independent"),
    ];
    let page = web.submit("/families/new", "/families/new", &fields).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(error_beside(&page, "members-1--birth_date"), "必填");
    page.assert_has(r#"value="李强""#)
        .assert_has(r#"value="新村3号""#);

    fields[11] = ("members[1].birth_date", "1956-11-20");
    let opened = web.get("/families/new").await;
    let saved = send(&web, &opened, "/families/new", &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let location = saved.location.clone().unwrap();
    let id = location
        .strip_prefix("/families/")
        .and_then(|s| s.strip_suffix("?saved=register"))
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();
    let case = case_file(&app, &id).await;
    assert_eq!(case["category"], "bereaved");
    assert_eq!(case["village_code"], "450305001002");
    assert_eq!(case["registered_on"], "2026-06-01");
    let members = case["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "the blank blocks are left out");
    assert_eq!(members[1]["name"], "李强");
    assert_eq!(members[1]["living_alone"], true);
    assert_eq!(members[1]["self_care"], "semi_dependent");
    let registered = events_of(&app, &id, "FamilyRegistered").await;
    assert_eq!(registered[0]["recorded_by"]["id"], web.user_id.as_str());

    // The same form sent twice: one family, the same answer.
    let count = |body: &Value| body["items"].as_array().unwrap().len();
    let families = count(&app.get("/api/v1/families", ADMIN_TOKEN).await.body);
    let twice = send(&web, &opened, "/families/new", &fields).await;
    assert_eq!(twice.location.as_deref(), Some(location.as_str()));
    assert_eq!(
        count(&app.get("/api/v1/families", ADMIN_TOKEN).await.body),
        families
    );

    // Outside the user's scope: refused, nothing registered.
    fields[1] = ("village_code", "450306001001");
    let page = web.submit("/families/new", "/families/new", &fields).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(
        count(&app.get("/api/v1/families", ADMIN_TOKEN).await.body),
        families
    );
}

async fn voiding_an_action_with_a_reason(app: TestApp) {
    let id = family_with_contact(&app).await;
    let web = app.web_user("caseworker", "450305").await;
    let r = app
        .post(
            &format!("/api/v1/families/{id}/visits"),
            &web.token,
            visit_body("village", "phone", "2026-06-29"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let action_id = r.body["action_id"].as_str().unwrap().to_owned();
    let path = format!("/families/{id}/void/{action_id}");
    let form = web.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    form.assert_has("作废记录").assert_has("走访");

    let blank = web.submit(&path, &path, &[("reason", " ")]).await;
    assert_eq!(blank.status, 422);
    assert_eq!(error_beside(&blank, "reason"), "必填");

    let saved = web.submit(&path, &path, &[("reason", "记错了家庭")]).await;
    assert_saved(&saved, &id, "void");
    let voided = events_of(&app, &id, "ActionVoided").await;
    assert_eq!(voided.len(), 1);
    assert_eq!(voided[0]["data"]["reason"], "记错了家庭");
    let visit = &events_of(&app, &id, "VisitRecorded").await[0];
    assert_eq!(visit["voided_by"], voided[0]["action_id"]);

    // Voided twice: the rule's refusal on the form.
    let again = web.submit(&path, &path, &[("reason", "再作废")]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    again.assert_has("已被作废");
    assert_eq!(
        web.get(&format!("/families/{id}/void/{id}")).await.status,
        404
    );
}

/// A form's page, its `saved` slug, the fields typed, the event expected.
type Step = (
    String,
    &'static str,
    Vec<(&'static str, String)>,
    &'static str,
);

/// Each other form records its own event (one family, in an order the
/// case's rules allow).
async fn every_other_form_records_its_event(app: TestApp) {
    let id = family_with_contact(&app).await;
    let web = app.web_user("caseworker", "450305").await;
    let case = case_file(&app, &id).await;
    let member = case["members"][1]["id"].as_str().unwrap().to_owned();

    let steps: Vec<Step> = vec![
        (
            format!("/families/{id}/members/{member}/status"),
            "member_status",
            vec![
                ("effective_on", TODAY.into()),
                ("living_alone", "true".into()),
            ],
            "MemberStatusUpdated",
        ),
        (
            format!("/families/{id}/contact"),
            "contact",
            vec![
                ("role", "township".into()),
                ("person.name", "赵敏".into()),
                ("person.phone", "13700137000".into()),
                ("assigned_on", TODAY.into()),
            ],
            "ContactAssigned",
        ),
        (
            format!("/families/{id}/release/township"),
            "release",
            vec![("released_on", TODAY.into()), ("reason", "调岗".into())],
            "ContactReleased",
        ),
        (
            format!("/families/{id}/emergency-contact"),
            "emergency_contact",
            vec![
                ("name", "王磊".into()),
                ("relation", "侄子".into()),
                ("phone", "13600136000".into()),
                ("priority", "1".into()),
            ],
            "EmergencyContactSet",
        ),
        (
            format!("/families/{id}/emergency"),
            "emergency",
            vec![
                ("occurred_at", "2026-06-30T08:30".into()),
                ("description", "夜间摔倒".into()),
                ("responder", "村医".into()),
                ("outcome", "送医检查，无大碍".into()),
            ],
            "EmergencyRecorded",
        ),
        (
            format!("/families/{id}/elderly-care"),
            "elderly_care",
            vec![
                ("member_id", member.clone()),
                ("service", "meal_assistance".into()),
                ("provider", "幸福食堂".into()),
                ("from", TODAY.into()),
            ],
            "ElderlyCareRecorded",
        ),
        (
            format!("/families/{id}/assistance"),
            "assistance",
            vec![
                ("area", "medical".into()),
                ("amount_yuan", "1,200.5".into()),
                ("provided_on", TODAY.into()),
                ("description", "住院补助".into()),
            ],
            "AssistanceRecorded",
        ),
        (
            format!("/families/{id}/note"),
            "note",
            vec![("text", "老人喜欢下棋".into())],
            "NoteAdded",
        ),
        (
            format!("/families/{id}/insurance/enrol"),
            "enrol",
            vec![
                ("member_id", member.clone()),
                ("product", "计生家庭关爱保险".into()),
                ("policy_year", "2026".into()),
                ("premium_yuan", "100".into()),
                ("paid_by", "association".into()),
                ("consent.given_on", TODAY.into()),
                ("consent.explained_by", "村计生专干".into()),
            ],
            "InsuranceEnrolled",
        ),
        (
            format!("/families/{id}/transfer"),
            "transfer",
            vec![
                ("village_code", "450305001002".into()),
                ("transferred_on", TODAY.into()),
                ("reason", "随子女迁居".into()),
            ],
            "FamilyTransferred",
        ),
        (
            format!("/families/{id}/close"),
            "close",
            vec![("on", TODAY.into()), ("reason", "户籍迁出".into())],
            "CaseClosed",
        ),
        (
            format!("/families/{id}/reopen"),
            "reopen",
            vec![("on", TODAY.into()), ("reason", "迁回".into())],
            "CaseReopened",
        ),
    ];
    for (path, slug, fields, event_type) in &steps {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let saved = web.submit(path, path, &fields).await;
        assert_saved(&saved, &id, slug);
        let last = history(&app, &id).await.pop().unwrap();
        assert_eq!(last["event_type"], *event_type, "{path}");
        assert_eq!(last["recorded_by"]["id"], web.user_id.as_str(), "{path}");
    }

    let case = case_file(&app, &id).await;
    assert_eq!(case["assistance"][0]["amount_fen"], 120_050, "yuan to fen");
    assert_eq!(case["members"][1]["living_alone"], true);
    assert_eq!(case["village_code"], "450305001002");
    assert_eq!(case["status"], "open");

    // Removing the emergency contact (its id from the case file).
    let contact = case["emergency_contacts"][0]["id"].as_str().unwrap();
    let path = format!("/families/{id}/emergency-contacts/{contact}/remove");
    web.get(&path).await.assert_has("王磊");
    let saved = web.submit(&path, &path, &[("reason", "电话停机")]).await;
    assert_saved(&saved, &id, "remove_emergency_contact");
    assert_eq!(
        history(&app, &id).await.pop().unwrap()["event_type"],
        "EmergencyContactRemoved"
    );

    // The insurance claim and its decision, then the withdrawal.
    let enrolment = case["insurance"]["enrolments"][0]["id"].as_str().unwrap();
    let path = format!("/families/{id}/insurance/{enrolment}/claim");
    let saved = web
        .submit(
            &path,
            &path,
            &[
                ("cause", "hospitalisation"),
                ("occurred_on", "2026-06-20"),
                ("filed_on", TODAY),
                ("claimed_yuan", "500"),
            ],
        )
        .await;
    assert_saved(&saved, &id, "claim");
    let case = case_file(&app, &id).await;
    let claim = case["insurance"]["claims"][0]["id"].as_str().unwrap();
    assert_eq!(case["insurance"]["claims"][0]["claimed_fen"], 50_000);
    let path = format!("/families/{id}/insurance/claims/{claim}/decision");
    let more = web
        .submit(
            &path,
            &path,
            &[
                ("decided_on", TODAY),
                ("outcome", "paid"),
                ("paid_yuan", "600"),
            ],
        )
        .await;
    assert_eq!(more.status, 422, "more paid than claimed: {}", more.body);
    let saved = web
        .submit(
            &path,
            &path,
            &[
                ("decided_on", TODAY),
                ("outcome", "paid"),
                ("paid_yuan", "300"),
            ],
        )
        .await;
    assert_saved(&saved, &id, "decision");
    let path = format!("/families/{id}/insurance/{enrolment}/withdraw");
    let saved = web
        .submit(&path, &path, &[("on", TODAY), ("reason", "本人要求")])
        .await;
    assert_saved(&saved, &id, "withdraw");
    let types: Vec<String> = history(&app, &id)
        .await
        .iter()
        .rev()
        .take(3)
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "InsuranceWithdrawn",
            "InsuranceClaimDecided",
            "InsuranceClaimFiled"
        ]
    );
}
