//! Voiding a mistaken action, with a reason: the action shown as the
//! history tells it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use nuanxin_infra::{ReadError, ReadKind, Viewer};
use nuanxin_projections::case_file::CaseFileView;
use serde_json::Value;

use super::body::{Body, Field};
use super::{
    internal_page, not_found, offset, post, reader_refused, show, uuid_param, FormPage, Params,
};
use crate::extract::RequestId;
use crate::routes::care_actions::new_action_id;
use crate::routes::dto::VoidRequest;
use crate::state::AppState;
use crate::web::form::{textarea, FormState};
use crate::web::session::{WebPost, WebUser};
use crate::web::text::{instant, t, word};

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
