//! The lists caseworkers plan their week with and supervisors chase what is
//! late with: overdue visits, due visits and coverage gaps. Each is one index
//! range scan of the schedule read model, paged with a cursor, within the
//! caller's scope.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Days, NaiveDate};
use nuanxin_domain::Role;
use nuanxin_projections::schedule::{CoverageGap, DueCursor, DueItem, DueQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{Cursor, DueListCursor, IdCursor, PageParams};
use super::sheets::{self, ListFormat};
use crate::error::ApiError;
use crate::extract::{bad_query as bad, Caller, ListQuery, Page};
use crate::openapi::fields;
use crate::state::AppState;
use nuanxin_domain::values::parse_day;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overdue_visits))
        .routes(routes!(due_visits))
        .routes(routes!(coverage_gaps))
}

/// The parameters of the overdue list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverdueParams {
    /// The day asked; today by default.
    #[param(schema_with = fields::day)]
    pub on: Option<String>,
    #[param(value_type = Option<Role>)]
    pub role: Option<String>,
    /// Only this contact's items.
    #[param(value_type = Option<Uuid>)]
    pub contact_id: Option<String>,
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
    /// `json` (default: a page) or `xlsx` (the whole list, up to 100,000
    /// rows, as an Excel workbook; `limit` and `cursor` do not apply).
    #[param(inline)]
    pub format: Option<ListFormat>,
}

/// The parameters of the due list: those of the overdue list and how many
/// days ahead to look.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DueParams {
    /// The day asked; today by default.
    #[param(schema_with = fields::day)]
    pub on: Option<String>,
    /// Days ahead of `on` (default 7).
    #[param(minimum = 0, maximum = 366)]
    pub within_days: Option<u32>,
    #[param(value_type = Option<Role>)]
    pub role: Option<String>,
    /// Only this contact's items.
    #[param(value_type = Option<Uuid>)]
    pub contact_id: Option<String>,
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
}

impl From<OverdueParams> for DueParams {
    fn from(p: OverdueParams) -> Self {
        Self {
            on: p.on,
            within_days: None,
            role: p.role,
            contact_id: p.contact_id,
            village_code_prefix: p.village_code_prefix,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DueList {
    pub items: Vec<DueItem>,
    pub next_cursor: Option<String>,
}

/// Builds the schedule question from the parameters (the prefix is set
/// by `Reads::due`, within the caller's scope).
fn due_query(
    p: &DueParams,
    page: &Page,
    today: NaiveDate,
    overdue_only: bool,
) -> Result<DueQuery, ApiError> {
    let on = match &p.on {
        None => today,
        Some(s) => parse_day(s).map_err(|_| bad("on"))?,
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
    Ok(DueQuery {
        on,
        due_until,
        village_code_prefix: String::new(),
        role: p
            .role
            .as_deref()
            .map(|r| Role::parse(r).map_err(|_| bad("role")))
            .transpose()?,
        contact_id: p
            .contact_id
            .as_deref()
            .map(|c| IdCursor::decode(c).ok_or_else(|| bad("contact_id")))
            .transpose()?,
        after: page.after(DueListCursor::decode)?,
        limit: page.limit(),
    })
}

async fn due_list(
    state: &AppState,
    caller: &Caller,
    page: Page,
    params: DueParams,
    overdue_only: bool,
) -> Result<DueList, ApiError> {
    let q = due_query(&params, &page, state.reads().today(), overdue_only)?;
    let items = state
        .reads()
        .due(&caller.0, params.village_code_prefix.as_deref(), q)
        .await?;
    let next_cursor = page.next_cursor(&items, |i| {
        DueCursor {
            due_on: i.due_on,
            family_id: i.family_id.to_string(),
            role: i.role.clone(),
        }
        .encode()
    });
    Ok(DueList { items, next_cursor })
}

#[utoipa::path(get, path = "/api/v1/overdue-visits", tag = "schedule",
    params(OverdueParams, PageParams<DueListCursor>),
    responses((status = 200, description = "A page of the list (JSON), or the whole list \
            (`format=xlsx`)",
        content((DueList = "application/json"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))))]
/// Visits overdue on `on` (open cases, roles with a contact), oldest due first.
pub async fn overdue_visits(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params }: ListQuery<OverdueParams>,
) -> Result<Response, ApiError> {
    if params.format != Some(ListFormat::Xlsx) {
        return Ok(Json(overdue_list(&state, &caller, page, params).await?).into_response());
    }
    let whole = Page {
        limit: Some(sheets::FETCH),
        cursor: None,
    };
    let asked = params.village_code_prefix.clone();
    let on = match &params.on {
        None => state.reads().today(),
        Some(s) => parse_day(s).map_err(|_| bad("on"))?,
    };
    let info = [
        ("区划代码前缀", sheets::or_all(asked.as_deref())),
        (
            "联系人岗位",
            match params.role.as_deref() {
                Some("village") => "村级联系人".to_owned(),
                Some("township") => "乡镇联系人".to_owned(),
                other => sheets::or_all(other),
            },
        ),
        ("联系人编号", sheets::or_all(params.contact_id.as_deref())),
    ];
    let list = overdue_list(&state, &caller, whole, params).await?;
    sheets::check_rows(list.items.len())?;
    let mut lines = vec![("日期", on.to_string())];
    lines.extend(info);
    let about = sheets::about(&state, "逾期走访", lines);
    let prefix = sheets::prefix_of(&caller.0, asked.as_deref());
    sheets::download(
        nuanxin_infra::sheets::overdue_list(&list.items, &about),
        &format!("overdue-visits-{prefix}-{on}.xlsx"),
    )
}

/// The overdue list (a page of it) as the JSON answers it.
pub async fn overdue_list(
    state: &AppState,
    caller: &Caller,
    page: Page,
    params: OverdueParams,
) -> Result<DueList, ApiError> {
    due_list(state, caller, page, params.into(), true).await
}

#[utoipa::path(get, path = "/api/v1/due-visits", tag = "schedule",
    params(DueParams, PageParams<DueListCursor>), responses((status = 200, body = DueList)))]
