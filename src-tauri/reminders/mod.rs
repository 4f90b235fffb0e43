//! Payment reminders on the merchant's schedule: the pure schedule maths (`schedule`) and the
//! durable runner that sends what is due, at most one message a day per customer, with all of that
//! customer's due invoices in it. What was sent and the next run are stored, so a restart — or a
//! laptop closed for a week — neither repeats nor bursts.

pub mod schedule;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rusqlite::{params, Connection, Transaction};
use serde::Serialize;

use crate::domain::{kes_text as kes, Msisdn};
use crate::store::{self, settings, ts, Result, StoreError};
use crate::whatsapp::graph::ReplyButton;
use crate::whatsapp::outbox::{self, Outgoing};
use crate::whatsapp::{templates, OutboundMessage};
pub use schedule::{PolicyError, ReminderPolicy};

const POLICY_KEY: &str = "reminders.policy";

pub fn policy(conn: &Connection) -> Result<ReminderPolicy> {
    Ok(settings::get(conn, POLICY_KEY)?.unwrap_or_default())
}

pub fn save_policy(tx: &Transaction, p: &ReminderPolicy, now: DateTime<Utc>) -> Result<std::result::Result<(), PolicyError>> {
    if let Err(e) = p.validate() {
        return Ok(Err(e));
    }
    settings::set(tx, POLICY_KEY, p, now)?;
    Ok(Ok(()))
}

/// An invoice that may be reminded about: collectable, not disputed, its customer reachable, not
/// opted out, not in a person's hands, with no promise to pay still ahead.
#[derive(Debug, Clone)]
struct Candidate {
    invoice_id: i64,
    number: String,
    balance: i64,
    due: NaiveDate,
    customer_id: i64,
    customer_name: String,
    phone: String,
    language: String,
    sent: Option<usize>,
}

fn candidates(conn: &Connection, today: NaiveDate) -> Result<Vec<Candidate>> {
    let mut stmt = conn.prepare(
        "SELECT i.id, i.number, i.balance, i.due_date, c.id, c.name, c.phone, c.language, s.next_step
         FROM invoices i JOIN customers c ON c.id = i.customer_id
         LEFT JOIN reminder_schedule s ON s.invoice_id = i.id
         WHERE i.status IN ('open', 'partially_paid') AND i.balance > 0 AND i.reminders_paused = 0
           AND c.phone IS NOT NULL AND c.opted_out_at IS NULL AND COALESCE(s.paused, 0) = 0
           AND NOT EXISTS (SELECT 1 FROM conversations v WHERE v.customer_id = c.id AND v.handled_by = 'human')
           AND NOT EXISTS (SELECT 1 FROM promises p WHERE p.customer_id = c.id AND p.status = 'pending' AND p.promised_date >= ?1)
         ORDER BY c.id, i.due_date, i.id",
    )?;
    let rows = stmt
        .query_map([today.to_string()], |r| {
            let due: String = r.get(3)?;
            let next_step: Option<i64> = r.get(8)?;
            Ok(Candidate {
                invoice_id: r.get(0)?,
                number: r.get(1)?,
                balance: r.get(2)?,
                due: due.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?,
                customer_id: r.get(4)?,
                customer_name: r.get(5)?,
                phone: r.get(6)?,
                language: r.get(7)?,
                sent: next_step.filter(|n| *n > 0).map(|n| n as usize - 1),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn reminded_today(conn: &Connection, customer_id: i64, today: NaiveDate) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM reminder_sends WHERE customer_id = ?1 AND sent_on = ?2)",
        params![customer_id, today.to_string()],
        |r| r.get(0),
    )?)
}

/// One reminder sent (or planned): a customer and the invoices in the message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reminder {
    pub day: NaiveDate,
    pub customer_id: i64,
    pub customer_name: String,
    pub invoices: Vec<(String, i64, usize)>,
}

/// Groups due invoices by customer for `today`.
fn due_today(policy: &ReminderPolicy, candidates: &[Candidate], today: NaiveDate) -> Vec<(Vec<(Candidate, usize)>, i64)> {
    let mut out: Vec<(Vec<(Candidate, usize)>, i64)> = Vec::new();
    for c in candidates {
        let Some(step) = policy.due_step(c.due, c.sent, today) else { continue };
        match out.last_mut() {
            Some((items, customer)) if *customer == c.customer_id => items.push((c.clone(), step)),
            _ => out.push((vec![(c.clone(), step)], c.customer_id)),
        }
    }
    out
}

