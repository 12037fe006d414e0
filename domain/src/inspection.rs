//! Supervision inspections (督导) as streams of their own: an
//! [`Inspection`] aggregate per inspection, with its own events and hash
//! chain. Higher levels inspect lower ones; the bulletin asks city
//! associations for at least 4 inspections a year and county associations
//! for at least 12 (the policy's `[inspections]`), and
//! [`crate::inspection::pace`] says how many are due by a given day.
//!
//! An inspection names the jurisdiction inspected and the association that
//! held it (`inspected_by`, a strict prefix of the jurisdiction: a level
//! above it). The compliance of an association counts the inspections it
//! held.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::CaseServices;
use crate::values::{string_enum, Scope, Text, ValueError};

string_enum!(
    /// What an inspection looked at.
    InspectionTopic {
        Insurance => "insurance",
        Visits => "visits",
        Project => "project",
        Other => "other",
    }
);

/// Follow-ups one inspection may list, at most.
pub const MAX_FOLLOW_UPS: usize = 50;

/// The level of an association with an inspection minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssociationLevel {
    City,
    County,
}

impl AssociationLevel {
    /// The level of an association by the length of its code: 4 digits a
    /// city, 6 a county; other levels have no minimum.
    pub fn of(code: &str) -> Option<Self> {
        match code.len() {
            4 => Some(Self::City),
            6 => Some(Self::County),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::City => "city",
            Self::County => "county",
        }
    }
}

/// The jurisdiction one level above `code` (12 → 9 → 6 → 4 → 2 digits);
/// `None` for a province or the whole country.
pub fn parent_level(code: &str) -> Option<&str> {
    let len = match code.len() {
        12 => 9,
        9 => 6,
        6 => 4,
        4 => 2,
        _ => return None,
    };
    Some(&code[..len])
}

/// A jurisdiction that can be inspected: a code prefix of 2 to 12 digits.
pub fn parse_jurisdiction(s: &str) -> Result<Scope, ValueError> {
    let scope = Scope::parse(s)?;
    if s.is_empty() {
        return Err(ValueError(
            "must be an administrative code prefix of 2, 4, 6, 9 or 12 digits",
        ));
    }
    Ok(scope)
}

/// How many inspections an association with a minimum of `required` a
/// year should have held, at the required pace, when day `on` begins, for
/// the year `year`: `floor(required × m / 12)` where `m` is the number of
/// whole months of `year` that have ended before `on` (0 before the year,
/// 12 after it). So a county (12) is due one by the end of every month and
/// a city (4) one by the end of every quarter; a jurisdiction is **behind
/// schedule** when it has held fewer. Falling behind this pace is the same
/// as no longer being able to reach the minimum by inspecting at the
/// required rate for the rest of the year (up to the rounding to months).
pub fn pace(required: u32, year: i32, on: NaiveDate) -> u32 {
    let months_ended = if on.year() < year {
        0
    } else if on.year() > year {
        12
    } else {
        on.month0()
    };
    required * months_ended / 12
}

/// The year a scan of day `on` checks the pace of: the year of the day
/// before (so the scan of 1 January checks the whole of the year just
/// ended).
pub fn pace_year(on: NaiveDate) -> i32 {
    on.pred_opt().unwrap_or(on).year()
}

#[derive(Debug, Clone, PartialEq)]
pub enum InspectionCommand {
    RecordInspection {
        jurisdiction: Scope,
        inspected_by: Scope,
        topic: InspectionTopic,
        held_on: NaiveDate,
        findings: Text,
        /// Each follow-up with the id it will be marked done by.
        follow_ups: Vec<(Uuid, Text)>,
    },
    CompleteFollowUp {
        follow_up_id: Uuid,
        done_on: NaiveDate,
        note: Option<Text>,
    },
    /// An inspection recorded by mistake: it no longer counts.
    VoidInspection { reason: Text },
}

/// A follow-up as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpItem {
    pub id: Uuid,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InspectionEvent {
    InspectionRecorded {
        jurisdiction: String,
        inspected_by: String,
        topic: InspectionTopic,
        held_on: NaiveDate,
        findings: String,
        follow_ups: Vec<FollowUpItem>,
    },
    FollowUpCompleted {
        follow_up_id: Uuid,
        done_on: NaiveDate,
        note: Option<String>,
    },
    InspectionVoided {
        reason: String,
    },
}

impl InspectionEvent {
    pub fn name(&self) -> &'static str {
        match self {
            InspectionEvent::InspectionRecorded { .. } => "InspectionRecorded",
            InspectionEvent::FollowUpCompleted { .. } => "FollowUpCompleted",
            InspectionEvent::InspectionVoided { .. } => "InspectionVoided",
        }
    }
}

/// The version of every inspection event shape.
pub const INSPECTION_EVENT_VERSION: &str = "1";

impl DomainEvent for InspectionEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        INSPECTION_EVENT_VERSION.to_owned()
    }
}

/// Why an inspection command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectionError {
    #[error("no such inspection")]
    NotRecorded,
    #[error("the inspection is already recorded")]
    AlreadyRecorded,
    #[error("the inspection is voided")]
    Voided,
    #[error("no follow-up with that id in this inspection")]
    UnknownFollowUp,
    #[error("that follow-up is already marked done")]
    AlreadyDone,
    #[error("`{field}` is in the future")]
    InFuture { field: &'static str },
    #[error("`{field}` {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
}

