//! The whole engine in simulator mode, end to end over real HTTP: a customer writes on WhatsApp
//! (the Graph API simulator signs and posts the webhook), the agent confirms with buttons, the tap
//! sends one STK push (Daraja simulator), the callback and STK Query credit the ledger, and the
//! customer gets a receipt with the M-Pesa code.

use std::time::Duration;

use malipo::app::App;
use malipo::config::Config;
use malipo::daraja::simulator::{CallbackPlan, Script, SimResult};
use malipo::engine::Engine;
use malipo::payments::{ledger, repo};
use malipo::secrets::MemorySecrets;
use malipo::store::invoices::{self, InvoiceStatus};
use serde_json::Value;

mod common;

const PHONE: &str = "254712345678";

struct Running {
    _dir: tempfile::TempDir,
    app: App,
}

async fn start() -> Running {
    start_with(vec![]).await
}

async fn start_with(extra: Vec<(String, String)>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    common::seed(dir.path());
    let mut env: Vec<(String, String)> = vec![
        ("MALIPO_DATABASE".into(), common::db_path(dir.path()).display().to_string()),
        ("MALIPO_MERCHANT_NAME".into(), "Duka la Mama".into()),
    ];
    env.extend(extra);
    let config = Config::from_sources(None, None, &env).unwrap();
    let engine = Engine::open(config, malipo::clock::system(), std::sync::Arc::new(MemorySecrets::default())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = App::start(engine, &url).await.unwrap();
    app.spawn_workers();
    let served = app.clone();
    tokio::spawn(async move { malipo::server::serve(listener, &served, served.stopped()).await.unwrap() });
    Running { _dir: dir, app }
}

impl Running {
    fn received(&self) -> Vec<Value> {
        self.app.simulators.whatsapp.as_ref().unwrap().messages_to(PHONE)
    }

    /// Waits for the customer to receive a message whose text contains `needle`; returns it.
    async fn wait_for_message(&self, needle: &str) -> Value {
        for _ in 0..200 {
            if let Some(m) = self.received().into_iter().find(|m| m["display_text"].as_str().is_some_and(|t| t.contains(needle))) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let texts: Vec<_> = self.received().iter().map(|m| m["display_text"].clone()).collect();
        panic!("the customer never received {needle:?}; they got {texts:#?}");
    }

    async fn say(&self, text: &str) {
        self.app.simulators.whatsapp.as_ref().unwrap().send_text(PHONE, text).await.unwrap();
    }

    async fn tap(&self, message: &Value, title: &str) {
        let buttons = message["interactive"]["action"]["buttons"].as_array().expect("reply buttons");
        let button = buttons.iter().find(|b| b["reply"]["title"] == title).unwrap_or_else(|| panic!("no button {title:?} in {buttons:?}"));
        let id = button["reply"]["id"].as_str().unwrap();
        self.app.simulators.whatsapp.as_ref().unwrap().tap_button(PHONE, id, title).await.unwrap();
    }

    fn daraja(&self) -> &malipo::daraja::simulator::SimulatorHandle {
        self.app.simulators.daraja.as_ref().unwrap()
    }

    fn invoice_status(&self) -> (InvoiceStatus, i64) {
        let inv = self.app.engine.store.read(|c| invoices::by_number(c, "INV-1042")).unwrap().unwrap();
        (inv.status, inv.balance.shillings())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hi_i_want_to_pay_becomes_one_push_a_receipt_and_a_paid_invoice() {
    let r = start().await;
    let mut updates = r.app.payments.subscribe();
    r.say("Hi, I want to pay INV-1042").await;
    let confirm = r.wait_for_message("please confirm").await;
    let text = confirm["display_text"].as_str().unwrap();
    assert!(text.contains("KES 2,500") && text.contains("2547•••••678") && text.contains("Duka la Mama"), "{text}");
    assert!(r.daraja().pushes().is_empty(), "nothing is pushed before the customer confirms");

    r.tap(&confirm, "Pay KES 2,500").await;
    let receipt = r.wait_for_message("Thank you! We received KES 2,500").await;
    let pushes = r.daraja().pushes();
    assert_eq!(pushes.len(), 1, "exactly one STK push");
    assert_eq!((pushes[0].amount, pushes[0].phone.as_str(), pushes[0].account_reference.as_str()), (2500, PHONE, "INV-1042"));

    let (rows, attempts) = r.app.engine.store.read(|c| Ok((ledger::list(c)?, repo::list(c)?))).unwrap();
    assert_eq!(rows.len(), 1);
    let code = rows[0].receipt.clone().expect("the callback's receipt");
    assert!(receipt["display_text"].as_str().unwrap().contains(&code), "the receipt message carries the M-Pesa code");
    assert_eq!(attempts[0].origin, "chat");
    assert_eq!(r.invoice_status(), (InvoiceStatus::Paid, 0));
    // The desktop raises its notification from this event.
    let mut credited = false;
    while let Ok(u) = updates.try_recv() {
        credited |= u.credited.is_some_and(|k| k.shillings() == 2500) && u.invoice_paid;
    }
    assert!(credited, "a payment-received event was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_paid_with_an_unknown_code_is_queued_for_the_merchant() {
    let r = start().await;
    r.say("Nimeshalipa jana, mbona bado mnanidai?").await;
    r.wait_for_message("namba ya muamala").await;
    r.say("QKJ7RT61SV").await;
    r.wait_for_message("Tutaangalia malipo QKJ7RT61SV").await;
    let queued: i64 = r
        .app
        .engine
        .store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM attention WHERE kind = 'receipt_check' AND detail LIKE '%QKJ7RT61SV%'", [], |x| x.get(0))?))
        .unwrap();
    assert_eq!(queued, 1);
    assert!(r.daraja().pushes().is_empty());
    assert_eq!(r.invoice_status(), (InvoiceStatus::Open, 2500), "a claim alone changes no balance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_balance_offers_a_smaller_amount_or_a_date() {
    let r = start().await;
    r.daraja().script_phone(PHONE, Script { result: SimResult::Code(1), callback: CallbackPlan::Immediate { copies: 1 }, ..Script::default() });
    r.say("nataka kulipa").await;
    let confirm = r.wait_for_message("thibitisha").await;
    r.tap(&confirm, "Lipa KES 2,500").await;
    let offer = r.wait_for_message("salio halitoshi").await;
    let titles: Vec<_> = offer["interactive"]["action"]["buttons"].as_array().unwrap().iter().map(|b| b["reply"]["title"].as_str().unwrap().to_string()).collect();
    assert_eq!(titles, ["Kiasi kidogo", "Nitalipa baadaye"]);
    r.tap(&offer, "Nitalipa baadaye").await;
    r.wait_for_message("Utaweza kulipa lini").await;
    r.say("Ijumaa").await;
    r.wait_for_message("Tumeandika kwamba utalipa").await;
    let promises: i64 = r.app.engine.store.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM promises", [], |x| x.get(0))?)).unwrap();
    assert_eq!(promises, 1);
    assert_eq!(r.invoice_status(), (InvoiceStatus::Open, 2500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchant_takes_over_replies_inside_the_window_and_hands_back() {
    use malipo::console;
    let r = start().await;
    r.say("habari").await;
    r.wait_for_message("Habari Wanjiku").await;
    let customer_id = r.app.engine.store.read(|c| Ok(c.query_row("SELECT id FROM customers WHERE phone = ?1", [PHONE], |x| x.get::<_, i64>(0))?)).unwrap();

    // Replying as yourself needs a takeover first.
    let err = console::merchant_reply(&r.app, customer_id, "Hello from the shop").await.unwrap_err();
    assert_eq!(err.code(), "not_human");
    r.app.agent.take_over(customer_id).await.unwrap();
    console::merchant_reply(&r.app, customer_id, "Hello from the shop, how can I help?").await.unwrap();
    r.wait_for_message("Hello from the shop, how can I help?").await;

    // While a person handles it, the bot stays quiet.
    let before = r.received().len();
    r.say("I want to pay").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(r.received().len(), before, "no bot reply during a takeover");
    let inbox = r.app.engine.store.read(|c| console::conversations(c, chrono::Utc::now())).unwrap();
    assert_eq!((inbox[0].handled_by.as_str(), inbox[0].window_open, inbox[0].phone.as_str()), ("human", true, "2547•••••678"));

    r.app.agent.hand_back(customer_id).await.unwrap();
    r.wait_for_message("msaidizi wetu wa malipo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_phone_shows_buttons_and_the_mpesa_prompt_the_customer_answers() {
    use malipo::console;
    let r = start().await;
    r.daraja().set_default_script(Script::await_customer());
    let state = console::sim_state(&r.app).await.unwrap();
    assert!(state.enabled);
    let wanjiku = state.customers.iter().find(|c| c.name == "Wanjiku Kamau").unwrap();
    assert_eq!((wanjiku.phone.as_str(), wanjiku.balance), ("2547•••••678", 2500));
    console::sim_send_text(&r.app, wanjiku.customer_id, "I want to pay").await.unwrap();
    r.wait_for_message("please confirm").await;
    let screen = console::sim_messages(&r.app, wanjiku.customer_id).await.unwrap();
    assert!(screen[0].from_customer && screen[0].text == "I want to pay");
    let pay = screen[1].buttons.iter().find(|b| b.title == "Pay KES 2,500").unwrap().clone();
    console::sim_tap(&r.app, wanjiku.customer_id, &pay.id, &pay.title).await.unwrap();
    // The M-Pesa prompt appears on the customer's phone; they enter their PIN.
    let mut prompt = None;
    for _ in 0..100 {
        prompt = console::sim_state(&r.app).await.unwrap().prompts.into_iter().next();
        if prompt.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let prompt = prompt.expect("an STK prompt on the phone");
    assert_eq!((prompt.amount, prompt.account_reference.as_str(), prompt.customer_id), (2500, "INV-1042", Some(wanjiku.customer_id)));
    console::sim_answer(&r.app, &prompt.checkout_request_id, "pin").unwrap();
    r.wait_for_message("Thank you! We received KES 2,500").await;
    assert_eq!(r.invoice_status(), (InvoiceStatus::Paid, 0));
}

/// An OpenAI-compatible model server that always proposes paying INV-1042 with an inflated amount.
async fn scripted_model() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"id": "c1", "object": "chat.completion", "model": "test", "choices": [{"index": 0, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
                        "function": {"name": "propose_payment", "arguments": "{\"invoice\": \"INV-1042\", \"amount\": 99000}"}}]}}]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclear_message_goes_to_the_model_whose_proposal_is_checked_and_confirmed_never_charged() {
    let (endpoint, calls) = scripted_model().await;
    let r = start_with(vec![("MALIPO_AGENT_LLM_ENABLED".into(), "true".into()), ("MALIPO_AGENT_LLM_ENDPOINT".into(), endpoint)]).await;
    // Clear messages never reach the model.
    r.say("hi").await;
    r.wait_for_message("Hello Wanjiku").await;
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    // An unclear one does; the model asks for KES 99,000, more than the balance: the policy offers the
    // ledger's KES 2,500 and waits for the customer's own confirmation.
    r.say("ile kitu ya jana bana, si unajua").await;
    r.wait_for_message("tafadhali thibitisha").await;
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let texts: Vec<String> = r.received().iter().map(|m| m["display_text"].as_str().unwrap_or_default().to_string()).collect();
    assert!(texts.iter().any(|t| t.contains("zaidi ya deni lako")), "{texts:#?}");
    assert!(texts.iter().rev().find(|t| t.contains("thibitisha")).unwrap().contains("KES 2,500"), "answered in the customer's Swahili");
    assert!(r.daraja().pushes().is_empty(), "a model's proposal never charges by itself");
}
