//! Care insurance in the case file (the cover in force and the claims), and
//! the figures a report counts — both pure functions of a folded case, so a
//! report as known at an instant folds the events recorded up to then and
//! adds each case ([`InsuranceFigures::add_case`]).

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use nuanxin_domain::aggregate::FamilyCase;
use nuanxin_domain::insurance::{Claim, ClaimOutcome, Enrolment, PremiumPayer};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsentView {
    pub given_on: NaiveDate,
    /// Who explained the cover to the family.
    pub explained_by: String,
}

/// One enrolment (voided ones are not shown; the history keeps them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentView {
    /// The enrolment's id (the `action_id` of the enrolment): claims and
    /// withdrawals name it.
    pub id: Uuid,
    pub member_id: Uuid,
    pub product: String,
    pub policy_year: i32,
    pub premium_fen: i64,
    #[schema(example = "association")]
    pub paid_by: String,
    pub consent: ConsentView,
    /// `in_force`, `withdrawn`, `upcoming` (a later policy year) or
    /// `expired` (an earlier one), on the day of the view.
    #[schema(example = "in_force")]
    pub status: String,
    /// Whether the member is covered on the day of the view.
    pub in_force: bool,
    pub withdrawn_on: Option<NaiveDate>,
    pub withdrawal_reason: Option<String>,
}

/// One claim and its decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimView {
    /// The claim's id (the `action_id` of the filing).
    pub id: Uuid,
    pub enrolment_id: Uuid,
    pub member_id: Uuid,
    #[schema(example = "hospitalisation")]
    pub cause: String,
    pub occurred_on: NaiveDate,
    pub filed_on: NaiveDate,
    pub claimed_fen: i64,
    /// `pending`, `paid` or `rejected`.
    #[schema(example = "paid")]
    pub status: String,
    pub decided_on: Option<NaiveDate>,
    pub paid_fen: Option<i64>,
    pub rejection_reason: Option<String>,
}

/// The case file's `insurance`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct InsuranceView {
    pub enrolments: Vec<EnrolmentView>,
    pub claims: Vec<ClaimView>,
}

fn enrolment_view(e: &Enrolment, on: NaiveDate) -> EnrolmentView {
    let year = e.policy_year.year();
    let status = if e.withdrawal.is_some() {
        "withdrawn"
    } else if year > on.year() {
        "upcoming"
    } else if year < on.year() {
        "expired"
    } else {
        "in_force"
    };
    EnrolmentView {
        id: e.id,
        member_id: e.member_id,
        product: e.product.clone(),
        policy_year: year,
        premium_fen: e.premium_fen.fen(),
        paid_by: e.paid_by.as_str().into(),
        consent: ConsentView {
            given_on: e.consent.given_on,
            explained_by: e.consent.explained_by.clone(),
        },
        status: status.into(),
        in_force: e.covers(on),
        withdrawn_on: e.withdrawal.as_ref().map(|w| w.on),
        withdrawal_reason: e.withdrawal.as_ref().map(|w| w.reason.clone()),
    }
}

fn claim_view(c: &Claim) -> ClaimView {
    let (status, paid_fen, rejection_reason) = match c.decision.as_ref().map(|d| &d.outcome) {
        None => ("pending", None, None),
        Some(ClaimOutcome::Paid { paid_fen }) => ("paid", Some(paid_fen.fen()), None),
        Some(ClaimOutcome::Rejected { reason }) => ("rejected", None, Some(reason.clone())),
    };
    ClaimView {
        id: c.id,
        enrolment_id: c.enrolment_id,
        member_id: c.member_id,
        cause: c.cause.as_str().into(),
        occurred_on: c.occurred_on,
        filed_on: c.filed_on,
        claimed_fen: c.claimed_fen.fen(),
        status: status.into(),
        decided_on: c.decision.as_ref().map(|d| d.decided_on),
        paid_fen,
        rejection_reason,
    }
}

impl InsuranceView {
    /// The family's insurance as seen on day `on`.
    pub fn build(case: &FamilyCase, on: NaiveDate) -> Self {
        Self {
            enrolments: case
                .insurance
                .enrolments
                .iter()
                .map(|e| enrolment_view(e, on))
                .collect(),
            claims: case.insurance.claims.iter().map(claim_view).collect(),
        }
    }
}

/// A count and a sum of money.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountAmount {
    pub count: u64,
    pub amount_fen: i64,
}

impl CountAmount {
    fn add(&mut self, fen: i64) {
        self.count += 1;
        self.amount_fen += fen;
    }
}

/// Premiums by who paid them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PremiumsByPayer {
    #[serde(rename = "self")]
    pub self_paid: CountAmount,
    pub association: CountAmount,
    pub government: CountAmount,
    pub mixed: CountAmount,
}