/// Visits due on or before `on + within_days`, overdue ones included and marked.
pub async fn due_visits(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params }: ListQuery<DueParams>,
) -> Result<Json<DueList>, ApiError> {
    Ok(Json(due_list(&state, &caller, page, params, false).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GapParams {
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
    /// `json` (default: a page) or `xlsx` (the whole list, up to 100,000
    /// rows, as an Excel workbook; `limit` and `cursor` do not apply).
    #[param(inline)]
    pub format: Option<ListFormat>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GapList {
    pub items: Vec<CoverageGap>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/coverage-gaps", tag = "schedule",
    params(GapParams, PageParams<IdCursor>),
    responses((status = 200, description = "A page of the list (JSON), or the whole list \
            (`format=xlsx`)",
        content((GapList = "application/json"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))))]
/// Open families missing a contact for a role (双岗 coverage gaps).
pub async fn coverage_gaps(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params }: ListQuery<GapParams>,
) -> Result<Response, ApiError> {
    if params.format != Some(ListFormat::Xlsx) {
        return Ok(Json(gap_list(&state, &caller, page, params).await?).into_response());
    }
    let whole = Page {
        limit: Some(sheets::FETCH),
        cursor: None,
    };
    let asked = params.village_code_prefix.clone();
    let list = gap_list(&state, &caller, whole, params).await?;
    sheets::check_rows(list.items.len())?;
    let about = sheets::about(
        &state,
        "联系人空缺",
        vec![("区划代码前缀", sheets::or_all(asked.as_deref()))],
    );
    let prefix = sheets::prefix_of(&caller.0, asked.as_deref());
    sheets::download(
        nuanxin_infra::sheets::coverage_gaps(&list.items, &about),
        &format!("coverage-gaps-{prefix}-{}.xlsx", state.reads().today()),
    )
}

/// The coverage gaps (a page of them) as the JSON answers them.
pub async fn gap_list(
    state: &AppState,
    caller: &Caller,
    page: Page,
    params: GapParams,
) -> Result<GapList, ApiError> {
    let after = page.after(IdCursor::decode)?;
    let items = state
        .reads()
        .coverage_gaps(
            &caller.0,
            params.village_code_prefix.as_deref(),
            after,
            page.limit(),
        )
        .await?;
    let next_cursor = page.next_cursor(&items, |i| i.family_id.to_string());
    Ok(GapList { items, next_cursor })
}
