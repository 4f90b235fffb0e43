//! Throughput and latency of `understand` over the labelled corpus, one thread.
//! Run: `cargo bench --bench understand`.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use malipo::understand::understand;

fn main() {
    let corpus = include_str!("../tests/corpus/utterances.tsv");
    let texts: Vec<&str> = corpus.lines().skip(1).filter_map(|l| l.rsplit('\t').next()).collect();
    let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
    let sms = "QKJ7RT61SV Confirmed. Ksh2,500.00 sent to DUKA LA MAMA for account INV-1042 on 3/12/26 at 2:15 PM New M-PESA balance is Ksh1,234.00. Transaction cost, Ksh0.00.";

    for (name, inputs) in [("corpus messages", texts.clone()), ("pasted M-Pesa SMS", vec![sms])] {
        let mut latencies = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            for t in &inputs {
                let t0 = Instant::now();
                std::hint::black_box(understand(std::hint::black_box(t), today));
                latencies.push(t0.elapsed());
            }
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        println!(
            "understand, {name}: {:.0} messages/s; p50 {:.1} µs, p99 {:.1} µs ({} messages)",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            p(0.5),
            p(0.99),
            latencies.len()
        );
    }
}
