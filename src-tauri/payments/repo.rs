//! Persistence of payment attempts and their event rows. Every state change goes through `record`,
//! which writes the new state and the event (with its cause) in the caller's transaction.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::attempt::{Cause, State, Transition};
use crate::domain::Kes;
use crate::store::{parse_ts, ts, Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The customer confirmed in the chat.
    Chat,
    /// The merchant pressed "Request payment" (or ran `malipo request-payment`).
    Merchant,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Chat => "chat",
            Origin::Merchant => "merchant",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub id: i64,
    pub idempotency_key: String,
    pub invoice_id: i64,
    pub customer_id: i64,
    /// Full digits, for Daraja only. Serialised masked (see `AttemptView`).
    #[serde(skip)]
    pub phone: String,
    pub amount: Kes,
    pub origin: String,
    pub state: State,
    pub checkout_request_id: Option<String>,
    pub result_code: Option<i64>,
    pub result_desc: Option<String>,
    pub receipt: Option<String>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub checks: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewAttempt<'a> {
    pub idempotency_key: &'a str,
    pub invoice_id: i64,
    pub customer_id: i64,
    pub phone: &'a str,
    pub amount: Kes,
    pub origin: Origin,
}

const COLUMNS: &str = "id, idempotency_key, invoice_id, customer_id, phone, amount, origin, state, checkout_request_id,
    result_code, result_desc, receipt, next_check_at, checks, created_at, updated_at";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Attempt> {
    let bad = |i: usize, e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into());
    let time = |i: usize| -> rusqlite::Result<DateTime<Utc>> { parse_ts(&r.get::<_, String>(i)?).map_err(|e| bad(i, e.to_string())) };
    let state: String = r.get(7)?;
    let next: Option<String> = r.get(12)?;
    Ok(Attempt {
        id: r.get(0)?,
        idempotency_key: r.get(1)?,
        invoice_id: r.get(2)?,
        customer_id: r.get(3)?,
        phone: r.get(4)?,
        amount: Kes::new(r.get(5)?).map_err(|e| bad(5, e.to_string()))?,
        origin: r.get(6)?,
        state: State::parse(&state).ok_or_else(|| bad(7, format!("attempt state {state:?}")))?,
        checkout_request_id: r.get(8)?,
        result_code: r.get(9)?,
        result_desc: r.get(10)?,
        receipt: r.get(11)?,
        next_check_at: next.map(|s| parse_ts(&s)).transpose().map_err(|e| bad(12, e.to_string()))?,
        checks: r.get(13)?,
        created_at: time(14)?,
        updated_at: time(15)?,
    })
}

/// Records a new attempt in `Pending`, or returns the existing one with the same idempotency key.
/// The store's unique indexes refuse a second in-flight attempt for the invoice or the phone.
pub fn insert(tx: &Transaction, new: &NewAttempt, now: DateTime<Utc>) -> Result<(Attempt, bool)> {
    if let Some(existing) = by_key(tx, new.idempotency_key)? {
        return Ok((existing, false));
    }
    let inserted = tx.execute(
        "INSERT INTO payment_attempts (idempotency_key, invoice_id, customer_id, phone, amount, origin, state, in_flight, next_check_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 1, ?7, ?7, ?7)",
        params![new.idempotency_key, new.invoice_id, new.customer_id, new.phone, new.amount.shillings(), new.origin.as_str(), ts(now)],
    );
    match inserted {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, Some(msg))) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            let what = if msg.contains("phone") { "this phone number" } else { "this invoice" };
            return Err(StoreError::Conflict(format!("a payment request for {what} is already in progress")));
        }
        Err(e) => return Err(e.into()),
    }
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO payment_events (attempt_id, from_state, to_state, cause, detail, at) VALUES (?1, NULL, 'pending', ?2, ?3, ?4)",
        params![id, if new.origin == Origin::Chat { "push" } else { "merchant" }, format!("requested {}", new.amount), ts(now)],
    )?;
    Ok((get(tx, id)?, true))
}

