//! The Daraja client against the built-in Daraja simulator, over real HTTP on 127.0.0.1. These prove
//! the client follows Daraja's rules and that simulator mode is as strict and as unreliable as the
//! real thing. Business time is a ManualClock shared by client and simulator; delays are real and short.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use malipo::clock::{Clock, ManualClock, SharedClock};
use malipo::config::TransactionType;
use malipo::daraja::callback::{ack, c2b_validation_reply, parse_c2b, parse_stk_callback, C2bRejection, StkCallback};
use malipo::daraja::simulator::{
    Answer, CallbackPlan, DarajaSimulator, PushPlan, QueryPlan, Script, SimulatorConfig, SimulatorHandle, RESULT_CODES, SANDBOX_PASSKEY,
};
use malipo::daraja::{nairobi_timestamp, stk_password, DarajaClient, DarajaError, DarajaSettings, StkPushRequest, StkQueryAnswer};
use malipo::domain::{Kes, Msisdn};
use malipo::secrets::Secret;
use serde_json::{json, Value};

const PHONE: &str = "254712345678";
const HOOK_TOKEN: &str = "f3a9c07b21d4";

// ---------------------------------------------------------------------------------------------
// Harness: a simulator, a client pointed at it, and a tiny receiver for callbacks and C2B.

#[derive(Clone, Default)]
struct Hooks {
    stk: Arc<Mutex<Vec<Value>>>,
    validations: Arc<Mutex<Vec<Value>>>,
    confirmations: Arc<Mutex<Vec<Value>>>,
    reject_validation: Arc<AtomicBool>,
}

struct Receiver {
    base_url: String,
    hooks: Hooks,
}

impl Receiver {
    async fn start() -> Receiver {
        let hooks = Hooks::default();
        let app = Router::new()
            .route("/hooks/stk/{token}", post(stk_hook))
            .route("/hooks/c2b/{token}/validation", post(validation_hook))
            .route("/hooks/c2b/{token}/confirmation", post(confirmation_hook))
            .with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base_url, hooks }
    }

    fn stk_url(&self) -> String {
        format!("{}/hooks/stk/{HOOK_TOKEN}", self.base_url)
    }

    fn raw_callbacks(&self) -> Vec<Value> {
        self.hooks.stk.lock().unwrap().clone()
    }

    fn callbacks_for(&self, checkout_request_id: &str) -> Vec<StkCallback> {
        self.raw_callbacks()
            .iter()
            .map(|v| parse_stk_callback(v.to_string().as_bytes()).expect("the simulator's callback parses"))
            .filter(|c| c.checkout_request_id == checkout_request_id)
            .collect()
    }

    /// The first callback for this push, waiting up to 5 s for it.
    async fn callback(&self, checkout_request_id: &str) -> StkCallback {
        eventually("the callback", || self.callbacks_for(checkout_request_id).into_iter().next()).await
    }
}

async fn stk_hook(State(h): State<Hooks>, Path(token): Path<String>, body: Bytes) -> Json<Value> {
    assert_eq!(token, HOOK_TOKEN);
    h.stk.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    Json(ack())
}

async fn validation_hook(State(h): State<Hooks>, Path(token): Path<String>, body: Bytes) -> Json<Value> {
    assert_eq!(token, HOOK_TOKEN);
    h.validations.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    let reject = h.reject_validation.load(Ordering::SeqCst);
    Json(c2b_validation_reply(reject.then_some(C2bRejection::InvalidAccountNumber)))
}

async fn confirmation_hook(State(h): State<Hooks>, Path(token): Path<String>, body: Bytes) -> Json<Value> {
    assert_eq!(token, HOOK_TOKEN);
    h.confirmations.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    Json(ack())
}

async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(t) = f() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

struct Env {
    clock: Arc<ManualClock>,
    sim: SimulatorHandle,
    client: DarajaClient,
    hooks: Receiver,
}

