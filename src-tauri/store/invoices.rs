//! Invoices: what each customer owes. The balance only changes through the ledger
//! (payments::ledger) or an explicit merchant action, in the same transaction as its cause.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use super::{audit, customers, ts, Result, StoreError};
use crate::domain::{invoice_key, InvoiceNo, Kes, Msisdn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    PartiallyPaid,
    Paid,
    Disputed,
    Cancelled,
    WrittenOff,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::PartiallyPaid => "partially_paid",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Disputed => "disputed",
            InvoiceStatus::Cancelled => "cancelled",
            InvoiceStatus::WrittenOff => "written_off",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "open" => InvoiceStatus::Open,
            "partially_paid" => InvoiceStatus::PartiallyPaid,
            "paid" => InvoiceStatus::Paid,
            "disputed" => InvoiceStatus::Disputed,
            "cancelled" => InvoiceStatus::Cancelled,
            "written_off" => InvoiceStatus::WrittenOff,
            other => return Err(StoreError::Corrupt(format!("invoice status {other:?}"))),
        })
    }

    /// Whether money can still be collected against it.
    pub fn is_collectable(self) -> bool {
        matches!(self, InvoiceStatus::Open | InvoiceStatus::PartiallyPaid)
    }

    /// The status an open invoice has for a given balance.
    pub fn for_balance(amount: Kes, balance: Kes) -> Self {
        if balance.is_zero() {
            InvoiceStatus::Paid
        } else if balance < amount {
            InvoiceStatus::PartiallyPaid
        } else {
            InvoiceStatus::Open
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Invoice {
    pub id: i64,
    pub number: String,
    pub customer_id: i64,
    pub customer_name: String,
    pub customer_phone: Option<String>,
    pub currency: String,
    pub amount: Kes,
    pub balance: Kes,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub status: InvoiceStatus,
    pub description: String,
}

impl Invoice {
    pub fn paid(&self) -> Kes {
        self.amount.saturating_sub(self.balance)
    }
}

#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub number: InvoiceNo,
    pub customer_name: String,
    pub phone: Option<Msisdn>,
    pub amount: Kes,
    /// What is still owed, when the import says so; otherwise the full amount.
    pub balance: Option<Kes>,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub description: String,
}

/// Creates an invoice (and its customer if new). Refuses a duplicate number.
pub fn insert(tx: &Transaction, new: &NewInvoice, now: DateTime<Utc>) -> Result<i64> {
    if new.amount.is_zero() {
        return Err(StoreError::Conflict(format!("invoice {}: amount must be more than zero", new.number)));
    }
    let balance = new.balance.unwrap_or(new.amount);
    if balance > new.amount {
        return Err(StoreError::Conflict(format!("invoice {}: balance {balance} is more than the amount {}", new.number, new.amount)));
    }
    let key = new.number.key();
    let clash: Option<String> = tx.query_row("SELECT number FROM invoices WHERE number_key = ?1", [&key], |r| r.get(0)).optional()?;
    if let Some(existing) = clash {
        return Err(StoreError::Conflict(format!("invoice {} already exists (as {existing})", new.number)));
    }
    let customer_id = customers::upsert(tx, &new.customer_name, new.phone.as_ref(), now)?;
    insert_for_import(tx, new, customer_id, now)
}

const SELECT: &str = "SELECT i.id, i.number, i.customer_id, c.name, c.phone, i.currency, i.amount, i.balance,
    i.issue_date, i.due_date, i.status, i.description FROM invoices i JOIN customers c ON c.id = i.customer_id";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Invoice> {
    let phone: Option<String> = r.get(4)?;
    let date = |i: usize| -> rusqlite::Result<NaiveDate> {
        let s: String = r.get(i)?;
        s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
    };
    let status: String = r.get(10)?;
    Ok(Invoice {
        id: r.get(0)?,
        number: r.get(1)?,
        customer_id: r.get(2)?,
        customer_name: r.get(3)?,
        customer_phone: phone.map(|p| Msisdn::parse(&p).map(|m| m.masked()).unwrap_or_else(|_| "•••".into())),
        currency: r.get(5)?,
        amount: Kes::new(r.get(6)?).unwrap_or_default(),
        balance: Kes::new(r.get(7)?).unwrap_or_default(),
        issue_date: date(8)?,
        due_date: date(9)?,
        status: InvoiceStatus::parse(&status).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, Box::new(std::io::Error::other(e.to_string())))
        })?,
        description: r.get(11)?,
    })
}

