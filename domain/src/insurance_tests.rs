//! Given/when/then tests of the insurance care actions and of an activity
//! attendance on the family's stream, with the helpers of the aggregate's
//! tests (today is 2026-06-30, the family registered on 2026-01-10).

use super::*;
use crate::activity::ActivityKind;
use crate::insurance::*;

const ENROL: u128 = 60;
const WITHDRAW: u128 = 61;
const CLAIM: u128 = 62;
const DECIDE: u128 = 63;

fn fen(n: i64) -> AmountFen {
    AmountFen::new(n).expect("valid amount")
}

fn year(y: i32) -> PolicyYear {
    PolicyYear::new(y).expect("valid year")
}

fn consent(on: NaiveDate) -> Option<ConsentGiven> {
    Some(ConsentGiven {
        given_on: on,
        explained_by: text("计生专干 张敏"),
    })
}

fn enrolment(member: u128, policy_year: i32, given_on: NaiveDate) -> EnrolmentRequest {
    EnrolmentRequest {
        member_id: id(member),
        product: text("计生家庭关爱保险"),
        policy_year: year(policy_year),
        premium_fen: fen(5000),
        paid_by: PremiumPayer::Association,
        consent: consent(given_on),
    }
}

fn enrol_command(action: u128, r: EnrolmentRequest) -> C {
    C::EnrolInsurance {
        action_id: id(action),
        enrolment: r,
    }
}

fn enrolled(action: u128, member: u128) -> E {
    E::InsuranceEnrolled {
        action_id: id(action),
        member_id: id(member),
        product: "计生家庭关爱保险".into(),
        policy_year: year(2026),
        premium_fen: fen(5000),
        paid_by: PremiumPayer::Association,
        consent: Consent {
            given_on: d(2026, 2, 1),
            explained_by: "计生专干 张敏".into(),
        },
    }
}

fn withdraw_command(action: u128, enrolment: u128, on: NaiveDate) -> C {
    C::WithdrawInsurance {
        action_id: id(action),
        enrolment_id: id(enrolment),
        on,
        reason: text("家属决定不再参保"),
    }
}

fn withdrawn(action: u128, enrolment: u128, on: NaiveDate) -> E {
    E::InsuranceWithdrawn {
        action_id: id(action),
        enrolment_id: id(enrolment),
        on,
        reason: "家属决定不再参保".into(),
    }
}

fn claim_command(action: u128, enrolment: u128, occurred: NaiveDate, filed: NaiveDate) -> C {
    C::FileInsuranceClaim {
        action_id: id(action),
        claim: ClaimRequest {
            enrolment_id: id(enrolment),
            cause: ClaimCause::Hospitalisation,
            occurred_on: occurred,
            filed_on: filed,
            claimed_fen: fen(300_000),
        },
    }
}

fn claim_filed(action: u128, enrolment: u128, member: u128) -> E {
    E::InsuranceClaimFiled {
        action_id: id(action),
        enrolment_id: id(enrolment),
        member_id: id(member),
        cause: ClaimCause::Hospitalisation,
        occurred_on: d(2026, 4, 3),
        filed_on: d(2026, 4, 20),
        claimed_fen: fen(300_000),
    }
}

fn decide_command(action: u128, claim: u128, on: NaiveDate, outcome: ClaimOutcome) -> C {
    C::DecideInsuranceClaim {
        action_id: id(action),
        claim_id: id(claim),
        decided_on: on,
        outcome,
    }
}

fn paid(n: i64) -> ClaimOutcome {
    ClaimOutcome::Paid { paid_fen: fen(n) }
}

fn decided(action: u128, claim: u128, outcome: ClaimOutcome) -> E {
    E::InsuranceClaimDecided {
        action_id: id(action),
        claim_id: id(claim),
        decided_on: d(2026, 5, 10),
        outcome,
    }
}

/// Registered, the father enrolled for 2026, a claim filed on it.
fn with_claim() -> Vec<E> {
    vec![
        registered(),
        enrolled(ENROL, FATHER),
        claim_filed(CLAIM, ENROL, FATHER),
    ]
}

// --------------------------------------------------------------- enrolment

#[test]
fn enrolment_with_consent_succeeds() {
    given(vec![registered()])
        .when(enrol_command(ENROL, enrolment(FATHER, 2026, d(2026, 2, 1))))
        .then_expect_events(vec![enrolled(ENROL, FATHER)]);
}

