//! The visit form, quick on a phone: the family and each role's last and
//! next visit shown, the role and today filled in, the mode as big
//! choices, one big save button.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use nuanxin_domain::Role;
use nuanxin_projections::case_file::CaseFileView;

use super::body::{Body, Field};
use super::contacts::{contact_of, role_query};
use super::{not_found, offset, options, post, show, today, uuid_param, FormPage, Params};
use crate::extract::RequestId;
use crate::routes::care_actions::new_action_id;
use crate::routes::dto::VisitRequest;
use crate::state::AppState;
use crate::web::form::{choices, input, textarea, FormState, Kind};
use crate::web::session::{WebPost, WebUser};
use crate::web::text::{date, t, tf, word};

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
