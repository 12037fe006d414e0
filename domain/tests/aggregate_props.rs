//! Property tests of the `FamilyCase` aggregate: any sequence of commands,
//! well-formed or not, in any order.
//!
//! - `decide` never panics, and a refused command changes nothing (it only
//!   reads the state);
//! - folding the accepted events, after a round trip through JSON as the
//!   store keeps them, gives exactly the state the commands saw, and so does
//!   the state's own JSON (the case-file row);
//! - each accepted command becomes one event carrying its action id;
//! - a voided action never comes back: once voided it is out of every list
//!   for good, and voiding it again is refused.

use std::collections::BTreeSet;

use chrono::{Days, FixedOffset, NaiveDate, TimeZone};
use nuanxin_domain::aggregate::{CaseError, CaseStatus, FamilyCase};
use nuanxin_domain::events::{ContactPerson, Member};
use nuanxin_domain::values::*;
use nuanxin_domain::{FamilyCommand as C, FamilyEvent};
use proptest::prelude::*;
use uuid::Uuid;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

fn offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

/// A day near the case's life: from before registration to after today.
fn day(n: u16) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 12, 1).unwrap() + Days::new(u64::from(n % 240))
}

fn text(s: &str) -> Text {
    Text::parse(s).unwrap()
}

fn phone() -> Phone {
    Phone::parse("13800138000").unwrap()
}

/// One step of a random session; indices pick among what exists so far.
#[derive(Debug, Clone)]
enum Step {
    Register {
        on: u16,
        members: u8,
        bad_birth: bool,
    },
    Status {
        member: u8,
        on: u16,
        dies: bool,
        alone: Option<bool>,
    },
    Assign {
        village: bool,
        on: u16,
    },
    Release {
        village: bool,
        on: u16,
    },
    Visit {
        village: bool,
        mode: u8,
        on: u16,
        needs: u8,
    },
    EmergencyContact {
        priority: u8,
    },
    RemoveEmergencyContact {
        pick: u8,
    },
    Emergency {
        on: u16,
    },
    ElderlyCare {
        member: u8,
        from: u16,
        to: Option<u16>,
    },
    Assistance {
        fen: Option<i64>,
        on: u16,
    },
    Note,
    Void {
        pick: u8,
    },
    Transfer {
        other: bool,
        on: u16,
    },
    Close {
        on: u16,
    },
    Reopen {
        on: u16,
    },
    ReuseActionId {
        pick: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<u16>(), 0u8..6, any::<bool>()).prop_map(|(on, members, bad_birth)| Step::Register {
            on,
            members,
            bad_birth
        }),
        (
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<Option<bool>>()
        )
            .prop_map(|(member, on, dies, alone)| Step::Status {
                member,
                on,
                dies,
                alone
            }),
        (any::<bool>(), any::<u16>()).prop_map(|(village, on)| Step::Assign { village, on }),
        (any::<bool>(), any::<u16>()).prop_map(|(village, on)| Step::Release { village, on }),
        (any::<bool>(), 0u8..4, any::<u16>(), 0u8..24).prop_map(|(village, mode, on, needs)| {
            Step::Visit {
                village,
                mode,
                on,
                needs,
            }
        }),
        (0u8..12).prop_map(|priority| Step::EmergencyContact { priority }),
        any::<u8>().prop_map(|pick| Step::RemoveEmergencyContact { pick }),
        any::<u16>().prop_map(|on| Step::Emergency { on }),
        (any::<u8>(), any::<u16>(), any::<Option<u16>>())
            .prop_map(|(member, from, to)| Step::ElderlyCare { member, from, to }),
        (prop::option::of(-5i64..2_000_000_000), any::<u16>())
            .prop_map(|(fen, on)| Step::Assistance { fen, on }),
        Just(Step::Note),
        any::<u8>().prop_map(|pick| Step::Void { pick }),
        (any::<bool>(), any::<u16>()).prop_map(|(other, on)| Step::Transfer { other, on }),
        any::<u16>().prop_map(|on| Step::Close { on }),
        any::<u16>().prop_map(|on| Step::Reopen { on }),
        any::<u8>().prop_map(|pick| Step::ReuseActionId { pick }),
    ]
}

