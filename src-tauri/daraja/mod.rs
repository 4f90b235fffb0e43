//! Safaricom Daraja (M-Pesa Kenya): OAuth, STK push, STK query and C2B URL registration.
//!
//! The client follows `shared/reference/daraja.md` to the letter: the token is cached and refreshed
//! early by the injected clock with one refresh in flight, a stale token is refreshed and the call
//! retried once, the Timestamp is read from the clock once per request and used for both Timestamp
//! and Password, and every error envelope is mapped to a typed [`DarajaError`] by code *and* message.
//!
//! Nothing here logs a secret, a password, a token, a request body or a full phone number.

pub mod callback;
pub mod simulator;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Value};

use crate::clock::SharedClock;
use crate::config::TransactionType;
use crate::domain::{Kes, Msisdn};
use crate::secrets::Secret;

/// Daraja's limit on `AccountReference`.
pub const ACCOUNT_REFERENCE_MAX: usize = 12;
/// Daraja's limit on `TransactionDesc`.
pub const TRANSACTION_DESC_MAX: usize = 13;
/// Daraja's ceiling for one STK push, in shillings.
pub const MAX_STK_AMOUNT: i64 = 250_000;
/// How long before its expiry a cached token is replaced.
pub const TOKEN_REFRESH_MARGIN_SECS: i64 = 60;

const PATH_TOKEN: &str = "/oauth/v1/generate?grant_type=client_credentials";
const PATH_STK_PUSH: &str = "/mpesa/stkpush/v1/processrequest";
const PATH_STK_QUERY: &str = "/mpesa/stkpushquery/v1/query";
const PATH_C2B_REGISTER: &str = "/mpesa/c2b/v1/registerurl";

#[derive(Clone, Debug)]
pub struct Credentials {
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
    pub passkey: Secret,
}

#[derive(Clone, Debug)]
pub struct DarajaSettings {
    /// `https://sandbox.safaricom.co.ke`, `https://api.safaricom.co.ke` or a loopback simulator.
    pub base_url: String,
    /// The paybill number, or for a till the store (head office) number.
    pub shortcode: String,
    pub transaction_type: TransactionType,
    /// The till number for Buy Goods; ignored for a paybill (PartyB is then the shortcode).
    pub party_b: String,
    pub credentials: Credentials,
}

