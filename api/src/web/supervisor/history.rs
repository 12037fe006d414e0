//! `/families/{id}/history`: a case's audited history for whoever may read
//! it through `GET /api/v1/families/{id}/history` (the same read:
//! `Reads::history`, scope, masking, the access log): every event with who
//! recorded it and when, its action, whether it was voided, and whether the
//! family's hash chain verifies. `?as_of=YYYY-MM-DD` adds the case file as
//! it stood at the end of that day (`Reads::case_file` with an instant, as
//! the API's `as_of`). `/families/{id}/history.csv` is the API's CSV export,
//! answered by its own handler.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Days, NaiveDate, Utc};
use maud::{html, Markup};
use nuanxin_domain::values::parse_day;
use nuanxin_infra::audit::{FamilyHistory, HistoryEntry};
use nuanxin_infra::{ReadError, ReadKind, Viewer};
use nuanxin_projections::case_file::CaseFileView;
use serde_json::Value;
use uuid::Uuid;

use super::{caller, error_page, link, not_found, pager, Params};
use crate::error::FieldError;
use crate::extract::{Query, RequestId};
use crate::routes::audit::{history_csv, HistoryQuery};
use crate::state::AppState;
use crate::web::form::{input, FormState, Kind};
use crate::web::layout::page;
use crate::web::session::WebUser;
use crate::web::text::{date, instant, t, tf, word, Lang};

/// Events per page.
const PAGE: usize = 100;

/// What the "as of" form asked.
enum AsOf {
    NotAsked,
    Invalid(FormState),
    /// The case file then, or `None`: not yet registered then.
    Shown(NaiveDate, Option<Box<CaseFileView>>),
}

/// `GET /families/{id}/history?as_of=&after=`.
pub(super) async fn show(
    State(state): State<AppState>,
    who: WebUser,
    request_id: RequestId,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&who);
    };
    let params = Params::parse(query.as_deref());
    let viewer = Viewer {
        user: &who.user,
        request_id: &request_id.0,
    };
    let history = match state.reads().history(&viewer, id, ReadKind::History).await {
        Ok(h) => h,
        Err(e) => return error_page(&who, e.into()),
    };
    let as_of = match params.get("as_of") {
        None => AsOf::NotAsked,
        Some(asked) => match parse_day(&asked) {
            Err(e) => {
                let mut form = FormState::with(&[("as_of", asked.clone())]);
                form.errors.push(FieldError {
                    field: "as_of".into(),
                    message: e.0.into(),
                });
                AsOf::Invalid(form)
            }
            Ok(day) => {
                let at = end_of(day, state.core().services().offset);
                match state.reads().case_file(&viewer, id, Some(at)).await {
                    Ok(view) => AsOf::Shown(day, Some(Box::new(view))),
                    Err(ReadError::NotFound) => AsOf::Shown(day, None),
                    Err(e) => return error_page(&who, e.into()),
                }
            }
        },
    };
    let after = params.get("after").and_then(|s| s.parse::<u64>().ok());
    render(&who, id, &history, after, &as_of)
}

/// The last instant of `day` in the local time zone.
fn end_of(day: NaiveDate, offset: chrono::FixedOffset) -> DateTime<Utc> {
    let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
    next.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(offset).single())
        .map(|t| t.with_timezone(&Utc) - chrono::Duration::microseconds(1))
        .unwrap_or_else(Utc::now)
}

