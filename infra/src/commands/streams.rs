//! Commands on activities and inspections (streams of their own,
//! `crate::streams`), and an activity's attendance, which also appends an
//! event to each attending family's stream — in the same transaction, so
//! the activity's list and the families' timelines never disagree
//! (decisions.md, record 22).
//!
//! The same guarantees as a family's command: the caller's scope is
//! checked first (a stream outside it is "not found"), the aggregate
//! decides, every event is sealed onto its stream's chain, and a 2xx means
//! it is durable. An `Idempotency-Key` rides on the activity's or
//! inspection's own event: a retry replays the first answer. A race with
//! another writer is retried from a fresh load.

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use nuanxin_domain::activity::{Activity, ActivityCommand, ActivityError, ActivityEvent};
use nuanxin_domain::aggregate::CaseError;
use nuanxin_domain::inspection::{Inspection, InspectionCommand, InspectionError};
use nuanxin_domain::metadata::{EventMetadata, Recorder};
use nuanxin_domain::{FamilyCommand, Scope, Text};
use nuanxin_projections::activities::ActivityRows;
use nuanxin_projections::inspections::InspectionRow;
use nuanxin_projections::rows::FamilyRows;
use serde_json::Value;
use uuid::Uuid;

use super::{CommandRequest, Commands, ExecError, NewKeys, LOCK_STRIPES, MAX_ATTEMPTS};
use crate::audit;
use crate::core::StoreError;
use crate::store;
use crate::streams::{self, StreamWrite};

/// Everything about a command on an activity or inspection besides the
/// command itself.
#[derive(Debug, Clone)]
pub struct StreamRequest {
    pub recorder: Recorder,
    /// The caller's jurisdiction.
    pub scope: Scope,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    /// Hash of method, path and body: tells a retry from a reuse of the key.
    pub request_hash: Option<String>,
}

/// The answer to such a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOutcome {
    /// The activity's or inspection's id.
    pub id: Uuid,
    /// Its stream's version after the command.
    pub version: u64,
    /// True when this answers a retried request from its first execution.
    pub replayed: bool,
    /// Attendance: the families added (or removed) by this command.
    pub families: Vec<Uuid>,
    /// Attendance: the families of the request already attending (nothing
    /// was recorded for them).
    pub unchanged: Vec<Uuid>,
}

impl StreamOutcome {
    fn new(id: Uuid, version: u64) -> Self {
        Self {
            id,
            version,
            replayed: false,
            families: Vec::new(),
            unchanged: Vec::new(),
        }
    }
}

