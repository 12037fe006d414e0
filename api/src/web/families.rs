//! The family list and a family's case file with its timeline.
//!
//! - `GET /families`: the case list within the user's scope, filtered by
//!   village prefix, key person, status and missing contacts (query
//!   parameters: village codes are not personal data), paged with the
//!   API's cursor.
//! - `GET /families.xlsx`: the whole list of the same filters as an Excel
//!   workbook (the API's `format=xlsx`); the page links it. The search by
//!   name is never part of it: its text stays out of URLs.
//! - `POST /families/search`: families with a member of that name or ID
//!   number. The text searched for is personal data, so it is posted (with
//!   the form token) and the answer rendered, never put in a URL; every
//!   family shown is written to the access log.
//! - `GET /families/{id}`: the case file as the API serves it, and its
//!   timeline: every recorded action, newest first, with who recorded it
//!   and when; voided ones struck through with the void's reason. Users who
//!   may record get links to the form of each care action; supervisors and
//!   admins a link to the audited history.
//!
//! Everything is read through `Reads`, as the JSON API reads it: outside the
//! user's scope a family is "not found" (404 page), case files and
//! histories are written to the access log, ID numbers are masked.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use maud::{html, Markup};
use nuanxin_domain::events::ActionKind;
use nuanxin_infra::audit::HistoryEntry;
use nuanxin_infra::{Found, Needle, ReadError, ReadKind, Viewer};
use nuanxin_projections::case_file::{CaseFileView, CaseListFilter, CaseSummary, MemberView};
use serde_json::Value;
use uuid::Uuid;

use super::form::{self, csrf_field, FormState, Kind};
use super::layout::{message_page, page};
use super::session::{WebPost, WebUser};
use super::supervisor::lists::{download_link, file};
use super::text::{date, instant, money, t, tf, word, Lang};
use crate::error::FieldError;
use crate::extract::{Caller, ListQuery, Page, RequestId};
use crate::routes;
use crate::routes::families::ListParams;
use crate::routes::sheets::ListFormat;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/families", get(list))
        .route("/families.xlsx", get(xlsx))
        .route("/families/search", post(search).get(to_list))
        .route("/families/{id}", get(case_file))
}

/// Families per page of the list.
const PAGE_SIZE: u32 = 50;
/// Families shown for one search.
const SEARCH_LIMIT: u32 = 30;

// ---------------------------------------------------------------------------
// Shared pieces (the work page uses them too)
// ---------------------------------------------------------------------------

/// A short reference to a family (the end of its id: ids begin with the
/// time they were made, so their starts are alike), to tell families of one
/// village apart without showing personal data in lists.
pub fn family_ref(id: Uuid) -> String {
    let s = id.simple().to_string();
    format!("#{}", &s[s.len() - 8..])
}

/// The link to a family's case file, named by village and reference.
pub fn family_link(lang: Lang, id: Uuid, village_code: &str) -> Markup {
    html! {
        a.main href=(format!("/families/{id}")) {
            (tf(lang, "families.family_label", &[&village_code, &family_ref(id)]))
        }
    }
}

/// The 404 page: unknown, or outside the user's scope (the same answer).
pub fn not_found(lang: Lang) -> Response {
    (
        StatusCode::NOT_FOUND,
        message_page(lang, "families.not_found_title", "error.not_found"),
    )
        .into_response()
}

/// A read that failed for a reason of the server's: logged, and a page
/// saying nothing was shown.
pub fn read_failed(lang: Lang, e: ReadError) -> Response {
    match e {
        ReadError::NotFound => not_found(lang),
        e => {
            tracing::error!(error = %e, "a page's read failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                message_page(lang, "error.title", "error.internal"),
            )
                .into_response()
        }
    }
}

