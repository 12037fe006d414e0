//! Forms of the care given: a visit (quick, for a phone), an emergency,
//! elderly care, assistance, a note, and voiding a mistaken action.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use nuanxin_domain::{FamilyCommand, Role};
use nuanxin_infra::{ReadError, ReadKind, Viewer};
use nuanxin_projections::case_file::CaseFileView;
use serde_json::Value;

use super::body::{Body, Field};
use super::contacts::{contact_of, role_query};
use super::{
    datetime_input, internal_page, not_found, offset, options, post, reader_refused, show, today,
    uuid_param, FormPage, Params,
};
use crate::extract::RequestId;
use crate::routes::care_actions::new_action_id;
use crate::routes::dto::{
    AssistanceRequest, ElderlyCareRequest, EmergencyRequest, Fields, NoteRequest, VisitRequest,
    VoidRequest,
};
use crate::state::AppState;
use crate::web::form::{choices, input, select, textarea, FormState, Kind};
use crate::web::session::{WebPost, WebUser};
use crate::web::text::{date, instant, t, tf, word};

fn visit_fields() -> Vec<Field> {
    vec![
        Field::text("role"),
        Field::text("mode"),
        Field::text("visited_on"),
        Field::text("findings"),
        Field::list("needs"),
    ]
}

/// Each role's contact and visits, as the role's choice says it.
fn role_choice(who: &WebUser, case: &CaseFileView, role: Role) -> (String, String) {
    let lang = who.lang;
    let name = word(lang, "contact_role", role.as_str());
    let text = match contact_of(case, role) {
        Some(c) => tf(lang, "forms.visit.role_choice", &[&name, &c.person.name]),
        None => tf(
            lang,
            "forms.visit.role_choice",
            &[&name, &t(lang, "forms.contact.none")],
        ),
    };
    (role.as_str().to_owned(), text)
}

fn visits_line(who: &WebUser, case: &CaseFileView) -> Markup {
    let lang = who.lang;
    let roles = [
        (Role::Village, &case.visits.village),
        (Role::Township, &case.visits.township),
    ];
    html! {
        ul.visit-facts {
            @for (role, v) in roles {
                @if contact_of(case, role).is_some() {
                    li {
                        (word(lang, "contact_role", role.as_str())) "："
                        @match v.last_on {
                            Some(d) => (tf(lang, "forms.visit.last", &[&date(lang, d)])),
                            None => (t(lang, "forms.visit.never")),
                        }
                        @if let Some(d) = v.next_due_on {
                            " · " (tf(lang, "forms.visit.due", &[&date(lang, d)]))
                        }
                    }
                }
            }
        }
    }
}

