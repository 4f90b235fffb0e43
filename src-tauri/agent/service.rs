//! The agent's shell: for each customer message (or payment outcome) it loads the conversation and the
//! facts from the store, asks the pure policy what to do, and carries it out — payment first (it is
//! idempotent by key), then the conversation state, replies, promises and escalations in one
//! transaction. A turn repeated after a crash produces the same keys, so nothing is sent or charged twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::Notify;

use super::llm::{should_consult, LlmContext, LlmProposer};
use super::policy::{self, Action, Conversation, Facts, Input, OpenInvoice, Rules};
use super::replies::{kes, Reply, Voice};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{Kes, Msisdn};
use crate::payments::attempt::State as AttemptState;
use crate::payments::{Origin, PaymentError, PaymentRequest, Payments};
use crate::store::{invoices, ts, Store, StoreError};
use crate::understand::{redact_pin, understand, Language};
use crate::whatsapp::graph::{ListRow, ListSection, ReplyButton};
use crate::whatsapp::inbox::{BoxFuture, InboundHandler};
use crate::whatsapp::outbox::{self, Outgoing};
use crate::whatsapp::{templates, Content, InboundMessage, OutboundMessage};

#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    payments: Payments,
    config: Arc<Config>,
    outbox_wake: Arc<Notify>,
    /// The optional model, consulted only for messages the built-in understanding is unsure of.
    llm: Option<LlmProposer>,
    /// One turn at a time per customer; different customers proceed in parallel.
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("customer {0} has no phone number")]
    NoPhone(i64),
}

impl Agent {
    pub fn new(store: Store, clock: SharedClock, payments: Payments, config: Arc<Config>, outbox_wake: Arc<Notify>, llm: Option<LlmProposer>) -> Agent {
        Agent { inner: Arc::new(Inner { store, clock, payments, config, outbox_wake, llm, locks: Mutex::new(HashMap::new()) }) }
    }

    fn lock_for(&self, customer_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.inner.locks.lock().unwrap().entry(customer_id).or_default().clone()
    }

    /// A person from the merchant's team takes the conversation: the bot stays quiet.
    pub async fn take_over(&self, customer_id: i64) -> Result<(), AgentError> {
        self.turn(customer_id, Input::HumanTakeover, &format!("takeover:{}", self.inner.clock.now().timestamp_millis()), None, None).await
    }

    /// The merchant hands the conversation back to the bot.
    pub async fn hand_back(&self, customer_id: i64) -> Result<(), AgentError> {
        self.turn(customer_id, Input::Handback, &format!("handback:{}", self.inner.clock.now().timestamp_millis()), None, None).await
    }

    /// Tells customers about every payment outcome not yet told (receipts, failures), durably.
    pub async fn catch_up(&self) -> Result<usize, AgentError> {
        let pending = self.inner.store.read_async(pending_outcomes).await?;
        let n = pending.len();
        for outcome in pending {
            let (customer_id, key, input, mark) = outcome;
            self.turn(customer_id, input, &key, Some(mark), None).await?;
        }
        Ok(n)
    }

