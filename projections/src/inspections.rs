//! Supervision inspections: the view of one inspection, the row it keeps in
//! the `inspections` table, and compliance — inspections held by each city
//! and county association in a year against the policy's minimum and the
//! pace (`nuanxin_domain::inspection::pace`). All pure: the store counts,
//! these functions compare.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use nuanxin_domain::inspection::{pace, AssociationLevel, Inspection};
use nuanxin_domain::policy::InspectionPolicy;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FollowUpView {
    pub id: Uuid,
    pub text: String,
    /// `null` while open.
    pub done_on: Option<NaiveDate>,
    pub note: Option<String>,
}

/// One inspection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InspectionView {
    pub id: Uuid,
    /// The version of the inspection's stream.
    pub version: u64,
    /// The jurisdiction inspected.
    #[schema(example = "450305001")]
    pub jurisdiction: String,
    /// The association that held it (a level above the jurisdiction).
    #[schema(example = "450305")]
    pub inspected_by: String,
    #[schema(example = "visits")]
    pub topic: String,
    pub held_on: NaiveDate,
    pub findings: String,
    pub follow_ups: Vec<FollowUpView>,
    /// Follow-ups not marked done yet.
    pub follow_ups_open: usize,
    /// A voided inspection no longer counts.
    pub voided: bool,
    pub void_reason: Option<String>,
}

impl InspectionView {
    /// `None` if the inspection is not recorded.
    pub fn build(id: Uuid, version: u64, i: &Inspection) -> Option<Self> {
        let (Some(topic), Some(held_on)) = (i.topic, i.held_on) else {
            return None;
        };
        Some(Self {
            id,
            version,
            jurisdiction: i.jurisdiction.clone(),
            inspected_by: i.inspected_by.clone(),
            topic: topic.as_str().into(),
            held_on,
            findings: i.findings.clone(),
            follow_ups: i
                .follow_ups
                .iter()
                .map(|f| FollowUpView {
                    id: f.id,
                    text: f.text.clone(),
                    done_on: f.done_on,
                    note: f.note.clone(),
                })
                .collect(),
            follow_ups_open: i.follow_ups.iter().filter(|f| f.done_on.is_none()).count(),
            voided: i.voided.is_some(),
            void_reason: i.voided.clone(),
        })
    }
}

/// The row one inspection keeps in the `inspections` table.
#[derive(Debug, Clone)]
pub struct InspectionRow {
    pub id: Uuid,
    pub version: u64,
    pub jurisdiction: String,
    pub inspected_by: String,
    pub held_on: NaiveDate,
    /// Not voided: it counts towards its association's minimum.
    pub counts: bool,
    pub state: Inspection,
}

impl InspectionRow {
    pub fn build(id: Uuid, version: u64, i: &Inspection) -> Option<Self> {
        Some(Self {
            id,
            version,
            jurisdiction: i.jurisdiction.clone(),
            inspected_by: i.inspected_by.clone(),
            held_on: i.held_on?,
            counts: i.counts(),
            state: i.clone(),
        })
    }
}

/// One association's compliance in a year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComplianceItem {
    /// The association's jurisdiction (4 digits: a city, 6: a county).
    #[schema(example = "450305")]
    pub jurisdiction: String,
    #[schema(example = "county")]
    pub level: String,
    /// The minimum for the year.
    pub required: u32,
    /// Inspections it held in the year (voided ones do not count).
    pub held: u32,
    /// How many it still lacks to reach the minimum (0 when reached).
    pub short_by: u32,
    /// How many the required pace asks for by today (the whole minimum for
    /// a year that has ended).
    pub expected_by_now: u32,
    /// Fewer held than the pace asks for.
    pub behind_pace: bool,
}

/// Compliance in `year`, on day `today`, of each association in `held`
/// (its jurisdiction → inspections it held in the year; associations
/// without a minimum are left out), in jurisdiction order.
pub fn compliance(
    year: i32,
    today: NaiveDate,
    held: &BTreeMap<String, u32>,
    policy: &InspectionPolicy,
) -> Vec<ComplianceItem> {
    held.iter()
        .filter_map(|(jurisdiction, held)| {
            let level = AssociationLevel::of(jurisdiction)?;
            let required = policy.required(level);
            let expected = pace(required, year, today);
            Some(ComplianceItem {
                jurisdiction: jurisdiction.clone(),
                level: level.as_str().into(),
                required,
                held: *held,
                short_by: required.saturating_sub(*held),
                expected_by_now: expected,
                behind_pace: *held < expected,
            })
        })
        .collect()
}

