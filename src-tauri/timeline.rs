//! One invoice's story, oldest first: created or changed, each reminder, the customer's chat, every
//! payment prompt and what M-Pesa answered, and the money received. Read-only, for the invoice detail.

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::domain::kes_text as kes;
use crate::store::{invoices, Result};

/// How much of the customer's chat the timeline shows.
const MESSAGES_SHOWN: i64 = 40;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TimelineEntry {
    /// RFC 3339, UTC.
    pub at: String,
    /// change | reminder | message_in | message_out | prompt | payment
    pub kind: &'static str,
    pub title: String,
    pub detail: String,
}

pub fn invoice_timeline(conn: &Connection, invoice_id: i64) -> Result<Vec<TimelineEntry>> {
    let invoice = invoices::get(conn, invoice_id)?;
    let mut entries = Vec::new();

    // Changes the merchant or an import made, recorded in the audit log under the invoice number.
    let mut stmt = conn.prepare("SELECT at, action, actor, detail FROM audit_log WHERE subject = ?1 AND action LIKE 'invoice_%' ORDER BY id")?;
    let rows = stmt.query_map([&invoice.number], |r| {
        let (action, actor): (String, String) = (r.get(1)?, r.get(2)?);
        let title = match action.as_str() {
            "invoice_created" => "Invoice created",
            "invoice_edited" => "Invoice edited",
            "invoice_updated_by_import" => "Updated by an import",
            "invoice_import_warning" => "Import left it unchanged",
            "invoice_cancelled" => "Invoice cancelled",
            "invoice_written_off" => "Written off",
            _ => "Changed",
        };
        Ok(TimelineEntry { at: r.get(0)?, kind: "change", title: format!("{title} ({actor})"), detail: r.get(3)? })
    })?;
    for row in rows {
        entries.push(row?);
    }

    let mut stmt = conn.prepare(
        "SELECT s.at, s.step, COALESCE(o.state, ''), COALESCE(o.error, '') FROM reminder_sends s LEFT JOIN outbox o ON o.id = s.outbox_id
         WHERE s.invoice_id = ?1 ORDER BY s.id",
    )?;
    let rows = stmt.query_map([invoice_id], |r| {
        let (step, state, error): (i64, String, String) = (r.get(1)?, r.get(2)?, r.get(3)?);
        let detail = match state.as_str() {
            "failed" => format!("not delivered: {error}"),
            "cancelled" => "not sent (cancelled)".to_string(),
            "" => String::new(),
            s => s.to_string(),
        };
        Ok(TimelineEntry { at: r.get(0)?, kind: "reminder", title: format!("Reminder {} sent on WhatsApp", step + 1), detail })
    })?;
    for row in rows {
        entries.push(row?);
    }

    // The customer's latest messages since the invoice was issued (the chat is per customer).
    let mut stmt = conn.prepare(
        "SELECT at, direction, body FROM (
             SELECT m.id, m.at, m.direction, m.body FROM messages m JOIN conversations v ON v.id = m.conversation_id
             WHERE v.customer_id = ?1 AND m.at >= ?2 ORDER BY m.id DESC LIMIT ?3)
         ORDER BY id",
    )?;
    let rows = stmt.query_map(params![invoice.customer_id, invoice.issue_date.to_string(), MESSAGES_SHOWN], |r| {
        let incoming = r.get::<_, String>(1)? == "in";
        Ok(TimelineEntry {
            at: r.get(0)?,
            kind: if incoming { "message_in" } else { "message_out" },
            title: if incoming { "Customer wrote".into() } else { "Malipo replied".into() },
            detail: r.get(2)?,
        })
    })?;
    for row in rows {
        entries.push(row?);
    }

    let mut stmt = conn.prepare(
        "SELECT e.at, a.id, a.amount, a.origin, e.from_state, e.to_state, e.detail FROM payment_events e
         JOIN payment_attempts a ON a.id = e.attempt_id WHERE a.invoice_id = ?1 ORDER BY e.id",
    )?;
    let rows = stmt.query_map([invoice_id], |r| {
        let (attempt, amount, origin, from, to, detail): (i64, i64, String, Option<String>, String, String) =
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
        let who = if origin == "merchant" { "requested by you" } else { "from the chat" };
        let title = match from {
            None => format!("Payment prompt #{attempt} for {} ({who})", kes(amount)),
            Some(_) => format!("Prompt #{attempt}: {}", to.replace('_', " ")),
        };
        Ok(TimelineEntry { at: r.get(0)?, kind: "prompt", title, detail })
    })?;
    for row in rows {
        entries.push(row?);
    }

    let mut stmt = conn.prepare(
        "SELECT paid_at, amount, applied, credit, source, COALESCE(receipt, reference) FROM ledger_payments WHERE invoice_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([invoice_id], |r| {
        let (amount, applied, credit, source, receipt): (i64, i64, i64, String, String) = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let how = match source.as_str() {
            "stk_chat" => "M-Pesa, from the chat",
            "stk_merchant" => "M-Pesa, requested by you",
            "c2b" => "M-Pesa paybill/till",
            _ => "cash or bank",
        };
        let mut detail = format!("{how}; {receipt}");
        if credit > 0 {
            detail.push_str(&format!("; {} applied, {} kept as credit", kes(applied), kes(credit)));
        }
        Ok(TimelineEntry { at: r.get(0)?, kind: "payment", title: format!("{} received", kes(amount)), detail })
    })?;
    for row in rows {
        entries.push(row?);
    }

    // Stable: entries at the same instant keep the order above (a change before its payment).
    entries.sort_by(|a, b| a.at.cmp(&b.at));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::tests::dataset;

    #[test]
    fn an_invoice_tells_its_story_oldest_first() {
        let s = dataset();
        let a = s.read(|c| Ok(invoices::by_number(c, "A")?.unwrap().id)).unwrap();
        s.write(|tx| {
            tx.execute_batch(
                "INSERT INTO payment_events (attempt_id, from_state, to_state, cause, detail, at)
                   SELECT id, NULL, 'pending', 'merchant', '', '2026-12-03T06:00:00.000Z' FROM payment_attempts WHERE idempotency_key = 'chat:a';
                 INSERT INTO payment_events (attempt_id, from_state, to_state, cause, detail, at)
                   SELECT id, 'pushed', 'paid', 'callback', 'The service request is processed successfully.', '2026-12-03T06:01:00.000Z' FROM payment_attempts WHERE idempotency_key = 'chat:a';",
            )?;
            Ok(())
        })
        .unwrap();
        let t = s.read(|c| invoice_timeline(c, a)).unwrap();
        let kinds: Vec<_> = t.iter().map(|e| e.kind).collect();
        // Reminded 2 Dec, the customer wrote, the prompt went out and was paid on 3 Dec (A's dataset).
        assert_eq!(kinds, vec!["reminder", "message_in", "prompt", "prompt", "payment"], "{t:#?}");
        assert_eq!(t[0].title, "Reminder 1 sent on WhatsApp");
        assert_eq!(t[1].detail, "nataka kulipa");
        assert_eq!(t[2].title, "Payment prompt #1 for KES 1,000 (from the chat)");
        assert_eq!(t[3].title, "Prompt #1: paid");
        assert_eq!((t[4].title.as_str(), t[4].detail.as_str()), ("KES 1,000 received", "M-Pesa, from the chat; QAA0000001"));
    }

    #[test]
    fn an_unknown_invoice_is_not_found() {
        let s = dataset();
        assert!(matches!(s.read(|c| invoice_timeline(c, 999)), Err(crate::store::StoreError::NotFound(_))));
    }
}