/// A follow-up as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub id: Uuid,
    pub text: String,
    pub done_on: Option<NaiveDate>,
    pub note: Option<String>,
}

/// One inspection as folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub recorded: bool,
    pub jurisdiction: String,
    pub inspected_by: String,
    pub topic: Option<InspectionTopic>,
    pub held_on: Option<NaiveDate>,
    pub findings: String,
    pub follow_ups: Vec<FollowUp>,
    /// The reason, when voided.
    pub voided: Option<String>,
}

impl Aggregate for Inspection {
    const TYPE: &'static str = "Inspection";
    type Command = InspectionCommand;
    type Event = InspectionEvent;
    type Error = InspectionError;
    type Services = CaseServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = self.decide(command, services.today())?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.evolve(event);
    }
}

impl Inspection {
    /// Checks `command` against the inspection; returns the event.
    pub fn decide(
        &self,
        command: InspectionCommand,
        today: NaiveDate,
    ) -> Result<InspectionEvent, InspectionError> {
        use InspectionCommand as C;
        if !self.recorded && !matches!(command, C::RecordInspection { .. }) {
            return Err(InspectionError::NotRecorded);
        }
        if self.voided.is_some() {
            return Err(InspectionError::Voided);
        }
        match command {
            C::RecordInspection {
                jurisdiction,
                inspected_by,
                topic,
                held_on,
                findings,
                follow_ups,
            } => {
                if self.recorded {
                    return Err(InspectionError::AlreadyRecorded);
                }
                let (j, by) = (jurisdiction.as_str(), inspected_by.as_str());
                if j.is_empty() {
                    return Err(InspectionError::Invalid {
                        field: "jurisdiction",
                        message: "must be a jurisdiction, not the whole country",
                    });
                }
                if by.is_empty() || by.len() >= j.len() || !j.starts_with(by) {
                    return Err(InspectionError::Invalid {
                        field: "inspected_by",
                        message: "must be a level above the jurisdiction inspected",
                    });
                }
                if held_on > today {
                    return Err(InspectionError::InFuture { field: "held_on" });
                }
                if held_on < crate::activity::earliest_date() {
                    return Err(InspectionError::Invalid {
                        field: "held_on",
                        message: "is before 2000",
                    });
                }
                if follow_ups.len() > MAX_FOLLOW_UPS {
                    return Err(InspectionError::Invalid {
                        field: "follow_ups",
                        message: "lists more than 50 follow-ups",
                    });
                }
                Ok(InspectionEvent::InspectionRecorded {
                    jurisdiction: jurisdiction.into(),
                    inspected_by: inspected_by.into(),
                    topic,
                    held_on,
                    findings: findings.into(),
                    follow_ups: follow_ups
                        .into_iter()
                        .map(|(id, text)| FollowUpItem {
                            id,
                            text: text.into(),
                        })
                        .collect(),
                })
            }
            C::CompleteFollowUp {
                follow_up_id,
                done_on,
                note,
            } => {
                let f = self
                    .follow_ups
                    .iter()
                    .find(|f| f.id == follow_up_id)
                    .ok_or(InspectionError::UnknownFollowUp)?;
                if f.done_on.is_some() {
                    return Err(InspectionError::AlreadyDone);
                }
                if done_on > today {
                    return Err(InspectionError::InFuture { field: "done_on" });
                }
                if self.held_on.is_some_and(|h| done_on < h) {
                    return Err(InspectionError::Invalid {
                        field: "done_on",
                        message: "is before the inspection",
                    });
                }
                Ok(InspectionEvent::FollowUpCompleted {
                    follow_up_id,
                    done_on,
                    note: note.map(String::from),
                })
            }
            C::VoidInspection { reason } => Ok(InspectionEvent::InspectionVoided {
                reason: reason.into(),
            }),
        }
    }

    /// Folds one event. Never fails: events are facts.
    pub fn evolve(&mut self, event: InspectionEvent) {
        match event {
            InspectionEvent::InspectionRecorded {
                jurisdiction,
                inspected_by,
                topic,
                held_on,
                findings,
                follow_ups,
            } => {
                self.recorded = true;
                self.jurisdiction = jurisdiction;
                self.inspected_by = inspected_by;
                self.topic = Some(topic);
                self.held_on = Some(held_on);
                self.findings = findings;
                self.follow_ups = follow_ups
                    .into_iter()
                    .map(|f| FollowUp {
                        id: f.id,
                        text: f.text,
                        done_on: None,
                        note: None,
                    })
                    .collect();
            }
            InspectionEvent::FollowUpCompleted {
                follow_up_id,
                done_on,
                note,
            } => {
                if let Some(f) = self.follow_ups.iter_mut().find(|f| f.id == follow_up_id) {
                    f.done_on = Some(done_on);
                    f.note = note;
                }
            }
            InspectionEvent::InspectionVoided { reason } => self.voided = Some(reason),
        }
    }

    /// Whether the inspected jurisdiction and `scope` overlap (one contains
    /// the other).
    pub fn overlaps(&self, scope: &Scope) -> bool {
        let j = self.jurisdiction.as_str();
        j.starts_with(scope.as_str()) || scope.as_str().starts_with(j)
    }

    /// Whether it counts towards its association's minimum: recorded, not
    /// voided.
    pub fn counts(&self) -> bool {
        self.recorded && self.voided.is_none()
    }
}

#[cfg(test)]
#[path = "inspection_tests.rs"]
mod tests;
