//! `/api/v1/families`: registering a family, the case list and the case
//! file (current or as of an instant). Care actions on a registered family
//! are in [`super::care_actions`], its history in [`super::audit`]. Reads go
//! through `Reads`, which limits them to the caller's scope (outside it:
//! 404) and writes the access log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use nuanxin_projections::case_file::{CaseFileView, CaseListFilter, CaseSummary};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::care_actions::{new_action_id, run};
use super::dto::*;
use super::params::{CommandHeaderParams, Cursor, IdCursor, PageParams};
use super::sheets::{self, ListFormat};
use crate::error::{ApiError, Problem};
use crate::extract::{Body, Caller, CommandHeaders, ListQuery, Path, Query, RequestId};
use crate::openapi::fields;
use crate::state::AppState;
use nuanxin_domain::aggregate::CaseStatus;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, list))
        .routes(routes!(case_file))
}

#[utoipa::path(post, path = "/api/v1/families", tag = "families",
    request_body = RegisterFamilyRequest,
    params(CommandHeaderParams),
    responses(
        (status = 201, description = "Registered", body = CommandResponse,
            headers(("Location" = String, description = "The new case file"))),
        (status = 403, body = Problem), (status = 409, body = Problem)))]
/// Register a family.
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: Body<RegisterFamilyRequest>,
) -> Result<Response, ApiError> {
    caller.require_recorder()?;
    let command = body.value.into_command(new_action_id())?;
    // A retried registration (same Idempotency-Key) is answered with its
    // first family, whatever id is drawn here.
    let family_id = Uuid::now_v7();
    run(
        &state,
        &caller,
        headers,
        family_id,
        body.hash,
        command,
        StatusCode::CREATED,
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CaseFileQuery {
    /// An RFC 3339 instant: the case file as it stood then.
    #[param(schema_with = fields::instant)]
    pub as_of: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/families/{id}", tag = "families",
    params(("id" = Uuid, Path), CaseFileQuery),
    responses((status = 200, body = CaseFileView)))]
/// The case file: current, or as of an instant.
pub async fn case_file(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    Path(id): Path<Uuid>,
    Query(q): Query<CaseFileQuery>,
) -> Result<Json<CaseFileView>, ApiError> {
    let as_of = q
        .as_of
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::BadRequest("as_of must be an RFC 3339 instant".into()))
        })
        .transpose()?;
    let view = state
        .reads()
        .case_file(&caller.viewer(&request_id), id, as_of)
        .await?;
    Ok(Json(view))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(value_type = Option<CaseStatus>)]
    pub status: Option<String>,
    pub key_person: Option<bool>,
    /// Only families missing a contact for a role (`true`); `false` or
    /// absent: every family.
    pub uncovered: Option<bool>,
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
    /// `json` (default: a page) or `xlsx` (the whole list, up to 100,000
    /// rows, as an Excel workbook; `limit` and `cursor` do not apply).
    #[param(inline)]
    pub format: Option<ListFormat>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseList {
    pub items: Vec<CaseSummary>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/families", tag = "families", params(ListParams, PageParams<IdCursor>),
    responses((status = 200, description = "A page of the list (JSON), or the whole list \
            (`format=xlsx`)",
        content((CaseList = "application/json"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))))]
/// Case summaries within the caller's scope, by family id.
pub async fn list(
    State(state): State<AppState>,
    Caller(user): Caller,
    ListQuery { page, params: q }: ListQuery<ListParams>,
) -> Result<Response, ApiError> {
    if let Some(s) = &q.status {
        if s != "open" && s != "closed" {
            return Err(ApiError::BadRequest("status must be open or closed".into()));
        }
    }
    let mut filter = CaseListFilter {
        village_code_prefix: String::new(),
        status: q.status.clone(),
        key_person: q.key_person,
        uncovered: q.uncovered.unwrap_or(false),
        after: None,
        limit: sheets::FETCH,
    };
    let asked = q.village_code_prefix.as_deref();
    if q.format == Some(ListFormat::Xlsx) {
        let items = state.reads().case_list(&user, asked, filter).await?;
        sheets::check_rows(items.len())?;
        let prefix = sheets::prefix_of(&user, asked);
        let yes_no = |b: Option<bool>, yes: &str, no: &str| match b {
            Some(true) => yes.to_owned(),
            Some(false) => no.to_owned(),
            None => "全部".to_owned(),
        };
        let status = match q.status.as_deref() {
            Some("open") => "在册".to_owned(),
            Some("closed") => "已结案".to_owned(),
            _ => "全部".to_owned(),
        };
        let about = sheets::about(
            &state,
            "家庭列表",
            vec![
                ("区划代码前缀", sheets::or_all(asked)),
                ("状态", status),
                ("重点人员", yes_no(q.key_person, "有重点人员", "无重点人员")),
                (
                    "缺少联系人",
                    yes_no(q.uncovered.filter(|u| *u), "只含缺少联系人的家庭", ""),
                ),
            ],
        );
        let name = format!("families-{prefix}-{}.xlsx", state.reads().today());
        return sheets::download(nuanxin_infra::sheets::case_list(&items, &about), &name);
    }
    filter.after = page.after(IdCursor::decode)?;
    filter.limit = page.limit();
    let items = state.reads().case_list(&user, asked, filter).await?;
    let next_cursor = page.next_cursor(&items, |i| i.id.to_string());
    Ok(Json(CaseList { items, next_cursor }).into_response())
}
