//! `/admin/users`: the users within the admin's scope (name, login, role,
//! scope, disabled, last seen) and the form that creates one (with a first
//! password); `/admin/users/{id}`: one user, with the forms that set their
//! password and disable them (with a reason). The list, the creation, the
//! password and the disabling are the API's handlers (`routes::users`),
//! called for the page's user.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use nuanxin_infra::users;
use uuid::Uuid;

use super::refused_unless_admin;
use crate::error::{ApiError, FieldError};
use crate::extract::{Body, ListQuery, Page};
use crate::routes::users::{
    create_user, disable_user, list_users, set_password as api_set_password, CreateUserRequest,
    DisableRequest, PasswordRequest, UserItem, UserListQuery,
};
use crate::state::AppState;
use crate::web::auth::scope_text;
use crate::web::form::{csrf_field, form_message, input, select, textarea, FormState, Kind};
use crate::web::layout::page;
use crate::web::session::{Form, WebPost, WebUser};
use crate::web::supervisor::{caller, error_page, link, not_found, pager, Params};
use crate::web::text::{instant, t, word, Lang};

/// Users per page.
const PAGE: u32 = 100;

/// The fields of the creation form.
const CREATE_FIELDS: [&str; 5] = ["name", "login", "role", "scope", "password"];

/// `GET /admin/users?cursor=`.
pub(super) async fn list(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = refused_unless_admin(&who) {
        return r;
    }
    let form = FormState::with(&[
        ("role", "caseworker".into()),
        ("scope", who.user.scope.as_str().to_owned()),
    ]);
    show_list(&state, &who, query.as_deref(), form).await
}

