//! Events: what happened to a case, in the past tense. Events are forever:
//! a stored event is never rewritten. Each carries an explicit version
//! ([`FamilyEvent::event_version`]); a change of shape gets a new version and
//! an upcaster in `infra`, never an edit of this file that breaks old JSON.
//!
//! Every event carries the `action_id` of the care action it records, so a
//! later `ActionVoided` can refer to it, and the date the action happened as
//! the caseworker reports it. Who recorded it, and when (server clock), is in
//! the event metadata, not here.

use chrono::{DateTime, FixedOffset, NaiveDate};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::activity::ActivityKind;
use crate::insurance::{ClaimCause, ClaimOutcome, Consent, PolicyYear, PremiumPayer};
use crate::values::*;

/// A family member (a parent) as registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: Uuid,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub id_number: Option<IdNumber>,
    pub phone: Option<Phone>,
    pub living_alone: bool,
    pub self_care: SelfCare,
}

/// The person holding one of the two contact posts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactPerson {
    pub id: Uuid,
    pub name: String,
    pub phone: Phone,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FamilyEvent {
    FamilyRegistered {
        action_id: Uuid,
        category: Category,
        village_code: VillageCode,
        address: String,
        registered_on: NaiveDate,
        members: Vec<Member>,
    },
    MemberStatusUpdated {
        action_id: Uuid,
        member_id: Uuid,
        effective_on: NaiveDate,
        deceased_on: Option<NaiveDate>,
        living_alone: Option<bool>,
        self_care: Option<SelfCare>,
        phone: Option<Phone>,
    },
    ContactAssigned {
        action_id: Uuid,
        role: Role,
        person: ContactPerson,
        assigned_on: NaiveDate,
    },
    ContactReleased {
        action_id: Uuid,
        role: Role,
        /// The contact who held the post until now.
        contact_id: Uuid,
        released_on: NaiveDate,
        reason: String,
    },
    VisitRecorded {
        action_id: Uuid,
        role: Role,
        /// The contact assigned to `role` when the visit was recorded.
        contact_id: Uuid,
        mode: VisitMode,
        visited_on: NaiveDate,
        findings: String,
        needs: Vec<String>,
    },
    EmergencyContactSet {
        action_id: Uuid,
        emergency_contact_id: Uuid,
        name: String,
        relation: String,
        phone: Phone,
        priority: u8,
    },
    EmergencyContactRemoved {
        action_id: Uuid,
        emergency_contact_id: Uuid,
        reason: String,
    },
    EmergencyRecorded {
        action_id: Uuid,
        occurred_at: DateTime<FixedOffset>,
        /// The local calendar day of `occurred_at`.
        occurred_on: NaiveDate,
        description: String,
        responder: String,
        outcome: String,
    },
    ElderlyCareRecorded {
        action_id: Uuid,
        member_id: Uuid,
        service: ElderlyCareService,
        provider: String,
        from: NaiveDate,
        to: Option<NaiveDate>,
    },
    AssistanceRecorded {
        action_id: Uuid,
        area: AssistanceArea,
        amount_fen: Option<AmountFen>,
        provided_on: NaiveDate,
        description: String,
    },
    NoteAdded {
        action_id: Uuid,
        text: String,
    },
    ActionVoided {
        action_id: Uuid,
        voided_action_id: Uuid,
        reason: String,
    },
    FamilyTransferred {
        action_id: Uuid,
        from_village_code: VillageCode,
        village_code: VillageCode,
        transferred_on: NaiveDate,
        reason: String,
    },
    CaseClosed {
        action_id: Uuid,
        on: NaiveDate,
        reason: String,
    },
    CaseReopened {
        action_id: Uuid,
        on: NaiveDate,
        reason: String,
    },
    /// A member enrolled in the care insurance for a policy year, with the
    /// family's consent (`crate::insurance`). The `action_id` is the
    /// enrolment's id.
    InsuranceEnrolled {
        action_id: Uuid,
        member_id: Uuid,
        product: String,
        policy_year: PolicyYear,
        premium_fen: AmountFen,
        paid_by: PremiumPayer,
        consent: Consent,
    },
    /// An enrolment withdrawn from `on`: the cover ends that day.
    InsuranceWithdrawn {
        action_id: Uuid,
        enrolment_id: Uuid,
        on: NaiveDate,
        reason: String,
    },
    /// A claim filed on an enrolment; the `action_id` is the claim's id.
    InsuranceClaimFiled {
        action_id: Uuid,
        enrolment_id: Uuid,
        /// The enrolment's member, copied so views need not look it up.
        member_id: Uuid,
        cause: ClaimCause,
        occurred_on: NaiveDate,
        filed_on: NaiveDate,
        claimed_fen: AmountFen,
    },
    /// A claim paid or rejected.
    InsuranceClaimDecided {
        action_id: Uuid,
        claim_id: Uuid,
        decided_on: NaiveDate,
        #[serde(flatten)]
        outcome: ClaimOutcome,
    },
    /// The family attended a group activity. Recorded together with the
    /// activity's own `AttendanceRecorded` (`crate::activity`), in one
    /// transaction (decisions.md, record 22); it carries what the case file
    /// shows, so the case needs nothing from the activity's stream.
    ActivityAttended {
        action_id: Uuid,
        activity_id: Uuid,
        kind: ActivityKind,
        title: String,
        held_on: NaiveDate,
    },
    /// An attendance recorded by mistake, taken back through the activity
    /// (with the activity's `AttendanceRemoved`, in one transaction).
    ActivityAttendanceRemoved {
        action_id: Uuid,
        activity_id: Uuid,
        reason: String,
    },
    /// The family's personal data was erased (crypto-shredding,
    /// docs/privacy.md): its persons' keys are deleted, so every encrypted
    /// field of every earlier event reads as erased from now on. It carries
    /// ids, a day and a reason code only, so it stays readable; nothing
    /// more may be recorded for the family.
    FamilyErased {
        action_id: Uuid,
        on: NaiveDate,
        reason: ErasureReason,
    },
}

