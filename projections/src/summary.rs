//! The period report (`GET /api/v1/reports/summary`): per jurisdiction,
//! what happened to its families in `from..=to`, counted from each family's
//! events **as known at an instant** (`nuanxin_infra::reports` reads them).
//!
//! Everything here is a pure function of one family's known events, so the
//! same events give the same figures however often and whenever the report
//! is made. A family counts where it stood on `to` (its village then), and
//! only if it was registered by then. "The case on day D" folds, in stream
//! order, the events whose action happened on or before D (events without a
//! date of their own — voids, notes, emergency contacts — always count).

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, Utc};
use nuanxin_domain::aggregate::{CaseStatus, FamilyCase};
use nuanxin_domain::events::FamilyEvent;
use nuanxin_domain::policy::{self, VisitPolicy};
use nuanxin_domain::{AssistanceArea, Role, VisitMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::activities::ActivityFigures;
use crate::inspections::InspectionFigures;
use crate::insurance::InsuranceFigures;

/// The report: one row per child jurisdiction one level down, then the
/// total of the asked prefix (`"total": true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SummaryReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[schema(example = "450305")]
    pub village_code_prefix: String,
    /// Only events recorded at or before this instant count.
    pub known_at: DateTime<Utc>,
    pub rows: Vec<SummaryRow>,
}

/// Visits by mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VisitsByMode {
    pub home: u64,
    pub phone: u64,
    pub video: u64,
    pub holiday: u64,
}

/// Assistance of one area: how many times, and the amount in fen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AreaTally {
    pub count: u64,
    pub amount_fen: i64,
}

/// Assistance by the four areas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssistanceByArea {
    pub living_support: AreaTally,
    pub medical: AreaTally,
    pub elderly_care: AreaTally,
    pub psychological_comfort: AreaTally,
}

/// Visit obligations of one role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Obligations {
    pub due: u64,
    pub met_on_time: u64,
}

/// Visit obligations per role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ObligationsByRole {
    pub village: Obligations,
    pub township: Obligations,
}

/// Overdue items at the end of the period by days overdue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OverdueByAge {
    pub days_1_7: u64,
    pub days_8_30: u64,
    pub days_31_plus: u64,
}

/// One jurisdiction's figures (see docs/reports.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SummaryRow {
    #[schema(example = "450305001")]
    pub village_code_prefix: String,
    /// The row of the asked prefix as a whole (the last row).
    pub total: bool,
    /// Families registered by `to` and open on `to`.
    pub families_open: u64,
    /// Families registered by `to` and closed on `to`.
    pub families_closed: u64,
    /// Open families with a key person on `to`.
    pub families_key_person: u64,
    /// Open families with both contacts on `to`.
    pub families_dual_contact: u64,
    /// `families_dual_contact / families_open` (0 without open families).
    pub dual_contact_coverage: f64,
    /// Visits (not voided) dated in the period.
    pub visits: u64,
    pub visits_by_mode: VisitsByMode,
    /// Visit obligations (family and role) whose due date fell in the period.
    pub obligations_due: u64,
    /// Those discharged by a qualifying visit on or before the due date.
    pub obligations_met_on_time: u64,
    pub obligations_by_role: ObligationsByRole,
    /// Items (family and role) overdue on `to`.
    pub overdue_at_end: u64,
    pub overdue_by_age: OverdueByAge,
    /// Emergencies that happened in the period.
    pub emergencies: u64,
    /// Those followed by a `home` visit within the policy's urgent window
    /// (and by `to`).
    pub emergencies_followed_in_time: u64,
    pub assistance: AssistanceByArea,
    /// Elderly-care services running at some day of the period.
    pub elderly_care_services: u64,
    pub insurance: InsuranceFigures,
    pub activities: ActivityFigures,
    pub inspections: InspectionFigures,
}

/// The day an event's action happened, when it has one.
pub fn happened_on(e: &FamilyEvent) -> Option<NaiveDate> {
    use FamilyEvent as E;
    match e {
        E::FamilyRegistered { registered_on, .. } => Some(*registered_on),
        E::MemberStatusUpdated { effective_on, .. } => Some(*effective_on),
        E::ContactAssigned { assigned_on, .. } => Some(*assigned_on),
        E::ContactReleased { released_on, .. } => Some(*released_on),
        E::VisitRecorded { visited_on, .. } => Some(*visited_on),
        E::EmergencyRecorded { occurred_on, .. } => Some(*occurred_on),
        E::ElderlyCareRecorded { from, .. } => Some(*from),
        E::AssistanceRecorded { provided_on, .. } => Some(*provided_on),
        E::FamilyTransferred { transferred_on, .. } => Some(*transferred_on),
        E::CaseClosed { on, .. } | E::CaseReopened { on, .. } => Some(*on),
        E::ActivityAttended { held_on, .. } => Some(*held_on),
        _ => None,
    }
}

