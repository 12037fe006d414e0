//! The visit schedule read model: for every open family and role with a
//! contact, the day the next visit is due — as rows an overdue or due list
//! reads with one index range scan.
//!
//! A family's due date depends on the day asked only through its key-person
//! status (a parent's 80th birthday makes the family key from that day; a
//! death can end it). So the rows are cut into windows of days
//! `[valid_from, valid_to)` with one key status each, computed by the pure
//! policy functions of the domain; usually there is one window, at most a
//! few. "Overdue on D" is `valid_from <= D < valid_to AND due_on < D`.

use chrono::{Datelike, NaiveDate};
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::policy::{self, VisitPolicy};
use nuanxin_domain::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The first and last representable days of a window (stored as dates on
/// both stores, compared as ISO text on SQLite).
pub fn min_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).expect("valid date")
}

pub fn max_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date")
}

/// Key-person status over a window of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPeriod {
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub key_person: bool,
}

/// One row of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    pub role: Role,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub village_code: String,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub last_visit_on: Option<NaiveDate>,
    pub last_home_on: Option<NaiveDate>,
    pub due_on: NaiveDate,
    pub key_person: bool,
    pub urgent: bool,
}

/// The first day a person born on `birth` is `age` years old (a 29 February
/// birthday falls on 1 March in common years, as in `policy::age_on`).
fn birthday(birth: NaiveDate, age: u32) -> Option<NaiveDate> {
    let year = birth.year().checked_add(i32::try_from(age).ok()?)?;
    NaiveDate::from_ymd_opt(year, birth.month(), birth.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 3, 1))
}

/// The days on which the family's key status may change.
fn breakpoints(case: &FamilyCase, policy: &VisitPolicy) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = case
        .members
        .iter()
        .flat_map(|m| [birthday(m.member.birth_date, policy.key_age), m.deceased_on])
        .flatten()
        .filter(|d| *d > min_date() && *d < max_date())
        .collect();
    days.sort();
    days.dedup();
    days
}

/// The family's key-person status as windows covering every day.
pub fn key_periods(case: &FamilyCase, policy: &VisitPolicy) -> Vec<KeyPeriod> {
    let mut starts = vec![min_date()];
    starts.extend(breakpoints(case, policy));
    let mut periods: Vec<KeyPeriod> = Vec::new();
    for (i, from) in starts.iter().enumerate() {
        let to = starts.get(i + 1).copied().unwrap_or(max_date());
        let key_person = policy::is_key(case, *from, policy);
        match periods.last_mut() {
            Some(last) if last.key_person == key_person => last.valid_to = to,
            _ => periods.push(KeyPeriod {
                valid_from: *from,
                valid_to: to,
                key_person,
            }),
        }
    }
    periods
}

/// The schedule rows of a family: none when closed or unregistered; per
/// role with a contact, one row per key period.
pub fn schedule_rows(
    case: &FamilyCase,
    periods: &[KeyPeriod],
    policy: &VisitPolicy,
) -> Vec<ScheduleRow> {
    let Some(village_code) = case.village_code.as_ref() else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for role in Role::ALL {
        let Some(contact) = case.contacts.get(*role) else {
            continue;
        };
        for period in periods {
            let Some(s) = policy::schedule(case, *role, period.valid_from, policy) else {
                continue;
            };
            rows.push(ScheduleRow {
                role: *role,
                valid_from: period.valid_from,
                valid_to: period.valid_to,
                village_code: village_code.to_string(),
                contact_id: contact.person.id,
                contact_name: contact.person.name.clone(),
                last_visit_on: s.last_on,
                last_home_on: s.last_home_on,
                due_on: s.next_due_on,
                key_person: period.key_person,
                urgent: s.urgent,
            });
        }
    }
    rows
}

/// One item of the overdue and due lists.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ContactRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct DueItem {
    pub family_id: Uuid,
    pub village_code: String,
    #[schema(value_type = Role)]
    pub role: String,
    pub contact: ContactRef,
    /// The last qualifying visit for the role, if any.
    pub last_visit_on: Option<NaiveDate>,
    pub last_home_visit_on: Option<NaiveDate>,
    pub due_on: NaiveDate,
    /// Days past `due_on` on the day asked (0 when not overdue).
    pub days_overdue: i64,
    pub overdue: bool,
    pub key_person: bool,
    /// The due date comes from an emergency or death awaiting a home visit.
    pub urgent: bool,
}

