//! Load test of the WhatsApp webhook ingest on loopback: signed webhooks at a fixed rate (open loop)
//! against the real route and a real SQLite file, then a check that every event is stored exactly once.
//!
//!   cargo bench --no-default-features --bench whatsapp_ingest -- [--rate 2000] [--seconds 30]
//!       [--batch 1] [--dup-every 50] [--max-in-flight 512] [--process] [--quick]
//!
//! `--quick` (the default when CI is set) runs 3 seconds. Bounded: it stops after `--seconds` of
//! sending and gives up waiting for answers 60 s later. Latency is measured from each request's
//! scheduled time, so a generator that falls behind shows up in the figures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use malipo::clock;
use malipo::secrets::{MemorySecrets, Secret, SecretName, SecretStore};
use malipo::store::Store;
use malipo::whatsapp::simulator::{GraphSimulator, SimulatorConfig};
use malipo::whatsapp::webhook::{envelope, sign};
use malipo::whatsapp::{routes, GraphClient, Inbox, WhatsappState};
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

const APP_SECRET: &str = "bench-app-secret";

struct Args {
    rate: u64,
    seconds: u64,
    batch: usize,
    dup_every: usize,
    max_in_flight: usize,
    process: bool,
}

fn args() -> Args {
    let quick_default = std::env::var_os("CI").is_some();
    let mut a = Args { rate: 2000, seconds: if quick_default { 3 } else { 30 }, batch: 1, dup_every: 50, max_in_flight: 512, process: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> u64 { it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a number")) };
        match flag.as_str() {
            "--rate" => a.rate = num("--rate").max(1),
            "--seconds" => a.seconds = num("--seconds").max(1),
            "--batch" => a.batch = num("--batch").max(1) as usize,
            "--dup-every" => a.dup_every = num("--dup-every") as usize,
            "--max-in-flight" => a.max_in_flight = num("--max-in-flight").max(1) as usize,
            "--process" => a.process = true,
            "--quick" => a.seconds = 3,
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// One webhook body: `batch` events, alternating customer messages and delivery statuses.
fn body(first: usize, batch: usize) -> (Vec<u8>, Vec<String>) {
    let mut messages = Vec::new();
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for n in first..first + batch {
        let phone = format!("2547{:08}", n % 1000);
        if n % 2 == 0 {
            let id = format!("wamid.BENCH{n:012}");
            messages.push(json!({"from": phone, "id": id, "timestamp": "1796104800", "type": "text",
                                 "text": {"body": format!("Nataka kulipa ankara INV-{n} 🙏 sawa")}}));
            ids.push(id);
        } else {
            let id = format!("wamid.OUT{n:012}");
            statuses.push(json!({"id": id, "status": "delivered", "timestamp": "1796104800", "recipient_id": phone}));
            ids.push(format!("{id}:delivered"));
        }
    }
    let value = json!({"contacts": [{"profile": {"name": "Mteja"}, "wa_id": "254700000000"}], "messages": messages, "statuses": statuses});
    (envelope("100000000000001", value).to_string().into_bytes(), ids)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).unwrap();
    let secrets = Arc::new(MemorySecrets::default());
    secrets.set(SecretName::WhatsappAppSecret, &Secret::new(APP_SECRET)).unwrap();
    let wake = Arc::new(Notify::new());
    let state = WhatsappState { store: store.clone(), secrets, clock: clock::system(), wake: wake.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/whatsapp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes::router(state)).await.unwrap() });

    // Optional: process while ingesting (marks read against the simulator).
    let mut processor = None;
    let mut sim = None;
    if a.process {
        let s = GraphSimulator::start(SimulatorConfig { app_secret: APP_SECRET.into(), emit_statuses: false, ..Default::default() }, clock::system()).await.unwrap();
        let inbox = Inbox::new(store.clone(), GraphClient::new(s.graph_settings()), clock::system());
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let handle = tokio::spawn(inbox.run(wake.clone(), async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));
        processor = Some((stop_tx, handle));
        sim = Some(s);
    }

    let requests = (a.rate as usize * a.seconds as usize).div_ceil(a.batch);
    let events = requests * a.batch;
    println!(
        "whatsapp_ingest: {} events/s offered for {} s, {} event(s) per POST, a duplicate POST every {}, at most {} in flight{}",
        a.rate,
        a.seconds,
        a.batch,
        if a.dup_every == 0 { "never".to_string() } else { a.dup_every.to_string() },
        a.max_in_flight,
        if a.process { ", processing concurrently" } else { "" }
    );
    // Bodies are built and signed before the clock starts, so the generator stays light.
    let mut bodies = Vec::with_capacity(requests);
    let mut expected = Vec::with_capacity(events);
    for r in 0..requests {
        let (b, ids) = body(r * a.batch, a.batch);
        let sig = sign(APP_SECRET.as_bytes(), &b);
        bodies.push((axum::body::Bytes::from(b), sig));
        expected.extend(ids);
    }

    let http = reqwest::Client::builder().pool_max_idle_per_host(a.max_in_flight).timeout(Duration::from_secs(30)).build().unwrap();
    let limit = Arc::new(Semaphore::new(a.max_in_flight));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests + requests / a.dup_every.max(1))));
    let non_200 = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(a.batch as f64 / a.rate as f64);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut posts = 0usize;
    for (i, (b, sig)) in bodies.iter().enumerate() {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let mut send = vec![(b.clone(), sig.clone())];
        if a.dup_every > 0 && i % a.dup_every == a.dup_every - 1 {
            // Meta delivers at least once: the same POST again.
            let (pb, ps) = &bodies[i / 2];
            send.push((pb.clone(), ps.clone()));
        }
        for (b, sig) in send {
            posts += 1;
            let permit = limit.clone().acquire_owned().await.unwrap();
            let (http, url, lat, bad) = (http.clone(), url.clone(), latencies.clone(), non_200.clone());
            tasks.spawn(async move {
                let r = http.post(url).header("content-type", "application/json").header("X-Hub-Signature-256", sig).body(b).send().await;
                let took = scheduled.elapsed();
                drop(permit);
                match r {
                    Ok(r) if r.status() == 200 => lat.lock().unwrap().push(took),
                    _ => {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                println!("gave up waiting for {} answers", tasks.len());
                tasks.abort_all();
                break;
            }
        }
    }
    let elapsed = start.elapsed();

    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let stored: i64 = store.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM inbound_events", [], |r| r.get(0))?)).unwrap();
    let distinct: i64 = store.read(|c| Ok(c.query_row("SELECT COUNT(DISTINCT external_id) FROM inbound_events", [], |r| r.get(0))?)).unwrap();
    let present: std::collections::HashSet<String> = store
        .read(|c| {
            let mut s = c.prepare("SELECT external_id FROM inbound_events")?;
            let rows = s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .unwrap();
    let lost = expected.iter().filter(|id| !present.contains(*id)).count();
    let duplicated = stored - distinct;
    let bad = non_200.load(Ordering::Relaxed);

    println!("POSTs answered 200:  {} of {} ({} not 200)", lat.len(), posts, bad);
    println!("elapsed:             {:.2} s", elapsed.as_secs_f64());
    println!("sustained ingest:    {:.0} events/s ({:.0} POSTs/s)", events as f64 / elapsed.as_secs_f64(), posts as f64 / elapsed.as_secs_f64());
    println!(
        "time to 200:         p50 {}  p90 {}  p99 {}  max {}",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default())
    );
    println!("events stored:       {stored} (expected {}), lost {lost}, duplicated {duplicated}", expected.len());

    if let Some((stop, handle)) = processor {
        let started = Instant::now();
        let limit = Instant::now() + Duration::from_secs(120);
        loop {
            let left: i64 = store.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM inbound_events WHERE processed_at IS NULL", [], |r| r.get(0))?)).unwrap();
            if left == 0 || Instant::now() > limit {
                println!("processing:          {} left unprocessed {:.1} s after the last answer", left, started.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop.send(true);
        let _ = handle.await;
        drop(sim);
    }

    let ok = bad == 0 && lost == 0 && duplicated == 0 && stored as usize == expected.len();
    println!("{}", if ok { "result: OK — zero lost, zero duplicated" } else { "result: FAILED" });
    if !ok {
        std::process::exit(1);
    }
}
