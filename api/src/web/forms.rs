//! A form for every care action: `GET` shows the form (the family, today's
//! date and the other sensible defaults filled in), `POST` records it.
//!
//! A posted form becomes the very request body the JSON API takes
//! ([`body`]: typed text → numbers, booleans, lists, fen), is parsed by the
//! API's own parsing into the API's own DTO (`routes::dto`) and runs
//! through [`form::run_command`], so rules, messages, idempotency (the
//! hidden `_key`: a double tap records once) and versions (the hidden
//! `_version`: a form opened before someone else's change is refused as
//! stale) are the API's. Then:
//!
//! - saved → `303` to the case file, `/families/{id}?saved=<slug>`;
//! - a field is wrong → `422`, the form again with what was typed and each
//!   message beside its field;
//! - stale → `409`, the form again with what was typed, the case's new
//!   version and the `form.stale` message;
//! - another rule refuses → the form again with the message (`409`, `403`,
//!   `404`); a family outside the user's scope → the not-found page;
//! - a supervisor → `403` page, for the form and its `POST` alike.
//!
//! Slugs (`?saved=`): `register`, `member_status`, `contact`, `release`,
//! `visit`, `emergency_contact`, `remove_emergency_contact`, `emergency`,
//! `elderly_care`, `assistance`, `note`, `void`, `transfer`, `close`,
//! `reopen`, `enrol`, `withdraw`, `claim`, `decision`, `erase`.
//!
//! - [`body`]: form fields → JSON body → DTO, with every field's error.
//! - [`family`]: registering, a member's status, transfer, close, reopen,
//!   erasure of the family's personal data (admins).
//! - [`contacts`]: contacts (assign, release) and emergency contacts.
//! - [`visit`]: a visit, quick on a phone.
//! - [`care`]: emergency, elderly care, assistance, note.
//! - [`void`]: voiding an action, with a reason.
//! - [`insurance`]: enrolment, withdrawal, claim, decision.

pub mod body;
pub mod care;
pub mod contacts;
pub mod family;
pub mod insurance;
pub mod visit;
pub mod void;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use nuanxin_domain::FamilyCommand;
use nuanxin_infra::{ReadError, Viewer};
use nuanxin_projections::case_file::CaseFileView;
use uuid::Uuid;

use super::form::{self, command_fields, form_message, FormState};
use super::layout::{message_page, page};
use super::session::{Form, WebPost, WebUser};
use super::text::{t, word};
use crate::error::{ApiError, FieldError};
use crate::extract::RequestId;
use crate::state::AppState;
use axum::extract::State;
use body::{Body, Field};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/families/new",
            get(family::register_form).post(family::register),
        )
        .route(
            "/families/{id}/members/{member_id}/status",
            get(family::member_status_form).post(family::member_status),
        )
        .route(
            "/families/{id}/transfer",
            get(family::transfer_form).post(family::transfer),
        )
        .route(
            "/families/{id}/close",
            get(family::close_form).post(family::close),
        )
        .route(
            "/families/{id}/reopen",
            get(family::reopen_form).post(family::reopen),
        )
        .route(
            "/families/{id}/erase",
            get(family::erase_form).post(family::erase),
        )
        .route(
            "/families/{id}/contact",
            get(contacts::contact_form).post(contacts::contact),
        )
        .route(
            "/families/{id}/release/{role}",
            get(contacts::release_form).post(contacts::release),
        )
        .route(
            "/families/{id}/emergency-contact",
            get(case_form::<contacts::EmergencyContact>).post(record::<contacts::EmergencyContact>),
        )
        .route(
            "/families/{id}/emergency-contacts/{contact_id}/remove",
            get(contacts::remove_form).post(contacts::remove),
        )
        .route(
            "/families/{id}/visit",
            get(visit::visit_form).post(visit::visit),
        )
        .route(
            "/families/{id}/emergency",
            get(case_form::<care::Emergency>).post(record::<care::Emergency>),
        )
        .route(
            "/families/{id}/elderly-care",
            get(case_form::<care::ElderlyCare>).post(record::<care::ElderlyCare>),
        )
        .route(
            "/families/{id}/assistance",
            get(case_form::<care::Assistance>).post(record::<care::Assistance>),
        )
        .route(
            "/families/{id}/note",
            get(case_form::<care::Note>).post(record::<care::Note>),
        )
        .route(
            "/families/{id}/void/{action_id}",
            get(void::void_form).post(void::void),
        )
        .route(
            "/families/{id}/insurance/enrol",
            get(case_form::<insurance::Enrol>).post(record::<insurance::Enrol>),
        )
        .route(
            "/families/{id}/insurance/{enrolment_id}/withdraw",
            get(insurance::withdraw_form).post(insurance::withdraw),
        )
        .route(
            "/families/{id}/insurance/{enrolment_id}/claim",
            get(insurance::claim_form).post(insurance::claim),
        )
        .route(
            "/families/{id}/insurance/claims/{claim_id}/decision",
            get(insurance::decision_form).post(insurance::decision),
        )
}

