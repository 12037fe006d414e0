//! The caseworker's read pages: my work today, the family list with its
//! filters and the search by name, and the case file with its timeline —
//! within the user's scope, personal data masked and out of URLs, record
//! links only for those who may record.

use nuanxin_tests::*;
use serde_json::{json, Value};

both_stores!(
    work_today_lists_overdue_and_urgent_visits_and_alerts,
    the_list_filters_and_pages,
    search_by_name_is_posted_and_finds_within_scope,
    case_file_shows_members_contacts_and_timeline,
    another_jurisdiction_is_not_found,
    a_supervisor_reads_without_record_links,
    pages_are_chinese_by_default_and_english_on_request,
);

/// POSTs `body` to `path` as `token` and returns the answer's body.
async fn ok(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let r = app.post(path, token, body).await;
    assert!(r.status.is_success(), "{path}: {}", r.text);
    r.body
}

/// The short reference the pages show for a family.
fn reference(id: &str) -> String {
    format!("#{}", &id[id.len() - 8..])
}

/// A family without a key person (parents under 80, independent).
fn ordinary(village: &str, name: &str, id_number: &str) -> Value {
    json!({
        "category": "disabled_child", "village_code": village, "address": "Xincun",
        "registered_on": "2026-01-10",
        "members": [{"name": name, "sex": "female", "birth_date": "1962-05-01",
                     "id_number": id_number}]
    })
}

/// Valid ID numbers of women born on 1962-05-01.
const ID_A: &str = "11010519620501006X";
const ID_B: &str = "110105196205010043";

