//! Forms of the care given: an emergency, elderly care, assistance, a
//! note. (A visit: [`super::visit`]; voiding: [`super::void`].)

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use nuanxin_domain::FamilyCommand;
use nuanxin_projections::case_file::CaseFileView;

use super::body::{Body, Field};
use super::{
    datetime_input, not_found, offset, options, post, show, today, uuid_param, FormPage, Params,
};
use crate::extract::RequestId;
use crate::routes::care_actions::new_action_id;
use crate::routes::dto::{
    AssistanceRequest, ElderlyCareRequest, EmergencyRequest, Fields, NoteRequest,
};
use crate::state::AppState;
use crate::web::form::{choices, input, select, textarea, FormState, Kind};
use crate::web::session::{WebPost, WebUser};
use crate::web::text::t;

fn emergency_fields() -> Vec<Field> {
    vec![
        Field::instant("occurred_at"),
        Field::text("description"),
        Field::text("responder"),
        Field::text("outcome"),
    ]
}

fn emergency_page(
    who: &WebUser,
    case: &CaseFileView,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = emergency_fields();
    FormPage {
        title: t(lang, "forms.emergency.title"),
        case: Some(case),
        action: format!("/families/{}/emergency", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! { p.hint { (t(lang, "forms.emergency.hint")) } },
        body: html! {
            (datetime_input(who, fs, "occurred_at", t(lang, "forms.emergency.occurred_at")))
            (textarea(lang, fs, "description", t(lang, "forms.emergency.description"), true))
            (input(lang, fs, "responder", t(lang, "forms.emergency.responder"), Kind::Text, true))
            (textarea(lang, fs, "outcome", t(lang, "forms.emergency.outcome"), true))
        },
        submit: "form.save",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/{id}/emergency`: now, and the user as the responder.
pub async fn emergency_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let now = state
        .core()
        .services()
        .clock
        .now()
        .with_timezone(&offset(&state))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let fs = FormState::with(&[("occurred_at", now), ("responder", who.user.name.clone())]);
    show(&state, &who, &rid, id, |case| {
        emergency_page(&who, case, &fs, case.version, StatusCode::OK)
    })
    .await
}

/// `POST /families/{id}/emergency`.
pub async fn emergency(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fields = emergency_fields();
    let command = Body::build(&form, &fields, &[], offset(&state))
        .command::<EmergencyRequest>(&fields, |r| r.into_command(new_action_id()));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "emergency",
        &fields,
        command,
        |case, fs, v, s| emergency_page(&who, case, fs, v, s),
    )
    .await
}

fn elderly_care_fields() -> Vec<Field> {
    vec![
        Field::text("member_id"),
        Field::text("service"),
        Field::text("provider"),
        Field::text("from"),
        Field::text("to").optional(),
    ]
}

const SERVICES: [&str; 5] = [
    "daily_living_care",
    "home_care",
    "day_care",
    "nursing_home",
    "meal_assistance",
];

fn elderly_care_page(
    who: &WebUser,
    case: &CaseFileView,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = elderly_care_fields();
    let members: Vec<(String, String)> = case
        .members
        .iter()
        .filter(|m| m.deceased_on.is_none())
        .map(|m| (m.id.to_string(), m.name.clone()))
        .collect();
    let services = options(who, "forms.service", &SERVICES);
    FormPage {
        title: t(lang, "forms.elderly_care.title"),
        case: Some(case),
        action: format!("/families/{}/elderly-care", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! {},
        body: html! {
            (select(lang, fs, "member_id", t(lang, "forms.elderly_care.member"), &members, members.len() != 1))
            (select(lang, fs, "service", t(lang, "forms.elderly_care.service"), &services, true))
            (input(lang, fs, "provider", t(lang, "forms.elderly_care.provider"), Kind::Text, true))
            (input(lang, fs, "from", t(lang, "forms.elderly_care.from"), Kind::Date, true))
            (input(lang, fs, "to", t(lang, "forms.elderly_care.to"), Kind::Date, false))
        },
        submit: "form.save",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/{id}/elderly-care`.
pub async fn elderly_care_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    show(&state, &who, &rid, id, |case| {
        let mut values = vec![("from", today(&state))];
        let living: Vec<_> = case
            .members
            .iter()
            .filter(|m| m.deceased_on.is_none())
            .collect();
        if let [only] = living.as_slice() {
            values.push(("member_id", only.id.to_string()));
        }
        elderly_care_page(
            &who,
            case,
            &FormState::with(&values),
            case.version,
            StatusCode::OK,
        )
    })
    .await
}

/// `POST /families/{id}/elderly-care`.
pub async fn elderly_care(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fields = elderly_care_fields();
    let command = Body::build(&form, &fields, &[], offset(&state))
        .command::<ElderlyCareRequest>(&fields, |r| r.into_command(new_action_id()));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "elderly_care",
        &fields,
        command,
        |case, fs, v, s| elderly_care_page(&who, case, fs, v, s),
    )
    .await
}

fn assistance_fields() -> Vec<Field> {
    vec![
        Field::text("area"),
        Field::yuan("amount_yuan", "amount_fen").optional(),
        Field::text("provided_on"),
        Field::text("description"),
    ]
}

fn assistance_page(
    who: &WebUser,
    case: &CaseFileView,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = assistance_fields();
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
    FormPage {
        title: t(lang, "forms.assistance.title"),
        case: Some(case),
        action: format!("/families/{}/assistance", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! {},
        body: html! {
            div.big-choices { (choices(lang, fs, "area", t(lang, "forms.assistance.area"), &areas)) }
            (input(lang, fs, "amount_yuan", t(lang, "forms.assistance.amount_yuan"), Kind::Number, false))
            (input(lang, fs, "provided_on", t(lang, "forms.assistance.provided_on"), Kind::Date, true))
            (textarea(lang, fs, "description", t(lang, "forms.assistance.description"), true))
        },
        submit: "form.save",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/{id}/assistance`.
pub async fn assistance_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fs = FormState::with(&[("provided_on", today(&state))]);
    show(&state, &who, &rid, id, |case| {
        assistance_page(&who, case, &fs, case.version, StatusCode::OK)
    })
    .await
}

/// `POST /families/{id}/assistance`: the amount typed in yuan is sent in
/// fen, as the API takes it.
pub async fn assistance(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fields = assistance_fields();
    let command = Body::build(&form, &fields, &[], offset(&state))
        .command::<AssistanceRequest>(&fields, |r| r.into_command(new_action_id()));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "assistance",
        &fields,
        command,
        |case, fs, v, s| assistance_page(&who, case, fs, v, s),
    )
    .await
}

fn note_page(
    who: &WebUser,
    case: &CaseFileView,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = vec![Field::text("text")];
    FormPage {
        title: t(lang, "forms.note.title"),
        case: Some(case),
        action: format!("/families/{}/note", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! {},
        body: textarea(lang, fs, "text", t(lang, "forms.note.text"), true),
        submit: "form.save",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/{id}/note`.
pub async fn note_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    show(&state, &who, &rid, id, |case| {
        note_page(
            &who,
            case,
            &FormState::default(),
            case.version,
            StatusCode::OK,
        )
    })
    .await
}

/// `POST /families/{id}/note`.
pub async fn note(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fields = vec![Field::text("text")];
    // The API's own conversion of this body (`routes::care_actions`).
    let command =
        Body::build(&form, &fields, &[], offset(&state)).command::<NoteRequest>(&fields, |r| {
            let mut f = Fields::default();
            match f.text("text", &r.text) {
                Some(text) => Ok(FamilyCommand::AddNote {
                    action_id: new_action_id(),
                    text,
                }),
                None => Err(f.error()),
            }
        });
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "note",
        &fields,
        command,
        |case, fs, v, s| note_page(&who, case, fs, v, s),
    )
    .await
}
