//! Overdue-visit alerts: raised once per (family, role, due date) when the
//! visit schedule says the item is overdue, escalated one jurisdiction level
//! up per `escalate_after_days` it stays unresolved, resolved when a later
//! scan no longer finds the item overdue with that due date, acknowledged
//! with a note, and pushed to webhooks through an outbox.
//!
//! - [`scan`]: the daily scan (raise, escalate, resolve, reopen), one
//!   transaction that also writes the outbox;
//! - [`delivery`]: the worker that posts outbox messages to the webhook URLs,
//!   signed, retried with exponential backoff, every attempt recorded;
//! - [`scheduler`]: the daily trigger inside `serve`.
//!
//! This module holds the configuration, the levels, and the queries the API
//! serves (list, one alert with recipients and deliveries, acknowledge).
//! Nothing here logs personal data: logs name alert and delivery ids only.

pub mod delivery;
pub mod scan;
pub mod scheduler;

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use nuanxin_domain::{Scope, UserRole};
use nuanxin_projections::schedule::prefix_upper;
use nuanxin_projections::{on_pool, Db};
use uuid::Uuid;

use crate::cases::{Cases, ExecError};
use crate::users::Secret;

pub use scan::{ScanMode, ScanReport};

/// The highest level: the province.
pub const MAX_LEVEL: i32 = 4;

/// The length of the jurisdiction code prefix that receives an alert at
/// `level`: 0 = the village (and its contact), 1 = township, 2 = county,
/// 3 = city, 4 = province.
pub fn level_prefix_len(level: i32) -> usize {
    match level {
        i32::MIN..=0 => 12,
        1 => 9,
        2 => 6,
        3 => 4,
        _ => 2,
    }
}

/// The name of a level (`village`, `township`, `county`, `city`, `province`).
pub fn level_name(level: i32) -> &'static str {
    match level {
        i32::MIN..=0 => "village",
        1 => "township",
        2 => "county",
        3 => "city",
        _ => "province",
    }
}

/// The level an alert raised on `raised_on` has reached on `on`: one level
/// per full `escalate_after_days` days, at most [`MAX_LEVEL`].
pub fn level_on(raised_on: NaiveDate, on: NaiveDate, escalate_after_days: u32) -> i32 {
    let days = (on - raised_on).num_days().max(0);
    let step = i64::from(escalate_after_days.max(1));
    (days / step).min(i64::from(MAX_LEVEL)) as i32
}

/// How alerts are scanned and delivered (`serve` flags and variables).
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// URLs every alert is posted to (`NUANXIN_ALERT_WEBHOOKS`).
    pub webhooks: Vec<String>,
    /// The HMAC-SHA256 key of `X-Nuanxin-Signature`
    /// (`NUANXIN_ALERT_WEBHOOK_SECRET`); unsigned without one.
    pub secret: Option<Secret>,
    /// Local time of the daily scan (`NUANXIN_ALERT_SCAN_AT`, default 06:00).
    pub scan_at: NaiveTime,
    /// Whether `serve` runs the daily scan at all.
    pub scheduler: bool,
    /// The first retry delay; each further one doubles, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Timeout of one webhook request.
    pub request_timeout: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            secret: None,
            scan_at: NaiveTime::from_hms_opt(6, 0, 0).expect("valid time"),
            scheduler: true,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Wakes this process's delivery workers (after a scan wrote the outbox).
static WAKE: LazyLock<tokio::sync::Notify> = LazyLock::new(tokio::sync::Notify::new);

pub(crate) fn wake_delivery() {
    WAKE.notify_waiters();
}

pub(crate) fn woken() -> &'static tokio::sync::Notify {
    &WAKE
}

/// Scans `on` with the policy in force, after bringing the schedule up to
/// the head of the log. `Ok(None)`: mode [`ScanMode::IfNotRun`] and the day
/// was already scanned.
pub async fn run_scan(
    cases: &Cases,
    on: NaiveDate,
    mode: ScanMode,
) -> Result<Option<ScanReport>, ExecError> {
    if let Err(e) = cases.catch_up().await {
        tracing::warn!(error = %e, "catching up the schedule before an alert scan failed");
    }
    let policy = cases.policy();
    let report = scan::scan(cases.db(), on, policy.escalate_after_days, mode).await?;
    if report.is_some() {
        wake_delivery();
    }
    Ok(report)
}

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

impl Alert {
    /// The jurisdiction code that receives the alert at its level.
    pub fn jurisdiction(&self) -> &str {
        let n = level_prefix_len(self.level).min(self.village_code.len());
        &self.village_code[..n]
    }

