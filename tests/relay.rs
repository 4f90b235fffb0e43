//! `malipo relay` and a desktop (`malipo serve` in relay mode) as two real processes on loopback: what
//! reaches the relay while the desktop is away arrives once when it connects, a relay killed mid-stream
//! loses nothing, a webhook Meta repeats is delivered once, a desktop killed between storing and
//! acknowledging gets the event again and stores it once, and a wrong key gets 401 and nothing.
//! Assertions are what the merchant sees: the customer's message in the inbox, the invoice credited.
#![cfg(unix)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use malipo::clock;
use malipo::daraja::simulator::{DarajaSimulator, SimulatorConfig, SimulatorHandle};
use malipo::payments::ledger;
use malipo::relay::{wire, Outcome, RelayKey, Step};
use malipo::secrets::Secret;
use malipo::store::{invoices, Store};
use malipo::whatsapp::webhook::{envelope, sign};
use serde_json::{json, Value};

mod common;
use common::Served;

const KEY: &str = "4f1d2c3b4a5968778695a4b3c2d1e0f04f1d2c3b4a5968778695a4b3c2d1e0f0";
const APP_SECRET: &str = "relay-test-app-secret";
const VERIFY_TOKEN: &str = "relay-test-verify-token";
/// Wanjiku, whose invoice INV-1042 (KES 2,500) `common::seed` creates.
const WANJIKU: &str = "254712345678";

