//! Auditing: a family's full history (JSON and CSV, with the state of its
//! hash chain), the case file as of an instant, and the access log.
//!
//! Every successful read of a family's personal data — the case file, its
//! history, the CSV export — is appended to the access log before the
//! answer leaves; if that fails the reader gets a 500 and no data. Reads
//! that end in 404 (unknown family, or outside the caller's scope) are not
//! recorded. Admins list the log at `GET /api/v1/access-log`, newest first.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::Scope;
use nuanxin_infra::audit::{self, AccessFilter, AccessRecord, HistoryEntry, HistoryFilter};
use nuanxin_infra::cases::metadata_of;
use nuanxin_infra::users::User;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::families::limit_of;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Path, Query, REQUEST_ID};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/families/{id}/history", get(history))
        .route("/families/{id}/history.csv", get(history_csv))
        .route("/access-log", get(access_log))
}

/// What the access log calls each read.
pub mod endpoint {
    pub const CASE_FILE: &str = "case_file";
    pub const CASE_FILE_AS_OF: &str = "case_file_as_of";
    pub const HISTORY: &str = "history";
    pub const HISTORY_CSV: &str = "history.csv";
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

#[derive(Debug, thiserror::Error)]
#[error("recording a read in the access log failed: {0}")]
struct AccessLogFailed(#[source] sqlx::Error);

/// Appends `user`'s read of `family_id` to the access log. A failure is a
/// 500 without the data (logged once, with no personal data): an
/// unrecorded read must not happen.
pub async fn record_read(
    state: &AppState,
    user: &User,
    family_id: Uuid,
    endpoint: &str,
    request_id: &RequestId,
) -> Result<(), ApiError> {
    let record = AccessRecord {
        id: Uuid::now_v7(),
        user_id: user.id,
        family_id,
        endpoint: endpoint.to_owned(),
        at: state.cases().services().clock.now(),
        request_id: request_id.0.clone(),
    };
    audit::record_access(state.db(), &record)
        .await
        .map_err(|e| ApiError::Internal(Box::new(AccessLogFailed(e))))
}

/// Whether `case` is registered and lies within `scope`.
fn visible(case: &FamilyCase, scope: &Scope) -> bool {
    case.registered
        && case
            .village_code
            .as_ref()
            .is_some_and(|v| v.is_within(scope))
}

/// The case as it stood at `at`: the family's events recorded at or
/// before `at`, folded. 404 when the family is unknown, outside `scope` as
/// it stands now, or not yet registered at `at`.
pub async fn case_as_of(
    state: &AppState,
    id: Uuid,
    at: DateTime<Utc>,
    scope: &Scope,
) -> Result<(u64, FamilyCase), ApiError> {
    use cqrs_es::Aggregate;
    let events = state.cases().events(id).await?;
    let mut now = FamilyCase::default();
    let mut then = FamilyCase::default();
    let mut version = 0;
    let mut past = true;
    for envelope in events {
        let recorded_at = metadata_of(&envelope.metadata).map(|m| m.recorded_at);
        // The log is in recording order; the first event after `at` ends
        // the past, whatever follows.
        past = past && recorded_at.is_none_or(|r| r <= at);
        if past {
            version = envelope.sequence as u64;
            then.apply(envelope.payload.clone());
        }
        now.apply(envelope.payload);
    }
    if !visible(&now, scope) || !then.registered {
        return Err(ApiError::not_found());
    }
    Ok((version, then))
}

/// Parses an optional RFC 3339 instant from the query.
fn instant(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 instant")))
        })
        .transpose()
}

