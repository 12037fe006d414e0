//! Helpers for tests of the web pages over HTTP (without a browser): a
//! client with a cookie jar that signs in like a browser, and reading the
//! hidden fields of a page's forms so a test submits a form as it was
//! served (form token, idempotency key, case version).

use regex::Regex;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::{TestApp, ADMIN_TOKEN};

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery";

/// A page as the server answered it (redirects are not followed).
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// Asserts the page holds `text`.
    pub fn assert_has(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "expected {text:?} in the page (status {}):\n{}",
            self.status,
            self.body
        );
        self
    }

    /// Asserts the page does not hold `text`.
    pub fn assert_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "did not expect {text:?} in the page:\n{}",
            self.body
        );
        self
    }
}

/// A file as the server answered it.
#[derive(Debug)]
pub struct Download {
    pub status: u16,
    pub content_type: String,
    pub disposition: String,
    pub bytes: Vec<u8>,
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub struct WebClient {
    pub base: String,
    pub client: reqwest::Client,
    /// The user's id, login and API token (empty for an anonymous client).
    pub user_id: String,
    pub login: String,
    pub token: String,
}

impl TestApp {
    /// A client that has not signed in.
    pub fn web_anonymous(&self) -> WebClient {
        WebClient {
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .expect("client"),
            user_id: String::new(),
            login: String::new(),
            token: String::new(),
        }
    }

    /// Creates a user with `role` and `scope`, a login and [`PASSWORD`],
    /// and signs them in.
    pub async fn web_user(&self, role: &str, scope: &str) -> WebClient {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(1);
        let login = format!("{role}{}", N.fetch_add(1, Ordering::Relaxed));
        let r = self
            .post(
                "/api/v1/users",
                ADMIN_TOKEN,
                json!({"name": format!("{role} {scope}"), "role": role, "scope": scope,
                       "login": login, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let mut web = self.web_anonymous();
        web.user_id = r.body["id"].as_str().expect("id").to_owned();
        web.token = r.body["token"].as_str().expect("token").to_owned();
        web.login = login.clone();
        let page = web.sign_in(&login, PASSWORD).await;
        assert_eq!(page.status, 303, "signed in: {}", page.body);
        web
    }
}

impl WebClient {
    async fn read(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.text().await.expect("body");
        Page {
            status,
            location,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Page {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("accept-language", "zh-CN,zh;q=0.9")
            .send()
            .await
            .expect("request sent");
        Self::read(resp).await
    }

    /// `POST path` with exactly these form fields.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("request sent");
        Self::read(resp).await
    }

    /// `GET path` of a download: status, content type, content
    /// disposition and the body's bytes.
    pub async fn download(&self, path: &str) -> Download {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Download {
            status: resp.status().as_u16(),
            content_type: header("content-type"),
            disposition: header("content-disposition"),
            bytes: resp.bytes().await.expect("body").to_vec(),
        }
    }

    /// `POST path` as `multipart/form-data`: the text `fields`, then `file`
    /// (field name, file name, bytes) when given, as a browser sends a form
    /// with a file input.
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &[u8])>,
    ) -> Page {
        const BOUNDARY: &str = "----nuanxin-test-7d3f9a2c";
        let mut body: Vec<u8> = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, file_name, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                     filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .header("accept-language", "zh-CN,zh;q=0.9")
            .body(body)
            .send()
            .await
            .expect("request sent");
        Self::read(resp).await
    }

    /// Signs in on `/login`.
    pub async fn sign_in(&self, login: &str, password: &str) -> Page {
        self.post_form(
            "/login",
            &[("login", login), ("password", password), ("next", "/")],
        )
        .await
    }

    /// Opens `page`, takes the hidden fields of its form posting to
    /// `action`, adds `fields` (replacing hidden ones of the same name) and
    /// posts it, as a browser would. Panics if the page has no such form.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let opened = self.get(page).await;
        assert_eq!(opened.status, 200, "{page}: {}", opened.body);
        let mut all = hidden_fields(&opened.body, action);
        all.retain(|(k, _)| !fields.iter().any(|(f, _)| f == k));
        let mut pairs: Vec<(&str, &str)> =
            all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.extend_from_slice(fields);
        self.post_form(action, &pairs).await
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The hidden inputs (name, value) of the first form in `html` whose
/// `action` is `action`. Panics if there is none.
pub fn hidden_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let forms = Regex::new(r#"(?s)<form\b([^>]*)>(.*?)</form>"#).expect("regex");
    let attr = |tag: &str, name: &str| -> Option<String> {
        Regex::new(&format!(r#"\b{name}="([^"]*)""#))
            .expect("regex")
            .captures(tag)
            .map(|c| unescape(&c[1]))
    };
    let inputs = Regex::new(r#"<input\b[^>]*>"#).expect("regex");
    for f in forms.captures_iter(html) {
        if attr(&f[1], "action").as_deref() != Some(action) {
            continue;
        }
        return inputs
            .find_iter(&f[2])
            .map(|m| m.as_str())
            .filter(|tag| attr(tag, "type").as_deref() == Some("hidden"))
            .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
            .collect();
    }
    panic!("no form posting to {action} in the page:\n{html}");
}