impl Env {
    async fn start() -> Env {
        let clock = ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 4, 7, 15, 0).unwrap());
        let shared: SharedClock = clock.clone();
        let sim = DarajaSimulator::start(SimulatorConfig::sandbox_defaults(shared.clone())).await.unwrap();
        let client = DarajaClient::new(sim.paybill_settings(), shared);
        let hooks = Receiver::start().await;
        Env { clock, sim, client, hooks }
    }

    fn shared_clock(&self) -> SharedClock {
        self.clock.clone()
    }

    fn client_with(&self, settings: DarajaSettings) -> DarajaClient {
        DarajaClient::new(settings, self.shared_clock())
    }

    fn request(&self, phone: &str, amount: i64) -> StkPushRequest {
        StkPushRequest {
            amount: Kes::new(amount).unwrap(),
            phone: Msisdn::parse(phone).unwrap(),
            callback_url: self.hooks.stk_url(),
            account_reference: "INV-1042".into(),
            description: "Invoice 1042".into(),
        }
    }

    async fn push(&self, phone: &str, amount: i64) -> Result<malipo::daraja::StkPushAccepted, DarajaError> {
        self.client.stk_push(&self.request(phone, amount)).await
    }

    /// A token straight from the simulator, for requests that bypass the client.
    async fn raw_token(&self) -> String {
        let v: Value = reqwest::Client::new()
            .get(format!("{}/oauth/v1/generate?grant_type=client_credentials", self.sim.base_url))
            .basic_auth("simulator-key", Some("simulator-secret"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    /// A push body Daraja would accept, built by hand.
    fn valid_body(&self) -> Value {
        let ts = nairobi_timestamp(self.clock.now());
        json!({
            "BusinessShortCode": "174379",
            "Password": stk_password("174379", SANDBOX_PASSKEY, &ts),
            "Timestamp": ts,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": 1,
            "PartyA": PHONE,
            "PartyB": "174379",
            "PhoneNumber": PHONE,
            "CallBackURL": self.hooks.stk_url(),
            "AccountReference": "INV-1042",
            "TransactionDesc": "Invoice 1042",
        })
    }

    async fn raw_push(&self, body: &Value) -> (u16, Value) {
        let token = self.raw_token().await;
        let answer = reqwest::Client::new()
            .post(format!("{}/mpesa/stkpush/v1/processrequest", self.sim.base_url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }
}

fn phone(i: usize) -> String {
    format!("2547{:08}", 10_000_000 + i)
}

// ---------------------------------------------------------------------------------------------
// OAuth

#[tokio::test]
async fn token_is_cached_across_calls_and_refreshed_after_expiry() {
    let env = Env::start().await;
    let a = env.push(&phone(1), 100).await.unwrap();
    env.client.stk_query(&a.checkout_request_id).await.unwrap();
    env.push(&phone(2), 200).await.unwrap();
    assert_eq!(env.sim.token_requests(), 1, "one token serves every call while it is fresh");

    // The simulator's token lives 3599 s; the client replaces it 60 s early.
    env.clock.advance(chrono::Duration::seconds(3538));
    env.push(&phone(3), 300).await.unwrap();
    assert_eq!(env.sim.token_requests(), 1);
    env.clock.advance(chrono::Duration::seconds(2));
    env.push(&phone(4), 400).await.unwrap();
    assert_eq!(env.sim.token_requests(), 2, "refreshed before the simulator would refuse it");
    env.clock.advance(chrono::Duration::hours(5));
    env.push(&phone(5), 500).await.unwrap();
    assert_eq!(env.sim.token_requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_cause_one_token_request() {
    let env = Env::start().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let client = env.client.clone();
        let req = env.request(&phone(i), 100 + i as i64);
        tasks.spawn(async move { client.stk_push(&req).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(env.sim.token_requests(), 1);
    assert_eq!(env.sim.pushes().len(), 8);
}

#[tokio::test]
async fn the_simulator_answers_expires_in_as_a_string_and_checks_basic_auth_and_grant_type() {
    let env = Env::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/oauth/v1/generate", env.sim.base_url);
    let ok: Value = http
        .get(format!("{url}?grant_type=client_credentials"))
        .basic_auth("simulator-key", Some("simulator-secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["expires_in"], json!("3599"));
    assert!(ok["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    let bad_grant = http.get(format!("{url}?grant_type=password")).basic_auth("simulator-key", Some("simulator-secret")).send().await.unwrap();
    assert_eq!(bad_grant.status().as_u16(), 400);
    assert_eq!(bad_grant.json::<Value>().await.unwrap()["errorCode"], "400.008.02");
    let bad_auth = http.get(format!("{url}?grant_type=client_credentials")).basic_auth("simulator-key", Some("nope")).send().await.unwrap();
    assert_eq!(bad_auth.status().as_u16(), 400);
    assert_eq!(bad_auth.json::<Value>().await.unwrap()["errorCode"], "400.008.01");
}

#[tokio::test]
async fn a_wrong_consumer_secret_is_wrong_credentials_and_nothing_is_pushed() {
    let env = Env::start().await;
    let mut settings = env.sim.paybill_settings();
    settings.credentials.consumer_secret = Secret::new("not-the-secret");
    let e = env.client_with(settings).stk_push(&env.request(PHONE, 100)).await.unwrap_err();
    match &e {
        DarajaError::WrongCredentials { code, .. } => assert_eq!(code, "400.008.01"),
        other => panic!("{other:?}"),
    }
    assert!(!e.push_outcome_unknown());
    assert_eq!(e.code(), "wrong_credentials");
    assert!(env.sim.pushes().is_empty());
}

#[tokio::test]
async fn an_invalid_access_token_is_refreshed_and_retried_once() {
    let env = Env::start().await;
    env.push(&phone(1), 100).await.unwrap();
    assert_eq!(env.sim.token_requests(), 1);

    // The cached token goes bad (as one from the other environment would): refresh, retry, succeed.
    env.sim.revoke_tokens();
    env.push(&phone(2), 200).await.unwrap();
    assert_eq!(env.sim.token_requests(), 2);
    assert_eq!(env.sim.pushes().len(), 2);

    // Still refused after the refresh: give up after exactly one retry.
    env.sim.set_tokens_rejected(true);
    let e = env.push(&phone(3), 300).await.unwrap_err();
    assert!(matches!(e, DarajaError::InvalidAccessToken), "{e:?}");
    assert!(!e.push_outcome_unknown());
    assert_eq!(env.sim.token_requests(), 3, "one refresh, not a loop");
    assert_eq!(env.sim.pushes().len(), 2);
}

#[tokio::test]
async fn an_unreachable_daraja_means_nobody_was_prompted() {
    let clock: SharedClock = ManualClock::at(Utc::now());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sim_settings = {
        let env = Env::start().await;
        env.sim.paybill_settings()
    };
    let settings = DarajaSettings { base_url: format!("http://127.0.0.1:{port}"), ..sim_settings };
    let client = DarajaClient::new(settings, clock).with_timeouts(Duration::from_millis(500), Duration::from_secs(2));
    let req = StkPushRequest {
        amount: Kes::new(10).unwrap(),
        phone: Msisdn::parse(PHONE).unwrap(),
        callback_url: "http://127.0.0.1:1/hooks/stk/x".into(),
        account_reference: "INV-1".into(),
        description: "x".into(),
    };
    let e = client.stk_push(&req).await.unwrap_err();
    assert!(matches!(e, DarajaError::Unreachable(_)), "{e:?}");
    assert!(!e.push_outcome_unknown());
}

// ---------------------------------------------------------------------------------------------
// STK push: what is sent

#[tokio::test]
async fn a_paybill_push_pairs_the_shortcode_as_business_short_code_and_party_b() {
    let env = Env::start().await;
    let accepted = env.push(PHONE, 2500).await.unwrap();
    assert!(accepted.checkout_request_id.starts_with("ws_CO_"));
    assert!(!accepted.customer_message.is_empty());
    let pushes = env.sim.pushes();
    let p = &pushes[0];
    assert_eq!(p.transaction_type, "CustomerPayBillOnline");
    assert_eq!((p.business_short_code.as_str(), p.party_b.as_str()), ("174379", "174379"));
    assert_eq!((p.amount, p.phone.as_str(), p.party_a.as_str()), (2500, PHONE, PHONE));
    assert_eq!(p.callback_url, env.hooks.stk_url());
    assert_eq!(p.timestamp, nairobi_timestamp(env.clock.now()), "Nairobi time from the injected clock");
    assert_eq!(p.checkout_request_id.as_deref(), Some(accepted.checkout_request_id.as_str()));
    assert!(env.hooks.callback(&accepted.checkout_request_id).await.paid());
}

#[tokio::test]
async fn a_till_push_sends_the_store_number_and_the_till() {
    let env = Env::start().await;
    let till = env.client_with(env.sim.client_settings(TransactionType::CustomerBuyGoodsOnline, "600100"));
    let accepted = till.stk_push(&env.request(PHONE, 700)).await.unwrap();
    let p = env.sim.pushes().pop().unwrap();
    assert_eq!(p.transaction_type, "CustomerBuyGoodsOnline");
    assert_eq!((p.business_short_code.as_str(), p.party_b.as_str()), ("174379", "600100"));
    assert_eq!(env.hooks.callback(&accepted.checkout_request_id).await.result_code, 0);
}

#[tokio::test]
async fn a_wrong_till_or_paybill_pairing_is_accepted_but_ends_in_2028() {
    let env = Env::start().await;
    // A till configured without its till number (PartyB = the store number).
    let misconfigured = env.client_with(env.sim.client_settings(TransactionType::CustomerBuyGoodsOnline, "174379"));
    let accepted = misconfigured.stk_push(&env.request(&phone(1), 700)).await.unwrap();
    assert_eq!(env.hooks.callback(&accepted.checkout_request_id).await.result_code, 2028);
    assert_eq!(
        env.client.stk_query(&accepted.checkout_request_id).await.unwrap(),
        StkQueryAnswer::Final { result_code: 2028, result_desc: "The request is not permitted according to product assignment.".into() }
    );

    // A paybill whose PartyB is not the shortcode (the client never sends this; Daraja's answer is 2028).
    let mut body = env.valid_body();
    body["PartyB"] = json!("600100");
    body["PartyA"] = json!(phone(2));
    body["PhoneNumber"] = json!(phone(2));
    let (status, answer) = env.raw_push(&body).await;
    assert_eq!((status, answer["ResponseCode"].clone()), (200, json!("0")));
    let id = answer["CheckoutRequestID"].as_str().unwrap();
    assert_eq!(env.hooks.callback(id).await.result_code, 2028);
}

#[tokio::test]
async fn reference_and_description_are_sanitised_and_truncated() {
    let env = Env::start().await;
    let mut req = env.request(PHONE, 1500);
    req.account_reference = "Inv #1042/B & Co. Ltd".into();
    req.description = "Payment for invoice #1042 (Dec)".into();
    env.client.stk_push(&req).await.unwrap();
    let p = env.sim.pushes().pop().unwrap();
    assert_eq!(p.account_reference, "Inv 1042B Co");
    assert_eq!(p.description, "Payment for i");
    assert!(p.account_reference.chars().count() <= 12 && p.description.chars().count() <= 13);

    req.account_reference = "#&!".into();
    let e = env.client.stk_push(&req).await.unwrap_err();
    assert!(matches!(&e, DarajaError::BadRequest { code, .. } if code == "local"), "{e:?}");
}

#[tokio::test]
async fn a_wrong_passkey_is_wrong_credentials() {
    let env = Env::start().await;
    let mut settings = env.sim.paybill_settings();
    settings.credentials.passkey = Secret::new("0000");
    let e = env.client_with(settings).stk_push(&env.request(PHONE, 100)).await.unwrap_err();
    match &e {
        DarajaError::WrongCredentials { code, message } => assert_eq!((code.as_str(), message.as_str()), ("500.001.1001", "Wrong credentials")),
        other => panic!("{other:?}"),
    }
    assert!(!e.push_outcome_unknown());
    assert_eq!(env.sim.pushes()[0].refused.as_deref(), Some("500.001.1001 Wrong credentials"));
}

#[tokio::test]
async fn a_timestamp_not_in_nairobi_time_or_read_twice_is_wrong_credentials() {
    let env = Env::start().await;
    // UTC instead of Nairobi: consistent Password, still refused.
    let utc = env.clock.now().format("%Y%m%d%H%M%S").to_string();
    let mut body = env.valid_body();
    body["Timestamp"] = json!(utc);
    body["Password"] = json!(stk_password("174379", SANDBOX_PASSKEY, &utc));
    let (status, answer) = env.raw_push(&body).await;
    assert_eq!((status, answer["errorCode"].clone(), answer["errorMessage"].clone()), (500, json!("500.001.1001"), json!("Wrong credentials")));

    // The clock read twice: the Password was made a second later than the Timestamp.
    let mut body = env.valid_body();
    let later = nairobi_timestamp(env.clock.now() + chrono::Duration::seconds(1));
    body["Password"] = json!(stk_password("174379", SANDBOX_PASSKEY, &later));
    let (status, answer) = env.raw_push(&body).await;
    assert_eq!((status, answer["errorMessage"].clone()), (500, json!("Wrong credentials")));

    // Correct, for contrast.
    let (status, _) = env.raw_push(&env.valid_body()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_fields_are_refused_by_the_simulator_as_daraja_does() {
    let env = Env::start().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("PartyA", json!("0712345678"), "Bad Request - Invalid PartyA"),
        ("PhoneNumber", json!("0712345678"), "Bad Request - Invalid PhoneNumber"),
        ("PhoneNumber", json!("254712345679"), "Bad Request - Invalid PhoneNumber"),
        ("Amount", json!(0), "Bad Request - Invalid Amount"),
        ("Amount", json!(250_001), "Bad Request - Invalid Amount"),
        ("Amount", json!(10.5), "Bad Request - Invalid Amount"),
        ("AccountReference", json!("INV-1042-ABCD"), "Bad Request - Invalid AccountReference"),
        ("TransactionDesc", json!("Invoice 1042 AB"), "Bad Request - Invalid TransactionDesc"),
        ("CallBackURL", Value::Null, "Bad Request - Invalid CallBackURL"),
        ("TransactionType", json!("CustomerPayBill"), "Bad Request - Invalid TransactionType"),
    ];
    for (field, value, message) in cases {
        let mut body = env.valid_body();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value.clone();
        }
        let (status, answer) = env.raw_push(&body).await;
        assert_eq!(status, 400, "{field} = {value}");
        assert_eq!(answer["errorCode"], "400.002.02", "{field} = {value}");
        assert_eq!(answer["errorMessage"], message, "{field} = {value}");
        assert!(answer["requestId"].is_string());
    }
    assert!(env.sim.pushes().is_empty(), "nothing that fails Daraja's checks is recorded as a push");

    // The client refuses what it can before sending...
    for (phone, amount) in [(PHONE, 0), (PHONE, 250_001), ("+255754123456", 100)] {
        let mut req = env.request(PHONE, 1);
        req.phone = Msisdn::parse(phone).unwrap();
        req.amount = Kes::new(amount).unwrap();
        let e = env.client.stk_push(&req).await.unwrap_err();
        assert!(matches!(&e, DarajaError::BadRequest { code, .. } if code == "local"), "{phone} {amount}: {e:?}");
    }
    assert!(env.sim.pushes().is_empty());
    // ...and maps Daraja's refusals of the rest.
    let mut req = env.request(PHONE, 100);
    req.callback_url = "not a url".into();
    match env.client.stk_push(&req).await.unwrap_err() {
        DarajaError::BadRequest { code, message } => assert_eq!((code.as_str(), message.as_str()), ("400.002.02", "Bad Request - Invalid CallBackURL")),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// STK push: what goes wrong

#[tokio::test]
async fn an_http_500_is_a_server_error_whose_outcome_is_unknown() {
    let env = Env::start().await;
    // The push reached the customer although Daraja answered 500: the callback and query still tell.
    env.sim.script_next(Script::default().with_push(PushPlan::Http500 { reached_customer: true }));
    let e = env.push(&phone(1), 100).await.unwrap_err();
    assert!(matches!(e, DarajaError::Server { status: 500, .. }), "{e:?}");
    assert!(e.push_outcome_unknown());
    assert_eq!(e.code(), "server_error");
    let id = env.sim.pushes()[0].checkout_request_id.clone().expect("the push happened");
    assert!(env.hooks.callback(&id).await.paid());
    assert!(matches!(env.client.stk_query(&id).await.unwrap(), StkQueryAnswer::Final { result_code: 0, .. }));

    // Or it did not: same error, same uncertainty for the client.
    env.sim.script_next(Script::default().with_push(PushPlan::Http500 { reached_customer: false }));
    let e = env.push(&phone(2), 100).await.unwrap_err();
    assert!(e.push_outcome_unknown());
    assert!(env.sim.pushes()[1].checkout_request_id.is_none());
}

#[tokio::test]
async fn a_slow_answer_times_out_although_the_push_happened() {
    let env = Env::start().await;
    let impatient = env.client.clone().with_timeouts(Duration::from_secs(1), Duration::from_millis(300));
    env.sim.script_next(Script::default().with_push(PushPlan::Slow(Duration::from_millis(1500))));
    let started = std::time::Instant::now();
    let e = impatient.stk_push(&env.request(PHONE, 100)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1200), "the total timeout fired");
    assert!(matches!(e, DarajaError::Timeout), "{e:?}");
    assert!(e.push_outcome_unknown());
    let id = env.sim.pushes()[0].checkout_request_id.clone().expect("the push happened");
    assert!(env.hooks.callback(&id).await.paid(), "a late success still arrives");
    assert!(matches!(impatient.stk_query(&id).await.unwrap(), StkQueryAnswer::Final { result_code: 0, .. }));
}

#[tokio::test]
async fn a_locked_subscriber_is_reported_as_such() {
    let env = Env::start().await;
    env.sim.script_next(Script::default().with_push(PushPlan::Locked));
    let e = env.push(PHONE, 100).await.unwrap_err();
    assert!(matches!(e, DarajaError::SubscriberLocked { .. }), "{e:?}");
    assert!(!e.push_outcome_unknown());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));

    // The real thing: a second push while the first prompt is still open.
    env.sim.script_phone(PHONE, Script::await_customer());
    let first = env.push(PHONE, 200).await.unwrap();
    let e = env.push(PHONE, 300).await.unwrap_err();
    match e {
        DarajaError::SubscriberLocked { message } => assert!(message.contains("already in process"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(env.sim.answer(&first.checkout_request_id, Answer::Cancel));
    env.push(PHONE, 300).await.expect("the lock ends with the prompt");
}

#[tokio::test]
async fn the_same_amount_to_the_same_phone_within_two_minutes_is_rule_17() {
    let env = Env::start().await;
    let first = env.push(PHONE, 500).await.unwrap();
    assert_eq!(env.hooks.callback(&first.checkout_request_id).await.result_code, 0);
    let again = env.push(PHONE, 500).await.expect("accepted synchronously, as Daraja does");
    assert_eq!(env.hooks.callback(&again.checkout_request_id).await.result_code, 17);
    assert!(matches!(env.client.stk_query(&again.checkout_request_id).await.unwrap(), StkQueryAnswer::Final { result_code: 17, .. }));
    let other_amount = env.push(PHONE, 501).await.unwrap();
    assert_eq!(env.hooks.callback(&other_amount.checkout_request_id).await.result_code, 0);
    let other_phone = env.push(&phone(9), 500).await.unwrap();
    assert_eq!(env.hooks.callback(&other_phone.checkout_request_id).await.result_code, 0);

    env.clock.advance(chrono::Duration::seconds(121));
    let later = env.push(PHONE, 500).await.unwrap();
    assert_eq!(env.hooks.callback(&later.checkout_request_id).await.result_code, 0);
}

// ---------------------------------------------------------------------------------------------
// STK query

#[tokio::test]
async fn a_query_says_processing_while_the_prompt_is_open_then_final() {
    let env = Env::start().await;
    env.sim.script_next(Script::await_customer());
    let a = env.push(PHONE, 100).await.unwrap();
    assert_eq!(env.client.stk_query(&a.checkout_request_id).await.unwrap(), StkQueryAnswer::Processing);
    assert_eq!(env.client.stk_query(&a.checkout_request_id).await.unwrap(), StkQueryAnswer::Processing);
    assert!(env.sim.answer(&a.checkout_request_id, Answer::EnterPin));
    assert_eq!(
        env.client.stk_query(&a.checkout_request_id).await.unwrap(),
        StkQueryAnswer::Final { result_code: 0, result_desc: "The service request is processed successfully.".into() }
    );
    assert_eq!(env.sim.query_count(&a.checkout_request_id), 3);
}

#[tokio::test]
async fn scripted_queries_answer_processing_or_500_first() {
    let env = Env::start().await;
    env.sim.script_next(Script::default().with_query(QueryPlan::ProcessingTimes(2)));
    let a = env.push(&phone(1), 100).await.unwrap();
    assert_eq!(env.client.stk_query(&a.checkout_request_id).await.unwrap(), StkQueryAnswer::Processing);
    assert_eq!(env.client.stk_query(&a.checkout_request_id).await.unwrap(), StkQueryAnswer::Processing);
    assert!(matches!(env.client.stk_query(&a.checkout_request_id).await.unwrap(), StkQueryAnswer::Final { result_code: 0, .. }));

    env.sim.script_next(Script::code(1032).with_query(QueryPlan::Fail500Times(1)));
    let b = env.push(&phone(2), 100).await.unwrap();
    let e = env.client.stk_query(&b.checkout_request_id).await.unwrap_err();
    assert!(matches!(e, DarajaError::Server { status: 500, .. }), "{e:?}");
    assert!(matches!(env.client.stk_query(&b.checkout_request_id).await.unwrap(), StkQueryAnswer::Final { result_code: 1032, .. }));
    assert_eq!(env.sim.query_count(&b.checkout_request_id), 2);

    let e = env.client.stk_query("ws_CO_unknown").await.unwrap_err();
    assert!(matches!(&e, DarajaError::BadRequest { message, .. } if message == "Bad Request - Invalid CheckoutRequestID"), "{e:?}");
}

#[tokio::test]
async fn the_query_answer_carries_result_code_as_a_string() {
    let env = Env::start().await;
    env.sim.script_next(Script::code(1037));
    let a = env.push(PHONE, 100).await.unwrap();
    let ts = nairobi_timestamp(env.clock.now());
    let v: Value = reqwest::Client::new()
        .post(format!("{}/mpesa/stkpushquery/v1/query", env.sim.base_url))
        .bearer_auth(env.raw_token().await)
        .json(&json!({"BusinessShortCode": "174379", "Password": stk_password("174379", SANDBOX_PASSKEY, &ts), "Timestamp": ts,
            "CheckoutRequestID": a.checkout_request_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((v["ResponseCode"].clone(), v["ResultCode"].clone()), (json!("0"), json!("1037")));
}

// ---------------------------------------------------------------------------------------------
// Callbacks

#[tokio::test]
async fn a_callback_is_delivered_at_once_in_the_real_shape() {
    let env = Env::start().await;
    let a = env.push(PHONE, 2500).await.unwrap();
    let raw = eventually("a callback", || env.hooks.raw_callbacks().into_iter().next()).await;
    let cb = &raw["Body"]["stkCallback"];
    assert_eq!(cb["CheckoutRequestID"], json!(a.checkout_request_id));
    assert_eq!(cb["MerchantRequestID"], json!(a.merchant_request_id));
    assert!(cb["ResultCode"].is_number());
    let items = cb["CallbackMetadata"]["Item"].as_array().unwrap();
    let item = |name: &str| items.iter().find(|i| i["Name"] == name).unwrap().clone();
    assert!(item("Amount")["Value"].is_number());
    assert!(item("PhoneNumber")["Value"].is_number());
    assert!(item("TransactionDate")["Value"].is_number());
    assert!(item("Balance").get("Value").is_none(), "Balance comes without a Value");

    let parsed = env.hooks.callback(&a.checkout_request_id).await;
    assert_eq!(parsed.amount, Some(2500));
    assert_eq!(parsed.phone.as_deref(), Some(PHONE));
    assert_eq!(parsed.transaction_date.as_deref(), Some(nairobi_timestamp(env.clock.now()).as_str()));
    let receipt = parsed.receipt.unwrap();
    assert!(receipt.len() == 10 && receipt.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()), "{receipt}");
    assert!(malipo::domain::MpesaReceipt::parse(&receipt).is_ok());
}

#[tokio::test]
async fn duplicate_callbacks_are_delivered_as_scripted() {
    let env = Env::start().await;
    env.sim.script_next(Script::default().with_callback(CallbackPlan::Immediate { copies: 3 }));
    let a = env.push(PHONE, 100).await.unwrap();
    let copies = eventually("three copies", || Some(env.hooks.callbacks_for(&a.checkout_request_id)).filter(|c| c.len() == 3)).await;
    assert!(copies.iter().all(|c| *c == copies[0]), "identical duplicates");
}

#[tokio::test]
async fn held_callbacks_arrive_late_and_out_of_order_when_released() {
    let env = Env::start().await;
    env.sim.script_phone(&phone(1), Script::code(1032).with_callback(CallbackPlan::Hold));
    env.sim.script_phone(&phone(2), Script::default().with_callback(CallbackPlan::Hold));
    let first = env.push(&phone(1), 100).await.unwrap();
    let second = env.push(&phone(2), 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(env.hooks.raw_callbacks().is_empty());
    assert_eq!(env.sim.held_callbacks(&first.checkout_request_id), 1);

    assert_eq!(env.sim.release_callbacks(&second.checkout_request_id), 1);
    assert_eq!(env.sim.release_callbacks(&first.checkout_request_id), 1);
    assert_eq!(env.sim.release_callbacks(&first.checkout_request_id), 0);
    let order = eventually("both callbacks", || {
        let all = env.hooks.raw_callbacks();
        (all.len() == 2).then(|| all.iter().map(|v| v["Body"]["stkCallback"]["CheckoutRequestID"].as_str().unwrap().to_string()).collect::<Vec<_>>())
    })
    .await;
    assert_eq!(order, [second.checkout_request_id.clone(), first.checkout_request_id.clone()]);
    assert_eq!(env.hooks.callback(&first.checkout_request_id).await.result_code, 1032);
}

#[tokio::test]
async fn a_dropped_callback_never_arrives_but_the_query_knows() {
    let env = Env::start().await;
    env.sim.script_next(Script::default().with_callback(CallbackPlan::Drop));
    let a = env.push(PHONE, 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.hooks.raw_callbacks().is_empty());
    assert!(matches!(env.client.stk_query(&a.checkout_request_id).await.unwrap(), StkQueryAnswer::Final { result_code: 0, .. }));
}

#[tokio::test]
async fn a_delayed_callback_arrives_after_its_delay() {
    let env = Env::start().await;
    env.sim.script_next(Script::default().with_callback(CallbackPlan::After { delay: Duration::from_millis(400), copies: 2 }));
    let a = env.push(PHONE, 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(env.hooks.raw_callbacks().is_empty());
    eventually("two late copies", || Some(env.hooks.callbacks_for(&a.checkout_request_id)).filter(|c| c.len() == 2)).await;
}

// ---------------------------------------------------------------------------------------------
// The customer's side

#[tokio::test]
async fn every_result_code_in_the_table_is_reachable() {
    let env = Env::start().await;
    for (i, code) in RESULT_CODES.into_iter().enumerate() {
        env.sim.script_next(Script::code(code));
        let a = env.push(&phone(i), 100).await.unwrap();
        let cb = env.hooks.callback(&a.checkout_request_id).await;
        assert_eq!(cb.result_code, code);
        assert_eq!(cb.receipt.is_some(), code == 0, "only a payment has a receipt ({code})");
        match env.client.stk_query(&a.checkout_request_id).await.unwrap() {
            StkQueryAnswer::Final { result_code, result_desc } => {
                assert_eq!(result_code, code);
                assert!(!result_desc.is_empty());
            }
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_customers_answers_end_the_prompt_with_their_codes() {
    let env = Env::start().await;
    env.sim.set_business_name("Mama Njeri Grocers");
    let answers = [(Answer::EnterPin, 0), (Answer::WrongPin, 2001), (Answer::InsufficientBalance, 1), (Answer::Cancel, 1032), (Answer::NoAnswer, 1037)];
    for (i, (answer, code)) in answers.into_iter().enumerate() {
        env.sim.script_next(Script::await_customer());
        let a = env.push(&phone(i), 100 + i as i64).await.unwrap();
        let prompts = env.sim.pending_prompts();
        assert_eq!(prompts.len(), 1);
        let p = &prompts[0];
        assert_eq!((p.checkout_request_id.as_str(), p.phone.as_str(), p.amount), (a.checkout_request_id.as_str(), phone(i).as_str(), 100 + i as i64));
        assert_eq!((p.account_reference.as_str(), p.business_name.as_str()), ("INV-1042", "Mama Njeri Grocers"));
        assert!(env.sim.answer(&a.checkout_request_id, answer));
        assert!(!env.sim.answer(&a.checkout_request_id, answer), "a closed prompt cannot be answered again");
        assert!(env.sim.pending_prompts().is_empty());
        assert_eq!(env.hooks.callback(&a.checkout_request_id).await.result_code, code, "{answer:?}");
    }
}

#[tokio::test]
async fn an_unanswered_prompt_ends_as_1037_on_the_simulators_clock() {
    let env = Env::start().await;
    env.sim.script_next(Script::await_customer());
    let a = env.push(PHONE, 100).await.unwrap();
    env.clock.advance(chrono::Duration::seconds(59));
    assert_eq!(env.sim.pending_prompts().len(), 1);
    env.clock.advance(chrono::Duration::seconds(1));
    assert!(env.sim.pending_prompts().is_empty());
    assert_eq!(env.sim.result_of(&a.checkout_request_id), Some(1037));
    assert_eq!(env.hooks.callback(&a.checkout_request_id).await.result_code, 1037);
}

// ---------------------------------------------------------------------------------------------
// C2B

#[tokio::test]
async fn c2b_registration_and_payment_deliver_validation_and_confirmation_in_the_real_shape() {
    let env = Env::start().await;
    let base = format!("{}/hooks/c2b/{HOOK_TOKEN}", env.hooks.base_url);
    assert!(env.sim.c2b_pay("INV-1042", 2500, PHONE).await.is_err(), "nothing registered yet");

    env.client.register_c2b_urls(&format!("{base}/confirmation"), &format!("{base}/validation")).await.unwrap();
    assert_eq!(env.sim.c2b_urls(), Some((format!("{base}/confirmation"), format!("{base}/validation"))));

    let trans_id = env.sim.c2b_pay("INV-1042", 2500, PHONE).await.unwrap();
    let validation = env.hooks.hooks.validations.lock().unwrap()[0].clone();
    let confirmation = eventually("the confirmation", || env.hooks.hooks.confirmations.lock().unwrap().first().cloned()).await;
    assert!(confirmation["TransAmount"].is_string() && confirmation["BusinessShortCode"].is_string());
    for body in [&validation, &confirmation] {
        let p = parse_c2b(body.to_string().as_bytes()).unwrap();
        assert_eq!(p.trans_id, trans_id);
        assert_eq!((p.amount, p.bill_ref_number.as_str(), p.business_short_code.as_str()), (2500, "INV-1042", "174379"));
        assert_eq!(p.trans_type, "Pay Bill");
        assert_eq!(p.trans_time, nairobi_timestamp(env.clock.now()));
        assert_eq!(p.msisdn, "25471****678", "masked as Daraja masks it");
        assert!(!p.first_name.is_empty());
    }

    // The merchant's validation refuses: no confirmation, and the payer is told why.
    env.hooks.hooks.reject_validation.store(true, Ordering::SeqCst);
    let e = env.sim.c2b_pay("NO-SUCH", 100, PHONE).await.unwrap_err();
    assert!(e.contains("C2B00012"), "{e}");
    assert_eq!(env.hooks.hooks.confirmations.lock().unwrap().len(), 1);
    env.hooks.hooks.reject_validation.store(false, Ordering::SeqCst);

    // Hashed MSISDN, as Daraja sends it today.
    env.sim.set_c2b_msisdn_hashed(true);
    env.sim.c2b_pay("INV-1043", 300, PHONE).await.unwrap();
    let last = env.hooks.hooks.confirmations.lock().unwrap().last().cloned().unwrap();
    let hashed = parse_c2b(last.to_string().as_bytes()).unwrap().msisdn;
    assert!(hashed.len() == 64 && hashed.chars().all(|c| c.is_ascii_hexdigit()), "{hashed}");
}

#[tokio::test]
async fn c2b_urls_with_words_daraja_blocks_are_refused_and_the_sandbox_simulate_call_works() {
    let env = Env::start().await;
    let e = env.client.register_c2b_urls("https://example.com/mpesa/confirmation", "https://example.com/validation").await.unwrap_err();
    assert!(matches!(&e, DarajaError::BadRequest { message, .. } if message == "Bad Request - Invalid ConfirmationURL"), "{e:?}");

    let base = format!("{}/hooks/c2b/{HOOK_TOKEN}", env.hooks.base_url);
    env.client.register_c2b_urls(&format!("{base}/confirmation"), &format!("{base}/validation")).await.unwrap();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/mpesa/c2b/v1/simulate", env.sim.base_url))
        .bearer_auth(env.raw_token().await)
        .json(&json!({"ShortCode": "174379", "CommandID": "CustomerPayBillOnline", "Amount": 150, "Msisdn": 254708374149u64, "BillRefNumber": "INV-7"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["ResponseCode"], "0");
    let confirmation = eventually("the confirmation", || env.hooks.hooks.confirmations.lock().unwrap().first().cloned()).await;
    let p = parse_c2b(confirmation.to_string().as_bytes()).unwrap();
    assert_eq!((p.amount, p.bill_ref_number.as_str()), (150, "INV-7"));
}

// ---------------------------------------------------------------------------------------------
// Logs

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_contain_secrets_passwords_tokens_or_full_phone_numbers() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = Env::start().await;
    env.sim.script_next(Script::await_customer());
    let a = env.push(PHONE, 100).await.unwrap();
    assert_eq!(env.client.stk_query(&a.checkout_request_id).await.unwrap(), StkQueryAnswer::Processing);
    let _ = env.push(PHONE, 200).await.unwrap_err();
    env.sim.answer(&a.checkout_request_id, Answer::EnterPin);
    env.hooks.callback(&a.checkout_request_id).await;
    let password = env.sim.pushes()[0].timestamp.clone();
    let password = stk_password("174379", SANDBOX_PASSKEY, &password);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("STK push accepted"), "logging is on: {logs}");
    assert!(logs.contains("2547•••••678"), "phones are logged masked");
    for secret in [PHONE, SANDBOX_PASSKEY, "simulator-secret", password.as_str(), "Bearer", HOOK_TOKEN] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}:\n{logs}");
    }
}
