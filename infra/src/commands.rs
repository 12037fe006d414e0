//! Executing commands on family cases: every care action goes through
//! [`Commands::execute`].
//!
//! cqrs-es's `CqrsFramework::execute` neither takes an expected version nor
//! returns the new one, and its repositories commit each aggregate's events
//! in a transaction of their own, so the executor drives the aggregate
//! itself: load the case (the case-file row is a snapshot, kept in the same
//! transaction as the log), check scope and `If-Match`, let the aggregate
//! decide, seal the event onto the family's hash chain, and hand it with
//! the family's new read-model rows to the [`Appender`], which commits them
//! together with whatever else has queued (group commit). A 2xx means the
//! event is durable and the case file a caseworker reads next already
//! shows it.
//!
//! Exactly once: an idempotency key is enforced by a unique index on the
//! log, so a retry that races its original cannot append twice; its event is
//! skipped at the append and the first answer is replayed. A concurrent
//! command on the same family (another process) is detected the same way
//! (the stream place is taken) and retried from a fresh load; with
//! `If-Match` it is answered as a version conflict.

pub mod streams;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use nuanxin_domain::aggregate::{CaseError, FamilyCase};
use nuanxin_domain::metadata::{EventMetadata, Recorder};
use nuanxin_domain::{FamilyCommand, FamilyEvent, Scope};
use nuanxin_projections::rows::FamilyRows;
use serde_json::Value;
use uuid::Uuid;

use crate::append::{AppendError, Appended, Appender};
use crate::audit;
use crate::core::{Core, StoreError};
use crate::privacy::CommandKeys;
use crate::repo::Repo;
use crate::store;
use crate::store::events::NewEvent;

/// The command path rewrites a family's stored snapshot when it is this many
/// versions behind (readers fold the events after it; decisions.md, record
/// 20).
const SNAPSHOT_EVERY: u64 = 8;

/// How the new person keys an event is sealed with are stored.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NewKeys {
    /// With the event, in its group commit (which appends it only if they
    /// go in). With `probe`, persons whose key is not in memory are looked
    /// for in the store first (a retry).
    WithEvent { probe: bool },
    /// On their own, durably, before sealing (writes that do not go
    /// through the group commit).
    Apart,
}

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

impl From<AppendError> for ExecError {
    fn from(err: AppendError) -> Self {
        ExecError::Store(Box::new(err))
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
    /// Reads the events after a snapshot, through the cqrs-es repositories.
    repo: Repo,
    appender: Appender,
    locks: Vec<tokio::sync::Mutex<()>>,
}

/// A case as a command sees it: folded to `version`, whose last event
/// hashes to `head_hash`.
struct Loaded {
    version: u64,
    case: FamilyCase,
    head_hash: Option<String>,
    /// The version of the stored snapshot (`None`: no case-file row).
    snapshot_version: Option<u64>,
}

impl Commands {
    pub fn new(core: Arc<Core>, appender: Appender) -> Self {
        Self {
            repo: Repo::new(core.db()),
            appender,
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

    /// The case a command runs against. The case-file row holds the case
    /// folded up to its version and the hash of that version's event,
    /// written in the same transaction as the event, so it is a snapshot of
    /// the log. `fresh`: also read the events after it (after a conflict:
    /// another writer may have appended without this process's row
    /// reflecting it yet). Without a row, the whole stream is folded.
    async fn load(&self, family_id: Uuid, fresh: bool) -> Result<Loaded, ExecError> {
        use cqrs_es::persist::PersistedEventRepository;
        let snapshot = match store::case_files::get(self.core.db(), family_id).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, family.id = %family_id, "case file unreadable; folding the stream");
                None
            }
        };
        let Some(snapshot) = snapshot else {
            let f = self.core.fold(family_id).await?;
            return Ok(Loaded {
                version: f.version,
                case: f.case,
                head_hash: f.head_hash,
                snapshot_version: None,
            });
        };
        let mut loaded = Loaded {
            version: snapshot.version,
            case: snapshot.state,
            head_hash: snapshot.head_hash,
            snapshot_version: Some(snapshot.snapshot_version),
        };
        if fresh {
            let newer = self
                .repo
                .get_last_events::<FamilyCase>(&family_id.to_string(), snapshot.version as usize)
                .await
                .map_err(|e| ExecError::Store(Box::new(e)))?;
            for event in newer {
                loaded.head_hash = event
                    .metadata
                    .get(audit::HASH)
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                loaded.version = event.sequence as u64;
                let payload: FamilyEvent =
                    serde_json::from_value(event.payload).map_err(StoreError::from)?;
                loaded.case.apply(payload);
            }
        }
        if loaded.head_hash.is_none() && loaded.version > 0 {
            // A row written before rows kept their chain's head.
            let stored = store::events::stored_hash(
                self.core.db(),
                FamilyCase::TYPE,
                &family_id.to_string(),
                loaded.version as i64,
            )
            .await?;
            loaded.head_hash = stored.flatten();
        }
        Ok(loaded)
    }