fn visit_page(
    who: &WebUser,
    case: &CaseFileView,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = visit_fields();
    let roles = vec![
        role_choice(who, case, Role::Village),
        role_choice(who, case, Role::Township),
    ];
    let modes = options(who, "mode", &["home", "phone", "video", "holiday"]);
    FormPage {
        title: t(lang, "forms.visit.title"),
        case: Some(case),
        action: format!("/families/{}/visit", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: visits_line(who, case),
        body: html! {
            div.big-choices.one { (choices(lang, fs, "role", t(lang, "forms.visit.role"), &roles)) }
            div.big-choices { (choices(lang, fs, "mode", t(lang, "forms.visit.mode"), &modes)) }
            (input(lang, fs, "visited_on", t(lang, "forms.visit.visited_on"), Kind::Date, true))
            (textarea(lang, fs, "findings", t(lang, "forms.visit.findings"), true))
            (textarea(lang, fs, "needs", t(lang, "forms.visit.needs"), false))
            p.hint { (t(lang, "forms.visit.needs_hint")) }
        },
        submit: "forms.visit.submit",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/{id}/visit[?role=village|township]`: recording a visit,
/// quick on a phone: the role (asked, else the user's own role in this
/// family, else the only one with a contact) and today filled in.
pub async fn visit_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    query: RawQuery,
    params: Params,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let asked = role_query(&query);
    show(&state, &who, &rid, id, |case| {
        let roles = [Role::Village, Role::Township];
        let role = asked
            .or_else(|| {
                roles
                    .into_iter()
                    .find(|r| contact_of(case, *r).is_some_and(|c| c.person.id == who.user.id))
            })
            .or_else(|| roles.into_iter().find(|r| contact_of(case, *r).is_some()))
            .unwrap_or(Role::Village);
        let fs = FormState::with(&[
            ("role", role.as_str().to_owned()),
            ("visited_on", today(&state)),
        ]);
        visit_page(&who, case, &fs, case.version, StatusCode::OK)
    })
    .await
}

/// `POST /families/{id}/visit`.
pub async fn visit(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fields = visit_fields();
    let command = Body::build(&form, &fields, &[], offset(&state))
        .command::<VisitRequest>(&fields, |r| r.into_command(new_action_id()));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "visit",
        &fields,
        command,
        |case, fs, v, s| visit_page(&who, case, fs, v, s),
    )
    .await
}

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

/// What is being voided, as the history tells it.
struct Voided {
    event_type: String,
    recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    recorded_by: Option<String>,
    voided: bool,
}

fn void_page(
    who: &WebUser,
    case: &CaseFileView,
    action_id: uuid::Uuid,
    what: Option<&Voided>,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = vec![Field::text("reason")];
    FormPage {
        title: t(lang, "forms.void.title"),
        case: Some(case),
        action: format!("/families/{}/void/{action_id}", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! {
            @if let Some(w) = what {
                dl.facts.card {
                    dt { (t(lang, "forms.void.what")) } dd { (word(lang, "forms.event", &w.event_type)) }
                    @if let Some(at) = w.recorded_at {
                        dt { (t(lang, "forms.void.recorded_at")) } dd { (instant(lang, at)) }
                    }
                    @if let Some(by) = &w.recorded_by {
                        dt { (t(lang, "forms.void.recorded_by")) } dd { (by) }
                    }
                }
                @if w.voided { div.alert-box role="alert" { (t(lang, "forms.void.already")) } }
            }
            p.hint { (t(lang, "forms.void.hint")) }
        },
        body: textarea(lang, fs, "reason", t(lang, "forms.reason"), true),
        submit: "forms.void.submit",
        danger: true,
    }
    .respond(who, status)
}

/// The action `action_id` of family `id` from its history (an access-log
/// read of kind `history`, like the API's).
async fn voided(
    state: &AppState,
    who: &WebUser,
    rid: &str,
    id: uuid::Uuid,
    action_id: uuid::Uuid,
) -> Result<Option<Voided>, Response> {
    let viewer = Viewer {
        user: &who.user,
        request_id: rid,
    };
    match state.reads().history(&viewer, id, ReadKind::History).await {
        Ok(h) => Ok(h
            .entries
            .into_iter()
            .find(|e| e.action_id == Some(action_id))
            .map(|e| Voided {
                event_type: e.event_type,
                recorded_at: e.recorded_at,
                recorded_by: e.recorded_by.map(|r| r.name),
                voided: e.voided_by.is_some(),
            })),
        Err(ReadError::NotFound) => Err(not_found(who)),
        Err(e) => {
            tracing::error!(error = %e, "reading a history for the void form failed");
            Err(internal_page(who))
        }
    }
}

/// `GET /families/{id}/void/{action_id}`: voiding an action, with a
/// reason; the action shown.
pub async fn void_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let (Some(id), Some(action_id)) = (uuid_param(&params, "id"), uuid_param(&params, "action_id"))
    else {
        return not_found(&who);
    };
    if let Some(r) = reader_refused(&who) {
        return r;
    }
    let what = match voided(&state, &who, &rid, id, action_id).await {
        Ok(Some(w)) => w,
        Ok(None) => return not_found(&who),
        Err(r) => return r,
    };
    show(&state, &who, &rid, id, |case| {
        void_page(
            &who,
            case,
            action_id,
            Some(&what),
            &FormState::default(),
            case.version,
            StatusCode::OK,
        )
    })
    .await
}

/// `POST /families/{id}/void/{action_id}`.
pub async fn void(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let (Some(id), Some(action_id)) = (uuid_param(&params, "id"), uuid_param(&params, "action_id"))
    else {
        return not_found(&who);
    };
    let fields = vec![Field::text("reason")];
    let fixed = [("action_id", Value::from(action_id.to_string()))];
    let command = Body::build(&form, &fields, &fixed, offset(&state))
        .command::<VoidRequest>(&fields, |r| r.into_command(new_action_id()));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "void",
        &fields,
        command,
        |case, fs, v, s| void_page(&who, case, action_id, None, fs, v, s),
    )
    .await
}
