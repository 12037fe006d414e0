//! Forms of the care insurance: enrolling a member (with the family's
//! consent), withdrawing an enrolment, filing a claim, deciding it.
//! Premiums and amounts are typed in yuan and sent in fen.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Datelike;
use maud::{html, Markup};
use nuanxin_domain::FamilyCommand;
use nuanxin_projections::case_file::CaseFileView;
use serde_json::Value;
use uuid::Uuid;

use super::body::{Body, Field};
use super::{
    living_members, not_found, offset, options, post, show, today, uuid_param, CaseForm, FormPage,
    Params,
};
use crate::error::ApiError;
use crate::extract::RequestId;
use crate::routes::care_actions::new_action_id;
use crate::routes::dto::{ClaimRequest, DecisionRequest, EnrolmentRequest, WithdrawalRequest};
use crate::state::AppState;
use crate::web::form::{choices, input, select, textarea, FormState, Kind};
use crate::web::session::{WebPost, WebUser};
use crate::web::text::{money, t, word};

/// `/families/{id}/insurance/enrol`: this year's policy, consent given
/// today and explained by the user, and the member when only one is
/// living, first.
pub struct Enrol;

impl CaseForm for Enrol {
    const PATH: &'static str = "insurance/enrol";
    const SLUG: &'static str = "enrol";
    const TITLE: &'static str = "forms.enrol.title";

    fn fields() -> Vec<Field> {
        vec![
            Field::text("member_id"),
            Field::text("product"),
            Field::int("policy_year"),
            Field::yuan("premium_yuan", "premium_fen"),
            Field::text("paid_by"),
            Field::text("consent.given_on"),
            Field::text("consent.explained_by"),
        ]
    }

    fn first(state: &AppState, who: &WebUser, case: &CaseFileView) -> FormState {
        let mut values = vec![
            (
                "product",
                t(who.lang, "forms.enrol.default_product").to_owned(),
            ),
            ("policy_year", state.reads().today().year().to_string()),
            ("consent.given_on", today(state)),
            ("consent.explained_by", who.user.name.clone()),
        ];
        if let [(only, _)] = living_members(case).as_slice() {
            values.push(("member_id", only.clone()));
        }
        FormState::with(&values)
    }

    fn command(body: Body, fields: &[Field]) -> Result<FamilyCommand, ApiError> {
        body.command::<EnrolmentRequest>(fields, |r| r.into_command(new_action_id()))
    }

    fn inputs(state: &AppState, who: &WebUser, case: &CaseFileView, fs: &FormState) -> Markup {
        let lang = who.lang;
        let members = living_members(case);
        let year = state.reads().today().year();
        let years: Vec<(String, String)> = (year - 1..=year + 1)
            .map(|y| (y.to_string(), y.to_string()))
            .collect();
        let payers = options(
            who,
            "forms.paid_by",
            &["self", "association", "government", "mixed"],
        );
        html! {
            (select(lang, fs, "member_id", t(lang, "forms.enrol.member"), &members, members.len() != 1))
            (input(lang, fs, "product", t(lang, "forms.enrol.product"), Kind::Text, true))
            (select(lang, fs, "policy_year", t(lang, "forms.enrol.policy_year"), &years, false))
            (input(lang, fs, "premium_yuan", t(lang, "forms.enrol.premium_yuan"), Kind::Number, true))
            (select(lang, fs, "paid_by", t(lang, "forms.enrol.paid_by"), &payers, true))
            fieldset {
                legend { (t(lang, "forms.enrol.consent")) }
                p.hint { (t(lang, "forms.enrol.consent_hint")) }
                (input(lang, fs, "consent.given_on", t(lang, "forms.enrol.given_on"), Kind::Date, true))
                (input(lang, fs, "consent.explained_by", t(lang, "forms.enrol.explained_by"), Kind::Text, true))
            }
        }
    }
}

