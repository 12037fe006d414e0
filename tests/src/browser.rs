//! A real headless Chromium for end-to-end tests of the web pages, driven
//! over WebDriver ([fantoccini]) by a `chromedriver` of its own.
//!
//! ```ignore
//! let Some(b) = Browser::phone(&app).await else { return }; // skipped
//! b.goto("/login").await;
//! b.fill("input[name=login]", "admin").await;
//! b.submit("form[action='/login']").await;
//! assert_eq!(b.current_path().await, "/");
//! b.screenshot("home-phone").await; // docs/screenshots/home-phone.png
//! b.close().await;
//! ```
//!
//! Each [`Browser`] starts `/usr/bin/chromedriver` on a free port (killed
//! when the browser is dropped) and one Chromium session with a fresh
//! profile directory, so tests share nothing and can run in parallel.
//! Without Chromium or chromedriver a browser test skips with a loud
//! message — except when `CI=true`, where it fails (`.ci/run` installs
//! Debian's `chromium`, `chromium-driver` and `fonts-wqy-microhei`).
//!
//! Every WebDriver command is bounded by a timeout; waiting is polling
//! with a deadline, never a fixed sleep. The helpers panic with what they
//! were doing, like the rest of this crate's helpers.

use std::fs::File;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

pub use fantoccini::cookies::Cookie;

use crate::TestApp;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The longest any one WebDriver command (a page load included) may take.
const COMMAND: Duration = Duration::from_secs(30);
/// How long [`Browser::wait_for`] and [`Browser::submit`] wait.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long chromedriver has to answer after it starts.
const DRIVER_START: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// A window: its CSS size and whether it is a touch phone.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub width: u32,
    pub height: u32,
    /// Phone emulation: touch, the page's `<meta name=viewport>` honoured,
    /// two device pixels per CSS pixel (screenshots are twice the size).
    pub mobile: bool,
}

impl Window {
    pub const PHONE: Window = Window {
        width: 360,
        height: 740,
        mobile: true,
    };
    pub const DESKTOP: Window = Window {
        width: 1280,
        height: 900,
        mobile: false,
    };
}

/// One Chromium session on a test server.
pub struct Browser {
    client: Client,
    base: String,
    /// The WebDriver session, until [`Browser::close`] ends it.
    session: Option<String>,
    driver: Driver,
    /// The profile directory and chromedriver's log; removed last.
    _dir: tempfile::TempDir,
}

impl Browser {
    /// A phone-sized browser (360×740, touch) on `app`, or `None` when
    /// Chromium is missing outside CI.
    pub async fn phone(app: &TestApp) -> Option<Self> {
        Self::open(&app.base, Window::PHONE).await
    }

    /// A desktop-sized browser (1280×900) on `app`.
    pub async fn desktop(app: &TestApp) -> Option<Self> {
        Self::open(&app.base, Window::DESKTOP).await
    }

