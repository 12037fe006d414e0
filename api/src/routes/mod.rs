//! One router per resource. Each registers its handlers with `routes!`, so
//! a route and its OpenAPI operation are one registration and cannot drift
//! apart; [`api`] puts them together (and `crate::openapi` documents what it
//! holds).

pub mod activities;
pub mod alerts;
pub mod audit;
pub mod care_actions;
pub mod checkpoints;
pub mod dto;
pub mod families;
pub mod inspections;
pub mod ops;
pub mod params;
pub mod privacy;
pub mod reports;
pub mod schedule;
pub mod sheets;
pub mod users;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every `/api/v1` route with its OpenAPI operation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(families::router())
        .merge(care_actions::router())
        .merge(privacy::router())
        .merge(users::router())
        .merge(schedule::router())
        .merge(audit::router())
        .merge(alerts::router())
        .merge(checkpoints::router())
        .merge(activities::router())
        .merge(inspections::router())
        .merge(reports::router())
}
