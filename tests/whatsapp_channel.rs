//! The WhatsApp channel over real loopback HTTP: the app's webhook routes on 127.0.0.1, the Graph API
//! simulator on 127.0.0.1, a temp-file store, and a manual business clock.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use malipo::clock::{ManualClock, SharedClock};
use malipo::domain::Msisdn;
use malipo::secrets::{MemorySecrets, Secret, SecretName, SecretStore};
use malipo::store::{ts, Store};
use malipo::whatsapp::graph::{GraphClient, GraphError, OutboundMessage, ReplyButton, SendOptions, ListRow, ListSection};
use malipo::whatsapp::inbox::{BoxFuture, InboundHandler, Inbox, PLEASE_TYPE};
use malipo::whatsapp::outbox::{self, OutboxWorker, Outgoing, RateLimits, WorkOutcome};
use malipo::whatsapp::simulator::{GraphSimulator, SimulatorConfig};
use malipo::whatsapp::webhook::{envelope, sign};
use malipo::whatsapp::{routes, templates, InboundMessage, WhatsappState};
use serde_json::{json, Value};
use tokio::sync::Notify;

const APP_SECRET: &str = "test-app-secret";
const VERIFY_TOKEN: &str = "test-verify-token";
const WANJIKU: &str = "254712345678";
const OTIENO: &str = "254722000111";

/// Records what the agent would have been given; can be told to fail for a sender.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, String)>>,
    fail_for: Mutex<HashSet<String>>,
}

impl InboundHandler for Recorder {
    fn handle<'a>(&'a self, msg: &'a InboundMessage, _customer_id: i64) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.fail_for.lock().unwrap().contains(&msg.from) {
                return Err("the agent is not ready".into());
            }
            self.seen.lock().unwrap().push((msg.from.clone(), msg.content.log_body()));
            Ok(())
        })
    }
}

struct App {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    sim: GraphSimulator,
    url: String,
    inbox: Inbox,
    worker: OutboxWorker,
    recorder: Arc<Recorder>,
    http: reqwest::Client,
    /// The webhook route's `Notify`: wakes the inbox processor.
    wake: Arc<Notify>,
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap()
}

async fn app() -> App {
    app_with(RateLimits::default(), SimulatorConfig::default()).await
}

async fn app_with(limits: RateLimits, sim_config: SimulatorConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("malipo.db")).unwrap();
    let clock = ManualClock::at(start_time());
    let shared_clock: SharedClock = clock.clone();
    let secrets = Arc::new(MemorySecrets::default());
    secrets.set(SecretName::WhatsappAppSecret, &Secret::new(APP_SECRET)).unwrap();
    secrets.set(SecretName::WhatsappVerifyToken, &Secret::new(VERIFY_TOKEN)).unwrap();

    let wake = Arc::new(Notify::new());
    let state = WhatsappState { store: store.clone(), secrets, clock: shared_clock.clone(), wake: wake.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/whatsapp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes::router(state)).await.unwrap() });

    let sim = GraphSimulator::start(SimulatorConfig { app_secret: APP_SECRET.into(), webhook_url: Some(url.clone()), ..sim_config }, shared_clock.clone()).await.unwrap();
    let graph = GraphClient::new(sim.graph_settings());
    let recorder = Arc::new(Recorder::default());
    let inbox = Inbox::new(store.clone(), graph.clone(), shared_clock.clone()).with_handler(recorder.clone()).with_merchant_name("Duka la Mama");
    let worker = OutboxWorker::new(store.clone(), graph, shared_clock, limits);
    App { _dir: dir, store, clock, sim, url, inbox, worker, recorder, http: reqwest::Client::new(), wake }
}

impl App {
    async fn post(&self, body: Vec<u8>, signature: Option<String>) -> reqwest::StatusCode {
        let mut req = self.http.post(&self.url).header("content-type", "application/json").body(body);
        if let Some(sig) = signature {
            req = req.header("X-Hub-Signature-256", sig);
        }
        req.send().await.unwrap().status()
    }

    async fn post_signed(&self, body: &[u8]) -> reqwest::StatusCode {
        self.post(body.to_vec(), Some(sign(APP_SECRET.as_bytes(), body))).await
    }

    fn count(&self, sql: &str) -> i64 {
        let sql = sql.to_string();
        self.store.read(move |c| Ok(c.query_row(&sql, [], |r| r.get(0))?)).unwrap()
    }

    fn text(&self, sql: &str) -> Option<String> {
        let sql = sql.to_string();
        self.store.read(move |c| Ok(c.query_row(&sql, [], |r| r.get(0))?)).unwrap()
    }

    async fn process(&self) {
        self.inbox.process_pending().await.unwrap();
    }

    async fn enqueue(&self, key: &str, to: &str, outgoing: Outgoing) -> Option<i64> {
        let (key, to) = (key.to_string(), Msisdn::parse(to).unwrap());
        let now = self.clock.now_utc();
        self.store.write_async(move |tx| outbox::enqueue(tx, &key, &to, &outgoing, now)).await.unwrap()
    }

