//! (being built)

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}

/// The dashboard of the user's jurisdiction.
pub async fn dashboard(
    _state: axum::extract::State<AppState>,
    who: super::session::WebUser,
    _query: axum::extract::RawQuery,
) -> axum::response::Response {
    super::layout::page(&who, who.t("nav.dashboard"), "/", maud::html! {})
}
