//! The alert tables: `alerts` (one per family, role and due date, by a
//! UNIQUE key), `alert_scans` (days scanned), `alert_scan_lock` (scans run
//! one after another), `alert_outbox` (one message per raise, escalation or
//! reopening, written in the scan's transaction), `alert_deliveries` (one
//! message to one URL) and `alert_delivery_attempts`. The rules are in
//! `crate::alerts`; here is only what each statement does.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{prefix_upper, uuid, Db, Tx};
use crate::{on_pool, on_tx};

/// The state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(AlertStatus::Open),
            "acknowledged" => Some(AlertStatus::Acknowledged),
            "resolved" => Some(AlertStatus::Resolved),
            _ => None,
        }
    }
}

/// One alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: Uuid,
    pub family_id: Uuid,
    pub role: String,
    pub due_on: NaiveDate,
    pub village_code: String,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub raised_on: NaiveDate,
    pub level: i32,
    pub escalated_on: Option<NaiveDate>,
    pub status: AlertStatus,
    pub resolved_on: Option<NaiveDate>,
    pub acknowledged_by: Option<Uuid>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub ack_note: Option<String>,
}

const ALERT_COLUMNS: &str = "id, family_id, role, due_on, village_code, contact_id, contact_name, \
     raised_on, level, escalated_on, status, resolved_on, acknowledged_by, acknowledged_at, ack_note";

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: String,
    family_id: String,
    role: String,
    due_on: NaiveDate,
    village_code: String,
    contact_id: String,
    contact_name: String,
    raised_on: NaiveDate,
    level: i32,
    escalated_on: Option<NaiveDate>,
    status: String,
    resolved_on: Option<NaiveDate>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<DateTime<Utc>>,
    ack_note: Option<String>,
}

impl TryFrom<AlertRow> for Alert {
    type Error = sqlx::Error;

    fn try_from(r: AlertRow) -> Result<Self, sqlx::Error> {
        Ok(Alert {
            id: uuid(&r.id, "alerts.id")?,
            family_id: uuid(&r.family_id, "alerts.family_id")?,
            role: r.role,
            due_on: r.due_on,
            village_code: r.village_code,
            contact_id: uuid(&r.contact_id, "alerts.contact_id")?,
            contact_name: r.contact_name,
            raised_on: r.raised_on,
            level: r.level,
            escalated_on: r.escalated_on,
            status: AlertStatus::parse(&r.status)
                .ok_or_else(|| sqlx::Error::Decode("alerts.status is unknown".into()))?,
            resolved_on: r.resolved_on,
            acknowledged_by: r
                .acknowledged_by
                .map(|s| uuid(&s, "alerts.acknowledged_by"))
                .transpose()?,
            acknowledged_at: r.acknowledged_at,
            ack_note: r.ack_note,
        })
    }
}

/// One page of alerts within `prefix`, in the order they were raised
/// (ids are UUIDv7), after the alert `after`.
pub async fn list(
    db: &Db,
    status: Option<AlertStatus>,
    prefix: &str,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Alert>, sqlx::Error> {
    let mut sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if status.is_some() {
        sql.push_str(&format!(" AND status = {}", next()));
    }
    if !prefix.is_empty() {
        let (a, b) = (next(), next());
        sql.push_str(&format!(" AND village_code >= {a} AND village_code < {b}"));
    }
    if after.is_some() {
        sql.push_str(&format!(" AND id > {}", next()));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", next()));
    let rows: Vec<AlertRow> = on_pool!(db, pool => {
        let mut query = sqlx::query_as(&sql);
        if let Some(s) = status {
            query = query.bind(s.as_str());
        }
        if !prefix.is_empty() {
            query = query.bind(prefix.to_owned()).bind(prefix_upper(prefix));
        }
        if let Some(a) = after {
            query = query.bind(a.to_string());
        }
        query.bind(i64::from(limit)).fetch_all(pool).await?
    });
    rows.into_iter().map(Alert::try_from).collect()
}

/// One alert.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<Alert>, sqlx::Error> {
    let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
    let row: Option<AlertRow> = on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(pool).await?
    });
    row.map(Alert::try_from).transpose()
}

