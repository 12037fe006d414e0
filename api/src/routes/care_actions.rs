//! `/api/v1/families/{id}/…`: every care action on a registered family, as
//! a command. Each handler parses its body into a domain command (`dto`)
//! and hands it to [`run`], which checks the role, executes it exactly once
//! (`Commands::execute`: scope, `If-Match`, idempotency, the case's rules)
//! and shapes the answer. A family outside the caller's scope is answered
//! 404 so its existence does not leak.

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use nuanxin_domain::FamilyCommand;
use nuanxin_infra::CommandRequest;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto::*;
use super::params::CommandHeaderParams;
use crate::error::{ApiError, Problem};
use crate::extract::{Body, Caller, CommandHeaders, Path};
use crate::state::AppState;
use nuanxin_domain::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(member_status))
        .routes(routes!(assign_contact))
        .routes(routes!(release_contact))
        .routes(routes!(record_visit))
        .routes(routes!(set_emergency_contact))
        .routes(routes!(remove_emergency_contact))
        .routes(routes!(record_emergency))
        .routes(routes!(record_elderly_care))
        .routes(routes!(record_assistance))
        .routes(routes!(add_note))
        .routes(routes!(void_action))
        .routes(routes!(transfer))
        .routes(routes!(close))
        .routes(routes!(reopen))
        .routes(routes!(enrol_insurance))
        .routes(routes!(withdraw_insurance))
        .routes(routes!(file_claim))
        .routes(routes!(decide_claim))
}