/// What the client asks M-Pesa to charge.
#[derive(Clone, Debug)]
pub struct StkPushRequest {
    pub amount: Kes,
    pub phone: Msisdn,
    /// Where Daraja POSTs the result. Public, HTTPS in production, with an unguessable token in the path.
    pub callback_url: String,
    /// Shown to the customer on the prompt; sanitised to ≤ 12 letters, digits, spaces and dashes.
    pub account_reference: String,
    /// Sanitised to ≤ 13 characters; "Payment" when nothing is left.
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StkPushAccepted {
    pub merchant_request_id: String,
    pub checkout_request_id: String,
    pub customer_message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StkQueryAnswer {
    /// `500.001.1001` "The transaction is being processed": not a failure, ask again later.
    Processing,
    /// The prompt is over: `result_code` 0 is paid, anything else is the reason it was not.
    Final { result_code: i64, result_desc: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DarajaError {
    /// No answer in time: the push may have reached the customer.
    #[error("Daraja did not answer in time")]
    Timeout,
    /// The connection failed after the request left: it may have arrived.
    #[error("the connection to Daraja failed: {0}")]
    Transport(String),
    /// The request never left this machine (no connection could be made, or no access token could
    /// be obtained): nobody was prompted and it is safe to try again later.
    #[error("Daraja could not be reached: {0}")]
    Unreachable(String),
    /// `500.001.1001` "Unable to lock subscriber": the customer already has a prompt open. Wait ≥ 1 minute.
    #[error("the customer already has an M-Pesa prompt open: {message}")]
    SubscriberLocked { message: String },
    /// Consumer key/secret refused, or shortcode/passkey/timestamp do not match.
    #[error("Daraja refused the credentials ({code}): {message}")]
    WrongCredentials { code: String, message: String },
    /// `404.001.03` even after one refresh-and-retry.
    #[error("Daraja refused the access token even after a refresh")]
    InvalidAccessToken,
    /// The request was refused; nobody was prompted.
    #[error("Daraja refused the request ({code}): {message}")]
    BadRequest { code: String, message: String },
    /// `500.003.02` spike arrest or `500.003.03` quota.
    #[error("Daraja is rate limiting this account ({code}): {message}")]
    RateLimited { code: String, message: String },
    /// Any other server error: the outcome is unknown.
    #[error("Daraja server error (HTTP {status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Server { status: u16, code: Option<String>, message: String },
    /// An answer that could not be understood.
    #[error("unexpected answer from Daraja: {0}")]
    Unexpected(String),
}

impl DarajaError {
    /// True when an STK push may have reached the customer although it did not succeed: NEVER
    /// re-send blindly — query (or wait for the callback) first.
    pub fn push_outcome_unknown(&self) -> bool {
        matches!(self, DarajaError::Timeout | DarajaError::Transport(_) | DarajaError::Server { .. } | DarajaError::Unexpected(_))
    }

    /// A stable snake_case code for the UI and the store.
    pub fn code(&self) -> &'static str {
        match self {
            DarajaError::Timeout => "timeout",
            DarajaError::Transport(_) => "transport",
            DarajaError::Unreachable(_) => "unreachable",
            DarajaError::SubscriberLocked { .. } => "subscriber_locked",
            DarajaError::WrongCredentials { .. } => "wrong_credentials",
            DarajaError::InvalidAccessToken => "invalid_access_token",
            DarajaError::BadRequest { .. } => "bad_request",
            DarajaError::RateLimited { .. } => "rate_limited",
            DarajaError::Server { .. } => "server_error",
            DarajaError::Unexpected(_) => "unexpected_answer",
        }
    }

    /// How long to wait before trying again, where the reference says so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DarajaError::SubscriberLocked { .. } => Some(Duration::from_secs(60)),
            DarajaError::RateLimited { .. } => Some(Duration::from_secs(30)),
            _ => None,
        }
    }
}

/// `YYYYMMDDHHmmss` in Africa/Nairobi, as Daraja's `Timestamp` wants it.
pub fn nairobi_timestamp(now: DateTime<Utc>) -> String {
    now.with_timezone(&chrono_tz::Africa::Nairobi).format("%Y%m%d%H%M%S").to_string()
}

/// The inverse of [`nairobi_timestamp`]; also reads callback `TransactionDate`s and C2B `TransTime`s.
pub fn parse_nairobi_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok()?;
    chrono_tz::Africa::Nairobi.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

/// `base64(shortcode + passkey + timestamp)`.
pub fn stk_password(shortcode: &str, passkey: &str, timestamp: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{shortcode}{passkey}{timestamp}"))
}

/// Keeps ASCII letters, digits, spaces and dashes (other characters make pushes fail), collapses
/// runs of spaces, trims, and cuts to `max_chars`.
pub fn sanitize_reference(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars));
    for c in s.chars() {
        let c = match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' => c,
            c if c.is_whitespace() => ' ',
            _ => continue,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let cut: String = out.trim_end().chars().take(max_chars).collect();
    cut.trim_end().to_string()
}

/// Why Daraja would refuse or never call this URL (the reference's callback URL rules), if it would.
pub fn callback_url_problem(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    match rest {
        None => return Some("must start with http:// or https://".into()),
        Some(r) if r.is_empty() || r.starts_with('/') => return Some("has no host".into()),
        Some(_) => {}
    }
    const FORBIDDEN: [&str; 7] = ["m-pesa", "mpesa", "safaricom", "exe", "cmd", "sql", "query"];
    FORBIDDEN.iter().find(|w| lower.contains(*w)).map(|w| format!("contains the word {w:?}, which Daraja blocks"))
}

/// The OAuth answer. `expires_in` arrives as a string in practice and as a number in the docs.
#[derive(Debug)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub expires_in_secs: i64,
}

