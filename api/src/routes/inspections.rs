//! `/api/v1/inspections`: supervision inspections (督导) as streams of
//! their own — recording one (supervisors and admins, within their
//! scope), marking follow-ups done, voiding one recorded by mistake, the
//! list and one inspection, compliance with the yearly minimum, and the
//! "inspections behind schedule" alerts the daily scan raises. Also
//! `/api/v1/bulletin/figures`: the bulletin's figures of insurance,
//! activities and inspections as known at an instant.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Datelike, NaiveDate};
use nuanxin_domain::inspection::{
    parent_level, parse_jurisdiction, InspectionCommand, InspectionTopic,
};
use nuanxin_domain::{Scope, UserRole};
use nuanxin_infra::store::inspection_alerts::InspectionAlert;
use nuanxin_projections::bulletin::BulletinFigures;
use nuanxin_projections::inspections::{ComplianceItem, InspectionView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::activities::{
    created, query_period, replayed, stream_request, CreatedResponse, HeldListParams,
};
use super::dto::{Fields, ReasonRequest};
use crate::error::{ApiError, Problem};
use crate::extract::{bad_query as bad, Body, Caller, CommandHeaders, ListQuery, Path, Query};
use crate::openapi::fields;
use crate::routes::params::{Cursor, HeldCursor, IdCursor, IdempotencyKeyParam, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record, list))
        .routes(routes!(compliance))
        .routes(routes!(alerts))
        .routes(routes!(detail))
        .routes(routes!(follow_up_done))
        .routes(routes!(void))
        .routes(routes!(figures))
}

