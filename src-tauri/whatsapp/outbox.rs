//! The durable outbox. Every message is a row before anything is sent; a worker claims one row at a
//! time (a lease taken with `UPDATE … RETURNING` on the single writer), sends it, and records the wamid
//! or the outcome. Per recipient, only the oldest unfinished row can be claimed, so messages to one
//! customer go out in order and one at a time.
//!
//! Crash safety: a row whose lease expired while it was `sending` (the worker died, or the request
//! timed out after it may have been accepted) is never resent at once. It is put "in doubt" for a grace
//! period. Every send carries the row's idempotency key as `biz_opaque_callback_data`, which WhatsApp
//! echoes in the message's status webhooks; when such a status arrives (`mark_sent_by_callback`) the
//! row is recorded as sent with that wamid and is not sent again. Only when the grace period passes
//! with no status at all is the row sent again (a lost receipt is worse than a rare duplicate).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::graph::{ErrorAction, GraphClient, GraphError, OutboundMessage, SendOptions};
use super::window;
use crate::clock::SharedClock;
use crate::config::WhatsappConfig;
use crate::domain::Msisdn;
use crate::store::{self, customers, parse_ts, settings, ts, Store, StoreError};

pub const PAUSED_KEY: &str = "whatsapp.sending_paused";

/// What to send, and the approved template to send instead when the customer's 24-hour window is shut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub message: OutboundMessage,
    pub fallback_template: Option<OutboundMessage>,
    /// Reminders, follow-ups: cancelled for a customer who opted out. Replies to the customer's own
    /// messages (and the opt-out confirmation itself) are not business-initiated.
    #[serde(default = "yes")]
    pub business_initiated: bool,
    /// The wamid this answers (`context.message_id`).
    #[serde(default)]
    pub reply_to: Option<String>,
}

fn yes() -> bool {
    true
}

impl Outgoing {
    /// A business-initiated message (a reminder) with its template for outside the window.
    pub fn business(message: OutboundMessage, fallback_template: Option<OutboundMessage>) -> Self {
        Outgoing { message, fallback_template, business_initiated: true, reply_to: None }
    }

    /// A reply to something the customer said.
    pub fn reply(message: OutboundMessage, reply_to: Option<&str>) -> Self {
        Outgoing { message, fallback_template: None, business_initiated: false, reply_to: reply_to.map(str::to_string) }
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    message: OutboundMessage,
    fallback_template: Option<OutboundMessage>,
}

/// Records the intent to send. `None`: a row with this key exists already (nothing new is sent).
/// A business-initiated message to a customer who opted out is recorded as cancelled.
/// Call `wake.notify_one()` on the worker's `Notify` after the transaction commits.
pub fn enqueue(tx: &Transaction, idempotency_key: &str, to: &Msisdn, outgoing: &Outgoing, now: DateTime<Utc>) -> store::Result<Option<i64>> {
    let payload = serde_json::to_string(&Payload { message: outgoing.message.clone(), fallback_template: outgoing.fallback_template.clone() })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let opted_out = outgoing.business_initiated && customers::by_phone(tx, to)?.is_some_and(|c| c.opted_out);
    let (state, error) = if opted_out { ("cancelled", Some("the customer opted out")) } else { ("pending", None) };
    let n = tx.execute(
        "INSERT INTO outbox (idempotency_key, recipient, kind, payload, state, next_attempt_at, created_at, business_initiated, reply_to, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)
         ON CONFLICT (idempotency_key) DO NOTHING",
        (idempotency_key, to.as_str(), outgoing.message.kind(), payload, state, ts(now), outgoing.business_initiated, &outgoing.reply_to, error),
    )?;
    Ok(if n == 1 { Some(tx.last_insert_rowid()) } else { None })
}

/// Cancels every unsent business-initiated message to `to` (on opt-out). Returns how many.
pub fn cancel_business_initiated(tx: &Transaction, to: &Msisdn, reason: &str) -> store::Result<usize> {
    Ok(tx.execute(
        "UPDATE outbox SET state = 'cancelled', error = ?2, lease_until = NULL
         WHERE recipient = ?1 AND business_initiated = 1 AND state = 'pending'",
        (to.as_str(), reason),
    )?)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PausedSending {
    pub reason: String,
    pub code: Option<i64>,
    pub at: String,
}

/// Why sending is paused, for the UI's attention queue; `None` while sending runs.
pub fn paused_reason(conn: &Connection) -> store::Result<Option<String>> {
    Ok(settings::get::<PausedSending>(conn, PAUSED_KEY)?.map(|p| p.reason))
}

pub fn pause(tx: &Transaction, reason: &str, code: Option<i64>, now: DateTime<Utc>) -> store::Result<()> {
    settings::set(tx, PAUSED_KEY, &PausedSending { reason: reason.to_string(), code, at: ts(now) }, now)?;
    store::audit(tx, now, "whatsapp", "sending_paused", "outbox", reason)
}

/// The merchant fixed the cause (a new token, an approved template): sending starts again.
pub fn resume(tx: &Transaction, now: DateTime<Utc>) -> store::Result<()> {
    tx.execute("DELETE FROM settings WHERE key = ?1", [PAUSED_KEY])?;
    store::audit(tx, now, "merchant", "sending_resumed", "outbox", "")
}

/// Limits and timings of the worker.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// All messages from this number, per second (WhatsApp's default is 80).
    pub messages_per_second: u32,
    /// The pair rate: one message per this interval to one customer (business time).
    pub pair_interval: chrono::Duration,
    /// How many messages to one customer may go out back to back before the interval applies.
    pub pair_burst: u32,
    /// Attempts before a retryable failure becomes final.
    pub max_attempts: u32,
    /// How long a claimed row belongs to one worker; longer than the HTTP timeout.
    pub lease: chrono::Duration,
    /// How long an in-doubt row waits for a status webhook before it is sent again.
    pub doubt_grace: chrono::Duration,
    /// Rows sent at the same time (different customers) by `run`.
    pub concurrency: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            messages_per_second: 80,
            pair_interval: chrono::Duration::seconds(6),
            pair_burst: 1,
            max_attempts: 10,
            lease: chrono::Duration::seconds(60),
            doubt_grace: chrono::Duration::minutes(10),
            concurrency: 4,
        }
    }
}

