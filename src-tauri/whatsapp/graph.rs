//! The Graph API client: what Malipo sends, WhatsApp's limits checked before any network call, and
//! error codes mapped to what to do about them (keyed on `code`, never on HTTP status or text).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::Msisdn;
use crate::secrets::Secret;

/// WhatsApp's limits (Meta's reference; checked before sending).
pub mod limits {
    pub const TEXT_BODY: usize = 4096;
    pub const BUTTON_BODY: usize = 1024;
    pub const FOOTER: usize = 60;
    pub const BUTTONS_MAX: usize = 3;
    pub const BUTTON_ID: usize = 256;
    pub const BUTTON_TITLE: usize = 20;
    pub const LIST_BODY: usize = 4096;
    pub const LIST_BUTTON: usize = 20;
    pub const SECTION_TITLE: usize = 24;
    pub const SECTIONS_MAX: usize = 10;
    pub const ROW_ID: usize = 200;
    pub const ROW_TITLE: usize = 24;
    pub const ROW_DESCRIPTION: usize = 72;
    pub const ROWS_MAX: usize = 10;
    pub const TEMPLATE_NAME: usize = 512;
    pub const TEMPLATE_PARAM: usize = 1024;
    pub const PAYLOAD: usize = 256;
    pub const QUICK_REPLIES_MAX: usize = 10;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListSection {
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundMessage {
    Text { body: String },
    Buttons { body: String, footer: Option<String>, buttons: Vec<ReplyButton> },
    List { body: String, button: String, sections: Vec<ListSection> },
    /// An approved template: `body_params` fill {{1}}…{{n}}; `quick_reply_payloads[i]` is the payload
    /// of the template's i-th quick-reply button.
    Template { name: String, language: String, body_params: Vec<String>, quick_reply_payloads: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} has {len} characters; WhatsApp allows at most {max}")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error("{field}: {count} given; WhatsApp allows {min} to {max}")]
    Count { field: &'static str, count: usize, min: usize, max: usize },
    #[error("button ids must be unique; {0:?} is repeated")]
    DuplicateId(String),
}

fn check_len(field: &'static str, s: &str, max: usize) -> Result<(), LimitError> {
    let len = s.chars().count();
    if len == 0 {
        return Err(LimitError::Empty { field });
    }
    if len > max {
        return Err(LimitError::TooLong { field, len, max });
    }
    Ok(())
}

fn check_count(field: &'static str, count: usize, min: usize, max: usize) -> Result<(), LimitError> {
    if count < min || count > max {
        return Err(LimitError::Count { field, count, min, max });
    }
    Ok(())
}

impl OutboundMessage {
    pub fn text(body: impl Into<String>) -> Self {
        OutboundMessage::Text { body: body.into() }
    }

    /// `text`, `interactive` or `template`, for the outbox's kind column.
    pub fn kind(&self) -> &'static str {
        match self {
            OutboundMessage::Text { .. } => "text",
            OutboundMessage::Buttons { .. } => "buttons",
            OutboundMessage::List { .. } => "list",
            OutboundMessage::Template { .. } => "template",
        }
    }

    pub fn is_template(&self) -> bool {
        matches!(self, OutboundMessage::Template { .. })
    }

    /// WhatsApp's length and count limits, checked before anything reaches the network.
    pub fn validate(&self) -> Result<(), LimitError> {
        use limits::*;
        match self {
            OutboundMessage::Text { body } => check_len("text body", body, TEXT_BODY),
            OutboundMessage::Buttons { body, footer, buttons } => {
                check_len("button message body", body, BUTTON_BODY)?;
                if let Some(f) = footer {
                    check_len("footer", f, FOOTER)?;
                }
                check_count("reply buttons", buttons.len(), 1, BUTTONS_MAX)?;
                let mut seen = std::collections::HashSet::new();
                for b in buttons {
                    check_len("button id", &b.id, BUTTON_ID)?;
                    check_len("button title", &b.title, BUTTON_TITLE)?;
                    if !seen.insert(b.id.as_str()) {
                        return Err(LimitError::DuplicateId(b.id.clone()));
                    }
                }
                Ok(())
            }
            OutboundMessage::List { body, button, sections } => {
                check_len("list body", body, LIST_BODY)?;
                check_len("list button", button, LIST_BUTTON)?;
                check_count("list sections", sections.len(), 1, SECTIONS_MAX)?;
                let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
                check_count("list rows in all", rows, 1, ROWS_MAX)?;
                let mut seen = std::collections::HashSet::new();
                for s in sections {
                    if sections.len() > 1 || s.title.is_some() {
                        check_len("section title", s.title.as_deref().unwrap_or(""), SECTION_TITLE)?;
                    }
                    check_count("rows in a section", s.rows.len(), 1, ROWS_MAX)?;
                    for r in &s.rows {
                        check_len("row id", &r.id, ROW_ID)?;
                        check_len("row title", &r.title, ROW_TITLE)?;
                        if let Some(d) = &r.description {
                            check_len("row description", d, ROW_DESCRIPTION)?;
                        }
                        if !seen.insert(r.id.as_str()) {
                            return Err(LimitError::DuplicateId(r.id.clone()));
                        }
                    }
                }
                Ok(())
            }
            OutboundMessage::Template { name, language, body_params, quick_reply_payloads } => {
                check_len("template name", name, TEMPLATE_NAME)?;
                check_len("template language", language, 15)?;
                for p in body_params {
                    check_len("template parameter", p, TEMPLATE_PARAM)?;
                }
                check_count("quick-reply payloads", quick_reply_payloads.len(), 0, QUICK_REPLIES_MAX)?;
                for p in quick_reply_payloads {
                    check_len("quick-reply payload", p, PAYLOAD)?;
                }
                Ok(())
            }
        }
    }

    /// The `type` and its object of the Graph API send body.
    pub fn to_graph(&self) -> (&'static str, Value) {
        match self {
            OutboundMessage::Text { body } => ("text", json!({ "body": body, "preview_url": false })),
            OutboundMessage::Buttons { body, footer, buttons } => {
                let mut i = json!({
                    "type": "button",
                    "body": { "text": body },
                    "action": { "buttons": buttons.iter().map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}})).collect::<Vec<_>>() }
                });
                if let Some(f) = footer {
                    i["footer"] = json!({ "text": f });
                }
                ("interactive", i)
            }
            OutboundMessage::List { body, button, sections } => (
                "interactive",
                json!({
                    "type": "list",
                    "body": { "text": body },
                    "action": {
                        "button": button,
                        "sections": sections.iter().map(|s| {
                            let mut sec = json!({ "rows": s.rows.iter().map(|r| {
                                let mut row = json!({"id": r.id, "title": r.title});
                                if let Some(d) = &r.description { row["description"] = json!(d); }
                                row
                            }).collect::<Vec<_>>() });
                            if let Some(t) = &s.title { sec["title"] = json!(t); }
                            sec
                        }).collect::<Vec<_>>()
                    }
                }),
            ),
            OutboundMessage::Template { name, language, body_params, quick_reply_payloads } => {
                let mut components = Vec::new();
                if !body_params.is_empty() {
                    components.push(json!({
                        "type": "body",
                        "parameters": body_params.iter().map(|p| json!({"type": "text", "text": p})).collect::<Vec<_>>()
                    }));
                }
                for (i, payload) in quick_reply_payloads.iter().enumerate() {
                    components.push(json!({
                        "type": "button", "sub_type": "quick_reply", "index": i.to_string(),
                        "parameters": [{ "type": "payload", "payload": payload }]
                    }));
                }
                ("template", json!({ "name": name, "language": { "code": language }, "components": components }))
            }
        }
    }

    /// A readable line for the conversation log and the simulated phone.
    pub fn preview(&self) -> String {
        match self {
            OutboundMessage::Text { body } => body.clone(),
            OutboundMessage::Buttons { body, buttons, .. } => {
                format!("{body} {}", buttons.iter().map(|b| format!("[{}]", b.title)).collect::<Vec<_>>().join(" "))
            }
            OutboundMessage::List { body, button, .. } => format!("{body} [{button}]"),
            OutboundMessage::Template { name, language, body_params, .. } => {
                crate::whatsapp::templates::render_default(name, language, body_params)
                    .unwrap_or_else(|| format!("[template {name} ({language})] {}", body_params.join(" · ")))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// `https://graph.facebook.com`, or the simulator's loopback URL.
    pub base_url: String,
    pub api_version: String,
    pub phone_number_id: String,
    pub token: Secret,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    #[error("WhatsApp error {code}: {message}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Api { code: i64, message: String, details: Option<String> },
    /// No answer in time: the request may or may not have been accepted.
    #[error("WhatsApp did not answer in time")]
    Timeout,
    /// The request never reached WhatsApp (connection refused, DNS): safe to retry.
    #[error("cannot reach WhatsApp: {0}")]
    Connect(String),
    /// Something else went wrong on the way: the request may have been accepted.
    #[error("WhatsApp transport error: {0}")]
    Transport(String),
    #[error("not sent: {0}")]
    Limit(#[from] LimitError),
}

/// What to do about an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorAction {
    Retry { after: Duration },
    /// 131047: outside the 24-hour window; send an approved template instead.
    UseTemplate,
    /// Stop sending and tell the merchant why.
    PauseAndAlert { reason: String },
    /// 131026: the number cannot receive WhatsApp messages.
    Undeliverable,
    /// 131050: the user stopped these messages.
    RespectOptOut,
    /// 131051: unsupported message type.
    AskForText,
    /// The message itself is wrong and will never be accepted as it is.
    Drop { reason: String },
}

impl GraphError {
    pub fn code(&self) -> Option<i64> {
        match self {
            GraphError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the request may have been accepted although no wamid came back.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, GraphError::Timeout | GraphError::Transport(_))
    }

    pub fn action(&self) -> ErrorAction {
        match self {
            GraphError::Api { code, message, .. } => action_for_code(*code, message),
            GraphError::Timeout | GraphError::Transport(_) | GraphError::Connect(_) => ErrorAction::Retry { after: Duration::from_secs(2) },
            GraphError::Limit(e) => ErrorAction::Drop { reason: e.to_string() },
        }
    }
}

/// The reference table, keyed on the code alone.
pub fn action_for_code(code: i64, message: &str) -> ErrorAction {
    let pause = |what: &str| ErrorAction::PauseAndAlert { reason: format!("WhatsApp error {code}: {what}") };
    match code {
        0 | 190 => pause("the access token is invalid or expired; save a new WhatsApp token"),
        368 => pause("the account is temporarily blocked for policy violations"),
        132000 => pause("a template's parameter count does not match the approved template"),
        132001 => pause("a template does not exist or is not approved in that language"),
        132015 => pause("a template is paused"),
        132016 => pause("a template is disabled"),
        100 => pause(&format!("invalid parameter ({message})")),
        10 => pause("permission denied; check the token's WhatsApp permissions"),
        4 | 130429 => ErrorAction::Retry { after: Duration::from_secs(1) },
        131056 => ErrorAction::Retry { after: Duration::from_secs(4) },
        131047 => ErrorAction::UseTemplate,
        131026 => ErrorAction::Undeliverable,
        131050 => ErrorAction::RespectOptOut,
        131051 => ErrorAction::AskForText,
        // Meta's "service unavailable"/"temporary" family and anything unknown: retry with backoff.
        _ => ErrorAction::Retry { after: Duration::from_secs(5) },
    }
}

/// Options of one send beyond the message itself.
#[derive(Debug, Clone, Default)]
pub struct SendOptions<'a> {
    /// The wamid this message replies to (`context.message_id`).
    pub reply_to: Option<&'a str>,
    /// Echoed in every status webhook of this message as `biz_opaque_callback_data` (≤ 512 chars).
    pub callback_data: Option<&'a str>,
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    messages_url: String,
    token: Secret,
}

impl GraphClient {
    pub fn new(settings: GraphSettings) -> Self {
        Self::with_timeout(settings, Duration::from_secs(15))
    }

    pub fn with_timeout(settings: GraphSettings, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("the HTTP client builds");
        let base = settings.base_url.trim_end_matches('/');
        GraphClient {
            http,
            messages_url: format!("{base}/{}/{}/messages", settings.api_version, settings.phone_number_id),
            token: settings.token,
        }
    }

    /// Sends one message; `Ok(wamid)` means accepted, not delivered.
    pub async fn send(&self, to: &Msisdn, msg: &OutboundMessage, reply_to: Option<&str>) -> Result<String, GraphError> {
        self.send_with(to, msg, &SendOptions { reply_to, callback_data: None }).await
    }

    pub async fn send_with(&self, to: &Msisdn, msg: &OutboundMessage, opts: &SendOptions<'_>) -> Result<String, GraphError> {
        msg.validate()?;
        let (kind, object) = msg.to_graph();
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.as_str(),
            "type": kind,
            kind: object,
        });
        if let Some(id) = opts.reply_to {
            body["context"] = json!({ "message_id": id });
        }
        if let Some(data) = opts.callback_data {
            body["biz_opaque_callback_data"] = json!(data);
        }
        let answer = self.post(&body).await?;
        answer
            .pointer("/messages/0/id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| GraphError::Transport("the answer has no messages[0].id".into()))
    }

    /// Marks an incoming message as read (blue ticks).
    pub async fn mark_read(&self, wamid: &str) -> Result<(), GraphError> {
        let answer = self.post(&json!({ "messaging_product": "whatsapp", "status": "read", "message_id": wamid })).await?;
        match answer.get("success").and_then(Value::as_bool) {
            Some(true) => Ok(()),
            _ => Err(GraphError::Transport("mark-read was not acknowledged".into())),
        }
    }

    async fn post(&self, body: &Value) -> Result<Value, GraphError> {
        let response = self.http.post(&self.messages_url).bearer_auth(self.token.expose()).json(body).send().await.map_err(map_reqwest)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(map_reqwest)?;
        let value: Option<Value> = serde_json::from_slice(&bytes).ok();
        if let Some(err) = value.as_ref().and_then(|v| v.get("error")) {
            return Err(GraphError::Api {
                code: err.get("code").and_then(Value::as_i64).unwrap_or(-1),
                message: err.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
                details: err.pointer("/error_data/details").and_then(Value::as_str).map(str::to_string),
            });
        }
        match value {
            Some(v) if status.is_success() => Ok(v),
            _ => Err(GraphError::Transport(format!("HTTP {status} without a Graph API answer"))),
        }
    }
}

