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
use nuanxin_domain::activity::Activity;
use nuanxin_domain::aggregate::FamilyCase;
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
    let mut current: Option<(String, bool, Vec<E>)> = None;
    let mut failed: Option<serde_json::Error> = None;
    let mut finish = |id: String, events: Vec<E>| {
        if let Ok(id) = id.parse() {
            each(id, events);
        }
    };
    store::events::for_each_of_type(db, aggregate_type, event_types, |e: StoredEvent| {
        if current.as_ref().is_none_or(|c| c.0 != e.aggregate_id) {
            if let Some((id, _, events)) = current.take() {
                finish(id, events);
            }
            current = Some((e.aggregate_id.clone(), true, Vec::new()));
        }
        let Some((_, past, events)) = current.as_mut() else {
            return;
        };
        let recorded_at = e
            .metadata_str(keys::RECORDED_AT)
            .and_then(|s| s.parse::<DateTime<Utc>>().ok());
        *past = *past && recorded_at.is_none_or(|r| r <= at);
        if *past {
            match serde_json::from_value(e.payload) {
                Ok(event) => events.push(event),
                Err(err) => {
                    failed.get_or_insert(err);
                }
            }
        }
    })
    .await?;
    if let Some((id, _, events)) = current.take() {
        finish(id, events);
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
struct Tallies {
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
    let db = core.db();
    let policy = core.policy();
    let mut tallies: Vec<Tallies> = prefixes
        .iter()
        .map(|p| Tallies {
            prefix: p.clone(),
            ..Default::default()
        })
        .collect();

    fold_known::<FamilyCase>(db, FAMILY_EVENTS, known_at, |id, case| {
        let Some(village) = case.village_code.as_ref().filter(|_| case.registered) else {
            return;
        };
        for t in tallies
            .iter_mut()
            .filter(|t| village.as_str().starts_with(&t.prefix))
        {
            t.association_of(village.as_str());
            t.insurance.add_case(id, case, from, to);
        }
    })
    .await?;

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