/// The path parameters of a form's page, by name.
pub type Params = axum::extract::Path<std::collections::HashMap<String, String>>;

/// The UUID path parameter `name` (none: the page is not found).
pub fn uuid_param(params: &Params, name: &str) -> Option<Uuid> {
    params.get(name).and_then(|s| s.parse().ok())
}

/// `404`: unknown, or outside the user's scope (the same answer).
pub fn not_found(who: &WebUser) -> Response {
    (
        StatusCode::NOT_FOUND,
        message_page(who.lang, "error.title", "error.not_found"),
    )
        .into_response()
}

/// `403`: the user's role does not record.
pub fn forbidden(who: &WebUser) -> Response {
    (
        StatusCode::FORBIDDEN,
        message_page(who.lang, "error.title", "error.forbidden"),
    )
        .into_response()
}

/// `500`: nothing was saved.
pub fn internal_page(who: &WebUser) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        message_page(who.lang, "error.title", "error.internal"),
    )
        .into_response()
}

/// Supervisors read but never record: their forms and posts are refused
/// (the `403` page).
pub fn reader_refused(who: &WebUser) -> Option<Response> {
    (!who.is_recorder()).then(|| forbidden(who))
}

/// The case file as the user may see it (scope, masking, access log: the
/// API's read), or the not-found page.
pub async fn read_case(
    state: &AppState,
    who: &WebUser,
    request_id: &str,
    id: Uuid,
) -> Result<CaseFileView, Response> {
    let viewer = Viewer {
        user: &who.user,
        request_id,
    };
    match state.reads().case_file(&viewer, id, None).await {
        Ok(case) => Ok(case),
        Err(ReadError::NotFound) => Err(not_found(who)),
        Err(e) => {
            tracing::error!(error = %e, "reading a case file for a form failed");
            Err(internal_page(who))
        }
    }
}

/// A form to show again, after a refusal.
pub struct Again {
    /// The case as it stands now.
    pub case: CaseFileView,
    pub state: FormState,
    /// The version the form carries on (the one it was made from, or the
    /// case's current one after a stale refusal).
    pub version: u64,
    pub status: StatusCode,
}

/// What saving a form came to: a page (saved: the redirect; or a page of
/// its own: not found, an error), or the form to show again.
pub enum Saved {
    Page(Response),
    Again(Box<Again>),
}