pub fn get(conn: &Connection, id: i64) -> Result<Invoice> {
    conn.query_row(&format!("{SELECT} WHERE i.id = ?1"), [id], row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("invoice {id}")))
}

/// Finds an invoice by any spelling of its number ("inv 1042", "INV-1042", "#inv1042").
pub fn by_number(conn: &Connection, reference: &str) -> Result<Option<Invoice>> {
    Ok(conn.query_row(&format!("{SELECT} WHERE i.number_key = ?1"), [invoice_key(reference)], row).optional()?)
}

/// Every invoice, newest due date first.
pub fn list(conn: &Connection) -> Result<Vec<Invoice>> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY i.due_date DESC, i.id DESC"))?;
    let rows = stmt.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A customer's invoices that still have money to collect, oldest due first.
pub fn collectable_for_customer(conn: &Connection, customer_id: i64) -> Result<Vec<Invoice>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE i.customer_id = ?1 AND i.status IN ('open', 'partially_paid') AND i.balance > 0 ORDER BY i.due_date, i.id"
    ))?;
    let rows = stmt.query_map([customer_id], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Changes made by the merchant (by hand or by importing a file). Each is recorded in the audit log.

/// What the ledger has applied to an invoice: payments Malipo itself recorded against it.
pub fn paid_in_ledger(conn: &Connection, id: i64) -> Result<Kes> {
    let paid: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(applied), 0) FROM ledger_payments WHERE invoice_id = ?1")?
        .query_row([id], |r| r.get(0))?;
    Ok(Kes::new(paid).unwrap_or_default())
}

/// The balance after the amount of an invoice changes: what was already paid stays paid, so the
/// balance is the new amount less the paid part, never below zero.
pub fn rebalance(old_amount: Kes, old_balance: Kes, new_amount: Kes) -> Kes {
    new_amount.saturating_sub(old_amount.saturating_sub(old_balance))
}

/// Creates an invoice typed in by the merchant (see `insert`) and records it in the audit log.
pub fn create(tx: &Transaction, new: &NewInvoice, actor: &str, now: DateTime<Utc>) -> Result<i64> {
    let id = insert(tx, new, now)?;
    let balance = new.balance.unwrap_or(new.amount);
    audit(tx, now, actor, "invoice_created", new.number.as_str(), &format!("{} for {}, balance {balance}, due {}", new.amount, new.customer_name.trim(), new.due_date))?;
    Ok(id)
}

/// A merchant's correction of an invoice. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct InvoiceEdit {
    pub customer_name: Option<String>,
    pub phone: Option<Msisdn>,
    pub amount: Option<Kes>,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub description: Option<String>,
}

