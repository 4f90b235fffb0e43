//! A full agent turn under load, without a model: signed WhatsApp webhook in → stored → understood →
//! policy → reply recorded in the outbox. The engine runs in simulator mode with the store on disk;
//! latency is each reply's outbox time minus its webhook's arrival time, read from the store.
//! Run: `cargo bench --bench agent_turn` (MALIPO_BENCH_RATE messages/s, default 100, for
//! MALIPO_BENCH_SECONDS, default 10, from 300 customers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use malipo::app::App;
use malipo::config::Config;
use malipo::domain::{InvoiceNo, Kes, Msisdn};
use malipo::engine::Engine;
use malipo::secrets::MemorySecrets;
use malipo::store::invoices::{self, NewInvoice};

const CUSTOMERS: usize = 300;
const MESSAGES: [&str; 5] = ["Hi", "nataka kulipa", "how much do I owe?", "nitalipa Ijumaa", "asante"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let rate = env_or("MALIPO_BENCH_RATE", 100);
    let seconds = env_or("MALIPO_BENCH_SECONDS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![("MALIPO_DATABASE".to_string(), dir.path().join("malipo.db").display().to_string())];
        let config = Config::from_sources(None, None, &env).unwrap();
        let engine = Engine::open(config, malipo::clock::system(), Arc::new(MemorySecrets::default())).unwrap();
        let phones: Vec<String> = (0..CUSTOMERS).map(|i| format!("2547{:08}", 20_000_000 + i)).collect();
        engine
            .store
            .write(|tx| {
                for (i, phone) in phones.iter().enumerate() {
                    let new = NewInvoice {
                        number: InvoiceNo::parse(&format!("INV-{i}")).unwrap(),
                        customer_name: format!("Customer {i}"),
                        phone: Some(Msisdn::parse(phone).unwrap()),
                        amount: Kes::positive(1000 + i as i64).unwrap(),
                        balance: None,
                        issue_date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                        due_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                        description: String::new(),
                    };
                    invoices::insert(tx, &new, Utc::now())?;
                }
                Ok(())
            })
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = App::start(engine, &url).await.unwrap();
        app.spawn_workers();
        let served = app.clone();
        tokio::spawn(async move { malipo::server::serve(listener, &served, served.stopped()).await.unwrap() });
        let sim = app.simulators.whatsapp.clone().unwrap();

        // Send at a steady rate, each message from the next customer in turn.
        let total = (rate * seconds) as usize;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..total {
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let sim = sim.clone();
            let phone = phones[n % CUSTOMERS].clone();
            tasks.spawn(async move { sim.send_text(&phone, MESSAGES[(n / CUSTOMERS) % MESSAGES.len()]).await });
        }
        let mut wamids = Vec::with_capacity(total);
        while let Some(r) = tasks.join_next().await {
            wamids.push(r.unwrap().expect("webhook accepted"));
        }
        // Wait until every message has its reply recorded (bounded).
        let store = app.engine.store.clone();
        let deadline = Instant::now() + Duration::from_secs(120);
        let latencies: Vec<i64> = loop {
            let ids = wamids.clone();
            let rows: Vec<Option<i64>> = store
                .read(move |c| {
                    let mut stmt = c.prepare(
                        "SELECT (julianday(o.created_at) - julianday(e.received_at)) * 86400000
                         FROM inbound_events e LEFT JOIN outbox o ON o.idempotency_key = 'agent:' || ?1 || ':0'
                         WHERE e.source = 'whatsapp' AND e.external_id = ?1",
                    )?;
                    let mut out = Vec::with_capacity(ids.len());
                    for id in &ids {
                        let v: Option<Option<f64>> = stmt.query_row([id], |r| r.get(0)).ok();
                        out.push(v.flatten().map(|x| x.round() as i64));
                    }
                    Ok(out)
                })
                .unwrap();
            if rows.len() >= total && rows.iter().all(Option::is_some) {
                break rows.into_iter().flatten().collect();
            }
            assert!(Instant::now() < deadline, "replies missing: {} of {total} answered", rows.iter().flatten().count());
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let mut sorted = latencies.clone();
        sorted.sort();
        let p = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
        println!(
            "agent turn (webhook in → reply in the outbox), {rate} messages/s for {seconds} s from {CUSTOMERS} customers: {} turns; p50 {} ms, p99 {} ms, max {} ms",
            sorted.len(),
            p(0.5),
            p(0.99),
            sorted.last().unwrap()
        );
        app.shutdown();
    });
}
