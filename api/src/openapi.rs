//! The OpenAPI document. The operations come from the routes themselves
//! (`routes::api`: a route and its operation are one registration), their
//! fields from the value types that validate them ([`fields`], the domain's
//! string enums). [`complete`] then adds what every operation answers
//! because of the extractors it takes, so no handler has to remember it:
//!
//! | the operation takes | it can answer |
//! | --- | --- |
//! | the bearer token (`Caller`, every `/api/v1` operation) | 401 |
//! | a JSON body (`Body<T>`) | 400 (not JSON), 408 (body too slow), 413 (too large), 422 (a field) |
//! | query or header parameters (`ListQuery`, `Query`, `CommandHeaders`) | 400 |
//! | path parameters (`Path`: unknown or not a UUID) | 404 |
//!
//! Every error response is `application/problem+json` with the `Problem`
//! schema. The test `documented_statuses` (tests/tests/api) checks every
//! answer the end-to-end scenarios see against this document.

use std::sync::LazyLock;

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::dto;

pub mod fields;

#[derive(OpenApi)]
#[openapi(
    info(title = "Nuanxin", description = "Case management for family-planning special families."),
    components(schemas(dto::CommandResponse, crate::error::Problem, crate::error::FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let generated = crate::routes::api().split_for_parts().1;
    complete(serde_json::to_value(generated).expect("the OpenAPI document serializes"))
});

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    DOCUMENT.clone()
}

/// What each error status means, for the responses [`complete`] adds.
fn error_description(status: &str) -> &'static str {
    match status {
        "400" => "Malformed request: the body is not one JSON value, or a header or query parameter does not parse",
        "401" => "Missing or unknown bearer token",
        "403" => "Your role or scope does not allow this",
        "404" => "No such resource in your scope",
        "408" => "The request body did not arrive in time",
        "409" => "The current state does not allow this (e.g. a closed case, a date after today or before registration, a version mismatch)",
        "413" => "The request body is too large",
        "422" => "A field is invalid (`errors` names each); nothing was recorded",
        _ => "Error",
    }
}

/// Adds the statuses each operation's extractors answer, makes every error
/// response problem+json, and states what JSON Schema cannot say by type
/// alone (see the module docs).
pub fn complete(mut doc: Value) -> Value {
    let secured_by_default = doc["security"].as_array().is_some_and(|s| !s.is_empty());
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                    continue;
                }
                complete_operation(path, op, secured_by_default);
            }
        }
    }
    require_one_change(&mut doc);
    close_objects(&mut doc);
    doc
}

/// Every object schema lists all its properties: request bodies refuse
/// unknown keys (`deny_unknown_fields`), and answers carry exactly these
/// fields. A schema composed with `allOf` of objects (what
/// `#[serde(flatten)]` makes) is first merged into one object, as it is on
/// the wire.
fn close_objects(doc: &mut Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object_mut() else {
        return;
    };
    let snapshot = schemas.clone();
    for schema in schemas.values_mut() {
        if let Some(merged) = merge_all_of(schema, &snapshot) {
            *schema = merged;
        }
    }
    for schema in schemas.values_mut() {
        let Some(object) = schema.as_object_mut() else {
            continue;
        };
        let composed = ["allOf", "oneOf", "anyOf"]
            .iter()
            .any(|k| object.contains_key(*k));
        if object.contains_key("properties") && !composed {
            object
                .entry("additionalProperties")
                .or_insert(Value::Bool(false));
        }
    }
}

/// `schema`'s `allOf` parts (references to object schemas, or inline
/// objects) as one object schema; `None` when it has no such `allOf`.
fn merge_all_of(schema: &Value, schemas: &Map<String, Value>) -> Option<Value> {
    let parts = schema.get("allOf")?.as_array()?;
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in parts {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(r) => schemas.get(r.strip_prefix("#/components/schemas/")?)?,
            None => part,
        };
        properties.extend(part.get("properties")?.as_object()?.clone());
        for name in part["required"].as_array().into_iter().flatten() {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
    }
    let mut merged = json!({"type": "object", "properties": properties, "required": required});
    if let Some(d) = schema.get("description") {
        merged["description"] = d.clone();
    }
    Some(merged)
}

fn complete_operation(path: &str, op: &mut Value, secured_by_default: bool) {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let located = |place: &str| params.iter().any(|p| p["in"] == place);
    let secured = op.get("security").map_or(secured_by_default, |s| {
        s.as_array().is_some_and(|a| !a.is_empty())
    });
    let has_body = op.get("requestBody").is_some();
    let mut add: Vec<&str> = Vec::new();
    if secured && path.starts_with("/api/v1/") {
        add.push("401");
    }
    if has_body || located("query") || located("header") {
        add.push("400");
    }
    if has_body {
        add.extend(["408", "413", "422"]);
    }
    if located("path") {
        add.push("404");
    }
    let responses = op["responses"]
        .as_object_mut()
        .expect("every operation documents responses");
    for status in add {
        responses.entry(status).or_insert_with(|| json!({}));
    }
    for (status, response) in responses.iter_mut() {
        if status.as_str() < "400" {
            continue;
        }
        let description = response
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .unwrap_or(error_description(status))
            .to_owned();
        *response = json!({
            "description": description,
            "content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}
            }}
        });
    }
    // Keep the statuses in order (the map preserves insertion order only).
    let mut sorted: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    *responses = sorted.into_iter().collect::<Map<String, Value>>();
}

/// A member status update must change something: at least one of its
/// optional fields, not `null`.
fn require_one_change(doc: &mut Value) {
    let schema = &mut doc["components"]["schemas"]["MemberStatusRequest"];
    if schema.is_object() {
        schema["anyOf"] = json!([
            {"required": ["deceased_on"], "properties": {"deceased_on": {"type": "string"}}},
            {"required": ["living_alone"], "properties": {"living_alone": {"type": "boolean"}}},
            {"required": ["self_care"], "properties": {"self_care": {"type": "string"}}},
            {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
        ]);
    }
}