/// The query parameters of a request, in order.
pub fn query_pairs(query: &Option<String>) -> Vec<(String, String)> {
    query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A due date with a badge when it has passed.
fn due_text(lang: Lang, due: Option<NaiveDate>, today: NaiveDate) -> Markup {
    html! {
        @match due {
            Some(d) => {
                (date(lang, d))
                @if d < today { " " span.badge.overdue { (tf(lang, "families.days_overdue", &[&(today - d).num_days()])) } }
            }
            None => span.muted { (t(lang, "families.none")) }
        }
    }
}

// ---------------------------------------------------------------------------
// The list and the search
// ---------------------------------------------------------------------------

/// The list's filters as asked.
#[derive(Debug, Default, Clone)]
struct Filters {
    village: String,
    key: String,
    status: String,
    uncovered: bool,
}

impl Filters {
    fn from_query(pairs: &[(String, String)]) -> Self {
        let pick = |name: &str, allowed: &[&str]| {
            query_value(pairs, name)
                .filter(|v| allowed.contains(v))
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            village: query_value(pairs, "village").unwrap_or_default().to_owned(),
            key: pick("key", &["yes", "no"]),
            status: pick("status", &["open", "closed"]),
            uncovered: query_value(pairs, "uncovered").is_some_and(|v| v == "1"),
        }
    }

    /// The query of this list (and `cursor`), for the next page's link.
    fn query(&self, cursor: Option<&str>) -> String {
        let mut q: Vec<(&str, &str)> = Vec::new();
        for (k, v) in [
            ("village", self.village.as_str()),
            ("key", self.key.as_str()),
            ("status", self.status.as_str()),
        ] {
            if !v.is_empty() {
                q.push((k, v));
            }
        }
        if self.uncovered {
            q.push(("uncovered", "1"));
        }
        if let Some(c) = cursor {
            q.push(("cursor", c));
        }
        serde_urlencoded::to_string(&q).unwrap_or_default()
    }

    fn state(&self) -> FormState {
        FormState::with(&[
            ("village", self.village.clone()),
            ("key", self.key.clone()),
            ("status", self.status.clone()),
            (
                "uncovered",
                if self.uncovered { "true" } else { "" }.to_owned(),
            ),
        ])
    }
}

fn filter_form(lang: Lang, state: &FormState) -> Markup {
    let all = || (String::new(), t(lang, "families.all").to_owned());
    let key_options = [
        all(),
        ("yes".into(), t(lang, "families.key_yes").to_owned()),
        ("no".into(), t(lang, "families.key_no").to_owned()),
    ];
    let status_options = [
        all(),
        ("open".into(), word(lang, "families_status", "open")),
        ("closed".into(), word(lang, "families_status", "closed")),
    ];
    html! {
        form.filters method="get" action="/families" {
            div { (form::input(lang, state, "village", t(lang, "families.village_prefix"), Kind::Text, false)) }
            div { (form::select(lang, state, "key", t(lang, "families.key_person"), &key_options, false)) }
            div { (form::select(lang, state, "status", t(lang, "families.status"), &status_options, false)) }
            div {
                label.check for="uncovered" {
                    input #uncovered type="checkbox" name="uncovered" value="1" checked[state.value("uncovered") == "true"];
                    (t(lang, "families.uncovered"))
                }
            }
            div { button type="submit" { (t(lang, "families.apply")) } }
        }
    }
}

fn search_form(who: &WebUser, state: &FormState) -> Markup {
    let lang = who.lang;
    html! {
        form method="post" action="/families/search" role="search" {
            (csrf_field(who))
            (form::input(lang, state, "q", t(lang, "families.search_label"), Kind::Text, true))
            p.hint { (t(lang, "families.search_hint")) }
            div.actions { button type="submit" { (t(lang, "families.search")) } }
        }
    }
}

fn summary_item(lang: Lang, s: &CaseSummary, today: NaiveDate) -> Markup {
    let contact = |name: &Option<String>| {
        html! {
            @match name {
                Some(n) => (n),
                None => span.badge.overdue { (t(lang, "families.no_contact")) }
            }
        }
    };
    html! {
        li {
            (family_link(lang, s.id, &s.village_code))
            " "
            @if s.status == "closed" { span.badge { (word(lang, "families_status", "closed")) } }
            @if s.key_person { " " span.badge.key { (t(lang, "families.key_badge")) } }
            dl.facts {
                dt { (word(lang, "contact_role", "village")) }
                dd { (contact(&s.village_contact_name)) }
                dt { (word(lang, "contact_role", "township")) }
                dd { (contact(&s.township_contact_name)) }
                @if s.status == "open" {
                    dt { (t(lang, "families.next_village_visit")) }
                    dd { (due_text(lang, s.village_next_due_on, today)) }
                    dt { (t(lang, "families.next_township_visit")) }
                    dd { (due_text(lang, s.township_next_due_on, today)) }
                }
            }
        }
    }
}

/// The list page: the search, the filters and `results` (a search's
/// answer comes right under the search form, a list's under the filters).
fn list_page(
    who: &WebUser,
    filters: &FormState,
    search: &FormState,
    results: Markup,
    searched: bool,
) -> Response {
    let lang = who.lang;
    page(
        who,
        t(lang, "families.title"),
        "/families",
        html! {
            @if who.is_recorder() {
                p { a.button href="/families/new" { (t(lang, "families.register")) } }
            }
            (search_form(who, search))
            @if searched { (results) }
            h2 { (t(lang, "families.filter")) }
            (filter_form(lang, filters))
            @if !searched { (results) }
        },
    )
}

/// `GET /families`: the case list with its filters.
async fn list(State(state): State<AppState>, who: WebUser, RawQuery(query): RawQuery) -> Response {
    let lang = who.lang;
    let pairs = query_pairs(&query);
    let filters = Filters::from_query(&pairs);
    let cursor = query_value(&pairs, "cursor");
    let mut form_state = filters.state();
    let after = match cursor {
        Some(c) => match c.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                return Redirect::to(&format!("/families?{}", filters.query(None))).into_response()
            }
        },
        None => None,
    };
    let filter = CaseListFilter {
        village_code_prefix: String::new(),
        status: Some(filters.status.clone()).filter(|s| !s.is_empty()),
        key_person: match filters.key.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        uncovered: filters.uncovered,
        after,
        limit: PAGE_SIZE,
    };
    let asked = Some(filters.village.as_str()).filter(|v| !v.is_empty());
    let today = state.reads().today();
    let items = match state.reads().case_list(&who.user, asked, filter).await {
        Ok(items) => items,
        Err(ReadError::Invalid { message, .. }) => {
            form_state.errors.push(FieldError {
                field: "village".into(),
                message: message.into(),
            });
            Vec::new()
        }
        Err(e) => return read_failed(lang, e),
    };
    let next = (items.len() == PAGE_SIZE as usize)
        .then(|| items.last().map(|i| i.id.to_string()))
        .flatten();
    let download = format!("/families.xlsx?{}", filters.query(None));
    let download = download.trim_end_matches('?').to_owned();
    let results = html! {
        h2 { (t(lang, "families.results")) }
        (download_link(lang, download))
        @if items.is_empty() {
            p.muted { (t(lang, "families.empty")) }
        } @else {
            ul.items { @for s in &items { (summary_item(lang, s, today)) } }
        }
        p.pager {
            @if cursor.is_some() {
                a href=(format!("/families?{}", filters.query(None))) { (t(lang, "families.first_page")) }
                " "
            }
            @if let Some(c) = &next {
                a.button.secondary href=(format!("/families?{}", filters.query(Some(c)))) { (t(lang, "families.next_page")) }
            }
        }
    };
    list_page(&who, &form_state, &FormState::default(), results, false)
}