/// Runs `command` (or its field errors) for family `family_id`: see the
/// module's documentation for the answers.
#[expect(clippy::too_many_arguments)]
pub async fn save(
    state: &AppState,
    who: &WebUser,
    request_id: &str,
    family_id: Uuid,
    form: &Form,
    slug: &str,
    fields: &[Field],
    command: Result<FamilyCommand, ApiError>,
) -> Saved {
    if let Some(r) = reader_refused(who) {
        return Saved::Page(r);
    }
    let result = match command {
        Ok(command) => form::run_command(state, who, form, family_id, command).await,
        Err(e) => Err(e),
    };
    let error = match result {
        Ok(outcome) => {
            return Saved::Page(
                Redirect::to(&format!("/families/{}?saved={slug}", outcome.family_id))
                    .into_response(),
            )
        }
        Err(ApiError::Internal(e)) => {
            tracing::error!(error = %e, "a form's command failed");
            return Saved::Page(internal_page(who));
        }
        Err(e) => e,
    };
    let case = match read_case(state, who, request_id, family_id).await {
        Ok(case) => case,
        Err(page) => return Saved::Page(page),
    };
    let (state, status, stale) = refused(who, form, fields, &error);
    let version = if stale {
        case.version
    } else {
        form.get("_version").parse().unwrap_or(case.version)
    };
    Saved::Again(Box::new(Again {
        case,
        state,
        version,
        status,
    }))
}

/// `GET` of a form on a registered family: refused to supervisors, the
/// not-found page outside the user's scope, else `render` of the case.
pub async fn show(
    state: &AppState,
    who: &WebUser,
    request_id: &str,
    id: Uuid,
    render: impl FnOnce(&CaseFileView) -> Response,
) -> Response {
    if let Some(r) = reader_refused(who) {
        return r;
    }
    match read_case(state, who, request_id, id).await {
        Ok(case) => render(&case),
        Err(r) => r,
    }
}

/// `POST` of a form on a registered family: [`save`], and `render` of the
/// form again when refused (case, state, version, status).
#[expect(clippy::too_many_arguments)]
pub async fn post(
    state: &AppState,
    who: &WebUser,
    request_id: &str,
    id: Uuid,
    form: &Form,
    slug: &str,
    fields: &[Field],
    command: Result<FamilyCommand, ApiError>,
    render: impl FnOnce(&CaseFileView, &FormState, u64, StatusCode) -> Response,
) -> Response {
    match save(state, who, request_id, id, form, slug, fields, command).await {
        Saved::Page(r) => r,
        Saved::Again(a) => render(&a.case, &a.state, a.version, a.status),
    }
}

/// A form of one action on a registered family at `/families/{id}/PATH`
/// with no other parameter: what its `GET` ([`case_form`]) and `POST`
/// ([`record`]) need.
pub trait CaseForm {
    /// Where it is, after `/families/{id}/`.
    const PATH: &'static str;
    /// `?saved=` after it is recorded.
    const SLUG: &'static str;
    /// The text key of its title.
    const TITLE: &'static str;
    /// Its fields, as the API's body takes them.
    fn fields() -> Vec<Field>;
    /// What it holds when first shown.
    fn first(_state: &AppState, _who: &WebUser, _case: &CaseFileView) -> FormState {
        FormState::default()
    }
    /// The posted fields as the API's command (or every field's error).
    fn command(body: Body, fields: &[Field]) -> Result<FamilyCommand, ApiError>;
    /// What the page shows above the fields.
    fn intro(_who: &WebUser, _case: &CaseFileView) -> Markup {
        html! {}
    }
    /// The fields' inputs, holding `fs`.
    fn inputs(state: &AppState, who: &WebUser, case: &CaseFileView, fs: &FormState) -> Markup;
}

/// The page of a [`CaseForm`]: first shown (`version` the case's), or again
/// after a refusal.
fn case_form_page<F: CaseForm>(
    state: &AppState,
    who: &WebUser,
    case: &CaseFileView,
    fs: &FormState,
    version: u64,
    status: StatusCode,
) -> Response {
    let fields = F::fields();
    FormPage {
        title: t(who.lang, F::TITLE),
        case: Some(case),
        action: format!("/families/{}/{}", case.id, F::PATH),
        version,
        state: fs,
        fields: &fields,
        intro: F::intro(who, case),
        body: F::inputs(state, who, case, fs),
        submit: "form.save",
        danger: false,
    }
    .respond(who, status)
}

