//! The `events` table: the log. Events are appended through cqrs-es's
//! repositories (`crate::repo::Repo`, which seals the hash chain); this
//! module holds every other statement that reads the log.

use cqrs_es::Aggregate;
use futures::TryStreamExt;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::FamilyEvent;
use serde_json::Value;
use uuid::Uuid;

use super::checkpoints::Checkpoint;
use super::{Db, Tx};
use crate::{on_pool, on_tx};

/// One row of the event log, as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    #[sqlx(try_from = "i64")]
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    #[sqlx(json)]
    pub payload: Value,
    #[sqlx(json)]
    pub metadata: Value,
}

impl StoredEvent {
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

const COLUMNS: &str =
    "aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata";

/// An event to append: its stream, place and serialized form (metadata
/// already sealed into the family's hash chain).
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// A stable name for the event (UUIDv7: in time order, so the unique
    /// index on it grows at one end instead of at random pages).
    pub event_id: Uuid,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

impl NewEvent {
    /// A sealed event (hash chain in its metadata) of `aggregate_type`, with
    /// a fresh `event_id`.
    pub fn from_sealed(aggregate_type: &'static str, e: cqrs_es::persist::SerializedEvent) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            aggregate_type,
            aggregate_id: e.aggregate_id,
            sequence: e.sequence as u64,
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload,
            metadata: e.metadata,
        }
    }
}

/// Events per multi-row INSERT (8 bound columns).
const EVENTS_PER_INSERT: usize = 1000;

/// Appends `events` inside `tx`, skipping — not failing on — any whose
/// place in its stream (`ON CONFLICT DO NOTHING`) or whose (user,
/// idempotency key) is already taken, and records the keys of those it
/// appends in `idempotency_keys` (a key recorded by another transaction
/// meanwhile fails this one: retry it). Returns
/// the streams with an event appended (the command path sends one event per
/// stream, so for it: the streams whose event went in; the caller tells the
/// others apart — a replay, or a conflict to retry). Rows go in stream-id
/// order (a stream's own events keep theirs), so two writers meeting on the
/// same keys lock them in the same order.
pub async fn append(
    tx: &mut Tx,
    events: &[&NewEvent],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let mut sorted: Vec<&NewEvent> = events.to_vec();
    sorted.sort_by(|a, b| a.aggregate_id.cmp(&b.aggregate_id));
    // `event_id` is uuid on PostgreSQL, text on SQLite.
    let uuid_cast = match tx {
        Tx::Postgres(_) => "::uuid",
        Tx::Sqlite(_) => "",
    };
    // A retry whose key is recorded appends nothing.
    let keys: Vec<(&str, &str)> = sorted.iter().filter_map(|e| idempotency_key(e)).collect();
    let taken = keys_taken(tx, &keys).await?;
    let sorted: Vec<&NewEvent> = sorted
        .into_iter()
        .filter(|e| idempotency_key(e).is_none_or(|k| !taken.contains(&k)))
        .collect();
    let mut appended = std::collections::HashSet::with_capacity(events.len());
    let mut keyed: Vec<&NewEvent> = Vec::new();
    for chunk in sorted.chunks(EVENTS_PER_INSERT) {
        let ids: Vec<(String, String)> = on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                "INSERT INTO events (event_id, aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(e.event_id.to_string())
                    .push_unseparated(uuid_cast)
                    .push_bind(e.aggregate_type)
                    .push_bind(e.aggregate_id.clone())
                    .push_bind(e.sequence as i64)
                    .push_bind(e.event_type.clone())
                    .push_bind(e.event_version.clone())
                    .push_bind(sqlx::types::Json(e.payload.clone()))
                    .push_bind(sqlx::types::Json(e.metadata.clone()));
            });
            qb.push(" ON CONFLICT DO NOTHING RETURNING aggregate_id, CAST(event_id AS TEXT)");
            qb.build_query_as::<(String, String)>().fetch_all(&mut *conn).await?
        });
        let placed: std::collections::HashSet<&str> =
            ids.iter().map(|(_, id)| id.as_str()).collect();
        keyed.extend(chunk.iter().filter(|e| {
            idempotency_key(e).is_some() && placed.contains(e.event_id.to_string().as_str())
        }));
        appended.extend(ids.into_iter().map(|(a, _)| a));
    }
    // A plain INSERT: a key recorded meanwhile fails the transaction.
    for chunk in keyed.chunks(KEYS_PER_STATEMENT) {
        on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                "INSERT INTO idempotency_keys (user_id, key, aggregate_type, aggregate_id, sequence) ",
            );
            qb.push_values(chunk, |mut b, e| {
                let (user, key) = idempotency_key(e).expect("filtered on keys");
                b.push_bind(user.to_owned())
                    .push_bind(key.to_owned())
                    .push_bind(e.aggregate_type)
                    .push_bind(e.aggregate_id.clone())
                    .push_bind(e.sequence as i64);
            });
            qb.build().execute(&mut *conn).await?;
        });
    }
    Ok(appended)
}

