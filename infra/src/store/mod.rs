//! The store: one home for the database. The connection ([`Db`], opened
//! from a [`DatabaseUrl`]), our migrations (`migrations/{sqlite,postgres}`,
//! applied by [`Db::migrate`]), transactions ([`Tx`]), and — one module per
//! table or group of tables — every SQL statement the code sends:
//!
//! | module | tables |
//! | --- | --- |
//! | [`events`] | `events` (the log; appends go through cqrs-es, see `crate::repo`) |
//! | [`case_files`] | `case_files` |
//! | [`schedule`] | `family_key_periods`, `visit_schedule` |
//! | [`checkpoints`] | `projection_checkpoints`, `policy_state` |
//! | [`access_log`] | `access_log` |
//! | [`users`] | `users` |
//! | [`alerts`] | `alerts`, `alert_scans`, `alert_scan_lock`, `alert_outbox`, `alert_deliveries`, `alert_delivery_attempts` |
//! | [`audit_checkpoints`] | `audit_checkpoints`, `audit_checkpoint_deliveries`, `audit_checkpoint_delivery_attempts` |
//! | [`activities`] | `activities`, `activity_attendance` |
//! | [`inspections`] | `inspections` |
//! | [`inspection_alerts`] | `inspection_alerts` |
//! | [`fresh`] | the `rebuild_*` copies of the read-model tables, made from the live schema |
//! | [`webhooks`] | `webhook_config` |
//! | [`group_commit`] | a whole group commit on PostgreSQL as one statement (events, read models, access log) |
//! | [`maintenance`] | backups (`VACUUM INTO`), integrity, `_sqlx_migrations`, the database clock: the operator's commands |
//!
//! SQL that is the same on both stores is written once: [`on_pool!`] and
//! [`on_tx!`] compile one body for each driver. Rows come back as named
//! structs (`sqlx::FromRow`). Where the dialects differ (JSON operators,
//! transaction ids) a function says so with a `match` on the store.

pub mod access_log;
pub mod activities;
pub mod alerts;
pub mod audit_checkpoints;
pub mod case_files;
pub mod checkpoints;
pub mod dashboard;
pub mod events;
pub mod fresh;
pub mod group_commit;
pub mod inspection_alerts;
pub mod inspections;
pub mod maintenance;
pub mod person_keys;
pub mod schedule;
pub mod sessions;
pub mod users;
pub mod webhooks;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, PgPool, SqlitePool};

/// Statements slower than this are logged (SQL text only, never values).
const SLOW_STATEMENT: Duration = Duration::from_secs(5);

/// Where the events live: parsed from `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    /// Never prints a PostgreSQL password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DatabaseUrl::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}

impl DatabaseUrl {
    pub const DEFAULT: &'static str = "sqlite://nuanxin.db";

    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            anyhow::ensure!(
                !path.is_empty(),
                "DATABASE_URL: sqlite:// needs a file path"
            );
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://")
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

/// A pool on one of the two stores.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same body against whichever pool `db` holds. The body is
/// compiled once per backend, so it may use any type both drivers encode;
/// `$dbty` names the backend (`sqlx::Sqlite` / `sqlx::Postgres`) for
/// `QueryBuilder`s. Keep bodies to a statement or two.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident, $dbty:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => {
                #[allow(dead_code)]
                type $dbty = sqlx::Sqlite;
                $body
            }
            $crate::store::Db::Postgres($pool) => {
                #[allow(dead_code)]
                type $dbty = sqlx::Postgres;
                $body
            }
        }
    };
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// An open transaction on one of the two stores.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs the same body on whichever connection the transaction `$tx`
/// (a `&mut Tx`) holds; `$conn` is that connection (`&mut *$conn` is an
/// executor). Like [`on_pool!`], keep bodies to a statement or two.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident, $dbty:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                #[allow(dead_code)]
                type $dbty = sqlx::Sqlite;
                let $conn = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                #[allow(dead_code)]
                type $dbty = sqlx::Postgres;
                let $conn = &mut **t;
                $body
            }
        }
    };
    ($tx:expr, $conn:ident => $body:expr) => {
        $crate::on_tx!($tx, $conn, _Db => $body)
    };
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }

    /// PostgreSQL only: this transaction's commit does not wait for the
    /// disk. For rows that are rewritten from the log after a crash (read
    /// models), never for events or records.
    pub async fn without_waiting_for_disk(&mut self) -> Result<(), sqlx::Error> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Runs each statement in order (DDL, mostly).
    pub async fn execute_all(&mut self, statements: &[String]) -> Result<(), sqlx::Error> {
        for s in statements {
            on_tx!(self, conn => sqlx::query(s).execute(&mut *conn).await.map(|_| ()))?;
        }
        Ok(())
    }
}

