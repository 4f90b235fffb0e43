//! Payments throughput: attempts per second through STK push → callback → ledger, against the Daraja
//! simulator over loopback HTTP, with the store on disk (WAL). Run: `cargo bench --bench payments`
//! (MALIPO_BENCH_N sets the number of attempts, default 400; 16 are in flight at once).

use std::time::{Duration, Instant};

use malipo::domain::{Kes, Msisdn};
use malipo::payments::{Origin, PaymentRequest};

#[path = "../tests/common/lab.rs"]
mod lab;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(confirm_with_query: bool, n: usize, in_flight: usize) {
    let lab = lab::Lab::start(confirm_with_query).await;
    let invoices: Vec<(i64, String)> = (0..n)
        .map(|i| {
            let phone = format!("0711{:06}", i);
            (lab.add_invoice(&format!("INV-{i}"), &phone, 1000 + i as i64), phone)
        })
        .collect();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let poller = tokio::spawn(lab.payments.clone().run_poller(async { let _ = stop_rx.await; }));
    let mut updates = lab.payments.subscribe();
    let started = Instant::now();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut latencies = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (invoice_id, phone)) in invoices.into_iter().enumerate() {
        let payments = lab.payments.clone();
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let mut rx = payments.subscribe();
        tasks.spawn(async move {
            let t0 = Instant::now();
            let attempt = payments
                .request(PaymentRequest {
                    invoice_id,
                    amount: Kes::positive(1000 + i as i64).unwrap(),
                    phone: Msisdn::parse(&phone).unwrap(),
                    origin: Origin::Chat,
                    idempotency_key: format!("bench:{i}"),
                })
                .await
                .expect("request");
            loop {
                let u = rx.recv().await.expect("updates");
                if u.attempt_id == Some(attempt.id) && u.credited.is_some() {
                    break;
                }
            }
            drop(permit);
            t0.elapsed()
        });
    }
    while let Some(r) = tasks.join_next().await {
        latencies.push(r.unwrap());
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    let _ = poller.await;
    while updates.try_recv().is_ok() {}
    latencies.sort();
    let credited: i64 = lab.store.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM ledger_payments", [], |r| r.get(0))?)).unwrap();
    assert_eq!(credited as usize, n, "every attempt credited exactly once");
    println!(
        "payments (confirm_with_query = {confirm_with_query}): {n} attempts, {in_flight} in flight: {:.0} attempts/s; push→ledger p50 {:.1} ms, p99 {:.1} ms",
        n as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );
}

fn main() {
    let n = std::env::var("MALIPO_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        run(false, n, 16).await;
        run(true, n, 16).await;
    });
}