    /// Erases the family's personal data (docs/privacy.md): records the
    /// attributed `FamilyErased` (the case must be closed), and once it is
    /// durable deletes the keys of the family's persons, so every sealed
    /// field of theirs reads as erased from then on. Returns the outcome and
    /// how many keys were erased. A family erased before (the event is
    /// there) is answered `CaseError::Erased`, after deleting any key an
    /// interrupted erasure left.
    pub async fn erase(
        &self,
        req: &CommandRequest,
        on: Option<NaiveDate>,
        reason: nuanxin_domain::events::ErasureReason,
    ) -> Result<(Outcome, u64), ExecError> {
        let command = FamilyCommand::EraseFamily {
            action_id: Uuid::now_v7(),
            on: on.unwrap_or_else(|| self.core.today()),
            reason,
        };
        self.erase_with(command, req).await
    }

    /// Runs an `EraseFamily` command, then deletes the keys (see
    /// [`Commands::erase`]); any other command is refused.
    pub async fn erase_command(
        &self,
        command: FamilyCommand,
        req: &CommandRequest,
    ) -> Result<(Outcome, u64), ExecError> {
        if !matches!(command, FamilyCommand::EraseFamily { .. }) {
            return Err(ExecError::Forbidden("not an erasure"));
        }
        self.erase_with(command, req).await
    }

    async fn erase_with(
        &self,
        command: FamilyCommand,
        req: &CommandRequest,
    ) -> Result<(Outcome, u64), ExecError> {
        let keyring = self.core.keyring();
        let erase_keys = || async {
            keyring
                .erase_family(self.core.db(), req.family_id)
                .await
                .map_err(|e| ExecError::Store(Box::new(e)))
        };
        match self.execute_once(command, req).await {
            Ok(outcome) => {
                let keys = erase_keys().await?;
                tracing::info!(family.id = %req.family_id, keys, "erased a family's personal data");
                Ok((outcome, keys))
            }
            Err(ExecError::Case(CaseError::Erased)) => {
                erase_keys().await?;
                Err(ExecError::Case(CaseError::Erased))
            }
            Err(e) => Err(e),
        }
    }

    /// The aggregate a command would run against now, with its version (for
    /// tests and tools).
    pub async fn load_for_command(&self, family_id: Uuid) -> Result<(u64, FamilyCase), ExecError> {
        let loaded = self.load(family_id, true).await?;
        Ok((loaded.version, loaded.case))
    }

    /// Records `command` for the family in `req`, exactly once. An
    /// `EraseFamily` also deletes the persons' keys ([`Commands::erase`]).
    #[tracing::instrument(skip_all, fields(family.id = %req.family_id, user.id = %req.recorder.id))]
    pub async fn execute(
        &self,
        command: FamilyCommand,
        req: &CommandRequest,
    ) -> Result<Outcome, ExecError> {
        if matches!(command, FamilyCommand::EraseFamily { .. }) {
            return self.erase_with(command, req).await.map(|(o, _)| o);
        }
        self.execute_once(command, req).await
    }

