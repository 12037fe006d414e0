//! `nuanxin-bench checkpoint`: generate synthetic families straight into
//! an empty store (or reuse a store generated before), then time what a
//! signed checkpoint costs at that size: reading the stream heads in one
//! snapshot, the whole checkpoint (heads, Merkle root, signature, heads
//! file, record), and `audit verify --checkpoint` (one pass over the log:
//! every hash chain and every head) beside the plain chain verification.
//! The checkpoint files go to a temporary directory, removed after.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use nuanxin_infra::audit::checkpoint::{CheckpointConfig, Checkpointer, Kind};
use nuanxin_infra::audit::{self, extends};
use nuanxin_infra::{store, Nuanxin, Settings};
use serde::Serialize;

use crate::generate;

#[derive(Debug, Serialize)]
pub struct CheckpointReport {
    pub store: String,
    pub families: i64,
    pub events: i64,
    pub generate_seconds: Option<f64>,
    /// Reading every stream's head, the count and the highest position in
    /// one snapshot (`store::events::log_state`), best of `runs`.
    pub heads_query_seconds: f64,
    /// A whole on-demand checkpoint, best of `runs`.
    pub checkpoint_seconds: f64,
    pub heads_file_bytes: u64,
    pub statement_file_bytes: u64,
    /// `audit verify --checkpoint`: chains and heads in one pass.
    pub verify_with_checkpoint_seconds: f64,
    /// `audit verify`: the chains alone.
    pub verify_chains_seconds: f64,
    /// Anonymous resident memory (the process's own heap, not the
    /// memory-mapped database) before the timed part, and its peak
    /// during it (sampled every few milliseconds), in MiB.
    pub rss_anon_before_mib: Option<f64>,
    pub peak_rss_anon_mib: Option<f64>,
}

/// A `kB` field of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub async fn checkpoint(
    settings: &Settings,
    families: usize,
    seed: u64,
    reuse: bool,
    runs: usize,
) -> anyhow::Result<CheckpointReport> {
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
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let config = CheckpointConfig {
        dir: dir.path().join("checkpoints"),
        key_file: dir.path().join("signing.key"),
        daily: false,
    };
    let checkpoints = Checkpointer::open(db.clone(), settings.clock.clone(), &config)?;

    let rss_anon_before_mib = status_mib("RssAnon:");
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let sampling = sampling.clone();
        async move {
            let mut peak: Option<f64> = None;
            while sampling.load(Ordering::Relaxed) {
                if let Some(anon) = status_mib("RssAnon:") {
                    peak = Some(peak.map_or(anon, |p| p.max(anon)));
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            peak
        }
    });
    eprintln!("timing the heads query …");
    let mut heads_query = f64::MAX;
    let mut streams = 0;
    let mut events = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let state = store::events::log_state(&db).await?;
        heads_query = heads_query.min(t.elapsed().as_secs_f64());
        streams = state.heads.len() as i64;
        events = state.events;
    }
    eprintln!("timing whole checkpoints …");
    let mut whole = f64::MAX;
    let mut taken = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let cp = checkpoints
            .take(Kind::OnDemand, None)
            .await?
            .context("an on-demand checkpoint is always recorded")?;
        whole = whole.min(t.elapsed().as_secs_f64());
        taken = Some(cp);
    }
    let taken = taken.context("at least one checkpoint")?;
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);

    eprintln!("verifying the log against the checkpoint …");
    let t = Instant::now();
    let report = extends::verify(
        &db,
        std::slice::from_ref(&taken.statement_path),
        &checkpoints.public_key(),
        &[],
    )
    .await?;
    let verify_with_checkpoint_seconds = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.is_intact(),
        "the generated log fails verification: {:?}",
        report.failure()
    );
    eprintln!("verifying the chains alone …");
    let t = Instant::now();
    let chains = audit::verify(&db, None).await?;
    let verify_chains_seconds = t.elapsed().as_secs_f64();
    anyhow::ensure!(chains.is_intact(), "the generated chains are broken");
    sampling.store(false, Ordering::Relaxed);
    let peak_rss_anon_mib = sampler.await.ok().flatten();
    db.close().await;
    Ok(CheckpointReport {
        store: db.kind().into(),
        families: streams,
        events,
        generate_seconds,
        heads_query_seconds: heads_query,
        checkpoint_seconds: whole,
        heads_file_bytes: size(&taken.heads_path),
        statement_file_bytes: size(&taken.statement_path),
        verify_with_checkpoint_seconds,
        verify_chains_seconds,
        rss_anon_before_mib,
        peak_rss_anon_mib,
    })
}

impl CheckpointReport {
    pub fn markdown(&self) -> String {
        let mib = |v: Option<f64>| v.map_or("n/a".to_owned(), |m| format!("{m:.0}"));
        format!(
            "| store | families | events | heads query s | checkpoint s | heads file MiB | verify --checkpoint s | verify (chains) s | anon RSS before / peak MiB |\n\
             |---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {} / {} |\n",
            self.store,
            self.families,
            self.events,
            self.heads_query_seconds,
            self.checkpoint_seconds,
            self.heads_file_bytes as f64 / (1024.0 * 1024.0),
            self.verify_with_checkpoint_seconds,
            self.verify_chains_seconds,
            mib(self.rss_anon_before_mib),
            mib(self.peak_rss_anon_mib),
        )
    }
}
