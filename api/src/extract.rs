//! Extractors: the caller behind the bearer token, JSON bodies with
//! problem+json rejections, path and query parameters, a list's page
//! (`limit`, `cursor`), and the command headers (`If-Match`,
//! `Idempotency-Key`, request id).

use std::convert::Infallible;

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use nuanxin_infra::users::User;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use sha2::{Digest, Sha256};

use nuanxin_infra::Viewer;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated user.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let user = state
            .core()
            .user_for_token(token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        tracing::Span::current().record("user.id", tracing::field::display(user.id));
        state.core().seen(&user);
        Ok(Caller(user))
    }
}

impl Caller {
    /// The caller as a reader of personal data, for `Reads`.
    pub fn viewer<'a>(&'a self, request_id: &'a RequestId) -> Viewer<'a> {
        Viewer {
            user: &self.0,
            request_id: &request_id.0,
        }
    }

    /// Recording is for caseworkers and admins.
    pub fn require_recorder(&self) -> Result<(), ApiError> {
        if self.0.role.may_record() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "your role may read but not record actions".into(),
            ))
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.role == nuanxin_domain::UserRole::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs the admin role".into()))
        }
    }
}

/// A JSON body. Malformed JSON → 400; a body that does not fit the schema
/// (missing or unknown fields, wrong types) → 422 naming the field; too
/// large → 413. Messages never echo values from the body. Also keeps a
/// hash of method, path and body for idempotency.
pub struct Body<T> {
    pub value: T,
    pub hash: String,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            return Err(ApiError::BadRequest(
                "the body must be JSON with Content-Type: application/json".into(),
            ));
        }
        let signature = format!("{} {}\n", req.method(), req.uri().path());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        let value = parse_json(&bytes)?;
        let mut hasher = Sha256::new();
        hasher.update(signature.as_bytes());
        hasher.update(&bytes);
        Ok(Body {
            value,
            hash: hex::encode(hasher.finalize()),
        })
    }
}

/// Why a body could not be read: too large (413), not received within the
/// body-read timeout (408, see `crate::serve`), or broken off (400).
pub fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(err) = source {
        if err.is::<crate::serve::BodyTimedOut>() {
            return ApiError::RequestTimeout;
        }
        source = err.source();
    }
    ApiError::BadRequest("the body could not be read".into())
}

/// Deserializes `bytes`, classifying errors as 400 (syntax, or anything
/// but whitespace after the JSON value) or 422 (shape). A 422 names the
/// field by its position in the body; an unknown key is never repeated
/// (a key can itself be personal data, e.g. an ID number sent as a key):
/// the answer names the object that holds it and the keys it allows.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // First straight from the bytes: syntax, duplicate keys, shape.
    let _checked: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => shape_error(segments, &inner.to_string()),
            _ => ApiError::BadRequest("the body is not valid JSON".into()),
        }
    })?;
    de.end()
        .map_err(|_| ApiError::BadRequest("the body has content after its JSON value".into()))?;
    // Again, with objects required wherever the type has fields (serde
    // would also take a struct's fields as an array: `["x"]` for a note).
    let tree: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::BadRequest("the body is not valid JSON".into()))?;
    crate::strict_json::objects_only(&tree).map_err(|err| {
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        shape_error(segments, &err.into_inner().to_string())
    })
}

/// The 422 for a body of valid JSON that does not fit its DTO. `text` is
/// serde's message, which may quote the input: only our own field names
/// are taken from it.
fn shape_error(mut segments: Vec<Segment>, text: &str) -> ApiError {
    let (segments, message) = if text.starts_with("unknown field `") {
        // The path may end at the unknown key itself: drop it.
        if matches!(segments.last(), Some(Segment::Map { .. })) && text_has_key(&segments, text) {
            segments.pop();
        }
        let allowed = text
            .rfind("`, expected ")
            .map(|i| &text[i + "`, expected ".len()..])
            .map(|list| {
                // "`a`, `b` at line 1 column 9", "`a` or `b`", "`a`": the
                // names between backticks (our own field names).
                list.split('`')
                    .skip(1)
                    .step_by(2)
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        let message = match allowed {
            Some(list) => format!("holds a field that is not allowed (allowed: {list})"),
            None => "holds a field that is not allowed (it takes no fields)".to_owned(),
        };
        (segments, message)
    } else if let Some(name) = between_backticks(text, "missing field `") {
        segments.push(Segment::Map { key: name });
        (segments, "is required".to_owned())
    } else if text.starts_with("unknown variant") {
        (segments, "is not one of the allowed values".to_owned())
    } else {
        (segments, "has the wrong type or format".to_owned())
    };
    let field = render_path(&segments);
    ApiError::field(
        if field.is_empty() {
            "body".into()
        } else {
            field
        },
        message,
    )
}

/// Whether the last path segment is the unknown key serde complains about.
fn text_has_key(segments: &[Segment], text: &str) -> bool {
    match segments.last() {
        Some(Segment::Map { key }) => text.starts_with(&format!("unknown field `{key}`")),
        _ => false,
    }
}

/// `members[1].sex`. Only segments of known fields and indexes remain.
fn render_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn between_backticks(text: &str, prefix: &str) -> Option<String> {
    let rest = text.strip_prefix(prefix)?;
    Some(rest.split('`').next()?.to_owned())
}

/// Query parameters; a query that does not parse → 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))
    }
}

/// Path parameters; a segment that does not parse (e.g. not a UUID) → 404.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_| ApiError::NotFound("no such resource".into()))
    }
}

