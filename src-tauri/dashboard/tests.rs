//! The dashboard over the reports' hand-checked dataset (see reports/tests.rs), seen on 12 December.

use chrono::{TimeZone, Utc};

use super::*;
use crate::reports::tests::{d, dataset, NAIROBI};
use crate::store::test_support::TempStore;

fn noon_12_december() -> DateTime<Utc> {
    NAIROBI.from_local_datetime(&d(12, 12).and_hms_opt(13, 0, 0).unwrap()).unwrap().with_timezone(&Utc)
}

fn seen(s: &TempStore) -> Dashboard {
    s.read(|c| dashboard(c, noon_12_december(), NAIROBI)).unwrap()
}

#[test]
fn today_and_this_month_count_money_received_in_the_merchants_days() {
    let b = seen(&dataset());
    // Today: B's 500 by paybill. This month: A 1,000 (3 Dec) + E 5,000 cash (6 Dec) + B 500.
    assert_eq!((b.collected_today, b.payments_today), (500, 1));
    assert_eq!(b.collected_this_month, 6_500);
    // Still owed: B 1,500 + C 3,000 + D 4,000; B (due 10 Dec) and D (due 31 Aug) are overdue.
    assert_eq!((b.owed, b.open_invoices, b.overdue), (8_500, 3, 2));
}

#[test]
fn the_rate_chart_shows_six_months_ending_with_this_one() {
    let b = seen(&dataset());
    let months: Vec<_> = b.months.iter().map(|m| (m.month.as_str(), m.collection_rate, m.collected)).collect();
    assert_eq!(
        months,
        vec![
            ("2026-07", None, 0),
            ("2026-08", Some(0.0), 0),
            ("2026-09", None, 0),
            ("2026-10", None, 0),
            ("2026-11", None, 0),
            // Due in December: A, B, C = 6,000, of which 1,500 is paid — as on the Reports screen.
            ("2026-12", Some(25.0), 6_500),
        ]
    );
    assert_eq!(b.funnel, Funnel { reminded: 1, replied: 1, confirmed: 1, pushed: 1, paid: 1 });
}

#[test]
fn the_attention_queue_lists_what_waits_on_the_merchant_and_resolving_removes_it() {
    let s = dataset();
    let now = noon_12_december();
    s.write(|tx| {
        tx.execute_batch(
            "INSERT INTO attention (kind, customer_id, invoice_id, detail, created_at)
               SELECT 'dispute', customer_id, id, 'the customer says the amount is wrong', '2026-12-12T07:00:00.000Z' FROM invoices WHERE number = 'C';
             INSERT INTO attention (kind, customer_id, detail, created_at)
               SELECT 'human', customer_id, 'asked for a person', '2026-12-12T08:00:00.000Z' FROM invoices WHERE number = 'B';
             INSERT INTO unmatched_payments (trans_id, amount, bill_ref, msisdn, payer_name, received_at)
               VALUES ('QAA0000009', 1200, 'INV-99', '254711000009', '', '2026-12-12T09:00:00.000Z');",
        )?;
        crate::whatsapp::outbox::pause(tx, "the access token has expired (190)", Some(190), now)
    })
    .unwrap();

    let items = seen(&s).attention;
    let kinds: Vec<_> = items.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, vec!["whatsapp_paused", "unmatched_payment", "human", "dispute"], "newest first");
    assert_eq!(items[0].detail, "the access token has expired (190)");
    assert_eq!(items[1].detail, "KES 1,200 from 2547•••••009, account \"INV-99\" (M-Pesa QAA0000009)");
    // C and D share a phone, so one customer, named by the later invoice.
    assert_eq!((items[3].customer_name.as_deref(), items[3].invoice_number.as_deref()), (Some("Customer D"), Some("C")));

    let dispute = items[3].id;
    s.write(|tx| resolve_attention(tx, dispute, now)).unwrap();
    assert!(seen(&s).attention.iter().all(|i| i.kind != "dispute"));
    assert!(matches!(s.write(|tx| resolve_attention(tx, dispute, now)), Err(StoreError::NotFound(_))), "resolving twice is refused");
}

#[test]
fn a_refused_prompt_shows_until_a_later_one_goes_through() {
    let s = dataset();
    let insert = |key: &str, state: &str| {
        let sql = format!(
            "INSERT INTO payment_attempts (idempotency_key, invoice_id, customer_id, phone, amount, origin, state, in_flight, created_at, updated_at)
               SELECT '{key}', id, customer_id, '254711000003', 3000, 'merchant', '{state}', 0, '2026-12-12T09:00:00.000Z', '2026-12-12T09:00:00.000Z'
               FROM invoices WHERE number = 'C'"
        );
        s.write(|tx| Ok(tx.execute_batch(&sql)?)).unwrap();
    };
    insert("m:1", "rejected");
    assert!(seen(&s).attention.iter().any(|i| i.kind == "mpesa_refused"));
    insert("m:2", "paid");
    assert!(seen(&s).attention.iter().all(|i| i.kind != "mpesa_refused"));
}
