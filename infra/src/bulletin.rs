//! The bulletin's figures (care insurance, group activities, supervision
//! inspections) of a jurisdiction and period **as known at an instant**:
//! every stream is folded from its events recorded at or before `known_at`
//! (the first event recorded after it ends the stream's past, as for
//! `?as_of`), and the pure tallies of `nuanxin_projections` count them.
//! So a report regenerated later shows exactly what was known on the day
//! it was submitted.
//!
//! One pass over the log per aggregate type; for families only the events
//! that matter here are read (registration and transfer for the village,
//! the insurance steps, voids).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use cqrs_es::DomainEvent;
use nuanxin_domain::activity::Activity;
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::events::FamilyEvent;
use nuanxin_domain::inspection::{AssociationLevel, Inspection};
use nuanxin_domain::metadata::keys;
use nuanxin_projections::activities::ActivityTally;
use nuanxin_projections::bulletin::BulletinFigures;
use nuanxin_projections::inspections::InspectionTally;
use nuanxin_projections::insurance::InsuranceTally;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::core::{Core, StoreError};
use crate::store::events::StoredEvent;
use crate::store::{self, Db};

/// The family events the insurance figures need.
const FAMILY_EVENTS: &[&str] = &[
    "FamilyRegistered",
    "FamilyTransferred",
    "ActionVoided",
    "InsuranceEnrolled",
    "InsuranceWithdrawn",
    "InsuranceClaimFiled",
    "InsuranceClaimDecided",
];

/// Which streams [`read_streams`] reads.
pub(crate) enum Streams<'a> {
    /// Every stream of the type, only these event types (unless empty).
    All(&'a [&'a str]),
    /// These streams, every event.
    Only(&'a [String]),
}

/// What [`read_streams`] tells of a stream besides its known events.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StreamInfo {
    /// The sequence of the last event read (known or not).
    pub last_sequence: u64,
    /// The latest `recorded_at` of the events read: every one of them is
    /// known at any instant from then on.
    pub settled_at: Option<DateTime<Utc>>,
}

/// Hands every stream of `aggregate_type` (only `event_types`, unless
/// empty) to `each` as its events recorded at or before `at`, in stream
/// order: the first event recorded after `at` ends the stream's past (as
/// for `?as_of`), so later events never count even if their clock ran
/// behind.
pub(crate) async fn known_streams<E: DeserializeOwned>(
    db: &Db,
    aggregate_type: &str,
    event_types: &[&str],
    at: DateTime<Utc>,
    mut each: impl FnMut(Uuid, Vec<E>),
) -> Result<(), StoreError> {
    read_streams(
        db,
        aggregate_type,
        Streams::All(event_types),
        at,
        |id, events, _| each(id, events),
    )
    .await
}

