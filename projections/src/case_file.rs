//! The case file read model: one row per family holding the folded case
//! state plus the columns the case list filters on. The response a user sees
//! ([`CaseFileView`]) is computed from that state on read, because key-person
//! status and due dates depend on the day asked.

use chrono::NaiveDate;
use nuanxin_domain::aggregate::{CaseStatus, FamilyCase};
use nuanxin_domain::policy::{self, KeyReason, VisitPolicy};
use nuanxin_domain::{
    AssistanceArea, Category, ElderlyCareService, Role, SelfCare, Sex, VisitMode,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::activities::ActivitiesView;
use crate::insurance::InsuranceView;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Sex)]
    pub sex: String,
    pub birth_date: NaiveDate,
    /// The ID number with all but the first 6 and last 4 characters hidden.
    #[schema(example = "450305********123X")]
    pub id_number_masked: Option<String>,
    pub phone: Option<String>,
    pub living_alone: bool,
    #[schema(value_type = SelfCare)]
    pub self_care: String,
    pub deceased_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonView {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactView {
    pub person: PersonView,
    pub assigned_on: NaiveDate,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactsView {
    pub village: Option<ContactView>,
    pub township: Option<ContactView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmergencyContactView {
    pub id: Uuid,
    pub name: String,
    pub relation: String,
    pub phone: String,
    #[schema(minimum = 1, maximum = 9)]
    pub priority: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleVisitsView {
    pub last_on: Option<NaiveDate>,
    pub last_home_on: Option<NaiveDate>,
    /// `null` when no contact holds the role or the case is closed.
    pub next_due_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VisitsView {
    pub village: RoleVisitsView,
    pub township: RoleVisitsView,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ElderlyCareView {
    pub action_id: Uuid,
    pub member_id: Uuid,
    #[schema(value_type = ElderlyCareService)]
    pub service: String,
    pub provider: String,
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssistanceView {
    pub action_id: Uuid,
    #[schema(value_type = AssistanceArea)]
    pub area: String,
    pub amount_fen: Option<i64>,
    pub provided_on: NaiveDate,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmergencyView {
    pub action_id: Uuid,
    pub occurred_at: chrono::DateTime<chrono::FixedOffset>,
    pub description: String,
    pub responder: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NoteView {
    pub action_id: Uuid,
    pub text: String,
}

/// The current case file of one family, as `GET /api/v1/families/{id}` answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CaseFileView {
    pub id: Uuid,
    pub version: u64,
    #[schema(value_type = CaseStatus)]
    pub status: String,
    #[schema(value_type = Category)]
    pub category: String,
    pub village_code: String,
    pub address: String,
    pub registered_on: NaiveDate,
    pub closed_on: Option<NaiveDate>,
    pub members: Vec<MemberView>,
    pub contacts: ContactsView,
    pub emergency_contacts: Vec<EmergencyContactView>,
    pub key_person: bool,
    #[schema(value_type = Vec<KeyReason>)]
    pub key_reasons: Vec<String>,
    pub visits: VisitsView,
    pub emergencies: Vec<EmergencyView>,
    pub elderly_care: Vec<ElderlyCareView>,
    pub assistance: Vec<AssistanceView>,
    pub notes: Vec<NoteView>,
    /// Care insurance: enrolments (with the cover in force on the day) and
    /// claims.
    pub insurance: InsuranceView,
    /// Group activities attended: the last one and how many.
    pub activities: ActivitiesView,
    /// The day the family's personal data was erased (docs/privacy.md):
    /// names, ID numbers, phones, the address and free text read
    /// `"[已删除]"`. Absent while it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_on: Option<NaiveDate>,
}

fn key_reason_name(r: &KeyReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn role_visits(
    case: &FamilyCase,
    role: Role,
    on: NaiveDate,
    policy: &VisitPolicy,
) -> RoleVisitsView {
    let of_role = case.visits.iter().filter(|v| v.role == role);
    let last_on = of_role.clone().map(|v| v.visited_on).max();
    let last_home_on = of_role
        .filter(|v| v.mode == VisitMode::Home)
        .map(|v| v.visited_on)
        .max();
    RoleVisitsView {
        last_on,
        last_home_on,
        next_due_on: policy::schedule(case, role, on, policy).map(|s| s.next_due_on),
    }
}

impl CaseFileView {
    /// Builds the view of `case` as seen on day `on`. `None` if the case is
    /// not registered.
    pub fn build(
        id: Uuid,
        version: u64,
        case: &FamilyCase,
        on: NaiveDate,
        policy: &VisitPolicy,
    ) -> Option<Self> {
        if !case.registered {
            return None;
        }
        let contact = |role: Role| {
            case.contacts.get(role).map(|c| ContactView {
                person: PersonView {
                    id: c.person.id,
                    name: c.person.name.clone(),
                    phone: c.person.phone.to_string(),
                },
                assigned_on: c.assigned_on,
            })
        };
        let key_reasons: Vec<String> = policy::key_reasons(case, on, policy)
            .iter()
            .map(key_reason_name)
            .collect();
        Some(Self {
            id,
            version,
            status: match case.status {
                CaseStatus::Open => "open",
                CaseStatus::Closed => "closed",
            }
            .into(),
            category: case.category.map(|c| c.as_str()).unwrap_or_default().into(),
            village_code: case
                .village_code
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            address: case.address.clone(),
            registered_on: case.registered_on.unwrap_or_default(),
            closed_on: case.closed_on,
            erased_on: case.erased_on,
            members: case
                .members
                .iter()
                .map(|m| MemberView {
                    id: m.member.id,
                    name: m.member.name.clone(),
                    sex: m.member.sex.as_str().into(),
                    birth_date: m.member.birth_date,
                    id_number_masked: m.member.id_number.as_ref().map(|n| n.masked()),
                    phone: m.member.phone.as_ref().map(|p| p.to_string()),
                    living_alone: m.member.living_alone,
                    self_care: m.member.self_care.as_str().into(),
                    deceased_on: m.deceased_on,
                })
                .collect(),
            contacts: ContactsView {
                village: contact(Role::Village),
                township: contact(Role::Township),
            },
            emergency_contacts: case
                .emergency_contacts
                .iter()
                .map(|e| EmergencyContactView {
                    id: e.id,
                    name: e.name.clone(),
                    relation: e.relation.clone(),
                    phone: e.phone.to_string(),
                    priority: e.priority,
                })
                .collect(),
            key_person: !key_reasons.is_empty(),
            key_reasons,
            visits: VisitsView {
                village: role_visits(case, Role::Village, on, policy),
                township: role_visits(case, Role::Township, on, policy),
            },
            emergencies: case
                .emergencies
                .iter()
                .map(|e| EmergencyView {
                    action_id: e.action_id,
                    occurred_at: e.occurred_at,
                    description: e.description.clone(),
                    responder: e.responder.clone(),
                    outcome: e.outcome.clone(),
                })
                .collect(),
            elderly_care: case
                .elderly_care
                .iter()
                .map(|c| ElderlyCareView {
                    action_id: c.action_id,
                    member_id: c.member_id,
                    service: c.service.as_str().into(),
                    provider: c.provider.clone(),
                    from: c.from,
                    to: c.to,
                })
                .collect(),
            assistance: case
                .assistance
                .iter()
                .map(|a| AssistanceView {
                    action_id: a.action_id,
                    area: a.area.as_str().into(),
                    amount_fen: a.amount_fen.map(|f| f.fen()),
                    provided_on: a.provided_on,
                    description: a.description.clone(),
                })
                .collect(),
            notes: case
                .notes
                .iter()
                .map(|n| NoteView {
                    action_id: n.action_id,
                    text: n.text.clone(),
                })
                .collect(),
            insurance: InsuranceView::build(case, on),
            activities: ActivitiesView::build(case),
        })
    }
}

/// One line of the case list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CaseSummary {
    pub id: Uuid,
    pub version: u64,
    pub village_code: String,
    #[schema(value_type = CaseStatus)]
    pub status: String,
    pub key_person: bool,
    pub village_contact_name: Option<String>,
    pub township_contact_name: Option<String>,
    pub village_next_due_on: Option<NaiveDate>,
    pub township_next_due_on: Option<NaiveDate>,
}

/// Filters of the case list. `village_code_prefix` is already intersected
/// with the caller's scope (`Scope::effective_prefix`).
#[derive(Debug, Clone, Default)]
pub struct CaseListFilter {
    pub village_code_prefix: String,
    pub status: Option<String>,
    pub key_person: Option<bool>,
    /// Only families missing a contact for a role (uncovered).
    pub uncovered: bool,
    /// Return families whose id sorts after this one.
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// A stored case: its version, folded state and the hash of its last event
/// (`None` where the store has not recorded it with the row), and the
/// version of the snapshot it was folded from.
#[derive(Debug, Clone)]
pub struct StoredCase {
    pub version: u64,
    pub state: FamilyCase,
    pub head_hash: Option<String>,
    pub snapshot_version: u64,
}
