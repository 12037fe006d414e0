//! Given/when/then tests of the `FamilyCase` aggregate. "Today" is
//! 2026-06-30 in UTC+8 (the clock says 2026-06-30T04:00:00Z).

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use cqrs_es::Aggregate;
use uuid::Uuid;

use super::*;
use crate::commands::FamilyCommand as C;
use crate::events::{ContactPerson, FamilyEvent as E, Member};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn text(s: &str) -> Text {
    Text::parse(s).expect("valid text")
}

fn phone() -> Phone {
    Phone::parse("13800138000").expect("valid phone")
}

fn offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

fn services() -> CaseServices {
    let now = "2026-06-30T04:00:00Z".parse().expect("valid instant");
    CaseServices::new(Arc::new(FixedClock(now)), offset())
}

const TODAY: (i32, u32, u32) = (2026, 6, 30);

fn today() -> NaiveDate {
    d(TODAY.0, TODAY.1, TODAY.2)
}

fn tomorrow() -> NaiveDate {
    d(2026, 7, 1)
}

const REG: u128 = 1;
const FATHER: u128 = 100;
const MOTHER: u128 = 101;
const VILLAGE_PERSON: u128 = 200;
const TOWNSHIP_PERSON: u128 = 201;

fn village_code() -> VillageCode {
    VillageCode::parse("450305001001").expect("valid code")
}

fn other_village_code() -> VillageCode {
    VillageCode::parse("450305002003").expect("valid code")
}

fn registered_on() -> NaiveDate {
    d(2026, 1, 10)
}

fn members() -> Vec<Member> {
    vec![
        Member {
            id: id(FATHER),
            name: "王建国".into(),
            sex: Sex::Male,
            birth_date: d(1949, 12, 31),
            id_number: Some(IdNumber::parse("110105194912310011").expect("valid id")),
            phone: Some(phone()),
            living_alone: false,
            self_care: SelfCare::Independent,
        },
        Member {
            id: id(MOTHER),
            name: "李秀英".into(),
            sex: Sex::Female,
            birth_date: d(1952, 3, 1),
            id_number: None,
            phone: None,
            living_alone: false,
            self_care: SelfCare::Independent,
        },
    ]
}

fn registered() -> E {
    E::FamilyRegistered {
        action_id: id(REG),
        category: Category::Bereaved,
        village_code: village_code(),
        address: "桂林市七星区某村 3 号".into(),
        registered_on: registered_on(),
        members: members(),
    }
}

fn person(n: u128) -> ContactPerson {
    ContactPerson {
        id: id(n),
        name: format!("联系人{n}"),
        phone: phone(),
    }
}

fn assigned(action: u128, role: Role, who: u128, on: NaiveDate) -> E {
    E::ContactAssigned {
        action_id: id(action),
        role,
        person: person(who),
        assigned_on: on,
    }
}

fn village_assigned() -> E {
    assigned(2, Role::Village, VILLAGE_PERSON, d(2026, 2, 1))
}

fn visit(action: u128, role: Role, who: u128, mode: VisitMode, on: NaiveDate) -> E {
    E::VisitRecorded {
        action_id: id(action),
        role,
        contact_id: id(who),
        mode,
        visited_on: on,
        findings: "一切安好".into(),
        needs: vec![],
    }
}

fn closed() -> E {
    E::CaseClosed {
        action_id: id(90),
        on: d(2026, 5, 1),
        reason: "moved away".into(),
    }
}

fn given(events: Vec<E>) -> AggregateTestExecutor<FamilyCase> {
    TestFramework::<FamilyCase>::with(services()).given(events)
}

fn case_of(events: Vec<E>) -> FamilyCase {
    let mut case = FamilyCase::default();
    for e in events {
        case.apply(e);
    }
    case
}

fn register_command(registered_on: NaiveDate, members: Vec<Member>) -> C {
    C::RegisterFamily {
        action_id: id(REG),
        category: Category::Bereaved,
        village_code: village_code(),
        address: text("桂林市七星区某村 3 号"),
        registered_on,
        members,
    }
}

fn status_command(action: u128, member: u128) -> C {
    C::UpdateMemberStatus {
        action_id: id(action),
        member_id: id(member),
        effective_on: d(2026, 3, 1),
        deceased_on: None,
        living_alone: Some(true),
        self_care: None,
        phone: None,
    }
}

fn visit_command(action: u128, role: Role, on: NaiveDate) -> C {
    C::RecordVisit {
        action_id: id(action),
        role,
        mode: VisitMode::Home,
        visited_on: on,
        findings: text("一切安好"),
        needs: vec![],
    }
}

fn void_command(action: u128, voided: u128) -> C {
    C::VoidAction {
        action_id: id(action),
        voided_action_id: id(voided),
        reason: text("recorded by mistake"),
    }
}

fn note_command(action: u128) -> C {
    C::AddNote {
        action_id: id(action),
        text: text("老人想念孩子"),
    }
}

// ---------------------------------------------------------------- register

#[test]
fn register_family_succeeds() {
    TestFramework::<FamilyCase>::with(services())
        .given_no_previous_events()
        .when(register_command(registered_on(), members()))
        .then_expect_events(vec![registered()]);
}

#[test]
fn register_family_today_is_allowed_tomorrow_is_not() {
    let mut expected = registered();
    if let E::FamilyRegistered { registered_on, .. } = &mut expected {
        *registered_on = today();
    }
    TestFramework::<FamilyCase>::with(services())
        .given_no_previous_events()
        .when(register_command(today(), members()))
        .then_expect_events(vec![expected]);
    TestFramework::<FamilyCase>::with(services())
        .given_no_previous_events()
        .when(register_command(tomorrow(), members()))
        .then_expect_error(CaseError::InFuture {
            field: "registered_on",
        });
}

