//! Recording a payment the customer made outside M-Pesa prompts: cash at the counter or a bank
//! transfer. It goes through the ledger like every other payment, with `Source::Manual`.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::domain::Kes;
use crate::payments::ledger::{self, Applied, Receipt, Source};
use crate::store::invoices::{self, InvoiceStatus};
use crate::store::{audit, Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Cash,
    Bank,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "cash",
            PaymentMethod::Bank => "bank",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ManualPayment {
    pub invoice_id: i64,
    pub amount: Kes,
    pub method: PaymentMethod,
    /// The bank's transaction reference (required for bank), or a receipt-book number for cash.
    pub reference: String,
    pub paid_at: DateTime<Utc>,
}

/// Records a cash or bank payment against an invoice through `payments::ledger::apply`. A bank
/// payment with the same reference on the same invoice is recorded once. What exceeds the balance is
/// kept as a credit, as for any payment.
pub fn record_payment(tx: &Transaction, p: &ManualPayment, actor: &str, now: DateTime<Utc>) -> Result<Applied> {
    let inv = invoices::get(tx, p.invoice_id)?;
    if p.amount.is_zero() {
        return Err(StoreError::Conflict(format!("invoice {}: a payment must be more than zero", inv.number)));
    }
    let given = p.reference.trim();
    if p.method == PaymentMethod::Bank && given.is_empty() {
        return Err(StoreError::Conflict(format!(
            "invoice {}: a bank payment needs its reference (the transfer or deposit slip number)",
            inv.number
        )));
    }
    if !inv.status.is_collectable() {
        let why = match inv.status {
            InvoiceStatus::Paid => "is already paid".to_string(),
            InvoiceStatus::Disputed => "is disputed; settle the dispute before recording a payment".to_string(),
            s => format!("is {}", s.as_str().replace('_', " ")),
        };
        return Err(StoreError::Conflict(format!("invoice {} {why}", inv.number)));
    }
    let reference = if given.is_empty() { p.method.as_str().to_string() } else { format!("{}: {given}", p.method.as_str()) };
    if !given.is_empty() {
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM ledger_payments WHERE source = 'manual' AND invoice_id = ?1 AND reference = ?2",
                (p.invoice_id, &reference),
                |r| r.get(0),
            )
            .optional()?;
        if let Some(ledger_id) = existing {
            return Ok(Applied::Duplicate { ledger_id });
        }
    }
    let applied = ledger::apply(
        tx,
        &Receipt {
            invoice_id: Some(p.invoice_id),
            customer_id: Some(inv.customer_id),
            amount: p.amount,
            receipt: None,
            source: Source::Manual,
            attempt_id: None,
            reference: reference.clone(),
            paid_at: p.paid_at,
        },
        now,
    )?;
    audit(tx, now, actor, "manual_payment_recorded", &inv.number, &format!("{} {reference}", p.amount))?;
    Ok(applied)
}
