//! The pages supervisors watch their jurisdiction with (admins too; the
//! lists, alerts and a case's history serve caseworkers as well):
//!
//! - [`dashboard`]: the jurisdiction dashboard, drilling down one level at a
//!   time (`/?prefix=<code>`), from the period report's figures.
//! - [`lists`]: `/overdue` and `/coverage`, and their Excel workbooks.
//! - [`alerts`]: `/alerts`, the alert inbox, and acknowledging an alert.
//! - [`reports`]: `/reports`, the period report, and its CSV and XLSX.
//! - [`history`]: `/families/{id}/history`, a case's audited history, the
//!   case file as of a day, and its CSV.
//!
//! Every figure and list comes from the same read (or the same API handler)
//! as the JSON API answers with, so scope, masking and the access log are
//! the API's. None of these pages offers a record button.

mod alerts;
mod dashboard;
mod history;
pub(super) mod lists;
mod reports;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use super::layout::page;
use super::session::WebUser;
use super::text::{t, Lang};
use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/overdue", get(lists::overdue))
        .route("/overdue.xlsx", get(lists::overdue_xlsx))
        .route("/coverage", get(lists::coverage))
        .route("/coverage.xlsx", get(lists::coverage_xlsx))
        .route("/alerts", get(alerts::inbox))
        .route("/alerts/{id}/ack", post(alerts::acknowledge))
        .route("/reports", get(reports::show))
        .route("/reports/summary.csv", get(reports::csv))
        .route("/reports/summary.xlsx", get(reports::xlsx))
        .route("/families/{id}/history", get(history::show))
        .route("/families/{id}/history.csv", get(history::csv))
}

/// The dashboard of the user's jurisdiction (`/`, for supervisors and
/// admins).
pub async fn dashboard(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    dashboard::show(&state, &who, query.as_deref()).await
}

/// A page's query string (a malformed one reads as empty: every parameter
/// is then absent).
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` was sent at all (even blank).
    pub(super) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// A link to `path` with the parameters that have a value.
pub(super) fn link(path: &str, params: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .copied()
        .collect();
    if kept.is_empty() {
        return path.to_owned();
    }
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(&kept).unwrap_or_default()
    )
}

/// The caller of an API handler: the page's user.
pub(super) fn caller(who: &WebUser) -> Caller {
    Caller(who.user.clone())
}

/// A page in the shell saying what went wrong, with `status`.
fn problem_page(who: &WebUser, status: StatusCode, text: &str) -> Response {
    let lang = who.lang;
    let mut r = page(
        who,
        t(lang, "error.title"),
        "",
        html! {
            div.alert-box role="alert" { (text) }
            p { a href="/" { (t(lang, "shell.home")) } }
        },
    );
    *r.status_mut() = status;
    r
}

/// 404: unknown, or outside the user's jurisdiction (the same answer).
pub(super) fn not_found(who: &WebUser) -> Response {
    problem_page(who, StatusCode::NOT_FOUND, t(who.lang, "error.not_found"))
}

/// 403: the user's role may not use the page.
pub(super) fn forbidden(who: &WebUser) -> Response {
    problem_page(who, StatusCode::FORBIDDEN, t(who.lang, "error.forbidden"))
}

/// The page for an error of a read or an API handler.
pub(super) fn error_page(who: &WebUser, error: ApiError) -> Response {
    match error {
        ApiError::NotFound(_) => not_found(who),
        ApiError::Forbidden(_) => forbidden(who),
        e @ (ApiError::BadRequest(_) | ApiError::Validation(_)) => problem_page(
            who,
            StatusCode::BAD_REQUEST,
            &super::form::refusal(who.lang, &e),
        ),
        ApiError::Conflict(m) => problem_page(
            who,
            StatusCode::CONFLICT,
            &crate::i18n::message(&m, who.lang),
        ),
        other => {
            tracing::error!(error = %other, source = ?std::error::Error::source(&other),
                "a page failed");
            problem_page(
                who,
                StatusCode::INTERNAL_SERVER_ERROR,
                t(who.lang, "error.internal"),
            )
        }
    }
}

/// "First page" and "next page" links of a list paged by the API's cursor.
pub(super) fn pager(lang: Lang, first: Option<String>, next: Option<String>) -> Markup {
    html! {
        @if first.is_some() || next.is_some() {
            nav.pager aria-label=(t(lang, "supervisor.pages")) {
                @if let Some(first) = first {
                    a.button.secondary href=(first) { (t(lang, "supervisor.first_page")) }
                    " "
                }
                @if let Some(next) = next {
                    a.button.secondary href=(next) rel="next" { (t(lang, "supervisor.next_page")) }
                }
            }
        }
    }
}

/// A share 0–1 as a whole percentage.
pub(super) fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// A family's link text in lists without names (no personal data in
/// lists): its village code and the end of its id (ids are UUIDv7, whose
/// start is the time they were made: the end tells them apart).
pub(super) fn family_label(village_code: &str, id: uuid::Uuid) -> String {
    format!("{village_code} · {}", short_id(id))
}

/// The last eight hex digits of an id, enough to tell ids on a page apart.
pub(super) fn short_id(id: uuid::Uuid) -> String {
    let id = id.simple().to_string();
    id[id.len() - 8..].to_owned()
}