#[test]
fn register_twice_is_rejected() {
    given(vec![registered()])
        .when(register_command(registered_on(), members()))
        .then_expect_error(CaseError::AlreadyRegistered);
}

#[test]
fn register_needs_one_to_four_members() {
    TestFramework::<FamilyCase>::with(services())
        .given_no_previous_events()
        .when(register_command(registered_on(), vec![]))
        .then_expect_error_message("`members` must list 1 to 4 members");
    let mut five = Vec::new();
    for n in 0..5 {
        let mut m = members()[0].clone();
        m.id = id(1000 + n);
        five.push(m);
    }
    TestFramework::<FamilyCase>::with(services())
        .given_no_previous_events()
        .when(register_command(registered_on(), five))
        .then_expect_error(CaseError::Invalid {
            field: "members",
            message: "must list 1 to 4 members",
        });
}

#[test]
fn register_rejects_birth_after_registration() {
    let mut ms = members();
    ms[1].birth_date = d(2026, 1, 11);
    TestFramework::<FamilyCase>::with(services())
        .given_no_previous_events()
        .when(register_command(registered_on(), ms))
        .then_expect_error(CaseError::Invalid {
            field: "members.birth_date",
            message: "must be at least 16 years before the registration date",
        });
}

/// Issue 10, item 6: implausible data is refused by the case itself, not
/// only at the API's edge.
#[test]
fn register_rejects_implausible_dates_and_disagreeing_id_numbers() {
    let refuse = |on: NaiveDate, ms: Vec<Member>, field: &'static str, message: &'static str| {
        TestFramework::<FamilyCase>::with(services())
            .given_no_previous_events()
            .when(register_command(on, ms))
            .then_expect_error(CaseError::Invalid { field, message });
    };
    // Registered in year 1, and in 1979 (before the policy existed).
    for on in [d(1, 1, 1), d(1979, 12, 31)] {
        refuse(
            on,
            members(),
            "registered_on",
            "must be a day from 1980-01-01 to 2099-12-31",
        );
    }
    // Born in 1800.
    let mut ms = members();
    ms[1].birth_date = d(1800, 5, 1);
    refuse(
        registered_on(),
        ms,
        "members.birth_date",
        "must be a day from 1900-01-01 on",
    );
    // The ID number's birth date (1949-12-31) disagrees with `birth_date`.
    let mut ms = members();
    ms[0].birth_date = d(1950, 3, 1);
    refuse(
        registered_on(),
        ms,
        "members.id_number",
        "does not agree with the birth date",
    );
    // A man's number (17th digit odd) on a woman.
    let mut ms = members();
    ms[0].sex = Sex::Female;
    refuse(
        registered_on(),
        ms,
        "members.id_number",
        "does not agree with the sex (17th digit)",
    );
}

#[test]
fn register_rejects_duplicate_member_ids() {
    let mut ms = members();
    ms[1].id = ms[0].id;
    TestFramework::<FamilyCase>::with(services())
        .given_no_previous_events()
        .when(register_command(registered_on(), ms))
        .then_expect_error(CaseError::Invalid {
            field: "members.id",
            message: "must be unique",
        });
}

#[test]
fn any_command_on_an_unregistered_case_is_rejected() {
    for command in [
        note_command(5),
        status_command(5, FATHER),
        visit_command(5, Role::Village, d(2026, 3, 1)),
        C::ReopenCase {
            action_id: id(5),
            on: d(2026, 3, 1),
            reason: text("x"),
        },
    ] {
        TestFramework::<FamilyCase>::with(services())
            .given_no_previous_events()
            .when(command)
            .then_expect_error_message("the family is not registered");
    }
}

#[test]
fn reusing_an_action_id_is_rejected() {
    given(vec![registered()])
        .when(note_command(REG))
        .then_expect_error(CaseError::Invalid {
            field: "action_id",
            message: "is already used in this case",
        });
}

// ----------------------------------------------------------- member status

#[test]
fn update_member_status_succeeds() {
    given(vec![registered()])
        .when(status_command(3, FATHER))
        .then_expect_events(vec![E::MemberStatusUpdated {
            action_id: id(3),
            member_id: id(FATHER),
            effective_on: d(2026, 3, 1),
            deceased_on: None,
            living_alone: Some(true),
            self_care: None,
            phone: None,
        }]);
}

#[test]
fn update_member_status_records_a_death() {
    given(vec![registered()])
        .when(C::UpdateMemberStatus {
            action_id: id(3),
            member_id: id(MOTHER),
            effective_on: d(2026, 4, 2),
            deceased_on: Some(d(2026, 4, 1)),
            living_alone: None,
            self_care: None,
            phone: None,
        })
        .then_expect_events(vec![E::MemberStatusUpdated {
            action_id: id(3),
            member_id: id(MOTHER),
            effective_on: d(2026, 4, 2),
            deceased_on: Some(d(2026, 4, 1)),
            living_alone: None,
            self_care: None,
            phone: None,
        }]);
}

#[test]
fn update_member_status_of_unknown_member_is_rejected() {
    given(vec![registered()])
        .when(status_command(3, 999))
        .then_expect_error(CaseError::UnknownMember);
}

#[test]
fn update_member_status_of_deceased_member_is_rejected() {
    given(vec![
        registered(),
        E::MemberStatusUpdated {
            action_id: id(3),
            member_id: id(FATHER),
            effective_on: d(2026, 4, 2),
            deceased_on: Some(d(2026, 4, 1)),
            living_alone: None,
            self_care: None,
            phone: None,
        },
    ])
    .when(status_command(4, FATHER))
    .then_expect_error(CaseError::MemberDeceased);
}