/// `GET` of a [`CaseForm`]: [`show`] of what it holds first.
pub async fn case_form<F: CaseForm>(
    State(state): State<AppState>,
    who: WebUser,
    RequestId(rid): RequestId,
    params: Params,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    show(&state, &who, &rid, id, |case| {
        let first = F::first(&state, &who, case);
        case_form_page::<F>(&state, &who, case, &first, case.version, StatusCode::OK)
    })
    .await
}

/// `POST` of a [`CaseForm`]: [`post`] of its command.
pub async fn record<F: CaseForm>(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    params: Params,
    WebPost { who, form }: WebPost,
) -> Response {
    let Some(id) = uuid_param(&params, "id") else {
        return not_found(&who);
    };
    let fields = F::fields();
    let command = F::command(Body::build(&form, &fields, &[], offset(&state)), &fields);
    post(
        &state,
        &who,
        &rid,
        id,
        &form,
        F::SLUG,
        &fields,
        command,
        |case, fs, v, s| case_form_page::<F>(&state, &who, case, fs, v, s),
    )
    .await
}

/// The living members of the case, as choices (id, name).
pub fn living_members(case: &CaseFileView) -> Vec<(String, String)> {
    case.members
        .iter()
        .filter(|m| m.deceased_on.is_none())
        .map(|m| (m.id.to_string(), m.name.clone()))
        .collect()
}

/// The zone of local dates and times (the case's calendar).
pub fn offset(state: &AppState) -> chrono::FixedOffset {
    state.core().services().offset
}

/// How the executor's refusal of an old version begins
/// (`ExecError::VersionMismatch`, answered 409 by the API).
const STALE_PREFIX: &str = "the case is at version ";

/// Whether `error` says the case moved on since the form was made.
fn is_stale(error: &ApiError) -> bool {
    matches!(error, ApiError::Conflict(m) if m.starts_with(STALE_PREFIX))
}

/// A form sent again with its key after being changed: the first one was
/// saved.
fn is_resent(error: &ApiError) -> bool {
    matches!(error, ApiError::Validation(es) if es.iter().any(|e| e.field == "Idempotency-Key"))
}

/// A rule's refusal naming one field of the form ("`visited_on` is in the
/// future"): the field and the rest of the message in the page's language.
fn field_refusal(who: &WebUser, fields: &[Field], error: &ApiError) -> Option<FieldError> {
    let ApiError::Conflict(m) = error else {
        return None;
    };
    let (name, _) = m.strip_prefix('`')?.split_once("` ")?;
    let field = body::form_name(fields, name);
    fields.iter().any(|f| f.name == field).then_some(())?;
    let text = crate::i18n::message(m, who.lang);
    let rest = text.strip_prefix(&format!("`{name}` "))?;
    Some(FieldError {
        field,
        message: rest.to_owned(),
    })
}

/// The form's state after `error`, its status, and whether the form must
/// carry on from the case's current version (stale, or resent after a
/// change).
pub fn refused(
    who: &WebUser,
    form: &Form,
    fields: &[Field],
    error: &ApiError,
) -> (FormState, StatusCode, bool) {
    let mut state = FormState::failed(form, who.lang, error);
    if is_stale(error) {
        state.message = Some(t(who.lang, "form.stale").to_owned());
        return (state, StatusCode::CONFLICT, true);
    }
    if is_resent(error) {
        state.errors.clear();
        state.message = Some(t(who.lang, "forms.resent").to_owned());
        return (state, StatusCode::CONFLICT, true);
    }
    if let Some(e) = field_refusal(who, fields, error) {
        state.message = None;
        state.errors = vec![e];
        return (state, StatusCode::UNPROCESSABLE_ENTITY, false);
    }
    let status = match error {
        ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (state, status, false)
}

/// The members' names ("张三、李梅").
pub fn family_name(case: &CaseFileView) -> String {
    case.members
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join("、")
}

/// Which family the form is about.
pub fn family_card(who: &WebUser, case: &CaseFileView) -> Markup {
    let lang = who.lang;
    html! {
        div.card.form-family {
            p.form-family-name {
                strong { (family_name(case)) }
                " " span.badge { (word(lang, "category", &case.category)) }
                @if case.status == "closed" { " " span.badge.overdue { (t(lang, "forms.closed")) } }
            }
            p.muted { (case.village_code) " · " (case.address) }
        }
    }
}

/// A whole form page: the family (if any), the form's message, the fields
/// with the hidden token, key and version, one big save button, and the
/// way back.
pub struct FormPage<'a> {
    pub title: &'a str,
    pub case: Option<&'a CaseFileView>,
    /// Where the form posts.
    pub action: String,
    pub version: u64,
    pub state: &'a FormState,
    pub fields: &'a [Field],
    /// Shown above the form (what the action is about).
    pub intro: Markup,
    pub body: Markup,
    /// The save button's text key (`form.save` by default).
    pub submit: &'static str,
    pub danger: bool,
}

