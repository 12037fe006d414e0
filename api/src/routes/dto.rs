//! Request bodies of the family commands, and their conversion into domain
//! commands. Bodies hold plain strings; [`Fields`] parses each into its value
//! type and collects every invalid field for one 422.

use chrono::{DateTime, FixedOffset, NaiveDate};
use nuanxin_domain::aggregate::check_member;
use nuanxin_domain::events::{ContactPerson, Member};
use nuanxin_domain::values::*;
use nuanxin_domain::FamilyCommand;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::openapi::fields;

pub mod insurance;
pub use insurance::*;

/// Collects field errors while parsing a body.
#[derive(Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn value<T>(&mut self, field: &str, r: Result<T, ValueError>) -> Option<T> {
        r.map_err(|e| self.push(field, e.0)).ok()
    }

    pub fn push(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    }

    pub fn text(&mut self, field: &str, s: &str) -> Option<Text> {
        self.value(field, Text::parse(s))
    }

    /// A name, relation, provider or need: one short line (`Name`).
    pub fn name(&mut self, field: &str, s: &str) -> Option<Text> {
        self.value(field, Name::parse(s)).map(Text::from)
    }

    pub fn date(&mut self, field: &str, s: &str) -> Option<NaiveDate> {
        self.value(field, parse_day(s))
    }

    pub fn opt_date(&mut self, field: &str, s: &Option<String>) -> Option<Option<NaiveDate>> {
        match s {
            None => Some(None),
            Some(s) => self.date(field, s).map(Some),
        }
    }

    pub fn instant(&mut self, field: &str, s: &str) -> Option<DateTime<FixedOffset>> {
        let r = DateTime::parse_from_rfc3339(s)
            .map_err(|_| ValueError("must be an RFC 3339 instant, e.g. 2026-03-01T08:30:00+08:00"));
        self.value(field, r)
    }

    pub fn uuid(&mut self, field: &str, s: &str) -> Option<Uuid> {
        self.value(field, s.parse().map_err(|_| ValueError("must be a UUID")))
    }

    /// Whether no field was invalid so far.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The 422 for everything collected.
    pub fn error(self) -> ApiError {
        if self.errors.is_empty() {
            ApiError::field("body", "is invalid")
        } else {
            ApiError::Validation(self.errors)
        }
    }
}

/// Deserializes an integer the way JSON Schema counts integers: `6` and
/// `6.0` alike (a number with no fractional part), nothing else.
fn integer<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    let n = serde_json::Number::deserialize(de)?;
    let whole = n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    });
    whole
        .and_then(|i| T::try_from(i).ok())
        .ok_or_else(|| serde::de::Error::custom("not an integer in range"))
}

/// [`integer`] for an optional field (`null` or absent: `None`).
fn opt_integer<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(Deserialize)]
    struct Wrap<T: TryFrom<i64>>(#[serde(deserialize_with = "integer")] T);
    Ok(Option::<Wrap<T>>::deserialize(de)?.map(|w| w.0))
}

/// The answer to every command.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommandResponse {
    /// The family's id.
    pub id: Uuid,
    /// The case version after this action (use it in `If-Match`).
    pub version: u64,
    /// The id of the recorded action (use it to void the action).
    pub action_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    #[schema(schema_with = fields::name)]
    pub name: String,
    #[schema(value_type = Sex)]
    pub sex: String,
    /// At least 16 years before `registered_on`.
    #[schema(schema_with = fields::day)]
    pub birth_date: String,
    #[schema(schema_with = fields::opt_id_number)]
    pub id_number: Option<String>,
    #[schema(schema_with = fields::opt_phone)]
    pub phone: Option<String>,
    pub living_alone: Option<bool>,
    /// `independent` when absent.
    #[schema(value_type = Option<SelfCare>)]
    pub self_care: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "category": "bereaved",
    "village_code": "450305001001",
    "address": "No. 3, Xincun",
    "registered_on": "2026-01-10",
    "members": [
        {"name": "Zhang San", "sex": "male", "birth_date": "1950-03-01",
         "id_number": "110105195003010016", "phone": "13800138000"},
        {"name": "Li Mei", "sex": "female", "birth_date": "1952-07-15",
         "self_care": "semi_dependent"}
    ]
}))]
pub struct RegisterFamilyRequest {
    #[schema(value_type = Category)]
    pub category: String,
    #[schema(schema_with = fields::village_code)]
    pub village_code: String,
    #[schema(schema_with = fields::text)]
    pub address: String,
    #[schema(schema_with = fields::registration_day)]
    pub registered_on: String,
    /// The parents (1 to 4 members).
    #[schema(min_items = 1, max_items = 4)]
    pub members: Vec<MemberRequest>,
}