fn pick<T: Copy>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(i) % items.len()])
}

/// The command a step asks for, given what the session has seen so far
/// (unknown ids where nothing exists yet: those are refusals to test too).
fn command(step: &Step, case: &FamilyCase, actions: &[Uuid]) -> C {
    let action_id = Uuid::new_v4();
    let role = |village: bool| {
        if village {
            Role::Village
        } else {
            Role::Township
        }
    };
    let member_ids: Vec<Uuid> = case.members.iter().map(|m| m.member.id).collect();
    match *step {
        Step::Register {
            on,
            members,
            bad_birth,
        } => C::RegisterFamily {
            action_id,
            category: Category::Bereaved,
            village_code: VillageCode::parse("450305001001").unwrap(),
            address: text("No. 3"),
            registered_on: day(on),
            members: (0..members)
                .map(|i| Member {
                    id: Uuid::new_v4(),
                    name: format!("member {i}"),
                    sex: if i % 2 == 0 { Sex::Male } else { Sex::Female },
                    birth_date: if bad_birth {
                        day(on)
                    } else {
                        NaiveDate::from_ymd_opt(1950, 3, 1).unwrap()
                    },
                    id_number: None,
                    phone: None,
                    living_alone: i == 1,
                    self_care: SelfCare::Independent,
                })
                .collect(),
        },
        Step::Status {
            member,
            on,
            dies,
            alone,
        } => C::UpdateMemberStatus {
            action_id,
            member_id: pick(&member_ids, member).unwrap_or_else(Uuid::new_v4),
            effective_on: day(on),
            deceased_on: dies.then(|| day(on)),
            living_alone: alone,
            self_care: None,
            phone: None,
        },
        Step::Assign { village, on } => C::AssignContact {
            action_id,
            role: role(village),
            person: ContactPerson {
                id: Uuid::new_v4(),
                name: "Li Si".into(),
                phone: phone(),
            },
            assigned_on: day(on),
        },
        Step::Release { village, on } => C::ReleaseContact {
            action_id,
            role: role(village),
            released_on: day(on),
            reason: text("moved"),
        },
        Step::Visit {
            village,
            mode,
            on,
            needs,
        } => C::RecordVisit {
            action_id,
            role: role(village),
            mode: VisitMode::ALL[usize::from(mode)],
            visited_on: day(on),
            findings: text("well"),
            needs: vec!["wheelchair".to_owned(); usize::from(needs)],
        },
        Step::EmergencyContact { priority } => C::SetEmergencyContact {
            action_id,
            name: text("Wang"),
            relation: text("nephew"),
            phone: phone(),
            priority,
        },
        Step::RemoveEmergencyContact { pick: i } => {
            let ids: Vec<Uuid> = case.emergency_contacts.iter().map(|c| c.id).collect();
            C::RemoveEmergencyContact {
                action_id,
                emergency_contact_id: pick(&ids, i).unwrap_or_else(Uuid::new_v4),
                reason: text("no longer reachable"),
            }
        }
        Step::Emergency { on } => C::RecordEmergency {
            action_id,
            occurred_at: offset()
                .from_local_datetime(&day(on).and_hms_opt(9, 30, 0).unwrap())
                .unwrap(),
            description: text("fell"),
            responder: text("doctor"),
            outcome: text("hospital"),
        },
        Step::ElderlyCare { member, from, to } => C::RecordElderlyCare {
            action_id,
            member_id: pick(&member_ids, member).unwrap_or_else(Uuid::new_v4),
            service: ElderlyCareService::HomeCare,
            provider: text("centre"),
            from: day(from),
            to: to.map(day),
        },
        Step::Assistance { fen, on } => C::RecordAssistance {
            action_id,
            area: AssistanceArea::Medical,
            amount_fen: fen.and_then(|f| AmountFen::new(f).ok()),
            provided_on: day(on),
            description: text("help"),
        },
        Step::Note => C::AddNote {
            action_id,
            text: text("note"),
        },
        Step::Void { pick: i } => C::VoidAction {
            action_id,
            voided_action_id: pick(actions, i).unwrap_or_else(Uuid::new_v4),
            reason: text("mistake"),
        },
        Step::Transfer { other, on } => C::Transfer {
            action_id,
            village_code: VillageCode::parse(if other {
                "450305002003"
            } else {
                "450305001001"
            })
            .unwrap(),
            transferred_on: day(on),
            reason: text("moved"),
        },
        Step::Close { on } => C::CloseCase {
            action_id,
            on: day(on),
            reason: text("moved away"),
        },
        Step::Reopen { on } => C::ReopenCase {
            action_id,
            on: day(on),
            reason: text("back"),
        },
        Step::ReuseActionId { pick: i } => C::AddNote {
            action_id: pick(actions, i).unwrap_or(action_id),
            text: text("again"),
        },
    }
}