/// Edits an open, partly paid, paid or disputed invoice. A new amount keeps what was paid: the balance
/// becomes the new amount less the paid part (never below zero), and the status follows. Returns the
/// invoice as it now is, and a note when the balance moved because of the amount.
pub fn edit(tx: &Transaction, id: i64, e: &InvoiceEdit, actor: &str, now: DateTime<Utc>) -> Result<(Invoice, Option<String>)> {
    let inv = get(tx, id)?;
    if matches!(inv.status, InvoiceStatus::Cancelled | InvoiceStatus::WrittenOff) {
        return Err(StoreError::Conflict(format!("invoice {} is {}; it cannot be edited", inv.number, inv.status.as_str().replace('_', " "))));
    }
    let mut changes = Vec::new();
    let mut note = None;
    let mut customer_id = inv.customer_id;
    if e.customer_name.is_some() || e.phone.is_some() {
        let name = e.customer_name.as_deref().map(str::trim).unwrap_or(&inv.customer_name).to_string();
        if name.is_empty() {
            return Err(StoreError::Conflict(format!("invoice {}: the customer's name cannot be empty", inv.number)));
        }
        let current_phone: Option<String> = tx.query_row("SELECT phone FROM customers WHERE id = ?1", [inv.customer_id], |r| r.get(0))?;
        let phone = match &e.phone {
            Some(p) => Some(p.clone()),
            None => current_phone.as_deref().and_then(|p| Msisdn::parse(p).ok()),
        };
        customer_id = customers::upsert(tx, &name, phone.as_ref(), now)?;
        if name != inv.customer_name {
            changes.push(format!("customer {:?} → {name:?}", inv.customer_name));
        }
        if phone.as_ref().map(Msisdn::as_str) != current_phone.as_deref() {
            changes.push(format!("phone → {}", phone.as_ref().map(Msisdn::masked).unwrap_or_else(|| "none".into())));
        }
    }
    let amount = e.amount.unwrap_or(inv.amount);
    if amount.is_zero() {
        return Err(StoreError::Conflict(format!("invoice {}: amount must be more than zero", inv.number)));
    }
    let balance = if amount != inv.amount {
        let balance = rebalance(inv.amount, inv.balance, amount);
        changes.push(format!("amount {} → {amount}", inv.amount));
        if !inv.paid().is_zero() {
            note = Some(format!("{} was already paid, so the balance is now {balance}", inv.paid()));
        }
        balance
    } else {
        inv.balance
    };
    let status = if inv.status == InvoiceStatus::Disputed { inv.status } else { InvoiceStatus::for_balance(amount, balance) };
    let issue_date = e.issue_date.unwrap_or(inv.issue_date);
    let due_date = e.due_date.unwrap_or(inv.due_date);
    if issue_date != inv.issue_date {
        changes.push(format!("issue date {} → {issue_date}", inv.issue_date));
    }
    if due_date != inv.due_date {
        changes.push(format!("due date {} → {due_date}", inv.due_date));
    }
    let description = e.description.as_deref().map(str::trim).unwrap_or(&inv.description).to_string();
    if description != inv.description {
        changes.push("description changed".into());
    }
    tx.execute(
        "UPDATE invoices SET customer_id = ?1, amount = ?2, balance = ?3, issue_date = ?4, due_date = ?5, status = ?6, description = ?7, updated_at = ?8 WHERE id = ?9",
        (customer_id, amount.shillings(), balance.shillings(), issue_date.to_string(), due_date.to_string(), status.as_str(), &description, ts(now), id),
    )?;
    if !changes.is_empty() {
        let mut detail = changes.join("; ");
        if let Some(n) = &note {
            detail = format!("{detail} ({n})");
        }
        audit(tx, now, actor, "invoice_edited", &inv.number, &detail)?;
    }
    Ok((get(tx, id)?, note))
}

fn refuse_while_paying(tx: &Transaction, inv: &Invoice, what: &str) -> Result<()> {
    let in_flight: i64 =
        tx.query_row("SELECT COUNT(*) FROM payment_attempts WHERE invoice_id = ?1 AND in_flight = 1", [inv.id], |r| r.get(0))?;
    if in_flight > 0 {
        return Err(StoreError::Conflict(format!(
            "invoice {}: an M-Pesa prompt for it is still in progress; wait for its outcome before you {what} it",
            inv.number
        )));
    }
    Ok(())
}

/// Cancels an invoice issued by mistake: it is no longer owed, reminded or reported as due. Refused
/// when payments were recorded against it (write it off, or edit its amount, instead).
pub fn cancel(tx: &Transaction, id: i64, reason: &str, actor: &str, now: DateTime<Utc>) -> Result<Invoice> {
    let inv = get(tx, id)?;
    match inv.status {
        InvoiceStatus::Cancelled => return Ok(inv),
        InvoiceStatus::WrittenOff | InvoiceStatus::Paid => {
            return Err(StoreError::Conflict(format!("invoice {} is {}; it cannot be cancelled", inv.number, inv.status.as_str().replace('_', " "))))
        }
        _ => {}
    }
    if !paid_in_ledger(tx, id)?.is_zero() {
        return Err(StoreError::Conflict(format!(
            "invoice {} has payments recorded against it; write off the rest or change its amount instead of cancelling it",
            inv.number
        )));
    }
    refuse_while_paying(tx, &inv, "cancel")?;
    tx.execute("UPDATE invoices SET status = 'cancelled', updated_at = ?1 WHERE id = ?2", (ts(now), id))?;
    audit(tx, now, actor, "invoice_cancelled", &inv.number, &format!("balance was {}; {}", inv.balance, reason.trim()))?;
    get(tx, id)
}