/// The case on day `day`: the events whose action happened by then.
pub fn case_on(events: &[FamilyEvent], day: NaiveDate) -> FamilyCase {
    let mut case = FamilyCase::default();
    for e in events {
        if happened_on(e).is_none_or(|d| d <= day) {
            case.evolve(e.clone());
        }
    }
    case
}

pub(crate) fn day_before(d: NaiveDate) -> NaiveDate {
    d.pred_opt().unwrap_or(d)
}

pub(crate) fn plus(d: NaiveDate, days: u32) -> NaiveDate {
    d.checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MAX)
}

impl SummaryRow {
    /// A row for `prefix` with nothing counted.
    pub fn new(prefix: &str, total: bool) -> Self {
        Self {
            village_code_prefix: prefix.to_owned(),
            total,
            ..Default::default()
        }
    }

    /// Adds what one family contributes (its known events `events`, in
    /// stream order, and the case on `to` folded from them).
    pub fn add_family(
        &mut self,
        events: &[FamilyEvent],
        end: &FamilyCase,
        from: NaiveDate,
        to: NaiveDate,
        policy: &VisitPolicy,
    ) {
        let in_period = |d: NaiveDate| from <= d && d <= to;
        match end.status {
            CaseStatus::Open => {
                self.families_open += 1;
                if policy::is_key(end, to, policy) {
                    self.families_key_person += 1;
                }
                if end.contacts.village.is_some() && end.contacts.township.is_some() {
                    self.families_dual_contact += 1;
                }
            }
            CaseStatus::Closed => self.families_closed += 1,
        }
        for v in end.visits.iter().filter(|v| in_period(v.visited_on)) {
            self.count_visit(v.mode);
        }
        for e in end.emergencies.iter().filter(|e| in_period(e.occurred_on)) {
            self.emergencies += 1;
            let until = plus(e.occurred_on, policy.urgent_within_days);
            if end.visits.iter().any(|v| {
                v.mode == VisitMode::Home && v.visited_on >= e.occurred_on && v.visited_on <= until
            }) {
                self.emergencies_followed_in_time += 1;
            }
        }
        for a in end.assistance.iter().filter(|a| in_period(a.provided_on)) {
            self.count_assistance(a.area, a.amount_fen.map_or(0, |f| f.fen()));
        }
        self.elderly_care_services += end
            .elderly_care
            .iter()
            .filter(|c| c.from <= to && c.to.is_none_or(|t| t >= from))
            .count() as u64;
        for role in Role::ALL {
            if let Some(s) = policy::schedule(end, *role, to, policy) {
                if s.is_overdue(to) {
                    self.count_overdue(s.days_overdue(to));
                }
            }
            let o = obligations(events, end, *role, from, to, policy);
            self.count_obligations(*role, &o);
        }
    }

    /// Counts a visit of `mode`.
    pub(crate) fn count_visit(&mut self, mode: VisitMode) {
        self.visits += 1;
        let m = &mut self.visits_by_mode;
        *match mode {
            VisitMode::Home => &mut m.home,
            VisitMode::Phone => &mut m.phone,
            VisitMode::Video => &mut m.video,
            VisitMode::Holiday => &mut m.holiday,
        } += 1;
    }

    /// Counts assistance of `area` worth `fen`.
    pub(crate) fn count_assistance(&mut self, area: AssistanceArea, fen: i64) {
        let s = &mut self.assistance;
        let t = match area {
            AssistanceArea::LivingSupport => &mut s.living_support,
            AssistanceArea::Medical => &mut s.medical,
            AssistanceArea::ElderlyCare => &mut s.elderly_care,
            AssistanceArea::PsychologicalComfort => &mut s.psychological_comfort,
        };
        t.count += 1;
        t.amount_fen += fen;
    }

    /// Counts an item overdue by `days` at the end of the period.
    pub(crate) fn count_overdue(&mut self, days: i64) {
        self.overdue_at_end += 1;
        let a = &mut self.overdue_by_age;
        match days {
            ..=7 => a.days_1_7 += 1,
            8..=30 => a.days_8_30 += 1,
            _ => a.days_31_plus += 1,
        }
    }

    /// Adds one family's obligations of `role`.
    pub(crate) fn count_obligations(&mut self, role: Role, o: &Obligations) {
        let slot = match role {
            Role::Village => &mut self.obligations_by_role.village,
            Role::Township => &mut self.obligations_by_role.township,
        };
        slot.due += o.due;
        slot.met_on_time += o.met_on_time;
        self.obligations_due += o.due;
        self.obligations_met_on_time += o.met_on_time;
    }

