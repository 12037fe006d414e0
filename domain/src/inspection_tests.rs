//! Given/when/then tests of the `Inspection` aggregate and the pace rule.
//! Today is 2026-06-30.

use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::aggregate::FixedClock;

fn services() -> CaseServices {
    let now = "2026-06-30T04:00:00Z".parse().expect("valid instant");
    CaseServices::new(
        Arc::new(FixedClock(now)),
        FixedOffset::east_opt(8 * 3600).expect("valid offset"),
    )
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn text(s: &str) -> Text {
    Text::parse(s).expect("valid text")
}

fn scope(s: &str) -> Scope {
    Scope::parse(s).expect("valid scope")
}

fn record(jurisdiction: &str, by: &str, held_on: NaiveDate) -> InspectionCommand {
    InspectionCommand::RecordInspection {
        jurisdiction: scope(jurisdiction),
        inspected_by: scope(by),
        topic: InspectionTopic::Visits,
        held_on,
        findings: text("走访记录不全"),
        follow_ups: vec![(id(1), text("补齐台账")), (id(2), text("培训联系人"))],
    }
}

fn recorded() -> InspectionEvent {
    InspectionEvent::InspectionRecorded {
        jurisdiction: "450305001".into(),
        inspected_by: "450305".into(),
        topic: InspectionTopic::Visits,
        held_on: d(2026, 6, 10),
        findings: "走访记录不全".into(),
        follow_ups: vec![
            FollowUpItem {
                id: id(1),
                text: "补齐台账".into(),
            },
            FollowUpItem {
                id: id(2),
                text: "培训联系人".into(),
            },
        ],
    }
}

fn framework() -> TestFramework<Inspection> {
    TestFramework::with(services())
}

#[test]
fn an_inspection_is_recorded_by_a_level_above() {
    framework()
        .given_no_previous_events()
        .when(record("450305001", "450305", d(2026, 6, 10)))
        .then_expect_events(vec![recorded()]);
    for (j, by) in [
        ("450305001", "450305001"),
        ("450305001", "450306"),
        ("450305", "450305001"),
        ("450305", ""),
    ] {
        framework()
            .given_no_previous_events()
            .when(record(j, by, d(2026, 6, 10)))
            .then_expect_error(InspectionError::Invalid {
                field: "inspected_by",
                message: "must be a level above the jurisdiction inspected",
            });
    }
    framework()
        .given_no_previous_events()
        .when(record("", "", d(2026, 6, 10)))
        .then_expect_error(InspectionError::Invalid {
            field: "jurisdiction",
            message: "must be a jurisdiction, not the whole country",
        });
}

#[test]
fn an_inspection_is_dated_and_bounded() {
    framework()
        .given_no_previous_events()
        .when(record("450305001", "450305", d(2026, 7, 1)))
        .then_expect_error(InspectionError::InFuture { field: "held_on" });
    let mut many = record("450305001", "450305", d(2026, 6, 10));
    if let InspectionCommand::RecordInspection { follow_ups, .. } = &mut many {
        *follow_ups = (0..51).map(|n| (id(n), text("x"))).collect();
    }
    framework()
        .given_no_previous_events()
        .when(many)
        .then_expect_error(InspectionError::Invalid {
            field: "follow_ups",
            message: "lists more than 50 follow-ups",
        });
    framework()
        .given(vec![recorded()])
        .when(record("450305001", "450305", d(2026, 6, 10)))
        .then_expect_error(InspectionError::AlreadyRecorded);
}

#[test]
fn a_follow_up_is_marked_done_once() {
    let done = InspectionCommand::CompleteFollowUp {
        follow_up_id: id(1),
        done_on: d(2026, 6, 20),
        note: Some(text("已补齐")),
    };
    framework()
        .given(vec![recorded()])
        .when(done.clone())
        .then_expect_events(vec![InspectionEvent::FollowUpCompleted {
            follow_up_id: id(1),
            done_on: d(2026, 6, 20),
            note: Some("已补齐".into()),
        }]);
    framework()
        .given(vec![
            recorded(),
            InspectionEvent::FollowUpCompleted {
                follow_up_id: id(1),
                done_on: d(2026, 6, 20),
                note: None,
            },
        ])
        .when(done)
        .then_expect_error(InspectionError::AlreadyDone);
}

#[test]
fn a_follow_up_must_exist_and_be_dated_sensibly() {
    let at = |follow_up: u128, on: NaiveDate| InspectionCommand::CompleteFollowUp {
        follow_up_id: id(follow_up),
        done_on: on,
        note: None,
    };
    framework()
        .given(vec![recorded()])
        .when(at(9, d(2026, 6, 20)))
        .then_expect_error(InspectionError::UnknownFollowUp);
    framework()
        .given(vec![recorded()])
        .when(at(1, d(2026, 6, 9)))
        .then_expect_error(InspectionError::Invalid {
            field: "done_on",
            message: "is before the inspection",
        });
    framework()
        .given(vec![recorded()])
        .when(at(1, d(2026, 7, 1)))
        .then_expect_error(InspectionError::InFuture { field: "done_on" });
    framework()
        .given_no_previous_events()
        .when(at(1, d(2026, 6, 20)))
        .then_expect_error(InspectionError::NotRecorded);
}

#[test]
fn a_voided_inspection_no_longer_counts_or_changes() {
    let void = InspectionCommand::VoidInspection {
        reason: text("重复登记"),
    };
    framework()
        .given(vec![recorded()])
        .when(void.clone())
        .then_expect_events(vec![InspectionEvent::InspectionVoided {
            reason: "重复登记".into(),
        }]);
    let history = vec![
        recorded(),
        InspectionEvent::InspectionVoided {
            reason: "重复登记".into(),
        },
    ];
    framework()
        .given(history.clone())
        .when(void)
        .then_expect_error(InspectionError::Voided);
    framework()
        .given(history.clone())
        .when(InspectionCommand::CompleteFollowUp {
            follow_up_id: id(1),
            done_on: d(2026, 6, 20),
            note: None,
        })
        .then_expect_error(InspectionError::Voided);
    let mut i = Inspection::default();
    i.evolve(recorded());
    assert!(i.counts());
    for e in history.into_iter().skip(1) {
        i.evolve(e);
    }
    assert!(!i.counts());
}

#[test]
fn levels_and_parents() {
    assert_eq!(AssociationLevel::of("4503"), Some(AssociationLevel::City));
    assert_eq!(
        AssociationLevel::of("450305"),
        Some(AssociationLevel::County)
    );
    assert_eq!(AssociationLevel::of("45"), None);
    assert_eq!(AssociationLevel::of("450305001"), None);
    assert_eq!(parent_level("450305001001"), Some("450305001"));
    assert_eq!(parent_level("450305001"), Some("450305"));
    assert_eq!(parent_level("450305"), Some("4503"));
    assert_eq!(parent_level("4503"), Some("45"));
    assert_eq!(parent_level("45"), None);
    assert!(parse_jurisdiction("").is_err());
    assert!(parse_jurisdiction("450").is_err());
    assert!(parse_jurisdiction("45").is_ok());
}

#[test]
fn the_pace_is_one_twelfth_of_the_minimum_per_month_ended() {
    // A county (12 a year): one due by the end of each month.
    assert_eq!(pace(12, 2026, d(2026, 1, 1)), 0);
    assert_eq!(pace(12, 2026, d(2026, 1, 31)), 0);
    assert_eq!(pace(12, 2026, d(2026, 2, 1)), 1);
    assert_eq!(pace(12, 2026, d(2026, 6, 30)), 5);
    assert_eq!(pace(12, 2026, d(2026, 7, 1)), 6);
    // A city (4 a year): one due by the end of each quarter.
    assert_eq!(pace(4, 2026, d(2026, 3, 31)), 0);
    assert_eq!(pace(4, 2026, d(2026, 4, 1)), 1);
    assert_eq!(pace(4, 2026, d(2026, 6, 30)), 1);
    assert_eq!(pace(4, 2026, d(2026, 7, 1)), 2);
    assert_eq!(pace(4, 2026, d(2026, 12, 31)), 3);
    // The year before has not begun; after it, all of it is due.
    assert_eq!(pace(4, 2027, d(2026, 12, 31)), 0);
    assert_eq!(pace(4, 2026, d(2027, 1, 1)), 4);
    assert_eq!(pace(5, 2026, d(2026, 8, 1)), 2, "rounded down");
    // The scan of 1 January checks the year just ended.
    assert_eq!(pace_year(d(2027, 1, 1)), 2026);
    assert_eq!(pace_year(d(2027, 1, 2)), 2027);
}
