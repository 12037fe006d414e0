//! Operations endpoints: liveness, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The store answers; also says how many events the read models have yet
/// to reflect (normally 0: a lag that stays up means the projection worker
/// is failing — see the logs).
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.db().ping().await {
        let lag = state.projector().lag().await.unwrap_or(-1);
        (
            StatusCode::OK,
            Json(
                json!({"status": "ready", "store": state.db().kind(), "projection_lag_events": lag}),
            ),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "store": state.db().kind()})),
        )
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let head = nuanxin_infra::store::events::head_position(state.db())
        .await
        .unwrap_or(-1);
    let lag = state.projector().lag().await.unwrap_or(-1);
    let appends = state.appender().stats();
    let standby = state.core().standby();
    let (standby_reads, standby_fallbacks) = standby.map_or((0, 0), |s| s.counts());
    let body = state.metrics().render(&[
        (
            "nuanxin_leader",
            "1 if this server leads the background work (projection, recompute, scans, delivery).",
            i64::from(state.leadership().is_leader()),
        ),
        (
            "nuanxin_standby_staleness_ms",
            "Bound on the age of the standby's data in ms (-1: unknown or no standby).",
            standby
                .and_then(|s| s.staleness())
                .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        ),
        (
            "nuanxin_standby_reads",
            "Lists and histories answered by the standby (counter).",
            standby_reads as i64,
        ),
        (
            "nuanxin_standby_fallbacks",
            "Lists and histories sent to the primary because the standby lagged or was unreachable (counter).",
            standby_fallbacks as i64,
        ),
        (
            "nuanxin_append_batches",
            "Group-commit transactions written (counter).",
            appends.batches.load(std::sync::atomic::Ordering::Relaxed) as i64,
        ),
        (
            "nuanxin_append_jobs",
            "Events and access records written by group commit (counter).",
            appends.jobs.load(std::sync::atomic::Ordering::Relaxed) as i64,
        ),
        (
            "nuanxin_append_micros",
            "Microseconds spent writing group commits, begin to commit (counter).",
            appends.micros.load(std::sync::atomic::Ordering::Relaxed) as i64,
        ),
        (
            "nuanxin_event_log_head",
            "Position of the newest event in the log.",
            head,
        ),
        (
            "nuanxin_projection_lag_events",
            "Events the read models do not reflect yet (-1: unknown).",
            lag,
        ),
    ]);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}
