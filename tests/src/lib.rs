//! Helpers for the end-to-end tests: start the real server on port 0 against
//! a fresh store (an SQLite file in a temporary directory, or a PostgreSQL
//! database created for the test and dropped after), and typed request
//! helpers.
//!
//! PostgreSQL comes from `NUANXIN_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`; the user must be allowed to
//! create databases). Without a reachable server the PostgreSQL variants
//! skip with a loud message — except when `CI=true`, where they fail.
//! Set `NUANXIN_TEST_LOG=debug` to see the server's logs.

pub mod browser;
pub mod web;

use std::path::PathBuf;
use std::sync::{Arc, Once};

use chrono::{DateTime, Utc};
use nuanxin_api::Application;
use nuanxin_domain::FixedClock;
use nuanxin_infra::users::Secret;
use nuanxin_infra::{DatabaseUrl, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// "Now" for every test server: 2026-06-30 12:00 in Shanghai.
pub fn now() -> DateTime<Utc> {
    "2026-06-30T04:00:00Z".parse().expect("valid instant")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

fn init_logs() {
    use tracing_subscriber::prelude::*;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Always: what the servers of this process log at debug level, for
        // the tests that look for personal data in it (`captured_logs`).
        let capture = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| Capture)
            .with_filter(tracing_subscriber::EnvFilter::new(
                "nuanxin_api=debug,nuanxin_infra=debug,nuanxin_projections=debug,tower_http=debug,warn",
            ));
        let console = std::env::var("NUANXIN_TEST_LOG").ok().map(|filter| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(tracing_subscriber::EnvFilter::new(filter))
        });
        let _ = tracing_subscriber::registry()
            .with(capture)
            .with(console)
            .try_init();
    });
}