/// Parses `{"access_token": "...", "expires_in": "3599" | 3599}`. Never echoes the body.
pub fn parse_token_grant(body: &[u8]) -> Result<TokenGrant, DarajaError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| DarajaError::Unexpected("the token answer is not JSON".into()))?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DarajaError::Unexpected("the token answer has no access_token".into()))?;
    let expires_in = match v.get("expires_in") {
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
    .filter(|s| *s > 0)
    .ok_or_else(|| DarajaError::Unexpected("the token answer has no usable expires_in".into()))?;
    Ok(TokenGrant { access_token: Secret::new(token), expires_in_secs: expires_in })
}

/// Maps a non-success answer to a typed error: by `errorCode` and `errorMessage` of the envelope
/// `{requestId, errorCode, errorMessage}`, by an API gateway `fault`, else by HTTP status.
pub fn error_from_answer(status: u16, body: &[u8]) -> DarajaError {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| v.as_ref().and_then(|v| v.get(key)).and_then(value_text);
    if let Some(code) = text("errorCode") {
        let message = text("errorMessage").unwrap_or_default();
        return error_from_code(status, code, message);
    }
    if let Some(fault) = v.as_ref().and_then(|v| v.get("fault")) {
        let message = fault.get("faultstring").and_then(value_text).unwrap_or_default();
        let code = fault.pointer("/detail/errorcode").and_then(value_text).unwrap_or_else(|| "fault".into());
        let lower = format!("{code} {message}").to_ascii_lowercase();
        if lower.contains("spike") || lower.contains("ratelimit") || lower.contains("rate limit") || lower.contains("quota") {
            return DarajaError::RateLimited { code, message };
        }
        if lower.contains("access token") || lower.contains("invalidaccesstoken") {
            return DarajaError::InvalidAccessToken;
        }
        return generic_status_error(status, Some(code), message);
    }
    let message = if body.is_empty() { "empty answer".to_string() } else { format!("{} bytes that are not a Daraja error envelope", body.len()) };
    generic_status_error(status, None, message)
}

fn error_from_code(status: u16, code: String, message: String) -> DarajaError {
    let lower = message.to_ascii_lowercase();
    if code == "404.001.03" || lower.contains("invalid access token") {
        return DarajaError::InvalidAccessToken;
    }
    if code == "400.008.01" || code == "400.008.02" {
        return DarajaError::WrongCredentials { code, message };
    }
    if code == "500.003.02" || code == "500.003.03" || lower.contains("spike arrest") || lower.contains("quota") {
        return DarajaError::RateLimited { code, message };
    }
    if code == "500.001.1001" {
        if lower.contains("lock subscriber") || lower.contains("already in process") {
            return DarajaError::SubscriberLocked { message };
        }
        if lower.contains("credentials") || lower.contains("merchant does not exist") {
            return DarajaError::WrongCredentials { code, message };
        }
        // "being processed" is an answer for STK Query (handled there); anywhere else it is unknown.
        return DarajaError::Server { status: status.max(500), code: Some(code), message };
    }
    if code.starts_with('4') {
        return DarajaError::BadRequest { code, message };
    }
    generic_status_error(status, Some(code), message)
}

fn generic_status_error(status: u16, code: Option<String>, message: String) -> DarajaError {
    match status {
        401 | 403 => DarajaError::WrongCredentials { code: code.unwrap_or_else(|| format!("HTTP {status}")), message },
        429 => DarajaError::RateLimited { code: code.unwrap_or_else(|| "HTTP 429".into()), message },
        400..=499 => DarajaError::BadRequest { code: code.unwrap_or_else(|| format!("HTTP {status}")), message },
        500..=599 => DarajaError::Server { status, code, message },
        _ => DarajaError::Unexpected(format!("HTTP {status}: {message}")),
    }
}

/// A JSON string, or a number written as text (Daraja mixes the two).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_being_processed(status: u16, body: &[u8]) -> bool {
    if status == 200 {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return false };
    let code = v.get("errorCode").and_then(value_text).unwrap_or_default();
    let message = v.get("errorMessage").and_then(value_text).unwrap_or_default().to_ascii_lowercase();
    code == "500.001.1001" && message.contains("being processed")
}

fn transport_error(e: reqwest::Error) -> DarajaError {
    // A connect error (refused, DNS, TLS, connect timeout) means the request never left.
    if e.is_connect() {
        DarajaError::Unreachable(describe(&e))
    } else if e.is_timeout() {
        DarajaError::Timeout
    } else {
        DarajaError::Transport(describe(&e))
    }
}

