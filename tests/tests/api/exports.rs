//! The lists as Excel workbooks: `format=xlsx` of `GET /api/v1/families`,
//! `/overdue-visits` and `/coverage-gaps` holds the whole filtered list
//! (read back with calamine and compared with the JSON, row by row), with
//! the JSON's scope and refusals; the OpenAPI document says so; the web
//! pages link the workbook of their filters, downloaded with the session
//! cookie. Today is 2026-06-30 in the test clock.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;
use nuanxin_tests::*;
use regex::Regex;
use reqwest::Method;
use serde_json::{json, Value};

both_stores!(
    lists_download_as_whole_workbooks,
    list_downloads_refuse_as_the_json_does,
    list_downloads_are_described,
    web_lists_link_their_workbooks,
);

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Families of county 450305 (and one of 450306), as the caseworker of
/// city 4503 registered them:
/// - F1 (450305001001): a village contact since January, never visited;
/// - F2 (450305002001, key): both contacts, never visited;
/// - F3 (450305001002): no contact;
/// - F4 (450306001001): both contacts, in the other county.
async fn fixture(app: &TestApp) -> String {
    let cw = app.user("caseworker", "4503").await;
    let ordinary = |village: &str| {
        let mut body = family_body(village);
        body["members"][1]["self_care"] = json!("independent");
        body
    };
    let create = |body: Value| {
        let cw = cw.clone();
        async move {
            let r = app.post("/api/v1/families", &cw, body).await;
            assert_eq!(r.status, 201, "{}", r.text);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let contact = |family: String, role: &'static str, on: &'static str| {
        let cw = cw.clone();
        async move {
            let r = app
                .post(
                    &format!("/api/v1/families/{family}/contacts"),
                    &cw,
                    contact_body(role, on),
                )
                .await;
            assert!(r.status.is_success(), "{}", r.text);
        }
    };
    let f1 = create(ordinary("450305001001")).await;
    contact(f1, "village", "2026-01-12").await;
    let f2 = create(family_body("450305002001")).await;
    contact(f2.clone(), "village", "2026-01-12").await;
    contact(f2, "township", "2026-02-15").await;
    create(ordinary("450305001002")).await;
    let f4 = create(ordinary("450306001001")).await;
    contact(f4.clone(), "village", "2026-01-12").await;
    contact(f4, "township", "2026-01-12").await;
    cw
}

/// A download through the API: status, content type, disposition, bytes.
async fn download(app: &TestApp, token: &str, path: &str) -> (u16, String, String, Vec<u8>) {
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    app.db.record(&Method::GET, path, resp.status());
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (media, disposition) = (header("content-type"), header("content-disposition"));
    let status = resp.status().as_u16();
    (
        status,
        media,
        disposition,
        resp.bytes().await.expect("body").to_vec(),
    )
}

/// The rows of sheet `name` (header first), and the sheet names.
fn sheet(bytes: &[u8], name: &str) -> (Vec<Vec<Data>>, Vec<String>) {
    let mut book = Xlsx::new(Cursor::new(bytes.to_vec())).expect("an XLSX workbook");
    let names = book.sheet_names();
    let range = book.worksheet_range(name).expect("the sheet");
    (range.rows().map(<[Data]>::to_vec).collect(), names)
}

/// A cell as text ("" when empty).
fn text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        other => panic!("not text: {other:?}"),
    }
}

/// A date cell as `YYYY-MM-DD` (`null` when empty): it must be an Excel date.
fn day(d: &Data) -> Value {
    match d {
        Data::Empty => Value::Null,
        Data::DateTime(x) => {
            let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).unwrap();
            let day = epoch + chrono::Days::new(x.as_f64() as u64);
            json!(day.to_string())
        }
        other => panic!("not an Excel date: {other:?}"),
    }
}

fn yes_no(v: &Value) -> &'static str {
    if v.as_bool().expect("a boolean") {
        "是"
    } else {
        "否"
    }
}

fn role(v: &Value) -> &'static str {
    match v.as_str() {
        Some("village") => "村级联系人",
        Some("township") => "乡镇联系人",
        other => panic!("a role: {other:?}"),
    }
}

