//! Building the application: open and migrate the store, bootstrap the
//! first admin, catch the read model up, and serve. Tests build it with
//! port 0 and read the port back.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use nuanxin_infra::audit::checkpoint::Checkpointer;
use nuanxin_infra::{users, Nuanxin, Projector, Settings};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::extract::{Caller, REQUEST_ID};
use crate::routes;
use crate::state::AppState;

/// The whole HTTP application over `state`: bodies up to `body_limit`
/// bytes, each to be read within `body_timeout`.
pub fn router(state: AppState, body_limit: usize, body_timeout: std::time::Duration) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    let (api, _) = routes::api().split_for_parts();
    let routes = api
        .merge(routes::ops::router())
        .merge(crate::web::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(data_age))
        .layer(middleware::from_fn_with_state(
            body_timeout,
            crate::serve::body_deadline,
        ))
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
        .layer(middleware::from_fn(drop_odd_request_id))
        .with_state(state);
    // Outside the routes, where axum has already set `Allow`.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::map_response(allow_only_on_405))
        .layer(middleware::from_fn(crate::i18n::localize))
}

/// A known path asked with a method it does not take: 405 as problem+json
/// (axum adds the `Allow` header). Under `/api/v1` only after the caller is
/// authenticated, so that an anonymous client learns nothing about which
/// methods exist (401 instead).
async fn method_not_allowed(State(state): State<AppState>, req: Request) -> ApiError {
    let path = req.uri().path();
    if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
        let (mut parts, _) = req.into_parts();
        if let Err(refused) = Caller::from_request_parts(&mut parts, &state).await {
            return refused;
        }
    }
    ApiError::MethodNotAllowed
}

/// axum puts `Allow` on whatever the 405 fallback answers; a 401 from it
/// must not list the methods.
async fn allow_only_on_405(mut response: Response) -> Response {
    if response.status() != axum::http::StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().remove(axum::http::header::ALLOW);
    }
    response
}

/// Header of an answer read from the streaming standby: how old its data
/// may be, in milliseconds (0 when the primary answered).
pub const DATA_AGE: &str = "x-nuanxin-data-age-ms";
/// Header naming where a list or history was read: `standby` or `primary`.
pub const READ_FROM: &str = "x-nuanxin-read-from";

/// With a standby configured, says where a list or history was read from
/// and how old its data may be.
async fn data_age(req: Request, next: Next) -> Response {
    use nuanxin_infra::standby::{observe, Source};
    let (mut response, source) = observe(next.run(req)).await;
    let (from, age) = match source {
        None => return response,
        Some(Source::Primary) => ("primary", 0),
        Some(Source::Standby { age_ms }) => ("standby", age_ms),
    };
    let headers = response.headers_mut();
    headers.insert(READ_FROM, axum::http::HeaderValue::from_static(from));
    headers.insert(DATA_AGE, axum::http::HeaderValue::from(age));
    response
}