    async fn execute_once(
        &self,
        command: FamilyCommand,
        req: &CommandRequest,
    ) -> Result<Outcome, ExecError> {
        match self.attempt(command, req).await {
            // A retry of a request that already succeeded finds the case
            // moved on (a new version, a closed case, …): answer with the
            // first outcome, whatever this attempt ran into.
            Err(err) if req.idempotency_key.is_some() && !matches!(err, ExecError::Store(_)) => {
                match self.idempotent_replay(req).await? {
                    Some(first) => Ok(first),
                    None => Err(err),
                }
            }
            other => other,
        }
    }

    async fn attempt(
        &self,
        command: FamilyCommand,
        req: &CommandRequest,
    ) -> Result<Outcome, ExecError> {
        let _serialized = self.lock_for(req.family_id).lock().await;
        for attempt in 1..=MAX_ATTEMPTS {
            let loaded = self.load(req.family_id, attempt > 1).await?;
            self.check_scope(&loaded.case, &command, &req.scope)?;
            if let Some(expected) = req.expected_version {
                if expected != loaded.version {
                    return Err(ExecError::VersionMismatch {
                        current: loaded.version,
                    });
                }
            }
            let mut case = loaded.case;
            let event = case.decide(
                command.clone(),
                self.core.today(),
                self.core.services().offset,
            )?;
            let action_id = event.action_id();
            let version = loaded.version + 1;
            let recorded_at = self.core.services().clock.now();
            // Personal fields are sealed with their persons' keys before
            // the event is hashed and stored; the case folds the sealed
            // event, so the case-file row holds ciphertext too.
            let (event, payload, keys) = self
                .sealed(
                    req.family_id,
                    event,
                    NewKeys::WithEvent { probe: attempt > 1 },
                )
                .await?;
            let new = self.seal(
                req,
                &event,
                payload,
                version,
                loaded.head_hash.unwrap_or_default(),
                recorded_at,
            )?;
            let head_hash = new
                .metadata
                .get(audit::HASH)
                .and_then(Value::as_str)
                .map(str::to_owned);
            case.apply(event);
            let (policy, policy_version) = self.core.policy_in_force();
            let mut rows = FamilyRows::build(
                req.family_id,
                version,
                case,
                head_hash,
                &policy,
                policy_version,
            );
            if let (Some(rows), Some(snapshot)) = (rows.as_mut(), loaded.snapshot_version) {
                rows.write_snapshot = version.saturating_sub(snapshot) >= SNAPSHOT_EVERY;
            }
            let appended = match self.appender.event(new, rows, keys.fresh.clone()).await {
                Ok(appended) => appended,
                // A retry racing its original's commit: the key went in
                // with the original, whose answer this one gives.
                Err(e)
                    if req.idempotency_key.is_some()
                        && crate::store::is_unique_violation(e.source_error()) =>
                {
                    Appended::Taken
                }
                Err(e) => return Err(e.into()),
            };
            match appended {
                Appended::Done => {
                    self.core.keyring().remember(&keys);
                    self.core.wake().notify_one();
                    return Ok(Outcome {
                        family_id: req.family_id,
                        version,
                        action_id,
                        replayed: false,
                    });
                }
                Appended::KeyTaken => {
                    // A person's first key went in from another writer (no
                    // one took the stream place): the next attempt finds
                    // that key in the store and seals with it.
                    tracing::debug!(attempt, "a person key was stored first by another writer");
                }
                Appended::Taken => {
                    // Either a retry of this very request won (same key), or
                    // another writer took this place in the stream.
                    if let Some(found) = self.idempotent_replay(req).await? {
                        return Ok(found);
                    }
                    if req.expected_version.is_some() {
                        let now = self.load(req.family_id, true).await?;
                        return Err(ExecError::VersionMismatch {
                            current: now.version,
                        });
                    }
                    tracing::debug!(attempt, "version conflict, retrying");
                    let jitter = u64::from(req.family_id.as_u128() as u8 % 7) + attempt as u64 * 3;
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                }
            }
        }
        Err(ExecError::Conflict)
    }