impl RateLimits {
    pub fn from_config(c: &WhatsappConfig) -> Self {
        RateLimits { messages_per_second: c.messages_per_second.max(1), ..Default::default() }
    }
}

/// What one `run_once` did.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkOutcome {
    Sent { id: i64, wamid: String, as_template: bool },
    /// Will be tried again at `at` (throughput, pair rate, transport trouble).
    Retry { id: i64, at: DateTime<Utc>, reason: String },
    /// The outcome of an attempt is unknown; waits for a status webhook until `until`.
    InDoubt { id: i64, until: DateTime<Utc> },
    Failed { id: i64, reason: String },
    Cancelled { id: i64, reason: String },
    /// Sending is paused (bad token, template misconfigured, account blocked).
    Paused { reason: String },
    /// Nothing due now; `next_due` is the earliest row waiting (business time).
    Idle { next_due: Option<DateTime<Utc>> },
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tokens refilled in real time: the number's throughput.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl TokenBucket {
    fn new(per_second: u32) -> Self {
        TokenBucket { rate: per_second.max(1) as f64, tokens: 1.0, last: tokio::time::Instant::now() }
    }

    /// Takes a token, or says how long until one is there. Capacity 1: sends are spaced at least
    /// 1/rate apart, so no one-second window ever holds more than `rate`.
    fn try_take(&mut self) -> Result<(), Duration> {
        let now = tokio::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(1.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

struct Claimed {
    id: i64,
    key: String,
    recipient: String,
    payload: Payload,
    attempts: u32,
    business_initiated: bool,
    reply_to: Option<String>,
    prefer_template: bool,
}

#[derive(Clone)]
pub struct OutboxWorker {
    store: Store,
    graph: GraphClient,
    clock: SharedClock,
    limits: RateLimits,
    bucket: Arc<Mutex<TokenBucket>>,
    wake: Arc<Notify>,
}

impl OutboxWorker {
    pub fn new(store: Store, graph: GraphClient, clock: SharedClock, limits: RateLimits) -> Self {
        let bucket = Arc::new(Mutex::new(TokenBucket::new(limits.messages_per_second)));
        OutboxWorker { store, graph, clock, limits, bucket, wake: Arc::new(Notify::new()) }
    }

    /// Shares a `Notify` with enqueuers: `notify_one()` after an enqueue commits wakes the worker.
    pub fn with_wake(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims one due row, sends it, records what happened.
    pub async fn run_once(&self) -> Result<WorkOutcome, OutboxError> {
        let now = self.clock.now();
        if let Some(reason) = self.store.read_async(paused_reason).await? {
            return Ok(WorkOutcome::Paused { reason });
        }
        let limits = self.limits.clone();
        let claimed = self.store.write_async(move |tx| {
            put_expired_leases_in_doubt(tx, now, limits.doubt_grace)?;
            claim(tx, now, &limits)
        });
        let Some(row) = claimed.await? else {
            let next_due = self.store.read_async(next_due).await?;
            return Ok(WorkOutcome::Idle { next_due });
        };
        self.deliver(row).await
    }

    async fn deliver(&self, row: Claimed) -> Result<WorkOutcome, OutboxError> {
        let now = self.clock.now();
        let to = match Msisdn::parse(&row.recipient) {
            Ok(m) => m,
            Err(e) => return self.finish(row.id, "failed", &e.to_string(), None).await,
        };
        let (opted_out, last_inbound) = {
            let to = to.clone();
            self.store
                .read_async(move |c| Ok((customers::by_phone(c, &to)?.is_some_and(|c| c.opted_out), window::last_inbound_at(c, &to)?)))
                .await?
        };
        if row.business_initiated && opted_out {
            return self.finish(row.id, "cancelled", "the customer opted out", None).await;
        }
        let window_open = window::is_open(last_inbound, now);
        if !window_open && !row.payload.message.is_template() && row.payload.fallback_template.is_none() {
            // Free-form outside the window would only earn a 131047: not attempted.
            return self.finish(row.id, "failed", "outside the 24-hour window and no template to send instead", Some(131047)).await;
        }
        let mut as_template = row.payload.message.is_template() || row.prefer_template || !window_open;
        loop {
            let message = if as_template && !row.payload.message.is_template() {
                match &row.payload.fallback_template {
                    Some(t) => t,
                    None => return self.finish(row.id, "failed", "outside the 24-hour window and no template to send instead", Some(131047)).await,
                }
            } else {
                &row.payload.message
            };
            if let Err(e) = message.validate() {
                return self.finish(row.id, "failed", &format!("not sent: {e}"), None).await;
            }
            self.take_token().await;
            let opts = SendOptions { reply_to: row.reply_to.as_deref(), callback_data: Some(&row.key) };
            match self.graph.send_with(&to, message, &opts).await {
                Ok(wamid) => {
                    let (id, w, preview, kind) = (row.id, wamid.clone(), message.preview(), message.kind());
                    let (limits, recipient, now) = (self.limits.clone(), to.clone(), self.clock.now());
                    self.store
                        .write_async(move |tx| {
                            tx.execute(
                                "UPDATE outbox SET state = 'sent', wamid = ?2, sent_at = ?3, sent_as = ?4, error = NULL, error_code = NULL,
                                        lease_until = NULL, in_doubt_since = NULL
                                 WHERE id = ?1 AND (wamid IS NULL OR wamid = ?2)",
                                (id, &w, ts(now), if as_template { "template" } else { "message" }),
                            )?;
                            advance_pair_rate(tx, recipient.as_str(), now, &limits)?;
                            record_outbound_message(tx, &recipient, &w, kind, &preview, now)
                        })
                        .await?;
                    self.wake.notify_one();
                    return Ok(WorkOutcome::Sent { id: row.id, wamid, as_template });
                }
                Err(err) => {
                    if matches!(err.action(), ErrorAction::UseTemplate) && !as_template && row.payload.fallback_template.is_some() {
                        tracing::info!(outbox = row.id, to = %to, "outside the 24-hour window (131047); sending the template instead");
                        let id = row.id;
                        self.store
                            .write_async(move |tx| Ok(tx.execute("UPDATE outbox SET sent_as = 'template' WHERE id = ?1", [id])?))
                            .await?;
                        as_template = true;
                        continue;
                    }
                    return self.failed_attempt(&row, &to, err).await;
                }
            }
        }
    }

    async fn failed_attempt(&self, row: &Claimed, to: &Msisdn, err: GraphError) -> Result<WorkOutcome, OutboxError> {
        let now = self.clock.now();
        let code = err.code();
        let message = err.to_string();
        tracing::warn!(outbox = row.id, to = %to, error = %message, "WhatsApp send failed");
        if err.outcome_unknown() {
            let until = now + self.limits.doubt_grace;
            let (id, m) = (row.id, message.clone());
            self.store
                .write_async(move |tx| {
                    tx.execute(
                        "UPDATE outbox SET state = 'pending', lease_until = NULL, in_doubt_since = ?2, next_attempt_at = ?3, error = ?4
                         WHERE id = ?1 AND state = 'sending'",
                        (id, ts(now), ts(until), format!("outcome unknown ({m}); waiting for a status before sending again")),
                    )?;
                    Ok(())
                })
                .await?;
            return Ok(WorkOutcome::InDoubt { id: row.id, until });
        }
        if let GraphError::Connect(_) = &err {
            // Never reached WhatsApp (offline, DNS): retry every 30 s without using up attempts, so a
            // desktop that is offline for a while sends everything when it is back.
            let at = now + chrono::Duration::seconds(30);
            let (id, m) = (row.id, message.clone());
            self.store
                .write_async(move |tx| {
                    Ok(tx.execute(
                        "UPDATE outbox SET state = 'pending', lease_until = NULL, attempts = attempts - 1, next_attempt_at = ?2, error = ?3
                         WHERE id = ?1 AND state = 'sending'",
                        (id, ts(at), &m),
                    )?)
                })
                .await?;
            return Ok(WorkOutcome::Retry { id: row.id, at, reason: message });
        }
        match err.action() {
            ErrorAction::Retry { after } => {
                if row.attempts >= self.limits.max_attempts {
                    return self.finish(row.id, "failed", &format!("gave up after {} attempts: {message}", row.attempts), code).await;
                }
                let pair_limited = code == Some(131056);
                let backoff = if pair_limited {
                    // WhatsApp: retry after 4^n seconds.
                    Duration::from_secs(4u64.saturating_pow(row.attempts.min(6)))
                } else {
                    Duration::from_secs(1u64 << row.attempts.saturating_sub(1).min(10))
                };
                let wait = chrono::Duration::from_std(after.max(backoff).min(Duration::from_secs(900))).unwrap_or(chrono::Duration::minutes(15));
                let at = now + wait;
                let (id, m, recipient) = (row.id, message.clone(), to.as_str().to_string());
                self.store
                    .write_async(move |tx| {
                        tx.execute(
                            "UPDATE outbox SET state = 'pending', lease_until = NULL, next_attempt_at = ?2, error = ?3, error_code = ?4
                             WHERE id = ?1 AND state = 'sending'",
                            (id, ts(at), &m, code),
                        )?;
                        if pair_limited {
                            set_pair_rate(tx, &recipient, at)?;
                        }
                        Ok(())
                    })
                    .await?;
                Ok(WorkOutcome::Retry { id: row.id, at, reason: message })
            }
            ErrorAction::PauseAndAlert { reason } => {
                let (id, r, m) = (row.id, reason.clone(), message.clone());
                self.store
                    .write_async(move |tx| {
                        // The row waits for the merchant's fix; this attempt does not count against it.
                        tx.execute(
                            "UPDATE outbox SET state = 'pending', lease_until = NULL, attempts = attempts - 1, error = ?2, error_code = ?3
                             WHERE id = ?1 AND state = 'sending'",
                            (id, &m, code),
                        )?;
                        pause(tx, &r, code, now)
                    })
                    .await?;
                tracing::error!(reason = %reason, "WhatsApp sending paused");
                Ok(WorkOutcome::Paused { reason })
            }
            ErrorAction::Undeliverable => {
                let phone = to.as_str().to_string();
                let out = self.finish(row.id, "failed", &message, code).await?;
                self.store
                    .write_async(move |tx| {
                        Ok(tx.execute("UPDATE customers SET wa_undeliverable_at = ?2 WHERE phone = ?1", (phone, ts(now)))?)
                    })
                    .await?;
                Ok(out)
            }
            ErrorAction::RespectOptOut => {
                let recipient = to.clone();
                let out = self.finish(row.id, "cancelled", &message, code).await?;
                self.store.write_async(move |tx| opt_out_customer(tx, &recipient, "whatsapp:131050", now).map(|_| ())).await?;
                Ok(out)
            }
            ErrorAction::UseTemplate => {
                self.finish(row.id, "failed", &format!("{message}; no template to send instead"), code).await
            }
            ErrorAction::AskForText | ErrorAction::Drop { .. } => self.finish(row.id, "failed", &message, code).await,
        }
    }

    async fn finish(&self, id: i64, state: &'static str, reason: &str, code: Option<i64>) -> Result<WorkOutcome, OutboxError> {
        let r = reason.to_string();
        self.store
            .write_async(move |tx| {
                Ok(tx.execute(
                    "UPDATE outbox SET state = ?2, error = ?3, error_code = ?4, lease_until = NULL WHERE id = ?1",
                    (id, state, &r, code),
                )?)
            })
            .await?;
        Ok(match state {
            "cancelled" => WorkOutcome::Cancelled { id, reason: reason.to_string() },
            _ => WorkOutcome::Failed { id, reason: reason.to_string() },
        })
    }

    async fn take_token(&self) {
        loop {
            let wait = match self.bucket.lock().unwrap_or_else(|p| p.into_inner()).try_take() {
                Ok(()) => return,
                Err(wait) => wait,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends until `shutdown` resolves: `concurrency` loops, woken by the `Notify` on enqueue and
    /// otherwise polling at least once a second. A send in progress at shutdown is finished first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..self.limits.concurrency.max(1) {
            let worker = self.clone();
            let mut stop = stop_rx.clone();
            loops.spawn(async move {
                while !*stop.borrow() {
                    let pause = match worker.run_once().await {
                        Ok(WorkOutcome::Idle { next_due }) => {
                            let now = worker.clock.now();
                            next_due.map(|d| (d - now).to_std().unwrap_or(Duration::ZERO)).unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(1))
                        }
                        Ok(WorkOutcome::Paused { .. }) => Duration::from_secs(5),
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::error!(error = %e, "outbox worker");
                            Duration::from_secs(1)
                        }
                    };
                    tokio::select! {
                        _ = worker.wake.notified() => {},
                        _ = tokio::time::sleep(pause) => {},
                        _ = stop.changed() => {},
                    }
                }
            });
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
    }
}

fn put_expired_leases_in_doubt(tx: &Transaction, now: DateTime<Utc>, grace: chrono::Duration) -> store::Result<usize> {
    Ok(tx.execute(
        "UPDATE outbox SET state = 'pending', lease_until = NULL, in_doubt_since = ?1, next_attempt_at = ?2,
                error = 'a worker stopped during the send; waiting for a status before sending again'
         WHERE state = 'sending' AND lease_until <= ?1",
        (ts(now), ts(now + grace)),
    )?)
}

fn claim(tx: &Transaction, now: DateTime<Utc>, limits: &RateLimits) -> store::Result<Option<Claimed>> {
    let burst_tolerance = limits.pair_interval * (limits.pair_burst.max(1) as i32 - 1);
    let row = tx
        .query_row(
            "UPDATE outbox SET state = 'sending', lease_until = ?2, attempts = attempts + 1
             WHERE id = (
                SELECT o.id FROM outbox o
                WHERE o.state = 'pending' AND o.next_attempt_at <= ?1
                  AND o.id = (SELECT MIN(h.id) FROM outbox h WHERE h.recipient = o.recipient AND h.state IN ('pending', 'sending'))
                  AND NOT EXISTS (SELECT 1 FROM whatsapp_pair_rate p WHERE p.recipient = o.recipient AND p.tat > ?3)
                ORDER BY o.next_attempt_at, o.id
                LIMIT 1)
             RETURNING id, idempotency_key, recipient, payload, attempts, business_initiated, reply_to, sent_as",
            (ts(now), ts(now + limits.lease), ts(now + burst_tolerance)),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((id, key, recipient, payload, attempts, business_initiated, reply_to, sent_as)) = row else {
        return Ok(None);
    };
    let payload: Payload = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("outbox {id}: {e}")))?;
    Ok(Some(Claimed { id, key, recipient, payload, attempts, business_initiated, reply_to, prefer_template: sent_as.as_deref() == Some("template") }))
}

/// The earliest time a waiting row becomes due (ignoring the pair rate).
fn next_due(conn: &Connection) -> store::Result<Option<DateTime<Utc>>> {
    let raw: Option<String> = conn.query_row("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'", [], |r| r.get(0))?;
    raw.map(|s| parse_ts(&s)).transpose()
}

/// GCRA: the recipient's theoretical arrival time moves one interval past max(tat, now).
fn advance_pair_rate(tx: &Transaction, recipient: &str, now: DateTime<Utc>, limits: &RateLimits) -> store::Result<()> {
    let tat: Option<String> = tx.query_row("SELECT tat FROM whatsapp_pair_rate WHERE recipient = ?1", [recipient], |r| r.get(0)).optional()?;
    let base = match tat {
        Some(t) => parse_ts(&t)?.max(now),
        None => now,
    };
    set_pair_rate(tx, recipient, base + limits.pair_interval)
}

fn set_pair_rate(tx: &Transaction, recipient: &str, tat: DateTime<Utc>) -> store::Result<()> {
    tx.execute(
        "INSERT INTO whatsapp_pair_rate (recipient, tat) VALUES (?1, ?2) ON CONFLICT (recipient) DO UPDATE SET tat = excluded.tat",
        (recipient, ts(tat)),
    )?;
    Ok(())
}

/// A status webhook named this row (by `biz_opaque_callback_data`) with its wamid: the message went
/// out. Records it if the row had no wamid yet. Returns true when the row changed.
pub fn mark_sent_by_callback(tx: &Transaction, idempotency_key: &str, wamid: &str, at: DateTime<Utc>) -> store::Result<bool> {
    let row: Option<(i64, String, String, Option<String>)> = tx
        .query_row(
            "UPDATE outbox SET state = 'sent', wamid = ?2, sent_at = ?3, lease_until = NULL, in_doubt_since = NULL, error = NULL
             WHERE idempotency_key = ?1 AND wamid IS NULL AND state IN ('pending', 'sending')
             RETURNING id, recipient, payload, sent_as",
            (idempotency_key, wamid, ts(at)),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((id, recipient, payload, sent_as)) = row else { return Ok(false) };
    tracing::info!(outbox = id, "a status webhook confirmed a send whose outcome was unknown");
    if let (Ok(to), Ok(p)) = (Msisdn::parse(&recipient), serde_json::from_str::<Payload>(&payload)) {
        let msg = match (&p.fallback_template, sent_as.as_deref()) {
            (Some(t), Some("template")) => t,
            _ => &p.message,
        };
        record_outbound_message(tx, &to, wamid, msg.kind(), &msg.preview(), at)?;
    }
    Ok(true)
}

pub(crate) fn ensure_conversation(tx: &Transaction, customer_id: i64, now: DateTime<Utc>) -> store::Result<i64> {
    Ok(tx.query_row(
        "INSERT INTO conversations (customer_id, updated_at) VALUES (?1, ?2)
         ON CONFLICT (customer_id) DO UPDATE SET updated_at = excluded.updated_at
         RETURNING id",
        (customer_id, ts(now)),
        |r| r.get(0),
    )?)
}

/// The sent message in the customer's conversation, with any status that already arrived for it.
pub(crate) fn record_outbound_message(tx: &Transaction, to: &Msisdn, wamid: &str, kind: &str, body: &str, now: DateTime<Utc>) -> store::Result<()> {
    let customer_id = customers::upsert(tx, "", Some(to), now)?;
    let conversation = ensure_conversation(tx, customer_id, now)?;
    tx.execute(
        "INSERT INTO messages (conversation_id, direction, wamid, kind, body, status, status_at, at)
         SELECT ?1, 'out', ?2, ?3, ?4, COALESCE(s.status, 'accepted'), s.status_at, ?5
         FROM (SELECT 1) LEFT JOIN whatsapp_statuses s ON s.wamid = ?2 WHERE true
         ON CONFLICT (wamid) DO NOTHING",
        (conversation, wamid, kind, body, ts(now)),
    )?;
    tx.execute(
        "UPDATE messages SET error_code = (SELECT error_code FROM whatsapp_statuses WHERE wamid = ?1),
                             error_detail = (SELECT error_detail FROM whatsapp_statuses WHERE wamid = ?1)
         WHERE wamid = ?1 AND EXISTS (SELECT 1 FROM whatsapp_statuses WHERE wamid = ?1 AND error_code IS NOT NULL)",
        [wamid],
    )?;
    Ok(())
}

/// Opts the customer out of business-initiated messages and cancels those waiting. True if this
/// changed anything (they were not opted out already).
pub fn opt_out_customer(tx: &Transaction, phone: &Msisdn, source: &str, now: DateTime<Utc>) -> store::Result<bool> {
    let n = tx.execute(
        "UPDATE customers SET opted_out_at = ?2, opt_out_source = ?3 WHERE phone = ?1 AND opted_out_at IS NULL",
        (phone.as_str(), ts(now), source),
    )?;
    let cancelled = cancel_business_initiated(tx, phone, "the customer opted out")?;
    if n > 0 {
        store::audit(tx, now, "customer", "opted_out", &phone.masked(), &format!("{source}; {cancelled} waiting messages cancelled"))?;
    }
    Ok(n > 0)
}
