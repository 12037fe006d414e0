//! The SQL of the operator's commands (`nuanxin backup`, `restore`,
//! `doctor`): an online copy of an SQLite database, integrity and
//! migration checks, the database clock, and the figures the doctor shows;
//! fresh planner statistics for a store filled fast (import, demo).

use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use super::Db;
use crate::on_pool;

/// Writes a consistent copy of the SQLite database behind `db` to `to`
/// (`VACUUM INTO`: one read transaction, so the copy is the database as of
/// one instant, while writers go on). `to` must not exist.
pub async fn sqlite_copy(db: &Db, to: &Path) -> Result<(), sqlx::Error> {
    let Db::Sqlite(pool) = db else {
        return Err(sqlx::Error::Protocol("VACUUM INTO is SQLite only".into()));
    };
    sqlx::query("VACUUM INTO ?")
        .bind(to.to_string_lossy().into_owned())
        .execute(pool)
        .await
        .map(|_| ())
}

/// Copies the SQLite database file `from` (opened read-only) to `to` as
/// one consistent, compacted file.
pub async fn sqlite_copy_file(from: &Path, to: &Path) -> Result<(), sqlx::Error> {
    let mut conn = SqliteConnectOptions::from_str("sqlite://")?
        .filename(from)
        .read_only(true)
        .connect()
        .await?;
    let copied = sqlx::query("VACUUM INTO ?")
        .bind(to.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await;
    conn.close().await?;
    copied.map(|_| ())
}

/// The SQLite file `path` opened read-only (no journal-mode change, no
/// `-wal` file made), e.g. to verify a backup.
pub async fn sqlite_read_only(path: &Path) -> Result<Db, sqlx::Error> {
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    Ok(Db::Sqlite(pool))
}

/// Opens the SQLite file `path` read-only and answers `PRAGMA quick_check`
/// (`"ok"` when sound) and whether it holds an `events` table.
pub async fn sqlite_file_check(path: &Path) -> Result<(String, bool), sqlx::Error> {
    let mut conn = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await?;
    let events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok((check, events == 1))
}

/// SQLite's `PRAGMA quick_check` (`"ok"` when sound) and journal mode.
pub async fn sqlite_health(db: &Db) -> Result<Option<(String, String, String)>, sqlx::Error> {
    let Db::Sqlite(pool) = db else {
        return Ok(None);
    };
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(pool)
        .await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await?;
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(pool)
        .await?;
    Ok(Some((check, mode, version)))
}

/// The server's version string (PostgreSQL) or SQLite's.
pub async fn server_version(db: &Db) -> Result<String, sqlx::Error> {
    match db {
        Db::Sqlite(pool) => {
            sqlx::query_scalar("SELECT 'SQLite ' || sqlite_version()")
                .fetch_one(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT 'PostgreSQL ' || current_setting('server_version')")
                .fetch_one(pool)
                .await
        }
    }
}

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub checksum: Vec<u8>,
    pub success: bool,
}

/// The migrations recorded as applied (none when the table is missing:
/// a database that was never migrated).
pub async fn applied_migrations(db: &Db) -> Result<Vec<AppliedMigration>, sqlx::Error> {
    let exists: bool = match db {
        Db::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(pool)
        .await?
            == 1,
        Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(pool)
                .await?
        }
    };
    if !exists {
        return Ok(Vec::new());
    }
    let sql = "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version";
    on_pool!(db, pool => {
        let rows = sqlx::query(sql).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AppliedMigration {
                    version: r.try_get("version")?,
                    checksum: r.try_get("checksum")?,
                    success: r.try_get("success")?,
                })
            })
            .collect()
    })
}

/// The database's clock.
pub async fn database_now(db: &Db) -> Result<DateTime<Utc>, sqlx::Error> {
    match db {
        Db::Sqlite(pool) => {
            let text: String = sqlx::query_scalar("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
                .fetch_one(pool)
                .await?;
            text.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT clock_timestamp()")
                .fetch_one(pool)
                .await
        }
    }
}

/// What the doctor reports about the data: the log's head position, the
/// newest event's `recorded_at` (database clock), the number of families
/// with a case file, and the newest scanned day.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub log_head: i64,
    pub newest_event_at: Option<DateTime<Utc>>,
    pub families: i64,
    pub last_scan: Option<NaiveDate>,
}