    /// A browser with `window` on the server at `base` (`http://host:port`).
    pub async fn open(base: &str, window: Window) -> Option<Self> {
        if !available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir for the browser");
        let log = dir.path().join("chromedriver.log");
        let driver = Driver::start(&log).await;
        let profile = dir.path().join("profile");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--lang=zh-CN".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={},{}", window.width, window.height),
        ];
        let mut options = json!({
            "binary": CHROMIUM,
            "prefs": {"intl.accept_languages": "zh-CN,zh"},
        });
        if window.mobile {
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": window.width, "height": window.height,
                "pixelRatio": 2.0, "mobile": true, "touch": true,
            }});
        } else {
            args.push("--hide-scrollbars".to_owned());
        }
        options["args"] = json!(args);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 20_000, "script": 10_000, "implicit": 0},
        });
        let Value::Object(caps) = caps else {
            unreachable!("an object")
        };
        let connect = async {
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&driver.url)
                .await
        };
        let client = match tokio::time::timeout(COMMAND, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "Chromium did not start: {e}\nchromedriver's log:\n{}",
                tail(&log)
            ),
            Err(_) => panic!(
                "Chromium did not start within {COMMAND:?}\nchromedriver's log:\n{}",
                tail(&log)
            ),
        };
        let session = bounded("reading the session id", client.session_id())
            .await
            .expect("a session id");
        Some(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            session: Some(session),
            driver,
            _dir: dir,
        })
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The server's address, `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Opens `path` on the server and waits until it has loaded.
    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        bounded(&format!("opening {path}"), self.client.goto(&url)).await;
    }

    /// The element `css` (now, without waiting).
    pub async fn find(&self, css: &str) -> Element {
        bounded(
            &format!("finding {css} on {}", self.here().await),
            self.client.find(Locator::Css(css)),
        )
        .await
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        bounded(
            &format!("finding all {css}"),
            self.client.find_all(Locator::Css(css)),
        )
        .await
        .len()
    }

    /// Waits up to [`WAIT`] for the element `css` to appear.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.wait_for_within(css, WAIT).await
    }

    /// Waits up to `timeout` for the element `css` to appear.
    pub async fn wait_for_within(&self, css: &str, timeout: Duration) -> Element {
        let wait = self
            .client
            .wait()
            .at_most(timeout)
            .every(POLL)
            .for_element(Locator::Css(css));
        match tokio::time::timeout(timeout + COMMAND, wait).await {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => panic!(
                "{css} did not appear within {timeout:?} on {}: {e}",
                self.here().await
            ),
            Err(_) => panic!("waiting for {css}: the browser stopped answering"),
        }
    }

    /// Types `value` into the field `css` after clearing it, as a user
    /// would. Selects and date/time/colour/range inputs, which typing does
    /// not fill reliably, get the value set with `input` and `change`
    /// events instead.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        let tag = bounded("reading a tag", field.tag_name()).await;
        let kind = bounded("reading a type", field.attr("type"))
            .await
            .unwrap_or_default();
        let typed = tag.eq_ignore_ascii_case("textarea")
            || (tag.eq_ignore_ascii_case("input")
                && !matches!(
                    kind.to_ascii_lowercase().as_str(),
                    "date" | "time" | "datetime-local" | "month" | "week" | "color" | "range"
                ));
        if typed {
            bounded(&format!("clearing {css}"), field.clear()).await;
            bounded(&format!("typing into {css}"), field.send_keys(value)).await;
        } else {
            let set = "const [e, v] = arguments; e.value = v; \
                       e.dispatchEvent(new Event('input', {bubbles: true})); \
                       e.dispatchEvent(new Event('change', {bubbles: true})); \
                       return e.value;";
            let got = bounded(
                &format!("setting {css}"),
                self.client.execute(set, vec![json!(field), json!(value)]),
            )
            .await;
            assert_eq!(got, json!(value), "{css} did not take {value:?}");
        }
    }

    /// Clicks the element `css` (does not wait for a page it may open:
    /// see [`Browser::click_and_wait`]).
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        bounded(&format!("clicking {css}"), e.click()).await;
    }

    /// Clicks the element `css` and waits for the page it opens.
    pub async fn click_and_wait(&self, css: &str) {
        let e = self.find(css).await;
        self.navigating(&format!("clicking {css}"), async {
            bounded(&format!("clicking {css}"), e.click()).await;
        })
        .await;
    }

    /// Submits the form `css` as a user would — by clicking its first
    /// submit button, or with `requestSubmit()` when it has none — and
    /// waits for the page the server answers (a redirect's target, or the
    /// form again with its messages). Fails if the browser does not submit
    /// it, e.g. because a `required` field is empty.
    pub async fn submit(&self, form_css: &str) {
        let form = self.find(form_css).await;
        let buttons = bounded(
            "finding the form's submit button",
            form.find_all(Locator::Css(
                "button:not([type]),button[type=submit],input[type=submit]",
            )),
        )
        .await;
        self.navigating(&format!("submitting {form_css}"), async {
            match buttons.first() {
                Some(button) => bounded("clicking the submit button", button.click()).await,
                None => {
                    bounded(
                        "submitting the form",
                        self.client
                            .execute("arguments[0].requestSubmit()", vec![json!(form)]),
                    )
                    .await;
                }
            }
        })
        .await;
    }

    /// Runs `action` and waits up to [`WAIT`] until a new document has
    /// replaced the current one and finished loading.
    async fn navigating(&self, what: &str, action: impl Future<Output = ()>) {
        bounded(
            "marking the page",
            self.client
                .execute("window.__nuanxin_old_page = true", vec![]),
        )
        .await;
        action.await;
        let deadline = Instant::now() + WAIT;
        loop {
            // A failing script (the page is being replaced) counts as not yet.
            let probe = self.client.execute(
                "return !window.__nuanxin_old_page && document.readyState === 'complete'",
                vec![],
            );
            if let Ok(Ok(Value::Bool(true))) = tokio::time::timeout(COMMAND, probe).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no new page within {WAIT:?} (still {}; did the browser refuse the form?)",
                self.here().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The visible text of the element `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        bounded(&format!("reading the text of {css}"), e.text()).await
    }

    /// The attribute `name` of the element `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await;
        bounded(&format!("reading {css}'s {name}"), e.attr(name)).await
    }

    /// Runs `script` (a function body; `return` gives its value).
    pub async fn script(&self, script: &str) -> Value {
        bounded("running a script", self.client.execute(script, vec![])).await
    }

    /// The path of the page shown (without query or fragment).
    pub async fn current_path(&self) -> String {
        bounded("reading the URL", self.client.current_url())
            .await
            .path()
            .to_owned()
    }

    /// The page's URL for messages, never panicking.
    async fn here(&self) -> String {
        match tokio::time::timeout(COMMAND, self.client.current_url()).await {
            Ok(Ok(url)) => url.to_string(),
            _ => "an unknown page".to_owned(),
        }
    }

    /// The cookie `name` the browser holds for the current page, if any.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        bounded("reading cookies", self.client.get_all_cookies())
            .await
            .into_iter()
            .find(|c| c.name() == name)
    }

    /// Forgets every cookie of the current page's site.
    pub async fn delete_all_cookies(&self) {
        bounded("deleting cookies", self.client.delete_all_cookies()).await;
    }

    /// A PNG of the window as shown (with the text caret hidden, so the
    /// same page gives the same picture whether or not it was blinking).
    pub async fn screenshot_png(&self) -> Vec<u8> {
        self.script("document.documentElement.style.caretColor = 'transparent'")
            .await;
        bounded("taking a screenshot", self.client.screenshot()).await
    }

    /// Saves a PNG of the window to `docs/screenshots/<name>.png` in the
    /// workspace and returns its path. `name` is a file name without
    /// extension (letters, digits, `-`, `_`).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "screenshot name {name:?}: use letters, digits, - and _"
        );
        let png = self.screenshot_png().await;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("create docs/screenshots");
        let path = dir.join(format!("{name}.png"));
        // Written whole then renamed: two tests saving the same name race
        // harmlessly.
        let partial = dir.join(format!(".{name}.{}.partial", uuid::Uuid::new_v4().simple()));
        std::fs::write(&partial, &png).expect("write screenshot");
        std::fs::rename(&partial, &path).expect("save screenshot");
        path
    }

    /// Ends the session (Chromium quits) and stops chromedriver.
    pub async fn close(mut self) {
        if self.session.take().is_some() {
            bounded("closing the browser", self.client.clone().close()).await;
        }
    }
}