    /// Runs `catch_up` whenever a payment changes, until `shutdown`.
    pub async fn follow_payments(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut updates = self.inner.payments.subscribe();
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "agent could not report payment outcomes; will retry");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                r = updates.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r { return },
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            }
        }
    }

    /// One step of one conversation. `turn_key` makes the replies idempotent; `mark` records that a
    /// payment outcome was told, in the same transaction as the reply.
    async fn turn(&self, customer_id: i64, input: Input, turn_key: &str, mark: Option<Mark>, text: Option<&str>) -> Result<(), AgentError> {
        let lock = self.lock_for(customer_id);
        let _guard = lock.lock().await;
        let now = self.inner.clock.now();
        let config = self.inner.config.clone();
        let receipt = match &input {
            Input::Text { understanding, .. } => understanding.entities.receipt.clone(),
            _ => None,
        };
        let (conversation, facts) = self
            .inner
            .store
            .read_async(move |c| Ok((load_conversation(c, customer_id)?, load_facts(c, customer_id, &config, receipt.as_deref(), now)?)))
            .await?;
        let facts = facts.ok_or(AgentError::NoPhone(customer_id))?;
        let (input, hint) = self.consult_model(&conversation, input, text, &facts, now).await;
        let (mut next, mut actions) = policy::decide(conversation, input, &facts);
        // The model's own words go only beside the policy's reply, never instead of it.
        if let (Some(h), Some(i)) = (hint, actions.iter().position(|a| matches!(a, Action::Send(_)))) {
            actions.insert(i, Action::Send(Reply { body: h, buttons: vec![], list: None }));
        }

        // Money first: a payment request is idempotent by key, so a repeated turn never pushes twice.
        let mut extra = Vec::new();
        for action in &actions {
            if let Action::StartPayment { key, invoice_id, amount, phone } = action {
                let request = PaymentRequest {
                    invoice_id: *invoice_id,
                    amount: Kes::positive(*amount).expect("policy amounts are positive"),
                    phone: Msisdn::parse(phone).map_err(|_| AgentError::NoPhone(customer_id))?,
                    origin: Origin::Chat,
                    idempotency_key: key.clone(),
                };
                if let Err(e) = self.inner.payments.request(request).await {
                    tracing::info!(customer = customer_id, error = %e, "payment request refused");
                    next.stage = policy::Stage::Idle;
                    extra.push(refusal(&next, &facts, &e));
                }
            }
        }

        let phone = Msisdn::parse(&facts.phone).map_err(|_| AgentError::NoPhone(customer_id))?;
        let key = turn_key.to_string();
        let merchant = facts.merchant.clone();
        let customer_name = facts.customer_name.clone();
        let language = crate::agent::policy::reply_language(&next, &facts);
        self.inner
            .store
            .write_async(move |tx| {
                save_conversation(tx, customer_id, &next, now)?;
                let sends = actions.iter().filter_map(|a| if let Action::Send(r) = a { Some(r) } else { None }).chain(extra.iter());
                for (i, reply) in sends.enumerate() {
                    let outgoing = Outgoing::reply(render(reply), None);
                    outbox::enqueue(tx, &format!("agent:{key}:{i}"), &phone, &with_receipt_template(outgoing, &mark, &customer_name, &merchant, language), now)?;
                }
                for action in &actions {
                    carry_out(tx, action, customer_id, &phone, now)?;
                }
                if let Some(m) = &mark {
                    m.record(tx, now)?;
                }
                Ok(())
            })
            .await?;
        self.inner.outbox_wake.notify_one();
        Ok(())
    }

    /// For a message the built-in understanding is unsure of (and only outside a confirmation or a
    /// payment), asks the optional model. Its proposal is never taken as consent.
    async fn consult_model(&self, c: &Conversation, input: Input, text: Option<&str>, facts: &Facts, now: DateTime<Utc>) -> (Input, Option<String>) {
        let (Some(llm), Some(text), Input::Text { understanding, .. }) = (&self.inner.llm, text, &input) else {
            return (input, None);
        };
        if !should_consult(c, understanding, self.inner.config.agent.llm_below_confidence) {
            return (input, None);
        }
        let ctx = LlmContext {
            text,
            language: understanding.language,
            today: now.with_timezone(&self.inner.config.timezone).date_naive(),
            merchant: &facts.merchant,
            customer_first_name: &facts.customer_name,
            invoices: &facts.invoices,
        };
        match llm.propose(&ctx).await {
            Some(p) => (Input::ModelProposal { understanding: p.understanding }, p.reply_hint),
            None => (input, None),
        }
    }

    async fn on_message(&self, msg: &InboundMessage, customer_id: i64) -> Result<(), AgentError> {
        let today = self.inner.clock.now().with_timezone(&self.inner.config.timezone).date_naive();
        let mut redacted_text = None;
        let input = match &msg.content {
            Content::Text { body } => {
                if body.trim().eq_ignore_ascii_case("start") {
                    Input::Tap { id: "START".into() }
                } else {
                    let redacted = redact_pin(body);
                    let text = redacted.clone().unwrap_or_else(|| body.clone());
                    let input = Input::Text { understanding: understand(&text, today), pin_removed: redacted.is_some() };
                    redacted_text = Some(text);
                    input
                }
            }
            Content::ButtonReply { id, .. } | Content::ListReply { id, .. } => Input::Tap { id: id.clone() },
            Content::TemplateButton { payload, .. } => Input::Tap { id: payload.clone() },
            _ => Input::NonText,
        };
        self.turn(customer_id, input, &msg.id, None, redacted_text.as_deref()).await
    }
}

