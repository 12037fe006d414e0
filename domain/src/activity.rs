//! Group activities (暖心家园, 暖心行动, festival gatherings, member days 5·29
//! and 9·25) as streams of their own: an [`Activity`] aggregate per
//! activity, with its own events and its own hash chain.
//!
//! Attendance is a fact about two streams: the activity's
//! `AttendanceRecorded` lists the families, and each family's stream gets an
//! `ActivityAttended` (`crate::FamilyEvent`), all appended in one
//! transaction by the infrastructure (decisions.md, record 22). This
//! aggregate decides which families are new to the activity; each family's
//! own rules (registered, open, the date) are the family aggregate's.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::CaseServices;
use crate::values::{string_enum, Scope, Text, ValueError};

string_enum!(
    /// What kind of activity it was.
    ActivityKind {
        WarmHome => "warm_home",
        HolidayGathering => "holiday_gathering",
        MemberDay => "member_day",
        HealthTalk => "health_talk",
        Other => "other",
    }
);

/// Families named in one attendance request, at most.
pub const MAX_FAMILIES_PER_REQUEST: usize = 500;

/// The earliest date an activity may carry (a typing mistake otherwise).
pub fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date")
}

/// Where an activity was held: a county, township or village code (6, 9 or
/// 12 digits).
pub fn parse_place(s: &str) -> Result<Scope, ValueError> {
    let scope = Scope::parse(s)?;
    if !matches!(s.len(), 6 | 9 | 12) {
        return Err(ValueError(
            "must be a county, township or village code (6, 9 or 12 digits)",
        ));
    }
    Ok(scope)
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActivityCommand {
    RecordActivity {
        kind: ActivityKind,
        title: Text,
        held_on: NaiveDate,
        village_code_prefix: Scope,
        /// The organising body (an association, a centre).
        organiser: Text,
    },
    /// Adds families to the attendance; families already attending are
    /// left out of the event (none new: no event).
    RecordAttendance { family_ids: Vec<Uuid> },
    /// Takes families recorded by mistake off the attendance.
    RemoveAttendance { family_ids: Vec<Uuid>, reason: Text },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ActivityEvent {
    ActivityRecorded {
        kind: ActivityKind,
        title: String,
        held_on: NaiveDate,
        village_code_prefix: String,
        organiser: String,
    },
    AttendanceRecorded {
        family_ids: Vec<Uuid>,
    },
    AttendanceRemoved {
        family_ids: Vec<Uuid>,
        reason: String,
    },
}

impl ActivityEvent {
    pub fn name(&self) -> &'static str {
        match self {
            ActivityEvent::ActivityRecorded { .. } => "ActivityRecorded",
            ActivityEvent::AttendanceRecorded { .. } => "AttendanceRecorded",
            ActivityEvent::AttendanceRemoved { .. } => "AttendanceRemoved",
        }
    }
}

/// The version of every activity event shape.
pub const ACTIVITY_EVENT_VERSION: &str = "1";

impl DomainEvent for ActivityEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        ACTIVITY_EVENT_VERSION.to_owned()
    }
}

/// Why an activity command was refused. Messages name fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivityError {
    #[error("no such activity")]
    NotRecorded,
    #[error("the activity is already recorded")]
    AlreadyRecorded,
    #[error("`{field}` is in the future")]
    InFuture { field: &'static str },
    /// A removal names a family the attendance does not hold: the
    /// activity's state refuses it (409), the request itself is sound.
    #[error("`family_ids` names a family not recorded as attending")]
    NotAttending,
    #[error("`{field}` {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
}

/// One activity as folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub recorded: bool,
    pub kind: Option<ActivityKind>,
    pub title: String,
    pub held_on: Option<NaiveDate>,
    pub village_code_prefix: String,
    pub organiser: String,
    /// The families recorded as attending (removals taken off).
    pub attendees: BTreeSet<Uuid>,
}

