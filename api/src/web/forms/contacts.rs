//! Forms about the people around a family: assigning and releasing the
//! village and township contacts, and setting and removing emergency
//! contacts.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use nuanxin_domain::{FamilyCommand, Role};
use nuanxin_projections::case_file::{CaseFileView, ContactView, EmergencyContactView};
use serde_json::Value;
use uuid::Uuid;

use super::body::{Body, Field};
use super::{
    not_found, offset, options, post, read_case, reader_refused, show, today, uuid_param, CaseForm,
    FormPage, Params,
};
use crate::error::ApiError;
use crate::extract::RequestId;
use crate::routes::care_actions::new_action_id;
use crate::routes::dto::{
    AssignContactRequest, EmergencyContactRequest, Fields, ReasonRequest, ReleaseContactRequest,
};
use crate::state::AppState;
use crate::web::form::{checkbox, choices, input, select, textarea, FormState, Kind};
use crate::web::session::{WebPost, WebUser};
use crate::web::text::{date, t, tf, word};

/// `?role=village|township`, if given and valid.
pub fn role_query(query: &RawQuery) -> Option<Role> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.0.as_deref().unwrap_or_default()).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "role")
        .and_then(|(_, v)| Role::parse(&v).ok())
}

pub fn contact_of(case: &CaseFileView, role: Role) -> Option<&ContactView> {
    match role {
        Role::Village => case.contacts.village.as_ref(),
        Role::Township => case.contacts.township.as_ref(),
    }
}

/// Who holds each role now.
fn holders(who: &WebUser, case: &CaseFileView) -> Markup {
    let lang = who.lang;
    html! {
        dl.facts.card {
            @for role in [Role::Village, Role::Township] {
                dt { (word(lang, "contact_role", role.as_str())) }
                dd {
                    @match contact_of(case, role) {
                        Some(c) => { (c.person.name) " · " (c.person.phone) " · "
                            (tf(lang, "forms.contact.since", &[&date(lang, c.assigned_on)])) }
                        None => span.muted { (t(lang, "forms.contact.none")) },
                    }
                }
            }
        }
    }
}

fn role_options(who: &WebUser) -> Vec<(String, String)> {
    options(who, "contact_role", &["village", "township"])
}

fn contact_fields(named: bool) -> Vec<Field> {
    let mut fields = vec![Field::text("role")];
    if named {
        fields.push(Field::text("person.name"));
    }
    fields.push(Field::text("person.phone"));
    fields.push(Field::text("assigned_on"));
    fields
}

