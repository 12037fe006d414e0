//! The visit policy: when a contact is due to visit a family, as pure
//! functions of a [`FamilyCase`] and a day. See DOMAIN.md, "Visit policy".
//!
//! The policy is configuration. [`VisitPolicy`] deserializes (serde only;
//! reading the TOML file is `infra`'s job) from a partial document: every
//! key left out keeps its default, and a key left out of `[village]` or
//! `[township]` keeps *that role's* default. Unknown keys are rejected, and
//! so are values that make no sense (see [`VisitPolicy::validate`]).
//!
//! ```toml
//! key_age = 80
//! urgent_within_days = 1
//! escalate_after_days = 14
//! timezone_offset_hours = 8
//!
//! [village]
//! ordinary_days = 30
//! key_days = 7
//! qualifying_modes = ["home", "phone", "video", "holiday"]
//! key_home_floor_days = 30   # 0 = no floor
//!
//! [township]
//! ordinary_days = 90
//! key_days = 30
//! qualifying_modes = ["home", "holiday"]
//! key_home_floor_days = 0
//!
//! [inspections]          # supervision inspections (督导) a year, at least
//! city_per_year = 4
//! county_per_year = 12
//!
//! [activities]
//! isolation_days = 180   # no activity attended for this long: listed
//! ```
//!
//! Ages: a member is N years old from their Nth birthday (inclusive). For
//! someone born on 29 February the birthday in a common year is **1 March**
//! (the day after 28 February, when the full year has elapsed).

use chrono::{Datelike, Days, FixedOffset, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::aggregate::{CaseStatus, FamilyCase, MemberState};
use crate::values::{Role, SelfCare, VisitMode};

/// The visit policy. `VisitPolicy::default()` is DOMAIN.md's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawVisitPolicy")]
pub struct VisitPolicy {
    /// A living member this old or older makes the family key.
    pub key_age: u32,
    /// An emergency or death makes a `home` visit due within this many days.
    pub urgent_within_days: u32,
    /// An overdue alert escalates one level up after this many days.
    pub escalate_after_days: u32,
    /// The local time zone as a whole-hour UTC offset (Asia/Shanghai: 8).
    pub timezone_offset_hours: i32,
    pub village: RolePolicy,
    pub township: RolePolicy,
    /// The minimum number of supervision inspections a year.
    pub inspections: InspectionPolicy,
    /// Group activities: when a family counts as isolated.
    pub activities: ActivityPolicy,
}

/// The bulletin's minimum of supervision inspections (督导) a year, by the
/// level of the association that holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionPolicy {
    /// Default 4.
    pub city_per_year: u32,
    /// Default 12.
    pub county_per_year: u32,
}

impl Default for InspectionPolicy {
    fn default() -> Self {
        Self {
            city_per_year: 4,
            county_per_year: 12,
        }
    }
}

impl InspectionPolicy {
    /// The minimum for an association of `level`.
    pub fn required(&self, level: crate::inspection::AssociationLevel) -> u32 {
        match level {
            crate::inspection::AssociationLevel::City => self.city_per_year,
            crate::inspection::AssociationLevel::County => self.county_per_year,
        }
    }
}

/// Group activities (精神慰藉): a family that attended none for
/// `isolation_days` is listed as possibly isolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityPolicy {
    /// Default 180.
    pub isolation_days: u32,
}

impl Default for ActivityPolicy {
    fn default() -> Self {
        Self {
            isolation_days: 180,
        }
    }
}

/// The rule for one of the two contact roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePolicy {
    /// Interval for a family without a key person.
    pub ordinary_days: u32,
    /// Interval for a family with a key person.
    pub key_days: u32,
    /// Visit modes that count as a visit for this role.
    pub qualifying_modes: Vec<VisitMode>,
    /// For key families: a `home` visit at least every this many days.
    /// Written as `0` in a policy file to mean "no floor".
    #[serde(
        default,
        serialize_with = "floor_to_number",
        deserialize_with = "floor_from_number"
    )]
    pub key_home_floor_days: Option<u32>,
}

impl RolePolicy {
    /// DOMAIN.md's village rule: 30 / 7 days, any mode, monthly home visit
    /// for key families.
    pub fn village_default() -> Self {
        Self {
            ordinary_days: 30,
            key_days: 7,
            qualifying_modes: vec![
                VisitMode::Home,
                VisitMode::Phone,
                VisitMode::Video,
                VisitMode::Holiday,
            ],
            key_home_floor_days: Some(30),
        }
    }

    /// DOMAIN.md's township rule: 90 / 30 days, `home` or `holiday`.
    pub fn township_default() -> Self {
        Self {
            ordinary_days: 90,
            key_days: 30,
            qualifying_modes: vec![VisitMode::Home, VisitMode::Holiday],
            key_home_floor_days: None,
        }
    }

    /// The interval for a family that is (or is not) key.
    pub fn interval_days(&self, key: bool) -> u32 {
        if key {
            self.key_days
        } else {
            self.ordinary_days
        }
    }

    fn validate(&self, role: &str) -> Result<(), PolicyError> {
        if self.ordinary_days == 0 || self.key_days == 0 {
            return Err(PolicyError(format!(
                "{role}: ordinary_days and key_days must be at least 1"
            )));
        }
        if self.qualifying_modes.is_empty() {
            return Err(PolicyError(format!(
                "{role}: qualifying_modes must not be empty"
            )));
        }
        if self.key_home_floor_days == Some(0) {
            return Err(PolicyError(format!(
                "{role}: key_home_floor_days must be at least 1 (or absent)"
            )));
        }
        Ok(())
    }
}