fn uuid_param(name: &str, value: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    value
        .map(|s| {
            s.parse::<Uuid>()
                .map_err(|_| ApiError::BadRequest(format!("{name} must be a UUID")))
        })
        .transpose()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only events recorded by this user (a user id).
    pub recorded_by: Option<String>,
    /// Only events recorded at or after this RFC 3339 instant.
    pub from: Option<String>,
    /// Only events recorded at or before this RFC 3339 instant.
    pub to: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryCsvQuery {
    /// Only events recorded by this user (a user id).
    pub recorded_by: Option<String>,
    /// Only events recorded at or after this RFC 3339 instant.
    pub from: Option<String>,
    /// Only events recorded at or before this RFC 3339 instant.
    pub to: Option<String>,
}

fn history_filter(
    recorded_by: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<HistoryFilter, ApiError> {
    let filter = HistoryFilter {
        recorded_by: uuid_param("recorded_by", recorded_by)?,
        from: instant("from", from)?,
        to: instant("to", to)?,
        after_sequence: None,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(ApiError::BadRequest("from must not be after to".into()));
        }
    }
    Ok(filter)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordedBy {
    pub id: Uuid,
    pub name: String,
    /// `caseworker`, `supervisor` or `admin`.
    pub role: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryItem {
    /// The event's place in the family's stream (the case version it made).
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    /// When it was recorded (server clock).
    pub recorded_at: Option<DateTime<Utc>>,
    pub recorded_by: Option<RecordedBy>,
    pub request_id: Option<String>,
    pub action_id: Option<Uuid>,
    /// The event's fields as stored; ID numbers are masked.
    pub data: serde_json::Value,
    /// The action that voided this one, if any.
    pub voided_by: Option<Uuid>,
    /// The event's link in the family's hash chain.
    pub hash: Option<String>,
}

impl From<HistoryEntry> for HistoryItem {
    fn from(e: HistoryEntry) -> Self {
        Self {
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            recorded_at: e.recorded_at,
            recorded_by: e.recorded_by.map(|r| RecordedBy {
                id: r.id,
                name: r.name,
                role: r.role.as_str().into(),
            }),
            request_id: e.request_id,
            action_id: e.action_id,
            data: e.data,
            voided_by: e.voided_by,
            hash: e.hash,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// Events in recording order (ascending `sequence`).
    pub items: Vec<HistoryItem>,
    pub next_cursor: Option<String>,
    /// Whether the family's whole hash chain verifies (every event, not
    /// only this page).
    pub chain_valid: bool,
    /// The first broken link of the chain, when it does not verify.
    pub chain_broken_at: Option<u64>,
}

/// The family's history, or 404 when it is unknown or outside `scope`.
async fn load_history(
    state: &AppState,
    id: Uuid,
    scope: &Scope,
) -> Result<audit::FamilyHistory, ApiError> {
    let history = audit::family_history(state.db(), id).await?;
    if !visible(&history.case, scope) {
        return Err(ApiError::not_found());
    }
    if let Err(link) = &history.chain {
        tracing::warn!(family.id = %id, sequence = link.sequence, problem = %link.problem,
            "the family's hash chain is broken");
    }
    Ok(history)
}

#[utoipa::path(get, path = "/api/v1/families/{id}/history", tag = "audit",
    params(("id" = Uuid, Path), HistoryQuery),
    responses((status = 200, body = History), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
/// Every event of the case in order: who recorded it, when, what, whether it
/// was voided, and whether the family's hash chain is intact. Filters by
/// recorder and time range (inclusive); paginated by `sequence`.
#[tracing::instrument(skip_all, fields(family.id = %id))]
pub async fn history(
    State(state): State<AppState>,
    Caller(user): Caller,
    request_id: RequestId,
    Path(id): Path<Uuid>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<History>, ApiError> {
    let limit = limit_of(q.limit)? as usize;
    let mut filter = history_filter(q.recorded_by.as_deref(), q.from.as_deref(), q.to.as_deref())?;
    filter.after_sequence = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::BadRequest("cursor is invalid".into()))
        })
        .transpose()?;
    let history = load_history(&state, id, &user.scope).await?;
    let mut matching = history.entries.into_iter().filter(|e| filter.matches(e));
    let items: Vec<HistoryItem> = matching.by_ref().take(limit).map(Into::into).collect();
    let next_cursor = match (items.last(), matching.next()) {
        (Some(last), Some(_)) => Some(last.sequence.to_string()),
        _ => None,
    };
    record_read(&state, &user, id, endpoint::HISTORY, &request_id).await?;
    Ok(Json(History {
        items,
        next_cursor,
        chain_valid: history.chain.is_ok(),
        chain_broken_at: history.chain.err().map(|l| l.sequence),
    }))
}

#[utoipa::path(get, path = "/api/v1/families/{id}/history.csv", tag = "audit",
    params(("id" = Uuid, Path), HistoryCsvQuery),
    responses(
        (status = 200, description = "The history as CSV (RFC 4180): sequence, event_type, \
            recorded_at, recorded_by_id, recorded_by_name, recorded_by_role, action_id, \
            voided_by, data (the masked event fields as JSON)",
            content_type = "text/csv", body = String,
            headers(("X-Chain-Valid" = bool, description = "Whether the family's hash chain verifies"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
/// The whole history as a CSV file, for an inspection.
#[tracing::instrument(skip_all, fields(family.id = %id))]
pub async fn history_csv(
    State(state): State<AppState>,
    Caller(user): Caller,
    request_id: RequestId,
    Path(id): Path<Uuid>,
    Query(q): Query<HistoryCsvQuery>,
) -> Result<Response, ApiError> {
    let filter = history_filter(q.recorded_by.as_deref(), q.from.as_deref(), q.to.as_deref())?;
    let history = load_history(&state, id, &user.scope).await?;
    let csv = audit::history_csv(history.entries.iter().filter(|e| filter.matches(e)));
    record_read(&state, &user, id, endpoint::HISTORY_CSV, &request_id).await?;
    let mut response = csv.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"history-{id}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        "x-chain-valid",
        HeaderValue::from_static(if history.chain.is_ok() {
            "true"
        } else {
            "false"
        }),
    );
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessLogQuery {
    /// Only reads of this family.
    pub family_id: Option<String>,
    /// Only reads by this user.
    pub user_id: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccessLogItem {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The reader's name and role (absent if the user no longer exists).
    pub user_name: Option<String>,
    pub user_role: Option<String>,
    pub family_id: Uuid,
    /// `case_file`, `case_file_as_of`, `history` or `history.csv`.
    pub endpoint: String,
    /// When the read happened (server clock).
    pub at: DateTime<Utc>,
    pub request_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccessLog {
    /// Newest first.
    pub items: Vec<AccessLogItem>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/access-log", tag = "audit", params(AccessLogQuery),
    responses((status = 200, body = AccessLog), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
/// Who read which family's case file or history, and when — newest first.
/// Admins only; limited to families within the admin's scope.
pub async fn access_log(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AccessLogQuery>,
) -> Result<Json<AccessLog>, ApiError> {
    caller.require_admin()?;
    let limit = limit_of(q.limit)?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest("cursor is invalid".into()))
        })
        .transpose()?;
    let filter = AccessFilter {
        family_id: uuid_param("family_id", q.family_id.as_deref())?,
        user_id: uuid_param("user_id", q.user_id.as_deref())?,
        scope: caller.0.scope.clone(),
        before,
        limit,
    };
    let entries = audit::list_access(state.db(), &filter).await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.position.to_string()))
        .flatten();
    let items = entries
        .into_iter()
        .map(|e| AccessLogItem {
            id: e.record.id,
            user_id: e.record.user_id,
            user_name: e.user_name,
            user_role: e.user_role,
            family_id: e.record.family_id,
            endpoint: e.record.endpoint,
            at: e.record.at,
            request_id: e.record.request_id,
        })
        .collect();
    Ok(Json(AccessLog { items, next_cursor }))
}