/// Every row of the case list's workbook is the JSON list's item.
fn assert_case_rows(bytes: &[u8], items: &[Value]) {
    let (rows, names) = sheet(bytes, "家庭列表");
    assert_eq!(names, ["家庭列表", "说明"]);
    let header: Vec<String> = rows[0].iter().map(text).collect();
    assert_eq!(
        header,
        [
            "家庭编号",
            "村级区划代码",
            "状态",
            "有重点人员",
            "村级联系人",
            "乡镇联系人",
            "村级下次应访",
            "乡镇下次应访"
        ]
    );
    assert_eq!(rows.len() - 1, items.len(), "one row per family");
    for (row, item) in rows[1..].iter().zip(items) {
        let status = match item["status"].as_str() {
            Some("open") => "在册",
            _ => "已结案",
        };
        let name = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        assert_eq!(text(&row[0]), item["id"].as_str().unwrap());
        assert_eq!(text(&row[1]), item["village_code"].as_str().unwrap());
        assert_eq!(text(&row[2]), status);
        assert_eq!(text(&row[3]), yes_no(&item["key_person"]));
        assert_eq!(text(&row[4]), name(&item["village_contact_name"]));
        assert_eq!(text(&row[5]), name(&item["township_contact_name"]));
        assert_eq!(day(&row[6]), item["village_next_due_on"]);
        assert_eq!(day(&row[7]), item["township_next_due_on"]);
    }
}

/// Every row of the overdue list's workbook is the JSON list's item.
fn assert_overdue_rows(bytes: &[u8], items: &[Value]) {
    let (rows, _) = sheet(bytes, "逾期走访");
    let header: Vec<String> = rows[0].iter().map(text).collect();
    assert_eq!(
        header,
        [
            "家庭编号",
            "村级区划代码",
            "联系人岗位",
            "联系人",
            "应访日期",
            "逾期天数",
            "上次走访",
            "上次入户走访",
            "有重点人员",
            "紧急"
        ]
    );
    assert_eq!(rows.len() - 1, items.len(), "one row per item");
    for (row, item) in rows[1..].iter().zip(items) {
        assert_eq!(text(&row[0]), item["family_id"].as_str().unwrap());
        assert_eq!(text(&row[1]), item["village_code"].as_str().unwrap());
        assert_eq!(text(&row[2]), role(&item["role"]));
        assert_eq!(text(&row[3]), item["contact"]["name"].as_str().unwrap());
        assert_eq!(day(&row[4]), item["due_on"]);
        assert_eq!(
            row[5],
            Data::Float(item["days_overdue"].as_i64().unwrap() as f64)
        );
        assert_eq!(day(&row[6]), item["last_visit_on"]);
        assert_eq!(day(&row[7]), item["last_home_visit_on"]);
        assert_eq!(text(&row[8]), yes_no(&item["key_person"]));
        assert_eq!(text(&row[9]), yes_no(&item["urgent"]));
    }
}

/// Every row of the coverage gaps' workbook is the JSON list's item.
fn assert_gap_rows(bytes: &[u8], items: &[Value]) {
    let (rows, _) = sheet(bytes, "联系人空缺");
    let header: Vec<String> = rows[0].iter().map(text).collect();
    assert_eq!(
        header,
        [
            "家庭编号",
            "村级区划代码",
            "缺少村级联系人",
            "缺少乡镇联系人"
        ]
    );
    assert_eq!(rows.len() - 1, items.len(), "one row per family");
    for (row, item) in rows[1..].iter().zip(items) {
        let missing = |r: &str| {
            if item["missing_roles"]
                .as_array()
                .unwrap()
                .contains(&json!(r))
            {
                "是"
            } else {
                "否"
            }
        };
        assert_eq!(text(&row[0]), item["family_id"].as_str().unwrap());
        assert_eq!(text(&row[1]), item["village_code"].as_str().unwrap());
        assert_eq!(text(&row[2]), missing("village"));
        assert_eq!(text(&row[3]), missing("township"));
    }
}

/// The items of a JSON list (one page of up to 500).
async fn items(app: &TestApp, token: &str, path: &str, query: &str) -> Vec<Value> {
    let sep = if query.is_empty() { "" } else { "&" };
    let r = app
        .get(&format!("{path}?limit=500{sep}{query}"), token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["next_cursor"].is_null());
    r.body["items"].as_array().unwrap().clone()
}