#[test]
fn enrolment_without_consent_is_refused() {
    let mut r = enrolment(FATHER, 2026, d(2026, 2, 1));
    r.consent = None;
    given(vec![registered()])
        .when(enrol_command(ENROL, r))
        .then_expect_error(CaseError::Invalid {
            field: "consent",
            message: "is required: the cover is voluntary, so record when the family agreed and who explained it",
        });
}

#[test]
fn enrolment_of_an_unknown_or_deceased_member_is_refused() {
    given(vec![registered()])
        .when(enrol_command(ENROL, enrolment(999, 2026, d(2026, 2, 1))))
        .then_expect_error(CaseError::UnknownMember);
    given(vec![registered(), status_like_death()])
        .when(enrol_command(ENROL, enrolment(MOTHER, 2026, d(2026, 2, 1))))
        .then_expect_error(CaseError::MemberDeceased);
}

#[test]
fn consent_dates_are_checked() {
    given(vec![registered()])
        .when(enrol_command(ENROL, enrolment(FATHER, 2026, d(2026, 1, 9))))
        .then_expect_error(CaseError::BeforeRegistration {
            field: "consent.given_on",
        });
    given(vec![registered()])
        .when(enrol_command(ENROL, enrolment(FATHER, 2026, tomorrow())))
        .then_expect_error(CaseError::InFuture {
            field: "consent.given_on",
        });
    // Consent given in 2026 for 2025's cover: after the policy year.
    given(vec![registered()])
        .when(enrol_command(ENROL, enrolment(FATHER, 2025, d(2026, 2, 1))))
        .then_expect_error(CaseError::Invalid {
            field: "consent.given_on",
            message: "is after the policy year",
        });
    // Consent now for next year's cover is fine.
    let mut next = enrolled(ENROL, FATHER);
    if let E::InsuranceEnrolled { policy_year, .. } = &mut next {
        *policy_year = year(2027);
    }
    given(vec![registered()])
        .when(enrol_command(ENROL, enrolment(FATHER, 2027, d(2026, 2, 1))))
        .then_expect_events(vec![next]);
}

#[test]
fn a_policy_year_more_than_one_ahead_is_refused() {
    given(vec![registered()])
        .when(enrol_command(ENROL, enrolment(FATHER, 2028, d(2026, 2, 1))))
        .then_expect_error(CaseError::Invalid {
            field: "policy_year",
            message: "is more than one year ahead",
        });
    assert!(PolicyYear::new(1999).is_err());
    assert!(PolicyYear::new(2101).is_err());
}

#[test]
fn one_enrolment_per_member_product_and_year() {
    given(vec![registered(), enrolled(ENROL, FATHER)])
        .when(enrol_command(70, enrolment(FATHER, 2026, d(2026, 3, 1))))
        .then_expect_error(CaseError::AlreadyEnrolled);
    // Another member, another product, or after a withdrawal: fine.
    let case = vec![registered(), enrolled(ENROL, FATHER)];
    let mut other_product = enrolment(FATHER, 2026, d(2026, 3, 1));
    other_product.product = text("意外伤害附加险");
    assert!(case_of(case.clone())
        .decide(enrol_command(70, other_product), today(), offset())
        .is_ok());
    assert!(case_of(case.clone())
        .decide(
            enrol_command(70, enrolment(MOTHER, 2026, d(2026, 3, 1))),
            today(),
            offset()
        )
        .is_ok());
    let mut after_withdrawal = case;
    after_withdrawal.push(withdrawn(WITHDRAW, ENROL, d(2026, 3, 1)));
    assert!(case_of(after_withdrawal)
        .decide(
            enrol_command(70, enrolment(FATHER, 2026, d(2026, 3, 2))),
            today(),
            offset()
        )
        .is_ok());
}

// -------------------------------------------------------------- withdrawal

#[test]
fn withdrawal_is_always_possible() {
    // Even with a claim pending, even after the policy year began.
    given(with_claim())
        .when(withdraw_command(WITHDRAW, ENROL, d(2026, 6, 1)))
        .then_expect_events(vec![withdrawn(WITHDRAW, ENROL, d(2026, 6, 1))]);
}

#[test]
fn withdrawal_of_an_unknown_or_withdrawn_enrolment_is_refused() {
    given(vec![registered()])
        .when(withdraw_command(WITHDRAW, ENROL, d(2026, 6, 1)))
        .then_expect_error(CaseError::UnknownEnrolment);
    given(vec![
        registered(),
        enrolled(ENROL, FATHER),
        withdrawn(WITHDRAW, ENROL, d(2026, 6, 1)),
    ])
    .when(withdraw_command(71, ENROL, d(2026, 6, 2)))
    .then_expect_error(CaseError::AlreadyWithdrawn);
    // A voided enrolment is no enrolment.
    given(vec![
        registered(),
        enrolled(ENROL, FATHER),
        voided(50, ENROL),
    ])
    .when(withdraw_command(WITHDRAW, ENROL, d(2026, 6, 1)))
    .then_expect_error(CaseError::UnknownEnrolment);
}