/// The latest log output of this test process (at most [`LOG_CAP`] bytes).
static LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
const LOG_CAP: usize = 64 << 20;

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut log = LOG
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.extend_from_slice(buf);
        if log.len() > LOG_CAP {
            log.drain(..LOG_CAP / 2);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the servers of this test process have logged (debug level and
/// up), as text.
pub fn captured_logs() -> String {
    let log = LOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    String::from_utf8_lossy(&log).into_owned()
}

fn pg_admin_url() -> String {
    std::env::var("NUANXIN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A store made for one test, removed when dropped, and a directory for
/// the files a server keeps beside its store (checkpoints, signing key).
pub struct TestDb {
    pub url: DatabaseUrl,
    files: tempfile::TempDir,
    cleanup: Cleanup,
    /// Every answer the test's servers gave through the request helpers
    /// (across restarts), for [`TestDb::assert_documented`].
    answers: std::sync::Mutex<Vec<Answer>>,
}

/// One answer a test saw: method, path (without the query) and status.
#[derive(Debug, Clone)]
struct Answer {
    method: Method,
    path: String,
    status: u16,
}

enum Cleanup {
    Dir(#[expect(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime: use a thread of our own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

impl TestDb {
    /// A fresh store, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn new(store: Store) -> Option<Self> {
        match store {
            Store::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path: PathBuf = dir.path().join("nuanxin.db");
                Some(Self {
                    url: DatabaseUrl::Sqlite(path),
                    files: tempfile::tempdir().expect("temp dir"),
                    cleanup: Cleanup::Dir(dir),
                    answers: Default::default(),
                })
            }
            Store::Postgres => {
                let admin_url = pg_admin_url();
                let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
                    Ok(c) => c,
                    Err(e) if !in_ci() => {
                        eprintln!(
                            "\n!!! SKIPPING a PostgreSQL test: cannot connect to {admin_url} ({e}).\n\
                             !!! Set NUANXIN_TEST_DATABASE_URL or start PostgreSQL; in CI this fails.\n"
                        );
                        return None;
                    }
                    Err(e) => panic!("CI=true and PostgreSQL is unreachable at {admin_url}: {e}"),
                };
                let name = format!("nuanxin_test_{}", Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let url = database_url_for(&admin_url, &name);
                Some(Self {
                    url: DatabaseUrl::Postgres(url),
                    files: tempfile::tempdir().expect("temp dir"),
                    cleanup: Cleanup::Postgres { admin_url, name },
                    answers: Default::default(),
                })
            }
        }
    }

    /// Where the test's checkpoints and signing key live: the directory
    /// and key file every server and CLI run of the test uses.
    pub fn checkpoints(&self) -> nuanxin_infra::audit::checkpoint::CheckpointConfig {
        nuanxin_infra::audit::checkpoint::CheckpointConfig {
            dir: self.files.path().join("checkpoints"),
            key_file: self.files.path().join("signing.key"),
            // Off unless a test turns it on: a checkpoint message would
            // reach every webhook receiver of the alert tests.
            daily: false,
        }
    }

    /// The test's master key file (`crate::privacy`): every server and
    /// CLI run of the test uses it, so they read each other's data.
    pub fn master_key_file(&self) -> std::path::PathBuf {
        self.files.path().join("master.key")
    }
}

impl TestDb {
    /// Notes an answer (the request helpers call it for every request).
    pub fn record(&self, method: &Method, path: &str, status: StatusCode) {
        let path = path.split('?').next().unwrap_or_default().to_owned();
        if let Ok(mut answers) = self.answers.lock() {
            answers.push(Answer {
                method: method.clone(),
                path,
                status: status.as_u16(),
            });
        }
    }

    /// Fails when an `/api/v1` operation answered a status its OpenAPI
    /// document does not list, or a documented path answered a method the
    /// document does not list with anything but 405 (or 401 to an
    /// anonymous caller). `both_stores!` runs it
    /// after every scenario, so every answer the end-to-end tests see is
    /// checked against the document.
    pub fn assert_documented(&self) {
        let doc = nuanxin_api::openapi::document();
        let paths = doc["paths"].as_object().expect("paths");
        let answers = self.answers.lock().map(|a| a.clone()).unwrap_or_default();
        let mut wrong = Vec::new();
        for a in &answers {
            if !a.path.starts_with("/api/v1/") || a.path == "/api/v1/openapi.json" {
                continue;
            }
            let Some((template, item)) = paths.iter().find(|(t, _)| path_matches(t, &a.path))
            else {
                continue;
            };
            let method = a.method.as_str().to_ascii_lowercase();
            match item.get(&method) {
                Some(op) => {
                    if op["responses"].get(a.status.to_string()).is_none() {
                        wrong.push(format!("{} {template} answered {}", a.method, a.status));
                    }
                }
                // An undocumented method: 405, after authentication (401).
                None if a.status == 405 || a.status == 401 => {}
                None => wrong.push(format!(
                    "{} {template} (not documented) answered {}, not 405",
                    a.method, a.status
                )),
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(
            wrong.is_empty(),
            "answers the OpenAPI document does not list:\n{}",
            wrong.join("\n")
        );
    }
}

/// Whether `path` is an instance of the OpenAPI path `template`.
fn path_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// `admin_url` with its database name replaced by `name`.
fn database_url_for(admin_url: &str, name: &str) -> String {
    let (main, query) = match admin_url.find('?') {
        Some(q) => admin_url.split_at(q),
        None => (admin_url, ""),
    };
    let host_start = main.find("://").map_or(0, |i| i + 3);
    let base = match main[host_start..].find('/') {
        Some(i) => &main[..host_start + i],
        None => main,
    };
    format!("{base}/{name}{query}")
}

/// A running server and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub db: Arc<TestDb>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts a server on a fresh store, with the bootstrap admin.
    pub async fn spawn(store: Store) -> Option<Self> {
        let db = Arc::new(TestDb::new(store).await?);
        Some(Self::start(store, db, |_| {}).await)
    }

    /// Starts a server on `db` (e.g. again after [`TestApp::stop`]).
    pub async fn start(store: Store, db: Arc<TestDb>, tweak: impl FnOnce(&mut Settings)) -> Self {
        init_logs();
        let mut settings = Settings::new(db.url.clone());
        settings.bind = "127.0.0.1:0".into();
        settings.bootstrap_token = Some(Secret::new(ADMIN_TOKEN));
        settings.clock = Arc::new(FixedClock(now()));
        settings.max_connections = 5;
        settings.checkpoints = db.checkpoints();
        settings.master_key = nuanxin_infra::privacy::MasterKeySource::File(db.master_key_file());
        tweak(&mut settings);
        let app = Application::build(settings).await.expect("server starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            store,
            db,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server (graceful) and returns the store for a restart.
    pub async fn stop(mut self) -> Arc<TestDb> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
        self.db.clone()
    }

    /// Restarts the server on the same store.
    pub async fn restart(self) -> Self {
        let store = self.store;
        let db = self.stop().await;
        Self::start(store, db, |_| {}).await
    }

    /// Restarts the server on the same store with changed settings.
    pub async fn restart_with(self, tweak: impl FnOnce(&mut Settings)) -> Self {
        let store = self.store;
        let db = self.stop().await;
        Self::start(store, db, tweak).await
    }

    /// Sends a request; `token` None sends no Authorization header.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let sent = method.clone();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request sent");
        self.db.record(&sent, path, resp.status());
        Response::read(resp).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.send(Method::POST, path, Some(token), Some(&body), &[])
            .await
    }

    /// Sends raw bytes as a JSON body.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        // A connection of its own: a server that refuses a body early (413)
        // closes the connection, which a pooled client would reuse.
        let resp = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client")
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        self.db.record(&Method::POST, path, resp.status());
        Response::read(resp).await
    }

    /// Creates a user and returns its token.
    pub async fn user(&self, role: &str, scope: &str) -> String {
        let r = self
            .post(
                "/api/v1/users",
                ADMIN_TOKEN,
                json!({"name": format!("{role} {scope}"), "role": role, "scope": scope}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["token"].as_str().expect("token").to_owned()
    }

    /// Registers a family in `village` and returns its id.
    pub async fn register(&self, token: &str, village: &str) -> String {
        let r = self
            .post("/api/v1/families", token, family_body(village))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// Counts the events in the store.
    pub async fn event_count(&self) -> i64 {
        let db = nuanxin_infra::Db::connect(&self.db.url, 1)
            .await
            .expect("connect");
        let n = nuanxin_infra::on_pool!(&db, pool => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events").fetch_one(pool).await
        })
        .expect("count");
        db.close().await;
        n
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A response with its body parsed as JSON (or `Value::Null`).
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts a problem+json answer with `status`.
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        for key in ["type", "title", "detail"] {
            assert!(
                self.body[key].is_string(),
                "problem lacks {key}: {}",
                self.text
            );
        }
        self
    }

    /// Asserts a 422 naming `field`.
    pub fn assert_field_error(&self, field: &str) -> &Self {
        self.assert_problem(422);
        let errors = self.body["errors"].as_array().expect("errors array");
        assert!(
            errors.iter().any(|e| e["field"] == field),
            "expected an error on {field}: {}",
            self.text
        );
        self
    }
}

/// A valid registration body for a family in `village`.
pub fn family_body(village: &str) -> Value {
    json!({
        "category": "bereaved",
        "village_code": village,
        "address": "No. 3, Xincun",
        "registered_on": "2026-01-10",
        "members": [
            {"name": "Zhang San", "sex": "male", "birth_date": "1950-03-01",
             "id_number": "110105195003010016", "phone": "13800138000"},
            {"name": "Li Mei", "sex": "female", "birth_date": "1952-07-15", "living_alone": false,
             "self_care": "semi_dependent"}
        ]
    })
}

/// A contact assignment body.
pub fn contact_body(role: &str, assigned_on: &str) -> Value {
    json!({
        "role": role,
        "person": {"id": Uuid::new_v4(), "name": "Li Si", "phone": "13900139000"},
        "assigned_on": assigned_on
    })
}

/// A visit body.
pub fn visit_body(role: &str, mode: &str, on: &str) -> Value {
    json!({"role": role, "mode": mode, "visited_on": on, "findings": "well", "needs": []})
}

/// Generates one `#[tokio::test]` per store for a scenario
/// `async fn(TestApp)`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Store::Sqlite).await {
                        let db = app.db.clone();
                        super::$name(app).await;
                        db.assert_documented();
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Store::Postgres).await {
                        let db = app.db.clone();
                        super::$name(app).await;
                        db.assert_documented();
                    }
                }
            }
        )+
    };
}
