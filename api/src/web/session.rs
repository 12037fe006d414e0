//! Who is asking for a page: the session behind the `nx_session` cookie,
//! the page language, and form bodies checked against the session's form
//! token (CSRF).
//!
//! - A page asked without a live session redirects (303) to `/login`, with
//!   `next` set to the page (a path: never personal data).
//! - The language is `?lang=zh|en` (remembered in the `nx_lang` cookie),
//!   else that cookie, else English only if `Accept-Language` prefers it
//!   over Chinese; Chinese otherwise.
//! - Every POST from a page carries `_csrf`, the session's form token; a
//!   form without the right one is refused (403) and changes nothing. The
//!   cookie is `SameSite=Strict` too, so another site cannot even send it.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use nuanxin_infra::users::User;

use super::text::{t, Lang};
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "nx_session";
/// The language cookie.
pub const LANG_COOKIE: &str = "nx_lang";

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The language asked in the query (`lang=`), if any.
fn query_lang(parts: &Parts) -> Option<Lang> {
    let query = parts.uri.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| lang_code(&v))
}

fn lang_code(v: &str) -> Option<Lang> {
    match v {
        "zh" | "zh-CN" => Some(Lang::Zh),
        "en" => Some(Lang::En),
        _ => None,
    }
}

/// The page language of a request (see the module's documentation).
pub fn page_lang(parts: &Parts) -> Lang {
    if let Some(lang) = query_lang(parts) {
        return lang;
    }
    if let Some(lang) = cookie(&parts.headers, LANG_COOKIE).and_then(lang_code) {
        return lang;
    }
    let accept = parts
        .headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    match accept {
        Some(v) if Lang::from_accept_language(Some(v)) == Lang::En => Lang::En,
        _ => Lang::Zh,
    }
}

/// The page language, as an extractor (for pages without a session).
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PageLang(page_lang(parts)))
    }
}

/// Whether the request came over TLS (directly, or through a proxy that
/// says so): the cookie is then `Secure`.
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for the session.
pub fn session_cookie(value: &str, tls: bool) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{}",
        if tls { "; Secure" } else { "" }
    )
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The signed-in user of a page, the session's form token and the page
/// language.
#[derive(Debug, Clone)]
pub struct WebUser {
    pub user: User,
    pub csrf: String,
    pub lang: Lang,
    /// Whether `?lang=` asked for a language to remember.
    pub set_lang: bool,
    /// The path and query asked (for the language links).
    pub path: String,
}

/// No live session: to the sign-in page, then back here.
pub struct SignInFirst {
    next: String,
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let next = serde_urlencoded::to_string([("next", self.next.as_str())]).unwrap_or_default();
        let mut r = Redirect::to(&format!("/login?{next}")).into_response();
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        r
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = page_lang(parts);
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let next = if parts.method == axum::http::Method::GET {
            path.clone()
        } else {
            "/".into()
        };
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
            return Err(SignInFirst { next }.into_response());
        };
        let now = chrono::Utc::now();
        let session = state
            .accounts()
            .session(state.db(), value, now)
            .await
            .map_err(|e| crate::error::ApiError::from(e).into_response())?;
        let Some(session) = session else {
            return Err(SignInFirst { next }.into_response());
        };
        tracing::Span::current().record("user.id", tracing::field::display(session.user.id));
        state.core().seen(&session.user);
        Ok(WebUser {
            user: session.user,
            csrf: session.csrf,
            lang,
            set_lang: query_lang(parts).is_some(),
            path,
        })
    }
}

impl WebUser {
    pub fn is_recorder(&self) -> bool {
        self.user.role.may_record()
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == nuanxin_domain::UserRole::Admin
    }

    pub fn is_supervisor(&self) -> bool {
        self.user.role == nuanxin_domain::UserRole::Supervisor
    }
}

/// A form body (`application/x-www-form-urlencoded`) whose `_csrf` matched
/// the session's form token. Fields keep their order; a field sent twice
/// keeps every value ([`Form::all`]).
pub struct Form {
    pub pairs: Vec<(String, String)>,
}

impl Form {
    /// The first value of `name`, trimmed ("" if absent).
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The first value of `name`, trimmed, or None if absent or blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).to_owned()).filter(|v| !v.is_empty())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// What was typed, by field name, to fill the form again.
    pub fn values(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for (k, v) in &self.pairs {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
        out
    }
}

/// A page's POST: the session and its form, the form token checked.
pub struct WebPost {
    pub who: WebUser,
    pub form: Form,
}

/// Compares two strings in time independent of where they differ.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether an `Origin` header, when sent, names this server's host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

/// Parses a form body.
pub async fn read_form(req: Request, state: &AppState) -> Result<Form, Response> {
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| StatusCode::BAD_REQUEST.into_response())?;
    Ok(Form { pairs })
}

impl FromRequest<AppState> for WebPost {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = WebUser::from_request_parts(&mut parts, state).await?;
        let refused = |lang: Lang| {
            (
                StatusCode::FORBIDDEN,
                super::layout::message_page(lang, "error.csrf_title", "error.csrf"),
            )
                .into_response()
        };
        if !same_origin(&parts.headers) {
            return Err(refused(who.lang));
        }
        let form = read_form(Request::from_parts(parts, body), state).await?;
        if !same(form.get("_csrf"), &who.csrf) {
            return Err(refused(who.lang));
        }
        Ok(WebPost { who, form })
    }
}

/// The text of `key` for this page.
impl WebUser {
    pub fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}