pub fn get(conn: &Connection, id: i64) -> Result<Attempt> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM payment_attempts WHERE id = ?1"), [id], row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("payment attempt {id}")))
}

pub fn by_key(conn: &Connection, key: &str) -> Result<Option<Attempt>> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM payment_attempts WHERE idempotency_key = ?1"), [key], row).optional()?)
}

pub fn by_checkout(conn: &Connection, checkout_request_id: &str) -> Result<Option<Attempt>> {
    Ok(conn
        .query_row(&format!("SELECT {COLUMNS} FROM payment_attempts WHERE checkout_request_id = ?1"), [checkout_request_id], row)
        .optional()?)
}

/// An attempt whose push got no answer (so we hold no CheckoutRequestID) that a callback from this
/// phone for this amount can only belong to.
pub fn unknown_without_checkout(conn: &Connection, phone: &str, amount: i64) -> Result<Option<Attempt>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM payment_attempts WHERE checkout_request_id IS NULL AND state IN ('unknown', 'timed_out')
                 AND phone = ?1 AND amount = ?2 ORDER BY id DESC LIMIT 1"
            ),
            params![phone, amount],
            row,
        )
        .optional()?)
}

/// Attempts with a check (push retry, STK Query, deadline) due by `now`.
pub fn due(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<Attempt>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM payment_attempts WHERE next_check_at IS NOT NULL AND next_check_at <= ?1 ORDER BY next_check_at, id"
    ))?;
    let rows = stmt.query_map([ts(now)], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Attempts caught mid-send by a crash.
pub fn sending(conn: &Connection) -> Result<Vec<Attempt>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM payment_attempts WHERE state = 'sending'"))?;
    let rows = stmt.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// How many pushes this phone got since `since` (for the per-customer hourly limit).
pub fn pushes_since(conn: &Connection, phone: &str, since: DateTime<Utc>) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM payment_attempts WHERE phone = ?1 AND created_at >= ?2 AND state != 'rejected'",
        params![phone, ts(since)],
        |r| r.get(0),
    )?)
}

/// Fields that change with a transition besides the state.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub checkout_request_id: Option<String>,
    pub merchant_request_id: Option<String>,
    pub result: Option<(i64, String)>,
    pub receipt: Option<String>,
    /// Some(None) clears the next check.
    pub next_check_at: Option<Option<DateTime<Utc>>>,
    pub count_check: bool,
}

/// Writes a transition: the attempt's new state and fields, and its event row with the cause.
pub fn record(tx: &Transaction, attempt: &Attempt, t: &Transition, cause: Cause, changes: Changes, now: DateTime<Utc>) -> Result<()> {
    let updated = tx.execute(
        "UPDATE payment_attempts SET state = ?1, in_flight = ?2,
            checkout_request_id = COALESCE(?3, checkout_request_id), merchant_request_id = COALESCE(?4, merchant_request_id),
            result_code = COALESCE(?5, result_code), result_desc = COALESCE(?6, result_desc), receipt = COALESCE(receipt, ?7),
            next_check_at = CASE WHEN ?8 THEN ?9 ELSE next_check_at END, checks = checks + ?10, updated_at = ?11
         WHERE id = ?12 AND state = ?13",
        params![
            t.to.as_str(),
            t.to.in_flight(),
            changes.checkout_request_id,
            changes.merchant_request_id,
            changes.result.as_ref().map(|r| r.0),
            changes.result.as_ref().map(|r| r.1.as_str()),
            changes.receipt,
            changes.next_check_at.is_some(),
            changes.next_check_at.flatten().map(ts),
            changes.count_check as i64,
            ts(now),
            attempt.id,
            attempt.state.as_str(),
        ],
    )?;
    if updated != 1 {
        // Someone else moved it first: the caller's view is stale; nothing is written.
        return Err(StoreError::Conflict(format!("payment attempt {} changed while being updated", attempt.id)));
    }
    tx.execute(
        "INSERT INTO payment_events (attempt_id, from_state, to_state, cause, detail, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![attempt.id, attempt.state.as_str(), t.to.as_str(), cause.as_str(), t.detail, ts(now)],
    )?;
    Ok(())
}

