//! A Daraja simulator on loopback: the product's simulator mode and the tests' double.
//!
//! It speaks Daraja's real HTTP shapes and is as strict as Daraja (Basic and Bearer auth, token
//! expiry, Password and Nairobi Timestamp, every field checked, the subscriber lock, rule 17, wrong
//! till/paybill pairing → 2028) and as unreliable as the real world when scripted to be (500s, slow
//! answers, late, duplicated, held or lost callbacks, "being processed" queries).
//!
//! Business time (token expiry, the 2-minute rule, the timestamp window, prompt expiry) comes from
//! the injected clock; delays (slow answers, late callbacks) are real `tokio::time::sleep`s.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::sync::{mpsc, Notify};

use super::{callback_url_problem, nairobi_timestamp, parse_nairobi_timestamp, stk_password, Credentials, DarajaSettings};
use crate::clock::SharedClock;
use crate::config::TransactionType;
use crate::secrets::Secret;

/// Safaricom's public sandbox shortcode and passkey.
pub const SANDBOX_SHORTCODE: &str = "174379";
pub const SANDBOX_PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
pub const SIMULATOR_CONSUMER_KEY: &str = "simulator-key";
pub const SIMULATOR_CONSUMER_SECRET: &str = "simulator-secret";
/// Tokens live this long on the simulator's clock; `expires_in` says so as a string.
pub const TOKEN_LIFETIME_SECS: i64 = 3599;
/// How far the Timestamp may be from the simulator's clock before the Password is "Wrong credentials".
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;
/// Same amount to the same phone within this many seconds → result 17.
pub const RULE_17_WINDOW_SECS: i64 = 120;
/// An unanswered prompt ends as 1037 after this long on the simulator's clock (changeable).
pub const DEFAULT_PROMPT_TIMEOUT_SECS: i64 = 60;
/// Every result code of the reference's table, 0 included.
pub const RESULT_CODES: [i64; 17] = [0, 1, 2, 3, 4, 8, 17, 26, 1019, 1025, 1031, 1032, 1037, 2001, 2028, 8006, 9999];

const LOCKED_MESSAGE: &str = "Unable to lock subscriber, a transaction is already in process for the current subscriber";
const PROCESSING_MESSAGE: &str = "The transaction is being processed";
const WRONG_CREDENTIALS: &str = "Wrong credentials";
const ACCEPTED_MESSAGE: &str = "Success. Request accepted for processing";
const FORM_TIMESTAMP_DIGITS: usize = 14;

/// What M-Pesa says for each result code.
pub fn result_desc(code: i64) -> &'static str {
    match code {
        0 => "The service request is processed successfully.",
        1 => "The balance is insufficient for the transaction.",
        2 => "Declined due to limit rule: less than the minimum transaction amount.",
        3 => "Declined due to limit rule: greater than the maximum transaction amount.",
        4 => "Declined due to limit rule: would exceed daily transfer limit.",
        8 => "Declined due to limit rule: would exceed the maximum balance.",
        17 => "Rule limited.",
        26 => "System busy. The service request is rejected.",
        1019 => "Transaction has expired.",
        1025 => "An error occurred while sending a push request.",
        1031 => "Request cancelled by user.",
        1032 => "Request cancelled by user",
        1037 => "DS timeout user cannot be reached",
        2001 => "The initiator information is invalid.",
        2028 => "The request is not permitted according to product assignment.",
        8006 => "The security credential is locked.",
        9999 => "An error occurred while sending a push request.",
        _ => "Simulated result.",
    }
}

#[derive(Clone)]
pub struct SimulatorConfig {
    pub shortcode: String,
    pub passkey: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub clock: SharedClock,
}

impl SimulatorConfig {
    /// Shortcode 174379 with the public sandbox passkey; key/secret "simulator-key"/"simulator-secret".
    pub fn sandbox_defaults(clock: SharedClock) -> Self {
        SimulatorConfig {
            shortcode: SANDBOX_SHORTCODE.into(),
            passkey: SANDBOX_PASSKEY.into(),
            consumer_key: SIMULATOR_CONSUMER_KEY.into(),
            consumer_secret: SIMULATOR_CONSUMER_SECRET.into(),
            clock,
        }
    }
}

impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig").field("shortcode", &self.shortcode).finish_non_exhaustive()
    }
}

/// How the simulator treats a push. Default: the customer pays at once, one callback at once,
/// queries answer normally, the push is answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Script {
    pub result: SimResult,
    pub callback: CallbackPlan,
    pub query: QueryPlan,
    pub push: PushPlan,
}