fn command_action_id(c: &C) -> Uuid {
    match c {
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

/// Every action id the case's lists hold (what a void must remove).
fn listed(case: &FamilyCase) -> BTreeSet<Uuid> {
    let mut ids = BTreeSet::new();
    ids.extend(case.visits.iter().map(|v| v.action_id));
    ids.extend(case.notes.iter().map(|n| n.action_id));
    ids.extend(case.assistance.iter().map(|a| a.action_id));
    ids.extend(case.emergencies.iter().map(|e| e.action_id));
    ids.extend(case.elderly_care.iter().map(|e| e.action_id));
    ids.extend(case.emergency_contacts.iter().map(|c| c.action_id));
    ids.extend(case.deaths.iter().map(|d| d.action_id));
    for role in Role::ALL {
        ids.extend(case.contacts.get(*role).map(|c| c.action_id));
    }
    ids
}

fn fold(events: &[FamilyEvent]) -> FamilyCase {
    let mut case = FamilyCase::default();
    for e in events {
        case.evolve(e.clone());
    }
    case
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_session_folds_back_to_what_the_commands_saw(
        first in (150u16..200).prop_map(|on| Step::Register { on, members: 2, bad_birth: false }),
        steps in prop::collection::vec(step(), 0..60),
    ) {
        let mut case = FamilyCase::default();
        let mut events: Vec<FamilyEvent> = Vec::new();
        let mut actions: Vec<Uuid> = Vec::new();
        let mut voided: BTreeSet<Uuid> = BTreeSet::new();
        for step in std::iter::once(&first).chain(&steps) {
            let cmd = command(step, &case, &actions);
            let asked = command_action_id(&cmd);
            let void_of = match &cmd {
                C::VoidAction { voided_action_id, .. } => Some(*voided_action_id),
                _ => None,
            };
            let before = case.clone();
            match case.decide(cmd, today(), offset()) {
                Ok(event) => {
                    prop_assert_eq!(event.action_id(), asked);
                    case.evolve(event.clone());
                    events.push(event);
                    actions.push(asked);
                    if let Some(v) = void_of {
                        voided.insert(v);
                    }
                }
                Err(e) => {
                    prop_assert_eq!(&case, &before);
                    if let Some(v) = void_of {
                        if voided.contains(&v) && before.status == CaseStatus::Open {
                            prop_assert_eq!(e, CaseError::AlreadyVoided);
                        }
                    }
                }
            }
            // Voids never resurrect.
            let in_lists = listed(&case);
            for v in &voided {
                prop_assert!(case.is_voided(*v));
                prop_assert!(!in_lists.contains(v), "voided {} is back", v);
            }
        }
        // The log as stored (JSON), folded, is the state the commands saw.
        let stored: Vec<FamilyEvent> = events
            .iter()
            .map(|e| serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap())
            .collect();
        prop_assert_eq!(&fold(&stored), &case);
        // So is the state's own JSON (the case-file row).
        let row: FamilyCase =
            serde_json::from_value(serde_json::to_value(&case).unwrap()).unwrap();
        prop_assert_eq!(&row, &case);
        prop_assert_eq!(case.actions.len(), events.len());
    }
}