impl PremiumsByPayer {
    fn of(&mut self, payer: PremiumPayer) -> &mut CountAmount {
        match payer {
            PremiumPayer::SelfPaid => &mut self.self_paid,
            PremiumPayer::Association => &mut self.association,
            PremiumPayer::Government => &mut self.government,
            PremiumPayer::Mixed => &mut self.mixed,
        }
    }

    pub fn total_fen(&self) -> i64 {
        [
            self.self_paid,
            self.association,
            self.government,
            self.mixed,
        ]
        .iter()
        .map(|c| c.amount_fen)
        .sum()
    }
}

/// The insurance figures of a period (days `from` to `to`, inclusive).
///
/// - **Enrolments** count when their cover is in force on some day of the
///   period (the policy year overlaps it, and any withdrawal came after
///   its first day); `enrolled_families` and `enrolled_members` count the
///   distinct families and members holding one; premiums are theirs.
/// - **Withdrawals** count when dated in the period.
/// - **Claims** count when filed in the period; each is paid, rejected or
///   still pending as the events known say. `payout_ratio` is the amount
///   paid over the premiums (赔付率), absent without premiums.
/// - Voided actions never count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InsuranceFigures {
    pub enrolled_families: u64,
    pub enrolled_members: u64,
    pub enrolments: u64,
    pub withdrawals: u64,
    pub premiums: PremiumsByPayer,
    pub premiums_fen: i64,
    pub claims_filed: u64,
    pub claims_paid: u64,
    pub claims_rejected: u64,
    pub claims_pending: u64,
    pub claimed_fen: i64,
    pub paid_fen: i64,
    pub payout_ratio: Option<f64>,
}

/// Accumulates [`InsuranceFigures`] case by case.
#[derive(Debug, Clone, Default)]
pub struct InsuranceTally {
    figures: InsuranceFigures,
    members: BTreeSet<(Uuid, Uuid)>,
}

impl InsuranceTally {
    /// Adds one family's case (folded from the events to count).
    pub fn add_case(&mut self, family_id: Uuid, case: &FamilyCase, from: NaiveDate, to: NaiveDate) {
        let f = &mut self.figures;
        let mut enrolled = false;
        for e in &case.insurance.enrolments {
            let first = e.policy_year.first_day().max(from);
            let last = e.policy_year.last_day().min(to);
            let withdrawn_before = e.withdrawal.as_ref().is_some_and(|w| w.on <= first);
            if first <= last && !withdrawn_before {
                enrolled = true;
                f.enrolments += 1;
                self.members.insert((family_id, e.member_id));
                f.premiums.of(e.paid_by).add(e.premium_fen.fen());
            }
            if e.withdrawal
                .as_ref()
                .is_some_and(|w| (from..=to).contains(&w.on))
            {
                f.withdrawals += 1;
            }
        }
        if enrolled {
            f.enrolled_families += 1;
        }
        for c in &case.insurance.claims {
            if !(from..=to).contains(&c.filed_on) {
                continue;
            }
            f.claims_filed += 1;
            f.claimed_fen += c.claimed_fen.fen();
            match c.decision.as_ref().map(|d| &d.outcome) {
                None => f.claims_pending += 1,
                Some(ClaimOutcome::Paid { paid_fen }) => {
                    f.claims_paid += 1;
                    f.paid_fen += paid_fen.fen();
                }
                Some(ClaimOutcome::Rejected { .. }) => f.claims_rejected += 1,
            }
        }
    }