impl Script {
    pub fn result(result: SimResult) -> Self {
        Script { result, ..Script::default() }
    }
    pub fn code(code: i64) -> Self {
        Script::result(SimResult::Code(code))
    }
    /// The prompt stays open until [`SimulatorHandle::answer`] (or the prompt timeout).
    pub fn await_customer() -> Self {
        Script::result(SimResult::AwaitCustomer)
    }
    pub fn with_callback(self, callback: CallbackPlan) -> Self {
        Script { callback, ..self }
    }
    pub fn with_query(self, query: QueryPlan) -> Self {
        Script { query, ..self }
    }
    pub fn with_push(self, push: PushPlan) -> Self {
        Script { push, ..self }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimResult {
    /// The customer enters the PIN at once: result 0 with a receipt.
    #[default]
    Pay,
    /// The prompt ends at once with this result code (0 is the same as `Pay`).
    Code(i64),
    /// The prompt stays open until `answer()` or the prompt timeout.
    AwaitCustomer,
}

/// What the customer does with an open prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    EnterPin,
    WrongPin,
    InsufficientBalance,
    Cancel,
    NoAnswer,
}

impl Answer {
    pub fn result_code(self) -> i64 {
        match self {
            Answer::EnterPin => 0,
            Answer::WrongPin => 2001,
            Answer::InsufficientBalance => 1,
            Answer::Cancel => 1032,
            Answer::NoAnswer => 1037,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackPlan {
    /// Sent as soon as the result is known; `copies` ≥ 2 sends duplicates.
    Immediate { copies: u32 },
    /// Sent `delay` after the result is known.
    After { delay: Duration, copies: u32 },
    /// Kept until [`SimulatorHandle::release_callbacks`], so a test can deliver late and out of order.
    Hold,
    /// Never sent.
    Drop,
}

impl Default for CallbackPlan {
    fn default() -> Self {
        CallbackPlan::Immediate { copies: 1 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryPlan {
    #[default]
    Normal,
    /// Answer "being processed" this many times first, whatever the state.
    ProcessingTimes(u32),
    /// Answer HTTP 500 this many times first.
    Fail500Times(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushPlan {
    #[default]
    Normal,
    /// Answer HTTP 500; the customer was prompted (`reached_customer`) or not.
    Http500 { reached_customer: bool },
    /// The customer is prompted, but the answer comes only after this delay.
    Slow(Duration),
    /// Refuse with "Unable to lock subscriber".
    Locked,
}

/// A push as the client sent it, once its fields passed Daraja's checks.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RecordedPush {
    pub amount: i64,
    pub phone: String,
    pub party_a: String,
    pub account_reference: String,
    pub description: String,
    pub transaction_type: String,
    pub business_short_code: String,
    pub party_b: String,
    pub callback_url: String,
    pub timestamp: String,
    /// None when the simulator refused it (wrong credentials, locked, 500 before prompting).
    pub checkout_request_id: Option<String>,
    /// `errorCode errorMessage` of the refusal, if refused.
    pub refused: Option<String>,
}

impl fmt::Debug for RecordedPush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedPush")
            .field("amount", &self.amount)
            .field("phone", &mask_phone(&self.phone))
            .field("account_reference", &self.account_reference)
            .field("description", &self.description)
            .field("transaction_type", &self.transaction_type)
            .field("business_short_code", &self.business_short_code)
            .field("party_b", &self.party_b)
            .field("checkout_request_id", &self.checkout_request_id)
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

/// An open prompt, for the UI's simulated customer phone.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Prompt {
    pub checkout_request_id: String,
    pub phone: String,
    pub amount: i64,
    pub account_reference: String,
    pub description: String,
    pub business_name: String,
    pub opened_at: DateTime<Utc>,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("checkout_request_id", &self.checkout_request_id)
            .field("phone", &mask_phone(&self.phone))
            .field("amount", &self.amount)
            .field("account_reference", &self.account_reference)
            .finish_non_exhaustive()
    }
}

pub struct DarajaSimulator;

impl DarajaSimulator {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime until [`SimulatorHandle::shutdown`].
    pub async fn start(config: SimulatorConfig) -> std::io::Result<SimulatorHandle> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let runtime = tokio::runtime::Handle::current();
        let (tx, rx) = mpsc::unbounded_channel();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let sim = Arc::new(Sim {
            config,
            state: Mutex::new(SimState::new()),
            deliveries: tx,
            http: http.clone(),
            runtime: runtime.clone(),
            shutdown: Notify::new(),
            counter: AtomicU64::new(0),
        });
        runtime.spawn(deliver_callbacks(rx, http));
        runtime.spawn(sweep_prompts(Arc::downgrade(&sim)));
        let app = router(sim.clone());
        let stop = sim.clone();
        runtime.spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.shutdown.notified().await }).await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "the Daraja simulator stopped");
            }
        });
        tracing::info!(base_url = %base_url, "Daraja simulator listening");
        Ok(SimulatorHandle { base_url, sim })
    }
}

#[derive(Clone)]
pub struct SimulatorHandle {
    pub base_url: String,
    sim: Arc<Sim>,
}

