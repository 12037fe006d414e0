//! Issue 10, item 6: implausible data is refused as a field error on both
//! stores and records nothing — registrations in year 1 or before 1980,
//! births in 1800, parents younger than 16, ID numbers whose embedded birth
//! date is impossible or disagrees with `birth_date` or `sex`, region codes
//! that name no province, a visit listing 10,000 needs.

use nuanxin_tests::*;
use serde_json::{json, Value};

both_stores!(
    implausible_registrations_are_refused,
    id_numbers_must_describe_their_holder,
    lists_are_bounded,
);

fn with(key: &str, value: Value) -> Value {
    let mut b = family_body("450305001001");
    b[key] = value;
    b
}

fn member(key: &str, value: Value) -> Value {
    let mut b = family_body("450305001001");
    b["members"][0][key] = value;
    b
}

async fn implausible_registrations_are_refused(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let base = app.event_count().await;
    for (body, field) in [
        (with("registered_on", json!("0001-01-10")), "registered_on"),
        (with("registered_on", json!("1979-12-31")), "registered_on"),
        (
            member("birth_date", json!("1800-03-01")),
            "members[0].birth_date",
        ),
        // 16 years before registration at the latest.
        (
            member("birth_date", json!("2015-01-01")),
            "members[0].birth_date",
        ),
        (with("village_code", json!("999999001001")), "village_code"),
        (with("village_code", json!("450305000001")), "village_code"),
        (with("village_code", json!("450305001000")), "village_code"),
    ] {
        let r = app.post("/api/v1/families", &cw, body).await;
        r.assert_field_error(field);
    }
    // Scopes name real places too.
    app.post(
        "/api/v1/users",
        ADMIN_TOKEN,
        json!({"name": "x", "role": "caseworker", "scope": "99"}),
    )
    .await
    .assert_field_error("scope");
    assert_eq!(app.event_count().await, base, "nothing recorded");
    // The edge of plausible is accepted: registered on 1980-01-01, a parent
    // exactly 16 that day.
    let mut edge = with("registered_on", json!("1980-01-01"));
    edge["members"] = json!([{"name": "A", "sex": "female", "birth_date": "1964-01-01"}]);
    let r = app.post("/api/v1/families", &cw, edge).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn id_numbers_must_describe_their_holder(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let base = app.event_count().await;
    // family_body's first member: a man born 1950-03-01, 110105195003010016.
    for (id, why) in [
        // A woman's number (17th digit even) for a man.
        ("110105195003010024", "sex"),
        // Born 1949-12-31 by the number.
        ("110105194912310011", "birth date"),
        // Month 13 (check digit correct): not a real day.
        ("11010519501301001X", "real birth date"),
        // A region code of no province.
        ("99010519500301001X", "province"),
    ] {
        let r = app
            .post("/api/v1/families", &cw, member("id_number", json!(id)))
            .await;
        r.assert_field_error("members[0].id_number");
        assert!(
            !r.text.contains(id),
            "{why}: the number is not echoed: {}",
            r.text
        );
    }
    // The member's own sex and birth date decide: changing them to match the
    // number makes it acceptable.
    let mut body = member("id_number", json!("110105194912310011"));
    body["members"][0]["birth_date"] = json!("1949-12-31");
    let r = app.post("/api/v1/families", &cw, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(app.event_count().await, base + 1);
}

async fn lists_are_bounded(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let p = |s: &str| format!("/api/v1/families/{id}/{s}");
    assert_eq!(
        app.post(&p("contacts"), &cw, contact_body("village", "2026-02-01"))
            .await
            .status,
        200
    );
    let base = app.event_count().await;
    // 10,000 needs: one error naming the list, not 10,000.
    let mut visit = visit_body("village", "home", "2026-02-02");
    visit["needs"] = json!(vec!["wheelchair"; 10_000]);
    let r = app.post(&p("visits"), &cw, visit).await;
    r.assert_field_error("needs");
    assert_eq!(r.body["errors"].as_array().map(Vec::len), Some(1));
    // Five members.
    let mut five = family_body("450305001001");
    let one = five["members"][1].clone();
    five["members"] = json!([one, one, one, one, one]);
    let r = app.post("/api/v1/families", &cw, five).await;
    r.assert_field_error("members");
    assert_eq!(r.body["errors"].as_array().map(Vec::len), Some(1));
    // A need longer than a line.
    let mut visit = visit_body("village", "home", "2026-02-02");
    visit["needs"] = json!(["x".repeat(101)]);
    app.post(&p("visits"), &cw, visit)
        .await
        .assert_field_error("needs[0]");
    // 20 needs are fine.
    let mut visit = visit_body("village", "home", "2026-02-02");
    visit["needs"] = json!(vec!["wheelchair"; 20]);
    let r = app.post(&p("visits"), &cw, visit).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(app.event_count().await, base + 1);
}