/// A reqwest error without its URL (a callback or base URL may carry a path token).
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

struct CachedToken {
    value: Secret,
    refresh_at: DateTime<Utc>,
}

struct Inner {
    settings: DarajaSettings,
    base_url: String,
    clock: SharedClock,
    http: reqwest::Client,
    /// One refresh in flight at a time: callers queue on this lock while a refresh runs.
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

/// A Daraja client. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct DarajaClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DarajaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DarajaClient").field("base_url", &self.inner.base_url).field("shortcode", &self.inner.settings.shortcode).finish()
    }
}

impl DarajaClient {
    /// Connect timeout 5 s, total 30 s per request.
    pub fn new(settings: DarajaSettings, clock: SharedClock) -> Self {
        Self::build(settings, clock, Duration::from_secs(5), Duration::from_secs(30))
    }

    /// The same client with other timeouts (and a fresh token cache).
    pub fn with_timeouts(self, connect: Duration, total: Duration) -> Self {
        Self::build(self.inner.settings.clone(), self.inner.clock.clone(), connect, total)
    }

    fn build(settings: DarajaSettings, clock: SharedClock, connect: Duration, total: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(total)
            .user_agent(concat!("malipo/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        let base_url = settings.base_url.trim_end_matches('/').to_string();
        DarajaClient { inner: Arc::new(Inner { settings, base_url, clock, http, token: tokio::sync::Mutex::new(None) }) }
    }

    pub fn settings(&self) -> &DarajaSettings {
        &self.inner.settings
    }

    /// BusinessShortCode and PartyB for the configured TransactionType.
    pub fn pairing(&self) -> (&str, &str) {
        let s = &self.inner.settings;
        match s.transaction_type {
            TransactionType::CustomerPayBillOnline => (&s.shortcode, &s.shortcode),
            TransactionType::CustomerBuyGoodsOnline => (&s.shortcode, &s.party_b),
        }
    }

    /// Asks M-Pesa to prompt `req.phone` for `req.amount`. On an error whose
    /// [`DarajaError::push_outcome_unknown`] is true the customer may have been prompted anyway.
    pub async fn stk_push(&self, req: &StkPushRequest) -> Result<StkPushAccepted, DarajaError> {
        let amount = req.amount.shillings();
        if !(1..=MAX_STK_AMOUNT).contains(&amount) {
            return Err(local_refusal("Amount", format!("{} is outside KES 1 to KES 250,000", req.amount)));
        }
        let phone = req.phone.as_str();
        if !(phone.len() == 12 && (phone.starts_with("2547") || phone.starts_with("2541"))) {
            return Err(local_refusal("PhoneNumber", format!("{} is not a Kenyan M-Pesa number", req.phone)));
        }
        let account_reference = sanitize_reference(&req.account_reference, ACCOUNT_REFERENCE_MAX);
        if account_reference.is_empty() {
            return Err(local_refusal("AccountReference", "is empty once characters M-Pesa refuses are removed".into()));
        }
        let mut description = sanitize_reference(&req.description, TRANSACTION_DESC_MAX);
        if description.is_empty() {
            description = "Payment".into();
        }
        if let Some(problem) = callback_url_problem(&req.callback_url) {
            tracing::warn!(problem = %problem, "the STK callback URL may be refused or never called; relying on STK Query");
        }
        let s = &self.inner.settings;
        let (business_short_code, party_b) = self.pairing();
        // Read the clock once: Timestamp and Password must agree.
        let timestamp = nairobi_timestamp(self.inner.clock.now());
        let password = stk_password(&s.shortcode, s.credentials.passkey.expose(), &timestamp);
        let body = json!({
            "BusinessShortCode": business_short_code,
            "Password": password,
            "Timestamp": timestamp,
            "TransactionType": s.transaction_type.to_string(),
            "Amount": amount,
            "PartyA": phone,
            "PartyB": party_b,
            "PhoneNumber": phone,
            "CallBackURL": req.callback_url,
            "AccountReference": account_reference,
            "TransactionDesc": description,
        });
        let result = self.post(PATH_STK_PUSH, &body).await.and_then(|(status, bytes)| {
            if status != 200 {
                return Err(error_from_answer(status, &bytes));
            }
            parse_push_answer(&bytes)
        });
        match &result {
            Ok(a) => tracing::info!(checkout_request_id = %a.checkout_request_id, phone = %req.phone, amount, "STK push accepted"),
            Err(e) => tracing::warn!(code = e.code(), outcome_unknown = e.push_outcome_unknown(), phone = %req.phone, amount, error = %e, "STK push failed"),
        }
        result
    }

    /// Where the prompt stands. `Processing` and errors are not failures: ask again later.
    pub async fn stk_query(&self, checkout_request_id: &str) -> Result<StkQueryAnswer, DarajaError> {
        let s = &self.inner.settings;
        let timestamp = nairobi_timestamp(self.inner.clock.now());
        let password = stk_password(&s.shortcode, s.credentials.passkey.expose(), &timestamp);
        let body = json!({
            "BusinessShortCode": s.shortcode,
            "Password": password,
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        });
        let (status, bytes) = self.post(PATH_STK_QUERY, &body).await?;
        if is_being_processed(status, &bytes) {
            tracing::debug!(checkout_request_id, "STK query: still being processed");
            return Ok(StkQueryAnswer::Processing);
        }
        if status != 200 {
            let e = error_from_answer(status, &bytes);
            tracing::warn!(checkout_request_id, code = e.code(), error = %e, "STK query failed");
            return Err(e);
        }
        let answer = parse_query_answer(&bytes)?;
        tracing::info!(checkout_request_id, answer = ?answer, "STK query answered");
        Ok(answer)
    }

    /// Registers where C2B validations and confirmations go (ResponseType "Completed": if the
    /// validation URL cannot be reached, M-Pesa completes the payment anyway).
    pub async fn register_c2b_urls(&self, confirmation_url: &str, validation_url: &str) -> Result<(), DarajaError> {
        let body = json!({
            "ShortCode": self.inner.settings.shortcode,
            "ResponseType": "Completed",
            "ConfirmationURL": confirmation_url,
            "ValidationURL": validation_url,
        });
        let (status, bytes) = self.post(PATH_C2B_REGISTER, &body).await?;
        if status != 200 {
            let e = error_from_answer(status, &bytes);
            tracing::warn!(code = e.code(), error = %e, "C2B URL registration failed");
            return Err(e);
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| DarajaError::Unexpected("the registration answer is not JSON".into()))?;
        match v.get("ResponseCode").and_then(value_text) {
            Some(c) if c.trim() == "0" => {
                tracing::info!("C2B URLs registered");
                Ok(())
            }
            Some(c) => Err(DarajaError::BadRequest {
                code: format!("ResponseCode {c}"),
                message: v.get("ResponseDescription").and_then(value_text).unwrap_or_default(),
            }),
            None => Err(DarajaError::Unexpected("the registration answer has no ResponseCode".into())),
        }
    }

    /// POSTs `body` with a Bearer token; on `404.001.03` refreshes the token once and retries.
    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Vec<u8>), DarajaError> {
        let url = format!("{}{path}", self.inner.base_url);
        let mut stale: Option<Secret> = None;
        loop {
            let token = self.access_token(stale.as_ref()).await.map_err(token_failure)?;
            let answer = self.inner.http.post(&url).bearer_auth(token.expose()).json(body).send().await.map_err(transport_error)?;
            let status = answer.status().as_u16();
            let bytes = answer.bytes().await.map_err(transport_error)?.to_vec();
            if status != 200 && matches!(error_from_answer(status, &bytes), DarajaError::InvalidAccessToken) {
                if stale.is_none() {
                    tracing::info!("Daraja answered 404.001.03 (stale OAuth grant); refreshing it and retrying once");
                    stale = Some(token);
                    continue;
                }
                return Err(DarajaError::InvalidAccessToken);
            }
            return Ok((status, bytes));
        }
    }

    /// The cached token, or a fresh one. `stale` is a token Daraja just refused: it is replaced
    /// unless another caller already replaced it.
    async fn access_token(&self, stale: Option<&Secret>) -> Result<Secret, DarajaError> {
        let mut cached = self.inner.token.lock().await;
        let now = self.inner.clock.now();
        if let Some(t) = cached.as_ref() {
            if now < t.refresh_at && stale != Some(&t.value) {
                return Ok(t.value.clone());
            }
        }
        let grant = self.fetch_token().await?;
        let margin = TOKEN_REFRESH_MARGIN_SECS.min(grant.expires_in_secs / 2);
        let refresh_at = now + chrono::Duration::seconds(grant.expires_in_secs - margin);
        tracing::debug!(expires_in_secs = grant.expires_in_secs, "obtained a fresh Daraja OAuth grant");
        *cached = Some(CachedToken { value: grant.access_token.clone(), refresh_at });
        Ok(grant.access_token)
    }

    /// Asks for a fresh OAuth grant, bypassing the cache (Settings' "Test connection" uses it).
    pub async fn fetch_token(&self) -> Result<TokenGrant, DarajaError> {
        let c = &self.inner.settings.credentials;
        let answer = self
            .inner
            .http
            .get(format!("{}{PATH_TOKEN}", self.inner.base_url))
            .basic_auth(c.consumer_key.expose(), Some(c.consumer_secret.expose()))
            .send()
            .await
            .map_err(transport_error)?;
        let status = answer.status().as_u16();
        let bytes = answer.bytes().await.map_err(transport_error)?;
        if status == 200 {
            return parse_token_grant(&bytes);
        }
        let e = match error_from_answer(status, &bytes) {
            // Any 4xx from the token endpoint means the key/secret (or grant) was refused. Daraja 3.0
            // also answers `{"resultCode":"999991","resultDesc":"Invalid client id passed"}`.
            DarajaError::BadRequest { code, message } | DarajaError::WrongCredentials { code, message } => {
                let v: Option<Value> = serde_json::from_slice(&bytes).ok();
                let alt = |k: &str| v.as_ref().and_then(|v| v.get(k)).and_then(value_text);
                match (alt("resultCode"), alt("resultDesc")) {
                    (Some(code), Some(message)) => DarajaError::WrongCredentials { code, message },
                    _ => DarajaError::WrongCredentials { code, message },
                }
            }
            other => other,
        };
        tracing::warn!(code = e.code(), error = %e, "could not obtain a Daraja OAuth grant");
        Err(e)
    }
}

/// A failure to get a token means the actual request was never sent.
fn token_failure(e: DarajaError) -> DarajaError {
    match e {
        DarajaError::Timeout => DarajaError::Unreachable("the access token request timed out".into()),
        DarajaError::Transport(m) => DarajaError::Unreachable(format!("the access token request failed: {m}")),
        DarajaError::Server { status, message, .. } => {
            DarajaError::Unreachable(format!("the access token request failed with HTTP {status}: {message}"))
        }
        DarajaError::Unexpected(m) => DarajaError::Unreachable(m),
        other => other,
    }
}

fn local_refusal(field: &str, detail: String) -> DarajaError {
    DarajaError::BadRequest { code: "local".into(), message: format!("Invalid {field}: {detail} (refused before sending)") }
}

fn parse_push_answer(bytes: &[u8]) -> Result<StkPushAccepted, DarajaError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| DarajaError::Unexpected("the STK push answer is not JSON".into()))?;
    if v.get("errorCode").is_some() {
        return Err(error_from_answer(200, bytes));
    }
    let text = |k: &str| v.get(k).and_then(value_text);
    let code = text("ResponseCode").ok_or_else(|| DarajaError::Unexpected("the STK push answer has no ResponseCode".into()))?;
    if code.trim() != "0" {
        return Err(DarajaError::BadRequest { code: format!("ResponseCode {code}"), message: text("ResponseDescription").unwrap_or_default() });
    }
    let checkout_request_id = text("CheckoutRequestID")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| DarajaError::Unexpected("the STK push answer has no CheckoutRequestID".into()))?;
    Ok(StkPushAccepted {
        merchant_request_id: text("MerchantRequestID").unwrap_or_default(),
        checkout_request_id,
        customer_message: text("CustomerMessage").unwrap_or_default(),
    })
}

