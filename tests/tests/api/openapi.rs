//! The OpenAPI document tells the whole truth (issue 17): every error is
//! problem+json, enums, patterns and bounds are those the server applies,
//! and the checker that compares every scenario's answers with the document
//! (`TestDb::assert_documented`, run by `both_stores!`) does fail on an
//! undocumented status.

use nuanxin_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

both_stores!(
    the_served_document_is_the_generated_one,
    arrays_are_not_objects
);

async fn the_served_document_is_the_generated_one(app: TestApp) {
    let r = app
        .send(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, nuanxin_api::openapi::document());
}

/// Found by schemathesis: serde takes a struct's fields as a JSON array
/// too, so `[null]` scanned today and `["x"]` recorded a note — bodies the
/// document says are invalid. They are 422s, at any depth, and record
/// nothing.
async fn arrays_are_not_objects(app: TestApp) {
    let cw = app.user("caseworker", "45").await;
    let id = app.register(&cw, "450305001001").await;
    let base = app.event_count().await;
    app.post_raw(
        &format!("/api/v1/families/{id}/notes"),
        &cw,
        r#"["a note"]"#,
    )
    .await
    .assert_field_error("body");
    app.post_raw("/api/v1/alerts/scan", ADMIN_TOKEN, "[null]")
        .await
        .assert_field_error("body");
    let mut contact = contact_body("village", "2026-02-01");
    contact["person"] = serde_json::json!([uuid::Uuid::new_v4(), "Li Si", "13900139000"]);
    app.post(&format!("/api/v1/families/{id}/contacts"), &cw, contact)
        .await
        .assert_field_error("person");
    let mut family = family_body("450305001001");
    family["members"] = serde_json::json!([["A", "male", "1950-03-01"]]);
    app.post("/api/v1/families", &cw, family)
        .await
        .assert_field_error("members[0]");
    assert_eq!(app.event_count().await, base);
    // An empty body and `null` still scan today.
    for body in ["", "null"] {
        let r = app.post_raw("/api/v1/alerts/scan", ADMIN_TOKEN, body).await;
        assert_eq!(r.status, 200, "{body:?}: {}", r.text);
    }
}