/// Sends every reminder due at `now` (nothing outside the send window). Returns what it sent.
pub fn run_due(tx: &Transaction, now: DateTime<Utc>, tz: Tz, merchant: &str) -> Result<Vec<Reminder>> {
    let policy = policy(tx)?;
    if !policy.may_send_now(now, tz) {
        return Ok(vec![]);
    }
    let today = now.with_timezone(&tz).date_naive();
    let mut sent = Vec::new();
    for (items, customer_id) in due_today(&policy, &candidates(tx, today)?, today) {
        if reminded_today(tx, customer_id, today)? {
            continue;
        }
        let first = &items[0].0;
        let phone = Msisdn::parse(&first.phone).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let message = reminder_message(&items, merchant);
        let key = format!("reminder:{customer_id}:{today}");
        let outbox_id = outbox::enqueue(tx, &key, &phone, &message, now)?;
        for (c, step) in &items {
            tx.execute(
                "INSERT INTO reminder_sends (customer_id, invoice_id, step, outbox_id, sent_on, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![customer_id, c.invoice_id, *step as i64, outbox_id, today.to_string(), ts(now)],
            )?;
            let next = policy.next_send(c.due, Some(*step), tz).map(ts);
            tx.execute(
                "INSERT INTO reminder_schedule (invoice_id, next_step, next_run_at, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (invoice_id) DO UPDATE SET next_step = excluded.next_step, next_run_at = excluded.next_run_at, updated_at = excluded.updated_at",
                params![c.invoice_id, *step as i64 + 1, next, ts(now)],
            )?;
        }
        store::audit(tx, now, "reminders", "sent", &phone.masked(), &items.iter().map(|(c, s)| format!("{} step {}", c.number, s + 1)).collect::<Vec<_>>().join(", "))?;
        sent.push(Reminder {
            day: today,
            customer_id,
            customer_name: first.customer_name.clone(),
            invoices: items.iter().map(|(c, s)| (c.number.clone(), c.balance, *s)).collect(),
        });
    }
    Ok(sent)
}

/// The reminders the next `days` days would send, if nobody pays or replies meanwhile.
pub fn preview(conn: &Connection, now: DateTime<Utc>, tz: Tz, days: u32) -> Result<Vec<Reminder>> {
    let policy = policy(conn)?;
    if !policy.enabled {
        return Ok(vec![]);
    }
    let mut candidates = candidates(conn, now.with_timezone(&tz).date_naive())?;
    let today = now.with_timezone(&tz).date_naive();
    let mut planned = Vec::new();
    for offset in 0..days {
        let day = today + chrono::Duration::days(offset as i64);
        // Today counts only if the send time has not passed and nothing went out yet.
        if offset == 0 && (now > policy.local_send_time(day, tz) && !policy.may_send_now(now, tz)) {
            continue;
        }
        for (items, customer_id) in due_today(&policy, &candidates, day) {
            if offset == 0 && reminded_today(conn, customer_id, day)? {
                continue;
            }
            for (c, step) in &items {
                if let Some(cand) = candidates.iter_mut().find(|x| x.invoice_id == c.invoice_id) {
                    cand.sent = Some(*step);
                }
            }
            planned.push(Reminder {
                day,
                customer_id,
                customer_name: items[0].0.customer_name.clone(),
                invoices: items.iter().map(|(c, s)| (c.number.clone(), c.balance, *s)).collect(),
            });
        }
    }
    Ok(planned)
}