/// Runs one command for `caller` and shapes the answer.
pub(crate) async fn run(
    state: &AppState,
    caller: &Caller,
    headers: CommandHeaders,
    family_id: Uuid,
    hash: String,
    command: FamilyCommand,
    created: StatusCode,
) -> Result<Response, ApiError> {
    let location = matches!(command, FamilyCommand::RegisterFamily { .. });
    caller.require_recorder()?;
    let req = command_request(caller, headers, family_id, hash);
    let result = state.commands().execute(command, &req).await;
    state
        .metrics()
        .command(result.is_ok(), result.as_ref().is_ok_and(|o| o.replayed));
    let outcome = result?;
    let body = CommandResponse {
        id: outcome.family_id,
        version: outcome.version,
        action_id: outcome.action_id,
    };
    let mut response = (created, Json(body)).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", outcome.version)) {
        h.insert(header::ETAG, v);
    }
    if location {
        if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/families/{}", outcome.family_id)) {
            h.insert(header::LOCATION, v);
        }
    }
    if outcome.replayed {
        h.insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// What a command of `caller` on `family_id` runs with: who records it,
/// their scope, the request's id, `If-Match`, idempotency key and hash.
pub(crate) fn command_request(
    caller: &Caller,
    headers: CommandHeaders,
    family_id: Uuid,
    hash: String,
) -> CommandRequest {
    let user = &caller.0;
    CommandRequest {
        family_id,
        recorder: user.recorder(),
        scope: user.scope.clone(),
        request_id: headers.request_id,
        expected_version: headers.if_match,
        idempotency_key: headers.idempotency_key,
        request_hash: Some(hash),
    }
}

/// A fresh action id (UUIDv7: ids sort by the time they were made).
pub(crate) fn new_action_id() -> Uuid {
    Uuid::now_v7()
}

macro_rules! command_handler {
    ($(#[$doc:meta])* $name:ident, $path:literal, $req:ty, $status:expr, |$body:ident, $action:ident $(, $extra:ident: $ety:ty)*| $make:expr) => {
        $(#[$doc])*
        pub async fn $name(
            State(state): State<AppState>,
            caller: Caller,
            headers: CommandHeaders,
            Path((id, $($extra),*)): Path<(Uuid, $($ety),*)>,
            body: Body<$req>,
        ) -> Result<Response, ApiError> {
            caller.require_recorder()?;
            let $action = new_action_id();
            let $body = body.value;
            let command = $make?;
            run(&state, &caller, headers, id, body.hash, command, $status).await
        }
    };
}

#[utoipa::path(post, path = "/api/v1/families/{id}/members/{member_id}/status", tag = "families",
    request_body = MemberStatusRequest, params(("id" = Uuid, Path), ("member_id" = Uuid, Path),
        CommandHeaderParams),
    responses((status = 200, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
/// Update a member's status (death, living alone, self-care, phone).
pub async fn member_status(
    State(state): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    Path((id, member_id)): Path<(Uuid, Uuid)>,
    body: Body<MemberStatusRequest>,
) -> Result<Response, ApiError> {
    caller.require_recorder()?;
    let command = body.value.into_command(new_action_id(), member_id)?;
    run(
        &state,
        &caller,
        headers,
        id,
        body.hash,
        command,
        StatusCode::OK,
    )
    .await
}

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/contacts", tag = "families",
        request_body = AssignContactRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 200, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Assign the village or township contact (replaces the current holder).
    assign_contact,
    "/families/{id}/contacts",
    AssignContactRequest,
    StatusCode::OK,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/contacts/{role}/release", tag = "families",
        request_body = ReleaseContactRequest, params(("id" = Uuid, Path), ("role" = Role, Path, description = "The contact's role"),
            CommandHeaderParams),
        responses((status = 200, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Release the contact holding a role.
    release_contact,
    "/families/{id}/contacts/{role}/release",
    ReleaseContactRequest,
    StatusCode::OK,
    |b, a, role: String| b.into_command(a, &role)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/visits", tag = "families",
        request_body = VisitRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Record a visit by the village or township contact.
    record_visit,
    "/families/{id}/visits",
    VisitRequest,
    StatusCode::CREATED,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/emergency-contacts", tag = "families",
        request_body = EmergencyContactRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Set an emergency contact (its id is the returned `action_id`).
    set_emergency_contact,
    "/families/{id}/emergency-contacts",
    EmergencyContactRequest,
    StatusCode::CREATED,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/emergency-contacts/{contact_id}/remove", tag = "families",
        request_body = ReasonRequest, params(("id" = Uuid, Path), ("contact_id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 200, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Remove an emergency contact.
    remove_emergency_contact,
    "/families/{id}/emergency-contacts/{contact_id}/remove",
    ReasonRequest,
    StatusCode::OK,
    |b, a, contact_id: Uuid| {
        let mut f = Fields::default();
        match f.text("reason", &b.reason) {
            Some(reason) => Ok(FamilyCommand::RemoveEmergencyContact {
                action_id: a,
                emergency_contact_id: contact_id,
                reason,
            }),
            None => Err(f.error()),
        }
    }
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/emergencies", tag = "families",
        request_body = EmergencyRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Record an emergency and how it was handled.
    record_emergency,
    "/families/{id}/emergencies",
    EmergencyRequest,
    StatusCode::CREATED,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/elderly-care", tag = "families",
        request_body = ElderlyCareRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Record an elderly-care service for a member.
    record_elderly_care,
    "/families/{id}/elderly-care",
    ElderlyCareRequest,
    StatusCode::CREATED,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/assistance", tag = "families",
        request_body = AssistanceRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Record assistance given (money in fen).
    record_assistance,
    "/families/{id}/assistance",
    AssistanceRequest,
    StatusCode::CREATED,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/notes", tag = "families",
        request_body = NoteRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Add a free-text note.
    add_note,
    "/families/{id}/notes",
    NoteRequest,
    StatusCode::CREATED,
    |b, a| {
        let mut f = Fields::default();
        match f.text("text", &b.text) {
            Some(text) => Ok(FamilyCommand::AddNote { action_id: a, text }),
            None => Err(f.error()),
        }
    }
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/voids", tag = "families",
        request_body = VoidRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Void an earlier action, with a reason.
    void_action,
    "/families/{id}/voids",
    VoidRequest,
    StatusCode::CREATED,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/transfer", tag = "families",
        request_body = TransferRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 200, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Transfer the family to another village (releases both contacts).
    transfer,
    "/families/{id}/transfer",
    TransferRequest,
    StatusCode::OK,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/close", tag = "families",
        request_body = CloseReopenRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 200, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Close the case.
    close,
    "/families/{id}/close",
    CloseReopenRequest,
    StatusCode::OK,
    |b, a| b.into_command(a, true)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/reopen", tag = "families",
        request_body = CloseReopenRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 200, body = CommandResponse), (status = 403, body = Problem),
            (status = 409, body = Problem)))]
    /// Reopen a closed case.
    reopen,
    "/families/{id}/reopen",
    CloseReopenRequest,
    StatusCode::OK,
    |b, a| b.into_command(a, false)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/insurance/enrolments", tag = "insurance",
        request_body = EnrolmentRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, description = "Enrolled; `action_id` is the enrolment's id", body = CommandResponse),
            (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
            (status = 422, description = "A field is invalid, or `consent` is missing: the cover is voluntary", body = Problem)))]
    /// Enrol a member in the care insurance for a policy year, with the
    /// family's consent (who explained the cover, when the family agreed).
    enrol_insurance,
    "/families/{id}/insurance/enrolments",
    EnrolmentRequest,
    StatusCode::CREATED,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/insurance/withdrawals", tag = "insurance",
        request_body = WithdrawalRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 200, body = CommandResponse), (status = 403, body = Problem), (status = 404, body = Problem),
            (status = 409, description = "Already withdrawn, or the case is closed", body = Problem),
            (status = 422, description = "A field is invalid", body = Problem)))]
    /// Withdraw an enrolment: the cover ends on `on`. Always possible.
    withdraw_insurance,
    "/families/{id}/insurance/withdrawals",
    WithdrawalRequest,
    StatusCode::OK,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/insurance/claims", tag = "insurance",
        request_body = ClaimRequest, params(("id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 201, description = "Filed; `action_id` is the claim's id", body = CommandResponse),
            (status = 403, body = Problem), (status = 404, body = Problem),
            (status = 409, description = "The cover was withdrawn before the occurrence, or a date is out of range", body = Problem),
            (status = 422, description = "An occurrence outside the policy year, or a field is invalid", body = Problem)))]
    /// File a claim on an enrolment.
    file_claim,
    "/families/{id}/insurance/claims",
    ClaimRequest,
    StatusCode::CREATED,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/insurance/claims/{claim_id}/decision", tag = "insurance",
        request_body = DecisionRequest, params(("id" = Uuid, Path), ("claim_id" = Uuid, Path),
            CommandHeaderParams),
        responses((status = 200, body = CommandResponse),
            (status = 403, body = Problem), (status = 404, description = "No such family or claim", body = Problem),
            (status = 409, description = "The claim is already decided", body = Problem),
            (status = 422, description = "More paid than claimed, or a field is invalid", body = Problem)))]
    /// Decide a claim: paid (an amount up to the claim) or rejected (a
    /// reason). Once per claim; void the decision to decide again.
    decide_claim,
    "/families/{id}/insurance/claims/{claim_id}/decision",
    DecisionRequest,
    StatusCode::OK,
    |b, a, claim_id: Uuid| b.into_command(a, claim_id)
);
