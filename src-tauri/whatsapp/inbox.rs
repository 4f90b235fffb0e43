//! The durable inbox. The webhook route stores every event before it answers 200; this module
//! processes the stored events afterwards, oldest first, in order per customer. An event that fails is
//! retried with backoff (it blocks only that customer's later events); one that keeps failing is
//! parked for the merchant instead of being dropped.
//!
//! Default processing of a customer message, before the pluggable handler (the payment agent):
//! find or create the customer by phone, record the message (redacted: see `Redactor`), refresh the
//! 24-hour window, mark it read; STOP forms opt out at once with one confirmation; media and
//! unsupported messages get a polite "please type" reply. Statuses update the message's delivery
//! status, resolving out-of-order arrivals (see `DeliveryStatus::rank`).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use super::graph::{action_for_code, ErrorAction, GraphClient, OutboundMessage};
use super::outbox::{self, ensure_conversation, opt_out_customer, Outgoing};
use super::optout;
use super::webhook::{Content, DeliveryStatus, InboundMessage, StatusUpdate, WebhookEvent};
use super::window;
use crate::clock::SharedClock;
use crate::domain::Msisdn;
use crate::store::{self, parse_ts, ts, Store, StoreError};

pub const SOURCE: &str = "whatsapp";

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where customer messages go after default processing (the payment agent plugs in here). Called
/// again if it fails (the event is retried), so it must tolerate seeing a message twice.
pub trait InboundHandler: Send + Sync + 'static {
    fn handle<'a>(&'a self, msg: &'a InboundMessage, customer_id: i64) -> BoxFuture<'a, Result<(), String>>;
}

/// No agent: messages are recorded and acknowledged only.
pub struct NoHandler;