/// [`known_streams`] for any [`Streams`], telling each stream's
/// [`StreamInfo`] too.
pub(crate) async fn read_streams<E: DeserializeOwned>(
    db: &Db,
    aggregate_type: &str,
    streams: Streams<'_>,
    at: DateTime<Utc>,
    mut each: impl FnMut(Uuid, Vec<E>, StreamInfo),
) -> Result<(), StoreError> {
    let mut current: Option<(String, bool, Vec<E>, StreamInfo)> = None;
    let mut failed: Option<serde_json::Error> = None;
    let mut finish = |id: String, events: Vec<E>, info: StreamInfo| {
        if let Ok(id) = id.parse() {
            each(id, events, info);
        }
    };
    let take = |e: StoredEvent| {
        if current.as_ref().is_none_or(|c| c.0 != e.aggregate_id) {
            if let Some((id, _, events, info)) = current.take() {
                finish(id, events, info);
            }
            current = Some((
                e.aggregate_id.clone(),
                true,
                Vec::new(),
                StreamInfo::default(),
            ));
        }
        let Some((_, past, events, info)) = current.as_mut() else {
            return;
        };
        let recorded_at = e
            .metadata_str(keys::RECORDED_AT)
            .and_then(|s| s.parse::<DateTime<Utc>>().ok());
        info.last_sequence = e.sequence;
        info.settled_at = info.settled_at.max(recorded_at);
        *past = *past && recorded_at.is_none_or(|r| r <= at);
        if *past {
            match serde_json::from_value(e.payload) {
                Ok(event) => events.push(event),
                Err(err) => {
                    failed.get_or_insert(err);
                }
            }
        }
    };
    match streams {
        Streams::All(types) => {
            store::events::for_each_of_type(db, aggregate_type, types, take).await?;
        }
        Streams::Only(ids) => {
            store::events::for_each_of_streams(db, aggregate_type, ids, take).await?;
        }
    }
    if let Some((id, _, events, info)) = current.take() {
        finish(id, events, info);
    }
    match failed {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

/// Folds every stream of `A` (only `event_types`, unless empty) from its
/// events recorded at or before `at`, handing each to `each`.
async fn fold_known<A>(
    db: &Db,
    event_types: &[&str],
    at: DateTime<Utc>,
    mut each: impl FnMut(Uuid, &A),
) -> Result<(), StoreError>
where
    A: Aggregate,
    A::Event: DeserializeOwned,
{
    known_streams::<A::Event>(db, A::TYPE, event_types, at, |id, events| {
        let mut state = A::default();
        for e in events {
            state.apply(e);
        }
        each(id, &state);
    })
    .await
}

/// The figures of `from..=to` within `prefix` (a village-code prefix, ""
/// for everything), as known at `known_at`.
pub async fn figures(
    core: &Core,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
    known_at: DateTime<Utc>,
) -> Result<BulletinFigures, StoreError> {
    let mut all = figures_of(core, &[prefix.to_owned()], from, to, known_at).await?;
    Ok(all.pop().expect("one set of figures per prefix"))
}

/// One jurisdiction's tallies while the log is read.
#[derive(Default)]
pub(crate) struct Tallies {
    prefix: String,
    associations: BTreeSet<String>,
    insurance: InsuranceTally,
    activities: ActivityTally,
    inspections: InspectionTally,
}

impl Tallies {
    /// Notes the city and county associations of `code` within the prefix.
    fn association_of(&mut self, code: &str) {
        for n in [4, 6] {
            if code.len() >= n && code[..n].starts_with(&self.prefix) {
                self.associations.insert(code[..n].to_owned());
            }
        }
    }
}

/// The figures of several jurisdictions at once (the rows of a report),
/// in the order of `prefixes`, reading the log once.
pub async fn figures_of(
    core: &Core,
    prefixes: &[String],
    from: NaiveDate,
    to: NaiveDate,
    known_at: DateTime<Utc>,
) -> Result<Vec<BulletinFigures>, StoreError> {
    let mut tallies = tallies_of(prefixes);
    fold_known::<FamilyCase>(core.db(), FAMILY_EVENTS, known_at, |id, case| {
        if let Some(village) = case.village_code.as_ref().filter(|_| case.registered) {
            add_insured(&mut tallies, id, village.as_str(), Some(case), from, to);
        }
    })
    .await?;
    finish_figures(core, tallies, from, to, known_at).await
}

/// Empty tallies of each of `prefixes`.
pub(crate) fn tallies_of(prefixes: &[String]) -> Vec<Tallies> {
    prefixes
        .iter()
        .map(|p| Tallies {
            prefix: p.clone(),
            ..Default::default()
        })
        .collect()
}

/// A family's case as the insurance figures see it: folded from its
/// events of [`FAMILY_EVENTS`] only.
pub(crate) fn insurance_view(events: &[FamilyEvent]) -> FamilyCase {
    let mut case = FamilyCase::default();
    for e in events {
        if FAMILY_EVENTS.contains(&e.event_type().as_str()) {
            case.evolve(e.clone());
        }
    }
    case
}

/// Adds a registered family (`village` where it stands, `case` its
/// [`insurance_view`]; `None` when it has no insurance at all).
pub(crate) fn add_insured(
    tallies: &mut [Tallies],
    id: Uuid,
    village: &str,
    case: Option<&FamilyCase>,
    from: NaiveDate,
    to: NaiveDate,
) {
    for t in tallies
        .iter_mut()
        .filter(|t| village.starts_with(&t.prefix))
    {
        t.association_of(village);
        if let Some(case) = case {
            t.insurance.add_case(id, case, from, to);
        }
    }
}

/// Adds the activities and inspections known at `known_at` to `tallies`
/// (families already added) and finishes the figures.
pub(crate) async fn finish_figures(
    core: &Core,
    mut tallies: Vec<Tallies>,
    from: NaiveDate,
    to: NaiveDate,
    known_at: DateTime<Utc>,
) -> Result<Vec<BulletinFigures>, StoreError> {
    let db = core.db();
    let policy = core.policy();
    fold_known::<Activity>(db, &[], known_at, |_, a| {
        for t in tallies.iter_mut() {
            t.activities.add(a, &t.prefix, from, to);
        }
    })
    .await?;

    fold_known::<Inspection>(db, &[], known_at, |_, i| {
        let association = i.counts() && AssociationLevel::of(&i.inspected_by).is_some();
        for t in tallies.iter_mut() {
            if association {
                t.association_of(&i.inspected_by);
            }
            t.inspections.add(i, &t.prefix, from, to);
        }
    })
    .await?;

    Ok(tallies
        .into_iter()
        .map(|mut t| {
            for a in &t.associations {
                t.inspections.require(a, &policy.inspections, from, to);
            }
            BulletinFigures {
                from,
                to,
                village_code_prefix: t.prefix,
                known_at,
                insurance: t.insurance.finish(),
                activities: t.activities.finish(),
                inspections: t.inspections.finish(),
            }
        })
        .collect())
}