/// `GET /families.xlsx?village=&key=&status=&uncovered=`: the whole list of
/// these filters as an Excel workbook, answered by the API's handler.
async fn xlsx(State(state): State<AppState>, who: WebUser, RawQuery(query): RawQuery) -> Response {
    let filters = Filters::from_query(&query_pairs(&query));
    let params = ListParams {
        status: Some(filters.status).filter(|s| !s.is_empty()),
        key_person: match filters.key.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        uncovered: filters.uncovered.then_some(true),
        village_code_prefix: Some(filters.village).filter(|v| !v.is_empty()),
        format: Some(ListFormat::Xlsx),
    };
    let whole = ListQuery {
        page: Page {
            limit: None,
            cursor: None,
        },
        params,
    };
    let answer = routes::families::list(State(state), Caller(who.user.clone()), whole).await;
    file(&who, answer)
}

/// `GET /families/search` (a reload of the answer's address): the list.
async fn to_list() -> Redirect {
    Redirect::to("/families")
}

fn found_item(lang: Lang, f: &nuanxin_infra::FoundFamily) -> Markup {
    html! {
        li {
            (family_link(lang, f.id, &f.village_code))
            " "
            span.badge { (word(lang, "category", &f.category)) }
            @if f.status == "closed" { " " span.badge { (word(lang, "families_status", "closed")) } }
            ul {
                @for m in &f.members {
                    li {
                        @if m.matched { strong { (m.name) } } @else { (m.name) }
                        " · " (date(lang, m.birth_date))
                        @if let Some(id) = &m.id_number_masked { " · " (id) }
                    }
                }
            }
        }
    }
}

/// `POST /families/search`: families with a member of that name or ID
/// number, within the user's scope.
async fn search(State(state): State<AppState>, rid: RequestId, post: WebPost) -> Response {
    let WebPost { who, form } = post;
    let lang = who.lang;
    let text = form.get("q");
    let mut search_state = FormState::with(&[("q", text.to_owned())]);
    let Some(needle) = Needle::parse(text) else {
        search_state.errors.push(FieldError {
            field: "q".into(),
            message: t(lang, "families.search_blank").into(),
        });
        let mut r = list_page(&who, &FormState::default(), &search_state, html! {}, true);
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return r;
    };
    let viewer = Viewer {
        user: &who.user,
        request_id: &rid.0,
    };
    let found: Found = match state
        .reads()
        .search_families(&viewer, &needle, SEARCH_LIMIT)
        .await
    {
        Ok(f) => f,
        Err(e) => return read_failed(lang, e),
    };
    let results = html! {
        h2 { (t(lang, "families.search_results")) }
        @if found.families.is_empty() {
            p.muted { (t(lang, "families.search_none")) }
        } @else {
            p { (tf(lang, "families.search_count", &[&found.families.len()])) }
            ul.items { @for f in &found.families { (found_item(lang, f)) } }
            @if found.more { p.muted { (tf(lang, "families.search_more", &[&SEARCH_LIMIT])) } }
        }
    };
    list_page(&who, &FormState::default(), &search_state, results, true)
}

