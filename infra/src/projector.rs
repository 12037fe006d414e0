//! Keeping the read models in step with the event log, and with the visit
//! policy in force.
//!
//! cqrs-es dispatches queries in memory after a commit, with no checkpoint:
//! a crash or an error in between would lose that update for good. Here the
//! command path writes a family's rows right after its commit (so a client
//! reads its own write), and a worker reads the log from a checkpoint stored
//! in the same transaction as the rows it writes, so anything the command
//! path missed is caught up — at start, after a crash, or written by
//! another process. Which events the worker may read safely (PostgreSQL
//! commits out of position order) is `store::events::after`.
//!
//! The read models depend on the visit policy, so the policy in force is
//! stored (`policy_state`); a change recomputes every family's derived rows
//! from its stored case, without replaying events (decisions.md, record 18).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::Aggregate;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::policy::VisitPolicy;
use nuanxin_projections::rows::FamilyRows;
use uuid::Uuid;

use crate::core::{Core, StoreError};
use crate::leader::Leadership;
use crate::read_models::{self, Advance, Mode, WriteError};
use crate::store::checkpoints::{self, READ_MODELS};
use crate::store::{self, Db, LIVE};

/// Events read per worker step.
pub const BATCH_EVENTS: i64 = 1000;

/// How long the worker lets commits accumulate after a wake-up.
const COALESCE: Duration = Duration::from_millis(50);

/// Why a projection step failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// Another writer moved the checkpoint: read it again.
    #[error("the checkpoint moved during the batch")]
    CheckpointMoved,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ProjectError {
    fn from(err: sqlx::Error) -> Self {
        ProjectError::Store(err.into())
    }
}

impl From<WriteError> for ProjectError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::CheckpointMoved => ProjectError::CheckpointMoved,
            WriteError::Sql(e) => e.into(),
        }
    }
}

pub struct Projector {
    core: Arc<Core>,
}

impl Projector {
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    fn db(&self) -> &Db {
        self.core.db()
    }

    /// Projects the next batch of events after the read models' checkpoint.
    /// Returns how many events it moved past (0 when caught up).
    pub async fn project_pending(&self) -> Result<usize, ProjectError> {
        let from = checkpoints::get(self.db(), READ_MODELS).await?;
        let events = store::events::after(self.db(), from, BATCH_EVENTS).await?;
        let Some(last) = events.last() else {
            return Ok(0);
        };
        let to = last.at();
        // The newest sequence of each family in this batch.
        let mut newest: HashMap<&str, i64> = HashMap::new();
        for e in events
            .iter()
            .filter(|e| e.aggregate_type == FamilyCase::TYPE)
        {
            let n = newest.entry(e.aggregate_id.as_str()).or_default();
            *n = (*n).max(e.sequence);
        }
        let families: Vec<&str> = newest.keys().copied().collect();
        let stored = store::case_files::versions(self.db(), &families).await?;
        let (policy, policy_version) = self.core.policy_in_force();
        let mut rows = Vec::new();
        let mut seen = HashSet::new();
        for e in events
            .iter()
            .filter(|e| e.aggregate_type == FamilyCase::TYPE)
        {
            let family = e.aggregate_id.as_str();
            if !seen.insert(family) || stored.get(family).copied().unwrap_or(0) >= newest[family] {
                continue;
            }
            let Ok(family_id) = family.parse::<Uuid>() else {
                continue;
            };
            let f = self.core.fold(family_id).await?;
            rows.extend(FamilyRows::build(
                family_id,
                f.version,
                f.case,
                f.head_hash,
                &policy,
                policy_version,
            ));
        }
        let advance = Advance {
            name: READ_MODELS,
            from,
            to,
        };
        read_models::write(self.db(), &LIVE, &rows, Some(advance), Mode::Guarded).await?;
        Ok(events.len())
    }