/// Moves the next check without a state change (a query said "still processing").
pub fn reschedule(tx: &Transaction, attempt_id: i64, next: Option<DateTime<Utc>>, counted: bool, now: DateTime<Utc>) -> Result<()> {
    tx.execute(
        "UPDATE payment_attempts SET next_check_at = ?1, checks = checks + ?2, updated_at = ?3 WHERE id = ?4",
        params![next.map(ts), counted as i64, ts(now), attempt_id],
    )?;
    Ok(())
}

/// Records the CheckoutRequestID of a push whose answer never came, learnt from its callback.
pub fn set_checkout(tx: &Transaction, attempt_id: i64, checkout_request_id: &str) -> Result<()> {
    tx.execute(
        "UPDATE payment_attempts SET checkout_request_id = ?1 WHERE id = ?2 AND checkout_request_id IS NULL",
        params![checkout_request_id, attempt_id],
    )?;
    Ok(())
}

/// Keeps a receipt reported by a callback until STK Query confirms the payment.
pub fn remember_receipt(tx: &Transaction, attempt_id: i64, receipt: &str) -> Result<()> {
    tx.execute("UPDATE payment_attempts SET receipt = COALESCE(receipt, ?1) WHERE id = ?2", params![receipt, attempt_id])?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub from_state: Option<String>,
    pub to_state: String,
    pub cause: String,
    pub detail: String,
    pub at: String,
}

pub fn events(conn: &Connection, attempt_id: i64) -> Result<Vec<EventRow>> {
    let mut stmt =
        conn.prepare("SELECT from_state, to_state, cause, detail, at FROM payment_events WHERE attempt_id = ?1 ORDER BY id")?;
    let rows = stmt
        .query_map([attempt_id], |r| Ok(EventRow { from_state: r.get(0)?, to_state: r.get(1)?, cause: r.get(2)?, detail: r.get(3)?, at: r.get(4)? }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn list(conn: &Connection) -> Result<Vec<Attempt>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM payment_attempts ORDER BY id DESC"))?;
    let rows = stmt.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// An attempt as the merchant sees it: phone masked, invoice by number, the latest event's words.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub id: i64,
    pub invoice_id: i64,
    pub invoice_number: String,
    pub phone: String,
    pub amount: Kes,
    pub origin: String,
    pub state: State,
    pub result_code: Option<i64>,
    pub receipt: Option<String>,
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Every attempt for the merchant's views, newest first.
pub fn views(conn: &Connection) -> Result<Vec<AttemptView>> {
    let mut stmt = conn.prepare(
        "SELECT a.id, i.number, (SELECT detail FROM payment_events e WHERE e.attempt_id = a.id ORDER BY e.id DESC LIMIT 1)
         FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id ORDER BY a.id DESC",
    )?;
    let extra: std::collections::HashMap<i64, (String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get::<_, Option<String>>(2)?.unwrap_or_default()))))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(list(conn)?
        .into_iter()
        .map(|a| {
            let (invoice_number, detail) = extra.get(&a.id).cloned().unwrap_or_default();
            AttemptView {
                id: a.id,
                invoice_id: a.invoice_id,
                invoice_number,
                phone: crate::domain::Msisdn::parse(&a.phone).map(|m| m.masked()).unwrap_or_else(|_| "•••".into()),
                amount: a.amount,
                origin: a.origin,
                state: a.state,
                result_code: a.result_code,
                receipt: a.receipt,
                detail,
                created_at: a.created_at,
                updated_at: a.updated_at,
            }
        })
        .collect())
}
