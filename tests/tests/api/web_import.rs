//! The import page (`/import`): a caseworker uploads a register (CSV or
//! XLSX) and gets the summary and the errors — row, column, message, never
//! a value from the file — and the error report as CSV; the good rows are
//! families in the API's list, recorded by her; the same file again imports
//! nothing twice; a dry run imports nothing; a supervisor, a wrong file
//! type, an unreadable file, a missing column, a missing form token and a
//! file over 20 MB are refused and import nothing.

use nuanxin_tests::web::{hidden_fields, Page, WebClient};
use nuanxin_tests::*;
use serde_json::Value;

both_stores!(
    a_caseworker_imports_a_register,
    a_dry_run_imports_nothing,
    an_xlsx_register_is_imported,
    a_supervisor_cannot_import,
    bad_uploads_import_nothing,
);

const HEADER: &str = "台账编号,类别,村级区划代码,住址,登记日期,成员1姓名,成员1性别,成员1出生日期,成员1身份证号,成员1电话,成员1独居,成员1自理能力,村级联系人姓名,村级联系人电话,联系人确定日期,备注";

/// Two good rows (2, 3) and three bad ones: an unknown category (4), a
/// village outside the caseworker's county (5), a wrong ID number (6).
fn register() -> String {
    [
        HEADER,
        "A001,失独,450305001001,新村3号,2024-01-10,张三,男,1950-03-01,110105195003010016,13800138000,否,自理,王芳,13900139000,2024-02-01,甲",
        "A002,伤残,450305001002,新村4号,2024/1/9,赵四,男,1948/5/6,,,是,半失能,,,,",
        "A003,其他,450305001003,新村5号,2024-01-09,钱五,男,1948-05-06,,,,,,,,",
        "A004,失独,450306001001,外县1号,2024-01-09,孙六,女,1949-05-06,,,,,,,,",
        "A005,失独,450305001004,新村6号,2024-01-09,李七,男,1950-03-01,110105195003010017,,,,,,,",
    ]
    .join("\r\n")
}

/// Uploads `bytes` as `name` through the page's form (its form token,
/// `dry_run` ticked or not).
async fn upload(web: &WebClient, name: &str, bytes: &[u8], dry_run: bool) -> Page {
    let form = web.get("/import").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let mut fields = hidden_fields(&form.body, "/import");
    if dry_run {
        fields.push(("dry_run".into(), "true".into()));
    }
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    web.post_multipart("/import", &fields, Some(("file", name, bytes)))
        .await
}

async fn families(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app
        .get("/api/v1/families?limit=500&village_code_prefix=45", token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

/// No value of the register is on the page.
fn assert_no_values(page: &Page) {
    for value in [
        "张三",
        "赵四",
        "钱五",
        "孙六",
        "李七",
        "110105195003010017",
        "13800138000",
        "新村",
        "其他",
    ] {
        page.assert_lacks(value);
    }
}

async fn a_caseworker_imports_a_register(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    // The navigation leads to the page.
    web.get("/").await.assert_has("href=\"/import\"");
    let page = web.get("/import").await;
    page.assert_has("仅检查，不导入")
        .assert_has("enctype=\"multipart/form-data\"")
        .assert_has("name=\"_csrf\"");

    let page = upload(&web, "台账.csv", register().as_bytes(), false).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("已导入 2 户，此前已导入 0 户，未通过 3 行。")
        .assert_has("以下列不是台账的列，已忽略：备注")
        .assert_has("类别（category）")
        .assert_has("必须是以下之一：失独 伤残 bereaved disabled_child")
        .assert_has("村级区划代码（village_code）")
        .assert_has("不在导入用户的管辖范围内")
        .assert_has("成员1身份证号（member1_id_number）")
        .assert_has("下载错误报告（CSV）");
    assert_no_values(&page);

    // The good rows are families, recorded by her, with their contact.
    let list = families(&app, &web.token).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let a001 = list
        .iter()
        .find(|f| f["village_code"] == "450305001001")
        .expect("A001");
    assert_eq!(a001["village_contact_name"], "王芳");
    let id = a001["id"].as_str().unwrap();
    let history = app
        .get(&format!("/api/v1/families/{id}/history"), &web.token)
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    let first = &history.body["items"][0];
    assert_eq!(first["event_type"], "FamilyRegistered", "{first}");
    assert_eq!(first["recorded_by"]["id"], web.user_id.as_str(), "{first}");

    // The error report: the command's CSV, with no value of the file.
    let fields = hidden_fields(&page.body, "/import/errors.csv");
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let csv = web.post_form("/import/errors.csv", &fields).await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    let body = csv
        .body
        .strip_prefix('\u{feff}')
        .expect("a byte-order mark");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["row", "column", "message", "message_zh"]
    );
    let lines: Vec<(String, String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[1].to_owned(), r[3].to_owned())
        })
        .collect();
    assert!(lines.contains(&(
        "4".into(),
        "category".into(),
        "必须是以下之一：失独 伤残 bereaved disabled_child".into()
    )));
    assert!(lines.contains(&(
        "5".into(),
        "village_code".into(),
        "不在导入用户的管辖范围内".into()
    )));
    assert!(lines
        .iter()
        .any(|(row, column, _)| row == "6" && column == "member1_id_number"));
    assert!(lines
        .iter()
        .all(|(row, _, _)| ["4", "5", "6"].contains(&row.as_str())));
    for value in ["张三", "李七", "110105195003010017", "其他", "新村"] {
        assert!(!body.contains(value), "{value} in the report");
    }
    // The report needs the form token.
    let report = fields.iter().find(|(k, _)| *k == "report").unwrap().1;
    let refused = web
        .post_form("/import/errors.csv", &[("report", report)])
        .await;
    assert_eq!(refused.status, 403);

    // The same file again: nothing twice.
    let events = app.event_count().await;
    let page = upload(&web, "台账.csv", register().as_bytes(), false).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("已导入 0 户，此前已导入 2 户，未通过 3 行。");
    assert_eq!(app.event_count().await, events);
    assert_eq!(families(&app, &web.token).await.len(), 2);
}

