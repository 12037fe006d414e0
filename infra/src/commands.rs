//! Executing commands on family cases: every care action goes through
//! [`Commands::execute`].
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

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use nuanxin_domain::aggregate::{CaseError, FamilyCase};
use nuanxin_domain::metadata::{EventMetadata, Recorder};
use nuanxin_domain::{FamilyCommand, FamilyEvent, Scope};
use uuid::Uuid;

use crate::core::{Core, StoreError};
use crate::read_models;
use crate::repo::Repo;
use crate::store;

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

impl From<StoreError> for ExecError {
    fn from(err: StoreError) -> Self {
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

pub struct Commands {
    core: Arc<Core>,
    store: PersistedEventStore<Repo, FamilyCase>,
    /// A second handle on the same repository, for reading the events
    /// after a snapshot (the store above owns its own).
    repo: Repo,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl Commands {
    pub fn new(core: Arc<Core>) -> Self {
        let db = core.db();
        Self {
            store: PersistedEventStore::new_event_store(Repo::new(db)),
            repo: Repo::new(db),
            core,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    fn lock_for(&self, family_id: Uuid) -> &tokio::sync::Mutex<()> {
        let stripe = (family_id.as_u128() % LOCK_STRIPES as u128) as usize;
        &self.locks[stripe]
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
        let snapshot = match store::case_files::get(self.core.db(), family_id).await {
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
            let payload: FamilyEvent =
                serde_json::from_value(event.payload).map_err(StoreError::from)?;
            context.current_sequence = event.sequence;
            context.aggregate.apply(payload);
        }
        Ok(context)
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
                .handle(command.clone(), self.core.services(), &sink)
                .await?;
            let state = aggregate.clone();
            let events = sink.collect().await;
            let action_id = events
                .first()
                .map(|e| e.action_id())
                .ok_or(ExecError::Conflict)?;
            let metadata = EventMetadata {
                recorded_by: req.recorder.clone(),
                recorded_at: self.core.services().clock.now(),
                request_id: req.request_id.clone(),
                idempotency_key: req.idempotency_key.clone(),
                request_hash: req.request_hash.clone(),
            };
            match self.store.commit(events, context, metadata.to_map()).await {
                Ok(committed) => {
                    let version = committed.last().map_or(current, |e| e.sequence as u64);
                    self.core.wake().notify_one();
                    read_models::write_one(&self.core, req.family_id, version, state).await;
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

    /// The first answer to this user's request with this idempotency key.
    async fn idempotent_replay(&self, req: &CommandRequest) -> Result<Option<Outcome>, ExecError> {
        let Some(key) = &req.idempotency_key else {
            return Ok(None);
        };
        let Some(found) =
            store::events::by_idempotency_key(self.core.db(), req.recorder.id, key).await?
        else {
            return Ok(None);
        };
        if found.request_hash != req.request_hash {
            return Err(ExecError::IdempotencyMismatch);
        }
        let family_id = found
            .aggregate_id
            .parse()
            .map_err(|e| ExecError::Store(Box::new(e)))?;
        let event: FamilyEvent = serde_json::from_value(found.payload).map_err(StoreError::from)?;
        Ok(Some(Outcome {
            family_id,
            version: found.sequence as u64,
            action_id: event.action_id(),
            replayed: true,
        }))
    }
}