// ---------------------------------------------------------------------------
// The case file
// ---------------------------------------------------------------------------

/// `GET /families/{id}`: the case file and its timeline.
async fn case_file(
    State(state): State<AppState>,
    who: WebUser,
    rid: RequestId,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = who.lang;
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found(lang);
    };
    let viewer = Viewer {
        user: &who.user,
        request_id: &rid.0,
    };
    let view = match state.reads().case_file(&viewer, id, None).await {
        Ok(v) => v,
        Err(e) => return read_failed(lang, e),
    };
    let history = match state.reads().history(&viewer, id, ReadKind::History).await {
        Ok(h) => h,
        Err(e) => return read_failed(lang, e),
    };
    let today = state.reads().today();
    let saved = query_value(&query_pairs(&query), "saved").is_some();
    let ctx = Ctx {
        lang,
        view: &view,
        today,
        // Nothing more is recorded for an erased family.
        may_record: who.is_recorder() && view.erased_on.is_none(),
        admin: who.is_admin(),
    };
    let content = html! {
        @if saved { p.flash role="status" { (t(lang, "form.saved")) } }
        @if let Some(on) = view.erased_on {
            p.alert-box role="note" { (tf(lang, "families_case.erased", &[&date(lang, on)])) }
        }
        (ctx.overview())
        @if ctx.may_record { (ctx.record_links()) }
        @if !who.is_recorder() || who.is_admin() {
            p { a href=(format!("/families/{id}/history")) { (t(lang, "families_case.history_link")) } }
        }
        (ctx.members())
        (ctx.contacts())
        (ctx.emergency_contacts())
        (ctx.care())
        (ctx.insurance())
        (ctx.notes())
        (timeline(&ctx, &history.entries))
    };
    page(&who, t(lang, "families_case.title"), "/families", content)
}

/// A phone number to tap; an erased one (`[已删除]`) is only text.
fn phone_link(phone: &str) -> Markup {
    if phone == nuanxin_domain::values::ERASED {
        html! { (phone) }
    } else {
        html! { a href=(format!("tel:{phone}")) { (phone) } }
    }
}

/// What the case file's parts need.
struct Ctx<'a> {
    lang: Lang,
    view: &'a CaseFileView,
    today: NaiveDate,
    may_record: bool,
    /// May erase the family's personal data (once the case is closed).
    admin: bool,
}