impl RegisterFamilyRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let category = f.value("category", Category::parse(&self.category));
        let village_code = f.value("village_code", VillageCode::parse(&self.village_code));
        let address = f.text("address", &self.address);
        let registered_on = f.value("registered_on", parse_registration_day(&self.registered_on));
        if !(1..=MAX_MEMBERS).contains(&self.members.len()) {
            f.push("members", "must list 1 to 4 members");
            return Err(f.error());
        }
        let mut members = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            let at = |name: &str| format!("members[{i}].{name}");
            let name = f.name(&at("name"), &m.name);
            let sex = f.value(&at("sex"), Sex::parse(&m.sex));
            let birth_date = f.date(&at("birth_date"), &m.birth_date);
            let id_number = match &m.id_number {
                None => Some(None),
                Some(s) => f.value(&at("id_number"), IdNumber::parse(s)).map(Some),
            };
            let phone = match &m.phone {
                None => Some(None),
                Some(s) => f.value(&at("phone"), Phone::parse(s)).map(Some),
            };
            let self_care = match &m.self_care {
                None => Some(SelfCare::Independent),
                Some(s) => f.value(&at("self_care"), SelfCare::parse(s)),
            };
            if let (
                Some(name),
                Some(sex),
                Some(birth_date),
                Some(id_number),
                Some(phone),
                Some(self_care),
            ) = (name, sex, birth_date, id_number, phone, self_care)
            {
                let member = Member {
                    id: Uuid::new_v4(),
                    name: name.into(),
                    sex,
                    birth_date,
                    id_number,
                    phone,
                    living_alone: m.living_alone.unwrap_or(false),
                    self_care,
                };
                match registered_on.map(|on| check_member(&member, on)) {
                    Some(Err((field, message))) => f.push(&at(field), message),
                    _ => members.push(member),
                }
            }
        }
        match (category, village_code, address, registered_on) {
            (Some(category), Some(village_code), Some(address), Some(registered_on))
                if members.len() == self.members.len() && !members.is_empty() =>
            {
                Ok(FamilyCommand::RegisterFamily {
                    action_id,
                    category,
                    village_code,
                    address,
                    registered_on,
                    members,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberStatusRequest {
    #[schema(schema_with = fields::opt_day)]
    pub deceased_on: Option<String>,
    pub living_alone: Option<bool>,
    #[schema(value_type = Option<SelfCare>)]
    pub self_care: Option<String>,
    #[schema(schema_with = fields::opt_phone)]
    pub phone: Option<String>,
    /// The day the change took effect.
    #[schema(schema_with = fields::day)]
    pub effective_on: String,
}

impl MemberStatusRequest {
    pub fn into_command(self, action_id: Uuid, member_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let effective_on = f.date("effective_on", &self.effective_on);
        let deceased_on = f.opt_date("deceased_on", &self.deceased_on);
        let self_care = match &self.self_care {
            None => Some(None),
            Some(s) => f.value("self_care", SelfCare::parse(s)).map(Some),
        };
        let phone = match &self.phone {
            None => Some(None),
            Some(s) => f.value("phone", Phone::parse(s)).map(Some),
        };
        match (effective_on, deceased_on, self_care, phone) {
            (Some(effective_on), Some(deceased_on), Some(self_care), Some(phone)) => {
                Ok(FamilyCommand::UpdateMemberStatus {
                    action_id,
                    member_id,
                    effective_on,
                    deceased_on,
                    living_alone: self.living_alone,
                    self_care,
                    phone,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonRequest {
    #[schema(schema_with = fields::uuid)]
    pub id: String,
    #[schema(schema_with = fields::name)]
    pub name: String,
    #[schema(schema_with = fields::phone)]
    pub phone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignContactRequest {
    #[schema(value_type = Role)]
    pub role: String,
    pub person: PersonRequest,
    #[schema(schema_with = fields::day)]
    pub assigned_on: String,
}

impl AssignContactRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let role = f.value("role", Role::parse(&self.role));
        let id = f.uuid("person.id", &self.person.id);
        let name = f.name("person.name", &self.person.name);
        let phone = f.value("person.phone", Phone::parse(&self.person.phone));
        let assigned_on = f.date("assigned_on", &self.assigned_on);
        match (role, id, name, phone, assigned_on) {
            (Some(role), Some(id), Some(name), Some(phone), Some(assigned_on)) => {
                Ok(FamilyCommand::AssignContact {
                    action_id,
                    role,
                    person: ContactPerson {
                        id,
                        name: name.into(),
                        phone,
                    },
                    assigned_on,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseContactRequest {
    #[schema(schema_with = fields::day)]
    pub released_on: String,
    #[schema(schema_with = fields::text)]
    pub reason: String,
}

impl ReleaseContactRequest {
    pub fn into_command(self, action_id: Uuid, role: &str) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let role =
            Role::parse(role).map_err(|_| ApiError::NotFound("no such contact role".into()))?;
        let released_on = f.date("released_on", &self.released_on);
        let reason = f.text("reason", &self.reason);
        match (released_on, reason) {
            (Some(released_on), Some(reason)) => Ok(FamilyCommand::ReleaseContact {
                action_id,
                role,
                released_on,
                reason,
            }),
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitRequest {
    /// The contact who visited.
    #[schema(value_type = Role)]
    pub role: String,
    #[schema(value_type = VisitMode)]
    pub mode: String,
    #[schema(schema_with = fields::day)]
    pub visited_on: String,
    #[schema(schema_with = fields::text)]
    pub findings: String,
    #[serde(default)]
    #[schema(schema_with = fields::needs)]
    pub needs: Vec<String>,
}

impl VisitRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let role = f.value("role", Role::parse(&self.role));
        let mode = f.value("mode", VisitMode::parse(&self.mode));
        let visited_on = f.date("visited_on", &self.visited_on);
        let findings = f.text("findings", &self.findings);
        if self.needs.len() > MAX_NEEDS {
            f.push("needs", "must list at most 20 needs");
            return Err(f.error());
        }
        let mut needs = Vec::new();
        for (i, n) in self.needs.iter().enumerate() {
            if let Some(t) = f.name(&format!("needs[{i}]"), n) {
                needs.push(String::from(t));
            }
        }
        match (role, mode, visited_on, findings) {
            (Some(role), Some(mode), Some(visited_on), Some(findings))
                if needs.len() == self.needs.len() =>
            {
                Ok(FamilyCommand::RecordVisit {
                    action_id,
                    role,
                    mode,
                    visited_on,
                    findings,
                    needs,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyContactRequest {
    #[schema(schema_with = fields::name)]
    pub name: String,
    #[schema(schema_with = fields::name)]
    pub relation: String,
    #[schema(schema_with = fields::phone)]
    pub phone: String,
    #[schema(schema_with = fields::priority)]
    #[serde(deserialize_with = "integer")]
    pub priority: u8,
}

impl EmergencyContactRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let name = f.name("name", &self.name);
        let relation = f.name("relation", &self.relation);
        let phone = f.value("phone", Phone::parse(&self.phone));
        let priority_ok = EMERGENCY_PRIORITIES.contains(&self.priority);
        if !priority_ok {
            f.push("priority", "must be between 1 and 9");
        }
        match (name, relation, phone) {
            (Some(name), Some(relation), Some(phone)) if priority_ok => {
                Ok(FamilyCommand::SetEmergencyContact {
                    action_id,
                    name,
                    relation,
                    phone,
                    priority: self.priority,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[schema(schema_with = fields::text)]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyRequest {
    /// Its local day must lie between the registration and today (else 409).
    #[schema(schema_with = fields::instant)]
    pub occurred_at: String,
    #[schema(schema_with = fields::text)]
    pub description: String,
    #[schema(schema_with = fields::name)]
    pub responder: String,
    #[schema(schema_with = fields::text)]
    pub outcome: String,
}

impl EmergencyRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let occurred_at = f.instant("occurred_at", &self.occurred_at);
        let description = f.text("description", &self.description);
        let responder = f.name("responder", &self.responder);
        let outcome = f.text("outcome", &self.outcome);
        match (occurred_at, description, responder, outcome) {
            (Some(occurred_at), Some(description), Some(responder), Some(outcome)) => {
                Ok(FamilyCommand::RecordEmergency {
                    action_id,
                    occurred_at,
                    description,
                    responder,
                    outcome,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ElderlyCareRequest {
    /// A member of this family (otherwise 404).
    #[schema(schema_with = fields::uuid)]
    pub member_id: String,
    #[schema(value_type = ElderlyCareService)]
    pub service: String,
    #[schema(schema_with = fields::name)]
    pub provider: String,
    #[schema(schema_with = fields::day)]
    pub from: String,
    /// The last day, not before `from`; open-ended when absent.
    #[schema(schema_with = fields::opt_day)]
    pub to: Option<String>,
}

impl ElderlyCareRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let member_id = f.uuid("member_id", &self.member_id);
        let service = f.value("service", ElderlyCareService::parse(&self.service));
        let provider = f.name("provider", &self.provider);
        let from = f.date("from", &self.from);
        let to = f.opt_date("to", &self.to);
        match (member_id, service, provider, from, to) {
            (Some(member_id), Some(service), Some(provider), Some(from), Some(to)) => {
                Ok(FamilyCommand::RecordElderlyCare {
                    action_id,
                    member_id,
                    service,
                    provider,
                    from,
                    to,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistanceRequest {
    #[schema(value_type = AssistanceArea)]
    pub area: String,
    /// Money in fen (1/100 yuan), when money is involved.
    #[schema(schema_with = fields::opt_amount)]
    #[serde(default, deserialize_with = "opt_integer")]
    pub amount_fen: Option<i64>,
    #[schema(schema_with = fields::day)]
    pub provided_on: String,
    #[schema(schema_with = fields::text)]
    pub description: String,
}

impl AssistanceRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let area = f.value("area", AssistanceArea::parse(&self.area));
        let amount_fen = match self.amount_fen {
            None => Some(None),
            Some(v) => f.value("amount_fen", AmountFen::new(v)).map(Some),
        };
        let provided_on = f.date("provided_on", &self.provided_on);
        let description = f.text("description", &self.description);
        match (area, amount_fen, provided_on, description) {
            (Some(area), Some(amount_fen), Some(provided_on), Some(description)) => {
                Ok(FamilyCommand::RecordAssistance {
                    action_id,
                    area,
                    amount_fen,
                    provided_on,
                    description,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    #[schema(schema_with = fields::text)]
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// The `action_id` of the action to void.
    #[schema(schema_with = fields::uuid)]
    pub action_id: String,
    #[schema(schema_with = fields::text)]
    pub reason: String,
}

impl VoidRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let voided_action_id = f.uuid("action_id", &self.action_id);
        let reason = f.text("reason", &self.reason);
        match (voided_action_id, reason) {
            (Some(voided_action_id), Some(reason)) => Ok(FamilyCommand::VoidAction {
                action_id,
                voided_action_id,
                reason,
            }),
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The new village (within your scope, otherwise 403).
    #[schema(schema_with = fields::village_code)]
    pub village_code: String,
    #[schema(schema_with = fields::day)]
    pub transferred_on: String,
    #[schema(schema_with = fields::text)]
    pub reason: String,
}

impl TransferRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let village_code = f.value("village_code", VillageCode::parse(&self.village_code));
        let transferred_on = f.date("transferred_on", &self.transferred_on);
        let reason = f.text("reason", &self.reason);
        match (village_code, transferred_on, reason) {
            (Some(village_code), Some(transferred_on), Some(reason)) => {
                Ok(FamilyCommand::Transfer {
                    action_id,
                    village_code,
                    transferred_on,
                    reason,
                })
            }
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseReopenRequest {
    #[schema(schema_with = fields::day)]
    pub on: String,
    #[schema(schema_with = fields::text)]
    pub reason: String,
}

impl CloseReopenRequest {
    pub fn into_command(self, action_id: Uuid, close: bool) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let on = f.date("on", &self.on);
        let reason = f.text("reason", &self.reason);
        match (on, reason) {
            (Some(on), Some(reason)) if close => Ok(FamilyCommand::CloseCase {
                action_id,
                on,
                reason,
            }),
            (Some(on), Some(reason)) => Ok(FamilyCommand::ReopenCase {
                action_id,
                on,
                reason,
            }),
            _ => Err(f.error()),
        }
    }
}