impl Default for VisitPolicy {
    fn default() -> Self {
        Self {
            key_age: 80,
            urgent_within_days: 1,
            escalate_after_days: 14,
            timezone_offset_hours: 8,
            village: RolePolicy::village_default(),
            township: RolePolicy::township_default(),
            inspections: InspectionPolicy::default(),
            activities: ActivityPolicy::default(),
        }
    }
}

/// Why a policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid visit policy: {0}")]
pub struct PolicyError(pub String);

impl VisitPolicy {
    /// The rule for `role`.
    pub fn role(&self, role: Role) -> &RolePolicy {
        match role {
            Role::Village => &self.village,
            Role::Township => &self.township,
        }
    }

    /// The local time zone as a fixed offset.
    pub fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.timezone_offset_hours * 3600)
            .unwrap_or_else(|| FixedOffset::east_opt(8 * 3600).expect("valid offset"))
    }

    /// Checks that the numbers make sense (deserialization already does).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(1..=150).contains(&self.key_age) {
            return Err(PolicyError("key_age must be between 1 and 150".into()));
        }
        if !(-12..=14).contains(&self.timezone_offset_hours) {
            return Err(PolicyError(
                "timezone_offset_hours must be between -12 and 14".into(),
            ));
        }
        if self.escalate_after_days == 0 {
            return Err(PolicyError("escalate_after_days must be at least 1".into()));
        }
        if self.inspections.city_per_year > 366 || self.inspections.county_per_year > 366 {
            return Err(PolicyError(
                "inspections: city_per_year and county_per_year must be at most 366".into(),
            ));
        }
        if !(1..=3650).contains(&self.activities.isolation_days) {
            return Err(PolicyError(
                "activities: isolation_days must be between 1 and 3650".into(),
            ));
        }
        self.village.validate("village")?;
        self.township.validate("township")
    }
}

/// A policy document as written: every key optional.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawVisitPolicy {
    key_age: Option<u32>,
    urgent_within_days: Option<u32>,
    escalate_after_days: Option<u32>,
    timezone_offset_hours: Option<i32>,
    village: Option<RawRolePolicy>,
    township: Option<RawRolePolicy>,
    inspections: Option<RawInspectionPolicy>,
    activities: Option<RawActivityPolicy>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawInspectionPolicy {
    city_per_year: Option<u32>,
    county_per_year: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawActivityPolicy {
    isolation_days: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawRolePolicy {
    ordinary_days: Option<u32>,
    key_days: Option<u32>,
    qualifying_modes: Option<Vec<VisitMode>>,
    /// `0` means "no floor"; absent keeps the role's default.
    key_home_floor_days: Option<u32>,
}

impl RawRolePolicy {
    fn over(self, base: RolePolicy) -> RolePolicy {
        RolePolicy {
            ordinary_days: self.ordinary_days.unwrap_or(base.ordinary_days),
            key_days: self.key_days.unwrap_or(base.key_days),
            qualifying_modes: self.qualifying_modes.unwrap_or(base.qualifying_modes),
            key_home_floor_days: match self.key_home_floor_days {
                None => base.key_home_floor_days,
                Some(0) => None,
                Some(n) => Some(n),
            },
        }
    }
}

impl TryFrom<RawVisitPolicy> for VisitPolicy {
    type Error = PolicyError;

    fn try_from(raw: RawVisitPolicy) -> Result<Self, PolicyError> {
        let d = VisitPolicy::default();
        let policy = VisitPolicy {
            key_age: raw.key_age.unwrap_or(d.key_age),
            urgent_within_days: raw.urgent_within_days.unwrap_or(d.urgent_within_days),
            escalate_after_days: raw.escalate_after_days.unwrap_or(d.escalate_after_days),
            timezone_offset_hours: raw.timezone_offset_hours.unwrap_or(d.timezone_offset_hours),
            village: raw.village.unwrap_or_default().over(d.village),
            township: raw.township.unwrap_or_default().over(d.township),
            inspections: {
                let r = raw.inspections.unwrap_or_default();
                InspectionPolicy {
                    city_per_year: r.city_per_year.unwrap_or(d.inspections.city_per_year),
                    county_per_year: r.county_per_year.unwrap_or(d.inspections.county_per_year),
                }
            },
            activities: ActivityPolicy {
                isolation_days: raw
                    .activities
                    .unwrap_or_default()
                    .isolation_days
                    .unwrap_or(d.activities.isolation_days),
            },
        };
        policy.validate()?;
        Ok(policy)
    }
}

fn floor_to_number<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u32(v.unwrap_or(0))
}

fn floor_from_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.filter(|n| *n != 0))
}

/// Why a family has a key person (重点人员).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyReason {
    AdvancedAge,
    LivingAlone,
    SemiDependent,
    Dependent,
}

impl KeyReason {
    /// Every reason, in order.
    pub const ALL: [KeyReason; 4] = [
        KeyReason::AdvancedAge,
        KeyReason::LivingAlone,
        KeyReason::SemiDependent,
        KeyReason::Dependent,
    ];
}