/// The inspection figures of a period for a jurisdiction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InspectionFigures {
    /// Inspections held in the period by associations within the
    /// jurisdiction (voided ones do not count).
    pub inspections_held: u64,
    /// The minimum of the city and county associations within the
    /// jurisdiction for the period: each year's minimum prorated by the
    /// days of that year in the period, rounded down.
    pub inspections_required: u64,
}

/// The minimum for `from..=to` of an association needing `per_year` a year:
/// each year's share is `per_year × days of it in the period / its days`;
/// the shares are added exactly (over the common denominator 365 × 366)
/// and rounded down once.
pub fn required_in(per_year: u32, from: NaiveDate, to: NaiveDate) -> u64 {
    const DEN: u64 = 365 * 366;
    let mut num = 0u64;
    for year in from.year()..=to.year() {
        let (Some(first), Some(last)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        ) else {
            continue;
        };
        let (a, b) = (first.max(from), last.min(to));
        if a > b {
            continue;
        }
        let days = (b - a).num_days() as u64 + 1;
        let len = (last - first).num_days() as u64 + 1;
        num += u64::from(per_year) * days * (DEN / len);
    }
    num / DEN
}

/// Accumulates [`InspectionFigures`].
#[derive(Debug, Clone, Default)]
pub struct InspectionTally {
    figures: InspectionFigures,
}

impl InspectionTally {
    /// Adds an inspection (folded from the events to count) held in
    /// `from..=to` by an association within `prefix`.
    pub fn add(&mut self, i: &Inspection, prefix: &str, from: NaiveDate, to: NaiveDate) {
        let held = i.held_on.is_some_and(|h| (from..=to).contains(&h));
        if i.counts() && held && i.inspected_by.starts_with(prefix) {
            self.figures.inspections_held += 1;
        }
    }

    /// Adds the minimum of the association of `jurisdiction` (if it has
    /// one) for the period.
    pub fn require(
        &mut self,
        jurisdiction: &str,
        policy: &InspectionPolicy,
        from: NaiveDate,
        to: NaiveDate,
    ) {
        if let Some(level) = AssociationLevel::of(jurisdiction) {
            self.figures.inspections_required += required_in(policy.required(level), from, to);
        }
    }

    pub fn finish(self) -> InspectionFigures {
        self.figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn compliance_compares_held_with_the_minimum_and_the_pace() {
        let held: BTreeMap<String, u32> = [
            ("4503".to_owned(), 2),
            ("450305".to_owned(), 3),
            ("450306".to_owned(), 6),
            ("45".to_owned(), 9),
            ("450305001".to_owned(), 1),
        ]
        .into();
        let items = compliance(2026, d(2026, 7, 1), &held, &InspectionPolicy::default());
        let rows: Vec<(&str, &str, u32, u32, u32, u32, bool)> = items
            .iter()
            .map(|i| {
                (
                    i.jurisdiction.as_str(),
                    i.level.as_str(),
                    i.required,
                    i.held,
                    i.short_by,
                    i.expected_by_now,
                    i.behind_pace,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("4503", "city", 4, 2, 2, 2, false),
                ("450305", "county", 12, 3, 9, 6, true),
                ("450306", "county", 12, 6, 6, 6, false),
            ]
        );
        // A past year: the whole minimum was due.
        let past = compliance(2025, d(2026, 7, 1), &held, &InspectionPolicy::default());
        assert_eq!(past[0].expected_by_now, 4);
        assert!(past[0].behind_pace);
    }

    #[test]
    fn the_minimum_of_a_period_is_prorated_by_days() {
        assert_eq!(required_in(12, d(2026, 1, 1), d(2026, 12, 31)), 12);
        assert_eq!(required_in(4, d(2026, 1, 1), d(2026, 12, 31)), 4);
        assert_eq!(
            required_in(12, d(2026, 1, 1), d(2026, 6, 30)),
            5,
            "181/365 of 12"
        );
        assert_eq!(required_in(12, d(2025, 7, 1), d(2026, 6, 30)), 12);
        assert_eq!(required_in(4, d(2025, 1, 1), d(2026, 12, 31)), 8);
        assert_eq!(required_in(4, d(2026, 2, 1), d(2026, 1, 1)), 0);
    }
}