fn render(
    who: &WebUser,
    id: Uuid,
    history: &FamilyHistory,
    after: Option<u64>,
    as_of: &AsOf,
) -> Response {
    let lang = who.lang;
    let base = format!("/families/{id}/history");
    let mut shown = history
        .entries
        .iter()
        .filter(|e| after.is_none_or(|a| e.sequence > a));
    let entries: Vec<&HistoryEntry> = shown.by_ref().take(PAGE).collect();
    let next = match (entries.last(), shown.next()) {
        (Some(last), Some(_)) => Some(link(&base, &[("after", &last.sequence.to_string())])),
        _ => None,
    };
    let first = after.map(|_| base.clone());
    let form = match as_of {
        AsOf::Invalid(form) => form.clone(),
        AsOf::Shown(day, _) => FormState::with(&[("as_of", day.to_string())]),
        AsOf::NotAsked => FormState::default(),
    };
    let mut r = page(
        who,
        t(lang, "supervisor_history.title"),
        "",
        html! {
            p.actions {
                a.button.secondary href=(format!("/families/{id}")) { (t(lang, "supervisor_history.case_file")) }
                a.button.secondary href=(format!("{base}.csv")) download { (t(lang, "supervisor_history.csv")) }
            }
            (chain(lang, history))
            section.card {
                h2 { (t(lang, "supervisor_history.as_of_heading")) }
                form.filters method="get" action=(base) {
                    div { (input(lang, &form, "as_of", t(lang, "supervisor_history.as_of"), Kind::Date, true)) }
                    div { button type="submit" { (t(lang, "supervisor_history.show_as_of")) } }
                }
                @if let AsOf::Shown(day, view) = as_of {
                    @match view {
                        Some(view) => (case_then(lang, *day, view)),
                        None => p.flash role="status" { (tf(lang, "supervisor_history.not_yet", &[&date(lang, *day)])) },
                    }
                }
            }
            h2 { (tf(lang, "supervisor_history.events", &[&history.entries.len()])) }
            ol.timeline.history {
                @for e in &entries { (entry(lang, e)) }
            }
            (pager(lang, first, next))
        },
    );
    if matches!(as_of, AsOf::Invalid(_)) {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// Whether the hash chain verifies, said plainly.
fn chain(lang: Lang, history: &FamilyHistory) -> Markup {
    html! {
        @match &history.chain {
            Ok(()) => p.chain.ok role="status" { strong { (t(lang, "supervisor_history.chain_valid")) } " " (t(lang, "supervisor_history.chain_valid_text")) },
            Err(link) => div.alert-box.chain role="alert" {
                strong { (t(lang, "supervisor_history.chain_broken")) } " "
                (tf(lang, "supervisor_history.chain_broken_at", &[&link.sequence]))
            },
        }
    }
}

/// An action id in short (enough to match a void to its action on the
/// page; the CSV has the whole ids).
fn short(id: Uuid) -> String {
    super::short_id(id)
}

fn entry(lang: Lang, e: &HistoryEntry) -> Markup {
    let voided = e.voided_by.is_some();
    html! {
        li.voided[voided] {
            div {
                span.what { (word(lang, "supervisor_event", &e.event_type)) }
                @if let Some(d) = action_summary(lang, &e.data) { " · " (d) }
                @if voided { " " span.badge.overdue { (t(lang, "supervisor_history.voided")) } }
            }
            div.when {
                "#" (e.sequence) " · "
                @match e.recorded_at { Some(at) => (instant(lang, at)), None => (t(lang, "supervisor_history.unknown")) }
                " · "
                @match &e.recorded_by {
                    Some(r) => { (r.name) " (" (word(lang, "role", r.role.as_str())) ")" }
                    None => (t(lang, "supervisor_history.unknown")),
                }
                @if let Some(a) = e.action_id { " · " (tf(lang, "supervisor_history.action", &[&short(a)])) }
                @if let Some(v) = e.voided_by { " · " (tf(lang, "supervisor_history.voided_by", &[&short(v)])) }
            }
            details {
                summary { (t(lang, "supervisor_history.fields")) }
                pre { (serde_json::to_string_pretty(&e.data).unwrap_or_default()) }
            }
        }
    }
}

/// What an event says in a few words: the role, mode or area, the day it
/// happened, and for a void the action it voids.
fn action_summary(lang: Lang, data: &Value) -> Option<String> {
    let text = |k: &str| data.get(k).and_then(Value::as_str);
    let mut parts = Vec::new();
    if let Some(role) = text("role") {
        parts.push(word(lang, "contact_role", role));
    }
    if let Some(mode) = text("mode") {
        parts.push(word(lang, "mode", mode));
    }
    if let Some(area) = text("area") {
        parts.push(word(lang, "area", area));
    }
    let day = [
        "visited_on",
        "assigned_on",
        "released_on",
        "occurred_on",
        "provided_on",
        "effective_on",
        "transferred_on",
        "registered_on",
        "on",
        "from",
    ]
    .into_iter()
    .find_map(|k| text(k).and_then(|s| parse_day(s).ok()));
    if let Some(day) = day {
        parts.push(date(lang, day));
    }
    if let Some(voided) = text("voided_action_id").and_then(|s| s.parse().ok()) {
        parts.push(tf(lang, "supervisor_history.voids", &[&short(voided)]));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The case file as it stood at the end of `day`, in brief.
fn case_then(lang: Lang, day: NaiveDate, v: &CaseFileView) -> Markup {
    let contact = |c: &Option<nuanxin_projections::case_file::ContactView>| match c {
        Some(c) => format!(
            "{} ({})",
            c.person.name,
            tf(
                lang,
                "supervisor_history.since",
                &[&date(lang, c.assigned_on)]
            )
        ),
        None => t(lang, "supervisor_history.no_contact").to_owned(),
    };
    let last = |d: Option<NaiveDate>| match d {
        Some(d) => date(lang, d),
        None => t(lang, "supervisor_lists.never").to_owned(),
    };
    html! {
        h3 { (tf(lang, "supervisor_history.then", &[&date(lang, day)])) }
        dl.facts {
            dt { (t(lang, "supervisor_history.version")) } dd { (v.version) }
            dt { (t(lang, "supervisor_history.status")) } dd { (word(lang, "supervisor_case_status", &v.status)) }
            dt { (t(lang, "supervisor_history.category")) } dd { (word(lang, "category", &v.category)) }
            dt { (t(lang, "supervisor_history.village")) } dd { (v.village_code) }
            dt { (t(lang, "supervisor_history.registered_on")) } dd { (date(lang, v.registered_on)) }
            @if let Some(closed) = v.closed_on {
                dt { (t(lang, "supervisor_history.closed_on")) } dd { (date(lang, closed)) }
            }
            dt { (t(lang, "supervisor_history.members")) }
            dd {
                @for (i, m) in v.members.iter().enumerate() {
                    @if i > 0 { "、" }
                    (m.name)
                    @if let Some(d) = m.deceased_on { " (" (tf(lang, "supervisor_history.deceased", &[&date(lang, d)])) ")" }
                }
            }
            dt { (t(lang, "supervisor_history.key_person")) }
            dd {
                @if v.key_person {
                    span.badge.key { (t(lang, "supervisor_lists.key_person")) }
                    @for r in &v.key_reasons { " " (word(lang, "supervisor_key_reason", r)) }
                } @else { (t(lang, "supervisor_history.no")) }
            }
            dt { (word(lang, "contact_role", "village")) } dd { (contact(&v.contacts.village)) }
            dt { (word(lang, "contact_role", "township")) } dd { (contact(&v.contacts.township)) }
            dt { (t(lang, "supervisor_history.last_village_visit")) } dd { (last(v.visits.village.last_on)) }
            dt { (t(lang, "supervisor_history.last_township_visit")) } dd { (last(v.visits.township.last_on)) }
            dt { (t(lang, "supervisor_history.recorded")) }
            dd { (tf(lang, "supervisor_history.recorded_counts", &[&v.emergencies.len(), &v.assistance.len(), &v.notes.len()])) }
        }
    }
}

/// `GET /families/{id}/history.csv`: the API's CSV export of the history.
pub(super) async fn csv(
    State(state): State<AppState>,
    who: WebUser,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&who);
    };
    let all = HistoryQuery {
        recorded_by: None,
        from: None,
        to: None,
    };
    match history_csv(
        State(state),
        caller(&who),
        request_id,
        crate::extract::Path(id),
        Query(all),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => error_page(&who, e),
    }
}
