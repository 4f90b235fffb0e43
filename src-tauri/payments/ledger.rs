//! The ledger: money received. A receipt is applied once; the invoice's balance and status change in
//! the same transaction as the ledger row; what exceeds the balance is kept as a credit the merchant sees.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::domain::Kes;
use crate::store::invoices::{self, InvoiceStatus};
use crate::store::{audit, ts, Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// STK push the customer confirmed in the chat.
    StkChat,
    /// STK push the merchant requested.
    StkMerchant,
    /// The customer paid the paybill or till directly.
    C2b,
    /// Cash or bank, recorded by the merchant.
    Manual,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::StkChat => "stk_chat",
            Source::StkMerchant => "stk_merchant",
            Source::C2b => "c2b",
            Source::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Receipt {
    pub invoice_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub amount: Kes,
    /// The M-Pesa code; None while an STK Query confirmed the payment but no receipt has arrived.
    pub receipt: Option<String>,
    pub source: Source,
    pub attempt_id: Option<i64>,
    pub reference: String,
    pub paid_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    New { ledger_id: i64, applied: Kes, credit: Kes, invoice_paid: bool },
    /// This receipt (or this attempt's payment) is already in the ledger: nothing changed.
    Duplicate { ledger_id: i64 },
}

/// Applies a payment. Idempotent on the receipt and on the attempt.
pub fn apply(tx: &Transaction, r: &Receipt, now: DateTime<Utc>) -> Result<Applied> {
    if let Some(code) = &r.receipt {
        if let Some(id) = tx.query_row("SELECT id FROM ledger_payments WHERE receipt = ?1", [code], |row| row.get(0)).optional()? {
            return Ok(Applied::Duplicate { ledger_id: id });
        }
    }
    let mut attempt_id = r.attempt_id;
    if let Some(attempt) = r.attempt_id {
        let existing: Option<(i64, Option<String>)> = tx
            .query_row("SELECT id, receipt FROM ledger_payments WHERE attempt_id = ?1", [attempt], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        match (existing, &r.receipt) {
            (Some((id, None)), Some(code)) => {
                attach_receipt(tx, id, code)?;
                return Ok(Applied::Duplicate { ledger_id: id });
            }
            // The attempt's row carries another receipt: this is a second, real payment. Keep it.
            (Some((_, Some(have))), Some(code)) if &have != code => attempt_id = None,
            (Some((id, _)), _) => return Ok(Applied::Duplicate { ledger_id: id }),
            (None, None) => {
                // Confirmed by STK Query alone: the same payment may already be in as a C2B record.
                if let Some(id) = twin(tx, r, "source = 'c2b' AND attempt_id IS NULL")? {
                    tx.execute("UPDATE ledger_payments SET attempt_id = ?1 WHERE id = ?2", params![attempt, id])?;
                    return Ok(Applied::Duplicate { ledger_id: id });
                }
            }
            (None, Some(_)) => {}
        }
    } else if let (Source::C2b, Some(code)) = (r.source, &r.receipt) {
        // The C2B record of an STK payment that was credited before its receipt was known.
        if let Some(id) = twin(tx, r, "attempt_id IS NOT NULL AND receipt IS NULL")? {
            attach_receipt(tx, id, code)?;
            return Ok(Applied::Duplicate { ledger_id: id });
        }
    }

    let (applied, invoice_paid, customer_id) = match r.invoice_id {
        Some(invoice_id) => {
            let inv = invoices::get(tx, invoice_id)?;
            let applied = if inv.status.is_collectable() { r.amount.min(inv.balance) } else { Kes::ZERO };
            let balance = inv.balance.saturating_sub(applied);
            let status = if inv.status.is_collectable() { InvoiceStatus::for_balance(inv.amount, balance) } else { inv.status };
            // `cleared_at`: when the balance reached zero, for days-to-pay in reports.
            tx.execute(
                "UPDATE invoices SET balance = ?1, status = ?2, updated_at = ?3,
                    cleared_at = CASE WHEN ?1 = 0 AND cleared_at IS NULL THEN ?5 ELSE cleared_at END WHERE id = ?4",
                params![balance.shillings(), status.as_str(), ts(now), invoice_id, ts(r.paid_at)],
            )?;
            (applied, status == InvoiceStatus::Paid && inv.status != InvoiceStatus::Paid, Some(r.customer_id.unwrap_or(inv.customer_id)))
        }
        None => (Kes::ZERO, false, r.customer_id),
    };
    let credit = r.amount.saturating_sub(applied);
    tx.execute(
        "INSERT INTO ledger_payments (receipt, source, invoice_id, customer_id, attempt_id, amount, applied, credit, reference, paid_at, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            r.receipt,
            r.source.as_str(),
            r.invoice_id,
            customer_id,
            attempt_id,
            r.amount.shillings(),
            applied.shillings(),
            credit.shillings(),
            r.reference,
            ts(r.paid_at),
            ts(now)
        ],
    )?;
    let ledger_id = tx.last_insert_rowid();
    let detail = format!("{} via {}{}", r.amount, r.source.as_str(), if credit.is_zero() { String::new() } else { format!(", {credit} kept as credit") });
    audit(tx, now, "ledger", "payment_applied", r.receipt.as_deref().unwrap_or("receipt pending"), &detail)?;
    Ok(Applied::New { ledger_id, applied, credit, invoice_paid })
}

/// The same payment recorded from the other side: same invoice and amount, within a day.
fn twin(tx: &Transaction, r: &Receipt, condition: &str) -> Result<Option<i64>> {
    let Some(invoice_id) = r.invoice_id else { return Ok(None) };
    let since = ts(r.paid_at - chrono::Duration::hours(24));
    Ok(tx
        .query_row(
            &format!("SELECT id FROM ledger_payments WHERE invoice_id = ?1 AND amount = ?2 AND recorded_at >= ?3 AND {condition} ORDER BY id LIMIT 1"),
            params![invoice_id, r.amount.shillings(), since],
            |row| row.get(0),
        )
        .optional()?)
}

/// Records the M-Pesa code of a payment credited before its receipt was known.
pub fn attach_receipt(tx: &Transaction, ledger_id: i64, receipt: &str) -> Result<()> {
    let clash: Option<i64> = tx.query_row("SELECT id FROM ledger_payments WHERE receipt = ?1", [receipt], |r| r.get(0)).optional()?;
    if let Some(other) = clash {
        if other != ledger_id {
            return Err(StoreError::Conflict(format!("receipt {receipt} is already recorded on another payment")));
        }
        return Ok(());
    }
    tx.execute("UPDATE ledger_payments SET receipt = ?1 WHERE id = ?2 AND receipt IS NULL", params![receipt, ledger_id])?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub receipt: Option<String>,
    pub source: String,
    pub invoice_number: Option<String>,
    pub customer_name: Option<String>,
    pub attempt_id: Option<i64>,
    pub amount: Kes,
    pub applied: Kes,
    pub credit: Kes,
    pub reference: String,
    pub paid_at: String,
}

/// Every ledger entry, newest first.
pub fn list(conn: &Connection) -> Result<Vec<LedgerEntry>> {
    let mut stmt = conn.prepare(
        "SELECT l.id, l.receipt, l.source, i.number, c.name, l.attempt_id, l.amount, l.applied, l.credit, l.reference, l.paid_at
         FROM ledger_payments l LEFT JOIN invoices i ON i.id = l.invoice_id LEFT JOIN customers c ON c.id = l.customer_id
         ORDER BY l.id DESC",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(LedgerEntry {
                id: r.get(0)?,
                receipt: r.get(1)?,
                source: r.get(2)?,
                invoice_number: r.get(3)?,
                customer_name: r.get(4)?,
                attempt_id: r.get(5)?,
                amount: Kes::new(r.get(6)?).unwrap_or_default(),
                applied: Kes::new(r.get(7)?).unwrap_or_default(),
                credit: Kes::new(r.get(8)?).unwrap_or_default(),
                reference: r.get(9)?,
                paid_at: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InvoiceNo, Msisdn};
    use crate::store::invoices::NewInvoice;
    use crate::store::test_support::temp_store;
    use chrono::NaiveDate;

    fn invoice(s: &crate::store::Store, amount: i64) -> i64 {
        s.write(|tx| {
            invoices::insert(
                tx,
                &NewInvoice {
                    number: InvoiceNo::parse("INV-1").unwrap(),
                    customer_name: "Achieng".into(),
                    phone: Some(Msisdn::parse("0712345678").unwrap()),
                    amount: Kes::positive(amount).unwrap(),
                    balance: None,
                    issue_date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                    due_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                    description: String::new(),
                },
                Utc::now(),
            )
        })
        .unwrap()
    }

    fn pay(invoice_id: i64, amount: i64, receipt: Option<&str>) -> Receipt {
        Receipt {
            invoice_id: Some(invoice_id),
            customer_id: None,
            amount: Kes::positive(amount).unwrap(),
            receipt: receipt.map(String::from),
            source: Source::C2b,
            attempt_id: None,
            reference: "INV-1".into(),
            paid_at: Utc::now(),
        }
    }

    #[test]
    fn partial_payments_reduce_the_balance_until_paid() {
        let s = temp_store();
        let id = invoice(&s, 2500);
        s.write(|tx| apply(tx, &pay(id, 1000, Some("QAA1111111")), Utc::now())).unwrap();
        let inv = s.read(|c| invoices::get(c, id)).unwrap();
        assert_eq!((inv.balance.shillings(), inv.status), (1500, InvoiceStatus::PartiallyPaid));
        let out = s.write(|tx| apply(tx, &pay(id, 1500, Some("QAA2222222")), Utc::now())).unwrap();
        assert!(matches!(out, Applied::New { invoice_paid: true, .. }));
        assert_eq!(s.read(|c| invoices::get(c, id)).unwrap().status, InvoiceStatus::Paid);
    }

    #[test]
    fn a_receipt_is_applied_once() {
        let s = temp_store();
        let id = invoice(&s, 2500);
        s.write(|tx| apply(tx, &pay(id, 1000, Some("QAA1111111")), Utc::now())).unwrap();
        let again = s.write(|tx| apply(tx, &pay(id, 1000, Some("QAA1111111")), Utc::now())).unwrap();
        assert!(matches!(again, Applied::Duplicate { .. }));
        assert_eq!(s.read(|c| invoices::get(c, id)).unwrap().balance.shillings(), 1500);
        assert_eq!(s.read(list).unwrap().len(), 1);
    }

    #[test]
    fn an_overpayment_becomes_a_credit() {
        let s = temp_store();
        let id = invoice(&s, 2500);
        let out = s.write(|tx| apply(tx, &pay(id, 3000, Some("QAA1111111")), Utc::now())).unwrap();
        assert!(matches!(out, Applied::New { applied, credit, .. } if applied.shillings() == 2500 && credit.shillings() == 500));
        assert_eq!(s.read(|c| invoices::get(c, id)).unwrap().balance.shillings(), 0);
    }
}