impl InboundHandler for Agent {
    fn handle<'a>(&'a self, msg: &'a InboundMessage, customer_id: i64) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.on_message(msg, customer_id).await.map_err(|e| e.to_string()) })
    }
}

/// The PIN redactor for the inbox: no PIN reaches the conversation log.
pub fn pin_redactor() -> crate::whatsapp::inbox::Redactor {
    Arc::new(|s: &str| redact_pin(s).unwrap_or_else(|| s.to_string()))
}

fn refusal(c: &Conversation, f: &Facts, e: &PaymentError) -> Reply {
    let v = Voice { lang: crate::agent::policy::reply_language(c, f), merchant: &f.merchant };
    match e {
        PaymentError::InFlight(_) => v.already_in_progress(),
        PaymentError::TooManyPushes(_) => v.too_many_prompts(),
        _ => v.mpesa_down("HUMAN"),
    }
}

/// A reply as a WhatsApp message: text, reply buttons or a list.
fn render(r: &Reply) -> OutboundMessage {
    if let Some((button, rows)) = &r.list {
        return OutboundMessage::List {
            body: r.body.clone(),
            button: button.clone(),
            sections: vec![ListSection {
                title: None,
                rows: rows.iter().map(|row| ListRow { id: row.id.clone(), title: row.title.clone(), description: Some(row.description.clone()) }).collect(),
            }],
        };
    }
    if r.buttons.is_empty() {
        return OutboundMessage::Text { body: r.body.clone() };
    }
    OutboundMessage::Buttons {
        body: r.body.clone(),
        footer: None,
        buttons: r.buttons.iter().map(|b| ReplyButton { id: b.id.clone(), title: b.title.clone() }).collect(),
    }
}

/// A receipt may have to reach a customer outside the 24-hour window: give it the approved receipt
/// template to fall back on.
fn with_receipt_template(mut o: Outgoing, mark: &Option<Mark>, customer: &str, merchant: &str, lang: Language) -> Outgoing {
    if let Some(Mark::Ledger { receipt_params: Some(p), .. }) = mark {
        let language = if lang == Language::Sw { "sw" } else { "en" };
        let params = vec![customer.to_string(), p.amount.clone(), p.invoice.clone(), p.receipt.clone(), merchant.to_string(), p.balance.clone()];
        o.fallback_template = templates::build(&templates::defaults(), templates::PAYMENT_RECEIPT, language, params, vec![]).ok();
    }
    o
}