impl Drop for Browser {
    /// Without [`Browser::close`] (a failed test), ends the session
    /// synchronously so Chromium quits before chromedriver is killed.
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let url = format!("{}/session/{session}", self.driver.url);
        // Drop runs inside the test's runtime: use a thread of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(http) = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                {
                    let _ = http.delete(url).send().await;
                }
            });
        })
        .join();
    }
}

/// Awaits a WebDriver command for at most [`COMMAND`]; panics with `what`
/// when it fails or hangs.
async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    command: impl Future<Output = Result<T, E>>,
) -> T {
    match tokio::time::timeout(COMMAND, command).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: no answer from the browser within {COMMAND:?}"),
    }
}

/// Whether Chromium and chromedriver are installed; outside CI a missing
/// one skips the test loudly, in CI it fails it.
fn available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(" and ");
    assert!(
        !crate::in_ci(),
        "CI=true and {missing} is missing: install Debian's chromium and \
         chromium-driver (.ci/run does)"
    );
    eprintln!(
        "\n!!! SKIPPING a browser test: {missing} not found.\n\
         !!! Install Debian's chromium and chromium-driver (.ci/run does); in CI this fails.\n"
    );
    false
}

/// A chromedriver child process, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it is ready
    /// (three tries: another process may take the port first).
    async fn start(log: &Path) -> Self {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let out = File::create(log).expect("chromedriver log");
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log handle"))
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
            let mut driver = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            match driver.ready().await {
                Ok(()) => return driver,
                Err(e) => failures.push(format!("{e}\n{}", tail(log))),
            }
        }
        panic!("chromedriver did not start:\n{}", failures.join("\n---\n"));
    }

    /// Polls `/status` until chromedriver says it is ready.
    async fn ready(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited ({status})"));
            }
            if let Ok(r) = http.get(format!("{}/status", self.url)).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "chromedriver did not answer within {DRIVER_START:?}"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of chromedriver's log, for failure messages.
fn tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
