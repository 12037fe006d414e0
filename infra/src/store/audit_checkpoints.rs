//! `audit_checkpoints` (one row per signed checkpoint of the event log:
//! its summary and the exact webhook body, so the row is also the outbox
//! message) and its delivery tables `audit_checkpoint_deliveries` and
//! `audit_checkpoint_delivery_attempts`, which the alert delivery worker
//! serves through [`OUTBOX`]. What a checkpoint is: `crate::audit::checkpoint`.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::alerts::Outbox;
use super::{uuid, Db};
use crate::on_pool;

/// The checkpoint messages, delivered like alert messages.
pub const OUTBOX: Outbox = Outbox {
    name: "checkpoint",
    messages: "audit_checkpoints",
    deliveries: "audit_checkpoint_deliveries",
    attempts: "audit_checkpoint_delivery_attempts",
};

/// One checkpoint as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub id: Uuid,
    pub taken_at: DateTime<Utc>,
    /// `daily` or `on_demand`.
    pub kind: String,
    /// The local date of a daily checkpoint.
    pub day: Option<NaiveDate>,
    pub position: i64,
    pub events: i64,
    pub streams: i64,
    pub merkle_root: String,
    pub key_id: String,
    /// The name of its statement file in the checkpoint directory.
    pub file: String,
    /// The webhook body: the signed statement and what it is.
    pub body: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    taken_at: DateTime<Utc>,
    kind: String,
    day: Option<NaiveDate>,
    position: i64,
    events: i64,
    streams: i64,
    merkle_root: String,
    key_id: String,
    file: String,
    body: String,
}

impl TryFrom<Row> for CheckpointRecord {
    type Error = sqlx::Error;

    fn try_from(r: Row) -> Result<Self, sqlx::Error> {
        Ok(CheckpointRecord {
            id: uuid(&r.id, "audit_checkpoints.id")?,
            taken_at: r.taken_at,
            kind: r.kind,
            day: r.day,
            position: r.position,
            events: r.events,
            streams: r.streams,
            merkle_root: r.merkle_root,
            key_id: r.key_id,
            file: r.file,
            body: r.body,
        })
    }
}

const COLUMNS: &str =
    "id, taken_at, kind, day, position, events, streams, merkle_root, key_id, file, body";

/// Records a checkpoint (and queues its webhook message). `false` when a
/// daily checkpoint of the same day is already recorded: another process
/// took it first.
pub async fn insert(db: &Db, c: &CheckpointRecord) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO audit_checkpoints ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
    );
    let n = on_pool!(db, pool => {
        sqlx::query(&sql)
            .bind(c.id.to_string())
            .bind(c.taken_at)
            .bind(&c.kind)
            .bind(c.day)
            .bind(c.position)
            .bind(c.events)
            .bind(c.streams)
            .bind(&c.merkle_root)
            .bind(&c.key_id)
            .bind(&c.file)
            .bind(&c.body)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Whether the daily checkpoint of `day` was taken.
pub async fn daily_taken(db: &Db, day: NaiveDate) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM audit_checkpoints WHERE kind = 'daily' AND day = $1";
    let n: i64 = on_pool!(db, pool => sqlx::query_scalar(sql).bind(day).fetch_one(pool).await?);
    Ok(n > 0)
}

/// One page of checkpoints, newest first (ids are UUIDv7), before `before`.
pub async fn list(
    db: &Db,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<CheckpointRecord>, sqlx::Error> {
    let sql = match before {
        Some(_) => format!(
            "SELECT {COLUMNS} FROM audit_checkpoints WHERE id < $1 ORDER BY id DESC LIMIT $2"
        ),
        None => format!("SELECT {COLUMNS} FROM audit_checkpoints ORDER BY id DESC LIMIT $1"),
    };
    let rows: Vec<Row> = on_pool!(db, pool => {
        let mut query = sqlx::query_as(&sql);
        if let Some(b) = before {
            query = query.bind(b.to_string());
        }
        query.bind(i64::from(limit)).fetch_all(pool).await?
    });
    rows.into_iter().map(CheckpointRecord::try_from).collect()
}