#[test]
fn update_member_status_must_change_something() {
    given(vec![registered()])
        .when(C::UpdateMemberStatus {
            action_id: id(3),
            member_id: id(FATHER),
            effective_on: d(2026, 3, 1),
            deceased_on: None,
            living_alone: None,
            self_care: None,
            phone: None,
        })
        .then_expect_error(CaseError::Invalid {
            field: "body",
            message: "must change at least one of deceased_on, living_alone, self_care, phone",
        });
}

#[test]
fn update_member_status_dates_are_checked() {
    let mut before = status_command(3, FATHER);
    if let C::UpdateMemberStatus { effective_on, .. } = &mut before {
        *effective_on = d(2026, 1, 9);
    }
    given(vec![registered()])
        .when(before)
        .then_expect_error(CaseError::BeforeRegistration {
            field: "effective_on",
        });
    let mut future = status_command(3, FATHER);
    if let C::UpdateMemberStatus { effective_on, .. } = &mut future {
        *effective_on = tomorrow();
    }
    given(vec![registered()])
        .when(future)
        .then_expect_error(CaseError::InFuture {
            field: "effective_on",
        });
    given(vec![registered()])
        .when(C::UpdateMemberStatus {
            action_id: id(3),
            member_id: id(FATHER),
            effective_on: d(2026, 3, 1),
            deceased_on: Some(d(2025, 12, 1)),
            living_alone: None,
            self_care: None,
            phone: None,
        })
        .then_expect_error_message("`deceased_on` is before the family's registration date");
}

// ---------------------------------------------------------------- contacts

#[test]
fn assign_contact_succeeds() {
    given(vec![registered()])
        .when(C::AssignContact {
            action_id: id(2),
            role: Role::Village,
            person: person(VILLAGE_PERSON),
            assigned_on: d(2026, 2, 1),
        })
        .then_expect_events(vec![village_assigned()]);
}

#[test]
fn assign_contact_replaces_the_current_holder() {
    let event = assigned(3, Role::Village, 202, d(2026, 3, 1));
    given(vec![registered(), village_assigned()])
        .when(C::AssignContact {
            action_id: id(3),
            role: Role::Village,
            person: person(202),
            assigned_on: d(2026, 3, 1),
        })
        .then_expect_events(vec![event.clone()]);
    let case = case_of(vec![registered(), village_assigned(), event]);
    let holder = case.contacts.get(Role::Village).expect("assigned");
    assert_eq!(holder.person.id, id(202));
    assert_eq!(holder.action_id, id(3));
}

#[test]
fn assign_contact_dates_are_checked() {
    for (on, err) in [
        (
            d(2026, 1, 9),
            CaseError::BeforeRegistration {
                field: "assigned_on",
            },
        ),
        (
            tomorrow(),
            CaseError::InFuture {
                field: "assigned_on",
            },
        ),
    ] {
        given(vec![registered()])
            .when(C::AssignContact {
                action_id: id(2),
                role: Role::Township,
                person: person(TOWNSHIP_PERSON),
                assigned_on: on,
            })
            .then_expect_error(err);
    }
}

fn release_command(role: Role, on: NaiveDate) -> C {
    C::ReleaseContact {
        action_id: id(3),
        role,
        released_on: on,
        reason: text("调岗"),
    }
}

#[test]
fn release_contact_succeeds_and_names_the_released_contact() {
    given(vec![registered(), village_assigned()])
        .when(release_command(Role::Village, d(2026, 5, 1)))
        .then_expect_events(vec![E::ContactReleased {
            action_id: id(3),
            role: Role::Village,
            contact_id: id(VILLAGE_PERSON),
            released_on: d(2026, 5, 1),
            reason: "调岗".into(),
        }]);
}

#[test]
fn release_contact_without_contact_is_rejected() {
    given(vec![registered(), village_assigned()])
        .when(release_command(Role::Township, d(2026, 5, 1)))
        .then_expect_error_message("no township contact is assigned");
}

#[test]
fn release_contact_dates_are_checked() {
    given(vec![registered(), village_assigned()])
        .when(release_command(Role::Village, tomorrow()))
        .then_expect_error(CaseError::InFuture {
            field: "released_on",
        });
    given(vec![registered(), village_assigned()])
        .when(release_command(Role::Village, d(2026, 1, 1)))
        .then_expect_error(CaseError::BeforeRegistration {
            field: "released_on",
        });
    given(vec![registered(), village_assigned()])
        .when(release_command(Role::Village, d(2026, 1, 31)))
        .then_expect_error(CaseError::BeforeAssignment {
            field: "released_on",
        });
}

// ------------------------------------------------------------------ visits

#[test]
fn record_visit_succeeds_and_carries_the_contact() {
    given(vec![registered(), village_assigned()])
        .when(C::RecordVisit {
            action_id: id(3),
            role: Role::Village,
            mode: VisitMode::Phone,
            visited_on: d(2026, 6, 1),
            findings: text("一切安好"),
            needs: vec!["medicine".into()],
        })
        .then_expect_events(vec![E::VisitRecorded {
            action_id: id(3),
            role: Role::Village,
            contact_id: id(VILLAGE_PERSON),
            mode: VisitMode::Phone,
            visited_on: d(2026, 6, 1),
            findings: "一切安好".into(),
            needs: vec!["medicine".into()],
        }]);
}

#[test]
fn record_visit_on_the_assignment_day_and_today_is_allowed() {
    for on in [d(2026, 2, 1), today()] {
        given(vec![registered(), village_assigned()])
            .when(visit_command(3, Role::Village, on))
            .then_expect_events(vec![visit(
                3,
                Role::Village,
                VILLAGE_PERSON,
                VisitMode::Home,
                on,
            )]);
    }
}

