//! `/api/v1/activities`: group activities (暖心家园, 暖心行动, festival
//! gatherings, member days) as streams of their own — recording one, its
//! attendance (which also lands on each family's timeline), taking an
//! attendance back, the list and one activity — and
//! `/api/v1/isolated-families`, the families that attended nothing for a
//! while. Recording is for caseworkers and admins; reads go through
//! `Reads` (outside the caller's scope: 404 or an empty list).

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use nuanxin_domain::activity::{parse_place, ActivityCommand, ActivityKind};
use nuanxin_domain::values::parse_day;
use nuanxin_infra::{StreamOutcome, StreamRequest};
use nuanxin_projections::activities::{
    ActivityDetail, ActivitySummary, HeldListFilter, IsolatedFamily,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto::Fields;
use crate::error::{ApiError, Problem};
use crate::extract::{bad_query as bad, Body, Caller, CommandHeaders, ListQuery, Page, Path};
use crate::openapi::fields;
use crate::routes::params::{Cursor, HeldCursor, IdCursor, IdempotencyKeyParam, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record, list))
        .routes(routes!(detail))
        .routes(routes!(attendance))
        .routes(routes!(remove_attendance))
        .routes(routes!(isolated_families))
}

/// The request of a command on an activity or inspection.
pub(crate) fn stream_request(
    caller: &Caller,
    headers: CommandHeaders,
    hash: String,
) -> StreamRequest {
    let user = &caller.0;
    StreamRequest {
        recorder: user.recorder(),
        scope: user.scope.clone(),
        request_id: headers.request_id,
        idempotency_key: headers.idempotency_key,
        request_hash: Some(hash),
    }
}

/// Marks a replayed answer.
pub(crate) fn replayed(mut response: Response, outcome: &StreamOutcome) -> Response {
    if outcome.replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// The period and instant of the bulletin and the report: `from` (1
/// January of `today`'s year by default), `to` (`today` by default) and
/// `known_at` (an RFC 3339 instant; now when absent); malformed → 400.
pub(crate) fn query_period(
    today: NaiveDate,
    from: &Option<String>,
    to: &Option<String>,
    known_at: &Option<String>,
) -> Result<(NaiveDate, NaiveDate, Option<chrono::DateTime<chrono::Utc>>), ApiError> {
    use chrono::Datelike;
    let from = query_date("from", from)?
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today));
    let to = query_date("to", to)?.unwrap_or(today);
    let known_at = known_at
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| bad("known_at"))
        })
        .transpose()?;
    Ok((from, to, known_at))
}

/// A date query parameter (`YYYY-MM-DD`, [`fields::day`]); malformed → 400.
pub(crate) fn query_date(name: &str, s: &Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    s.as_deref()
        .map(|s| parse_day(s).map_err(|_| bad(name)))
        .transpose()
}

/// The answer to a new activity or inspection.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedResponse {
    pub id: Uuid,
    /// The version of its stream.
    pub version: u64,
}