async fn register(app: &TestApp, token: &str, body: Value) -> String {
    ok(app, token, "/api/v1/families", body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn assign(app: &TestApp, token: &str, id: &str, role: &str) {
    ok(
        app,
        token,
        &format!("/api/v1/families/{id}/contacts"),
        contact_body(role, "2026-01-12"),
    )
    .await;
}

async fn work_today_lists_overdue_and_urgent_visits_and_alerts(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    // A: a key family (a semi-dependent parent), its village contact never
    // visited since January: long overdue.
    let a = register(&app, &web.token, family_body("450305001001")).await;
    assign(&app, &web.token, &a, "village").await;
    // B: ordinary, visited lately, but an emergency on 29 June makes a
    // home visit urgent (due the next day).
    let b = register(
        &app,
        &web.token,
        ordinary("450305001002", "Wang Fang", ID_A),
    )
    .await;
    assign(&app, &web.token, &b, "village").await;
    ok(
        &app,
        &web.token,
        &format!("/api/v1/families/{b}/visits"),
        visit_body("village", "home", "2026-06-20"),
    )
    .await;
    ok(
        &app,
        &web.token,
        &format!("/api/v1/families/{b}/emergencies"),
        json!({"occurred_at": "2026-06-29T09:30:00+08:00", "description": "fall",
               "responder": "Li Si", "outcome": "hospital"}),
    )
    .await;
    // D: ordinary, visited on 3 June: due again on 3 July, this week.
    let d = register(&app, &web.token, ordinary("450305001003", "Zhou Min", ID_B)).await;
    assign(&app, &web.token, &d, "village").await;
    ok(
        &app,
        &web.token,
        &format!("/api/v1/families/{d}/visits"),
        visit_body("village", "phone", "2026-06-03"),
    )
    .await;
    // C: another county's overdue family, outside the caseworker's scope.
    let c = register(&app, ADMIN_TOKEN, family_body("450306001001")).await;
    assign(&app, ADMIN_TOKEN, &c, "village").await;
    ok(
        &app,
        ADMIN_TOKEN,
        "/api/v1/alerts/scan",
        json!({"on": "2026-06-30"}),
    )
    .await;

    let page = web.get("/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("我的工作")
        .assert_has(&reference(&a))
        .assert_has(&reference(&b))
        .assert_has(&reference(&d))
        .assert_lacks(&reference(&c))
        .assert_has(&format!("/families/{a}/visit?role=village"))
        .assert_has(&format!("href=\"/families/{b}\""))
        .assert_has("class=\"badge urgent\"")
        .assert_has("记录走访")
        // The alert raised for A is listed with the day it was raised.
        .assert_has("未处理的预警")
        .assert_has("预警日期");
    // B is urgent: first, although A has been due far longer (the API
    // lists A first, oldest due first).
    let due = app
        .get("/api/v1/due-visits?on=2026-06-30", &web.token)
        .await;
    let families: Vec<&str> = due.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["family_id"].as_str().unwrap())
        .collect();
    assert_eq!(families.first(), Some(&a.as_str()), "{}", due.text);
    let at = |id: &str| page.body.find(&reference(id)).unwrap();
    assert!(at(&b) < at(&a), "the urgent visit comes first");
    assert!(at(&a) < at(&d), "then the overdue, then the week's");
    // Counts at the top: one urgent (B, due today), one overdue (A), one
    // more due this week (D), one open alert.
    let stats = &page.body[page.body.find("class=\"stats\"").unwrap()..];
    let stat = |label: &str| {
        let end = stats.find(label).unwrap();
        let start = stats[..end].rfind("class=\"n\">").unwrap() + "class=\"n\">".len();
        stats[start..end].split('<').next().unwrap().to_owned()
    };
    assert_eq!(stat("逾期走访"), "1");
    assert_eq!(stat("本周到期"), "1");
    assert_eq!(stat("紧急走访"), "1");
    assert_eq!(stat("未处理预警"), "1");

    // The same families in the list.
    let list = web.get("/families").await;
    assert_eq!(list.status, 200);
    list.assert_has(&reference(&a))
        .assert_has(&reference(&b))
        .assert_lacks(&reference(&c))
        .assert_has("逾期")
        .assert_has("登记新家庭")
        .assert_has("href=\"/families/new\"");

    // A page without a session sends to the sign-in page.
    let anonymous = app.web_anonymous().get("/families").await;
    assert_eq!(anonymous.status, 303);
}

async fn the_list_filters_and_pages(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    // K: key, both contacts. O: ordinary, no contact. Z: closed.
    let k = register(&app, &web.token, family_body("450305001001")).await;
    assign(&app, &web.token, &k, "village").await;
    assign(&app, &web.token, &k, "township").await;
    let o = register(
        &app,
        &web.token,
        ordinary("450305002001", "Wang Fang", ID_A),
    )
    .await;
    let z = register(&app, &web.token, ordinary("450305002002", "Liu Yun", ID_B)).await;
    ok(
        &app,
        &web.token,
        &format!("/api/v1/families/{z}/close"),
        json!({"on": "2026-06-01", "reason": "moved away"}),
    )
    .await;
    let shows = |page: &web::Page, yes: &[&str], no: &[&str]| {
        assert_eq!(page.status, 200, "{}", page.body);
        for id in yes {
            page.assert_has(&reference(id));
        }
        for id in no {
            page.assert_lacks(&reference(id));
        }
    };
    shows(&web.get("/families").await, &[&k, &o, &z], &[]);
    shows(
        &web.get("/families?village=450305001").await,
        &[&k],
        &[&o, &z],
    );
    shows(&web.get("/families?key=yes").await, &[&k], &[&o, &z]);
    shows(&web.get("/families?key=no").await, &[&o, &z], &[&k]);
    shows(&web.get("/families?status=closed").await, &[&z], &[&k, &o]);
    shows(
        &web.get("/families?status=open&uncovered=1").await,
        &[&o],
        &[&k, &z],
    );
    // The filters are kept in the form.
    web.get("/families?village=450305002&uncovered=1")
        .await
        .assert_has("value=\"450305002\"")
        .assert_has("name=\"uncovered\" value=\"1\" checked");
    // Paged by the API's cursor: after K come the families registered later.
    shows(
        &web.get(&format!("/families?cursor={k}")).await,
        &[&o, &z],
        &[&k],
    );
    // A malformed prefix: the error beside the field, nothing listed.
    let bad = web.get("/families?village=45a").await;
    assert_eq!(bad.status, 200);
    bad.assert_has("field-error")
        .assert_has("aria-invalid=\"true\"")
        .assert_lacks(&reference(&k));
    // A prefix outside the scope lists nothing.
    shows(&web.get("/families?village=4504").await, &[], &[&k, &o, &z]);
}

async fn search_by_name_is_posted_and_finds_within_scope(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let mine = register(&app, &web.token, ordinary("450305001001", "王秀英", ID_A)).await;
    let other = register(&app, &web.token, ordinary("450305001002", "李桂兰", ID_B)).await;
    let far = register(&app, ADMIN_TOKEN, ordinary("450306001001", "王秀英", ID_A)).await;

    // The search form posts, with the form token; the answer is rendered,
    // not redirected to a URL holding the name.
    let list = web.get("/families").await;
    list.assert_has("method=\"post\" action=\"/families/search\"");
    let found = web
        .submit("/families", "/families/search", &[("q", "秀英")])
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.location, None);
    found
        .assert_has(&reference(&mine))
        .assert_has(&format!("href=\"/families/{mine}\""))
        .assert_has("<strong>王秀英</strong>")
        .assert_has("110105********006X")
        .assert_lacks(ID_A)
        .assert_lacks(&reference(&other))
        .assert_lacks(&reference(&far))
        .assert_has("找到1户家庭");
    // The page's links carry no name.
    assert!(!found.body.contains("?q="));
    // By the whole ID number, as the pages show it masked, or its last
    // four characters: only the family of the scope with that number.
    for q in ["11010519620501006x", "110105********006X", "006x"] {
        let by_id = web
            .submit("/families", "/families/search", &[("q", q)])
            .await;
        assert_eq!(by_id.status, 200, "{q}");
        by_id
            .assert_has(&reference(&mine))
            .assert_lacks(&reference(&other))
            .assert_lacks(&reference(&far))
            .assert_lacks(ID_A);
    }
    // Text that only appears elsewhere in a case (the address) finds nothing.
    web.submit("/families", "/families/search", &[("q", "Xincun")])
        .await
        .assert_has("没有找到符合的家庭")
        .assert_lacks(&reference(&mine));
    // A blank search: the message beside the field.
    let blank = web
        .submit("/families", "/families/search", &[("q", " ")])
        .await;
    assert_eq!(blank.status, 422);
    blank.assert_has("请输入要查找的姓名或身份证号");
    // Without the form token: refused.
    let forged = web.post_form("/families/search", &[("q", "王秀英")]).await;
    assert_eq!(forged.status, 403);
    forged.assert_lacks(&reference(&mine));
    // Every family shown was written to the access log.
    let log = app.get("/api/v1/access-log", ADMIN_TOKEN).await;
    let searched: Vec<&Value> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["endpoint"] == "family_search")
        .collect();
    assert!(
        searched.iter().any(|e| e["family_id"] == mine.as_str()),
        "{}",
        log.text
    );
    assert!(searched.iter().all(|e| e["family_id"] != far.as_str()));
}