fn parse_query_answer(bytes: &[u8]) -> Result<StkQueryAnswer, DarajaError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| DarajaError::Unexpected("the STK query answer is not JSON".into()))?;
    if v.get("errorCode").is_some() {
        return Err(error_from_answer(200, bytes));
    }
    let text = |k: &str| v.get(k).and_then(value_text);
    if let Some(code) = text("ResponseCode") {
        if code.trim() != "0" {
            return Err(DarajaError::BadRequest { code: format!("ResponseCode {code}"), message: text("ResponseDescription").unwrap_or_default() });
        }
    }
    let result_code = text("ResultCode")
        .and_then(|c| c.trim().parse::<i64>().ok())
        .ok_or_else(|| DarajaError::Unexpected("the STK query answer has no ResultCode".into()))?;
    Ok(StkQueryAnswer::Final { result_code, result_desc: text("ResultDesc").unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_timestamp_is_nairobi_time() {
        let utc = Utc.with_ymd_and_hms(2019, 12, 19, 7, 21, 15).unwrap();
        assert_eq!(nairobi_timestamp(utc), "20191219102115");
        assert_eq!(parse_nairobi_timestamp("20191219102115"), Some(utc));
        assert_eq!(parse_nairobi_timestamp("2019121910211"), None);
        assert_eq!(parse_nairobi_timestamp("20191332102115"), None);
    }

    #[test]
    fn the_password_matches_darajas_published_example() {
        let pw = stk_password("174379", "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919", "20160216165627");
        assert_eq!(
            pw,
            "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMTYwMjE2MTY1NjI3"
        );
    }

    #[test]
    fn references_keep_only_what_mpesa_accepts() {
        assert_eq!(sanitize_reference("INV-1042", 12), "INV-1042");
        assert_eq!(sanitize_reference("  Inv #1042/B & co.  ", 12), "Inv 1042B co");
        assert_eq!(sanitize_reference("Invoice 1042 for Wanjiku", 12), "Invoice 1042");
        assert_eq!(sanitize_reference("Malipo invoice 7", 13), "Malipo invoic");
        assert_eq!(sanitize_reference("abcdefghijk lmn", 12), "abcdefghijk");
        assert_eq!(sanitize_reference("Malipo\tbill\n", 13), "Malipo bill");
        assert_eq!(sanitize_reference("Café Njeri", 12), "Caf Njeri");
        assert_eq!(sanitize_reference("#!&", 12), "");
    }

    #[test]
    fn the_token_parser_accepts_expires_in_as_string_or_number() {
        let g = parse_token_grant(br#"{"access_token":"abc","expires_in":"3599"}"#).unwrap();
        assert_eq!((g.access_token.expose(), g.expires_in_secs), ("abc", 3599));
        let g = parse_token_grant(br#"{"access_token":"abc","expires_in":3599}"#).unwrap();
        assert_eq!(g.expires_in_secs, 3599);
        assert!(parse_token_grant(br#"{"access_token":"abc"}"#).is_err());
        assert!(parse_token_grant(br#"{"expires_in":"3599"}"#).is_err());
        let e = parse_token_grant(b"<html>secret-ish</html>").unwrap_err().to_string();
        assert!(!e.contains("secret-ish"), "{e}");
    }

    fn envelope(code: &str, message: &str) -> Vec<u8> {
        json!({"requestId": "1-2-3", "errorCode": code, "errorMessage": message}).to_string().into_bytes()
    }

    #[test]
    fn the_envelope_maps_by_code_and_message() {
        let e = |status, code, msg| error_from_answer(status, &envelope(code, msg));
        assert!(matches!(
            e(500, "500.001.1001", "Unable to lock subscriber, a transaction is already in process for the current subscriber"),
            DarajaError::SubscriberLocked { .. }
        ));
        assert!(matches!(e(500, "500.001.1001", "Wrong credentials"), DarajaError::WrongCredentials { .. }));
        assert!(matches!(e(500, "500.001.1001", "The transaction is being processed"), DarajaError::Server { .. }));
        assert!(is_being_processed(500, &envelope("500.001.1001", "The transaction is being processed")));
        assert!(!is_being_processed(500, &envelope("500.001.1001", "Wrong credentials")));
        assert!(matches!(e(400, "400.008.01", "Invalid Authentication passed"), DarajaError::WrongCredentials { .. }));
        assert!(matches!(e(400, "400.008.02", "Invalid grant type passed"), DarajaError::WrongCredentials { .. }));
        assert!(matches!(e(404, "404.001.03", "Invalid Access Token"), DarajaError::InvalidAccessToken));
        match e(400, "400.002.02", "Bad Request - Invalid PhoneNumber") {
            DarajaError::BadRequest { code, message } => assert_eq!((code.as_str(), message.as_str()), ("400.002.02", "Bad Request - Invalid PhoneNumber")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(e(500, "500.003.02", "System is busy. Please try again in few minutes."), DarajaError::RateLimited { .. }));
        assert!(matches!(e(500, "500.003.03", "Quota Violation"), DarajaError::RateLimited { .. }));
        assert!(matches!(e(500, "500.003.1001", "Internal Server Error"), DarajaError::Server { status: 500, .. }));
        assert!(matches!(error_from_answer(502, b""), DarajaError::Server { status: 502, code: None, .. }));
        let spike = br#"{"fault":{"faultstring":"Spike arrest violation. Allowed rate : 5ps","detail":{"errorcode":"policies.ratelimit.SpikeArrestViolation"}}}"#;
        assert!(matches!(error_from_answer(500, spike), DarajaError::RateLimited { .. }));
    }

    #[test]
    fn only_uncertain_errors_forbid_a_blind_resend() {
        let unknown = [
            DarajaError::Timeout,
            DarajaError::Transport("reset".into()),
            DarajaError::Server { status: 500, code: None, message: String::new() },
            DarajaError::Unexpected("?".into()),
        ];
        assert!(unknown.iter().all(DarajaError::push_outcome_unknown));
        let known = [
            DarajaError::Unreachable("refused".into()),
            DarajaError::SubscriberLocked { message: String::new() },
            DarajaError::WrongCredentials { code: String::new(), message: String::new() },
            DarajaError::InvalidAccessToken,
            DarajaError::BadRequest { code: String::new(), message: String::new() },
            DarajaError::RateLimited { code: String::new(), message: String::new() },
        ];
        assert!(!known.iter().any(DarajaError::push_outcome_unknown));
        let codes: std::collections::HashSet<_> = unknown.iter().chain(known.iter()).map(DarajaError::code).collect();
        assert_eq!(codes.len(), 10);
    }

    #[test]
    fn push_and_query_answers_compare_response_code_as_text() {
        let ok = br#"{"MerchantRequestID":"29115-34620561-1","CheckoutRequestID":"ws_CO_191220191020363925","ResponseCode":"0","ResponseDescription":"Success. Request accepted for processing","CustomerMessage":"Success. Request accepted for processing"}"#;
        assert_eq!(parse_push_answer(ok).unwrap().checkout_request_id, "ws_CO_191220191020363925");
        let refused = br#"{"ResponseCode":"1","ResponseDescription":"Rejected"}"#;
        assert!(matches!(parse_push_answer(refused), Err(DarajaError::BadRequest { .. })));
        let q = br#"{"ResponseCode":"0","ResultCode":"1032","ResultDesc":"Request cancelled by user"}"#;
        assert_eq!(parse_query_answer(q).unwrap(), StkQueryAnswer::Final { result_code: 1032, result_desc: "Request cancelled by user".into() });
        let q = br#"{"ResponseCode":"0","ResultCode":0,"ResultDesc":"ok"}"#;
        assert!(matches!(parse_query_answer(q).unwrap(), StkQueryAnswer::Final { result_code: 0, .. }));
    }

    #[test]
    fn callback_urls_with_blocked_words_are_flagged() {
        assert_eq!(callback_url_problem("https://pay.example.com/webhooks/daraja/stk/0f3a9c"), None);
        assert!(callback_url_problem("https://example.com/mpesa/callback").is_some());
        assert!(callback_url_problem("https://example.com/cb?query=1").is_some());
        assert!(callback_url_problem("ftp://example.com/x").is_some());
    }
}