    /// `event` with its personal fields sealed (`crate::privacy`), its
    /// payload as stored, and the keys it is sealed with; `keys` says how
    /// new keys are stored.
    pub(crate) async fn sealed(
        &self,
        family_id: Uuid,
        event: FamilyEvent,
        keys: NewKeys,
    ) -> Result<(FamilyEvent, Value, CommandKeys), ExecError> {
        let mut payload = serde_json::to_value(&event).map_err(StoreError::from)?;
        let subjects = crate::privacy::subjects_of(family_id, &payload);
        if subjects.is_empty() {
            // Nothing personal (an insurance claim, an attendance, an
            // erasure): stored as it is, no round trip through JSON.
            return Ok((event, payload, CommandKeys::default()));
        }
        let keyring = self.core.keyring();
        let db = self.core.db();
        let keys = match keys {
            NewKeys::WithEvent { probe } => keyring.command_keys(db, &subjects, probe).await,
            NewKeys::Apart => keyring
                .keys_for(db, &subjects)
                .await
                .map(|keys| CommandKeys {
                    keys,
                    fresh: Vec::new(),
                }),
        }
        .map_err(|e| ExecError::Store(Box::new(e)))?;
        keyring.seal_event(family_id, &mut payload, &keys.keys);
        let event = serde_json::from_value(payload.clone()).map_err(StoreError::from)?;
        Ok((event, payload, keys))
    }

    /// `event` serialized as the log stores it, at `sequence`, with the
    /// request's metadata, sealed onto the family's chain after `prev_hash`.
    fn seal(
        &self,
        req: &CommandRequest,
        event: &FamilyEvent,
        payload: Value,
        sequence: u64,
        prev_hash: String,
        recorded_at: DateTime<Utc>,
    ) -> Result<NewEvent, ExecError> {
        let metadata = EventMetadata {
            recorded_by: req.recorder.clone(),
            recorded_at,
            request_id: req.request_id.clone(),
            idempotency_key: req.idempotency_key.clone(),
            request_hash: req.request_hash.clone(),
        };
        let serialized = cqrs_es::persist::SerializedEvent::new(
            req.family_id.to_string(),
            sequence as usize,
            FamilyCase::TYPE.to_owned(),
            event.event_type(),
            event.event_version(),
            payload,
            serde_json::to_value(metadata.to_map()).map_err(StoreError::from)?,
        );
        let sealed = audit::seal(std::slice::from_ref(&serialized), prev_hash)
            .map_err(|e| ExecError::Store(Box::new(e)))?
            .pop()
            .ok_or(ExecError::Conflict)?;
        Ok(NewEvent {
            event_id: Uuid::now_v7(),
            aggregate_type: FamilyCase::TYPE,
            aggregate_id: sealed.aggregate_id,
            sequence,
            event_type: sealed.event_type,
            event_version: sealed.event_version,
            payload: sealed.payload,
            metadata: sealed.metadata,
        })
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
        use store::events::KeyedAnswer;
        let key = req.idempotency_key.as_deref();
        let answer =
            store::events::keyed_answer(self.core.db(), req.recorder.id, key, &req.request_hash);
        match answer.await? {
            KeyedAnswer::Fresh => Ok(None),
            KeyedAnswer::OtherRequest => Err(ExecError::IdempotencyMismatch),
            KeyedAnswer::Same {
                aggregate_id,
                sequence,
                payload,
            } => {
                let event: FamilyEvent =
                    serde_json::from_value(payload).map_err(StoreError::from)?;
                Ok(Some(Outcome {
                    family_id: aggregate_id,
                    version: sequence,
                    action_id: event.action_id(),
                    replayed: true,
                }))
            }
        }
    }
}