/// (user, key) pairs per statement of [`keys_taken`] and of the key INSERT
/// (5 bound columns at most: far below SQLite's parameter cap).
const KEYS_PER_STATEMENT: usize = 500;

/// The (user, idempotency key) an event was recorded under, if any.
fn idempotency_key(e: &NewEvent) -> Option<(&str, &str)> {
    Some((
        e.metadata.get("recorded_by_id")?.as_str()?,
        e.metadata.get("idempotency_key")?.as_str()?,
    ))
}

/// Which of `keys` are recorded already: one query per
/// [`KEYS_PER_STATEMENT`] keys (a group commit asks for all its events'
/// keys at once, not one round trip each).
async fn keys_taken<'k>(
    tx: &mut Tx,
    keys: &[(&'k str, &'k str)],
) -> Result<std::collections::HashSet<(&'k str, &'k str)>, sqlx::Error> {
    let mut taken = std::collections::HashSet::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let found: Vec<(String, String)> = on_tx!(tx, conn, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(
                "SELECT user_id, key FROM idempotency_keys WHERE (user_id, key) IN (VALUES ",
            );
            let mut values = qb.separated(", ");
            for (user, key) in chunk {
                values.push("(");
                values.push_bind_unseparated((*user).to_owned());
                values.push_unseparated(", ");
                values.push_bind_unseparated((*key).to_owned());
                values.push_unseparated(")");
            }
            qb.push(")");
            qb.build_query_as::<(String, String)>().fetch_all(&mut *conn).await?
        });
        let found: std::collections::HashSet<(&str, &str)> = found
            .iter()
            .map(|(u, k)| (u.as_str(), k.as_str()))
            .collect();
        taken.extend(chunk.iter().filter(|pair| found.contains(*pair)));
    }
    Ok(taken)
}

/// The number of the last event in the log (0 when empty).
pub async fn head_position(db: &Db) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
    on_pool!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
}

/// Every stored event of one family, in order.
pub async fn of_family(db: &Db, family_id: Uuid) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         ORDER BY sequence"
    );
    on_pool!(db, pool => {
        sqlx::query_as(&sql)
            .bind(FamilyCase::TYPE)
            .bind(family_id.to_string())
            .fetch_all(pool)
            .await
    })
}

/// Every stored event of one stream of another aggregate (an activity, an
/// inspection), in order.
pub async fn of_stream(
    db: &Db,
    aggregate_type: &str,
    id: Uuid,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         ORDER BY sequence"
    );
    on_pool!(db, pool => {
        sqlx::query_as(&sql)
            .bind(aggregate_type)
            .bind(id.to_string())
            .fetch_all(pool)
            .await
    })
}

/// Feeds every stored event of one aggregate type (only those of
/// `event_types`, unless it is empty) to `take`, stream by stream in
/// sequence order, without holding them in memory. Returns the count.
pub async fn for_each_of_type(
    db: &Db,
    aggregate_type: &str,
    event_types: &[&str],
    mut take: impl FnMut(StoredEvent),
) -> Result<u64, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM events WHERE aggregate_type = $1");
    if !event_types.is_empty() {
        let binds: Vec<String> = (0..event_types.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        sql.push_str(&format!(" AND event_type IN ({})", binds.join(", ")));
    }
    sql.push_str(" ORDER BY aggregate_id, sequence");
    let mut seen = 0u64;
    on_pool!(db, pool => {
        let mut query = sqlx::query_as::<_, StoredEvent>(&sql).bind(aggregate_type);
        for t in event_types {
            query = query.bind(*t);
        }
        let mut rows = query.fetch(pool);
        while let Some(event) = rows.try_next().await? {
            seen += 1;
            take(event);
        }
    });
    Ok(seen)
}

