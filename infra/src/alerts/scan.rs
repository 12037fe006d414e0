//! The alert scan of one day `D`, in one transaction:
//!
//! 1. **resolve** every unresolved alert whose item is no longer overdue
//!    with its due date on `D` (a qualifying visit, a void that moved the
//!    schedule, a release, a transfer or a closed case all remove or move
//!    the schedule row);
//! 2. **raise** one alert per schedule row overdue on `D`
//!    (`valid_from <= D < valid_to AND due_on < D`) that has none yet —
//!    `INSERT … ON CONFLICT (family_id, role, due_on) DO NOTHING`, so the
//!    database, not this process, guarantees "once"; an alert resolved
//!    earlier whose item is overdue again with the same due date (the visit
//!    that resolved it was voided) is **reopened** instead;
//! 3. **escalate** every unresolved alert to the level it has reached
//!    (one level per full `escalate_after_days` since it was raised, up to
//!    the province) with a conditional `UPDATE … WHERE level = <seen>`;
//! 4. record the day in `alert_scans`.
//!
//! Each raise, reopening and escalation writes an outbox message in the
//! same transaction. Scans serialize on the `alert_scan_lock` row (the
//! first statement of the transaction), so two processes scanning at once
//! run one after the other; the unique key and conditional updates would
//! keep them from duplicating anything even without it.

use std::collections::HashSet;

use chrono::{Days, NaiveDate};
use nuanxin_projections::{on_pool, Db};
use serde::Serialize;
use uuid::Uuid;

use super::{level_name, level_on, level_prefix_len, MAX_LEVEL};

/// Whether a scan runs when its day has already been scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// Scan regardless (the CLI and the API: idempotent anyway).
    Always,
    /// Only if the day has not been scanned (the daily scheduler).
    IfNotRun,
}

/// What a scan changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    pub on: NaiveDate,
    pub raised: u64,
    pub escalated: u64,
    pub resolved: u64,
    pub reopened: u64,
}

/// Rows per multi-row INSERT (10 columns; far below SQLite's parameter cap).
const ROWS_PER_INSERT: usize = 500;

const LOCK: &str = "UPDATE alert_scan_lock SET scans = scans + 1 WHERE id = 1";

const RESOLVE: &str = "UPDATE alerts SET status = 'resolved', resolved_on = $1 \
     WHERE status IN ('open', 'acknowledged') AND raised_on <= $2 \
     AND NOT EXISTS (SELECT 1 FROM visit_schedule s WHERE s.family_id = alerts.family_id \
     AND s.role = alerts.role AND s.valid_from <= $3 AND s.valid_to > $4 \
     AND s.due_on = alerts.due_on)";

const CANDIDATES: &str = "SELECT s.family_id, s.role, s.due_on, s.village_code, s.contact_id, \
     s.contact_name, a.id, a.resolved_on \
     FROM visit_schedule s LEFT JOIN alerts a \
     ON a.family_id = s.family_id AND a.role = s.role AND a.due_on = s.due_on \
     WHERE s.valid_from <= $1 AND s.valid_to > $2 AND s.due_on < $3 \
     AND (a.id IS NULL OR a.status = 'resolved') \
     ORDER BY s.family_id, s.role";

const REOPEN: &str = "UPDATE alerts SET status = 'open', resolved_on = NULL \
     WHERE id = $1 AND status = 'resolved' RETURNING raised_on, level";

const ESCALATION_DUE: &str = "SELECT id, family_id, role, due_on, village_code, contact_id, \
     raised_on, level FROM alerts \
     WHERE status IN ('open', 'acknowledged') AND level < $1 AND raised_on <= $2 ORDER BY id";

const ESCALATE: &str =
    "UPDATE alerts SET level = $1, escalated_on = $2 WHERE id = $3 AND level = $4";

