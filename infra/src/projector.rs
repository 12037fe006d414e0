//! Keeping the read models in step with the event log.
//!
//! cqrs-es dispatches queries in memory after a commit, with no checkpoint:
//! a crash or an error in between would lose that update for good. Here the
//! command path writes a family's rows right after its commit (so a client
//! reads its own write), and a worker reads the log by position from a
//! checkpoint stored in the same transaction as the rows it writes, so
//! anything the command path missed is caught up — at start, after a crash,
//! or written by another process.
//!
//! On PostgreSQL, positions are taken when a transaction inserts but become
//! visible when it commits, so a later position can appear before an
//! earlier one. The worker therefore reads only events of transactions
//! older than the oldest transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`), in (tx_id, position) order:
//! every such transaction has finished, and any transaction not yet visible
//! has a larger id, so nothing is skipped. SQLite has a single writer, whose
//! commits appear in position order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use nuanxin_domain::policy::VisitPolicy;
use nuanxin_projections::writer::{
    self, Advance, Checkpoint, FamilyRows, Mode, WriteError, LIVE, READ_MODELS,
};
use nuanxin_projections::{on_pool, Db};
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use crate::cases::{Cases, ExecError};

/// Events read per worker step.
pub const BATCH_EVENTS: i64 = 1000;

impl From<WriteError> for ExecError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::CheckpointMoved => ExecError::Conflict,
            WriteError::Sql(e) => ExecError::Store(Box::new(e)),
        }
    }
}

/// One event's place in the log.
struct Pending {
    at: Checkpoint,
    family: String,
    sequence: i64,
}

async fn pending(db: &Db, from: Checkpoint, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    let rows: Vec<(i64, i64, String, i64)> = match db {
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT tx_id, position, aggregate_id, sequence FROM events \
                 WHERE (tx_id, position) > ($1, $2) \
                 AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                 ORDER BY tx_id, position LIMIT $3",
            )
            .bind(from.tx_id)
            .bind(from.position)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
        Db::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT 0, position, aggregate_id, sequence FROM events \
                 WHERE position > $1 ORDER BY position LIMIT $2",
            )
            .bind(from.position)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(tx_id, position, family, sequence)| Pending {
            at: Checkpoint { tx_id, position },
            family,
            sequence,
        })
        .collect())
}

/// Stored versions of the given families.
async fn stored_versions(db: &Db, families: &[&str]) -> Result<HashMap<String, i64>, sqlx::Error> {
    if families.is_empty() {
        return Ok(HashMap::new());
    }
    on_pool!(db, pool, DB => {
        let mut qb: sqlx::QueryBuilder<'_, DB> =
            sqlx::QueryBuilder::new("SELECT family_id, version FROM case_files WHERE family_id IN (");
        let mut sep = qb.separated(", ");
        for f in families {
            sep.push_bind(f.to_string());
        }
        qb.push(")");
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(pool).await?;
        Ok(rows.into_iter().collect())
    })
}

impl Cases {
    /// Projects the next batch of events after the read models' checkpoint.
    /// Returns how many events it moved past (0 when caught up).
    pub async fn project_pending(&self) -> Result<usize, ExecError> {
        let db = self.db();
        let from = writer::checkpoint(db, READ_MODELS).await?;
        let events = pending(db, from, BATCH_EVENTS).await?;
        let Some(last) = events.last() else {
            return Ok(0);
        };
        let to = last.at;
        // The newest sequence of each family in this batch.
        let mut newest: HashMap<&str, i64> = HashMap::new();
        for e in &events {
            let n = newest.entry(e.family.as_str()).or_default();
            *n = (*n).max(e.sequence);
        }
        let families: Vec<&str> = newest.keys().copied().collect();
        let stored = stored_versions(db, &families).await?;
        let policy = self.policy();
        let mut rows = Vec::new();
        let mut seen = HashSet::new();
        for e in &events {
            let family = e.family.as_str();
            if !seen.insert(family) || stored.get(family).copied().unwrap_or(0) >= newest[family] {
                continue;
            }
            let Ok(family_id) = family.parse::<Uuid>() else {
                continue;
            };
            let (version, case) = self.fold(family_id).await?;
            rows.extend(FamilyRows::build(family_id, version, case, &policy));
        }
        let advance = Advance {
            name: READ_MODELS,
            from,
            to,
        };
        writer::write(db, &LIVE, &rows, Some(advance), Mode::Guarded).await?;
        Ok(events.len())
    }