/// Feeds the events of the streams `ids` of `aggregate_type` to `take`,
/// stream by stream in stream order (a few hundred streams per query).
pub async fn for_each_of_streams(
    db: &Db,
    aggregate_type: &str,
    ids: &[String],
    mut take: impl FnMut(StoredEvent),
) -> Result<u64, sqlx::Error> {
    let mut seen = 0u64;
    for chunk in ids.chunks(500) {
        on_pool!(db, pool, DB => {
            let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new(format!(
                "SELECT {COLUMNS} FROM events WHERE aggregate_type = "
            ));
            qb.push_bind(aggregate_type.to_owned());
            qb.push(" AND aggregate_id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(") ORDER BY aggregate_id, sequence");
            let mut rows = qb.build_query_as::<StoredEvent>().fetch(pool);
            while let Some(event) = rows.try_next().await? {
                seen += 1;
                take(event);
            }
        });
    }
    Ok(seen)
}

/// Feeds every stored event (of one family, or of the whole log) to `take`
/// in stream order, without holding the log in memory. Returns the count.
pub async fn for_each(
    db: &Db,
    family: Option<Uuid>,
    mut take: impl FnMut(StoredEvent),
) -> Result<u64, sqlx::Error> {
    let sql = match family {
        Some(_) => format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             ORDER BY sequence"
        ),
        None => {
            format!("SELECT {COLUMNS} FROM events ORDER BY aggregate_type, aggregate_id, sequence")
        }
    };
    let mut seen = 0u64;
    on_pool!(db, pool => {
        let mut query = sqlx::query_as::<_, StoredEvent>(&sql);
        if let Some(id) = family {
            query = query.bind(FamilyCase::TYPE).bind(id.to_string());
        }
        let mut rows = query.fetch(pool);
        while let Some(event) = rows.try_next().await? {
            seen += 1;
            take(event);
        }
    });
    Ok(seen)
}

/// The `hash` in the metadata of one stored event: `None` when there is no
/// such event, `Some(None)` when it has no hash.
pub async fn stored_hash(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<Option<Option<String>>, sqlx::Error> {
    let sql = match db {
        Db::Sqlite(_) => {
            "SELECT json_extract(metadata, '$.hash') FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
        }
        Db::Postgres(_) => {
            "SELECT metadata ->> 'hash' FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
        }
    };
    on_pool!(db, pool => {
        sqlx::query_scalar::<_, Option<String>>(sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(sequence)
            .fetch_optional(pool)
            .await
    })
}

/// The event a user appended with an idempotency key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyedEvent {
    pub aggregate_id: String,
    pub sequence: i64,
    #[sqlx(json)]
    pub payload: Value,
    pub request_hash: Option<String>,
}

/// The event `user` appended with idempotency `key`, if any (found through
/// `idempotency_keys`).
pub async fn by_idempotency_key(
    db: &Db,
    user: Uuid,
    key: &str,
) -> Result<Option<KeyedEvent>, sqlx::Error> {
    let sql = match db {
        Db::Sqlite(_) => {
            "SELECT e.aggregate_id, e.sequence, e.payload, \
             json_extract(e.metadata, '$.request_hash') AS request_hash \
             FROM idempotency_keys k JOIN events e ON e.aggregate_type = k.aggregate_type \
             AND e.aggregate_id = k.aggregate_id AND e.sequence = k.sequence \
             WHERE k.user_id = $1 AND k.key = $2"
        }
        Db::Postgres(_) => {
            "SELECT e.aggregate_id, e.sequence, e.payload, \
             e.metadata ->> 'request_hash' AS request_hash \
             FROM idempotency_keys k JOIN events e ON e.aggregate_type = k.aggregate_type \
             AND e.aggregate_id = k.aggregate_id AND e.sequence = k.sequence \
             WHERE k.user_id = $1 AND k.key = $2"
        }
    };
    on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(user.to_string())
            .bind(key)
            .fetch_optional(pool)
            .await
    })
}

