//! Import of a large invoice file: 100,000 generated CSV rows, preview (read + check every row) and
//! commit (one transaction into a fresh database), then the same file again (every row unchanged).
//! Aim: preview + commit under 3 s in release.
//! Run: `cargo bench --no-default-features --bench import` (`MALIPO_BENCH_ROWS`, default 100000).

use std::fmt::Write as _;
use std::time::Instant;

use chrono::{NaiveDate, TimeZone, Utc};
use malipo::import::{self, CommitMode, Options};
use malipo::store::Store;

fn main() {
    let n: usize = std::env::var("MALIPO_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("invoices.csv");
    let mut csv = String::with_capacity(n * 110);
    csv.push_str("Invoice No,Customer,Phone,Amount,Balance,Due Date,Invoice Date,Description\n");
    let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    for i in 0..n {
        // About 20,000 customers with several invoices each; mixed date and amount forms.
        let customer = i % 20_000;
        let due = base + chrono::Duration::days((i % 365) as i64);
        let due = if i % 2 == 0 { due.format("%d/%m/%Y").to_string() } else { due.format("%Y-%m-%d").to_string() };
        let amount = 500 + (i * 37) % 50_000;
        let balance = if i % 5 == 0 { format!("\"{}\"", amount / 2) } else { String::new() };
        writeln!(
            csv,
            "INV-{i:07},Customer {customer},07{:08},\"KES {},{:03}\",{balance},{due},{},Goods on credit #{i}",
            10_000_000 + customer,
            amount / 1000,
            amount % 1000,
            base.format("%d/%m/%Y"),
        )
        .unwrap();
    }
    std::fs::write(&file, &csv).unwrap();
    let mb = csv.len() as f64 / 1e6;
    drop(csv);

    let store = Store::open(&dir.path().join("malipo.db")).unwrap();
    let options = Options { today: NaiveDate::from_ymd_opt(2026, 12, 4), ..Default::default() };
    let now = Utc.with_ymd_and_hms(2026, 12, 4, 7, 0, 0).unwrap();

    let t0 = Instant::now();
    let preview = import::preview_with(&file, &options).unwrap();
    let t_preview = t0.elapsed();
    assert!(preview.errors.is_empty(), "{:?}", &preview.errors[..preview.errors.len().min(5)]);
    assert_eq!(preview.rows.len(), n);
    let t1 = Instant::now();
    let first = import::commit(&store, &preview, CommitMode::AllOrNothing, now).unwrap();
    let t_commit = t1.elapsed();
    assert_eq!(first.created, n);

    let t2 = Instant::now();
    let again = import::preview_with(&file, &options).unwrap();
    let t_preview2 = t2.elapsed();
    let t3 = Instant::now();
    let second = import::commit(&store, &again, CommitMode::AllOrNothing, now).unwrap();
    let t_commit2 = t3.elapsed();
    assert_eq!(second.unchanged, n);

    let total = (t_preview + t_commit).as_secs_f64();
    println!("import of {n} rows ({mb:.1} MB CSV, {} customers):", 20_000.min(n));
    println!("  first import:  preview {:.0} ms + commit {:.0} ms = {:.2} s ({:.0} rows/s)", ms(t_preview), ms(t_commit), total, n as f64 / total);
    let total2 = (t_preview2 + t_commit2).as_secs_f64();
    println!("  same file again (all unchanged): preview {:.0} ms + commit {:.0} ms = {:.2} s", ms(t_preview2), ms(t_commit2), total2);
    println!("  aim: under 3 s for the first import: {}", if total < 3.0 { "met" } else { "NOT met" });
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