const RECORD_DAY: &str = "INSERT INTO alert_scans (day) VALUES ($1) \
     ON CONFLICT (day) DO UPDATE SET runs = alert_scans.runs + 1, last_at = excluded.last_at";

/// A schedule row overdue on the day (family, role, due, village, contact
/// id and name), with its alert if it has a resolved one (id, resolved on).
/// The contact's name is copied into the alert so that it names who was
/// responsible even after a reassignment.
type CandidateRow = (
    String,
    String,
    NaiveDate,
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDate>,
);

/// An unresolved alert that may have reached a higher level.
type EscalationRow = (
    String,
    String,
    String,
    NaiveDate,
    String,
    String,
    NaiveDate,
    i32,
);

/// What a webhook message says about an alert. No names, phones or ID
/// numbers: receivers look the family up by id if they are entitled to.
struct Subject<'a> {
    alert_id: &'a str,
    family_id: &'a str,
    role: &'a str,
    due_on: NaiveDate,
    village_code: &'a str,
    contact_id: &'a str,
    raised_on: NaiveDate,
    level: i32,
}

/// One outbox row: (id, alert id, kind, level, body).
type OutboxRow = (String, String, &'static str, i32, String);

fn message(kind: &'static str, s: &Subject<'_>, on: NaiveDate) -> OutboxRow {
    let id = Uuid::now_v7().to_string();
    let n = level_prefix_len(s.level).min(s.village_code.len());
    let body = serde_json::json!({
        "id": id,
        "event": format!("alert.{kind}"),
        "alert_id": s.alert_id,
        "family_id": s.family_id,
        "village_code": s.village_code,
        "role": s.role,
        "due_on": s.due_on,
        "raised_on": s.raised_on,
        "level": s.level,
        "level_name": level_name(s.level),
        "jurisdiction": &s.village_code[..n],
        "contact_id": s.contact_id,
        "scan_day": on,
        "days_overdue": (on - s.due_on).num_days().max(0),
    })
    .to_string();
    (id, s.alert_id.to_owned(), kind, s.level, body)
}

/// Scans day `on` (see the module docs). `Ok(None)` when `mode` is
/// [`ScanMode::IfNotRun`] and the day was already scanned.
#[tracing::instrument(skip_all, fields(alerts.on = %on))]
pub async fn scan(
    db: &Db,
    on: NaiveDate,
    escalate_after_days: u32,
    mode: ScanMode,
) -> Result<Option<ScanReport>, sqlx::Error> {
    let escalate_after_days = escalate_after_days.max(1);
    on_pool!(db, pool, DB => {
        let mut tx = pool.begin().await?;
        sqlx::query(LOCK).execute(&mut *tx).await?;
        if mode == ScanMode::IfNotRun {
            let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alert_scans WHERE day = $1")
                .bind(on)
                .fetch_one(&mut *tx)
                .await?;
            if runs > 0 {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let mut report = ScanReport { on, ..ScanReport::default() };
        // Outbox rows are written in batches as they are made, so a scan
        // that raises many alerts does not hold every message body at once.
        let mut outbox: Vec<OutboxRow> = Vec::with_capacity(ROWS_PER_INSERT);
        macro_rules! flush_outbox {
            () => {
                if !outbox.is_empty() {
                    let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                        "INSERT INTO alert_outbox (id, alert_id, kind, level, body) ",
                    );
                    qb.push_values(outbox.drain(..), |mut b, (id, alert_id, kind, level, body)| {
                        b.push_bind(id)
                            .push_bind(alert_id)
                            .push_bind(kind)
                            .push_bind(level)
                            .push_bind(body);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
            };
        }

        report.resolved = sqlx::query(RESOLVE)
            .bind(on)
            .bind(on)
            .bind(on)
            .bind(on)
            .execute(&mut *tx)
            .await?
            .rows_affected();

        let candidates: Vec<CandidateRow> = sqlx::query_as(CANDIDATES)
            .bind(on)
            .bind(on)
            .bind(on)
            .fetch_all(&mut *tx)
            .await?;
        let fresh: Vec<&CandidateRow> = candidates.iter().filter(|c| c.6.is_none()).collect();
        for chunk in fresh.chunks(ROWS_PER_INSERT) {
            let ids: Vec<String> = chunk.iter().map(|_| Uuid::now_v7().to_string()).collect();
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                "INSERT INTO alerts (id, family_id, role, due_on, village_code, contact_id, \
                 contact_name, raised_on, level, status) ",
            );
            qb.push_values(chunk.iter().zip(&ids), |mut b, (c, id)| {
                b.push_bind(id.clone())
                    .push_bind(c.0.clone())
                    .push_bind(c.1.clone())
                    .push_bind(c.2)
                    .push_bind(c.3.clone())
                    .push_bind(c.4.clone())
                    .push_bind(c.5.clone())
                    .push_bind(on)
                    .push_bind(0i32)
                    .push_bind("open");
            });
            qb.push(" ON CONFLICT (family_id, role, due_on) DO NOTHING RETURNING id");
            let inserted: HashSet<String> = qb
                .build_query_scalar::<String>()
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            for (c, id) in chunk.iter().zip(&ids) {
                if !inserted.contains(id) {
                    continue;
                }
                report.raised += 1;
                outbox.push(message(
                    "raised",
                    &Subject {
                        alert_id: id,
                        family_id: &c.0,
                        role: &c.1,
                        due_on: c.2,
                        village_code: &c.3,
                        contact_id: &c.4,
                        raised_on: on,
                        level: 0,
                    },
                    on,
                ));
            }
            flush_outbox!();
        }

        for c in candidates.iter().filter(|c| c.6.is_some()) {
            // A backdated scan does not undo what a later day resolved.
            if c.7.is_some_and(|resolved_on| resolved_on > on) {
                continue;
            }
            let Some(id) = &c.6 else { continue };
            let reopened: Option<(NaiveDate, i32)> = sqlx::query_as(REOPEN)
                .bind(id.clone())
                .fetch_optional(&mut *tx)
                .await?;
            let Some((raised_on, level)) = reopened else { continue };
            report.reopened += 1;
            outbox.push(message(
                "reopened",
                &Subject {
                    alert_id: id,
                    family_id: &c.0,
                    role: &c.1,
                    due_on: c.2,
                    village_code: &c.3,
                    contact_id: &c.4,
                    raised_on,
                    level,
                },
                on,
            ));
            if outbox.len() >= ROWS_PER_INSERT {
                flush_outbox!();
            }
        }

        if let Some(cutoff) = on.checked_sub_days(Days::new(u64::from(escalate_after_days))) {
            let due: Vec<EscalationRow> = sqlx::query_as(ESCALATION_DUE)
                .bind(MAX_LEVEL)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
            for (id, family_id, role, due_on, village_code, contact_id, raised_on, level) in &due {
                let target = level_on(*raised_on, on, escalate_after_days);
                if target <= *level {
                    continue;
                }
                let moved = sqlx::query(ESCALATE)
                    .bind(target)
                    .bind(on)
                    .bind(id.clone())
                    .bind(*level)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if moved != 1 {
                    continue;
                }
                report.escalated += 1;
                outbox.push(message(
                    "escalated",
                    &Subject {
                        alert_id: id,
                        family_id,
                        role,
                        due_on: *due_on,
                        village_code,
                        contact_id,
                        raised_on: *raised_on,
                        level: target,
                    },
                    on,
                ));
                if outbox.len() >= ROWS_PER_INSERT {
                    flush_outbox!();
                }
            }
        }

        flush_outbox!();
        sqlx::query(RECORD_DAY).bind(on).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(
            alerts.raised = report.raised,
            alerts.escalated = report.escalated,
            alerts.resolved = report.resolved,
            alerts.reopened = report.reopened,
            "alert scan done"
        );
        Ok(Some(report))
    })
}