    /// Adds another row's counts (for the total).
    pub fn absorb(&mut self, o: &SummaryRow) {
        self.families_open += o.families_open;
        self.families_closed += o.families_closed;
        self.families_key_person += o.families_key_person;
        self.families_dual_contact += o.families_dual_contact;
        self.visits += o.visits;
        let (m, n) = (&mut self.visits_by_mode, &o.visits_by_mode);
        m.home += n.home;
        m.phone += n.phone;
        m.video += n.video;
        m.holiday += n.holiday;
        self.obligations_due += o.obligations_due;
        self.obligations_met_on_time += o.obligations_met_on_time;
        for (a, b) in [
            (
                &mut self.obligations_by_role.village,
                &o.obligations_by_role.village,
            ),
            (
                &mut self.obligations_by_role.township,
                &o.obligations_by_role.township,
            ),
        ] {
            a.due += b.due;
            a.met_on_time += b.met_on_time;
        }
        self.overdue_at_end += o.overdue_at_end;
        self.overdue_by_age.days_1_7 += o.overdue_by_age.days_1_7;
        self.overdue_by_age.days_8_30 += o.overdue_by_age.days_8_30;
        self.overdue_by_age.days_31_plus += o.overdue_by_age.days_31_plus;
        self.emergencies += o.emergencies;
        self.emergencies_followed_in_time += o.emergencies_followed_in_time;
        let (s, t) = (&mut self.assistance, &o.assistance);
        for (a, b) in [
            (&mut s.living_support, &t.living_support),
            (&mut s.medical, &t.medical),
            (&mut s.elderly_care, &t.elderly_care),
            (&mut s.psychological_comfort, &t.psychological_comfort),
        ] {
            a.count += b.count;
            a.amount_fen += b.amount_fen;
        }
        self.elderly_care_services += o.elderly_care_services;
    }

    /// Computes the shares once the counts are complete.
    pub fn finish(&mut self) {
        self.dual_contact_coverage = if self.families_open == 0 {
            0.0
        } else {
            self.families_dual_contact as f64 / self.families_open as f64
        };
    }
}

/// The visit obligations of one family and role whose due date fell in
/// `from..=to`, walking the days on which something happened to the case.
///
/// An obligation runs from one discharge (or the contact's assignment) to
/// the next qualifying visit that moves the due date on; its due date is
/// the one that stood the day before that visit. It is met on time when
/// that visit came on or before it. An obligation also ends, unmet, when
/// the contact goes (release, transfer, closing, a new person): it counts
/// if its due date had passed by then. One still open on `to` counts, unmet,
/// if its due date lies in the period.
pub fn obligations(
    events: &[FamilyEvent],
    end: &FamilyCase,
    role: Role,
    from: NaiveDate,
    to: NaiveDate,
    policy: &VisitPolicy,
) -> Obligations {
    let mut out = Obligations::default();
    let in_period = |d: NaiveDate| from <= d && d <= to;
    let days: BTreeSet<NaiveDate> = events
        .iter()
        .filter_map(happened_on)
        .filter(|d| in_period(*d))
        .collect();
    let mut prev = case_on(events, day_before(from));
    for p in days {
        let now = case_on(events, p);
        if let Some(s) = Step::on(&prev, &now, role, p, policy) {
            s.count(from, to, &mut out);
        }
        prev = now;
    }
    if let Some(s) = policy::schedule(end, role, to, policy) {
        if in_period(s.next_due_on) {
            out.due += 1;
        }
    }
    out
}

/// What day `day` did to one role's running visit obligation (see
/// [`obligations`]): discharged it by a qualifying visit, or ended it,
/// unmet, after its due date had passed. It depends on the case the day
/// before and on the day, never on the report's period, so the per-family
/// facts ([`crate::facts`]) keep the steps of every day once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub day: NaiveDate,
    /// The due date that stood the day before.
    pub due_on: NaiveDate,
    pub discharged: bool,
}

impl Step {
    /// The step of `day`, from the case the day before (`prev`) and on the
    /// day (`now`); `None` when it neither discharges nor ends anything.
    pub fn on(
        prev: &FamilyCase,
        now: &FamilyCase,
        role: Role,
        day: NaiveDate,
        policy: &VisitPolicy,
    ) -> Option<Self> {
        let before = policy::schedule(prev, role, day_before(day), policy)?;
        let x = before.next_due_on;
        let rule = policy.role(role);
        let after = policy::schedule(now, role, day, policy);
        let same_contact = match (prev.contacts.get(role), now.contacts.get(role)) {
            (Some(a), Some(b)) => a.action_id == b.action_id,
            _ => false,
        };
        let visited = now.visits.iter().any(|v| {
            v.role == role
                && v.visited_on == day
                && rule.qualifying_modes.contains(&v.mode)
                && now.transferred_on.is_none_or(|t| day >= t)
        });
        let discharged =
            same_contact && visited && after.is_some_and(|a| a.next_due_on > x.max(day));
        let ended = (!same_contact || after.is_none()) && x < day;
        (discharged || ended).then_some(Self {
            day,
            due_on: x,
            discharged,
        })
    }