    /// Projects until caught up with what is visible now.
    pub async fn catch_up(&self) -> Result<usize, ProjectError> {
        let mut total = 0;
        loop {
            match self.project_pending().await {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(ProjectError::CheckpointMoved) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Catches up, then waits up to `limit` for the lag to clear (on
    /// PostgreSQL a transaction still running anywhere in the cluster holds
    /// the worker back). Returns the events projected and whether the lag
    /// cleared.
    pub async fn settle(&self, limit: Duration) -> Result<(usize, bool), ProjectError> {
        let started = std::time::Instant::now();
        let mut total = self.catch_up().await?;
        loop {
            if self.lag().await? == 0 {
                return Ok((total, true));
            }
            if started.elapsed() > limit {
                return Ok((total, false));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            total += self.catch_up().await?;
        }
    }

    /// Events in the log that the read models do not reflect yet.
    pub async fn lag(&self) -> Result<i64, sqlx::Error> {
        let cp = checkpoints::get(self.db(), READ_MODELS).await?;
        store::events::count_after(self.db(), cp).await
    }

    /// Makes `policy` the one in force: stores it (a new version if it
    /// differs from the stored one) and adopts it. The read models are
    /// recomputed by [`Projector::recompute_pending`] — the leading server's
    /// worker runs it; `nuanxin policy reload` runs it too, so it takes
    /// effect without a server. Returns whether the policy changed.
    pub async fn apply_policy(&self, policy: VisitPolicy) -> Result<bool, ProjectError> {
        let (version, changed) = checkpoints::store_policy(self.db(), &policy).await?;
        self.core.set_policy(policy, version);
        Ok(changed)
    }

    /// Puts the policy in force at start: the configured one if any (stored
    /// and adopted), else the one stored in the database, else the
    /// defaults. Returns whether it changed the stored policy.
    pub async fn adopt_policy(
        &self,
        configured: Option<VisitPolicy>,
    ) -> Result<bool, ProjectError> {
        if let Some(policy) = configured {
            return self.apply_policy(policy).await;
        }
        match checkpoints::stored_policy(self.db()).await? {
            Some(stored) => {
                self.core.set_policy(stored.policy, stored.version);
                Ok(false)
            }
            None => self.apply_policy(VisitPolicy::default()).await,
        }
    }

    /// Adopts the stored policy if another process changed it; returns
    /// whether it did. Every server does this (its commands must compute
    /// rows with the policy in force); only the leader recomputes.
    pub async fn follow_stored_policy(&self) -> Result<bool, ProjectError> {
        match checkpoints::stored_policy(self.db()).await? {
            Some(stored) if stored.version != self.core.policy_in_force().1 => {
                self.core.set_policy(stored.policy, stored.version);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Recomputes, with the policy in force, the key periods and schedules
    /// of every family whose rows were computed with an older version,
    /// pass after pass until a pass finds none (a server that had not yet
    /// adopted the policy may write old rows meanwhile: the next pass
    /// redoes them), then records the version applied. Each write is
    /// guarded: a family a command has moved on since it was read is left to
    /// that command's own write. Returns the families recomputed.
    pub async fn recompute_pending(&self) -> Result<usize, ProjectError> {
        let Some(stored) = checkpoints::stored_policy(self.db()).await? else {
            return Ok(0);
        };
        if stored.version != self.core.policy_in_force().1 {
            self.core.set_policy(stored.policy.clone(), stored.version);
        }
        let policy = stored.policy;
        let mut total = 0;
        loop {
            let mut after = String::new();
            let mut pass = 0;
            loop {
                let page =
                    store::case_files::page_on_older_policy(self.db(), stored.version, &after, 500)
                        .await?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                after = last.to_string();
                pass += page.len();
                let rows: Vec<FamilyRows> = page
                    .into_iter()
                    .filter_map(|(id, c)| {
                        FamilyRows::build(
                            id,
                            c.version,
                            c.state,
                            c.head_hash,
                            &policy,
                            stored.version,
                        )
                    })
                    .collect();
                total += read_models::write(self.db(), &LIVE, &rows, None, Mode::Recompute).await?;
            }
            if pass == 0 {
                break;
            }
            // Rows a command moved on meanwhile were skipped by the guard;
            // give their writers a moment, then look again.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if stored.applied < stored.version {
            checkpoints::mark_policy_applied(self.db(), stored.version).await?;
            tracing::info!(
                policy.version = stored.version,
                families = total,
                "visit policy applied: schedules recomputed"
            );
        }
        Ok(total)
    }

    /// Runs the projection worker until `shutdown` resolves: wakes after each
    /// local commit, on PostgreSQL NOTIFY from any process, and every second.
    /// On the leading server it catches the read models up and recomputes
    /// them for a new visit policy (every fifth round); elsewhere it only
    /// adopts a policy another process stored, so this server's commands
    /// compute their rows with it.
    pub async fn run_worker(
        self: Arc<Self>,
        leadership: Leadership,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut listener = listen(self.db()).await;
        let wake = self.core.wake();
        let mut ticks: u32 = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if leadership.is_leader() {
                match self.catch_up().await {
                    Ok(n) if n > 0 => tracing::debug!(events = n, "read models caught up"),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "projection worker step failed; will retry")
                    }
                }
                if ticks.is_multiple_of(5) {
                    if let Err(e) = self.recompute_pending().await {
                        tracing::error!(error = %e,
                            "recomputing for the visit policy failed; will retry");
                    }
                }
            } else {
                // Commands here must compute rows with the policy in force.
                match self.follow_stored_policy().await {
                    Ok(true) => {
                        tracing::info!("adopted the visit policy stored by another process")
                    }
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "checking the stored policy failed"),
                }
            }
            ticks = ticks.wrapping_add(1);
            let notified = async {
                match listener.as_mut() {
                    Some(l) => {
                        if l.recv().await.is_err() {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let woken = tokio::select! {
                _ = wake.notified() => true,
                _ = notified => true,
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                _ = shutdown.changed() => false,
            };
            if woken {
                // The command path has already written its rows; gather the
                // commits of the next moment into one batch rather than a
                // checkpoint transaction per commit.
                tokio::time::sleep(COALESCE).await;
            }
        }
    }
}

/// On PostgreSQL, a listener on the channel the `events` trigger notifies
/// after every insert (from any process); `None` means polling.
async fn listen(db: &Db) -> Option<sqlx::postgres::PgListener> {
    let Db::Postgres(pool) = db else {
        return None;
    };
    let mut listener = sqlx::postgres::PgListener::connect_with(pool)
        .await
        .map_err(|e| tracing::warn!(error = %e, "no listener connection; polling instead"))
        .ok()?;
    listener
        .listen("nuanxin_events")
        .await
        .map_err(|e| tracing::warn!(error = %e, "LISTEN failed; polling instead"))
        .ok()?;
    Some(listener)
}