/// A client's `X-Request-Id` ends up in event metadata and logs: keep it
/// only when it is a short token, otherwise a fresh id is made.
async fn drop_odd_request_id(mut req: Request, next: Next) -> Response {
    let odd = req.headers().get(REQUEST_ID).is_some_and(|v| {
        let b = v.as_bytes();
        b.is_empty()
            || b.len() > 64
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    });
    if odd {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    state.metrics().request(response.status().as_u16());
    response
}

/// Brings the read models up to the head of the log before serving; if
/// they cannot get there within a few seconds, the worker finishes the job.
async fn catch_up_at_start(projector: &Projector) -> anyhow::Result<usize> {
    let (events, settled) = projector
        .settle(std::time::Duration::from_secs(10))
        .await
        .context("catching up the read models")?;
    if !settled {
        tracing::warn!("read models still behind the log at start; the worker will catch up");
    }
    Ok(events)
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    alerts: nuanxin_infra::alerts::AlertConfig,
    /// The daily signed checkpoint, when configured.
    checkpoints: Option<Arc<Checkpointer>>,
    /// Whether this server leads the background work, and its campaign.
    leadership: nuanxin_infra::leader::Leadership,
    campaign: Option<tokio::task::JoinHandle<()>>,
    /// Stops the workers (and the campaign, also when dropped unused).
    stop: tokio::sync::watch::Sender<bool>,
    stopped: tokio::sync::watch::Receiver<bool>,
    http: nuanxin_infra::HttpLimits,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let app = Nuanxin::open(&settings).await?;
        let (token, password) = (&settings.bootstrap_token, &settings.bootstrap_password);
        if (token.is_some() || password.is_some())
            && users::bootstrap(app.db(), token.as_ref(), password.as_ref())
                .await
                .context("bootstrapping the admin")?
        {
            tracing::info!(
                "created the bootstrap admin (login admin) from NUANXIN_BOOTSTRAP_TOKEN / NUANXIN_BOOTSTRAP_PASSWORD"
            );
        }
        // Background work (projection, recompute, scans, delivery) runs on
        // one server of the database: campaign before anything else, so the
        // others know this one is here.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (leadership, campaign) =
            nuanxin_infra::leader::campaign(app.db(), stopped.clone()).await;
        nuanxin_infra::alerts::agree_on_webhooks(app.db(), &settings.alerts, leadership.session())
            .await?;
        if app
            .projector
            .adopt_policy(settings.policy_configured.then(|| settings.policy.clone()))
            .await
            .context("applying the visit policy")?
        {
            tracing::info!("visit policy changed since the last start");
        }
        // The leader brings the read models up to date; another server
        // leaves that to it rather than contend for the same rows.
        let caught_up = if leadership.is_leader() {
            let events = catch_up_at_start(&app.projector).await?;
            // A policy changed by this start (or a reload no server applied
            // yet) is in force before the first request.
            let families = app
                .projector
                .recompute_pending()
                .await
                .context("recomputing the read models for the visit policy")?;
            if families > 0 {
                tracing::info!(families, "schedules recomputed for the visit policy");
            }
            events
        } else {
            0
        };
        if caught_up > 0 {
            tracing::info!(
                events = caught_up,
                "read models caught up from the event log"
            );
        }
        // The signing key is made on the first start; checkpoints need it.
        let checkpoints = Checkpointer::open(
            app.db().clone(),
            settings.clock.clone(),
            &settings.checkpoints,
        )?;
        let state = AppState::new(app, leadership.clone(), settings.session_idle);
        let listener = TcpListener::bind(&settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let router = router(
            state.clone(),
            settings.body_limit_bytes,
            settings.http.body_read_timeout,
        );
        Ok(Self {
            listener,
            router,
            state,
            alerts: settings.alerts.clone(),
            checkpoints: settings.checkpoints.daily.then(|| Arc::new(checkpoints)),
            leadership,
            campaign,
            stop,
            stopped,
            http: settings.http,
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

    /// Serves (with the projection worker, the daily alert scan and
    /// checkpoint, and the webhook delivery worker beside it) until
    /// `shutdown` completes, then
    /// stops the workers and closes the store.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = (self.stop, self.stopped);
        let worker = tokio::spawn(
            self.state
                .projector()
                .clone()
                .run_worker(self.leadership.clone(), stopped.clone()),
        );
        let standby = self
            .state
            .core()
            .standby()
            .cloned()
            .map(|s| tokio::spawn(s.monitor(self.state.db().clone(), stopped.clone())));
        let core = self.state.core().clone();
        let token_stop = stopped.clone();
        let tokens = tokio::spawn(async move { core.tokens().follow(core.db(), token_stop).await });
        let core = self.state.core().clone();
        let seen_stop = stopped.clone();
        let last_seen =
            tokio::spawn(async move { core.last_seen().run(core.db(), seen_stop).await });
        let scheduler = tokio::spawn(nuanxin_infra::alerts::scheduler::run_scheduler(
            self.state.core().clone(),
            self.state.projector().clone(),
            self.alerts.clone(),
            self.checkpoints,
            self.leadership.clone(),
            stopped.clone(),
        ));
        let statistics = tokio::spawn(refresh_statistics(self.state.db().clone(), stopped.clone()));
        let reports = tokio::spawn(warm_reports(self.state.core().clone(), stopped.clone()));
        let keys = tokio::spawn(warm_keys(self.state.core().clone()));
        let delivery = tokio::spawn(nuanxin_infra::alerts::delivery::run_worker(
            self.state.db().clone(),
            self.alerts,
            self.leadership,
            stopped,
        ));
        let served = crate::serve::serve(self.listener, self.router, self.http, shutdown)
            .await
            .context("serving HTTP");
        let _ = stop.send(true);
        let _ = worker.await;
        let _ = tokens.await;
        let _ = last_seen.await;
        let _ = scheduler.await;
        let _ = delivery.await;
        let _ = statistics.await;
        let _ = reports.await;
        keys.abort();
        if let Some(s) = standby {
            let _ = s.await;
        }
        if let Some(c) = self.campaign {
            let _ = c.await;
        }
        self.state.db().close().await;
        served
    }
}

/// Loads the store's person keys into memory at start (up to
/// [`KEYS_HELD_AT_START`]), so that the first command or read of each family
/// does not wait for its keys; a key not loaded is read when first needed.
async fn warm_keys(core: Arc<nuanxin_infra::Core>) {
    let started = std::time::Instant::now();
    match core.keyring().warm(core.db(), KEYS_HELD_AT_START).await {
        Ok(keys) => tracing::info!(
            keys,
            ms = started.elapsed().as_millis() as u64,
            "person keys loaded"
        ),
        Err(e) => tracing::warn!(error = %e, "loading the person keys failed; they load when used"),
    }
}

/// Person keys loaded at start: about 4 per family (the family, two
/// members, an emergency contact), 60 bytes each in memory, so 2 million
/// keys (half a million families, 120 MB) at most.
const KEYS_HELD_AT_START: usize = 2_000_000;

/// Keeps the report cache warm ([`nuanxin_infra::reports::warm`]): builds
/// every family's report facts a minute after the server starts (once it
/// has settled: the build reads the whole family log, about 20–40 s of a
/// core at 100,000 families), then reads the families that changed every
/// five minutes, so that a report waits only for the last minutes' changes.
async fn warm_reports(
    core: Arc<nuanxin_infra::Core>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    const FIRST: std::time::Duration = std::time::Duration::from_secs(60);
    const EVERY: std::time::Duration = std::time::Duration::from_secs(300);
    tokio::select! {
        _ = tokio::time::sleep(FIRST) => {}
        _ = stop.changed() => return,
    }
    loop {
        let started = std::time::Instant::now();
        match nuanxin_infra::reports::warm(&core).await {
            Ok(families) => tracing::debug!(
                families,
                ms = started.elapsed().as_millis() as u64,
                "report cache warm"
            ),
            Err(e) => tracing::warn!(error = %e, "could not warm the report cache"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Refreshes the store's planner statistics every hour until `stop`
/// ([`nuanxin_infra::Db::optimize`]: a store that grows tenfold keeps its
/// plans).
async fn refresh_statistics(db: nuanxin_infra::Db, mut stop: tokio::sync::watch::Receiver<bool>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = db.optimize().await {
            tracing::warn!(error = %e, "could not refresh the planner's statistics");
        }
    }
}