impl InboundHandler for NoHandler {
    fn handle<'a>(&'a self, _: &'a InboundMessage, _: i64) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Rewrites a message body before it is stored. THE HOOK FOR PIN REDACTION: the agent issue installs
/// a redactor that removes PIN-like digits; until then bodies are stored as received.
pub type Redactor = Arc<dyn Fn(&str) -> String + Send + Sync>;

pub fn no_redaction() -> Redactor {
    Arc::new(|s: &str| s.to_string())
}

/// The reply to media and unsupported messages, in English and Swahili.
pub const PLEASE_TYPE: &str = "Sorry, I can only read text messages. Please type your message.\nSamahani, ninaweza kusoma ujumbe wa maandishi pekee. Tafadhali andika ujumbe wako.";

/// How a stored event looks in `inbound_events.payload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event: WebhookEvent,
    pub raw: Value,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProcessReport {
    pub processed: usize,
    pub failed: usize,
    pub parked: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Inbox {
    store: Store,
    graph: GraphClient,
    clock: SharedClock,
    handler: Arc<dyn InboundHandler>,
    redact: Redactor,
    outbox_wake: Arc<Notify>,
    merchant_name: String,
    max_attempts: u32,
    mark_read: bool,
}

impl Inbox {
    pub fn new(store: Store, graph: GraphClient, clock: SharedClock) -> Self {
        Inbox {
            store,
            graph,
            clock,
            handler: Arc::new(NoHandler),
            redact: no_redaction(),
            outbox_wake: Arc::new(Notify::new()),
            merchant_name: "the shop".into(),
            // With the backoff below (2 s doubling to 10 min), about two hours of retries.
            max_attempts: 20,
            mark_read: true,
        }
    }

    pub fn with_handler(mut self, handler: Arc<dyn InboundHandler>) -> Self {
        self.handler = handler;
        self
    }

    pub fn with_redactor(mut self, redact: Redactor) -> Self {
        self.redact = redact;
        self
    }

    /// The outbox worker's `Notify`, woken when processing enqueues a reply.
    pub fn with_outbox_wake(mut self, wake: Arc<Notify>) -> Self {
        self.outbox_wake = wake;
        self
    }

    pub fn with_merchant_name(mut self, name: impl Into<String>) -> Self {
        self.merchant_name = name.into();
        self
    }

    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Whether to send read receipts (on by default).
    pub fn with_mark_read(mut self, on: bool) -> Self {
        self.mark_read = on;
        self
    }

    pub async fn process_pending(&self) -> Result<ProcessReport, InboxError> {
        process_pending(self).await
    }

    /// Processes until `shutdown` resolves: woken by `wake` (the webhook route) and at least once a second.
    pub async fn run(self, wake: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.process_pending().await {
                tracing::error!(error = %e, "inbox processing");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = wake.notified() => {},
                _ = tokio::time::sleep(Duration::from_secs(1)) => {},
            }
        }
    }

    async fn process_one(&self, id: i64, payload: &str) -> Result<(), String> {
        let stored: StoredEvent = serde_json::from_str(payload).map_err(|e| format!("stored event is unreadable: {e}"))?;
        match stored.event {
            WebhookEvent::Status(s) => self.process_status(s).await,
            WebhookEvent::Message(m) => self.process_message(id, m, stored.raw).await,
        }
    }

    async fn process_status(&self, s: StatusUpdate) -> Result<(), String> {
        let now = self.clock.now();
        let woke = self.store.write_async(move |tx| apply_status(tx, &s, now)).await.map_err(|e| e.to_string())?;
        if woke {
            self.outbox_wake.notify_one();
        }
        Ok(())
    }

    async fn process_message(&self, event_id: i64, msg: InboundMessage, raw: Value) -> Result<(), String> {
        let Ok(phone) = Msisdn::parse(&msg.from) else {
            tracing::warn!("a WhatsApp message from a number outside Kenya, Tanzania and Uganda is kept in inbound_events but not handled");
            return Ok(());
        };
        let now = self.clock.now();
        let decision = {
            let (msg, phone, redact, merchant) = (msg.clone(), phone.clone(), self.redact.clone(), self.merchant_name.clone());
            self.store
                .write_async(move |tx| {
                    scrub_stored_event(tx, event_id, &msg, raw, &*redact)?;
                    record_message(tx, &msg, &phone, &*redact, &merchant, now)
                })
                .await
                .map_err(|e| e.to_string())?
        };
        if decision.enqueued {
            self.outbox_wake.notify_one();
        }
        if self.mark_read {
            if let Err(e) = self.graph.mark_read(&msg.id).await {
                tracing::warn!(error = %e, "could not mark a WhatsApp message read");
            }
        }
        if decision.call_handler {
            self.handler.handle(&msg, decision.customer_id).await?;
        }
        Ok(())
    }
}

/// Processes stored, unprocessed events in id order, per customer in order. A failing event is
/// retried later (with backoff) and holds back only its own customer's later events.
pub async fn process_pending(inbox: &Inbox) -> Result<ProcessReport, InboxError> {
    let mut report = ProcessReport::default();
    loop {
        let now = inbox.clock.now();
        let batch = inbox
            .store
            .read_async(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT e.id, e.ordering_key, e.payload, e.attempts FROM inbound_events e
                     WHERE e.processed_at IS NULL AND e.parked_at IS NULL AND e.source = ?1
                       AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= ?2)
                       AND NOT EXISTS (SELECT 1 FROM inbound_events b
                                       WHERE b.ordering_key = e.ordering_key AND b.id < e.id
                                         AND b.processed_at IS NULL AND b.parked_at IS NULL)
                     ORDER BY e.id LIMIT 500",
                )?;
                let rows = stmt.query_map((SOURCE, ts(now)), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, u32>(3)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        if batch.is_empty() {
            break;
        }
        let mut blocked: HashSet<String> = HashSet::new();
        let mut progress = 0;
        for (id, key, payload, attempts) in batch {
            if blocked.contains(&key) {
                continue;
            }
            match inbox.process_one(id, &payload).await {
                Ok(()) => {
                    let at = inbox.clock.now();
                    inbox
                        .store
                        .write_async(move |tx| Ok(tx.execute("UPDATE inbound_events SET processed_at = ?2, error = NULL WHERE id = ?1", (id, ts(at)))?))
                        .await?;
                    report.processed += 1;
                    progress += 1;
                }
                Err(error) => {
                    blocked.insert(key);
                    let attempts = attempts + 1;
                    let park = attempts >= inbox.max_attempts;
                    let at = inbox.clock.now();
                    let retry_at = at + chrono::Duration::seconds((1i64 << attempts.min(10)).min(600));
                    tracing::warn!(event = id, attempts, %error, park, "inbound event failed");
                    inbox
                        .store
                        .write_async(move |tx| {
                            tx.execute(
                                "UPDATE inbound_events SET attempts = ?2, error = ?3, next_attempt_at = ?4, parked_at = ?5 WHERE id = ?1",
                                (id, attempts, &error, ts(retry_at), park.then(|| ts(at))),
                            )?;
                            if park {
                                store::audit(tx, at, "whatsapp", "inbound_event_parked", &id.to_string(), &error)?;
                            }
                            Ok(())
                        })
                        .await?;
                    if park {
                        report.parked += 1;
                    } else {
                        report.failed += 1;
                    }
                }
            }
        }
        if progress == 0 {
            break;
        }
    }
    Ok(report)
}

/// Events that failed too often, for the merchant's attention queue: (id, error).
pub fn parked_events(conn: &rusqlite::Connection) -> store::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare("SELECT id, COALESCE(error, '') FROM inbound_events WHERE parked_at IS NOT NULL AND processed_at IS NULL ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The stored copy of a message is redacted like the conversation log, so a PIN typed by a customer
/// does not stay in `inbound_events` after processing. Nothing is written when redaction changes nothing.
fn scrub_stored_event(tx: &Transaction, event_id: i64, msg: &InboundMessage, mut raw: Value, redact: &(dyn Fn(&str) -> String + Send + Sync)) -> store::Result<()> {
    fn walk(v: &mut Value, redact: &(dyn Fn(&str) -> String + Send + Sync), changed: &mut bool) {
        match v {
            Value::String(s) => {
                let r = redact(s);
                if r != *s {
                    *s = r;
                    *changed = true;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, redact, changed)),
            Value::Object(map) => map.values_mut().for_each(|i| walk(i, redact, changed)),
            _ => {}
        }
    }
    let mut changed = false;
    let mut event = serde_json::to_value(WebhookEvent::Message(msg.clone())).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    walk(&mut event, redact, &mut changed);
    walk(&mut raw, redact, &mut changed);
    if changed {
        let payload = serde_json::json!({ "event": event, "raw": raw }).to_string();
        tx.execute("UPDATE inbound_events SET payload = ?2 WHERE id = ?1", (event_id, payload))?;
    }
    Ok(())
}

/// Puts a parked event back in the queue (the merchant fixed the cause). True if it was parked.
pub fn unpark(tx: &Transaction, event_id: i64) -> store::Result<bool> {
    Ok(tx.execute(
        "UPDATE inbound_events SET parked_at = NULL, attempts = 0, next_attempt_at = NULL WHERE id = ?1 AND parked_at IS NOT NULL AND processed_at IS NULL",
        [event_id],
    )? > 0)
}

struct Decision {
    customer_id: i64,
    call_handler: bool,
    enqueued: bool,
}

/// The customer with this phone, created with their WhatsApp profile name if new. An existing
/// customer keeps the name the merchant gave them.
fn find_or_create_customer(tx: &Transaction, phone: &Msisdn, profile_name: Option<&str>, now: DateTime<Utc>) -> store::Result<i64> {
    if let Some(id) = tx.query_row("SELECT id FROM customers WHERE phone = ?1", [phone.as_str()], |r| r.get(0)).optional()? {
        return Ok(id);
    }
    tx.execute(
        "INSERT INTO customers (name, phone, created_at) VALUES (?1, ?2, ?3)",
        (profile_name.unwrap_or("").trim(), phone.as_str(), ts(now)),
    )?;
    Ok(tx.last_insert_rowid())
}

/// Everything about a customer message that touches the store, in one transaction; safe to repeat.
fn record_message(tx: &Transaction, msg: &InboundMessage, phone: &Msisdn, redact: &(dyn Fn(&str) -> String + Send + Sync), merchant: &str, now: DateTime<Utc>) -> store::Result<Decision> {
    let customer_id = find_or_create_customer(tx, phone, msg.profile_name.as_deref(), now)?;
    let conversation = ensure_conversation(tx, customer_id, now)?;
    tx.execute(
        "INSERT INTO messages (conversation_id, direction, wamid, kind, body, at) VALUES (?1, 'in', ?2, ?3, ?4, ?5)
         ON CONFLICT (wamid) DO NOTHING",
        (conversation, &msg.id, msg.content.kind(), redact(&msg.content.log_body()), ts(msg.timestamp)),
    )?;
    window::refresh(tx, customer_id, msg.timestamp)?;
    // Writing to the business is the first opt-in we can record.
    tx.execute(
        "UPDATE customers SET opted_in_at = ?2, opt_in_source = 'whatsapp:first_message' WHERE id = ?1 AND opted_in_at IS NULL",
        (customer_id, ts(msg.timestamp)),
    )?;

    let said = match &msg.content {
        Content::Text { body } => Some(body.as_str()),
        Content::ButtonReply { id, .. } | Content::ListReply { id, .. } => Some(id.as_str()),
        Content::TemplateButton { payload, .. } => Some(payload.as_str()),
        _ => None,
    };
    let reply = |text: String, key: String| -> store::Result<bool> {
        Ok(outbox::enqueue(tx, &key, phone, &Outgoing::reply(OutboundMessage::text(text), Some(&msg.id)), now)?.is_some())
    };
    if let Some(lang) = said.and_then(optout::opt_out) {
        opt_out_customer(tx, phone, &format!("whatsapp:{}", msg.id), now)?;
        let enqueued = reply(optout::opt_out_confirmation(lang, merchant), format!("optout-confirm:{}", msg.id))?;
        return Ok(Decision { customer_id, call_handler: false, enqueued });
    }
    if let Some(lang) = said.and_then(optout::opt_in) {
        let was_out = tx.execute(
            "UPDATE customers SET opted_out_at = NULL, opt_out_source = NULL, opted_in_at = ?2, opt_in_source = ?3 WHERE id = ?1 AND opted_out_at IS NOT NULL",
            (customer_id, ts(now), format!("whatsapp:{}", msg.id)),
        )? > 0;
        if was_out {
            store::audit(tx, now, "customer", "opted_in", &phone.masked(), "whatsapp START")?;
            let enqueued = reply(optout::opt_in_confirmation(lang, merchant), format!("optin-confirm:{}", msg.id))?;
            return Ok(Decision { customer_id, call_handler: false, enqueued });
        }
    }
    match &msg.content {
        Content::Media { .. } | Content::Unsupported { .. } => {
            let enqueued = reply(PLEASE_TYPE.to_string(), format!("ask-text:{}", msg.id))?;
            Ok(Decision { customer_id, call_handler: false, enqueued })
        }
        Content::Reaction { .. } | Content::System { .. } => Ok(Decision { customer_id, call_handler: false, enqueued: false }),
        _ => Ok(Decision { customer_id, call_handler: true, enqueued: false }),
    }
}

/// Applies a delivery status: the furthest status wins (sent < delivered < read; failed is final),
/// whatever order they arrive in; among equal statuses the earliest timestamp is kept. A `failed`
/// status acts on its error code like a failed send would. Returns true if the outbox should wake.
fn apply_status(tx: &Transaction, s: &StatusUpdate, now: DateTime<Utc>) -> store::Result<bool> {
    let mut wake = false;
    if let Some(key) = &s.callback_data {
        wake |= outbox::mark_sent_by_callback(tx, key, &s.id, s.timestamp)?;
    }
    let current: Option<(String, String)> =
        tx.query_row("SELECT status, status_at FROM whatsapp_statuses WHERE wamid = ?1", [&s.id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let newer = match &current {
        None => true,
        Some((status, at)) => {
            let old = DeliveryStatus::parse(status).map(DeliveryStatus::rank).unwrap_or(0);
            let new = s.status.rank();
            new > old || (new == old && s.timestamp < parse_ts(at)?)
        }
    };
    if !newer {
        return Ok(wake);
    }
    let error = s.errors.first();
    let code = error.map(|e| e.code);
    let detail = error.map(|e| [e.title.as_deref(), e.message.as_deref(), e.details.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": "));
    tx.execute(
        "INSERT INTO whatsapp_statuses (wamid, recipient, status, status_at, error_code, error_detail, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (wamid) DO UPDATE SET status = excluded.status, status_at = excluded.status_at,
             error_code = excluded.error_code, error_detail = excluded.error_detail, updated_at = excluded.updated_at",
        (&s.id, &s.recipient_id, s.status.as_str(), ts(s.timestamp), code, &detail, ts(now)),
    )?;
    tx.execute(
        "UPDATE messages SET status = ?2, status_at = ?3, error_code = ?4, error_detail = ?5 WHERE wamid = ?1",
        (&s.id, s.status.as_str(), ts(s.timestamp), code, &detail),
    )?;
    if s.status == DeliveryStatus::Failed {
        if let Some(code) = code {
            wake |= react_to_failure(tx, s, code, detail.as_deref().unwrap_or(""), now)?;
        }
    }
    Ok(wake)
}

/// The same error codes as a failed send, arriving in a `failed` status instead.
fn react_to_failure(tx: &Transaction, s: &StatusUpdate, code: i64, detail: &str, now: DateTime<Utc>) -> store::Result<bool> {
    let row: Option<(i64, String, String, bool)> = tx
        .query_row(
            "SELECT id, idempotency_key, payload, business_initiated FROM outbox WHERE wamid = ?1",
            [&s.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let phone = Msisdn::parse(&s.recipient_id).ok();
    tracing::warn!(code, "WhatsApp reported a message failed");
    match action_for_code(code, detail) {
        ErrorAction::PauseAndAlert { reason } => {
            outbox::pause(tx, &reason, Some(code), now)?;
            Ok(false)
        }
        ErrorAction::Undeliverable => {
            if let Some(p) = phone {
                tx.execute("UPDATE customers SET wa_undeliverable_at = ?2 WHERE phone = ?1", (p.as_str(), ts(now)))?;
            }
            Ok(false)
        }
        ErrorAction::RespectOptOut => {
            if let Some(p) = phone {
                opt_out_customer(tx, &p, "whatsapp:131050", now)?;
            }
            Ok(false)
        }
        ErrorAction::UseTemplate => {
            let (Some((_, key, payload, business)), Some(p)) = (row, phone) else { return Ok(false) };
            let Ok(v) = serde_json::from_str::<Value>(&payload) else { return Ok(false) };
            let Some(Ok(template)) = v.get("fallback_template").filter(|t| !t.is_null()).map(|t| serde_json::from_value::<OutboundMessage>(t.clone())) else {
                return Ok(false);
            };
            let outgoing = Outgoing { message: template, fallback_template: None, business_initiated: business, reply_to: None };
            Ok(outbox::enqueue(tx, &format!("{key}:template"), &p, &outgoing, now)?.is_some())
        }
        ErrorAction::Retry { .. } => {
            let (Some((_, key, payload, business)), Some(p)) = (row, phone) else { return Ok(false) };
            let Ok(v) = serde_json::from_str::<Value>(&payload) else { return Ok(false) };
            let (Some(Ok(message)), fallback) = (
                v.get("message").map(|m| serde_json::from_value::<OutboundMessage>(m.clone())),
                v.get("fallback_template").and_then(|t| serde_json::from_value::<OutboundMessage>(t.clone()).ok()),
            ) else {
                return Ok(false);
            };
            let outgoing = Outgoing { message, fallback_template: fallback, business_initiated: business, reply_to: None };
            Ok(outbox::enqueue(tx, &format!("{key}:resend"), &p, &outgoing, now)?.is_some())
        }
        ErrorAction::AskForText | ErrorAction::Drop { .. } => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use chrono::TimeZone;

    fn status(id: &str, st: DeliveryStatus, secs: i64) -> StatusUpdate {
        StatusUpdate {
            id: id.into(),
            status: st,
            timestamp: Utc.timestamp_opt(secs, 0).unwrap(),
            recipient_id: "254712345678".into(),
            errors: vec![],
            callback_data: None,
        }
    }

    #[test]
    fn the_furthest_status_wins_whatever_the_arrival_order() {
        let s = temp_store();
        let now = Utc::now();
        let get = |s: &crate::store::Store| s.read(|c| Ok(c.query_row("SELECT status FROM whatsapp_statuses WHERE wamid = 'w'", [], |r| r.get::<_, String>(0))?)).unwrap();
        s.write(|tx| apply_status(tx, &status("w", DeliveryStatus::Read, 30), now)).unwrap();
        s.write(|tx| apply_status(tx, &status("w", DeliveryStatus::Delivered, 20), now)).unwrap();
        s.write(|tx| apply_status(tx, &status("w", DeliveryStatus::Sent, 10), now)).unwrap();
        assert_eq!(get(&s), "read");
        let mut failed = status("w", DeliveryStatus::Failed, 40);
        failed.errors.push(super::super::webhook::ErrorDetail { code: 131026, title: Some("Undeliverable".into()), message: None, details: None });
        s.write(|tx| apply_status(tx, &failed, now)).unwrap();
        assert_eq!(get(&s), "failed");
    }
}