fn contact_page(
    who: &WebUser,
    case: &CaseFileView,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = contact_fields(true);
    FormPage {
        title: t(lang, "forms.contact.title"),
        case: Some(case),
        action: format!("/families/{}/contact", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! { (holders(who, case)) p.hint { (t(lang, "forms.contact.hint")) } },
        body: html! {
            div.big-choices { (choices(lang, fs, "role", t(lang, "forms.contact.role"), &role_options(who))) }
            (checkbox(lang, fs, "_me", &tf(lang, "forms.contact.me", &[&who.user.name])))
            (input(lang, fs, "person.name", t(lang, "forms.contact.name"), Kind::Text, false))
            (input(lang, fs, "person.phone", t(lang, "forms.contact.phone"), Kind::Tel, true))
            (input(lang, fs, "assigned_on", t(lang, "forms.contact.assigned_on"), Kind::Date, true))
        },
        submit: "forms.contact.submit",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/{id}/contact[?role=]`: assigning a contact.
pub async fn contact_form(
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
        // The role asked for, else the first without a contact.
        let role = asked
            .or_else(|| {
                [Role::Village, Role::Township]
                    .into_iter()
                    .find(|r| contact_of(case, *r).is_none())
            })
            .unwrap_or(Role::Village);
        let fs = FormState::with(&[
            ("role", role.as_str().to_owned()),
            ("assigned_on", today(&state)),
        ]);
        contact_page(&who, case, &fs, case.version, StatusCode::OK)
    })
    .await
}

/// `POST /families/{id}/contact`. The person's id: the user's own when
/// they are the contact; the id of a contact of this family with the same
/// name and phone (the same person); else a new one.
pub async fn contact(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    if let Some(r) = reader_refused(&who) {
        return r;
    }
    let case = match read_case(&state, &who, &rid, id).await {
        Ok(case) => case,
        Err(r) => return r,
    };
    let me = form.get("_me") == "true";
    let (name, phone) = (form.get("person.name"), form.get("person.phone"));
    let person_id = if me {
        who.user.id
    } else {
        [Role::Village, Role::Township]
            .into_iter()
            .filter_map(|r| contact_of(&case, r))
            .find(|c| c.person.name == name && c.person.phone == phone)
            .map_or_else(Uuid::new_v4, |c| c.person.id)
    };
    let mut fixed = vec![("person.id", Value::from(person_id.to_string()))];
    let named = !(me && name.is_empty());
    if !named {
        fixed.push(("person.name", Value::from(who.user.name.clone())));
    }
    let fields = contact_fields(named);
    let command = Body::build(&form, &fields, &fixed, offset(&state))
        .command::<AssignContactRequest>(&fields, |r| r.into_command(new_action_id()));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "contact",
        &contact_fields(true),
        command,
        |case, fs, v, s| contact_page(&who, case, fs, v, s),
    )
    .await
}

fn release_fields() -> Vec<Field> {
    vec![Field::text("released_on"), Field::text("reason")]
}

fn release_page(
    who: &WebUser,
    case: &CaseFileView,
    role: Role,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = release_fields();
    let role_word = word(lang, "contact_role", role.as_str());
    FormPage {
        title: &tf(lang, "forms.release.title", &[&role_word]),
        case: Some(case),
        action: format!("/families/{}/release/{}", case.id, role.as_str()),
        version,
        state: fs,
        fields: &fields,
        intro: holders(who, case),
        body: html! {
            (input(lang, fs, "released_on", t(lang, "forms.release.released_on"), Kind::Date, true))
            (textarea(lang, fs, "reason", t(lang, "forms.reason"), true))
        },
        submit: "forms.release.submit",
        danger: true,
    }
    .respond(who, status)
}

fn role_param(params: &Params) -> Option<Role> {
    params.get("role").and_then(|r| Role::parse(r).ok())
}

/// `GET /families/{id}/release/{role}`.
pub async fn release_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let (Some(id), Some(role)) = (uuid_param(&params, "id"), role_param(&params)) else {
        return not_found(&who);
    };
    let fs = FormState::with(&[("released_on", today(&state))]);
    show(&state, &who, &rid, id, |case| {
        release_page(&who, case, role, &fs, case.version, StatusCode::OK)
    })
    .await
}

/// `POST /families/{id}/release/{role}`.
pub async fn release(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let (Some(id), Some(role)) = (uuid_param(&params, "id"), role_param(&params)) else {
        return not_found(&who);
    };
    let fields = release_fields();
    let command = Body::build(&form, &fields, &[], offset(&state))
        .command::<ReleaseContactRequest>(&fields, |r| {
            r.into_command(new_action_id(), role.as_str())
        });
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "release",
        &fields,
        command,
        |case, fs, v, s| release_page(&who, case, role, fs, v, s),
    )
    .await
}

/// `/families/{id}/emergency-contact`: adding an emergency contact (the
/// first free priority suggested), below the ones the family has.
pub struct EmergencyContact;

impl CaseForm for EmergencyContact {
    const PATH: &'static str = "emergency-contact";
    const SLUG: &'static str = "emergency_contact";
    const TITLE: &'static str = "forms.emergency_contact.title";

    fn fields() -> Vec<Field> {
        vec![
            Field::text("name"),
            Field::text("relation"),
            Field::text("phone"),
            Field::int("priority"),
        ]
    }

    fn first(_state: &AppState, _who: &WebUser, case: &CaseFileView) -> FormState {
        let free = (1..=9u8)
            .find(|p| !case.emergency_contacts.iter().any(|c| c.priority == *p))
            .unwrap_or(9);
        FormState::with(&[("priority", free.to_string())])
    }

    fn command(body: Body, fields: &[Field]) -> Result<FamilyCommand, ApiError> {
        body.command::<EmergencyContactRequest>(fields, |r| r.into_command(new_action_id()))
    }

    fn intro(who: &WebUser, case: &CaseFileView) -> Markup {
        let lang = who.lang;
        html! {
            @if !case.emergency_contacts.is_empty() {
                h2 { (t(lang, "forms.emergency_contact.current")) }
                ul.items {
                    @for c in &case.emergency_contacts {
                        li { (c.priority) ". " (c.name) " · " (c.relation) " · " (c.phone) }
                    }
                }
            }
        }
    }

    fn inputs(_state: &AppState, who: &WebUser, _case: &CaseFileView, fs: &FormState) -> Markup {
        let lang = who.lang;
        let priorities: Vec<(String, String)> =
            (1..=9).map(|p| (p.to_string(), p.to_string())).collect();
        html! {
            (input(lang, fs, "name", t(lang, "forms.emergency_contact.name"), Kind::Text, true))
            (input(lang, fs, "relation", t(lang, "forms.emergency_contact.relation"), Kind::Text, true))
            (input(lang, fs, "phone", t(lang, "forms.emergency_contact.phone"), Kind::Tel, true))
            (select(lang, fs, "priority", t(lang, "forms.emergency_contact.priority"), &priorities, false))
        }
    }
}

fn remove_page(
    who: &WebUser,
    case: &CaseFileView,
    contact_id: Uuid,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = vec![Field::text("reason")];
    let contact: Option<&EmergencyContactView> =
        case.emergency_contacts.iter().find(|c| c.id == contact_id);
    FormPage {
        title: t(lang, "forms.remove_contact.title"),
        case: Some(case),
        action: format!(
            "/families/{}/emergency-contacts/{contact_id}/remove",
            case.id
        ),
        version,
        state: fs,
        fields: &fields,
        intro: html! {
            @if let Some(c) = contact {
                dl.facts.card {
                    dt { (t(lang, "forms.emergency_contact.name")) } dd { (c.name) }
                    dt { (t(lang, "forms.emergency_contact.relation")) } dd { (c.relation) }
                    dt { (t(lang, "forms.emergency_contact.phone")) } dd { (c.phone) }
                }
            }
        },
        body: textarea(lang, fs, "reason", t(lang, "forms.reason"), true),
        submit: "forms.remove_contact.submit",
        danger: true,
    }
    .respond(who, status)
}

/// `GET /families/{id}/emergency-contacts/{contact_id}/remove`.
pub async fn remove_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let (Some(id), Some(contact_id)) =
        (uuid_param(&params, "id"), uuid_param(&params, "contact_id"))
    else {
        return not_found(&who);
    };
    show(&state, &who, &rid, id, |case| {
        if case.emergency_contacts.iter().any(|c| c.id == contact_id) {
            remove_page(
                &who,
                case,
                contact_id,
                &FormState::default(),
                case.version,
                StatusCode::OK,
            )
        } else {
            not_found(&who)
        }
    })
    .await
}

/// `POST /families/{id}/emergency-contacts/{contact_id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let (Some(id), Some(contact_id)) =
        (uuid_param(&params, "id"), uuid_param(&params, "contact_id"))
    else {
        return not_found(&who);
    };
    let fields = vec![Field::text("reason")];
    // The API's own conversion of this body (`routes::care_actions`).
    let command =
        Body::build(&form, &fields, &[], offset(&state)).command::<ReasonRequest>(&fields, |r| {
            let mut f = Fields::default();
            match f.text("reason", &r.reason) {
                Some(reason) => Ok(FamilyCommand::RemoveEmergencyContact {
                    action_id: new_action_id(),
                    emergency_contact_id: contact_id,
                    reason,
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
        "remove_emergency_contact",
        &fields,
        command,
        |case, fs, v, s| remove_page(&who, case, contact_id, fs, v, s),
    )
    .await
}
