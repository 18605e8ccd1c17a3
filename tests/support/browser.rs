//! A real browser for the console's tests: Debian's `chromium`, headless,
//! driven through `chromedriver` over the W3C WebDriver protocol.
//!
//! The client is a few WebDriver commands over `reqwest` (already a test
//! dependency), rather than the `thirtyfour` crate, which would build a
//! second reqwest/hyper stack for the same handful of calls. The protocol:
//! <https://www.w3.org/TR/webdriver2/>.
//!
//! Chromium and chromedriver must be installed (`.ci/run` and `make test`
//! install them); a missing one fails the test with the command to run,
//! never skips it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// How long a wait for something on the page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium's flags: headless, no sandbox (CI runs as root), and nothing
/// that reaches the network on its own.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// One headless chromium with its chromedriver; both end when dropped.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    _profile: TempDir,
}

/// A directory removed on drop: chromium's fresh `--user-data-dir`.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session.
    pub async fn start() -> Browser {
        let chromium = find_binary(&["chromium", "chromium-browser"]).expect(
            "chromium is not installed: run `apt-get update && apt-get install -y chromium chromium-driver` \
             (make test and .ci/run do this)",
        );
        let driver_bin = find_binary(&["chromedriver"]).expect(
            "chromedriver is not installed: run `apt-get install -y chromium-driver` (make test and .ci/run do this)",
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().unwrap().port()
        };
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        break;
                    }
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not become ready on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!(
            "ce-console-profile-{}",
            shared::ids::new_request_id()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let reply: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_string();
        Browser {
            http,
            base,
            session,
            driver,
            _profile: TempDir(profile),
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, &url);
        // Every POST carries a JSON body, even an empty one; GETs carry none.
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        reply["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Runs a script in the page (`arguments` are the args) and returns its value.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    async fn find_now(&self, css: &str) -> Option<Element> {
        let v = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        v.as_array()?
            .first()
            .and_then(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element(id.to_string()))
    }

    /// The first element matching `css`, waiting up to [`WAIT`] for it.
    pub async fn find(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(e) = self.find_now(css).await {
                return e;
            }
            if started.elapsed() > WAIT {
                self.fail(&format!("no element matches `{css}`")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of the first element matching `css` contains `text`.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(e) = self.find_now(css).await {
                let now = self.text(&e).await;
                if now.contains(text) {
                    return now;
                }
            }
            if started.elapsed() > WAIT {
                self.fail(&format!("`{css}` never contained `{text}`"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until a script returns true.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let started = Instant::now();
        while self.script(script, vec![]).await != Value::Bool(true) {
            if started.elapsed() > WAIT {
                self.fail(&format!("waited in vain for {what}")).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await;
    }

    /// Types into an element (after clearing it).
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await;
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    /// Sends keys to whatever has the focus (e.g. "\u{E004}" is Tab).
    pub async fn keys(&self, text: &str) {
        let focused = self.get("/element/active").await;
        if let Some(id) = focused[ELEMENT_KEY].as_str() {
            self.post(&format!("/element/{id}/value"), json!({ "text": text }))
                .await;
        }
    }

    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn property(&self, e: &Element, name: &str) -> Value {
        self.get(&format!("/element/{}/property/{name}", e.0)).await
    }

    /// Saves a PNG of the viewport, or of the whole page when it is taller.
    pub async fn screenshot(&self, path: &Path) {
        // Grow the window to the page so the whole page is in the picture,
        // from the top.
        let height = self
            .script(
                "window.scrollTo(0, 0); return Math.min(4000, document.documentElement.scrollHeight)",
                vec![],
            )
            .await
            .as_u64()
            .unwrap_or(1000);
        self.post(
            "/window/rect",
            json!({ "width": 1280, "height": height.max(800) + 120 }),
        )
        .await;
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 screenshot"))
            .expect("valid base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
        self.post("/window/rect", json!({ "width": 1280, "height": 1000 }))
            .await;
    }

    /// The browser's console messages so far (JavaScript errors included).
    pub async fn console_log(&self) -> Vec<String> {
        let v = self.post("/se/log", json!({ "type": "browser" })).await;
        v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| format!("{} {}", e["level"], e["message"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails the test with what the page showed and logged.
    pub async fn fail(&self, why: &str) -> ! {
        let text = self.script("return document.body.innerText", vec![]).await;
        let log = self.console_log().await;
        panic!(
            "{why}\n--- page text ---\n{}\n--- browser console ---\n{}",
            text.as_str().unwrap_or_default(),
            log.join("\n")
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Close the session first, so chromedriver ends its chromium; then
        // stop the driver. Drop cannot await, so this is one blocking HTTP
        // request on a plain socket.
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_string();
        if let Ok(mut socket) = std::net::TcpStream::connect(&addr) {
            let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            if socket.write_all(request.as_bytes()).is_ok() {
                let _ = socket.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.start_kill();
    }
}
