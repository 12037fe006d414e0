//! "Inspections behind schedule": the part of the daily scan of day `D`
//! that compares each city and county association's inspections with the
//! pace its minimum asks for (`nuanxin_domain::inspection::pace`), for the
//! year of the day before `D` (so the scan of 1 January checks the whole
//! year just ended).
//!
//! The associations are those with registered families within the scan's
//! scope, and those that held an inspection that year. For each, one alert
//! per year (UNIQUE (jurisdiction, year)):
//!
//! - **raised** when it has held fewer inspections (by `D`) than the pace
//!   asks for and has no alert for the year;
//! - **resolved** when a later scan finds it caught up;
//! - **reopened** when it falls behind again in the same year (unless a
//!   later day resolved it: a backdated scan does not undo that).
//!
//! Raising and reopening write an outbox message (`alert_kind =
//! 'inspections_behind'`) in the same transaction, delivered to the same
//! webhooks as overdue-visit alerts. The transaction takes the scan lock
//! first, like the overdue-visit scan.

use chrono::NaiveDate;
use nuanxin_domain::inspection::{pace, pace_year, AssociationLevel};
use nuanxin_domain::policy::InspectionPolicy;
use serde::Serialize;
use uuid::Uuid;

use crate::store::alerts::{self as outbox, OutboxMessage, INSPECTIONS_BEHIND};
use crate::store::inspection_alerts::{self as table, Finding};
use crate::store::{self, Db};

/// What the inspection part of a scan changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InspectionScanReport {
    /// The year whose pace was checked.
    pub year: i32,
    pub raised: u64,
    pub resolved: u64,
    pub reopened: u64,
}

/// The alert level of an association (as in overdue-visit alerts: 2 =
/// county, 3 = city), so receivers route both kinds alike.
fn level_number(level: AssociationLevel) -> i32 {
    match level {
        AssociationLevel::County => 2,
        AssociationLevel::City => 3,
    }
}

fn message(
    kind: &'static str,
    alert_id: Uuid,
    f: &Finding<'_>,
    raised_on: NaiveDate,
    on: NaiveDate,
    level: i32,
) -> OutboxMessage {
    let id = Uuid::now_v7().to_string();
    let body = serde_json::json!({
        "id": id,
        "event": format!("inspections_behind.{kind}"),
        "alert_kind": INSPECTIONS_BEHIND,
        "alert_id": alert_id,
        "jurisdiction": f.jurisdiction,
        "level": level,
        "level_name": f.level,
        "year": f.year,
        "required": f.required,
        "expected_by_now": f.expected,
        "held": f.held,
        "raised_on": raised_on,
        "scan_day": on,
    })
    .to_string();
    OutboxMessage {
        id,
        alert_id: alert_id.to_string(),
        alert_kind: INSPECTIONS_BEHIND,
        kind,
        level,
        body,
    }
}

/// Checks the pace of every association within `prefix` on day `on`.
#[tracing::instrument(skip_all, fields(alerts.on = %on))]
pub async fn scan(
    db: &Db,
    on: NaiveDate,
    prefix: &str,
    policy: &InspectionPolicy,
) -> Result<InspectionScanReport, sqlx::Error> {
    let year = pace_year(on);
    let mut report = InspectionScanReport {
        year,
        ..InspectionScanReport::default()
    };
    let (Some(first), Some(last)) = (
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year, 12, 31),
    ) else {
        return Ok(report);
    };
    let held = store::inspections::held_by(db, prefix, first, on.min(last)).await?;
    let mut associations = store::case_files::associations(db, prefix).await?;
    associations.extend(held.keys().cloned());

    let mut tx = db.begin().await?;
    outbox::lock_scans(&mut tx).await?;
    let mut messages = Vec::new();
    for jurisdiction in &associations {
        let Some(level) = AssociationLevel::of(jurisdiction) else {
            continue;
        };
        let required = policy.required(level);
        let f = Finding {
            jurisdiction,
            level: level.as_str(),
            year,
            required,
            expected: pace(required, year, on),
            held: held.get(jurisdiction).copied().unwrap_or(0),
        };
        let behind = f.held < f.expected;
        let level = level_number(level);
        match table::of(&mut tx, jurisdiction, year).await? {
            None if behind => {
                let id = Uuid::now_v7();
                if table::raise(&mut tx, id, &f, on).await? {
                    report.raised += 1;
                    messages.push(message("raised", id, &f, on, on, level));
                }
            }
            None => {}
            Some(a) if a.status == "open" => {
                if a.raised_on > on {
                    continue;
                }
                table::touch(&mut tx, a.id, &f, on).await?;
                if !behind && table::resolve(&mut tx, a.id, on).await? {
                    report.resolved += 1;
                }
            }
            Some(a) => {
                let resolved_later = a.resolved_on.is_some_and(|r| r > on);
                if behind && !resolved_later && table::reopen(&mut tx, a.id).await? {
                    table::touch(&mut tx, a.id, &f, on).await?;
                    report.reopened += 1;
                    messages.push(message("reopened", a.id, &f, a.raised_on, on, level));
                }
            }
        }
    }
    outbox::insert_outbox(&mut tx, &messages).await?;
    tx.commit().await?;
    tracing::info!(
        inspections.year = year,
        inspections.raised = report.raised,
        inspections.resolved = report.resolved,
        inspections.reopened = report.reopened,
        "inspection pace scan done"
    );
    Ok(report)
}
