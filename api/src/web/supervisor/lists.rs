//! `/overdue` (visits overdue today, by role and village prefix, urgent
//! first) and `/coverage` (open families missing a village or township
//! contact): the JSON API's handlers answer them, so the scope, the filters
//! and the cursor paging are exactly the API's. Each page links its whole
//! list, with the page's filters, as an Excel workbook (`/overdue.xlsx`,
//! `/coverage.xlsx`: the API's `format=xlsx`).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use maud::{html, Markup};
use nuanxin_projections::schedule::DueItem;

use super::{caller, error_page, family_label, link, pager, Params};
use crate::extract::{ListQuery, Page};
use crate::routes::schedule::{self, GapParams, OverdueParams};
use crate::routes::sheets::ListFormat;
use crate::state::AppState;
use crate::web::form::{input, select, FormState, Kind};
use crate::web::layout::page;
use crate::web::session::WebUser;
use crate::web::text::{date, t, tf, word, Lang};

/// Items per page.
const PAGE: u32 = 50;

fn page_of(params: &Params) -> Page {
    Page {
        limit: Some(PAGE),
        cursor: params.get("cursor"),
    }
}

/// `GET /overdue?role=&prefix=&cursor=`.
pub(super) async fn overdue(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let role = params.get("role");
    let prefix = params.get("prefix");
    let list = schedule::overdue_list(
        &state,
        &caller(&who),
        page_of(&params),
        OverdueParams {
            on: None,
            role: role.clone(),
            contact_id: None,
            village_code_prefix: prefix.clone(),
            format: None,
        },
    )
    .await;
    let list = match list {
        Ok(list) => list,
        Err(e) => return error_page(&who, e),
    };
    let lang = who.lang;
    let (role, prefix) = (role.unwrap_or_default(), prefix.unwrap_or_default());
    let mut items = list.items;
    // The API's order is the oldest due first; within the page the urgent
    // ones (an emergency or a death awaiting a home visit) come first.
    items.sort_by_key(|i| (!i.urgent, std::cmp::Reverse(i.days_overdue)));
    let filter = [("role", role.as_str()), ("prefix", prefix.as_str())];
    let next = list
        .next_cursor
        .map(|c| link("/overdue", &[filter[0], filter[1], ("cursor", c.as_str())]));
    let first = params.has("cursor").then(|| link("/overdue", &filter));
    let today = state.reads().today();
    page(
        &who,
        t(lang, "nav.overdue"),
        "/overdue",
        html! {
            p.muted { (tf(lang, "supervisor_lists.overdue_on", &[&date(lang, today)])) }
            form.filters method="get" action="/overdue" {
                @let state = FormState::with(&[("role", role.clone()), ("prefix", prefix.clone())]);
                div { (select(lang, &state, "role", t(lang, "supervisor_lists.role"), &roles(lang), false)) }
                div { (input(lang, &state, "prefix", t(lang, "supervisor_lists.prefix"), Kind::Text, false)) }
                div { button type="submit" { (t(lang, "supervisor_lists.filter")) } }
            }
            (download_link(lang, link("/overdue.xlsx", &filter)))
            @if items.is_empty() {
                p.flash role="status" { (t(lang, "supervisor_lists.no_overdue")) }
            } @else {
                (overdue_table(lang, &items))
            }
            (pager(lang, first, next))
        },
    )
}

/// The role filter's choices: both roles, or one.
fn roles(lang: Lang) -> Vec<(String, String)> {
    vec![
        (
            String::new(),
            t(lang, "supervisor_lists.both_roles").to_owned(),
        ),
        ("village".into(), word(lang, "contact_role", "village")),
        ("township".into(), word(lang, "contact_role", "township")),
    ]
}