/// The workbook of a list: answered 200 as an XLSX attachment.
async fn workbook(app: &TestApp, token: &str, path: &str, query: &str) -> (String, Vec<u8>) {
    let sep = if query.is_empty() { "" } else { "&" };
    let (status, media, disposition, bytes) =
        download(app, token, &format!("{path}?format=xlsx{sep}{query}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(media, XLSX);
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    (disposition, bytes)
}

async fn lists_download_as_whole_workbooks(app: TestApp) {
    fixture(&app).await;
    let county = app.user("supervisor", "450305").await;

    // The case list, whole (a `limit` does not cut it), as the JSON.
    let families = "/api/v1/families";
    let all = items(&app, &county, families, "").await;
    assert_eq!(all.len(), 3);
    let (disposition, bytes) = workbook(&app, &county, families, "limit=1").await;
    assert_eq!(
        disposition,
        "attachment; filename=\"families-450305-2026-06-30.xlsx\""
    );
    assert_case_rows(&bytes, &all);
    // Its 说明 sheet names the list and its parameters.
    let (notes, _) = sheet(&bytes, "说明");
    assert_eq!(text(&notes[0][0]), "暖心 · 家庭列表");
    let line = |label: &str| {
        notes
            .iter()
            .find(|r| r.first().map(text).as_deref() == Some(label))
            .map(|r| r[1].clone())
            .unwrap_or_else(|| panic!("no line {label}"))
    };
    assert_eq!(text(&line("区划代码前缀")), "全部");
    assert_eq!(line("行数"), Data::Float(3.0));
    // With each filter, the same rows as the JSON.
    for query in [
        "key_person=true",
        "key_person=false",
        "status=open",
        "status=closed",
        "uncovered=true",
        "village_code_prefix=450305001",
        "village_code_prefix=450305001&uncovered=true&key_person=false",
    ] {
        let json = items(&app, &county, families, query).await;
        let (_, bytes) = workbook(&app, &county, families, query).await;
        assert_case_rows(&bytes, &json);
    }
    assert_eq!(
        items(&app, &county, families, "uncovered=true").await.len(),
        2
    );

    // The overdue list: both roles of F2, F1's village contact.
    let overdue = "/api/v1/overdue-visits";
    let all = items(&app, &county, overdue, "").await;
    assert_eq!(all.len(), 3);
    let (disposition, bytes) = workbook(&app, &county, overdue, "").await;
    assert_eq!(
        disposition,
        "attachment; filename=\"overdue-visits-450305-2026-06-30.xlsx\""
    );
    assert_overdue_rows(&bytes, &all);
    for query in [
        "role=village",
        "role=township",
        "village_code_prefix=450305002",
        "on=2026-03-01",
    ] {
        let json = items(&app, &county, overdue, query).await;
        let (_, bytes) = workbook(&app, &county, overdue, query).await;
        assert_overdue_rows(&bytes, &json);
    }

    // The coverage gaps: F1 (township), F3 (both).
    let gaps = "/api/v1/coverage-gaps";
    let all = items(&app, &county, gaps, "").await;
    assert_eq!(all.len(), 2);
    let (disposition, bytes) = workbook(
        &app,
        &county,
        gaps,
        "cursor=00000000-0000-0000-0000-000000000000",
    )
    .await;
    assert_eq!(
        disposition,
        "attachment; filename=\"coverage-gaps-450305-2026-06-30.xlsx\""
    );
    assert_gap_rows(&bytes, &all);

    // A city supervisor sees both counties; a prefix narrows it.
    let city = app.user("supervisor", "4503").await;
    let json = items(&app, &city, families, "").await;
    assert_eq!(json.len(), 4);
    let (disposition, bytes) = workbook(&app, &city, families, "").await;
    assert_eq!(
        disposition,
        "attachment; filename=\"families-4503-2026-06-30.xlsx\""
    );
    assert_case_rows(&bytes, &json);
    let json = items(&app, &city, families, "village_code_prefix=450306").await;
    let (_, bytes) = workbook(&app, &city, families, "village_code_prefix=450306").await;
    assert_eq!(json.len(), 1);
    assert_case_rows(&bytes, &json);
}

async fn list_downloads_refuse_as_the_json_does(app: TestApp) {
    fixture(&app).await;
    let county = app.user("supervisor", "450305").await;
    for path in [
        "/api/v1/families",
        "/api/v1/overdue-visits",
        "/api/v1/coverage-gaps",
    ] {
        // A format the lists do not offer: 400, problem+json.
        for format in ["csv", "pdf", "XLSX", ""] {
            app.get(&format!("{path}?format={format}"), &county)
                .await
                .assert_problem(400);
        }
        // A malformed prefix: 400, as the JSON.
        app.get(&format!("{path}?village_code_prefix=45a"), &county)
            .await
            .assert_problem(400);
        app.get(
            &format!("{path}?village_code_prefix=45a&format=xlsx"),
            &county,
        )
        .await
        .assert_problem(400);
        // Outside the scope: the JSON list is empty, so is the workbook.
        let json = items(&app, &county, path, "village_code_prefix=450306").await;
        assert!(json.is_empty());
        let (_, bytes) = workbook(&app, &county, path, "village_code_prefix=450306").await;
        let name = match path {
            "/api/v1/families" => "家庭列表",
            "/api/v1/overdue-visits" => "逾期走访",
            _ => "联系人空缺",
        };
        let (rows, _) = sheet(&bytes, name);
        assert_eq!(rows.len(), 1, "the header alone");
        // No token: 401.
        app.send(Method::GET, &format!("{path}?format=xlsx"), None, None, &[])
            .await
            .assert_problem(401);
    }
    // The list's own checks hold for the download too.
    app.get("/api/v1/families?status=gone&format=xlsx", &county)
        .await
        .assert_problem(400);
    app.get("/api/v1/overdue-visits?role=boss&format=xlsx", &county)
        .await
        .assert_problem(400);
    app.get("/api/v1/overdue-visits?on=2026-02-30&format=xlsx", &county)
        .await
        .assert_problem(400);
}

async fn list_downloads_are_described(app: TestApp) {
    let doc = app.get("/api/v1/openapi.json", ADMIN_TOKEN).await.body;
    for path in [
        "/api/v1/families",
        "/api/v1/overdue-visits",
        "/api/v1/coverage-gaps",
    ] {
        let op = &doc["paths"][path]["get"];
        let params = op["parameters"].as_array().expect("parameters");
        let format = params
            .iter()
            .find(|p| p["name"] == "format")
            .unwrap_or_else(|| panic!("{path}: no format"));
        assert_eq!(format["schema"]["enum"], json!(["json", "xlsx"]), "{path}");
        let content = &op["responses"]["200"]["content"];
        assert!(content["application/json"].is_object(), "{path}");
        assert!(content[XLSX].is_object(), "{path}: {content}");
        assert!(op["responses"]["400"].is_object(), "{path}");
    }
    let families = doc["paths"]["/api/v1/families"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(families.iter().any(|p| p["name"] == "uncovered"));
}

async fn web_lists_link_their_workbooks(app: TestApp) {
    fixture(&app).await;
    let web = app.web_user("supervisor", "450305").await;
    let href = Regex::new(r#"href="([^"]*\.xlsx[^"]*)""#).unwrap();
    let link = |body: &str| -> String {
        href.captures(body)
            .map(|c| c[1].replace("&amp;", "&"))
            .unwrap_or_else(|| panic!("no download link in:\n{body}"))
    };

    // The family list: the link carries the page's filters.
    let page = web.get("/families?village=450305001&uncovered=1").await;
    page.assert_has("下载 Excel");
    let url = link(&page.body);
    assert_eq!(url, "/families.xlsx?village=450305001&uncovered=1");
    let file = web.download(&url).await;
    assert_eq!(file.status, 200);
    assert_eq!(file.content_type, XLSX);
    assert!(file
        .disposition
        .starts_with("attachment; filename=\"families-450305001-"));
    let json = items(
        &app,
        &web.token,
        "/api/v1/families",
        "village_code_prefix=450305001&uncovered=true",
    )
    .await;
    assert_eq!(json.len(), 2);
    assert_case_rows(&file.bytes, &json);
    // Without filters: the whole list of the scope.
    let file = web.download(&link(&web.get("/families").await.body)).await;
    assert_case_rows(
        &file.bytes,
        &items(&app, &web.token, "/api/v1/families", "").await,
    );

    // A search by name is posted: its answer links no download, and the
    // name is in no URL.
    let search = web
        .submit("/families", "/families/search", &[("q", "Zhang")])
        .await;
    assert_eq!(search.status, 200, "{}", search.body);
    for c in Regex::new(r#"(?:href|action)="([^"]*)""#)
        .unwrap()
        .captures_iter(&search.body)
    {
        assert!(
            !c[1].contains("Zhang") && !c[1].contains(".xlsx"),
            "{}",
            &c[1]
        );
    }

    // The overdue list, by role.
    let page = web.get("/overdue?role=township&prefix=450305").await;
    let url = link(&page.body);
    assert_eq!(url, "/overdue.xlsx?role=township&prefix=450305");
    let file = web.download(&url).await;
    assert_eq!(file.status, 200);
    let json = items(
        &app,
        &web.token,
        "/api/v1/overdue-visits",
        "role=township&village_code_prefix=450305",
    )
    .await;
    assert_eq!(json.len(), 1);
    assert_overdue_rows(&file.bytes, &json);

    // The coverage gaps.
    let page = web.get("/coverage?prefix=450305001").await;
    let url = link(&page.body);
    assert_eq!(url, "/coverage.xlsx?prefix=450305001");
    let file = web.download(&url).await;
    assert_eq!(file.status, 200);
    let json = items(
        &app,
        &web.token,
        "/api/v1/coverage-gaps",
        "village_code_prefix=450305001",
    )
    .await;
    assert_gap_rows(&file.bytes, &json);

    // A caseworker downloads hers too; a bad prefix is the error page.
    let worker = app.web_user("caseworker", "450305").await;
    let file = worker.download("/overdue.xlsx").await;
    assert_eq!(file.status, 200);
    assert_eq!(file.content_type, XLSX);
    let bad = worker.download("/families.xlsx?village=45x").await;
    assert_eq!(bad.status, 400);
    assert!(bad.content_type.starts_with("text/html"));
    // Signed out: to the sign-in page.
    let anonymous = app.web_anonymous().download("/coverage.xlsx").await;
    assert_eq!(anonymous.status, 303);
}