impl FormPage<'_> {
    pub fn respond(self, who: &WebUser, status: StatusCode) -> Response {
        let lang = who.lang;
        let shown: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        let back = match self.case {
            Some(case) => format!("/families/{}", case.id),
            None => "/families".to_owned(),
        };
        let mut r = page(
            who,
            self.title,
            "/families",
            html! {
                @if let Some(case) = self.case { (family_card(who, case)) }
                (self.intro)
                (form_message(lang, self.state, &shown))
                form.care-form method="post" action=(self.action) {
                    (command_fields(who, self.version))
                    (self.body)
                    div.actions.wide {
                        @if self.danger {
                            button.danger type="submit" { (t(lang, self.submit)) }
                        } @else {
                            button type="submit" { (t(lang, self.submit)) }
                        }
                    }
                }
                p { a href=(back) { (t(lang, "forms.back")) } }
            },
        );
        *r.status_mut() = status;
        r
    }
}

/// A labelled `datetime-local` input (there is no such kind in
/// [`form::Kind`]), keeping its value and showing its error.
pub fn datetime_input(who: &WebUser, state: &FormState, name: &str, label: &str) -> Markup {
    let id = form::id_of(name);
    let error = state.errors.iter().find(|e| e.field == name);
    html! {
        label for=(id) { (label) }
        input id=(id) type="datetime-local" name=(name) value=(state.value(name)) required
            aria-invalid=[error.is_some().then_some("true")]
            aria-describedby=[error.is_some().then(|| format!("{id}-error"))];
        @if let Some(e) = error {
            p.field-error id=(format!("{id}-error")) role="alert" { (crate::i18n::message(&e.message, who.lang)) }
        }
    }
}

/// Options (value, text) of an enum's values with their words.
pub fn options(who: &WebUser, section: &str, values: &[&str]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| ((*v).to_owned(), word(who.lang, section, v)))
        .collect()
}

/// Today as a form value.
pub fn today(state: &AppState) -> String {
    state.reads().today().to_string()
}

#[cfg(test)]
mod tests {
    use super::super::text::{t, Lang};

    /// The key scan of `web::text` reads `src/web/*.rs` only: the same
    /// check for this module's files in `src/web/forms/`.
    #[test]
    fn every_key_the_forms_ask_for_exists() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/forms");
        let re = regex::Regex::new(r#"\bt[f]?\(\s*(?:[a-z_.]+,\s*)?"([a-z0-9_.]+)""#).unwrap();
        let mut missing = Vec::new();
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            for c in re.captures_iter(&source) {
                seen += 1;
                if t(Lang::Zh, &c[1]).is_empty() || t(Lang::En, &c[1]).is_empty() {
                    missing.push(format!("{}: {}", path.display(), &c[1]));
                }
            }
        }
        assert!(seen > 40, "the scan finds the forms' keys ({seen})");
        assert!(missing.is_empty(), "keys not in a catalogue: {missing:#?}");
    }
}
