//! Request bodies of the care-insurance commands (`/families/{id}/insurance/…`)
//! and their conversion into domain commands.

use nuanxin_domain::insurance::{
    self as domain, ClaimCause, ClaimOutcome, PolicyYear, PremiumPayer,
};
use nuanxin_domain::values::*;
use nuanxin_domain::FamilyCommand;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Fields;
use crate::error::ApiError;
use crate::openapi::fields;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The day the family agreed to the cover.
    #[schema(schema_with = fields::day)]
    pub given_on: String,
    /// Who explained the cover to the family.
    #[schema(schema_with = fields::text)]
    pub explained_by: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    /// The member enrolled.
    #[schema(schema_with = fields::uuid)]
    pub member_id: String,
    #[schema(schema_with = fields::text, example = "计生家庭关爱保险")]
    pub product: String,
    #[schema(schema_with = fields::policy_year, example = 2026)]
    #[serde(deserialize_with = "super::integer")]
    pub policy_year: i32,
    /// The premium in fen (1/100 yuan).
    #[schema(schema_with = fields::amount)]
    #[serde(deserialize_with = "super::integer")]
    pub premium_fen: i64,
    #[schema(value_type = PremiumPayer)]
    pub paid_by: String,
    /// Required: the cover is voluntary (422 without it).
    #[schema(value_type = ConsentRequest, required = true)]
    pub consent: Option<ConsentRequest>,
}

impl EnrolmentRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let member_id = f.uuid("member_id", &self.member_id);
        let product = f.text("product", &self.product);
        let policy_year = f.value("policy_year", PolicyYear::new(self.policy_year));
        let premium_fen = f.value("premium_fen", AmountFen::new(self.premium_fen));
        let paid_by = f.value("paid_by", PremiumPayer::parse(&self.paid_by));
        let consent = match &self.consent {
            None => Some(None),
            Some(c) => {
                let given_on = f.date("consent.given_on", &c.given_on);
                let explained_by = f.text("consent.explained_by", &c.explained_by);
                match (given_on, explained_by) {
                    (Some(given_on), Some(explained_by)) => Some(Some(domain::ConsentGiven {
                        given_on,
                        explained_by,
                    })),
                    _ => None,
                }
            }
        };
        match (
            member_id,
            product,
            policy_year,
            premium_fen,
            paid_by,
            consent,
        ) {
            (
                Some(member_id),
                Some(product),
                Some(policy_year),
                Some(premium_fen),
                Some(paid_by),
                Some(consent),
            ) => Ok(FamilyCommand::EnrolInsurance {
                action_id,
                enrolment: domain::EnrolmentRequest {
                    member_id,
                    product,
                    policy_year,
                    premium_fen,
                    paid_by,
                    consent,
                },
            }),
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// The enrolment's id (the `action_id` of its enrolment).
    #[schema(schema_with = fields::uuid)]
    pub enrolment_id: String,
    /// The cover ends on this day.
    #[schema(schema_with = fields::day)]
    pub on: String,
    #[schema(schema_with = fields::text)]
    pub reason: String,
}

impl WithdrawalRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let enrolment_id = f.uuid("enrolment_id", &self.enrolment_id);
        let on = f.date("on", &self.on);
        let reason = f.text("reason", &self.reason);
        match (enrolment_id, on, reason) {
            (Some(enrolment_id), Some(on), Some(reason)) => Ok(FamilyCommand::WithdrawInsurance {
                action_id,
                enrolment_id,
                on,
                reason,
            }),
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    #[schema(schema_with = fields::uuid)]
    pub enrolment_id: String,
    #[schema(value_type = ClaimCause)]
    pub cause: String,
    #[schema(schema_with = fields::day)]
    pub occurred_on: String,
    /// Not before `occurred_on`.
    #[schema(schema_with = fields::day)]
    pub filed_on: String,
    /// The amount claimed in fen.
    #[schema(schema_with = fields::amount)]
    #[serde(deserialize_with = "super::integer")]
    pub claimed_fen: i64,
}

impl ClaimRequest {
    pub fn into_command(self, action_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let enrolment_id = f.uuid("enrolment_id", &self.enrolment_id);
        let cause = f.value("cause", ClaimCause::parse(&self.cause));
        let occurred_on = f.date("occurred_on", &self.occurred_on);
        let filed_on = f.date("filed_on", &self.filed_on);
        let claimed_fen = f.value("claimed_fen", AmountFen::new(self.claimed_fen));
        match (enrolment_id, cause, occurred_on, filed_on, claimed_fen) {
            (
                Some(enrolment_id),
                Some(cause),
                Some(occurred_on),
                Some(filed_on),
                Some(claimed_fen),
            ) => Ok(FamilyCommand::FileInsuranceClaim {
                action_id,
                claim: domain::ClaimRequest {
                    enrolment_id,
                    cause,
                    occurred_on,
                    filed_on,
                    claimed_fen,
                },
            }),
            _ => Err(f.error()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    #[schema(schema_with = fields::day)]
    pub decided_on: String,
    /// `paid` (with `paid_fen`, without `reason`) or `rejected` (with
    /// `reason`, without `paid_fen`).
    #[schema(schema_with = fields::claim_outcome)]
    pub outcome: String,
    /// The amount paid in fen: at least 1, at most the amount claimed.
    #[schema(schema_with = fields::opt_amount)]
    #[serde(default, deserialize_with = "super::opt_integer")]
    pub paid_fen: Option<i64>,
    /// Why the claim was rejected.
    #[schema(schema_with = fields::opt_text)]
    pub reason: Option<String>,
}

impl DecisionRequest {
    pub fn into_command(self, action_id: Uuid, claim_id: Uuid) -> Result<FamilyCommand, ApiError> {
        let mut f = Fields::default();
        let decided_on = f.date("decided_on", &self.decided_on);
        let outcome = match self.outcome.as_str() {
            "paid" => {
                if self.reason.is_some() {
                    f.push("reason", "is only for a rejected claim");
                }
                match self.paid_fen {
                    None => {
                        f.push("paid_fen", "is required for a paid claim");
                        None
                    }
                    Some(n) => f
                        .value("paid_fen", AmountFen::new(n))
                        .map(|paid_fen| ClaimOutcome::Paid { paid_fen }),
                }
            }
            "rejected" => {
                if self.paid_fen.is_some() {
                    f.push("paid_fen", "is only for a paid claim");
                }
                match &self.reason {
                    None => {
                        f.push("reason", "is required for a rejected claim");
                        None
                    }
                    Some(r) => f.text("reason", r).map(|reason| ClaimOutcome::Rejected {
                        reason: reason.into(),
                    }),
                }
            }
            _ => {
                f.push("outcome", "must be one of: paid rejected");
                None
            }
        };
        match (decided_on, outcome) {
            (Some(decided_on), Some(outcome)) if f.is_empty() => {
                Ok(FamilyCommand::DecideInsuranceClaim {
                    action_id,
                    claim_id,
                    decided_on,
                    outcome,
                })
            }
            _ => Err(f.error()),
        }
    }
}
