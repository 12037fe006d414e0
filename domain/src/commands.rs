//! Commands: what a caseworker asks to record, in the imperative. Fields are
//! already-validated value types (the API's request bodies parse each field
//! into its value type and build the command, collecting every invalid field
//! for one answer); the aggregate checks them against the case's state.
//!
//! Every command carries the `action_id` the resulting event will carry; the
//! caller generates it so that it can answer with it.

use chrono::{DateTime, FixedOffset, NaiveDate};
use uuid::Uuid;

use crate::activity::ActivityKind;
use crate::events::{ContactPerson, Member};
use crate::insurance::{ClaimOutcome, ClaimRequest, EnrolmentRequest};
use crate::values::*;

#[derive(Debug, Clone, PartialEq)]
pub enum FamilyCommand {
    RegisterFamily {
        action_id: Uuid,
        category: Category,
        village_code: VillageCode,
        address: Text,
        registered_on: NaiveDate,
        members: Vec<Member>,
    },
    UpdateMemberStatus {
        action_id: Uuid,
        member_id: Uuid,
        effective_on: NaiveDate,
        deceased_on: Option<NaiveDate>,
        living_alone: Option<bool>,
        self_care: Option<SelfCare>,
        phone: Option<Phone>,
    },
    AssignContact {
        action_id: Uuid,
        role: Role,
        person: ContactPerson,
        assigned_on: NaiveDate,
    },
    ReleaseContact {
        action_id: Uuid,
        role: Role,
        released_on: NaiveDate,
        reason: Text,
    },
    RecordVisit {
        action_id: Uuid,
        role: Role,
        mode: VisitMode,
        visited_on: NaiveDate,
        findings: Text,
        needs: Vec<String>,
    },
    SetEmergencyContact {
        action_id: Uuid,
        name: Text,
        relation: Text,
        phone: Phone,
        priority: u8,
    },
    RemoveEmergencyContact {
        action_id: Uuid,
        emergency_contact_id: Uuid,
        reason: Text,
    },
    RecordEmergency {
        action_id: Uuid,
        occurred_at: DateTime<FixedOffset>,
        description: Text,
        responder: Text,
        outcome: Text,
    },
    RecordElderlyCare {
        action_id: Uuid,
        member_id: Uuid,
        service: ElderlyCareService,
        provider: Text,
        from: NaiveDate,
        to: Option<NaiveDate>,
    },
    RecordAssistance {
        action_id: Uuid,
        area: AssistanceArea,
        amount_fen: Option<AmountFen>,
        provided_on: NaiveDate,
        description: Text,
    },
    AddNote {
        action_id: Uuid,
        text: Text,
    },
    VoidAction {
        action_id: Uuid,
        voided_action_id: Uuid,
        reason: Text,
    },
    Transfer {
        action_id: Uuid,
        village_code: VillageCode,
        transferred_on: NaiveDate,
        reason: Text,
    },
    CloseCase {
        action_id: Uuid,
        on: NaiveDate,
        reason: Text,
    },
    ReopenCase {
        action_id: Uuid,
        on: NaiveDate,
        reason: Text,
    },
    /// Enrol a member in the care insurance (`crate::insurance`).
    EnrolInsurance {
        action_id: Uuid,
        enrolment: EnrolmentRequest,
    },
    WithdrawInsurance {
        action_id: Uuid,
        enrolment_id: Uuid,
        on: NaiveDate,
        reason: Text,
    },
    FileInsuranceClaim {
        action_id: Uuid,
        claim: ClaimRequest,
    },
    DecideInsuranceClaim {
        action_id: Uuid,
        claim_id: Uuid,
        decided_on: NaiveDate,
        outcome: ClaimOutcome,
    },
    /// The family's side of an activity's attendance: sent by the activity
    /// path (`crate::activity`), never by a family route.
    RecordActivityAttendance {
        action_id: Uuid,
        activity_id: Uuid,
        kind: ActivityKind,
        title: Text,
        held_on: NaiveDate,
    },
    RemoveActivityAttendance {
        action_id: Uuid,
        activity_id: Uuid,
        reason: Text,
    },
    /// Erase the family's personal data (admins; the case must be closed).
    EraseFamily {
        action_id: Uuid,
        on: NaiveDate,
        reason: crate::events::ErasureReason,
    },
}