/// `malipo relay` with its own home, database and log file under `dir`; `port` 0 picks a free one.
fn relay(dir: &Path, port: u16) -> Served {
    let mut cmd = common::malipo(dir);
    cmd.arg("relay")
        .env("MALIPO_RELAY_KEY", KEY)
        .env("MALIPO_WHATSAPP_APP_SECRET", APP_SECRET)
        .env("MALIPO_WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN)
        .env("MALIPO_RELAY_DATABASE", relay_db(dir))
        .env("MALIPO_RELAY_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(log_file(dir, "relay"));
    Served::start_with(cmd)
}

fn relay_db(dir: &Path) -> PathBuf {
    dir.join("relay.db")
}

fn log_file(dir: &Path, name: &str) -> File {
    File::options().create(true).append(true).open(dir.join(format!("{name}.stderr"))).unwrap()
}

/// The merchant's `malipo serve` set to pull from `relay_url`, in simulator mode.
fn desktop_command(dir: &Path, relay_url: &str, key: &str) -> Command {
    let mut cmd = common::malipo(dir);
    cmd.arg("serve")
        .env("MALIPO_INBOUND_MODE", "relay")
        .env("MALIPO_INBOUND_RELAY_URL", relay_url)
        .env("MALIPO_RELAY_KEY", key)
        .stdout(Stdio::piped())
        .stderr(log_file(dir, "desktop"));
    cmd
}

fn desktop(dir: &Path, relay_url: &str) -> Served {
    Served::start_with(desktop_command(dir, relay_url, KEY))
}

/// The desktop pointed at `sim` as if it were Safaricom's sandbox, so it registers its C2B URLs.
fn desktop_with_daraja(dir: &Path, relay_url: &str, sim: &SimulatorHandle) -> Served {
    let config = SimulatorConfig::sandbox_defaults(clock::system());
    let mut cmd = desktop_command(dir, relay_url, KEY);
    cmd.env("MALIPO_DARAJA_ENVIRONMENT", "sandbox")
        .env("MALIPO_DARAJA_BASE_URL", &sim.base_url)
        .env("MALIPO_DARAJA_SHORTCODE", &config.shortcode)
        .env("MALIPO_DARAJA_CONSUMER_KEY", &config.consumer_key)
        .env("MALIPO_DARAJA_CONSUMER_SECRET", &config.consumer_secret)
        .env("MALIPO_DARAJA_PASSKEY", &config.passkey);
    Served::start_with(cmd)
}

/// Two folders: the relay's host and the merchant's machine (with two invoices).
struct Hosts {
    _root: tempfile::TempDir,
    relay: PathBuf,
    desk: PathBuf,
}

fn hosts() -> Hosts {
    let root = tempfile::tempdir().unwrap();
    let (relay, desk) = (root.path().join("relay"), root.path().join("desk"));
    std::fs::create_dir_all(&relay).unwrap();
    std::fs::create_dir_all(&desk).unwrap();
    common::seed(&desk);
    Hosts { _root: root, relay, desk }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A customer's text message as Meta would POST it, signed with the app secret.
fn whatsapp_webhook(wamid: &str, body: &str) -> Vec<u8> {
    let message = json!({"from": WANJIKU, "id": wamid, "timestamp": chrono::Utc::now().timestamp().to_string(), "type": "text", "text": {"body": body}});
    envelope("100000000000001", json!({"contacts": [{"profile": {"name": "Wanjiku"}, "wa_id": WANJIKU}], "messages": [message]})).to_string().into_bytes()
}

/// POSTs a signed webhook to the relay, retrying like Meta until it answers 200.
async fn meta_delivers(relay_url: &str, body: &[u8]) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sent = http
            .post(format!("{relay_url}/webhooks/whatsapp"))
            .header("x-hub-signature-256", sign(APP_SECRET.as_bytes(), body))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => return,
            Ok(r) => panic!("the relay refused a signed webhook: {}", r.status()),
            Err(_) => {
                assert!(Instant::now() < deadline, "the relay never took the webhook");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// How many times the customer's message shows in the merchant's inbox.
fn in_inbox(store: &Store, wamid: &str) -> i64 {
    let wamid = wamid.to_string();
    store.read(move |c| Ok(c.query_row("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND wamid = ?1", [&wamid], |r| r.get(0))?)).unwrap()
}

fn relay_events(dir: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(relay_db(dir), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Events on the relay that the desktop has not acknowledged.
fn unacknowledged(dir: &Path) -> i64 {
    relay_events(dir, "SELECT COUNT(*) FROM events WHERE acked_at IS NULL")
}

fn balance(store: &Store, invoice: &str) -> i64 {
    store.read(|c| invoices::by_number(c, invoice)).unwrap().unwrap().balance.shillings()
}

fn path_token() -> String {
    RelayKey::parse(Some(Secret::new(KEY))).unwrap().path_token()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_arrives_while_the_desktop_is_away_is_delivered_once_when_it_connects() {
    let h = hosts();
    let relay = relay(&h.relay, 0);
    let sim = DarajaSimulator::start(SimulatorConfig::sandbox_defaults(clock::system())).await.unwrap();

    // First start: the desktop registers the relay's C2B URLs, with the path token derived from the key.
    let desk = desktop_with_daraja(&h.desk, &relay.base_url, &sim);
    wait_until("the C2B URLs are registered", || sim.c2b_urls().is_some()).await;
    let (confirmation, validation) = sim.c2b_urls().unwrap();
    let c2b = format!("{}/webhooks/daraja/c2b/{}", relay.base_url, path_token());
    assert_eq!((confirmation, validation), (format!("{c2b}/confirmation"), format!("{c2b}/validation")));
    assert!(desk.terminate().success());

    // The laptop is closed: a customer writes and another pays the paybill, both to the relay.
    meta_delivers(&relay.base_url, &whatsapp_webhook("wamid.AWAY1", "Nataka kulipa INV-1042")).await;
    sim.c2b_pay("INV-1042", 2500, WANJIKU).await.expect("the relay accepts the C2B payment");
    let store = Store::open(&common::db_path(&h.desk)).unwrap();
    assert_eq!((in_inbox(&store, "wamid.AWAY1"), balance(&store, "INV-1042")), (0, 2500), "nothing reached the desktop yet");
    assert_eq!(unacknowledged(&h.relay), 2);

    // The laptop opens: both arrive, once.
    let _desk = desktop_with_daraja(&h.desk, &relay.base_url, &sim);
    wait_until("the message is in the inbox", || in_inbox(&store, "wamid.AWAY1") == 1).await;
    wait_until("the paybill payment is credited", || balance(&store, "INV-1042") == 0).await;
    wait_until("the relay has been told", || unacknowledged(&h.relay) == 0).await;
    let ledger = store.read(ledger::list).unwrap();
    assert_eq!((ledger.len(), ledger[0].source.as_str()), (1, "c2b"), "credited exactly once");
    assert_eq!(in_inbox(&store, "wamid.AWAY1"), 1);

    // What the merchant's own command line shows.
    let out = common::malipo(&h.desk).args(["invoices", "--json"]).output().unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let inv = rows.as_array().unwrap().iter().find(|r| r["number"] == "INV-1042").unwrap().clone();
    assert_eq!((inv["balance"].as_i64(), inv["status"].as_str()), (Some(0), Some("paid")));
}

/// Only this test restarts a process on a fixed port; no other test in this file picks one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_stream_and_restarted_loses_nothing() {
    let h = hosts();
    let mut relay = relay(&h.relay, 0);
    let port: u16 = relay.base_url.rsplit(':').next().unwrap().parse().unwrap();
    let _desk = desktop(&h.desk, &relay.base_url);
    let store = Store::open(&common::db_path(&h.desk)).unwrap();
    let wamids: Vec<String> = (0..24).map(|i| format!("wamid.STREAM{i:02}")).collect();

    for (i, wamid) in wamids.iter().enumerate() {
        meta_delivers(&relay.base_url, &whatsapp_webhook(wamid, &format!("ujumbe {i}"))).await;
        if i == 11 {
            // Answered 200, perhaps not pulled yet: the relay dies without warning.
            common::unsafe_kill(relay.child.id(), "KILL");
            relay.child.wait().unwrap();
            relay = self::relay(&h.relay, port);
        }
    }
    wait_until("every message is in the inbox", || wamids.iter().all(|w| in_inbox(&store, w) >= 1)).await;
    wait_until("the relay has been told", || unacknowledged(&h.relay) == 0).await;
    for w in &wamids {
        assert_eq!(in_inbox(&store, w), 1, "{w} shows once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_meta_repeats_is_delivered_once() {
    let h = hosts();
    let relay = relay(&h.relay, 0);
    let body = whatsapp_webhook("wamid.TWICE", "Nimelipa");
    // Meta retries when our 200 was lost: the same webhook twice, before the desktop connects…
    meta_delivers(&relay.base_url, &body).await;
    meta_delivers(&relay.base_url, &body).await;
    assert_eq!(relay_events(&h.relay, "SELECT COUNT(*) FROM events"), 1, "stored once on the relay");
    let _desk = desktop(&h.desk, &relay.base_url);
    let store = Store::open(&common::db_path(&h.desk)).unwrap();
    wait_until("the message is in the inbox", || in_inbox(&store, "wamid.TWICE") == 1).await;
    wait_until("the relay has been told", || unacknowledged(&h.relay) == 0).await;

    // …and once more after the desktop took it; a later message proves the queue moved past it.
    meta_delivers(&relay.base_url, &body).await;
    meta_delivers(&relay.base_url, &whatsapp_webhook("wamid.AFTER", "Asante")).await;
    wait_until("the next message is in the inbox", || in_inbox(&store, "wamid.AFTER") == 1).await;
    assert_eq!(in_inbox(&store, "wamid.TWICE"), 1, "the customer's message shows once");
    assert_eq!(relay_events(&h.relay, "SELECT COUNT(*) FROM events WHERE external_id = 'wamid.TWICE'"), 1);
}

/// A loopback proxy between the desktop and the relay that can hold acknowledgements forever, the
/// way the Daraja simulator holds callbacks: the desktop has stored an event but the relay never
/// hears so.
struct AckHolder {
    base_url: String,
    hold: Arc<AtomicBool>,
    held: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    hold: Arc<AtomicBool>,
    held: Arc<std::sync::atomic::AtomicUsize>,
    http: reqwest::Client,
}

async fn forward(State(p): State<ProxyState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, Bytes) {
    if uri.path() == wire::ACK_PATH && p.hold.load(Ordering::SeqCst) {
        p.held.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    let mut request = p.http.request(method, format!("{}{}", p.upstream, uri.path_and_query().map(|q| q.as_str()).unwrap_or("/"))).body(body);
    for name in ["authorization", "content-type"] {
        if let Some(v) = headers.get(name) {
            request = request.header(name, v);
        }
    }
    match request.send().await {
        Ok(r) => (StatusCode::from_u16(r.status().as_u16()).unwrap(), r.bytes().await.unwrap_or_default()),
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
    }
}

impl AckHolder {
    async fn start(upstream: &str) -> AckHolder {
        let (hold, held) = (Arc::new(AtomicBool::new(true)), Arc::new(std::sync::atomic::AtomicUsize::new(0)));
        let state = ProxyState { upstream: upstream.to_string(), hold: hold.clone(), held: held.clone(), http: reqwest::Client::new() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(forward).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        AckHolder { base_url, hold, held }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_killed_after_storing_but_before_acknowledging_gets_the_event_again_and_stores_it_once() {
    let h = hosts();
    let relay = relay(&h.relay, 0);
    let proxy = AckHolder::start(&relay.base_url).await;
    let mut desk = desktop(&h.desk, &proxy.base_url);
    meta_delivers(&relay.base_url, &whatsapp_webhook("wamid.UNACKED", "Nataka kulipa")).await;
    let store = Store::open(&common::db_path(&h.desk)).unwrap();
    wait_until("the message is stored on the desktop", || in_inbox(&store, "wamid.UNACKED") == 1).await;
    wait_until("its acknowledgement is on the way", || proxy.held.load(Ordering::SeqCst) == 1).await;
    common::unsafe_kill(desk.child.id(), "KILL");
    desk.child.wait().unwrap();
    assert_eq!(unacknowledged(&h.relay), 1, "the relay still holds it");

    proxy.hold.store(false, Ordering::SeqCst);
    let _desk = desktop(&h.desk, &proxy.base_url);
    wait_until("the redelivered event is acknowledged", || unacknowledged(&h.relay) == 0).await;
    assert_eq!(in_inbox(&store, "wamid.UNACKED"), 1, "stored once");
    let stored: i64 = store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM inbound_events WHERE source = 'whatsapp' AND external_id = 'wamid.UNACKED'", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_gets_401_and_nothing() {
    let h = hosts();
    let relay = relay(&h.relay, 0);
    meta_delivers(&relay.base_url, &whatsapp_webhook("wamid.SECRET", "Habari za siri")).await;
    let http = reqwest::Client::new();
    let events = format!("{}{}", relay.base_url, wire::EVENTS_PATH);
    let wrong = format!("Bearer {}", KEY.replace('4', "5"));
    for auth in [Some(wrong.as_str()), Some(KEY), None] {
        let mut request = http.get(&events);
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("wamid") && !body.contains("siri"), "{body}");
    }
    let ack = http.post(format!("{}{}", relay.base_url, wire::ACK_PATH)).header("authorization", &wrong).json(&json!({"ids": [1]})).send().await.unwrap();
    assert_eq!(ack.status(), 401);
    let test = http.post(format!("{}{}", relay.base_url, wire::TEST_PATH)).header("authorization", &wrong).json(&json!({"nonce": "x"})).send().await.unwrap();
    assert_eq!(test.status(), 401);
    assert_eq!(unacknowledged(&h.relay), 1, "a wrong key acknowledged nothing");

    // A forged webhook or a wrong path token is refused and stores nothing.
    let forged = whatsapp_webhook("wamid.FORGED", "mark my invoice paid");
    let r = http.post(format!("{}/webhooks/whatsapp", relay.base_url)).header("x-hub-signature-256", sign(b"not-the-secret", &forged)).body(forged).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.post(format!("{}/webhooks/daraja/c2b/{}/confirmation", relay.base_url, "0".repeat(32))).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(relay_events(&h.relay, "SELECT COUNT(*) FROM events"), 1);

    // The merchant's desktop with a wrong key receives nothing.
    let _desk = Served::start_with(desktop_command(&h.desk, &relay.base_url, &KEY.replace('4', "5")));
    let store = Store::open(&common::db_path(&h.desk)).unwrap();
    let log = h.desk.join("desktop.stderr");
    wait_until("the desktop reports the refused key", || std::fs::read_to_string(&log).unwrap_or_default().contains("refused the key")).await;
    assert_eq!((in_inbox(&store, "wamid.SECRET"), unacknowledged(&h.relay)), (0, 1));
}

/// The Settings screen's "Test inbound", run in-process against a real relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_inbound_reports_each_step_and_what_failed() {
    let h = hosts();
    let relay = relay(&h.relay, 0);
    let run = |url: String, key: &'static str| {
        let desk = h.desk.clone();
        async move {
            let env: Vec<(String, String)> = [
                ("MALIPO_DATABASE", desk.join("malipo.db").display().to_string()),
                ("MALIPO_INBOUND_MODE", "relay".into()),
                ("MALIPO_INBOUND_RELAY_URL", url),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let config = malipo::config::Config::from_sources(None, None, &env).unwrap();
            let secrets = malipo::secrets::MemorySecrets::default();
            malipo::secrets::SecretStore::set(&secrets, malipo::secrets::SecretName::RelayKey, &Secret::new(key)).unwrap();
            let engine = malipo::engine::Engine::open(config, clock::system(), Arc::new(secrets)).unwrap();
            let app = malipo::app::App::start(engine, "http://127.0.0.1:9").await.unwrap();
            malipo::relay::test_inbound(&app).await
        }
    };
    let ok = run(relay.base_url.clone(), KEY).await;
    assert!(ok.ok, "{ok:?}");
    assert!(ok.steps.iter().all(|s| s.outcome == Outcome::Passed) && ok.steps.len() == 5);

    let wrong = run(relay.base_url.clone(), "ffffffffffffffffffffffffffffffffffffffff").await;
    let failed: Vec<_> = wrong.steps.iter().filter(|s| s.outcome == Outcome::Failed).collect();
    assert_eq!((wrong.ok, failed.len(), failed[0].step), (false, 1, Step::KeyAccepted));
    assert!(failed[0].detail.as_deref().unwrap().contains("401"), "{wrong:?}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nobody = run(format!("http://{closed}"), KEY).await;
    assert_eq!(nobody.steps[0].outcome, Outcome::Failed);
    assert!(nobody.steps[0].detail.as_deref().unwrap().contains("could not connect"), "{nobody:?}");
}
