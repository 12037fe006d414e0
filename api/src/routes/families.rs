//! `/api/v1/families`: every care action as a command, the case file and
//! the case list (the history is in [`super::audit`]). Role and scope are
//! checked here and in `Cases::execute`; a family outside the caller's
//! scope is answered 404 so its existence does not leak.

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::metadata::Recorder;
use nuanxin_domain::{FamilyCommand, Scope};
use nuanxin_infra::CommandRequest;
use nuanxin_projections::case_file::{self, CaseFileView, CaseListFilter, CaseSummary};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::audit;
use super::dto::*;
use crate::error::{ApiError, Problem};
use crate::extract::{Body, Caller, CommandHeaders, Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/families", post(register).get(list))
        .route("/families/{id}", get(case_file))
        .route(
            "/families/{id}/members/{member_id}/status",
            post(member_status),
        )
        .route("/families/{id}/contacts", post(assign_contact))
        .route(
            "/families/{id}/contacts/{role}/release",
            post(release_contact),
        )
        .route("/families/{id}/visits", post(record_visit))
        .route(
            "/families/{id}/emergency-contacts",
            post(set_emergency_contact),
        )
        .route(
            "/families/{id}/emergency-contacts/{contact_id}/remove",
            post(remove_emergency_contact),
        )
        .route("/families/{id}/emergencies", post(record_emergency))
        .route("/families/{id}/elderly-care", post(record_elderly_care))
        .route("/families/{id}/assistance", post(record_assistance))
        .route("/families/{id}/notes", post(add_note))
        .route("/families/{id}/voids", post(void_action))
        .route("/families/{id}/transfer", post(transfer))
        .route("/families/{id}/close", post(close))
        .route("/families/{id}/reopen", post(reopen))
}

/// Runs one command for `caller` and shapes the answer.
async fn run(
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
    let user = &caller.0;
    let req = CommandRequest {
        family_id,
        recorder: Recorder {
            id: user.id,
            name: user.name.clone(),
            role: user.role,
        },
        scope: user.scope.clone(),
        request_id: headers.request_id,
        expected_version: headers.if_match,
        idempotency_key: headers.idempotency_key,
        request_hash: Some(hash),
    };
    let result = state.cases().execute(command, &req).await;
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

fn new_action_id() -> Uuid {
    Uuid::now_v7()
}

#[utoipa::path(post, path = "/api/v1/families", tag = "families",
    request_body = RegisterFamilyRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Registered", body = CommandResponse,
            headers(("Location" = String, description = "The new case file"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
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
        ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResponse), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
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
    match run(
        &state,
        &caller,
        headers,
        id,
        body.hash,
        command,
        StatusCode::OK,
    )
    .await
    {
        Err(ApiError::Validation(e)) if e.iter().any(|f| f.field == "member_id") => {
            Err(ApiError::NotFound("no such member in this family".into()))
        }
        other => other,
    }
}

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/contacts", tag = "families",
        request_body = AssignContactRequest, params(("id" = Uuid, Path),
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 200, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
    /// Assign the village or township contact (replaces the current holder).
    assign_contact,
    "/families/{id}/contacts",
    AssignContactRequest,
    StatusCode::OK,
    |b, a| b.into_command(a)
);

command_handler!(
    #[utoipa::path(post, path = "/api/v1/families/{id}/contacts/{role}/release", tag = "families",
        request_body = ReleaseContactRequest, params(("id" = Uuid, Path), ("role" = String, Path),
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 200, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 201, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 201, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 200, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 201, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 201, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 201, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 201, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 201, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 200, body = CommandResponse), (status = 403, body = Problem),
            (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 200, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
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
            ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
        responses((status = 200, body = CommandResponse), (status = 404, body = Problem),
            (status = 409, body = Problem), (status = 422, body = Problem)))]
    /// Reopen a closed case.
    reopen,
    "/families/{id}/reopen",
    CloseReopenRequest,
    StatusCode::OK,
    |b, a| b.into_command(a, false)
);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CaseFileQuery {
    /// An RFC 3339 instant: the case file as it stood then.
    pub as_of: Option<String>,
}

