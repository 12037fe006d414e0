//! Group activities: what the case file shows of a family's attendance, the
//! rows an activity contributes to the read-model tables (`activities`,
//! `activity_attendance`), the list types, and the figures a report counts
//! ([`ActivityTally`], from activities folded up to the instant asked).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use nuanxin_domain::activity::Activity;
use nuanxin_domain::aggregate::FamilyCase;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An activity a family attended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttendedActivityView {
    pub activity_id: Uuid,
    #[schema(example = "member_day")]
    pub kind: String,
    pub title: String,
    pub held_on: NaiveDate,
}

/// The case file's `activities`: the last activity attended (by the day it
/// was held) and how many in all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ActivitiesView {
    pub last_attended: Option<AttendedActivityView>,
    pub attended: usize,
}

impl ActivitiesView {
    pub fn build(case: &FamilyCase) -> Self {
        let last = case
            .activities
            .iter()
            .max_by_key(|a| (a.held_on, a.action_id));
        Self {
            last_attended: last.map(|a| AttendedActivityView {
                activity_id: a.activity_id,
                kind: a.kind.as_str().into(),
                title: a.title.clone(),
                held_on: a.held_on,
            }),
            attended: case.activities.len(),
        }
    }
}

/// One activity as the tables hold it (and the list answers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivitySummary {
    pub id: Uuid,
    /// The version of the activity's stream.
    pub version: u64,
    #[schema(example = "warm_home")]
    pub kind: String,
    pub title: String,
    pub held_on: NaiveDate,
    /// Where it was held: a county, township or village code.
    #[schema(example = "450305001")]
    pub village_code_prefix: String,
    /// The organising body.
    pub organiser: String,
    /// Families recorded as attending (all of them, in any scope).
    pub families_attended: u64,
}

/// A family attending an activity, with its village as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attendee {
    pub family_id: Uuid,
    pub village_code: String,
}

/// One activity with the families attending that the reader may see.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivityDetail {
    #[serde(flatten)]
    pub activity: ActivitySummary,
    /// The attending families within the reader's scope (`families_attended`
    /// counts them all).
    pub attendees: Vec<Attendee>,
}

/// Everything one activity contributes to the read-model tables at one
/// version of its stream.
#[derive(Debug, Clone)]
pub struct ActivityRows {
    pub summary: ActivitySummary,
    /// The families attending, each with the day the activity was held.
    pub attendance: Vec<Uuid>,
}

impl ActivityRows {
    /// `None` if the activity is not recorded.
    pub fn build(id: Uuid, version: u64, a: &Activity) -> Option<Self> {
        let (Some(kind), Some(held_on)) = (a.kind, a.held_on) else {
            return None;
        };
        Some(Self {
            summary: ActivitySummary {
                id,
                version,
                kind: kind.as_str().into(),
                title: a.title.clone(),
                held_on,
                village_code_prefix: a.village_code_prefix.clone(),
                organiser: a.organiser.clone(),
                families_attended: a.attendees.len() as u64,
            },
            attendance: a.attendees.iter().copied().collect(),
        })
    }
}

/// The question of a list of things held on a day (activities,
/// inspections). `village_code_prefix` is already intersected with the
/// reader's scope.
#[derive(Debug, Clone, Default)]
pub struct HeldListFilter {
    pub village_code_prefix: String,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Newest first: items after this (held_on, id) in that order.
    pub before: Option<(NaiveDate, Uuid)>,
    pub limit: u32,
}

/// A family that attended no activity for a while (or never): isolation is
/// what psychological comfort (精神慰藉) work looks for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IsolatedFamily {
    pub family_id: Uuid,
    pub village_code: String,
    /// The day of the last activity attended; `null`: none ever.
    pub last_attended_on: Option<NaiveDate>,
}

/// The activity figures of a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivityFigures {
    /// Activities held in the period in the jurisdiction.
    pub activities_held: u64,
    /// Distinct families that attended at least one of them.
    pub families_reached: u64,
}

/// Accumulates [`ActivityFigures`] activity by activity.
#[derive(Debug, Clone, Default)]
pub struct ActivityTally {
    held: u64,
    families: BTreeSet<Uuid>,
}

impl ActivityTally {
    /// Adds an activity (folded from the events to count) if it was held in
    /// `from..=to` at a place within `prefix`.
    pub fn add(&mut self, a: &Activity, prefix: &str, from: NaiveDate, to: NaiveDate) {
        let held = a.held_on.is_some_and(|h| (from..=to).contains(&h));
        if a.recorded && held && a.village_code_prefix.starts_with(prefix) {
            self.held += 1;
            self.families.extend(a.attendees.iter().copied());
        }
    }

    pub fn finish(self) -> ActivityFigures {
        ActivityFigures {
            activities_held: self.held,
            families_reached: self.families.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuanxin_domain::activity::{ActivityEvent, ActivityKind};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn activity(place: &str, on: NaiveDate, families: &[u128]) -> Activity {
        let mut a = Activity::default();
        a.evolve(ActivityEvent::ActivityRecorded {
            kind: ActivityKind::MemberDay,
            title: "t".into(),
            held_on: on,
            village_code_prefix: place.into(),
            organiser: "o".into(),
        });
        a.evolve(ActivityEvent::AttendanceRecorded {
            family_ids: families.iter().map(|n| Uuid::from_u128(*n)).collect(),
        });
        a
    }

    #[test]
    fn families_reached_are_counted_once_within_the_place_and_period() {
        let mut t = ActivityTally::default();
        for a in [
            activity("450305001", d(2026, 5, 29), &[1, 2]),
            activity("450305002", d(2026, 9, 25), &[2, 3]),
            activity("450306001", d(2026, 5, 29), &[4]),
            activity("450305001", d(2025, 9, 25), &[5]),
        ] {
            t.add(&a, "450305", d(2026, 1, 1), d(2026, 12, 31));
        }
        assert_eq!(
            t.finish(),
            ActivityFigures {
                activities_held: 2,
                families_reached: 3
            }
        );
    }

    #[test]
    fn rows_carry_the_attendance() {
        let a = activity("450305001", d(2026, 5, 29), &[2, 1]);
        let rows = ActivityRows::build(Uuid::from_u128(9), 2, &a).unwrap();
        assert_eq!(rows.summary.families_attended, 2);
        assert_eq!(rows.attendance, [Uuid::from_u128(1), Uuid::from_u128(2)]);
        assert!(ActivityRows::build(Uuid::from_u128(9), 0, &Activity::default()).is_none());
    }
}