async fn show_list(
    state: &AppState,
    who: &WebUser,
    query: Option<&str>,
    form: FormState,
) -> Response {
    let params = Params::parse(query);
    let found = list_users(
        State(state.clone()),
        caller(who),
        ListQuery {
            page: Page {
                limit: Some(PAGE),
                cursor: params.get("cursor"),
            },
            params: UserListQuery {},
        },
    )
    .await;
    let found = match found {
        Ok(found) => found.0,
        Err(e) => return error_page(who, e),
    };
    let lang = who.lang;
    let next = found
        .next_cursor
        .map(|c| link("/admin/users", &[("cursor", &c)]));
    let first = params.has("cursor").then(|| "/admin/users".to_owned());
    let failed = !form.errors.is_empty() || form.message.is_some();
    let mut r = page(
        who,
        t(lang, "admin_users.title"),
        "/admin/users",
        html! {
            p { a href="/admin/access-log" { (t(lang, "admin_users.to_access_log")) } }
            div.table-wrap {
                table {
                    thead {
                        tr {
                            th scope="col" { (t(lang, "admin_users.name")) }
                            th scope="col" { (t(lang, "admin_users.login")) }
                            th scope="col" { (t(lang, "admin_users.role")) }
                            th scope="col" { (t(lang, "admin_users.scope")) }
                            th scope="col" { (t(lang, "admin_users.state")) }
                            th scope="col" { (t(lang, "admin_users.last_seen")) }
                        }
                    }
                    tbody {
                        @for u in &found.items { (user_row(lang, u)) }
                    }
                }
            }
            (pager(lang, first, next))
            section.card #new-user {
                h2 { (t(lang, "admin_users.create")) }
                (create_form(who, &form))
            }
        },
    );
    if failed {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

fn state_badge(lang: Lang, u: &UserItem) -> Markup {
    html! {
        @if u.disabled {
            span.badge.overdue { (t(lang, "admin_users.disabled")) }
        } @else {
            span.badge.ok { (t(lang, "admin_users.active")) }
        }
        @if !u.has_password { " " span.badge { (t(lang, "admin_users.no_password")) } }
    }
}

fn last_seen(lang: Lang, u: &UserItem) -> String {
    match u.last_seen_at {
        Some(at) => instant(lang, at),
        None => t(lang, "admin_users.never_seen").to_owned(),
    }
}

fn user_row(lang: Lang, u: &UserItem) -> Markup {
    html! {
        tr {
            th scope="row" { a href=(format!("/admin/users/{}", u.user.id)) { (u.user.name) } }
            td { (u.login) }
            td { (word(lang, "role", &u.user.role)) }
            td { (scope_text(lang, &u.user.scope)) }
            td {
                (state_badge(lang, u))
                @if let Some(reason) = &u.disabled_reason { br; span.muted { (reason) } }
            }
            td { (last_seen(lang, u)) }
        }
    }
}

fn roles(lang: Lang) -> Vec<(String, String)> {
    ["caseworker", "supervisor", "admin"]
        .into_iter()
        .map(|r| (r.to_owned(), word(lang, "role", r)))
        .collect()
}

fn create_form(who: &WebUser, form: &FormState) -> Markup {
    let lang = who.lang;
    html! {
        form method="post" action="/admin/users" {
            (csrf_field(who))
            (form_message(lang, form, &CREATE_FIELDS))
            (input(lang, form, "name", t(lang, "admin_users.name"), Kind::Text, true))
            (input(lang, form, "login", t(lang, "admin_users.login"), Kind::Text, true))
            p.hint { (t(lang, "admin_users.login_hint")) }
            (select(lang, form, "role", t(lang, "admin_users.role"), &roles(lang), false))
            (input(lang, form, "scope", t(lang, "admin_users.scope"), Kind::Text, false))
            p.hint { (t(lang, "admin_users.scope_hint")) }
            (input(lang, form, "password", t(lang, "admin_users.password"), Kind::Password, true))
            p.hint { (t(lang, "admin_users.password_hint")) }
            div.actions { button type="submit" { (t(lang, "admin_users.create_submit")) } }
        }
    }
}

/// A form shown again after a refusal: what was typed, never a password.
fn failed(form: &Form, lang: Lang, error: &ApiError) -> FormState {
    let mut state = FormState::failed(form, lang, error);
    state.values.remove("password");
    state
}

/// `POST /admin/users` (`name`, `login`, `role`, `scope`, `password`):
/// creates the user as `POST /api/v1/users` does, then shows them.
pub(super) async fn create(State(state): State<AppState>, post: WebPost) -> Response {
    let WebPost { who, form } = post;
    if let Some(r) = refused_unless_admin(&who) {
        return r;
    }
    let request = CreateUserRequest {
        name: form.get("name").to_owned(),
        role: form.get("role").to_owned(),
        scope: form.get("scope").to_owned(),
        login: form.opt("login"),
        password: form.opt("password"),
    };
    let created = create_user(
        State(state.clone()),
        caller(&who),
        Body {
            value: request,
            hash: String::new(),
        },
    )
    .await;
    let error = match created {
        Ok((_, created)) => {
            return Redirect::to(&format!("/admin/users/{}?done=created", created.0.user.id))
                .into_response();
        }
        // The refusals about one field go beside it.
        Err(ApiError::Forbidden(m)) => beside("scope", m),
        Err(ApiError::Conflict(m)) => beside("login", m),
        Err(e @ ApiError::Validation(_)) => e,
        Err(e) => return error_page(&who, e),
    };
    let state_of_form = failed(&form, who.lang, &error);
    show_list(&state, &who, None, state_of_form).await
}

fn beside(field: &str, message: String) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: field.to_owned(),
        message,
    }])
}

/// The user `id` as the API lists them, if within the admin's scope.
async fn user_in_scope(state: &AppState, who: &WebUser, id: &str) -> Result<UserItem, Response> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Err(not_found(who));
    };
    match users::get(state.db(), id).await {
        Ok(Some(u)) if who.user.scope.covers(&u.user.scope) => Ok(UserItem::from(&u)),
        Ok(_) => Err(not_found(who)),
        Err(e) => Err(error_page(who, ApiError::Internal(Box::new(e)))),
    }
}