impl fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorHandle").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl SimulatorHandle {
    /// Client settings that this simulator accepts, for a paybill.
    pub fn paybill_settings(&self) -> DarajaSettings {
        self.client_settings(TransactionType::CustomerPayBillOnline, &self.sim.config.shortcode.clone())
    }

    /// Client settings that this simulator accepts, for either transaction type.
    pub fn client_settings(&self, transaction_type: TransactionType, party_b: &str) -> DarajaSettings {
        let c = &self.sim.config;
        DarajaSettings {
            base_url: self.base_url.clone(),
            shortcode: c.shortcode.clone(),
            transaction_type,
            party_b: party_b.to_string(),
            credentials: Credentials {
                consumer_key: Secret::new(c.consumer_key.clone()),
                consumer_secret: Secret::new(c.consumer_secret.clone()),
                passkey: Secret::new(c.passkey.clone()),
            },
        }
    }

    /// Every push to this phone (2547… digits) follows `script` until changed.
    pub fn script_phone(&self, phone: &str, script: Script) {
        self.sim.lock().phone_scripts.insert(phone.to_string(), script);
    }

    /// The next push, to any phone, follows `script` (a queue: each call scripts one more push).
    pub fn script_next(&self, script: Script) {
        self.sim.lock().next_scripts.push_back(script);
    }

    /// Pushes that are scripted neither per phone nor as "next" follow this (default: pay at once).
    /// Simulator mode sets `Script::await_customer()` so the UI's customer phone decides.
    pub fn set_default_script(&self, script: Script) {
        self.sim.lock().default_script = script;
    }

    /// The business name shown on prompts.
    pub fn set_business_name(&self, name: &str) {
        self.sim.lock().business_name = name.to_string();
    }

    /// How long an unanswered prompt stays open before it ends as 1037; None: until answered.
    pub fn set_prompt_timeout(&self, timeout: Option<chrono::Duration>) {
        self.sim.lock().prompt_timeout = timeout;
    }

    /// C2B MSISDN as a SHA-256 hex hash of the number (as Daraja sends it today) instead of masked.
    pub fn set_c2b_msisdn_hashed(&self, hashed: bool) {
        self.sim.lock().c2b_msisdn_hashed = hashed;
    }

    /// Every token issued so far becomes invalid (as a token from the other environment would be).
    pub fn revoke_tokens(&self) {
        self.sim.lock().tokens.clear();
    }

    /// While true every Bearer token, even a fresh one, is refused with 404.001.03.
    pub fn set_tokens_rejected(&self, rejected: bool) {
        self.sim.lock().tokens_rejected = rejected;
    }

    /// How many times `/oauth/v1/generate` was called.
    pub fn token_requests(&self) -> usize {
        self.sim.lock().token_requests
    }

    /// What the client sent, in order.
    pub fn pushes(&self) -> Vec<RecordedPush> {
        self.sim.lock().pushes.clone()
    }

    pub fn query_count(&self, checkout_request_id: &str) -> usize {
        self.sim.lock().queries.get(checkout_request_id).copied().unwrap_or(0)
    }

    /// The result code of a push once the prompt is over; None while open or unknown.
    pub fn result_of(&self, checkout_request_id: &str) -> Option<i64> {
        let mut st = self.sim.lock();
        self.sim.expire_stale(&mut st);
        st.txns.get(checkout_request_id).and_then(|t| t.outcome.as_ref()).map(|o| o.code)
    }

    /// Open prompts, oldest first.
    pub fn pending_prompts(&self) -> Vec<Prompt> {
        let mut st = self.sim.lock();
        self.sim.expire_stale(&mut st);
        let business_name = st.business_name.clone();
        st.order
            .iter()
            .filter_map(|id| st.txns.get(id))
            .filter(|t| t.outcome.is_none())
            .map(|t| Prompt {
                checkout_request_id: t.checkout_request_id.clone(),
                phone: t.phone.clone(),
                amount: t.amount,
                account_reference: t.account_reference.clone(),
                description: t.description.clone(),
                business_name: business_name.clone(),
                opened_at: t.opened_at,
            })
            .collect()
    }

    /// The customer acts on an open prompt. False if there is no such open prompt.
    pub fn answer(&self, checkout_request_id: &str, answer: Answer) -> bool {
        let mut st = self.sim.lock();
        self.sim.expire_stale(&mut st);
        let open = st.txns.get(checkout_request_id).is_some_and(|t| t.outcome.is_none());
        if open {
            self.sim.finalize(&mut st, checkout_request_id, answer.result_code());
        }
        open
    }

    /// Delivers the held callbacks of this push now, after any released before. Returns how many.
    pub fn release_callbacks(&self, checkout_request_id: &str) -> usize {
        let held = self.sim.lock().held.remove(checkout_request_id).unwrap_or_default();
        let n = held.len();
        for d in held {
            let _ = self.sim.deliveries.send(d);
        }
        n
    }

    /// How many callbacks of this push are held.
    pub fn held_callbacks(&self, checkout_request_id: &str) -> usize {
        self.sim.lock().held.get(checkout_request_id).map_or(0, Vec::len)
    }

    /// The registered (confirmation, validation) URLs, if any.
    pub fn c2b_urls(&self) -> Option<(String, String)> {
        self.sim.lock().c2b.as_ref().map(|r| (r.confirmation_url.clone(), r.validation_url.clone()))
    }

    /// A customer pays the paybill directly: POSTs the registered validation URL, then (if accepted)
    /// the confirmation URL, in Daraja's shape. Returns the TransID, or why the payment failed.
    pub async fn c2b_pay(&self, bill_ref: &str, amount: i64, msisdn: &str) -> Result<String, String> {
        self.sim.c2b_pay("Pay Bill", bill_ref, amount, msisdn).await
    }

    /// Stops serving (in-flight requests finish).
    pub fn shutdown(&self) {
        self.sim.shutdown.notify_one();
    }
}

/// A refusal already shaped as Daraja's answer.
type Refusal = Box<Response>;

struct Sim {
    config: SimulatorConfig,
    state: Mutex<SimState>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    shutdown: Notify,
    counter: AtomicU64,
}

#[derive(Clone)]
struct Delivery {
    checkout_request_id: String,
    url: String,
    body: Value,
}

struct C2bRegistration {
    response_type: String,
    confirmation_url: String,
    validation_url: String,
}

struct Outcome {
    code: i64,
    desc: String,
}

struct Txn {
    merchant_request_id: String,
    checkout_request_id: String,
    phone: String,
    amount: i64,
    account_reference: String,
    description: String,
    callback_url: String,
    opened_at: DateTime<Utc>,
    outcome: Option<Outcome>,
    callback: CallbackPlan,
    processing_left: u32,
    fail500_left: u32,
    /// False when the push never prompted the customer (17, 2028): it does not start a 2-minute window.
    counts_for_rule_17: bool,
}