/// Why a family's personal data was erased: the grounds PIPL art. 47 gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    /// The purpose is achieved or can no longer be (the case ended for good).
    PurposeEnded,
    /// The family withdrew its consent.
    ConsentWithdrawn,
    /// The retention period has passed.
    RetentionExpired,
}

impl ErasureReason {
    pub const ALL: [ErasureReason; 3] = [
        ErasureReason::PurposeEnded,
        ErasureReason::ConsentWithdrawn,
        ErasureReason::RetentionExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErasureReason::PurposeEnded => "purpose_ended",
            ErasureReason::ConsentWithdrawn => "consent_withdrawn",
            ErasureReason::RetentionExpired => "retention_expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl FamilyEvent {
    /// The id of the care action this event records.
    pub fn action_id(&self) -> Uuid {
        use FamilyEvent::*;
        match self {
            FamilyRegistered { action_id, .. }
            | MemberStatusUpdated { action_id, .. }
            | ContactAssigned { action_id, .. }
            | ContactReleased { action_id, .. }
            | VisitRecorded { action_id, .. }
            | EmergencyContactSet { action_id, .. }
            | EmergencyContactRemoved { action_id, .. }
            | EmergencyRecorded { action_id, .. }
            | ElderlyCareRecorded { action_id, .. }
            | AssistanceRecorded { action_id, .. }
            | NoteAdded { action_id, .. }
            | ActionVoided { action_id, .. }
            | FamilyTransferred { action_id, .. }
            | CaseClosed { action_id, .. }
            | CaseReopened { action_id, .. }
            | InsuranceEnrolled { action_id, .. }
            | InsuranceWithdrawn { action_id, .. }
            | InsuranceClaimFiled { action_id, .. }
            | InsuranceClaimDecided { action_id, .. }
            | ActivityAttended { action_id, .. }
            | ActivityAttendanceRemoved { action_id, .. }
            | FamilyErased { action_id, .. } => *action_id,
        }
    }

    /// What kind of care action this event records.
    pub fn kind(&self) -> ActionKind {
        use FamilyEvent::*;
        match self {
            FamilyRegistered { .. } => ActionKind::FamilyRegistered,
            MemberStatusUpdated { .. } => ActionKind::MemberStatusUpdated,
            ContactAssigned { .. } => ActionKind::ContactAssigned,
            ContactReleased { .. } => ActionKind::ContactReleased,
            VisitRecorded { .. } => ActionKind::VisitRecorded,
            EmergencyContactSet { .. } => ActionKind::EmergencyContactSet,
            EmergencyContactRemoved { .. } => ActionKind::EmergencyContactRemoved,
            EmergencyRecorded { .. } => ActionKind::EmergencyRecorded,
            ElderlyCareRecorded { .. } => ActionKind::ElderlyCareRecorded,
            AssistanceRecorded { .. } => ActionKind::AssistanceRecorded,
            NoteAdded { .. } => ActionKind::NoteAdded,
            ActionVoided { .. } => ActionKind::ActionVoided,
            FamilyTransferred { .. } => ActionKind::FamilyTransferred,
            CaseClosed { .. } => ActionKind::CaseClosed,
            CaseReopened { .. } => ActionKind::CaseReopened,
            InsuranceEnrolled { .. } => ActionKind::InsuranceEnrolled,
            InsuranceWithdrawn { .. } => ActionKind::InsuranceWithdrawn,
            InsuranceClaimFiled { .. } => ActionKind::InsuranceClaimFiled,
            InsuranceClaimDecided { .. } => ActionKind::InsuranceClaimDecided,
            ActivityAttended { .. } => ActionKind::ActivityAttended,
            ActivityAttendanceRemoved { .. } => ActionKind::ActivityAttendanceRemoved,
            FamilyErased { .. } => ActionKind::FamilyErased,
        }
    }

    /// The event's name as stored in the `event_type` column.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// The kinds of care action, one per [`FamilyEvent`] variant. Every
/// question about a kind (its stored name, whether it can be voided) is an
/// exhaustive `match` here, so a new care action does not compile until each
/// is answered. Serialized as the stored event name (`"VisitRecorded"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ActionKind {
    FamilyRegistered,
    MemberStatusUpdated,
    ContactAssigned,
    ContactReleased,
    VisitRecorded,
    EmergencyContactSet,
    EmergencyContactRemoved,
    EmergencyRecorded,
    ElderlyCareRecorded,
    AssistanceRecorded,
    NoteAdded,
    ActionVoided,
    FamilyTransferred,
    CaseClosed,
    CaseReopened,
    InsuranceEnrolled,
    InsuranceWithdrawn,
    InsuranceClaimFiled,
    InsuranceClaimDecided,
    ActivityAttended,
    ActivityAttendanceRemoved,
    FamilyErased,
}

impl ActionKind {
    pub const ALL: &'static [ActionKind] = &[
        ActionKind::FamilyRegistered,
        ActionKind::MemberStatusUpdated,
        ActionKind::ContactAssigned,
        ActionKind::ContactReleased,
        ActionKind::VisitRecorded,
        ActionKind::EmergencyContactSet,
        ActionKind::EmergencyContactRemoved,
        ActionKind::EmergencyRecorded,
        ActionKind::ElderlyCareRecorded,
        ActionKind::AssistanceRecorded,
        ActionKind::NoteAdded,
        ActionKind::ActionVoided,
        ActionKind::FamilyTransferred,
        ActionKind::CaseClosed,
        ActionKind::CaseReopened,
        ActionKind::InsuranceEnrolled,
        ActionKind::InsuranceWithdrawn,
        ActionKind::InsuranceClaimFiled,
        ActionKind::InsuranceClaimDecided,
        ActionKind::ActivityAttended,
        ActionKind::ActivityAttendanceRemoved,
        ActionKind::FamilyErased,
    ];

