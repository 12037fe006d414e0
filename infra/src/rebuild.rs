//! `nuanxin projections rebuild`: replay the whole log into fresh tables and
//! swap them in while servers keep serving.
//!
//! The set of events to replay is fixed at the start
//! (`store::events::replay_set`), read in keyset pages of families (each
//! family's events aggregated in SQL, in sequence order), folded and written
//! in batches into fresh tables made from the live schema
//! (`store::fresh`). The swap drops the live tables, renames the fresh ones
//! and sets the checkpoint to the end of that set, all in one transaction;
//! events committed during the rebuild are then projected by the worker. A
//! rebuild killed midway leaves the live tables untouched; the next one
//! starts again from empty fresh tables.
//!
//! Events are read with our own SQL, not cqrs-es `stream_all_events`, whose
//! reader task unwraps database errors and can end a replay early while
//! reporting success.

use cqrs_es::Aggregate;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_projections::rows::FamilyRows;
use uuid::Uuid;

use crate::core::Core;
use crate::projector::ProjectError;
use crate::read_models::{self, Mode};
use crate::store::{self, REBUILD};

/// Families read, folded and written per batch.
const FAMILIES_PER_BATCH: i64 = 1000;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default)]
pub struct RebuildReport {
    pub events: u64,
    pub families: u64,
    /// Activity and inspection streams refolded.
    pub activities: u64,
    pub inspections: u64,
    pub seconds: f64,
}

/// Called with (events done, events total) as the rebuild goes.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Replays every event into fresh tables and swaps them in.
pub async fn rebuild(core: &Core, progress: Progress<'_>) -> Result<RebuildReport, ProjectError> {
    let started = std::time::Instant::now();
    let db = core.db();
    let generation = format!("g{}", chrono::Utc::now().format("%Y%m%d%H%M%S%f"));
    store::fresh::create(db, &generation).await?;
    let (policy, policy_version) = core.policy_in_force();
    let set = store::events::replay_set(db).await?;
    let total = set.events as u64;
    let bulk = db
        .bulk_writer()
        .await
        .map_err(|e| sqlx::Error::Configuration(e.into()))?;
    let mut report = RebuildReport::default();
    let mut after = String::new();
    loop {
        let page = store::events::replay_page(db, &set, &after, FAMILIES_PER_BATCH).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.aggregate_id.clone();
        let mut batch = Vec::with_capacity(page.len());
        for stream in page {
            report.events += stream.events.len() as u64;
            let Ok(family_id) = stream.aggregate_id.parse::<Uuid>() else {
                continue;
            };
            let mut case = FamilyCase::default();
            for event in stream.events {
                case.apply(event);
            }
            let version = stream.version as u64;
            if let Some(rows) = FamilyRows::build(
                family_id,
                version,
                case,
                stream.head_hash,
                &policy,
                policy_version,
            ) {
                batch.push(rows);
                report.families += 1;
            }
        }
        read_models::write(&bulk, &REBUILD, &batch, None, Mode::Fresh).await?;
        progress(report.events, total);
    }
    bulk.close().await;
    progress(total, total);
    store::fresh::swap(db, set.end).await?;
    // Activities and inspections keep their rows in the transaction of their
    // events; refolding them here repairs anything a rebuild is run for.
    let (activities, inspections) = crate::streams::rebuild_tables(db).await?;
    report.activities = activities as u64;
    report.inspections = inspections as u64;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
