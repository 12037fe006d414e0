//! The admin's pages: users within the admin's scope ([`users`]: list,
//! create, set a password, disable) and the access log ([`access_log`]).
//! Every change goes through the API's own handler (`routes::users`), so
//! the checks are the API's: the new user's scope within the admin's, a
//! login used once, no disabling yourself. Other roles get a 403 page.

mod access_log;
mod users;

use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::session::WebUser;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/{id}", get(users::detail))
        .route("/admin/users/{id}/password", post(users::set_password))
        .route("/admin/users/{id}/disable", post(users::disable))
        .route("/admin/access-log", get(access_log::show))
}

/// The 403 page, unless the user is an admin.
fn refused_unless_admin(who: &WebUser) -> Option<Response> {
    (!who.is_admin()).then(|| super::supervisor::forbidden(who))
}
