//! The lists caseworkers plan their week with and supervisors chase what is
//! late with: overdue visits, due visits and coverage gaps. Each is one index
//! range scan of the schedule read model, paged with a cursor, within the
//! caller's scope.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Days, NaiveDate};
use nuanxin_domain::Role;
use nuanxin_projections::schedule::{self, CoverageGap, DueCursor, DueItem, DueQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::families::{effective_prefix, limit_of};
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/overdue-visits", get(overdue_visits))
        .route("/due-visits", get(due_visits))
        .route("/coverage-gaps", get(coverage_gaps))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DueParams {
    /// The day asked (YYYY-MM-DD); today by default.
    pub on: Option<String>,
    /// Days ahead of `on` (due-visits only; default 7, at most 366).
    pub within_days: Option<u32>,
    /// `village` or `township`.
    pub role: Option<String>,
    /// Only this contact's items.
    pub contact_id: Option<String>,
    pub village_code_prefix: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DueList {
    pub items: Vec<DueItem>,
    pub next_cursor: Option<String>,
}

fn bad(what: &str) -> ApiError {
    ApiError::BadRequest(format!("the query parameter `{what}` is invalid"))
}

/// Builds the schedule question from the parameters; `None` when the asked
/// prefix lies outside the caller's scope (an empty answer).
fn due_query(
    caller: &Caller,
    p: DueParams,
    today: NaiveDate,
    overdue_only: bool,
) -> Result<Option<DueQuery>, ApiError> {
    let on = match &p.on {
        None => today,
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("on"))?,
    };
    let due_until = if overdue_only {
        on.checked_sub_days(Days::new(1)).ok_or_else(|| bad("on"))?
    } else {
        let within = p.within_days.unwrap_or(7);
        if within > 366 {
            return Err(bad("within_days"));
        }
        on.checked_add_days(Days::new(u64::from(within)))
            .ok_or_else(|| bad("within_days"))?
    };
    if overdue_only && p.within_days.is_some() {
        return Err(bad("within_days"));
    }
    let role = p
        .role
        .as_deref()
        .map(|r| Role::parse(r).map_err(|_| bad("role")))
        .transpose()?;
    let contact_id = p
        .contact_id
        .as_deref()
        .map(|c| c.parse::<Uuid>().map_err(|_| bad("contact_id")))
        .transpose()?;
    let after = p
        .cursor
        .as_deref()
        .map(|c| DueCursor::decode(c).ok_or_else(|| bad("cursor")))
        .transpose()?;
    let limit = limit_of(p.limit)?;
    let Some(prefix) = effective_prefix(&caller.0.scope, p.village_code_prefix.as_deref())? else {
        return Ok(None);
    };
    Ok(Some(DueQuery {
        on,
        due_until,
        village_code_prefix: prefix,
        role,
        contact_id,
        after,
        limit,
    }))
}

async fn due_list(
    state: &AppState,
    caller: &Caller,
    p: DueParams,
    overdue_only: bool,
) -> Result<Json<DueList>, ApiError> {
    let today = state.cases().services().today();
    let Some(q) = due_query(caller, p, today, overdue_only)? else {
        return Ok(Json(DueList {
            items: vec![],
            next_cursor: None,
        }));
    };
    let items = schedule::due(state.db(), &q).await?;
    let next_cursor = (items.len() == q.limit as usize)
        .then(|| {
            items.last().map(|i| {
                DueCursor {
                    due_on: i.due_on,
                    family_id: i.family_id.to_string(),
                    role: i.role.clone(),
                }
                .encode()
            })
        })
        .flatten();
    Ok(Json(DueList { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/overdue-visits", tag = "schedule", params(DueParams),
    responses((status = 200, body = DueList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// Visits overdue on `on` (open cases, roles with a contact), oldest due first.
pub async fn overdue_visits(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<DueParams>,
) -> Result<Json<DueList>, ApiError> {
    due_list(&state, &caller, p, true).await
}

#[utoipa::path(get, path = "/api/v1/due-visits", tag = "schedule", params(DueParams),
    responses((status = 200, body = DueList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// Visits due on or before `on + within_days`, overdue ones included and marked.
pub async fn due_visits(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<DueParams>,
) -> Result<Json<DueList>, ApiError> {
    due_list(&state, &caller, p, false).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GapParams {
    pub village_code_prefix: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GapList {
    pub items: Vec<CoverageGap>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/coverage-gaps", tag = "schedule", params(GapParams),
    responses((status = 200, body = GapList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// Open families missing a contact for a role (双岗 coverage gaps).
pub async fn coverage_gaps(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<GapParams>,
) -> Result<Json<GapList>, ApiError> {
    let limit = limit_of(p.limit)?;
    let after = p
        .cursor
        .as_deref()
        .map(|c| c.parse::<Uuid>().map_err(|_| bad("cursor")))
        .transpose()?;
    let Some(prefix) = effective_prefix(&caller.0.scope, p.village_code_prefix.as_deref())? else {
        return Ok(Json(GapList {
            items: vec![],
            next_cursor: None,
        }));
    };
    let items = schedule::coverage_gaps(state.db(), &prefix, after, limit).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|i| i.family_id.to_string()))
        .flatten();
    Ok(Json(GapList { items, next_cursor }))
}