    /// Projects until caught up with what is visible now.
    pub async fn catch_up(&self) -> Result<usize, ExecError> {
        let mut total = 0;
        loop {
            match self.project_pending().await {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                // Another writer moved the checkpoint: read it again.
                Err(ExecError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Catches up, then waits up to `limit` for the lag to clear (on
    /// PostgreSQL a transaction still running anywhere in the cluster holds
    /// the worker back). Returns the events projected and whether the lag
    /// cleared.
    pub async fn settle(&self, limit: std::time::Duration) -> Result<(usize, bool), ExecError> {
        let started = std::time::Instant::now();
        let mut total = self.catch_up().await?;
        loop {
            if self.projection_lag().await? == 0 {
                return Ok((total, true));
            }
            if started.elapsed() > limit {
                return Ok((total, false));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            total += self.catch_up().await?;
        }
    }

    /// Events in the log that the read models do not reflect yet.
    pub async fn projection_lag(&self) -> Result<i64, ExecError> {
        let cp = writer::checkpoint(self.db(), READ_MODELS).await?;
        let lag: i64 = match self.db() {
            Db::Postgres(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE (tx_id, position) > ($1, $2)")
                    .bind(cp.tx_id)
                    .bind(cp.position)
                    .fetch_one(pool)
                    .await?
            }
            Db::Sqlite(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE position > $1")
                    .bind(cp.position)
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(lag)
    }

    /// Makes `policy` the one in force: if it differs from the policy the
    /// read models were computed with, stores it and recomputes every
    /// family's derived rows from its stored case (no event replay).
    /// Returns whether anything changed.
    pub async fn apply_policy(&self, policy: VisitPolicy) -> Result<bool, ExecError> {
        let stored = stored_policy(self.db()).await?;
        self.set_policy(policy.clone());
        if stored.as_ref() == Some(&policy) {
            return Ok(false);
        }
        store_policy(self.db(), &policy).await?;
        self.recompute_all().await?;
        Ok(true)
    }

    /// Puts the policy in force at start: the configured one if any (stored
    /// and applied), else the one stored in the database, else the
    /// defaults. Returns whether derived rows were recomputed.
    pub async fn adopt_policy(&self, configured: Option<VisitPolicy>) -> Result<bool, ExecError> {
        if let Some(policy) = configured {
            return self.apply_policy(policy).await;
        }
        match stored_policy(self.db()).await? {
            Some(stored) => {
                self.set_policy(stored);
                Ok(false)
            }
            None => self.apply_policy(VisitPolicy::default()).await,
        }
    }

    /// Adopts the stored policy if another process changed it; returns
    /// whether it did (and recomputed the derived rows).
    pub async fn follow_stored_policy(&self) -> Result<bool, ExecError> {
        match stored_policy(self.db()).await? {
            Some(stored) if stored != *self.policy() => {
                self.set_policy(stored);
                self.recompute_all().await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Recomputes key periods and schedules of every family from the stored
    /// cases with the policy in force.
    pub async fn recompute_all(&self) -> Result<usize, ExecError> {
        let db = self.db();
        let policy = self.policy();
        let mut after = String::new();
        let mut total = 0;
        loop {
            let page: Vec<(String, i64, Json<nuanxin_domain::aggregate::FamilyCase>)> = on_pool!(db, pool => {
                sqlx::query_as(
                    "SELECT family_id, version, state FROM case_files WHERE family_id > $1 \
                     ORDER BY family_id LIMIT 500",
                )
                .bind(&after)
                .fetch_all(pool)
                .await?
            });
            let Some(last) = page.last() else {
                return Ok(total);
            };
            after = last.0.clone();
            let rows: Vec<FamilyRows> = page
                .into_iter()
                .filter_map(|(id, version, Json(case))| {
                    FamilyRows::build(id.parse().ok()?, version as u64, case, &policy)
                })
                .collect();
            total += writer::write(db, &LIVE, &rows, None, Mode::Force).await?;
        }
    }
}

/// The policy the read models were computed with, if recorded.
pub async fn stored_policy(db: &Db) -> Result<Option<VisitPolicy>, sqlx::Error> {
    let value: Option<Json<serde_json::Value>> = on_pool!(db, pool => {
        sqlx::query("SELECT policy FROM policy_state WHERE id = 1")
            .fetch_optional(pool)
            .await?
            .map(|r| r.try_get("policy"))
            .transpose()?
    });
    value
        .map(|Json(v)| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

/// Records `policy` as the one in force (read by every server process).
pub async fn store_policy(db: &Db, policy: &VisitPolicy) -> Result<(), sqlx::Error> {
    let value = serde_json::to_value(policy).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let sql = "INSERT INTO policy_state (id, policy) VALUES (1, $1) \
               ON CONFLICT (id) DO UPDATE SET policy = excluded.policy";
    on_pool!(db, pool => {
        sqlx::query(sql).bind(Json(&value)).execute(pool).await.map(|_| ())
    })
}

/// Runs the projection worker until `shutdown` resolves: wakes after each
/// local commit, on PostgreSQL NOTIFY from any process, and every second;
/// follows policy changes stored by `nuanxin policy reload`.
pub async fn run_worker(cases: Arc<Cases>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut listener = match cases.db() {
        Db::Postgres(pool) => match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut l) => match l.listen("nuanxin_events").await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; polling instead");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no listener connection; polling instead");
                None
            }
        },
        Db::Sqlite(_) => None,
    };
    let wake = cases.wake();
    let mut ticks: u32 = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match cases.catch_up().await {
            Ok(n) if n > 0 => tracing::debug!(events = n, "read models caught up"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "projection worker step failed; will retry"),
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(5) {
            match cases.follow_stored_policy().await {
                Ok(true) => tracing::info!("visit policy changed; schedules recomputed"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "checking the stored policy failed"),
            }
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => {
                    if l.recv().await.is_err() {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        let woken = tokio::select! {
            _ = wake.notified() => true,
            _ = notified => true,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => false,
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

/// How long the worker lets commits accumulate after a wake-up.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(50);
