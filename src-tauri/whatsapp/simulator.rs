//! The Graph API simulator: a loopback server that speaks WhatsApp Cloud API's send endpoint with
//! Meta's rules and error codes, emits signed status webhooks, and a "customer phone" that sends signed
//! inbound messages to the app. Simulator mode runs it in-process; the tests use it over real HTTP.
//!
//! Business time (the 24-hour window, the pair rate, timestamps) comes from the injected clock; the
//! throughput limit and delivery delays are real time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::graph::{GraphSettings, ListRow, ListSection, OutboundMessage, ReplyButton};
use super::templates::{self, TemplateDef};
use super::webhook::{envelope, sign};
use crate::clock::SharedClock;
use crate::secrets::Secret;

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub api_version: String,
    pub phone_number_id: String,
    /// The access token the simulator accepts (anything else → error 190).
    pub token: String,
    /// Signs the webhooks it sends (the app's WhatsApp app secret).
    pub app_secret: String,
    /// Where status and inbound webhooks go (`…/webhooks/whatsapp`); can be set after start.
    pub webhook_url: Option<String>,
    /// Messages accepted per second (real time) before error 130429…
    pub messages_per_second: u32,
    /// …plus this many, for network jitter between a client's evenly spaced sends.
    pub throughput_slack: u32,
    /// The pair rate: one message per interval to one user (business time) before 131056…
    pub pair_interval: chrono::Duration,
    /// …after a small burst of this many.
    pub pair_burst: u32,
    /// The approved templates (unknown → 132001, wrong parameter count → 132000).
    pub templates: Vec<TemplateDef>,
    /// Real delay before each status webhook (sent, delivered, read).
    pub status_delay: Duration,
    /// Whether customers "read" what they receive.
    pub auto_read: bool,
    /// Whether status webhooks are sent at all.
    pub emit_statuses: bool,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            api_version: "v21.0".into(),
            phone_number_id: "100000000000001".into(),
            token: "simulator-token".into(),
            app_secret: "simulator-app-secret".into(),
            webhook_url: None,
            messages_per_second: 80,
            throughput_slack: 1,
            pair_interval: chrono::Duration::seconds(6),
            pair_burst: 3,
            templates: templates::defaults(),
            status_delay: Duration::from_millis(20),
            auto_read: true,
            emit_statuses: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no webhook URL is set")]
    NoWebhook,
    #[error("the app answered the webhook with HTTP {0}")]
    Rejected(u16),
    #[error("cannot reach the app: {0}")]
    Transport(String),
}

#[derive(Default)]
struct Inner {
    /// Every accepted message: the request body plus `wamid`, `display_text` (what the phone shows), `at`.
    accepted: Vec<Value>,
    /// Every rejected send: (recipient, code).
    rejected: Vec<(String, i64)>,
    read_marks: Vec<String>,
    last_inbound: HashMap<String, DateTime<Utc>>,
    pair_tat: HashMap<String, DateTime<Utc>>,
    recent: VecDeque<Instant>,
    not_on_whatsapp: HashSet<String>,
    fail_async: HashMap<String, i64>,
    scripted: VecDeque<i64>,
    response_delay: Option<Duration>,
    names: HashMap<String, String>,
}

struct Shared {
    config: Mutex<SimulatorConfig>,
    clock: SharedClock,
    http: reqwest::Client,
    inner: Mutex<Inner>,
    counter: AtomicU64,
    nonce: String,
}