struct SimState {
    tokens: HashMap<String, DateTime<Utc>>,
    tokens_rejected: bool,
    token_requests: usize,
    default_script: Script,
    phone_scripts: HashMap<String, Script>,
    next_scripts: VecDeque<Script>,
    pushes: Vec<RecordedPush>,
    txns: HashMap<String, Txn>,
    order: Vec<String>,
    queries: HashMap<String, usize>,
    held: HashMap<String, Vec<Delivery>>,
    c2b: Option<C2bRegistration>,
    c2b_msisdn_hashed: bool,
    business_name: String,
    prompt_timeout: Option<chrono::Duration>,
    receipts: HashSet<String>,
}

impl SimState {
    fn new() -> Self {
        SimState {
            tokens: HashMap::new(),
            tokens_rejected: false,
            token_requests: 0,
            default_script: Script::default(),
            phone_scripts: HashMap::new(),
            next_scripts: VecDeque::new(),
            pushes: Vec::new(),
            txns: HashMap::new(),
            order: Vec::new(),
            queries: HashMap::new(),
            held: HashMap::new(),
            c2b: None,
            c2b_msisdn_hashed: false,
            business_name: "Malipo Demo Shop".into(),
            prompt_timeout: Some(chrono::Duration::seconds(DEFAULT_PROMPT_TIMEOUT_SECS)),
            receipts: HashSet::new(),
        }
    }

    /// A fresh 10-character receipt such as `TKL1ABC2DE`.
    fn new_receipt(&mut self) -> String {
        loop {
            let r = format!("{}{}", random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1), random_string(ALNUM_UPPER, 9));
            if self.receipts.insert(r.clone()) {
                return r;
            }
        }
    }
}