/// What an idempotency key says of a request (`request_hash`) of its user.
pub enum KeyedAnswer {
    /// No key, or a key not used yet: record the request.
    Fresh,
    /// The key was used with another request (a 422 to the caller).
    OtherRequest,
    /// The same request was recorded: answer as the first time.
    Same {
        aggregate_id: Uuid,
        sequence: u64,
        payload: Value,
    },
}

/// The first answer to `user`'s request with idempotency `key`.
pub async fn keyed_answer(
    db: &Db,
    user: Uuid,
    key: Option<&str>,
    request_hash: &Option<String>,
) -> Result<KeyedAnswer, sqlx::Error> {
    let Some(key) = key else {
        return Ok(KeyedAnswer::Fresh);
    };
    Ok(match by_idempotency_key(db, user, key).await? {
        None => KeyedAnswer::Fresh,
        Some(found) if &found.request_hash != request_hash => KeyedAnswer::OtherRequest,
        Some(found) => KeyedAnswer::Same {
            aggregate_id: super::uuid(&found.aggregate_id, "aggregate_id")?,
            sequence: found.sequence as u64,
            payload: found.payload,
        },
    })
}

/// One event's place in the log, for the projection worker.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Placed {
    pub tx_id: i64,
    pub position: i64,
    /// Only `FamilyCase` streams have family read models; the others keep
    /// theirs in the transaction of their events.
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

impl Placed {
    pub fn at(&self) -> Checkpoint {
        Checkpoint {
            tx_id: self.tx_id,
            position: self.position,
        }
    }
}

/// Up to `limit` events after `from` that can no longer be overtaken: on
/// PostgreSQL only events of transactions older than the oldest one still
/// running, in (tx_id, position) order (positions are taken at insert but
/// become visible at commit); on SQLite, with its one writer, by position.
pub async fn after(db: &Db, from: Checkpoint, limit: i64) -> Result<Vec<Placed>, sqlx::Error> {
    match db {
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT tx_id, position, aggregate_type, aggregate_id, sequence FROM events \
                 WHERE (tx_id, position) > ($1, $2) \
                 AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                 ORDER BY tx_id, position LIMIT $3",
            )
            .bind(from.tx_id)
            .bind(from.position)
            .bind(limit)
            .fetch_all(pool)
            .await
        }
        Db::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT 0 AS tx_id, position, aggregate_type, aggregate_id, sequence FROM events \
                 WHERE position > $1 ORDER BY position LIMIT $2",
            )
            .bind(from.position)
            .bind(limit)
            .fetch_all(pool)
            .await
        }
    }
}

/// Counted at most by [`count_after`]: a lag is a small number or an alarm.
pub const LAG_COUNT_LIMIT: i64 = 1_000_000;

/// How many events lie after `cp` (at most [`LAG_COUNT_LIMIT`]). Counted
/// along the index in log order with a limit: a plain `COUNT(*)` with the
/// row comparison is planned as a scan of the whole log.
pub async fn count_after(db: &Db, cp: Checkpoint) -> Result<i64, sqlx::Error> {
    match db {
        Db::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM events \
                 WHERE tx_id >= $1 AND (tx_id, position) > ($1, $2) \
                 ORDER BY tx_id, position LIMIT $3) t",
            )
            .bind(cp.tx_id)
            .bind(cp.position)
            .bind(LAG_COUNT_LIMIT)
            .fetch_one(pool)
            .await
        }
        Db::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE position > $1 \
                 ORDER BY position LIMIT $2) t",
            )
            .bind(cp.position)
            .bind(LAG_COUNT_LIMIT)
            .fetch_one(pool)
            .await
        }
    }
}

/// A fixed set of events to replay, and where it ends.
#[derive(Debug, Clone, Copy)]
pub struct ReplaySet {
    /// The checkpoint that covers exactly this set.
    pub end: Checkpoint,
    /// How many events it holds.
    pub events: i64,
    /// The bound the pages filter on (SQLite: a position; PostgreSQL: a
    /// transaction id, exclusive).
    bound: i64,
}

