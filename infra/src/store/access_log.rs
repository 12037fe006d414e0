//! `access_log`: who read which family's personal data, when, from which
//! request. Append-only in the database (triggers), like the event log.

use chrono::{DateTime, Utc};
use nuanxin_domain::Scope;
use uuid::Uuid;

use super::{prefix_upper, uuid, Db, Tx, ROWS_PER_INSERT};
use crate::{on_pool, on_tx};

/// One read of a family's personal data by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    /// What was read: `case_file`, `case_file_as_of`, `history`, `history.csv`.
    pub endpoint: String,
    /// When (server clock).
    pub at: DateTime<Utc>,
    pub request_id: String,
}

/// Appends one record.
pub async fn insert(db: &Db, record: &AccessRecord) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO access_log (id, user_id, family_id, endpoint, at, request_id) \
               VALUES ($1, $2, $3, $4, $5, $6)";
    on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(record.id.to_string())
            .bind(record.user_id.to_string())
            .bind(record.family_id.to_string())
            .bind(&record.endpoint)
            .bind(record.at)
            .bind(&record.request_id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// A read made from the command line (`nuanxin audit export`, `audit
/// verify`): by an operating-system user, with the reason they gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliRead {
    pub id: Uuid,
    /// The family read, or `None` for the whole log.
    pub family_id: Option<Uuid>,
    /// `cli:audit export`, `cli:audit verify`.
    pub endpoint: String,
    pub at: DateTime<Utc>,
    pub os_user: String,
    pub reason: String,
}

impl CliRead {
    /// `user_id` of a command-line read: no Nuanxin user made it.
    pub const NO_USER: Uuid = Uuid::nil();
    /// `family_id` of a read of the whole log.
    pub const ALL_FAMILIES: Uuid = Uuid::nil();
}

/// Appends a command-line read.
pub async fn insert_cli(db: &Db, read: &CliRead) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO access_log \
               (id, user_id, family_id, endpoint, at, request_id, os_user, reason) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(read.id.to_string())
            .bind(CliRead::NO_USER.to_string())
            .bind(read.family_id.unwrap_or(CliRead::ALL_FAMILIES).to_string())
            .bind(&read.endpoint)
            .bind(read.at)
            .bind(format!("cli-{}", read.id))
            .bind(&read.os_user)
            .bind(&read.reason)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Appends many records inside `tx` (one multi-row INSERT per chunk).
pub async fn insert_many(tx: &mut Tx, records: &[&AccessRecord]) -> Result<(), sqlx::Error> {
    for chunk in records.chunks(ROWS_PER_INSERT) {
        on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                "INSERT INTO access_log (id, user_id, family_id, endpoint, at, request_id) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.to_string())
                    .push_bind(r.user_id.to_string())
                    .push_bind(r.family_id.to_string())
                    .push_bind(r.endpoint.clone())
                    .push_bind(r.at)
                    .push_bind(r.request_id.clone());
            });
            qb.build().execute(&mut *conn).await?;
        });
    }
    Ok(())
}

/// A listed access record, with the reader's name and role when the user
/// still exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The record's place in the log (the page cursor).
    pub position: i64,
    pub record: AccessRecord,
    pub user_name: Option<String>,
    pub user_role: Option<String>,
    /// For a command-line read: the operating-system user and the reason.
    pub os_user: Option<String>,
    pub reason: Option<String>,
}

/// Which access records to list.
#[derive(Debug, Clone)]
pub struct AccessFilter {
    pub family_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    /// Only reads of families whose village code lies within this scope
    /// (`""` for all, including families no longer in the case files).
    pub scope: Scope,
    /// Only records older than this position (the page cursor).
    pub before: Option<i64>,
    pub limit: u32,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    position: i64,
    id: String,
    user_id: String,
    family_id: String,
    endpoint: String,
    at: DateTime<Utc>,
    request_id: String,
    user_name: Option<String>,
    user_role: Option<String>,
    os_user: Option<String>,
    reason: Option<String>,
}

impl TryFrom<EntryRow> for AccessEntry {
    type Error = sqlx::Error;

    fn try_from(r: EntryRow) -> Result<Self, sqlx::Error> {
        Ok(AccessEntry {
            position: r.position,
            record: AccessRecord {
                id: uuid(&r.id, "access_log.id")?,
                user_id: uuid(&r.user_id, "access_log.user_id")?,
                family_id: uuid(&r.family_id, "access_log.family_id")?,
                endpoint: r.endpoint,
                at: r.at,
                request_id: r.request_id,
            },
            user_name: r.user_name,
            user_role: r.user_role,
            os_user: r.os_user,
            reason: r.reason,
        })
    }
}

/// Access records matching `filter`, newest first.
pub async fn list(db: &Db, filter: &AccessFilter) -> Result<Vec<AccessEntry>, sqlx::Error> {
    let sql = "SELECT a.position, a.id, a.user_id, a.family_id, a.endpoint, a.at, a.request_id, \
               u.name AS user_name, u.role AS user_role, a.os_user, a.reason \
               FROM access_log a LEFT JOIN users u ON u.id = a.user_id \
               WHERE ($1 IS NULL OR a.family_id = $1) \
               AND ($2 IS NULL OR a.user_id = $2) \
               AND ($3 = '' OR a.family_id IN (SELECT family_id FROM case_files \
                    WHERE village_code >= $3 AND village_code < $4)) \
               AND ($5 IS NULL OR a.position < $5) \
               ORDER BY a.position DESC LIMIT $6";
    let rows: Vec<EntryRow> = on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(filter.family_id.map(|f| f.to_string()))
            .bind(filter.user_id.map(|u| u.to_string()))
            .bind(filter.scope.as_str())
            .bind(prefix_upper(filter.scope.as_str()))
            .bind(filter.before)
            .bind(i64::from(filter.limit))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(AccessEntry::try_from).collect()
}
