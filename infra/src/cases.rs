//! Executing commands on family cases, and reading them back.
//!
//! cqrs-es's `CqrsFramework::execute` neither takes an expected version nor
//! returns the new one, so [`Cases::execute`] drives the crate's
//! `PersistedEventStore` itself: load the aggregate context, compare the
//! version with `If-Match`, let the aggregate decide, commit with metadata,
//! and answer with the committed sequence. A conflict from the store (a
//! concurrent command on the same family) is retried; with `If-Match` it is
//! answered as a version conflict. The events are durable when `commit`
//! returns; the case file row is written right after, and a row that missed
//! its update (crash in between) is caught up from the log at start.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use nuanxin_domain::aggregate::{CaseError, CaseServices, FamilyCase};
use nuanxin_domain::metadata::{EventMetadata, Recorder};
use nuanxin_domain::policy::VisitPolicy;
use nuanxin_domain::{FamilyCommand, Scope};
use nuanxin_projections::case_file::{self, StoredCase};
use nuanxin_projections::writer::{self, FamilyRows, Mode, LIVE};
use nuanxin_projections::{on_pool, Db};
use sqlx::Row;
use uuid::Uuid;

use crate::repo::Repo;

/// How many times a command is retried after losing a race on its family.
const MAX_ATTEMPTS: usize = 8;

/// Commands on one family are serialized within the process by one of
/// these striped locks, so they rarely race in the store; a race with
/// another process is still caught by the store and retried.
const LOCK_STRIPES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("family not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("the case is at version {current}, not the version given in If-Match")]
    VersionMismatch { current: u64 },
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    #[error("the case kept changing under this command; try again")]
    Conflict,
    #[error("store error: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<AggregateError<CaseError>> for ExecError {
    fn from(err: AggregateError<CaseError>) -> Self {
        match err {
            AggregateError::UserError(e) => ExecError::Case(e),
            AggregateError::AggregateConflict => ExecError::Conflict,
            AggregateError::DatabaseConnectionError(e)
            | AggregateError::DeserializationError(e)
            | AggregateError::UnexpectedError(e) => ExecError::Store(e),
        }
    }
}

impl From<sqlx::Error> for ExecError {
    fn from(err: sqlx::Error) -> Self {
        ExecError::Store(Box::new(err))
    }
}

/// Everything about a command besides the command itself.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub family_id: Uuid,
    pub recorder: Recorder,
    /// The caller's jurisdiction: the family must lie within it.
    pub scope: Scope,
    pub request_id: String,
    pub expected_version: Option<u64>,
    pub idempotency_key: Option<String>,
    /// Hash of method, path and body: tells a retry from a reuse of the key.
    pub request_hash: Option<String>,
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub family_id: Uuid,
    pub version: u64,
    pub action_id: Uuid,
    /// True when this answers a retried request from its first execution.
    pub replayed: bool,
}

