//! The supervisor's pages: the jurisdiction dashboard of a hand-built
//! county (exact figures per township and per village, drilling down, not
//! outside the scope), the overdue and coverage-gap lists, acknowledging an
//! alert from the inbox, the period report with its CSV and XLSX (the API's
//! bytes), a case's audited history with the case file as of a day and the
//! CSV, and no record buttons anywhere. Today is 2026-06-30 (test clock).

use nuanxin_tests::web::WebClient;
use nuanxin_tests::*;
use regex::Regex;
use serde_json::{json, Value};

both_stores!(
    dashboard_figures_per_jurisdiction_and_drilling_down,
    overdue_and_coverage_pages_list_the_right_families,
    acknowledging_an_alert_from_the_inbox,
    report_page_and_its_downloads_are_the_apis,
    history_page_with_chain_as_of_and_csv,
    supervisor_pages_offer_no_record_buttons,
);

/// The county 450305 as built by [`county`].
struct County {
    cw: String,
    /// Key (a semi-dependent mother), both contacts from 2026-06-20: the
    /// village visit due 06-27 is 3 days overdue.
    f1: String,
    /// Ordinary, a village contact only from 2026-05-05: due 06-04, 26 days
    /// overdue; no township contact.
    f2: String,
    /// Ordinary, no contact: never due, a gap for both roles.
    f3: String,
    /// Ordinary, both contacts from 2026-01-10: the village visit (due
    /// 02-09) and the township visit (due 04-10) more than 30 days overdue.
    f4: String,
}

fn ordinary(village: &str) -> Value {
    let mut body = family_body(village);
    body["members"][1]["self_care"] = json!("independent");
    body
}

async fn created(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/api/v1/families", token, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn ok(app: &TestApp, token: &str, path: String, body: Value) -> Value {
    let r = app.post(&path, token, body).await;
    assert!(r.status.is_success(), "{path}: {}", r.text);
    r.body
}

async fn contact(app: &TestApp, token: &str, family: &str, role: &str, on: &str) {
    ok(
        app,
        token,
        format!("/api/v1/families/{family}/contacts"),
        contact_body(role, on),
    )
    .await;
}

async fn county(app: &TestApp) -> County {
    let cw = app.user("caseworker", "450305").await;
    let f1 = app.register(&cw, "450305001001").await;
    contact(app, &cw, &f1, "village", "2026-06-20").await;
    contact(app, &cw, &f1, "township", "2026-06-20").await;
    let f2 = created(app, &cw, ordinary("450305001001")).await;
    contact(app, &cw, &f2, "village", "2026-05-05").await;
    let f3 = created(app, &cw, ordinary("450305001002")).await;
    let f4 = created(app, &cw, ordinary("450305002001")).await;
    contact(app, &cw, &f4, "village", "2026-01-10").await;
    contact(app, &cw, &f4, "township", "2026-01-10").await;
    // A family of another county, which no one here may see.
    let other = app.user("caseworker", "450306").await;
    app.register(&other, "450306001001").await;
    County { cw, f1, f2, f3, f4 }
}

