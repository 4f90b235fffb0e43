//! What travels between `malipo relay` and the desktop, and how a WhatsApp batch is cut into one
//! webhook per event so each is deduplicated and acknowledged on its own. Pure: no I/O.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::whatsapp::webhook::{parse_webhook_raw, ParseError};

/// The sources an event can come from; the first three are the desktop's `inbound_events` sources.
pub const WHATSAPP: &str = "whatsapp";
pub const DARAJA_STK: &str = "daraja_stk";
pub const DARAJA_C2B: &str = "daraja_c2b";
/// The "Test inbound" button's round trip; never handed to the pull worker.
pub const SELF_TEST: &str = "relay_test";

/// The pull API, authenticated with `Authorization: Bearer <relay key>`.
pub const EVENTS_PATH: &str = "/relay/v1/events";
pub const ACK_PATH: &str = "/relay/v1/ack";
pub const TEST_PATH: &str = "/relay/v1/test";

/// A long poll waits at most this long, well inside common proxy read timeouts (60 s).
pub const MAX_WAIT_SECONDS: u64 = 30;
/// Events handed over in one pull.
pub const MAX_BATCH: usize = 100;

/// One stored webhook, as the desktop receives it: the body exactly as the direct route would get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayEvent {
    pub id: i64,
    pub source: String,
    pub external_id: String,
    pub received_at: String,
    pub body: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pulled {
    pub events: Vec<RelayEvent>,
}

/// `GET /relay/v1/events?wait=SECONDS&test=BOOL`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PullQuery {
    #[serde(default)]
    pub wait: u64,
    /// Only the self-test's events (the button) instead of only real ones (the worker).
    #[serde(default)]
    pub test: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    pub ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Acked {
    pub acked: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SelfTest {
    pub nonce: String,
}

/// The webhook URLs on a public address, for Meta's and Daraja's settings. The Daraja ones carry the
/// path token: keep them private.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookUrls {
    pub whatsapp: String,
    pub stk_callback: String,
    pub c2b_confirmation: String,
    pub c2b_validation: String,
}

impl WebhookUrls {
    pub fn new(base: &str, path_token: &str) -> Self {
        let base = base.trim_end_matches('/');
        let c2b = format!("{base}/webhooks/daraja/c2b/{path_token}");
        WebhookUrls {
            whatsapp: format!("{base}/webhooks/whatsapp"),
            stk_callback: format!("{base}/webhooks/daraja/stk/{path_token}"),
            c2b_confirmation: format!("{c2b}/confirmation"),
            c2b_validation: format!("{c2b}/validation"),
        }
    }
}

/// One event of a WhatsApp webhook, re-wrapped as a webhook of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SingleEvent {
    pub external_id: String,
    pub body: String,
}

/// Cuts a (verified) WhatsApp webhook into one webhook per message or status, keeping each change's
/// metadata and the message's contact, so the desktop parses each exactly as it would the batch.
/// Changes that carry no events (account updates, template reviews) give nothing.
pub fn split_whatsapp(body: &[u8]) -> Result<Vec<SingleEvent>, ParseError> {
    parse_webhook_raw(body)?;
    let root: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    let mut out = Vec::new();
    for entry in root["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            if change.get("field").and_then(Value::as_str).is_some_and(|f| f != "messages") {
                continue;
            }
            let Some(value) = change["value"].as_object() else { continue };
            for piece in single_values(value) {
                let webhook = json!({"object": root["object"], "entry": [{"id": entry["id"], "changes": [{"field": "messages", "value": piece}]}]});
                let text = webhook.to_string();
                // Parsed again, so the id is the one the desktop will dedupe on.
                for parsed in parse_webhook_raw(text.as_bytes())? {
                    out.push(SingleEvent { external_id: parsed.event.external_id(), body: text.clone() });
                }
            }
        }
    }
    Ok(out)
}

/// A change's value once per message (with that sender's contact) and once per status.
fn single_values(value: &Map<String, Value>) -> Vec<Value> {
    let mut base = value.clone();
    let (messages, statuses, contacts) = (base.remove("messages"), base.remove("statuses"), base.remove("contacts"));
    let contacts = contacts.and_then(|c| c.as_array().cloned()).unwrap_or_default();
    let with = |key: &str, item: &Value, contact: Option<&Value>| {
        let mut v = base.clone();
        if let Some(c) = contact {
            v.insert("contacts".into(), json!([c]));
        }
        v.insert(key.into(), json!([item]));
        Value::Object(v)
    };
    let mut pieces = Vec::new();
    for m in messages.as_ref().and_then(Value::as_array).into_iter().flatten() {
        // The parser takes the contact whose wa_id is the sender's, else the first one.
        let contact = contacts.iter().find(|c| c["wa_id"] == m["from"]).or(contacts.first());
        pieces.push(with("messages", m, contact));
    }
    for s in statuses.as_ref().and_then(Value::as_array).into_iter().flatten() {
        pieces.push(with("statuses", s, None));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::webhook::{envelope, parse_webhook};

    fn text(from: &str, id: &str, body: &str) -> Value {
        json!({"from": from, "id": id, "timestamp": "1764838800", "type": "text", "text": {"body": body}})
    }

    #[test]
    fn a_batch_becomes_one_webhook_per_event_that_parses_to_the_same_event() {
        let batch = envelope(
            "100000000000001",
            json!({
                "contacts": [{"profile": {"name": "Wanjiku"}, "wa_id": "254712345678"}, {"profile": {"name": "Otieno"}, "wa_id": "254722000111"}],
                "messages": [text("254712345678", "wamid.A", "Nataka kulipa"), text("254722000111", "wamid.B", "Nimelipa")],
                "statuses": [{"id": "wamid.OUT", "status": "delivered", "timestamp": "1764838801", "recipient_id": "254712345678"}]
            }),
        )
        .to_string();
        let pieces = split_whatsapp(batch.as_bytes()).unwrap();
        let ids: Vec<_> = pieces.iter().map(|p| p.external_id.as_str()).collect();
        assert_eq!(ids, ["wamid.A", "wamid.B", "wamid.OUT:delivered"]);
        let together: Vec<_> = pieces.iter().flat_map(|p| parse_webhook(p.body.as_bytes()).unwrap()).collect();
        assert_eq!(together, parse_webhook(batch.as_bytes()).unwrap(), "same events, same profile names");
        assert!(pieces[1].body.contains("Otieno") && !pieces[1].body.contains("Wanjiku"));
        assert!(pieces[0].body.contains("phone_number_id"), "metadata kept");
    }

    #[test]
    fn webhook_urls_follow_the_contract_paths() {
        let urls = WebhookUrls::new("https://relay.example.co.ke/", "abc");
        assert_eq!(urls.whatsapp, "https://relay.example.co.ke/webhooks/whatsapp");
        assert_eq!(urls.stk_callback, "https://relay.example.co.ke/webhooks/daraja/stk/abc");
        assert_eq!(urls.c2b_confirmation, "https://relay.example.co.ke/webhooks/daraja/c2b/abc/confirmation");
        assert_eq!(urls.c2b_validation, "https://relay.example.co.ke/webhooks/daraja/c2b/abc/validation");
    }

    #[test]
    fn changes_without_events_give_nothing_and_bad_bodies_are_refused() {
        let update = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {"event": "x"}}]}]});
        assert!(split_whatsapp(update.to_string().as_bytes()).unwrap().is_empty());
        assert!(split_whatsapp(b"not json").is_err());
        assert!(split_whatsapp(b"{\"entry\": 3}").is_err());
    }
}
