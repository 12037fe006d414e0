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
use serde::Serialize;
use uuid::Uuid;

use super::{level_name, level_on, level_prefix_len, MAX_LEVEL};
use crate::store::alerts::{self as table, Candidate, OutboxMessage};
use crate::store::{Db, Tx};

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
    /// "Inspections behind schedule" (`super::inspections`), checked by
    /// the same scan.
    pub inspections_behind: super::inspections::InspectionScanReport,
}

/// Rows per multi-row INSERT (10 columns; far below SQLite's parameter cap).
const ROWS_PER_INSERT: usize = 500;

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

impl<'a> Subject<'a> {
    fn of(c: &'a Candidate, alert_id: &'a str, raised_on: NaiveDate, level: i32) -> Self {
        Self {
            alert_id,
            family_id: &c.family_id,
            role: &c.role,
            due_on: c.due_on,
            village_code: &c.village_code,
            contact_id: &c.contact_id,
            raised_on,
            level,
        }
    }
}

fn message(kind: &'static str, s: &Subject<'_>, on: NaiveDate) -> OutboxMessage {
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
    OutboxMessage {
        id,
        alert_id: s.alert_id.to_owned(),
        alert_kind: table::OVERDUE_VISIT,
        kind,
        level: s.level,
        body,
    }
}

/// Outbox messages, written in batches as they are made, so a scan that
/// raises many alerts does not hold every message body at once.
struct Outbox(Vec<OutboxMessage>);

impl Outbox {
    async fn push(&mut self, tx: &mut Tx, m: OutboxMessage) -> Result<(), sqlx::Error> {
        self.0.push(m);
        if self.0.len() >= ROWS_PER_INSERT {
            self.flush(tx).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        table::insert_outbox(tx, &self.0).await?;
        self.0.clear();
        Ok(())
    }
}

/// Scans day `on` for the families within `prefix` (see the module docs).
/// `Ok(None)` when `mode` is [`ScanMode::IfNotRun`] and the day was already
/// scanned.
#[tracing::instrument(skip_all, fields(alerts.on = %on))]
pub async fn scan(
    db: &Db,
    on: NaiveDate,
    prefix: &str,
    escalate_after_days: u32,
    mode: ScanMode,
) -> Result<Option<ScanReport>, sqlx::Error> {
    let mut tx = db.begin().await?;
    table::lock_scans(&mut tx).await?;
    if mode == ScanMode::IfNotRun && table::scanned_in(&mut tx, on).await? {
        tx.rollback().await?;
        return Ok(None);
    }
    let mut report = ScanReport {
        on,
        ..ScanReport::default()
    };
    let mut outbox = Outbox(Vec::with_capacity(ROWS_PER_INSERT));
    report.resolved = table::resolve_moved(&mut tx, on, prefix).await?;
    let candidates = table::candidates(&mut tx, on, prefix).await?;
    report.raised = raise(&mut tx, &candidates, on, &mut outbox).await?;
    report.reopened = reopen(&mut tx, &candidates, on, &mut outbox).await?;
    report.escalated = escalate(&mut tx, on, prefix, escalate_after_days, &mut outbox).await?;
    outbox.flush(&mut tx).await?;
    if prefix.is_empty() {
        // Only a scan of every family counts as the day's scan.
        table::record_scan(&mut tx, on).await?;
    }
    tx.commit().await?;
    tracing::info!(
        alerts.raised = report.raised,
        alerts.escalated = report.escalated,
        alerts.resolved = report.resolved,
        alerts.reopened = report.reopened,
        "alert scan done"
    );
    Ok(Some(report))
}

/// Raises an alert for each candidate without one.
async fn raise(
    tx: &mut Tx,
    candidates: &[Candidate],
    on: NaiveDate,
    outbox: &mut Outbox,
) -> Result<u64, sqlx::Error> {
    let fresh: Vec<&Candidate> = candidates.iter().filter(|c| c.alert_id.is_none()).collect();
    let mut raised = 0;
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        let with_ids: Vec<(&Candidate, String)> = chunk
            .iter()
            .map(|c| (*c, Uuid::now_v7().to_string()))
            .collect();
        let inserted: HashSet<String> =
            table::raise(tx, &with_ids, on).await?.into_iter().collect();
        for (c, id) in &with_ids {
            if inserted.contains(id) {
                raised += 1;
                outbox
                    .push(tx, message("raised", &Subject::of(c, id, on, 0), on))
                    .await?;
            }
        }
    }
    Ok(raised)
}

/// Reopens the resolved alerts of candidates (overdue again with the same
/// due date) — unless a later day resolved them: a backdated scan does not
/// undo that.
async fn reopen(
    tx: &mut Tx,
    candidates: &[Candidate],
    on: NaiveDate,
    outbox: &mut Outbox,
) -> Result<u64, sqlx::Error> {
    let mut reopened = 0;
    for c in candidates {
        let Some(id) = &c.alert_id else { continue };
        if c.resolved_on.is_some_and(|resolved_on| resolved_on > on) {
            continue;
        }
        let Some((raised_on, level)) = table::reopen(tx, id).await? else {
            continue;
        };
        reopened += 1;
        let m = message("reopened", &Subject::of(c, id, raised_on, level), on);
        outbox.push(tx, m).await?;
    }
    Ok(reopened)
}

/// Moves every unresolved alert up to the level it has reached on `on`.
async fn escalate(
    tx: &mut Tx,
    on: NaiveDate,
    prefix: &str,
    escalate_after_days: u32,
    outbox: &mut Outbox,
) -> Result<u64, sqlx::Error> {
    let step = escalate_after_days.max(1);
    let Some(cutoff) = on.checked_sub_days(Days::new(u64::from(step))) else {
        return Ok(0);
    };
    let mut escalated = 0;
    for e in table::escalation_due(tx, MAX_LEVEL, cutoff, prefix).await? {
        let target = level_on(e.raised_on, on, step);
        if target <= e.level || !table::escalate(tx, &e.id, e.level, target, on).await? {
            continue;
        }
        escalated += 1;
        let subject = Subject {
            alert_id: &e.id,
            family_id: &e.family_id,
            role: &e.role,
            due_on: e.due_on,
            village_code: &e.village_code,
            contact_id: &e.contact_id,
            raised_on: e.raised_on,
            level: target,
        };
        outbox.push(tx, message("escalated", &subject, on)).await?;
    }
    Ok(escalated)
}
