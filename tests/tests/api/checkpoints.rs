//! Signed checkpoints of the event log (docs/audit.md): the installation's
//! key, checkpoints taken daily and on demand, kept as files, listed over
//! HTTP and posted to webhooks — and `nuanxin audit verify --checkpoint`
//! catching each attack of someone who controls the database, done as a
//! superuser would (append-only triggers lifted, rows changed, triggers
//! put back): a stream's last event removed, a stream rewritten with fresh
//! hashes, a family's stream deleted, the database rolled back to a backup.
//! The hash chain alone passes every one of them; the checkpoint does not.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use cqrs_es::persist::SerializedEvent;
use hmac::{Hmac, Mac};
use nuanxin_api::cli::{AuditCommand, CheckpointArgs, Cli, Command, StoreArgs};
use nuanxin_infra::audit::checkpoint::{self, CheckpointConfig};
use nuanxin_infra::audit::extends::{self, Outcome, Problem};
use nuanxin_infra::audit::signing::{PublicKey, SigningKeyFile};
use nuanxin_infra::audit::{self};
use nuanxin_infra::users::Secret;
use nuanxin_infra::{on_pool, DatabaseUrl, Db};
use nuanxin_tests::*;
use serde_json::{json, Value};
use sqlx::Connection;

both_stores!(
    a_checkpoint_is_signed_kept_listed_and_posted,
    a_log_that_grew_since_a_checkpoint_extends_it,
    truncating_a_stream_is_detected,
    rewriting_a_stream_with_fresh_hashes_is_detected,
    deleting_a_family_is_detected,
    rolling_back_to_an_earlier_backup_is_detected,
    an_altered_checkpoint_or_heads_file_is_not_trusted,
);

const SECRET: &str = "checkpoint-webhook-secret";

fn database_url(app: &TestApp) -> String {
    match &app.db.url {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => url.clone(),
    }
}

fn config(app: &TestApp) -> CheckpointConfig {
    app.db.checkpoints()
}

fn store_args(app: &TestApp) -> StoreArgs {
    StoreArgs {
        database_url: database_url(app),
        db_connections: 1,
        master_key_file: Some(app.db.master_key_file()),
    }
}

fn files_args(app: &TestApp) -> CheckpointArgs {
    let c = config(app);
    CheckpointArgs {
        checkpoint_dir: Some(c.dir),
        signing_key_file: Some(c.key_file),
    }
}

async fn cli(command: AuditCommand) -> anyhow::Result<()> {
    nuanxin_api::cli::run(Cli {
        command: Command::Audit(command),
    })
    .await
}

/// `nuanxin audit checkpoint`; returns the new statement file.
async fn take(app: &TestApp) -> PathBuf {
    let dir = config(app).dir;
    let before = checkpoint::statement_files(&dir).unwrap_or_default();
    cli(AuditCommand::Checkpoint {
        store: store_args(app),
        files: files_args(app),
    })
    .await
    .expect("audit checkpoint");
    let after = checkpoint::statement_files(&dir).unwrap();
    let new: Vec<PathBuf> = after.into_iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "one new statement file: {new:?}");
    new.into_iter().next().unwrap()
}

/// `nuanxin audit verify --checkpoint FILE…` with the installation's key.
async fn verify_cli(
    app: &TestApp,
    files: &[PathBuf],
    public_key: Option<String>,
) -> anyhow::Result<()> {
    cli(AuditCommand::Verify {
        store: store_args(app),
        family: None,
        checkpoint: files.to_vec(),
        public_key,
        files: files_args(app),
        reason: "checkpoint test".into(),
    })
    .await
}

/// `nuanxin audit verify` without checkpoints: the hash chain only.
async fn chain_only(app: &TestApp) -> anyhow::Result<()> {
    cli(AuditCommand::Verify {
        store: store_args(app),
        family: None,
        checkpoint: Vec::new(),
        public_key: None,
        files: files_args(app),
        reason: "checkpoint test".into(),
    })
    .await
}

fn installation_key(app: &TestApp) -> PublicKey {
    SigningKeyFile::load(&config(app).key_file)
        .expect("the key file")
        .public()
}

/// The structured verdicts for `files`.
async fn verdicts(app: &TestApp, files: &[PathBuf]) -> extends::Report {
    let db = Db::connect(&app.db.url, 1).await.unwrap();
    let report = extends::verify(&db, files, &installation_key(app), &[config(app).dir])
        .await
        .unwrap();
    db.close().await;
    report
}

