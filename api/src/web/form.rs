//! Form pieces every page uses: labelled fields that show their error
//! beside them (in the page's language) and keep what was typed, the
//! hidden form token, idempotency key and case version, and running a
//! family command from a form exactly as the API does.
//!
//! Field names are the API's field names (`visited_on`, `members[0].name`
//! …), so a validation error from the shared parsing (`routes::dto`) lands
//! beside its field.

use std::collections::HashMap;

use maud::{html, Markup};
use nuanxin_domain::FamilyCommand;
use nuanxin_infra::{CommandRequest, Outcome};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::session::{Form, WebUser};
use super::text::{t, Lang};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// What a form shows: the values to fill in and the errors to show.
#[derive(Debug, Default, Clone)]
pub struct FormState {
    pub values: HashMap<String, String>,
    pub errors: Vec<FieldError>,
    /// A message for the whole form (a refusal, a stale version).
    pub message: Option<String>,
}

impl FormState {
    /// An empty form with these starting values.
    pub fn with(values: &[(&str, String)]) -> Self {
        Self {
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..Self::default()
        }
    }

    /// The form as it was sent, to show again with `error`'s messages.
    pub fn failed(form: &Form, lang: Lang, error: &ApiError) -> Self {
        let mut state = Self {
            values: form.values(),
            ..Self::default()
        };
        match error {
            ApiError::Validation(errors) => state.errors = errors.clone(),
            other => state.message = Some(refusal(lang, other)),
        }
        state
    }

    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    fn error(&self, name: &str) -> Option<&FieldError> {
        self.errors.iter().find(|e| e.field == name)
    }

    /// Errors of fields the form does not show (shown at the top).
    pub fn other_errors<'a>(&'a self, shown: &[&str]) -> Vec<&'a FieldError> {
        self.errors
            .iter()
            .filter(|e| !shown.contains(&e.field.as_str()))
            .collect()
    }
}

/// A refusal (not a field error) in the page's language.
pub fn refusal(lang: Lang, error: &ApiError) -> String {
    match error {
        ApiError::Conflict(m)
        | ApiError::Forbidden(m)
        | ApiError::NotFound(m)
        | ApiError::BadRequest(m) => crate::i18n::message(m, lang).into_owned(),
        ApiError::Validation(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, crate::i18n::message(&e.message, lang)))
            .collect::<Vec<_>>()
            .join("; "),
        _ => t(lang, "error.internal").to_owned(),
    }
}

/// The hidden form token.
pub fn csrf_field(who: &WebUser) -> Markup {
    html! { input type="hidden" name="_csrf" value=(who.csrf); }
}

/// The hidden fields of a command form: the form token, a fresh
/// idempotency key (a double tap or a resent form records once) and the
/// case version the form was made from (a form made before someone else's
/// change is refused as stale, not applied over it).
pub fn command_fields(who: &WebUser, version: u64) -> Markup {
    html! {
        (csrf_field(who))
        input type="hidden" name="_key" value=(Uuid::new_v4().to_string());
        input type="hidden" name="_version" value=(version);
    }
}

/// A field's error, if it has one, in the page's language.
pub fn field_error(lang: Lang, errors: &[(&str, String)], name: &str) -> Markup {
    html! {
        @for (_, m) in errors.iter().filter(|(f, _)| *f == name) {
            p.field-error id=(format!("{name}-error")) { (crate::i18n::message(m, lang)) }
        }
    }
}

fn error_line(lang: Lang, state: &FormState, name: &str) -> Markup {
    html! {
        @if let Some(e) = state.error(name) {
            p.field-error id=(format!("{}-error", id_of(name))) role="alert" { (crate::i18n::message(&e.message, lang)) }
        }
    }
}

/// An element id for a field name (`members[0].name` → `members-0--name`).
pub fn id_of(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The kind of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Date,
    Number,
    Tel,
    Password,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Date => "date",
            Kind::Number => "number",
            Kind::Tel => "tel",
            Kind::Password => "password",
        }
    }
}

/// A labelled input keeping its value and showing its error.
pub fn input(
    lang: Lang,
    state: &FormState,
    name: &str,
    label: &str,
    kind: Kind,
    required: bool,
) -> Markup {
    let id = id_of(name);
    let invalid = state.error(name).is_some();
    html! {
        label for=(id) { (label) @if !required { span.hint { " " (t(lang, "form.optional")) } } }
        input id=(id) type=(kind.as_str()) name=(name) value=(state.value(name)) required[required]
            step=[(kind == Kind::Number).then_some("0.01")]
            aria-invalid=[invalid.then_some("true")]
            aria-describedby=[invalid.then(|| format!("{id}-error"))];
        (error_line(lang, state, name))
    }
}