impl Sim {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        self.config.clock.now()
    }

    fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Ends prompts open longer than the prompt timeout as 1037.
    fn expire_stale(&self, st: &mut SimState) {
        let Some(timeout) = st.prompt_timeout else { return };
        let now = self.now();
        let stale: Vec<String> =
            st.txns.values().filter(|t| t.outcome.is_none() && now - t.opened_at >= timeout).map(|t| t.checkout_request_id.clone()).collect();
        for id in stale {
            self.finalize(st, &id, 1037);
        }
    }

    /// Closes the prompt with `code` and sends, holds or drops its callback as scripted.
    fn finalize(&self, st: &mut SimState, checkout_request_id: &str, code: i64) {
        let receipt = if code == 0 { Some(st.new_receipt()) } else { None };
        let now = self.now();
        let Some(txn) = st.txns.get_mut(checkout_request_id) else { return };
        if txn.outcome.is_some() {
            return;
        }
        txn.outcome = Some(Outcome { code, desc: result_desc(code).to_string() });
        tracing::debug!(checkout_request_id, code, phone = %mask_phone(&txn.phone), "simulated prompt ended");
        let body = callback_body(txn, code, receipt.as_deref(), now);
        let mut plan = txn.callback;
        if let Some(problem) = callback_url_problem(&txn.callback_url) {
            tracing::warn!(checkout_request_id, problem = %problem, "the simulator will not call this CallBackURL, as Daraja would not");
            plan = CallbackPlan::Drop;
        }
        let delivery = Delivery { checkout_request_id: checkout_request_id.to_string(), url: txn.callback_url.clone(), body };
        match plan {
            CallbackPlan::Immediate { copies } => {
                for _ in 0..copies {
                    let _ = self.deliveries.send(delivery.clone());
                }
            }
            CallbackPlan::After { delay, copies } => {
                let tx = self.deliveries.clone();
                self.runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    for _ in 0..copies {
                        let _ = tx.send(delivery.clone());
                    }
                });
            }
            CallbackPlan::Hold => st.held.entry(checkout_request_id.to_string()).or_default().push(delivery),
            CallbackPlan::Drop => {}
        }
    }

    fn check_bearer(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let token = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer "));
        let now = self.now();
        let st = self.lock();
        let valid = token.is_some_and(|t| !st.tokens_rejected && st.tokens.get(t.trim()).is_some_and(|exp| now < *exp));
        if valid {
            Ok(())
        } else {
            Err(Box::new(envelope(StatusCode::NOT_FOUND, "404.001.03", "Invalid Access Token")))
        }
    }

    /// Password = base64(shortcode + passkey + Timestamp) for *our* shortcode, Timestamp in Nairobi
    /// time near our clock; anything else is "Wrong credentials", as Daraja says it.
    fn check_password(&self, business_short_code: &str, password: &str, timestamp: &str) -> Result<(), Refusal> {
        let c = &self.config;
        let near = parse_nairobi_timestamp(timestamp).is_some_and(|t| (t - self.now()).num_seconds().abs() <= TIMESTAMP_TOLERANCE_SECS);
        let expected = stk_password(&c.shortcode, &c.passkey, timestamp);
        if business_short_code == c.shortcode && near && password == expected {
            Ok(())
        } else {
            Err(Box::new(envelope(StatusCode::INTERNAL_SERVER_ERROR, "500.001.1001", WRONG_CREDENTIALS)))
        }
    }

    fn accept_push(&self, p: PushFields) -> Result<(Value, PushPlan), Refusal> {
        let mut st = self.lock();
        self.expire_stale(&mut st);
        let now = self.now();
        let mut record = RecordedPush {
            amount: p.amount,
            phone: p.phone.clone(),
            party_a: p.party_a.clone(),
            account_reference: p.account_reference.clone(),
            description: p.description.clone(),
            transaction_type: p.transaction_type.clone(),
            business_short_code: p.business_short_code.clone(),
            party_b: p.party_b.clone(),
            callback_url: p.callback_url.clone(),
            timestamp: p.timestamp.clone(),
            checkout_request_id: None,
            refused: None,
        };
        let refuse = |st: &mut SimState, mut record: RecordedPush, status: StatusCode, code: &str, message: &str| {
            record.refused = Some(format!("{code} {message}"));
            st.pushes.push(record);
            Err(Box::new(envelope(status, code, message)))
        };
        if st.txns.values().any(|t| t.phone == p.phone && t.outcome.is_none()) {
            return refuse(&mut st, record, StatusCode::INTERNAL_SERVER_ERROR, "500.001.1001", LOCKED_MESSAGE);
        }
        let script = match st.next_scripts.pop_front() {
            Some(s) => s,
            None => st.phone_scripts.get(&p.phone).copied().unwrap_or(st.default_script),
        };
        match script.push {
            PushPlan::Locked => return refuse(&mut st, record, StatusCode::INTERNAL_SERVER_ERROR, "500.001.1001", LOCKED_MESSAGE),
            PushPlan::Http500 { reached_customer: false } => {
                return refuse(&mut st, record, StatusCode::INTERNAL_SERVER_ERROR, "500.003.1001", "Internal Server Error")
            }
            _ => {}
        }

        let n = self.next_id();
        let stamp = now.with_timezone(&chrono_tz::Africa::Nairobi).format("%d%m%Y%H%M%S");
        let checkout_request_id = format!("ws_CO_{stamp}{}{n:04}", random_string(b"0123456789", 3));
        let merchant_request_id = format!("{}-{}-{n}", random_string(b"0123456789", 5), random_string(b"0123456789", 8));
        let pairing_ok = match p.transaction_type.as_str() {
            "CustomerPayBillOnline" => p.party_b == p.business_short_code,
            _ => p.party_b != p.business_short_code,
        };
        let window = chrono::Duration::seconds(RULE_17_WINDOW_SECS);
        let rule_17 = st.txns.values().any(|t| {
            t.counts_for_rule_17 && t.phone == p.phone && t.amount == p.amount && t.opened_at <= now && now - t.opened_at < window
        });
        let immediate = if !pairing_ok {
            Some(2028)
        } else if rule_17 {
            Some(17)
        } else {
            match script.result {
                SimResult::Pay => Some(0),
                SimResult::Code(c) => Some(c),
                SimResult::AwaitCustomer => None,
            }
        };
        let (processing_left, fail500_left) = match script.query {
            QueryPlan::Normal => (0, 0),
            QueryPlan::ProcessingTimes(k) => (k, 0),
            QueryPlan::Fail500Times(k) => (0, k),
        };
        st.txns.insert(
            checkout_request_id.clone(),
            Txn {
                merchant_request_id: merchant_request_id.clone(),
                checkout_request_id: checkout_request_id.clone(),
                phone: p.phone.clone(),
                amount: p.amount,
                account_reference: p.account_reference.clone(),
                description: p.description.clone(),
                callback_url: p.callback_url.clone(),
                opened_at: now,
                outcome: None,
                callback: script.callback,
                processing_left,
                fail500_left,
                counts_for_rule_17: pairing_ok && !rule_17,
            },
        );
        st.order.push(checkout_request_id.clone());
        record.checkout_request_id = Some(checkout_request_id.clone());
        st.pushes.push(record);
        tracing::debug!(checkout_request_id = %checkout_request_id, phone = %mask_phone(&p.phone), amount = p.amount, "simulated STK push accepted");
        if let Some(code) = immediate {
            self.finalize(&mut st, &checkout_request_id, code);
        }
        let answer = json!({
            "MerchantRequestID": merchant_request_id,
            "CheckoutRequestID": checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": ACCEPTED_MESSAGE,
            "CustomerMessage": ACCEPTED_MESSAGE,
        });
        Ok((answer, script.push))
    }

    async fn c2b_pay(&self, trans_type: &str, bill_ref: &str, amount: i64, msisdn: &str) -> Result<String, String> {
        if !(1..=super::MAX_STK_AMOUNT).contains(&amount) {
            return Err(format!("amount {amount} is outside 1..=250000"));
        }
        if !is_kenyan_mobile(msisdn) {
            return Err("the MSISDN must be 2547XXXXXXXX or 2541XXXXXXXX".into());
        }
        if bill_ref.chars().count() > 20 {
            return Err("the account number (BillRefNumber) is longer than 20 characters".into());
        }
        let (reg, trans_id, shown_msisdn) = {
            let mut st = self.lock();
            let Some(reg) = st.c2b.as_ref().map(|r| (r.response_type.clone(), r.confirmation_url.clone(), r.validation_url.clone())) else {
                return Err("no C2B URLs are registered for this shortcode".into());
            };
            let shown = if st.c2b_msisdn_hashed {
                hex::encode(sha2::Sha256::digest(msisdn.as_bytes()))
            } else {
                format!("{}****{}", &msisdn[..5], &msisdn[9..])
            };
            (reg, st.new_receipt(), shown)
        };
        let (response_type, confirmation_url, validation_url) = reg;
        let body = json!({
            "TransactionType": trans_type,
            "TransID": trans_id,
            "TransTime": nairobi_timestamp(self.now()),
            "TransAmount": format!("{amount}.00"),
            "BusinessShortCode": self.config.shortcode,
            "BillRefNumber": bill_ref,
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": shown_msisdn,
            "FirstName": "John",
            "MiddleName": "",
            "LastName": "",
        });
        match self.http.post(&validation_url).json(&body).send().await {
            Ok(answer) => {
                let v: Value = answer.json().await.unwrap_or(Value::Null);
                let code = v.get("ResultCode").map(|c| match c {
                    Value::String(s) => s.trim().to_string(),
                    other => other.to_string(),
                });
                match code.as_deref() {
                    Some("0") => {}
                    Some(code) => return Err(format!("the merchant's validation refused the payment ({code})")),
                    None if response_type == "Cancelled" => return Err("the validation answer was not understood; payment cancelled".into()),
                    None => tracing::warn!(trans_id = %trans_id, "C2B validation answer not understood; completing as registered"),
                }
            }
            Err(_) if response_type == "Cancelled" => return Err("the validation URL could not be reached; payment cancelled".into()),
            Err(_) => tracing::warn!(trans_id = %trans_id, "C2B validation URL unreachable; completing as registered"),
        }
        let mut confirmation = body;
        confirmation["OrgAccountBalance"] = json!(format!("{}.00", 10_000 + amount));
        if let Err(e) = self.http.post(&confirmation_url).json(&confirmation).send().await {
            // The money moved; only the notification was lost (as happens in real life).
            tracing::warn!(trans_id = %trans_id, error = %e.without_url(), "C2B confirmation could not be delivered");
        }
        Ok(trans_id)
    }
}

