//! The merchant's day at a glance: money in today and this month, the collection rate month by month,
//! this month's funnel, and the attention queue — everything that waits on a person. Read-only SQL over
//! the same tables the reports use, so the dashboard and the Reports screen always agree.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use rusqlite::{params, Connection, Transaction};
use serde::Serialize;

use crate::domain::{kes_text as kes, Msisdn};
use crate::reports::{self, day_end, Funnel};
use crate::store::{self, ts, Result, StoreError};

/// How many months the rate chart shows, the current one included.
const MONTHS_SHOWN: u32 = 6;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dashboard {
    pub collected_today: i64,
    pub payments_today: i64,
    pub collected_this_month: i64,
    pub owed: i64,
    pub open_invoices: i64,
    pub overdue: i64,
    /// Oldest month first, ending with the current one.
    pub months: Vec<MonthFigures>,
    /// This month so far.
    pub funnel: Funnel,
    pub attention: Vec<AttentionItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MonthFigures {
    /// "2026-12".
    pub month: String,
    /// Of what fell due in the month, the share paid so far (by amount, 0–100); None when nothing was due.
    pub collection_rate: Option<f64>,
    /// Money received in the month, all sources.
    pub collected: i64,
}

/// Something only the merchant can settle. `kind` tells the UI which action fits.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttentionItem {
    /// dispute | human | receipt_check | needs_review | unmatched_payment | whatsapp_paused | mpesa_refused | event_failed
    pub kind: &'static str,
    /// The row the action acts on: an `attention`, attempt, unmatched payment or inbound event id.
    pub id: i64,
    pub title: String,
    pub detail: String,
    pub customer_id: Option<i64>,
    pub customer_name: Option<String>,
    pub invoice_number: Option<String>,
    pub at: String,
}

fn local_today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("day 1 exists")
}