/// Acknowledges an open alert (a conditional UPDATE: of two at once, one
/// wins). Returns whether this one did.
pub async fn acknowledge(
    db: &Db,
    id: Uuid,
    user: Uuid,
    note: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE alerts SET status = 'acknowledged', acknowledged_by = $1, \
               acknowledged_at = $2, ack_note = $3 WHERE id = $4 AND status = 'open'";
    let done = on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(user.to_string())
            .bind(at)
            .bind(note)
            .bind(id.to_string())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done == 1)
}

/// Whether the scan of `day` has run.
pub async fn scanned(db: &Db, day: NaiveDate) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM alert_scans WHERE day = $1";
    let n: i64 = on_pool!(db, pool => sqlx::query_scalar(sql).bind(day).fetch_one(pool).await?);
    Ok(n > 0)
}

// ------------------------------------------------------------------ scan

/// Takes the scan lock: the first statement of every scan's transaction,
/// so scans (of any day, from any process) run one after the other.
pub async fn lock_scans(tx: &mut Tx) -> Result<(), sqlx::Error> {
    let sql = "UPDATE alert_scan_lock SET scans = scans + 1 WHERE id = 1";
    on_tx!(tx, conn => sqlx::query(sql).execute(&mut *conn).await.map(|_| ()))?;
    Ok(())
}

/// Whether `day` was scanned, read inside the scan's transaction.
pub async fn scanned_in(tx: &mut Tx, day: NaiveDate) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM alert_scans WHERE day = $1";
    let n: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar(sql).bind(day).fetch_one(&mut *conn).await?
    });
    Ok(n > 0)
}

/// Records that `day` was scanned.
pub async fn record_scan(tx: &mut Tx, day: NaiveDate) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO alert_scans (day) VALUES ($1) ON CONFLICT (day) \
               DO UPDATE SET runs = alert_scans.runs + 1, last_at = excluded.last_at";
    on_tx!(tx, conn => sqlx::query(sql).bind(day).execute(&mut *conn).await.map(|_| ()))?;
    Ok(())
}

/// Resolves every unresolved alert within `prefix` raised on or before
/// `on` whose family no longer has, on the day the alert was raised, a
/// schedule row with the alert's due date: an action moved the schedule (a
/// qualifying visit, a void, a reassignment, a release, a transfer, a
/// closed case). The question is asked of the raising day, not of `on`: a
/// key-person window that starts or ends between the two is a change of
/// date, not an action, and resolves nothing. Returns how many.
pub async fn resolve_moved(tx: &mut Tx, on: NaiveDate, prefix: &str) -> Result<u64, sqlx::Error> {
    let sql = "UPDATE alerts SET status = 'resolved', resolved_on = $1 \
         WHERE status IN ('open', 'acknowledged') AND raised_on <= $1 \
         AND village_code >= $2 AND village_code < $3 \
         AND NOT EXISTS (SELECT 1 FROM visit_schedule s WHERE s.family_id = alerts.family_id \
         AND s.role = alerts.role AND s.valid_from <= alerts.raised_on \
         AND s.valid_to > alerts.raised_on AND s.due_on = alerts.due_on)";
    let n = on_tx!(tx, conn => {
        sqlx::query(sql)
            .bind(on)
            .bind(prefix)
            .bind(prefix_upper(prefix))
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(n)
}

/// A schedule row overdue on the scan day, with its alert if it has a
/// resolved one. The contact's name is copied into a new alert so that it
/// names who was responsible even after a reassignment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    pub family_id: String,
    pub role: String,
    pub due_on: NaiveDate,
    pub village_code: String,
    pub contact_id: String,
    pub contact_name: String,
    pub alert_id: Option<String>,
    pub resolved_on: Option<NaiveDate>,
}

/// Schedule rows within `prefix` overdue on `on` that have no alert or a
/// resolved one.
pub async fn candidates(
    tx: &mut Tx,
    on: NaiveDate,
    prefix: &str,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let sql = "SELECT s.family_id, s.role, s.due_on, s.village_code, s.contact_id, \
         s.contact_name, a.id AS alert_id, a.resolved_on \
         FROM visit_schedule s LEFT JOIN alerts a \
         ON a.family_id = s.family_id AND a.role = s.role AND a.due_on = s.due_on \
         WHERE s.valid_from <= $1 AND s.valid_to > $1 AND s.due_on < $1 \
         AND s.village_code >= $2 AND s.village_code < $3 \
         AND (a.id IS NULL OR a.status = 'resolved') \
         ORDER BY s.family_id, s.role";
    on_tx!(tx, conn => {
        sqlx::query_as(sql)
            .bind(on)
            .bind(prefix)
            .bind(prefix_upper(prefix))
            .fetch_all(&mut *conn)
            .await
    })
}

/// Inserts level-0 open alerts raised on `on` for `fresh` (with the ids
/// given), skipping any (family, role, due date) that already has one.
/// Returns the ids actually inserted.
pub async fn raise(
    tx: &mut Tx,
    fresh: &[(&Candidate, String)],
    on: NaiveDate,
) -> Result<Vec<String>, sqlx::Error> {
    on_tx!(tx, conn, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
            "INSERT INTO alerts (id, family_id, role, due_on, village_code, contact_id, \
             contact_name, raised_on, level, status) ",
        );
        qb.push_values(fresh, |mut b, (c, id)| {
            b.push_bind(id.clone())
                .push_bind(c.family_id.clone())
                .push_bind(c.role.clone())
                .push_bind(c.due_on)
                .push_bind(c.village_code.clone())
                .push_bind(c.contact_id.clone())
                .push_bind(c.contact_name.clone())
                .push_bind(on)
                .push_bind(0i32)
                .push_bind("open");
        });
        qb.push(" ON CONFLICT (family_id, role, due_on) DO NOTHING RETURNING id");
        qb.build_query_scalar::<String>().fetch_all(&mut *conn).await
    })
}