    /// The name stored in the `event_type` column.
    pub fn name(self) -> &'static str {
        use ActionKind::*;
        match self {
            FamilyRegistered => "FamilyRegistered",
            MemberStatusUpdated => "MemberStatusUpdated",
            ContactAssigned => "ContactAssigned",
            ContactReleased => "ContactReleased",
            VisitRecorded => "VisitRecorded",
            EmergencyContactSet => "EmergencyContactSet",
            EmergencyContactRemoved => "EmergencyContactRemoved",
            EmergencyRecorded => "EmergencyRecorded",
            ElderlyCareRecorded => "ElderlyCareRecorded",
            AssistanceRecorded => "AssistanceRecorded",
            NoteAdded => "NoteAdded",
            ActionVoided => "ActionVoided",
            FamilyTransferred => "FamilyTransferred",
            CaseClosed => "CaseClosed",
            CaseReopened => "CaseReopened",
            InsuranceEnrolled => "InsuranceEnrolled",
            InsuranceWithdrawn => "InsuranceWithdrawn",
            InsuranceClaimFiled => "InsuranceClaimFiled",
            InsuranceClaimDecided => "InsuranceClaimDecided",
            ActivityAttended => "ActivityAttended",
            ActivityAttendanceRemoved => "ActivityAttendanceRemoved",
            FamilyErased => "FamilyErased",
        }
    }

    /// The kind stored under `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Whether a `VoidAction` may refer to an action of this kind. Kinds
    /// that change the case's standing (registration, release, transfer,
    /// close, reopen, a removal, a void) are undone by recording the
    /// opposite action instead. Every insurance step is voidable (what a
    /// void of each means: `crate::insurance`); an activity attendance is
    /// taken back through its activity, which records both sides.
    pub fn voidable(self) -> bool {
        use ActionKind::*;
        match self {
            VisitRecorded
            | EmergencyRecorded
            | ElderlyCareRecorded
            | AssistanceRecorded
            | NoteAdded
            | EmergencyContactSet
            | ContactAssigned
            | MemberStatusUpdated
            | InsuranceEnrolled
            | InsuranceWithdrawn
            | InsuranceClaimFiled
            | InsuranceClaimDecided => true,
            FamilyRegistered
            | ContactReleased
            | EmergencyContactRemoved
            | ActionVoided
            | FamilyTransferred
            | CaseClosed
            | CaseReopened
            | ActivityAttended
            | ActivityAttendanceRemoved
            | FamilyErased => false,
        }
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The current version of every event shape. Bump it for the one event
/// whose shape changes and add an upcaster for the old version.
pub const EVENT_VERSION: &str = "1";

impl DomainEvent for FamilyEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_kinds_round_trip_their_stored_names() {
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::parse(kind.name()), Some(*kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.name())
            );
        }
        assert_eq!(ActionKind::parse("Nonsense"), None);
    }
}
