//! A family's **report facts**: what the period report
//! ([`crate::summary`]) needs of one family, for *any* period, folded once.
//!
//! The report counts a family by its case on the last day of the period
//! and by the days in the period on which something happened. Folding
//! those cases from the events for every report costs a fold per family
//! per event day — tens of seconds for a region. But the case only changes
//! on the days something happened: between two such days it is the same
//! case. So the facts keep, for each of those days (a *segment*), the few
//! things the report reads of that day's case — registered, open, village,
//! both contacts, the members (for the key-person test on the day asked),
//! and each role's due date with and without a key person — plus the
//! dated lists (visits, emergencies, assistance, elderly care) and every
//! day's visit-obligation [`Step`]. [`SummaryRow::add_facts`] then counts
//! a period from them without folding anything.
//!
//! They are built by the very functions the report used to call per
//! report ([`case_on`], [`Step::on`], [`policy::schedule_keyed`]), and
//! [`FamilyFacts::build`] refuses (returns `None`) when a dated list of
//! some day's case is not the final case's list cut at that day — the
//! assumption [`SummaryRow::add_facts`] relies on — so such a family is
//! counted by [`SummaryRow::add_family`] instead. Tests compare both ways
//! on generated counties (`nuanxin_infra::reports`).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use nuanxin_domain::aggregate::CaseStatus;
use nuanxin_domain::events::FamilyEvent;
use nuanxin_domain::policy::{self, KeyFacts, VisitPolicy};
use nuanxin_domain::{AssistanceArea, Role, VisitMode};

use crate::summary::{case_on, day_before, happened_on, plus, Step, SummaryRow};

/// The case on one day something happened, as far as the report reads it;
/// it stands until the next such day. (The village and the members, which
/// rarely change, are kept apart: [`FamilyFacts::villages`] and
/// [`FamilyFacts::members`].) 24 bytes: a family has a segment per day
/// something happened, and the cache holds every family.
#[derive(Debug, Clone)]
struct Segment {
    day: NaiveDate,
    registered: bool,
    open: bool,
    dual_contact: bool,
    /// Per role ([`Role::ALL`] order): the next due date without and with
    /// a key person, `None` when the role has no schedule (closed case,
    /// no contact).
    due: [Option<(NaiveDate, NaiveDate)>; 2],
}

/// One family's report facts (see the module).
#[derive(Debug, Clone, Default)]
pub struct FamilyFacts {
    segments: Vec<Segment>,
    /// The village from the segment of that day on (when it changed).
    villages: Vec<(NaiveDate, Option<Arc<str>>)>,
    /// What the key-person test reads of the members, from the segment of
    /// that day on (when it changed), for the test on the day asked.
    members: Vec<(NaiveDate, Box<[KeyFacts]>)>,
    visits: Vec<(NaiveDate, VisitMode)>,
    emergencies: Vec<NaiveDate>,
    assistance: Vec<(NaiveDate, AssistanceArea, i64)>,
    elderly_care: Vec<(NaiveDate, Option<NaiveDate>)>,
    /// Per role ([`Role::ALL`] order), every day's obligation step.
    steps: [Vec<Step>; 2],
}

/// The value of `changes` in force on `day` (the last change by then).
fn in_force<T>(changes: &[(NaiveDate, T)], day: NaiveDate) -> Option<&T> {
    let i = changes.partition_point(|c| c.0 <= day);
    i.checked_sub(1).map(|i| &changes[i].1)
}

/// Whether `now`'s list is `all` cut at `day` (same items, same order).
fn cut_at<T: PartialEq>(
    now: &[T],
    all: &[T],
    day: NaiveDate,
    on: impl Fn(&T) -> NaiveDate,
) -> bool {
    now.iter().eq(all.iter().filter(|x| on(x) <= day))
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Village => 0,
        Role::Township => 1,
    }
}

impl FamilyFacts {
    /// The facts of a family's events (in stream order), or `None` when
    /// they cannot stand in for the fold (see the module).
    pub fn build(events: &[FamilyEvent], policy: &VisitPolicy) -> Option<Self> {
        let days: BTreeSet<NaiveDate> = events.iter().filter_map(happened_on).collect();
        let last = case_on(events, NaiveDate::MAX);
        let mut facts = FamilyFacts {
            visits: last.visits.iter().map(|v| (v.visited_on, v.mode)).collect(),
            emergencies: last.emergencies.iter().map(|e| e.occurred_on).collect(),
            assistance: last
                .assistance
                .iter()
                .map(|a| (a.provided_on, a.area, a.amount_fen.map_or(0, |f| f.fen())))
                .collect(),
            elderly_care: last.elderly_care.iter().map(|c| (c.from, c.to)).collect(),
            ..Default::default()
        };
        let Some(first) = days.first() else {
            return Some(facts);
        };
        let mut prev = case_on(events, day_before(*first));
        for day in days {
            let now = case_on(events, day);
            let lists_agree = cut_at(&now.visits, &last.visits, day, |v| v.visited_on)
                && cut_at(&now.emergencies, &last.emergencies, day, |e| e.occurred_on)
                && cut_at(&now.assistance, &last.assistance, day, |a| a.provided_on)
                && cut_at(&now.elderly_care, &last.elderly_care, day, |c| c.from);
            if !lists_agree {
                return None;
            }
            for role in Role::ALL {
                if let Some(step) = Step::on(&prev, &now, *role, day, policy) {
                    facts.steps[role_index(*role)].push(step);
                }
            }
            let village = now.village_code.as_ref().map(|v| v.as_str());
            if facts
                .villages
                .last()
                .is_none_or(|v| v.1.as_deref() != village)
            {
                facts.villages.push((day, village.map(Arc::from)));
            }
            let members: Vec<KeyFacts> = now.members.iter().map(KeyFacts::of).collect();
            if facts.members.last().is_none_or(|m| *m.1 != *members) {
                facts.members.push((day, members.into_boxed_slice()));
            }
            let due = |role: Role| {
                let ordinary = policy::schedule_keyed(&now, role, false, policy)?;
                let key = policy::schedule_keyed(&now, role, true, policy)?;
                Some((ordinary.next_due_on, key.next_due_on))
            };
            facts.segments.push(Segment {
                day,
                registered: now.registered,
                open: now.status == CaseStatus::Open,
                dual_contact: now.contacts.village.is_some() && now.contacts.township.is_some(),
                due: [due(Role::Village), due(Role::Township)],
            });
            prev = now;
        }
        facts.shrink();
        Some(facts)
    }

