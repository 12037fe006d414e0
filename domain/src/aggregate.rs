//! The `FamilyCase` aggregate: the state of one family's case as folded from
//! its events, and the rules a new action must satisfy.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commands::FamilyCommand;
use crate::events::{ContactPerson, FamilyEvent, Member};
use crate::values::*;

/// The server clock, injectable so tests can fix "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always answers the same instant (for tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// What the aggregate needs from outside: the clock and the local time zone
/// (as a fixed offset; Asia/Shanghai is UTC+8 all year).
#[derive(Debug, Clone)]
pub struct CaseServices {
    pub clock: Arc<dyn Clock>,
    pub offset: FixedOffset,
}

impl CaseServices {
    pub fn new(clock: Arc<dyn Clock>, offset: FixedOffset) -> Self {
        Self { clock, offset }
    }

    /// Today's local calendar date.
    pub fn today(&self) -> NaiveDate {
        self.clock.now().with_timezone(&self.offset).date_naive()
    }
}

impl Default for CaseServices {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            offset: FixedOffset::east_opt(8 * 3600).expect("valid offset"),
        }
    }
}

/// A rule of the case's current state that a command breaks. The API maps
/// `NotRegistered` to 404, `UnknownMember` to 404/422 and the rest to 409.
/// Messages name fields and rules, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("the family is not registered")]
    NotRegistered,
    #[error("the family is already registered")]
    AlreadyRegistered,
    #[error("the case is closed; only reopen is allowed")]
    Closed,
    #[error("the case is not closed")]
    NotClosed,
    #[error("`{field}` is before the family's registration date")]
    BeforeRegistration { field: &'static str },
    #[error("`{field}` is in the future")]
    InFuture { field: &'static str },
    #[error("no {0} contact is assigned")]
    NoContact(Role),
    #[error("no action with that id in this case")]
    UnknownAction,
    #[error("that action is already voided")]
    AlreadyVoided,
    #[error("that kind of action cannot be voided; record the opposite action instead")]
    NotVoidable,
    #[error("no member with that id in this family")]
    UnknownMember,
    #[error("the member is deceased")]
    MemberDeceased,
    #[error("no emergency contact with that id in this family")]
    UnknownEmergencyContact,
    #[error("the family is already in that village")]
    SameVillage,
    #[error("`{field}` {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    #[default]
    Open,
    Closed,
}

/// A member as they stand now: the registration data folded with every
/// status update that has not been voided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberState {
    #[serde(flatten)]
    pub member: Member,
    pub deceased_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedContact {
    pub action_id: Uuid,
    pub person: ContactPerson,
    pub assigned_on: NaiveDate,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contacts {
    pub village: Option<AssignedContact>,
    pub township: Option<AssignedContact>,
}

impl Contacts {
    pub fn get(&self, role: Role) -> Option<&AssignedContact> {
        match role {
            Role::Village => self.village.as_ref(),
            Role::Township => self.township.as_ref(),
        }
    }

    pub fn slot(&mut self, role: Role) -> &mut Option<AssignedContact> {
        match role {
            Role::Village => &mut self.village,
            Role::Township => &mut self.township,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergencyContact {
    pub id: Uuid,
    pub action_id: Uuid,
    pub name: String,
    pub relation: String,
    pub phone: Phone,
    pub priority: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub action_id: Uuid,
    pub role: Role,
    pub contact_id: Uuid,
    pub mode: VisitMode,
    pub visited_on: NaiveDate,
    pub findings: String,
    pub needs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emergency {
    pub action_id: Uuid,
    pub occurred_at: DateTime<FixedOffset>,
    pub occurred_on: NaiveDate,
    pub description: String,
    pub responder: String,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElderlyCare {
    pub action_id: Uuid,
    pub member_id: Uuid,
    pub service: ElderlyCareService,
    pub provider: String,
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assistance {
    pub action_id: Uuid,
    pub area: AssistanceArea,
    pub amount_fen: Option<AmountFen>,
    pub provided_on: NaiveDate,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub action_id: Uuid,
    pub text: String,
}

/// A death of a member, kept for the urgent-visit rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Death {
    pub action_id: Uuid,
    pub member_id: Uuid,
    pub on: NaiveDate,
}

/// What the aggregate remembers of every action, for voids and history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub event_type: String,
    pub voided_by: Option<Uuid>,
}

/// One family's case. Lists hold only actions that are in force: a voided
/// visit, note, assistance … is removed from them (its record stays in
/// `actions` with `voided_by` set, and in the event log forever).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FamilyCase {
    pub registered: bool,
    pub status: CaseStatus,
    pub category: Option<Category>,
    pub village_code: Option<VillageCode>,
    pub address: String,
    pub registered_on: Option<NaiveDate>,
    pub members: Vec<MemberState>,
    pub contacts: Contacts,
    pub emergency_contacts: Vec<EmergencyContact>,
    pub visits: Vec<Visit>,
    pub emergencies: Vec<Emergency>,
    pub deaths: Vec<Death>,
    pub elderly_care: Vec<ElderlyCare>,
    pub assistance: Vec<Assistance>,
    pub notes: Vec<Note>,
    /// Date of the latest transfer, if any: visits before it belong to the
    /// old place and do not count for the new contacts.
    pub transferred_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    pub actions: BTreeMap<Uuid, ActionRecord>,
    /// Every member status update in order (kept so a void can refold).
    pub status_updates: Vec<FamilyEvent>,
}

impl Aggregate for FamilyCase {
    const TYPE: &'static str = "FamilyCase";
    type Command = FamilyCommand;
    type Event = FamilyEvent;
    type Error = CaseError;
    type Services = CaseServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = self.decide(command, services.today(), services.offset)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.evolve(event);
    }
}

impl FamilyCase {
    /// Checks `command` against the current state and returns the one event
    /// that records it. `today` is the local calendar date; `offset` the
    /// local UTC offset (to turn instants into local days).
    pub fn decide(
        &self,
        command: FamilyCommand,
        today: NaiveDate,
        offset: FixedOffset,
    ) -> Result<FamilyEvent, CaseError> {
        let _ = (command, today, offset);
        todo!("decide")
    }

    /// Folds one event into the state. Never fails: events are facts.
    pub fn evolve(&mut self, event: FamilyEvent) {
        let _ = event;
        todo!("evolve")
    }
}
