//! Invoices: what each customer owes. The balance only changes through the ledger
//! (payments::ledger) or an explicit merchant action, in the same transaction as its cause.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use super::{customers, ts, Result, StoreError};
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
    let status = InvoiceStatus::for_balance(new.amount, balance);
    tx.execute(
        "INSERT INTO invoices (number, number_key, customer_id, amount, balance, issue_date, due_date, status, description, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        (
            new.number.as_str(),
            key,
            customer_id,
            new.amount.shillings(),
            balance.shillings(),
            new.issue_date.to_string(),
            new.due_date.to_string(),
            status.as_str(),
            &new.description,
            ts(now),
        ),
    )?;
    Ok(tx.last_insert_rowid())
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
