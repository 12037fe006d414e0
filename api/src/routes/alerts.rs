//! `/api/v1/alerts`: overdue-visit alerts within the caller's scope — the
//! list by status, one alert with its recipients and webhook deliveries,
//! acknowledging with a note, and triggering the day's scan.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use nuanxin_domain::values::parse_day;
use nuanxin_domain::{Role, Text, UserRole};
use nuanxin_infra::alerts::{self, Alert, AlertStatus, ScanMode};
use nuanxin_infra::ReadError;
use nuanxin_projections::schedule::ContactRef;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::params::{Cursor, IdCursor, PageParams};
use crate::error::{ApiError, Problem};
use crate::extract::{bad_query as bad, parse_json, Body, Caller, ListQuery, Path};
use crate::openapi::fields::{self, NOTE_MAX_CHARS};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(scan))
        .routes(routes!(detail))
        .routes(routes!(acknowledge))
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such alert in your scope".into())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The day to scan: today (local) by default; an earlier day catches up
    /// after downtime; a later day is refused (409, like an action dated
    /// after today).
    #[schema(schema_with = fields::opt_day)]
    pub on: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScanResponse {
    pub on: NaiveDate,
    /// Alerts raised by this scan.
    pub raised: u64,
    /// Alerts moved one or more levels up.
    pub escalated: u64,
    /// Alerts whose item is no longer overdue with its due date.
    pub resolved: u64,
    /// Resolved alerts overdue again with the same due date (the visit that
    /// resolved them was voided).
    pub reopened: u64,
    /// "Inspections behind schedule" alerts, checked by the same scan.
    pub inspections_behind: InspectionScanResponse,
}

/// What the scan changed of the "inspections behind schedule" alerts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InspectionScanResponse {
    /// The year whose pace was checked (the year of the day before the scan).
    pub year: i32,
    pub raised: u64,
    pub resolved: u64,
    pub reopened: u64,
}

#[utoipa::path(post, path = "/api/v1/alerts/scan", tag = "alerts",
    request_body(content = Option<ScanRequest>, description = "optional; no body (or an empty one) scans today"),
    responses((status = 200, body = ScanResponse), (status = 403, body = Problem),
        (status = 409, body = Problem)))]
