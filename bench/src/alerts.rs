//! `nuanxin bench alerts`: generate synthetic families straight into an
//! empty store (or reuse a store generated before, forgetting its alerts),
//! then time one alert scan and read the process's peak resident memory.
//!
//! The generator's families are mostly overdue "today" (its visit histories
//! end months before), so the scan day is by default the latest day on
//! which at most `--overdue-share` (10%) of the families are overdue; `--on`
//! picks the day instead (e.g. today, for the worst case).
//!
//! The peak is reset (`/proc/self/clear_refs`) just before the scan, so it
//! measures the scan on top of what the process already held; run with
//! `--reuse` in a fresh process for the scan's own footprint. On SQLite the
//! store is memory-mapped, so resident memory also counts the pages of the
//! database file the process has read (shared, reclaimable page cache); the
//! peak of anonymous memory (`RssAnon`: the process's own heap and SQLite's
//! page cache), sampled every few milliseconds during the scan, is reported
//! beside it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::generate;
use anyhow::Context;
use chrono::{Days, NaiveDate};
use nuanxin_infra::alerts::{self, ScanMode};
use nuanxin_infra::on_pool;
use nuanxin_infra::Settings;
use serde::Serialize;

use nuanxin_infra::Nuanxin;

#[derive(Debug, Serialize)]
pub struct AlertScanReport {
    pub store: String,
    pub scan_day: NaiveDate,
    pub families: i64,
    /// Families with at least one role overdue on the scan day.
    pub overdue_families: i64,
    pub overdue_share: f64,
    pub generate_seconds: Option<f64>,
    pub rebuild_seconds: Option<f64>,
    pub scan_seconds: f64,
    pub raised: u64,
    /// Resident memory when the scan started, in MiB.
    pub rss_before_scan_mib: Option<f64>,
    /// Peak resident memory from the start of the scan to its end, in MiB
    /// (the whole process's peak where the peak cannot be reset).
    pub peak_rss_mib: Option<f64>,
    /// Peak anonymous resident memory during the scan (sampled), in MiB.
    pub peak_rss_anon_mib: Option<f64>,
    pub peak_reset: bool,
}

/// A `kB` field of `/proc/self/status`, in MiB.
pub(crate) fn status_mib(field: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line
        .trim_start_matches(field)
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Families with a role overdue on `day`.
async fn overdue_on(db: &nuanxin_infra::Db, day: NaiveDate) -> anyhow::Result<i64> {
    Ok(on_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT COUNT(DISTINCT family_id) FROM visit_schedule \
             WHERE valid_from <= $1 AND valid_to > $2 AND due_on < $3",
        )
        .bind(day)
        .bind(day)
        .bind(day)
        .fetch_one(pool)
        .await?
    }))
}

/// The latest day up to `today` (within two years) on which at most
/// `share` of `total` families are overdue.
async fn day_with_share(
    db: &nuanxin_infra::Db,
    today: NaiveDate,
    total: i64,
    share: f64,
) -> anyhow::Result<NaiveDate> {
    let limit = (total as f64 * share).floor() as i64;
    let (mut lo, mut hi) = (0u64, 730u64); // days before today
    if overdue_on(db, today).await? <= limit {
        return Ok(today);
    }
    // Overdue counts grow with the day: find the fewest days back that fit.
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        let day = today - Days::new(mid);
        if overdue_on(db, day).await? <= limit {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(today - Days::new(hi))
}

/// What to scan: a given day, or the day with a given overdue share.
#[derive(Debug, Clone, Copy)]
pub enum ScanDay {
    On(NaiveDate),
    OverdueShare(f64),
}

pub async fn alerts(
    settings: &Settings,
    families: usize,
    seed: u64,
    reuse: bool,
    day: ScanDay,
) -> anyhow::Result<AlertScanReport> {
    let app = Nuanxin::open(settings).await?;
    let db = app.db().clone();
    let existing = generate::event_count(&db).await?;
    let today = app.core.today();
    let (mut generate_seconds, mut rebuild_seconds) = (None, None);
    if reuse {
        anyhow::ensure!(existing > 0, "--reuse needs a store generated before");
        eprintln!("forgetting the store's alerts …");
        on_pool!(&db, pool => {
            for table in ["alert_delivery_attempts", "alert_deliveries", "alert_outbox", "alerts", "alert_scans"] {
                sqlx::query(&format!("DELETE FROM {table}")).execute(pool).await?;
            }
        });
        app.projector
            .catch_up()
            .await
            .context("catching up the read models")?;
    } else {
        let (generated, rebuilt) = generate::fill(&app, families, seed).await?;
        generate_seconds = Some(generated.seconds);
        rebuild_seconds = Some(rebuilt.seconds);
    }
    let total: i64 = on_pool!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM case_files WHERE status = 'open'")
            .fetch_one(pool)
            .await?
    });
    let on = match day {
        ScanDay::On(on) => on,
        ScanDay::OverdueShare(share) => day_with_share(&db, today, total, share).await?,
    };
    let overdue = overdue_on(&db, on).await?;
    eprintln!("scanning {on} ({overdue} of {total} open families overdue) …");
    let peak_reset = reset_peak();
    let rss_before = status_mib("VmRSS");
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let sampling = sampling.clone();
        async move {
            let mut peak: Option<f64> = None;
            while sampling.load(Ordering::Relaxed) {
                if let Some(anon) = status_mib("RssAnon") {
                    peak = Some(peak.map_or(anon, |p| p.max(anon)));
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            peak
        }
    });
    let started = Instant::now();
    let report = alerts::run_scan(&app.core, &app.projector, on, "", ScanMode::Always)
        .await
        .context("scanning")?
        .unwrap_or_default();
    let scan_seconds = started.elapsed().as_secs_f64();
    let peak = status_mib("VmHWM");
    sampling.store(false, Ordering::Relaxed);
    let peak_anon = sampler.await.ok().flatten();
    db.close().await;
    Ok(AlertScanReport {
        store: db.kind().into(),
        scan_day: on,
        families: total,
        overdue_families: overdue,
        overdue_share: overdue as f64 / (total.max(1) as f64),
        generate_seconds,
        rebuild_seconds,
        scan_seconds,
        raised: report.raised,
        rss_before_scan_mib: rss_before,
        peak_rss_mib: peak,
        peak_rss_anon_mib: peak_anon,
        peak_reset,
    })
}

impl AlertScanReport {
    pub fn markdown(&self) -> String {
        let mib = |v: Option<f64>| v.map_or("n/a".to_owned(), |m| format!("{m:.0}"));
        format!(
            "| store | scan day | open families | overdue families | alerts raised | scan s | RSS before scan MiB | peak RSS MiB | peak anon RSS MiB |\n\
             |---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} ({:.1}%) | {} | {:.2} | {} | {}{} | {} |\n",
            self.store,
            self.scan_day,
            self.families,
            self.overdue_families,
            self.overdue_share * 100.0,
            self.raised,
            self.scan_seconds,
            mib(self.rss_before_scan_mib),
            mib(self.peak_rss_mib),
            if self.peak_reset { "" } else { " (process peak)" },
            mib(self.peak_rss_anon_mib),
        )
    }
}
