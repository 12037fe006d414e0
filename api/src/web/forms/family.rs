//! Forms about the family itself: registering it with its members, a
//! member's status, transfer to another village, closing and reopening
//! the case.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use nuanxin_projections::case_file::{CaseFileView, MemberView};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::body::{Body, Field};
use super::{
    internal_page, not_found, offset, options, post, reader_refused, refused, show, today,
    uuid_param, FormPage, Params,
};
use crate::error::{ApiError, FieldError};
use crate::extract::RequestId;
use crate::routes::care_actions::new_action_id;
use crate::routes::dto::{
    CloseReopenRequest, MemberStatusRequest, RegisterFamilyRequest, TransferRequest,
};
use crate::routes::privacy::EraseRequest;
use crate::state::AppState;
use crate::web::form::{checkbox, choices, input, select, textarea, FormState, Kind};
use crate::web::session::{Form, WebPost, WebUser};
use crate::web::text::{date, t, tf, word};

/// Member blocks on the registration form (the API takes 1 to 4).
const MEMBER_BLOCKS: usize = 4;
/// A member block's fields besides the ones every block sends.
const MEMBER_TYPED: [&str; 5] = ["name", "sex", "birth_date", "id_number", "phone"];

fn member_field(i: usize, name: &str) -> String {
    format!("members[{i}].{name}")
}

/// Every field of member block `i`, sent as member `at` of the body.
fn member_fields(i: usize, at: usize) -> Vec<Field> {
    let f = |name: &str, field: fn(&str) -> Field| {
        field(&member_field(i, name)).at(member_field(at, name))
    };
    vec![
        f("name", Field::text),
        f("sex", Field::text),
        f("birth_date", Field::text),
        f("id_number", Field::text).optional(),
        f("phone", Field::text).optional(),
        f("living_alone", Field::check),
        f("self_care", Field::text),
    ]
}

fn family_fields() -> Vec<Field> {
    ["category", "village_code", "address", "registered_on"]
        .iter()
        .map(|n| Field::text(n))
        .collect()
}

/// The fields of the form as shown: every member block.
fn register_shown() -> Vec<Field> {
    let mut fields = family_fields();
    for i in 0..MEMBER_BLOCKS {
        fields.extend(member_fields(i, i));
    }
    fields
}

/// The fields as sent: the first member block, and every other one with
/// something typed in, numbered without gaps.
fn register_sent(form: &Form) -> Vec<Field> {
    let mut fields = family_fields();
    let mut at = 0;
    for i in 0..MEMBER_BLOCKS {
        let typed = MEMBER_TYPED
            .iter()
            .any(|n| !form.get(&member_field(i, n)).is_empty());
        if i == 0 || typed {
            fields.extend(member_fields(i, at));
            at += 1;
        }
    }
    fields
}