pub(crate) fn created(outcome: &StreamOutcome, location: String) -> Response {
    let mut response = (
        StatusCode::CREATED,
        Json(CreatedResponse {
            id: outcome.id,
            version: outcome.version,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    replayed(response, outcome)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityRequest {
    #[schema(value_type = ActivityKind)]
    pub kind: String,
    #[schema(schema_with = fields::text)]
    pub title: String,
    /// Not after today (409).
    #[schema(schema_with = fields::day_from_2000)]
    pub held_on: String,
    /// Where it was held: a county, township or village code (6, 9 or 12
    /// digits) within your scope.
    #[schema(schema_with = fields::place, example = "450305001")]
    pub village_code_prefix: String,
    /// The organising body.
    #[schema(schema_with = fields::text)]
    pub organiser: String,
}

impl ActivityRequest {
    fn into_command(self) -> Result<ActivityCommand, ApiError> {
        let mut f = Fields::default();
        let kind = f.value("kind", ActivityKind::parse(&self.kind));
        let title = f.text("title", &self.title);
        let held_on = f.date("held_on", &self.held_on);
        let place = f.value(
            "village_code_prefix",
            parse_place(&self.village_code_prefix),
        );
        let organiser = f.text("organiser", &self.organiser);
        match (kind, title, held_on, place, organiser) {
            (
                Some(kind),
                Some(title),
                Some(held_on),
                Some(village_code_prefix),
                Some(organiser),
            ) => Ok(ActivityCommand::RecordActivity {
                kind,
                title,
                held_on,
                village_code_prefix,
                organiser,
            }),
            _ => Err(f.error()),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/activities", tag = "activities", request_body = ActivityRequest,
    params(IdempotencyKeyParam),
    responses((status = 201, body = CreatedResponse, headers(("Location" = String))),
        (status = 401, body = Problem), (status = 403, description = "A supervisor, or a place outside your scope", body = Problem),
        (status = 409, description = "Held in the future", body = Problem), (status = 422, body = Problem)))]
/// Record a group activity that was held.
pub async fn record(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: Body<ActivityRequest>,
) -> Result<Response, ApiError> {
    caller.require_recorder()?;
    let command = body.value.into_command()?;
    let req = stream_request(&caller, headers, body.hash);
    let outcome = state
        .commands()
        .record_activity(Uuid::now_v7(), command, &req)
        .await?;
    Ok(created(
        &outcome,
        format!("/api/v1/activities/{}", outcome.id),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendanceRequest {
    /// The families that attended (at most 500 per request): each must be
    /// registered, open and within your scope.
    #[schema(schema_with = fields::family_ids)]
    pub family_ids: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendanceRemovalRequest {
    /// Families recorded as attending by mistake.
    #[schema(schema_with = fields::family_ids)]
    pub family_ids: Vec<String>,
    #[schema(schema_with = fields::text)]
    pub reason: String,
}

fn family_ids(f: &mut Fields, ids: &[String]) -> Vec<Uuid> {
    ids.iter()
        .enumerate()
        .filter_map(|(i, s)| f.uuid(&format!("family_ids[{i}]"), s))
        .collect()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttendanceResponse {
    /// The activity's id.
    pub id: Uuid,
    /// The version of the activity's stream.
    pub version: u64,
    /// Families recorded as attending by this request (each also got an
    /// `ActivityAttended` on its own timeline).
    pub added: Vec<Uuid>,
    /// Families of the request already recorded as attending.
    pub already_attending: Vec<Uuid>,
}

#[utoipa::path(post, path = "/api/v1/activities/{id}/attendance", tag = "activities",
    request_body = AttendanceRequest,
    params(("id" = Uuid, Path), IdempotencyKeyParam),
    responses((status = 200, body = AttendanceResponse), (status = 403, body = Problem),
        (status = 409, description = "A family's case refuses it (closed, registered after the activity); nothing is recorded", body = Problem),
        (status = 404, description = "No such activity in your scope, or a family named is not a registered family in your scope (its position is named)", body = Problem),
        (status = 422, body = Problem)))]
/// Record the families that attended: all of them or none. Families
/// already recorded are left as they are.
pub async fn attendance(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path(id): Path<Uuid>,
    body: Body<AttendanceRequest>,
) -> Result<Response, ApiError> {
    caller.require_recorder()?;
    let mut f = Fields::default();
    let ids = family_ids(&mut f, &body.value.family_ids);
    if !f.is_empty() {
        return Err(f.error());
    }
    let req = stream_request(&caller, headers, body.hash);
    let outcome = state.commands().attendance(id, ids, None, &req).await?;
    let response = Json(AttendanceResponse {
        id: outcome.id,
        version: outcome.version,
        added: outcome.families.clone(),
        already_attending: outcome.unchanged.clone(),
    })
    .into_response();
    Ok(replayed(response, &outcome))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RemovalResponse {
    pub id: Uuid,
    pub version: u64,
    /// Families taken off the attendance (and off their timelines' "last
    /// activity attended").
    pub removed: Vec<Uuid>,
}

#[utoipa::path(post, path = "/api/v1/activities/{id}/attendance/removals", tag = "activities",
    request_body = AttendanceRemovalRequest,
    params(("id" = Uuid, Path), IdempotencyKeyParam),
    responses((status = 200, body = RemovalResponse), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "A family named is not recorded as attending; nothing is changed", body = Problem),
        (status = 422, body = Problem)))]
/// Take families recorded by mistake off an activity's attendance (the
/// activity and each family record it; the history keeps both steps).
pub async fn remove_attendance(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path(id): Path<Uuid>,
    body: Body<AttendanceRemovalRequest>,
) -> Result<Response, ApiError> {
    caller.require_recorder()?;
    let mut f = Fields::default();
    let ids = family_ids(&mut f, &body.value.family_ids);
    let reason = f.text("reason", &body.value.reason);
    let (Some(reason), true) = (reason, f.is_empty()) else {
        return Err(f.error());
    };
    let req = stream_request(&caller, headers, body.hash);
    let outcome = state
        .commands()
        .attendance(id, ids, Some(reason), &req)
        .await?;
    let response = Json(RemovalResponse {
        id: outcome.id,
        version: outcome.version,
        removed: outcome.families.clone(),
    })
    .into_response();
    Ok(replayed(response, &outcome))
}

/// The parameters of the activity and inspection lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HeldListParams {
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
    /// Held on or after this day.
    #[param(schema_with = fields::day)]
    pub from: Option<String>,
    /// Held on or before this day.
    #[param(schema_with = fields::day)]
    pub to: Option<String>,
}

impl HeldListParams {
    /// The page asked (the prefix is intersected with the scope by `Reads`).
    pub(crate) fn filter(&self, page: &Page) -> Result<HeldListFilter, ApiError> {
        Ok(HeldListFilter {
            village_code_prefix: String::new(),
            from: query_date("from", &self.from)?,
            to: query_date("to", &self.to)?,
            before: page.after(HeldCursor::decode)?,
            limit: page.limit(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActivityList {
    pub items: Vec<ActivitySummary>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/activities", tag = "activities", params(HeldListParams, PageParams<HeldCursor>),
    responses((status = 200, body = ActivityList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// Activities seen from your scope (held within it, or in a township or
/// county containing it), newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params }: ListQuery<HeldListParams>,
) -> Result<Json<ActivityList>, ApiError> {
    let filter = params.filter(&page)?;
    let items = state
        .reads()
        .activities(&caller.0, params.village_code_prefix.as_deref(), filter)
        .await?;
    let next_cursor = page.next_cursor(&items, |a| HeldCursor::encode(a.held_on, a.id));
    Ok(Json(ActivityList { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/activities/{id}", tag = "activities", params(("id" = Uuid, Path)),
    responses((status = 200, body = ActivityDetail), (status = 401, body = Problem), (status = 404, body = Problem)))]
/// One activity, with the attending families within your scope.
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<ActivityDetail>, ApiError> {
    match state.reads().activity(&caller.0, id).await {
        Err(nuanxin_infra::ReadError::NotFound) => {
            Err(ApiError::NotFound("no such activity in your scope".into()))
        }
        other => Ok(Json(other?)),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IsolationParams {
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
    /// No activity attended in this many days before `on` (1–3650; the
    /// policy's `isolation_days`, 180 by default).
    #[param(minimum = 1, maximum = 3650)]
    pub days: Option<u32>,
    /// The day asked; today by default.
    #[param(schema_with = fields::day)]
    pub on: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IsolatedList {
    /// The days used.
    pub days: u32,
    /// Families attended nothing held on or after this day.
    pub since: NaiveDate,
    pub items: Vec<IsolatedFamily>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/isolated-families", tag = "activities", params(IsolationParams, PageParams<IdCursor>),
    responses((status = 200, body = IsolatedList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// Open families within your scope that attended no group activity for
/// `days` (or never): isolation is what psychological comfort work looks for.
pub async fn isolated_families(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params }: ListQuery<IsolationParams>,
) -> Result<Json<IsolatedList>, ApiError> {
    if params.days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(bad("days"));
    }
    let on = query_date("on", &params.on)?.unwrap_or_else(|| state.reads().today());
    let after = page.after(IdCursor::decode)?;
    let (days, items) = state
        .reads()
        .isolated_families(
            &caller.0,
            params.village_code_prefix.as_deref(),
            on,
            params.days,
            after,
            page.limit(),
        )
        .await?;
    let next_cursor = page.next_cursor(&items, |i| i.family_id.to_string());
    Ok(Json(IsolatedList {
        days,
        since: on - chrono::Days::new(u64::from(days)),
        items,
        next_cursor,
    }))
}
