//! Care insurance (计生家庭关爱保险) as care actions on the family's stream:
//! a member's enrolment for a policy year, with the premium, who paid it
//! and the family's consent; its withdrawal; claims and their decision.
//!
//! The region's rule is that buying the cover is **voluntary** (no quotas,
//! no bundling, no forced purchase), so an enrolment records who explained
//! the cover and when the family agreed, and is refused without that
//! consent; a withdrawal is always possible. The rules that depend on the
//! case's state are here, as `FamilyCase` methods the aggregate's `decide`
//! calls; how the events fold is [`Insurance::apply`]; voids are in
//! `FamilyCase::void`. What a void of each means:
//!
//! - an **enrolment**: it never existed. Refused while it has claims in
//!   force — void those first (so no claim is left pointing at nothing);
//! - a **withdrawal**: the enrolment is in force again. Refused when the
//!   member has since been enrolled again in the same product and year;
//! - a **claim**: it never existed, nor its decision;
//! - a **decision**: the claim is pending again and can be decided anew.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{CaseError, FamilyCase};
use crate::events::FamilyEvent;
use crate::values::{string_enum, AmountFen, Text, ValueError};

string_enum!(
    /// Who paid an enrolment's premium.
    PremiumPayer {
        SelfPaid => "self",
        Association => "association",
        Government => "government",
        Mixed => "mixed",
    }
);

string_enum!(
    /// What a claim is for.
    ClaimCause {
        Accident => "accident",
        Illness => "illness",
        Hospitalisation => "hospitalisation",
        Death => "death",
        Other => "other",
    }
);

/// A policy year (the cover runs from 1 January to 31 December).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct PolicyYear(i32);

impl PolicyYear {
    /// The project started in 2017; anything outside these bounds is a
    /// typing mistake.
    pub const FIRST: i32 = 2000;
    pub const LAST: i32 = 2100;

    pub fn new(year: i32) -> Result<Self, ValueError> {
        if !(Self::FIRST..=Self::LAST).contains(&year) {
            return Err(ValueError("must be a year between 2000 and 2100"));
        }
        Ok(Self(year))
    }

    pub fn year(self) -> i32 {
        self.0
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.0, 1, 1).expect("a bounded year has a 1 January")
    }

    pub fn last_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.0, 12, 31).expect("a bounded year has a 31 December")
    }

    /// Whether `day` lies within the policy year.
    pub fn covers(self, day: NaiveDate) -> bool {
        day.year() == self.0
    }
}

impl TryFrom<i32> for PolicyYear {
    type Error = ValueError;
    fn try_from(v: i32) -> Result<Self, ValueError> {
        Self::new(v)
    }
}

impl From<PolicyYear> for i32 {
    fn from(v: PolicyYear) -> i32 {
        v.0
    }
}

/// The family's consent to an enrolment, as a command carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentGiven {
    pub given_on: NaiveDate,
    /// Who explained the cover to the family (a staff member's name).
    pub explained_by: Text,
}

/// The family's consent, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub given_on: NaiveDate,
    /// Who explained the cover to the family (a staff member's name:
    /// personal data).
    pub explained_by: String,
}

/// How a claim was decided. Stored as `{"outcome": "paid", "paid_fen": …}`
/// or `{"outcome": "rejected", "reason": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimOutcome {
    Paid { paid_fen: AmountFen },
    Rejected { reason: String },
}

/// The withdrawal of an enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub action_id: Uuid,
    pub on: NaiveDate,
    pub reason: String,
}

/// A member's enrolment for a policy year; its id is the enrolling action's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub id: Uuid,
    pub member_id: Uuid,
    pub product: String,
    pub policy_year: PolicyYear,
    pub premium_fen: AmountFen,
    pub paid_by: PremiumPayer,
    pub consent: Consent,
    pub withdrawal: Option<Withdrawal>,
}

impl Enrolment {
    /// Whether the cover is in force on `day`: within the policy year, and
    /// before any withdrawal.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.policy_year.covers(day) && self.withdrawal.as_ref().is_none_or(|w| day < w.on)
    }
}

/// A claim's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimDecision {
    pub action_id: Uuid,
    pub decided_on: NaiveDate,
    #[serde(flatten)]
    pub outcome: ClaimOutcome,
}

/// A claim on an enrolment; its id is the filing action's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub id: Uuid,
    pub enrolment_id: Uuid,
    pub member_id: Uuid,
    pub cause: ClaimCause,
    pub occurred_on: NaiveDate,
    pub filed_on: NaiveDate,
    pub claimed_fen: AmountFen,
    pub decision: Option<ClaimDecision>,
}

/// A family's insurance: the enrolments and claims in force (voided ones
/// are gone from these lists; the log keeps them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insurance {
    pub enrolments: Vec<Enrolment>,
    pub claims: Vec<Claim>,
}

impl Insurance {
    pub fn enrolment(&self, id: Uuid) -> Option<&Enrolment> {
        self.enrolments.iter().find(|e| e.id == id)
    }

