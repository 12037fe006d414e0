//! Writing families' read-model rows: the case file, key periods and visit
//! schedule of each, in one transaction, guarded by the case version so
//! that writers arriving out of order (the command path, the catch-up
//! worker, a rebuild) never regress a row. A checkpoint move can ride in the
//! same transaction, so rows and progress through the log commit together.

use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_projections::case_file::StoredCase;
use nuanxin_projections::rows::FamilyRows;
use uuid::Uuid;

use crate::core::{Core, StoreError};
use crate::store::checkpoints::{self, Checkpoint};
use crate::store::{self, Db, ReadModelTables, Tx, LIVE};

/// How a batch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Skip families whose stored version is not older (commands, worker).
    Guarded,
    /// Rewrite families still at the version read, computed with an older
    /// policy (a policy recompute).
    Recompute,
    /// Plain multi-row inserts into empty tables (a rebuild).
    Fresh,
}

/// A checkpoint move that rides in a batch's transaction.
#[derive(Debug, Clone, Copy)]
pub struct Advance<'a> {
    pub name: &'a str,
    pub from: Checkpoint,
    pub to: Checkpoint,
}

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The checkpoint moved under the writer; nothing was written.
    #[error("the checkpoint moved during the batch")]
    CheckpointMoved,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Writes many families' rows in one transaction, with an optional
/// checkpoint move. Returns how many families were written. Read-model rows
/// are derived: on PostgreSQL their commit does not wait for the disk (a
/// crash loses nothing the worker cannot write again from the log).
pub async fn write(
    db: &Db,
    t: &ReadModelTables,
    families: &[FamilyRows],
    advance: Option<Advance<'_>>,
    mode: Mode,
) -> Result<usize, WriteError> {
    let mut tx = db.begin().await?;
    tx.without_waiting_for_disk().await?;
    let families: Vec<&FamilyRows> = families.iter().collect();
    let written = write_in(&mut tx, t, &families, mode).await?;
    if let Some(a) = advance {
        if !checkpoints::advance(&mut tx, a.name, a.from, a.to).await? {
            tx.rollback().await?;
            return Err(WriteError::CheckpointMoved);
        }
    }
    tx.commit().await?;
    Ok(written)
}

/// Writes families' rows inside `tx` (distinct families; see [`write`]).
/// Returns how many were written.
pub async fn write_in(
    tx: &mut Tx,
    t: &ReadModelTables,
    families: &[&FamilyRows],
    mode: Mode,
) -> Result<usize, sqlx::Error> {
    let mut sorted: Vec<&FamilyRows> = families.to_vec();
    sorted.sort_by_key(|f| f.family_id);
    let written: Vec<&FamilyRows> = if mode == Mode::Fresh {
        store::case_files::insert_fresh(tx, t, &sorted).await?;
        sorted
    } else {
        let guard = if mode == Mode::Recompute {
            store::case_files::Guard::OlderPolicy
        } else {
            store::case_files::Guard::Newer
        };
        let ids = store::case_files::upsert(tx, t, &sorted, guard).await?;
        let written: Vec<&FamilyRows> = sorted
            .into_iter()
            .filter(|f| ids.contains(&f.family_id))
            .collect();
        store::schedule::replace(tx, t, &written).await?;
        return Ok(written.len());
    };
    store::schedule::insert(tx, t, &written).await?;
    Ok(written.len())
}

/// Writes one family's live rows from its folded state (when a read found
/// the row missing). A failure loses nothing — the events are committed and
/// the projection worker repairs the rows from the log — so it is only
/// logged.
pub async fn write_one(
    core: &Core,
    family_id: Uuid,
    version: u64,
    state: FamilyCase,
    head_hash: Option<String>,
) {
    let (policy, policy_version) = core.policy_in_force();
    let Some(rows) = FamilyRows::build(
        family_id,
        version,
        state,
        head_hash,
        &policy,
        policy_version,
    ) else {
        return;
    };
    if let Err(err) = write(core.db(), &LIVE, &[rows], None, Mode::Guarded).await {
        tracing::error!(error = %err, family.id = %family_id,
            "read model update failed; the worker will catch up");
    }
}

/// The case as the read model holds it, or — if the row is missing —
/// folded from the log and written back. `None` for an unknown family.
pub async fn load(core: &Core, family_id: Uuid) -> Result<Option<StoredCase>, StoreError> {
    if let Some(stored) = store::case_files::get(core.db(), family_id).await? {
        return Ok(Some(stored));
    }
    let folded = core.fold(family_id).await?;
    if !folded.case.registered {
        return Ok(None);
    }
    write_one(
        core,
        family_id,
        folded.version,
        folded.case.clone(),
        folded.head_hash.clone(),
    )
    .await;
    Ok(Some(StoredCase {
        version: folded.version,
        state: folded.case,
        head_hash: folded.head_hash,
        snapshot_version: folded.version,
    }))
}