async fn note(app: &TestApp, token: &str, family: &str, text: &str) {
    let r = app
        .post(
            &format!("/api/v1/families/{family}/notes"),
            token,
            json!({"text": text}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Two families with a few notes each: (caseworker token, [a, b]).
async fn two_families(app: &TestApp) -> (String, [String; 2]) {
    let cw = app.user("caseworker", "450305").await;
    let a = app.register(&cw, "450305001001").await;
    let b = app.register(&cw, "450305001002").await;
    for text in ["one", "two", "three"] {
        note(app, &cw, &a, text).await;
    }
    note(app, &cw, &b, "one").await;
    (cw, [a, b])
}

// ---------------------------------------------------------------------------
// As a superuser would
// ---------------------------------------------------------------------------

/// Lifts the append-only triggers of `events`.
async fn lift_triggers(db: &Db) {
    let statements: &[&str] = match db {
        Db::Postgres(_) => &["ALTER TABLE events DISABLE TRIGGER events_no_update_delete"],
        Db::Sqlite(_) => &[
            "DROP TRIGGER events_no_update",
            "DROP TRIGGER events_no_delete",
        ],
    };
    for sql in statements {
        on_pool!(db, pool => sqlx::query(sql).execute(pool).await.map(|_| ())).unwrap();
    }
}

/// Puts the triggers back, and checks the log is append-only again.
async fn restore_triggers(db: &Db) {
    let statements: &[&str] = match db {
        Db::Postgres(_) => &["ALTER TABLE events ENABLE TRIGGER events_no_update_delete"],
        Db::Sqlite(_) => &[
            "CREATE TRIGGER events_no_update BEFORE UPDATE ON events \
             BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END",
            "CREATE TRIGGER events_no_delete BEFORE DELETE ON events \
             BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END",
        ],
    };
    for sql in statements {
        on_pool!(db, pool => sqlx::query(sql).execute(pool).await.map(|_| ())).unwrap();
    }
    let delete =
        on_pool!(db, pool => sqlx::query("DELETE FROM events").execute(pool).await.map(|_| ()));
    assert!(delete.is_err(), "the triggers are back");
}

async fn execute(db: &Db, sql: &str, family: &str) {
    on_pool!(db, pool => sqlx::query(sql).bind(family).execute(pool).await.map(|_| ())).unwrap();
}

/// Checks what a checkpoint file says against the log after an attack:
/// the chain alone passes, the checkpoint names `first` (family, version,
/// problem), and so does the CLI's error; without its heads file the
/// checkpoint still fails, without naming the family.
async fn detected(app: &TestApp, statement: &Path, first: (&str, u64, Problem)) {
    chain_only(app)
        .await
        .expect("the hash chain alone does not see this attack");
    let report = verdicts(app, &[statement.to_owned()]).await;
    assert!(report.chain.is_intact());
    let verdict = &report.checkpoints[0];
    assert!(verdict.heads.is_ok(), "{:?}", verdict.heads);
    let Outcome::NotExtended { first: found, .. } = &verdict.outcome else {
        panic!("not detected: {verdict:?}");
    };
    let i = &found[0];
    assert_eq!(
        (i.aggregate_id.as_str(), i.version, i.problem),
        first,
        "{found:?}"
    );
    let err = verify_cli(app, &[statement.to_owned()], None)
        .await
        .expect_err("verify fails");
    let expected = format!(
        "first inconsistency: family {}, version {}",
        first.0, first.1
    );
    assert!(err.to_string().contains(&expected), "{err}");

    // Without the heads file (only the signed statement was kept).
    let heads = config(app)
        .dir
        .join(verdict.statement.as_ref().unwrap().heads_file.clone());
    let aside = heads.with_extension("aside");
    std::fs::rename(&heads, &aside).unwrap();
    let report = verdicts(app, &[statement.to_owned()]).await;
    assert!(
        matches!(report.checkpoints[0].outcome, Outcome::RootDiffers { .. }),
        "{:?}",
        report.checkpoints[0]
    );
    assert!(verify_cli(app, &[statement.to_owned()], None)
        .await
        .is_err());
    std::fs::rename(&aside, &heads).unwrap();
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

async fn a_log_that_grew_since_a_checkpoint_extends_it(app: TestApp) {
    let (cw, [a, b]) = two_families(&app).await;
    let first = take(&app).await;
    let statement: Value = serde_json::from_str(&std::fs::read_to_string(&first).unwrap()).unwrap();
    let c = &statement["checkpoint"];
    assert_eq!(
        (c["events"].as_i64(), c["streams"].as_i64()),
        (Some(6), Some(2))
    );
    assert_eq!(c["format"], "nuanxin-checkpoint/1");
    assert_eq!(c["kind"], "on_demand");
    assert_eq!(
        c["store"],
        if app.store == Store::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    assert!(c["position"].as_i64().unwrap() >= 6);
    // The heads file lists both streams at their versions.
    let heads =
        checkpoint::read_heads(&config(&app).dir.join(c["heads_file"].as_str().unwrap())).unwrap();
    let mut versions: Vec<(String, u64)> = heads
        .iter()
        .map(|h| (h.aggregate_id.clone(), h.version))
        .collect();
    versions.sort();
    let mut expected = vec![(a.clone(), 4), (b.clone(), 2)];
    expected.sort();
    assert_eq!(versions, expected);

    // The log grows: more notes, a new family, a void.
    note(&app, &cw, &a, "four").await;
    let c_id = app.register(&cw, "450305001003").await;
    let r = app
        .post(
            &format!("/api/v1/families/{b}/notes"),
            &cw,
            json!({"text": "mistake"}),
        )
        .await;
    let action = r.body["action_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/families/{b}/voids"),
            &cw,
            json!({"action_id": action, "reason": "wrong family"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = take(&app).await;
    note(&app, &cw, &c_id, "after the second").await;

    verify_cli(&app, &[first.clone(), second.clone()], None)
        .await
        .expect("the log extends both checkpoints");
    // A directory of checkpoints works the same.
    verify_cli(&app, &[config(&app).dir], None)
        .await
        .expect("the directory");
    let report = verdicts(&app, &[first.clone(), second.clone()]).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.chain.events, 11);
    for v in &report.checkpoints {
        assert_eq!(v.outcome, Outcome::Extended { named: true }, "{v:?}");
    }
    // With only the signed statements (no heads files), recomputed.
    let dir = config(&app).dir;
    for f in checkpoint::statement_files(&dir).unwrap() {
        let s: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let heads = dir.join(s["checkpoint"]["heads_file"].as_str().unwrap());
        std::fs::remove_file(heads).unwrap();
    }
    let report = verdicts(&app, &[first.clone(), second.clone()]).await;
    for v in &report.checkpoints {
        assert_eq!(v.outcome, Outcome::Extended { named: false }, "{v:?}");
        assert!(v.heads.is_err());
    }
    verify_cli(&app, &[first, second], None)
        .await
        .expect("extended without heads too");
}

async fn truncating_a_stream_is_detected(app: TestApp) {
    let (_cw, [a, _b]) = two_families(&app).await;
    let statement = take(&app).await;
    // An emergency that was ignored, or a visit that never happened: the
    // family's last event goes.
    let db = Db::connect(&app.db.url, 1).await.unwrap();
    lift_triggers(&db).await;
    execute(
        &db,
        "DELETE FROM events WHERE aggregate_id = $1 AND sequence = 4",
        &a,
    )
    .await;
    restore_triggers(&db).await;
    db.close().await;
    detected(
        &app,
        &statement,
        (&a, 4, Problem::Truncated { had: 4, has: 3 }),
    )
    .await;
}

async fn rewriting_a_stream_with_fresh_hashes_is_detected(app: TestApp) {
    let (_cw, [a, _b]) = two_families(&app).await;
    let statement = take(&app).await;
    // The whole stream of `a` rewritten: the second note says something
    // else, and every hash is recomputed so the chain verifies.
    let db = Db::connect(&app.db.url, 1).await.unwrap();
    let stored = nuanxin_infra::store::events::of_family(&db, a.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), 4);
    let events: Vec<SerializedEvent> = stored
        .into_iter()
        .map(|e| {
            let mut payload = e.payload;
            if e.sequence == 3 {
                payload["NoteAdded"]["text"] = json!("visited, all well");
            }
            SerializedEvent::new(
                e.aggregate_id,
                e.sequence as usize,
                e.aggregate_type,
                e.event_type,
                e.event_version,
                payload,
                e.metadata,
            )
        })
        .collect();
    let rewritten = audit::seal(&events, String::new()).unwrap();
    lift_triggers(&db).await;
    execute(&db, "DELETE FROM events WHERE aggregate_id = $1", &a).await;
    for e in &rewritten {
        on_pool!(&db, pool => {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&e.aggregate_type)
            .bind(&e.aggregate_id)
            .bind(e.sequence as i64)
            .bind(&e.event_type)
            .bind(&e.event_version)
            .bind(sqlx::types::Json(&e.payload))
            .bind(sqlx::types::Json(&e.metadata))
            .execute(pool)
            .await
            .map(|_| ())
        })
        .unwrap();
    }
    restore_triggers(&db).await;
    let report = audit::verify(&db, None).await.unwrap();
    assert!(
        report.is_intact(),
        "the rewritten chain verifies: {report:?}"
    );
    db.close().await;
    detected(&app, &statement, (&a, 4, Problem::Rewritten)).await;
}

async fn deleting_a_family_is_detected(app: TestApp) {
    let (_cw, [_a, b]) = two_families(&app).await;
    let statement = take(&app).await;
    let db = Db::connect(&app.db.url, 1).await.unwrap();
    lift_triggers(&db).await;
    execute(&db, "DELETE FROM events WHERE aggregate_id = $1", &b).await;
    restore_triggers(&db).await;
    db.close().await;
    detected(&app, &statement, (&b, 1, Problem::Gone { had: 2 })).await;
}

/// A copy of the store's data, to put back later.
enum Backup {
    Sqlite(PathBuf),
    Postgres {
        admin: String,
        name: String,
        copy: String,
    },
}

fn pg_admin_url() -> String {
    std::env::var("NUANXIN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn pg_admin(admin: &str, sql: &str) {
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// Copies the store (its server stopped): the SQLite files, or a
/// PostgreSQL database made with the store as its template.
async fn back_up(db: &TestDb) -> Backup {
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let copy = path.with_extension("backup");
            std::fs::create_dir_all(&copy).unwrap();
            for suffix in ["", "-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", path.display()));
                if from.exists() {
                    std::fs::copy(&from, copy.join(format!("db{suffix}"))).unwrap();
                }
            }
            Backup::Sqlite(copy)
        }
        DatabaseUrl::Postgres(url) => {
            let name = url
                .rsplit('/')
                .next()
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let copy = format!("{name}_backup");
            let admin = pg_admin_url();
            pg_admin(
                &admin,
                &format!("CREATE DATABASE \"{copy}\" TEMPLATE \"{name}\""),
            )
            .await;
            Backup::Postgres { admin, name, copy }
        }
    }
}

/// Puts the backup back in place of the store (its server stopped).
async fn restore(db: &TestDb, backup: Backup) {
    match (backup, &db.url) {
        (Backup::Sqlite(copy), DatabaseUrl::Sqlite(path)) => {
            for suffix in ["", "-wal", "-shm"] {
                let to = PathBuf::from(format!("{}{suffix}", path.display()));
                let from = copy.join(format!("db{suffix}"));
                let _ = std::fs::remove_file(&to);
                if from.exists() {
                    std::fs::copy(&from, &to).unwrap();
                }
            }
        }
        (Backup::Postgres { admin, name, copy }, _) => {
            pg_admin(&admin, &format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await;
            pg_admin(
                &admin,
                &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{copy}\""),
            )
            .await;
            pg_admin(&admin, &format!("DROP DATABASE \"{copy}\"")).await;
        }
        _ => unreachable!("a backup of the same store"),
    }
}

async fn rolling_back_to_an_earlier_backup_is_detected(app: TestApp) {
    let (cw, [a, _b]) = two_families(&app).await;
    let store = app.store;
    let db = app.stop().await;
    let backup = back_up(&db).await;
    let app = TestApp::start(store, db, |_| {}).await;
    // After the backup: two more actions on `a` and a new family `c`.
    note(&app, &cw, &a, "four").await;
    note(&app, &cw, &a, "five").await;
    let c = app.register(&cw, "450305001003").await;
    let statement = take(&app).await;
    let db = app.stop().await;
    restore(&db, backup).await;
    let app = TestApp::start(store, db, |_| {}).await;
    assert_eq!(app.event_count().await, 6, "the backup's log");

    chain_only(&app)
        .await
        .expect("the rolled-back chain verifies");
    let report = verdicts(&app, std::slice::from_ref(&statement)).await;
    let Outcome::NotExtended { first, count } = &report.checkpoints[0].outcome else {
        panic!("not detected: {report:?}");
    };
    assert_eq!(*count, 2);
    let mut expected = vec![
        (a.clone(), 5, Problem::Truncated { had: 6, has: 4 }),
        (c.clone(), 1, Problem::Gone { had: 1 }),
    ];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    let found: Vec<(String, u64, Problem)> = first
        .iter()
        .map(|i| (i.aggregate_id.clone(), i.version, i.problem))
        .collect();
    assert_eq!(found, expected);
    let err = verify_cli(&app, std::slice::from_ref(&statement), None)
        .await
        .expect_err("verify fails");
    let named = format!(
        "first inconsistency: family {}, version {}",
        expected[0].0, expected[0].1
    );
    assert!(err.to_string().contains(&named), "{err}");
    // The server goes on writing on the rolled-back log; still detected.
    note(&app, &cw, &a, "after the rollback").await;
    let first = if a < c {
        (a.as_str(), 6, Problem::Truncated { had: 6, has: 5 })
    } else {
        (c.as_str(), 1, Problem::Gone { had: 1 })
    };
    detected(&app, &statement, first).await;
}

async fn an_altered_checkpoint_or_heads_file_is_not_trusted(app: TestApp) {
    let (_cw, [_a, _b]) = two_families(&app).await;
    let statement = take(&app).await;
    let text = std::fs::read_to_string(&statement).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let dir = config(&app).dir;
    let heads_file = dir.join(doc["checkpoint"]["heads_file"].as_str().unwrap());

    // A statement edited after signing (fewer events than it saw).
    doc["checkpoint"]["events"] = json!(3);
    let edited = dir.join("edited.json");
    std::fs::write(&edited, doc.to_string()).unwrap();
    let report = verdicts(&app, std::slice::from_ref(&edited)).await;
    assert_eq!(
        report.checkpoints[0].outcome,
        Outcome::Untrusted(checkpoint::SignatureProblem::Invalid)
    );
    let err = verify_cli(&app, std::slice::from_ref(&edited), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("altered after signing"), "{err}");
    std::fs::remove_file(&edited).unwrap();

    // Checked against another key than the one that signed it.
    let other_dir = tempfile::tempdir().unwrap();
    let (other, _) = SigningKeyFile::load_or_create(&other_dir.path().join("other.key")).unwrap();
    let err = verify_cli(
        &app,
        std::slice::from_ref(&statement),
        Some(other.public().to_hex()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not by the trusted key"), "{err}");
    // The right key, given as a PEM file, works.
    let pem = other_dir.path().join("installation.pem");
    std::fs::write(&pem, installation_key(&app).to_pem()).unwrap();
    verify_cli(
        &app,
        std::slice::from_ref(&statement),
        Some(pem.display().to_string()),
    )
    .await
    .expect("trusted key from a PEM file");
    assert!(verify_cli(
        &app,
        std::slice::from_ref(&statement),
        Some("not-a-key".into())
    )
    .await
    .is_err());

    // A heads file edited to hide a stream is not used: the root is
    // recomputed from the log instead (which still extends it).
    let mut heads = checkpoint::read_heads(&heads_file).unwrap();
    heads.pop();
    let original = std::fs::read(&heads_file).unwrap();
    {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for h in &heads {
            writeln!(gz, "{}", h.line()).unwrap();
        }
        std::fs::write(&heads_file, gz.finish().unwrap()).unwrap();
    }
    let report = verdicts(&app, std::slice::from_ref(&statement)).await;
    let v = &report.checkpoints[0];
    assert_eq!(v.outcome, Outcome::Extended { named: false }, "{v:?}");
    assert!(
        v.heads
            .as_ref()
            .unwrap_err()
            .contains("does not have the signed Merkle root"),
        "{:?}",
        v.heads
    );
    std::fs::write(&heads_file, original).unwrap();

    // Not a checkpoint at all.
    let junk = dir.join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let report = verdicts(&app, std::slice::from_ref(&junk)).await;
    assert!(matches!(
        report.checkpoints[0].outcome,
        Outcome::Unreadable(_)
    ));
    assert!(verify_cli(&app, &[junk], None).await.is_err());
}

// ---------------------------------------------------------------------------
// Key, daily checkpoint, API and webhooks
// ---------------------------------------------------------------------------

/// (signature, body) of every message received.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A local webhook receiver keeping what it got.
struct Receiver {
    url: String,
    got: Received,
}

async fn hook(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-nuanxin-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    got.lock()
        .unwrap()
        .push((signature, String::from_utf8_lossy(&body).into_owned()));
    StatusCode::OK
}

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(got.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
    }
}

impl Receiver {
    /// Waits for `n` checkpoint messages (alert messages are left aside).
    async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got: Vec<(String, String)> = self
                .got
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, body)| body.contains("\"checkpoint.signed\""))
                .cloned()
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {} of {n} messages",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn daily_with_webhook(url: String) -> impl FnOnce(&mut nuanxin_infra::Settings) {
    move |s| {
        s.checkpoints.daily = true;
        s.alerts.webhooks = vec![url];
        s.alerts.secret = Some(Secret::new(SECRET));
        s.alerts.retry_base = Duration::from_millis(50);
    }
}

async fn checkpoint_list(app: &TestApp, token: &str, query: &str) -> Response {
    let r = app
        .get(&format!("/api/v1/audit/checkpoints{query}"), token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

async fn a_checkpoint_is_signed_kept_listed_and_posted(app: TestApp) {
    let (cw, [a, b]) = two_families(&app).await;
    let hook = receiver().await;
    let app = app.restart_with(daily_with_webhook(hook.url.clone())).await;
    let c = config(&app);

    // The signing key: made on the first start, private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&c.key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = installation_key(&app);
    cli(AuditCommand::PublicKey {
        store: store_args(&app),
        files: files_args(&app),
    })
    .await
    .expect("audit public-key");
    assert!(
        cli(AuditCommand::PublicKey {
            store: store_args(&app),
            files: CheckpointArgs {
                checkpoint_dir: None,
                signing_key_file: Some(c.dir.join("no-such.key")),
            },
        })
        .await
        .is_err(),
        "no key file is an error, not a new key"
    );

    // The daily checkpoint was taken at start, with the alert scan.
    let got = hook.wait_for(1).await;
    let (signature, body) = &got[0];
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    assert_eq!(
        *signature,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let message: Value = serde_json::from_str(body).unwrap();
    assert_eq!(message["event"], "checkpoint.signed");
    assert_eq!(message["checkpoint"]["kind"], "daily");
    assert_eq!(message["checkpoint"]["key_id"], key.key_id());
    assert_eq!(message["checkpoint"]["public_key"], key.to_hex());
    assert_eq!(message["id"], message["checkpoint"]["id"]);
    for private in [
        a.as_str(),
        b.as_str(),
        "Zhang San",
        "13800138000",
        "11010519491231002X",
    ] {
        assert!(!body.contains(private), "{private} in {body}");
    }
    // What the receiver keeps is itself a checkpoint the log extends.
    let kept = tempfile::tempdir().unwrap();
    let copy = kept.path().join("webhook-copy.json");
    std::fs::write(&copy, body).unwrap();
    verify_cli(&app, std::slice::from_ref(&copy), Some(key.to_hex()))
        .await
        .expect("the webhook copy verifies (heads from the checkpoint directory)");

    let files = checkpoint::statement_files(&c.dir).unwrap();
    assert_eq!(files.len(), 1);
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(on_disk["checkpoint"], message["checkpoint"]);
    assert!(c
        .dir
        .join(on_disk["checkpoint"]["heads_file"].as_str().unwrap())
        .is_file());

    // A second start the same day takes no second daily checkpoint.
    let app = app.restart_with(daily_with_webhook(hook.url.clone())).await;
    let sup = app.user("supervisor", "45").await;
    let list = checkpoint_list(&app, &sup, "").await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );

    // On demand, from the command line; posted too.
    note(&app, &cw, &a, "four").await;
    let second = take(&app).await;
    let got = hook.wait_for(2).await;
    let second_message: Value = serde_json::from_str(&got[1].1).unwrap();
    assert_eq!(second_message["checkpoint"]["kind"], "on_demand");
    assert_eq!(second_message["checkpoint"]["events"], 7);

    // The list: newest first, paged, for supervisors and admins only.
    let list = checkpoint_list(&app, &sup, "").await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "on_demand");
    assert_eq!(items[1]["kind"], "daily");
    assert_eq!(
        items[0]["file"],
        second.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(items[0]["checkpoint"], second_message["checkpoint"]);
    assert_eq!(items[0]["signature"], second_message["signature"]);
    for private in [a.as_str(), b.as_str(), "Zhang San", "13800138000"] {
        assert!(!list.text.contains(private), "{private} in the list");
    }
    let page = checkpoint_list(&app, ADMIN_TOKEN, "?limit=1").await;
    assert_eq!(page.body["items"][0]["id"], items[0]["id"]);
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = checkpoint_list(&app, ADMIN_TOKEN, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(rest.body["items"][0]["id"], items[1]["id"]);
    let end = checkpoint_list(
        &app,
        ADMIN_TOKEN,
        &format!(
            "?limit=1&cursor={}",
            rest.body["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    assert!(end.body["items"].as_array().unwrap().is_empty());
    assert!(end.body["next_cursor"].is_null());
    app.get("/api/v1/audit/checkpoints", &cw)
        .await
        .assert_problem(403);
    app.send(
        reqwest::Method::GET,
        "/api/v1/audit/checkpoints",
        None,
        None,
        &[],
    )
    .await
    .assert_problem(401);
    app.get("/api/v1/audit/checkpoints?cursor=nope", &sup)
        .await
        .assert_problem(400);
    app.get("/api/v1/audit/checkpoints?family=x", &sup)
        .await
        .assert_problem(400);

    // An item of the list, saved as a file, is a checkpoint copy too.
    let saved = kept.path().join("from-the-api.json");
    std::fs::write(&saved, serde_json::to_string(&items[0]).unwrap()).unwrap();
    verify_cli(&app, &[saved, copy], Some(key.to_hex()))
        .await
        .expect("copies from the API and the webhook verify");

    // The records are kept like the log.
    let db = Db::connect(&app.db.url, 1).await.unwrap();
    for table in [
        "audit_checkpoint_delivery_attempts",
        "audit_checkpoint_deliveries",
    ] {
        let sql = format!("DELETE FROM {table}");
        on_pool!(&db, pool => sqlx::query(&sql).execute(pool).await.map(|_| ())).unwrap();
    }
    let delete = on_pool!(&db, pool => {
        sqlx::query("DELETE FROM audit_checkpoints").execute(pool).await.map(|_| ())
    });
    assert!(delete.is_err(), "checkpoint records cannot be deleted");
    let update = on_pool!(&db, pool => {
        sqlx::query("UPDATE audit_checkpoints SET events = 1").execute(pool).await.map(|_| ())
    });
    assert!(update.is_err(), "nor changed");
    db.close().await;
}

#[tokio::test]
async fn openapi_describes_the_checkpoint_list() {
    let app = TestApp::spawn(Store::Sqlite).await.unwrap();
    let doc = app
        .send(
            reqwest::Method::GET,
            "/api/v1/openapi.json",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(doc.status, 200);
    let op = &doc.body["paths"]["/api/v1/audit/checkpoints"]["get"];
    assert!(op.is_object(), "GET /api/v1/audit/checkpoints missing");
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["limit", "cursor"]);
    for status in ["200", "401", "403"] {
        assert!(op["responses"][status].is_object(), "{status}");
    }
    let schemas = &doc.body["components"]["schemas"];
    let statement = &schemas["CheckpointStatement"]["properties"];
    // The schema names exactly what a statement holds.
    let db = Db::connect(&app.db.url, 1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cp = nuanxin_infra::audit::checkpoint::Checkpointer::open(
        db.clone(),
        Arc::new(nuanxin_domain::SystemClock),
        &CheckpointConfig {
            dir: dir.path().join("c"),
            key_file: dir.path().join("k"),
            daily: false,
        },
    )
    .unwrap();
    let taken = cp
        .take(checkpoint::Kind::OnDemand, None)
        .await
        .unwrap()
        .unwrap();
    db.close().await;
    let mut documented: Vec<&String> = statement.as_object().unwrap().keys().collect();
    let mut actual: Vec<&String> = taken.signed.raw().as_object().unwrap().keys().collect();
    documented.sort();
    actual.sort();
    assert_eq!(documented, actual);
    for field in ["id", "kind", "taken_at", "file", "checkpoint", "signature"] {
        assert!(
            schemas["CheckpointItem"]["properties"][field].is_object(),
            "CheckpointItem lacks {field}"
        );
    }
}
