//! The payments service: the imperative shell around the attempt state machine. It records every
//! intent before the push, pushes once, and reconciles callbacks, STK Query answers and C2B records
//! into the ledger exactly once, whatever order they arrive in.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rusqlite::OptionalExtension;
use serde::Serialize;
use tokio::sync::{broadcast, Notify};

use super::attempt::{self, Cause, Effect, Event, Expected, Outcome, State};
use super::ledger::{self, Applied, Receipt, Source};
use super::repo::{self, Attempt, Changes, NewAttempt, Origin};
use crate::clock::SharedClock;
use crate::daraja::{DarajaClient, DarajaError, StkPushRequest, StkQueryAnswer};
use crate::domain::{Kes, Msisdn};
use crate::store::{invoices, Store, StoreError};

/// When to ask STK Query after a push: the prompt lives about a minute, callbacks can take minutes.
const QUERY_SCHEDULE_SECS: &[i64] = &[20, 40, 60, 90, 120, 180, 240];
/// With no final answer this long after the push, the attempt times out (a late success still credits).
const DEADLINE_SECS: i64 = 300;
/// One more query this long after timing out, to catch a success whose callback never came.
const LATE_CHECK_SECS: i64 = 600;
/// "A transaction is already in process" for the phone: wait at least this long before sending.
const LOCK_WAIT_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InFlight(String),
    #[error("this customer has had {0} payment prompts in the last hour; try again later")]
    TooManyPushes(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PaymentError {
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::Invalid(_) => "invalid",
            PaymentError::InFlight(_) => "in_flight",
            PaymentError::TooManyPushes(_) => "too_many_pushes",
            PaymentError::Store(StoreError::NotFound(_)) => "not_found",
            PaymentError::Store(_) => "store",
        }
    }
}

/// What a payment request asks for. The amount must come from the ledger or the merchant, never from
/// free text: the caller (agent policy or merchant UI) has already checked it against the balance.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub invoice_id: i64,
    pub amount: Kes,
    pub phone: Msisdn,
    pub origin: Origin,
    /// One per confirmed intent: asking twice with the same key pushes once.
    pub idempotency_key: String,
}

/// Broadcast after every committed change, for the agent, the UI and OS notifications.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentUpdate {
    pub attempt_id: Option<i64>,
    pub invoice_id: Option<i64>,
    pub state: Option<State>,
    pub result_code: Option<i64>,
    /// Money landed in the ledger with this update.
    pub credited: Option<Kes>,
    pub receipt: Option<String>,
    pub invoice_paid: bool,
    /// A late success after a timeout: the customer and merchant were told otherwise before.
    pub correction: bool,
    pub detail: String,
}

#[derive(Clone)]
pub struct Payments {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    daraja: DarajaClient,
    callback_url: String,
    confirm_with_query: bool,
    max_pushes_per_hour: u32,
    updates: broadcast::Sender<PaymentUpdate>,
    wake: Notify,
}

pub struct PaymentsConfig {
    /// Full STK callback URL including the secret path token.
    pub callback_url: String,
    pub confirm_with_query: bool,
    pub max_pushes_per_hour: u32,
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

impl Payments {
    pub fn new(store: Store, clock: SharedClock, daraja: DarajaClient, config: PaymentsConfig) -> Payments {
        let (updates, _) = broadcast::channel(256);
        Payments {
            inner: Arc::new(Inner {
                store,
                clock,
                daraja,
                callback_url: config.callback_url,
                confirm_with_query: config.confirm_with_query,
                max_pushes_per_hour: config.max_pushes_per_hour,
                updates,
                wake: Notify::new(),
            }),
        }
    }

