//! `/admin/access-log`: who read which family's case file or history, and
//! when, newest first, as `GET /api/v1/access-log` answers (its handler:
//! admins only, families within the admin's scope), filtered by family or
//! user and paged by its cursor.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::html;
use uuid::Uuid;

use super::refused_unless_admin;
use crate::extract::{ListQuery, Page};
use crate::routes::audit::{access_log, AccessLogQuery};
use crate::state::AppState;
use crate::web::form::{input, FormState, Kind};
use crate::web::layout::page;
use crate::web::session::WebUser;
use crate::web::supervisor::{caller, error_page, link, pager, Params};
use crate::web::text::{instant, t, word};

/// Records per page.
const PAGE: u32 = 100;

/// `GET /admin/access-log?family_id=&user_id=&cursor=`.
pub(super) async fn show(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = refused_unless_admin(&who) {
        return r;
    }
    let params = Params::parse(query.as_deref());
    let family_id = params.get("family_id");
    let user_id = params.get("user_id");
    let found = access_log(
        State(state),
        caller(&who),
        ListQuery {
            page: Page {
                limit: Some(PAGE),
                cursor: params.get("cursor"),
            },
            params: AccessLogQuery {
                family_id: family_id.clone(),
                user_id: user_id.clone(),
            },
        },
    )
    .await;
    let found = match found {
        Ok(found) => found.0,
        Err(e) => return error_page(&who, e),
    };
    let lang = who.lang;
    let (family_id, user_id) = (family_id.unwrap_or_default(), user_id.unwrap_or_default());
    let filter = [
        ("family_id", family_id.as_str()),
        ("user_id", user_id.as_str()),
    ];
    let next = found.next_cursor.map(|c| {
        link(
            "/admin/access-log",
            &[filter[0], filter[1], ("cursor", c.as_str())],
        )
    });
    let first = params
        .has("cursor")
        .then(|| link("/admin/access-log", &filter));
    let form = FormState::with(&[
        ("family_id", family_id.clone()),
        ("user_id", user_id.clone()),
    ]);
    page(
        &who,
        t(lang, "admin_access.title"),
        "/admin/users",
        html! {
            p { a href="/admin/users" { (t(lang, "admin_access.to_users")) } }
            p.muted { (t(lang, "admin_access.intro")) }
            form.filters method="get" action="/admin/access-log" {
                div { (input(lang, &form, "family_id", t(lang, "admin_access.family"), Kind::Text, false)) }
                div { (input(lang, &form, "user_id", t(lang, "admin_access.user_id"), Kind::Text, false)) }
                div { button type="submit" { (t(lang, "supervisor_lists.filter")) } }
            }
            @if found.items.is_empty() {
                p.flash role="status" { (t(lang, "admin_access.none")) }
            } @else {
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th scope="col" { (t(lang, "admin_access.at")) }
                                th scope="col" { (t(lang, "admin_access.user")) }
                                th scope="col" { (t(lang, "admin_access.family")) }
                                th scope="col" { (t(lang, "admin_access.what")) }
                                th scope="col" { (t(lang, "admin_access.request")) }
                            }
                        }
                        tbody {
                            @for e in &found.items {
                                tr {
                                    th scope="row" { (instant(lang, e.at)) }
                                    td {
                                        @if let Some(os) = &e.os_user {
                                            (os) " " span.muted { (t(lang, "admin_access.command_line")) }
                                        } @else {
                                            a href=(link("/admin/access-log", &[("user_id", &e.user_id.to_string())])) {
                                                (e.user_name.as_deref().unwrap_or(t(lang, "admin_access.unknown_user")))
                                            }
                                            @if let Some(role) = &e.user_role { " (" (word(lang, "role", role)) ")" }
                                        }
                                        @if let Some(reason) = &e.reason { br; span.muted { (reason) } }
                                    }
                                    td {
                                        @if e.family_id == Uuid::nil() {
                                            (t(lang, "admin_access.every_family"))
                                        } @else {
                                            a href=(format!("/families/{}/history", e.family_id)) { (e.family_id) }
                                        }
                                    }
                                    td { (word(lang, "admin_access_endpoint", &e.endpoint)) }
                                    td { code { (e.request_id) } }
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