impl Aggregate for Activity {
    const TYPE: &'static str = "Activity";
    type Command = ActivityCommand;
    type Event = ActivityEvent;
    type Error = ActivityError;
    type Services = CaseServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services.today())? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.evolve(event);
    }
}

/// The families of a request, each once, in the order first named.
fn distinct(ids: Vec<Uuid>) -> Vec<Uuid> {
    let mut seen = BTreeSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

impl Activity {
    /// Checks `command` against the activity; returns the events that record
    /// it (none when an attendance names no new family).
    pub fn decide(
        &self,
        command: ActivityCommand,
        today: NaiveDate,
    ) -> Result<Vec<ActivityEvent>, ActivityError> {
        use ActivityCommand as C;
        match command {
            C::RecordActivity {
                kind,
                title,
                held_on,
                village_code_prefix,
                organiser,
            } => {
                if self.recorded {
                    return Err(ActivityError::AlreadyRecorded);
                }
                if held_on > today {
                    return Err(ActivityError::InFuture { field: "held_on" });
                }
                if held_on < earliest_date() {
                    return Err(ActivityError::Invalid {
                        field: "held_on",
                        message: "is before 2000",
                    });
                }
                Ok(vec![ActivityEvent::ActivityRecorded {
                    kind,
                    title: title.into(),
                    held_on,
                    village_code_prefix: village_code_prefix.into(),
                    organiser: organiser.into(),
                }])
            }
            C::RecordAttendance { family_ids } => {
                if !self.recorded {
                    return Err(ActivityError::NotRecorded);
                }
                check_count(&family_ids)?;
                let new: Vec<Uuid> = distinct(family_ids)
                    .into_iter()
                    .filter(|id| !self.attendees.contains(id))
                    .collect();
                Ok(if new.is_empty() {
                    vec![]
                } else {
                    vec![ActivityEvent::AttendanceRecorded { family_ids: new }]
                })
            }
            C::RemoveAttendance { family_ids, reason } => {
                if !self.recorded {
                    return Err(ActivityError::NotRecorded);
                }
                check_count(&family_ids)?;
                let family_ids = distinct(family_ids);
                if family_ids.iter().any(|id| !self.attendees.contains(id)) {
                    return Err(ActivityError::NotAttending);
                }
                Ok(vec![ActivityEvent::AttendanceRemoved {
                    family_ids,
                    reason: reason.into(),
                }])
            }
        }
    }

    /// Folds one event. Never fails: events are facts.
    pub fn evolve(&mut self, event: ActivityEvent) {
        match event {
            ActivityEvent::ActivityRecorded {
                kind,
                title,
                held_on,
                village_code_prefix,
                organiser,
            } => {
                self.recorded = true;
                self.kind = Some(kind);
                self.title = title;
                self.held_on = Some(held_on);
                self.village_code_prefix = village_code_prefix;
                self.organiser = organiser;
            }
            ActivityEvent::AttendanceRecorded { family_ids } => {
                self.attendees.extend(family_ids);
            }
            ActivityEvent::AttendanceRemoved { family_ids, .. } => {
                for id in family_ids {
                    self.attendees.remove(&id);
                }
            }
        }
    }

    /// Whether the activity's place and the jurisdiction `scope` overlap
    /// (one contains the other): a township activity is seen from the
    /// county and from each of its villages.
    pub fn overlaps(&self, scope: &Scope) -> bool {
        let place = self.village_code_prefix.as_str();
        place.starts_with(scope.as_str()) || scope.as_str().starts_with(place)
    }
}

fn check_count(family_ids: &[Uuid]) -> Result<(), ActivityError> {
    if family_ids.is_empty() {
        return Err(ActivityError::Invalid {
            field: "family_ids",
            message: "must name at least one family",
        });
    }
    if family_ids.len() > MAX_FAMILIES_PER_REQUEST {
        return Err(ActivityError::Invalid {
            field: "family_ids",
            message: "names more than 500 families; send them in several requests",
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "activity_tests.rs"]
mod tests;
