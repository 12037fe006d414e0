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
//! - [`scheduler`]: the daily trigger inside `serve`;
//! - [`inspections`]: "inspections behind schedule", checked by the same
//!   scan and delivered through the same outbox (`docs/alerts.md`).
//!
//! This module holds the configuration, the levels, and the queries the API
//! serves (list, one alert with recipients and deliveries, acknowledge).
//! Nothing here logs personal data: logs name alert and delivery ids only.

pub mod delivery;
pub mod inspections;
pub mod scan;
pub mod scheduler;

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use crate::core::Core;
use crate::projector::Projector;
use crate::store::{self, Db};
use crate::users::{Secret, User};

pub use crate::store::alerts::{Alert, AlertStatus};
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

impl AlertConfig {
    /// The webhook URLs as stored for comparison: sorted, one per line.
    pub fn urls_text(&self) -> String {
        let mut urls = self.webhooks.clone();
        urls.sort();
        urls.dedup();
        urls.join("\n")
    }

    /// A fingerprint of the signing secret (`sha256:<hex>`), empty when
    /// unsigned: servers compare secrets without storing one.
    pub fn secret_fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        self.secret.as_ref().map_or_else(String::new, |s| {
            let digest = Sha256::digest(format!("nuanxin webhook secret\n{}", s.expose()));
            format!("sha256:{}", hex::encode(digest))
        })
    }
}

/// Why a server may not start with its webhook configuration.
#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    #[error(
        "this server's alert webhooks (NUANXIN_ALERT_WEBHOOKS and NUANXIN_ALERT_WEBHOOK_SECRET) \
         differ from those of the {others} other server(s) running on this database, stored \
         at {set_at}; every server must post to the same URLs with the same secret. Start this \
         one with their configuration, or stop them all and start again with the new one"
    )]
    Differs { others: i64, set_at: String },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Makes sure every server of the database posts alerts to the same URLs
/// with the same secret: stores this server's configuration when none is
/// stored, or when a different one is but no other server is running (a
/// restart with a new configuration); refuses to start otherwise.
/// `own_session` names this server's leadership session.
pub async fn agree_on_webhooks(
    db: &Db,
    config: &AlertConfig,
    own_session: &str,
) -> Result<(), WebhookConfigError> {
    use store::webhooks::Agreement;
    let urls = config.urls_text();
    match store::webhooks::agree(db, &urls, &config.secret_fingerprint(), own_session).await? {
        Agreement::First | Agreement::Same => Ok(()),
        Agreement::Replaced => {
            tracing::info!(
                webhooks = config.webhooks.len(),
                "alert webhook configuration changed; no other server is running, so it is stored"
            );
            Ok(())
        }
        Agreement::Differs { others } => {
            let set_at = store::webhooks::stored(db)
                .await?
                .map_or_else(String::new, |s| s.set_at.to_rfc3339());
            Err(WebhookConfigError::Differs { others, set_at })
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

/// Why a scan did not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Scanning a day that has not come yet would raise alerts dated in the
    /// future and escalate real ones early; back-dated days are fine.
    #[error("is after today ({today}): only today or an earlier day can be scanned")]
    InFuture { today: NaiveDate },
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Scans `on` for the families within `scope_prefix` ("" for all: only
/// such a scan counts as the day's scan) with the policy in force, after
/// bringing the schedule up to the head of the log. `on` must not be after
/// today in the policy's time zone. `Ok(None)`: mode [`ScanMode::IfNotRun`]
/// and the day was already scanned.
pub async fn run_scan(
    core: &Core,
    projector: &Projector,
    on: NaiveDate,
    scope_prefix: &str,
    mode: ScanMode,
) -> Result<Option<ScanReport>, ScanError> {
    let today = core.today();
    if on > today {
        return Err(ScanError::InFuture { today });
    }
    if let Err(e) = projector.catch_up().await {
        tracing::warn!(error = %e, "catching up the schedule before an alert scan failed");
    }
    let policy = core.policy();
    let mut report = scan::scan(
        core.db(),
        on,
        scope_prefix,
        policy.escalate_after_days,
        mode,
    )
    .await?;
    if let Some(r) = report.as_mut() {
        r.inspections_behind =
            inspections::scan(core.db(), on, scope_prefix, &policy.inspections).await?;
    }
    if report.is_some() {
        wake_delivery();
    }
    Ok(report)
}

/// The jurisdiction code that receives `alert` at its level.
pub fn jurisdiction(alert: &Alert) -> &str {
    let n = level_prefix_len(alert.level).min(alert.village_code.len());
    &alert.village_code[..n]
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
pub async fn recipients(db: &Db, alert: &Alert) -> Result<Vec<User>, sqlx::Error> {
    let scopes = covering_scopes(&alert.village_code, level_prefix_len(alert.level));
    let mut out = store::users::with_scopes(db, &scopes, alert.level == 0).await?;
    out.sort_by(|a, b| {
        b.scope
            .as_str()
            .len()
            .cmp(&a.scope.as_str().len())
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

/// Acknowledges an open alert with a note (of two at once, one wins).
/// The alert comes back with its contact's name opened (`crate::privacy`).
pub async fn acknowledge(
    core: &crate::Core,
    id: Uuid,
    user: Uuid,
    note: &str,
    at: DateTime<Utc>,
) -> Result<Ack, crate::StoreError> {
    let db = core.db();
    let done = store::alerts::acknowledge(db, id, user, note, at).await?;
    Ok(match (done, store::alerts::get(db, id).await?) {
        (_, None) => Ack::NotFound,
        (true, Some(mut a)) => {
            core.keyring()
                .reveal_rows(db, std::slice::from_mut(&mut a))
                .await?;
            Ack::Done(a)
        }
        (false, Some(a)) => Ack::NotOpen(a.status),
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
    let mut out: Vec<Message> = Vec::new();
    let mut last_delivery: Option<String> = None;
    for line in store::alerts::message_lines(db, alert_id).await? {
        let id = store::uuid(&line.outbox_id, "alert_outbox.id")?;
        if out.last().is_none_or(|m| m.id != id) {
            out.push(Message {
                id,
                kind: line.kind,
                level: line.level,
                deliveries: Vec::new(),
            });
            last_delivery = None;
        }
        let message = out.last_mut().expect("pushed above");
        let (Some(did), Some(url), Some(status)) = (line.delivery_id, line.url, line.status) else {
            continue;
        };
        if last_delivery.as_deref() != Some(did.as_str()) {
            message.deliveries.push(Delivery {
                url,
                delivered: status == "delivered",
                delivered_at: line.delivered_at,
                attempts: Vec::new(),
            });
            last_delivery = Some(did);
        }
        if let (Some(attempt), Some(at), Some(d)) =
            (line.attempt, line.at, message.deliveries.last_mut())
        {
            d.attempts.push(Attempt {
                attempt,
                at,
                status_code: line.status_code,
                error: line.error,
            });
        }
    }
    Ok(out)
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