async fn deliver_callbacks(mut rx: mpsc::UnboundedReceiver<Delivery>, http: reqwest::Client) {
    while let Some(d) = rx.recv().await {
        match http.post(&d.url).json(&d.body).send().await {
            Ok(answer) => tracing::debug!(checkout_request_id = %d.checkout_request_id, status = answer.status().as_u16(), "simulated callback delivered"),
            Err(e) => tracing::warn!(checkout_request_id = %d.checkout_request_id, error = %e.without_url(), "simulated callback not delivered"),
        }
    }
}

async fn sweep_prompts(sim: Weak<Sim>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(sim) = sim.upgrade() else { return };
        let mut st = sim.lock();
        sim.expire_stale(&mut st);
    }
}

fn callback_body(txn: &Txn, code: i64, receipt: Option<&str>, now: DateTime<Utc>) -> Value {
    let mut cb = json!({
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": txn.checkout_request_id,
        "ResultCode": code,
        "ResultDesc": result_desc(code),
    });
    if code == 0 {
        let date: u64 = nairobi_timestamp(now).parse().unwrap_or_default();
        let phone: u64 = txn.phone.parse().unwrap_or_default();
        cb["CallbackMetadata"] = json!({"Item": [
            {"Name": "Amount", "Value": txn.amount as f64},
            {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": date},
            {"Name": "PhoneNumber", "Value": phone},
        ]});
    }
    json!({"Body": {"stkCallback": cb}})
}

fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/oauth/v1/generate", get(oauth))
        .route("/mpesa/stkpush/v1/processrequest", post(stk_push))
        .route("/mpesa/stkpushquery/v1/query", post(stk_query))
        .route("/mpesa/c2b/v1/registerurl", post(register_urls))
        .route("/mpesa/c2b/v1/simulate", post(c2b_simulate))
        .fallback(|| async { envelope(StatusCode::NOT_FOUND, "404.001.01", "Resource not found") })
        .with_state(sim)
}

async fn oauth(State(sim): State<Arc<Sim>>, Query(query): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    sim.lock().token_requests += 1;
    if query.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return envelope(StatusCode::BAD_REQUEST, "400.008.02", "Invalid grant type passed");
    }
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!("{}:{}", sim.config.consumer_key, sim.config.consumer_secret);
    if credentials.as_deref() != Some(expected.as_str()) {
        return envelope(StatusCode::BAD_REQUEST, "400.008.01", "Invalid Authentication passed");
    }
    let token = random_string(ALNUM, 28);
    let expires = sim.now() + chrono::Duration::seconds(TOKEN_LIFETIME_SECS);
    sim.lock().tokens.insert(token.clone(), expires);
    Json(json!({"access_token": token, "expires_in": TOKEN_LIFETIME_SECS.to_string()})).into_response()
}

struct PushFields {
    business_short_code: String,
    password: String,
    timestamp: String,
    transaction_type: String,
    amount: i64,
    party_a: String,
    party_b: String,
    phone: String,
    callback_url: String,
    account_reference: String,
    description: String,
}

/// Daraja's field checks, in the order of its documentation. Err is the field to name.
fn validate_push(v: &Value) -> Result<PushFields, &'static str> {
    let business_short_code = digits(v, "BusinessShortCode").filter(|s| (5..=7).contains(&s.len())).ok_or("BusinessShortCode")?;
    let password = text(v, "Password").filter(|s| !s.is_empty()).ok_or("Password")?;
    let timestamp = text(v, "Timestamp").filter(|s| s.len() == FORM_TIMESTAMP_DIGITS && parse_nairobi_timestamp(s).is_some()).ok_or("Timestamp")?;
    let transaction_type =
        text(v, "TransactionType").filter(|t| t == "CustomerPayBillOnline" || t == "CustomerBuyGoodsOnline").ok_or("TransactionType")?;
    let amount = whole_amount(v.get("Amount")).filter(|a| (1..=super::MAX_STK_AMOUNT).contains(a)).ok_or("Amount")?;
    let party_a = digits(v, "PartyA").filter(|p| is_kenyan_mobile(p)).ok_or("PartyA")?;
    let party_b = digits(v, "PartyB").filter(|s| (5..=7).contains(&s.len())).ok_or("PartyB")?;
    let phone = digits(v, "PhoneNumber").filter(|p| is_kenyan_mobile(p) && *p == party_a).ok_or("PhoneNumber")?;
    let callback_url = text(v, "CallBackURL").filter(|u| well_formed_url(u)).ok_or("CallBackURL")?;
    let account_reference = text(v, "AccountReference")
        .filter(|r| !r.is_empty() && r.chars().count() <= super::ACCOUNT_REFERENCE_MAX && r.chars().all(allowed_reference_char))
        .ok_or("AccountReference")?;
    let description = match v.get("TransactionDesc") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) if d.chars().count() <= super::TRANSACTION_DESC_MAX && d.chars().all(allowed_reference_char) => d.clone(),
        Some(_) => return Err("TransactionDesc"),
    };
    Ok(PushFields {
        business_short_code,
        password,
        timestamp,
        transaction_type,
        amount,
        party_a,
        party_b,
        phone,
        callback_url,
        account_reference,
        description,
    })
}