/// Money received from the start of local day `from` up to `until` (exclusive), as stored text bounds.
fn collected_since(conn: &Connection, from: NaiveDate, tz: Tz, until: &str) -> Result<(i64, i64)> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM ledger_payments WHERE paid_at >= ?1 AND paid_at < ?2",
        params![day_end(from - Duration::days(1), tz), until],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Money received today (the merchant's day) and how many payments: the tray shows it.
pub fn today(conn: &Connection, now: DateTime<Utc>, tz: Tz) -> Result<(i64, i64)> {
    let today = local_today(now, tz);
    collected_since(conn, today, tz, &day_end(today, tz))
}

pub fn dashboard(conn: &Connection, now: DateTime<Utc>, tz: Tz) -> Result<Dashboard> {
    let today = local_today(now, tz);
    let tomorrow = day_end(today, tz);
    let (collected_today, payments_today) = self::today(conn, now, tz)?;
    let (collected_this_month, _) = collected_since(conn, month_start(today), tz, &tomorrow)?;
    let (owed, open_invoices, overdue): (i64, i64, i64) = conn.query_row(
        "SELECT COALESCE(SUM(balance), 0), COUNT(*), COALESCE(SUM(due_date < ?1), 0) FROM invoices INDEXED BY invoices_owed
         WHERE balance > 0 AND status != 'cancelled' AND status IN ('open', 'partially_paid', 'disputed')",
        [today.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;

    let mut months = Vec::new();
    for back in (0..MONTHS_SHOWN).rev() {
        let first = month_start(today) - Months::new(back);
        let last = (first + Months::new(1)) - Duration::days(1);
        let (due, paid): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(amount), 0), COALESCE(SUM(amount - balance), 0) FROM invoices
             WHERE due_date BETWEEN ?1 AND ?2 AND status != 'cancelled'",
            params![first.to_string(), last.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (collected, _) = collected_since(conn, first, tz, &day_end(last, tz))?;
        months.push(MonthFigures {
            month: first.format("%Y-%m").to_string(),
            collection_rate: (due > 0).then(|| (paid as f64 * 1000.0 / due as f64).round() / 10.0),
            collected,
        });
    }

    Ok(Dashboard {
        collected_today,
        payments_today,
        collected_this_month,
        owed,
        open_invoices,
        overdue,
        months,
        funnel: reports::funnel(conn, month_start(today), today, tz)?,
        attention: attention(conn, now)?,
    })
}

/// The attention queue, newest first: open disputes, requests for a person and M-Pesa codes to check;
/// payments needing review; paybill payments no invoice matched; sending paused by WhatsApp; M-Pesa
/// refusing prompts; webhook events that could not be processed.
pub fn attention(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<AttentionItem>> {
    let mut items = Vec::new();

    let mut stmt = conn.prepare(
        "SELECT a.id, a.kind, a.detail, a.customer_id, c.name, i.number, a.created_at FROM attention a
         LEFT JOIN customers c ON c.id = a.customer_id LEFT JOIN invoices i ON i.id = a.invoice_id
         WHERE a.resolved_at IS NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        let kind: String = r.get(1)?;
        let (kind, title) = match kind.as_str() {
            "dispute" => ("dispute", "Invoice disputed"),
            "receipt_check" => ("receipt_check", "Check an M-Pesa code"),
            _ => ("human", "Customer asks for a person"),
        };
        Ok(AttentionItem {
            kind,
            id: r.get(0)?,
            title: title.into(),
            detail: r.get(2)?,
            customer_id: r.get(3)?,
            customer_name: r.get(4)?,
            invoice_number: r.get(5)?,
            at: r.get(6)?,
        })
    })?;
    for row in rows {
        items.push(row?);
    }

    let mut stmt = conn.prepare(
        "SELECT a.id, a.amount, a.customer_id, c.name, i.number, a.updated_at,
                COALESCE((SELECT detail FROM payment_events e WHERE e.attempt_id = a.id ORDER BY e.id DESC LIMIT 1), '')
         FROM payment_attempts a JOIN customers c ON c.id = a.customer_id JOIN invoices i ON i.id = a.invoice_id
         WHERE a.state = 'needs_review'",
    )?;
    let rows = stmt.query_map([], |r| {
        let amount: i64 = r.get(1)?;
        let why: String = r.get(6)?;
        Ok(AttentionItem {
            kind: "needs_review",
            id: r.get(0)?,
            title: "Payment needs review".into(),
            detail: format!("{} — {}", kes(amount), if why.is_empty() { "M-Pesa's answers disagree".into() } else { why }),
            customer_id: r.get(2)?,
            customer_name: r.get(3)?,
            invoice_number: r.get(4)?,
            at: r.get(5)?,
        })
    })?;
    for row in rows {
        items.push(row?);
    }

    let mut stmt =
        conn.prepare("SELECT id, trans_id, amount, bill_ref, msisdn, payer_name, received_at FROM unmatched_payments WHERE resolved_at IS NULL")?;
    let rows = stmt.query_map([], |r| {
        let (trans_id, amount, bill_ref, msisdn, payer): (String, i64, String, String, String) =
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let from = match (payer.is_empty(), Msisdn::parse(&msisdn).ok()) {
            (false, _) => payer,
            (true, Some(p)) => p.masked(),
            (true, None) => "an unknown payer".into(),
        };
        let reference = if bill_ref.is_empty() { "no account reference".to_string() } else { format!("account \"{bill_ref}\"") };
        Ok(AttentionItem {
            kind: "unmatched_payment",
            id: r.get(0)?,
            title: "Payment to match".into(),
            detail: format!("{} from {from}, {reference} (M-Pesa {trans_id})", kes(amount)),
            customer_id: None,
            customer_name: None,
            invoice_number: None,
            at: r.get(6)?,
        })
    })?;
    for row in rows {
        items.push(row?);
    }

    if let Some(p) = store::settings::get::<crate::whatsapp::outbox::PausedSending>(conn, crate::whatsapp::outbox::PAUSED_KEY)? {
        items.push(AttentionItem {
            kind: "whatsapp_paused",
            id: 0,
            title: "WhatsApp sending is paused".into(),
            detail: p.reason,
            customer_id: None,
            customer_name: None,
            invoice_number: None,
            at: p.at,
        });
    }

    // M-Pesa refusing the latest prompt (bad credentials, wrong shortcode…) stops every payment, so it
    // shows until a later prompt goes through.
    let latest = conn.query_row(
        "SELECT a.id, a.state, a.updated_at, COALESCE((SELECT detail FROM payment_events e WHERE e.attempt_id = a.id ORDER BY e.id DESC LIMIT 1), ''),
                a.customer_id, c.name, i.number
         FROM payment_attempts a JOIN customers c ON c.id = a.customer_id JOIN invoices i ON i.id = a.invoice_id
         ORDER BY a.id DESC LIMIT 1",
        [],
        |r| {
            let state: String = r.get(1)?;
            let item = AttentionItem {
                kind: "mpesa_refused",
                id: r.get(0)?,
                title: "M-Pesa refused the last payment prompt".into(),
                detail: r.get(3)?,
                customer_id: r.get(4)?,
                customer_name: r.get(5)?,
                invoice_number: r.get(6)?,
                at: r.get(2)?,
            };
            Ok((state, item))
        },
    );
    match latest {
        Ok((state, item)) => {
            let recent = store::parse_ts(&item.at).is_ok_and(|t| now - t < Duration::days(1));
            if state == "rejected" && recent {
                items.push(item);
            }
        }
        Err(rusqlite::Error::QueryReturnedNoRows) => {}
        Err(e) => return Err(e.into()),
    }

    for (id, error) in crate::whatsapp::inbox::parked_events(conn)? {
        items.push(AttentionItem {
            kind: "event_failed",
            id,
            title: "A WhatsApp message could not be handled".into(),
            detail: error,
            customer_id: None,
            customer_name: None,
            invoice_number: None,
            at: String::new(),
        });
    }

    items.sort_by(|a, b| b.at.cmp(&a.at));
    Ok(items)
}

/// The merchant dealt with a dispute, a request for a person or a code to check.
pub fn resolve_attention(tx: &Transaction, id: i64, now: DateTime<Utc>) -> Result<()> {
    let n = tx.execute("UPDATE attention SET resolved_at = ?2 WHERE id = ?1 AND resolved_at IS NULL", params![id, ts(now)])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("attention item {id} (already resolved?)")));
    }
    store::audit(tx, now, "merchant", "attention_resolved", &id.to_string(), "")
}


#[cfg(test)]
mod tests;