/// Whether `case` is visible to `scope`.
fn visible(case: &FamilyCase, scope: &Scope) -> bool {
    case.village_code
        .as_ref()
        .is_some_and(|v| v.is_within(scope))
}

#[utoipa::path(get, path = "/api/v1/families/{id}", tag = "families",
    params(("id" = Uuid, Path), CaseFileQuery),
    responses((status = 200, body = CaseFileView), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
/// The case file: current, or as of an instant.
pub async fn case_file(
    State(state): State<AppState>,
    Caller(user): Caller,
    request_id: audit::RequestId,
    Path(id): Path<Uuid>,
    Query(q): Query<CaseFileQuery>,
) -> Result<Json<CaseFileView>, ApiError> {
    let cases = state.cases();
    let today = cases.services().today();
    // As of an instant: the family must lie in scope as it stands now, and
    // derived fields (key person, due dates) are computed for that day.
    let (version, case, on, endpoint) = match q.as_of {
        None => {
            let stored = cases.load(id).await?.ok_or_else(ApiError::not_found)?;
            if !visible(&stored.state, &user.scope) {
                return Err(ApiError::not_found());
            }
            (
                stored.version,
                stored.state,
                today,
                audit::endpoint::CASE_FILE,
            )
        }
        Some(as_of) => {
            let at: DateTime<Utc> = DateTime::parse_from_rfc3339(&as_of)
                .map_err(|_| ApiError::BadRequest("as_of must be an RFC 3339 instant".into()))?
                .with_timezone(&Utc);
            let (version, case) = audit::case_as_of(&state, id, at, &user.scope).await?;
            let then = at
                .with_timezone(&cases.services().offset)
                .date_naive()
                .min(today);
            (version, case, then, audit::endpoint::CASE_FILE_AS_OF)
        }
    };
    let view = CaseFileView::build(id, version, &case, on, &cases.policy())
        .ok_or_else(ApiError::not_found)?;
    audit::record_read(&state, &user, id, endpoint, &request_id).await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` or `closed`.
    pub status: Option<String>,
    pub key_person: Option<bool>,
    pub village_code_prefix: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseList {
    pub items: Vec<CaseSummary>,
    pub next_cursor: Option<String>,
}

/// The narrower of the caller's scope and the asked prefix, or `None` when
/// they do not overlap.
pub fn effective_prefix(scope: &Scope, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(asked) = asked else {
        return Ok(Some(scope.as_str().to_owned()));
    };
    if asked.len() > 12 || !asked.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(
            "village_code_prefix must be up to 12 digits".into(),
        ));
    }
    Ok(if asked.starts_with(scope.as_str()) {
        Some(asked.to_owned())
    } else if scope.as_str().starts_with(asked) {
        Some(scope.as_str().to_owned())
    } else {
        None
    })
}

pub fn limit_of(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(50) {
        l @ 1..=500 => Ok(l),
        _ => Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        )),
    }
}

#[utoipa::path(get, path = "/api/v1/families", tag = "families", params(ListQuery),
    responses((status = 200, body = CaseList), (status = 400, body = Problem), (status = 401, body = Problem)))]
/// Case summaries within the caller's scope.
pub async fn list(
    State(state): State<AppState>,
    Caller(user): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<CaseList>, ApiError> {
    let limit = limit_of(q.limit)?;
    if let Some(s) = &q.status {
        if s != "open" && s != "closed" {
            return Err(ApiError::BadRequest("status must be open or closed".into()));
        }
    }
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<Uuid>()
                .map_err(|_| ApiError::BadRequest("cursor is invalid".into()))
        })
        .transpose()?;
    let Some(prefix) = effective_prefix(&user.scope, q.village_code_prefix.as_deref())? else {
        return Ok(Json(CaseList {
            items: vec![],
            next_cursor: None,
        }));
    };
    let filter = CaseListFilter {
        village_code_prefix: prefix,
        status: q.status,
        key_person: q.key_person,
        after,
        limit,
    };
    let today = state.cases().services().today();
    let items = case_file::list(state.db(), &filter, today).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|i| i.id.to_string()))
        .flatten();
    Ok(Json(CaseList { items, next_cursor }))
}