    pub fn claim(&self, id: Uuid) -> Option<&Claim> {
        self.claims.iter().find(|c| c.id == id)
    }

    /// Whether the member holds an enrolment not withdrawn in `product` for
    /// `year` (other than `except`).
    fn enrolled(&self, member_id: Uuid, product: &str, year: PolicyYear, except: Uuid) -> bool {
        self.enrolments.iter().any(|e| {
            e.id != except
                && e.member_id == member_id
                && e.product == product
                && e.policy_year == year
                && e.withdrawal.is_none()
        })
    }

    /// Folds an insurance event (others are ignored).
    pub fn apply(&mut self, event: &FamilyEvent) {
        use FamilyEvent as E;
        match event {
            E::InsuranceEnrolled {
                action_id,
                member_id,
                product,
                policy_year,
                premium_fen,
                paid_by,
                consent,
            } => self.enrolments.push(Enrolment {
                id: *action_id,
                member_id: *member_id,
                product: product.clone(),
                policy_year: *policy_year,
                premium_fen: *premium_fen,
                paid_by: *paid_by,
                consent: consent.clone(),
                withdrawal: None,
            }),
            E::InsuranceWithdrawn {
                action_id,
                enrolment_id,
                on,
                reason,
            } => {
                if let Some(e) = self.enrolments.iter_mut().find(|e| e.id == *enrolment_id) {
                    e.withdrawal = Some(Withdrawal {
                        action_id: *action_id,
                        on: *on,
                        reason: reason.clone(),
                    });
                }
            }
            E::InsuranceClaimFiled {
                action_id,
                enrolment_id,
                member_id,
                cause,
                occurred_on,
                filed_on,
                claimed_fen,
            } => self.claims.push(Claim {
                id: *action_id,
                enrolment_id: *enrolment_id,
                member_id: *member_id,
                cause: *cause,
                occurred_on: *occurred_on,
                filed_on: *filed_on,
                claimed_fen: *claimed_fen,
                decision: None,
            }),
            E::InsuranceClaimDecided {
                action_id,
                claim_id,
                decided_on,
                outcome,
            } => {
                if let Some(c) = self.claims.iter_mut().find(|c| c.id == *claim_id) {
                    c.decision = Some(ClaimDecision {
                        action_id: *action_id,
                        decided_on: *decided_on,
                        outcome: outcome.clone(),
                    });
                }
            }
            _ => {}
        }
    }

    /// Takes a voided insurance action out: an enrolment or claim is
    /// removed, a withdrawal or decision undone.
    pub(crate) fn void(&mut self, voided: Uuid) {
        self.enrolments.retain(|e| e.id != voided);
        self.claims.retain(|c| c.id != voided);
        for e in &mut self.enrolments {
            if e.withdrawal.as_ref().is_some_and(|w| w.action_id == voided) {
                e.withdrawal = None;
            }
        }
        for c in &mut self.claims {
            if c.decision.as_ref().is_some_and(|d| d.action_id == voided) {
                c.decision = None;
            }
        }
    }
}

/// An enrolment the family is asked to record.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolmentRequest {
    pub member_id: Uuid,
    pub product: Text,
    pub policy_year: PolicyYear,
    pub premium_fen: AmountFen,
    pub paid_by: PremiumPayer,
    /// `None` is refused: the cover is voluntary.
    pub consent: Option<ConsentGiven>,
}

/// A claim the family is asked to record.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    pub enrolment_id: Uuid,
    pub cause: ClaimCause,
    pub occurred_on: NaiveDate,
    pub filed_on: NaiveDate,
    pub claimed_fen: AmountFen,
}

impl FamilyCase {
    /// An enrolment: a living member of this family, not already enrolled
    /// in that product for that year, with the family's consent dated
    /// between registration and today and not after the policy year.
    pub(crate) fn decide_enrolment(
        &self,
        action_id: Uuid,
        r: EnrolmentRequest,
        today: NaiveDate,
    ) -> Result<FamilyEvent, CaseError> {
        let Some(consent) = r.consent else {
            return Err(CaseError::Invalid {
                field: "consent",
                message: "is required: the cover is voluntary, so record when the family agreed and who explained it",
            });
        };
        let member = self.member(r.member_id).ok_or(CaseError::UnknownMember)?;
        if member.deceased_on.is_some() {
            return Err(CaseError::MemberDeceased);
        }
        if r.policy_year.year() > today.year() + 1 {
            return Err(CaseError::Invalid {
                field: "policy_year",
                message: "is more than one year ahead",
            });
        }
        self.check_date("consent.given_on", consent.given_on, today)?;
        if consent.given_on > r.policy_year.last_day() {
            return Err(CaseError::Invalid {
                field: "consent.given_on",
                message: "is after the policy year",
            });
        }
        if self
            .insurance
            .enrolled(r.member_id, r.product.as_str(), r.policy_year, Uuid::nil())
        {
            return Err(CaseError::AlreadyEnrolled);
        }
        Ok(FamilyEvent::InsuranceEnrolled {
            action_id,
            member_id: r.member_id,
            product: r.product.into(),
            policy_year: r.policy_year,
            premium_fen: r.premium_fen,
            paid_by: r.paid_by,
            consent: Consent {
                given_on: consent.given_on,
                explained_by: consent.explained_by.into(),
            },
        })
    }

