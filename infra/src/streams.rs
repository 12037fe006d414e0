//! Streams of the aggregates that are not families: activities
//! (`Activity`) and inspections (`Inspection`). Their events live in the
//! same log as the families', each stream with its own hash chain (the
//! chain and `audit verify` work per `(aggregate_type, aggregate_id)`).
//!
//! Their commands are rare (a few a day), so they do not ride the group
//! commit: each is written in a transaction of its own
//! ([`commit`]) that appends every event of the command — the activity's
//! and, for an attendance, one per family — and writes the read-model rows
//! of every stream it touched. Either all of it is durable or none: an
//! event whose place in its stream (or whose idempotency key) is taken
//! rolls the whole command back, to be retried from a fresh load
//! (decisions.md, record 22). The projection worker skips these streams;
//! `projections rebuild` refolds them ([`rebuild_tables`]).

use std::collections::HashSet;

use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, DomainEvent};
use nuanxin_domain::activity::Activity;
use nuanxin_domain::inspection::Inspection;
use nuanxin_domain::metadata::EventMetadata;
use nuanxin_projections::activities::ActivityRows;
use nuanxin_projections::inspections::InspectionRow;
use nuanxin_projections::rows::FamilyRows;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::audit;
use crate::core::StoreError;
use crate::read_models::{self, Mode};
use crate::store::events::{NewEvent, StoredEvent};
use crate::store::{self, Db, LIVE};

/// A stream folded from its stored events.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The sequence of its last event (0: no events).
    pub version: u64,
    pub state: A,
    /// The hash of its last event (the head of its chain).
    pub head_hash: Option<String>,
}

/// Folds stored events of one stream.
pub fn fold<A>(events: impl IntoIterator<Item = StoredEvent>) -> Result<Loaded<A>, StoreError>
where
    A: Aggregate,
    A::Event: DeserializeOwned,
{
    let mut loaded = Loaded {
        version: 0,
        state: A::default(),
        head_hash: None,
    };
    for e in events {
        loaded.version = e.sequence;
        loaded.head_hash = e.metadata_str(audit::HASH).map(str::to_owned);
        loaded.state.apply(serde_json::from_value(e.payload)?);
    }
    Ok(loaded)
}

/// The stream `id` of aggregate `A`, folded from the log.
pub async fn load<A>(db: &Db, id: Uuid) -> Result<Loaded<A>, StoreError>
where
    A: Aggregate,
    A::Event: DeserializeOwned,
{
    fold(store::events::of_stream(db, A::TYPE, id).await?)
}

/// `event` serialized as the log stores it, at `sequence` of stream `id`,
/// with `metadata`, sealed onto the stream's chain after `prev_hash`.
pub fn seal<E: DomainEvent>(
    aggregate_type: &'static str,
    id: Uuid,
    sequence: u64,
    prev_hash: String,
    event: &E,
    metadata: &EventMetadata,
) -> Result<NewEvent, Box<dyn std::error::Error + Send + Sync>> {
    let serialized = SerializedEvent::new(
        id.to_string(),
        sequence as usize,
        aggregate_type.to_owned(),
        event.event_type(),
        event.event_version(),
        serde_json::to_value(event)?,
        serde_json::to_value(metadata.to_map())?,
    );
    let sealed = audit::seal(std::slice::from_ref(&serialized), prev_hash)?
        .pop()
        .ok_or("sealing returned no event")?;
    Ok(NewEvent {
        event_id: Uuid::now_v7(),
        aggregate_type,
        aggregate_id: sealed.aggregate_id,
        sequence,
        event_type: sealed.event_type,
        event_version: sealed.event_version,
        payload: sealed.payload,
        metadata: sealed.metadata,
    })
}

/// Everything one command writes.
#[derive(Debug, Default)]
pub struct StreamWrite {
    /// One event per stream.
    pub events: Vec<NewEvent>,
    /// The families' read-model rows at their new versions.
    pub families: Vec<FamilyRows>,
    pub activity: Option<ActivityRows>,
    pub inspection: Option<InspectionRow>,
}

/// Writes `w` in one transaction. `Ok(false)`: an event's place in its
/// stream or its idempotency key was taken, and nothing was written.
pub async fn commit(db: &Db, w: &StreamWrite) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let events: Vec<&NewEvent> = w.events.iter().collect();
    let appended = match store::events::append(&mut tx, &events).await {
        Ok(appended) => appended,
        // A retry racing its original's commit: the key is the original's.
        Err(e) if store::is_unique_violation(&e) => {
            tx.rollback().await?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let streams: HashSet<&str> = w.events.iter().map(|e| e.aggregate_id.as_str()).collect();
    if appended.len() != streams.len() {
        tx.rollback().await?;
        return Ok(false);
    }
    if !w.families.is_empty() {
        let families: Vec<&FamilyRows> = w.families.iter().collect();
        read_models::write_in(&mut tx, &LIVE, &families, Mode::Guarded).await?;
    }
    if let Some(a) = &w.activity {
        store::activities::write(&mut tx, a).await?;
    }
    if let Some(i) = &w.inspection {
        store::inspections::write(&mut tx, i).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Folds every stream of aggregate `A` in the log, stream by stream.
async fn fold_all<A>(db: &Db) -> Result<Vec<(Uuid, Loaded<A>)>, StoreError>
where
    A: Aggregate,
    A::Event: DeserializeOwned,
{
    let mut streams: Vec<(String, Vec<StoredEvent>)> = Vec::new();
    store::events::for_each_of_type(db, A::TYPE, &[], |e| match streams.last_mut() {
        Some((id, events)) if *id == e.aggregate_id => events.push(e),
        _ => streams.push((e.aggregate_id.clone(), vec![e])),
    })
    .await?;
    let mut out = Vec::with_capacity(streams.len());
    for (id, events) in streams {
        let Ok(id) = id.parse::<Uuid>() else { continue };
        out.push((id, fold(events)?));
    }
    Ok(out)
}

/// Refolds every activity and inspection from the log and replaces their
/// tables, in one transaction. Returns (activities, inspections).
pub async fn rebuild_tables(db: &Db) -> Result<(usize, usize), StoreError> {
    let activities: Vec<ActivityRows> = fold_all::<Activity>(db)
        .await?
        .into_iter()
        .filter_map(|(id, l)| ActivityRows::build(id, l.version, &l.state))
        .collect();
    let inspections: Vec<InspectionRow> = fold_all::<Inspection>(db)
        .await?
        .into_iter()
        .filter_map(|(id, l)| InspectionRow::build(id, l.version, &l.state))
        .collect();
    let mut tx = db.begin().await?;
    store::activities::replace_all(&mut tx, &activities).await?;
    store::inspections::replace_all(&mut tx, &inspections).await?;
    tx.commit().await?;
    Ok((activities.len(), inspections.len()))
}