#[test]
fn record_visit_without_contact_is_rejected() {
    given(vec![registered(), village_assigned()])
        .when(visit_command(3, Role::Township, d(2026, 6, 1)))
        .then_expect_error(CaseError::NoContact(Role::Township));
}

#[test]
fn record_visit_before_assignment_is_rejected() {
    given(vec![registered(), village_assigned()])
        .when(visit_command(3, Role::Village, d(2026, 1, 31)))
        .then_expect_error(CaseError::BeforeAssignment {
            field: "visited_on",
        });
}

/// Issue 10, item 6: a visit listing 10,000 needs.
#[test]
fn record_visit_with_too_many_needs_is_rejected() {
    let mut visit = visit_command(3, Role::Village, d(2026, 3, 1));
    if let C::RecordVisit { needs, .. } = &mut visit {
        *needs = vec!["轮椅".to_owned(); MAX_NEEDS + 1];
    }
    given(vec![registered(), village_assigned()])
        .when(visit)
        .then_expect_error(CaseError::Invalid {
            field: "needs",
            message: "must list at most 20 needs",
        });
}

#[test]
fn record_visit_dates_are_checked() {
    given(vec![registered(), village_assigned()])
        .when(visit_command(3, Role::Village, tomorrow()))
        .then_expect_error_message("`visited_on` is in the future");
    given(vec![registered(), village_assigned()])
        .when(visit_command(3, Role::Village, d(2026, 1, 9)))
        .then_expect_error_message("`visited_on` is before the family's registration date");
}

// ------------------------------------------------------ emergency contacts

fn emergency_contact_set(action: u128) -> E {
    E::EmergencyContactSet {
        action_id: id(action),
        emergency_contact_id: id(action),
        name: "王小明".into(),
        relation: "侄子".into(),
        phone: phone(),
        priority: 1,
    }
}

#[test]
fn set_emergency_contact_uses_the_action_id_as_its_id() {
    given(vec![registered()])
        .when(C::SetEmergencyContact {
            action_id: id(7),
            name: text("王小明"),
            relation: text("侄子"),
            phone: phone(),
            priority: 1,
        })
        .then_expect_events(vec![emergency_contact_set(7)]);
}

#[test]
fn remove_emergency_contact_succeeds() {
    given(vec![registered(), emergency_contact_set(7)])
        .when(C::RemoveEmergencyContact {
            action_id: id(8),
            emergency_contact_id: id(7),
            reason: text("号码停用"),
        })
        .then_expect_events(vec![E::EmergencyContactRemoved {
            action_id: id(8),
            emergency_contact_id: id(7),
            reason: "号码停用".into(),
        }]);
}

#[test]
fn remove_unknown_emergency_contact_is_rejected() {
    let removed = E::EmergencyContactRemoved {
        action_id: id(8),
        emergency_contact_id: id(7),
        reason: "号码停用".into(),
    };
    for events in [
        vec![registered()],
        vec![registered(), emergency_contact_set(7), removed],
    ] {
        given(events)
            .when(C::RemoveEmergencyContact {
                action_id: id(9),
                emergency_contact_id: id(7),
                reason: text("x"),
            })
            .then_expect_error(CaseError::UnknownEmergencyContact);
    }
}

// -------------------------------------------------------------- emergencies

fn instant(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("valid instant")
}

fn emergency_command(at: &str) -> C {
    C::RecordEmergency {
        action_id: id(10),
        occurred_at: instant(at),
        description: text("跌倒"),
        responder: text("村医"),
        outcome: text("送医"),
    }
}

#[test]
fn record_emergency_takes_the_local_day() {
    // 20:00 UTC on the 29th is 04:00 on the 30th in UTC+8.
    given(vec![registered()])
        .when(emergency_command("2026-06-29T20:00:00Z"))
        .then_expect_events(vec![E::EmergencyRecorded {
            action_id: id(10),
            occurred_at: instant("2026-06-29T20:00:00Z"),
            occurred_on: d(2026, 6, 30),
            description: "跌倒".into(),
            responder: "村医".into(),
            outcome: "送医".into(),
        }]);
}

#[test]
fn record_emergency_dates_are_checked_in_local_time() {
    // 17:00 UTC on the 30th is already 1 July in UTC+8.
    given(vec![registered()])
        .when(emergency_command("2026-06-30T17:00:00Z"))
        .then_expect_error(CaseError::InFuture {
            field: "occurred_at",
        });
    // 23:00+08:00 on 9 January: the day before registration.
    given(vec![registered()])
        .when(emergency_command("2026-01-09T23:00:00+08:00"))
        .then_expect_error(CaseError::BeforeRegistration {
            field: "occurred_at",
        });
}

// ------------------------------------------------------------ elderly care

fn elderly_care_command(member: u128, from: NaiveDate, to: Option<NaiveDate>) -> C {
    C::RecordElderlyCare {
        action_id: id(11),
        member_id: id(member),
        service: ElderlyCareService::MealAssistance,
        provider: text("幸福院"),
        from,
        to,
    }
}

#[test]
fn record_elderly_care_succeeds_with_a_future_end() {
    given(vec![registered()])
        .when(elderly_care_command(
            MOTHER,
            d(2026, 6, 1),
            Some(d(2026, 12, 31)),
        ))
        .then_expect_events(vec![E::ElderlyCareRecorded {
            action_id: id(11),
            member_id: id(MOTHER),
            service: ElderlyCareService::MealAssistance,
            provider: "幸福院".into(),
            from: d(2026, 6, 1),
            to: Some(d(2026, 12, 31)),
        }]);
}

#[test]
fn record_elderly_care_for_unknown_member_is_rejected() {
    given(vec![registered()])
        .when(elderly_care_command(999, d(2026, 6, 1), None))
        .then_expect_error(CaseError::UnknownMember);
}

