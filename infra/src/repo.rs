//! The event repository: one type over the two crates' repositories, so the
//! rest of the code has a single `PersistedEventStore<Repo, FamilyCase>`.
//! It is also where stored events pass through on their way in and out —
//! the place for per-event concerns such as mapping SQLite's UNIQUE
//! violation (our table keeps the crate's key as a UNIQUE constraint, since
//! `position` is the primary key) back to an optimistic-lock conflict.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use nuanxin_projections::Db;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

pub enum Repo {
    Sqlite(SqliteEventRepository),
    Postgres(PostgresEventRepository),
}

impl Repo {
    pub fn new(db: &Db) -> Self {
        match db {
            Db::Sqlite(pool) => Repo::Sqlite(SqliteEventRepository::new(pool.clone())),
            Db::Postgres(pool) => Repo::Postgres(PostgresEventRepository::new(pool.clone())),
        }
    }
}

/// SQLite extended codes for a PRIMARY KEY or UNIQUE violation.
const SQLITE_CONSTRAINT_CODES: [&str; 2] = ["1555", "2067"];

/// Whether `err` is a uniqueness violation in the database (any store).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c == "23505" || SQLITE_CONSTRAINT_CODES.contains(&c.as_ref())),
        _ => false,
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
        match $self {
            Repo::Sqlite($r) => $body,
            Repo::Postgres($r) => $body,
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
        dispatch!(self, r => r.persist::<A>(events, snapshot_update).await).map_err(map_conflict)
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
