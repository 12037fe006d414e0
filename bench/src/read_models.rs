//! `nuanxin-bench read-models`: generate a synthetic county-to-province
//! sized dataset straight into an empty store, rebuild the read models from
//! it, and time the overdue-visit pages caseworkers and supervisors ask for.
//! Figures go to stdout as a markdown table and JSON; `docs/performance.md`
//! records them.

use std::time::Instant;

use chrono::Days;
use nuanxin_infra::{on_pool, store, Nuanxin, Settings};
use nuanxin_projections::schedule::DueQuery;
use serde::Serialize;
use uuid::Uuid;

use crate::generate;

#[derive(Debug, Serialize)]
pub struct Latency {
    pub median_ms: f64,
    pub p99_ms: f64,
    pub items: usize,
}

#[derive(Debug, Serialize)]
pub struct ReadModelReport {
    pub store: String,
    pub families: u64,
    pub events: u64,
    pub generate_seconds: f64,
    pub rebuild_seconds: f64,
    pub rebuild_events_per_second: f64,
    pub county_prefix: String,
    pub county_overdue_page: Latency,
    pub contact_overdue_page: Latency,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn time_pages(db: &nuanxin_infra::Db, q: &DueQuery, runs: usize) -> anyhow::Result<Latency> {
    let mut items = 0;
    // Warm the caches and prepared statements first.
    for _ in 0..10 {
        store::schedule::due(db, q).await?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        items = store::schedule::due(db, q).await?.len();
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    Ok(Latency {
        median_ms: percentile(&samples, 0.5),
        p99_ms: percentile(&samples, 0.99),
        items,
    })
}

pub async fn read_models(
    settings: &Settings,
    families: usize,
    seed: u64,
    runs: usize,
) -> anyhow::Result<ReadModelReport> {
    let app = Nuanxin::open(settings).await?;
    let db = app.db().clone();
    let today = app.core.today();
    let (generated, rebuilt) = generate::fill(&app, families, seed).await?;
    let (county_prefix, contact): (String, String) = on_pool!(&db, pool => {
        let county: String = sqlx::query_scalar(
            "SELECT substr(village_code, 1, 6) FROM case_files GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1",
        )
        .fetch_one(pool)
        .await?;
        let contact: String = sqlx::query_scalar(
            "SELECT contact_id FROM visit_schedule GROUP BY contact_id ORDER BY COUNT(*) DESC, contact_id LIMIT 1",
        )
        .fetch_one(pool)
        .await?;
        (county, contact)
    });
    let overdue = |prefix: &str, contact_id: Option<Uuid>| DueQuery {
        on: today,
        due_until: today.checked_sub_days(Days::new(1)).unwrap_or(today),
        village_code_prefix: prefix.to_owned(),
        role: None,
        contact_id,
        after: None,
        limit: 50,
    };
    let county_page = time_pages(&db, &overdue(&county_prefix, None), runs).await?;
    let contact_page = time_pages(&db, &overdue("", Some(contact.parse()?)), runs).await?;
    Ok(ReadModelReport {
        store: db.kind().into(),
        families: generated.families,
        events: generated.events,
        generate_seconds: generated.seconds,
        rebuild_seconds: rebuilt.seconds,
        rebuild_events_per_second: rebuilt.events as f64 / rebuilt.seconds.max(1e-9),
        county_prefix,
        county_overdue_page: county_page,
        contact_overdue_page: contact_page,
    })
}

impl ReadModelReport {
    pub fn markdown(&self) -> String {
        format!(
            "| store | families | events | generate s | rebuild s | rebuild events/s | county page p50 / p99 ms | contact page p50 / p99 ms |\n\
             |---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.2} / {:.2} ({} items) | {:.2} / {:.2} ({} items) |\n",
            self.store,
            self.families,
            self.events,
            self.generate_seconds,
            self.rebuild_seconds,
            self.rebuild_events_per_second,
            self.county_overdue_page.median_ms,
            self.county_overdue_page.p99_ms,
            self.county_overdue_page.items,
            self.contact_overdue_page.median_ms,
            self.contact_overdue_page.p99_ms,
            self.contact_overdue_page.items,
        )
    }
}