/// Writes off what is left of an invoice the merchant no longer expects to collect. The balance is kept
/// (reports show how much was written off); reminders and payment prompts stop.
pub fn write_off(tx: &Transaction, id: i64, reason: &str, actor: &str, now: DateTime<Utc>) -> Result<Invoice> {
    let inv = get(tx, id)?;
    match inv.status {
        InvoiceStatus::WrittenOff => return Ok(inv),
        InvoiceStatus::Cancelled | InvoiceStatus::Paid => {
            return Err(StoreError::Conflict(format!("invoice {} is {}; there is nothing to write off", inv.number, inv.status.as_str())))
        }
        _ => {}
    }
    refuse_while_paying(tx, &inv, "write off")?;
    tx.execute("UPDATE invoices SET status = 'written_off', updated_at = ?1 WHERE id = ?2", (ts(now), id))?;
    audit(tx, now, actor, "invoice_written_off", &inv.number, &format!("{} written off; {}", inv.balance, reason.trim()))?;
    get(tx, id)
}

/// An invoice as an import finds it: what is needed to decide whether a row changes it.
/// Holds the customer's full phone number: for comparison only, never shown.
#[derive(Debug, Clone)]
pub struct ImportTarget {
    pub id: i64,
    pub number: String,
    pub customer_id: i64,
    pub customer_name: String,
    pub customer_phone: Option<String>,
    pub amount: Kes,
    pub balance: Kes,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub status: InvoiceStatus,
    pub description: String,
    /// What the ledger applied to it (payments recorded in Malipo).
    pub paid_in_ledger: Kes,
}

/// Looks an invoice up by its number key for an import (statement cached: called once a row).
pub fn for_import(conn: &Connection, key: &str) -> Result<Option<ImportTarget>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.number, i.customer_id, c.name, c.phone, i.amount, i.balance, i.issue_date, i.due_date, i.status, i.description,
                (SELECT COALESCE(SUM(l.applied), 0) FROM ledger_payments l WHERE l.invoice_id = i.id)
         FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.number_key = ?1",
    )?;
    let found = stmt
        .query_row([key], |r| {
            let date = |i: usize| -> rusqlite::Result<NaiveDate> {
                let s: String = r.get(i)?;
                s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
            };
            Ok((
                ImportTarget {
                    id: r.get(0)?,
                    number: r.get(1)?,
                    customer_id: r.get(2)?,
                    customer_name: r.get(3)?,
                    customer_phone: r.get(4)?,
                    amount: Kes::new(r.get(5)?).unwrap_or_default(),
                    balance: Kes::new(r.get(6)?).unwrap_or_default(),
                    issue_date: date(7)?,
                    due_date: date(8)?,
                    status: InvoiceStatus::Open,
                    description: r.get(10)?,
                    paid_in_ledger: Kes::new(r.get(11)?).unwrap_or_default(),
                },
                r.get::<_, String>(9)?,
            ))
        })
        .optional()?;
    match found {
        Some((mut t, status)) => {
            t.status = InvoiceStatus::parse(&status)?;
            Ok(Some(t))
        }
        None => Ok(None),
    }
}

/// The values an import writes over an existing invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportUpdate {
    pub customer_id: i64,
    pub amount: Kes,
    pub balance: Kes,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub status: InvoiceStatus,
    pub description: String,
}

/// Writes an import's values over an invoice (statement cached). The caller decided them; see `import`.
pub fn update_from_import(tx: &Transaction, id: i64, u: &ImportUpdate, now: DateTime<Utc>) -> Result<()> {
    if u.amount.is_zero() || u.balance > u.amount {
        return Err(StoreError::Conflict(format!("invoice {id}: balance {} must be between zero and the amount {}", u.balance, u.amount)));
    }
    tx.prepare_cached(
        "UPDATE invoices SET customer_id = ?1, amount = ?2, balance = ?3, issue_date = ?4, due_date = ?5, status = ?6, description = ?7, updated_at = ?8
         WHERE id = ?9",
    )?
    .execute((u.customer_id, u.amount.shillings(), u.balance.shillings(), u.issue_date.to_string(), u.due_date.to_string(), u.status.as_str(), &u.description, ts(now), id))?;
    Ok(())
}