/// The new family's id: the same for a form sent twice (so the second is
/// answered with the first family, not refused), time-ordered like the
/// API's ids (the time the form was made, `_at`), and not one the user
/// can choose (its random part is a hash of the user and the form's key).
fn new_family_id(who: &WebUser, form: &Form) -> Uuid {
    let millis = form.get("_at").parse::<u64>().unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(who.user.id.as_bytes());
    hasher.update(form.get("_key").as_bytes());
    let hash = hasher.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&hash[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

fn member_block(who: &WebUser, fs: &FormState, i: usize) -> Markup {
    let lang = who.lang;
    let n = |name: &str| member_field(i, name);
    let sexes = options(who, "forms.sex", &["male", "female"]);
    let care = options(
        who,
        "forms.self_care",
        &["independent", "semi_dependent", "dependent"],
    );
    html! {
        fieldset.member {
            legend { (tf(lang, "forms.register.member", &[&(i + 1)])) }
            (input(lang, fs, &n("name"), t(lang, "forms.register.name"), Kind::Text, i == 0))
            (choices(lang, fs, &n("sex"), t(lang, "forms.register.sex"), &sexes))
            (input(lang, fs, &n("birth_date"), t(lang, "forms.register.birth_date"), Kind::Date, i == 0))
            (input(lang, fs, &n("id_number"), t(lang, "forms.register.id_number"), Kind::Text, false))
            (input(lang, fs, &n("phone"), t(lang, "forms.register.phone"), Kind::Tel, false))
            (checkbox(lang, fs, &n("living_alone"), t(lang, "forms.register.living_alone")))
            (select(lang, fs, &n("self_care"), t(lang, "forms.register.self_care"), &care, false))
        }
    }
}

fn register_page(who: &WebUser, state: &AppState, fs: &FormState, status: StatusCode) -> Response {
    let lang = who.lang;
    let categories = options(who, "category", &["bereaved", "disabled_child"]);
    // More than two members is rare: those blocks open when asked for (or
    // when they hold something).
    let more_open = (2..MEMBER_BLOCKS).any(|i| {
        MEMBER_TYPED
            .iter()
            .any(|n| !fs.value(&member_field(i, n)).is_empty())
    });
    let shown = register_shown();
    let made_at = state.core().services().clock.now().timestamp_millis();
    FormPage {
        title: t(lang, "forms.register.title"),
        case: None,
        action: "/families/new".into(),
        version: 0,
        state: fs,
        fields: &shown,
        intro: html! {},
        body: html! {
            input type="hidden" name="_at" value=(made_at);
            (choices(lang, fs, "category", t(lang, "forms.register.category"), &categories))
            (input(lang, fs, "village_code", t(lang, "forms.register.village_code"), Kind::Text, true))
            (input(lang, fs, "address", t(lang, "forms.register.address"), Kind::Text, true))
            (input(lang, fs, "registered_on", t(lang, "forms.register.registered_on"), Kind::Date, true))
            (member_block(who, fs, 0))
            (member_block(who, fs, 1))
            details.more-members open[more_open] {
                summary { (t(lang, "forms.register.more_members")) }
                @for i in 2..MEMBER_BLOCKS { (member_block(who, fs, i)) }
            }
        },
        submit: "forms.register.submit",
        danger: false,
    }
    .respond(who, status)
}

/// `GET /families/new`: registering a family with its members.
pub async fn register_form(State(state): State<AppState>, who: WebUser) -> Response {
    if let Some(r) = reader_refused(&who) {
        return r;
    }
    let mut values = vec![
        ("registered_on", today(&state)),
        ("village_code", who.user.scope.as_str().to_owned()),
    ];
    let cares: Vec<String> = (0..MEMBER_BLOCKS)
        .map(|i| member_field(i, "self_care"))
        .collect();
    for name in &cares {
        values.push((name.as_str(), "independent".to_owned()));
    }
    register_page(&who, &state, &FormState::with(&values), StatusCode::OK)
}

/// `POST /families/new`: registers the family; to its case file.
pub async fn register(State(state): State<AppState>, post: WebPost) -> Response {
    let WebPost { who, form } = post;
    if let Some(r) = reader_refused(&who) {
        return r;
    }
    let fields = register_sent(&form);
    let command = Body::build(&form, &fields, &[], offset(&state))
        .command::<RegisterFamilyRequest>(&fields, |r| r.into_command(new_action_id()));
    let family_id = new_family_id(&who, &form);
    let result = match command {
        Ok(c) => crate::web::form::run_command(&state, &who, &form, family_id, c).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(o) => Redirect::to(&format!("/families/{}?saved=register", o.family_id)).into_response(),
        Err(crate::error::ApiError::Internal(e)) => {
            tracing::error!(error = %e, "registering a family from the form failed");
            internal_page(&who)
        }
        Err(e) => {
            let (fs, status, _) = refused(&who, &form, &fields, &e);
            register_page(&who, &state, &fs, status)
        }
    }
}

fn member_facts(who: &WebUser, m: &MemberView) -> Markup {
    let lang = who.lang;
    let yes_no = |b: bool| t(lang, if b { "forms.yes" } else { "forms.no" });
    html! {
        dl.facts.card {
            dt { (t(lang, "forms.register.name")) } dd { (m.name) }
            dt { (t(lang, "forms.register.living_alone")) } dd { (yes_no(m.living_alone)) }
            dt { (t(lang, "forms.register.self_care")) } dd { (word(lang, "forms.self_care", &m.self_care)) }
            dt { (t(lang, "forms.register.phone")) } dd { (m.phone.as_deref().unwrap_or("—")) }
            @if let Some(d) = m.deceased_on {
                dt { (t(lang, "forms.status.deceased_on")) } dd { (date(lang, d)) }
            }
        }
    }
}

fn status_fields() -> Vec<Field> {
    vec![
        Field::text("effective_on"),
        Field::text("deceased_on").optional(),
        Field::yes_no("living_alone"),
        Field::text("self_care").optional(),
        Field::text("phone").optional(),
    ]
}

fn status_page(
    who: &WebUser,
    case: &CaseFileView,
    member: Option<&MemberView>,
    member_id: Uuid,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let unchanged = (String::new(), t(lang, "forms.status.unchanged").to_owned());
    let mut yes_no = vec![unchanged.clone()];
    yes_no.push(("true".into(), t(lang, "forms.yes").into()));
    yes_no.push(("false".into(), t(lang, "forms.no").into()));
    let mut care = vec![unchanged];
    care.extend(options(
        who,
        "forms.self_care",
        &["independent", "semi_dependent", "dependent"],
    ));
    let fields = status_fields();
    FormPage {
        title: t(lang, "forms.status.title"),
        case: Some(case),
        action: format!("/families/{}/members/{member_id}/status", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! { @if let Some(m) = member { (member_facts(who, m)) } },
        body: html! {
            (input(lang, fs, "effective_on", t(lang, "forms.status.effective_on"), Kind::Date, true))
            p.hint { (t(lang, "forms.status.hint")) }
            (select(lang, fs, "living_alone", t(lang, "forms.register.living_alone"), &yes_no, false))
            (select(lang, fs, "self_care", t(lang, "forms.register.self_care"), &care, false))
            (input(lang, fs, "phone", t(lang, "forms.status.phone"), Kind::Tel, false))
            (input(lang, fs, "deceased_on", t(lang, "forms.status.deceased_on"), Kind::Date, false))
        },
        submit: "form.save",
        danger: false,
    }
    .respond(who, status)
}

fn member(case: &CaseFileView, id: Uuid) -> Option<&MemberView> {
    case.members.iter().find(|m| m.id == id)
}

/// `GET /families/{id}/members/{member_id}/status`.
pub async fn member_status_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let (Some(id), Some(member_id)) = (uuid_param(&params, "id"), uuid_param(&params, "member_id"))
    else {
        return not_found(&who);
    };
    let fs = FormState::with(&[("effective_on", today(&state))]);
    show(&state, &who, &rid, id, |case| {
        match member(case, member_id) {
            Some(m) => status_page(
                &who,
                case,
                Some(m),
                member_id,
                &fs,
                case.version,
                StatusCode::OK,
            ),
            None => not_found(&who),
        }
    })
    .await
}

/// `POST /families/{id}/members/{member_id}/status`.
pub async fn member_status(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let (Some(id), Some(member_id)) = (uuid_param(&params, "id"), uuid_param(&params, "member_id"))
    else {
        return not_found(&who);
    };
    let fields = status_fields();
    let command = Body::build(&form, &fields, &[], offset(&state))
        .command::<MemberStatusRequest>(&fields, |r| r.into_command(new_action_id(), member_id));
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "member_status",
        &fields,
        command,
        |case, fs, v, s| status_page(&who, case, member(case, member_id), member_id, fs, v, s),
    )
    .await
}

/// A form of a date and a reason (transfer adds the village).
#[derive(Clone, Copy)]
enum Dated {
    Transfer,
    Close,
    Reopen,
}

impl Dated {
    fn slug(self) -> &'static str {
        match self {
            Dated::Transfer => "transfer",
            Dated::Close => "close",
            Dated::Reopen => "reopen",
        }
    }

    fn date_field(self) -> &'static str {
        match self {
            Dated::Transfer => "transferred_on",
            Dated::Close | Dated::Reopen => "on",
        }
    }

    fn fields(self) -> Vec<Field> {
        let mut fields = Vec::new();
        if let Dated::Transfer = self {
            fields.push(Field::text("village_code"));
        }
        fields.push(Field::text(self.date_field()));
        fields.push(Field::text("reason"));
        fields
    }

    fn page(
        self,
        who: &WebUser,
        case: &CaseFileView,
        fs: &FormState,
        version: u64,
        status: StatusCode,
    ) -> Response {
        let lang = who.lang;
        let (title, date_label, submit) = match self {
            Dated::Transfer => (
                "forms.transfer.title",
                "forms.transfer.transferred_on",
                "forms.transfer.submit",
            ),
            Dated::Close => ("forms.close.title", "forms.close.on", "forms.close.submit"),
            Dated::Reopen => (
                "forms.reopen.title",
                "forms.reopen.on",
                "forms.reopen.submit",
            ),
        };
        let fields = self.fields();
        FormPage {
            title: t(lang, title),
            case: Some(case),
            action: format!("/families/{}/{}", case.id, self.slug()),
            version,
            state: fs,
            fields: &fields,
            intro: html! {
                @match self {
                    Dated::Transfer => p.hint { (t(lang, "forms.transfer.hint")) },
                    Dated::Close => p.hint { (t(lang, "forms.close.hint")) },
                    Dated::Reopen => {},
                }
            },
            body: html! {
                @if let Dated::Transfer = self {
                    (input(lang, fs, "village_code", t(lang, "forms.transfer.village_code"), Kind::Text, true))
                }
                (input(lang, fs, self.date_field(), t(lang, date_label), Kind::Date, true))
                (textarea(lang, fs, "reason", t(lang, "forms.reason"), true))
            },
            submit,
            danger: matches!(self, Dated::Close),
        }
        .respond(who, status)
    }

    async fn show(self, state: &AppState, who: &WebUser, rid: &str, params: &Params) -> Response {
        let Some(id) = uuid_param(params, "id") else {
            return not_found(who);
        };
        let fs = FormState::with(&[(self.date_field(), today(state))]);
        show(state, who, rid, id, |case| {
            self.page(who, case, &fs, case.version, StatusCode::OK)
        })
        .await
    }

    async fn post(
        self,
        state: &AppState,
        rid: &str,
        params: &Params,
        who: &WebUser,
        form: &Form,
    ) -> Response {
        let Some(id) = uuid_param(params, "id") else {
            return not_found(who);
        };
        let fields = self.fields();
        let body = Body::build(form, &fields, &[], offset(state));
        let command = match self {
            Dated::Transfer => {
                body.command::<TransferRequest>(&fields, |r| r.into_command(new_action_id()))
            }
            Dated::Close => body
                .command::<CloseReopenRequest>(&fields, |r| r.into_command(new_action_id(), true)),
            Dated::Reopen => body
                .command::<CloseReopenRequest>(&fields, |r| r.into_command(new_action_id(), false)),
        };
        post(
            state,
            who,
            rid,
            id,
            form,
            self.slug(),
            &fields,
            command,
            |case, fs, v, s| self.page(who, case, fs, v, s),
        )
        .await
    }
}

