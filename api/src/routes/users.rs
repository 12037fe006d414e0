//! `/api/v1/users` and `/api/v1/me`: creating and listing users, disabling
//! them and rotating their tokens. Users are never deleted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use nuanxin_domain::{Scope, Text, UserRole};
use nuanxin_infra::users::{self, Refused};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto::Fields;
use super::params::{Cursor, IdCursor, PageParams};
use crate::error::{ApiError, Problem};
use crate::extract::{Body, Caller, ListQuery, Path};
use crate::openapi::fields::{self, NOTE_MAX_CHARS};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(disable_user))
        .routes(routes!(rotate_token))
        .routes(routes!(me))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(schema_with = fields::name)]
    pub name: String,
    #[schema(value_type = UserRole)]
    pub role: String,
    /// Within your own scope (otherwise 403).
    #[schema(schema_with = fields::scope)]
    pub scope: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = UserRole)]
    pub role: String,
    pub scope: String,
}

impl From<&users::User> for UserView {
    fn from(u: &users::User) -> Self {
        Self {
            id: u.id,
            name: u.name.clone(),
            role: u.role.as_str().into(),
            scope: u.scope.as_str().into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: UserView,
    /// The bearer token. Shown only in this response; store it safely.
    pub token: String,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUser), (status = 403, body = Problem)))]
/// Create a user (admin only); the answer holds its token, once.
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<CreateUserRequest>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    caller.require_admin()?;
    let req = body.value;
    let mut f = Fields::default();
    let name = f.name("name", &req.name);
    let role = f.value("role", UserRole::parse(&req.role));
    let scope = f.value("scope", Scope::parse(&req.scope));
    let (Some(name), Some(role), Some(scope)) = (name, role, scope) else {
        return Err(f.error());
    };
    if !caller.0.scope.covers(&scope) {
        return Err(ApiError::Forbidden(
            "the new user's scope must lie within yours".into(),
        ));
    }
    let (user, token) = users::create(state.db(), name.as_str(), role, &scope, None).await?;
    tracing::info!(new_user.id = %user.id, new_user.role = %user.role, "user created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: (&user).into(),
            token: token.expose().to_owned(),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/me", tag = "users",
    responses((status = 200, body = UserView)))]
/// Who the token belongs to.
pub async fn me(Caller(user): Caller) -> Json<UserView> {
    Json((&user).into())
}

/// The list takes only `limit` and `cursor`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {}

/// A user as an admin sees them (never a token or its hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserItem {
    #[serde(flatten)]
    pub user: UserView,
    /// Whether the user is disabled (their token is refused).
    pub disabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Who disabled the user: an admin's user id, or `os:<name>` (the
    /// command line).
    pub disabled_by: Option<String>,
    /// The reason the admin gave.
    pub disabled_reason: Option<String>,
    /// When the user's current token was issued by a rotation (`null`: the
    /// token they were created with).
    pub token_rotated_at: Option<DateTime<Utc>>,
    /// Who rotated it: the user's own id, an admin's user id (the admin saw
    /// the new token once), or `os:<name>` (the command line).
    pub token_rotated_by: Option<String>,
    /// When the user last made a request, to within 5 minutes (written at
    /// most once per 5 minutes per user and server process); `null` if
    /// never seen since last-seen times are kept.
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl From<&users::UserRecord> for UserItem {
    fn from(r: &users::UserRecord) -> Self {
        Self {
            user: (&r.user).into(),
            disabled: r.disabled_at.is_some(),
            disabled_at: r.disabled_at,
            disabled_by: r.disabled_by.clone(),
            disabled_reason: r.disabled_reason.clone(),
            token_rotated_at: r.token_rotated_at,
            token_rotated_by: r.token_rotated_by.clone(),
            last_seen_at: r.last_seen_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserItem>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageParams<IdCursor>),
    responses((status = 200, body = UserList), (status = 403, body = Problem)))]
/// Users whose scope lies within the caller's (admin only), disabled ones
/// too, in the order of their ids.
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params: _ }: ListQuery<UserListQuery>,
) -> Result<Json<UserList>, ApiError> {
    caller.require_admin()?;
    let after = page.after(IdCursor::decode)?;
    let found = users::list(state.db(), &caller.0.scope, after, page.limit()).await?;
    let next_cursor = page.next_cursor(&found, |u| u.user.id.to_string());
    Ok(Json(UserList {
        items: found.iter().map(UserItem::from).collect(),
        next_cursor,
    }))
}

fn no_such_user() -> ApiError {
    ApiError::NotFound("no such user in your scope".into())
}

/// The user `id` if it lies within the caller's scope (else 404: a user
/// outside it is not revealed).
async fn user_in_scope(
    state: &AppState,
    caller: &Caller,
    id: uuid::Uuid,
) -> Result<users::UserRecord, ApiError> {
    match users::get(state.db(), id).await? {
        Some(u) if caller.0.scope.covers(&u.user.scope) => Ok(u),
        _ => Err(no_such_user()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    /// Why the user is disabled (kept with the user, shown in the list).
    #[schema(schema_with = fields::note)]
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users",
    params(("id" = Uuid, Path)), request_body = DisableRequest,
    responses((status = 200, body = UserItem), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "The user is already disabled, or is you")))]
/// Disables a user within the caller's scope (admin only): their token is
/// refused from the very next request on, on every server process (other
/// processes within milliseconds: see the API documentation). There is no
/// deleting: what the user recorded keeps their name. An admin cannot
/// disable themselves.
pub async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Body<DisableRequest>,
) -> Result<Json<UserItem>, ApiError> {
    caller.require_admin()?;
    let target = user_in_scope(&state, &caller, id).await?;
    let reason = Text::parse_at_most(&body.value.reason, NOTE_MAX_CHARS)
        .map_err(|e| ApiError::field("reason", e.0))?;
    if target.user.id == caller.0.id {
        return Err(ApiError::Conflict("you cannot disable yourself".into()));
    }
    let core = state.core();
    let now = core.services().clock.now();
    let by = caller.0.id.to_string();
    match users::disable(core.db(), core.tokens(), id, now, &by, reason.as_str()).await? {
        Ok(record) => {
            tracing::info!(target_user.id = %id, by = %by, "user disabled");
            Ok(Json((&record).into()))
        }
        Err(Refused::Disabled) => Err(ApiError::Conflict("the user is already disabled".into())),
        Err(Refused::NotFound) => Err(no_such_user()),
    }
}

#[utoipa::path(post, path = "/api/v1/users/{id}/tokens", tag = "users",
    params(("id" = Uuid, Path)),
    responses((status = 201, body = CreatedUser), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "The user is disabled")))]
/// Gives a user a new token (an admin for a user within their scope, or any
/// user for themselves). The answer holds it, once; the old token is
/// refused from the very next request on, as for disabling. A disabled
/// user gets no token.
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    if id != caller.0.id {
        caller.require_admin()?;
        user_in_scope(&state, &caller, id).await?;
    }
    let core = state.core();
    let now = core.services().clock.now();
    let by = caller.0.id.to_string();
    match users::rotate_token(core.db(), core.tokens(), id, now, &by).await? {
        Ok((user, token)) => {
            tracing::info!(target_user.id = %id, by = %by, "token rotated");
            Ok((
                StatusCode::CREATED,
                Json(CreatedUser {
                    user: (&user).into(),
                    token: token.expose().to_owned(),
                }),
            ))
        }
        Err(Refused::Disabled) => Err(ApiError::Conflict(
            "the user is disabled and gets no token".into(),
        )),
        Err(Refused::NotFound) => Err(no_such_user()),
    }
}