/// The enrolment `id` of the case: who, what, which year.
fn enrolment_facts(who: &WebUser, case: &CaseFileView, id: Uuid) -> Markup {
    let lang = who.lang;
    let Some(e) = case.insurance.enrolments.iter().find(|e| e.id == id) else {
        return html! {};
    };
    let member = case
        .members
        .iter()
        .find(|m| m.id == e.member_id)
        .map_or("", |m| m.name.as_str());
    html! {
        dl.facts.card {
            dt { (t(lang, "forms.enrol.member")) } dd { (member) }
            dt { (t(lang, "forms.enrol.product")) } dd { (e.product) " · " (e.policy_year) }
            dt { (t(lang, "forms.enrol.premium")) } dd { (money(e.premium_fen)) }
        }
    }
}

fn has_enrolment(case: &CaseFileView, id: Uuid) -> bool {
    case.insurance.enrolments.iter().any(|e| e.id == id)
}

fn ids(params: &Params, second: &str) -> Option<(Uuid, Uuid)> {
    Some((uuid_param(params, "id")?, uuid_param(params, second)?))
}

fn withdraw_fields() -> Vec<Field> {
    vec![Field::text("on"), Field::text("reason")]
}

fn withdraw_page(
    who: &WebUser,
    case: &CaseFileView,
    enrolment: Uuid,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = withdraw_fields();
    FormPage {
        title: t(lang, "forms.withdraw.title"),
        case: Some(case),
        action: format!("/families/{}/insurance/{enrolment}/withdraw", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: enrolment_facts(who, case, enrolment),
        body: html! {
            (input(lang, fs, "on", t(lang, "forms.withdraw.on"), Kind::Date, true))
            (textarea(lang, fs, "reason", t(lang, "forms.reason"), true))
        },
        submit: "forms.withdraw.submit",
        danger: true,
    }
    .respond(who, status)
}

/// `GET /families/{id}/insurance/{enrolment_id}/withdraw`.
pub async fn withdraw_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let Some((id, enrolment)) = ids(&params, "enrolment_id") else {
        return not_found(&who);
    };
    let fs = FormState::with(&[("on", today(&state))]);
    show(&state, &who, &rid, id, |case| {
        if has_enrolment(case, enrolment) {
            withdraw_page(&who, case, enrolment, &fs, case.version, StatusCode::OK)
        } else {
            not_found(&who)
        }
    })
    .await
}

/// `POST /families/{id}/insurance/{enrolment_id}/withdraw`.
pub async fn withdraw(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some((id, enrolment)) = ids(&params, "enrolment_id") else {
        return not_found(&who);
    };
    let fields = withdraw_fields();
    let fixed = [("enrolment_id", Value::from(enrolment.to_string()))];
    let command = Body::build(&form, &fields, &fixed, offset(&state))
        .command::<WithdrawalRequest>(&fields, |r| r.into_command(new_action_id()));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "withdraw",
        &fields,
        command,
        |case, fs, v, s| withdraw_page(&who, case, enrolment, fs, v, s),
    )
    .await
}

fn claim_fields() -> Vec<Field> {
    vec![
        Field::text("cause"),
        Field::text("occurred_on"),
        Field::text("filed_on"),
        Field::yuan("claimed_yuan", "claimed_fen"),
    ]
}

