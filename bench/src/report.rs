//! `nuanxin-bench report`: generate synthetic families straight into an
//! empty store (or reuse a store generated before), then time the period
//! report (`GET /api/v1/reports/summary`) of the whole store for a year:
//! as known now, as known at an earlier instant, and its CSV and XLSX
//! renderings. The target (issue 15): the whole-region report at 100,000
//! families in at most 1 s.

use std::time::Instant;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use nuanxin_infra::{reports, Nuanxin, Settings};
use serde::Serialize;

use crate::generate;

#[derive(Debug, Serialize)]
pub struct ReportBench {
    pub store: String,
    pub families: i64,
    pub events: i64,
    pub generate_seconds: Option<f64>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Rows of the report (child jurisdictions and the total).
    pub rows: usize,
    /// The first report after the process started: every family's facts
    /// are built (what `nuanxin serve` does in the background at start).
    pub first_report_seconds: f64,
    /// The report cache of every family, MiB (its own accounting of what
    /// it holds).
    pub cache_mib: f64,
    /// The process's anonymous memory (heap) grown by the first report,
    /// MiB: the cache and what the allocator kept of the build.
    pub heap_grown_mib: Option<f64>,
    /// The whole store's report as known now, best of `runs` (the facts
    /// cached).
    pub report_seconds: f64,
    /// The same report folded from the log, every family (the reference,
    /// and how the report was made before the facts).
    pub fold_seconds: f64,
    /// The same as known 30 days earlier, best of `runs`.
    pub report_known_earlier_seconds: f64,
    pub csv_seconds: f64,
    pub csv_bytes: usize,
    pub xlsx_seconds: f64,
    pub xlsx_bytes: usize,
}

pub async fn report(
    settings: &Settings,
    families: usize,
    seed: u64,
    reuse: bool,
    runs: usize,
) -> anyhow::Result<ReportBench> {
    let app = Nuanxin::open(settings).await?;
    let db = app.db().clone();
    let mut generate_seconds = None;
    if reuse {
        anyhow::ensure!(
            generate::event_count(&db).await? > 0,
            "--reuse needs a store generated before"
        );
    } else {
        let (generated, _) = generate::fill(&app, families, seed).await?;
        generate_seconds = Some(generated.seconds);
    }
    let now = Utc::now();
    let to = now.date_naive();
    let from = NaiveDate::from_ymd_opt(to.year() - 1, to.month(), 1).unwrap_or(to);
    let earlier = now - Duration::days(30);
    let before = crate::alerts::status_mib("RssAnon");
    let start = Instant::now();
    let first = reports::summary(&app.core, "", from, to, now).await?;
    let first_report_seconds = start.elapsed().as_secs_f64();
    let heap_grown_mib = before
        .zip(crate::alerts::status_mib("RssAnon"))
        .map(|(b, a)| a - b);
    let cache_mib = app.core.report_cache().held().bytes as f64 / (1024.0 * 1024.0);
    let start = Instant::now();
    let folded = reports::summary_by_fold(&app.core, "", from, to, now).await?;
    let fold_seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        first == folded,
        "the report from the facts differs from the fold"
    );
    let mut best = f64::INFINITY;
    let mut best_earlier = f64::INFINITY;
    let mut report = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let r = reports::summary(&app.core, "", from, to, now).await?;
        best = best.min(start.elapsed().as_secs_f64());
        report = Some(r);
        let start = Instant::now();
        reports::summary(&app.core, "", from, to, earlier).await?;
        best_earlier = best_earlier.min(start.elapsed().as_secs_f64());
    }
    let report = report.expect("at least one run");
    let start = Instant::now();
    let csv = reports::to_csv(&report);
    let csv_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let xlsx = reports::to_xlsx(&report)?;
    let xlsx_seconds = start.elapsed().as_secs_f64();
    Ok(ReportBench {
        store: if matches!(db, nuanxin_infra::Db::Postgres(_)) {
            "postgres".into()
        } else {
            "sqlite".into()
        },
        families: generate::family_count(&db).await?,
        events: generate::event_count(&db).await?,
        generate_seconds,
        from,
        to,
        rows: report.rows.len(),
        first_report_seconds,
        cache_mib,
        heap_grown_mib,
        report_seconds: best,
        fold_seconds,
        report_known_earlier_seconds: best_earlier,
        csv_seconds,
        csv_bytes: csv.len(),
        xlsx_seconds,
        xlsx_bytes: xlsx.len(),
    })
}

impl ReportBench {
    pub fn markdown(&self) -> String {
        format!(
            "| store | families | events | rows | first report (facts built) | cache | report (known now) | folded from the log | report (known 30 days earlier) | CSV | XLSX |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {:.2} s | {:.0} MiB | {:.3} s | {:.2} s | {:.2} s | {:.3} s, {} B | {:.3} s, {} B |",
            self.store,
            self.families,
            self.events,
            self.rows,
            self.first_report_seconds,
            self.cache_mib,
            self.report_seconds,
            self.fold_seconds,
            self.report_known_earlier_seconds,
            self.csv_seconds,
            self.csv_bytes,
            self.xlsx_seconds,
            self.xlsx_bytes,
        )
    }
}
