//! Signing in and out, and changing one's own password.

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use nuanxin_infra::accounts::{self, SignIn};
use nuanxin_infra::users::Secret;
use serde::Deserialize;

use super::form::{csrf_field, field_error};
use super::layout::{bare, page, respond};
use super::session::{
    clear_session_cookie, cookie, over_tls, read_form, same_origin, session_cookie, PageLang,
    WebPost, WebUser, SESSION_COOKIE,
};
use super::text::{t, Lang};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// Set after a password change.
    changed: Option<String>,
}

/// Where to go after signing in: a local path only (never another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".into(),
    }
}

fn login_form(lang: Lang, next: &str, login: &str, message: Option<&str>) -> Response {
    login_form_with(lang, next, login, message, false)
}

fn login_form_with(
    lang: Lang,
    next: &str,
    login: &str,
    message: Option<&str>,
    changed: bool,
) -> Response {
    let markup = bare(
        lang,
        t(lang, "login.title"),
        html! {
            @if changed { p.flash role="status" { (t(lang, "login.changed")) } }
            @if let Some(m) = message {
                div.alert-box role="alert" { (m) }
            }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="login" { (t(lang, "login.login")) }
                input #login type="text" name="login" value=(login) autocomplete="username"
                    autocapitalize="none" spellcheck="false" required autofocus;
                label for="password" { (t(lang, "login.password")) }
                input #password type="password" name="password" autocomplete="current-password" required;
                div.actions.wide { button type="submit" { (t(lang, "login.submit")) } }
            }
            p.muted { (t(lang, "login.help")) }
            p {
                @if lang == Lang::Zh { a href="/login?lang=en" lang="en" { "English" } }
                @else { a href="/login?lang=zh" lang="zh-CN" { "中文" } }
            }
        },
    );
    respond(StatusCode::OK, lang, markup)
}

/// `GET /login`: the sign-in form.
pub async fn login_page(
    PageLang(lang): PageLang,
    Query(q): Query<LoginQuery>,
    req: Request,
) -> Response {
    let next = safe_next(q.next.as_deref());
    let mut r = login_form_with(lang, &next, "", None, q.changed.is_some());
    if req.uri().query().is_some_and(|q| q.contains("lang=")) {
        super::layout::remember_lang(&mut r, lang);
    }
    r
}

/// `POST /login`: signs in and redirects (303) to `next`, or answers the
/// form again with a message (the login kept, never the password).
pub async fn login(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    req: Request,
) -> Response {
    let tls = over_tls(req.headers());
    if !same_origin(req.headers()) {
        return (
            StatusCode::FORBIDDEN,
            super::layout::message_page(lang, "error.csrf_title", "error.csrf"),
        )
            .into_response();
    }
    let form = match read_form(req, &state).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let next = safe_next(Some(form.get("next")));
    let login = form.get("login").to_owned();
    let password = Secret::new(
        form.pairs
            .iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
    );
    let outcome = state
        .accounts()
        .sign_in(state.db(), &login, &password, chrono::Utc::now())
        .await;
    match outcome {
        Ok(SignIn::Done { cookie, user }) => {
            tracing::info!(user.id = %user.id, "signed in");
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&session_cookie(cookie.expose(), tls)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(SignIn::Wrong) => {
            tracing::info!("a sign-in failed");
            let mut r = login_form(lang, &next, &login, Some(t(lang, "login.wrong")));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
        Ok(SignIn::Throttled) => {
            tracing::warn!("a sign-in was refused: too many failures for the login");
            let mut r = login_form(lang, &next, &login, Some(t(lang, "login.throttled")));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            let mut r = login_form(lang, &next, &login, Some(t(lang, "error.internal")));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// `POST /logout`: ends the session.
pub async fn logout(
    State(state): State<AppState>,
    req_headers: axum::http::HeaderMap,
    _checked: WebPost,
) -> Response {
    if let Some(value) = cookie(&req_headers, SESSION_COOKIE) {
        if let Err(e) = state.accounts().sign_out(state.db(), value).await {
            tracing::error!(error = %e, "ending a session failed");
        }
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_session_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn account_page(who: &WebUser, errors: &[(&str, String)], done: bool) -> Response {
    let lang = who.lang;
    page(
        who,
        t(lang, "account.title"),
        "/account",
        html! {
            @if done { p.flash role="status" { (t(lang, "account.changed")) } }
            dl.facts.card {
                dt { (t(lang, "account.name")) } dd { (who.user.name) }
                dt { (t(lang, "account.role")) } dd { (super::text::word(lang, "role", who.user.role.as_str())) }
                dt { (t(lang, "account.scope")) } dd { (scope_text(lang, who.user.scope.as_str())) }
            }
            h2 { (t(lang, "account.change_password")) }
            form method="post" action="/account/password" {
                (csrf_field(who))
                label for="current_password" { (t(lang, "account.current_password")) }
                input #current_password type="password" name="current_password" autocomplete="current-password";
                (field_error(lang, errors, "current_password"))
                label for="password" { (t(lang, "account.new_password")) span.hint { " " (t(lang, "account.password_hint")) } }
                input #password type="password" name="password" autocomplete="new-password" required minlength="10";
                (field_error(lang, errors, "password"))
                div.actions { button type="submit" { (t(lang, "account.save_password")) } }
            }
        },
    )
}

/// A jurisdiction as people say it: "全部" for everything, else its code.
pub fn scope_text(lang: Lang, scope: &str) -> String {
    if scope.is_empty() {
        t(lang, "scope.everything").to_owned()
    } else {
        scope.to_owned()
    }
}

/// `GET /account`: who I am, and changing my password.
pub async fn account(who: WebUser) -> Response {
    account_page(&who, &[], false)
}

/// `POST /account/password`: changes my password (with the current one);
/// every session of mine ends, so I sign in again.
pub async fn change_password(State(state): State<AppState>, post: WebPost) -> Response {
    let WebPost { who, form } = post;
    let password = form.get("password").to_owned();
    let current = Secret::new(form.get("current_password"));
    let mut errors = Vec::new();
    if let Some(problem) = accounts::password_problem(&password) {
        errors.push(("password", problem.to_owned()));
    }
    if errors.is_empty() {
        match accounts::check_password(state.db(), who.user.id, &current).await {
            Ok(true) => {}
            Ok(false) => errors.push(("current_password", "the current password is wrong".into())),
            Err(e) => {
                tracing::error!(error = %e, "checking a password failed");
                return super::layout::message_page(who.lang, "error.title", "error.internal");
            }
        }
    }
    if !errors.is_empty() {
        let mut r = account_page(&who, &errors, false);
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return r;
    }
    let core = state.core();
    match accounts::set_password(
        core.db(),
        core.tokens(),
        who.user.id,
        &Secret::new(password),
        chrono::Utc::now(),
    )
    .await
    {
        Ok(_) => {
            tracing::info!(user.id = %who.user.id, "password changed by its user");
            let mut r = Redirect::to("/login?changed=1").into_response();
            if let Ok(v) = HeaderValue::from_str(&clear_session_cookie()) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "setting a password failed");
            super::layout::message_page(who.lang, "error.title", "error.internal")
        }
    }
}