fn claim_page(
    who: &WebUser,
    case: &CaseFileView,
    enrolment: Uuid,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = claim_fields();
    let causes = options(
        who,
        "forms.cause",
        &["accident", "illness", "hospitalisation", "death", "other"],
    );
    FormPage {
        title: t(lang, "forms.claim.title"),
        case: Some(case),
        action: format!("/families/{}/insurance/{enrolment}/claim", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: enrolment_facts(who, case, enrolment),
        body: html! {
            (select(lang, fs, "cause", t(lang, "forms.claim.cause"), &causes, true))
            (input(lang, fs, "occurred_on", t(lang, "forms.claim.occurred_on"), Kind::Date, true))
            (input(lang, fs, "filed_on", t(lang, "forms.claim.filed_on"), Kind::Date, true))
            (input(lang, fs, "claimed_yuan", t(lang, "forms.claim.claimed_yuan"), Kind::Number, true))
        },
        submit: "form.save",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/{id}/insurance/{enrolment_id}/claim`.
pub async fn claim_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let Some((id, enrolment)) = ids(&params, "enrolment_id") else {
        return not_found(&who);
    };
    let fs = FormState::with(&[("filed_on", today(&state))]);
    show(&state, &who, &rid, id, |case| {
        if has_enrolment(case, enrolment) {
            claim_page(&who, case, enrolment, &fs, case.version, StatusCode::OK)
        } else {
            not_found(&who)
        }
    })
    .await
}

/// `POST /families/{id}/insurance/{enrolment_id}/claim`.
pub async fn claim(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some((id, enrolment)) = ids(&params, "enrolment_id") else {
        return not_found(&who);
    };
    let fields = claim_fields();
    let fixed = [("enrolment_id", Value::from(enrolment.to_string()))];
    let command = Body::build(&form, &fields, &fixed, offset(&state))
        .command::<ClaimRequest>(&fields, |r| r.into_command(new_action_id()));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "claim",
        &fields,
        command,
        |case, fs, v, s| claim_page(&who, case, enrolment, fs, v, s),
    )
    .await
}

fn decision_fields() -> Vec<Field> {
    vec![
        Field::text("decided_on"),
        Field::text("outcome"),
        Field::yuan("paid_yuan", "paid_fen").optional(),
        Field::text("reason").optional(),
    ]
}

fn decision_page(
    who: &WebUser,
    case: &CaseFileView,
    claim: Uuid,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = decision_fields();
    let outcomes = options(who, "forms.outcome", &["paid", "rejected"]);
    let filed = case.insurance.claims.iter().find(|c| c.id == claim);
    FormPage {
        title: t(lang, "forms.decision.title"),
        case: Some(case),
        action: format!("/families/{}/insurance/claims/{claim}/decision", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! {
            @if let Some(c) = filed {
                dl.facts.card {
                    dt { (t(lang, "forms.claim.cause")) } dd { (word(lang, "forms.cause", &c.cause)) }
                    dt { (t(lang, "forms.claim.occurred_on")) } dd { (crate::web::text::date(lang, c.occurred_on)) }
                    dt { (t(lang, "forms.claim.claimed")) } dd { (money(c.claimed_fen)) }
                }
            }
        },
        body: html! {
            (input(lang, fs, "decided_on", t(lang, "forms.decision.decided_on"), Kind::Date, true))
            div.big-choices { (choices(lang, fs, "outcome", t(lang, "forms.decision.outcome"), &outcomes)) }
            (input(lang, fs, "paid_yuan", t(lang, "forms.decision.paid_yuan"), Kind::Number, false))
            (textarea(lang, fs, "reason", t(lang, "forms.decision.reason"), false))
        },
        submit: "form.save",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/{id}/insurance/claims/{claim_id}/decision`.
pub async fn decision_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let Some((id, claim)) = ids(&params, "claim_id") else {
        return not_found(&who);
    };
    let fs = FormState::with(&[("decided_on", today(&state))]);
    show(&state, &who, &rid, id, |case| {
        if case.insurance.claims.iter().any(|c| c.id == claim) {
            decision_page(&who, case, claim, &fs, case.version, StatusCode::OK)
        } else {
            not_found(&who)
        }
    })
    .await
}

/// `POST /families/{id}/insurance/claims/{claim_id}/decision`.
pub async fn decision(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some((id, claim)) = ids(&params, "claim_id") else {
        return not_found(&who);
    };
    let fields = decision_fields();
    let command = Body::build(&form, &fields, &[], offset(&state))
        .command::<DecisionRequest>(&fields, |r| r.into_command(new_action_id(), claim));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "decision",
        &fields,
        command,
        |case, fs, v, s| decision_page(&who, case, claim, fs, v, s),
    )
    .await
}