/// A running simulator; stops when dropped or shut down.
pub struct GraphSimulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl GraphSimulator {
    /// Starts on 127.0.0.1 on a free port.
    pub async fn start(config: SimulatorConfig, clock: SharedClock) -> std::io::Result<GraphSimulator> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config, clock).await
    }

    pub async fn start_on(addr: SocketAddr, config: SimulatorConfig, clock: SharedClock) -> std::io::Result<GraphSimulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            clock,
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client"),
            inner: Mutex::new(Inner::default()),
            counter: AtomicU64::new(0),
            nonce: hex::encode(rand::random::<[u8; 4]>()).to_uppercase(),
        });
        let app = Router::new().route("/{version}/{phone_number_id}/messages", post(messages)).with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(GraphSimulator { shared, addr, stop: Some(stop) })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Settings that point a `GraphClient` at this simulator with the right token.
    pub fn graph_settings(&self) -> GraphSettings {
        let c = self.shared.config.lock().unwrap();
        GraphSettings { base_url: self.base_url(), api_version: c.api_version.clone(), phone_number_id: c.phone_number_id.clone(), token: Secret::new(c.token.clone()) }
    }

    pub fn set_webhook_url(&self, url: impl Into<String>) {
        self.shared.config.lock().unwrap().webhook_url = Some(url.into());
    }

    pub fn configure(&self, f: impl FnOnce(&mut SimulatorConfig)) {
        f(&mut self.shared.config.lock().unwrap());
    }

    /// Sends to this number fail with 131026.
    pub fn not_on_whatsapp(&self, phone: &str) {
        self.inner().not_on_whatsapp.insert(phone.to_string());
    }

    /// Sends to this number are accepted, then a `failed` status with `code` follows.
    pub fn fail_async(&self, phone: &str, code: i64) {
        self.inner().fail_async.insert(phone.to_string(), code);
    }

    /// The next send fails with `code` (scripted errors are used in order).
    pub fn fail_next(&self, code: i64) {
        self.inner().scripted.push_back(code);
    }

    /// Every accepted send is answered only after this long (a client that times out does not learn
    /// that its message was accepted).
    pub fn set_response_delay(&self, delay: Option<Duration>) {
        self.inner().response_delay = delay;
    }

    /// The profile name the customer phone sends with its messages.
    pub fn set_name(&self, phone: &str, name: &str) {
        self.inner().names.insert(phone.to_string(), name.to_string());
    }

    /// What the customer with this number received, oldest first.
    pub fn messages_to(&self, phone: &str) -> Vec<Value> {
        self.inner().accepted.iter().filter(|m| m["to"] == phone).cloned().collect()
    }

    pub fn accepted(&self) -> Vec<Value> {
        self.inner().accepted.clone()
    }

    pub fn accepted_count(&self) -> usize {
        self.inner().accepted.len()
    }

    /// Rejected sends as (recipient, error code).
    pub fn rejections(&self) -> Vec<(String, i64)> {
        self.inner().rejected.clone()
    }

    pub fn read_marks(&self) -> Vec<String> {
        self.inner().read_marks.clone()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap()
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    // ---- The customer phone ----

    pub async fn send_text(&self, from: &str, body: &str) -> Result<String, SimError> {
        self.send_inbound(from, json!({"type": "text", "text": {"body": body}})).await
    }

    pub async fn tap_button(&self, from: &str, id: &str, title: &str) -> Result<String, SimError> {
        let context = self.last_message_to(from, |m| m["type"] == "interactive");
        self.send_inbound(from, with_context(json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": id, "title": title}}}), context)).await
    }

    pub async fn choose_from_list(&self, from: &str, id: &str, title: &str, description: Option<&str>) -> Result<String, SimError> {
        let context = self.last_message_to(from, |m| m["type"] == "interactive");
        let mut reply = json!({"id": id, "title": title});
        if let Some(d) = description {
            reply["description"] = json!(d);
        }
        self.send_inbound(from, with_context(json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": reply}}), context)).await
    }

    /// Taps a quick-reply button of the template that carried `payload` (e.g. "PAY:INV-1042").
    pub async fn tap_template_button(&self, from: &str, payload: &str) -> Result<String, SimError> {
        let found = self.inner().accepted.iter().rev().find_map(|m| {
            let components = m.pointer("/template/components")?.as_array()?;
            let button = components.iter().find(|c| c["type"] == "button" && c.pointer("/parameters/0/payload").and_then(Value::as_str) == Some(payload))?;
            let index: usize = button["index"].as_str()?.parse().ok()?;
            let (name, lang) = (m.pointer("/template/name")?.as_str()?, m.pointer("/template/language/code")?.as_str()?);
            Some((m["wamid"].as_str()?.to_string(), name.to_string(), lang.to_string(), index))
        });
        let (context, text) = match found {
            Some((wamid, name, lang, index)) => {
                let text = self.shared.config.lock().unwrap().templates.iter().find(|t| t.name == name && t.language == lang).and_then(|t| t.quick_replies.get(index)).map(|q| q.text.clone());
                (Some(wamid), text.unwrap_or_else(|| "Pay now".into()))
            }
            None => (None, "Pay now".into()),
        };
        self.send_inbound(from, with_context(json!({"type": "button", "button": {"payload": payload, "text": text}}), context)).await
    }

    /// `kind`: image, audio, document, sticker or video.
    pub async fn send_media(&self, from: &str, kind: &str) -> Result<String, SimError> {
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let mime = match kind {
            "image" => "image/jpeg",
            "audio" => "audio/ogg; codecs=opus",
            "document" => "application/pdf",
            "sticker" => "image/webp",
            _ => "video/mp4",
        };
        self.send_inbound(from, json!({"type": kind, kind: {"id": format!("media-{n}"), "mime_type": mime, "sha256": "c2ltdWxhdG9y"}})).await
    }

    pub async fn send_location(&self, from: &str, latitude: f64, longitude: f64) -> Result<String, SimError> {
        self.send_inbound(from, json!({"type": "location", "location": {"latitude": latitude, "longitude": longitude}})).await
    }

    pub async fn react(&self, from: &str, message_id: &str, emoji: &str) -> Result<String, SimError> {
        self.send_inbound(from, json!({"type": "reaction", "reaction": {"message_id": message_id, "emoji": emoji}})).await
    }

    pub async fn send_unsupported(&self, from: &str) -> Result<String, SimError> {
        self.send_inbound(from, json!({"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}]})).await
    }

    pub async fn send_system(&self, from: &str, body: &str) -> Result<String, SimError> {
        self.send_inbound(from, json!({"type": "system", "system": {"body": body, "type": "user_changed_number"}})).await
    }

    fn last_message_to(&self, phone: &str, pred: impl Fn(&Value) -> bool) -> Option<String> {
        self.inner().accepted.iter().rev().find(|m| m["to"] == phone && pred(m)).and_then(|m| m["wamid"].as_str().map(str::to_string))
    }

    /// A signed inbound webhook for one message from `from` (`message` holds type and its object).
    /// Returns (wamid, body, signature header) without sending it; the bench uses this.
    pub fn inbound_webhook(&self, from: &str, message: Value) -> (String, Vec<u8>, String) {
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let wamid = format!("wamid.IN{}{n:010}", self.shared.nonce);
        let mut m = json!({"from": from, "id": wamid, "timestamp": self.shared.clock.now().timestamp().to_string()});
        m.as_object_mut().unwrap().extend(message.as_object().cloned().unwrap_or_default());
        let name = self.inner().names.get(from).cloned().unwrap_or_else(|| "Customer".into());
        let config = self.shared.config.lock().unwrap().clone();
        let body = envelope(&config.phone_number_id, json!({"contacts": [{"profile": {"name": name}, "wa_id": from}], "messages": [m]})).to_string().into_bytes();
        let signature = sign(config.app_secret.as_bytes(), &body);
        (wamid, body, signature)
    }

    /// Sends one customer message to the app as a signed webhook; the customer's window opens.
    pub async fn send_inbound(&self, from: &str, message: Value) -> Result<String, SimError> {
        let (wamid, body, signature) = self.inbound_webhook(from, message);
        self.inner().last_inbound.insert(from.to_string(), self.shared.clock.now());
        post_webhook(&self.shared, body, signature).await?;
        Ok(wamid)
    }
}

impl Drop for GraphSimulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn with_context(mut message: Value, context: Option<String>) -> Value {
    if let Some(id) = context {
        message["context"] = json!({"from": "254700000000", "id": id});
    }
    message
}

async fn post_webhook(shared: &Shared, body: Vec<u8>, signature: String) -> Result<(), SimError> {
    let url = shared.config.lock().unwrap().webhook_url.clone().ok_or(SimError::NoWebhook)?;
    let response = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| SimError::Transport(e.to_string()))?;
    match response.status().as_u16() {
        200 => Ok(()),
        other => Err(SimError::Rejected(other)),
    }
}

fn graph_error(code: i64, message: &str, details: &str) -> Response {
    let status = match code {
        190 | 0 => StatusCode::UNAUTHORIZED,
        130429 | 4 => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = json!({"error": {
        "message": message,
        "type": if code == 190 { "OAuthException" } else { "GraphMethodException" },
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "SIMULATOR"
    }});
    (status, Json(body)).into_response()
}

fn error_text(code: i64) -> (&'static str, &'static str) {
    match code {
        0 | 190 => ("Invalid OAuth access token - Cannot parse access token", "The access token is invalid or expired"),
        100 => ("Invalid parameter", "A parameter is missing or invalid"),
        130429 => ("Rate limit hit", "Cloud API message throughput has been reached"),
        131026 => ("Message undeliverable", "Unable to deliver message: the recipient is not a WhatsApp user"),
        131047 => ("Re-engagement message", "More than 24 hours have passed since the recipient last replied to the sender number"),
        131050 => ("Unable to deliver the message", "The user has stopped marketing messages"),
        131051 => ("Unsupported message type", "Message type is not currently supported"),
        131056 => ("(Business Account, Consumer Account) pair rate limit hit", "Too many messages sent from this phone number to the same phone number in a short period of time"),
        132000 => ("Number of parameters does not match the expected number of params", "The template's body parameter count does not match"),
        132001 => ("Template name does not exist in the translation", "The template does not exist in this language or is not approved"),
        132015 => ("Template is Paused", "The template is paused due to low quality"),
        132016 => ("Template is Disabled", "The template is disabled"),
        368 => ("Temporarily blocked for policies violations", "The account is restricted"),
        _ => ("Error", "Simulated error"),
    }
}

fn code_error(code: i64) -> Response {
    let (message, details) = error_text(code);
    graph_error(code, message, details)
}

/// The request's message as an `OutboundMessage`, or Meta's code-100 explanation of what is wrong.
pub fn parse_send(body: &Value) -> Result<(String, OutboundMessage), String> {
    if body["messaging_product"] != "whatsapp" {
        return Err("messaging_product must be \"whatsapp\"".into());
    }
    let to = body["to"].as_str().filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit())).ok_or("`to` must be a phone number of digits")?;
    let kind = body["type"].as_str().unwrap_or("text");
    let obj = &body[kind];
    let s = |v: &Value, what: &str| v.as_str().map(str::to_string).ok_or_else(|| format!("{what} is required"));
    let msg = match kind {
        "text" => OutboundMessage::Text { body: s(&obj["body"], "text.body")? },
        "interactive" => match obj["type"].as_str() {
            Some("button") => OutboundMessage::Buttons {
                body: s(&obj["body"]["text"], "interactive.body.text")?,
                footer: obj["footer"]["text"].as_str().map(str::to_string),
                buttons: obj["action"]["buttons"]
                    .as_array()
                    .ok_or("interactive.action.buttons is required")?
                    .iter()
                    .map(|b| Ok(ReplyButton { id: s(&b["reply"]["id"], "reply.id")?, title: s(&b["reply"]["title"], "reply.title")? }))
                    .collect::<Result<_, String>>()?,
            },
            Some("list") => OutboundMessage::List {
                body: s(&obj["body"]["text"], "interactive.body.text")?,
                button: s(&obj["action"]["button"], "interactive.action.button")?,
                sections: obj["action"]["sections"]
                    .as_array()
                    .ok_or("interactive.action.sections is required")?
                    .iter()
                    .map(|sec| {
                        Ok(ListSection {
                            title: sec["title"].as_str().map(str::to_string),
                            rows: sec["rows"]
                                .as_array()
                                .ok_or("section.rows is required")?
                                .iter()
                                .map(|r| Ok(ListRow { id: s(&r["id"], "row.id")?, title: s(&r["title"], "row.title")?, description: r["description"].as_str().map(str::to_string) }))
                                .collect::<Result<_, String>>()?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            },
            _ => return Err("interactive.type must be button or list".into()),
        },
        "template" => {
            let components = obj["components"].as_array().cloned().unwrap_or_default();
            let body_params = components
                .iter()
                .filter(|c| c["type"] == "body")
                .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default())
                .map(|p| s(&p["text"], "body parameter text"))
                .collect::<Result<_, String>>()?;
            let quick_reply_payloads = components
                .iter()
                .filter(|c| c["type"] == "button")
                .map(|c| s(&c["parameters"][0]["payload"], "button payload"))
                .collect::<Result<_, String>>()?;
            OutboundMessage::Template {
                name: s(&obj["name"], "template.name")?,
                language: s(&obj["language"]["code"], "template.language.code")?,
                body_params,
                quick_reply_payloads,
            }
        }
        other => return Err(format!("message type {other:?} is not supported by the simulator")),
    };
    msg.validate().map_err(|e| e.to_string())?;
    Ok((to.to_string(), msg))
}

async fn messages(State(shared): State<Arc<Shared>>, Path((version, phone_number_id)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    let config = shared.config.lock().unwrap().clone();
    if version != config.api_version || phone_number_id != config.phone_number_id {
        return graph_error(100, "Unsupported post request", "Unknown phone number id or API version");
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(config.token.as_str()) {
        let to = serde_json::from_slice::<Value>(&body).ok().and_then(|b| b["to"].as_str().map(str::to_string)).unwrap_or_default();
        shared.inner.lock().unwrap().rejected.push((to, 190));
        return code_error(190);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(100, "Invalid parameter", "The request body is not JSON");
    };
    if body["status"] == "read" {
        let Some(id) = body["message_id"].as_str() else {
            return graph_error(100, "Invalid parameter", "message_id is required");
        };
        shared.inner.lock().unwrap().read_marks.push(id.to_string());
        return Json(json!({"success": true})).into_response();
    }
    let (to, msg) = match parse_send(&body) {
        Ok(x) => x,
        Err(details) => return graph_error(100, "Invalid parameter", &details),
    };
    let now = shared.clock.now();
    let decision = {
        let mut inner = shared.inner.lock().unwrap();
        let verdict = judge(&mut inner, &config, &to, &msg, now);
        match verdict {
            Err(code) => {
                inner.rejected.push((to.clone(), code));
                Err(code)
            }
            Ok(()) => {
                let n = shared.counter.fetch_add(1, Ordering::Relaxed);
                let wamid = format!("wamid.SIM{}{n:010}", shared.nonce);
                let mut record = body.clone();
                record["wamid"] = json!(wamid);
                record["display_text"] = json!(render(&config, &msg));
                record["at"] = json!(crate::store::ts(now));
                inner.accepted.push(record);
                Ok((wamid, inner.fail_async.get(&to).copied()))
            }
        }
    };
    match decision {
        Err(code) => code_error(code),
        Ok((wamid, fail)) => {
            let callback = body["biz_opaque_callback_data"].as_str().map(str::to_string);
            if config.emit_statuses {
                tokio::spawn(emit_statuses(shared.clone(), wamid.clone(), to.clone(), callback, fail));
            }
            // Accepted, but the answer can be slow: a client that times out now does not know that.
            let delay = shared.inner.lock().unwrap().response_delay;
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            Json(json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]})).into_response()
        }
    }
}

/// Meta's rules, in the order Meta applies them.
fn judge(inner: &mut Inner, config: &SimulatorConfig, to: &str, msg: &OutboundMessage, now: DateTime<Utc>) -> Result<(), i64> {
    if let Some(code) = inner.scripted.pop_front() {
        return Err(code);
    }
    if inner.not_on_whatsapp.contains(to) {
        return Err(131026);
    }
    if let OutboundMessage::Template { name, language, body_params, .. } = msg {
        let Some(def) = config.templates.iter().find(|t| &t.name == name && &t.language == language) else {
            return Err(132001);
        };
        if def.param_count() != body_params.len() {
            return Err(132000);
        }
    } else {
        let open = inner.last_inbound.get(to).is_some_and(|t| now < *t + chrono::Duration::hours(24));
        if !open {
            return Err(131047);
        }
    }
    // Throughput: at most `messages_per_second` accepted in any one second.
    let second_ago = Instant::now() - Duration::from_secs(1);
    while inner.recent.front().is_some_and(|t| *t <= second_ago) {
        inner.recent.pop_front();
    }
    if inner.recent.len() >= (config.messages_per_second + config.throughput_slack) as usize {
        return Err(130429);
    }
    // Pair rate (GCRA): one per interval, a small burst borrowed from the future.
    let tolerance = config.pair_interval * (config.pair_burst.max(1) as i32 - 1);
    let tat = inner.pair_tat.get(to).copied().unwrap_or(now).max(now);
    if tat > now + tolerance {
        return Err(131056);
    }
    inner.pair_tat.insert(to.to_string(), tat + config.pair_interval);
    inner.recent.push_back(Instant::now());
    Ok(())
}

fn render(config: &SimulatorConfig, msg: &OutboundMessage) -> String {
    match msg {
        OutboundMessage::Template { name, language, body_params, .. } => {
            config.templates.iter().find(|t| &t.name == name && &t.language == language).map(|t| t.render(body_params)).unwrap_or_else(|| msg.preview())
        }
        other => other.preview(),
    }
}

async fn emit_statuses(shared: Arc<Shared>, wamid: String, to: String, callback: Option<String>, fail: Option<i64>) {
    let (delay, auto_read, phone_number_id) = {
        let c = shared.config.lock().unwrap();
        (c.status_delay, c.auto_read, c.phone_number_id.clone())
    };
    let steps: Vec<(&str, Option<i64>)> = match fail {
        Some(code) => vec![("failed", Some(code))],
        None if auto_read => vec![("sent", None), ("delivered", None), ("read", None)],
        None => vec![("sent", None), ("delivered", None)],
    };
    for (status, code) in steps {
        tokio::time::sleep(delay).await;
        let mut s = json!({
            "id": wamid, "status": status, "timestamp": shared.clock.now().timestamp().to_string(), "recipient_id": to,
        });
        if let Some(cb) = &callback {
            s["biz_opaque_callback_data"] = json!(cb);
        }
        if let Some(code) = code {
            let (title, details) = error_text(code);
            s["errors"] = json!([{"code": code, "title": title, "message": title, "error_data": {"details": details}}]);
        }
        let body = envelope(&phone_number_id, json!({"statuses": [s]})).to_string().into_bytes();
        let signature = sign(shared.config.lock().unwrap().app_secret.as_bytes(), &body);
        // Meta retries webhooks that are not answered 200; a few quick retries do here.
        for attempt in 0..3 {
            match post_webhook(&shared, body.clone(), signature.clone()).await {
                Ok(()) | Err(SimError::NoWebhook) => break,
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "simulator status webhook not accepted");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_parse_back_into_the_message_that_made_them() {
        let msgs = [
            OutboundMessage::text("Habari"),
            OutboundMessage::Buttons { body: "Lipa?".into(), footer: Some("Malipo".into()), buttons: vec![ReplyButton { id: "y".into(), title: "Ndiyo".into() }] },
            OutboundMessage::List {
                body: "Chagua".into(),
                button: "Ankara".into(),
                sections: vec![ListSection { title: Some("Wazi".into()), rows: vec![ListRow { id: "1".into(), title: "INV-1".into(), description: None }] }],
            },
            OutboundMessage::Template { name: "t".into(), language: "sw".into(), body_params: vec!["a".into()], quick_reply_payloads: vec!["PAY:1".into()] },
        ];
        for m in msgs {
            let (kind, obj) = m.to_graph();
            let body = json!({"messaging_product": "whatsapp", "to": "254712345678", "type": kind, kind: obj});
            assert_eq!(parse_send(&body).unwrap(), ("254712345678".to_string(), m));
        }
        assert!(parse_send(&json!({"messaging_product": "whatsapp", "to": "x", "type": "text", "text": {"body": "a"}})).is_err());
        assert!(parse_send(&json!({"messaging_product": "whatsapp", "to": "254712345678", "type": "text", "text": {}})).is_err());
    }
}