/// `GET /families/{id}/transfer`.
pub async fn transfer_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    Dated::Transfer.show(&state, &who, &rid, &params).await
}

/// `POST /families/{id}/transfer`.
pub async fn transfer(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    Dated::Transfer
        .post(&state, &rid, &params, &who, &form)
        .await
}

/// `GET /families/{id}/close`.
pub async fn close_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    Dated::Close.show(&state, &who, &rid, &params).await
}

/// `POST /families/{id}/close`.
pub async fn close(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    Dated::Close.post(&state, &rid, &params, &who, &form).await
}

/// `GET /families/{id}/reopen`.
pub async fn reopen_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    Dated::Reopen.show(&state, &who, &rid, &params).await
}

/// `POST /families/{id}/reopen`.
pub async fn reopen(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    Dated::Reopen.post(&state, &rid, &params, &who, &form).await
}

/// The erasure form's fields, as the API's body takes them; the
/// confirmation box is checked before it is sent.
fn erase_fields() -> Vec<Field> {
    vec![Field::text("reason"), Field::text("on")]
}

/// The erasure form (admins, closed cases): why, when, and a box to tick
/// saying it cannot be undone.
fn erase_page(
    who: &WebUser,
    case: &CaseFileView,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let fields = [erase_fields(), vec![Field::check("confirm")]].concat();
    FormPage {
        title: t(lang, "forms.erase.title"),
        case: Some(case),
        action: format!("/families/{}/erase", case.id),
        version,
        state: fs,
        fields: &fields,
        intro: html! {
            p.hint { (t(lang, "forms.erase.hint")) }
            p.hint { (t(lang, "forms.erase.kept")) }
        },
        body: html! {
            (select(lang, fs, "reason", t(lang, "forms.erase.reason"),
                &options(who, "erasure_reason", &["purpose_ended", "consent_withdrawn", "retention_expired"]), true))
            (input(lang, fs, "on", t(lang, "forms.erase.on"), Kind::Date, true))
            (checkbox(lang, fs, "confirm", t(lang, "forms.erase.confirm")))
        },
        submit: "forms.erase.submit",
        danger: true,
    }
    .respond(who, status)
}

