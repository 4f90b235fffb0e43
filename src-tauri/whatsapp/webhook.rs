//! The pure half of the webhook: signature check, verification handshake, and parsing a payload into
//! events. No I/O here; `routes` does the HTTP and the store.

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Checks `X-Hub-Signature-256: sha256=<hex>` against HMAC-SHA256 of the RAW body. Constant time
/// (`verify_slice`); a missing or malformed header is a failure.
pub fn verify_signature(app_secret: &[u8], raw_body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.map(str::trim).and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(app_secret) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&expected).is_ok()
}

/// The header value Meta would send for `raw_body` (used by the simulator and tests).
pub fn sign(app_secret: &[u8], raw_body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC takes any key length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`: the challenge to echo when the token
/// matches (compared in constant time), `None` (→ 403) otherwise.
pub fn verify_handshake(mode: Option<&str>, token: Option<&str>, challenge: Option<&str>, expected: &str) -> Option<String> {
    use subtle::ConstantTimeEq;
    if mode != Some("subscribe") || expected.is_empty() {
        return None;
    }
    let token = token?;
    let challenge = challenge?;
    if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) {
        Some(challenge.to_string())
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WebhookEvent {
    Message(InboundMessage),
    Status(StatusUpdate),
}

impl WebhookEvent {
    /// The dedupe key within source "whatsapp": the message id, or the status id plus the status.
    pub fn external_id(&self) -> String {
        match self {
            WebhookEvent::Message(m) => m.id.clone(),
            WebhookEvent::Status(s) => format!("{}:{}", s.id, s.status.as_str()),
        }
    }

    /// Events with the same key are processed in order: the customer's wa_id.
    pub fn ordering_key(&self) -> &str {
        match self {
            WebhookEvent::Message(m) => &m.from,
            WebhookEvent::Status(s) => &s.recipient_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub id: String,
    /// The sender's wa_id (digits, international form).
    pub from: String,
    pub profile_name: Option<String>,
    pub timestamp: DateTime<Utc>,
    /// The message this one answers (a tap on a template or interactive message, or a quoted reply).
    pub context_id: Option<String>,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text { body: String },
    ButtonReply { id: String, title: String },
    ListReply { id: String, title: String, description: Option<String> },
    /// A tap on a template's quick-reply button.
    TemplateButton { payload: String, text: String },
    /// image, audio, document, sticker or video.
    Media { kind: String, id: String, mime_type: Option<String>, caption: Option<String> },
    Location { latitude: f64, longitude: f64, name: Option<String> },
    Reaction { message_id: String, emoji: String },
    /// E.g. "User A changed from +254… to +254…".
    System { body: String },
    Unsupported { code: Option<i64> },
}

impl Content {
    /// A short name for the `messages.kind` column.
    pub fn kind(&self) -> &str {
        match self {
            Content::Text { .. } => "text",
            Content::ButtonReply { .. } => "button_reply",
            Content::ListReply { .. } => "list_reply",
            Content::TemplateButton { .. } => "template_button",
            Content::Media { kind, .. } => kind,
            Content::Location { .. } => "location",
            Content::Reaction { .. } => "reaction",
            Content::System { .. } => "system",
            Content::Unsupported { .. } => "unsupported",
        }
    }

    /// What the customer "said", as text: the body, or the title/payload of what they tapped.
    pub fn text(&self) -> Option<&str> {
        match self {
            Content::Text { body } => Some(body),
            Content::ButtonReply { title, .. } | Content::ListReply { title, .. } => Some(title),
            Content::TemplateButton { text, .. } => Some(text),
            Content::Media { caption, .. } => caption.as_deref(),
            _ => None,
        }
    }

    /// A line for the conversation log (before redaction).
    pub fn log_body(&self) -> String {
        match self {
            Content::Text { body } => body.clone(),
            Content::ButtonReply { id, title } => format!("[button {id}] {title}"),
            Content::ListReply { id, title, .. } => format!("[list {id}] {title}"),
            Content::TemplateButton { payload, text } => format!("[quick reply {payload}] {text}"),
            Content::Media { kind, caption, .. } => match caption {
                Some(c) => format!("[{kind}] {c}"),
                None => format!("[{kind}]"),
            },
            Content::Location { latitude, longitude, name } => {
                format!("[location {latitude:.5},{longitude:.5}]{}", name.as_deref().map(|n| format!(" {n}")).unwrap_or_default())
            }
            Content::Reaction { emoji, .. } => format!("[reaction] {emoji}"),
            Content::System { body } => format!("[system] {body}"),
            Content::Unsupported { code } => format!("[unsupported{}]", code.map(|c| format!(" {c}")).unwrap_or_default()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }

    /// How far along a message is. Statuses only move forward: a late `delivered` never replaces
    /// `read`, and `failed` is final.
    pub fn rank(self) -> u8 {
        match self {
            DeliveryStatus::Sent => 1,
            DeliveryStatus::Delivered => 2,
            DeliveryStatus::Read => 3,
            DeliveryStatus::Failed => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The wamid of the message this status is about.
    pub id: String,
    pub status: DeliveryStatus,
    pub timestamp: DateTime<Utc>,
    pub recipient_id: String,
    pub errors: Vec<ErrorDetail>,
    /// `biz_opaque_callback_data` echoed from the send: Malipo puts the outbox idempotency key there,
    /// which lets a status name the outbox row even when the wamid was never recorded (crash safety).
    #[serde(default)]
    pub callback_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: i64,
    pub title: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("webhook body is not JSON: {0}")]
    Json(String),
    #[error("webhook body has an unexpected shape: {0}")]
    Shape(String),
}

fn shape(msg: impl Into<String>) -> ParseError {
    ParseError::Shape(msg.into())
}

/// Splits a webhook payload into its events: every entry, every change, every message and status.
/// Changes of other fields (account updates, template reviews) carry no events and are skipped.
pub fn parse_webhook(raw: &[u8]) -> Result<Vec<WebhookEvent>, ParseError> {
    Ok(parse_webhook_raw(raw)?.into_iter().map(|p| p.event).collect())
}

/// One event with the JSON object it came from (the message or status, with its contact), which
/// the inbox stores next to the parsed form.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub event: WebhookEvent,
    pub raw: Value,
}

/// `parse_webhook`, keeping each event's raw JSON.
pub fn parse_webhook_raw(raw: &[u8]) -> Result<Vec<ParsedEvent>, ParseError> {
    let root: Value = serde_json::from_slice(raw).map_err(|e| ParseError::Json(e.to_string()))?;
    let root = root.as_object().ok_or_else(|| shape("the body is not a JSON object"))?;
    let entries = root.get("entry").and_then(Value::as_array).ok_or_else(|| shape("no `entry` array"))?;
    let mut events = Vec::new();
    for entry in entries {
        let Some(changes) = entry.get("changes") else { continue };
        let changes = changes.as_array().ok_or_else(|| shape("`changes` is not an array"))?;
        for change in changes {
            if change.get("field").and_then(Value::as_str).is_some_and(|f| f != "messages") {
                continue;
            }
            let Some(value) = change.get("value") else { continue };
            parse_value(value, &mut events)?;
        }
    }
    Ok(events)
}

fn parse_value(value: &Value, events: &mut Vec<ParsedEvent>) -> Result<(), ParseError> {
    let contacts = value.get("contacts").and_then(Value::as_array);
    let profile_name = |wa_id: &str| -> Option<String> {
        contacts?
            .iter()
            .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(wa_id))
            .or_else(|| contacts?.first())
            .and_then(|c| c.pointer("/profile/name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Some(messages) = value.get("messages") {
        let messages = messages.as_array().ok_or_else(|| shape("`messages` is not an array"))?;
        for m in messages {
            let mut msg = parse_message(m)?;
            msg.profile_name = profile_name(&msg.from);
            let contact = contacts.and_then(|cs| cs.iter().find(|c| c.get("wa_id").and_then(Value::as_str) == Some(msg.from.as_str()))).cloned();
            let raw = serde_json::json!({ "message": m, "contact": contact });
            events.push(ParsedEvent { event: WebhookEvent::Message(msg), raw });
        }
    }
    if let Some(statuses) = value.get("statuses") {
        let statuses = statuses.as_array().ok_or_else(|| shape("`statuses` is not an array"))?;
        for s in statuses {
            if let Some(status) = parse_status(s)? {
                events.push(ParsedEvent { event: WebhookEvent::Status(status), raw: serde_json::json!({ "status": s }) });
            }
        }
    }
    Ok(())
}

fn str_field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str, ParseError> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| shape(format!("{what} has no string `{key}`")))
}

fn opt_str(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).and_then(Value::as_str).map(str::to_string)
}

/// Meta sends unix seconds as a string; accept a number too.
fn parse_timestamp(v: &Value, what: &str) -> Result<DateTime<Utc>, ParseError> {
    let secs = match v.get("timestamp") {
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| shape(format!("{what} timestamp {s:?} is not unix seconds")))?,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| shape(format!("{what} timestamp is not an integer")))?,
        _ => return Err(shape(format!("{what} has no timestamp"))),
    };
    Utc.timestamp_opt(secs, 0).single().ok_or_else(|| shape(format!("{what} timestamp {secs} is out of range")))
}

fn parse_message(m: &Value) -> Result<InboundMessage, ParseError> {
    let id = str_field(m, "id", "a message")?.to_string();
    let from = str_field(m, "from", "a message")?.to_string();
    if from.is_empty() || !from.chars().all(|c| c.is_ascii_digit()) {
        return Err(shape("a message's `from` is not a wa_id of digits"));
    }
    let timestamp = parse_timestamp(m, "a message")?;
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("unsupported");
    let content = match kind {
        "text" => Content::Text { body: opt_str(m, "/text/body").ok_or_else(|| shape("a text message has no text.body"))? },
        "interactive" => {
            let i = m.get("interactive").ok_or_else(|| shape("an interactive message has no `interactive`"))?;
            match i.get("type").and_then(Value::as_str) {
                Some("button_reply") => Content::ButtonReply {
                    id: opt_str(i, "/button_reply/id").ok_or_else(|| shape("button_reply has no id"))?,
                    title: opt_str(i, "/button_reply/title").unwrap_or_default(),
                },
                Some("list_reply") => Content::ListReply {
                    id: opt_str(i, "/list_reply/id").ok_or_else(|| shape("list_reply has no id"))?,
                    title: opt_str(i, "/list_reply/title").unwrap_or_default(),
                    description: opt_str(i, "/list_reply/description"),
                },
                _ => Content::Unsupported { code: None },
            }
        }
        "button" => Content::TemplateButton {
            payload: opt_str(m, "/button/payload").ok_or_else(|| shape("a button message has no button.payload"))?,
            text: opt_str(m, "/button/text").unwrap_or_default(),
        },
        "image" | "audio" | "document" | "sticker" | "video" | "voice" => {
            let media = m.get(kind).ok_or_else(|| shape(format!("a {kind} message has no `{kind}` object")))?;
            Content::Media {
                kind: kind.to_string(),
                id: opt_str(media, "/id").unwrap_or_default(),
                mime_type: opt_str(media, "/mime_type"),
                caption: opt_str(media, "/caption"),
            }
        }
        "location" => {
            let loc = m.get("location").ok_or_else(|| shape("a location message has no `location`"))?;
            let coord = |k: &str| loc.get(k).and_then(Value::as_f64).ok_or_else(|| shape(format!("location has no numeric {k}")));
            Content::Location { latitude: coord("latitude")?, longitude: coord("longitude")?, name: opt_str(loc, "/name") }
        }
        "reaction" => Content::Reaction {
            message_id: opt_str(m, "/reaction/message_id").unwrap_or_default(),
            emoji: opt_str(m, "/reaction/emoji").unwrap_or_default(),
        },
        "system" => Content::System { body: opt_str(m, "/system/body").unwrap_or_default() },
        _ => Content::Unsupported { code: m.pointer("/errors/0/code").and_then(Value::as_i64) },
    };
    Ok(InboundMessage { id, from, profile_name: None, timestamp, context_id: opt_str(m, "/context/id"), content })
}

/// Statuses Malipo does not track (e.g. `deleted`, `warning`) are skipped.
fn parse_status(s: &Value) -> Result<Option<StatusUpdate>, ParseError> {
    let id = str_field(s, "id", "a status")?.to_string();
    let Some(status) = DeliveryStatus::parse(str_field(s, "status", "a status")?) else {
        return Ok(None);
    };
    let timestamp = parse_timestamp(s, "a status")?;
    let recipient_id = str_field(s, "recipient_id", "a status")?.to_string();
    let errors = s
        .get("errors")
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(|e| {
                    Some(ErrorDetail {
                        code: e.get("code").and_then(Value::as_i64)?,
                        title: opt_str(e, "/title"),
                        message: opt_str(e, "/message"),
                        details: opt_str(e, "/error_data/details"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(StatusUpdate { id, status, timestamp, recipient_id, errors, callback_data: opt_str(s, "/biz_opaque_callback_data") }))
}

/// Builds a webhook payload in Meta's shape around `value` (the simulator and tests use it).
pub fn envelope(phone_number_id: &str, value: Value) -> Value {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "100000000000000",
            "changes": [{ "field": "messages", "value": value_with_metadata(phone_number_id, value) }]
        }]
    })
}

fn value_with_metadata(phone_number_id: &str, mut value: Value) -> Value {
    if let Some(obj) = value.as_object_mut() {
        obj.insert("messaging_product".into(), "whatsapp".into());
        obj.insert(
            "metadata".into(),
            serde_json::json!({ "display_phone_number": "254700000000", "phone_number_id": phone_number_id }),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"app-secret";

    #[test]
    fn a_signature_verifies_over_the_raw_bytes_only() {
        let body = "{\"text\":\"Nimelipa 🙏 asante\"}".as_bytes();
        let header = sign(SECRET, body);
        assert!(verify_signature(SECRET, body, Some(&header)));
        assert!(!verify_signature(b"other", body, Some(&header)));
        assert!(!verify_signature(SECRET, b"{\"text\":\"Nimelipa \\ud83d\\ude4f asante\"}", Some(&header)));
        assert!(!verify_signature(SECRET, body, None));
        assert!(!verify_signature(SECRET, body, Some("sha256=zz")));
        assert!(!verify_signature(SECRET, body, Some(header.trim_start_matches("sha256="))));
        assert!(!verify_signature(SECRET, body, Some("sha256=")));
    }

    #[test]
    fn the_handshake_echoes_the_challenge_only_for_the_right_token() {
        assert_eq!(verify_handshake(Some("subscribe"), Some("tok"), Some("123"), "tok").as_deref(), Some("123"));
        assert_eq!(verify_handshake(Some("subscribe"), Some("bad"), Some("123"), "tok"), None);
        assert_eq!(verify_handshake(Some("unsubscribe"), Some("tok"), Some("123"), "tok"), None);
        assert_eq!(verify_handshake(Some("subscribe"), None, Some("123"), "tok"), None);
        assert_eq!(verify_handshake(Some("subscribe"), Some(""), Some("123"), ""), None);
    }

    fn msg(extra: Value) -> Value {
        let mut m = json!({"from": "254712345678", "id": "wamid.A", "timestamp": "1767225600"});
        m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        m
    }

    fn one(m: Value) -> Content {
        let body = envelope("1", json!({"contacts": [{"profile": {"name": "Wanjiku"}, "wa_id": "254712345678"}], "messages": [m]}));
        let events = parse_webhook(body.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        match events.into_iter().next().unwrap() {
            WebhookEvent::Message(m) => {
                assert_eq!(m.profile_name.as_deref(), Some("Wanjiku"));
                m.content
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_incoming_type_is_parsed() {
        assert_eq!(one(msg(json!({"type": "text", "text": {"body": "Nataka kulipa"}}))), Content::Text { body: "Nataka kulipa".into() });
        assert_eq!(
            one(msg(json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Ndiyo"}}}))),
            Content::ButtonReply { id: "yes".into(), title: "Ndiyo".into() }
        );
        assert_eq!(
            one(msg(json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "inv-1", "title": "INV-1", "description": "KES 2,500"}}}))),
            Content::ListReply { id: "inv-1".into(), title: "INV-1".into(), description: Some("KES 2,500".into()) }
        );
        assert_eq!(
            one(msg(json!({"type": "button", "button": {"payload": "PAY:INV-102", "text": "Pay now"}, "context": {"from": "254700000000", "id": "wamid.T"}}))),
            Content::TemplateButton { payload: "PAY:INV-102".into(), text: "Pay now".into() }
        );
        for kind in ["image", "audio", "document", "sticker", "video"] {
            let c = one(msg(json!({"type": kind, kind: {"id": "media-1", "mime_type": "image/jpeg", "sha256": "x", "caption": "risiti"}})));
            assert_eq!(c, Content::Media { kind: kind.into(), id: "media-1".into(), mime_type: Some("image/jpeg".into()), caption: Some("risiti".into()) });
        }
        assert_eq!(
            one(msg(json!({"type": "location", "location": {"latitude": -1.2921, "longitude": 36.8219, "name": "Nairobi"}}))),
            Content::Location { latitude: -1.2921, longitude: 36.8219, name: Some("Nairobi".into()) }
        );
        assert_eq!(
            one(msg(json!({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}))),
            Content::Reaction { message_id: "wamid.X".into(), emoji: "👍".into() }
        );
        assert_eq!(
            one(msg(json!({"type": "system", "system": {"body": "User changed number", "type": "user_changed_number"}}))),
            Content::System { body: "User changed number".into() }
        );
        assert_eq!(one(msg(json!({"type": "unsupported", "errors": [{"code": 131051}]}))), Content::Unsupported { code: Some(131051) });
    }

    #[test]
    fn context_and_timestamp_are_read() {
        let body = envelope("1", json!({"messages": [msg(json!({"type": "button", "button": {"payload": "P", "text": "T"}, "context": {"id": "wamid.T"}}))]}));
        let WebhookEvent::Message(m) = parse_webhook(body.to_string().as_bytes()).unwrap().remove(0) else { panic!() };
        assert_eq!(m.context_id.as_deref(), Some("wamid.T"));
        assert_eq!(m.timestamp.timestamp(), 1_767_225_600);
        assert_eq!(m.profile_name, None);
    }

    #[test]
    fn statuses_are_parsed_with_their_errors() {
        let body = envelope(
            "1",
            json!({"statuses": [
                {"id": "wamid.1", "status": "delivered", "timestamp": "1767225601", "recipient_id": "254712345678"},
                {"id": "wamid.2", "status": "failed", "timestamp": "1767225602", "recipient_id": "254712345678", "biz_opaque_callback_data": "k1",
                 "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message", "error_data": {"details": "more than 24 hours"}}]},
                {"id": "wamid.3", "status": "deleted", "timestamp": "1767225603", "recipient_id": "254712345678"}
            ]}),
        );
        let events = parse_webhook(body.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        let WebhookEvent::Status(failed) = &events[1] else { panic!() };
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert_eq!(failed.errors[0].code, 131047);
        assert_eq!(failed.errors[0].details.as_deref(), Some("more than 24 hours"));
        assert_eq!(failed.callback_data.as_deref(), Some("k1"));
        assert_eq!(events[1].external_id(), "wamid.2:failed");
    }

    #[test]
    fn batches_are_split_across_entries_and_changes() {
        let m = |id: &str| msg(json!({"id": id, "type": "text", "text": {"body": "x"}}));
        let body = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [{"field": "messages", "value": {"messages": [m("a"), m("b")]}},
                                    {"field": "messages", "value": {"statuses": [{"id": "w", "status": "sent", "timestamp": "1", "recipient_id": "254712345678"}]}}]},
            {"id": "2", "changes": [{"field": "account_update", "value": {"event": "x"}}, {"field": "messages", "value": {"messages": [m("c")]}}]}
        ]});
        let ids: Vec<String> = parse_webhook(body.to_string().as_bytes()).unwrap().iter().map(WebhookEvent::external_id).collect();
        assert_eq!(ids, ["a", "b", "w:sent", "c"]);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(matches!(parse_webhook(b"{not json"), Err(ParseError::Json(_))));
        assert!(matches!(parse_webhook(b"[1,2]"), Err(ParseError::Shape(_))));
        assert!(matches!(parse_webhook(b"{\"object\":\"x\"}"), Err(ParseError::Shape(_))));
        let no_id = envelope("1", json!({"messages": [{"from": "2547", "timestamp": "1", "type": "text", "text": {"body": "x"}}]}));
        assert!(matches!(parse_webhook(no_id.to_string().as_bytes()), Err(ParseError::Shape(_))));
        let bad_ts = envelope("1", json!({"messages": [{"id": "a", "from": "2547", "timestamp": "yesterday", "type": "text", "text": {"body": "x"}}]}));
        assert!(parse_webhook(bad_ts.to_string().as_bytes()).is_err());
    }

    #[test]
    fn events_round_trip_through_the_store_format() {
        let body = envelope("1", json!({"messages": [msg(json!({"type": "location", "location": {"latitude": 1.5, "longitude": 2.5}}))]}));
        let ev = parse_webhook(body.to_string().as_bytes()).unwrap().remove(0);
        let back: WebhookEvent = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
        assert_eq!(back, ev);
    }
}