/// Inspections are recorded by supervisors and admins.
fn require_inspector(caller: &Caller) -> Result<(), ApiError> {
    if matches!(caller.0.role, UserRole::Supervisor | UserRole::Admin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "inspections are recorded by supervisors and admins".into(),
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectionRequest {
    /// The jurisdiction inspected (a code prefix of 2 to 12 digits) within
    /// your scope.
    #[schema(schema_with = fields::jurisdiction, example = "450305001")]
    pub jurisdiction: String,
    #[schema(value_type = InspectionTopic)]
    pub topic: String,
    /// Not after today (409).
    #[schema(schema_with = fields::day_from_2000)]
    pub held_on: String,
    #[schema(schema_with = fields::text)]
    pub findings: String,
    /// What the inspected level is asked to do; each is marked done later.
    #[serde(default)]
    #[schema(schema_with = fields::follow_ups)]
    pub follow_ups: Vec<String>,
    /// The association that held it: a level above the jurisdiction, within
    /// your scope. By default your own jurisdiction when it is above the
    /// one inspected, else the level just above it.
    #[schema(schema_with = fields::opt_jurisdiction, example = "450305")]
    pub inspected_by: Option<String>,
}

impl InspectionRequest {
    fn into_command(self, caller_scope: &Scope) -> Result<InspectionCommand, ApiError> {
        let mut f = Fields::default();
        let jurisdiction = f.value("jurisdiction", parse_jurisdiction(&self.jurisdiction));
        let topic = f.value("topic", InspectionTopic::parse(&self.topic));
        let held_on = f.date("held_on", &self.held_on);
        let findings = f.text("findings", &self.findings);
        let follow_ups: Vec<(Uuid, nuanxin_domain::Text)> = self
            .follow_ups
            .iter()
            .enumerate()
            .filter_map(|(i, t)| f.text(&format!("follow_ups[{i}]"), t))
            .map(|t| (Uuid::now_v7(), t))
            .collect();
        let inspected_by = match (&self.inspected_by, &jurisdiction) {
            (Some(by), _) => f.value("inspected_by", Scope::parse(by)),
            (None, Some(j)) => {
                let (scope, j) = (caller_scope.as_str(), j.as_str());
                let default = if !scope.is_empty() && scope.len() < j.len() && j.starts_with(scope)
                {
                    Some(scope)
                } else {
                    parent_level(j)
                };
                match default.map(Scope::parse) {
                    Some(Ok(by)) => Some(by),
                    _ => {
                        f.push(
                            "inspected_by",
                            "is required for an inspection of a province",
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        };
        match (jurisdiction, topic, held_on, findings, inspected_by) {
            (
                Some(jurisdiction),
                Some(topic),
                Some(held_on),
                Some(findings),
                Some(inspected_by),
            ) if f.is_empty() => Ok(InspectionCommand::RecordInspection {
                jurisdiction,
                inspected_by,
                topic,
                held_on,
                findings,
                follow_ups,
            }),
            _ => Err(f.error()),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/inspections", tag = "inspections", request_body = InspectionRequest,
    params(IdempotencyKeyParam),
    responses((status = 201, body = CreatedResponse, headers(("Location" = String))),
        (status = 401, body = Problem),
        (status = 403, description = "A caseworker, or a jurisdiction outside your scope", body = Problem),
        (status = 409, description = "Held in the future", body = Problem), (status = 422, body = Problem)))]
/// Record a supervision inspection of a jurisdiction within your scope
/// (supervisors and admins).
pub async fn record(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: Body<InspectionRequest>,
) -> Result<Response, ApiError> {
    require_inspector(&caller)?;
    let command = body.value.into_command(&caller.0.scope)?;
    let req = stream_request(&caller, headers, body.hash);
    let outcome = state
        .commands()
        .record_inspection(Uuid::now_v7(), command, &req)
        .await?;
    Ok(created(
        &outcome,
        format!("/api/v1/inspections/{}", outcome.id),
    ))
}

async fn update(
    state: &AppState,
    caller: &Caller,
    headers: CommandHeaders,
    hash: String,
    id: Uuid,
    command: InspectionCommand,
) -> Result<Response, ApiError> {
    let req = stream_request(caller, headers, hash);
    let outcome = state
        .commands()
        .update_inspection(id, command, &req)
        .await?;
    let view = state.reads().inspection(&caller.0, id).await?;
    Ok(replayed(Json(view).into_response(), &outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpDoneRequest {
    /// Not before the inspection, not after today.
    #[schema(schema_with = fields::day_from_2000)]
    pub done_on: String,
    #[schema(schema_with = fields::opt_text)]
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/inspections/{id}/follow-ups/{follow_up_id}/done", tag = "inspections",
    request_body = FollowUpDoneRequest,
    params(("id" = Uuid, Path), ("follow_up_id" = Uuid, Path), IdempotencyKeyParam),
    responses((status = 200, description = "The inspection", body = InspectionView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "Already done, or the inspection is voided", body = Problem),
        (status = 422, body = Problem)))]
/// Mark a follow-up of an inspection done (supervisors and admins).
pub async fn follow_up_done(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path((id, follow_up_id)): Path<(Uuid, Uuid)>,
    body: Body<FollowUpDoneRequest>,
) -> Result<Response, ApiError> {
    require_inspector(&caller)?;
    let mut f = Fields::default();
    let done_on = f.date("done_on", &body.value.done_on);
    let note = match &body.value.note {
        None => Some(None),
        Some(n) => f.text("note", n).map(Some),
    };
    let (Some(done_on), Some(note)) = (done_on, note) else {
        return Err(f.error());
    };
    let command = InspectionCommand::CompleteFollowUp {
        follow_up_id,
        done_on,
        note,
    };
    update(&state, &caller, headers, body.hash, id, command).await
}

#[utoipa::path(post, path = "/api/v1/inspections/{id}/void", tag = "inspections",
    request_body = ReasonRequest,
    params(("id" = Uuid, Path), IdempotencyKeyParam),
    responses((status = 200, description = "The inspection", body = InspectionView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "Already voided", body = Problem),
        (status = 422, body = Problem)))]
/// Void an inspection recorded by mistake: it no longer counts towards the
/// minimum (supervisors and admins).
pub async fn void(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path(id): Path<Uuid>,
    body: Body<ReasonRequest>,
) -> Result<Response, ApiError> {
    require_inspector(&caller)?;
    let mut f = Fields::default();
    let Some(reason) = f.text("reason", &body.value.reason) else {
        return Err(f.error());
    };
    update(
        &state,
        &caller,
        headers,
        body.hash,
        id,
        InspectionCommand::VoidInspection { reason },
    )
    .await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InspectionList {
    pub items: Vec<InspectionView>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/inspections", tag = "inspections", params(HeldListParams, PageParams<HeldCursor>),
    responses((status = 200, body = InspectionList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// Inspections seen from your scope (of jurisdictions within it, or
/// containing it), newest first; voided ones are marked.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params }: ListQuery<HeldListParams>,
) -> Result<Json<InspectionList>, ApiError> {
    let filter = params.filter(&page)?;
    let items = state
        .reads()
        .inspections(&caller.0, params.village_code_prefix.as_deref(), filter)
        .await?;
    let next_cursor = page.next_cursor(&items, |i| HeldCursor::encode(i.held_on, i.id));
    Ok(Json(InspectionList { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/inspections/{id}", tag = "inspections", params(("id" = Uuid, Path)),
    responses((status = 200, body = InspectionView), (status = 401, body = Problem), (status = 404, body = Problem)))]
/// One inspection with its follow-ups.
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<InspectionView>, ApiError> {
    match state.reads().inspection(&caller.0, id).await {
        Err(nuanxin_infra::ReadError::NotFound) => Err(ApiError::NotFound(
            "no such inspection in your scope".into(),
        )),
        other => Ok(Json(other?)),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ComplianceParams {
    /// The year (2000–2100); this year by default.
    #[param(minimum = 2000, maximum = 2100)]
    pub year: Option<i32>,
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ComplianceList {
    pub year: i32,
    /// One item per city and county association within your scope: those
    /// with registered families, and those that held an inspection.
    pub items: Vec<ComplianceItem>,
    /// Always `null`: the list is not paged.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/inspections/compliance", tag = "inspections", params(ComplianceParams),
    responses((status = 200, body = ComplianceList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// Inspections held in a year by each city and county association, against
/// the minimum (4 a year for a city, 12 for a county, by default) and the
/// pace (a twelfth of the minimum per month ended).
pub async fn compliance(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ComplianceParams>,
) -> Result<Json<ComplianceList>, ApiError> {
    let year = params.year.unwrap_or_else(|| state.reads().today().year());
    if !(2000..=2100).contains(&year) {
        return Err(bad("year"));
    }
    let items = state
        .reads()
        .compliance(&caller.0, params.village_code_prefix.as_deref(), year)
        .await?;
    Ok(Json(ComplianceList {
        year,
        items,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// `open` or `resolved`; all when absent.
    #[param(schema_with = fields::inspection_alert_status)]
    pub status: Option<String>,
    /// Only alerts of this year (2000–2100).
    #[param(minimum = 2000, maximum = 2100)]
    pub year: Option<i32>,
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
}

/// An "inspections behind schedule" alert.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InspectionAlertItem {
    pub id: Uuid,
    /// The association behind schedule.
    pub jurisdiction: String,
    #[schema(example = "county")]
    pub level: String,
    pub year: i32,
    pub required: i32,
    /// As of `checked_on`: the inspections the pace asked for, and those held.
    pub expected_by_now: i32,
    pub held: i32,
    pub checked_on: NaiveDate,
    pub raised_on: NaiveDate,
    #[schema(example = "open")]
    pub status: String,
    pub resolved_on: Option<NaiveDate>,
}

impl From<InspectionAlert> for InspectionAlertItem {
    fn from(a: InspectionAlert) -> Self {
        Self {
            id: a.id,
            jurisdiction: a.jurisdiction,
            level: a.level,
            year: a.year,
            required: a.required,
            expected_by_now: a.expected,
            held: a.held,
            checked_on: a.checked_on,
            raised_on: a.raised_on,
            status: a.status,
            resolved_on: a.resolved_on,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InspectionAlertList {
    pub items: Vec<InspectionAlertItem>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/inspections/alerts", tag = "inspections", params(AlertParams, PageParams<IdCursor>),
    responses((status = 200, body = InspectionAlertList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// "Inspections behind schedule" alerts of the associations within your
/// scope, in the order raised (see docs/alerts.md).
pub async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params }: ListQuery<AlertParams>,
) -> Result<Json<InspectionAlertList>, ApiError> {
    if params
        .status
        .as_deref()
        .is_some_and(|s| s != "open" && s != "resolved")
    {
        return Err(bad("status"));
    }
    if params.year.is_some_and(|y| !(2000..=2100).contains(&y)) {
        return Err(bad("year"));
    }
    let after = page.after(IdCursor::decode)?;
    let items: Vec<InspectionAlertItem> = state
        .reads()
        .inspection_alerts(
            &caller.0,
            params.village_code_prefix.as_deref(),
            params.status.as_deref(),
            params.year,
            after,
            page.limit(),
        )
        .await?
        .into_iter()
        .map(InspectionAlertItem::from)
        .collect();
    let next_cursor = page.next_cursor(&items, |a| a.id.to_string());
    Ok(Json(InspectionAlertList { items, next_cursor }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FiguresParams {
    /// First day; 1 January of this year by default.
    #[param(schema_with = fields::day)]
    pub from: Option<String>,
    /// Last day; today by default.
    #[param(schema_with = fields::day)]
    pub to: Option<String>,
    /// Your scope by default.
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
    /// Count only what was recorded by then (now by default).
    #[param(schema_with = fields::instant)]
    pub known_at: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/bulletin/figures", tag = "inspections", params(FiguresParams),
    responses((status = 200, body = BulletinFigures), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, description = "The prefix lies outside your scope", body = Problem)))]
/// The bulletin's figures of a jurisdiction and period: care insurance
/// (enrolled families and members, premiums by payer, claims filed / paid /
/// rejected, amount paid and payout ratio), group activities (held,
/// families reached) and inspections (held vs required), as known at an
/// instant.
pub async fn figures(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<FiguresParams>,
) -> Result<Json<BulletinFigures>, ApiError> {
    let (from, to, known_at) = query_period(
        state.reads().today(),
        &params.from,
        &params.to,
        &params.known_at,
    )?;
    state
        .reads()
        .bulletin_figures(
            &caller.0,
            params.village_code_prefix.as_deref(),
            from,
            to,
            known_at,
        )
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("that jurisdiction is outside your scope".into()))
}