/// Runs the overdue-visit scan of a day (admin, supervisor) for the families
/// within the caller's scope; the answer counts only those. Running it again
/// for the same day raises nothing new. A day after today is refused.
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ScanResponse>, ApiError> {
    if !matches!(caller.0.role, UserRole::Admin | UserRole::Supervisor) {
        return Err(ApiError::Forbidden(
            "scanning for alerts needs the admin or supervisor role".into(),
        ));
    }
    let bytes = body.map_err(crate::extract::body_rejection)?;
    // No body, an empty one or JSON `null`: scan today.
    let req: ScanRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        ScanRequest::default()
    } else {
        parse_json::<Option<ScanRequest>>(&bytes)?.unwrap_or_default()
    };
    let on = match req.on.as_deref() {
        None => state.core().today(),
        Some(day) => parse_day(day).map_err(|e| ApiError::field("on", e.0))?,
    };
    let scope = caller.0.scope.as_str();
    let report = alerts::run_scan(state.core(), state.projector(), on, scope, ScanMode::Always)
        .await
        .map_err(|e| match e {
            e @ alerts::ScanError::InFuture { .. } => ApiError::Conflict(e.to_string()),
            alerts::ScanError::Store(e) => e.into(),
        })?
        .unwrap_or_else(|| alerts::ScanReport {
            on,
            ..Default::default()
        });
    Ok(Json(ScanResponse {
        on: report.on,
        raised: report.raised,
        escalated: report.escalated,
        resolved: report.resolved,
        reopened: report.reopened,
        inspections_behind: InspectionScanResponse {
            year: report.inspections_behind.year,
            raised: report.inspections_behind.raised,
            resolved: report.inspections_behind.resolved,
            reopened: report.inspections_behind.reopened,
        },
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// All when absent.
    #[param(schema_with = fields::alert_status)]
    pub status: Option<String>,
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
}

/// One alert of the list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertItem {
    pub id: Uuid,
    pub family_id: Uuid,
    pub village_code: String,
    #[schema(value_type = Role)]
    pub role: String,
    /// The due date the alert is about: one alert per family, role and due date.
    pub due_on: NaiveDate,
    pub raised_on: NaiveDate,
    /// 0 = the contact / village, 1 = township, 2 = county, 3 = city, 4 = province.
    #[schema(minimum = 0, maximum = 4)]
    pub level: i32,
    #[schema(schema_with = fields::alert_level_name)]
    pub level_name: String,
    #[schema(schema_with = fields::alert_status)]
    pub status: String,
}

impl From<&Alert> for AlertItem {
    fn from(a: &Alert) -> Self {
        Self {
            id: a.id,
            family_id: a.family_id,
            village_code: a.village_code.clone(),
            role: a.role.clone(),
            due_on: a.due_on,
            raised_on: a.raised_on,
            level: a.level,
            level_name: alerts::level_name(a.level).into(),
            status: a.status.as_str().into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertList {
    pub items: Vec<AlertItem>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(ListParams, PageParams<IdCursor>),
    responses((status = 200, body = AlertList)))]
/// Alerts within the caller's scope, in the order they were raised.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params: p }: ListQuery<ListParams>,
) -> Result<Json<AlertList>, ApiError> {
    let status = p
        .status
        .as_deref()
        .map(|s| AlertStatus::parse(s).ok_or_else(|| bad("status")))
        .transpose()?;
    let after = page.after(IdCursor::decode)?;
    let found = state
        .reads()
        .alerts(
            &caller.0,
            p.village_code_prefix.as_deref(),
            status,
            after,
            page.limit(),
        )
        .await?;
    let next_cursor = page.next_cursor(&found, |a| a.id.to_string());
    Ok(Json(AlertList {
        items: found.iter().map(AlertItem::from).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Acknowledgement {
    /// The user who acknowledged.
    pub by: Uuid,
    pub at: DateTime<Utc>,
    pub note: String,
}

/// A user an alert goes to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecipientUser {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = UserRole)]
    pub role: String,
    pub scope: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Recipients {
    /// The responsible contact of the role.
    pub contact: ContactRef,
    /// Supervisors and admins whose scope covers the family and is no
    /// narrower than the alert's level (at level 0 also caseworkers).
    pub users: Vec<RecipientUser>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i32>,
    /// Why there was no answer (timeout, connection failed, …).
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// The webhook URL, without query string or credentials.
    pub url: String,
    /// `pending` (retrying) or `delivered`.
    #[schema(schema_with = fields::delivery_status)]
    pub status: String,
    pub delivered_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptView>,
}

/// One webhook message about the alert.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// The message id (the `id` of the posted body).
    pub id: Uuid,
    #[schema(schema_with = fields::message_kind)]
    pub kind: String,
    #[schema(minimum = 0, maximum = 4)]
    pub level: i32,
    /// One per webhook URL.
    pub deliveries: Vec<DeliveryView>,
}

/// One alert with its recipients and the delivery of its webhook messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: AlertItem,
    /// The jurisdiction code that receives the alert at its level.
    pub jurisdiction: String,
    pub escalated_on: Option<NaiveDate>,
    pub resolved_on: Option<NaiveDate>,
    pub acknowledgement: Option<Acknowledgement>,
    pub recipients: Recipients,
    pub messages: Vec<MessageView>,
}

/// A URL as shown to users: no credentials, no query string.
fn redact_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

async fn detail_of(state: &AppState, a: Alert) -> Result<AlertDetail, ApiError> {
    let users = alerts::recipients(state.db(), &a).await?;
    let messages = alerts::messages(state.db(), a.id).await?;
    Ok(AlertDetail {
        alert: AlertItem::from(&a),
        jurisdiction: alerts::jurisdiction(&a).to_owned(),
        escalated_on: a.escalated_on,
        resolved_on: a.resolved_on,
        acknowledgement: match (a.acknowledged_by, a.acknowledged_at, a.ack_note.clone()) {
            (Some(by), Some(at), Some(note)) => Some(Acknowledgement { by, at, note }),
            _ => None,
        },
        recipients: Recipients {
            contact: ContactRef {
                id: a.contact_id,
                name: a.contact_name.clone(),
            },
            users: users
                .into_iter()
                .map(|u| RecipientUser {
                    id: u.id,
                    name: u.name,
                    role: u.role.as_str().into(),
                    scope: u.scope.as_str().into(),
                })
                .collect(),
        },
        messages: messages
            .into_iter()
            .map(|m| MessageView {
                id: m.id,
                kind: m.kind,
                level: m.level,
                deliveries: m
                    .deliveries
                    .into_iter()
                    .map(|d| DeliveryView {
                        url: redact_url(&d.url),
                        status: (if d.delivered { "delivered" } else { "pending" }).into(),
                        delivered_at: d.delivered_at,
                        attempts: d
                            .attempts
                            .into_iter()
                            .map(|t| AttemptView {
                                attempt: t.attempt,
                                at: t.at,
                                status_code: t.status_code,
                                error: t.error,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// The alert `id` if it lies within the caller's scope.
async fn alert_in_scope(state: &AppState, caller: &Caller, id: Uuid) -> Result<Alert, ApiError> {
    match state.reads().alert(&caller.0, id).await {
        Err(ReadError::NotFound) => Err(not_found()),
        other => Ok(other?),
    }
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = Uuid, Path)),
    responses((status = 200, body = AlertDetail)))]
/// One alert: its recipients at its level and the delivery of each of its
/// webhook messages to every URL, attempt by attempt.
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<AlertDetail>, ApiError> {
    let alert = alert_in_scope(&state, &caller, id).await?;
    Ok(Json(detail_of(&state, alert).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// What was done or will be done about it.
    #[schema(schema_with = fields::note)]
    pub note: String,
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts", params(("id" = Uuid, Path)), request_body = AckRequest,
    responses((status = 200, body = AlertDetail), (status = 409, body = Problem)))]
/// Acknowledges an open alert with a note (any role, within scope). An
/// acknowledged alert still escalates and resolves like an open one.
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Body<AckRequest>,
) -> Result<Json<AlertDetail>, ApiError> {
    let alert = alert_in_scope(&state, &caller, id).await?;
    let note = Text::parse_at_most(&body.value.note, NOTE_MAX_CHARS)
        .map_err(|e| ApiError::field("note", e.0))?;
    let note = note.as_str();
    let now = state.core().services().clock.now();
    match alerts::acknowledge(state.core(), alert.id, caller.0.id, note, now)
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))?
    {
        alerts::Ack::Done(a) => Ok(Json(detail_of(&state, a).await?)),
        alerts::Ack::NotOpen(status) => Err(ApiError::Conflict(format!(
            "the alert is {}, not open",
            status.as_str()
        ))),
        alerts::Ack::NotFound => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("https://u:p@hooks.example/a/b?token=x#f"),
            "https://hooks.example/a/b"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9/hook"),
            "http://127.0.0.1:9/hook"
        );
        assert_eq!(redact_url("http://h"), "http://h");
    }
}
