//! The event repository: one type over the two crates' repositories, so the
//! rest of the code has a single `PersistedEventStore<Repo, FamilyCase>`.
//! It is also where stored events pass through on their way in and out —
//! the place for per-event concerns: sealing each event into its stream's
//! hash chain (see [`crate::audit`]; cqrs-es gives every event of a commit
//! the same metadata map, so only here can each get its own hash), and
//! mapping SQLite's UNIQUE violation (our table keeps the crate's key as a
//! UNIQUE constraint, since `position` is the primary key) back to an
//! optimistic-lock conflict.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use crate::audit;
use crate::store::{self, is_unique_violation, Db};

pub struct Repo {
    db: Db,
    inner: Inner,
}

enum Inner {
    Sqlite(SqliteEventRepository),
    Postgres(PostgresEventRepository),
}

impl Repo {
    pub fn new(db: &Db) -> Self {
        let inner = match db {
            Db::Sqlite(pool) => Inner::Sqlite(SqliteEventRepository::new(pool.clone())),
            Db::Postgres(pool) => Inner::Postgres(PostgresEventRepository::new(pool.clone())),
        };
        Self {
            db: db.clone(),
            inner,
        }
    }

    /// `events` with `prev_hash` and `hash` in their metadata, chained to
    /// the stored event just before the first of them. If another commit
    /// wins the race for these sequence numbers, ours fails on the store's
    /// unique key (an optimistic-lock conflict), so a chain never forks.
    async fn seal<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(Vec::new());
        };
        let unknown =
            |e: Box<dyn std::error::Error + Send + Sync>| PersistenceError::UnknownError(e);
        let prev_hash = if first.sequence <= 1 {
            String::new()
        } else {
            let previous = first.sequence as i64 - 1;
            match store::events::stored_hash(&self.db, A::TYPE, &first.aggregate_id, previous)
                .await
                .map_err(|e| unknown(Box::new(e)))?
            {
                Some(hash) => hash.unwrap_or_default(),
                None => {
                    return Err(unknown(
                        "the event before this commit is missing from the log".into(),
                    ))
                }
            }
        };
        audit::seal(events, prev_hash).map_err(|e| unknown(Box::new(e)))
    }
}

fn map_conflict(err: PersistenceError) -> PersistenceError {
    match err {
        PersistenceError::UnknownError(inner)
            if inner
                .downcast_ref::<sqlx::Error>()
                .is_some_and(is_unique_violation) =>
        {
            PersistenceError::OptimisticLockError
        }
        other => other,
    }
}

macro_rules! dispatch {
    ($self:ident, $r:ident => $body:expr) => {
        match &$self.inner {
            Inner::Sqlite($r) => $body,
            Inner::Postgres($r) => $body,
        }
    };
}

impl PersistedEventRepository for Repo {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        dispatch!(self, r => r.get_events::<A>(aggregate_id).await)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        dispatch!(self, r => r.get_last_events::<A>(aggregate_id, last_sequence).await)
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        dispatch!(self, r => r.get_snapshot::<A>(aggregate_id).await)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let sealed = self.seal::<A>(events).await?;
        dispatch!(self, r => r.persist::<A>(&sealed, snapshot_update).await).map_err(map_conflict)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        dispatch!(self, r => r.stream_events::<A>(aggregate_id).await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        dispatch!(self, r => r.stream_all_events::<A>().await)
    }
}
