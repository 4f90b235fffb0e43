//! A small W3C WebDriver client for driving the real Malipo window through WebKitWebDriver
//! (Linux; `TAURI_WEBVIEW_AUTOMATION=true` lets the driver attach to the app's WebKitGTK webview).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn driver_available() -> bool {
    Command::new("WebKitWebDriver").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

impl Driver {
    /// Starts WebKitWebDriver and, through it, the app binary with the environment `configure` sets.
    pub fn launch(app: &Path, configure: impl FnOnce(&mut Command)) -> Driver {
        let port = free_port();
        let mut cmd = Command::new("WebKitWebDriver");
        cmd.arg(format!("--port={port}")).env("TAURI_WEBVIEW_AUTOMATION", "true").stdout(Stdio::null()).stderr(Stdio::null());
        configure(&mut cmd);
        let driver = cmd.spawn().expect("WebKitWebDriver starts (apt-get install webkit2gtk-driver)");
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut d = Driver { driver, base, session: String::new(), http };
        d.wait_ready();
        let caps = json!({"capabilities": {"alwaysMatch": {"webkitgtk:browserOptions": {"binary": app, "args": []}}}});
        let v = d.post("/session", &caps).expect("a WebDriver session with the app");
        d.session = v["sessionId"].as_str().expect("session id").to_string();
        d
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.http.get(format!("{}/status", self.base)).send().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("WebKitWebDriver did not answer");
    }

    fn request(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, String> {
        // The driver drops an occasional connection under Xvfb; retry transport errors, not answers.
        let mut last = String::new();
        for _ in 0..4 {
            let mut req = self.http.request(method.clone(), format!("{}{}", self.base, path));
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    let v: Value = resp.json().map_err(|e| e.to_string())?;
                    if status.is_success() {
                        return Ok(v["value"].clone());
                    }
                    return Err(format!("{status}: {}", v["value"]));
                }
                Err(e) => {
                    last = e.to_string();
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        Err(last)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.request(reqwest::Method::POST, path, Some(body))
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        self.request(reqwest::Method::GET, path, None)
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{}", self.session, rest)
    }

    /// Waits up to `timeout` for an element matching the CSS selector.
    pub fn find(&self, css: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.post(&self.s("/element"), &json!({"using": "css selector", "value": css})) {
                Ok(v) => return v[ELEMENT].as_str().unwrap().to_string(),
                Err(e) if Instant::now() > deadline => panic!("no element {css}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Waits for an element matching `css` whose text contains `needle`.
    pub fn find_with_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(v) = self.post(&self.s("/elements"), &json!({"using": "css selector", "value": css})) {
                for el in v.as_array().into_iter().flatten() {
                    let id = el[ELEMENT].as_str().unwrap_or_default().to_string();
                    if self.text(&id).contains(needle) {
                        return id;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no {css} showing {needle:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn type_text(&self, element: &str, text: &str) {
        self.post(&self.s(&format!("/element/{element}/value")), &json!({"text": text})).unwrap();
    }

    pub fn text(&self, element: &str) -> String {
        self.get(&self.s(&format!("/element/{element}/text"))).unwrap().as_str().unwrap_or_default().to_string()
    }

    pub fn click(&self, element: &str) {
        self.post(&self.s(&format!("/element/{element}/click")), &json!({})).unwrap();
    }

    /// Waits until the element's text contains `needle`, returning the text.
    pub fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let el = self.find(css, timeout);
            let text = self.text(&el);
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} never showed {needle:?}; it shows {text:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn screenshot(&self, path: &Path) {
        // WebKit can hand back the frame painted before the last DOM change: let it paint first.
        std::thread::sleep(Duration::from_millis(400));
        let v = self.get(&self.s("/screenshot")).unwrap();
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request(reqwest::Method::DELETE, &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