    pub fn is_within(&self, scope: &Scope) -> bool {
        self.village_code.starts_with(scope.as_str())
    }
}

const ALERT_COLUMNS: &str = "id, family_id, role, due_on, village_code, contact_id, contact_name, \
     raised_on, level, escalated_on, status, resolved_on, acknowledged_by, acknowledged_at, ack_note";

fn bad(what: &'static str) -> sqlx::Error {
    sqlx::Error::Decode(what.into())
}

fn uuid_of(s: &str, what: &'static str) -> Result<Uuid, sqlx::Error> {
    s.parse().map_err(|_| bad(what))
}

/// An `alerts` row in [`ALERT_COLUMNS`] order.
type AlertRow = (
    String,
    String,
    String,
    NaiveDate,
    String,
    String,
    String,
    NaiveDate,
    i32,
    Option<NaiveDate>,
    String,
    Option<NaiveDate>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
);

fn alert_from_row(row: AlertRow) -> Result<Alert, sqlx::Error> {
    let (
        id,
        family_id,
        role,
        due_on,
        village_code,
        contact_id,
        contact_name,
        raised_on,
        level,
        escalated_on,
        status,
        resolved_on,
        acknowledged_by,
        acknowledged_at,
        ack_note,
    ) = row;
    Ok(Alert {
        id: uuid_of(&id, "alerts.id is not a UUID")?,
        family_id: uuid_of(&family_id, "alerts.family_id is not a UUID")?,
        role,
        due_on,
        village_code,
        contact_id: uuid_of(&contact_id, "alerts.contact_id is not a UUID")?,
        contact_name,
        raised_on,
        level,
        escalated_on,
        status: AlertStatus::parse(&status).ok_or_else(|| bad("alerts.status is unknown"))?,
        resolved_on,
        acknowledged_by: acknowledged_by
            .map(|s| uuid_of(&s, "alerts.acknowledged_by is not a UUID"))
            .transpose()?,
        acknowledged_at,
        ack_note,
    })
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
    on_pool!(db, pool => {
        let mut query = sqlx::query_as::<_, AlertRow>(&sql);
        if let Some(s) = status {
            query = query.bind(s.as_str());
        }
        if !prefix.is_empty() {
            query = query.bind(prefix.to_owned()).bind(prefix_upper(prefix));
        }
        if let Some(a) = after {
            query = query.bind(a.to_string());
        }
        let rows = query.bind(i64::from(limit)).fetch_all(pool).await?;
        rows.into_iter().map(alert_from_row).collect()
    })
}

/// One alert.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<Alert>, sqlx::Error> {
    let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
    on_pool!(db, pool => {
        sqlx::query_as::<_, AlertRow>(&sql)
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
            .map(alert_from_row)
            .transpose()
    })
}

/// A user who receives an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub id: Uuid,
    pub name: String,
    pub role: UserRole,
    pub scope: String,
}

/// The scopes that cover `village_code` with at most `max_len` digits.
fn covering_scopes(village_code: &str, max_len: usize) -> Vec<String> {
    [0usize, 2, 4, 6, 9, 12]
        .into_iter()
        .filter(|n| *n <= max_len && *n <= village_code.len())
        .map(|n| village_code[..n].to_owned())
        .collect()
}