/// Reopens a resolved alert; its (raised_on, level) when it did.
pub async fn reopen(tx: &mut Tx, id: &str) -> Result<Option<(NaiveDate, i32)>, sqlx::Error> {
    let sql = "UPDATE alerts SET status = 'open', resolved_on = NULL \
               WHERE id = $1 AND status = 'resolved' RETURNING raised_on, level";
    on_tx!(tx, conn => sqlx::query_as(sql).bind(id).fetch_optional(&mut *conn).await)
}

/// An unresolved alert that may have reached a higher level.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Escalation {
    pub id: String,
    pub family_id: String,
    pub role: String,
    pub due_on: NaiveDate,
    pub village_code: String,
    pub contact_id: String,
    pub raised_on: NaiveDate,
    pub level: i32,
}

/// Unresolved alerts within `prefix` below `max_level` raised on or before
/// `cutoff`.
pub async fn escalation_due(
    tx: &mut Tx,
    max_level: i32,
    cutoff: NaiveDate,
    prefix: &str,
) -> Result<Vec<Escalation>, sqlx::Error> {
    let sql = "SELECT id, family_id, role, due_on, village_code, contact_id, raised_on, level \
         FROM alerts WHERE status IN ('open', 'acknowledged') AND level < $1 AND raised_on <= $2 \
         AND village_code >= $3 AND village_code < $4 ORDER BY id";
    on_tx!(tx, conn => {
        sqlx::query_as(sql)
            .bind(max_level)
            .bind(cutoff)
            .bind(prefix)
            .bind(prefix_upper(prefix))
            .fetch_all(&mut *conn)
            .await
    })
}

/// Moves an alert from level `from` to `to` (only if still at `from`).
pub async fn escalate(
    tx: &mut Tx,
    id: &str,
    from: i32,
    to: i32,
    on: NaiveDate,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE alerts SET level = $1, escalated_on = $2 WHERE id = $3 AND level = $4";
    let n = on_tx!(tx, conn => {
        sqlx::query(sql)
            .bind(to)
            .bind(on)
            .bind(id)
            .bind(from)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// `alert_outbox.alert_kind` of an overdue-visit alert's messages.
pub const OVERDUE_VISIT: &str = "overdue_visit";
/// `alert_outbox.alert_kind` of an "inspections behind schedule" alert's
/// messages (`super::inspection_alerts`).
pub const INSPECTIONS_BEHIND: &str = "inspections_behind";

/// One outbox message: the exact JSON body posted (and signed).
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: String,
    pub alert_id: String,
    /// [`OVERDUE_VISIT`] or [`INSPECTIONS_BEHIND`]: which table `alert_id`
    /// names a row of.
    pub alert_kind: &'static str,
    /// `raised`, `escalated` or `reopened`.
    pub kind: &'static str,
    pub level: i32,
    pub body: String,
}

/// Writes outbox messages (in the transaction that changed the alerts).
pub async fn insert_outbox(tx: &mut Tx, messages: &[OutboxMessage]) -> Result<(), sqlx::Error> {
    if messages.is_empty() {
        return Ok(());
    }
    on_tx!(tx, conn, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> =
            sqlx::QueryBuilder::new("INSERT INTO alert_outbox (id, alert_id, alert_kind, kind, level, body) ");
        qb.push_values(messages, |mut b, m| {
            b.push_bind(m.id.clone())
                .push_bind(m.alert_id.clone())
                .push_bind(m.alert_kind)
                .push_bind(m.kind)
                .push_bind(m.level)
                .push_bind(m.body.clone());
        });
        qb.build().execute(&mut *conn).await?;
    });
    Ok(())
}

// ------------------------------------------------------------- delivery

/// The three tables of one outbox: its messages (`id`, `body` — the exact
/// JSON posted — and `fanned_out`), their deliveries (one per message and
/// URL: `outbox_id`, `url`, `status`, `attempts`, `next_attempt_ms`,
/// `delivered_at`) and every attempt of a delivery. Alerts have one;
/// signed checkpoints (`crate::store::audit_checkpoints`) another, with
/// the same columns, so one delivery worker serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbox {
    /// For logs: `alert` or `checkpoint`.
    pub name: &'static str,
    pub messages: &'static str,
    pub deliveries: &'static str,
    pub attempts: &'static str,
}