/// `insert` for bulk imports: the caller already knows the number is new and has the customer's id,
/// and the statement is cached, so 100,000 rows go in one transaction quickly.
pub fn insert_for_import(tx: &Transaction, new: &NewInvoice, customer_id: i64, now: DateTime<Utc>) -> Result<i64> {
    let balance = new.balance.unwrap_or(new.amount);
    if new.amount.is_zero() || balance > new.amount {
        return Err(StoreError::Conflict(format!("invoice {}: balance {balance} must be between zero and the amount {}", new.number, new.amount)));
    }
    let status = InvoiceStatus::for_balance(new.amount, balance);
    tx.prepare_cached(
        "INSERT INTO invoices (number, number_key, customer_id, amount, balance, issue_date, due_date, status, description, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
    )?
    .execute((
        new.number.as_str(),
        new.number.key(),
        customer_id,
        new.amount.shillings(),
        balance.shillings(),
        new.issue_date.to_string(),
        new.due_date.to_string(),
        status.as_str(),
        &new.description,
        ts(now),
    ))?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    pub fn sample(number: &str, amount: i64) -> NewInvoice {
        NewInvoice {
            number: InvoiceNo::parse(number).unwrap(),
            customer_name: "Wanjiku Kamau".into(),
            phone: Some(Msisdn::parse("0712345678").unwrap()),
            amount: Kes::positive(amount).unwrap(),
            balance: None,
            issue_date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            due_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            description: "Maize flour".into(),
        }
    }

    #[test]
    fn an_invoice_is_stored_and_found_by_any_spelling_of_its_number() {
        let s = temp_store();
        let id = s.write(|tx| insert(tx, &sample("INV-1042", 2500), Utc::now())).unwrap();
        let inv = s.read(|c| get(c, id)).unwrap();
        assert_eq!(inv.balance.shillings(), 2500);
        assert_eq!(inv.status, InvoiceStatus::Open);
        assert_eq!(inv.customer_phone.as_deref(), Some("2547•••••678"));
        for spelling in ["inv 1042", "INV1042", "#inv-1042"] {
            assert_eq!(s.read(|c| by_number(c, spelling)).unwrap().map(|i| i.id), Some(id), "{spelling}");
        }
    }

    #[test]
    fn a_duplicate_number_is_refused_and_nothing_is_written() {
        let s = temp_store();
        s.write(|tx| insert(tx, &sample("INV-1042", 2500), Utc::now())).unwrap();
        let e = s.write(|tx| insert(tx, &sample("inv 1042", 900), Utc::now())).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(s.read(list).unwrap().len(), 1);
    }

    #[test]
    fn a_partly_paid_import_keeps_its_balance_and_status() {
        let s = temp_store();
        let mut new = sample("INV-7", 5000);
        new.balance = Some(Kes::new(1500).unwrap());
        let id = s.write(|tx| insert(tx, &new, Utc::now())).unwrap();
        let inv = s.read(|c| get(c, id)).unwrap();
        assert_eq!((inv.status, inv.paid().shillings()), (InvoiceStatus::PartiallyPaid, 3500));
        new.number = InvoiceNo::parse("INV-8").unwrap();
        new.balance = Some(Kes::new(6000).unwrap());
        assert!(s.write(|tx| insert(tx, &new, Utc::now())).is_err());
    }

    #[test]
    fn the_database_refuses_a_negative_balance_even_if_code_tries() {
        let s = temp_store();
        let id = s.write(|tx| insert(tx, &sample("INV-9", 100), Utc::now())).unwrap();
        let r = s.write(|tx| Ok(tx.execute("UPDATE invoices SET balance = -1 WHERE id = ?1", [id])?));
        assert!(r.is_err());
    }
}