fn carry_out(tx: &Transaction, action: &Action, customer_id: i64, phone: &Msisdn, now: DateTime<Utc>) -> Result<(), StoreError> {
    match action {
        Action::RecordPromise { invoice_id, date } => {
            tx.execute(
                "INSERT INTO promises (customer_id, invoice_id, promised_date, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![customer_id, invoice_id, date.to_string(), ts(now)],
            )?;
        }
        Action::Escalate { reason, pause_invoice } => {
            if let Some(id) = pause_invoice {
                tx.execute("UPDATE invoices SET reminders_paused = 1, status = CASE WHEN status IN ('open', 'partially_paid') THEN 'disputed' ELSE status END WHERE id = ?1", [id])?;
            }
            let kind = if pause_invoice.is_some() { "dispute" } else { "human" };
            tx.execute(
                "INSERT INTO attention (kind, customer_id, invoice_id, detail, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, customer_id, pause_invoice, reason, ts(now)],
            )?;
        }
        Action::QueueReceiptCheck { code } => {
            tx.execute(
                "INSERT INTO attention (kind, customer_id, detail, created_at) VALUES ('receipt_check', ?1, ?2, ?3)",
                params![customer_id, format!("the customer says they paid with M-Pesa code {code}"), ts(now)],
            )?;
        }
        Action::OptOut => {
            outbox::opt_out_customer(tx, phone, "agent", now)?;
        }
        Action::OptIn => {
            tx.execute("UPDATE customers SET opted_out_at = NULL, opted_in_at = ?2, opt_in_source = 'chat' WHERE id = ?1", params![customer_id, ts(now)])?;
        }
        Action::Send(_) | Action::StartPayment { .. } => {}
    }
    Ok(())
}