/// The alert messages.
pub const OUTBOX: Outbox = Outbox {
    name: "alert",
    messages: "alert_outbox",
    deliveries: "alert_deliveries",
    attempts: "alert_delivery_attempts",
};

/// Outbox messages not fanned out yet, oldest first.
pub async fn unfanned(db: &Db, outbox: Outbox, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!(
        "SELECT id FROM {} WHERE NOT fanned_out ORDER BY id LIMIT $1",
        outbox.messages
    );
    on_pool!(db, pool => sqlx::query_scalar(&sql).bind(limit).fetch_all(pool).await)
}

/// Makes one pending delivery per (message, URL) pair (existing pairs are
/// kept) and marks the messages fanned out, in one transaction.
pub async fn fan_out(
    db: &Db,
    outbox: Outbox,
    ids: &[String],
    urls: &[String],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let pairs: Vec<(&String, &String)> = ids
        .iter()
        .flat_map(|id| urls.iter().map(move |u| (id, u)))
        .collect();
    let mut tx = db.begin().await?;
    for chunk in pairs.chunks(500) {
        on_tx!(&mut tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {} (id, outbox_id, url, status, attempts, next_attempt_ms) ",
                outbox.deliveries
            ));
            qb.push_values(chunk, |mut b, (outbox_id, url)| {
                b.push_bind(Uuid::now_v7().to_string())
                    .push_bind((*outbox_id).clone())
                    .push_bind((*url).clone())
                    .push_bind("pending")
                    .push_bind(0i32)
                    .push_bind(now_ms);
            });
            qb.push(" ON CONFLICT (outbox_id, url) DO NOTHING");
            qb.build().execute(&mut *conn).await?;
        });
    }
    on_tx!(&mut tx, conn, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> =
            sqlx::QueryBuilder::new(format!("UPDATE {} SET fanned_out = ", outbox.messages));
        qb.push_bind(true).push(" WHERE id IN (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(id.clone());
        }
        qb.push(")");
        qb.build().execute(&mut *conn).await?;
    });
    tx.commit().await
}

/// A delivery that is due.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueDelivery {
    pub id: String,
    pub url: String,
    pub attempts: i32,
    pub next_attempt_ms: i64,
    pub body: String,
}

/// Pending deliveries to `urls` due at `now_ms`, oldest first.
pub async fn due_deliveries(
    db: &Db,
    outbox: Outbox,
    urls: &[String],
    now_ms: i64,
    limit: i64,
) -> Result<Vec<DueDelivery>, sqlx::Error> {
    on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(format!(
            "SELECT d.id, d.url, d.attempts, d.next_attempt_ms, o.body FROM {} d \
             JOIN {} o ON o.id = d.outbox_id WHERE d.status = 'pending' \
             AND d.next_attempt_ms <= ",
            outbox.deliveries, outbox.messages
        ));
        qb.push_bind(now_ms).push(" AND d.url IN (");
        let mut sep = qb.separated(", ");
        for u in urls {
            sep.push_bind(u.clone());
        }
        qb.push(") ORDER BY d.next_attempt_ms, d.id LIMIT ").push_bind(limit);
        qb.build_query_as().fetch_all(pool).await
    })
}