fn overdue_table(lang: Lang, items: &[DueItem]) -> Markup {
    html! {
        div.table-wrap {
            table {
                thead {
                    tr {
                        th scope="col" { (t(lang, "supervisor_lists.family")) }
                        th scope="col" { (t(lang, "supervisor_lists.role")) }
                        th scope="col" { (t(lang, "supervisor_lists.contact")) }
                        th scope="col" { (t(lang, "supervisor_lists.due_on")) }
                        th.num scope="col" { (t(lang, "supervisor_lists.days_overdue")) }
                        th scope="col" { (t(lang, "supervisor_lists.last_visit")) }
                    }
                }
                tbody {
                    @for i in items {
                        tr {
                            th scope="row" {
                                a href=(format!("/families/{}", i.family_id)) { (family_label(&i.village_code, i.family_id)) }
                                @if i.urgent { " " span.badge.urgent { (t(lang, "supervisor_lists.urgent")) } }
                                @if i.key_person { " " span.badge.key { (t(lang, "supervisor_lists.key_person")) } }
                            }
                            td { (word(lang, "contact_role", &i.role)) }
                            td { (i.contact.name) }
                            td { (date(lang, i.due_on)) }
                            td.num { span.badge.overdue { (tf(lang, "supervisor_lists.days", &[&i.days_overdue])) } }
                            td {
                                @match i.last_visit_on {
                                    Some(d) => (date(lang, d)),
                                    None => span.muted { (t(lang, "supervisor_lists.never")) },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /coverage?prefix=&cursor=`.
pub(super) async fn coverage(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let prefix = params.get("prefix");
    let list = schedule::gap_list(
        &state,
        &caller(&who),
        page_of(&params),
        GapParams {
            village_code_prefix: prefix.clone(),
            format: None,
        },
    )
    .await;
    let list = match list {
        Ok(list) => list,
        Err(e) => return error_page(&who, e),
    };
    let lang = who.lang;
    let prefix = prefix.unwrap_or_default();
    let next = list
        .next_cursor
        .map(|c| link("/coverage", &[("prefix", &prefix), ("cursor", &c)]));
    let first = params
        .has("cursor")
        .then(|| link("/coverage", &[("prefix", &prefix)]));
    page(
        &who,
        t(lang, "nav.coverage"),
        "/coverage",
        html! {
            p.muted { (t(lang, "supervisor_lists.coverage_intro")) }
            form.filters method="get" action="/coverage" {
                @let state = FormState::with(&[("prefix", prefix.clone())]);
                div { (input(lang, &state, "prefix", t(lang, "supervisor_lists.prefix"), Kind::Text, false)) }
                div { button type="submit" { (t(lang, "supervisor_lists.filter")) } }
            }
            (download_link(lang, link("/coverage.xlsx", &[("prefix", &prefix)])))
            @if list.items.is_empty() {
                p.flash role="status" { (t(lang, "supervisor_lists.no_gaps")) }
            } @else {
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th scope="col" { (t(lang, "supervisor_lists.family")) }
                                th scope="col" { (t(lang, "supervisor_lists.missing")) }
                            }
                        }
                        tbody {
                            @for g in &list.items {
                                tr {
                                    th scope="row" { a href=(format!("/families/{}", g.family_id)) { (family_label(&g.village_code, g.family_id)) } }
                                    td {
                                        @for (n, role) in g.missing_roles.iter().enumerate() {
                                            @if n > 0 { " " }
                                            span.badge.overdue { (word(lang, "contact_role", role)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, first, next))
        },
    )
}

/// The link to a list's whole workbook, with the page's filters.
pub(in crate::web) fn download_link(lang: Lang, href: String) -> Markup {
    html! {
        p.downloads {
            a.button.secondary href=(href) download { (t(lang, "exports.download_xlsx")) }
            " "
            span.muted { (t(lang, "exports.download_hint")) }
        }
    }
}

/// `GET /overdue.xlsx?role=&prefix=`: the whole overdue list of the page's
/// filters as an Excel workbook.
pub(super) async fn overdue_xlsx(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let asked = OverdueParams {
        on: None,
        role: params.get("role"),
        contact_id: None,
        village_code_prefix: params.get("prefix"),
        format: Some(ListFormat::Xlsx),
    };
    let whole = ListQuery {
        page: Page {
            limit: None,
            cursor: None,
        },
        params: asked,
    };
    file(
        &who,
        schedule::overdue_visits(State(state), caller(&who), whole).await,
    )
}

/// `GET /coverage.xlsx?prefix=`: the whole coverage-gap list of the page's
/// filter as an Excel workbook.
pub(super) async fn coverage_xlsx(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let whole = ListQuery {
        page: Page {
            limit: None,
            cursor: None,
        },
        params: GapParams {
            village_code_prefix: params.get("prefix"),
            format: Some(ListFormat::Xlsx),
        },
    };
    file(
        &who,
        schedule::coverage_gaps(State(state), caller(&who), whole).await,
    )
}

/// A download answered by an API handler, or the page of its error.
pub(in crate::web) fn file(
    who: &WebUser,
    answer: Result<Response, crate::error::ApiError>,
) -> Response {
    match answer {
        Ok(mut r) => {
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => error_page(who, e),
    }
}
