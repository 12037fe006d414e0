//! `/api/v1/families`: registering a family, the case list and the case
//! file (current or as of an instant). Care actions on a registered family
//! are in [`super::care_actions`], its history in [`super::audit`]. Reads go
//! through `Reads`, which limits them to the caller's scope (outside it:
//! 404) and writes the access log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(value_type = Option<CaseStatus>)]
    pub status: Option<String>,
    pub key_person: Option<bool>,
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseList {
    pub items: Vec<CaseSummary>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/families", tag = "families", params(ListParams, PageParams<IdCursor>),
    responses((status = 200, body = CaseList)))]
/// Case summaries within the caller's scope, by family id.
pub async fn list(
    State(state): State<AppState>,
    Caller(user): Caller,
    ListQuery { page, params: q }: ListQuery<ListParams>,
) -> Result<Json<CaseList>, ApiError> {
    if let Some(s) = &q.status {
        if s != "open" && s != "closed" {
            return Err(ApiError::BadRequest("status must be open or closed".into()));
        }
    }
    let filter = CaseListFilter {
        village_code_prefix: String::new(),
        status: q.status,
        key_person: q.key_person,
        uncovered: false,
        after: page.after(IdCursor::decode)?,
        limit: page.limit(),
    };
    let items = state
        .reads()
        .case_list(&user, q.village_code_prefix.as_deref(), filter)
        .await?;
    let next_cursor = page.next_cursor(&items, |i| i.id.to_string());
    Ok(Json(CaseList { items, next_cursor }))
}
