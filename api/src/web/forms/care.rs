//! Forms of the care given: an emergency, elderly care, assistance, a
//! note. (A visit: [`super::visit`]; voiding: [`super::void`].) Each is a
//! [`CaseForm`]: its fields, what it holds first, its command and its page.

use maud::{html, Markup};
use nuanxin_domain::FamilyCommand;
use nuanxin_projections::case_file::CaseFileView;

use super::body::{Body, Field};
use super::{datetime_input, living_members, offset, options, today, CaseForm};
use crate::error::ApiError;
use crate::routes::care_actions::new_action_id;
use crate::routes::dto::{
    AssistanceRequest, ElderlyCareRequest, EmergencyRequest, Fields, NoteRequest,
};
use crate::state::AppState;
use crate::web::form::{choices, input, select, textarea, FormState, Kind};
use crate::web::session::WebUser;
use crate::web::text::t;

/// `/families/{id}/emergency`: now, and the user as the responder, first.
pub struct Emergency;

impl CaseForm for Emergency {
    const PATH: &'static str = "emergency";
    const TITLE: &'static str = "forms.emergency.title";
    const SLUG: &'static str = "emergency";

    fn fields() -> Vec<Field> {
        vec![
            Field::instant("occurred_at"),
            Field::text("description"),
            Field::text("responder"),
            Field::text("outcome"),
        ]
    }

    fn first(state: &AppState, who: &WebUser, _case: &CaseFileView) -> FormState {
        let now = state
            .core()
            .services()
            .clock
            .now()
            .with_timezone(&offset(state))
            .format("%Y-%m-%dT%H:%M")
            .to_string();
        FormState::with(&[("occurred_at", now), ("responder", who.user.name.clone())])
    }

    fn command(body: Body, fields: &[Field]) -> Result<FamilyCommand, ApiError> {
        body.command::<EmergencyRequest>(fields, |r| r.into_command(new_action_id()))
    }

    fn intro(who: &WebUser, _case: &CaseFileView) -> Markup {
        let lang = who.lang;
        html! { p.hint { (t(lang, "forms.emergency.hint")) } }
    }

    fn inputs(_state: &AppState, who: &WebUser, _case: &CaseFileView, fs: &FormState) -> Markup {
        let lang = who.lang;
        html! {
            (datetime_input(who, fs, "occurred_at", t(lang, "forms.emergency.occurred_at")))
            (textarea(lang, fs, "description", t(lang, "forms.emergency.description"), true))
            (input(lang, fs, "responder", t(lang, "forms.emergency.responder"), Kind::Text, true))
            (textarea(lang, fs, "outcome", t(lang, "forms.emergency.outcome"), true))
        }
    }
}

const SERVICES: [&str; 5] = [
    "daily_living_care",
    "home_care",
    "day_care",
    "nursing_home",
    "meal_assistance",
];

/// `/families/{id}/elderly-care`: from today, and the member when only one
/// is living, first.
pub struct ElderlyCare;

impl CaseForm for ElderlyCare {
    const PATH: &'static str = "elderly-care";
    const TITLE: &'static str = "forms.elderly_care.title";
    const SLUG: &'static str = "elderly_care";

    fn fields() -> Vec<Field> {
        vec![
            Field::text("member_id"),
            Field::text("service"),
            Field::text("provider"),
            Field::text("from"),
            Field::text("to").optional(),
        ]
    }

    fn first(state: &AppState, _who: &WebUser, case: &CaseFileView) -> FormState {
        let mut values = vec![("from", today(state))];
        if let [(only, _)] = living_members(case).as_slice() {
            values.push(("member_id", only.clone()));
        }
        FormState::with(&values)
    }

    fn command(body: Body, fields: &[Field]) -> Result<FamilyCommand, ApiError> {
        body.command::<ElderlyCareRequest>(fields, |r| r.into_command(new_action_id()))
    }

    fn inputs(_state: &AppState, who: &WebUser, case: &CaseFileView, fs: &FormState) -> Markup {
        let lang = who.lang;
        let members = living_members(case);
        let services = options(who, "forms.service", &SERVICES);
        html! {
            (select(lang, fs, "member_id", t(lang, "forms.elderly_care.member"), &members, members.len() != 1))
            (select(lang, fs, "service", t(lang, "forms.elderly_care.service"), &services, true))
            (input(lang, fs, "provider", t(lang, "forms.elderly_care.provider"), Kind::Text, true))
            (input(lang, fs, "from", t(lang, "forms.elderly_care.from"), Kind::Date, true))
            (input(lang, fs, "to", t(lang, "forms.elderly_care.to"), Kind::Date, false))
        }
    }
}

/// `/families/{id}/assistance`: provided today, first; the amount typed in
/// yuan is sent in fen, as the API takes it.
pub struct Assistance;

impl CaseForm for Assistance {
    const PATH: &'static str = "assistance";
    const TITLE: &'static str = "forms.assistance.title";
    const SLUG: &'static str = "assistance";

    fn fields() -> Vec<Field> {
        vec![
            Field::text("area"),
            Field::yuan("amount_yuan", "amount_fen").optional(),
            Field::text("provided_on"),
            Field::text("description"),
        ]
    }

    fn first(state: &AppState, _who: &WebUser, _case: &CaseFileView) -> FormState {
        FormState::with(&[("provided_on", today(state))])
    }

    fn command(body: Body, fields: &[Field]) -> Result<FamilyCommand, ApiError> {
        body.command::<AssistanceRequest>(fields, |r| r.into_command(new_action_id()))
    }

    fn inputs(_state: &AppState, who: &WebUser, _case: &CaseFileView, fs: &FormState) -> Markup {
        let lang = who.lang;
        let areas = options(
            who,
            "area",
            &[
                "living_support",
                "medical",
                "elderly_care",
                "psychological_comfort",
            ],
        );
        html! {
            div.big-choices { (choices(lang, fs, "area", t(lang, "forms.assistance.area"), &areas)) }
            (input(lang, fs, "amount_yuan", t(lang, "forms.assistance.amount_yuan"), Kind::Number, false))
            (input(lang, fs, "provided_on", t(lang, "forms.assistance.provided_on"), Kind::Date, true))
            (textarea(lang, fs, "description", t(lang, "forms.assistance.description"), true))
        }
    }
}

/// `/families/{id}/note`.
pub struct Note;

impl CaseForm for Note {
    const PATH: &'static str = "note";
    const TITLE: &'static str = "forms.note.title";
    const SLUG: &'static str = "note";

    fn fields() -> Vec<Field> {
        vec![Field::text("text")]
    }

    /// The API's own conversion of this body (`routes::care_actions`).
    fn command(body: Body, fields: &[Field]) -> Result<FamilyCommand, ApiError> {
        body.command::<NoteRequest>(fields, |r| {
            let mut f = Fields::default();
            match f.text("text", &r.text) {
                Some(text) => Ok(FamilyCommand::AddNote {
                    action_id: new_action_id(),
                    text,
                }),
                None => Err(f.error()),
            }
        })
    }

    fn inputs(_state: &AppState, who: &WebUser, _case: &CaseFileView, fs: &FormState) -> Markup {
        let lang = who.lang;
        textarea(lang, fs, "text", t(lang, "forms.note.text"), true)
    }
}