/// When the next pending delivery to `urls` is due (Unix ms).
pub async fn next_due(
    db: &Db,
    outbox: Outbox,
    urls: &[String],
) -> Result<Option<i64>, sqlx::Error> {
    on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(format!(
            "SELECT MIN(next_attempt_ms) FROM {} WHERE status = 'pending' AND url IN (",
            outbox.deliveries
        ));
        let mut sep = qb.separated(", ");
        for u in urls {
            sep.push_bind(u.clone());
        }
        qb.push(")");
        qb.build_query_scalar::<Option<i64>>().fetch_one(pool).await
    })
}

/// Takes a delivery for one attempt, only if nobody moved it since it was
/// read: its next attempt moves to the end of the lease.
pub async fn claim(
    db: &Db,
    outbox: Outbox,
    d: &DueDelivery,
    lease_until_ms: i64,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE {} SET next_attempt_ms = $1 \
         WHERE id = $2 AND status = 'pending' AND next_attempt_ms = $3",
        outbox.deliveries
    );
    let n = on_pool!(db, pool => {
        sqlx::query(&sql)
            .bind(lease_until_ms)
            .bind(&d.id)
            .bind(d.next_attempt_ms)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// `Some(next)` schedules another attempt at that Unix ms; `None`
    /// marks the delivery delivered.
    pub retry_at_ms: Option<i64>,
}

/// Records an attempt and delivers the row or schedules the next attempt —
/// the latter only while the row still holds the claim `lease` (a later
/// claim by another worker is left alone).
pub async fn record_attempt(
    db: &Db,
    outbox: Outbox,
    delivery_id: &str,
    lease: i64,
    outcome: &AttemptOutcome,
) -> Result<(), sqlx::Error> {
    let deliveries = outbox.deliveries;
    let mut tx = db.begin().await?;
    let attempt: i32 = on_tx!(&mut tx, conn => match outcome.retry_at_ms {
        None => sqlx::query_scalar(&format!(
            "UPDATE {deliveries} SET attempts = attempts + 1, status = 'delivered', \
             delivered_at = COALESCE(delivered_at, $1) WHERE id = $2 RETURNING attempts",
        ))
        .bind(outcome.at)
        .bind(delivery_id)
        .fetch_one(&mut *conn)
        .await?,
        Some(next) => sqlx::query_scalar(&format!(
            "UPDATE {deliveries} SET attempts = attempts + 1, next_attempt_ms = \
             CASE WHEN next_attempt_ms = $3 THEN $1 ELSE next_attempt_ms END \
             WHERE id = $2 RETURNING attempts",
        ))
        .bind(next)
        .bind(delivery_id)
        .bind(lease)
        .fetch_one(&mut *conn)
        .await?,
    });
    let sql = format!(
        "INSERT INTO {} (delivery_id, attempt, at, status_code, error) \
         VALUES ($1, $2, $3, $4, $5)",
        outbox.attempts
    );
    on_tx!(&mut tx, conn => {
        sqlx::query(&sql)
            .bind(delivery_id)
            .bind(attempt)
            .bind(outcome.at)
            .bind(outcome.status_code)
            .bind(&outcome.error)
            .execute(&mut *conn)
            .await?;
    });
    tx.commit().await
}

/// One line of an alert's messages: a message, one of its deliveries (if
/// fanned out) and one attempt of it (if any), in message, URL, attempt
/// order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageLine {
    pub outbox_id: String,
    pub kind: String,
    pub level: i32,
    pub delivery_id: Option<String>,
    pub url: Option<String>,
    pub status: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub attempt: Option<i32>,
    pub at: Option<DateTime<Utc>>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

/// The outbox messages of an alert with every delivery and attempt.
pub async fn message_lines(db: &Db, alert_id: Uuid) -> Result<Vec<MessageLine>, sqlx::Error> {
    let sql = "SELECT o.id AS outbox_id, o.kind, o.level, d.id AS delivery_id, d.url, d.status, \
               d.delivered_at, a.attempt, a.at, a.status_code, a.error \
               FROM alert_outbox o \
               LEFT JOIN alert_deliveries d ON d.outbox_id = o.id \
               LEFT JOIN alert_delivery_attempts a ON a.delivery_id = d.id \
               WHERE o.alert_id = $1 ORDER BY o.id, d.url, a.attempt";
    on_pool!(db, pool => sqlx::query_as(sql).bind(alert_id.to_string()).fetch_all(pool).await)
}
