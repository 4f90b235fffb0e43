//! What the merchant's console shows and does beyond plain lists: the live inbox (take over, reply as
//! the merchant, hand back) and the simulated customer phone of simulator mode. Plain functions over
//! the running `App`, so the desktop commands stay one-liners and tests need no window.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::daraja::simulator::Answer;
use crate::domain::Msisdn;
use crate::store::{parse_ts, StoreError};
use crate::whatsapp::outbox::{self, Outgoing};
use crate::whatsapp::{window, OutboundMessage};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the customer last wrote more than 24 hours ago: WhatsApp only allows approved templates now")]
    OutsideWindow,
    #[error("type a message first")]
    Empty,
    #[error("take over the conversation before replying as yourself")]
    NotHuman,
    #[error("the simulator is off: real credentials are in use")]
    SimulatorOff,
    #[error("that customer has no phone number")]
    NoPhone,
    #[error("{0}")]
    Agent(String),
}

impl ConsoleError {
    pub fn code(&self) -> &'static str {
        match self {
            ConsoleError::Store(StoreError::NotFound(_)) => "not_found",
            ConsoleError::Store(_) => "store",
            ConsoleError::OutsideWindow => "outside_window",
            ConsoleError::Empty => "empty",
            ConsoleError::NotHuman => "not_human",
            ConsoleError::SimulatorOff => "simulator_off",
            ConsoleError::NoPhone => "no_phone",
            ConsoleError::Agent(_) => "agent",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversationSummary {
    pub customer_id: i64,
    pub customer_name: String,
    pub phone: String,
    pub handled_by: String,
    pub last_message: Option<String>,
    pub last_at: Option<String>,
    pub window_open: bool,
    pub opted_out: bool,
}

fn masked(phone: Option<String>) -> String {
    phone.and_then(|p| Msisdn::parse(&p).ok()).map(|m| m.masked()).unwrap_or_else(|| "—".into())
}

/// Conversations with their latest message, most recent first.
pub fn conversations(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<ConversationSummary>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT c.id, c.name, c.phone, v.handled_by, m.body, m.at, c.last_inbound_at, c.opted_out_at IS NOT NULL
         FROM conversations v JOIN customers c ON c.id = v.customer_id
         LEFT JOIN messages m ON m.id = (SELECT MAX(id) FROM messages WHERE conversation_id = v.id)
         ORDER BY COALESCE(m.at, v.updated_at) DESC",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, bool>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(customer_id, name, phone, handled_by, last_message, last_at, last_inbound, opted_out)| {
            let last_inbound = last_inbound.map(|t| parse_ts(&t)).transpose()?;
            Ok(ConversationSummary {
                customer_id,
                customer_name: name,
                phone: masked(phone),
                handled_by,
                last_message,
                last_at,
                window_open: window::is_open(last_inbound, now),
                opted_out,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub id: i64,
    pub direction: String,
    pub kind: String,
    pub body: String,
    pub status: Option<String>,
    pub at: String,
}

/// One customer's messages, oldest first (already PIN-redacted when stored). A tap shows as its title.
pub fn messages(conn: &Connection, customer_id: i64) -> Result<Vec<ChatMessage>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT m.id, m.direction, m.kind, m.body, m.status, m.at FROM messages m JOIN conversations v ON v.id = m.conversation_id
         WHERE v.customer_id = ?1 ORDER BY m.at, m.id",
    )?;
    let rows = stmt
        .query_map([customer_id], |r| {
            let (direction, kind, body): (String, String, String) = (r.get(1)?, r.get(2)?, r.get(3)?);
            let body = if direction == "in" { as_typed(&kind, &body) } else { body };
            Ok(ChatMessage { id: r.get(0)?, direction, kind, body, status: r.get(4)?, at: r.get(5)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The id of the newest message, for "something changed" notifications.
pub fn latest_message_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| r.get(0))?)
}

/// The merchant's own reply, inside the 24-hour window, in a conversation they have taken over.
pub async fn merchant_reply(app: &App, customer_id: i64, body: &str) -> Result<(), ConsoleError> {
    let body = body.trim().to_string();
    if body.is_empty() {
        return Err(ConsoleError::Empty);
    }
    let now = app.engine.clock.now();
    app.engine
        .store
        .write_async(move |tx| {
            let row: Option<(Option<String>, Option<String>, String)> = tx
                .query_row(
                    "SELECT c.phone, c.last_inbound_at, COALESCE(v.handled_by, 'bot') FROM customers c
                     LEFT JOIN conversations v ON v.customer_id = c.id WHERE c.id = ?1",
                    [customer_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((phone, last_inbound, handled_by)) = row else {
                return Err(StoreError::NotFound(format!("customer {customer_id}")));
            };
            let Some(phone) = phone.and_then(|p| Msisdn::parse(&p).ok()) else { return Ok(Err(ConsoleError::NoPhone)) };
            if handled_by != "human" {
                return Ok(Err(ConsoleError::NotHuman));
            }
            if !window::is_open(last_inbound.map(|t| parse_ts(&t)).transpose()?, now) {
                return Ok(Err(ConsoleError::OutsideWindow));
            }
            let key = format!("merchant-reply:{customer_id}:{}", now.timestamp_millis());
            outbox::enqueue(tx, &key, &phone, &Outgoing::reply(OutboundMessage::Text { body }, None), now)?;
            crate::store::audit(tx, now, "merchant", "replied", &phone.masked(), "")?;
            Ok(Ok(()))
        })
        .await??;
    app.wake_outbox();
    Ok(())
}

// ---- The simulated customer phone (simulator mode) ----

#[derive(Debug, Clone, Serialize)]
pub struct SimCustomer {
    pub customer_id: i64,
    pub name: String,
    pub phone: String,
    pub open_invoices: i64,
    pub balance: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimPrompt {
    pub checkout_request_id: String,
    pub customer_id: Option<i64>,
    pub phone: String,
    pub amount: i64,
    pub account_reference: String,
    pub business_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimState {
    pub enabled: bool,
    pub customers: Vec<SimCustomer>,
    pub prompts: Vec<SimPrompt>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimButton {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimList {
    pub button: String,
    pub rows: Vec<SimListRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimMessage {
    pub from_customer: bool,
    pub text: String,
    pub buttons: Vec<SimButton>,
    pub list: Option<SimList>,
    pub at: String,
}

pub async fn sim_state(app: &App) -> Result<SimState, ConsoleError> {
    let (Some(daraja), Some(_)) = (&app.simulators.daraja, &app.simulators.whatsapp) else {
        return Ok(SimState { enabled: false, customers: vec![], prompts: vec![] });
    };
    let customers = app
        .engine
        .store
        .read_async(|c| {
            let mut stmt = c.prepare(
                "SELECT c.id, c.name, c.phone, COUNT(i.id), COALESCE(SUM(i.balance), 0) FROM customers c
                 LEFT JOIN invoices i ON i.customer_id = c.id AND i.status IN ('open', 'partially_paid')
                 WHERE c.phone IS NOT NULL GROUP BY c.id ORDER BY c.name",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await?;
    let by_phone = |phone: &str| customers.iter().find(|c| c.2.as_deref() == Some(phone)).map(|c| c.0);
    let prompts = daraja
        .pending_prompts()
        .into_iter()
        .map(|p| SimPrompt {
            customer_id: by_phone(&p.phone),
            phone: masked(Some(p.phone.clone())),
            checkout_request_id: p.checkout_request_id,
            amount: p.amount,
            account_reference: p.account_reference,
            business_name: p.business_name,
        })
        .collect();
    let customers = customers
        .iter()
        .map(|(id, name, phone, open, balance)| SimCustomer { customer_id: *id, name: name.clone(), phone: masked(phone.clone()), open_invoices: *open, balance: *balance })
        .collect();
    Ok(SimState { enabled: true, customers, prompts })
}

async fn sim_phone(app: &App, customer_id: i64) -> Result<String, ConsoleError> {
    if app.simulators.whatsapp.is_none() {
        return Err(ConsoleError::SimulatorOff);
    }
    let phone: Option<String> = app
        .engine
        .store
        .read_async(move |c| Ok(c.query_row("SELECT phone FROM customers WHERE id = ?1", [customer_id], |r| r.get(0)).optional()?.flatten()))
        .await?;
    phone.ok_or(ConsoleError::NoPhone)
}

/// The customer's phone screen: what the business sent (with its buttons) and what the customer wrote.
pub async fn sim_messages(app: &App, customer_id: i64) -> Result<Vec<SimMessage>, ConsoleError> {
    let phone = sim_phone(app, customer_id).await?;
    let graph = app.simulators.whatsapp.as_ref().ok_or(ConsoleError::SimulatorOff)?;
    let mut out: Vec<SimMessage> = graph.messages_to(&phone).iter().map(business_message).collect();
    for m in app.engine.store.read_async(move |c| messages(c, customer_id)).await? {
        if m.direction == "in" {
            out.push(SimMessage { from_customer: true, text: m.body, buttons: vec![], list: None, at: m.at });
        }
    }
    out.sort_by(|a, b| a.at.cmp(&b.at));
    Ok(out)
}

/// What the customer's own phone shows for a message they sent: a tapped button is its title, not
/// the log form "[button CONFIRM:1] Pay KES 2,500".
fn as_typed(kind: &str, body: &str) -> String {
    match (kind, body.strip_prefix('[').and_then(|rest| rest.split_once("] "))) {
        ("text", _) | (_, None) => body.to_string(),
        (_, Some((_, title))) => title.to_string(),
    }
}

fn business_message(m: &Value) -> SimMessage {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    // The message body as the phone shows it, without the simulator's button summary.
    let text = [&m["text"]["body"], &m["interactive"]["body"]["text"]]
        .into_iter()
        .find_map(|v| v.as_str())
        .map(String::from)
        .unwrap_or_else(|| s(&m["display_text"]));
    let buttons = m["interactive"]["action"]["buttons"]
        .as_array()
        .map(|bs| bs.iter().map(|b| SimButton { id: s(&b["reply"]["id"]), title: s(&b["reply"]["title"]) }).collect())
        .unwrap_or_default();
    let list = m["interactive"]["action"]["sections"].as_array().map(|sections| SimList {
        button: s(&m["interactive"]["action"]["button"]),
        rows: sections
            .iter()
            .flat_map(|sec| sec["rows"].as_array().cloned().unwrap_or_default())
            .map(|r| SimListRow { id: s(&r["id"]), title: s(&r["title"]), description: r["description"].as_str().map(String::from) })
            .collect(),
    });
    SimMessage { from_customer: false, text, buttons, list, at: s(&m["at"]) }
}

pub async fn sim_send_text(app: &App, customer_id: i64, body: &str) -> Result<(), ConsoleError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(ConsoleError::Empty);
    }
    let phone = sim_phone(app, customer_id).await?;
    let graph = app.simulators.whatsapp.as_ref().ok_or(ConsoleError::SimulatorOff)?;
    graph.send_text(&phone, body).await.map_err(|e| ConsoleError::Agent(e.to_string()))?;
    Ok(())
}

/// A tap on a reply button or a list row on the simulated phone.
pub async fn sim_tap(app: &App, customer_id: i64, id: &str, title: &str) -> Result<(), ConsoleError> {
    let phone = sim_phone(app, customer_id).await?;
    let graph = app.simulators.whatsapp.as_ref().ok_or(ConsoleError::SimulatorOff)?;
    let result = if id.starts_with("INV:") { graph.choose_from_list(&phone, id, title, None).await } else { graph.tap_button(&phone, id, title).await };
    result.map_err(|e| ConsoleError::Agent(e.to_string()))?;
    Ok(())
}

/// The customer acts on the simulated M-Pesa prompt.
pub fn sim_answer(app: &App, checkout_request_id: &str, answer: &str) -> Result<(), ConsoleError> {
    let daraja = app.simulators.daraja.as_ref().ok_or(ConsoleError::SimulatorOff)?;
    let answer = match answer {
        "pin" => Answer::EnterPin,
        "wrong_pin" => Answer::WrongPin,
        "insufficient" => Answer::InsufficientBalance,
        "cancel" => Answer::Cancel,
        "no_answer" => Answer::NoAnswer,
        other => return Err(ConsoleError::Agent(format!("unknown answer {other:?}"))),
    };
    if !daraja.answer(checkout_request_id, answer) {
        return Err(ConsoleError::Store(StoreError::NotFound("that M-Pesa prompt (it may have expired)".into())));
    }
    app.payments.wake();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_messages_keep_their_buttons_and_lists() {
        let m = serde_json::json!({"display_text": "Pay? [Pay KES 2,500]", "at": "2026-12-04T09:00:00.000Z", "interactive": {"body": {"text": "Pay?"}, "action": {"buttons": [{"type": "reply", "reply": {"id": "CONFIRM:1", "title": "Pay KES 2,500"}}]}}});
        let s = business_message(&m);
        assert_eq!((s.text.as_str(), s.buttons[0].id.as_str(), s.buttons[0].title.as_str()), ("Pay?", "CONFIRM:1", "Pay KES 2,500"));
        let l = serde_json::json!({"display_text": "Which?", "at": "x", "interactive": {"action": {"button": "Choose invoice", "sections": [{"rows": [{"id": "INV:1", "title": "INV-1", "description": "KES 1,000"}]}]}}});
        let s = business_message(&l);
        assert_eq!(s.list.unwrap().rows[0].id, "INV:1");
    }

    #[test]
    fn a_tapped_button_shows_as_its_title() {
        assert_eq!(as_typed("interactive", "[button CONFIRM:1] Pay KES 2,500"), "Pay KES 2,500");
        assert_eq!(as_typed("text", "[not a tap] hi"), "[not a tap] hi");
    }
}
