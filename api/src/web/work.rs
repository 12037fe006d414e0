//! (being built)

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}

/// A caseworker's work today.
pub async fn my_work(
    _state: axum::extract::State<AppState>,
    who: super::session::WebUser,
    _query: axum::extract::RawQuery,
) -> axum::response::Response {
    super::layout::page(&who, who.t("nav.work"), "/", maud::html! {})
}
