//! Every metric on a small dataset whose answers were worked out by hand (see the comments).

use chrono::{NaiveDate, TimeZone, Utc};

use super::*;
use crate::domain::{InvoiceNo, Kes, Msisdn};
use crate::payments::ledger::{self, Receipt, Source};
use crate::store::invoices::{self, NewInvoice};
use crate::store::test_support::{temp_store, TempStore};

pub(crate) const NAIROBI: chrono_tz::Tz = chrono_tz::Africa::Nairobi;

pub(crate) fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap()
}

fn invoice(s: &TempStore, number: &str, phone: &str, amount: i64, issued: NaiveDate, due: NaiveDate) -> i64 {
    s.write(|tx| {
        invoices::insert(
            tx,
            &NewInvoice {
                number: InvoiceNo::parse(number).unwrap(),
                customer_name: format!("Customer {number}"),
                phone: Some(Msisdn::parse(phone).unwrap()),
                amount: Kes::positive(amount).unwrap(),
                balance: None,
                issue_date: issued,
                due_date: due,
                description: String::new(),
            },
            Utc::now(),
        )
    })
    .unwrap()
}

fn pay(s: &TempStore, invoice_id: i64, amount: i64, source: Source, day: NaiveDate, receipt: &str) {
    let paid_at = NAIROBI.from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap()).unwrap().with_timezone(&Utc);
    s.write(|tx| {
        ledger::apply(
            tx,
            &Receipt { invoice_id: Some(invoice_id), customer_id: None, amount: Kes::positive(amount).unwrap(), receipt: Some(receipt.into()), source, attempt_id: None, reference: String::new(), paid_at },
            paid_at,
        )
    })
    .unwrap();
}

/// A: 1,000 issued 1 Nov, due 5 Dec, paid by STK on 3 Dec.   B: 2,000 issued 15 Nov, due 10 Dec, 500 by paybill on 12 Dec.
/// C: 3,000 issued 1 Dec, due 20 Dec, unpaid.                D: 4,000 issued 1 Aug, due 31 Aug, unpaid.
/// E: 5,000 issued 5 Dec, due 4 Jan, paid in cash on 6 Dec.
pub(crate) fn dataset() -> TempStore {
    let s = temp_store();
    let a = invoice(&s, "A", "0711000001", 1000, d(11, 1), d(12, 5));
    let b = invoice(&s, "B", "0711000002", 2000, d(11, 15), d(12, 10));
    invoice(&s, "C", "0711000003", 3000, d(12, 1), d(12, 20));
    invoice(&s, "D", "0711000003", 4000, d(8, 1), d(8, 31));
    let e = invoice(&s, "E", "0711000004", 5000, d(12, 5), NaiveDate::from_ymd_opt(2027, 1, 4).unwrap());
    pay(&s, a, 1000, Source::StkChat, d(12, 3), "QAA0000001");
    pay(&s, b, 500, Source::C2b, d(12, 12), "QAA0000002");
    pay(&s, e, 5000, Source::Manual, d(12, 6), "CASH000001");
    s.write(|tx| {
        // A's customer: reminded on 2 Dec (step 1), replied, confirmed, pushed and paid on 3 Dec.
        tx.execute_batch(&format!(
            "INSERT INTO reminder_sends (customer_id, invoice_id, step, sent_on, at) SELECT customer_id, id, 0, '2026-12-02', '2026-12-02T06:00:00.000Z' FROM invoices WHERE number = 'A';
             INSERT INTO conversations (customer_id, updated_at) SELECT customer_id, 'x' FROM invoices WHERE number IN ('A', 'B');
             INSERT INTO messages (conversation_id, direction, kind, body, at) SELECT v.id, 'in', 'text', 'nataka kulipa', '2026-12-02T08:00:00.000Z' FROM conversations v JOIN invoices i ON i.customer_id = v.customer_id WHERE i.number = 'A';
             INSERT INTO payment_attempts (idempotency_key, invoice_id, customer_id, phone, amount, origin, state, in_flight, checkout_request_id, result_code, created_at, updated_at)
               SELECT 'chat:a', id, customer_id, '254711000001', 1000, 'chat', 'paid', 0, 'ws_CO_1', 0, '2026-12-03T06:00:00.000Z', '{now}' FROM invoices WHERE number = 'A';
             INSERT INTO payment_attempts (idempotency_key, invoice_id, customer_id, phone, amount, origin, state, in_flight, checkout_request_id, result_code, created_at, updated_at)
               SELECT 'chat:b', id, customer_id, '254711000002', 2000, 'chat', 'failed', 0, 'ws_CO_2', 1, '2026-12-11T06:00:00.000Z', '{now}' FROM invoices WHERE number = 'B';",
            now = "2026-12-31T00:00:00.000Z"
        ))?;
        Ok(())
    })
    .unwrap();
    s
}