/// A member's age in whole years on `on`: N from the Nth birthday on. A
/// 29 February birthday falls on 1 March in common years.
pub fn age_on(birth_date: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth_date.year();
    if (on.month(), on.day()) < (birth_date.month(), birth_date.day()) {
        age -= 1;
    }
    age
}

/// Whether the member is alive on `on` (a death dated after `on` has not
/// happened yet on that day).
pub fn is_living_on(member: &MemberState, on: NaiveDate) -> bool {
    member.deceased_on.is_none_or(|d| d > on)
}

/// What the key-person test reads of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts {
    pub birth_date: NaiveDate,
    pub deceased_on: Option<NaiveDate>,
    pub living_alone: bool,
    pub self_care: SelfCare,
}

impl KeyFacts {
    pub fn of(m: &MemberState) -> Self {
        Self {
            birth_date: m.member.birth_date,
            deceased_on: m.deceased_on,
            living_alone: m.member.living_alone,
            self_care: m.member.self_care,
        }
    }
}

/// Why the family has a key person on `on`, considering living members only;
/// each reason at most once, in the order of [`KeyReason`]. Empty when the
/// family is ordinary. Living alone and self-care are the members' current
/// values.
pub fn key_reasons(case: &FamilyCase, on: NaiveDate, policy: &VisitPolicy) -> Vec<KeyReason> {
    let members: Vec<KeyFacts> = case.members.iter().map(KeyFacts::of).collect();
    key_reasons_among(&members, on, policy)
}

/// [`key_reasons`] of a family whose members are `members`.
pub fn key_reasons_among(
    members: &[KeyFacts],
    on: NaiveDate,
    policy: &VisitPolicy,
) -> Vec<KeyReason> {
    let has = |reason: KeyReason| members.iter().any(|m| m.gives(reason, on, policy));
    KeyReason::ALL.into_iter().filter(|r| has(*r)).collect()
}

impl KeyFacts {
    /// Whether this member, living on `on`, gives the family `reason`.
    fn gives(&self, reason: KeyReason, on: NaiveDate, policy: &VisitPolicy) -> bool {
        if self.deceased_on.is_some_and(|d| d <= on) {
            return false;
        }
        match reason {
            KeyReason::AdvancedAge => {
                age_on(self.birth_date, on) >= i32::try_from(policy.key_age).unwrap_or(i32::MAX)
            }
            KeyReason::LivingAlone => self.living_alone,
            KeyReason::SemiDependent => self.self_care == SelfCare::SemiDependent,
            KeyReason::Dependent => self.self_care == SelfCare::Dependent,
        }
    }
}

/// Whether the family has a key person on `on`.
pub fn is_key(case: &FamilyCase, on: NaiveDate, policy: &VisitPolicy) -> bool {
    !key_reasons(case, on, policy).is_empty()
}

/// [`is_key`] of a family whose members are `members` (without building
/// the list of reasons: the report asks it of every family).
pub fn is_key_among(members: &[KeyFacts], on: NaiveDate, policy: &VisitPolicy) -> bool {
    members
        .iter()
        .any(|m| KeyReason::ALL.iter().any(|r| m.gives(*r, on, policy)))
}

/// Where one role's visits stand for a family on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSchedule {
    /// The latest qualifying visit for this role (since the last transfer).
    pub last_on: Option<NaiveDate>,
    /// The latest `home` visit for this role (since the last transfer).
    pub last_home_on: Option<NaiveDate>,
    /// The day the next visit is due; overdue from the day after.
    pub next_due_on: NaiveDate,
    /// Whether `next_due_on` comes from an emergency or death that no `home`
    /// visit has followed yet.
    pub urgent: bool,
}

impl RoleSchedule {
    /// Overdue on `on` when the due date lies before it.
    pub fn is_overdue(&self, on: NaiveDate) -> bool {
        self.next_due_on < on
    }

    /// Days past the due date on `on` (0 when not overdue).
    pub fn days_overdue(&self, on: NaiveDate) -> i64 {
        (on - self.next_due_on).num_days().max(0)
    }
}

fn plus_days(date: NaiveDate, days: u32) -> NaiveDate {
    date.checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MAX)
}

/// When the contact in `role` is next due to visit, as seen on `on`.
/// `None` when the case is closed or the role has no contact (uncovered).
///
/// Only visits of this role dated on or after the latest transfer count,
/// whatever order they were recorded in. The regular due date is the later
/// of the assignment and the last qualifying visit, plus the role's interval
/// (key or ordinary on `on`). Key families may also need a `home` visit
/// every `key_home_floor_days`. Every emergency or death (since the
/// transfer) not yet followed by a `home` visit of this role makes the visit
/// due within `urgent_within_days` of it.
pub fn schedule(
    case: &FamilyCase,
    role: Role,
    on: NaiveDate,
    policy: &VisitPolicy,
) -> Option<RoleSchedule> {
    schedule_keyed(case, role, is_key(case, on, policy), policy)
}