/// The users an alert goes to at its level: supervisors and admins whose
/// scope covers the family and is no narrower than the level's
/// jurisdiction; at level 0 also the caseworkers whose scope covers it.
/// Widest scope last.
pub async fn recipients(db: &Db, alert: &Alert) -> Result<Vec<Recipient>, sqlx::Error> {
    let scopes = covering_scopes(&alert.village_code, level_prefix_len(alert.level));
    let rows: Vec<(String, String, String, String)> = on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> =
            sqlx::QueryBuilder::new("SELECT id, name, role, scope FROM users WHERE scope IN (");
        let mut sep = qb.separated(", ");
        for s in &scopes {
            sep.push_bind(s.clone());
        }
        qb.push(") AND role IN ('supervisor', 'admin'");
        if alert.level == 0 {
            qb.push(", 'caseworker'");
        }
        qb.push(")");
        qb.build_query_as().fetch_all(pool).await?
    });
    let mut out = rows
        .into_iter()
        .map(|(id, name, role, scope)| {
            Ok(Recipient {
                id: uuid_of(&id, "users.id is not a UUID")?,
                name,
                role: UserRole::parse(&role).map_err(|_| bad("users.role is unknown"))?,
                scope,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    out.sort_by(|a, b| {
        b.scope
            .len()
            .cmp(&a.scope.len())
            .then_with(|| a.role.as_str().cmp(b.role.as_str()))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(out)
}

/// What became of an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    Done(Alert),
    /// The alert was not open (already acknowledged, or resolved).
    NotOpen(AlertStatus),
    NotFound,
}

/// Acknowledges an open alert with a note (a conditional UPDATE: two
/// acknowledgements at once, one wins).
pub async fn acknowledge(
    db: &Db,
    id: Uuid,
    user: Uuid,
    note: &str,
    at: DateTime<Utc>,
) -> Result<Ack, sqlx::Error> {
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
    Ok(match (done, get(db, id).await?) {
        (_, None) => Ack::NotFound,
        (1, Some(a)) => Ack::Done(a),
        (_, Some(a)) => Ack::NotOpen(a.status),
    })
}

/// One attempt to post a message to a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

/// One message to one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    pub delivered: bool,
    pub delivered_at: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
}

/// One outbox message of an alert and its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    /// `raised`, `escalated` or `reopened`.
    pub kind: String,
    pub level: i32,
    pub deliveries: Vec<Delivery>,
}

/// The outbox messages of an alert, oldest first, with every delivery and
/// attempt.
pub async fn messages(db: &Db, alert_id: Uuid) -> Result<Vec<Message>, sqlx::Error> {
    type Line = (
        String,
        String,
        i32,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<i32>,
        Option<DateTime<Utc>>,
        Option<i32>,
        Option<String>,
    );
    let sql = "SELECT o.id, o.kind, o.level, d.id, d.url, d.status, d.delivered_at, \
               a.attempt, a.at, a.status_code, a.error \
               FROM alert_outbox o \
               LEFT JOIN alert_deliveries d ON d.outbox_id = o.id \
               LEFT JOIN alert_delivery_attempts a ON a.delivery_id = d.id \
               WHERE o.alert_id = $1 ORDER BY o.id, d.url, a.attempt";
    let rows: Vec<Line> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(alert_id.to_string()).fetch_all(pool).await?
    });
    let mut out: Vec<Message> = Vec::new();
    let mut last_delivery: Option<String> = None;
    for (oid, kind, level, did, url, status, delivered_at, attempt, at, code, error) in rows {
        let id = uuid_of(&oid, "alert_outbox.id is not a UUID")?;
        if out.last().is_none_or(|m| m.id != id) {
            out.push(Message {
                id,
                kind,
                level,
                deliveries: Vec::new(),
            });
            last_delivery = None;
        }
        let message = out.last_mut().expect("pushed above");
        let (Some(did), Some(url), Some(status)) = (did, url, status) else {
            continue;
        };
        if last_delivery.as_deref() != Some(did.as_str()) {
            message.deliveries.push(Delivery {
                url,
                delivered: status == "delivered",
                delivered_at,
                attempts: Vec::new(),
            });
            last_delivery = Some(did);
        }
        if let (Some(attempt), Some(at)) = (attempt, at) {
            if let Some(d) = message.deliveries.last_mut() {
                d.attempts.push(Attempt {
                    attempt,
                    at,
                    status_code: code,
                    error,
                });
            }
        }
    }
    Ok(out)
}

/// Whether the scan of `day` has run.
pub async fn scanned(db: &Db, day: NaiveDate) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM alert_scans WHERE day = $1";
    let n: i64 = on_pool!(db, pool => {
        sqlx::query_scalar(sql).bind(day).fetch_one(pool).await?
    });
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn one_level_per_full_period_up_to_the_province() {
        let raised = d(2026, 6, 1);
        assert_eq!(level_on(raised, d(2026, 6, 1), 14), 0);
        assert_eq!(level_on(raised, d(2026, 6, 14), 14), 0);
        assert_eq!(level_on(raised, d(2026, 6, 15), 14), 1);
        assert_eq!(level_on(raised, d(2026, 6, 28), 14), 1);
        assert_eq!(level_on(raised, d(2026, 6, 29), 14), 2);
        assert_eq!(level_on(raised, d(2027, 6, 1), 14), MAX_LEVEL);
        assert_eq!(level_on(raised, d(2026, 5, 1), 14), 0);
    }

    #[test]
    fn levels_name_their_jurisdictions() {
        let lens: Vec<usize> = (0..=MAX_LEVEL).map(level_prefix_len).collect();
        assert_eq!(lens, [12, 9, 6, 4, 2]);
        assert_eq!(level_name(1), "township");
        assert_eq!(
            covering_scopes("450305001001", 9),
            ["", "45", "4503", "450305", "450305001"]
        );
        assert_eq!(covering_scopes("450305001001", 2), ["", "45"]);
    }
}