    /// The bytes the facts hold on the heap (what a cache of them costs
    /// besides `size_of::<FamilyFacts>()`).
    pub fn heap_bytes(&self) -> usize {
        fn of<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        of(&self.segments)
            + of(&self.villages)
            + self
                .villages
                .iter()
                .filter_map(|v| v.1.as_ref())
                .map(|v| v.len() + 16)
                .sum::<usize>()
            + of(&self.members)
            + self
                .members
                .iter()
                .map(|m| std::mem::size_of_val(&*m.1))
                .sum::<usize>()
            + of(&self.visits)
            + of(&self.emergencies)
            + of(&self.assistance)
            + of(&self.elderly_care)
            + self.steps.iter().map(of).sum::<usize>()
    }

    /// Gives back the lists' spare capacity (the cache keeps them long).
    fn shrink(&mut self) {
        self.segments.shrink_to_fit();
        self.villages.shrink_to_fit();
        self.members.shrink_to_fit();
        self.visits.shrink_to_fit();
        self.emergencies.shrink_to_fit();
        self.assistance.shrink_to_fit();
        self.elderly_care.shrink_to_fit();
        for steps in &mut self.steps {
            steps.shrink_to_fit();
        }
    }

    fn segment_on(&self, day: NaiveDate) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.day <= day);
        i.checked_sub(1).map(|i| &self.segments[i])
    }

    /// The family's village on `day`, if it was registered by then (the
    /// report counts a family where it stood on the period's last day).
    pub fn village_on(&self, day: NaiveDate) -> Option<&str> {
        let segment = self.segment_on(day).filter(|s| s.registered)?;
        in_force(&self.villages, segment.day)?.as_deref()
    }
}

impl SummaryRow {
    /// Adds what one family contributes to `from..=to`, from its facts:
    /// the same figures as [`SummaryRow::add_family`] on its events.
    /// A family not registered on `to` adds nothing.
    pub fn add_facts(
        &mut self,
        facts: &FamilyFacts,
        from: NaiveDate,
        to: NaiveDate,
        policy: &VisitPolicy,
    ) {
        let Some(end) = facts.segment_on(to).filter(|s| s.registered) else {
            return;
        };
        let in_period = |d: NaiveDate| from <= d && d <= to;
        let members = in_force(&facts.members, end.day).map_or(&[][..], |m| &m[..]);
        let key = policy::is_key_among(members, to, policy);
        if end.open {
            self.families_open += 1;
            if key {
                self.families_key_person += 1;
            }
            if end.dual_contact {
                self.families_dual_contact += 1;
            }
        } else {
            self.families_closed += 1;
        }
        for (_, mode) in facts.visits.iter().filter(|v| in_period(v.0)) {
            self.count_visit(*mode);
        }
        for occurred in facts.emergencies.iter().filter(|d| in_period(**d)) {
            self.emergencies += 1;
            let until = plus(*occurred, policy.urgent_within_days).min(to);
            if facts
                .visits
                .iter()
                .any(|(on, mode)| *mode == VisitMode::Home && on >= occurred && *on <= until)
            {
                self.emergencies_followed_in_time += 1;
            }
        }
        for (_, area, fen) in facts.assistance.iter().filter(|a| in_period(a.0)) {
            self.count_assistance(*area, *fen);
        }
        self.elderly_care_services += facts
            .elderly_care
            .iter()
            .filter(|(start, end)| *start <= to && end.is_none_or(|e| e >= from))
            .count() as u64;
        for role in Role::ALL {
            let i = role_index(*role);
            let mut o = crate::summary::Obligations::default();
            for step in &facts.steps[i] {
                step.count(from, to, &mut o);
            }
            if let Some((ordinary, keyed)) = end.due[i] {
                let due_on = if key { keyed } else { ordinary };
                if due_on < to {
                    self.count_overdue((to - due_on).num_days());
                }
                if in_period(due_on) {
                    o.due += 1;
                }
            }
            self.count_obligations(*role, &o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache holds a segment per family per day something happened:
    /// keep it small.
    #[test]
    fn a_segment_is_small() {
        assert!(std::mem::size_of::<Segment>() <= 24);
    }
}