/// `GET /families/{id}/erase`: admins only.
pub async fn erase_form(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    if !who.is_admin() {
        return super::forbidden(&who);
    }
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fs = FormState::with(&[("on", today(&state))]);
    show(&state, &who, &rid, id, |case| {
        erase_page(&who, case, &fs, case.version, StatusCode::OK)
    })
    .await
}

/// `POST /families/{id}/erase`: records the erasure and deletes the keys
/// (`Commands::execute`), then back to the case file, which reads erased.
pub async fn erase(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    if !who.is_admin() {
        return super::forbidden(&who);
    }
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fields = erase_fields();
    let command = if form.get("confirm") == "true" {
        let today = state.core().today();
        Body::build(&form, &fields, &[], offset(&state))
            .command::<EraseRequest>(&fields, |r| r.into_command(new_action_id(), today))
    } else {
        Err(ApiError::Validation(vec![FieldError {
            field: "confirm".into(),
            message: "must be ticked: an erasure cannot be undone".into(),
        }]))
    };
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        "erase",
        &[erase_fields(), vec![Field::check("confirm")]].concat(),
        command,
        |case, fs, v, s| erase_page(&who, case, fs, v, s),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_member_blocks_are_left_out_and_the_rest_numbered_without_gaps() {
        let form = Form {
            pairs: vec![
                ("members[0].name".into(), "A".into()),
                ("members[2].name".into(), "C".into()),
                ("members[1].self_care".into(), "independent".into()),
            ],
        };
        let fields = register_sent(&form);
        let c = fields.iter().find(|f| f.name == "members[2].name").unwrap();
        assert_eq!(c.json, "members[1].name");
        assert!(!fields.iter().any(|f| f.name.starts_with("members[1]")));
    }
}