pub struct Cases {
    db: Db,
    store: PersistedEventStore<Repo, FamilyCase>,
    /// A second handle on the same repository, for reading the events
    /// after a snapshot (the store above owns its own).
    repo: Repo,
    services: CaseServices,
    policy: std::sync::RwLock<Arc<VisitPolicy>>,
    locks: Vec<tokio::sync::Mutex<()>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Cases {
    pub fn new(db: Db, services: CaseServices, policy: Arc<VisitPolicy>) -> Self {
        let store = PersistedEventStore::new_event_store(Repo::new(&db));
        Self {
            repo: Repo::new(&db),
            db,
            store,
            services,
            policy: std::sync::RwLock::new(policy),
            wake: Arc::new(tokio::sync::Notify::new()),
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    fn lock_for(&self, family_id: Uuid) -> &tokio::sync::Mutex<()> {
        let stripe = (family_id.as_u128() % LOCK_STRIPES as u128) as usize;
        &self.locks[stripe]
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn services(&self) -> &CaseServices {
        &self.services
    }

    /// The visit policy in force.
    pub fn policy(&self) -> Arc<VisitPolicy> {
        self.policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_policy(&self, policy: VisitPolicy) {
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }

    /// Notified after every commit, to wake the projection worker.
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// The aggregate context a command runs against. The case file row
    /// holds the case folded up to its version (written after each commit,
    /// version-guarded), so it serves as a snapshot: only the events after
    /// it are read and applied. Load time then no longer grows with the
    /// family's history. Without a usable row, the whole stream is folded.
    pub async fn load_for_command(
        &self,
        family_id: Uuid,
    ) -> Result<EventStoreAggregateContext<FamilyCase>, ExecError> {
        use cqrs_es::persist::PersistedEventRepository;
        let id = family_id.to_string();
        let snapshot = match case_file::get(&self.db, family_id).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, family.id = %family_id, "case file unreadable; folding the stream");
                None
            }
        };
        let Some(snapshot) = snapshot else {
            return Ok(self.store.load_aggregate(&id).await?);
        };
        let newer = self
            .repo
            .get_last_events::<FamilyCase>(&id, snapshot.version as usize)
            .await
            .map_err(|e| ExecError::Store(Box::new(e)))?;
        let mut context = EventStoreAggregateContext {
            aggregate_id: id,
            aggregate: snapshot.state,
            current_sequence: snapshot.version as usize,
            current_snapshot: None,
        };
        for event in newer {
            let payload: nuanxin_domain::FamilyEvent =
                serde_json::from_value(event.payload).map_err(|e| ExecError::Store(Box::new(e)))?;
            context.current_sequence = event.sequence;
            context.aggregate.apply(payload);
        }
        Ok(context)
    }

    /// The family folded from its events: (version, case).
    pub async fn fold(&self, family_id: Uuid) -> Result<(u64, FamilyCase), ExecError> {
        let context = self.store.load_aggregate(&family_id.to_string()).await?;
        Ok((context.current_sequence as u64, context.aggregate))
    }

    /// Records `command` for the family in `req`, exactly once.
    #[tracing::instrument(skip_all, fields(family.id = %req.family_id, user.id = %req.recorder.id))]
    pub async fn execute(
        &self,
        command: FamilyCommand,
        req: &CommandRequest,
    ) -> Result<Outcome, ExecError> {
        if let Some(found) = self.idempotent_replay(req).await? {
            return Ok(found);
        }
        let id = req.family_id.to_string();
        let _serialized = self.lock_for(req.family_id).lock().await;
        for attempt in 1..=MAX_ATTEMPTS {
            let mut context = self.load_for_command(req.family_id).await?;
            let current = context.current_sequence as u64;
            let aggregate = context.aggregate();
            self.check_scope(aggregate, &command, &req.scope)?;
            if let Some(expected) = req.expected_version {
                if expected != current {
                    return Err(ExecError::VersionMismatch { current });
                }
            }
            let sink = EventSink::default();
            aggregate
                .handle(command.clone(), &self.services, &sink)
                .await?;
            let state = aggregate.clone();
            let events = sink.collect().await;
            let action_id = events
                .first()
                .map(|e| e.action_id())
                .ok_or(ExecError::Conflict)?;
            let metadata = EventMetadata {
                recorded_by: req.recorder.clone(),
                recorded_at: self.services.clock.now(),
                request_id: req.request_id.clone(),
                idempotency_key: req.idempotency_key.clone(),
                request_hash: req.request_hash.clone(),
            };
            match self.store.commit(events, context, metadata.to_map()).await {
                Ok(committed) => {
                    let version = committed.last().map_or(current, |e| e.sequence as u64);
                    self.wake.notify_one();
                    self.project(req.family_id, version, state).await;
                    return Ok(Outcome {
                        family_id: req.family_id,
                        version,
                        action_id,
                        replayed: false,
                    });
                }
                Err(AggregateError::AggregateConflict) => {
                    // Either another command won the race for this sequence,
                    // or a retry of this very request did (same key).
                    if let Some(found) = self.idempotent_replay(req).await? {
                        return Ok(found);
                    }
                    if req.expected_version.is_some() {
                        let now = self.store.load_aggregate(&id).await?;
                        return Err(ExecError::VersionMismatch {
                            current: now.current_sequence as u64,
                        });
                    }
                    tracing::debug!(attempt, "version conflict, retrying");
                    let jitter = u64::from(req.family_id.as_u128() as u8 % 7) + attempt as u64 * 3;
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ExecError::Conflict)
    }

    fn check_scope(
        &self,
        case: &FamilyCase,
        command: &FamilyCommand,
        scope: &Scope,
    ) -> Result<(), ExecError> {
        match (&case.village_code, command) {
            (None, FamilyCommand::RegisterFamily { village_code, .. }) => {
                if village_code.is_within(scope) {
                    Ok(())
                } else {
                    Err(ExecError::Forbidden(
                        "the village code is outside your scope",
                    ))
                }
            }
            (None, _) => Err(ExecError::NotFound),
            (Some(code), _) if !code.is_within(scope) => Err(ExecError::NotFound),
            (Some(_), FamilyCommand::Transfer { village_code, .. })
                if !village_code.is_within(scope) =>
            {
                Err(ExecError::Forbidden(
                    "the target village code is outside your scope",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Writes the family's read-model rows; a failure here loses nothing
    /// (the event is committed) and is repaired by the projection worker.
    async fn project(&self, family_id: Uuid, version: u64, state: FamilyCase) {
        let policy = self.policy();
        let Some(rows) = FamilyRows::build(family_id, version, state, &policy) else {
            return;
        };
        if let Err(err) = writer::write(&self.db, &LIVE, &[rows], None, Mode::Guarded).await {
            tracing::error!(error = %err, family.id = %family_id, "read model update failed; the worker will catch up");
        }
    }

    /// The first answer to this user's request with this idempotency key.
    async fn idempotent_replay(&self, req: &CommandRequest) -> Result<Option<Outcome>, ExecError> {
        let Some(key) = &req.idempotency_key else {
            return Ok(None);
        };
        let user = req.recorder.id.to_string();
        let row = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query(
                    "SELECT aggregate_id, sequence, json_extract(payload, '$') AS payload, \
                     json_extract(metadata, '$.request_hash') AS request_hash FROM events \
                     WHERE json_extract(metadata, '$.recorded_by_id') = $1 \
                     AND json_extract(metadata, '$.idempotency_key') = $2",
                )
                .bind(&user)
                .bind(key)
                .fetch_optional(pool)
                .await?
                .map(|r| -> Result<_, sqlx::Error> {
                    let payload: String = r.try_get("payload")?;
                    Ok((
                        r.try_get::<String, _>("aggregate_id")?,
                        r.try_get::<i64, _>("sequence")?,
                        serde_json::from_str::<serde_json::Value>(&payload)
                            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                        r.try_get::<Option<String>, _>("request_hash")?,
                    ))
                })
                .transpose()?
            }
            Db::Postgres(pool) => sqlx::query(
                "SELECT aggregate_id, sequence, payload, metadata ->> 'request_hash' AS request_hash \
                 FROM events WHERE metadata ? 'idempotency_key' \
                 AND metadata ->> 'recorded_by_id' = $1 AND metadata ->> 'idempotency_key' = $2",
            )
            .bind(&user)
            .bind(key)
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<_, sqlx::Error> {
                Ok((
                    r.try_get::<String, _>("aggregate_id")?,
                    r.try_get::<i64, _>("sequence")?,
                    r.try_get::<serde_json::Value, _>("payload")?,
                    r.try_get::<Option<String>, _>("request_hash")?,
                ))
            })
            .transpose()?,
        };
        let Some((aggregate_id, sequence, payload, hash)) = row else {
            return Ok(None);
        };
        if hash != req.request_hash {
            return Err(ExecError::IdempotencyMismatch);
        }
        let family_id = aggregate_id
            .parse()
            .map_err(|e| ExecError::Store(Box::new(e)))?;
        let event: nuanxin_domain::FamilyEvent =
            serde_json::from_value(payload).map_err(|e| ExecError::Store(Box::new(e)))?;
        Ok(Some(Outcome {
            family_id,
            version: sequence as u64,
            action_id: event.action_id(),
            replayed: true,
        }))
    }

    /// The case as the read model holds it, or — if the row is missing —
    /// folded from the log and written back.
    pub async fn load(&self, family_id: Uuid) -> Result<Option<StoredCase>, ExecError> {
        if let Some(stored) = case_file::get(&self.db, family_id).await? {
            return Ok(Some(stored));
        }
        let (version, state) = self.fold(family_id).await?;
        if !state.registered {
            return Ok(None);
        }
        self.project(family_id, version, state.clone()).await;
        Ok(Some(StoredCase { version, state }))
    }

    /// The number of the last event in the log (0 when empty).
    pub async fn head_position(&self) -> Result<i64, ExecError> {
        let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
        let head: i64 = on_pool!(&self.db, pool => {
            sqlx::query_scalar(sql).fetch_one(pool).await?
        });
        Ok(head)
    }

    /// Every event of one family, deserialized, with metadata.
    pub async fn events(
        &self,
        family_id: Uuid,
    ) -> Result<Vec<cqrs_es::EventEnvelope<FamilyCase>>, ExecError> {
        Ok(self.store.load_events(&family_id.to_string()).await?)
    }
}

/// Metadata maps of stored events, typed.
pub fn metadata_of(map: &HashMap<String, String>) -> Option<EventMetadata> {
    EventMetadata::from_map(map)
}