    /// Waits (real time) until `sql` counts at least `n`.
    async fn eventually(&self, sql: &str, n: i64) {
        for _ in 0..250 {
            if self.count(sql) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {sql} >= {n} (is {})", self.count(sql));
    }

    /// Runs the worker until it has nothing due now.
    async fn drain(&self) -> Vec<WorkOutcome> {
        let mut out = Vec::new();
        loop {
            match self.worker.run_once().await.unwrap() {
                WorkOutcome::Idle { .. } => return out,
                WorkOutcome::Paused { reason } => {
                    out.push(WorkOutcome::Paused { reason });
                    return out;
                }
                other => out.push(other),
            }
        }
    }
}

trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for Arc<ManualClock> {
    fn now_utc(&self) -> DateTime<Utc> {
        malipo::clock::Clock::now(&**self)
    }
}

fn text_message(from: &str, id: &str, body: &str) -> Value {
    json!({"from": from, "id": id, "timestamp": start_time().timestamp().to_string(), "type": "text", "text": {"body": body}})
}

fn webhook(messages: Vec<Value>) -> Vec<u8> {
    envelope("100000000000001", json!({"contacts": [{"profile": {"name": "Wanjiku"}, "wa_id": WANJIKU}], "messages": messages})).to_string().into_bytes()
}

fn reminder(invoice: &str) -> OutboundMessage {
    templates::payment_reminder(&templates::defaults(), "en", "Wanjiku", "KES 2,500", invoice, "4 Dec 2026", "Duka la Mama").unwrap()
}

// ---------- Webhook: handshake, signature, storage ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_echoes_the_challenge_for_the_right_token_and_is_403_otherwise() {
    let app = app().await;
    let get = |token: &str| {
        let url = format!("{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444", app.url);
        let http = app.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get(VERIFY_TOKEN).await, (200, "1158201444".to_string()));
    assert_eq!(get("wrong").await.0, 403);
    let r = app.http.get(format!("{}?hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1", app.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_a_signature_is_401_and_nothing_is_stored() {
    let app = app().await;
    assert_eq!(app.post(webhook(vec![text_message(WANJIKU, "wamid.1", "hi")]), None).await, 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_a_wrong_signature_is_401_and_nothing_is_stored() {
    let app = app().await;
    let body = webhook(vec![text_message(WANJIKU, "wamid.1", "hi")]);
    let wrong = sign(b"someone-else", &body);
    assert_eq!(app.post(body.clone(), Some(wrong)).await, 401);
    assert_eq!(app.post(body.clone(), Some("sha256=".into())).await, 401);
    assert_eq!(app.post(body, Some("not-even-the-format".into())).await, 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correctly_signed_post_is_stored_before_the_200() {
    let app = app().await;
    assert_eq!(app.post_signed(&webhook(vec![text_message(WANJIKU, "wamid.1", "Nataka kulipa")])).await, 200);
    // Nothing has processed it yet; it is in the store because the 200 came after the write.
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events WHERE external_id = 'wamid.1' AND processed_at IS NULL"), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM messages"), 0);
    app.process().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events WHERE processed_at IS NOT NULL"), 1);
    assert_eq!(app.text("SELECT body FROM messages WHERE wamid = 'wamid.1'").as_deref(), Some("Nataka kulipa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swahili_and_emoji_bodies_verify_over_the_raw_bytes() {
    let app = app().await;
    // Raw UTF-8 as Meta sends it; a re-serialised copy would escape it and change the bytes.
    let raw = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","messages":[{{"from":"{WANJIKU}","id":"wamid.sw","timestamp":"{}","type":"text","text":{{"body":"Nimelipa elfu mbili 🙏🏾 — asante sana, ndugu! ñ"}}}}]}}}}]}}]}}"#,
        start_time().timestamp()
    );
    let signature = sign(APP_SECRET.as_bytes(), raw.as_bytes());
    let escaped = serde_json::to_string(&serde_json::from_str::<Value>(&raw).unwrap()).unwrap().replace('🙏', "\\ud83d\\ude4f");
    assert_ne!(escaped.as_bytes(), raw.as_bytes());
    assert_eq!(app.post(escaped.into_bytes(), Some(signature.clone())).await, 401);
    assert_eq!(app.post(raw.into_bytes(), Some(signature)).await, 200);
    app.process().await;
    assert_eq!(app.text("SELECT body FROM messages WHERE wamid = 'wamid.sw'").as_deref(), Some("Nimelipa elfu mbili 🙏🏾 — asante sana, ndugu! ñ"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_with_a_valid_signature_is_400_and_nothing_is_stored() {
    let app = app().await;
    assert_eq!(app.post_signed(b"{\"object\": \"whatsapp_business_account\", \"entry\": [").await, 400);
    assert_eq!(app.post_signed(b"{\"object\": \"whatsapp_business_account\"}").await, 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_3_mb_is_refused() {
    let app = app().await;
    let body = vec![b' '; 3 * 1024 * 1024 + 1];
    assert_eq!(app.post_signed(&body).await, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhook_twice_is_stored_once_and_processed_once() {
    let app = app().await;
    let body = webhook(vec![text_message(WANJIKU, "wamid.dup", "Nataka kulipa")]);
    assert_eq!(app.post_signed(&body).await, 200);
    app.process().await;
    assert_eq!(app.post_signed(&body).await, 200);
    app.process().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events"), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"), 1);
    assert_eq!(app.recorder.seen.lock().unwrap().len(), 1);
    assert_eq!(app.sim.read_marks(), ["wamid.dup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_many_events_is_split_into_one_stored_event_each() {
    let app = app().await;
    let messages = |entry: usize| (0..40).map(|i| text_message(WANJIKU, &format!("wamid.{entry}.{i}"), &format!("m{i}"))).collect::<Vec<_>>();
    let statuses: Vec<Value> = (0..20)
        .flat_map(|i| {
            ["sent", "delivered"].map(|s| json!({"id": format!("wamid.out.{i}"), "status": s, "timestamp": "1796104800", "recipient_id": OTIENO}))
        })
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "messages": messages(0)}},
                                {"field": "messages", "value": {"messaging_product": "whatsapp", "statuses": statuses}}]},
        {"id": "2", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "messages": messages(1)}}]}
    ]});
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events"), 120);
    app.process().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"), 80);
    // In order: the customer's messages reached the agent in the order they were sent.
    let seen: Vec<String> = app.recorder.seen.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    let expected: Vec<String> = (0..2).flat_map(|_| (0..40).map(|i| format!("m{i}"))).collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_incoming_type_is_parsed_recorded_and_routed() {
    let app = app().await;
    let sim = &app.sim;
    sim.set_name(WANJIKU, "Wanjiku K");
    sim.send_text(WANJIKU, "Nataka kulipa").await.unwrap();
    sim.tap_button(WANJIKU, "confirm:yes", "Ndiyo").await.unwrap();
    sim.choose_from_list(WANJIKU, "inv:INV-1042", "INV-1042", Some("KES 2,500")).await.unwrap();
    sim.tap_template_button(WANJIKU, "PAY:INV-1042").await.unwrap();
    sim.send_media(WANJIKU, "image").await.unwrap();
    sim.send_location(WANJIKU, -1.2921, 36.8219).await.unwrap();
    let first = app.text("SELECT external_id FROM inbound_events ORDER BY id LIMIT 1").unwrap();
    sim.react(WANJIKU, &first, "👍").await.unwrap();
    sim.send_system(WANJIKU, "User changed number").await.unwrap();
    sim.send_unsupported(WANJIKU).await.unwrap();
    app.process().await;
    let kinds: Vec<String> = app
        .store
        .read(|c| {
            let mut s = c.prepare("SELECT kind FROM messages WHERE direction = 'in' ORDER BY id")?;
            let rows = s.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
        .unwrap();
    assert_eq!(kinds, ["text", "button_reply", "list_reply", "template_button", "image", "location", "reaction", "system", "unsupported"]);
    let seen: Vec<String> = app.recorder.seen.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(seen, ["Nataka kulipa", "[button confirm:yes] Ndiyo", "[list inv:INV-1042] INV-1042", "[quick reply PAY:INV-1042] Pay now", "[location -1.29210,36.82190]"]);
    assert_eq!(app.text(&format!("SELECT name FROM customers WHERE phone = '{WANJIKU}'")).as_deref(), Some("Wanjiku K"));
    assert_eq!(app.text(&format!("SELECT opt_in_source FROM customers WHERE phone = '{WANJIKU}'")).as_deref(), Some("whatsapp:first_message"));
    assert_eq!(sim.read_marks().len(), 9);
}

// ---------- Statuses ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_out_of_order_are_resolved_by_progress_and_timestamp() {
    let app = app_with(RateLimits::default(), SimulatorConfig { emit_statuses: false, ..Default::default() }).await;
    app.sim.send_text(WANJIKU, "Habari").await.unwrap();
    app.process().await;
    app.enqueue("reply:1", WANJIKU, Outgoing::reply(OutboundMessage::text("Karibu!"), None)).await;
    let WorkOutcome::Sent { wamid, .. } = app.worker.run_once().await.unwrap() else { panic!() };
    let t = start_time().timestamp();
    let status = |s: &str, dt: i64, errors: Option<Value>| {
        let mut v = json!({"id": wamid, "status": s, "timestamp": (t + dt).to_string(), "recipient_id": WANJIKU});
        if let Some(e) = errors {
            v["errors"] = e;
        }
        envelope("100000000000001", json!({"statuses": [v]})).to_string().into_bytes()
    };
    for (s, dt) in [("read", 30), ("delivered", 20), ("sent", 10)] {
        assert_eq!(app.post_signed(&status(s, dt, None)).await, 200);
    }
    app.process().await;
    let q = format!("SELECT status || '@' || status_at FROM messages WHERE wamid = '{wamid}'");
    assert_eq!(app.text(&q).unwrap(), format!("read@{}", ts(Utc.timestamp_opt(t + 30, 0).unwrap())));
    // A failure is final and keeps its error code; here 131026 also marks the contact.
    let errors = json!([{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable", "error_data": {"details": "not on WhatsApp"}}]);
    assert_eq!(app.post_signed(&status("failed", 40, Some(errors))).await, 200);
    app.process().await;
    assert_eq!(app.text(&format!("SELECT status || ':' || error_code FROM messages WHERE wamid = '{wamid}'")).unwrap(), "failed:131026");
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM customers WHERE phone = '{WANJIKU}' AND wa_undeliverable_at IS NOT NULL")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_webhooks_from_the_simulator_update_the_sent_message() {
    let app = app().await;
    app.sim.send_text(WANJIKU, "Habari").await.unwrap();
    app.process().await;
    app.enqueue("reply:1", WANJIKU, Outgoing::reply(OutboundMessage::text("Karibu!"), None)).await;
    let WorkOutcome::Sent { wamid, .. } = app.worker.run_once().await.unwrap() else { panic!() };
    app.eventually("SELECT COUNT(*) FROM inbound_events WHERE external_id LIKE '%:read'", 1).await;
    app.process().await;
    assert_eq!(app.text(&format!("SELECT status FROM messages WHERE wamid = '{wamid}'")).as_deref(), Some("read"));
}

// ---------- Outbox ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_sends_in_order_per_recipient_and_respects_the_pair_rate() {
    let app = app().await;
    app.sim.send_text(WANJIKU, "Habari").await.unwrap();
    app.sim.send_text(OTIENO, "Sasa").await.unwrap();
    app.process().await;
    for i in 0..3 {
        app.enqueue(&format!("w{i}"), WANJIKU, Outgoing::reply(OutboundMessage::text(format!("W{i}")), None)).await;
        app.enqueue(&format!("o{i}"), OTIENO, Outgoing::reply(OutboundMessage::text(format!("O{i}")), None)).await;
    }
    // One each now; the pair rate holds the rest although they are due.
    let sent = app.drain().await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    app.clock.advance(chrono::Duration::seconds(5));
    assert!(app.drain().await.is_empty());
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.drain().await.len(), 2);
    app.clock.advance(chrono::Duration::seconds(6));
    assert_eq!(app.drain().await.len(), 2);
    let texts = |p: &str| app.sim.messages_to(p).iter().map(|m| m["text"]["body"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(texts(WANJIKU), ["W0", "W1", "W2"]);
    assert_eq!(texts(OTIENO), ["O0", "O1", "O2"]);
    assert!(app.sim.rejections().is_empty(), "{:?}", app.sim.rejections());
    // Enqueuing the same key again sends nothing new.
    assert_eq!(app.enqueue("w0", WANJIKU, Outgoing::reply(OutboundMessage::text("W0"), None)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_rate_limit_spaces_sends() {
    let limits = RateLimits { messages_per_second: 10, ..Default::default() };
    let app = app_with(limits, SimulatorConfig { messages_per_second: 10, emit_statuses: false, ..Default::default() }).await;
    for i in 0..21 {
        let to = format!("2547120000{i:02}");
        app.enqueue(&format!("r{i}"), &to, Outgoing::business(reminder(&format!("INV-{i}")), None)).await;
    }
    let started = std::time::Instant::now();
    let sent = app.drain().await;
    let elapsed = started.elapsed();
    assert_eq!(sent.len(), 21);
    assert!(elapsed >= Duration::from_millis(1900), "21 sends at 10/s took only {elapsed:?}");
    assert!(app.sim.rejections().is_empty(), "the simulator saw the limit broken: {:?}", app.sim.rejections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_errors_are_retried_with_backoff() {
    let limits = RateLimits { messages_per_second: 1000, ..Default::default() };
    let app = app_with(limits, SimulatorConfig { messages_per_second: 3, throughput_slack: 0, emit_statuses: false, ..Default::default() }).await;
    for i in 0..6 {
        app.enqueue(&format!("r{i}"), &format!("2547120000{i:02}"), Outgoing::business(reminder(&format!("INV-{i}")), None)).await;
    }
    let first = app.drain().await;
    let sent = first.iter().filter(|o| matches!(o, WorkOutcome::Sent { .. })).count();
    let retries: Vec<_> = first.iter().filter_map(|o| if let WorkOutcome::Retry { at, .. } = o { Some(*at) } else { None }).collect();
    assert_eq!((sent, retries.len()), (3, 3), "{first:?}");
    assert!(retries.iter().all(|at| *at >= start_time() + chrono::Duration::seconds(1)));
    assert!(app.sim.rejections().iter().all(|(_, code)| *code == 130429));
    // Not due before the backoff; due after it (and after the simulator's second has passed).
    assert!(app.drain().await.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.clock.advance(chrono::Duration::seconds(2));
    let second = app.drain().await;
    assert_eq!(second.iter().filter(|o| matches!(o, WorkOutcome::Sent { .. })).count(), 3, "{second:?}");
    assert_eq!(app.sim.accepted_count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_rate_errors_hold_back_that_recipient_for_4_to_the_n_seconds() {
    // A worker that thinks bursts of 5 are fine, against WhatsApp's 1 per 6 s.
    let limits = RateLimits { pair_burst: 5, ..Default::default() };
    let app = app_with(limits, SimulatorConfig { pair_burst: 1, emit_statuses: false, ..Default::default() }).await;
    app.sim.send_text(WANJIKU, "Habari").await.unwrap();
    app.process().await;
    app.enqueue("a", WANJIKU, Outgoing::reply(OutboundMessage::text("one"), None)).await;
    app.enqueue("b", WANJIKU, Outgoing::reply(OutboundMessage::text("two"), None)).await;
    let out = app.drain().await;
    assert!(matches!(out[0], WorkOutcome::Sent { .. }), "{out:?}");
    let WorkOutcome::Retry { at, .. } = &out[1] else { panic!("{out:?}") };
    assert_eq!(*at, start_time() + chrono::Duration::seconds(4));
    assert_eq!(app.sim.rejections(), [(WANJIKU.to_string(), 131056)]);
    app.clock.advance(chrono::Duration::seconds(3));
    assert!(app.drain().await.is_empty());
    app.clock.advance(chrono::Duration::seconds(3));
    assert!(matches!(app.drain().await[..], [WorkOutcome::Sent { .. }]));
    assert_eq!(app.sim.messages_to(WANJIKU).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_131047_sends_the_template_instead() {
    let app = app().await;
    // Malipo believes the window is open (the customer wrote an hour ago, as far as the store knows),
    // but WhatsApp has no such message: it answers 131047 and the template goes instead.
    let an_hour_ago = ts(start_time() - chrono::Duration::hours(1));
    app.store
        .write(|tx| {
            let id = malipo::store::customers::upsert(tx, "Wanjiku", Some(&Msisdn::parse(WANJIKU).unwrap()), start_time())?;
            tx.execute("UPDATE customers SET last_inbound_at = ?1 WHERE id = ?2", (&an_hour_ago, id))?;
            Ok(())
        })
        .unwrap();
    let free_form = OutboundMessage::text("Habari Wanjiku, ankara INV-1042 ya KES 2,500 inadaiwa.");
    app.enqueue("reminder:INV-1042", WANJIKU, Outgoing::business(free_form.clone(), Some(reminder("INV-1042")))).await;
    let out = app.worker.run_once().await.unwrap();
    assert!(matches!(out, WorkOutcome::Sent { as_template: true, .. }), "{out:?}");
    assert_eq!(app.sim.rejections(), [(WANJIKU.to_string(), 131047)]);
    let got = app.sim.messages_to(WANJIKU);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["template"]["components"][1]["parameters"][0]["payload"], "PAY:INV-1042");

    // When the store already knows the window is shut, the template goes first time.
    app.clock.advance(chrono::Duration::hours(30));
    app.enqueue("reminder:INV-1042:2", WANJIKU, Outgoing::business(free_form, Some(reminder("INV-1042")))).await;
    assert!(matches!(app.worker.run_once().await.unwrap(), WorkOutcome::Sent { as_template: true, .. }));
    assert_eq!(app.sim.rejections().len(), 1);
    // And without a template, nothing free-form is attempted outside the window.
    app.enqueue("nudge", WANJIKU, Outgoing::business(OutboundMessage::text("Habari"), None)).await;
    app.clock.advance(chrono::Duration::seconds(6));
    assert!(matches!(app.worker.run_once().await.unwrap(), WorkOutcome::Failed { .. }));
    assert_eq!(app.sim.rejections().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_token_pauses_sending_with_the_reason_and_nothing_more_is_sent() {
    let app = app().await;
    let mut settings = app.sim.graph_settings();
    settings.token = Secret::new("expired-token");
    let worker = OutboxWorker::new(app.store.clone(), GraphClient::new(settings), app.clock.clone(), RateLimits::default());
    for i in 0..3 {
        app.enqueue(&format!("r{i}"), &format!("2547120000{i:02}"), Outgoing::business(reminder("INV-1"), None)).await;
    }
    let WorkOutcome::Paused { reason } = worker.run_once().await.unwrap() else { panic!() };
    assert!(reason.contains("190"), "{reason}");
    assert_eq!(app.store.read(outbox::paused_reason).unwrap().as_deref(), Some(reason.as_str()));
    assert!(matches!(worker.run_once().await.unwrap(), WorkOutcome::Paused { .. }));
    assert_eq!(app.sim.rejections().len(), 1);
    assert_eq!(app.sim.accepted_count(), 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'"), 3);
    // The merchant saves a new token and resumes: everything goes.
    app.store.write(|tx| outbox::resume(tx, start_time())).unwrap();
    assert_eq!(app.drain().await.len(), 3);
    assert_eq!(app.sim.accepted_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_configuration_errors_pause_sending() {
    let app = app().await;
    let bad = OutboundMessage::Template { name: "malipo_payment_reminder".into(), language: "en".into(), body_params: vec!["only one".into()], quick_reply_payloads: vec![] };
    app.enqueue("r", WANJIKU, Outgoing::business(bad, None)).await;
    let WorkOutcome::Paused { reason } = app.worker.run_once().await.unwrap() else { panic!() };
    assert!(reason.contains("132000"), "{reason}");
    app.store.write(|tx| outbox::resume(tx, start_time())).unwrap();
    let unknown = OutboundMessage::Template { name: "not_approved".into(), language: "sw".into(), body_params: vec![], quick_reply_payloads: vec![] };
    app.store.write(|tx| Ok(tx.execute("UPDATE outbox SET state = 'cancelled'", [])?)).unwrap();
    app.enqueue("r2", WANJIKU, Outgoing::business(unknown, None)).await;
    let WorkOutcome::Paused { reason } = app.worker.run_once().await.unwrap() else { panic!() };
    assert!(reason.contains("132001"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_leased_by_a_dead_worker_is_not_sent_again() {
    let app = app().await;
    let key = "reminder:INV-1042:step1";
    let id = app.enqueue(key, WANJIKU, Outgoing::business(reminder("INV-1042"), None)).await.unwrap();
    // The dead worker: claimed the row, sent it (with the key as callback data), died before recording.
    let lease = ts(start_time() + chrono::Duration::seconds(60));
    app.store.write(move |tx| Ok(tx.execute("UPDATE outbox SET state = 'sending', attempts = 1, lease_until = ?1 WHERE id = ?2", (&lease, id))?)).unwrap();
    let graph = GraphClient::new(app.sim.graph_settings());
    let wamid = graph.send_with(&Msisdn::parse(WANJIKU).unwrap(), &reminder("INV-1042"), &SendOptions { reply_to: None, callback_data: Some(key) }).await.unwrap();

    // A new worker: the lease still holds, so the row is not touched.
    assert!(matches!(app.worker.run_once().await.unwrap(), WorkOutcome::Idle { .. }));
    // The lease expires: the row is in doubt, not resent.
    app.clock.advance(chrono::Duration::seconds(61));
    assert!(matches!(app.worker.run_once().await.unwrap(), WorkOutcome::Idle { .. }));
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM outbox WHERE id = {id} AND state = 'pending' AND in_doubt_since IS NOT NULL")), 1);
    // WhatsApp's status webhook names the row through biz_opaque_callback_data: recorded as sent.
    app.eventually("SELECT COUNT(*) FROM inbound_events WHERE external_id LIKE '%:sent'", 1).await;
    app.process().await;
    assert_eq!(app.text(&format!("SELECT state || ' ' || wamid FROM outbox WHERE id = {id}")).unwrap(), format!("sent {wamid}"));
    // Long after the grace period, still nothing more goes out.
    app.clock.advance(chrono::Duration::hours(1));
    assert!(matches!(app.worker.run_once().await.unwrap(), WorkOutcome::Idle { .. }));
    assert_eq!(app.sim.messages_to(WANJIKU).len(), 1);
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM messages WHERE wamid = '{wamid}'")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_timed_out_after_being_accepted_is_not_sent_again() {
    let app = app().await;
    let slow = OutboxWorker::new(app.store.clone(), GraphClient::with_timeout(app.sim.graph_settings(), Duration::from_millis(300)), app.clock.clone(), RateLimits::default());
    app.sim.set_response_delay(Some(Duration::from_secs(1)));
    let id = app.enqueue("receipt:1", WANJIKU, Outgoing::business(reminder("INV-7"), None)).await.unwrap();
    assert!(matches!(slow.run_once().await.unwrap(), WorkOutcome::InDoubt { .. }));
    app.sim.set_response_delay(None);
    app.eventually("SELECT COUNT(*) FROM inbound_events WHERE external_id LIKE '%:sent'", 1).await;
    app.process().await;
    assert_eq!(app.text(&format!("SELECT state FROM outbox WHERE id = {id}")).as_deref(), Some("sent"));
    app.clock.advance(chrono::Duration::hours(1));
    assert!(matches!(slow.run_once().await.unwrap(), WorkOutcome::Idle { .. }));
    assert_eq!(app.sim.messages_to(WANJIKU).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_doubt_row_with_no_status_at_all_is_sent_again_after_the_grace_period() {
    // The trade-off, stated: with no status webhook within the grace period, a second send beats a
    // lost receipt.
    let app = app_with(RateLimits::default(), SimulatorConfig { emit_statuses: false, ..Default::default() }).await;
    let slow = OutboxWorker::new(app.store.clone(), GraphClient::with_timeout(app.sim.graph_settings(), Duration::from_millis(300)), app.clock.clone(), RateLimits::default());
    app.sim.set_response_delay(Some(Duration::from_secs(1)));
    app.enqueue("receipt:2", WANJIKU, Outgoing::business(reminder("INV-8"), None)).await;
    let WorkOutcome::InDoubt { until, .. } = slow.run_once().await.unwrap() else { panic!() };
    assert_eq!(until, start_time() + chrono::Duration::minutes(10));
    app.sim.set_response_delay(None);
    app.clock.advance(chrono::Duration::minutes(9));
    assert!(matches!(slow.run_once().await.unwrap(), WorkOutcome::Idle { .. }));
    app.clock.advance(chrono::Duration::minutes(2));
    assert!(matches!(slow.run_once().await.unwrap(), WorkOutcome::Sent { .. }));
    assert_eq!(app.sim.messages_to(WANJIKU).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_21_character_button_title_never_reaches_the_network() {
    let app = app().await;
    app.sim.send_text(WANJIKU, "Habari").await.unwrap();
    app.process().await;
    let too_long = OutboundMessage::Buttons {
        body: "Thibitisha malipo ya KES 2,500?".into(),
        footer: None,
        buttons: vec![ReplyButton { id: "yes".into(), title: "Ndiyo, lipa sasa hivi".into() }],
    };
    assert_eq!("Ndiyo, lipa sasa hivi".chars().count(), 21);
    let graph = GraphClient::new(app.sim.graph_settings());
    assert!(matches!(graph.send(&Msisdn::parse(WANJIKU).unwrap(), &too_long, None).await, Err(GraphError::Limit(_))));
    app.enqueue("confirm", WANJIKU, Outgoing::reply(too_long, None)).await;
    let out = app.worker.run_once().await.unwrap();
    assert!(matches!(&out, WorkOutcome::Failed { reason, .. } if reason.contains("button title")), "{out:?}");
    let eleven_rows = OutboundMessage::List {
        body: "Chagua ankara".into(),
        button: "Ankara".into(),
        sections: vec![ListSection { title: None, rows: (0..11).map(|i| ListRow { id: format!("r{i}"), title: format!("INV-{i}"), description: None }).collect() }],
    };
    assert!(matches!(graph.send(&Msisdn::parse(WANJIKU).unwrap(), &eleven_rows, None).await, Err(GraphError::Limit(_))));
    assert_eq!(app.sim.accepted_count(), 0);
    assert!(app.sim.rejections().is_empty());
}

// ---------- Opt-out, media, ordering ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_its_swahili_forms_opt_the_customer_out_and_business_messages_stop() {
    let app = app().await;
    let forms = ["STOP", "acha", "Wacha", "simamisha", "unsubscribe", "Stop sending me messages", "usinitumie tena"];
    for (i, form) in forms.iter().enumerate() {
        let phone = format!("2547130000{i:02}");
        // A reminder already waiting, from before the STOP.
        app.enqueue(&format!("before:{i}"), &phone, Outgoing::business(reminder("INV-9"), None)).await;
        app.sim.send_text(&phone, form).await.unwrap();
    }
    app.process().await;
    assert!(app.recorder.seen.lock().unwrap().is_empty(), "STOP is handled by the channel, not the agent");
    assert_eq!(app.count("SELECT COUNT(*) FROM customers WHERE opted_out_at IS NOT NULL AND opt_out_source LIKE 'whatsapp:%'"), forms.len() as i64);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE idempotency_key LIKE 'before:%' AND state = 'cancelled'"), forms.len() as i64);
    // Exactly one confirmation each, in the language of the form.
    let sent = app.drain().await;
    assert_eq!(sent.len(), forms.len(), "{sent:?}");
    for (i, form) in forms.iter().enumerate() {
        let got = app.sim.messages_to(&format!("2547130000{i:02}"));
        assert_eq!(got.len(), 1, "{form}");
        let body = got[0]["text"]["body"].as_str().unwrap();
        let swahili = ["acha", "Wacha", "simamisha", "usinitumie tena"].contains(form);
        assert!(body.contains(if swahili { "Hutapokea" } else { "You will not receive" }), "{form}: {body}");
    }
    // New business-initiated messages are never sent; replies to the customer still are.
    app.clock.advance(chrono::Duration::seconds(10));
    app.enqueue("after:0", "254713000000", Outgoing::business(reminder("INV-9"), None)).await;
    assert!(app.drain().await.is_empty());
    assert_eq!(app.text("SELECT state || ': ' || error FROM outbox WHERE idempotency_key = 'after:0'").unwrap(), "cancelled: the customer opted out");
    assert_eq!(app.sim.messages_to("254713000000").len(), 1);
    // START opts back in.
    app.sim.send_text("254713000000", "START").await.unwrap();
    app.process().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM customers WHERE phone = '254713000000' AND opted_out_at IS NULL AND opt_in_source LIKE 'whatsapp:%'"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_and_unsupported_messages_get_a_please_type_reply() {
    let app = app().await;
    let voice = app.sim.send_media(WANJIKU, "audio").await.unwrap();
    app.sim.send_unsupported(OTIENO).await.unwrap();
    app.process().await;
    assert_eq!(app.drain().await.len(), 2);
    for phone in [WANJIKU, OTIENO] {
        let got = app.sim.messages_to(phone);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["text"]["body"], PLEASE_TYPE);
        assert!(PLEASE_TYPE.contains("Please type") && PLEASE_TYPE.contains("Tafadhali andika"));
    }
    assert_eq!(app.sim.messages_to(WANJIKU)[0]["context"]["message_id"], voice.as_str());
    assert!(app.recorder.seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_is_retried_and_holds_back_only_its_own_customer() {
    let app = app().await;
    app.recorder.fail_for.lock().unwrap().insert(WANJIKU.to_string());
    app.sim.send_text(WANJIKU, "first").await.unwrap();
    app.sim.send_text(OTIENO, "other customer").await.unwrap();
    app.sim.send_text(WANJIKU, "second").await.unwrap();
    app.process().await;
    assert_eq!(*app.recorder.seen.lock().unwrap(), [(OTIENO.to_string(), "other customer".to_string())]);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events WHERE processed_at IS NULL"), 2);
    assert_eq!(app.text("SELECT error FROM inbound_events WHERE attempts = 1").as_deref(), Some("the agent is not ready"));
    // The agent recovers; after the backoff both go through, in order.
    app.recorder.fail_for.lock().unwrap().clear();
    app.process().await;
    assert_eq!(app.recorder.seen.lock().unwrap().len(), 1, "not before the backoff");
    app.clock.advance(chrono::Duration::seconds(3));
    app.process().await;
    let seen: Vec<String> = app.recorder.seen.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(seen, ["other customer", "first", "second"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_background_a_customer_message_is_answered_without_polling() {
    let app = app().await;
    let outbox_wake = app.worker.wake();
    let inbox = app.inbox.clone().with_outbox_wake(outbox_wake);
    let background = malipo::whatsapp::spawn_background(inbox, app.wake.clone(), app.worker.clone());
    app.sim.send_media(WANJIKU, "sticker").await.unwrap();
    app.sim.send_text(OTIENO, "STOP").await.unwrap();
    for _ in 0..100 {
        if !app.sim.messages_to(WANJIKU).is_empty() && !app.sim.messages_to(OTIENO).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.sim.messages_to(WANJIKU)[0]["text"]["body"], PLEASE_TYPE);
    assert!(app.sim.messages_to(OTIENO)[0]["display_text"].as_str().unwrap().contains("Duka la Mama"));
    background.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redaction_hook_cleans_the_log_and_the_stored_event() {
    let app = app().await;
    // A stand-in for the agent's PIN redactor.
    let inbox = app.inbox.clone().with_redactor(Arc::new(|s: &str| s.replace("4321", "••••")));
    let wamid = app.sim.send_text(WANJIKU, "PIN yangu ni 4321, nataka kulipa").await.unwrap();
    inbox.process_pending().await.unwrap();
    assert_eq!(app.text(&format!("SELECT body FROM messages WHERE wamid = '{wamid}'")).as_deref(), Some("PIN yangu ni ••••, nataka kulipa"));
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events WHERE payload LIKE '%4321%'"), 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events WHERE processed_at IS NOT NULL"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_retried_without_using_up_attempts() {
    let app = app().await;
    // Nothing listens on this port: the request never reaches WhatsApp.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = app.sim.graph_settings();
    settings.base_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let offline = OutboxWorker::new(app.store.clone(), GraphClient::new(settings), app.clock.clone(), RateLimits { max_attempts: 2, ..Default::default() });
    let id = app.enqueue("receipt:offline", WANJIKU, Outgoing::business(reminder("INV-5"), None)).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(offline.run_once().await.unwrap(), WorkOutcome::Retry { .. }));
        app.clock.advance(chrono::Duration::seconds(30));
    }
    assert_eq!(app.count(&format!("SELECT attempts FROM outbox WHERE id = {id} AND state = 'pending'")), 0);
    // Back online: it goes.
    assert!(matches!(app.worker.run_once().await.unwrap(), WorkOutcome::Sent { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_not_on_whatsapp_fails_the_row_and_marks_the_contact() {
    let app = app().await;
    app.store.write(|tx| malipo::store::customers::upsert(tx, "Otieno", Some(&Msisdn::parse(OTIENO).unwrap()), start_time())).unwrap();
    app.sim.not_on_whatsapp(OTIENO);
    app.enqueue("reminder:INV-1043", OTIENO, Outgoing::business(reminder("INV-1043"), None)).await;
    let out = app.worker.run_once().await.unwrap();
    assert!(matches!(&out, WorkOutcome::Failed { reason, .. } if reason.contains("131026")), "{out:?}");
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM customers WHERE phone = '{OTIENO}' AND wa_undeliverable_at IS NOT NULL")), 1);
    assert_eq!(app.count("SELECT error_code FROM outbox WHERE idempotency_key = 'reminder:INV-1043'"), 131026);
}
