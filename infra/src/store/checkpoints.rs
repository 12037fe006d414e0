//! `projection_checkpoints` (how far each projection has read the log) and
//! `policy_state` (the visit policy the read models were computed with).

use nuanxin_domain::policy::VisitPolicy;
use sqlx::types::Json;

use super::{Db, Tx};
use crate::{on_pool, on_tx};

/// Progress through the event log: every event up to (tx_id, position), in
/// that order, is reflected. On SQLite tx_id is always 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Checkpoint {
    pub tx_id: i64,
    pub position: i64,
}

/// The name of the read models' checkpoint.
pub const READ_MODELS: &str = "read_models";

/// The checkpoint of projection `name` (zero when it has never run).
pub async fn get(db: &Db, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let sql = "SELECT tx_id, position FROM projection_checkpoints WHERE name = $1";
    let row: Option<Checkpoint> = on_pool!(db, pool => {
        sqlx::query_as(sql).bind(name).fetch_optional(pool).await?
    });
    Ok(row.unwrap_or_default())
}

/// Sets the checkpoint of projection `name` inside `tx`.
pub async fn set(tx: &mut Tx, name: &str, cp: Checkpoint) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO projection_checkpoints (name, tx_id, position) VALUES ($1, $2, $3) \
               ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position";
    on_tx!(tx, conn => {
        sqlx::query(sql).bind(name).bind(cp.tx_id).bind(cp.position).execute(&mut *conn).await?;
    });
    Ok(())
}

/// Moves checkpoint `name` from `from` to `to` inside `tx`, only if it is
/// still at `from`: a writer that lost a race (another worker, or a rebuild
/// swapping tables in) learns it with `false` and rolls its batch back
/// instead of skipping events.
pub async fn advance(
    tx: &mut Tx,
    name: &str,
    from: Checkpoint,
    to: Checkpoint,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE projection_checkpoints SET tx_id = $1, position = $2 \
               WHERE name = $3 AND tx_id = $4 AND position = $5";
    let moved = on_tx!(tx, conn => {
        sqlx::query(sql)
            .bind(to.tx_id)
            .bind(to.position)
            .bind(name)
            .bind(from.tx_id)
            .bind(from.position)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(moved == 1)
}

/// The visit policy in force, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    pub policy: VisitPolicy,
    /// Bumped by every change.
    pub version: i64,
    /// The version whose recompute of the read models has finished.
    pub applied: i64,
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    policy: Json<serde_json::Value>,
    version: i64,
    applied: i64,
}

/// The policy in force, if one was ever stored.
pub async fn stored_policy(db: &Db) -> Result<Option<StoredPolicy>, sqlx::Error> {
    let sql = "SELECT policy, version, applied FROM policy_state WHERE id = 1";
    let row: Option<PolicyRow> = on_pool!(db, pool => {
        sqlx::query_as(sql).fetch_optional(pool).await?
    });
    row.map(|r| {
        Ok(StoredPolicy {
            policy: serde_json::from_value(r.policy.0)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            version: r.version,
            applied: r.applied,
        })
    })
    .transpose()
}

/// Makes `policy` the one in force: stores it with a new version if it
/// differs from the stored one (a first policy is version 1, applied: there
/// are no rows to recompute yet). Returns the version in force and whether
/// it changed.
pub async fn store_policy(db: &Db, policy: &VisitPolicy) -> Result<(i64, bool), sqlx::Error> {
    let value = serde_json::to_value(policy).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let mut tx = db.begin_write().await?;
    let current: Option<(Json<serde_json::Value>, i64)> = on_tx!(&mut tx, conn => {
        sqlx::query_as("SELECT policy, version FROM policy_state WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?
    });
    let result = match current {
        Some((stored, version)) if stored.0 == value => (version, false),
        Some((_, version)) => {
            let sql = "UPDATE policy_state SET policy = $1, version = $2 WHERE id = 1";
            on_tx!(&mut tx, conn => {
                sqlx::query(sql).bind(Json(&value)).bind(version + 1).execute(&mut *conn).await?;
            });
            (version + 1, true)
        }
        None => {
            let sql =
                "INSERT INTO policy_state (id, policy, version, applied) VALUES (1, $1, 1, 1) \
                       ON CONFLICT (id) DO NOTHING";
            on_tx!(&mut tx, conn => {
                sqlx::query(sql).bind(Json(&value)).execute(&mut *conn).await?;
            });
            (1, false)
        }
    };
    tx.commit().await?;
    Ok(result)
}

/// Records that the read models were recomputed for policy `version`.
pub async fn mark_policy_applied(db: &Db, version: i64) -> Result<(), sqlx::Error> {
    let sql = "UPDATE policy_state SET applied = $1 WHERE id = 1 AND version = $1 AND applied < $1";
    on_pool!(db, pool => sqlx::query(sql).bind(version).execute(pool).await.map(|_| ()))
}