fn doc() -> Value {
    nuanxin_api::openapi::document()
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

/// Follows a `$ref` to a component schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

#[test]
fn every_error_is_problem_json_and_every_operation_lists_what_its_extractors_answer() {
    let doc = doc();
    for (path, method, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if status.as_str() >= "400" {
                let content = response["content"].as_object().expect("content");
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem"
                );
            }
        }
        let has = |s: &str| responses.contains_key(s);
        assert!(has("401"), "{method} {path}: the token");
        if op.get("requestBody").is_some() {
            for s in ["400", "408", "413", "422"] {
                assert!(has(s), "{method} {path}: a body answers {s}");
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if params.iter().any(|p| p["in"] == "path") {
            assert!(has("404"), "{method} {path}: a path parameter");
        }
        if params
            .iter()
            .any(|p| p["in"] == "query" || p["in"] == "header")
        {
            assert!(has("400"), "{method} {path}: query and headers");
        }
        if method == "post" && path.starts_with("/api/v1/families") {
            assert!(has("403") && has("409"), "{method} {path}: a command");
        }
    }
}

#[test]
fn enums_patterns_and_bounds_are_the_servers() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let names = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    use nuanxin_domain::*;
    let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names("Role"),
        all(&Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>())
    );
    assert_eq!(
        names("UserRole"),
        all(&["caseworker", "supervisor", "admin"])
    );
    assert_eq!(
        names("VisitMode"),
        all(&["home", "phone", "video", "holiday"])
    );
    assert_eq!(names("Sex"), all(&["male", "female"]));
    assert_eq!(
        names("SelfCare"),
        all(&["independent", "semi_dependent", "dependent"])
    );
    assert_eq!(names("Category"), all(&["bereaved", "disabled_child"]));
    assert_eq!(names("CaseStatus"), all(&["open", "closed"]));
    assert_eq!(names("AssistanceArea").len(), AssistanceArea::ALL.len());
    assert_eq!(
        names("ElderlyCareService").len(),
        ElderlyCareService::ALL.len()
    );

    let register = &schemas["RegisterFamilyRequest"]["properties"];
    assert_eq!(register["village_code"]["pattern"], VillageCode::PATTERN);
    assert_eq!(register["members"]["maxItems"], 4);
    assert_eq!(
        register["category"]["$ref"],
        "#/components/schemas/Category"
    );
    assert_eq!(
        schemas["RegisterFamilyRequest"]["additionalProperties"],
        false
    );
    let priority = &schemas["EmergencyContactRequest"]["properties"]["priority"];
    assert_eq!(
        (
            priority["type"].as_str(),
            priority["minimum"].as_i64(),
            priority["maximum"].as_i64()
        ),
        (Some("integer"), Some(1), Some(9))
    );
    assert_eq!(
        schemas["VisitRequest"]["properties"]["needs"]["maxItems"],
        20
    );
    assert_eq!(
        schemas["CreateUserRequest"]["properties"]["scope"]["pattern"],
        Scope::PATTERN
    );

    let param = |path: &str, name: &str| -> Option<Value> {
        let op = if doc["paths"][path]["get"].is_object() {
            &doc["paths"][path]["get"]
        } else {
            &doc["paths"][path]["post"]
        };
        op["parameters"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    };
    let limit = param("/api/v1/families", "limit").expect("limit");
    assert_eq!(
        (
            limit["schema"]["minimum"].as_i64(),
            limit["schema"]["maximum"].as_i64()
        ),
        (Some(1), Some(500))
    );
    assert!(
        param("/api/v1/overdue-visits", "within_days").is_none(),
        "the overdue list takes no within_days"
    );
    let within = param("/api/v1/due-visits", "within_days").expect("within_days");
    assert_eq!(within["schema"]["maximum"], 366);
    let on = param("/api/v1/overdue-visits", "on").expect("on");
    assert_eq!(on["schema"]["format"], "date");
    assert!(
        param("/api/v1/families/{id}/visits", "Idempotency-Key").expect("key")["schema"]["pattern"]
            .is_string()
    );
    assert!(
        param("/api/v1/families/{id}/visits", "If-Match").expect("if-match")["schema"]["pattern"]
            .is_string()
    );
    // The scan's body is optional (`required` absent or false).
    let scan_body = &doc["paths"]["/api/v1/alerts/scan"]["post"]["requestBody"];
    assert!(scan_body.is_object());
    assert!(!scan_body["required"].as_bool().unwrap_or(false));
    // Answers carry exactly their documented fields.
    let file = resolve(&doc, &schemas["CaseFileView"]);
    assert_eq!(file["additionalProperties"], false);
    assert_eq!(schemas["CreatedUser"]["additionalProperties"], false);
    assert!(schemas["CreatedUser"]["properties"]["token"].is_object());
}

/// The checker is not a rubber stamp: an answer the document does not list
/// fails it; a 405 (or 401) to an undocumented method does not.
#[tokio::test]
async fn the_checker_fails_on_an_undocumented_status() {
    let Some(db) = TestDb::new(Store::Sqlite).await else {
        return;
    };
    db.record(
        &Method::DELETE,
        "/api/v1/me",
        StatusCode::METHOD_NOT_ALLOWED,
    );
    db.record(&Method::GET, "/api/v1/me?x=1", StatusCode::OK);
    db.record(&Method::GET, "/healthz", StatusCode::IM_A_TEAPOT);
    db.assert_documented();
    db.record(
        &Method::GET,
        "/api/v1/families/7/history",
        StatusCode::CONFLICT,
    );
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.assert_documented()));
    let message = failed.expect_err("an undocumented 409 fails the check");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.contains("GET /api/v1/families/{id}/history answered 409"),
        "{text}"
    );
}
