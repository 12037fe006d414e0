//! `format=xlsx` of the lists (`GET /api/v1/families`, `/overdue-visits`,
//! `/coverage-gaps`): the whole filtered list as one XLSX workbook
//! (`nuanxin_infra::sheets` renders it), up to
//! [`nuanxin_infra::sheets::MAX_ROWS`] rows; `limit` and `cursor` do not
//! apply. The scope and the filters are the JSON list's, and so is what a
//! row holds (no member's name or ID number), so, like the JSON list, a
//! download is not written to the access log.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use nuanxin_infra::sheets::{About, MAX_ROWS};
use nuanxin_infra::users::User;
use serde::Deserialize;
use utoipa::ToSchema;

use super::reports::XLSX;
use crate::error::ApiError;
use crate::state::AppState;

/// How a list is answered: a JSON page (default) or the whole list as an
/// XLSX workbook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    #[default]
    Json,
    Xlsx,
}

/// How many rows a download asks the store for: one more than it may hold,
/// to tell a list that is too long.
pub const FETCH: u32 = MAX_ROWS as u32 + 1;

/// Refuses a list longer than a workbook may hold.
pub fn check_rows(rows: usize) -> Result<(), ApiError> {
    if rows > MAX_ROWS {
        return Err(ApiError::BadRequest(format!(
            "the list has more than {MAX_ROWS} rows: narrow it with `village_code_prefix`"
        )));
    }
    Ok(())
}

/// The jurisdiction a list of `user` asked about `asked` covers, for the
/// file name and the `说明` sheet: the narrower of the two, `all` for
/// everything.
pub fn prefix_of(user: &User, asked: Option<&str>) -> String {
    let prefix = user
        .scope
        .effective_prefix(asked)
        .ok()
        .flatten()
        .or_else(|| asked.map(str::to_owned))
        .unwrap_or_default();
    if prefix.is_empty() {
        "all".to_owned()
    } else {
        prefix
    }
}

/// The `说明` sheet of a list: its title, the parameters, and when it was
/// exported (local time).
pub fn about(state: &AppState, title: &str, mut params: Vec<(&str, String)>) -> About {
    let services = state.core().services();
    let now = services.clock.now();
    params.push((
        "导出时间",
        now.with_timezone(&services.offset)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
    ));
    About {
        title: format!("暖心 · {title}"),
        created: now,
        params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

/// `Some(v)` or 全部.
pub fn or_all(v: Option<&str>) -> String {
    v.filter(|v| !v.is_empty()).unwrap_or("全部").to_owned()
}

/// The workbook as a download named `name` (which holds no personal data:
/// the list, a village-code prefix and a day); a workbook that could not
/// be written is a 500.
pub fn download<E>(workbook: Result<Vec<u8>, E>, name: &str) -> Result<Response, ApiError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let body = workbook.map_err(|e| ApiError::Internal(Box::new(e)))?;
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(XLSX));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
