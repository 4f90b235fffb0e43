//! Customers: found by phone number (the WhatsApp identity), or by name when an invoice has no phone.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::{ts, Result};
use crate::domain::Msisdn;

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: i64,
    pub name: String,
    /// Masked for display; the full number stays in the store.
    pub phone_masked: Option<String>,
    pub language: String,
    pub opted_out: bool,
}

/// Finds the customer with this phone (or, without one, this exact name) or creates them.
/// A known customer's name is updated to the newest spelling.
pub fn upsert(tx: &Transaction, name: &str, phone: Option<&Msisdn>, now: DateTime<Utc>) -> Result<i64> {
    let name = name.trim();
    let existing: Option<i64> = match phone {
        Some(p) => tx.query_row("SELECT id FROM customers WHERE phone = ?1", [p.as_str()], |r| r.get(0)).optional()?,
        None => tx
            .query_row("SELECT id FROM customers WHERE phone IS NULL AND name = ?1", [name], |r| r.get(0))
            .optional()?,
    };
    if let Some(id) = existing {
        if !name.is_empty() {
            tx.execute("UPDATE customers SET name = ?1 WHERE id = ?2", (name, id))?;
        }
        return Ok(id);
    }
    tx.execute(
        "INSERT INTO customers (name, phone, created_at) VALUES (?1, ?2, ?3)",
        (name, phone.map(Msisdn::as_str), ts(now)),
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn by_phone(conn: &Connection, phone: &Msisdn) -> Result<Option<Customer>> {
    Ok(conn
        .query_row(
            "SELECT id, name, phone, language, opted_out_at IS NOT NULL FROM customers WHERE phone = ?1",
            [phone.as_str()],
            row,
        )
        .optional()?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Customer> {
    conn.query_row("SELECT id, name, phone, language, opted_out_at IS NOT NULL FROM customers WHERE id = ?1", [id], row)
        .optional()?
        .ok_or_else(|| super::StoreError::NotFound(format!("customer {id}")))
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Customer> {
    let phone: Option<String> = r.get(2)?;
    Ok(Customer {
        id: r.get(0)?,
        name: r.get(1)?,
        phone_masked: phone.as_deref().map(|p| Msisdn::parse(p).map(|m| m.masked()).unwrap_or_else(|_| "•••".into())),
        language: r.get(3)?,
        opted_out: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[test]
    fn the_same_phone_is_the_same_customer() {
        let s = temp_store();
        let phone = Msisdn::parse("0712345678").unwrap();
        let now = Utc::now();
        let a = s.write(|tx| upsert(tx, "Wanjiku", Some(&phone), now)).unwrap();
        let b = s.write(|tx| upsert(tx, "Wanjiku M.", Some(&Msisdn::parse("+254712345678").unwrap()), now)).unwrap();
        assert_eq!(a, b);
        let c = s.read(|c| by_phone(c, &phone)).unwrap().unwrap();
        assert_eq!(c.name, "Wanjiku M.");
        assert_eq!(c.phone_masked.as_deref(), Some("2547•••••678"));
        let other = s.write(|tx| upsert(tx, "Otieno", None, now)).unwrap();
        assert_ne!(other, a);
        assert_eq!(s.write(|tx| upsert(tx, "Otieno", None, now)).unwrap(), other);
    }
}