#[test]
fn record_elderly_care_dates_are_checked() {
    given(vec![registered()])
        .when(elderly_care_command(FATHER, tomorrow(), None))
        .then_expect_error(CaseError::InFuture { field: "from" });
    given(vec![registered()])
        .when(elderly_care_command(FATHER, d(2025, 6, 1), None))
        .then_expect_error(CaseError::BeforeRegistration { field: "from" });
    given(vec![registered()])
        .when(elderly_care_command(
            FATHER,
            d(2026, 6, 1),
            Some(d(2026, 5, 31)),
        ))
        .then_expect_error_message("`to` must not be before `from`");
}

// -------------------------------------------------------------- assistance

fn assistance_command(on: NaiveDate) -> C {
    C::RecordAssistance {
        action_id: id(12),
        area: AssistanceArea::Medical,
        amount_fen: Some(AmountFen::new(50_000).expect("valid amount")),
        provided_on: on,
        description: text("住院补助"),
    }
}

#[test]
fn record_assistance_succeeds() {
    given(vec![registered()])
        .when(assistance_command(d(2026, 6, 15)))
        .then_expect_events(vec![E::AssistanceRecorded {
            action_id: id(12),
            area: AssistanceArea::Medical,
            amount_fen: Some(AmountFen::new(50_000).expect("valid amount")),
            provided_on: d(2026, 6, 15),
            description: "住院补助".into(),
        }]);
}

#[test]
fn record_assistance_dates_are_checked() {
    given(vec![registered()])
        .when(assistance_command(tomorrow()))
        .then_expect_error(CaseError::InFuture {
            field: "provided_on",
        });
    given(vec![registered()])
        .when(assistance_command(d(2026, 1, 9)))
        .then_expect_error(CaseError::BeforeRegistration {
            field: "provided_on",
        });
}

// ------------------------------------------------------------------- notes

#[test]
fn add_note_succeeds() {
    given(vec![registered()])
        .when(note_command(13))
        .then_expect_events(vec![E::NoteAdded {
            action_id: id(13),
            text: "老人想念孩子".into(),
        }]);
}

// ------------------------------------------------------------------- voids

fn voided(action: u128, target: u128) -> E {
    E::ActionVoided {
        action_id: id(action),
        voided_action_id: id(target),
        reason: "recorded by mistake".into(),
    }
}

#[test]
fn void_of_each_voidable_action_succeeds() {
    let status = E::MemberStatusUpdated {
        action_id: id(20),
        member_id: id(FATHER),
        effective_on: d(2026, 3, 1),
        deceased_on: None,
        living_alone: Some(true),
        self_care: None,
        phone: None,
    };
    let emergency = E::EmergencyRecorded {
        action_id: id(21),
        occurred_at: instant("2026-06-29T20:00:00Z"),
        occurred_on: d(2026, 6, 30),
        description: "跌倒".into(),
        responder: "村医".into(),
        outcome: "送医".into(),
    };
    let care = E::ElderlyCareRecorded {
        action_id: id(22),
        member_id: id(MOTHER),
        service: ElderlyCareService::DayCare,
        provider: "幸福院".into(),
        from: d(2026, 6, 1),
        to: None,
    };
    let assistance = E::AssistanceRecorded {
        action_id: id(23),
        area: AssistanceArea::LivingSupport,
        amount_fen: None,
        provided_on: d(2026, 6, 1),
        description: "米油".into(),
    };
    let note = E::NoteAdded {
        action_id: id(24),
        text: "note".into(),
    };
    let history = vec![
        registered(),
        village_assigned(),
        visit(
            3,
            Role::Village,
            VILLAGE_PERSON,
            VisitMode::Home,
            d(2026, 3, 1),
        ),
        status,
        emergency,
        care,
        assistance,
        note,
        emergency_contact_set(25),
    ];
    for target in [2, 3, 20, 21, 22, 23, 24, 25] {
        given(history.clone())
            .when(void_command(50, target))
            .then_expect_events(vec![voided(50, target)]);
    }
}

#[test]
fn void_of_unknown_action_is_rejected() {
    given(vec![registered()])
        .when(void_command(50, 777))
        .then_expect_error(CaseError::UnknownAction);
}

#[test]
fn void_twice_is_rejected() {
    given(vec![
        registered(),
        E::NoteAdded {
            action_id: id(24),
            text: "note".into(),
        },
        voided(50, 24),
    ])
    .when(void_command(51, 24))
    .then_expect_error(CaseError::AlreadyVoided);
}

#[test]
fn void_of_non_voidable_actions_is_rejected() {
    let history = vec![
        registered(),
        village_assigned(),
        E::ContactReleased {
            action_id: id(30),
            role: Role::Village,
            contact_id: id(VILLAGE_PERSON),
            released_on: d(2026, 3, 1),
            reason: "调岗".into(),
        },
        emergency_contact_set(25),
        E::EmergencyContactRemoved {
            action_id: id(31),
            emergency_contact_id: id(25),
            reason: "x".into(),
        },
        E::NoteAdded {
            action_id: id(24),
            text: "note".into(),
        },
        voided(32, 24),
        E::FamilyTransferred {
            action_id: id(33),
            from_village_code: village_code(),
            village_code: other_village_code(),
            transferred_on: d(2026, 4, 1),
            reason: "搬迁".into(),
        },
        E::CaseClosed {
            action_id: id(34),
            on: d(2026, 5, 1),
            reason: "x".into(),
        },
        E::CaseReopened {
            action_id: id(35),
            on: d(2026, 5, 2),
            reason: "x".into(),
        },
    ];
    for target in [REG, 30, 31, 32, 33, 34, 35] {
        given(history.clone())
            .when(void_command(50, target))
            .then_expect_error(CaseError::NotVoidable);
    }
}

