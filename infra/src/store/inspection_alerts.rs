//! `inspection_alerts`: "inspections behind schedule", one per association
//! and year (UNIQUE). The rules are in `crate::alerts::inspections`; here is
//! only what each statement does. Their webhook messages go into
//! `alert_outbox` (`super::alerts::insert_outbox`) with `alert_kind =
//! 'inspections_behind'`.

use chrono::NaiveDate;
use uuid::Uuid;

use super::{prefix_upper, uuid, Db, Tx};
use crate::{on_pool, on_tx};

/// An inspection alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectionAlert {
    pub id: Uuid,
    pub jurisdiction: String,
    /// `city` or `county`.
    pub level: String,
    pub year: i32,
    pub required: i32,
    /// As of `checked_on`, the last scan that looked at it.
    pub expected: i32,
    pub held: i32,
    pub checked_on: NaiveDate,
    pub raised_on: NaiveDate,
    /// `open` or `resolved`.
    pub status: String,
    pub resolved_on: Option<NaiveDate>,
}

const COLUMNS: &str = "id, jurisdiction, level, year, required, expected, held, checked_on, \
     raised_on, status, resolved_on";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    jurisdiction: String,
    level: String,
    year: i32,
    required: i32,
    expected: i32,
    held: i32,
    checked_on: NaiveDate,
    raised_on: NaiveDate,
    status: String,
    resolved_on: Option<NaiveDate>,
}

impl TryFrom<Row> for InspectionAlert {
    type Error = sqlx::Error;

    fn try_from(r: Row) -> Result<Self, sqlx::Error> {
        Ok(InspectionAlert {
            id: uuid(&r.id, "inspection_alerts.id")?,
            jurisdiction: r.jurisdiction,
            level: r.level,
            year: r.year,
            required: r.required,
            expected: r.expected,
            held: r.held,
            checked_on: r.checked_on,
            raised_on: r.raised_on,
            status: r.status,
            resolved_on: r.resolved_on,
        })
    }
}

/// What a scan found for one association.
#[derive(Debug, Clone)]
pub struct Finding<'a> {
    pub jurisdiction: &'a str,
    pub level: &'static str,
    pub year: i32,
    pub required: u32,
    pub expected: u32,
    pub held: u32,
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The alert of (jurisdiction, year), if any, read in the scan's
/// transaction.
pub async fn of(
    tx: &mut Tx,
    jurisdiction: &str,
    year: i32,
) -> Result<Option<InspectionAlert>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM inspection_alerts WHERE jurisdiction = $1 AND year = $2");
    let row: Option<Row> = on_tx!(tx, conn => {
        sqlx::query_as(&sql)
            .bind(jurisdiction)
            .bind(year)
            .fetch_optional(&mut *conn)
            .await?
    });
    row.map(InspectionAlert::try_from).transpose()
}

/// Raises an open alert for `f` on `on` unless (jurisdiction, year) has
/// one. Returns whether this call raised it.
pub async fn raise(
    tx: &mut Tx,
    id: Uuid,
    f: &Finding<'_>,
    on: NaiveDate,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO inspection_alerts ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 'open', NULL) \
         ON CONFLICT (jurisdiction, year) DO NOTHING RETURNING id"
    );
    let inserted: Option<String> = on_tx!(tx, conn => {
        sqlx::query_scalar(&sql)
            .bind(id.to_string())
            .bind(f.jurisdiction)
            .bind(f.level)
            .bind(f.year)
            .bind(int(f.required))
            .bind(int(f.expected))
            .bind(int(f.held))
            .bind(on)
            .fetch_optional(&mut *conn)
            .await?
    });
    Ok(inserted.is_some())
}

/// Records the figures of the latest scan on an alert.
pub async fn touch(
    tx: &mut Tx,
    id: Uuid,
    f: &Finding<'_>,
    on: NaiveDate,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE inspection_alerts SET required = $1, expected = $2, held = $3, \
               checked_on = $4 WHERE id = $5";
    on_tx!(tx, conn => {
        sqlx::query(sql)
            .bind(int(f.required))
            .bind(int(f.expected))
            .bind(int(f.held))
            .bind(on)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    });
    Ok(())
}

/// Resolves an open alert on `on`; whether it did.
pub async fn resolve(tx: &mut Tx, id: Uuid, on: NaiveDate) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE inspection_alerts SET status = 'resolved', resolved_on = $1 \
               WHERE id = $2 AND status = 'open'";
    let n = on_tx!(tx, conn => {
        sqlx::query(sql)
            .bind(on)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Reopens a resolved alert; whether it did.
pub async fn reopen(tx: &mut Tx, id: Uuid) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE inspection_alerts SET status = 'open', resolved_on = NULL \
               WHERE id = $1 AND status = 'resolved'";
    let n = on_tx!(tx, conn => {
        sqlx::query(sql)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// A page of alerts of associations within `prefix`, in the order raised.
pub async fn list(
    db: &Db,
    prefix: &str,
    status: Option<&str>,
    year: Option<i32>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<InspectionAlert>, sqlx::Error> {
    let rows: Vec<Row> = on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM inspection_alerts WHERE jurisdiction >= "
        ));
        qb.push_bind(prefix.to_owned())
            .push(" AND jurisdiction < ")
            .push_bind(prefix_upper(prefix));
        if let Some(s) = status {
            qb.push(" AND status = ").push_bind(s.to_owned());
        }
        if let Some(y) = year {
            qb.push(" AND year = ").push_bind(y);
        }
        if let Some(a) = after {
            qb.push(" AND id > ").push_bind(a.to_string());
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        qb.build_query_as().fetch_all(pool).await?
    });
    rows.into_iter().map(InspectionAlert::try_from).collect()
}