/// Fixes the set of events a rebuild replays, without holding a snapshot
/// open: on SQLite every event up to the head position; on PostgreSQL
/// every event of a transaction older than the oldest one running now
/// (after waiting, up to 30 s, until every transaction that wrote an event
/// so far has finished). Both sets never change, so they can be read in
/// keyset pages.
pub async fn replay_set(db: &Db) -> Result<ReplaySet, sqlx::Error> {
    match db {
        Db::Postgres(pool) => {
            // Fresh statistics, or after a bulk load the planner may sort
            // the whole log for every page instead of walking the key.
            sqlx::query("ANALYZE events").execute(pool).await?;
            let waiting = std::time::Instant::now();
            loop {
                let (xmin, newest): (i64, i64) = sqlx::query_as(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, \
                     COALESCE((SELECT MAX(tx_id) FROM events), 0)",
                )
                .fetch_one(pool)
                .await?;
                if xmin > newest || waiting.elapsed() > std::time::Duration::from_secs(30) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let (xmin, events): (i64, i64) = sqlx::query_as(
                "SELECT x, (SELECT COUNT(*) FROM events WHERE tx_id < x) \
                 FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS x) s",
            )
            .fetch_one(pool)
            .await?;
            Ok(ReplaySet {
                end: Checkpoint {
                    tx_id: xmin - 1,
                    position: i64::MAX,
                },
                events,
                bound: xmin,
            })
        }
        Db::Sqlite(pool) => {
            let (head, events): (i64, i64) =
                sqlx::query_as("SELECT COALESCE(MAX(position), 0), COUNT(*) FROM events")
                    .fetch_one(pool)
                    .await?;
            Ok(ReplaySet {
                end: Checkpoint {
                    tx_id: 0,
                    position: head,
                },
                events,
                bound: head,
            })
        }
    }
}

/// One family of a replay page: its events in sequence order, and the hash
/// of the last one.
#[derive(Debug, sqlx::FromRow)]
pub struct FamilyStream {
    pub aggregate_id: String,
    pub version: i64,
    #[sqlx(json)]
    pub events: Vec<FamilyEvent>,
    pub head_hash: Option<String>,
}

/// The next `limit` families of `set` after `after` (by id), each as one
/// row with its events aggregated in SQL: rows cross from the SQLite worker
/// thread one at a time, so a row per event would cost a thread wake-up per
/// event.
pub async fn replay_page(
    db: &Db,
    set: &ReplaySet,
    after: &str,
    limit: i64,
) -> Result<Vec<FamilyStream>, sqlx::Error> {
    let sql = match db {
        Db::Postgres(_) => {
            "SELECT aggregate_id, MAX(sequence) AS version, \
             json_agg(payload ORDER BY sequence) AS events, \
             (array_agg(metadata ->> 'hash' ORDER BY sequence DESC))[1] AS head_hash \
             FROM events WHERE aggregate_type = $1 AND tx_id < $2 AND aggregate_id > $3 \
             GROUP BY aggregate_id ORDER BY aggregate_id LIMIT $4"
        }
        Db::Sqlite(_) => {
            // With MAX(), SQLite takes a bare column (the hash) from the row
            // holding the maximum: the last event's.
            "SELECT aggregate_id, MAX(sequence) AS version, \
             json_group_array(json(payload) ORDER BY sequence) AS events, \
             json_extract(metadata, '$.hash') AS head_hash \
             FROM events WHERE aggregate_type = $1 AND position <= $2 AND aggregate_id > $3 \
             GROUP BY aggregate_id ORDER BY aggregate_id LIMIT $4"
        }
    };
    on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(FamilyCase::TYPE)
            .bind(set.bound)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

// ------------------------------------------------------------ checkpoints

/// One stream's last event in a checkpoint's set of events.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StreamHead {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub position: i64,
    /// The writing transaction (PostgreSQL; 0 on SQLite).
    pub tx_id: i64,
    /// The event's chain hash (`None` for an unsealed event).
    pub hash: Option<String>,
}

/// The state of the log a checkpoint signs, read in one snapshot: a set
/// of events that never changes once read (on SQLite every event up to
/// `position`; on PostgreSQL every event whose writing transaction is
/// visible in `tx_snapshot`), how many, and each stream's last event in
/// it. The heads are in the store's order; the caller sorts.
#[derive(Debug, Clone)]
pub struct LogState {
    pub heads: Vec<StreamHead>,
    pub events: i64,
    /// The highest position in the set (0 when empty).
    pub position: i64,
    /// PostgreSQL: the snapshot the set was read in, as
    /// `pg_current_snapshot()::text` (`xmin:xmax:xip,…`).
    pub tx_snapshot: Option<String>,
}

/// Every stream's last event, with its hash: the highest sequence per
/// stream from the key's index, then one lookup per stream.
const HEADS_PG: &str = "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.position, e.tx_id, \
     e.metadata ->> 'hash' AS hash \
     FROM (SELECT aggregate_type, aggregate_id, MAX(sequence) AS sequence FROM events \
           GROUP BY aggregate_type, aggregate_id) h \
     JOIN events e ON e.aggregate_type = h.aggregate_type \
     AND e.aggregate_id = h.aggregate_id AND e.sequence = h.sequence";

const HEADS_SQLITE: &str = "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.position, \
     0 AS tx_id, json_extract(e.metadata, '$.hash') AS hash \
     FROM (SELECT aggregate_type, aggregate_id, MAX(sequence) AS sequence FROM events \
           GROUP BY aggregate_type, aggregate_id) h \
     JOIN events e ON e.aggregate_type = h.aggregate_type \
     AND e.aggregate_id = h.aggregate_id AND e.sequence = h.sequence";

/// Reads the state of the log for a checkpoint (see [`LogState`]) in one
/// read-only transaction. On PostgreSQL it is REPEATABLE READ, and its
/// snapshot is recorded: which events it saw is then decidable from each
/// event's `tx_id` forever after (positions alone are not: a transaction
/// still in flight may hold a lower position than committed ones).
pub async fn log_state(db: &Db) -> Result<LogState, sqlx::Error> {
    match db {
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            // The first statement fixes the transaction's snapshot.
            let snapshot: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
                .fetch_one(&mut *tx)
                .await?;
            let heads: Vec<StreamHead> = sqlx::query_as(HEADS_PG).fetch_all(&mut *tx).await?;
            let (events, position): (i64, i64) =
                sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(position), 0) FROM events")
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(LogState {
                heads,
                events,
                position,
                tx_snapshot: Some(snapshot),
            })
        }
        Db::Sqlite(pool) => {
            // One read transaction: both statements see the same snapshot.
            let mut tx = pool.begin().await?;
            let heads: Vec<StreamHead> = sqlx::query_as(HEADS_SQLITE).fetch_all(&mut *tx).await?;
            let (events, position): (i64, i64) =
                sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(position), 0) FROM events")
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(LogState {
                heads,
                events,
                position,
                tx_snapshot: None,
            })
        }
    }
}

/// A stored event with its place in the log.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlacedEvent {
    #[sqlx(flatten)]
    pub event: StoredEvent,
    pub position: i64,
    /// The writing transaction (PostgreSQL; 0 on SQLite).
    pub tx_id: i64,
}

/// Feeds every stored event with its position (and, on PostgreSQL, its
/// transaction) to `take` in stream order, without holding the log in
/// memory. Returns the count.
pub async fn for_each_placed(
    db: &Db,
    mut take: impl FnMut(PlacedEvent),
) -> Result<u64, sqlx::Error> {
    let tx_id = if db.is_postgres() {
        "tx_id"
    } else {
        "0 AS tx_id"
    };
    let sql = format!(
        "SELECT {COLUMNS}, position, {tx_id} FROM events \
         ORDER BY aggregate_type, aggregate_id, sequence"
    );
    let mut seen = 0u64;
    on_pool!(db, pool => {
        let mut rows = sqlx::query_as::<_, PlacedEvent>(&sql).fetch(pool);
        while let Some(event) = rows.try_next().await? {
            seen += 1;
            take(event);
        }
    });
    Ok(seen)
}