/// [`schedule`] for a family whose key-person status is `key`: the day
/// only matters through that status, so a reader that knows it (the
/// report's per-family facts, which keep both answers) can ask without a
/// day.
pub fn schedule_keyed(
    case: &FamilyCase,
    role: Role,
    key: bool,
    policy: &VisitPolicy,
) -> Option<RoleSchedule> {
    if case.status == CaseStatus::Closed {
        return None;
    }
    let contact = case.contacts.get(role)?;
    let rule = policy.role(role);
    let counts = |date: NaiveDate| case.transferred_on.is_none_or(|t| date >= t);
    let visits = || {
        case.visits
            .iter()
            .filter(move |v| v.role == role && counts(v.visited_on))
    };
    let last_on = visits()
        .filter(|v| rule.qualifying_modes.contains(&v.mode))
        .map(|v| v.visited_on)
        .max();
    let last_home_on = visits()
        .filter(|v| v.mode == VisitMode::Home)
        .map(|v| v.visited_on)
        .max();

    let base = last_on.map_or(contact.assigned_on, |d| d.max(contact.assigned_on));
    let mut due = plus_days(base, rule.interval_days(key));
    if let (true, Some(floor)) = (key, rule.key_home_floor_days) {
        let home_base = last_home_on.map_or(contact.assigned_on, |d| d.max(contact.assigned_on));
        due = due.min(plus_days(home_base, floor));
    }

    let mut urgent = false;
    let triggers = case
        .emergencies
        .iter()
        .map(|e| e.occurred_on)
        .chain(case.deaths.iter().map(|d| d.on))
        .filter(|d| counts(*d));
    for happened in triggers {
        if last_home_on.is_none_or(|h| h < happened) {
            due = due.min(plus_days(happened, policy.urgent_within_days));
            urgent = true;
        }
    }

    Some(RoleSchedule {
        last_on,
        last_home_on,
        next_due_on: due,
        urgent,
    })
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use uuid::Uuid;

    use super::*;
    use crate::events::{ContactPerson, FamilyEvent as E, Member};
    use crate::values::{Category, Phone, VillageCode};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn phone() -> Phone {
        Phone::parse("13800138000").expect("valid phone")
    }

    const FATHER: u128 = 100;
    const MOTHER: u128 = 101;
    const VILLAGE_PERSON: u128 = 200;
    const TOWNSHIP_PERSON: u128 = 201;

    fn member(n: u128, birth: NaiveDate) -> Member {
        Member {
            id: id(n),
            name: format!("member {n}"),
            sex: crate::values::Sex::Female,
            birth_date: birth,
            id_number: None,
            phone: None,
            living_alone: false,
            self_care: SelfCare::Independent,
        }
    }

    /// A family registered on 2026-01-01, both parents in their 70s
    /// (father born 1950-06-15 turns 80 on 2030-06-15), with a village
    /// contact from 2026-01-01 and a township contact from 2026-01-01.
    fn case_with(births: [NaiveDate; 2], extra: Vec<E>) -> FamilyCase {
        let mut case = FamilyCase::default();
        let mut events = vec![
            E::FamilyRegistered {
                action_id: id(1),
                category: Category::Bereaved,
                village_code: VillageCode::parse("450305001001").expect("code"),
                address: "某村".into(),
                registered_on: d(2026, 1, 1),
                members: vec![member(FATHER, births[0]), member(MOTHER, births[1])],
            },
            assigned(2, Role::Village, VILLAGE_PERSON, d(2026, 1, 1)),
            assigned(3, Role::Township, TOWNSHIP_PERSON, d(2026, 1, 1)),
        ];
        events.extend(extra);
        for e in events {
            case.evolve(e);
        }
        case
    }

    fn ordinary(extra: Vec<E>) -> FamilyCase {
        case_with([d(1950, 6, 15), d(1952, 3, 1)], extra)
    }

    /// Key because the mother lives alone.
    fn key(extra: Vec<E>) -> FamilyCase {
        let mut events = vec![status(9, MOTHER, None, Some(true))];
        events.extend(extra);
        ordinary(events)
    }

    fn assigned(action: u128, role: Role, who: u128, on: NaiveDate) -> E {
        E::ContactAssigned {
            action_id: id(action),
            role,
            person: ContactPerson {
                id: id(who),
                name: "contact".into(),
                phone: phone(),
            },
            assigned_on: on,
        }
    }

    fn visit(action: u128, role: Role, mode: VisitMode, on: NaiveDate) -> E {
        E::VisitRecorded {
            action_id: id(action),
            role,
            contact_id: id(if role == Role::Village {
                VILLAGE_PERSON
            } else {
                TOWNSHIP_PERSON
            }),
            mode,
            visited_on: on,
            findings: "ok".into(),
            needs: vec![],
        }
    }

    fn status(action: u128, who: u128, deceased: Option<NaiveDate>, alone: Option<bool>) -> E {
        E::MemberStatusUpdated {
            action_id: id(action),
            member_id: id(who),
            effective_on: deceased.unwrap_or(d(2026, 1, 2)),
            deceased_on: deceased,
            living_alone: alone,
            self_care: None,
            phone: None,
        }
    }

    fn emergency(action: u128, at: &str) -> E {
        let occurred_at = DateTime::parse_from_rfc3339(at).expect("instant");
        E::EmergencyRecorded {
            action_id: id(action),
            occurred_at,
            occurred_on: occurred_at
                .with_timezone(&FixedOffset::east_opt(8 * 3600).expect("offset"))
                .date_naive(),
            description: "fall".into(),
            responder: "doctor".into(),
            outcome: "hospital".into(),
        }
    }

    fn voided(action: u128, target: u128) -> E {
        E::ActionVoided {
            action_id: id(action),
            voided_action_id: id(target),
            reason: "mistake".into(),
        }
    }

    fn transferred(action: u128, on: NaiveDate) -> E {
        E::FamilyTransferred {
            action_id: id(action),
            from_village_code: VillageCode::parse("450305001001").expect("code"),
            village_code: VillageCode::parse("450305002002").expect("code"),
            transferred_on: on,
            reason: "moved".into(),
        }
    }

    fn due(case: &FamilyCase, role: Role, on: NaiveDate) -> NaiveDate {
        schedule(case, role, on, &VisitPolicy::default())
            .expect("scheduled")
            .next_due_on
    }

    // ------------------------------------------------------------ config

    #[test]
    fn inspection_and_activity_sections_default_and_validate() {
        let p: VisitPolicy =
            serde_json::from_str(r#"{"inspections": {"county_per_year": 6}}"#).expect("parses");
        assert_eq!(p.inspections.county_per_year, 6);
        assert_eq!(
            p.inspections.city_per_year, 4,
            "the other level keeps its default"
        );
        assert_eq!(p.activities.isolation_days, 180);
        let p: VisitPolicy =
            serde_json::from_str(r#"{"activities": {"isolation_days": 90}}"#).expect("parses");
        assert_eq!(p.activities.isolation_days, 90);
        assert_eq!(p.inspections, InspectionPolicy::default());
        for bad in [
            r#"{"inspections": {"county_per_year": 367}}"#,
            r#"{"inspections": {"weekly": 1}}"#,
            r#"{"activities": {"isolation_days": 0}}"#,
        ] {
            assert!(serde_json::from_str::<VisitPolicy>(bad).is_err(), "{bad}");
        }
        let required = |level| VisitPolicy::default().inspections.required(level);
        assert_eq!(required(crate::inspection::AssociationLevel::City), 4);
        assert_eq!(required(crate::inspection::AssociationLevel::County), 12);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let p = VisitPolicy::default();
        assert_eq!(p.key_age, 80);
        assert_eq!(p.urgent_within_days, 1);
        assert_eq!(p.escalate_after_days, 14);
        assert_eq!(p.timezone_offset_hours, 8);
        assert_eq!(
            p.role(Role::Village),
            &RolePolicy {
                ordinary_days: 30,
                key_days: 7,
                qualifying_modes: vec![
                    VisitMode::Home,
                    VisitMode::Phone,
                    VisitMode::Video,
                    VisitMode::Holiday
                ],
                key_home_floor_days: Some(30),
            }
        );
        assert_eq!(
            p.role(Role::Township),
            &RolePolicy {
                ordinary_days: 90,
                key_days: 30,
                qualifying_modes: vec![VisitMode::Home, VisitMode::Holiday],
                key_home_floor_days: None,
            }
        );
        assert_eq!(p.offset(), FixedOffset::east_opt(8 * 3600).expect("offset"));
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn an_empty_document_is_the_default_policy() {
        let p: VisitPolicy = serde_json::from_str("{}").expect("parses");
        assert_eq!(p, VisitPolicy::default());
    }

    #[test]
    fn a_partial_role_keeps_that_roles_defaults() {
        let p: VisitPolicy =
            serde_json::from_str(r#"{"key_age": 75, "township": {"ordinary_days": 60}}"#)
                .expect("parses");
        assert_eq!(p.key_age, 75);
        assert_eq!(p.township.ordinary_days, 60);
        assert_eq!(p.township.key_days, 30);
        assert_eq!(
            p.township.qualifying_modes,
            vec![VisitMode::Home, VisitMode::Holiday]
        );
        assert_eq!(p.village, RolePolicy::village_default());
    }

    #[test]
    fn a_zero_floor_means_no_floor_and_round_trips() {
        let p: VisitPolicy =
            serde_json::from_str(r#"{"village": {"key_home_floor_days": 0}}"#).expect("parses");
        assert_eq!(p.village.key_home_floor_days, None);
        let json = serde_json::to_string(&p).expect("serializes");
        let back: VisitPolicy = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, p);
        let default_json = serde_json::to_string(&VisitPolicy::default()).expect("serializes");
        let back: VisitPolicy = serde_json::from_str(&default_json).expect("parses");
        assert_eq!(back, VisitPolicy::default());
    }

    #[test]
    fn unknown_keys_and_nonsense_values_are_rejected() {
        for bad in [
            r#"{"key_agee": 80}"#,
            r#"{"village": {"ordinary": 30}}"#,
            r#"{"village": {"ordinary_days": 0}}"#,
            r#"{"township": {"qualifying_modes": []}}"#,
            r#"{"township": {"qualifying_modes": ["letter"]}}"#,
            r#"{"timezone_offset_hours": 15}"#,
            r#"{"key_age": 0}"#,
        ] {
            assert!(serde_json::from_str::<VisitPolicy>(bad).is_err(), "{bad}");
        }
    }

    // -------------------------------------------------------------- key

    #[test]
    fn age_counts_from_the_birthday_inclusive() {
        assert_eq!(age_on(d(1946, 7, 1), d(2026, 6, 30)), 79);
        assert_eq!(age_on(d(1946, 7, 1), d(2026, 7, 1)), 80);
        // 29 February: the birthday in a common year is 1 March.
        assert_eq!(age_on(d(1948, 2, 29), d(2028, 2, 28)), 79);
        assert_eq!(age_on(d(1948, 2, 29), d(2028, 2, 29)), 80);
        assert_eq!(age_on(d(1948, 2, 29), d(2027, 2, 28)), 78);
        assert_eq!(age_on(d(1948, 2, 29), d(2027, 3, 1)), 79);
    }

    #[test]
    fn key_reasons_of_living_members_in_stable_order() {
        let p = VisitPolicy::default();
        let on = d(2026, 6, 30);
        assert!(key_reasons(&ordinary(vec![]), on, &p).is_empty());

        let mut case = ordinary(vec![status(9, MOTHER, None, Some(true))]);
        assert_eq!(key_reasons(&case, on, &p), vec![KeyReason::LivingAlone]);
        case.evolve(E::MemberStatusUpdated {
            action_id: id(10),
            member_id: id(FATHER),
            effective_on: d(2026, 2, 1),
            deceased_on: None,
            living_alone: Some(true),
            self_care: Some(SelfCare::Dependent),
            phone: None,
        });
        assert_eq!(
            key_reasons(&case, on, &p),
            vec![KeyReason::LivingAlone, KeyReason::Dependent]
        );

        // A member who died no longer makes the family key from that day
        // on, but still does on the days before it.
        let case = ordinary(vec![
            status(9, MOTHER, None, Some(true)),
            status(10, MOTHER, Some(d(2026, 5, 1)), None),
        ]);
        assert!(key_reasons(&case, d(2026, 5, 1), &p).is_empty());
        assert_eq!(
            key_reasons(&case, d(2026, 4, 30), &p),
            vec![KeyReason::LivingAlone]
        );
    }

    #[test]
    fn key_reasons_semi_dependent_and_advanced_age() {
        let p = VisitPolicy::default();
        let mut case = case_with(
            [d(1946, 7, 1), d(1940, 1, 1)],
            vec![E::MemberStatusUpdated {
                action_id: id(10),
                member_id: id(FATHER),
                effective_on: d(2026, 2, 1),
                deceased_on: None,
                living_alone: None,
                self_care: Some(SelfCare::SemiDependent),
                phone: None,
            }],
        );
        assert_eq!(
            key_reasons(&case, d(2026, 6, 30), &p),
            vec![KeyReason::AdvancedAge, KeyReason::SemiDependent]
        );
        // The 86-year-old mother dies; the father is 80 only from 1 July.
        case.evolve(status(11, MOTHER, Some(d(2026, 3, 1)), None));
        assert_eq!(
            key_reasons(&case, d(2026, 6, 30), &p),
            vec![KeyReason::SemiDependent]
        );
        assert_eq!(
            key_reasons(&case, d(2026, 7, 1), &p),
            vec![KeyReason::AdvancedAge, KeyReason::SemiDependent]
        );
    }

    // --------------------------------------------------------- schedule

    #[test]
    fn ordinary_family_defaults() {
        let case = ordinary(vec![]);
        let on = d(2026, 1, 15);
        let v = schedule(&case, Role::Village, on, &VisitPolicy::default()).expect("scheduled");
        assert_eq!(
            v,
            RoleSchedule {
                last_on: None,
                last_home_on: None,
                next_due_on: d(2026, 1, 31),
                urgent: false,
            }
        );
        assert_eq!(due(&case, Role::Township, on), d(2026, 4, 1));
        assert!(!v.is_overdue(d(2026, 1, 31)));
        assert!(v.is_overdue(d(2026, 2, 1)));
        assert_eq!(v.days_overdue(d(2026, 2, 3)), 3);
        assert_eq!(v.days_overdue(d(2026, 1, 3)), 0);
    }

    #[test]
    fn the_80th_birthday_turns_30_days_into_7() {
        // Father born 1946-07-01: 80 on 2026-07-01. Last home visit 06-20.
        let case = case_with(
            [d(1946, 7, 1), d(1950, 1, 1)],
            vec![
                visit(20, Role::Village, VisitMode::Home, d(2026, 6, 20)),
                visit(21, Role::Township, VisitMode::Home, d(2026, 6, 20)),
            ],
        );
        assert_eq!(due(&case, Role::Village, d(2026, 6, 30)), d(2026, 7, 20));
        assert_eq!(due(&case, Role::Village, d(2026, 7, 1)), d(2026, 6, 27));
        assert_eq!(due(&case, Role::Township, d(2026, 6, 30)), d(2026, 9, 18));
        assert_eq!(due(&case, Role::Township, d(2026, 7, 1)), d(2026, 7, 20));
    }

    #[test]
    fn a_configured_key_age_applies() {
        let policy = VisitPolicy {
            key_age: 70,
            ..VisitPolicy::default()
        };
        let case = ordinary(vec![]);
        assert_eq!(
            key_reasons(&case, d(2026, 6, 30), &policy),
            vec![KeyReason::AdvancedAge]
        );
    }

    #[test]
    fn the_latest_visit_counts_and_voiding_it_moves_due_back() {
        let mut case = ordinary(vec![
            visit(20, Role::Village, VisitMode::Phone, d(2026, 2, 1)),
            visit(21, Role::Village, VisitMode::Video, d(2026, 3, 1)),
        ]);
        assert_eq!(due(&case, Role::Village, d(2026, 3, 2)), d(2026, 3, 31));
        case.evolve(voided(30, 21));
        assert_eq!(due(&case, Role::Village, d(2026, 3, 2)), d(2026, 3, 3));
        let s = schedule(&case, Role::Village, d(2026, 3, 2), &VisitPolicy::default())
            .expect("scheduled");
        assert_eq!(s.last_on, Some(d(2026, 2, 1)));
    }

    #[test]
    fn a_late_recorded_earlier_visit_does_not_move_due_back() {
        let case = ordinary(vec![
            visit(20, Role::Village, VisitMode::Home, d(2026, 3, 1)),
            visit(21, Role::Village, VisitMode::Home, d(2026, 2, 1)),
        ]);
        let s = schedule(&case, Role::Village, d(2026, 3, 5), &VisitPolicy::default())
            .expect("scheduled");
        assert_eq!(s.last_on, Some(d(2026, 3, 1)));
        assert_eq!(s.last_home_on, Some(d(2026, 3, 1)));
        assert_eq!(s.next_due_on, d(2026, 3, 31));
    }

    #[test]
    fn a_reassignment_restarts_the_clock() {
        let case = ordinary(vec![
            visit(20, Role::Village, VisitMode::Home, d(2026, 2, 1)),
            assigned(21, Role::Village, 202, d(2026, 4, 1)),
        ]);
        assert_eq!(due(&case, Role::Village, d(2026, 4, 2)), d(2026, 5, 1));
    }

    #[test]
    fn visits_of_the_other_role_do_not_count() {
        let case = ordinary(vec![visit(
            20,
            Role::Village,
            VisitMode::Home,
            d(2026, 3, 1),
        )]);
        assert_eq!(due(&case, Role::Township, d(2026, 3, 2)), d(2026, 4, 1));
    }

    #[test]
    fn a_phone_visit_does_not_count_for_township() {
        let case = ordinary(vec![
            visit(20, Role::Township, VisitMode::Phone, d(2026, 3, 1)),
            visit(21, Role::Township, VisitMode::Video, d(2026, 3, 2)),
        ]);
        let s = schedule(
            &case,
            Role::Township,
            d(2026, 3, 5),
            &VisitPolicy::default(),
        )
        .expect("scheduled");
        assert_eq!(s.last_on, None);
        assert_eq!(s.next_due_on, d(2026, 4, 1));
        let case = ordinary(vec![visit(
            20,
            Role::Township,
            VisitMode::Holiday,
            d(2026, 3, 1),
        )]);
        assert_eq!(due(&case, Role::Township, d(2026, 3, 5)), d(2026, 5, 30));
    }

    #[test]
    fn key_village_families_need_a_monthly_home_visit() {
        // Weekly phone calls keep the 7-day rule but not the home floor.
        let case = key(vec![
            visit(20, Role::Village, VisitMode::Home, d(2026, 3, 1)),
            visit(21, Role::Village, VisitMode::Phone, d(2026, 3, 8)),
            visit(22, Role::Village, VisitMode::Phone, d(2026, 3, 15)),
            visit(23, Role::Village, VisitMode::Phone, d(2026, 3, 22)),
            visit(24, Role::Village, VisitMode::Phone, d(2026, 3, 29)),
        ]);
        let s = schedule(
            &case,
            Role::Village,
            d(2026, 3, 30),
            &VisitPolicy::default(),
        )
        .expect("scheduled");
        assert_eq!(s.last_on, Some(d(2026, 3, 29)));
        assert_eq!(s.last_home_on, Some(d(2026, 3, 1)));
        assert_eq!(s.next_due_on, d(2026, 3, 31));
        assert!(!s.urgent);

        // Without any home visit the floor counts from the assignment.
        let case = key(vec![visit(
            20,
            Role::Village,
            VisitMode::Phone,
            d(2026, 1, 28),
        )]);
        assert_eq!(due(&case, Role::Village, d(2026, 1, 29)), d(2026, 1, 31));

        // Ordinary families have no floor; township has none by default.
        let case = ordinary(vec![visit(
            20,
            Role::Village,
            VisitMode::Phone,
            d(2026, 1, 28),
        )]);
        assert_eq!(due(&case, Role::Village, d(2026, 1, 29)), d(2026, 2, 27));
        let case = key(vec![visit(
            20,
            Role::Township,
            VisitMode::Holiday,
            d(2026, 2, 10),
        )]);
        assert_eq!(due(&case, Role::Township, d(2026, 2, 11)), d(2026, 3, 12));
    }

    #[test]
    fn an_emergency_makes_a_home_visit_urgent_until_one_happens() {
        // 2026-03-09T18:00Z is 10 March in UTC+8.
        let mut case = ordinary(vec![
            visit(20, Role::Village, VisitMode::Home, d(2026, 3, 1)),
            emergency(21, "2026-03-09T18:00:00Z"),
        ]);
        let s = schedule(
            &case,
            Role::Village,
            d(2026, 3, 10),
            &VisitPolicy::default(),
        )
        .expect("scheduled");
        assert!(s.urgent);
        assert_eq!(s.next_due_on, d(2026, 3, 11));
        assert!(s.is_overdue(d(2026, 3, 12)));
        assert_eq!(due(&case, Role::Township, d(2026, 3, 10)), d(2026, 3, 11));

        // A phone call does not clear it; a home visit does.
        case.evolve(visit(22, Role::Village, VisitMode::Phone, d(2026, 3, 10)));
        assert_eq!(due(&case, Role::Village, d(2026, 3, 10)), d(2026, 3, 11));
        case.evolve(visit(23, Role::Village, VisitMode::Home, d(2026, 3, 11)));
        let s = schedule(
            &case,
            Role::Village,
            d(2026, 3, 12),
            &VisitPolicy::default(),
        )
        .expect("scheduled");
        assert!(!s.urgent);
        assert_eq!(s.next_due_on, d(2026, 4, 10));
        // … for the village contact only: township is still urgent.
        assert_eq!(due(&case, Role::Township, d(2026, 3, 12)), d(2026, 3, 11));

        // A home visit on the day of the emergency counts as following it.
        let case = ordinary(vec![
            emergency(21, "2026-03-09T18:00:00Z"),
            visit(22, Role::Village, VisitMode::Home, d(2026, 3, 10)),
        ]);
        assert!(
            !schedule(
                &case,
                Role::Village,
                d(2026, 3, 12),
                &VisitPolicy::default()
            )
            .expect("scheduled")
            .urgent
        );
    }

    #[test]
    fn a_death_makes_a_home_visit_urgent_until_one_happens() {
        let case = ordinary(vec![
            visit(20, Role::Township, VisitMode::Home, d(2026, 3, 1)),
            status(21, MOTHER, Some(d(2026, 4, 5)), None),
        ]);
        let s = schedule(
            &case,
            Role::Township,
            d(2026, 4, 6),
            &VisitPolicy::default(),
        )
        .expect("scheduled");
        assert!(s.urgent);
        assert_eq!(s.next_due_on, d(2026, 4, 6));

        let mut after = case.clone();
        after.evolve(visit(22, Role::Township, VisitMode::Home, d(2026, 4, 6)));
        let s = schedule(
            &after,
            Role::Township,
            d(2026, 4, 7),
            &VisitPolicy::default(),
        )
        .expect("scheduled");
        assert!(!s.urgent);
        assert_eq!(s.next_due_on, d(2026, 7, 5));

        // Voiding the (mistaken) death removes the urgency.
        let mut voided_case = case;
        voided_case.evolve(voided(30, 21));
        let s = schedule(
            &voided_case,
            Role::Township,
            d(2026, 4, 6),
            &VisitPolicy::default(),
        )
        .expect("scheduled");
        assert!(!s.urgent);
        assert_eq!(s.next_due_on, d(2026, 5, 30));
    }

    #[test]
    fn the_urgent_window_is_configurable() {
        let policy = VisitPolicy {
            urgent_within_days: 3,
            ..VisitPolicy::default()
        };
        let case = ordinary(vec![
            visit(20, Role::Village, VisitMode::Phone, d(2026, 3, 9)),
            emergency(21, "2026-03-10T08:00:00+08:00"),
        ]);
        let s = schedule(&case, Role::Village, d(2026, 3, 10), &policy).expect("scheduled");
        assert_eq!(s.next_due_on, d(2026, 3, 13));
    }

    #[test]
    fn a_transfer_ignores_older_visits_and_emergencies() {
        let case = ordinary(vec![
            emergency(19, "2026-02-01T08:00:00+08:00"),
            visit(20, Role::Village, VisitMode::Home, d(2026, 5, 20)),
            transferred(21, d(2026, 6, 1)),
            assigned(22, Role::Village, 300, d(2026, 6, 5)),
            // Recorded late, dated before the transfer: the old place's.
            visit(23, Role::Village, VisitMode::Home, d(2026, 5, 31)),
        ]);
        let s = schedule(
            &case,
            Role::Village,
            d(2026, 6, 10),
            &VisitPolicy::default(),
        )
        .expect("scheduled");
        assert_eq!(s.last_on, None);
        assert_eq!(s.last_home_on, None);
        assert!(!s.urgent);
        assert_eq!(s.next_due_on, d(2026, 7, 5));
        // The transfer released the township contact.
        assert_eq!(
            schedule(
                &case,
                Role::Township,
                d(2026, 6, 10),
                &VisitPolicy::default()
            ),
            None
        );
    }

    #[test]
    fn a_closed_case_is_never_due_until_reopened() {
        let mut case = ordinary(vec![E::CaseClosed {
            action_id: id(40),
            on: d(2026, 3, 1),
            reason: "moved away".into(),
        }]);
        assert_eq!(
            schedule(&case, Role::Village, d(2026, 6, 1), &VisitPolicy::default()),
            None
        );
        case.evolve(E::CaseReopened {
            action_id: id(41),
            on: d(2026, 4, 1),
            reason: "back".into(),
        });
        assert_eq!(due(&case, Role::Village, d(2026, 6, 1)), d(2026, 1, 31));
    }

    #[test]
    fn a_role_without_contact_has_no_schedule() {
        let case = ordinary(vec![E::ContactReleased {
            action_id: id(40),
            role: Role::Village,
            contact_id: id(VILLAGE_PERSON),
            released_on: d(2026, 2, 1),
            reason: "left".into(),
        }]);
        assert_eq!(
            schedule(&case, Role::Village, d(2026, 3, 1), &VisitPolicy::default()),
            None
        );
        assert!(schedule(
            &case,
            Role::Township,
            d(2026, 3, 1),
            &VisitPolicy::default()
        )
        .is_some());
        let unregistered = FamilyCase::default();
        assert_eq!(
            schedule(
                &unregistered,
                Role::Village,
                d(2026, 3, 1),
                &VisitPolicy::default()
            ),
            None
        );
    }
}