#[test]
fn void_of_a_replaced_assignment_is_rejected() {
    given(vec![
        registered(),
        village_assigned(),
        assigned(3, Role::Village, 202, d(2026, 3, 1)),
    ])
    .when(void_command(50, 2))
    .then_expect_error(CaseError::NotVoidable);
    // Released, or cleared by a transfer: no longer the holder either.
    given(vec![
        registered(),
        village_assigned(),
        E::FamilyTransferred {
            action_id: id(33),
            from_village_code: village_code(),
            village_code: other_village_code(),
            transferred_on: d(2026, 4, 1),
            reason: "搬迁".into(),
        },
    ])
    .when(void_command(50, 2))
    .then_expect_error(CaseError::NotVoidable);
}

// ---------------------------------------------------------------- transfer

fn transfer_command(code: VillageCode, on: NaiveDate) -> C {
    C::Transfer {
        action_id: id(40),
        village_code: code,
        transferred_on: on,
        reason: text("搬迁"),
    }
}

#[test]
fn transfer_succeeds_and_carries_the_old_village() {
    given(vec![registered(), village_assigned()])
        .when(transfer_command(other_village_code(), d(2026, 6, 1)))
        .then_expect_events(vec![E::FamilyTransferred {
            action_id: id(40),
            from_village_code: village_code(),
            village_code: other_village_code(),
            transferred_on: d(2026, 6, 1),
            reason: "搬迁".into(),
        }]);
}

#[test]
fn transfer_to_the_same_village_is_rejected() {
    given(vec![registered()])
        .when(transfer_command(village_code(), d(2026, 6, 1)))
        .then_expect_error(CaseError::SameVillage);
}

#[test]
fn transfer_dates_are_checked() {
    given(vec![registered()])
        .when(transfer_command(other_village_code(), tomorrow()))
        .then_expect_error(CaseError::InFuture {
            field: "transferred_on",
        });
    given(vec![registered()])
        .when(transfer_command(other_village_code(), d(2026, 1, 1)))
        .then_expect_error(CaseError::BeforeRegistration {
            field: "transferred_on",
        });
}

// ------------------------------------------------------------ close/reopen

fn close_command(on: NaiveDate) -> C {
    C::CloseCase {
        action_id: id(60),
        on,
        reason: text("moved away"),
    }
}

fn reopen_command(on: NaiveDate) -> C {
    C::ReopenCase {
        action_id: id(61),
        on,
        reason: text("returned"),
    }
}

#[test]
fn close_case_succeeds() {
    given(vec![registered()])
        .when(close_command(d(2026, 6, 1)))
        .then_expect_events(vec![E::CaseClosed {
            action_id: id(60),
            on: d(2026, 6, 1),
            reason: "moved away".into(),
        }]);
}

#[test]
fn close_case_dates_are_checked() {
    given(vec![registered()])
        .when(close_command(tomorrow()))
        .then_expect_error(CaseError::InFuture { field: "on" });
    given(vec![registered()])
        .when(close_command(d(2026, 1, 1)))
        .then_expect_error(CaseError::BeforeRegistration { field: "on" });
}

#[test]
fn every_command_but_reopen_on_a_closed_case_is_rejected() {
    let history = vec![
        registered(),
        village_assigned(),
        emergency_contact_set(25),
        closed(),
    ];
    for command in [
        register_command(registered_on(), members()),
        status_command(70, FATHER),
        C::AssignContact {
            action_id: id(70),
            role: Role::Township,
            person: person(TOWNSHIP_PERSON),
            assigned_on: d(2026, 6, 1),
        },
        release_command(Role::Village, d(2026, 6, 1)),
        visit_command(70, Role::Village, d(2026, 6, 1)),
        C::SetEmergencyContact {
            action_id: id(70),
            name: text("a"),
            relation: text("b"),
            phone: phone(),
            priority: 2,
        },
        C::RemoveEmergencyContact {
            action_id: id(70),
            emergency_contact_id: id(25),
            reason: text("x"),
        },
        emergency_command("2026-06-01T00:00:00Z"),
        elderly_care_command(FATHER, d(2026, 6, 1), None),
        assistance_command(d(2026, 6, 1)),
        note_command(70),
        void_command(70, 25),
        transfer_command(other_village_code(), d(2026, 6, 1)),
        close_command(d(2026, 6, 1)),
    ] {
        let expected = if matches!(command, C::RegisterFamily { .. }) {
            CaseError::AlreadyRegistered
        } else {
            CaseError::Closed
        };
        given(history.clone())
            .when(command)
            .then_expect_error(expected);
    }
}

#[test]
fn reopen_case_succeeds() {
    given(vec![registered(), closed()])
        .when(reopen_command(d(2026, 6, 1)))
        .then_expect_events(vec![E::CaseReopened {
            action_id: id(61),
            on: d(2026, 6, 1),
            reason: "returned".into(),
        }]);
}

#[test]
fn reopen_of_an_open_case_is_rejected() {
    given(vec![registered()])
        .when(reopen_command(d(2026, 6, 1)))
        .then_expect_error(CaseError::NotClosed);
}

#[test]
fn reopen_dates_are_checked() {
    given(vec![registered(), closed()])
        .when(reopen_command(tomorrow()))
        .then_expect_error(CaseError::InFuture { field: "on" });
    given(vec![registered(), closed()])
        .when(reopen_command(d(2026, 4, 30)))
        .then_expect_error(CaseError::BeforeClosing { field: "on" });
}

// ------------------------------------------------------------------ evolve