#[test]
fn withdrawal_dates_are_checked() {
    given(vec![registered(), enrolled(ENROL, FATHER)])
        .when(withdraw_command(WITHDRAW, ENROL, tomorrow()))
        .then_expect_error(CaseError::InFuture { field: "on" });
}

// ------------------------------------------------------------------ claims

#[test]
fn claim_succeeds_and_names_the_member() {
    given(vec![registered(), enrolled(ENROL, FATHER)])
        .when(claim_command(CLAIM, ENROL, d(2026, 4, 3), d(2026, 4, 20)))
        .then_expect_events(vec![claim_filed(CLAIM, ENROL, FATHER)]);
}

#[test]
fn claim_on_a_member_not_enrolled_is_refused() {
    given(vec![registered()])
        .when(claim_command(CLAIM, ENROL, d(2026, 4, 3), d(2026, 4, 20)))
        .then_expect_error(CaseError::UnknownEnrolment);
    given(vec![
        registered(),
        enrolled(ENROL, FATHER),
        voided(50, ENROL),
    ])
    .when(claim_command(CLAIM, ENROL, d(2026, 4, 3), d(2026, 4, 20)))
    .then_expect_error(CaseError::UnknownEnrolment);
}

#[test]
fn claim_on_a_withdrawn_enrolment_is_refused() {
    let history = vec![
        registered(),
        enrolled(ENROL, FATHER),
        withdrawn(WITHDRAW, ENROL, d(2026, 4, 1)),
    ];
    given(history.clone())
        .when(claim_command(CLAIM, ENROL, d(2026, 4, 3), d(2026, 4, 20)))
        .then_expect_error(CaseError::CoverWithdrawn);
    given(history.clone())
        .when(claim_command(CLAIM, ENROL, d(2026, 4, 1), d(2026, 4, 20)))
        .then_expect_error(CaseError::CoverWithdrawn);
    // An accident while the cover was in force can still be claimed.
    let mut before = claim_filed(CLAIM, ENROL, FATHER);
    if let E::InsuranceClaimFiled { occurred_on, .. } = &mut before {
        *occurred_on = d(2026, 3, 31);
    }
    given(history)
        .when(claim_command(CLAIM, ENROL, d(2026, 3, 31), d(2026, 4, 20)))
        .then_expect_events(vec![before]);
}

#[test]
fn claim_outside_the_policy_year_is_refused() {
    given(vec![registered(), enrolled(ENROL, FATHER)])
        .when(claim_command(CLAIM, ENROL, d(2025, 12, 31), d(2026, 4, 20)))
        .then_expect_error(CaseError::Invalid {
            field: "occurred_on",
            message: "is outside the enrolment's policy year",
        });
}

#[test]
fn claim_dates_are_checked() {
    let history = vec![registered(), enrolled(ENROL, FATHER)];
    given(history.clone())
        .when(claim_command(CLAIM, ENROL, tomorrow(), tomorrow()))
        .then_expect_error(CaseError::InFuture {
            field: "occurred_on",
        });
    given(history.clone())
        .when(claim_command(CLAIM, ENROL, d(2026, 4, 3), tomorrow()))
        .then_expect_error(CaseError::InFuture { field: "filed_on" });
    given(history)
        .when(claim_command(CLAIM, ENROL, d(2026, 4, 3), d(2026, 4, 2)))
        .then_expect_error(CaseError::Invalid {
            field: "filed_on",
            message: "is before `occurred_on`",
        });
}

// --------------------------------------------------------------- decisions

#[test]
fn decision_paid_or_rejected_succeeds() {
    given(with_claim())
        .when(decide_command(DECIDE, CLAIM, d(2026, 5, 10), paid(250_000)))
        .then_expect_events(vec![decided(DECIDE, CLAIM, paid(250_000))]);
    let rejected = ClaimOutcome::Rejected {
        reason: "不在保险责任范围".into(),
    };
    given(with_claim())
        .when(decide_command(
            DECIDE,
            CLAIM,
            d(2026, 5, 10),
            rejected.clone(),
        ))
        .then_expect_events(vec![decided(DECIDE, CLAIM, rejected)]);
}