    pub fn daraja(&self) -> &DarajaClient {
        &self.inner.daraja
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PaymentUpdate> {
        self.inner.updates.subscribe()
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn publish(&self, update: PaymentUpdate) {
        let _ = self.inner.updates.send(update);
    }

    /// Records the intent, then pushes. Asking again with the same idempotency key returns the
    /// same attempt without a second push.
    pub async fn request(&self, req: PaymentRequest) -> Result<Attempt, PaymentError> {
        if req.amount.is_zero() || req.amount > Kes::MAX_STK {
            return Err(PaymentError::Invalid(format!("{} is outside M-Pesa's limits for one payment (KES 1 to KES 250,000)", req.amount)));
        }
        let now = self.now();
        let max = self.inner.max_pushes_per_hour as i64;
        let r = req.clone();
        let (attempt, created) = self
            .store()
            .write_async(move |tx| {
                if let Some(existing) = repo::by_key(tx, &r.idempotency_key)? {
                    return Ok(Ok((existing, false)));
                }
                let inv = invoices::get(tx, r.invoice_id)?;
                if !inv.status.is_collectable() || inv.balance.is_zero() {
                    return Ok(Err(PaymentError::Invalid(format!("invoice {} has nothing to pay ({})", inv.number, inv.status.as_str()))));
                }
                if r.amount > inv.balance {
                    return Ok(Err(PaymentError::Invalid(format!("{} is more than the balance of {} on {}", r.amount, inv.balance, inv.number))));
                }
                let recent = repo::pushes_since(tx, r.phone.as_str(), now - secs(3600))?;
                if recent >= max {
                    return Ok(Err(PaymentError::TooManyPushes(recent)));
                }
                let new = NewAttempt {
                    idempotency_key: &r.idempotency_key,
                    invoice_id: r.invoice_id,
                    customer_id: inv.customer_id,
                    phone: r.phone.as_str(),
                    amount: r.amount,
                    origin: r.origin,
                };
                match repo::insert(tx, &new, now) {
                    Ok(v) => Ok(Ok(v)),
                    Err(StoreError::Conflict(m)) => Ok(Err(PaymentError::InFlight(m))),
                    Err(e) => Err(e),
                }
            })
            .await??;
        if created {
            tracing::info!(attempt = attempt.id, amount = %attempt.amount, "payment requested");
            self.push(attempt.id).await?;
        }
        Ok(self.store().read_async(move |c| repo::get(c, attempt.id)).await?)
    }

    /// A merchant-initiated request ("Request payment", `malipo request-payment`): the amount defaults
    /// to the balance and the phone to the customer's number.
    pub async fn request_for_invoice(&self, invoice_id: i64, amount: Option<Kes>, phone: Option<Msisdn>) -> Result<Attempt, PaymentError> {
        let (inv, customer_phone) = self
            .store()
            .read_async(move |c| {
                let inv = invoices::get(c, invoice_id)?;
                let phone: Option<String> = c.query_row("SELECT phone FROM customers WHERE id = ?1", [inv.customer_id], |r| r.get(0))?;
                Ok((inv, phone))
            })
            .await?;
        let phone = match phone {
            Some(p) => p,
            None => match customer_phone.as_deref().map(Msisdn::parse) {
                Some(Ok(p)) => p,
                _ => return Err(PaymentError::Invalid(format!("the customer of {} has no valid phone number", inv.number))),
            },
        };
        let amount = amount.unwrap_or(inv.balance);
        let key = format!("merchant:{}:{}:{}", inv.id, amount.shillings(), self.now().timestamp_millis());
        self.request(PaymentRequest { invoice_id, amount, phone, origin: Origin::Merchant, idempotency_key: key }).await
    }

    /// Sends the STK push for a `Pending` attempt. `Sending` is committed before the request so a
    /// crash mid-request is never mistaken for "not sent".
    async fn push(&self, attempt_id: i64) -> Result<(), PaymentError> {
        let now = self.now();
        let Some(attempt) = self
            .store()
            .write_async(move |tx| {
                let a = repo::get(tx, attempt_id)?;
                if a.state != State::Pending {
                    return Ok(None);
                }
                let t = attempt::apply(a.state, &expected(&a), &Event::Sending).expect("pending → sending");
                repo::record(tx, &a, &t, Cause::Push, Changes { next_check_at: Some(None), ..Default::default() }, now)?;
                Ok(Some(a))
            })
            .await?
        else {
            return Ok(());
        };
        let phone = Msisdn::parse(&attempt.phone).map_err(|e| PaymentError::Invalid(e.to_string()))?;
        let invoice = self.store().read_async(move |c| invoices::get(c, attempt.invoice_id)).await?;
        let req = StkPushRequest {
            amount: attempt.amount,
            phone,
            callback_url: self.inner.callback_url.clone(),
            account_reference: invoice.number.clone(),
            description: format!("Invoice {}", invoice.number),
        };
        let answer = self.inner.daraja.stk_push(&req).await;
        let now = self.now();
        let (event, changes) = match &answer {
            Ok(ok) => (
                Event::Accepted { checkout_request_id: ok.checkout_request_id.clone() },
                Changes {
                    checkout_request_id: Some(ok.checkout_request_id.clone()),
                    merchant_request_id: Some(ok.merchant_request_id.clone()),
                    next_check_at: Some(Some(now + secs(QUERY_SCHEDULE_SECS[0]))),
                    ..Default::default()
                },
            ),
            Err(DarajaError::SubscriberLocked { .. }) => {
                (Event::SubscriberLocked, Changes { next_check_at: Some(Some(now + secs(LOCK_WAIT_SECS))), ..Default::default() })
            }
            Err(e) if e.push_outcome_unknown() => (
                Event::NoAnswer { reason: e.to_string() },
                // No CheckoutRequestID to query: a callback (matched by phone and amount) or the deadline settles it.
                Changes { next_check_at: Some(Some(now + secs(DEADLINE_SECS))), ..Default::default() },
            ),
            Err(e) => (Event::Rejected { code: e.code().to_string(), message: e.to_string() }, Changes { next_check_at: Some(None), ..Default::default() }),
        };
        if let Err(e) = &answer {
            tracing::warn!(attempt = attempt_id, error = %e, "STK push not accepted");
        }
        self.transition(attempt_id, event, Cause::Push, changes, now).await?;
        // A fast callback may have arrived before the answer above was recorded: settle it now.
        if let Ok(accepted) = answer {
            super::webhooks::process_pending(self.store(), self, Some(accepted.checkout_request_id)).await?;
        }
        Ok(())
    }

    /// Applies one event to an attempt in one transaction, carrying out its effect on the ledger.
    async fn transition(&self, attempt_id: i64, event: Event, cause: Cause, changes: Changes, now: DateTime<Utc>) -> Result<(), PaymentError> {
        let update = self
            .store()
            .write_async(move |tx| {
                let a = repo::get(tx, attempt_id)?;
                let t = match attempt::apply(a.state, &expected(&a), &event) {
                    Ok(t) => t,
                    Err(ignored) => {
                        tracing::info!(attempt = attempt_id, %ignored, "event changes nothing");
                        return Ok(None);
                    }
                };
                let mut changes = changes;
                let mut update = PaymentUpdate {
                    attempt_id: Some(a.id),
                    invoice_id: Some(a.invoice_id),
                    state: Some(t.to),
                    result_code: changes.result.as_ref().map(|r| r.0),
                    credited: None,
                    receipt: None,
                    invoice_paid: false,
                    correction: false,
                    detail: t.detail.clone(),
                };
                match &t.effect {
                    Effect::Credit { receipt, late } => {
                        // A query confirms without a receipt; use the one a callback reported, if any.
                        let receipt = receipt.clone().or_else(|| a.receipt.clone());
                        let source = if a.origin == "chat" { Source::StkChat } else { Source::StkMerchant };
                        let applied = ledger::apply(
                            tx,
                            &Receipt {
                                invoice_id: Some(a.invoice_id),
                                customer_id: Some(a.customer_id),
                                amount: a.amount,
                                receipt: receipt.clone(),
                                source,
                                attempt_id: Some(a.id),
                                reference: a.checkout_request_id.clone().unwrap_or_default(),
                                paid_at: now,
                            },
                            now,
                        )?;
                        if let Applied::New { applied, invoice_paid, .. } = applied {
                            update.credited = Some(applied);
                            update.invoice_paid = invoice_paid;
                        }
                        update.receipt = receipt.clone();
                        update.correction = *late;
                        if receipt.is_some() {
                            changes.receipt = receipt;
                        }
                        changes.next_check_at = Some(None);
                        repo::record(tx, &a, &t, cause, changes, now)?;
                        return Ok(Some(update));
                    }
                    Effect::AttachReceipt { receipt } => {
                        if let Some(ledger_id) = ledger_id_for_attempt(tx, a.id)? {
                            ledger::attach_receipt(tx, ledger_id, receipt)?;
                        }
                        update.receipt = Some(receipt.clone());
                        changes.receipt = Some(receipt.clone());
                        repo::record(tx, &a, &t, cause, changes, now)?;
                        return Ok(Some(update));
                    }
                    Effect::Report | Effect::Review { .. } | Effect::None => {}
                }
                if t.to.is_final() && t.to != State::TimedOut {
                    changes.next_check_at = Some(None);
                }
                if t.to == State::TimedOut {
                    changes.next_check_at = Some(Some(now + secs(LATE_CHECK_SECS - DEADLINE_SECS)));
                }
                repo::record(tx, &a, &t, cause, changes, now)?;
                Ok(Some(update))
            })
            .await?;
        if let Some(u) = update {
            tracing::info!(attempt = attempt_id, state = ?u.state, detail = %u.detail, "payment attempt updated");
            self.publish(u);
        }
        Ok(())
    }

    /// Does every check that is due: re-sends a push that waited on a subscriber lock, asks STK Query
    /// about pushed attempts, and times out attempts with no final answer. Returns how many it handled.
    pub async fn poll_due(&self) -> Result<usize, PaymentError> {
        let now = self.now();
        let due = self.store().read_async(move |c| repo::due(c, now)).await?;
        for a in &due {
            if let Err(e) = self.check(a, now).await {
                tracing::warn!(attempt = a.id, error = %e, "payment check failed; will retry");
                let id = a.id;
                self.store().write_async(move |tx| repo::reschedule(tx, id, Some(now + secs(30)), true, now)).await?;
            }
        }
        Ok(due.len())
    }

    async fn check(&self, a: &Attempt, now: DateTime<Utc>) -> Result<(), PaymentError> {
        let id = a.id;
        let age = (now - a.created_at).num_seconds();
        match a.state {
            State::Pending => self.push(id).await,
            State::Pushed | State::Unknown | State::TimedOut => {
                let Some(checkout) = a.checkout_request_id.clone() else {
                    // Nothing to query: only a callback (matched on phone and amount) can settle it.
                    let deadline = a.created_at + secs(DEADLINE_SECS);
                    if a.state == State::TimedOut || now < deadline {
                        let next = (a.state != State::TimedOut).then_some(deadline);
                        self.store().write_async(move |tx| repo::reschedule(tx, id, next, false, now)).await?;
                        return Ok(());
                    }
                    return self.transition(id, Event::Deadline, Cause::Timeout, Changes::default(), now).await;
                };
                match self.inner.daraja.stk_query(&checkout).await {
                    Ok(StkQueryAnswer::Final { result_code, result_desc }) => {
                        let outcome = Outcome { result_code, result_desc: result_desc.clone(), receipt: None, amount: None, phone: None };
                        let changes = Changes { result: Some((result_code, result_desc)), count_check: true, ..Default::default() };
                        self.transition(id, Event::Result { outcome, cause: Cause::Query }, Cause::Query, changes, now).await
                    }
                    Ok(StkQueryAnswer::Processing) | Err(_) if a.state == State::TimedOut => {
                        self.store().write_async(move |tx| repo::reschedule(tx, id, None, true, now)).await?;
                        Ok(())
                    }
                    Ok(StkQueryAnswer::Processing) | Err(_) if age >= DEADLINE_SECS => {
                        self.transition(id, Event::Deadline, Cause::Timeout, Changes { count_check: true, ..Default::default() }, now).await
                    }
                    other => {
                        if let Err(e) = other {
                            tracing::info!(attempt = id, error = %e, "STK Query failed; asking again later");
                        }
                        let next = next_query_at(a.created_at, now);
                        self.store().write_async(move |tx| repo::reschedule(tx, id, Some(next), true, now)).await?;
                        Ok(())
                    }
                }
            }
            _ => {
                self.store().write_async(move |tx| repo::reschedule(tx, id, None, false, now)).await?;
                Ok(())
            }
        }
    }

    /// At start-up: an attempt left in `Sending` by a crash may have been pushed; it becomes
    /// `Unknown` and is never re-sent. Everything else resumes through `poll_due`.
    pub async fn resume(&self) -> Result<usize, PaymentError> {
        let stuck = self.store().read_async(repo::sending).await?;
        let now = self.now();
        for a in &stuck {
            let changes = Changes { next_check_at: Some(Some(now)), ..Default::default() };
            self.transition(a.id, Event::Interrupted, Cause::Recovery, changes, now).await?;
        }
        Ok(stuck.len())
    }

    /// Runs the poller until `shutdown`: resumes interrupted attempts first, then every few seconds (or
    /// at once when woken) settles stored Daraja events and does the due checks.
    pub async fn run_poller(self, shutdown: impl std::future::Future<Output = ()>) {
        if let Err(e) = self.resume().await {
            tracing::error!(error = %e, "could not resume payment attempts");
        }
        tokio::pin!(shutdown);
        loop {
            // Callbacks that came before their attempt could take them (e.g. during start-up) are retried.
            if let Err(e) = super::webhooks::process_pending(self.store(), &self, None).await {
                tracing::warn!(error = %e, "could not process stored Daraja events");
            }
            if let Err(e) = self.poll_due().await {
                tracing::warn!(error = %e, "payment poller");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            }
        }
    }

    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// An STK callback, already authenticated, persisted and deduplicated by the webhook handler.
    pub async fn on_stk_callback(&self, cb: crate::daraja::callback::StkCallback) -> Result<(), PaymentError> {
        let now = self.now();
        let checkout = cb.checkout_request_id.clone();
        let (phone, amount) = (cb.phone.clone(), cb.amount);
        let attempt = self
            .store()
            .read_async(move |c| match repo::by_checkout(c, &checkout)? {
                Some(a) => Ok(Some(a)),
                None => match (phone, amount) {
                    (Some(p), Some(amt)) => repo::unknown_without_checkout(c, &p, amt),
                    _ => Ok(None),
                },
            })
            .await?;
        let Some(mut a) = attempt else {
            // Kept unprocessed: the push's answer may not be recorded yet (see `push`).
            return Err(PaymentError::Invalid(format!("no payment attempt has CheckoutRequestID {} yet", cb.checkout_request_id)));
        };
        if a.checkout_request_id.is_none() {
            // The push got no answer, so this callback is the first we hear of its CheckoutRequestID.
            let (id, checkout) = (a.id, cb.checkout_request_id.clone());
            a = self.store().write_async(move |tx| {
                repo::set_checkout(tx, id, &checkout)?;
                repo::get(tx, id)
            }).await?;
        }
        let outcome = Outcome {
            result_code: cb.result_code,
            result_desc: cb.result_desc.clone(),
            receipt: cb.receipt.clone(),
            amount: cb.amount,
            phone: cb.phone.clone(),
        };
        let awaiting = matches!(a.state, State::Pushed | State::Unknown | State::TimedOut);
        if self.inner.confirm_with_query && cb.result_code == 0 && awaiting && mismatch_reason(&a, &outcome).is_none() {
            // Callbacks are unsigned: keep the receipt and credit only when STK Query agrees (now).
            let (id, receipt) = (a.id, cb.receipt.clone());
            self.store()
                .write_async(move |tx| {
                    if let Some(r) = &receipt {
                        repo::remember_receipt(tx, id, r)?;
                    }
                    repo::reschedule(tx, id, Some(now), false, now)
                })
                .await?;
            self.wake();
            return Ok(());
        }
        // A failure, a mismatch (→ review), or a success when query confirmation is off.
        let changes = Changes { result: Some((cb.result_code, cb.result_desc.clone())), ..Default::default() };
        self.transition(a.id, Event::Result { outcome, cause: Cause::Callback }, Cause::Callback, changes, now).await
    }
}

/// How a C2B payment was matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum C2bMatch {
    /// Already in the ledger (same TransID, or the receipt of an STK payment credited earlier).
    Duplicate,
    /// Credited to this invoice.
    Invoice(i64),
    /// No invoice matched: queued for the merchant.
    Unmatched(i64),
}

impl Payments {
    /// A C2B confirmation (the customer paid the paybill or till directly). Matched on the account
    /// reference, then on the customer (M-Pesa sends the number masked or as a SHA-256 hash) and amount,
    /// else queued for the merchant.
    pub async fn on_c2b(&self, p: crate::daraja::callback::C2bPayment) -> Result<C2bMatch, PaymentError> {
        let now = self.now();
        let amount = Kes::positive(p.amount).map_err(|e| PaymentError::Invalid(e.to_string()))?;
        let (matched, update) = self
            .store()
            .write_async(move |tx| {
                let invoice = match invoices::by_number(tx, &p.bill_ref_number)? {
                    Some(inv) => Some(inv),
                    None => invoice_for_payer(tx, &p.msisdn, amount)?,
                };
                let Some(inv) = invoice else {
                    tx.execute(
                        "INSERT INTO unmatched_payments (trans_id, amount, bill_ref, msisdn, payer_name, received_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (trans_id) DO NOTHING",
                        rusqlite::params![p.trans_id, amount.shillings(), p.bill_ref_number, p.msisdn, p.first_name, crate::store::ts(now)],
                    )?;
                    let id: i64 = tx.query_row("SELECT id FROM unmatched_payments WHERE trans_id = ?1", [&p.trans_id], |r| r.get(0))?;
                    return Ok((C2bMatch::Unmatched(id), None));
                };
                let applied = ledger::apply(
                    tx,
                    &Receipt {
                        invoice_id: Some(inv.id),
                        customer_id: Some(inv.customer_id),
                        amount,
                        receipt: Some(p.trans_id.clone()),
                        source: Source::C2b,
                        attempt_id: None,
                        reference: p.bill_ref_number.clone(),
                        paid_at: now,
                    },
                    now,
                )?;
                Ok(match applied {
                    Applied::Duplicate { .. } => (C2bMatch::Duplicate, None),
                    Applied::New { applied, invoice_paid, .. } => (
                        C2bMatch::Invoice(inv.id),
                        Some(PaymentUpdate {
                            attempt_id: None,
                            invoice_id: Some(inv.id),
                            state: None,
                            result_code: Some(0),
                            credited: Some(applied),
                            receipt: Some(p.trans_id.clone()),
                            invoice_paid,
                            correction: false,
                            detail: format!("{amount} paid to the paybill for {}", inv.number),
                        }),
                    ),
                })
            })
            .await?;
        if let Some(u) = update {
            self.publish(u);
        }
        Ok(matched)
    }
}

impl Payments {
    /// The merchant matches a C2B payment nobody could match to one of their invoices.
    pub async fn resolve_unmatched(&self, unmatched_id: i64, invoice_id: i64) -> Result<PaymentUpdate, PaymentError> {
        let now = self.now();
        let update = self
            .store()
            .write_async(move |tx| {
                let row: Option<(String, i64, String, Option<String>)> = tx
                    .query_row(
                        "SELECT trans_id, amount, bill_ref, resolved_at FROM unmatched_payments WHERE id = ?1",
                        [unmatched_id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let Some((trans_id, amount, bill_ref, resolved)) = row else {
                    return Err(StoreError::NotFound(format!("unmatched payment {unmatched_id}")));
                };
                if resolved.is_some() {
                    return Ok(Err(PaymentError::Invalid(format!("payment {trans_id} was already matched"))));
                }
                let inv = invoices::get(tx, invoice_id)?;
                let amount = Kes::positive(amount).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let receipt = Receipt {
                    invoice_id: Some(inv.id),
                    customer_id: Some(inv.customer_id),
                    amount,
                    receipt: Some(trans_id.clone()),
                    source: Source::C2b,
                    attempt_id: None,
                    reference: bill_ref,
                    paid_at: now,
                };
                let (ledger_id, credited, invoice_paid) = match ledger::apply(tx, &receipt, now)? {
                    Applied::New { ledger_id, applied, invoice_paid, .. } => (ledger_id, Some(applied), invoice_paid),
                    Applied::Duplicate { ledger_id } => (ledger_id, None, false),
                };
                tx.execute(
                    "UPDATE unmatched_payments SET resolved_at = ?1, ledger_id = ?2 WHERE id = ?3",
                    rusqlite::params![crate::store::ts(now), ledger_id, unmatched_id],
                )?;
                crate::store::audit(tx, now, "merchant", "matched_payment", &trans_id, &inv.number)?;
                Ok(Ok(PaymentUpdate {
                    attempt_id: None,
                    invoice_id: Some(inv.id),
                    state: None,
                    result_code: Some(0),
                    credited,
                    receipt: Some(trans_id),
                    invoice_paid,
                    correction: false,
                    detail: format!("matched by the merchant to {}", inv.number),
                }))
            })
            .await??;
        self.publish(update.clone());
        Ok(update)
    }
}

/// The customer's open invoice for exactly this amount, when M-Pesa's hashed MSISDN identifies them.
fn invoice_for_payer(conn: &rusqlite::Connection, msisdn: &str, amount: Kes) -> Result<Option<invoices::Invoice>, StoreError> {
    use sha2::{Digest, Sha256};
    let hashed = msisdn.len() == 64 && msisdn.chars().all(|c| c.is_ascii_hexdigit());
    if !hashed {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT id, phone FROM customers WHERE phone IS NOT NULL")?;
    let customers = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    let Some((customer_id, _)) = customers.into_iter().find(|(_, phone)| hex::encode(Sha256::digest(phone.as_bytes())).eq_ignore_ascii_case(msisdn)) else {
        return Ok(None);
    };
    Ok(invoices::collectable_for_customer(conn, customer_id)?.into_iter().find(|i| i.balance == amount))
}

fn expected(a: &Attempt) -> Expected {
    Expected { amount: a.amount.shillings(), phone: a.phone.clone() }
}

fn mismatch_reason(a: &Attempt, o: &Outcome) -> Option<String> {
    let t = attempt::apply(State::Pushed, &expected(a), &Event::Result { outcome: o.clone(), cause: Cause::Callback }).ok()?;
    match t.effect {
        Effect::Review { reason } => Some(reason),
        _ => None,
    }
}

fn ledger_id_for_attempt(conn: &rusqlite::Connection, attempt_id: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row("SELECT id FROM ledger_payments WHERE attempt_id = ?1", [attempt_id], |r| r.get(0)).optional()?)
}

/// The next STK Query time on the schedule, counted from the push.
fn next_query_at(created: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    QUERY_SCHEDULE_SECS
        .iter()
        .map(|s| created + secs(*s))
        .find(|t| *t > now)
        .unwrap_or(created + secs(DEADLINE_SECS))
        .max(now + secs(5))
}