/// The cells of the table row headed by `code` (tags stripped).
fn row(body: &str, code: &str) -> Vec<String> {
    let rows = Regex::new(r#"(?s)<tr>(.*?)</tr>"#).unwrap();
    let cells = Regex::new(r#"(?s)<t[dh][^>]*>(.*?)</t[dh]>"#).unwrap();
    let tags = Regex::new(r#"<[^>]+>"#).unwrap();
    for r in rows.captures_iter(body) {
        let cells: Vec<String> = cells
            .captures_iter(&r[1])
            .map(|c| tags.replace_all(&c[1], "").trim().to_owned())
            .collect();
        if cells.first().map(String::as_str) == Some(code) {
            return cells[1..].to_vec();
        }
    }
    panic!("no row {code} in:\n{body}");
}

/// The label the lists show for a family: its village code and the end of
/// its id.
fn label(village: &str, id: &str) -> String {
    format!("{village} · {}", &id[id.len() - 8..])
}

/// Open alerts (from the API) per jurisdiction prefix.
async fn open_alerts(app: &TestApp, prefix: &str) -> usize {
    let r = app
        .get("/api/v1/alerts?status=open&limit=500", ADMIN_TOKEN)
        .await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["village_code"].as_str().unwrap().starts_with(prefix))
        .count()
}

async fn dashboard_figures_per_jurisdiction_and_drilling_down(app: TestApp) {
    county(&app).await;
    let r = app
        .post("/api/v1/alerts/scan", ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(open_alerts(&app, "450305").await, 4, "one per overdue item");
    let web = app.web_user("supervisor", "450305").await;

    let page = web.get("/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("辖区概况")
        .assert_has(r#"href="/?prefix=450305001""#)
        .assert_has("<svg")
        .assert_lacks("450306")
        .assert_lacks("style=");
    // families, key, both contacts (coverage), overdue 1–7 / 8–30 / 31+ /
    // all, open alerts.
    assert_eq!(
        row(&page.body, "450305001"),
        ["3", "1", "1 (33%)", "1", "1", "0", "2", "2"]
    );
    assert_eq!(
        row(&page.body, "450305002"),
        ["1", "0", "1 (100%)", "0", "0", "2", "2", "2"]
    );
    assert_eq!(
        row(&page.body, "合计"),
        ["4", "1", "2 (50%)", "1", "1", "2", "4", "4"]
    );
    // The same figures as the API's report.
    let report = app
        .get(
            "/api/v1/reports/summary?village_code_prefix=450305",
            &web.token,
        )
        .await;
    let total = report.body["rows"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(total["families_open"], 4);
    assert_eq!(total["overdue_at_end"], 4);
    page.assert_has(r#"href="/overdue?prefix=450305""#)
        .assert_has(r#"href="/coverage?prefix=450305""#)
        .assert_has(r#"href="/alerts?status=open&amp;prefix=450305""#);

    // Down to the villages of township 450305001.
    let page = web.get("/?prefix=450305001").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        row(&page.body, "450305001001"),
        ["2", "1", "1 (50%)", "1", "1", "0", "2", "2"]
    );
    assert_eq!(
        row(&page.body, "450305001002"),
        ["1", "0", "0 (0%)", "0", "0", "0", "0", "0"]
    );
    page.assert_lacks("450305002001")
        .assert_has(r#"<a href="/">450305</a>"#);

    // Not outside the scope, not above it, not a made-up code.
    for outside in ["450306", "450306001", "45", "4503", "abc", "450305x"] {
        let page = web.get(&format!("/?prefix={outside}")).await;
        assert_eq!(page.status, 404, "{outside}: {}", page.body);
        page.assert_lacks("450306001001");
    }
    // A township supervisor starts at their township.
    let township = app.web_user("supervisor", "450305002").await;
    let page = township.get("/").await;
    assert_eq!(row(&page.body, "450305002001")[0], "1");
    page.assert_lacks("450305001001");
    assert_eq!(township.get("/?prefix=450305001").await.status, 404);
    // A caseworker's `/` is their work, not the dashboard.
    let cw = app.web_user("caseworker", "450305").await;
    cw.get("/").await.assert_lacks("双岗覆盖率");
}

async fn overdue_and_coverage_pages_list_the_right_families(app: TestApp) {
    let c = county(&app).await;
    // An emergency at F1 two days ago: its home visits are urgent.
    ok(
        &app,
        &c.cw,
        format!("/api/v1/families/{}/emergencies", c.f1),
        json!({"occurred_at": "2026-06-28T10:00:00+08:00", "description": "fall",
               "responder": "Li Si", "outcome": "hospital"}),
    )
    .await;
    let web = app.web_user("supervisor", "450305").await;
    let (l1, l2, l3, l4) = (
        label("450305001001", &c.f1),
        label("450305001001", &c.f2),
        label("450305001002", &c.f3),
        label("450305002001", &c.f4),
    );

    let page = web.get("/overdue").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has(&l1)
        .assert_has(&l2)
        .assert_has(&l4)
        .assert_lacks(&l3)
        .assert_has("紧急")
        .assert_has(&format!(r#"href="/families/{}""#, c.f4))
        .assert_has("天");
    // Urgent first: F1 (due yesterday, urgent) before F4 (months late).
    let (p1, p4) = (page.body.find(&l1).unwrap(), page.body.find(&l4).unwrap());
    assert!(p1 < p4, "urgent first");
    // By role and by place.
    let page = web.get("/overdue?role=township").await;
    page.assert_has(&l4).assert_lacks(&l2);
    let page = web.get("/overdue?prefix=450305002").await;
    page.assert_has(&l4).assert_lacks(&l1).assert_lacks(&l2);
    // The API's paging: one a page, the next page follows the cursor.
    let api = app.get("/api/v1/overdue-visits?limit=50", &web.token).await;
    assert_eq!(api.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(web.get("/overdue?role=nobody").await.status, 400);

    let page = web.get("/coverage").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has(&l2)
        .assert_has(&l3)
        .assert_lacks(&l1)
        .assert_lacks(&l4)
        .assert_has("乡镇联系人");
    web.get("/coverage?prefix=450305002")
        .await
        .assert_lacks(&l2)
        .assert_has("所有在册家庭都有两名联系人");
    // Another county's supervisor sees none of them.
    let other = app.web_user("supervisor", "450306").await;
    other.get("/overdue").await.assert_lacks(&l4);
    other.get("/coverage").await.assert_lacks(&l3);
}

async fn alert_ids(app: &TestApp, status: &str) -> Vec<String> {
    let r = app
        .get(&format!("/api/v1/alerts?status={status}"), ADMIN_TOKEN)
        .await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn acknowledging_an_alert_from_the_inbox(app: TestApp) {
    county(&app).await;
    app.post("/api/v1/alerts/scan", ADMIN_TOKEN, json!({}))
        .await;
    let open = alert_ids(&app, "open").await;
    assert_eq!(open.len(), 4);
    let id = open[0].clone();
    let action = format!("/alerts/{id}/ack");
    let web = app.web_user("supervisor", "450305").await;

    let page = web.get("/alerts").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has(&format!(r#"action="{action}""#))
        .assert_has("确认")
        .assert_has("待处理");

    // Without a note: refused, nothing changes.
    let refused = web.submit("/alerts", &action, &[("note", "")]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.assert_has("不能为空");
    assert_eq!(alert_ids(&app, "open").await.len(), 4);
    // Without the form token: refused.
    let forged = web.post_form(&action, &[("note", "x")]).await;
    assert_eq!(forged.status, 403);

    let done = web
        .submit("/alerts", &action, &[("note", "called the family")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("/alerts?status=open&acknowledged=1")
    );
    let r = app.get(&format!("/api/v1/alerts/{id}"), &web.token).await;
    assert_eq!(r.body["status"], "acknowledged", "{}", r.text);
    assert_eq!(r.body["acknowledgement"]["note"], "called the family");
    assert_eq!(r.body["acknowledgement"]["by"], web.user_id.as_str());
    let page = web.get(&done.location.unwrap()).await;
    page.assert_has("预警已确认")
        .assert_lacks(&format!(r#"action="{action}""#));
    web.get("/alerts?status=acknowledged")
        .await
        .assert_has("called the family");

    // Twice: the alert is no longer open.
    let again = web
        .post_form(
            &action,
            &[("_csrf", &csrf_of(&web).await), ("note", "again")],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    // Another county's supervisor cannot see or acknowledge it.
    let other = app.web_user("supervisor", "450306").await;
    other.get("/alerts").await.assert_lacks(&action);
    let r = other
        .post_form(
            &format!("/alerts/{}/ack", open[1]),
            &[("_csrf", &csrf_of(&other).await), ("note", "x")],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(alert_ids(&app, "open").await.len(), 3);
}

/// The session's form token, from the sign-out form every page has.
async fn csrf_of(web: &WebClient) -> String {
    let page = web.get("/account").await;
    nuanxin_tests::web::hidden_fields(&page.body, "/logout")
        .into_iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v)
        .expect("a form token")
}

/// `GET` with the web client, as bytes and content type.
async fn bytes(web: &WebClient, path: &str) -> (u16, String, Vec<u8>) {
    let r = web
        .client
        .get(format!("{}{path}", web.base))
        .send()
        .await
        .unwrap();
    let media = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        r.status().as_u16(),
        media,
        r.bytes().await.unwrap().to_vec(),
    )
}

/// `GET` on the API with a token, as bytes and content type.
async fn api_bytes(app: &TestApp, token: &str, path: &str) -> (String, Vec<u8>) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    app.db.record(
        &reqwest::Method::GET,
        path.split('?').next().unwrap(),
        r.status(),
    );
    assert_eq!(r.status(), 200, "{path}");
    let media = r.headers()["content-type"].to_str().unwrap().to_owned();
    (media, r.bytes().await.unwrap().to_vec())
}

async fn report_page_and_its_downloads_are_the_apis(app: TestApp) {
    county(&app).await;
    let web = app.web_user("supervisor", "450305").await;
    let page = web.get("/reports").await;
    assert_eq!(page.status, 200);
    page.assert_has(r#"name="from""#)
        .assert_has(r#"value="2026-01-01""#)
        .assert_has(r#"name="known_at""#)
        .assert_lacks("summary.csv");

    let page = web
        .get("/reports?from=2026-01-01&to=2026-06-30&prefix=450305&known_at=")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Open, closed, key, both contacts, visits, due, on time, overdue at
    // end, emergencies, assistance, amount.
    assert_eq!(
        row(&page.body, "450305001")[..4],
        ["3", "0", "1", "1 (33%)"]
    );
    assert_eq!(row(&page.body, "450305001")[7], "2");
    assert_eq!(row(&page.body, "合计")[0], "4");
    let links = Regex::new(r#"href="(/reports/summary\.(csv|xlsx)\?[^"]*)""#).unwrap();
    let found: Vec<(String, String)> = links
        .captures_iter(&page.body)
        .map(|c| (c[2].to_owned(), c[1].replace("&amp;", "&")))
        .collect();
    assert_eq!(found.len(), 2, "{}", page.body);
    for (ext, href) in found {
        let query = href.split_once('?').unwrap().1;
        assert!(
            query.contains("known_at=2026-06-30T04%3A00%3A00Z"),
            "{query}"
        );
        let (status, media, body) = bytes(&web, &href).await;
        assert_eq!(status, 200);
        let api_query = query.replace("prefix=", "village_code_prefix=");
        let (api_media, api_body) = api_bytes(
            &app,
            &web.token,
            &format!("/api/v1/reports/summary?{api_query}&format={ext}"),
        )
        .await;
        assert_eq!(media, api_media);
        assert_eq!(body, api_body, "{ext}: the API's bytes");
        if ext == "csv" {
            assert_eq!(media, "text/csv; charset=utf-8");
            assert!(body.starts_with(b"\xEF\xBB\xBF"), "a byte-order mark");
        } else {
            assert_eq!(
                media,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            );
            assert!(body.starts_with(b"PK"), "a zip");
        }
    }

    // Refusals come back beside their fields, the typed values kept.
    let page = web.get("/reports?from=2026-13-01&to=2026-06-30").await;
    assert_eq!(page.status, 422);
    page.assert_has(r#"id="from-error""#)
        .assert_has(r#"value="2026-13-01""#);
    let page = web.get("/reports?from=2026-06-30&to=2026-01-01").await;
    assert_eq!(page.status, 422);
    page.assert_has(r#"id="to-error""#);
    let page = web.get("/reports?to=2026-06-30&prefix=450306").await;
    assert_eq!(page.status, 422);
    page.assert_has(r#"id="prefix-error""#)
        .assert_lacks("450306001");
    // A download outside the scope: not found, like the API.
    let (status, _, _) = bytes(&web, "/reports/summary.csv?prefix=450306").await;
    assert_eq!(status, 404);
}

async fn history_page_with_chain_as_of_and_csv(app: TestApp) {
    let c = county(&app).await;
    let visit = ok(
        &app,
        &c.cw,
        format!("/api/v1/families/{}/visits", c.f2),
        visit_body("village", "phone", "2026-06-29"),
    )
    .await;
    let action = visit["action_id"].as_str().unwrap().to_owned();
    ok(
        &app,
        &c.cw,
        format!("/api/v1/families/{}/voids", c.f2),
        json!({"action_id": action, "reason": "recorded twice"}),
    )
    .await;
    let web = app.web_user("supervisor", "450305").await;
    let path = format!("/families/{}/history", c.f2);

    let page = web.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("哈希链完整")
        .assert_has("登记家庭")
        .assert_has("指定联系人")
        .assert_has("记录走访")
        .assert_has("作废记录")
        .assert_has("已作废")
        .assert_has(&format!("被操作 {}", &voider_prefix(&app, &c.f2).await))
        .assert_has("电话")
        .assert_has("2026年6月29日")
        .assert_has("110105********0016")
        .assert_lacks("110105195003010016")
        .assert_has(&format!(r#"href="{path}.csv""#));

    // As of a day: before anything was recorded (every event here was
    // recorded on 2026-06-30), and on the day.
    let page = web.get(&format!("{path}?as_of=2026-06-29")).await;
    assert_eq!(page.status, 200);
    page.assert_has("2026年6月29日时这户尚未登记");
    let page = web.get(&format!("{path}?as_of=2026-06-30")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("2026年6月30日结束时的案卷")
        .assert_has("2026年1月10日")
        .assert_has("450305001001")
        .assert_has("Zhang San");
    let page = web.get(&format!("{path}?as_of=June")).await;
    assert_eq!(page.status, 422);
    page.assert_has(r#"id="as_of-error""#);
    // The reads are in the access log, as the API's are.
    let log = app
        .get(
            &format!("/api/v1/access-log?family_id={}", c.f2),
            ADMIN_TOKEN,
        )
        .await;
    let endpoints: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert!(endpoints.contains(&"case_file_as_of"), "{endpoints:?}");
    assert!(endpoints.contains(&"history"), "{endpoints:?}");

    // The CSV: the API's.
    let (status, media, body) = bytes(&web, &format!("{path}.csv")).await;
    assert_eq!(status, 200);
    let (api_media, api_body) = api_bytes(
        &app,
        &web.token,
        &format!("/api/v1/families/{}/history.csv", c.f2),
    )
    .await;
    assert_eq!(media, api_media);
    assert_eq!(body, api_body);
    assert!(String::from_utf8(body).unwrap().contains("VisitRecorded"));

    // A caseworker of the county reads it too; other counties do not.
    let cw = app.web_user("caseworker", "450305001").await;
    assert_eq!(cw.get(&path).await.status, 200);
    let other = app.web_user("supervisor", "450306").await;
    let page = other.get(&path).await;
    assert_eq!(page.status, 404);
    page.assert_lacks("Zhang San");
    assert_eq!(bytes(&other, &format!("{path}.csv")).await.0, 404);
    assert_eq!(other.get("/families/not-a-uuid/history").await.status, 404);
}

/// The end of the id of the action that voided F2's visit.
async fn voider_prefix(app: &TestApp, family: &str) -> String {
    let r = app
        .get(&format!("/api/v1/families/{family}/history"), ADMIN_TOKEN)
        .await;
    let voided = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["voided_by"].as_str())
        .unwrap()
        .to_owned();
    voided[voided.len() - 8..].to_owned()
}

async fn supervisor_pages_offer_no_record_buttons(app: TestApp) {
    let c = county(&app).await;
    app.post("/api/v1/alerts/scan", ADMIN_TOKEN, json!({}))
        .await;
    let web = app.web_user("supervisor", "450305").await;
    let forms = Regex::new(r#"<form\b[^>]*method="post"[^>]*action="([^"]*)""#).unwrap();
    let family_links = Regex::new(r#"href="/families/[0-9a-f-]{36}/([^"]*)""#).unwrap();
    for path in [
        "/".to_owned(),
        "/?prefix=450305001".into(),
        "/overdue".into(),
        "/coverage".into(),
        "/alerts".into(),
        "/reports?to=2026-06-30".into(),
        format!("/families/{}/history", c.f1),
        format!("/families/{}/history?as_of=2026-06-30", c.f4),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        for f in forms.captures_iter(&page.body) {
            let action = &f[1];
            assert!(
                action == "/logout" || (action.starts_with("/alerts/") && action.ends_with("/ack")),
                "{path}: a form posting to {action}"
            );
        }
        for l in family_links.captures_iter(&page.body) {
            assert!(l[1].starts_with("history"), "{path}: a link to {}", &l[0]);
        }
        page.assert_lacks("style=");
    }
}
