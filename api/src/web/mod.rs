//! The web application: server-rendered pages in Chinese (English on
//! request) served by `nuanxin serve` itself, for caseworkers on phones and
//! supervisors and admins on office PCs. No front-end build, no CDN: the
//! templates are compile-checked `maud` markup, the stylesheet is embedded.
//! The core flows are plain HTML forms.
//!
//! Pages read through the same `Reads` as the API (scope, masking, access
//! log) and record through the same `Commands` (role, scope, the case's
//! rules, idempotency, versions): the web adds no rule of its own.
//!
//! - [`session`]: sign-in sessions, page language, form tokens (CSRF).
//! - [`text`]: the catalogue of texts, one per language.
//! - [`layout`], [`form`]: the page shell, form fields and commands.
//! - [`auth`]: sign-in, sign-out, one's own password.
//! - [`work`], [`families`]: a caseworker's work today, the family list and
//!   case file with its timeline.
//! - [`forms`]: a form for every care action.
//! - [`import`]: importing a register (台账) from an XLSX or CSV file.
//! - [`supervisor`]: the jurisdiction dashboard, overdue and coverage-gap
//!   lists, alerts, reports, a case's audited history.
//! - [`admin`]: users and the access log.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod families;
pub mod form;
pub mod forms;
pub mod import;
pub mod layout;
pub mod session;
pub mod supervisor;
pub mod text;
pub mod work;

use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;
use session::WebUser;

/// Every page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/account", get(auth::account))
        .route("/account/password", post(auth::change_password))
        .route(assets::CSS_PATH, get(assets::css))
        .merge(work::router())
        .merge(families::router())
        .merge(forms::router())
        .merge(supervisor::router())
        .merge(admin::router())
        .merge(import::router())
}

/// `/`: a caseworker's work today; a supervisor's or admin's dashboard of
/// their jurisdiction.
async fn home(
    state: axum::extract::State<AppState>,
    who: WebUser,
    query: axum::extract::RawQuery,
) -> Response {
    if who.is_recorder() && !who.is_admin() {
        work::my_work(state, who, query).await
    } else {
        supervisor::dashboard(state, who, query).await
    }
}