    /// Counts the step for the period `from..=to`: an obligation falls due
    /// in the period when its day and due date both lie in it; it is met on
    /// time when discharged on or before the due date.
    pub fn count(&self, from: NaiveDate, to: NaiveDate, out: &mut Obligations) {
        let in_period = |d: NaiveDate| from <= d && d <= to;
        if in_period(self.day) && in_period(self.due_on) {
            out.due += 1;
            if self.discharged && self.day <= self.due_on {
                out.met_on_time += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use nuanxin_domain::events::{ContactPerson, Member};
    use nuanxin_domain::values::{Category, Phone, VillageCode};
    use nuanxin_domain::{SelfCare, Sex};
    use uuid::Uuid;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn registered() -> FamilyEvent {
        FamilyEvent::FamilyRegistered {
            action_id: Uuid::new_v4(),
            category: Category::Bereaved,
            village_code: VillageCode::parse("450305001001").unwrap(),
            address: "x".into(),
            registered_on: d(2026, 1, 10),
            members: vec![Member {
                id: Uuid::new_v4(),
                name: "x".into(),
                sex: Sex::Male,
                birth_date: d(1950, 3, 1),
                id_number: None,
                phone: None,
                living_alone: false,
                self_care: SelfCare::Independent,
            }],
        }
    }

    fn assigned(on: NaiveDate) -> FamilyEvent {
        FamilyEvent::ContactAssigned {
            action_id: Uuid::new_v4(),
            role: Role::Village,
            person: ContactPerson {
                id: Uuid::new_v4(),
                name: "y".into(),
                phone: Phone::parse("13900139000").unwrap(),
            },
            assigned_on: on,
        }
    }

    fn visit(mode: VisitMode, on: NaiveDate) -> FamilyEvent {
        FamilyEvent::VisitRecorded {
            action_id: Uuid::new_v4(),
            role: Role::Village,
            contact_id: Uuid::new_v4(),
            mode,
            visited_on: on,
            findings: String::new(),
            needs: vec![],
        }
    }

    fn count(events: &[FamilyEvent]) -> Obligations {
        let (from, to) = (d(2026, 4, 1), d(2026, 6, 30));
        let end = case_on(events, to);
        obligations(
            events,
            &end,
            Role::Village,
            from,
            to,
            &VisitPolicy::default(),
        )
    }

    #[test]
    fn obligations_met_late_and_open_at_the_end() {
        let mut events = vec![
            registered(),
            assigned(d(2026, 3, 1)),
            visit(VisitMode::Phone, d(2026, 3, 25)),
            visit(VisitMode::Home, d(2026, 4, 20)),
        ];
        // Due 24 April (met 20 April); due 20 May, still open on 30 June.
        assert_eq!(
            count(&events),
            Obligations {
                due: 2,
                met_on_time: 1
            }
        );
        // Recorded later, in any order: met late on 30 May, then due 29 June.
        events.push(visit(VisitMode::Phone, d(2026, 5, 30)));
        assert_eq!(
            count(&events),
            Obligations {
                due: 3,
                met_on_time: 1
            }
        );
    }

    #[test]
    fn a_visit_every_three_weeks_meets_every_obligation() {
        let mut events = vec![registered(), assigned(d(2026, 3, 20))];
        let mut on = d(2026, 3, 31);
        while on <= d(2026, 6, 30) {
            events.push(visit(VisitMode::Phone, on));
            on = on + chrono::Days::new(21);
        }
        // Visits 31 Mar, 21 Apr, 12 May, 2 Jun, 23 Jun: the obligations due
        // 30 Apr, 21 May, 11 Jun and 2 Jul; the last falls after the period.
        assert_eq!(
            count(&events),
            Obligations {
                due: 3,
                met_on_time: 3
            }
        );
    }

    #[test]
    fn the_case_on_a_day_leaves_out_later_actions() {
        let events = vec![
            registered(),
            assigned(d(2026, 3, 1)),
            visit(VisitMode::Home, d(2026, 4, 20)),
        ];
        assert!(!case_on(&events, d(2026, 1, 9)).registered);
        let march = case_on(&events, d(2026, 3, 31));
        assert!(march.contacts.village.is_some());
        assert!(march.visits.is_empty());
        assert_eq!(case_on(&events, d(2026, 4, 20)).visits.len(), 1);
    }
}
