//! The `FamilyCase` aggregate: the state of one family's case as folded from
//! its events, and the rules a new action must satisfy.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::activity::ActivityKind;
use crate::commands::FamilyCommand;
use crate::events::{ActionKind, ContactPerson, FamilyEvent, Member};
use crate::insurance::Insurance;
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
/// `NotRegistered`, `UnknownMember` and `UnknownEmergencyContact` to 404,
/// `Invalid` (a value the command itself gets wrong, whatever the state) to
/// 422 and the rest to 409.
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
    #[error("`{field}` is before the contact was assigned")]
    BeforeAssignment { field: &'static str },
    #[error("`{field}` is before the case was closed")]
    BeforeClosing { field: &'static str },
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
    #[error("no insurance enrolment with that id in this family")]
    UnknownEnrolment,
    #[error("no insurance claim with that id in this family")]
    UnknownClaim,
    #[error("the member is already enrolled in that product for that policy year")]
    AlreadyEnrolled,
    #[error("the enrolment is already withdrawn")]
    AlreadyWithdrawn,
    #[error("the enrolment was withdrawn before the occurrence: the cover had ended")]
    CoverWithdrawn,
    #[error("the claim is already decided; void the decision to decide it again")]
    AlreadyDecided,
    #[error("the enrolment has claims; void them first")]
    EnrolmentHasClaims,
    #[error("the family is already recorded as attending that activity")]
    AlreadyAttending,
    #[error("the family is not recorded as attending that activity")]
    NotAttending,
    #[error("the family's personal data is erased; nothing more can be recorded for it")]
    Erased,
    #[error("the case is open; close it before erasing the family's personal data")]
    OpenForErasure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A group activity the family attended (its side of the attendance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttendedActivity {
    pub action_id: Uuid,
    pub activity_id: Uuid,
    pub kind: ActivityKind,
    pub title: String,
    pub held_on: NaiveDate,
}

/// A death of a member, kept for the urgent-visit rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Death {
    pub action_id: Uuid,
    pub member_id: Uuid,
    pub on: NaiveDate,
}

/// What the aggregate remembers of every action, for voids and history.
/// (`event_type` keeps its stored name: case-file rows hold this as JSON.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub event_type: ActionKind,
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
    /// The members exactly as registered: `members` is refolded from these
    /// and the status updates in force whenever either changes.
    #[serde(default)]
    pub registered_members: Vec<Member>,
    /// Care insurance: enrolments and claims in force.
    #[serde(default)]
    pub insurance: Insurance,
    /// Group activities attended (attendances taken back are removed).
    #[serde(default)]
    pub activities: Vec<AttendedActivity>,
    /// The day the family's personal data was erased (`FamilyErased`):
    /// from then on every command is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_on: Option<NaiveDate>,
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
    /// The contact holding `role`, for an action of theirs dated `on`: no
    /// contact, a date outside registration..today, or a date before the
    /// assignment is refused, in that order.
    fn contact_acting(
        &self,
        role: Role,
        field: &'static str,
        on: NaiveDate,
        today: NaiveDate,
    ) -> Result<&AssignedContact, CaseError> {
        let contact = self.contacts.get(role).ok_or(CaseError::NoContact(role))?;
        self.check_date(field, on, today)?;
        if on < contact.assigned_on {
            return Err(CaseError::BeforeAssignment { field });
        }
        Ok(contact)
    }

    /// Checks `command` against the current state and returns the one event
    /// that records it. `today` is the local calendar date; `offset` the
    /// local UTC offset (to turn instants into local days).
    ///
    /// Order of checks: registration, closed/reopen, action id reuse, then
    /// the command's own rules (unknown ids before dates).
    pub fn decide(
        &self,
        command: FamilyCommand,
        today: NaiveDate,
        offset: FixedOffset,
    ) -> Result<FamilyEvent, CaseError> {
        use FamilyCommand as C;
        use FamilyEvent as E;

        let registering = matches!(command, C::RegisterFamily { .. });
        if registering && self.registered {
            return Err(CaseError::AlreadyRegistered);
        }
        if !registering && !self.registered {
            return Err(CaseError::NotRegistered);
        }
        if self.erased_on.is_some() {
            return Err(CaseError::Erased);
        }
        match (&command, self.status) {
            (C::EraseFamily { .. }, CaseStatus::Open) => return Err(CaseError::OpenForErasure),
            (C::EraseFamily { .. }, CaseStatus::Closed) => {}
            (C::ReopenCase { .. }, CaseStatus::Open) => return Err(CaseError::NotClosed),
            (C::ReopenCase { .. }, CaseStatus::Closed) => {}
            (_, CaseStatus::Closed) => return Err(CaseError::Closed),
            (_, CaseStatus::Open) => {}
        }
        if self.actions.contains_key(&command_action_id(&command)) {
            return Err(CaseError::Invalid {
                field: "action_id",
                message: "is already used in this case",
            });
        }
        let check = |field: &'static str, date: NaiveDate| self.check_date(field, date, today);

        let event = match command {
            C::RegisterFamily {
                action_id,
                category,
                village_code,
                address,
                registered_on,
                members,
            } => {
                if !(EARLIEST_REGISTRATION..=LATEST_DAY).contains(&registered_on) {
                    return Err(CaseError::Invalid {
                        field: "registered_on",
                        message: "must be a day from 1980-01-01 to 2099-12-31",
                    });
                }
                if registered_on > today {
                    return Err(CaseError::InFuture {
                        field: "registered_on",
                    });
                }
                if !(1..=MAX_MEMBERS).contains(&members.len()) {
                    return Err(CaseError::Invalid {
                        field: "members",
                        message: "must list 1 to 4 members",
                    });
                }
                for m in &members {
                    check_member(m, registered_on).map_err(|(field, message)| {
                        CaseError::Invalid {
                            field: match field {
                                "birth_date" => "members.birth_date",
                                _ => "members.id_number",
                            },
                            message,
                        }
                    })?;
                }
                if members
                    .iter()
                    .enumerate()
                    .any(|(i, m)| members[..i].iter().any(|o| o.id == m.id))
                {
                    return Err(CaseError::Invalid {
                        field: "members.id",
                        message: "must be unique",
                    });
                }
                E::FamilyRegistered {
                    action_id,
                    category,
                    village_code,
                    address: address.into(),
                    registered_on,
                    members,
                }
            }
            C::UpdateMemberStatus {
                action_id,
                member_id,
                effective_on,
                deceased_on,
                living_alone,
                self_care,
                phone,
            } => {
                let member = self.member(member_id).ok_or(CaseError::UnknownMember)?;
                if member.deceased_on.is_some() {
                    return Err(CaseError::MemberDeceased);
                }
                if deceased_on.is_none()
                    && living_alone.is_none()
                    && self_care.is_none()
                    && phone.is_none()
                {
                    return Err(CaseError::Invalid {
                        field: "body",
                        message: "must change at least one of deceased_on, living_alone, self_care, phone",
                    });
                }
                check("effective_on", effective_on)?;
                if let Some(d) = deceased_on {
                    check("deceased_on", d)?;
                }
                E::MemberStatusUpdated {
                    action_id,
                    member_id,
                    effective_on,
                    deceased_on,
                    living_alone,
                    self_care,
                    phone,
                }
            }
            C::AssignContact {
                action_id,
                role,
                person,
                assigned_on,
            } => {
                check("assigned_on", assigned_on)?;
                E::ContactAssigned {
                    action_id,
                    role,
                    person,
                    assigned_on,
                }
            }
            C::ReleaseContact {
                action_id,
                role,
                released_on,
                reason,
            } => {
                let contact = self.contact_acting(role, "released_on", released_on, today)?;
                E::ContactReleased {
                    action_id,
                    role,
                    contact_id: contact.person.id,
                    released_on,
                    reason: reason.into(),
                }
            }
            C::RecordVisit {
                action_id,
                role,
                mode,
                visited_on,
                findings,
                needs,
            } => {
                let contact = self.contact_acting(role, "visited_on", visited_on, today)?;
                if needs.len() > MAX_NEEDS {
                    return Err(CaseError::Invalid {
                        field: "needs",
                        message: "must list at most 20 needs",
                    });
                }
                E::VisitRecorded {
                    action_id,
                    role,
                    contact_id: contact.person.id,
                    mode,
                    visited_on,
                    findings: findings.into(),
                    needs,
                }
            }
            C::SetEmergencyContact {
                action_id,
                name,
                relation,
                phone,
                priority,
            } => {
                if !EMERGENCY_PRIORITIES.contains(&priority) {
                    return Err(CaseError::Invalid {
                        field: "priority",
                        message: "must be between 1 and 9",
                    });
                }
                E::EmergencyContactSet {
                    action_id,
                    emergency_contact_id: action_id,
                    name: name.into(),
                    relation: relation.into(),
                    phone,
                    priority,
                }
            }
            C::RemoveEmergencyContact {
                action_id,
                emergency_contact_id,
                reason,
            } => {
                if !self
                    .emergency_contacts
                    .iter()
                    .any(|c| c.id == emergency_contact_id)
                {
                    return Err(CaseError::UnknownEmergencyContact);
                }
                E::EmergencyContactRemoved {
                    action_id,
                    emergency_contact_id,
                    reason: reason.into(),
                }
            }
            C::RecordEmergency {
                action_id,
                occurred_at,
                description,
                responder,
                outcome,
            } => {
                let occurred_on = occurred_at.with_timezone(&offset).date_naive();
                check("occurred_at", occurred_on)?;
                E::EmergencyRecorded {
                    action_id,
                    occurred_at,
                    occurred_on,
                    description: description.into(),
                    responder: responder.into(),
                    outcome: outcome.into(),
                }
            }
            C::RecordElderlyCare {
                action_id,
                member_id,
                service,
                provider,
                from,
                to,
            } => {
                self.member(member_id).ok_or(CaseError::UnknownMember)?;
                check("from", from)?;
                if to.is_some_and(|to| to < from) {
                    return Err(CaseError::Invalid {
                        field: "to",
                        message: "must not be before `from`",
                    });
                }
                if to.is_some_and(|to| !plausible_day(to)) {
                    return Err(CaseError::Invalid {
                        field: "to",
                        message: "must be a day from 1900-01-01 to 2099-12-31",
                    });
                }
                E::ElderlyCareRecorded {
                    action_id,
                    member_id,
                    service,
                    provider: provider.into(),
                    from,
                    to,
                }
            }
            C::RecordAssistance {
                action_id,
                area,
                amount_fen,
                provided_on,
                description,
            } => {
                check("provided_on", provided_on)?;
                E::AssistanceRecorded {
                    action_id,
                    area,
                    amount_fen,
                    provided_on,
                    description: description.into(),
                }
            }
            C::AddNote { action_id, text } => E::NoteAdded {
                action_id,
                text: text.into(),
            },
            C::VoidAction {
                action_id,
                voided_action_id,
                reason,
            } => {
                let record = self
                    .actions
                    .get(&voided_action_id)
                    .ok_or(CaseError::UnknownAction)?;
                if record.voided_by.is_some() {
                    return Err(CaseError::AlreadyVoided);
                }
                if !record.event_type.voidable() {
                    return Err(CaseError::NotVoidable);
                }
                if record.event_type == ActionKind::ContactAssigned
                    && !self.is_current_assignment(voided_action_id)
                {
                    return Err(CaseError::NotVoidable);
                }
                self.check_insurance_void(voided_action_id)?;
                E::ActionVoided {
                    action_id,
                    voided_action_id,
                    reason: reason.into(),
                }
            }
            C::Transfer {
                action_id,
                village_code,
                transferred_on,
                reason,
            } => {
                let from_village_code =
                    self.village_code.clone().ok_or(CaseError::NotRegistered)?;
                if from_village_code == village_code {
                    return Err(CaseError::SameVillage);
                }
                check("transferred_on", transferred_on)?;
                E::FamilyTransferred {
                    action_id,
                    from_village_code,
                    village_code,
                    transferred_on,
                    reason: reason.into(),
                }
            }
            C::CloseCase {
                action_id,
                on,
                reason,
            } => {
                check("on", on)?;
                E::CaseClosed {
                    action_id,
                    on,
                    reason: reason.into(),
                }
            }
            C::ReopenCase {
                action_id,
                on,
                reason,
            } => {
                self.check_after_closing(on, today)?;
                E::CaseReopened {
                    action_id,
                    on,
                    reason: reason.into(),
                }
            }
            C::EnrolInsurance {
                action_id,
                enrolment,
            } => self.decide_enrolment(action_id, enrolment, today)?,
            C::WithdrawInsurance {
                action_id,
                enrolment_id,
                on,
                reason,
            } => self.decide_withdrawal(action_id, enrolment_id, on, reason, today)?,
            C::FileInsuranceClaim { action_id, claim } => {
                self.decide_claim(action_id, claim, today)?
            }
            C::DecideInsuranceClaim {
                action_id,
                claim_id,
                decided_on,
                outcome,
            } => self.decide_claim_decision(action_id, claim_id, decided_on, outcome, today)?,
            C::RecordActivityAttendance {
                action_id,
                activity_id,
                kind,
                title,
                held_on,
            } => {
                if self.attends(activity_id) {
                    return Err(CaseError::AlreadyAttending);
                }
                check("held_on", held_on)?;
                E::ActivityAttended {
                    action_id,
                    activity_id,
                    kind,
                    title: title.into(),
                    held_on,
                }
            }
            C::RemoveActivityAttendance {
                action_id,
                activity_id,
                reason,
            } => {
                if !self.attends(activity_id) {
                    return Err(CaseError::NotAttending);
                }
                E::ActivityAttendanceRemoved {
                    action_id,
                    activity_id,
                    reason: reason.into(),
                }
            }
            C::EraseFamily {
                action_id,
                on,
                reason,
            } => {
                self.check_after_closing(on, today)?;
                E::FamilyErased {
                    action_id,
                    on,
                    reason,
                }
            }
        };
        Ok(event)
    }

    /// Folds one event into the state. Never fails: events are facts.
    pub fn evolve(&mut self, event: FamilyEvent) {
        use FamilyEvent as E;

        self.actions.insert(
            event.action_id(),
            ActionRecord {
                event_type: event.kind(),
                voided_by: None,
            },
        );
        match event {
            E::FamilyRegistered {
                category,
                village_code,
                address,
                registered_on,
                members,
                ..
            } => {
                self.registered = true;
                self.status = CaseStatus::Open;
                self.category = Some(category);
                self.village_code = Some(village_code);
                self.address = address;
                self.registered_on = Some(registered_on);
                self.registered_members = members;
                self.closed_on = None;
                self.refold_members();
            }
            update @ E::MemberStatusUpdated { .. } => {
                self.status_updates.push(update);
                self.refold_members();
            }
            E::ContactAssigned {
                action_id,
                role,
                person,
                assigned_on,
            } => {
                *self.contacts.slot(role) = Some(AssignedContact {
                    action_id,
                    person,
                    assigned_on,
                });
            }
            E::ContactReleased { role, .. } => {
                *self.contacts.slot(role) = None;
            }
            E::VisitRecorded {
                action_id,
                role,
                contact_id,
                mode,
                visited_on,
                findings,
                needs,
            } => self.visits.push(Visit {
                action_id,
                role,
                contact_id,
                mode,
                visited_on,
                findings,
                needs,
            }),
            E::EmergencyContactSet {
                action_id,
                emergency_contact_id,
                name,
                relation,
                phone,
                priority,
            } => self.emergency_contacts.push(EmergencyContact {
                id: emergency_contact_id,
                action_id,
                name,
                relation,
                phone,
                priority,
            }),
            E::EmergencyContactRemoved {
                emergency_contact_id,
                ..
            } => self
                .emergency_contacts
                .retain(|c| c.id != emergency_contact_id),
            E::EmergencyRecorded {
                action_id,
                occurred_at,
                occurred_on,
                description,
                responder,
                outcome,
            } => self.emergencies.push(Emergency {
                action_id,
                occurred_at,
                occurred_on,
                description,
                responder,
                outcome,
            }),
            E::ElderlyCareRecorded {
                action_id,
                member_id,
                service,
                provider,
                from,
                to,
            } => self.elderly_care.push(ElderlyCare {
                action_id,
                member_id,
                service,
                provider,
                from,
                to,
            }),
            E::AssistanceRecorded {
                action_id,
                area,
                amount_fen,
                provided_on,
                description,
            } => self.assistance.push(Assistance {
                action_id,
                area,
                amount_fen,
                provided_on,
                description,
            }),
            E::NoteAdded { action_id, text } => self.notes.push(Note { action_id, text }),
            E::ActionVoided {
                action_id,
                voided_action_id,
                ..
            } => self.void(voided_action_id, action_id),
            E::FamilyTransferred {
                village_code,
                transferred_on,
                ..
            } => {
                self.village_code = Some(village_code);
                self.contacts = Contacts::default();
                self.transferred_on = Some(transferred_on);
            }
            E::CaseClosed { on, .. } => {
                self.status = CaseStatus::Closed;
                self.closed_on = Some(on);
            }
            E::CaseReopened { .. } => {
                self.status = CaseStatus::Open;
                self.closed_on = None;
            }
            insurance @ (E::InsuranceEnrolled { .. }
            | E::InsuranceWithdrawn { .. }
            | E::InsuranceClaimFiled { .. }
            | E::InsuranceClaimDecided { .. }) => self.insurance.apply(&insurance),
            E::ActivityAttended {
                action_id,
                activity_id,
                kind,
                title,
                held_on,
            } => self.activities.push(AttendedActivity {
                action_id,
                activity_id,
                kind,
                title,
                held_on,
            }),
            E::ActivityAttendanceRemoved { activity_id, .. } => {
                self.activities.retain(|a| a.activity_id != activity_id)
            }
            E::FamilyErased { on, .. } => self.erased_on = Some(on),
        }
    }

    /// Whether the family is recorded as attending the activity.
    pub fn attends(&self, activity_id: Uuid) -> bool {
        self.activities.iter().any(|a| a.activity_id == activity_id)
    }

    /// The member with that id, as they stand now.
    pub fn member(&self, member_id: Uuid) -> Option<&MemberState> {
        self.members.iter().find(|m| m.member.id == member_id)
    }

    /// Whether the action with that id exists and has been voided.
    pub fn is_voided(&self, action_id: Uuid) -> bool {
        self.actions
            .get(&action_id)
            .is_some_and(|r| r.voided_by.is_some())
    }

    fn is_current_assignment(&self, action_id: Uuid) -> bool {
        [Role::Village, Role::Township]
            .into_iter()
            .filter_map(|role| self.contacts.get(role))
            .any(|c| c.action_id == action_id)
    }

    /// `date` must lie between the registration date and `today`.
    pub(crate) fn check_date(
        &self,
        field: &'static str,
        date: NaiveDate,
        today: NaiveDate,
    ) -> Result<(), CaseError> {
        if self.registered_on.is_some_and(|r| date < r) {
            return Err(CaseError::BeforeRegistration { field });
        }
        if date > today {
            return Err(CaseError::InFuture { field });
        }
        Ok(())
    }

    /// `on` (a reopening's or an erasure's day) is a valid day of the case
    /// and not before the closing.
    fn check_after_closing(&self, on: NaiveDate, today: NaiveDate) -> Result<(), CaseError> {
        self.check_date("on", on, today)?;
        if self.closed_on.is_some_and(|closed| on < closed) {
            return Err(CaseError::BeforeClosing { field: "on" });
        }
        Ok(())
    }

    /// Marks `voided` as voided by `by` and takes it out of whatever list
    /// holds it.
    fn void(&mut self, voided: Uuid, by: Uuid) {
        let Some(record) = self.actions.get_mut(&voided) else {
            return;
        };
        record.voided_by = Some(by);
        use ActionKind as K;
        match record.event_type {
            K::VisitRecorded => self.visits.retain(|v| v.action_id != voided),
            K::EmergencyRecorded => self.emergencies.retain(|e| e.action_id != voided),
            K::ElderlyCareRecorded => self.elderly_care.retain(|e| e.action_id != voided),
            K::AssistanceRecorded => self.assistance.retain(|a| a.action_id != voided),
            K::NoteAdded => self.notes.retain(|n| n.action_id != voided),
            K::EmergencyContactSet => self.emergency_contacts.retain(|c| c.action_id != voided),
            K::ContactAssigned => {
                for role in [Role::Village, Role::Township] {
                    let slot = self.contacts.slot(role);
                    if slot.as_ref().is_some_and(|c| c.action_id == voided) {
                        *slot = None;
                    }
                }
            }
            K::MemberStatusUpdated => self.refold_members(),
            K::InsuranceEnrolled
            | K::InsuranceWithdrawn
            | K::InsuranceClaimFiled
            | K::InsuranceClaimDecided => self.insurance.void(voided),
            // Not voidable (`ActionKind::voidable`): `decide` refuses a
            // void of these, so no stored void refers to one.
            K::FamilyRegistered
            | K::ContactReleased
            | K::EmergencyContactRemoved
            | K::ActionVoided
            | K::FamilyTransferred
            | K::CaseClosed
            | K::CaseReopened
            | K::ActivityAttended
            | K::ActivityAttendanceRemoved
            | K::FamilyErased => {}
        }
    }

    /// Rebuilds `members` and `deaths` from the registration and every
    /// status update that is in force, in the order they were recorded.
    fn refold_members(&mut self) {
        let mut members: Vec<MemberState> = self
            .registered_members
            .iter()
            .cloned()
            .map(|member| MemberState {
                member,
                deceased_on: None,
            })
            .collect();
        let mut deaths = Vec::new();
        for update in &self.status_updates {
            let FamilyEvent::MemberStatusUpdated {
                action_id,
                member_id,
                deceased_on,
                living_alone,
                self_care,
                phone,
                ..
            } = update
            else {
                continue;
            };
            if self.is_voided(*action_id) {
                continue;
            }
            let Some(m) = members.iter_mut().find(|m| m.member.id == *member_id) else {
                continue;
            };
            if let Some(on) = deceased_on {
                m.deceased_on = Some(*on);
                deaths.push(Death {
                    action_id: *action_id,
                    member_id: *member_id,
                    on: *on,
                });
            }
            if let Some(v) = living_alone {
                m.member.living_alone = *v;
            }
            if let Some(v) = self_care {
                m.member.self_care = *v;
            }
            if let Some(v) = phone {
                m.member.phone = Some(v.clone());
            }
        }
        self.members = members;
        self.deaths = deaths;
    }
}

/// What a registered member must be, whatever else the case holds: born
/// on a plausible day at least [`MIN_PARENT_AGE_YEARS`] years before the
/// registration, and, with an ID number, the holder that number describes
/// (its birth date and sex). On failure: the field (`birth_date` or
/// `id_number`) and why.
pub fn check_member(
    member: &Member,
    registered_on: NaiveDate,
) -> Result<(), (&'static str, &'static str)> {
    if !plausible_day(member.birth_date) {
        return Err(("birth_date", "must be a day from 1900-01-01 on"));
    }
    if crate::policy::age_on(member.birth_date, registered_on) < MIN_PARENT_AGE_YEARS as i32 {
        return Err((
            "birth_date",
            "must be at least 16 years before the registration date",
        ));
    }
    if let Some(id) = &member.id_number {
        id.check_holder(member.birth_date, member.sex)
            .map_err(|e| ("id_number", e.0))?;
    }
    Ok(())
}

fn command_action_id(command: &FamilyCommand) -> Uuid {
    use FamilyCommand as C;
    match command {
        C::RegisterFamily { action_id, .. }
        | C::UpdateMemberStatus { action_id, .. }
        | C::AssignContact { action_id, .. }
        | C::ReleaseContact { action_id, .. }
        | C::RecordVisit { action_id, .. }
        | C::SetEmergencyContact { action_id, .. }
        | C::RemoveEmergencyContact { action_id, .. }
        | C::RecordEmergency { action_id, .. }
        | C::RecordElderlyCare { action_id, .. }
        | C::RecordAssistance { action_id, .. }
        | C::AddNote { action_id, .. }
        | C::VoidAction { action_id, .. }
        | C::Transfer { action_id, .. }
        | C::CloseCase { action_id, .. }
        | C::ReopenCase { action_id, .. }
        | C::EnrolInsurance { action_id, .. }
        | C::WithdrawInsurance { action_id, .. }
        | C::FileInsuranceClaim { action_id, .. }
        | C::DecideInsuranceClaim { action_id, .. }
        | C::RecordActivityAttendance { action_id, .. }
        | C::RemoveActivityAttendance { action_id, .. }
        | C::EraseFamily { action_id, .. } => *action_id,
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