#[derive(sqlx::FromRow)]
struct FigureRow {
    log_head: Option<i64>,
    families: i64,
    last_scan: Option<String>,
}

pub async fn figures(db: &Db) -> Result<Figures, sqlx::Error> {
    let sql = "SELECT (SELECT MAX(position) FROM events) AS log_head, \
               (SELECT COUNT(*) FROM case_files) AS families, \
               (SELECT CAST(MAX(day) AS TEXT) FROM alert_scans) AS last_scan";
    let row: FigureRow = on_pool!(db, pool => sqlx::query_as(sql).fetch_one(pool).await?);
    let newest_event_at: Option<DateTime<Utc>> = match row.log_head {
        None => None,
        Some(head) => match db {
            Db::Sqlite(pool) => {
                let text: Option<String> =
                    sqlx::query_scalar("SELECT recorded_at FROM events WHERE position = ?")
                        .bind(head)
                        .fetch_optional(pool)
                        .await?;
                text.and_then(|t| parse_sqlite_instant(&t))
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar("SELECT recorded_at FROM events WHERE position = $1")
                    .bind(head)
                    .fetch_optional(pool)
                    .await?
            }
        },
    };
    Ok(Figures {
        log_head: row.log_head.unwrap_or(0),
        newest_event_at,
        families: row.families,
        last_scan: row
            .last_scan
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
    })
}

/// SQLite keeps instants as text: RFC 3339, or `YYYY-MM-DD HH:MM:SS`.
fn parse_sqlite_instant(text: &str) -> Option<DateTime<Utc>> {
    text.parse().ok().or_else(|| {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(|t| t.and_utc())
    })
}

/// Webhook deliveries not yet made: how many, and the error of the latest
/// failed attempt.
#[derive(Debug, Clone, Default)]
pub struct PendingDeliveries {
    pub pending: i64,
    pub latest_error: Option<String>,
    pub latest_status: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    status_code: Option<i32>,
    error: Option<String>,
}

pub async fn pending_deliveries(db: &Db) -> Result<PendingDeliveries, sqlx::Error> {
    let count = "SELECT COUNT(*) FROM alert_deliveries WHERE status = 'pending'";
    let latest = "SELECT a.status_code, a.error FROM alert_delivery_attempts a \
                  JOIN alert_deliveries d ON d.id = a.delivery_id \
                  WHERE d.status = 'pending' ORDER BY a.at DESC LIMIT 1";
    let pending: i64 = on_pool!(db, pool => sqlx::query_scalar(count).fetch_one(pool).await?);
    let attempt: Option<AttemptRow> =
        on_pool!(db, pool => sqlx::query_as(latest).fetch_optional(pool).await?);
    Ok(PendingDeliveries {
        pending,
        latest_error: attempt.as_ref().and_then(|a| a.error.clone()),
        latest_status: attempt.and_then(|a| a.status_code),
    })
}

/// Brings the planner's statistics of the tables every command writes up
/// to date: PostgreSQL `ANALYZE`. A store filled fast from empty — an
/// import, the demo — otherwise keeps running the statements its
/// connections planned while the tables were empty (sequential scans of
/// the idempotency keys and the visit schedule in every group commit,
/// slower with every row) until autovacuum's next analyze; new statistics
/// make every connection plan them again. Nothing on SQLite: a command's
/// statements there are key lookups, and the server refreshes SQLite's
/// statistics itself ([`Db::optimize`], at start and hourly).
pub async fn refresh_statistics(db: &Db) -> Result<(), sqlx::Error> {
    if let Db::Postgres(pool) = db {
        sqlx::query(
            "ANALYZE events, idempotency_keys, case_files, visit_schedule, family_key_periods",
        )
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// [`refresh_statistics`] in a task of its own, so that whoever asks keeps
/// driving the commands they have under way (which hold pool connections
/// while they wait to be polled); a failure is only logged.
pub fn refresh_statistics_in_background(db: &Db) {
    if !matches!(db, Db::Postgres(_)) {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        if let Err(e) = refresh_statistics(&db).await {
            tracing::warn!(error = %e, "refreshing the planner's statistics failed");
        }
    });
}
