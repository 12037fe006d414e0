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

/// The policy the read models were computed with, if recorded.
pub async fn stored_policy(db: &Db) -> Result<Option<VisitPolicy>, sqlx::Error> {
    let sql = "SELECT policy FROM policy_state WHERE id = 1";
    let value: Option<Json<serde_json::Value>> = on_pool!(db, pool => {
        sqlx::query_scalar(sql).fetch_optional(pool).await?
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