/// The reminder: free-form with buttons inside the 24-hour window, the approved template outside it.
fn reminder_message(items: &[(Candidate, usize)], merchant: &str) -> Outgoing {
    let first = &items[0].0;
    let sw = first.language == "sw";
    let name = first.customer_name.split_whitespace().next().unwrap_or("").to_string();
    let total: i64 = items.iter().map(|(c, _)| c.balance).sum();
    let lines: Vec<String> = items
        .iter()
        .map(|(c, _)| if sw { format!("• {}: {} (tarehe {})", c.number, kes(c.balance), c.due.format("%-d/%-m/%Y")) } else { format!("• {}: {} (due {})", c.number, kes(c.balance), c.due.format("%-d %b %Y")) })
        .collect();
    let body = if sw {
        format!("Habari {name}, huu ni ukumbusho kutoka {merchant}:\n{}\nBonyeza Lipa sasa kulipa kwa M-Pesa. Jibu ACHA kusitisha vikumbusho.\n— {merchant}", lines.join("\n"))
    } else {
        format!("Hello {name}, a friendly reminder from {merchant}:\n{}\nTap Pay now to pay with M-Pesa. Reply STOP to stop reminders.\n— {merchant}", lines.join("\n"))
    };
    // One invoice: the button pays it; several: the agent asks which.
    let pay_id = if items.len() == 1 { format!("PAY:{}", first.number) } else { "PAY".to_string() };
    let buttons = vec![
        ReplyButton { id: pay_id.clone(), title: if sw { "Lipa sasa" } else { "Pay now" }.into() },
        ReplyButton { id: "HUMAN".into(), title: if sw { "Ongea nasi" } else { "Talk to us" }.into() },
    ];
    let numbers = items.iter().map(|(c, _)| c.number.as_str()).collect::<Vec<_>>().join(", ");
    let due = if sw { first.due.format("%-d/%-m/%Y").to_string() } else { first.due.format("%-d %b %Y").to_string() };
    let template = templates::payment_reminder(&templates::defaults(), if sw { "sw" } else { "en" }, &name, &kes(total), &numbers, &due, merchant)
        .ok()
        .map(|t| match t {
            OutboundMessage::Template { name, language, body_params, .. } => {
                OutboundMessage::Template { name, language, body_params, quick_reply_payloads: vec![pay_id.clone()] }
            }
            other => other,
        });
    Outgoing::business(OutboundMessage::Buttons { body, footer: None, buttons }, template)
}

/// Promise follow-ups: the day after a promised date, if the invoice is still unpaid, a gentle nudge;
/// the promise is marked kept or broken either way.
pub fn follow_up_promises(tx: &Transaction, now: DateTime<Utc>, tz: Tz, merchant: &str) -> Result<usize> {
    let policy = policy(tx)?;
    if !policy.may_send_now(now, tz) {
        return Ok(0);
    }
    let today = now.with_timezone(&tz).date_naive();
    let mut stmt = tx.prepare(
        "SELECT p.id, p.promised_date, c.name, c.phone, c.language, c.opted_out_at IS NOT NULL,
                COALESCE(i.number, ''), COALESCE(i.balance, (SELECT COALESCE(SUM(balance), 0) FROM invoices WHERE customer_id = c.id AND status IN ('open', 'partially_paid')))
         FROM promises p JOIN customers c ON c.id = p.customer_id LEFT JOIN invoices i ON i.id = p.invoice_id
         WHERE p.status = 'pending' AND p.promised_date < ?1",
    )?;
    let due = stmt
        .query_map([today.to_string()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Option<String>>(3)?, r.get::<_, String>(4)?, r.get::<_, bool>(5)?, r.get::<_, String>(6)?, r.get::<_, i64>(7)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    drop(stmt);
    let mut sent = 0;
    for (id, date, name, phone, language, opted_out, invoice, balance) in due {
        let kept = balance == 0;
        tx.execute("UPDATE promises SET status = ?1 WHERE id = ?2", params![if kept { "kept" } else { "broken" }, id])?;
        let Some(phone) = phone.and_then(|p| Msisdn::parse(&p).ok()).filter(|_| !kept && !opted_out) else { continue };
        let first = name.split_whitespace().next().unwrap_or("").to_string();
        let lang = if language == "sw" { "sw" } else { "en" };
        let params = vec![first.clone(), kes(balance), invoice.clone(), date.clone(), merchant.to_string()];
        let Ok(OutboundMessage::Template { name: t, language: l, body_params, .. }) =
            templates::build(&templates::defaults(), templates::PROMISE_FOLLOWUP, lang, params, vec![format!("PAY:{invoice}")])
        else {
            continue;
        };
        let payload = if invoice.is_empty() { "PAY".to_string() } else { format!("PAY:{invoice}") };
        let message = OutboundMessage::Template { name: t, language: l, body_params, quick_reply_payloads: vec![payload] };
        outbox::enqueue(tx, &format!("promise:{id}"), &phone, &Outgoing::business(message.clone(), Some(message)), now)?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests;