async fn stk_push(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.check_bearer(&headers) {
        return *refusal;
    }
    let Some(v) = json_object(&body) else { return invalid_payload() };
    let fields = match validate_push(&v) {
        Ok(f) => f,
        Err(field) => return invalid_field(field),
    };
    if let Err(refusal) = sim.check_password(&fields.business_short_code, &fields.password, &fields.timestamp) {
        let mut st = sim.lock();
        st.pushes.push(RecordedPush {
            amount: fields.amount,
            phone: fields.phone,
            party_a: fields.party_a,
            account_reference: fields.account_reference,
            description: fields.description,
            transaction_type: fields.transaction_type,
            business_short_code: fields.business_short_code,
            party_b: fields.party_b,
            callback_url: fields.callback_url,
            timestamp: fields.timestamp,
            checkout_request_id: None,
            refused: Some(format!("500.001.1001 {WRONG_CREDENTIALS}")),
        });
        return *refusal;
    }
    match sim.accept_push(fields) {
        Err(refusal) => *refusal,
        Ok((answer, PushPlan::Http500 { .. })) => {
            drop(answer);
            envelope(StatusCode::INTERNAL_SERVER_ERROR, "500.003.1001", "Internal Server Error")
        }
        Ok((answer, PushPlan::Slow(delay))) => {
            tokio::time::sleep(delay).await;
            Json(answer).into_response()
        }
        Ok((answer, _)) => Json(answer).into_response(),
    }
}

async fn stk_query(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.check_bearer(&headers) {
        return *refusal;
    }
    let Some(v) = json_object(&body) else { return invalid_payload() };
    let Some(business_short_code) = digits(&v, "BusinessShortCode") else { return invalid_field("BusinessShortCode") };
    let Some(password) = text(&v, "Password").filter(|p| !p.is_empty()) else { return invalid_field("Password") };
    let Some(timestamp) = text(&v, "Timestamp").filter(|t| parse_nairobi_timestamp(t).is_some()) else { return invalid_field("Timestamp") };
    let Some(checkout_request_id) = text(&v, "CheckoutRequestID").filter(|c| !c.is_empty()) else {
        return invalid_field("CheckoutRequestID");
    };
    if let Err(refusal) = sim.check_password(&business_short_code, &password, &timestamp) {
        return *refusal;
    }
    let mut st = sim.lock();
    sim.expire_stale(&mut st);
    *st.queries.entry(checkout_request_id.clone()).or_default() += 1;
    let Some(txn) = st.txns.get_mut(&checkout_request_id) else { return invalid_field("CheckoutRequestID") };
    if txn.fail500_left > 0 {
        txn.fail500_left -= 1;
        return envelope(StatusCode::INTERNAL_SERVER_ERROR, "500.003.1001", "Internal Server Error");
    }
    if txn.processing_left > 0 {
        txn.processing_left -= 1;
        return envelope(StatusCode::INTERNAL_SERVER_ERROR, "500.001.1001", PROCESSING_MESSAGE);
    }
    match &txn.outcome {
        None => envelope(StatusCode::INTERNAL_SERVER_ERROR, "500.001.1001", PROCESSING_MESSAGE),
        Some(o) => Json(json!({
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successsfully",
            "MerchantRequestID": txn.merchant_request_id,
            "CheckoutRequestID": txn.checkout_request_id,
            "ResultCode": o.code.to_string(),
            "ResultDesc": o.desc,
        }))
        .into_response(),
    }
}

async fn register_urls(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.check_bearer(&headers) {
        return *refusal;
    }
    let Some(v) = json_object(&body) else { return invalid_payload() };
    if digits(&v, "ShortCode").as_deref() != Some(sim.config.shortcode.as_str()) {
        return invalid_field("ShortCode");
    }
    let Some(response_type) = text(&v, "ResponseType").filter(|t| t == "Completed" || t == "Cancelled") else {
        return invalid_field("ResponseType");
    };
    let url_ok = |u: &String| well_formed_url(u) && callback_url_problem(u).is_none();
    let Some(confirmation_url) = text(&v, "ConfirmationURL").filter(url_ok) else { return invalid_field("ConfirmationURL") };
    let Some(validation_url) = text(&v, "ValidationURL").filter(url_ok) else { return invalid_field("ValidationURL") };
    sim.lock().c2b = Some(C2bRegistration { response_type, confirmation_url, validation_url });
    Json(json!({"OriginatorCoversationID": request_id(), "ResponseCode": "0", "ResponseDescription": "Success"})).into_response()
}