async fn case_file_shows_members_contacts_and_timeline(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let id = register(&app, &web.token, family_body("450305001001")).await;
    assign(&app, &web.token, &id, "village").await;
    assign(&app, &web.token, &id, "township").await;
    let visit = ok(
        &app,
        &web.token,
        &format!("/api/v1/families/{id}/visits"),
        visit_body("village", "home", "2026-06-01"),
    )
    .await["action_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let note = ok(
        &app,
        &web.token,
        &format!("/api/v1/families/{id}/notes"),
        json!({"text": "wrong family noted"}),
    )
    .await["action_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &app,
        &web.token,
        &format!("/api/v1/families/{id}/voids"),
        json!({"action_id": note, "reason": "recorded on the wrong family"}),
    )
    .await;

    let page = web.get(&format!("/families/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("家庭档案")
        // Members with their masked ID numbers; never the whole number.
        .assert_has("Zhang San")
        .assert_has("Li Mei")
        .assert_has("110105********0016")
        .assert_lacks("110105195003010016")
        .assert_has("13800138000")
        .assert_has("半失能")
        .assert_has("失独")
        // Both contacts with the day they took the post.
        .assert_has("村级联系人")
        .assert_has("乡镇联系人")
        .assert_has("Li Si")
        .assert_has("2026年1月12日")
        // The key person and why.
        .assert_has("重点")
        // The timeline, the void struck through with its reason.
        .assert_has("工作记录")
        .assert_has("class=\"voided\"")
        .assert_has("wrong family noted")
        .assert_has("已作废，原因：recorded on the wrong family")
        // Record links for a caseworker, a void link for the visit only.
        .assert_has(&format!("href=\"/families/{id}/visit\""))
        .assert_has(&format!("href=\"/families/{id}/visit?role=township\""))
        .assert_has(&format!("href=\"/families/{id}/note\""))
        .assert_has(&format!("href=\"/families/{id}/release/village\""))
        .assert_has(&format!("href=\"/families/{id}/void/{visit}\""))
        .assert_lacks(&format!("/void/{note}"))
        .assert_lacks(&format!("/families/{id}/history"))
        .assert_lacks("已保存");
    // The voided note is listed in the timeline, not among the notes.
    let voided = page.body.find("class=\"voided\"").unwrap();
    assert!(page.body[voided..].contains("wrong family noted"));
    // Newest first: the void before the visit.
    let void_at = page.body.find("recorded on the wrong family").unwrap();
    let visit_at = page.body.find(&format!("/void/{visit}")).unwrap();
    assert!(void_at < visit_at);
    // After a form saved, the flash.
    web.get(&format!("/families/{id}?saved=note"))
        .await
        .assert_has("已保存");
    // The read is in the access log.
    let log = app
        .get(&format!("/api/v1/access-log?family_id={id}"), ADMIN_TOKEN)
        .await;
    assert!(
        log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["endpoint"] == "case_file" && e["user_id"] == web.user_id.as_str()),
        "{}",
        log.text
    );
}

async fn another_jurisdiction_is_not_found(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let far = register(&app, ADMIN_TOKEN, family_body("450306001001")).await;
    for path in [
        format!("/families/{far}"),
        format!("/families/{}", uuid::Uuid::new_v4()),
        "/families/not-a-uuid".to_owned(),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        page.assert_has("不在您的管辖范围内")
            .assert_lacks("Zhang San")
            .assert_lacks("110105********0016");
    }
    // A closed case shows only the reopen link.
    let mine = register(&app, &web.token, family_body("450305001001")).await;
    ok(
        &app,
        &web.token,
        &format!("/api/v1/families/{mine}/close"),
        json!({"on": "2026-06-01", "reason": "moved away"}),
    )
    .await;
    web.get(&format!("/families/{mine}"))
        .await
        .assert_has("已结案")
        .assert_has(&format!("href=\"/families/{mine}/reopen\""))
        .assert_lacks(&format!("href=\"/families/{mine}/visit\""))
        .assert_lacks(&format!("href=\"/families/{mine}/note\""));
}

async fn a_supervisor_reads_without_record_links(app: TestApp) {
    let cw = app.web_user("caseworker", "450305").await;
    let id = register(&app, &cw.token, family_body("450305001001")).await;
    assign(&app, &cw.token, &id, "village").await;
    let visit = ok(
        &app,
        &cw.token,
        &format!("/api/v1/families/{id}/visits"),
        visit_body("village", "home", "2026-06-01"),
    )
    .await["action_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sup = app.web_user("supervisor", "4503").await;
    let page = sup.get(&format!("/families/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("Zhang San")
        .assert_has(&format!("href=\"/families/{id}/history\""))
        .assert_lacks(&format!("/families/{id}/visit"))
        .assert_lacks(&format!("/families/{id}/note"))
        .assert_lacks(&format!("/void/{visit}"))
        .assert_lacks(&format!("/families/{id}/members/"))
        .assert_lacks("记录走访");
    sup.get("/families")
        .await
        .assert_has(&reference(&id))
        .assert_lacks("/families/new");
    // An admin records and audits: both.
    let admin = app.web_user("admin", "").await;
    admin
        .get(&format!("/families/{id}"))
        .await
        .assert_has(&format!("href=\"/families/{id}/history\""))
        .assert_has(&format!("href=\"/families/{id}/note\""));
}

async fn pages_are_chinese_by_default_and_english_on_request(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let id = register(&app, &web.token, family_body("450305001001")).await;
    let zh = web.get(&format!("/families/{id}")).await;
    zh.assert_has("<html lang=\"zh-CN\">")
        .assert_has("家庭档案")
        .assert_has("家庭成员")
        .assert_has("2026年1月10日");
    let en = web.get(&format!("/families/{id}?lang=en")).await;
    assert_eq!(en.status, 200);
    en.assert_has("<html lang=\"en\">")
        .assert_has("Case file")
        .assert_has("Members")
        .assert_has("Bereaved (only child died)")
        .assert_has("10 Jan 2026")
        .assert_lacks("家庭档案");
    web.get("/?lang=en")
        .await
        .assert_has("Overdue visits")
        .assert_has("Visits due this week");
    web.get("/families?lang=en")
        .await
        .assert_has("Find by name or ID number")
        .assert_has("Register a family");
}