#[test]
fn decision_pays_at_most_the_amount_claimed_and_something() {
    given(with_claim())
        .when(decide_command(DECIDE, CLAIM, d(2026, 5, 10), paid(300_001)))
        .then_expect_error(CaseError::Invalid {
            field: "paid_fen",
            message: "must not exceed the amount claimed",
        });
    given(with_claim())
        .when(decide_command(DECIDE, CLAIM, d(2026, 5, 10), paid(0)))
        .then_expect_error(CaseError::Invalid {
            field: "paid_fen",
            message: "must be at least 1 for a paid claim; record a rejection instead",
        });
    given(with_claim())
        .when(decide_command(DECIDE, CLAIM, d(2026, 5, 10), paid(300_000)))
        .then_expect_events(vec![decided(DECIDE, CLAIM, paid(300_000))]);
}

#[test]
fn decision_happens_exactly_once() {
    let mut history = with_claim();
    history.push(decided(DECIDE, CLAIM, paid(1000)));
    given(history)
        .when(decide_command(
            70,
            CLAIM,
            d(2026, 5, 11),
            ClaimOutcome::Rejected { reason: "x".into() },
        ))
        .then_expect_error(CaseError::AlreadyDecided);
}

#[test]
fn decision_of_an_unknown_claim_or_too_early_is_refused() {
    given(vec![registered(), enrolled(ENROL, FATHER)])
        .when(decide_command(DECIDE, CLAIM, d(2026, 5, 10), paid(1)))
        .then_expect_error(CaseError::UnknownClaim);
    given(with_claim())
        .when(decide_command(DECIDE, CLAIM, d(2026, 4, 19), paid(1)))
        .then_expect_error(CaseError::Invalid {
            field: "decided_on",
            message: "is before the claim was filed",
        });
}

// ------------------------------------------------------------------- voids

#[test]
fn every_insurance_step_is_voidable() {
    let mut history = with_claim();
    history.push(decided(DECIDE, CLAIM, paid(1000)));
    history.push(enrolled(64, MOTHER));
    history.push(withdrawn(WITHDRAW, 64, d(2026, 6, 1)));
    for target in [CLAIM, DECIDE, WITHDRAW] {
        given(history.clone())
            .when(void_command(50, target))
            .then_expect_events(vec![voided(50, target)]);
    }
}

#[test]
fn an_enrolment_with_claims_cannot_be_voided() {
    given(with_claim())
        .when(void_command(50, ENROL))
        .then_expect_error(CaseError::EnrolmentHasClaims);
    // Void the claim first, then the enrolment.
    let mut history = with_claim();
    history.push(voided(50, CLAIM));
    given(history)
        .when(void_command(51, ENROL))
        .then_expect_events(vec![voided(51, ENROL)]);
}

#[test]
fn voiding_a_withdrawal_restores_the_cover_unless_replaced() {
    let history = vec![
        registered(),
        enrolled(ENROL, FATHER),
        withdrawn(WITHDRAW, ENROL, d(2026, 3, 1)),
    ];
    let mut case = case_of(history.clone());
    case.evolve(voided(50, WITHDRAW));
    let e = case.insurance.enrolment(id(ENROL)).expect("enrolment");
    assert!(e.withdrawal.is_none());
    assert!(e.covers(d(2026, 6, 1)));
    // Re-enrolled since: voiding the withdrawal would make two enrolments.
    let mut replaced = history;
    replaced.push(enrolled(70, FATHER));
    given(replaced)
        .when(void_command(50, WITHDRAW))
        .then_expect_error(CaseError::AlreadyEnrolled);
}

#[test]
fn voids_fold_out_of_the_lists() {
    let mut history = with_claim();
    history.push(decided(DECIDE, CLAIM, paid(1000)));
    let mut case = case_of(history);
    assert_eq!(case.insurance.claims.len(), 1);
    case.evolve(voided(50, DECIDE));
    assert!(case.insurance.claims[0].decision.is_none(), "pending again");
    assert!(case
        .decide(
            decide_command(70, CLAIM, d(2026, 5, 11), paid(2000)),
            today(),
            offset()
        )
        .is_ok());
    case.evolve(voided(51, CLAIM));
    assert!(case.insurance.claims.is_empty());
    case.evolve(voided(52, ENROL));
    assert!(case.insurance.enrolments.is_empty());
    assert!(case.is_voided(id(ENROL)));
}

