//! The reminder runner against a real store, at chosen instants (no sleeping).

use chrono::{NaiveDate, TimeZone, Utc};

use super::*;
use crate::domain::{InvoiceNo, Kes};
use crate::store::invoices::{self, NewInvoice};
use crate::store::test_support::{temp_store, TempStore};

const NAIROBI: Tz = chrono_tz::Africa::Nairobi;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// 09:30 Nairobi time on that day.
fn morning(day: NaiveDate) -> DateTime<Utc> {
    NAIROBI.from_local_datetime(&day.and_hms_opt(9, 30, 0).unwrap()).unwrap().with_timezone(&Utc)
}

fn add(s: &TempStore, number: &str, phone: &str, amount: i64, due: NaiveDate) -> i64 {
    s.write(|tx| {
        invoices::insert(
            tx,
            &NewInvoice {
                number: InvoiceNo::parse(number).unwrap(),
                customer_name: "Achieng Otieno".into(),
                phone: Some(Msisdn::parse(phone).unwrap()),
                amount: Kes::positive(amount).unwrap(),
                balance: None,
                issue_date: due - chrono::Duration::days(30),
                due_date: due,
                description: String::new(),
            },
            Utc::now(),
        )
    })
    .unwrap()
}

fn run(s: &TempStore, now: DateTime<Utc>) -> Vec<Reminder> {
    s.write(|tx| run_due(tx, now, NAIROBI, "Duka la Mama")).unwrap()
}

fn outbox_bodies(s: &TempStore) -> Vec<String> {
    s.read(|c| {
        let mut stmt = c.prepare("SELECT payload FROM outbox WHERE idempotency_key LIKE 'reminder:%' ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    })
    .unwrap()
}

#[test]
fn one_message_a_day_per_customer_with_all_their_due_invoices() {
    let s = temp_store();
    add(&s, "INV-1", "0712345678", 2500, d(2026, 12, 10));
    add(&s, "INV-2", "0712345678", 1200, d(2026, 12, 10));
    add(&s, "INV-3", "0722000111", 900, d(2026, 12, 20));
    let sent = run(&s, morning(d(2026, 12, 7)));
    assert_eq!(sent.len(), 1, "only the first customer has a step due (3 days before)");
    assert_eq!(sent[0].invoices.iter().map(|i| i.0.as_str()).collect::<Vec<_>>(), ["INV-1", "INV-2"]);
    let bodies = outbox_bodies(&s);
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].contains("INV-1") && bodies[0].contains("INV-2") && bodies[0].contains("KES 2,500") && bodies[0].contains("Duka la Mama"));
    assert!(bodies[0].contains("malipo_payment_reminder"), "a template to fall back on outside the 24-hour window");
    // Running again the same day sends nothing more.
    assert!(run(&s, morning(d(2026, 12, 7)) + chrono::Duration::hours(3)).is_empty());
}

#[test]
fn nothing_goes_out_before_the_send_time_in_quiet_hours_or_on_sundays() {
    let s = temp_store();
    add(&s, "INV-1", "0712345678", 2500, d(2026, 12, 10));
    let early = NAIROBI.with_ymd_and_hms(2026, 12, 7, 7, 0, 0).unwrap().with_timezone(&Utc);
    assert!(run(&s, early).is_empty());
    let late = NAIROBI.with_ymd_and_hms(2026, 12, 7, 21, 0, 0).unwrap().with_timezone(&Utc);
    assert!(run(&s, late).is_empty());
    let sunday = d(2026, 12, 13);
    assert!(run(&s, morning(sunday)).is_empty());
    assert_eq!(run(&s, morning(d(2026, 12, 7))).len(), 1);
}

#[test]
fn after_a_week_closed_only_the_latest_step_goes_out() {
    let s = temp_store();
    let id = add(&s, "INV-1", "0712345678", 2500, d(2026, 12, 10));
    let sent = run(&s, morning(d(2026, 12, 18)));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].invoices[0].2, 3, "step +7 days, not −3, 0 and +3 in a burst");
    let steps: i64 = s.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM reminder_sends WHERE invoice_id = ?1", [id], |r| r.get(0))?)).unwrap();
    assert_eq!(steps, 1);
    // The next one is the first weekly repeat.
    assert!(run(&s, morning(d(2026, 12, 23))).is_empty());
    assert_eq!(run(&s, morning(d(2026, 12, 24)))[0].invoices[0].2, 4);
}

#[test]
fn reminders_stop_when_paid_disputed_opted_out_promised_or_with_a_person() {
    let cases: [(&str, &str); 5] = [
        ("paid", "UPDATE invoices SET balance = 0, status = 'paid'"),
        ("disputed", "UPDATE invoices SET reminders_paused = 1, status = 'disputed'"),
        ("opted out", "UPDATE customers SET opted_out_at = '2026-12-01T00:00:00.000Z'"),
        ("promise pending", "INSERT INTO promises (customer_id, promised_date, created_at) SELECT id, '2026-12-11', 'x' FROM customers"),
        ("a person handles it", "INSERT INTO conversations (customer_id, handled_by, updated_at) SELECT id, 'human', 'x' FROM customers"),
    ];
    for (why, sql) in cases {
        let s = temp_store();
        add(&s, "INV-1", "0712345678", 2500, d(2026, 12, 10));
        s.write(|tx| Ok(tx.execute(sql, [])?)).unwrap();
        assert!(run(&s, morning(d(2026, 12, 10))).is_empty(), "{why}");
    }
}

#[test]
fn the_preview_shows_the_next_seven_days_of_sends() {
    let s = temp_store();
    add(&s, "INV-1", "0712345678", 2500, d(2026, 12, 10));
    add(&s, "INV-9", "0722000111", 900, d(2026, 12, 31));
    let now = NAIROBI.with_ymd_and_hms(2026, 12, 7, 7, 0, 0).unwrap().with_timezone(&Utc);
    let plan = s.read(|c| preview(c, now, NAIROBI, 7)).unwrap();
    let days: Vec<_> = plan.iter().map(|r| (r.day, r.invoices[0].0.as_str())).collect();
    assert_eq!(days, [(d(2026, 12, 7), "INV-1"), (d(2026, 12, 10), "INV-1")]);
    // The +3 step falls on Sunday 13 December and moves to Monday, just past the week.
    let plan = s.read(|c| preview(c, now, NAIROBI, 8)).unwrap();
    assert_eq!(plan.last().map(|r| r.day), Some(d(2026, 12, 14)));
    assert!(outbox_bodies(&s).is_empty(), "a preview sends nothing");
}

#[test]
fn a_broken_promise_gets_a_follow_up_the_day_after_and_a_kept_one_does_not() {
    let s = temp_store();
    let id = add(&s, "INV-1", "0712345678", 2500, d(2026, 12, 10));
    s.write(|tx| Ok(tx.execute("INSERT INTO promises (customer_id, invoice_id, promised_date, created_at) SELECT customer_id, id, '2026-12-11', 'x' FROM invoices WHERE id = ?1", [id])?)).unwrap();
    let follow = |now| s.write(|tx| follow_up_promises(tx, now, NAIROBI, "Duka la Mama")).unwrap();
    assert_eq!(follow(morning(d(2026, 12, 11))), 0, "not on the promised day itself");
    assert_eq!(follow(morning(d(2026, 12, 12))), 1);
    assert_eq!(follow(morning(d(2026, 12, 12))), 0, "once");
    let status: String = s.read(|c| Ok(c.query_row("SELECT status FROM promises", [], |r| r.get(0))?)).unwrap();
    assert_eq!(status, "broken");
}
