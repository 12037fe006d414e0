//! `/api/v1/users` and `/api/v1/me`: creating and listing users, disabling
//! them and rotating their tokens. Users are never deleted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use nuanxin_domain::{Scope, Text, UserRole};
use nuanxin_infra::accounts;
use nuanxin_infra::users::{self, Refused, Secret};
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
        .routes(routes!(set_password))
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
    /// What the user signs in with to the web pages (default: `u-` and
    /// twelve hex digits).
    #[schema(schema_with = fields::opt_login)]
    pub login: Option<String>,
    /// A first password for the web pages (default: none, no web sign-in
    /// until an admin sets one).
    #[schema(schema_with = fields::opt_password)]
    pub password: Option<String>,
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
    /// What the user signs in with to the web pages.
    pub login: String,
    /// The bearer token. Shown only in this response; store it safely.
    pub token: String,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUser), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "The login is taken")))]
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
    if let Some(login) = &req.login {
        if !accounts::valid_login(login) {
            f.push("login", "must be 3 to 32 of a-z, 0-9, '.', '_', '-'");
        }
    }
    if let Some(problem) = req.password.as_deref().and_then(accounts::password_problem) {
        f.push("password", problem);
    }
    let (Some(name), Some(role), Some(scope), true) = (name, role, scope, f.is_empty()) else {
        return Err(f.error());
    };
    if !caller.0.scope.covers(&scope) {
        return Err(ApiError::Forbidden(
            "the new user's scope must lie within yours".into(),
        ));
    }
    let new = accounts::NewUser {
        name: name.as_str().to_owned(),
        role,
        scope,
        login: req.login,
        password: req.password.map(Secret::new),
        token: None,
    };
    let now = state.core().services().clock.now();
    let (user, login, token) = match accounts::create(state.db(), new, now).await {
        Ok(created) => created,
        Err(accounts::CreateError::LoginTaken) => {
            return Err(ApiError::Conflict("the login is taken".into()))
        }
        Err(accounts::CreateError::Store(e)) => return Err(e.into()),
        Err(accounts::CreateError::Other(e)) => return Err(ApiError::Internal(e.into())),
    };
    tracing::info!(new_user.id = %user.id, new_user.role = %user.role, "user created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: (&user).into(),
            login,
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
    /// What the user signs in with to the web pages.
    pub login: String,
    /// Whether the user has a password (may sign in to the web pages).
    pub has_password: bool,
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
            login: r.login.clone(),
            has_password: r.has_password,
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
        Ok((record, token)) => {
            tracing::info!(target_user.id = %id, by = %by, "token rotated");
            Ok((
                StatusCode::CREATED,
                Json(CreatedUser {
                    user: (&record.user).into(),
                    login: record.login,
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The new password.
    #[schema(schema_with = fields::password)]
    pub password: String,
    /// The current password: needed when users change their own (not when
    /// an admin sets another user's).
    #[schema(value_type = Option<String>)]
    pub current_password: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users",
    params(("id" = Uuid, Path)), request_body = PasswordRequest,
    responses((status = 204, description = "Set; the user's web sessions have ended"),
        (status = 403, body = Problem, description = "Not an admin, or the current password is wrong"),
        (status = 409, body = Problem, description = "The user is disabled")))]
/// Sets a user's password for the web pages: an admin for a user within
/// their scope, or users for themselves with their current password (if
/// they have one). Every
/// web session of the user ends; API tokens keep working.
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Body<PasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let req = body.value;
    if let Some(problem) = accounts::password_problem(&req.password) {
        return Err(ApiError::field("password", problem));
    }
    if id == caller.0.id {
        // Your own: with the current password, if you have one.
        let has_password = users::get(state.db(), id)
            .await?
            .is_some_and(|u| u.has_password);
        let current = Secret::new(req.current_password.unwrap_or_default());
        if has_password
            && !accounts::check_password(state.db(), id, &current)
                .await
                .map_err(|e| ApiError::Internal(e.into()))?
        {
            return Err(ApiError::Forbidden("the current password is wrong".into()));
        }
    } else {
        caller.require_admin()?;
        user_in_scope(&state, &caller, id).await?;
    }
    let core = state.core();
    let now = core.services().clock.now();
    let done = accounts::set_password(
        core.db(),
        core.tokens(),
        id,
        &Secret::new(req.password),
        now,
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    if !done {
        return match users::get(core.db(), id).await? {
            Some(_) => Err(ApiError::Conflict("the user is disabled".into())),
            None => Err(no_such_user()),
        };
    }
    tracing::info!(target_user.id = %id, by = %caller.0.id, "password set");
    Ok(StatusCode::NO_CONTENT)
}