/// Why such a command was refused.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Unknown, or outside the caller's scope (the same answer).
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Activity(#[from] ActivityError),
    #[error(transparent)]
    Inspection(#[from] InspectionError),
    /// The positions in `family_ids` of families that are unknown or
    /// outside the caller's scope.
    #[error("some families are not in your scope")]
    UnknownFamilies(Vec<usize>),
    /// Families whose case refuses the attendance, with the rule each
    /// breaks.
    #[error("{}", describe(.0))]
    Families(Vec<(Uuid, CaseError)>),
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    #[error("the records kept changing under this command; try again")]
    Conflict,
    #[error("store error: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn describe(refused: &[(Uuid, CaseError)]) -> String {
    refused
        .iter()
        .map(|(id, e)| format!("family {id}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<StoreError> for StreamError {
    fn from(err: StoreError) -> Self {
        StreamError::Store(Box::new(err))
    }
}

impl From<sqlx::Error> for StreamError {
    fn from(err: sqlx::Error) -> Self {
        StreamError::Store(Box::new(err))
    }
}

impl From<ExecError> for StreamError {
    fn from(err: ExecError) -> Self {
        match err {
            ExecError::Store(e) => StreamError::Store(e),
            other => StreamError::Store(Box::new(other)),
        }
    }
}

/// Whether `place` lies within `scope`.
fn within(place: &str, scope: &Scope) -> bool {
    place.starts_with(scope.as_str())
}

impl StreamRequest {
    fn metadata(&self, core: &crate::Core, keyed: bool) -> EventMetadata {
        EventMetadata {
            recorded_by: self.recorder.clone(),
            recorded_at: core.services().clock.now(),
            request_id: self.request_id.clone(),
            idempotency_key: self.idempotency_key.clone().filter(|_| keyed),
            request_hash: self.request_hash.clone().filter(|_| keyed),
        }
    }

    /// The request as each family's command sees it (no idempotency key:
    /// it rides on the activity's event).
    fn for_family(&self, family_id: Uuid) -> CommandRequest {
        CommandRequest {
            family_id,
            recorder: self.recorder.clone(),
            scope: self.scope.clone(),
            request_id: self.request_id.clone(),
            expected_version: None,
            idempotency_key: None,
            request_hash: None,
        }
    }
}

/// Rows of a single-stream command.
type RowsOf<A> = fn(Uuid, u64, &A) -> StreamWrite;

fn activity_rows(id: Uuid, version: u64, a: &Activity) -> StreamWrite {
    StreamWrite {
        activity: ActivityRows::build(id, version, a),
        ..StreamWrite::default()
    }
}

fn inspection_rows(id: Uuid, version: u64, i: &Inspection) -> StreamWrite {
    StreamWrite {
        inspection: InspectionRow::build(id, version, i),
        ..StreamWrite::default()
    }
}

impl Commands {
    /// Takes the striped locks of every stream in `ids`, in stripe order
    /// (so two such commands cannot wait on each other; a family command
    /// holds one stripe only).
    async fn lock_all(
        &self,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let stripes: BTreeSet<usize> = ids
            .into_iter()
            .map(|id| (id.as_u128() % LOCK_STRIPES as u128) as usize)
            .collect();
        let mut guards = Vec::with_capacity(stripes.len());
        for s in stripes {
            guards.push(self.locks[s].lock().await);
        }
        guards
    }

    /// The first answer to this user's request with this idempotency key.
    async fn stream_replay(
        &self,
        req: &StreamRequest,
    ) -> Result<Option<StreamOutcome>, StreamError> {
        use store::events::KeyedAnswer;
        let key = req.idempotency_key.as_deref();
        let answer =
            store::events::keyed_answer(self.core.db(), req.recorder.id, key, &req.request_hash);
        let (id, version, payload) = match answer.await? {
            KeyedAnswer::Fresh => return Ok(None),
            KeyedAnswer::OtherRequest => return Err(StreamError::IdempotencyMismatch),
            KeyedAnswer::Same {
                aggregate_id,
                sequence,
                payload,
            } => (aggregate_id, sequence, payload),
        };
        let mut outcome = StreamOutcome::new(id, version);
        outcome.replayed = true;
        if let Ok(
            ActivityEvent::AttendanceRecorded { family_ids }
            | ActivityEvent::AttendanceRemoved { family_ids, .. },
        ) = serde_json::from_value::<ActivityEvent>(payload)
        {
            outcome.families = family_ids;
        }
        Ok(Some(outcome))
    }

    /// After a refusal: a retry of a request that already succeeded gets
    /// its first answer instead.
    async fn or_replay(
        &self,
        req: &StreamRequest,
        result: Result<StreamOutcome, StreamError>,
    ) -> Result<StreamOutcome, StreamError> {
        match result {
            Err(err) if req.idempotency_key.is_some() && !matches!(err, StreamError::Store(_)) => {
                match self.stream_replay(req).await? {
                    Some(first) => Ok(first),
                    None => Err(err),
                }
            }
            other => other,
        }
    }

    /// Runs a command on one stream of `A`: `decide` (given the folded
    /// stream) returns its events, `rows` the read-model rows of the new
    /// state.
    async fn one_stream<A>(
        &self,
        id: Uuid,
        req: &StreamRequest,
        decide: impl Fn(&A) -> Result<Vec<A::Event>, StreamError>,
        rows: RowsOf<A>,
    ) -> Result<StreamOutcome, StreamError>
    where
        A: Aggregate,
        A::Event: serde::de::DeserializeOwned + Clone,
    {
        let _locked = self.lock_all([id]).await;
        for attempt in 1..=MAX_ATTEMPTS {
            let loaded = streams::load::<A>(self.core.db(), id).await?;
            let events = decide(&loaded.state)?;
            if events.is_empty() {
                return Ok(StreamOutcome::new(id, loaded.version));
            }
            let metadata = req.metadata(&self.core, true);
            let mut state = loaded.state;
            let mut prev = loaded.head_hash.unwrap_or_default();
            let mut write = StreamWrite::default();
            let mut version = loaded.version;
            for event in events {
                version += 1;
                let sealed = streams::seal(A::TYPE, id, version, prev, &event, &metadata)
                    .map_err(StreamError::Store)?;
                prev = hash_of(&sealed.metadata);
                write.events.push(sealed);
                state.apply(event);
            }
            let StreamWrite {
                activity,
                inspection,
                ..
            } = rows(id, version, &state);
            write.activity = activity;
            write.inspection = inspection;
            if streams::commit(self.core.db(), &write).await? {
                return Ok(StreamOutcome::new(id, version));
            }
            if let Some(first) = self.stream_replay(req).await? {
                return Ok(first);
            }
            tracing::debug!(attempt, "stream conflict, retrying");
            tokio::time::sleep(std::time::Duration::from_millis(3 * attempt as u64)).await;
        }
        Err(StreamError::Conflict)
    }

    /// Records a new activity with id `id` (caseworkers and admins; the
    /// place must lie within the caller's scope).
    #[tracing::instrument(skip_all, fields(activity.id = %id, user.id = %req.recorder.id))]
    pub async fn record_activity(
        &self,
        id: Uuid,
        command: ActivityCommand,
        req: &StreamRequest,
    ) -> Result<StreamOutcome, StreamError> {
        if let ActivityCommand::RecordActivity {
            village_code_prefix,
            ..
        } = &command
        {
            if !within(village_code_prefix.as_str(), &req.scope) {
                return Err(StreamError::Forbidden("the place is outside your scope"));
            }
        }
        let today = self.core.today();
        let result = self
            .one_stream::<Activity>(
                id,
                req,
                |a| Ok(a.decide(command.clone(), today)?),
                activity_rows,
            )
            .await;
        self.or_replay(req, result).await
    }

    /// Records an inspection with id `id`: its jurisdiction and the
    /// association that held it must lie within the caller's scope.
    #[tracing::instrument(skip_all, fields(inspection.id = %id, user.id = %req.recorder.id))]
    pub async fn record_inspection(
        &self,
        id: Uuid,
        command: InspectionCommand,
        req: &StreamRequest,
    ) -> Result<StreamOutcome, StreamError> {
        if let InspectionCommand::RecordInspection {
            jurisdiction,
            inspected_by,
            ..
        } = &command
        {
            if !within(jurisdiction.as_str(), &req.scope) {
                return Err(StreamError::Forbidden(
                    "the jurisdiction is outside your scope",
                ));
            }
            if !within(inspected_by.as_str(), &req.scope) {
                return Err(StreamError::Forbidden(
                    "the inspecting association is outside your scope",
                ));
            }
        }
        let today = self.core.today();
        let result = self
            .one_stream::<Inspection>(
                id,
                req,
                |i| Ok(vec![i.decide(command.clone(), today)?]),
                inspection_rows,
            )
            .await;
        self.or_replay(req, result).await
    }

    /// A later step on an inspection (a follow-up done, a void). Unknown or
    /// not overlapping the caller's scope: not found; seen but not within
    /// it (an inspection of an enclosing jurisdiction): forbidden.
    #[tracing::instrument(skip_all, fields(inspection.id = %id, user.id = %req.recorder.id))]
    pub async fn update_inspection(
        &self,
        id: Uuid,
        command: InspectionCommand,
        req: &StreamRequest,
    ) -> Result<StreamOutcome, StreamError> {
        let today = self.core.today();
        let scope = req.scope.clone();
        let result = self
            .one_stream::<Inspection>(
                id,
                req,
                |i| {
                    if !i.recorded || !i.overlaps(&scope) {
                        return Err(StreamError::NotFound);
                    }
                    if !within(&i.jurisdiction, &scope) {
                        return Err(StreamError::Forbidden(
                            "the inspection is of a jurisdiction above your scope",
                        ));
                    }
                    Ok(vec![i.decide(command.clone(), today)?])
                },
                inspection_rows,
            )
            .await;
        self.or_replay(req, result).await
    }

    /// Records that `family_ids` attended activity `activity_id` (or, with
    /// `removal`, takes them off with that reason): the activity's event
    /// and one event per family, in one transaction. Every family must be
    /// registered and within the caller's scope; the activity must be seen
    /// from it.
    #[tracing::instrument(skip_all, fields(activity.id = %activity_id, user.id = %req.recorder.id, families = family_ids.len()))]
    pub async fn attendance(
        &self,
        activity_id: Uuid,
        family_ids: Vec<Uuid>,
        removal: Option<Text>,
        req: &StreamRequest,
    ) -> Result<StreamOutcome, StreamError> {
        let result = self
            .attendance_once(activity_id, family_ids, removal, req)
            .await;
        self.or_replay(req, result).await
    }

    async fn attendance_once(
        &self,
        activity_id: Uuid,
        family_ids: Vec<Uuid>,
        removal: Option<Text>,
        req: &StreamRequest,
    ) -> Result<StreamOutcome, StreamError> {
        let _locked = self
            .lock_all(std::iter::once(activity_id).chain(family_ids.iter().copied()))
            .await;
        let today = self.core.today();
        for attempt in 1..=MAX_ATTEMPTS {
            let activity = streams::load::<Activity>(self.core.db(), activity_id).await?;
            if !activity.state.recorded || !activity.state.overlaps(&req.scope) {
                return Err(StreamError::NotFound);
            }
            let command = match &removal {
                None => ActivityCommand::RecordAttendance {
                    family_ids: family_ids.clone(),
                },
                Some(reason) => ActivityCommand::RemoveAttendance {
                    family_ids: family_ids.clone(),
                    reason: reason.clone(),
                },
            };
            let events = activity.state.decide(command, today)?;
            // Every family of the request must be one the caller may record
            // for, also those already attending.
            let mut cases = Vec::new();
            let mut unknown = Vec::new();
            let mut seen = BTreeSet::new();
            for (i, family_id) in family_ids.iter().enumerate() {
                if !seen.insert(*family_id) {
                    continue;
                }
                let loaded = self.load(*family_id, attempt > 1).await?;
                let visible = loaded.case.registered
                    && loaded
                        .case
                        .village_code
                        .as_ref()
                        .is_some_and(|v| v.is_within(&req.scope));
                if visible {
                    cases.push((*family_id, loaded));
                } else {
                    unknown.push(i);
                }
            }
            if !unknown.is_empty() {
                return Err(StreamError::UnknownFamilies(unknown));
            }
            let Some(event) = events.into_iter().next() else {
                if let Some(first) = self.stream_replay(req).await? {
                    return Ok(first);
                }
                let mut outcome = StreamOutcome::new(activity_id, activity.version);
                outcome.unchanged = cases.iter().map(|(id, _)| *id).collect();
                return Ok(outcome);
            };
            let changed: BTreeSet<Uuid> = match &event {
                ActivityEvent::AttendanceRecorded { family_ids }
                | ActivityEvent::AttendanceRemoved { family_ids, .. } => {
                    family_ids.iter().copied().collect()
                }
                ActivityEvent::ActivityRecorded { .. } => BTreeSet::new(),
            };
            let state = &activity.state;
            let (Some(kind), Some(held_on)) = (state.kind, state.held_on) else {
                return Err(StreamError::NotFound);
            };
            let mut write = StreamWrite::default();
            let mut refused = Vec::new();
            let mut outcome = StreamOutcome::new(activity_id, activity.version + 1);
            for (family_id, loaded) in cases {
                if !changed.contains(&family_id) {
                    outcome.unchanged.push(family_id);
                    continue;
                }
                let action_id = Uuid::now_v7();
                let command = match &removal {
                    None => FamilyCommand::RecordActivityAttendance {
                        action_id,
                        activity_id,
                        kind,
                        title: title_text(&state.title),
                        held_on,
                    },
                    Some(reason) => FamilyCommand::RemoveActivityAttendance {
                        action_id,
                        activity_id,
                        reason: reason.clone(),
                    },
                };
                let mut case = loaded.case;
                match case.decide(command, today, self.core.services().offset) {
                    Err(e) => refused.push((family_id, e)),
                    Ok(family_event) => {
                        let version = loaded.version + 1;
                        let (family_event, payload, _) =
                            self.sealed(family_id, family_event, NewKeys::Apart).await?;
                        let sealed = self.seal(
                            &req.for_family(family_id),
                            &family_event,
                            payload,
                            version,
                            loaded.head_hash.unwrap_or_default(),
                            self.core.services().clock.now(),
                        )?;
                        let head = Some(hash_of(&sealed.metadata));
                        write.events.push(sealed);
                        case.apply(family_event);
                        let (policy, policy_version) = self.core.policy_in_force();
                        write.families.extend(FamilyRows::build(
                            family_id,
                            version,
                            case,
                            head,
                            &policy,
                            policy_version,
                        ));
                        outcome.families.push(family_id);
                    }
                }
            }
            if !refused.is_empty() {
                return Err(StreamError::Families(refused));
            }
            let metadata = req.metadata(&self.core, true);
            let sealed = streams::seal(
                Activity::TYPE,
                activity_id,
                activity.version + 1,
                activity.head_hash.clone().unwrap_or_default(),
                &event,
                &metadata,
            )
            .map_err(StreamError::Store)?;
            write.events.push(sealed);
            let mut after = activity.state.clone();
            after.apply(event);
            write.activity = ActivityRows::build(activity_id, activity.version + 1, &after);
            if streams::commit(self.core.db(), &write).await? {
                self.core.wake().notify_one();
                return Ok(outcome);
            }
            if let Some(first) = self.stream_replay(req).await? {
                return Ok(first);
            }
            tracing::debug!(attempt, "attendance conflict, retrying");
            tokio::time::sleep(std::time::Duration::from_millis(3 * attempt as u64)).await;
        }
        Err(StreamError::Conflict)
    }
}

/// The hash a sealed event's metadata carries.
fn hash_of(metadata: &Value) -> String {
    metadata
        .get(audit::HASH)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// An activity's stored title as the family's command carries it.
fn title_text(title: &str) -> Text {
    Text::parse(title).unwrap_or_else(|_| Text::parse("-").expect("a valid text"))
}