impl Ctx<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/families/{}/{rest}", self.view.id)
    }

    fn open(&self) -> bool {
        self.view.status == "open"
    }

    fn member_name(&self, id: &str) -> Option<&str> {
        self.view
            .members
            .iter()
            .find(|m| m.id.to_string() == id)
            .map(|m| m.name.as_str())
    }

    fn overview(&self) -> Markup {
        let (lang, v) = (self.lang, self.view);
        html! {
            dl.facts.card {
                dt { (t(lang, "families_case.reference")) } dd { (family_ref(v.id)) }
                dt { (t(lang, "families_case.category")) } dd { (word(lang, "category", &v.category)) }
                dt { (t(lang, "families_case.status")) }
                dd {
                    (word(lang, "families_status", &v.status))
                    @if let Some(d) = v.closed_on { " · " (tf(lang, "families_case.closed_on", &[&date(lang, d)])) }
                }
                dt { (t(lang, "families_case.village")) } dd { (v.village_code) }
                dt { (t(lang, "families_case.address")) } dd { (v.address) }
                dt { (t(lang, "families_case.registered_on")) } dd { (date(lang, v.registered_on)) }
                dt { (t(lang, "families_case.key_person")) }
                dd {
                    @if v.key_person {
                        span.badge.key { (t(lang, "families.key_badge")) } " "
                        (v.key_reasons.iter().map(|r| word(lang, "families_key_reason", r)).collect::<Vec<_>>().join(t(lang, "families.list_sep")))
                    } @else {
                        (t(lang, "families_case.not_key"))
                    }
                }
            }
        }
    }

    /// Links to the form of every care action (for users who may record).
    fn record_links(&self) -> Markup {
        let lang = self.lang;
        let actions: &[(&str, &str)] = if self.open() {
            &[
                ("emergency", "families_case.do_emergency"),
                ("elderly-care", "families_case.do_elderly_care"),
                ("assistance", "families_case.do_assistance"),
                ("note", "families_case.do_note"),
                ("contact", "families_case.do_contact"),
                ("emergency-contact", "families_case.do_emergency_contact"),
                ("transfer", "families_case.do_transfer"),
                ("close", "families_case.do_close"),
            ]
        } else if self.admin {
            &[
                ("reopen", "families_case.do_reopen"),
                ("erase", "families_case.do_erase"),
            ]
        } else {
            &[("reopen", "families_case.do_reopen")]
        };
        html! {
            nav.card aria-label=(t(lang, "families_case.record")) {
                h2 { (t(lang, "families_case.record")) }
                div.actions {
                    @if self.open() {
                        a.button href=(self.path("visit")) { (t(lang, "families_case.do_visit")) }
                    }
                    @for (path, key) in actions {
                        a.button.secondary href=(self.path(path)) { (t(lang, key)) }
                    }
                }
            }
        }
    }

    fn members(&self) -> Markup {
        let lang = self.lang;
        html! {
            h2 { (t(lang, "families_case.members")) }
            ul.items { @for m in &self.view.members { (self.member(m)) } }
        }
    }

    fn member(&self, m: &MemberView) -> Markup {
        let lang = self.lang;
        let age = nuanxin_domain::policy::age_on(m.birth_date, m.deceased_on.unwrap_or(self.today));
        html! {
            li {
                h3 { (m.name) }
                dl.facts {
                    dt { (t(lang, "families_case.sex")) } dd { (word(lang, "families_sex", &m.sex)) }
                    dt { (t(lang, "families_case.birth_date")) }
                    dd { (date(lang, m.birth_date)) " " span.muted { (tf(lang, "families_case.age", &[&age])) } }
                    dt { (t(lang, "families_case.id_number")) }
                    dd { (m.id_number_masked.as_deref().unwrap_or(t(lang, "families.none"))) }
                    dt { (t(lang, "families_case.phone")) }
                    dd {
                        @match &m.phone {
                            Some(p) => (phone_link(p)),
                            None => (t(lang, "families.none")),
                        }
                    }
                    dt { (t(lang, "families_case.member_status")) }
                    dd {
                        @if let Some(d) = m.deceased_on {
                            span.badge { (tf(lang, "families_case.deceased_on", &[&date(lang, d)])) } " "
                        }
                        @if m.living_alone { span.badge.key { (t(lang, "families_case.living_alone")) } " " }
                        (word(lang, "families_self_care", &m.self_care))
                    }
                }
                @if self.may_record && self.open() {
                    p { a href=(self.path(&format!("members/{}/status", m.id))) { (t(lang, "families_case.do_member_status")) } }
                }
            }
        }
    }

    fn contacts(&self) -> Markup {
        let (lang, v) = (self.lang, self.view);
        let roles = [
            ("village", &v.contacts.village, &v.visits.village),
            ("township", &v.contacts.township, &v.visits.township),
        ];
        html! {
            h2 { (t(lang, "families_case.contacts")) }
            div.grid.two {
                @for (role, contact, visits) in roles {
                    section.card {
                        h3 { (word(lang, "contact_role", role)) }
                        @match contact {
                            Some(c) => {
                                dl.facts {
                                    dt { (t(lang, "families_case.contact_name")) } dd { (c.person.name) }
                                    dt { (t(lang, "families_case.phone")) }
                                    dd { (phone_link(&c.person.phone)) }
                                    dt { (t(lang, "families_case.since")) } dd { (date(lang, c.assigned_on)) }
                                    dt { (t(lang, "families_case.last_visit")) }
                                    dd { @match visits.last_on { Some(d) => (date(lang, d)), None => (t(lang, "families.none")) } }
                                    dt { (t(lang, "families_case.last_home_visit")) }
                                    dd { @match visits.last_home_on { Some(d) => (date(lang, d)), None => (t(lang, "families.none")) } }
                                    dt { (t(lang, "families_case.next_due")) }
                                    dd { (due_text(lang, visits.next_due_on, self.today)) }
                                }
                                @if self.may_record && self.open() {
                                    div.actions {
                                        a.button href=(self.path(&format!("visit?role={role}"))) { (t(lang, "families_case.do_visit")) }
                                        a href=(self.path(&format!("release/{role}"))) { (t(lang, "families_case.do_release")) }
                                    }
                                }
                            }
                            None => {
                                p { span.badge.overdue { (t(lang, "families.no_contact")) } }
                                @if self.may_record && self.open() {
                                    p { a href=(self.path("contact")) { (t(lang, "families_case.do_contact")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn emergency_contacts(&self) -> Markup {
        let lang = self.lang;
        let mut list: Vec<_> = self.view.emergency_contacts.iter().collect();
        list.sort_by_key(|c| c.priority);
        html! {
            h2 { (t(lang, "families_case.emergency_contacts")) }
            @if list.is_empty() {
                p.muted { (t(lang, "families.none")) }
            } @else {
                ul.items {
                    @for c in list {
                        li {
                            strong { (c.name) } " · " (c.relation) " · "
                            (phone_link(&c.phone))
                            " " span.badge { (tf(lang, "families_case.priority", &[&c.priority])) }
                            @if self.may_record && self.open() {
                                " " a href=(self.path(&format!("emergency-contacts/{}/remove", c.id))) { (t(lang, "families_case.do_remove")) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Emergencies, elderly care, assistance and activities.
    fn care(&self) -> Markup {
        let (lang, v) = (self.lang, self.view);
        html! {
            @if !v.emergencies.is_empty() {
                h2 { (t(lang, "families_case.emergencies")) }
                ul.items {
                    @for e in &v.emergencies {
                        li {
                            strong { (instant(lang, e.occurred_at.with_timezone(&chrono::Utc))) } " "
                            (e.description)
                            dl.facts {
                                dt { (t(lang, "families_case.responder")) } dd { (e.responder) }
                                dt { (t(lang, "families_case.outcome")) } dd { (e.outcome) }
                            }
                        }
                    }
                }
            }
            h2 { (t(lang, "families_case.elderly_care")) }
            @if v.elderly_care.is_empty() {
                p.muted { (t(lang, "families.none")) }
            } @else {
                ul.items {
                    @for c in &v.elderly_care {
                        li {
                            strong { (word(lang, "families_service", &c.service)) } " · "
                            (self.member_name(&c.member_id.to_string()).unwrap_or_default()) " · "
                            (c.provider) " · "
                            @match c.to {
                                Some(to) => (tf(lang, "families_case.from_to", &[&date(lang, c.from), &date(lang, to)])),
                                None => (tf(lang, "families_case.from", &[&date(lang, c.from)])),
                            }
                        }
                    }
                }
            }
            h2 { (t(lang, "families_case.assistance")) }
            @if v.assistance.is_empty() {
                p.muted { (t(lang, "families.none")) }
            } @else {
                ul.items {
                    @for a in &v.assistance {
                        li {
                            strong { (word(lang, "area", &a.area)) } " · " (date(lang, a.provided_on))
                            @if let Some(f) = a.amount_fen { " · " (money(f)) }
                            br; (a.description)
                        }
                    }
                }
            }
            @if let Some(last) = &v.activities.last_attended {
                h2 { (t(lang, "families_case.activities")) }
                p {
                    (tf(lang, "families_case.activities_text", &[&v.activities.attended, &last.title, &date(lang, last.held_on)]))
                }
            }
        }
    }

    fn insurance(&self) -> Markup {
        let (lang, ins) = (self.lang, &self.view.insurance);
        if ins.enrolments.is_empty() && ins.claims.is_empty() {
            return html! {};
        }
        html! {
            h2 { (t(lang, "families_case.insurance")) }
            @if !ins.enrolments.is_empty() {
                div.table-wrap {
                    table {
                        caption.muted { (t(lang, "families_case.enrolments")) }
                        thead { tr {
                            th scope="col" { (t(lang, "families_case.member")) }
                            th scope="col" { (t(lang, "families_case.product")) }
                            th scope="col" { (t(lang, "families_case.policy_year")) }
                            th.num scope="col" { (t(lang, "families_case.premium")) }
                            th scope="col" { (t(lang, "families_case.paid_by")) }
                            th scope="col" { (t(lang, "families_case.status")) }
                        } }
                        tbody {
                            @for e in &ins.enrolments {
                                tr {
                                    td { (self.member_name(&e.member_id.to_string()).unwrap_or_default()) }
                                    td { (e.product) }
                                    td { (e.policy_year) }
                                    td.num { (money(e.premium_fen)) }
                                    td { (word(lang, "families_payer", &e.paid_by)) }
                                    td { (word(lang, "families_enrolment_status", &e.status)) }
                                }
                            }
                        }
                    }
                }
            }
            @if !ins.claims.is_empty() {
                div.table-wrap {
                    table {
                        caption.muted { (t(lang, "families_case.claims")) }
                        thead { tr {
                            th scope="col" { (t(lang, "families_case.member")) }
                            th scope="col" { (t(lang, "families_case.cause")) }
                            th scope="col" { (t(lang, "families_case.occurred_on")) }
                            th.num scope="col" { (t(lang, "families_case.claimed")) }
                            th scope="col" { (t(lang, "families_case.status")) }
                            th.num scope="col" { (t(lang, "families_case.paid")) }
                        } }
                        tbody {
                            @for c in &ins.claims {
                                tr {
                                    td { (self.member_name(&c.member_id.to_string()).unwrap_or_default()) }
                                    td { (word(lang, "families_claim_cause", &c.cause)) }
                                    td { (date(lang, c.occurred_on)) }
                                    td.num { (money(c.claimed_fen)) }
                                    td {
                                        (word(lang, "families_claim_status", &c.status))
                                        @if let Some(r) = &c.rejection_reason { br; span.muted { (r) } }
                                    }
                                    td.num { @if let Some(p) = c.paid_fen { (money(p)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn notes(&self) -> Markup {
        let lang = self.lang;
        html! {
            h2 { (t(lang, "families_case.notes")) }
            @if self.view.notes.is_empty() {
                p.muted { (t(lang, "families.none")) }
            } @else {
                ul.items { @for n in &self.view.notes { li { (n.text) } } }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The timeline
// ---------------------------------------------------------------------------

fn text_of<'a>(data: &'a Value, field: &str) -> &'a str {
    data.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn date_of(lang: Lang, data: &Value, field: &str) -> String {
    text_of(data, field)
        .parse::<NaiveDate>()
        .map(|d| date(lang, d))
        .unwrap_or_default()
}

fn fen_of(data: &Value, field: &str) -> String {
    data.get(field)
        .and_then(Value::as_i64)
        .map(money)
        .unwrap_or_default()
}

/// What one recorded action says, in a line.
fn action_text(ctx: &Ctx<'_>, kind: ActionKind, d: &Value) -> String {
    let lang = ctx.lang;
    let member = |field: &str| {
        ctx.member_name(text_of(d, field))
            .unwrap_or_default()
            .to_owned()
    };
    let role = || word(lang, "contact_role", text_of(d, "role"));
    use ActionKind as K;
    match kind {
        K::FamilyRegistered => tf(
            lang,
            "families_event_text.registered",
            &[
                &word(lang, "category", text_of(d, "category")),
                &text_of(d, "village_code"),
                &date_of(lang, d, "registered_on"),
            ],
        ),
        K::MemberStatusUpdated => {
            let mut parts = Vec::new();
            if d.get("deceased_on").is_some_and(|v| !v.is_null()) {
                parts.push(tf(
                    lang,
                    "families_event_text.deceased",
                    &[&date_of(lang, d, "deceased_on")],
                ));
            }
            if let Some(alone) = d.get("living_alone").and_then(Value::as_bool) {
                parts.push(
                    t(
                        lang,
                        if alone {
                            "families_case.living_alone"
                        } else {
                            "families_event_text.not_alone"
                        },
                    )
                    .to_owned(),
                );
            }
            if let Some(s) = d.get("self_care").and_then(Value::as_str) {
                parts.push(word(lang, "families_self_care", s));
            }
            if d.get("phone").is_some_and(|v| !v.is_null()) {
                parts.push(t(lang, "families_event_text.phone_changed").to_owned());
            }
            tf(
                lang,
                "families_event_text.member_status",
                &[
                    &member("member_id"),
                    &parts.join(t(lang, "families.list_sep")),
                    &date_of(lang, d, "effective_on"),
                ],
            )
        }
        K::ContactAssigned => tf(
            lang,
            "families_event_text.contact_assigned",
            &[
                &role(),
                &d.get("person")
                    .map(|p| text_of(p, "name"))
                    .unwrap_or_default(),
                &date_of(lang, d, "assigned_on"),
            ],
        ),
        K::ContactReleased => tf(
            lang,
            "families_event_text.contact_released",
            &[
                &role(),
                &date_of(lang, d, "released_on"),
                &text_of(d, "reason"),
            ],
        ),
        K::VisitRecorded => {
            let needs: Vec<&str> = d
                .get("needs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut s = tf(
                lang,
                "families_event_text.visit",
                &[
                    &role(),
                    &word(lang, "mode", text_of(d, "mode")),
                    &date_of(lang, d, "visited_on"),
                    &text_of(d, "findings"),
                ],
            );
            if !needs.is_empty() {
                s.push_str(&tf(
                    lang,
                    "families_event_text.needs",
                    &[&needs.join(t(lang, "families.list_sep"))],
                ));
            }
            s
        }
        K::EmergencyContactSet => tf(
            lang,
            "families_event_text.emergency_contact_set",
            &[&text_of(d, "name"), &text_of(d, "relation")],
        ),
        K::EmergencyContactRemoved => tf(
            lang,
            "families_event_text.emergency_contact_removed",
            &[&text_of(d, "reason")],
        ),
        K::EmergencyRecorded => tf(
            lang,
            "families_event_text.emergency",
            &[
                &date_of(lang, d, "occurred_on"),
                &text_of(d, "description"),
                &text_of(d, "outcome"),
            ],
        ),
        K::ElderlyCareRecorded => tf(
            lang,
            "families_event_text.elderly_care",
            &[
                &word(lang, "families_service", text_of(d, "service")),
                &member("member_id"),
                &text_of(d, "provider"),
                &date_of(lang, d, "from"),
            ],
        ),
        K::AssistanceRecorded => {
            let mut s = tf(
                lang,
                "families_event_text.assistance",
                &[
                    &word(lang, "area", text_of(d, "area")),
                    &date_of(lang, d, "provided_on"),
                    &text_of(d, "description"),
                ],
            );
            let amount = fen_of(d, "amount_fen");
            if !amount.is_empty() {
                s.push_str(" · ");
                s.push_str(&amount);
            }
            s
        }
        K::NoteAdded => text_of(d, "text").to_owned(),
        K::ActionVoided => tf(lang, "families_event_text.voided", &[&text_of(d, "reason")]),
        K::FamilyTransferred => tf(
            lang,
            "families_event_text.transferred",
            &[
                &text_of(d, "from_village_code"),
                &text_of(d, "village_code"),
                &date_of(lang, d, "transferred_on"),
                &text_of(d, "reason"),
            ],
        ),
        K::CaseClosed | K::CaseReopened => tf(
            lang,
            "families_event_text.on_reason",
            &[&date_of(lang, d, "on"), &text_of(d, "reason")],
        ),
        K::InsuranceEnrolled => tf(
            lang,
            "families_event_text.enrolled",
            &[
                &member("member_id"),
                &text_of(d, "product"),
                &d.get("policy_year")
                    .and_then(Value::as_i64)
                    .unwrap_or_default(),
                &fen_of(d, "premium_fen"),
            ],
        ),
        K::InsuranceWithdrawn => tf(
            lang,
            "families_event_text.on_reason",
            &[&date_of(lang, d, "on"), &text_of(d, "reason")],
        ),
        K::InsuranceClaimFiled => tf(
            lang,
            "families_event_text.claim_filed",
            &[
                &member("member_id"),
                &word(lang, "families_claim_cause", text_of(d, "cause")),
                &date_of(lang, d, "occurred_on"),
                &fen_of(d, "claimed_fen"),
            ],
        ),
        K::InsuranceClaimDecided => {
            let outcome = text_of(d, "outcome");
            let detail = if outcome == "paid" {
                fen_of(d, "paid_fen")
            } else {
                text_of(d, "reason").to_owned()
            };
            tf(
                lang,
                "families_event_text.claim_decided",
                &[
                    &date_of(lang, d, "decided_on"),
                    &word(lang, "families_claim_status", outcome),
                    &detail,
                ],
            )
        }
        K::ActivityAttended => tf(
            lang,
            "families_event_text.activity",
            &[&text_of(d, "title"), &date_of(lang, d, "held_on")],
        ),
        K::ActivityAttendanceRemoved => tf(
            lang,
            "families_event_text.activity_removed",
            &[&text_of(d, "reason")],
        ),
        K::FamilyErased => tf(
            lang,
            "families_event_text.erased",
            &[
                &date_of(lang, d, "on"),
                &word(lang, "erasure_reason", text_of(d, "reason")),
            ],
        ),
    }
}

/// Every recorded action of the case, newest first.
fn timeline(ctx: &Ctx<'_>, entries: &[HistoryEntry]) -> Markup {
    let lang = ctx.lang;
    // The reason of each void, by the void's action id.
    let reasons: HashMap<Uuid, &str> = entries
        .iter()
        .filter(|e| e.event_type == ActionKind::ActionVoided.name())
        .filter_map(|e| Some((e.action_id?, text_of(&e.data, "reason"))))
        .collect();
    html! {
        h2 #timeline { (t(lang, "families_case.timeline")) }
        ol.timeline {
            @for e in entries.iter().rev() {
                @let kind = ActionKind::parse(&e.event_type);
                @let voided = e.voided_by.is_some();
                li.voided[voided] {
                    span.what {
                        strong { (kind.map(|k| word(lang, "families_event", k.name())).unwrap_or_else(|| e.event_type.clone())) }
                        (t(lang, "families_case.kind_sep"))
                        (kind.map(|k| action_text(ctx, k, &e.data)).unwrap_or_default())
                    }
                    div.when {
                        @if let Some(at) = e.recorded_at { (instant(lang, at)) }
                        @if let Some(by) = &e.recorded_by {
                            " · " (by.name) " (" (word(lang, "role", by.role.as_str())) ")"
                        }
                    }
                    @if let Some(by) = e.voided_by {
                        p.void-reason {
                            (tf(lang, "families_case.voided_because", &[&reasons.get(&by).copied().unwrap_or_default()]))
                        }
                    } @else if ctx.may_record && ctx.open() && kind.is_some_and(|k| k.voidable()) {
                        @if let Some(action) = e.action_id {
                            a.void href=(ctx.path(&format!("void/{action}"))) { (t(lang, "families_case.do_void")) }
                        }
                    }
                }
            }
        }
    }
}
