//! The period report (`/api/v1/reports/summary`): exact figures per row of
//! a hand-built county; the report as known at an instant before a
//! late-recorded visit, byte for byte the same before and after it was
//! recorded; CSV with a byte-order mark; XLSX with its cover sheet (read
//! back with calamine); refusals. Today is 2026-06-30 in the test clock.

use std::io::Cursor;
use std::sync::Arc;

use calamine::{Data, Reader, Xlsx};
use nuanxin_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

both_stores!(
    report_figures_of_a_hand_built_county,
    report_as_known_at_an_instant_is_reproducible,
    report_refusals,
    report_is_described,
);

/// A family that is not key (no one 80+, alone or dependent).
fn ordinary(village: &str) -> Value {
    let mut body = family_body(village);
    body["members"][1]["self_care"] = json!("independent");
    body
}

async fn create(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/api/v1/families", token, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Posts a command that must succeed; its answer.
async fn ok(app: &TestApp, token: &str, path: String, body: Value) -> Value {
    let r = app.post(&path, token, body).await;
    assert!(r.status.is_success(), "{path}: {}", r.text);
    r.body
}

/// The report's raw bytes and content type.
async fn raw(app: &TestApp, token: &str, query: &str) -> (String, Vec<u8>) {
    let path = format!("/api/v1/reports/summary{query}");
    let resp = app
        .client
        .get(format!("{}{}", app.base, path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    app.db.record(&Method::GET, &path, resp.status());
    assert_eq!(resp.status(), 200);
    let media = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (media, resp.bytes().await.expect("body").to_vec())
}

async fn json_report(app: &TestApp, token: &str, query: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/reports/summary{query}"), token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The county 450305 as the scenario builds it (see the figures below).
/// Returns the caseworker's and the county supervisor's tokens.
async fn build_county(app: &TestApp) -> (String, String, String) {
    let cw = app.user("caseworker", "450305").await;
    let county = app.user("supervisor", "450305").await;
    let p = |f: &str, tail: &str| format!("/api/v1/families/{f}/{tail}");

    // F1: key (a semi-dependent mother), both contacts from registration.
    let f1 = app.register(&cw, "450305001001").await;
    for role in ["village", "township"] {
        ok(
            app,
            &cw,
            p(&f1, "contacts"),
            contact_body(role, "2026-01-10"),
        )
        .await;
    }
    ok(
        app,
        &cw,
        p(&f1, "visits"),
        visit_body("township", "home", "2026-06-15"),
    )
    .await;
    ok(
        app,
        &cw,
        p(&f1, "emergencies"),
        json!({"occurred_at": "2026-06-27T10:00:00+08:00", "description": "fall",
               "responder": "Li Si", "outcome": "hospital"}),
    )
    .await;
    ok(
        app,
        &cw,
        p(&f1, "visits"),
        visit_body("village", "home", "2026-06-28"),
    )
    .await;
    ok(
        app,
        &cw,
        p(&f1, "assistance"),
        json!({"area": "medical", "amount_fen": 50000, "provided_on": "2026-05-01",
               "description": "hospital bill"}),
    )
    .await;
    ok(
        app,
        &cw,
        p(&f1, "assistance"),
        json!({"area": "living_support", "provided_on": "2026-02-01", "description": "rice"}),
    )
    .await;
    let file = app.get(&format!("/api/v1/families/{f1}"), &cw).await.body;
    let member = file["members"][1]["id"].as_str().unwrap().to_owned();
    ok(
        app,
        &cw,
        p(&f1, "elderly-care"),
        json!({"member_id": member, "service": "daily_living_care", "provider": "Town centre",
               "from": "2026-03-01"}),
    )
    .await;

    // F2: ordinary, a village contact only; one visit voided.
    let f2 = create(app, &cw, ordinary("450305001002")).await;
    ok(
        app,
        &cw,
        p(&f2, "contacts"),
        contact_body("village", "2026-03-01"),
    )
    .await;
    ok(
        app,
        &cw,
        p(&f2, "visits"),
        visit_body("village", "phone", "2026-03-25"),
    )
    .await;
    let wrong = ok(
        app,
        &cw,
        p(&f2, "visits"),
        visit_body("village", "video", "2026-04-05"),
    )
    .await;
    ok(
        app,
        &cw,
        p(&f2, "voids"),
        json!({"action_id": wrong["action_id"], "reason": "wrong family"}),
    )
    .await;
    ok(
        app,
        &cw,
        p(&f2, "visits"),
        visit_body("village", "home", "2026-04-20"),
    )
    .await;

    // F3: another township, closed on 1 May.
    let f3 = create(app, &cw, ordinary("450305002001")).await;
    ok(
        app,
        &cw,
        p(&f3, "close"),
        json!({"on": "2026-05-01", "reason": "moved away"}),
    )
    .await;

    // F4: another county, never counted here.
    let other = app.user("caseworker", "450306").await;
    app.register(&other, "450306001001").await;
    (cw, county, f2)
}

fn row<'a>(report: &'a Value, prefix: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["village_code_prefix"] == prefix)
        .unwrap_or_else(|| panic!("no row {prefix}: {report}"))
}

async fn report_figures_of_a_hand_built_county(app: TestApp) {
    let (cw, county, f2) = build_county(&app).await;
    ok(
        &app,
        &cw,
        format!("/api/v1/families/{f2}/visits"),
        visit_body("village", "phone", "2026-05-30"),
    )
    .await;
    let report = json_report(&app, &county, "?from=2026-04-01&to=2026-06-30").await;
    assert_eq!(report["from"], "2026-04-01");
    assert_eq!(report["to"], "2026-06-30");
    assert_eq!(report["village_code_prefix"], "450305");
    assert_eq!(report["known_at"], "2026-06-30T04:00:00Z");
    let prefixes: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["village_code_prefix"].as_str().unwrap())
        .collect();
    assert_eq!(prefixes, ["450305001", "450305002", "450305"]);
    assert_eq!(report["rows"][2]["total"], true);
    assert_eq!(report["rows"][0]["total"], false);

    let r = row(&report, "450305001");
    assert_eq!(r["families_open"], 2);
    assert_eq!(r["families_closed"], 0);
    assert_eq!(r["families_key_person"], 1);
    assert_eq!(r["families_dual_contact"], 1);
    assert_eq!(r["dual_contact_coverage"], 0.5);
    // F1's two home visits, F2's home and phone visits (the voided video
    // visit does not count, nor the phone visit of March).
    assert_eq!(r["visits"], 4);
    assert_eq!(
        r["visits_by_mode"],
        json!({"home": 3, "phone": 1, "video": 0, "holiday": 0})
    );
    // F2's village contact: due 24 April (met on 20 April), due 20 May
    // (met late on 30 May), due 29 June (not met). F1's township contact:
    // due 28 June after the emergency of 27 June (not met). F1's village
    // contact was overdue since January: its home visit of 28 June
    // discharged an obligation that fell due before the period.
    assert_eq!(r["obligations_due"], 4);
    assert_eq!(r["obligations_met_on_time"], 1);
    assert_eq!(
        r["obligations_by_role"],
        json!({"village": {"due": 3, "met_on_time": 1}, "township": {"due": 1, "met_on_time": 0}})
    );
    // On 30 June: F1's township (2 days), F2's village (1 day).
    assert_eq!(r["overdue_at_end"], 2);
    assert_eq!(
        r["overdue_by_age"],
        json!({"days_1_7": 2, "days_8_30": 0, "days_31_plus": 0})
    );
    assert_eq!(r["emergencies"], 1);
    assert_eq!(r["emergencies_followed_in_time"], 1);
    assert_eq!(
        r["assistance"],
        json!({"living_support": {"count": 0, "amount_fen": 0},
               "medical": {"count": 1, "amount_fen": 50000},
               "elderly_care": {"count": 0, "amount_fen": 0},
               "psychological_comfort": {"count": 0, "amount_fen": 0}})
    );
    assert_eq!(r["elderly_care_services"], 1);
    assert_eq!(r["insurance"]["enrolments"], 0);
    assert_eq!(r["activities"]["activities_held"], 0);

    let r = row(&report, "450305002");
    assert_eq!(r["families_open"], 0);
    assert_eq!(r["families_closed"], 1);
    assert_eq!(r["dual_contact_coverage"], 0.0);
    assert_eq!(r["visits"], 0);
    assert_eq!(r["obligations_due"], 0);

    let t = row(&report, "450305");
    assert_eq!(t["total"], true);
    assert_eq!(t["families_open"], 2);
    assert_eq!(t["families_closed"], 1);
    assert_eq!(t["families_key_person"], 1);
    assert_eq!(t["dual_contact_coverage"], 0.5);
    assert_eq!(t["visits"], 4);
    assert_eq!(t["obligations_due"], 4);
    assert_eq!(t["obligations_met_on_time"], 1);
    assert_eq!(t["overdue_at_end"], 2);
    assert_eq!(t["assistance"]["medical"]["amount_fen"], 50000);
    // The county's inspections required for the quarter (12 a year).
    assert_eq!(t["inspections"]["inspections_required"], 2);

    // A caseworker of one township sees its villages only.
    let township = app.user("caseworker", "450305001").await;
    let mine = json_report(&app, &township, "?from=2026-04-01&to=2026-06-30").await;
    let prefixes: Vec<&str> = mine["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["village_code_prefix"].as_str().unwrap())
        .collect();
    assert_eq!(prefixes, ["450305001001", "450305001002", "450305001"]);
    assert_eq!(row(&mine, "450305001")["visits"], 4);
    // The city's supervisor asking for everything gets the city's counties.
    let city = app.user("supervisor", "4503").await;
    let all = json_report(
        &app,
        &city,
        "?from=2026-04-01&to=2026-06-30&village_code_prefix=",
    )
    .await;
    assert_eq!(all["village_code_prefix"], "4503");
    assert_eq!(all["rows"][0]["village_code_prefix"], "450305");
    assert_eq!(all["rows"][1]["village_code_prefix"], "450306");
    assert_eq!(all["rows"][1]["families_open"], 1);
    assert_eq!(all["rows"][2]["families_open"], 3);
}

async fn report_as_known_at_an_instant_is_reproducible(app: TestApp) {
    let (cw, county, f2) = build_county(&app).await;
    let then = "known_at=2026-06-30T05:00:00Z";
    let q = |format: &str| format!("?from=2026-04-01&to=2026-06-30&{then}&format={format}");
    let (media, csv_before) = raw(&app, &county, &q("csv")).await;
    assert_eq!(media, "text/csv; charset=utf-8");
    let (media, xlsx_before) = raw(&app, &county, &q("xlsx")).await;
    assert_eq!(
        media,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let json_before = json_report(&app, &county, &q("json")).await;

    // A day later, the phone visit of 30 May is recorded.
    let later = "2026-07-01T04:00:00Z";
    let app = app
        .restart_with(move |s| {
            s.clock = Arc::new(nuanxin_domain::FixedClock(later.parse().unwrap()));
        })
        .await;
    ok(
        &app,
        &cw,
        format!("/api/v1/families/{f2}/visits"),
        visit_body("village", "phone", "2026-05-30"),
    )
    .await;

    // Today's view of the period shows the late visit …
    let now = json_report(&app, &county, "?from=2026-04-01&to=2026-06-30").await;
    assert_eq!(now["known_at"], "2026-07-01T04:00:00Z");
    let r = row(&now, "450305001");
    assert_eq!(r["visits"], 4);
    assert_eq!(r["obligations_by_role"]["village"]["due"], 3);
    assert_eq!(r["overdue_by_age"]["days_1_7"], 2);
    // … the report as known then does not.
    let old = json_report(&app, &county, &q("json")).await;
    assert_eq!(old, json_before);
    assert_eq!(old["known_at"], "2026-06-30T05:00:00Z");
    let r = row(&old, "450305001");
    assert_eq!(r["visits"], 3);
    assert_eq!(r["visits_by_mode"]["phone"], 0);
    // F2's village contact: due 24 April (met), due 20 May (still open).
    assert_eq!(
        r["obligations_by_role"]["village"],
        json!({"due": 2, "met_on_time": 1})
    );
    assert_eq!(r["overdue_at_end"], 2);
    assert_eq!(
        r["overdue_by_age"],
        json!({"days_1_7": 1, "days_8_30": 0, "days_31_plus": 1})
    );

    // The same bytes, twice, after more was recorded.
    let (_, csv_after) = raw(&app, &county, &q("csv")).await;
    assert_eq!(csv_after, csv_before);
    let (_, csv_again) = raw(&app, &county, &q("csv")).await;
    assert_eq!(csv_again, csv_before);
    let (_, xlsx_after) = raw(&app, &county, &q("xlsx")).await;
    assert!(xlsx_after == xlsx_before, "the XLSX bytes changed");

    // CSV: a byte-order mark, then a table that parses.
    assert_eq!(&csv_before[..3], b"\xEF\xBB\xBF");
    let mut reader = csv::Reader::from_reader(&csv_before[3..]);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[0], "village_code_prefix");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
    assert_eq!(&records[0][0], "450305001");
    assert_eq!(&records[0][col("visits")], "3");
    assert_eq!(&records[0][col("dual_contact_coverage")], "0.5000");
    assert_eq!(&records[0][col("assistance.medical.amount_fen")], "50000");
    assert_eq!(&records[2][0], "450305");
    assert_eq!(&records[2][col("total")], "true");
    assert_eq!(&records[2][col("families_closed")], "1");

    // XLSX: a cover sheet with the parameters, then the table.
    let mut book = Xlsx::new(Cursor::new(xlsx_before)).expect("an XLSX workbook");
    assert_eq!(book.sheet_names(), ["封面", "汇总"]);
    let cover = book.worksheet_range("封面").unwrap();
    let cell = |r: u32, c: u32| cover.get_value((r, c)).cloned().unwrap_or(Data::Empty);
    assert_eq!(cell(2, 1), Data::String("2026-04-01".into()));
    assert_eq!(cell(3, 1), Data::String("2026-06-30".into()));
    assert_eq!(cell(4, 1), Data::String("450305".into()));
    assert_eq!(cell(5, 1), Data::String("2026-06-30T05:00:00Z".into()));
    let table = book.worksheet_range("汇总").unwrap();
    let t = |r: u32, c: u32| table.get_value((r, c)).cloned().unwrap_or(Data::Empty);
    assert_eq!(t(1, 0), Data::String("village_code_prefix".into()));
    assert_eq!(t(2, 0), Data::String("450305001".into()));
    assert_eq!(t(2, col("visits") as u32), Data::Float(3.0));
    assert_eq!(t(4, 0), Data::String("450305".into()));
    assert_eq!(t(4, col("total") as u32), Data::Bool(true));
    assert_eq!(t(2, col("dual_contact_coverage") as u32), Data::Float(0.5));
}

async fn report_refusals(app: TestApp) {
    let county = app.user("supervisor", "450305").await;
    let get = |q: &'static str| {
        let app = &app;
        let county = county.clone();
        async move {
            app.get(&format!("/api/v1/reports/summary{q}"), &county)
                .await
        }
    };
    // Malformed or impossible dates, a period backwards, a bad instant, an
    // unknown format or parameter: 400.
    for q in [
        "?from=2026-13-01",
        "?to=2026-02-30",
        "?from=26-01-01",
        "?from=2026-05-01&to=2026-04-01",
        "?from=2000-01-01&to=2026-01-01",
        "?known_at=yesterday",
        "?format=pdf",
        "?format=",
        "?village_code_prefix=45a",
        "?colour=red",
    ] {
        get(q).await.assert_problem(400);
    }
    // Outside the scope: 404, as elsewhere.
    get("?village_code_prefix=450306").await.assert_problem(404);
    get("?village_code_prefix=4504").await.assert_problem(404);
    // No token: 401.
    let r = app
        .send(Method::GET, "/api/v1/reports/summary", None, None, &[])
        .await;
    r.assert_problem(401);
    // An empty county answers its total row alone.
    let report = get("").await.body;
    assert_eq!(report["rows"].as_array().unwrap().len(), 1);
    assert_eq!(report["rows"][0]["total"], true);
    assert_eq!(report["rows"][0]["families_open"], 0);
    // An instant before Excel's calendar still gives a workbook, the same
    // every time.
    let q = "?known_at=0057-07-29T07:34:18.27Z&format=xlsx";
    let (_, first) = raw(&app, &county, q).await;
    let (_, second) = raw(&app, &county, q).await;
    assert!(first == second);
    Xlsx::new(Cursor::new(first)).expect("an XLSX workbook");
}

async fn report_is_described(app: TestApp) {
    let doc = app.get("/api/v1/openapi.json", ADMIN_TOKEN).await.body;
    let op = &doc["paths"]["/api/v1/reports/summary"]["get"];
    let params = op["parameters"].as_array().expect("parameters");
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
    };
    for day in ["from", "to"] {
        assert!(param(day)["schema"]["pattern"].is_string(), "{day}");
    }
    assert!(param("village_code_prefix")["schema"]["pattern"].is_string());
    assert!(
        param("known_at")["schema"]["pattern"].is_string()
            || param("known_at")["schema"]["format"] == "date-time"
    );
    assert_eq!(
        param("format")["schema"]["enum"],
        json!(["json", "csv", "xlsx"])
    );
    let content = &op["responses"]["200"]["content"];
    for media in [
        "application/json",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ] {
        assert!(content[media].is_object(), "{media}: {content}");
    }
    assert!(op["responses"]["404"].is_object());
}