/// A labelled multi-line text.
pub fn textarea(lang: Lang, state: &FormState, name: &str, label: &str, required: bool) -> Markup {
    let id = id_of(name);
    let invalid = state.error(name).is_some();
    html! {
        label for=(id) { (label) @if !required { span.hint { " " (t(lang, "form.optional")) } } }
        textarea id=(id) name=(name) required[required] aria-invalid=[invalid.then_some("true")]
            aria-describedby=[invalid.then(|| format!("{id}-error"))] { (state.value(name)) }
        (error_line(lang, state, name))
    }
}

/// A labelled choice among `options` (value, text); `blank` adds an empty
/// first choice.
pub fn select(
    lang: Lang,
    state: &FormState,
    name: &str,
    label: &str,
    options: &[(String, String)],
    blank: bool,
) -> Markup {
    let id = id_of(name);
    let invalid = state.error(name).is_some();
    let current = state.value(name);
    html! {
        label for=(id) { (label) }
        select id=(id) name=(name) aria-invalid=[invalid.then_some("true")]
            aria-describedby=[invalid.then(|| format!("{id}-error"))] {
            @if blank { option value="" { (t(lang, "form.choose")) } }
            @for (value, text) in options {
                option value=(value) selected[value == current] { (text) }
            }
        }
        (error_line(lang, state, name))
    }
}

/// Big radio buttons (for a phone) among `options` (value, text).
pub fn choices(
    lang: Lang,
    state: &FormState,
    name: &str,
    legend: &str,
    options: &[(String, String)],
) -> Markup {
    let current = state.value(name);
    html! {
        fieldset {
            legend { (legend) }
            div.choices {
                @for (value, text) in options {
                    label {
                        input type="radio" name=(name) value=(value) checked[value == current];
                        (text)
                    }
                }
            }
            (error_line(lang, state, name))
        }
    }
}

/// A checkbox (sends `true` when ticked).
pub fn checkbox(lang: Lang, state: &FormState, name: &str, label: &str) -> Markup {
    let id = id_of(name);
    html! {
        label.check for=(id) {
            input id=(id) type="checkbox" name=(name) value="true" checked[state.value(name) == "true"];
            (label)
        }
        (error_line(lang, state, name))
    }
}

/// The message for the whole form, and errors of fields not on it.
pub fn form_message(lang: Lang, state: &FormState, shown: &[&str]) -> Markup {
    let others = state.other_errors(shown);
    html! {
        @if let Some(m) = &state.message { div.alert-box role="alert" { (m) } }
        @if !others.is_empty() {
            div.alert-box role="alert" {
                ul { @for e in others { li { (e.field) ": " (crate::i18n::message(&e.message, lang)) } } }
            }
        }
    }
}

/// Runs `command` on family `family_id` for the page's user, exactly as the
/// API does (`Commands::execute`: role, scope, the case's rules,
/// idempotency), with the form's idempotency key and the case version the
/// form was made from.
pub async fn run_command(
    state: &AppState,
    who: &WebUser,
    form: &Form,
    family_id: Uuid,
    command: FamilyCommand,
) -> Result<Outcome, ApiError> {
    if !who.is_recorder() {
        return Err(ApiError::Forbidden(
            "your role may read but not record actions".into(),
        ));
    }
    let key = form
        .opt("_key")
        .filter(|k| crate::routes::params::valid_idempotency_key(k));
    let expected_version = form.get("_version").parse::<u64>().ok();
    // The hash of what was sent tells a resent form (the same key, the same
    // fields: answered as the first time) from a key reused for another.
    let mut hasher = Sha256::new();
    hasher.update(format!("WEB {family_id}\n").as_bytes());
    for (k, v) in &form.pairs {
        if k != "_csrf" {
            hasher.update(k.as_bytes());
            hasher.update(b"=");
            hasher.update(v.as_bytes());
            hasher.update(b"\n");
        }
    }
    let req = CommandRequest {
        family_id,
        recorder: who.user.recorder(),
        scope: who.user.scope.clone(),
        request_id: format!("web-{}", Uuid::new_v4().simple()),
        expected_version,
        idempotency_key: key,
        request_hash: Some(hex::encode(hasher.finalize())),
    };
    let result = state.commands().execute(command, &req).await;
    state
        .metrics()
        .command(result.is_ok(), result.as_ref().is_ok_and(|o| o.replayed));
    Ok(result?)
}