fn map_reqwest(e: reqwest::Error) -> GraphError {
    if e.is_timeout() {
        GraphError::Timeout
    } else if e.is_connect() {
        GraphError::Connect(e.to_string())
    } else {
        GraphError::Transport(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buttons(titles: &[&str]) -> OutboundMessage {
        OutboundMessage::Buttons {
            body: "Lipa KES 2,500 kwa INV-1042?".into(),
            footer: None,
            buttons: titles.iter().enumerate().map(|(i, t)| ReplyButton { id: format!("b{i}"), title: t.to_string() }).collect(),
        }
    }

    #[test]
    fn limits_are_enforced() {
        assert!(OutboundMessage::text("a".repeat(4096)).validate().is_ok());
        assert!(matches!(OutboundMessage::text("a".repeat(4097)).validate(), Err(LimitError::TooLong { max: 4096, .. })));
        assert!(matches!(OutboundMessage::text("").validate(), Err(LimitError::Empty { .. })));
        assert!(buttons(&["Ndiyo", "Hapana"]).validate().is_ok());
        assert!(buttons(&[&"x".repeat(20)]).validate().is_ok());
        assert!(matches!(buttons(&[&"x".repeat(21)]).validate(), Err(LimitError::TooLong { field: "button title", .. })));
        assert!(matches!(buttons(&[]).validate(), Err(LimitError::Count { .. })));
        assert!(matches!(buttons(&["a", "b", "c", "d"]).validate(), Err(LimitError::Count { .. })));
        let dup = OutboundMessage::Buttons {
            body: "x".into(),
            footer: Some("f".repeat(61)),
            buttons: vec![ReplyButton { id: "a".into(), title: "A".into() }],
        };
        assert!(matches!(dup.validate(), Err(LimitError::TooLong { field: "footer", .. })));
        let dup = OutboundMessage::Buttons {
            body: "x".into(),
            footer: None,
            buttons: vec![ReplyButton { id: "a".into(), title: "A".into() }, ReplyButton { id: "a".into(), title: "B".into() }],
        };
        assert_eq!(dup.validate(), Err(LimitError::DuplicateId("a".into())));
        // Characters, not bytes: 20 Swahili-and-emoji characters fit.
        assert!(buttons(&["Lipa sasa 🙏🙏🙏🙏🙏🙏🙏🙏🙏🙏"]).validate().is_ok());
    }

    #[test]
    fn list_limits_count_rows_in_all_sections() {
        let row = |i: usize| ListRow { id: format!("r{i}"), title: format!("INV-{i}"), description: Some("KES 2,500".into()) };
        let list = |n: usize, per: usize| OutboundMessage::List {
            body: "Chagua ankara".into(),
            button: "Ankara".into(),
            sections: (0..n).map(|s| ListSection { title: Some(format!("S{s}")), rows: (0..per).map(|r| row(s * 100 + r)).collect() }).collect(),
        };
        assert!(list(2, 5).validate().is_ok());
        assert!(matches!(list(2, 6).validate(), Err(LimitError::Count { field: "list rows in all", .. })));
        let long_desc = OutboundMessage::List {
            body: "b".into(),
            button: "x".into(),
            sections: vec![ListSection { title: None, rows: vec![ListRow { id: "a".into(), title: "t".into(), description: Some("d".repeat(73)) }] }],
        };
        assert!(matches!(long_desc.validate(), Err(LimitError::TooLong { field: "row description", .. })));
    }

    #[test]
    fn templates_serialise_like_the_reference() {
        let t = OutboundMessage::Template {
            name: "malipo_payment_reminder".into(),
            language: "en".into(),
            body_params: vec!["Wanjiku".into(), "KES 2,500".into()],
            quick_reply_payloads: vec!["PAY:INV-102".into()],
        };
        let (kind, v) = t.to_graph();
        assert_eq!(kind, "template");
        assert_eq!(v["language"]["code"], "en");
        assert_eq!(v["components"][0]["parameters"][1]["text"], "KES 2,500");
        assert_eq!(v["components"][1]["sub_type"], "quick_reply");
        assert_eq!(v["components"][1]["index"], "0");
        assert_eq!(v["components"][1]["parameters"][0]["payload"], "PAY:INV-102");
    }

    #[test]
    fn actions_follow_the_code_table() {
        for code in [0, 190, 368, 132000, 132001, 132015, 132016, 100, 10] {
            assert!(matches!(action_for_code(code, ""), ErrorAction::PauseAndAlert { .. }), "{code}");
        }
        assert!(matches!(action_for_code(130429, ""), ErrorAction::Retry { .. }));
        assert!(matches!(action_for_code(4, ""), ErrorAction::Retry { .. }));
        assert!(matches!(action_for_code(131056, ""), ErrorAction::Retry { .. }));
        assert_eq!(action_for_code(131047, ""), ErrorAction::UseTemplate);
        assert_eq!(action_for_code(131026, ""), ErrorAction::Undeliverable);
        assert_eq!(action_for_code(131050, ""), ErrorAction::RespectOptOut);
        assert_eq!(action_for_code(131051, ""), ErrorAction::AskForText);
        // The message text is never what decides.
        assert_eq!(action_for_code(131047, "Invalid OAuth access token"), ErrorAction::UseTemplate);
    }
}
