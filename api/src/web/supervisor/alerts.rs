//! `/alerts`: the alert inbox of the user's jurisdiction, by status (open by
//! default), read with `Reads::alerts` as the API's list is; each open alert
//! has a "确认" form (with a note) that acknowledges it through the API's
//! own acknowledge handler and comes back (303) to the list.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use nuanxin_infra::alerts::{level_name, Alert, AlertStatus};
use uuid::Uuid;

use super::{caller, error_page, family_label, link, not_found, pager, Params};
use crate::error::ApiError;
use crate::extract::Body;
use crate::routes::alerts::{self, AckRequest};
use crate::state::AppState;
use crate::web::form::{csrf_field, refusal, select, FormState};
use crate::web::layout::page;
use crate::web::session::{WebPost, WebUser};
use crate::web::text::{date, t, word, Lang};

/// Alerts per page.
const PAGE: u32 = 50;

/// `GET /alerts?status=&prefix=&cursor=`.
pub(super) async fn inbox(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    show(&state, &who, query.as_deref(), None).await
}

/// The inbox for `query`, with `message` (a refused acknowledgement) on top.
async fn show(
    state: &AppState,
    who: &WebUser,
    query: Option<&str>,
    message: Option<(StatusCode, String)>,
) -> Response {
    let params = Params::parse(query);
    // "open" by default; "all" for every status.
    let status_name = params.get("status").unwrap_or_else(|| "open".into());
    let status = match status_name.as_str() {
        "all" => None,
        s => match AlertStatus::parse(s) {
            Some(s) => Some(s),
            None => return error_page(who, crate::extract::bad_query("status")),
        },
    };
    let prefix = params.get("prefix").unwrap_or_default();
    let after = match params.get("cursor").map(|c| c.parse::<Uuid>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return error_page(who, crate::extract::bad_query("cursor")),
    };
    let found = state
        .reads()
        .alerts(
            &who.user,
            Some(&prefix).filter(|p| !p.is_empty()).map(String::as_str),
            status,
            after,
            PAGE,
        )
        .await;
    let found = match found {
        Ok(found) => found,
        Err(e) => return error_page(who, e.into()),
    };
    let lang = who.lang;
    let filter = [
        ("status", status_name.as_str()),
        ("prefix", prefix.as_str()),
    ];
    let next = (found.len() == PAGE as usize)
        .then(|| found.last())
        .flatten()
        .map(|a| {
            let id = a.id.to_string();
            link("/alerts", &[filter[0], filter[1], ("cursor", id.as_str())])
        });
    let first = params.has("cursor").then(|| link("/alerts", &filter));
    // Where an acknowledgement comes back to: this very list.
    let back = link("/alerts", &filter);
    let failed = message.as_ref().map(|(s, _)| *s);
    let mut r = page(
        who,
        crate::web::text::t(lang, "nav.alerts"),
        "/alerts",
        html! {
            @if let Some((_, m)) = &message { div.alert-box role="alert" { (m) } }
            @if params.has("acknowledged") { p.flash role="status" { (t(lang, "supervisor_alerts.acknowledged")) } }
            form.filters method="get" action="/alerts" {
                @let state = FormState::with(&[("status", status_name.clone()), ("prefix", prefix.clone())]);
                div { (select(lang, &state, "status", t(lang, "supervisor_alerts.status"), &statuses(lang), false)) }
                div { (crate::web::form::input(lang, &state, "prefix", t(lang, "supervisor_lists.prefix"), crate::web::form::Kind::Text, false)) }
                div { button type="submit" { (t(lang, "supervisor_lists.filter")) } }
            }
            @if found.is_empty() {
                p.flash role="status" { (t(lang, "supervisor_alerts.none")) }
            } @else {
                ul.items.alerts {
                    @for a in &found { (item(who, a, &back)) }
                }
            }
            (pager(lang, first, next))
        },
    );
    if let Some(status) = failed {
        *r.status_mut() = status;
    }
    r
}

fn statuses(lang: Lang) -> Vec<(String, String)> {
    ["open", "acknowledged", "resolved", "all"]
        .into_iter()
        .map(|s| (s.to_owned(), word(lang, "supervisor_alert_status", s)))
        .collect()
}

fn item(who: &WebUser, a: &Alert, back: &str) -> Markup {
    let lang = who.lang;
    let note_id = format!("note-{}", a.id.simple());
    html! {
        li {
            a.main href=(format!("/families/{}", a.family_id)) { (family_label(&a.village_code, a.family_id)) }
            " "
            span.badge.overdue[a.status == AlertStatus::Open] { (word(lang, "supervisor_alert_status", a.status.as_str())) }
            dl.facts {
                dt { (t(lang, "supervisor_lists.role")) } dd { (word(lang, "contact_role", &a.role)) }
                dt { (t(lang, "supervisor_lists.contact")) } dd { (a.contact_name) }
                dt { (t(lang, "supervisor_lists.due_on")) } dd { (date(lang, a.due_on)) }
                dt { (t(lang, "supervisor_alerts.raised_on")) } dd { (date(lang, a.raised_on)) }
                dt { (t(lang, "supervisor_alerts.level")) } dd { (word(lang, "supervisor_alert_level", level_name(a.level))) }
                @if let Some(on) = a.resolved_on {
                    dt { (t(lang, "supervisor_alerts.resolved_on")) } dd { (date(lang, on)) }
                }
                @if let (Some(at), Some(note)) = (a.acknowledged_at, &a.ack_note) {
                    dt { (t(lang, "supervisor_alerts.acknowledged_at")) } dd { (crate::web::text::instant(lang, at)) }
                    dt { (t(lang, "supervisor_alerts.note")) } dd { (note) }
                }
            }
            @if a.status == AlertStatus::Open {
                form.ack method="post" action=(format!("/alerts/{}/ack", a.id)) {
                    (csrf_field(who))
                    input type="hidden" name="back" value=(back);
                    label for=(note_id) { (t(lang, "supervisor_alerts.note")) }
                    input id=(note_id) type="text" name="note" required maxlength="2000";
                    button type="submit" { (t(lang, "supervisor_alerts.acknowledge")) }
                }
            }
        }
    }
}

/// `POST /alerts/{id}/ack` (`note`, `back`): acknowledges the alert as
/// `POST /api/v1/alerts/{id}/ack` does, then back to the list (303); a
/// refusal shows the list again with the reason.
pub(super) async fn acknowledge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: WebPost,
) -> Response {
    let WebPost { who, form } = post;
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&who);
    };
    // Back to the inbox only (never elsewhere), with its filters.
    let back = Some(form.get("back"))
        .filter(|b| *b == "/alerts" || b.starts_with("/alerts?"))
        .unwrap_or("/alerts")
        .to_owned();
    let done = alerts::acknowledge(
        State(state.clone()),
        caller(&who),
        crate::extract::Path(id),
        Body {
            value: AckRequest {
                note: form.get("note").to_owned(),
            },
            hash: String::new(),
        },
    )
    .await;
    let query = back.split_once('?').map(|(_, q)| q);
    match done {
        Ok(_) => {
            let sep = if query.is_some() { '&' } else { '?' };
            Redirect::to(&format!("{back}{sep}acknowledged=1")).into_response()
        }
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(_))) => {
            let status = if matches!(e, ApiError::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let message = refusal(who.lang, &e);
            show(&state, &who, query, Some((status, message))).await
        }
        Err(e) => error_page(&who, e),
    }
}