/// Daraja's sandbox `c2b/v1/simulate`: a customer pays the shortcode.
async fn c2b_simulate(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = sim.check_bearer(&headers) {
        return *refusal;
    }
    let Some(v) = json_object(&body) else { return invalid_payload() };
    if digits(&v, "ShortCode").as_deref() != Some(sim.config.shortcode.as_str()) {
        return invalid_field("ShortCode");
    }
    let trans_type = match text(&v, "CommandID").as_deref() {
        Some("CustomerPayBillOnline") => "Pay Bill",
        Some("CustomerBuyGoodsOnline") => "Buy Goods",
        _ => return invalid_field("CommandID"),
    };
    let Some(amount) = whole_amount(v.get("Amount")).filter(|a| (1..=super::MAX_STK_AMOUNT).contains(a)) else { return invalid_field("Amount") };
    let Some(msisdn) = digits(&v, "Msisdn").filter(|m| is_kenyan_mobile(m)) else { return invalid_field("Msisdn") };
    let bill_ref = text(&v, "BillRefNumber").unwrap_or_default();
    if sim.lock().c2b.is_none() {
        return envelope(StatusCode::INTERNAL_SERVER_ERROR, "500.003.1001", "No URLs registered for this ShortCode");
    }
    let worker = sim.clone();
    sim.runtime.spawn(async move {
        if let Err(e) = worker.c2b_pay(trans_type, &bill_ref, amount, &msisdn).await {
            tracing::info!(reason = %e, "simulated C2B payment did not complete");
        }
    });
    Json(json!({
        "OriginatorCoversationID": request_id(),
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    }))
    .into_response()
}

fn envelope(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"requestId": request_id(), "errorCode": code, "errorMessage": message}))).into_response()
}

fn invalid_field(field: &str) -> Response {
    envelope(StatusCode::BAD_REQUEST, "400.002.02", &format!("Bad Request - Invalid {field}"))
}

fn invalid_payload() -> Response {
    envelope(StatusCode::BAD_REQUEST, "400.002.05", "Invalid Request Payload")
}

fn json_object(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body).ok().filter(Value::is_object)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Digits given as a string or as a JSON integer (Daraja accepts both).
fn digits(v: &Value, key: &str) -> Option<String> {
    let s = match v.get(key)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_u64()?.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// A whole number of shillings, as an integer, a whole float or a digit string.
fn whole_amount(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e12).map(|f| f as i64)),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    }
}

fn is_kenyan_mobile(p: &str) -> bool {
    p.len() == 12 && (p.starts_with("2547") || p.starts_with("2541")) && p.bytes().all(|b| b.is_ascii_digit())
}

fn allowed_reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ' ' || c == '-'
}

fn well_formed_url(u: &str) -> bool {
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

fn mask_phone(p: &str) -> String {
    if p.len() >= 10 {
        format!("{}•••••{}", &p[..4], &p[p.len() - 3..])
    } else {
        "•••".into()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM_UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn random_string(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

fn request_id() -> String {
    format!("{}-{}-1", random_string(b"0123456789", 5), random_string(b"0123456789", 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_fields_are_checked_like_daraja() {
        let ok = json!({
            "BusinessShortCode": 174379, "Password": "x", "Timestamp": "20261204101500", "TransactionType": "CustomerPayBillOnline",
            "Amount": "1", "PartyA": 254708374149u64, "PartyB": "174379", "PhoneNumber": "254708374149",
            "CallBackURL": "https://example.com/cb", "AccountReference": "INV-1042", "TransactionDesc": "Invoice 1042"
        });
        assert!(validate_push(&ok).is_ok());
        let with = |k: &str, v: Value| {
            let mut b = ok.clone();
            b[k] = v;
            validate_push(&b).err()
        };
        assert_eq!(with("Amount", json!(0)), Some("Amount"));
        assert_eq!(with("Amount", json!(250_001)), Some("Amount"));
        assert_eq!(with("Amount", json!(10.5)), Some("Amount"));
        assert_eq!(with("Amount", json!(10.0)), None);
        assert_eq!(with("PartyA", json!("0708374149")), Some("PartyA"));
        assert_eq!(with("PhoneNumber", json!("254708374148")), Some("PhoneNumber"));
        assert_eq!(with("AccountReference", json!("INV-1042-ABCD")), Some("AccountReference"));
        assert_eq!(with("AccountReference", json!("INV#1042")), Some("AccountReference"));
        assert_eq!(with("TransactionDesc", json!("Invoice 1042 B")), Some("TransactionDesc"));
        assert_eq!(with("TransactionType", json!("paybill")), Some("TransactionType"));
        assert_eq!(with("CallBackURL", json!("example.com/cb")), Some("CallBackURL"));
        assert_eq!(with("Timestamp", json!("2026-12-04 10:15")), Some("Timestamp"));
        let mut no_desc = ok.clone();
        no_desc.as_object_mut().unwrap().remove("TransactionDesc");
        assert!(validate_push(&no_desc).is_ok());
    }

    #[test]
    fn every_result_code_has_a_description_and_answers_map_to_codes() {
        for code in RESULT_CODES {
            assert_ne!(result_desc(code), "Simulated result.", "{code}");
        }
        let codes: Vec<i64> = [Answer::EnterPin, Answer::WrongPin, Answer::InsufficientBalance, Answer::Cancel, Answer::NoAnswer]
            .iter()
            .map(|a| a.result_code())
            .collect();
        assert_eq!(codes, [0, 2001, 1, 1032, 1037]);
    }
}
