//! `POST /api/v1/families/{id}/erase`: erasing a family's personal data
//! (crypto-shredding, docs/privacy.md). Admins only; the case must be
//! closed. The erasure is an attributed event; the family's persons' keys
//! are deleted once it is durable.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use nuanxin_domain::events::ErasureReason;
use nuanxin_domain::FamilyCommand;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto::Fields;
use super::params::CommandHeaderParams;
use crate::error::{ApiError, Problem};
use crate::extract::{Body, Caller, CommandHeaders, Path};
use crate::openapi::fields;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(erase))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Why: `purpose_ended` (the case ended for good), `consent_withdrawn`
    /// or `retention_expired` (PIPL art. 47). A code, not free text: the
    /// erasure event must itself hold no personal data.
    #[schema(value_type = ErasureReason, example = "purpose_ended")]
    pub reason: String,
    /// The day of the erasure (default today); not before the closing.
    #[schema(schema_with = fields::day)]
    pub on: Option<String>,
}

impl EraseRequest {
    /// The command (its day `today` when none is given), or every field's
    /// error.
    pub fn into_command(
        self,
        action_id: Uuid,
        today: chrono::NaiveDate,
    ) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let reason = ErasureReason::parse(&self.reason);
        if reason.is_none() {
            f.push(
                "reason",
                "must be purpose_ended, consent_withdrawn or retention_expired",
            );
        }
        let on = f.opt_date("on", &self.on);
        match (reason, on) {
            (Some(reason), Some(on)) => Ok(FamilyCommand::EraseFamily {
                action_id,
                on: on.unwrap_or(today),
                reason,
            }),
            _ => Err(f.error()),
        }
    }
}

/// The answer to an erasure.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EraseResponse {
    /// The family's id.
    pub id: Uuid,
    /// The case version after the erasure.
    pub version: u64,
    /// The id of the `FamilyErased` action.
    pub action_id: Uuid,
    /// How many person keys were deleted (the family's, its members' and
    /// its emergency contacts').
    pub keys_erased: u64,
}

/// Erase the family's personal data.
///
/// Records an attributed `FamilyErased` event and deletes the keys of the
/// family's persons: from then on every read — case file, `as_of`,
/// history, exports, lists — shows `"[已删除]"` in place of names, ID
/// numbers, phones, the address and free text, while dates, counts and
/// the hash chain stay. Nothing more can be recorded for the family.
/// Admins only; the case must be closed first.
#[utoipa::path(post, path = "/api/v1/families/{id}/erase", tag = "families",
    request_body = EraseRequest, params(("id" = Uuid, Path), CommandHeaderParams),
    responses((status = 200, body = EraseResponse),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "The case is open, or the family is erased already", body = Problem),
        (status = 422, body = Problem)))]
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path(id): Path<Uuid>,
    body: Body<EraseRequest>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let hash = body.hash.clone();
    let command = body
        .value
        .into_command(Uuid::now_v7(), state.core().today())?;
    let req = super::care_actions::command_request(&caller, headers, id, hash);
    let (outcome, keys_erased) = state.commands().erase_command(command, &req).await?;
    let body = EraseResponse {
        id: outcome.family_id,
        version: outcome.version,
        action_id: outcome.action_id,
        keys_erased,
    };
    let mut response = (StatusCode::OK, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", outcome.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}