#[test]
fn the_cover_ends_with_the_year_or_the_withdrawal() {
    let case = case_of(vec![
        registered(),
        enrolled(ENROL, FATHER),
        withdrawn(WITHDRAW, ENROL, d(2026, 9, 1)),
    ]);
    let e = case.insurance.enrolment(id(ENROL)).expect("enrolment");
    assert!(e.covers(d(2026, 1, 1)));
    assert!(e.covers(d(2026, 8, 31)));
    assert!(!e.covers(d(2026, 9, 1)));
    assert!(!e.covers(d(2025, 12, 31)));
}

#[test]
fn insurance_on_a_closed_case_is_refused() {
    given(vec![registered(), enrolled(ENROL, FATHER), closed()])
        .when(withdraw_command(WITHDRAW, ENROL, d(2026, 6, 1)))
        .then_expect_error(CaseError::Closed);
}

// -------------------------------------------------------------- activities

fn attend_command(action: u128, activity: u128, on: NaiveDate) -> C {
    C::RecordActivityAttendance {
        action_id: id(action),
        activity_id: id(activity),
        kind: ActivityKind::MemberDay,
        title: text("5·29 会员活动日"),
        held_on: on,
    }
}

fn attended(action: u128, activity: u128, on: NaiveDate) -> E {
    E::ActivityAttended {
        action_id: id(action),
        activity_id: id(activity),
        kind: ActivityKind::MemberDay,
        title: "5·29 会员活动日".into(),
        held_on: on,
    }
}

#[test]
fn attendance_is_recorded_once_per_activity() {
    given(vec![registered()])
        .when(attend_command(80, 900, d(2026, 5, 29)))
        .then_expect_events(vec![attended(80, 900, d(2026, 5, 29))]);
    given(vec![registered(), attended(80, 900, d(2026, 5, 29))])
        .when(attend_command(81, 900, d(2026, 5, 29)))
        .then_expect_error(CaseError::AlreadyAttending);
}

#[test]
fn attendance_dates_are_checked() {
    given(vec![registered()])
        .when(attend_command(80, 900, d(2026, 1, 9)))
        .then_expect_error(CaseError::BeforeRegistration { field: "held_on" });
    given(vec![registered(), closed()])
        .when(attend_command(80, 900, d(2026, 5, 29)))
        .then_expect_error(CaseError::Closed);
}

#[test]
fn attendance_is_taken_back_through_the_activity_not_voided() {
    let history = vec![registered(), attended(80, 900, d(2026, 5, 29))];
    given(history.clone())
        .when(void_command(50, 80))
        .then_expect_error(CaseError::NotVoidable);
    given(history.clone())
        .when(C::RemoveActivityAttendance {
            action_id: id(81),
            activity_id: id(900),
            reason: text("登记错误"),
        })
        .then_expect_events(vec![E::ActivityAttendanceRemoved {
            action_id: id(81),
            activity_id: id(900),
            reason: "登记错误".into(),
        }]);
    given(vec![registered()])
        .when(C::RemoveActivityAttendance {
            action_id: id(81),
            activity_id: id(900),
            reason: text("登记错误"),
        })
        .then_expect_error(CaseError::NotAttending);
    let mut case = case_of(history);
    assert!(case.attends(id(900)));
    case.evolve(E::ActivityAttendanceRemoved {
        action_id: id(81),
        activity_id: id(900),
        reason: "登记错误".into(),
    });
    assert!(!case.attends(id(900)));
}

// ------------------------------------------------------------- stored form

#[test]
fn a_case_stored_before_insurance_existed_still_loads() {
    let case = case_of(vec![registered(), village_assigned()]);
    let mut json = serde_json::to_value(&case).expect("serializes");
    let object = json.as_object_mut().expect("an object");
    object.remove("insurance");
    object.remove("activities");
    let back: FamilyCase = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, case);
}

#[test]
fn insurance_state_survives_a_json_round_trip() {
    let mut history = with_claim();
    history.push(decided(DECIDE, CLAIM, paid(1000)));
    history.push(attended(80, 900, d(2026, 5, 29)));
    let case = case_of(history);
    let json = serde_json::to_string(&case).expect("serializes");
    let back: FamilyCase = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, case);
    // The decision is stored flat, tagged by its outcome.
    let event = serde_json::to_value(decided(DECIDE, CLAIM, paid(1000))).expect("json");
    assert_eq!(event["InsuranceClaimDecided"]["outcome"], "paid");
    assert_eq!(event["InsuranceClaimDecided"]["paid_fen"], 1000);
}