/// `NUANXIN_PARTITION_EVENTS`: partitions of a new PostgreSQL store's log.
fn partition_events() -> anyhow::Result<Option<u32>> {
    match std::env::var("NUANXIN_PARTITION_EVENTS") {
        Ok(v) if !v.trim().is_empty() => {
            let n: u32 = v
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .context("NUANXIN_PARTITION_EVENTS must be a whole number from 1 to 1024")?;
            Ok(Some(n))
        }
        _ => Ok(None),
    }
}

impl Db {
    /// Opens the store. SQLite: the file is created if missing, in WAL mode
    /// with `synchronous=FULL` so a commit is on disk before it returns.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Self> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                let options = SqliteConnectOptions::from_str("sqlite://")?
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    // Reads through a memory map, and a larger page cache:
                    // replaying the log in family order reads the events
                    // table out of row order, which through read() calls is
                    // several times slower (decisions.md, record 15).
                    .pragma("mmap_size", "8589934592")
                    .pragma("cache_size", "-32768")
                    // Deleted content is overwritten with zeros where that
                    // costs no extra write (the page is written anyway): an
                    // erased person key (a small row, rewritten in its page)
                    // does not linger in the file (docs/privacy.md). `ON`
                    // would also zero every freed overflow page of a
                    // rewritten case file, a write per page.
                    .pragma("secure_delete", "FAST")
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    // No ping before each use (see the PostgreSQL pool).
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("opening SQLite database {}", path.display()))?;
                Ok(Db::Sqlite(pool))
            }
            DatabaseUrl::Postgres(url) => {
                let mut options = PgConnectOptions::from_str(url)
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
                // Read by the migration that creates the log: a new store's
                // events are hash-partitioned on the family into this many
                // partitions (docs/scaling.md). Ignored once the log exists.
                if let Some(n) = partition_events()? {
                    options = options.options([("nuanxin.partition_events", n.to_string())]);
                }
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    // sqlx pings a connection before each use by default: a
                    // round trip per query. A broken connection fails its
                    // query instead (a 500 the client may retry with its
                    // Idempotency-Key), and the pool replaces it.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .context("connecting to PostgreSQL")?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// Opens the store and applies our migrations.
    pub async fn open(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Self> {
        let db = Self::connect(url, max_connections).await?;
        db.migrate().await?;
        db.optimize()
            .await
            .context("refreshing the planner's statistics")?;
        Ok(db)
    }

    /// Refreshes the query planner's statistics where they are missing or
    /// stale. SQLite keeps none until asked (`PRAGMA optimize` analyses
    /// every table with an index never analysed, or that grew or shrank
    /// tenfold since; 0x10 caps each analysis to a sample, so it stays
    /// fast on a large store); without them it plans a
    /// township's family list or alert inbox as a walk of the whole table
    /// in id order (160 ms instead of 2 ms at 100,000 families;
    /// decisions.md, record 29). Run at start, after a rebuild's swap and
    /// hourly by the server. PostgreSQL's autovacuum does this itself.
    pub async fn optimize(&self) -> Result<(), sqlx::Error> {
        if let Db::Sqlite(pool) = self {
            sqlx::query("PRAGMA optimize=0x10012").execute(pool).await?;
        }
        Ok(())
    }

    /// Applies our migrations (idempotent): the same at start and with
    /// `nuanxin migrate`. Migrations are only ever appended to.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("./src/store/migrations/sqlite")
                .run(pool)
                .await
                .context("migrating the SQLite store")?,
            Db::Postgres(pool) => sqlx::migrate!("./src/store/migrations/postgres")
                .run(pool)
                .await
                .context("migrating the PostgreSQL store")?,
        }
        Ok(())
    }

    /// Starts a transaction that will write: on SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`, waiting up to the busy timeout), so
    /// a read before its first write can never find its snapshot overtaken
    /// by another writer (which SQLite answers with "database is locked").
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// The migrations this binary holds for the store (what `migrate`
    /// applies), for `nuanxin doctor` to compare with the applied ones.
    pub fn migrator(&self) -> sqlx::migrate::Migrator {
        match self {
            Db::Sqlite(_) => sqlx::migrate!("./src/store/migrations/sqlite"),
            Db::Postgres(_) => sqlx::migrate!("./src/store/migrations/postgres"),
        }
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A one-connection pool for bulk writes of disposable rows (a rebuild's
    /// fresh tables): commits there do not wait for the disk. Nothing that
    /// must survive a crash may be written through it; the rebuild's swap
    /// goes through the normal pool.
    pub async fn bulk_writer(&self) -> anyhow::Result<Db> {
        match self {
            Db::Sqlite(pool) => {
                let options = (*pool.connect_options())
                    .clone()
                    .synchronous(SqliteSynchronous::Off);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .context("opening a bulk-write connection")?;
                Ok(Db::Sqlite(pool))
            }
            Db::Postgres(pool) => {
                let options = (*pool.connect_options())
                    .clone()
                    .options([("synchronous_commit", "off")]);
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .context("opening a bulk-write connection")?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// The pool group commits are written through. PostgreSQL: `lanes`
    /// connections of their own (writes never wait for a connection behind
    /// reads), planning the group-commit statement once: left to choose,
    /// PostgreSQL's plan cache keeps re-planning that many-CTE statement for
    /// every batch, which cost a fifth of its CPU. SQLite: the same pool
    /// (one writer anyway).
    pub fn group_commit_pool(&self, lanes: u32) -> Db {
        match self {
            Db::Sqlite(_) => self.clone(),
            Db::Postgres(pool) => {
                let options = (*pool.connect_options())
                    .clone()
                    .options([("plan_cache_mode", "force_generic_plan")]);
                Db::Postgres(
                    PgPoolOptions::new()
                        .max_connections(lanes.max(1))
                        .acquire_timeout(Duration::from_secs(10))
                        .test_before_acquire(false)
                        .connect_lazy_with(options),
                )
            }
        }
    }

    /// Whether the store answers a trivial query.
    pub async fn ping(&self) -> bool {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// The names of one generation of read-model tables: the live ones, or the
/// fresh ones a rebuild fills before swapping them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadModelTables {
    pub case_files: &'static str,
    pub key_periods: &'static str,
    pub schedule: &'static str,
}

impl ReadModelTables {
    /// Every table of the generation.
    pub fn all(&self) -> [&'static str; 3] {
        [self.case_files, self.key_periods, self.schedule]
    }
}

pub const LIVE: ReadModelTables = ReadModelTables {
    case_files: "case_files",
    key_periods: "family_key_periods",
    schedule: "visit_schedule",
};

pub const REBUILD: ReadModelTables = ReadModelTables {
    case_files: "rebuild_case_files",
    key_periods: "rebuild_family_key_periods",
    schedule: "rebuild_visit_schedule",
};

/// Rows per multi-row INSERT (12 columns × 800 stays under SQLite's limit of
/// 32,766 bound parameters).
pub(crate) const ROWS_PER_INSERT: usize = 800;

/// SQLite extended codes for a PRIMARY KEY or UNIQUE violation.
const SQLITE_CONSTRAINT_CODES: [&str; 2] = ["1555", "2067"];

/// Whether `err` is a uniqueness violation in the database (any store).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c == "23505" || SQLITE_CONSTRAINT_CODES.contains(&c.as_ref())),
        _ => false,
    }
}

/// Whether `err` is PostgreSQL giving up on a transaction that may succeed
/// when simply run again (a deadlock victim, a serialization failure): it
/// committed nothing.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c == "40P01" || c == "40001"),
        _ => false,
    }
}

/// `s` as a UUID, or a decode error naming the column.
pub(crate) fn uuid(s: &str, column: &'static str) -> Result<uuid::Uuid, sqlx::Error> {
    s.parse()
        .map_err(|_| sqlx::Error::Decode(format!("{column} is not a UUID").into()))
}

/// The exclusive upper bound of codes starting with `prefix` ('~' sorts
/// after every digit, in SQLite and in PostgreSQL's "C" collation): a
/// prefix test as an index range, `code >= prefix AND code < upper`.
pub fn prefix_upper(prefix: &str) -> String {
    format!("{prefix}~")
}

/// The rest of a newest-first page of things held on a day in a place
/// (activities, inspections), after `SELECT … FROM table WHERE `: the
/// `place` column lies within `f.village_code_prefix` or is one of the
/// `enclosing` places that contain it, the days `f.from..=f.to`, after the
/// cursor `f.before`, ordered by day and `id` column, at most `f.limit`.
pub fn push_held_page<'a, DB>(
    qb: &mut sqlx::QueryBuilder<'a, DB>,
    place: &str,
    id: &str,
    enclosing: &[String],
    f: &nuanxin_projections::activities::HeldListFilter,
) where
    DB: sqlx::Database,
    String: 'a + sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    chrono::NaiveDate: 'a + sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: 'a + sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let prefix = f.village_code_prefix.as_str();
    qb.push(format!("(({place} >= "))
        .push_bind(prefix.to_owned())
        .push(format!(" AND {place} < "))
        .push_bind(prefix_upper(prefix))
        .push(")");
    for p in enclosing {
        qb.push(format!(" OR {place} = ")).push_bind(p.clone());
    }
    qb.push(")");
    if let Some(from) = f.from {
        qb.push(" AND held_on >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(" AND held_on <= ").push_bind(to);
    }
    if let Some((on, before)) = f.before {
        qb.push(" AND (held_on < ")
            .push_bind(on)
            .push(" OR (held_on = ")
            .push_bind(on)
            .push(format!(" AND {id} < "))
            .push_bind(before.to_string())
            .push("))");
    }
    qb.push(format!(" ORDER BY held_on DESC, {id} DESC LIMIT "))
        .push_bind(i64::from(f.limit));
}
