//! Given/when/then tests of the `Activity` aggregate. Today is 2026-06-30.

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

fn record(held_on: NaiveDate) -> ActivityCommand {
    ActivityCommand::RecordActivity {
        kind: ActivityKind::WarmHome,
        title: text("暖心家园 中秋茶话会"),
        held_on,
        village_code_prefix: parse_place("450305001").expect("valid place"),
        organiser: text("七星区计生协"),
    }
}

fn recorded() -> ActivityEvent {
    ActivityEvent::ActivityRecorded {
        kind: ActivityKind::WarmHome,
        title: "暖心家园 中秋茶话会".into(),
        held_on: d(2026, 6, 20),
        village_code_prefix: "450305001".into(),
        organiser: "七星区计生协".into(),
    }
}

fn framework() -> TestFramework<Activity> {
    TestFramework::with(services())
}

#[test]
fn an_activity_is_recorded_once() {
    framework()
        .given_no_previous_events()
        .when(record(d(2026, 6, 20)))
        .then_expect_events(vec![recorded()]);
    framework()
        .given(vec![recorded()])
        .when(record(d(2026, 6, 20)))
        .then_expect_error(ActivityError::AlreadyRecorded);
}

#[test]
fn an_activity_is_recorded_after_it_was_held() {
    framework()
        .given_no_previous_events()
        .when(record(d(2026, 7, 1)))
        .then_expect_error(ActivityError::InFuture { field: "held_on" });
    framework()
        .given_no_previous_events()
        .when(record(d(1999, 12, 31)))
        .then_expect_error(ActivityError::Invalid {
            field: "held_on",
            message: "is before 2000",
        });
}

#[test]
fn the_place_is_a_county_township_or_village() {
    for ok in ["450305", "450305001", "450305001001"] {
        assert!(parse_place(ok).is_ok(), "{ok}");
    }
    for bad in ["", "45", "4503", "4503050", "45030500100x"] {
        assert!(parse_place(bad).is_err(), "{bad}");
    }
}

#[test]
fn attendance_records_only_new_families_each_once() {
    framework()
        .given(vec![recorded()])
        .when(ActivityCommand::RecordAttendance {
            family_ids: vec![id(1), id(2), id(1)],
        })
        .then_expect_events(vec![ActivityEvent::AttendanceRecorded {
            family_ids: vec![id(1), id(2)],
        }]);
    framework()
        .given(vec![
            recorded(),
            ActivityEvent::AttendanceRecorded {
                family_ids: vec![id(1)],
            },
        ])
        .when(ActivityCommand::RecordAttendance {
            family_ids: vec![id(1), id(3)],
        })
        .then_expect_events(vec![ActivityEvent::AttendanceRecorded {
            family_ids: vec![id(3)],
        }]);
    // Nobody new: nothing to record.
    framework()
        .given(vec![
            recorded(),
            ActivityEvent::AttendanceRecorded {
                family_ids: vec![id(1)],
            },
        ])
        .when(ActivityCommand::RecordAttendance {
            family_ids: vec![id(1)],
        })
        .then_expect_events(vec![]);
}

#[test]
fn attendance_needs_an_activity_and_a_sensible_list() {
    framework()
        .given_no_previous_events()
        .when(ActivityCommand::RecordAttendance {
            family_ids: vec![id(1)],
        })
        .then_expect_error(ActivityError::NotRecorded);
    framework()
        .given(vec![recorded()])
        .when(ActivityCommand::RecordAttendance { family_ids: vec![] })
        .then_expect_error(ActivityError::Invalid {
            field: "family_ids",
            message: "must name at least one family",
        });
    framework()
        .given(vec![recorded()])
        .when(ActivityCommand::RecordAttendance {
            family_ids: (0..501).map(id).collect(),
        })
        .then_expect_error(ActivityError::Invalid {
            field: "family_ids",
            message: "names more than 500 families; send them in several requests",
        });
}

#[test]
fn attendance_is_removed_only_for_attending_families() {
    let history = vec![
        recorded(),
        ActivityEvent::AttendanceRecorded {
            family_ids: vec![id(1), id(2)],
        },
    ];
    framework()
        .given(history.clone())
        .when(ActivityCommand::RemoveAttendance {
            family_ids: vec![id(2), id(2)],
            reason: text("登记错误"),
        })
        .then_expect_events(vec![ActivityEvent::AttendanceRemoved {
            family_ids: vec![id(2)],
            reason: "登记错误".into(),
        }]);
    framework()
        .given(history.clone())
        .when(ActivityCommand::RemoveAttendance {
            family_ids: vec![id(3)],
            reason: text("登记错误"),
        })
        .then_expect_error(ActivityError::NotAttending);
    let mut a = Activity::default();
    for e in history {
        a.evolve(e);
    }
    a.evolve(ActivityEvent::AttendanceRemoved {
        family_ids: vec![id(2)],
        reason: "x".into(),
    });
    assert_eq!(a.attendees.iter().copied().collect::<Vec<_>>(), [id(1)]);
}

#[test]
fn an_activity_is_seen_from_enclosing_and_enclosed_scopes() {
    let mut a = Activity::default();
    a.evolve(recorded());
    let scope = |s: &str| Scope::parse(s).expect("valid scope");
    assert!(a.overlaps(&scope("")));
    assert!(a.overlaps(&scope("4503")));
    assert!(a.overlaps(&scope("450305001")));
    assert!(a.overlaps(&scope("450305001002")));
    assert!(!a.overlaps(&scope("450305002")));
    assert!(!a.overlaps(&scope("4504")));
}