#[test]
fn registration_sets_the_state_and_records_the_action() {
    let case = case_of(vec![registered()]);
    assert!(case.registered);
    assert_eq!(case.status, CaseStatus::Open);
    assert_eq!(case.category, Some(Category::Bereaved));
    assert_eq!(case.village_code, Some(village_code()));
    assert_eq!(case.registered_on, Some(registered_on()));
    assert_eq!(case.members.len(), 2);
    assert!(case.members.iter().all(|m| m.deceased_on.is_none()));
    assert_eq!(case.registered_members, members());
    assert_eq!(
        case.actions.get(&id(REG)),
        Some(&ActionRecord {
            event_type: crate::events::ActionKind::FamilyRegistered,
            voided_by: None
        })
    );
}

#[test]
fn void_of_a_visit_removes_it() {
    let mut case = case_of(vec![
        registered(),
        village_assigned(),
        visit(
            3,
            Role::Village,
            VILLAGE_PERSON,
            VisitMode::Home,
            d(2026, 3, 1),
        ),
        visit(
            4,
            Role::Village,
            VILLAGE_PERSON,
            VisitMode::Phone,
            d(2026, 4, 1),
        ),
    ]);
    assert_eq!(case.visits.len(), 2);
    case.apply(voided(50, 4));
    assert_eq!(case.visits.len(), 1);
    assert_eq!(case.visits[0].action_id, id(3));
    assert_eq!(case.actions[&id(4)].voided_by, Some(id(50)));
    assert_eq!(
        case.actions[&id(50)].event_type,
        crate::events::ActionKind::ActionVoided
    );
}

#[test]
fn void_removes_items_from_every_list() {
    let mut case = case_of(vec![
        registered(),
        emergency_contact_set(25),
        E::NoteAdded {
            action_id: id(24),
            text: "note".into(),
        },
        E::AssistanceRecorded {
            action_id: id(23),
            area: AssistanceArea::LivingSupport,
            amount_fen: None,
            provided_on: d(2026, 6, 1),
            description: "米油".into(),
        },
        E::ElderlyCareRecorded {
            action_id: id(22),
            member_id: id(MOTHER),
            service: ElderlyCareService::DayCare,
            provider: "幸福院".into(),
            from: d(2026, 6, 1),
            to: None,
        },
        E::EmergencyRecorded {
            action_id: id(21),
            occurred_at: instant("2026-06-29T20:00:00Z"),
            occurred_on: d(2026, 6, 30),
            description: "跌倒".into(),
            responder: "村医".into(),
            outcome: "送医".into(),
        },
    ]);
    assert_eq!(case.emergency_contacts.len(), 1);
    for (n, target) in [21, 22, 23, 24, 25].into_iter().enumerate() {
        case.apply(voided(50 + n as u128, target));
    }
    assert!(case.emergency_contacts.is_empty());
    assert!(case.notes.is_empty());
    assert!(case.assistance.is_empty());
    assert!(case.elderly_care.is_empty());
    assert!(case.emergencies.is_empty());
}

#[test]
fn void_of_a_status_update_refolds_members_and_deaths() {
    let living_alone = E::MemberStatusUpdated {
        action_id: id(20),
        member_id: id(FATHER),
        effective_on: d(2026, 3, 1),
        deceased_on: None,
        living_alone: Some(true),
        self_care: Some(SelfCare::SemiDependent),
        phone: None,
    };
    let death = E::MemberStatusUpdated {
        action_id: id(21),
        member_id: id(MOTHER),
        effective_on: d(2026, 4, 2),
        deceased_on: Some(d(2026, 4, 1)),
        living_alone: None,
        self_care: None,
        phone: None,
    };
    let later = E::MemberStatusUpdated {
        action_id: id(22),
        member_id: id(FATHER),
        effective_on: d(2026, 5, 1),
        deceased_on: None,
        living_alone: None,
        self_care: Some(SelfCare::Dependent),
        phone: None,
    };
    let mut case = case_of(vec![registered(), living_alone, death, later]);
    let father = case.member(id(FATHER)).expect("member").clone();
    assert!(father.member.living_alone);
    assert_eq!(father.member.self_care, SelfCare::Dependent);
    assert_eq!(
        case.member(id(MOTHER)).expect("member").deceased_on,
        Some(d(2026, 4, 1))
    );
    assert_eq!(
        case.deaths,
        vec![Death {
            action_id: id(21),
            member_id: id(MOTHER),
            on: d(2026, 4, 1)
        }]
    );

    // Voiding the first update keeps the later one's self-care.
    case.apply(voided(50, 20));
    let father = case.member(id(FATHER)).expect("member");
    assert!(!father.member.living_alone);
    assert_eq!(father.member.self_care, SelfCare::Dependent);

    // Voiding the death brings the member back and drops the death.
    case.apply(voided(51, 21));
    assert_eq!(case.member(id(MOTHER)).expect("member").deceased_on, None);
    assert!(case.deaths.is_empty());
    assert_eq!(case.status_updates.len(), 3);
}

#[test]
fn a_voided_death_allows_status_updates_again() {
    given(vec![
        registered(),
        E::MemberStatusUpdated {
            action_id: id(21),
            member_id: id(MOTHER),
            effective_on: d(2026, 4, 2),
            deceased_on: Some(d(2026, 4, 1)),
            living_alone: None,
            self_care: None,
            phone: None,
        },
        voided(50, 21),
    ])
    .when(status_command(60, MOTHER))
    .then_expect_events(vec![E::MemberStatusUpdated {
        action_id: id(60),
        member_id: id(MOTHER),
        effective_on: d(2026, 3, 1),
        deceased_on: None,
        living_alone: Some(true),
        self_care: None,
        phone: None,
    }]);
}

#[test]
fn void_of_the_current_assignment_clears_the_slot() {
    let mut case = case_of(vec![registered(), village_assigned()]);
    assert!(case.contacts.village.is_some());
    case.apply(voided(50, 2));
    assert!(case.contacts.village.is_none());
}