fn load_conversation(c: &Connection, customer_id: i64) -> Result<Conversation, StoreError> {
    let row: Option<(String, String)> =
        c.query_row("SELECT state, handled_by FROM conversations WHERE customer_id = ?1", [customer_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let Some((state, handled_by)) = row else { return Ok(Conversation::default()) };
    // A state this version cannot read starts afresh rather than blocking the customer.
    let mut conv: Conversation = serde_json::from_str(&state).unwrap_or_default();
    conv.human = handled_by == "human";
    Ok(conv)
}

fn save_conversation(tx: &Transaction, customer_id: i64, c: &Conversation, now: DateTime<Utc>) -> Result<(), StoreError> {
    let state = serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.execute(
        "INSERT INTO conversations (customer_id, state, handled_by, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (customer_id) DO UPDATE SET state = excluded.state, handled_by = excluded.handled_by, updated_at = excluded.updated_at",
        params![customer_id, state, if c.human { "human" } else { "bot" }, ts(now)],
    )?;
    Ok(())
}

/// Everything the policy may rely on, from the ledger and settings. None if the customer has no phone.
fn load_facts(c: &Connection, customer_id: i64, config: &Config, receipt: Option<&str>, now: DateTime<Utc>) -> Result<Option<Facts>, StoreError> {
    let (name, phone, opted_out): (String, Option<String>, bool) = c.query_row(
        "SELECT name, phone, opted_out_at IS NOT NULL FROM customers WHERE id = ?1",
        [customer_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let Some(phone) = phone.and_then(|p| Msisdn::parse(&p).ok()) else { return Ok(None) };
    let invoices = invoices::collectable_for_customer(c, customer_id)?
        .into_iter()
        .map(|i| OpenInvoice { id: i.id, number: i.number, balance: i.balance.shillings(), due: i.due_date })
        .collect();
    let receipt_found = match receipt {
        Some(code) => c
            .query_row(
                "SELECT l.receipt, l.amount, COALESCE(i.number, '') FROM ledger_payments l LEFT JOIN invoices i ON i.id = l.invoice_id WHERE l.receipt = ?1",
                [code],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?,
        None => None,
    };
    let mut stmt = c.prepare(
        "SELECT COALESCE(l.receipt, 'pending'), l.amount, COALESCE(i.number, '') FROM ledger_payments l LEFT JOIN invoices i ON i.id = l.invoice_id
         WHERE l.customer_id = ?1 ORDER BY l.id DESC LIMIT 3",
    )?;
    let recent_payments = stmt.query_map([customer_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(Facts {
        now,
        merchant: config.merchant_name.clone(),
        customer_name: if name.trim().is_empty() { "there".into() } else { name.split_whitespace().next().unwrap_or_default().to_string() },
        phone: phone.as_str().to_string(),
        phone_masked: phone.masked(),
        invoices,
        rules: Rules {
            confirm_threshold: config.agent.confirm_threshold.shillings(),
            allow_partial: config.agent.allow_partial,
            min_partial: config.agent.min_partial.shillings(),
            confirmation_timeout_minutes: config.agent.confirmation_timeout_minutes,
            only_language: config.agent.only_language,
        },
        receipt_found,
        recent_payments,
        opted_out,
    }))
}

struct ReceiptParams {
    amount: String,
    invoice: String,
    receipt: String,
    balance: String,
}

/// Which payment outcome a turn reports, recorded with the reply so it is told once.
enum Mark {
    Ledger { id: i64, attempt_id: Option<i64>, receipt_params: Option<ReceiptParams> },
    Attempt { id: i64, state: AttemptState },
}

impl Mark {
    fn record(&self, tx: &Transaction, now: DateTime<Utc>) -> Result<(), StoreError> {
        match self {
            Mark::Ledger { id, attempt_id, .. } => {
                tx.execute("UPDATE ledger_payments SET customer_notified_at = ?1 WHERE id = ?2", params![ts(now), id])?;
                if let Some(a) = attempt_id {
                    tx.execute("UPDATE payment_attempts SET notified_state = state WHERE id = ?1", [a])?;
                }
            }
            Mark::Attempt { id, state } => {
                tx.execute("UPDATE payment_attempts SET notified_state = ?1 WHERE id = ?2", params![state.as_str(), id])?;
            }
        }
        Ok(())
    }
}

type Outcome = (i64, String, Input, Mark);

/// Payments received but not yet told to the customer, and chat payment attempts that ended
/// without payment and were not yet told.
fn pending_outcomes(c: &Connection) -> Result<Vec<Outcome>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = c.prepare(
        "SELECT l.id, l.customer_id, l.amount, l.receipt, l.attempt_id, a.idempotency_key, i.number, i.balance,
                EXISTS (SELECT 1 FROM payment_events e WHERE e.attempt_id = l.attempt_id AND e.to_state = 'timed_out')
         FROM ledger_payments l JOIN invoices i ON i.id = l.invoice_id JOIN customers c ON c.id = l.customer_id
         LEFT JOIN payment_attempts a ON a.id = l.attempt_id
         WHERE l.customer_notified_at IS NULL AND c.phone IS NOT NULL ORDER BY l.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, i64>(7)?,
            r.get::<_, bool>(8)?,
        ))
    })?;
    for row in rows {
        let (id, customer_id, amount, receipt, attempt_id, key, invoice_number, balance, late) = row?;
        let params = ReceiptParams {
            amount: kes(amount),
            invoice: invoice_number.clone(),
            receipt: receipt.clone().unwrap_or_else(|| "-".into()),
            balance: kes(balance),
        };
        let input = Input::PaymentResult {
            key: key.unwrap_or_default(),
            state: AttemptState::Paid,
            result_code: Some(0),
            receipt,
            amount,
            balance_after: balance,
            invoice_number,
            correction: late,
        };
        out.push((customer_id, format!("paid:{id}"), input, Mark::Ledger { id, attempt_id, receipt_params: Some(params) }));
    }
    let mut stmt = c.prepare(
        "SELECT a.id, a.customer_id, a.idempotency_key, a.state, a.result_code, a.amount, i.number, i.balance
         FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id
         WHERE a.origin = 'chat' AND a.in_flight = 0 AND a.state NOT IN ('paid', 'needs_review')
           AND (a.notified_state IS NULL OR a.notified_state != a.state) ORDER BY a.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    for row in rows {
        let (id, customer_id, key, state, code, amount, invoice_number, balance) = row?;
        let Some(state) = AttemptState::parse(&state) else { continue };
        let input = Input::PaymentResult { key, state, result_code: code, receipt: None, amount, balance_after: balance, invoice_number, correction: false };
        out.push((customer_id, format!("attempt:{id}:{}", state.as_str()), input, Mark::Attempt { id, state }));
    }
    Ok(out)
}
