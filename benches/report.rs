//! The collection report over a large shop: 1,000,000 invoices and 2,000,000 payments generated in a
//! store on disk, then a month's report timed. Run: `cargo bench --bench report`
//! (MALIPO_BENCH_INVOICES sets the size; payments are twice as many).

use std::time::Instant;

use chrono::NaiveDate;
use malipo::store::Store;

fn main() {
    let n: i64 = std::env::var("MALIPO_BENCH_INVOICES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("malipo.db")).unwrap();
    let t0 = Instant::now();
    store
        .write(|tx| {
            // 10,000 customers; invoices issued over two years, due 30 days later, 1,000–50,000 shillings;
            // two payments each for paid invoices, half of the amount each.
            tx.execute_batch(&format!(
                "INSERT INTO customers (id, name, phone, created_at)
                   WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 10000)
                   SELECT i, 'Customer ' || i, '2547' || printf('%08d', 10000000 + i), '2025-01-01T00:00:00.000Z' FROM k;
                 INSERT INTO invoices (id, number, number_key, customer_id, amount, balance, issue_date, due_date, status, created_at, updated_at)
                   WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n})
                   SELECT i, 'INV-' || i, 'INV' || i, 1 + i % 10000, (1 + i % 50) * 1000,
                          CASE WHEN i % 4 = 0 THEN (1 + i % 50) * 1000 ELSE 0 END,
                          date('2025-01-01', '+' || (i % 730) || ' days'), date('2025-01-01', '+' || (i % 730 + 30) || ' days'),
                          CASE WHEN i % 4 = 0 THEN 'open' ELSE 'paid' END, 'x', 'x' FROM k;
                 INSERT INTO ledger_payments (receipt, source, invoice_id, customer_id, amount, applied, credit, paid_at, recorded_at)
                   SELECT 'R' || i.id || '-' || p.half, CASE i.id % 3 WHEN 0 THEN 'stk_chat' WHEN 1 THEN 'c2b' ELSE 'manual' END, i.id, i.customer_id,
                          i.amount / 2, i.amount / 2, 0,
                          strftime('%Y-%m-%dT%H:%M:%fZ', i.due_date, '-' || (p.half * 5) || ' days'), 'x'
                   FROM invoices i JOIN (SELECT 1 AS half UNION ALL SELECT 2) p WHERE i.status = 'paid';
                 INSERT INTO ledger_payments (receipt, source, invoice_id, customer_id, amount, applied, credit, paid_at, recorded_at)
                   SELECT 'X' || i.id || '-' || p.half, 'c2b', NULL, i.customer_id, 500, 0, 500, strftime('%Y-%m-%dT%H:%M:%fZ', i.issue_date), 'x'
                   FROM invoices i JOIN (SELECT 1 AS half UNION ALL SELECT 2) p WHERE i.status = 'open';
                 UPDATE invoices SET cleared_at = strftime('%Y-%m-%dT%H:%M:%fZ', due_date, '-5 days') WHERE status = 'paid';",
            ))?;
            Ok(())
        })
        .unwrap();
    let payments: i64 = store.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM ledger_payments", [], |r| r.get(0))?)).unwrap();
    println!("generated {n} invoices and {payments} payments in {:.1} s", t0.elapsed().as_secs_f64());
    store.write(|tx| Ok(tx.execute_batch("ANALYZE")?)).unwrap();

    // The history runs to the end of 2026: the latest month is the usual report; a month half a year
    // back has to account for every payment since.
    for (label, from, to) in [("December 2026 (latest month)", (2026, 12, 1), (2026, 12, 31)), ("June 2026 (six months back)", (2026, 6, 1), (2026, 6, 30))] {
        let day = |(y, m, d): (i32, u32, u32)| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let r = store.read(|c| malipo::reports::report(c, day(from), day(to), chrono_tz::Africa::Nairobi)).unwrap();
            times.push(t.elapsed());
            assert!(r.invoices_due > 0 && r.amount_collected > 0 && r.average_days_to_pay.is_some());
        }
        times.sort();
        println!("report for {label}: median {:.0} ms, best {:.0} ms (5 runs)", times[2].as_secs_f64() * 1000.0, times[0].as_secs_f64() * 1000.0);
    }
}