/// Where a page of the due list starts: after this item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    pub due_on: NaiveDate,
    pub family_id: String,
    pub role: String,
}

impl DueCursor {
    /// Exactly the cursors [`DueCursor::decode`] accepts: the due day as a
    /// day number (days from 0001-01-01, so every number is a day), the
    /// family id and the role.
    pub const PATTERN: &'static str = "^[0-9]{1,7}\\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\.(village|township)$";

    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}",
            self.due_on.num_days_from_ce().max(0),
            self.family_id,
            self.role
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut parts = s.splitn(3, '.');
        let day = parts.next()?;
        if day.is_empty() || day.len() > 7 || !day.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let due_on = NaiveDate::from_num_days_from_ce_opt(day.parse().ok()?)?;
        let family_id = parts.next()?;
        if family_id.len() != 36 {
            return None;
        }
        let family_id = family_id.parse::<Uuid>().ok()?.to_string();
        let role = Role::parse(parts.next()?).ok()?.as_str().to_owned();
        Some(Self {
            due_on,
            family_id,
            role,
        })
    }
}

/// A question to the schedule: items due on or before `due_until`, as seen
/// on day `on`, within a village-code prefix, oldest due first.
#[derive(Debug, Clone)]
pub struct DueQuery {
    pub on: NaiveDate,
    pub due_until: NaiveDate,
    pub village_code_prefix: String,
    pub role: Option<Role>,
    pub contact_id: Option<Uuid>,
    pub after: Option<DueCursor>,
    pub limit: u32,
}

/// An open family missing a contact for one or both roles.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct CoverageGap {
    pub family_id: Uuid,
    pub village_code: String,
    #[schema(value_type = Vec<Role>)]
    pub missing_roles: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuanxin_domain::aggregate::MemberState;
    use nuanxin_domain::events::Member;
    use nuanxin_domain::{SelfCare, Sex};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn member(birth: NaiveDate, deceased_on: Option<NaiveDate>) -> MemberState {
        MemberState {
            member: Member {
                id: Uuid::new_v4(),
                name: "x".into(),
                sex: Sex::Female,
                birth_date: birth,
                id_number: None,
                phone: None,
                living_alone: false,
                self_care: SelfCare::Independent,
            },
            deceased_on,
        }
    }

    #[test]
    fn eightieth_birthday_splits_the_key_status() {
        let case = FamilyCase {
            registered: true,
            members: vec![member(d(1946, 7, 15), None)],
            ..Default::default()
        };
        let p = key_periods(&case, &VisitPolicy::default());
        assert_eq!(
            p,
            vec![
                KeyPeriod {
                    valid_from: min_date(),
                    valid_to: d(2026, 7, 15),
                    key_person: false
                },
                KeyPeriod {
                    valid_from: d(2026, 7, 15),
                    valid_to: max_date(),
                    key_person: true
                },
            ]
        );
    }

    #[test]
    fn a_death_ends_the_key_status_and_leap_day_births_count_from_march_first() {
        let case = FamilyCase {
            registered: true,
            members: vec![member(d(1944, 2, 29), Some(d(2025, 1, 1)))],
            ..Default::default()
        };
        let p = key_periods(&case, &VisitPolicy::default());
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[1],
            KeyPeriod {
                valid_from: d(2024, 2, 29),
                valid_to: d(2025, 1, 1),
                key_person: true
            }
        );
        assert!(!p[2].key_person);
        let case = FamilyCase {
            registered: true,
            members: vec![member(d(1947, 2, 28), None), member(d(1948, 2, 29), None)],
            ..Default::default()
        };
        // 2027 is a common year: the leap-day parent turns 80 on 2028-02-29.
        let p = key_periods(&case, &VisitPolicy::default());
        assert_eq!(p[1].valid_from, d(2027, 2, 28));
    }

    #[test]
    fn cursor_round_trips() {
        let c = DueCursor {
            due_on: d(2026, 1, 2),
            family_id: Uuid::new_v4().to_string(),
            role: "village".into(),
        };
        assert_eq!(DueCursor::decode(&c.encode()), Some(c));
        assert_eq!(DueCursor::decode("garbage"), None);
    }
}