#[test]
fn release_clears_the_slot() {
    let case = case_of(vec![
        registered(),
        village_assigned(),
        E::ContactReleased {
            action_id: id(30),
            role: Role::Village,
            contact_id: id(VILLAGE_PERSON),
            released_on: d(2026, 3, 1),
            reason: "调岗".into(),
        },
    ]);
    assert!(case.contacts.village.is_none());
}

#[test]
fn transfer_clears_contacts_and_moves_the_family() {
    let case = case_of(vec![
        registered(),
        village_assigned(),
        assigned(3, Role::Township, TOWNSHIP_PERSON, d(2026, 2, 2)),
        E::FamilyTransferred {
            action_id: id(40),
            from_village_code: village_code(),
            village_code: other_village_code(),
            transferred_on: d(2026, 6, 1),
            reason: "搬迁".into(),
        },
    ]);
    assert_eq!(case.contacts, Contacts::default());
    assert_eq!(case.village_code, Some(other_village_code()));
    assert_eq!(case.transferred_on, Some(d(2026, 6, 1)));
}

#[test]
fn close_and_reopen_set_the_status() {
    let mut case = case_of(vec![registered(), closed()]);
    assert_eq!(case.status, CaseStatus::Closed);
    assert_eq!(case.closed_on, Some(d(2026, 5, 1)));
    case.apply(E::CaseReopened {
        action_id: id(61),
        on: d(2026, 6, 1),
        reason: "returned".into(),
    });
    assert_eq!(case.status, CaseStatus::Open);
    assert_eq!(case.closed_on, None);
}

#[test]
fn emergency_contacts_are_removed_by_id() {
    let case = case_of(vec![
        registered(),
        emergency_contact_set(25),
        emergency_contact_set(26),
        E::EmergencyContactRemoved {
            action_id: id(31),
            emergency_contact_id: id(25),
            reason: "x".into(),
        },
    ]);
    assert_eq!(case.emergency_contacts.len(), 1);
    assert_eq!(case.emergency_contacts[0].id, id(26));
}

#[test]
fn state_survives_a_json_round_trip() {
    let case = case_of(vec![
        registered(),
        village_assigned(),
        visit(
            3,
            Role::Village,
            VILLAGE_PERSON,
            VisitMode::Home,
            d(2026, 3, 1),
        ),
        status_like_death(),
    ]);
    let json = serde_json::to_string(&case).expect("serializes");
    let back: FamilyCase = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, case);
}

fn status_like_death() -> E {
    E::MemberStatusUpdated {
        action_id: id(21),
        member_id: id(MOTHER),
        effective_on: d(2026, 4, 2),
        deceased_on: Some(d(2026, 4, 1)),
        living_alone: None,
        self_care: None,
        phone: None,
    }
}

#[test]
fn decide_then_evolve_walks_a_whole_case() {
    let s = services();
    let mut case = FamilyCase::default();
    let commands = vec![
        register_command(registered_on(), members()),
        C::AssignContact {
            action_id: id(2),
            role: Role::Village,
            person: person(VILLAGE_PERSON),
            assigned_on: d(2026, 2, 1),
        },
        visit_command(3, Role::Village, d(2026, 3, 1)),
        note_command(4),
        void_command(5, 3),
        close_command(d(2026, 6, 1)),
        reopen_command(d(2026, 6, 2)),
    ];
    for command in commands {
        let event = case
            .decide(command, s.today(), s.offset)
            .expect("command accepted");
        case.evolve(event);
    }
    assert_eq!(s.today(), today());
    assert!(case.visits.is_empty());
    assert_eq!(case.notes.len(), 1);
    assert_eq!(case.status, CaseStatus::Open);
    assert_eq!(case.actions.len(), 7);
}

#[path = "insurance_tests.rs"]
mod insurance;

fn erase_command(action: u128, on: NaiveDate) -> C {
    C::EraseFamily {
        action_id: id(action),
        on,
        reason: crate::events::ErasureReason::ConsentWithdrawn,
    }
}

fn erased() -> E {
    E::FamilyErased {
        action_id: id(91),
        on: today(),
        reason: crate::events::ErasureReason::ConsentWithdrawn,
    }
}

#[test]
fn erasing_a_closed_case_records_the_erasure() {
    given(vec![registered(), closed()])
        .when(erase_command(91, today()))
        .then_expect_events(vec![erased()]);
    let case = case_of(vec![registered(), closed(), erased()]);
    assert_eq!(case.erased_on, Some(today()));
}

#[test]
fn an_open_case_is_not_erased() {
    given(vec![registered()])
        .when(erase_command(91, today()))
        .then_expect_error(CaseError::OpenForErasure);
}

#[test]
fn an_erasure_is_dated_within_the_case_and_not_before_the_closing() {
    given(vec![registered(), closed()])
        .when(erase_command(91, d(2026, 4, 30)))
        .then_expect_error(CaseError::BeforeClosing { field: "on" });
    given(vec![registered(), closed()])
        .when(erase_command(91, tomorrow()))
        .then_expect_error(CaseError::InFuture { field: "on" });
}

#[test]
fn nothing_is_recorded_for_an_erased_family_not_even_a_reopening_or_an_erasure() {
    let reopen = C::ReopenCase {
        action_id: id(92),
        on: today(),
        reason: text("back"),
    };
    for command in [reopen, note_command(93), erase_command(94, today())] {
        given(vec![registered(), closed(), erased()])
            .when(command)
            .then_expect_error(CaseError::Erased);
    }
}

#[test]
fn an_erasure_cannot_be_voided() {
    given(vec![registered(), closed(), erased()])
        .when(void_command(95, 91))
        .then_expect_error(CaseError::Erased);
    assert!(!crate::events::ActionKind::FamilyErased.voidable());
}