/// `GET /admin/users/{id}?done=`.
pub(super) async fn detail(
    State(state): State<AppState>,
    who: WebUser,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = refused_unless_admin(&who) {
        return r;
    }
    let user = match user_in_scope(&state, &who, &id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let done = Params::parse(query.as_deref()).get("done");
    show_detail(
        &who,
        &user,
        done.as_deref(),
        &FormState::default(),
        &FormState::default(),
    )
}

fn show_detail(
    who: &WebUser,
    u: &UserItem,
    done: Option<&str>,
    password: &FormState,
    disable: &FormState,
) -> Response {
    let lang = who.lang;
    let id = u.user.id;
    let myself = id == who.user.id;
    let done_key = match done {
        Some("created") => Some("admin_users.created"),
        Some("password") => Some("admin_users.password_set"),
        Some("disabled") => Some("admin_users.was_disabled"),
        _ => None,
    };
    let mut r = page(
        who,
        &u.user.name,
        "/admin/users",
        html! {
            @if let Some(key) = done_key { p.flash role="status" { (t(lang, key)) } }
            p { a href="/admin/users" { (t(lang, "admin_users.back")) } }
            dl.facts.card {
                dt { (t(lang, "admin_users.login")) } dd { (u.login) }
                dt { (t(lang, "admin_users.role")) } dd { (word(lang, "role", &u.user.role)) }
                dt { (t(lang, "admin_users.scope")) } dd { (scope_text(lang, &u.user.scope)) }
                dt { (t(lang, "admin_users.state")) } dd { (state_badge(lang, u)) }
                @if let Some(at) = u.disabled_at {
                    dt { (t(lang, "admin_users.disabled_at")) } dd { (instant(lang, at)) }
                }
                @if let Some(reason) = &u.disabled_reason {
                    dt { (t(lang, "admin_users.reason")) } dd { (reason) }
                }
                dt { (t(lang, "admin_users.last_seen")) } dd { (last_seen(lang, u)) }
            }
            @if myself {
                // A refusal of a form posted about yourself (not shown here).
                (form_message(lang, password, &[]))
                (form_message(lang, disable, &[]))
                p.muted { (t(lang, "admin_users.yourself")) " " a href="/account" { (t(lang, "nav.account")) } }
            } @else if !u.disabled {
                section.card {
                    h2 { (t(lang, "admin_users.set_password")) }
                    form method="post" action=(format!("/admin/users/{id}/password")) {
                        (csrf_field(who))
                        (form_message(lang, password, &["password"]))
                        (input(lang, password, "password", t(lang, "admin_users.new_password"), Kind::Password, true))
                        p.hint { (t(lang, "admin_users.password_hint")) }
                        div.actions { button type="submit" { (t(lang, "admin_users.set_password")) } }
                    }
                }
                section.card {
                    h2 { (t(lang, "admin_users.disable")) }
                    p.muted { (t(lang, "admin_users.disable_hint")) }
                    form method="post" action=(format!("/admin/users/{id}/disable")) {
                        (csrf_field(who))
                        (form_message(lang, disable, &["reason"]))
                        (textarea(lang, disable, "reason", t(lang, "admin_users.reason"), true))
                        div.actions { button.danger type="submit" { (t(lang, "admin_users.disable")) } }
                    }
                }
            }
        },
    );
    if !password.errors.is_empty()
        || password.message.is_some()
        || !disable.errors.is_empty()
        || disable.message.is_some()
    {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// `POST /admin/users/{id}/password` (`password`): sets the user's password
/// as `POST /api/v1/users/{id}/password` does (their sessions end).
pub(super) async fn set_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: WebPost,
) -> Response {
    let WebPost { who, form } = post;
    if let Some(r) = refused_unless_admin(&who) {
        return r;
    }
    let user = match user_in_scope(&state, &who, &id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let done = api_set_password(
        State(state.clone()),
        caller(&who),
        crate::extract::Path(user.user.id),
        Body {
            value: PasswordRequest {
                password: form.get("password").to_owned(),
                current_password: None,
            },
            hash: String::new(),
        },
    )
    .await;
    match done {
        Ok(_) => {
            Redirect::to(&format!("/admin/users/{}?done=password", user.user.id)).into_response()
        }
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(_) | ApiError::Forbidden(_))) => {
            let password = failed(&form, who.lang, &e);
            show_detail(&who, &user, None, &password, &FormState::default())
        }
        Err(e) => error_page(&who, e),
    }
}

/// `POST /admin/users/{id}/disable` (`reason`): disables the user as
/// `POST /api/v1/users/{id}/disable` does (their sessions and token stop
/// working at once).
pub(super) async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: WebPost,
) -> Response {
    let WebPost { who, form } = post;
    if let Some(r) = refused_unless_admin(&who) {
        return r;
    }
    let user = match user_in_scope(&state, &who, &id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let done = disable_user(
        State(state.clone()),
        caller(&who),
        crate::extract::Path(user.user.id),
        Body {
            value: DisableRequest {
                reason: form.get("reason").to_owned(),
            },
            hash: String::new(),
        },
    )
    .await;
    match done {
        Ok(_) => {
            Redirect::to(&format!("/admin/users/{}?done=disabled", user.user.id)).into_response()
        }
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(_))) => {
            let disable = failed(&form, who.lang, &e);
            show_detail(&who, &user, None, &FormState::default(), &disable)
        }
        Err(e) => error_page(&who, e),
    }
}
