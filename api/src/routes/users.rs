//! `/api/v1/users` and `/api/v1/me`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nuanxin_domain::{Scope, UserRole};
use nuanxin_infra::users;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto::Fields;
use crate::error::{ApiError, Problem};
use crate::extract::{Body, Caller};
use crate::openapi::fields;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
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
