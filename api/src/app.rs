//! Building the application: open and migrate the store, bootstrap the
//! first admin, catch the read model up, and serve. Tests build it with
//! port 0 and read the port back.

use std::net::SocketAddr;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use nuanxin_domain::aggregate::CaseServices;
use nuanxin_infra::{users, Cases, Db, Settings};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::extract::REQUEST_ID;
use crate::routes;
use crate::state::AppState;

/// Opens the store named in `settings`, migrated and ready.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.database_url, settings.max_connections).await?;
    nuanxin_infra::migrate(&db).await?;
    Ok(db)
}

/// The case service over `db` with the settings' clock and policy.
pub fn cases(db: Db, settings: &Settings) -> Cases {
    let offset = chrono::FixedOffset::east_opt(settings.policy.timezone_offset_hours * 3600)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is valid"));
    let services = CaseServices::new(settings.clock.clone(), offset);
    Cases::new(db, services, std::sync::Arc::new(settings.policy.clone()))
}

/// The whole HTTP application over `state`.
pub fn router(state: AppState, body_limit: usize) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    Router::new()
        .nest(
            "/api/v1",
            routes::families::router().merge(routes::users::router()),
        )
        .merge(routes::ops::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(),
                    request.id = %id, user.id = tracing::field::Empty)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    state.metrics().request(response.status().as_u16());
    response
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = open_store(&settings).await?;
        if let Some(token) = &settings.bootstrap_token {
            if users::bootstrap(&db, token)
                .await
                .context("bootstrapping the admin")?
            {
                tracing::info!("created the bootstrap admin from NUANXIN_BOOTSTRAP_TOKEN");
            }
        }
        let cases = cases(db, &settings);
        let caught_up = cases
            .catch_up()
            .await
            .context("catching up the case files")?;
        if caught_up > 0 {
            tracing::info!(
                families = caught_up,
                "case files caught up from the event log"
            );
        }
        let state = AppState::new(cases);
        let listener = TcpListener::bind(&settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let router = router(state.clone(), settings.body_limit_bytes);
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then closes the store.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        self.state.db().close().await;
        Ok(())
    }
}
