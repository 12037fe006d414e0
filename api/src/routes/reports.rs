//! `/api/v1/reports/summary`: the period report of a jurisdiction as known
//! at an instant, as JSON, CSV or XLSX (`nuanxin_infra::reports` computes
//! and renders it; see docs/reports.md).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use nuanxin_infra::reports;
use nuanxin_projections::summary::SummaryReport;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::activities::query_period;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Query};
use crate::openapi::fields;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(summary))
}

/// The media type of an XLSX workbook.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// How the report is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
    Xlsx,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// First day; 1 January of this year by default.
    #[param(schema_with = fields::day)]
    pub from: Option<String>,
    /// Last day (on or after `from`, at most ten years later); today by default.
    #[param(schema_with = fields::day)]
    pub to: Option<String>,
    /// Your scope by default.
    #[param(schema_with = fields::prefix)]
    pub village_code_prefix: Option<String>,
    /// Count only what was recorded by then (now by default).
    #[param(schema_with = fields::instant)]
    pub known_at: Option<String>,
    /// `json` (default), `csv` (UTF-8 with a byte-order mark) or `xlsx`.
    #[param(inline)]
    pub format: Option<ReportFormat>,
}

#[utoipa::path(get, path = "/api/v1/reports/summary", tag = "reports", params(SummaryParams),
    responses(
        (status = 200, description = "The report: one row per child jurisdiction one level \
            down, then the total row (`\"total\": true`)",
            content((SummaryReport = "application/json"),
                (String = "text/csv"),
                (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, description = "The prefix lies outside your scope", body = Problem)))]
/// The period report of a jurisdiction (families, dual-contact coverage,
/// visits, visit obligations met on time, overdue items, emergencies,
/// assistance, elderly care, insurance, activities, inspections), as known
/// at an instant: the same `known_at` gives the same report, byte for
/// byte, whenever it is asked.
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<SummaryParams>,
) -> Result<Response, ApiError> {
    let (from, to, known_at) = query_period(
        state.reads().today(),
        &params.from,
        &params.to,
        &params.known_at,
    )?;
    let report = state
        .reads()
        .report_summary(
            &caller.0,
            params.village_code_prefix.as_deref(),
            from,
            to,
            known_at,
        )
        .await?
        .ok_or_else(|| ApiError::NotFound("that jurisdiction is outside your scope".into()))?;
    let name = |ext: &str| {
        let prefix = if report.village_code_prefix.is_empty() {
            "all"
        } else {
            &report.village_code_prefix
        };
        format!(
            "attachment; filename=\"report-{prefix}-{}-{}.{ext}\"",
            report.from, report.to
        )
    };
    let (body, media, disposition) = match params.format.unwrap_or_default() {
        ReportFormat::Json => return Ok(Json(report).into_response()),
        ReportFormat::Csv => (
            reports::to_csv(&report),
            "text/csv; charset=utf-8",
            name("csv"),
        ),
        ReportFormat::Xlsx => (
            reports::to_xlsx(&report).map_err(|e| ApiError::Internal(Box::new(e)))?,
            XLSX,
            name("xlsx"),
        ),
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
