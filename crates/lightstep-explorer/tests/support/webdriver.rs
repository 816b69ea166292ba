//! A small WebDriver client for the browser tests (`tests/it/browser.rs`) and the browser
//! benchmark (`benches/browser.rs`): Debian's `chromedriver` on an OS-assigned port driving
//! headless Chromium with a fresh profile.
//!
//! A client of our own rather than the `fantoccini` crate: fantoccini depends on the `webdriver`
//! crate, whose MPL-2.0 licence `deny.toml` does not allow, and the tests need a dozen
//! commands of the W3C protocol (JSON over HTTP), written here over hyper.
//!
//! Without `chromium` and `chromedriver` on the `PATH` the browser tests (and the benchmark) are
//! skipped loudly, or fail when `CI` is set (`.ci/run` installs both).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Hang guard for anything the browser should do in well under a second.
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// Only one browser at a time: the machines these run on have few cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// WebDriver's codes for keys.
pub(crate) mod keys {
    pub(crate) const HOME: &str = "\u{E011}";
    pub(crate) const END: &str = "\u{E010}";
    pub(crate) const LEFT: &str = "\u{E012}";
    pub(crate) const UP: &str = "\u{E013}";
    pub(crate) const RIGHT: &str = "\u{E014}";
    pub(crate) const DOWN: &str = "\u{E015}";
}

/// `PATH` and `CI` are how the machine runs tests, not the project's configuration, which
/// `EnvSnapshot` alone reads (it keeps only `OTEL_`, `LIGHTSTEP_` and `LS_` variables).
#[allow(clippy::disallowed_methods)]
fn machine_var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = machine_var("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A browser session.
pub(crate) struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: Client<HttpConnector, Full<Bytes>>,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// A headless Chromium, or `None` (after saying so loudly) when it is not installed and
    /// `CI` is not set.
    pub(crate) async fn start() -> Option<Self> {
        Self::start_with(&[]).await
    }

    /// [`start`](Self::start) with more Chromium flags (the benchmark asks for exact heap
    /// figures and a `gc()` it can call).
    pub(crate) async fn start_with(extra_args: &[&str]) -> Option<Self> {
        let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = on_path(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                machine_var("CI").is_none(),
                "CI is set but chromium or chromedriver is not on the PATH (.ci/run installs \
                 Debian's chromium and chromium-driver)"
            );
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED: chromium or chromedriver is not installed, so the browser test\n\
                 !!! or benchmark did not run (it fails instead when CI is set; on Debian:\n\
                 !!! apt-get install chromium chromium-driver)\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            );
            return None;
        };
        let turn = ONE_AT_A_TIME.lock().await;
        let mut command = Command::new(driver);
        command
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // A group of its own, which the Chromium it starts joins: see `Drop`.
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().expect("run chromedriver");
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(GUARD, async {
            while let Some(line) = out.next_line().await.expect("read chromedriver") {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .expect("hang guard: chromedriver did not start")
        .expect("chromedriver says its port");
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Self {
            driver: child,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            _profile: profile,
            _turn: turn,
        };
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1400,900".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        let session = browser
            .command(
                "POST",
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    // Asynchronous scripts may wait for a first visit of a million spans;
                    // within the hang guard of `command`.
                    "timeouts": {"script": 100_000},
                    "goog:chromeOptions": {"binary": chromium, "args": args},
                }}})),
            )
            .await;
        browser.session = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Some(browser)
    }

    /// One WebDriver command; its `value`. A WebDriver error fails the test with its message.
    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(120), async {
            let response = self
                .client
                .request(request)
                .await
                .expect("reach chromedriver");
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, bytes)
        })
        .await
        .expect("hang guard: chromedriver did not answer");
        let (status, bytes) = answer;
        let body: Value = serde_json::from_slice(&bytes).expect("chromedriver answers JSON");
        assert!(
            status.is_success(),
            "{method} {path}: {status} {}",
            body["value"]["message"]
        );
        body["value"].clone()
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.command("POST", &self.at("/url"), Some(json!({"url": url})))
            .await;
    }

    pub(crate) async fn url(&self) -> String {
        self.command("GET", &self.at("/url"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) async fn title(&self) -> String {
        self.command("GET", &self.at("/title"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) async fn back(&self) {
        self.command("POST", &self.at("/back"), Some(json!({})))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub(crate) async fn js(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script` until it calls its last argument (a callback); the value it passes.
    pub(crate) async fn js_async(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            &self.at("/execute/async"),
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The process group of chromedriver and the Chromium it started (its id is
    /// chromedriver's process id).
    pub(crate) fn process_group(&self) -> Option<u32> {
        self.driver.id()
    }

    /// Polls `script` until it returns something other than `null` or `false`. A script that
    /// throws (an element the page is still redrawing is `null` for a moment) counts as "not
    /// yet".
    pub(crate) async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + GUARD;
        let script = format!("try {{ {script} }} catch (e) {{ return null; }}");
        loop {
            let value = self.js(&script, args.clone()).await;
            if !value.is_null() && value != Value::Bool(false) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "hang guard: waited {GUARD:?} for {what}; page: {}",
                self.js("return document.body.innerText.slice(0, 2000)", json!([]))
                    .await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .command(
                "POST",
                &self.at("/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    /// Clicks the first element matching `css`, as a user would (scrolled into view).
    pub(crate) async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(
            "POST",
            &self.at(&format!("/element/{id}/click")),
            Some(json!({})),
        )
        .await;
    }

    /// Types `text` (which may hold [`keys`]) into the first element matching `css`.
    pub(crate) async fn send_keys(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(
            "POST",
            &self.at(&format!("/element/{id}/value")),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let png = self.command("GET", &self.at("/screenshot"), None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }

    /// Closes the browser; chromedriver goes when `self` is dropped.
    pub(crate) async fn quit(self) {
        self.command("DELETE", &self.at(""), None).await;
    }
}

impl Drop for Browser {
    /// A test that fails leaves no browser running: chromedriver and the Chromium processes it
    /// started share a process group, killed as a whole.
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}
