//! The page shell every page shares: head (embedded stylesheet), top bar
//! with the navigation for the user's role, language switch and sign-out,
//! then the page's content. Also the answer headers of every page (no
//! caching of pages with personal data, a strict Content-Security-Policy).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::session::{WebUser, LANG_COOKIE};
use super::text::{t, Lang};

/// Where the navigation leads, by role: (path, text key).
fn nav(who: &WebUser) -> Vec<(&'static str, &'static str)> {
    let home = if who.is_recorder() && !who.is_admin() {
        "nav.work"
    } else {
        "nav.dashboard"
    };
    let mut items = vec![("/", home), ("/families", "nav.families")];
    items.push(("/overdue", "nav.overdue"));
    if !who.is_recorder() || who.is_admin() {
        items.push(("/coverage", "nav.coverage"));
    }
    items.push(("/alerts", "nav.alerts"));
    if !who.is_recorder() || who.is_admin() {
        items.push(("/reports", "nav.reports"));
    }
    if who.is_recorder() {
        items.push((super::import::PATH, "import.nav"));
    }
    if who.is_admin() {
        items.push(("/admin/users", "nav.users"));
    }
    items
}

/// The link to this page in the other language.
fn other_lang(who: &WebUser) -> (String, &'static str) {
    let (code, key) = match who.lang {
        Lang::Zh => ("en", "shell.in_english"),
        Lang::En => ("zh", "shell.in_chinese"),
    };
    let path = who.path.split('?').next().unwrap_or("/");
    let mut query: Vec<(String, String)> = who
        .path
        .split_once('?')
        .and_then(|(_, q)| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    query.retain(|(k, _)| k != "lang");
    query.push(("lang".into(), code.into()));
    let q = serde_urlencoded::to_string(&query).unwrap_or_default();
    (format!("{path}?{q}"), key)
}

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · " (t(lang, "app.name")) }
            link rel="stylesheet" href=(super::assets::CSS_PATH);
            link rel="icon" href="data:,";
        }
    }
}

/// A whole page for a signed-in user; `active` is the navigation path to
/// mark.
pub fn page(who: &WebUser, title: &str, active: &str, content: Markup) -> Response {
    let lang = who.lang;
    let (other, other_key) = other_lang(who);
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            (head(lang, title))
            body {
                a.skip href="#main" { (t(lang, "shell.skip")) }
                header.top {
                    div.bar {
                        a.brand href="/" { (t(lang, "app.name")) }
                        span.who { (who.user.name) " · " (t(lang, &format!("role.{}", who.user.role.as_str()))) }
                    }
                    nav aria-label=(t(lang, "shell.nav")) {
                        ul {
                            @for (path, key) in nav(who) {
                                li {
                                    @if path == active {
                                        a href=(path) aria-current="page" { (t(lang, key)) }
                                    } @else {
                                        a href=(path) { (t(lang, key)) }
                                    }
                                }
                            }
                        }
                    }
                    div.tools {
                        a href=(other) lang=(if lang == Lang::Zh { "en" } else { "zh-CN" }) { (t(lang, other_key)) }
                        a href="/account" { (t(lang, "nav.account")) }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="_csrf" value=(who.csrf);
                            button.link type="submit" { (t(lang, "shell.sign_out")) }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    let mut r = respond(StatusCode::OK, lang, markup);
    if who.set_lang {
        remember_lang(&mut r, lang);
    }
    r
}

/// Keeps the chosen language in a cookie.
pub fn remember_lang(r: &mut Response, lang: Lang) {
    let code = if lang == Lang::Zh { "zh" } else { "en" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={code}; Path=/; Max-Age=31536000; SameSite=Lax"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A page without the navigation (sign-in, refusals).
pub fn bare(lang: Lang, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            (head(lang, title))
            body.bare {
                main #main {
                    p.brand { (t(lang, "app.name")) }
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

/// A short page saying something went wrong (`title_key`, `text_key`).
pub fn message_page(lang: Lang, title_key: &str, text_key: &str) -> Response {
    let markup = bare(
        lang,
        t(lang, title_key),
        html! { p { (t(lang, text_key)) } p { a href="/" { (t(lang, "shell.home")) } } },
    );
    respond(StatusCode::OK, lang, markup)
}

/// An HTML answer with the headers every page gets.
pub fn respond(status: StatusCode, lang: Lang, markup: Markup) -> Response {
    let mut r = (status, markup).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// Raw markup (an inline SVG built as text).
pub fn raw(s: String) -> Markup {
    PreEscaped(s)
}