async fn a_dry_run_imports_nothing(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let events = app.event_count().await;
    let page = upload(&web, "register.CSV", register().as_bytes(), true).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("仅检查，未写入任何内容：可导入 2 户，此前已导入 0 户，未通过 3 行。")
        .assert_has("检查结果（未导入）");
    assert_no_values(&page);
    assert_eq!(app.event_count().await, events);
    assert!(families(&app, &web.token).await.is_empty());
    // Imported, then checked again: already imported.
    upload(&web, "register.csv", register().as_bytes(), false).await;
    let page = upload(&web, "register.csv", register().as_bytes(), true).await;
    page.assert_has("可导入 0 户，此前已导入 2 户，未通过 3 行。");
}

async fn an_xlsx_register_is_imported(app: TestApp) {
    let web = app.web_user("admin", "4503").await;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let rows = [
        [
            "family_ref",
            "category",
            "village_code",
            "address",
            "registered_on",
            "member1_name",
            "member1_sex",
            "member1_birth_date",
        ],
        [
            "X1",
            "bereaved",
            "450305001001",
            "No. 1",
            "2024-01-10",
            "Wang Wu",
            "male",
            "1950-01-01",
        ],
        [
            "X2",
            "disabled_child",
            "450306001001",
            "No. 2",
            "2024-01-10",
            "Wang Liu",
            "female",
            "1950-01-01",
        ],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *cell).unwrap();
        }
    }
    let bytes = book.save_to_buffer().unwrap();
    let page = upload(&web, "register.xlsx", &bytes, false).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("已导入 2 户，此前已导入 0 户，未通过 0 行。")
        .assert_lacks("Wang Wu");
    assert_eq!(families(&app, &web.token).await.len(), 2);
}

async fn a_supervisor_cannot_import(app: TestApp) {
    let web = app.web_user("supervisor", "450305").await;
    web.get("/").await.assert_lacks("href=\"/import\"");
    let page = web.get("/import").await;
    assert_eq!(page.status, 403);
    // Posting anyway, with the session's form token (from another page's
    // form): refused, nothing recorded.
    let token = hidden_fields(&web.get("/account").await.body, "/logout")
        .into_iter()
        .find(|(k, _)| k == "_csrf")
        .unwrap()
        .1;
    let events = app.event_count().await;
    let page = web
        .post_multipart(
            "/import",
            &[("_csrf", &token)],
            Some(("file", "register.csv", register().as_bytes())),
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(app.event_count().await, events);
    let csv = web
        .post_form("/import/errors.csv", &[("_csrf", &token), ("report", "[]")])
        .await;
    assert_eq!(csv.status, 403);
    // Signed out: to the sign-in page.
    let page = app.web_anonymous().get("/import").await;
    assert_eq!(page.status, 303);
}

async fn bad_uploads_import_nothing(app: TestApp) {
    let web = app.web_user("caseworker", "450305").await;
    let events = app.event_count().await;
    let refused = |page: &Page, status: u16, text: &str| {
        assert_eq!(page.status, status, "{}", page.body);
        page.assert_has(text).assert_has("action=\"/import\"");
    };
    // Not a register's file type.
    let page = upload(&web, "register.txt", register().as_bytes(), false).await;
    refused(&page, 400, "只能上传 Excel（.xlsx）或 CSV（.csv）文件");
    let page = upload(&web, "register.xls", register().as_bytes(), false).await;
    refused(&page, 400, "只能上传 Excel（.xlsx）或 CSV（.csv）文件");
    // Named .xlsx, but not a workbook.
    let page = upload(&web, "register.xlsx", register().as_bytes(), false).await;
    refused(&page, 400, "文件不是 Excel 工作簿（.xlsx）");
    // Not UTF-8.
    let page = upload(&web, "register.csv", b"\xff\xfe\x00a,b\r\n", false).await;
    refused(&page, 400, "CSV 文件必须是 UTF-8 编码");
    // Empty.
    let page = upload(&web, "register.csv", b"", false).await;
    refused(&page, 400, "文件为空");
    // A required column missing.
    let without_category = register().replace("类别,", "分类,");
    let page = upload(&web, "register.csv", without_category.as_bytes(), false).await;
    refused(&page, 400, "表头缺少列 `category`");
    // No file chosen.
    let form = web.get("/import").await;
    let token = hidden_fields(&form.body, "/import")[0].1.clone();
    let page = web
        .post_multipart("/import", &[("_csrf", &token)], None)
        .await;
    refused(&page, 400, "请选择要上传的台账文件");
    // No form token: refused.
    let page = web
        .post_multipart(
            "/import",
            &[],
            Some(("file", "register.csv", register().as_bytes())),
        )
        .await;
    assert_eq!(page.status, 403);
    // Not multipart at all.
    let page = web
        .post_form("/import", &[("_csrf", &token), ("file", "x")])
        .await;
    assert_eq!(page.status, 400);
    // Over 20 MB.
    let mut big = register().into_bytes();
    big.resize(20 * 1024 * 1024 + 1, b' ');
    let page = upload(&web, "register.csv", &big, false).await;
    refused(&page, 413, "文件超过 20 MB");
    assert_eq!(app.event_count().await, events);
    assert!(families(&app, &web.token).await.is_empty());
}
