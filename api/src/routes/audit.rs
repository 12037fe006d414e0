//! Auditing: a family's full history (JSON and CSV, with the state of its
//! hash chain) and the access log. Histories are read through `Reads`,
//! which answers 404 outside the caller's scope and records the read in the
//! access log first. Admins list the log at `GET /api/v1/access-log`,
//! newest first.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use nuanxin_infra::audit::{self, HistoryEntry, HistoryFilter};
use nuanxin_infra::store::access_log::AccessFilter;
use nuanxin_infra::ReadKind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::params::{Cursor, IdCursor, PageParams, PositionCursor, SequenceCursor};
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, ListQuery, Path, Query, RequestId};
use crate::openapi::fields;
use crate::state::AppState;
use nuanxin_domain::UserRole;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history))
        .routes(routes!(history_csv))
        .routes(routes!(access_log))
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
            IdCursor::decode(s)
                .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a UUID")))
        })
        .transpose()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only events recorded by this user (a user id).
    #[param(value_type = Option<Uuid>)]
    pub recorded_by: Option<String>,
    /// Only events recorded at or after this instant.
    #[param(schema_with = fields::instant)]
    pub from: Option<String>,
    /// Only events recorded at or before this instant (none when before `from`).
    #[param(schema_with = fields::instant)]
    pub to: Option<String>,
}

/// The history filter; `from` after `to` is an empty range (no events),
/// not an error.
fn history_filter(q: &HistoryQuery) -> Result<HistoryFilter, ApiError> {
    Ok(HistoryFilter {
        recorded_by: uuid_param("recorded_by", q.recorded_by.as_deref())?,
        from: instant("from", q.from.as_deref())?,
        to: instant("to", q.to.as_deref())?,
        after_sequence: None,
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordedBy {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = UserRole)]
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

#[utoipa::path(get, path = "/api/v1/families/{id}/history", tag = "audit",
    params(("id" = Uuid, Path), HistoryQuery, PageParams<SequenceCursor>),
    responses((status = 200, body = History)))]
/// Every event of the case in order: who recorded it, when, what, whether it
/// was voided, and whether the family's hash chain is intact. Filters by
/// recorder and time range (inclusive); paginated by `sequence`.
#[tracing::instrument(skip_all, fields(family.id = %id))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    Path(id): Path<Uuid>,
    ListQuery { page, params: q }: ListQuery<HistoryQuery>,
) -> Result<Json<History>, ApiError> {
    let mut filter = history_filter(&q)?;
    filter.after_sequence = page.after(SequenceCursor::decode)?;
    let history = state
        .reads()
        .history(&caller.viewer(&request_id), id, ReadKind::History)
        .await?;
    let mut matching = history.entries.into_iter().filter(|e| filter.matches(e));
    let items: Vec<HistoryItem> = matching
        .by_ref()
        .take(page.limit() as usize)
        .map(Into::into)
        .collect();
    let next_cursor = match (items.last(), matching.next()) {
        (Some(last), Some(_)) => Some(last.sequence.to_string()),
        _ => None,
    };
    Ok(Json(History {
        items,
        next_cursor,
        chain_valid: history.chain.is_ok(),
        chain_broken_at: history.chain.err().map(|l| l.sequence),
    }))
}

#[utoipa::path(get, path = "/api/v1/families/{id}/history.csv", tag = "audit",
    params(("id" = Uuid, Path), HistoryQuery),
    responses(
        (status = 200, description = "The history as CSV (RFC 4180): sequence, event_type, \
            recorded_at, recorded_by_id, recorded_by_name, recorded_by_role, action_id, \
            voided_by, data (the masked event fields as JSON)",
            content_type = "text/csv", body = String,
            headers(("X-Chain-Valid" = bool, description = "Whether the family's hash chain verifies")))))]
/// The whole history as a CSV file, for an inspection.
#[tracing::instrument(skip_all, fields(family.id = %id))]
pub async fn history_csv(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    Path(id): Path<Uuid>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let filter = history_filter(&q)?;
    let history = state
        .reads()
        .history(&caller.viewer(&request_id), id, ReadKind::HistoryCsv)
        .await?;
    let csv = audit::history_csv(history.entries.iter().filter(|e| filter.matches(e)));
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
    #[param(value_type = Option<Uuid>)]
    pub family_id: Option<String>,
    /// Only reads by this user.
    #[param(value_type = Option<Uuid>)]
    pub user_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccessLogItem {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The reader's name and role (absent if the user no longer exists).
    pub user_name: Option<String>,
    #[schema(value_type = Option<UserRole>)]
    pub user_role: Option<String>,
    /// The family read (the nil UUID: every family, for `cli:audit verify`
    /// of the whole log).
    pub family_id: Uuid,
    /// `case_file`, `case_file_as_of`, `history` or `history.csv`; from the
    /// command line `cli:audit export`, `cli:audit verify` or `cli:backup`.
    pub endpoint: String,
    /// When the read happened (server clock).
    pub at: DateTime<Utc>,
    pub request_id: String,
    /// A command-line read: the operating-system user who ran it (its
    /// `user_id` is then the nil UUID) …
    pub os_user: Option<String>,
    /// … and the reason they gave.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccessLog {
    /// Newest first.
    pub items: Vec<AccessLogItem>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/access-log", tag = "audit",
    params(AccessLogQuery, PageParams<PositionCursor>),
    responses((status = 200, body = AccessLog), (status = 403, body = Problem)))]
/// Who read which family's case file or history, and when — newest first.
/// Admins only; limited to families within the admin's scope.
pub async fn access_log(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params: q }: ListQuery<AccessLogQuery>,
) -> Result<Json<AccessLog>, ApiError> {
    caller.require_admin()?;
    let filter = AccessFilter {
        family_id: uuid_param("family_id", q.family_id.as_deref())?,
        user_id: uuid_param("user_id", q.user_id.as_deref())?,
        scope: caller.0.scope.clone(),
        before: page.after(PositionCursor::decode)?,
        limit: page.limit(),
    };
    let entries = state.reads().access_log(&caller.0, filter).await?;
    let next_cursor = page.next_cursor(&entries, |e| e.position.to_string());
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
            os_user: e.os_user,
            reason: e.reason,
        })
        .collect();
    Ok(Json(AccessLog { items, next_cursor }))
}
