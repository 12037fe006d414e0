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
use crate::store::{self, Db, ReadModelTables, LIVE};

/// How a batch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Skip families whose stored version is not older (commands, worker).
    Guarded,
    /// Rewrite every family's derived rows (the policy changed).
    Force,
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
    let mut written: Vec<&FamilyRows> = Vec::with_capacity(families.len());
    if mode == Mode::Fresh {
        store::case_files::insert_fresh(&mut tx, t, families).await?;
        written.extend(families);
    } else {
        for f in families {
            if store::case_files::upsert(&mut tx, t, f, mode == Mode::Guarded).await? {
                store::schedule::delete_family(&mut tx, t, f.family_id).await?;
                written.push(f);
            }
        }
    }
    store::schedule::insert(&mut tx, t, &written).await?;
    if let Some(a) = advance {
        if !checkpoints::advance(&mut tx, a.name, a.from, a.to).await? {
            tx.rollback().await?;
            return Err(WriteError::CheckpointMoved);
        }
    }
    tx.commit().await?;
    Ok(written.len())
}

/// Writes one family's live rows from its folded state (after a command,
/// or when a read found the row missing). A failure loses nothing — the
/// events are committed and the projection worker repairs the rows from the
/// log — so it is only logged.
pub async fn write_one(core: &Core, family_id: Uuid, version: u64, state: FamilyCase) {
    let policy = core.policy();
    let Some(rows) = FamilyRows::build(family_id, version, state, &policy) else {
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
    let (version, state) = core.fold(family_id).await?;
    if !state.registered {
        return Ok(None);
    }
    write_one(core, family_id, version, state.clone()).await;
    Ok(Some(StoredCase { version, state }))
}