/// `If-Match`, `Idempotency-Key` and the request id of a command.
#[derive(Debug, Clone, Default)]
pub struct CommandHeaders {
    pub if_match: Option<u64>,
    pub idempotency_key: Option<String>,
    pub request_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        from_headers(&parts.headers)
    }
}

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REQUEST_ID: &str = "x-request-id";

fn from_headers(headers: &HeaderMap) -> Result<CommandHeaders, ApiError> {
    // The grammar (and the document's patterns) live in `routes::params`.
    use crate::routes::params::{parse_if_match, valid_idempotency_key};
    let text = |name| headers.get(name).map(|v| v.to_str());
    let if_match = match text(header::IF_MATCH.as_str()) {
        None => None,
        Some(v) => Some(v.ok().and_then(parse_if_match).ok_or_else(|| {
            ApiError::BadRequest("If-Match must be a case version number".into())
        })?),
    };
    let idempotency_key = match text(IDEMPOTENCY_KEY) {
        None => None,
        Some(Ok(k)) if valid_idempotency_key(k) => Some(k.to_owned()),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
            ))
        }
    };
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(CommandHeaders {
        if_match,
        idempotency_key,
        request_id,
    })
}

/// The request id (`x-request-id`, set by the server when the client sent
/// none).
#[derive(Debug, Clone, Default)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(RequestId(
            parts
                .headers
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        ))
    }
}

/// Where a page of a list starts and how long it is: the `limit` and
/// `cursor` query parameters every list takes.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Page {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    /// The page size asked for.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(Self::DEFAULT_LIMIT)
    }

    /// The cursor decoded by `decode`; a cursor that does not decode → 400.
    pub fn after<T>(&self, decode: impl FnOnce(&str) -> Option<T>) -> Result<Option<T>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| decode(c).ok_or_else(|| bad_query("cursor")))
            .transpose()
    }

    /// The cursor of the next page: the last item's, when the page is full.
    pub fn next_cursor<I>(&self, items: &[I], cursor: impl FnOnce(&I) -> String) -> Option<String> {
        (items.len() == self.limit() as usize)
            .then(|| items.last().map(cursor))
            .flatten()
    }
}

/// `400` naming a query parameter (never its value).
pub fn bad_query(name: &str) -> ApiError {
    ApiError::BadRequest(format!("the query parameter `{name}` is invalid"))
}

/// A list's query string: its [`Page`] and its own parameters `T` (which
/// reject unknown names). Any malformed parameter → 400.
pub struct ListQuery<T> {
    pub page: Page,
    pub params: T,
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ListQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
        let (paging, rest): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(k, _)| k == "limit" || k == "cursor");
        let single = |name: &str| -> Result<Option<String>, ApiError> {
            let mut found = paging.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
            let first = found.next().cloned();
            if found.next().is_some() {
                return Err(bad_query(name));
            }
            Ok(first)
        };
        let limit = single("limit")?
            .map(|l| match l.parse::<u32>() {
                Ok(n @ 1..=Page::MAX_LIMIT) => Ok(n),
                _ => Err(ApiError::BadRequest(
                    "limit must be between 1 and 500".into(),
                )),
            })
            .transpose()?;
        let page = Page {
            limit,
            cursor: single("cursor")?,
        };
        let rest = serde_urlencoded::to_string(&rest)
            .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
        let params = serde_urlencoded::from_str(&rest)
            .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
        Ok(ListQuery { page, params })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::parse_json;
    use crate::error::ApiError;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[expect(dead_code, reason = "read by serde only")]
        name: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[expect(dead_code, reason = "read by serde only")]
        text: String,
        #[serde(default)]
        #[expect(dead_code, reason = "read by serde only")]
        members: Vec<Inner>,
    }

    fn fields(r: Result<Outer, ApiError>) -> Vec<(String, String)> {
        match r {
            Err(ApiError::Validation(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn trailing_content_is_a_bad_request() {
        for body in [
            r#"{"text":"first"}{"text":"second"}"#,
            r#"{"text":"x"} xyz"#,
            r#"{"text":"x"},"#,
        ] {
            assert!(
                matches!(
                    parse_json::<Outer>(body.as_bytes()),
                    Err(ApiError::BadRequest(_))
                ),
                "{body}"
            );
        }
        assert!(parse_json::<Outer>(b"{\"text\":\"x\"}\n  ").is_ok());
    }

    #[test]
    fn unknown_keys_are_named_by_position_never_repeated() {
        let secret = "11010519491231002X";
        let top = fields(parse_json(
            format!(r#"{{"text":"x","{secret}":1}}"#).as_bytes(),
        ));
        assert_eq!(top[0].0, "body");
        assert!(top[0].1.contains("allowed: text, members"), "{top:?}");
        let nested = fields(parse_json(
            format!(r#"{{"text":"x","members":[{{"name":"a"}},{{"name":"b","{secret}":2}}]}}"#)
                .as_bytes(),
        ));
        assert_eq!(nested[0].0, "members[1]");
        // A key crafted to look like serde's own message.
        let crafted = fields(parse_json(
            format!(r#"{{"text":"x","{secret}`, expected {secret}":1}}"#).as_bytes(),
        ));
        for (field, message) in top.iter().chain(&nested).chain(&crafted) {
            assert!(
                !field.contains(secret) && !message.contains(secret),
                "{field}: {message}"
            );
        }
    }

    #[test]
    fn missing_and_mistyped_fields_name_their_path() {
        assert_eq!(fields(parse_json(b"{}"))[0].0, "text");
        assert_eq!(
            fields(parse_json(br#"{"text":"x","members":[{}]}"#))[0].0,
            "members[0].name"
        );
        assert_eq!(fields(parse_json(br#"{"text":5}"#))[0].0, "text");
    }
}