    /// A withdrawal: refused only for an enrolment that is not in force in
    /// this family or is already withdrawn (and, like every dated action,
    /// for a date outside registration..today).
    pub(crate) fn decide_withdrawal(
        &self,
        action_id: Uuid,
        enrolment_id: Uuid,
        on: NaiveDate,
        reason: Text,
        today: NaiveDate,
    ) -> Result<FamilyEvent, CaseError> {
        let enrolment = self
            .insurance
            .enrolment(enrolment_id)
            .ok_or(CaseError::UnknownEnrolment)?;
        if enrolment.withdrawal.is_some() {
            return Err(CaseError::AlreadyWithdrawn);
        }
        self.check_date("on", on, today)?;
        Ok(FamilyEvent::InsuranceWithdrawn {
            action_id,
            enrolment_id,
            on,
            reason: reason.into(),
        })
    }

    /// A claim: on an enrolment of this family, for an occurrence within
    /// the policy year and before any withdrawal, filed on or after it.
    pub(crate) fn decide_claim(
        &self,
        action_id: Uuid,
        r: ClaimRequest,
        today: NaiveDate,
    ) -> Result<FamilyEvent, CaseError> {
        let enrolment = self
            .insurance
            .enrolment(r.enrolment_id)
            .ok_or(CaseError::UnknownEnrolment)?;
        if enrolment
            .withdrawal
            .as_ref()
            .is_some_and(|w| r.occurred_on >= w.on)
        {
            return Err(CaseError::CoverWithdrawn);
        }
        if !enrolment.policy_year.covers(r.occurred_on) {
            return Err(CaseError::Invalid {
                field: "occurred_on",
                message: "is outside the enrolment's policy year",
            });
        }
        if r.occurred_on > today {
            return Err(CaseError::InFuture {
                field: "occurred_on",
            });
        }
        self.check_date("filed_on", r.filed_on, today)?;
        if r.filed_on < r.occurred_on {
            return Err(CaseError::Invalid {
                field: "filed_on",
                message: "is before `occurred_on`",
            });
        }
        Ok(FamilyEvent::InsuranceClaimFiled {
            action_id,
            enrolment_id: r.enrolment_id,
            member_id: enrolment.member_id,
            cause: r.cause,
            occurred_on: r.occurred_on,
            filed_on: r.filed_on,
            claimed_fen: r.claimed_fen,
        })
    }

    /// A decision: exactly once per claim; a payment of at least one fen
    /// and at most the amount claimed; dated on or after the filing.
    pub(crate) fn decide_claim_decision(
        &self,
        action_id: Uuid,
        claim_id: Uuid,
        decided_on: NaiveDate,
        outcome: ClaimOutcome,
        today: NaiveDate,
    ) -> Result<FamilyEvent, CaseError> {
        let claim = self
            .insurance
            .claim(claim_id)
            .ok_or(CaseError::UnknownClaim)?;
        if claim.decision.is_some() {
            return Err(CaseError::AlreadyDecided);
        }
        self.check_date("decided_on", decided_on, today)?;
        if decided_on < claim.filed_on {
            return Err(CaseError::Invalid {
                field: "decided_on",
                message: "is before the claim was filed",
            });
        }
        if let ClaimOutcome::Paid { paid_fen } = &outcome {
            if paid_fen.fen() == 0 {
                return Err(CaseError::Invalid {
                    field: "paid_fen",
                    message: "must be at least 1 for a paid claim; record a rejection instead",
                });
            }
            if *paid_fen > claim.claimed_fen {
                return Err(CaseError::Invalid {
                    field: "paid_fen",
                    message: "must not exceed the amount claimed",
                });
            }
        }
        Ok(FamilyEvent::InsuranceClaimDecided {
            action_id,
            claim_id,
            decided_on,
            outcome,
        })
    }

    /// The insurance rules of a void (see the module docs).
    pub(crate) fn check_insurance_void(&self, voided: Uuid) -> Result<(), CaseError> {
        if self
            .insurance
            .claims
            .iter()
            .any(|c| c.enrolment_id == voided)
        {
            return Err(CaseError::EnrolmentHasClaims);
        }
        let withdrawn = self
            .insurance
            .enrolments
            .iter()
            .find(|e| e.withdrawal.as_ref().is_some_and(|w| w.action_id == voided));
        if let Some(e) = withdrawn {
            if self
                .insurance
                .enrolled(e.member_id, &e.product, e.policy_year, e.id)
            {
                return Err(CaseError::AlreadyEnrolled);
            }
        }
        Ok(())
    }
}