fn december(s: &TempStore) -> Report {
    s.read(|c| report(c, d(12, 1), d(12, 31), NAIROBI)).unwrap()
}

#[test]
fn collection_rate_counts_and_sums_the_invoices_due_in_the_period() {
    let r = december(&dataset());
    // Due in December: A, B, C. Paid: A. Collected on them: 1,000 + 500 of 6,000.
    assert_eq!((r.invoices_due, r.invoices_due_paid, r.amount_due, r.amount_due_collected), (3, 1, 6000, 1500));
    assert_eq!(r.collection_rate_by_count, Some(33.3));
    assert_eq!(r.collection_rate_by_amount, Some(25.0));
}

#[test]
fn amount_collected_is_all_money_received_in_the_period() {
    assert_eq!(december(&dataset()).amount_collected, 6500);
}

#[test]
fn days_to_pay_run_from_issue_to_the_clearing_payment() {
    // A: 1 Nov → 3 Dec = 32 days. E: 5 Dec → 6 Dec = 1 day.
    let r = december(&dataset());
    assert_eq!((r.average_days_to_pay, r.median_days_to_pay), (Some(16.5), Some(16.5)));
}

#[test]
fn aging_buckets_and_the_at_risk_share() {
    // At 31 Dec: B 1,500 (21 days late) and C 3,000 (11 days) are 1–30; D 4,000 is 122 days late.
    let r = december(&dataset());
    assert_eq!(r.aging, Aging { current: 0, days_1_30: 4500, days_31_60: 0, days_61_90: 0, days_over_90: 4000 });
    assert_eq!(r.at_risk_share, Some(47.1));
}

#[test]
fn collection_effectiveness_index() {
    // Begin (30 Nov) 7,000 + credit sales 8,000 − end 8,500 = 6,500; over 7,000 + 8,000 − current 0 = 15,000.
    assert_eq!(december(&dataset()).cei, Some(43.3));
}

#[test]
fn dso_by_the_countback_method() {
    // 8,500 owed: December's 8,000 of sales cover 31 days, then 500 of November's 3,000 → 5 days.
    assert_eq!(december(&dataset()).dso_days, Some(36.0));
}

#[test]
fn the_funnel_from_reminder_to_payment() {
    let f = december(&dataset()).funnel;
    assert_eq!((f.reminded, f.replied, f.confirmed, f.pushed, f.paid), (1, 1, 1, 1, 1));
}

#[test]
fn stk_outcomes_by_result_code_and_payment_sources() {
    let r = december(&dataset());
    let outcomes: Vec<_> = r.stk_outcomes.iter().map(|o| (o.result_code, o.count)).collect();
    assert_eq!(outcomes, [(Some(0), 1), (Some(1), 1)]);
    assert_eq!(r.stk_outcomes[1].meaning, "insufficient M-Pesa balance");
    let sources: Vec<_> = r.sources.iter().map(|s| (s.source.as_str(), s.count, s.amount)).collect();
    assert_eq!(sources, [("manual", 1, 5000), ("stk_chat", 1, 1000), ("c2b", 1, 500)]);
}

#[test]
fn conversion_per_reminder_step() {
    let steps = december(&dataset()).reminder_steps;
    assert_eq!(steps, [StepConversion { step: 1, sent: 1, paid_within_7_days: 1, conversion: Some(100.0) }]);
}

#[test]
fn an_empty_period_has_no_rates_rather_than_zeros() {
    let s = temp_store();
    let r = s.read(|c| report(c, d(12, 1), d(12, 31), NAIROBI)).unwrap();
    assert_eq!((r.collection_rate_by_count, r.cei, r.dso_days), (None, None, Some(0.0)));
    assert!(to_csv(&r).starts_with("metric,value\nfrom,2026-12-01\n"));
}