    pub fn finish(mut self) -> InsuranceFigures {
        let f = &mut self.figures;
        f.enrolled_members = self.members.len() as u64;
        f.premiums_fen = f.premiums.total_fen();
        f.payout_ratio = (f.premiums_fen > 0).then(|| f.paid_fen as f64 / f.premiums_fen as f64);
        self.figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuanxin_domain::events::{FamilyEvent as E, Member};
    use nuanxin_domain::insurance::{ClaimCause, Consent, PolicyYear};
    use nuanxin_domain::{AmountFen, Category, SelfCare, Sex, VillageCode};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn fen(n: i64) -> AmountFen {
        AmountFen::new(n).unwrap()
    }

    fn case(events: Vec<E>) -> FamilyCase {
        let mut c = FamilyCase::default();
        c.evolve(E::FamilyRegistered {
            action_id: id(1),
            category: Category::Bereaved,
            village_code: VillageCode::parse("450305001001").unwrap(),
            address: "x".into(),
            registered_on: d(2025, 1, 1),
            members: [100, 101]
                .map(|m| Member {
                    id: id(m),
                    name: "x".into(),
                    sex: Sex::Male,
                    birth_date: d(1950, 1, 1),
                    id_number: None,
                    phone: None,
                    living_alone: false,
                    self_care: SelfCare::Independent,
                })
                .to_vec(),
        });
        for e in events {
            c.evolve(e);
        }
        c
    }

    fn enrolled(action: u128, member: u128, year: i32, payer: PremiumPayer, premium: i64) -> E {
        E::InsuranceEnrolled {
            action_id: id(action),
            member_id: id(member),
            product: "p".into(),
            policy_year: PolicyYear::new(year).unwrap(),
            premium_fen: fen(premium),
            paid_by: payer,
            consent: Consent {
                given_on: d(year, 1, 1),
                explained_by: "x".into(),
            },
        }
    }

    fn claim(action: u128, enrolment: u128, filed: NaiveDate, claimed: i64) -> E {
        E::InsuranceClaimFiled {
            action_id: id(action),
            enrolment_id: id(enrolment),
            member_id: id(100),
            cause: ClaimCause::Illness,
            occurred_on: filed,
            filed_on: filed,
            claimed_fen: fen(claimed),
        }
    }

    fn decided(action: u128, claim: u128, outcome: ClaimOutcome) -> E {
        E::InsuranceClaimDecided {
            action_id: id(action),
            claim_id: id(claim),
            decided_on: d(2026, 6, 1),
            outcome,
        }
    }

    #[test]
    fn the_view_says_what_is_in_force_on_the_day() {
        let c = case(vec![
            enrolled(10, 100, 2026, PremiumPayer::SelfPaid, 5000),
            enrolled(11, 101, 2026, PremiumPayer::Government, 5000),
            enrolled(12, 100, 2027, PremiumPayer::SelfPaid, 5000),
            E::InsuranceWithdrawn {
                action_id: id(13),
                enrolment_id: id(11),
                on: d(2026, 5, 1),
                reason: "x".into(),
            },
            claim(14, 10, d(2026, 3, 1), 9000),
        ]);
        let v = InsuranceView::build(&c, d(2026, 6, 30));
        let status: Vec<(&str, bool)> = v
            .enrolments
            .iter()
            .map(|e| (e.status.as_str(), e.in_force))
            .collect();
        assert_eq!(
            status,
            [
                ("in_force", true),
                ("withdrawn", false),
                ("upcoming", false)
            ]
        );
        assert_eq!(v.enrolments[1].withdrawn_on, Some(d(2026, 5, 1)));
        assert_eq!(v.claims.len(), 1);
        assert_eq!(v.claims[0].status, "pending");
        let v = InsuranceView::build(&c, d(2026, 4, 30));
        assert!(v.enrolments[1].in_force, "covered until the withdrawal");
    }

    #[test]
    fn figures_count_the_cover_in_force_in_the_period_and_the_claims_filed() {
        let a = case(vec![
            enrolled(10, 100, 2026, PremiumPayer::SelfPaid, 5000),
            enrolled(11, 101, 2026, PremiumPayer::Association, 6000),
            enrolled(12, 100, 2025, PremiumPayer::Government, 4000),
            claim(20, 10, d(2026, 3, 1), 10_000),
            claim(21, 10, d(2026, 4, 1), 20_000),
            claim(22, 11, d(2026, 5, 1), 30_000),
            claim(23, 12, d(2025, 5, 1), 99_000),
            decided(
                30,
                20,
                ClaimOutcome::Paid {
                    paid_fen: fen(8000),
                },
            ),
            decided(31, 21, ClaimOutcome::Rejected { reason: "x".into() }),
        ]);
        // Withdrawn on 1 January: never in force in 2026.
        let b = case(vec![
            enrolled(10, 100, 2026, PremiumPayer::Mixed, 5000),
            E::InsuranceWithdrawn {
                action_id: id(13),
                enrolment_id: id(10),
                on: d(2026, 1, 1),
                reason: "x".into(),
            },
        ]);
        // Voided: nothing counts.
        let c = case(vec![
            enrolled(10, 100, 2026, PremiumPayer::SelfPaid, 5000),
            E::ActionVoided {
                action_id: id(14),
                voided_action_id: id(10),
                reason: "x".into(),
            },
        ]);
        let mut t = InsuranceTally::default();
        for (n, c) in [a, b, c].iter().enumerate() {
            t.add_case(id(n as u128), c, d(2026, 1, 1), d(2026, 12, 31));
        }
        let f = t.finish();
        assert_eq!(f.enrolled_families, 1);
        assert_eq!(f.enrolled_members, 2);
        assert_eq!(f.enrolments, 2);
        assert_eq!(f.withdrawals, 1);
        assert_eq!(
            f.premiums.self_paid,
            CountAmount {
                count: 1,
                amount_fen: 5000
            }
        );
        assert_eq!(
            f.premiums.association,
            CountAmount {
                count: 1,
                amount_fen: 6000
            }
        );
        assert_eq!(f.premiums.government, CountAmount::default());
        assert_eq!(f.premiums_fen, 11_000);
        assert_eq!(
            (
                f.claims_filed,
                f.claims_paid,
                f.claims_rejected,
                f.claims_pending
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(f.claimed_fen, 60_000);
        assert_eq!(f.paid_fen, 8000);
        assert_eq!(f.payout_ratio, Some(8000.0 / 11_000.0));
        assert_eq!(InsuranceTally::default().finish().payout_ratio, None);
    }
}
