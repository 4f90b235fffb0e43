//! The relay's HTTP side: the same webhook routes as `malipo serve` (verified, stored, then 200) and
//! the pull API the desktop calls with its key. It holds no Daraja or Graph API credentials: only the
//! relay key, the WhatsApp app secret (to verify signatures) and the verify token (for Meta's handshake).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::watch;

use super::keys::RelayKey;
use super::limit::{client_address, RateLimiter};
use super::queue::Queue;
use super::wire::{self, Ack, Acked, PullQuery, Pulled, SelfTest};
use crate::clock::SharedClock;
use crate::daraja::callback::{parse_c2b, parse_stk_callback};
use crate::payments::webhooks::{bad_request, c2b_validation_answer, not_found, token_ok};
use crate::secrets::Secret;
use crate::whatsapp::routes::{MAX_BODY as WHATSAPP_MAX_BODY, SIGNATURE_HEADER};
use crate::whatsapp::{verify_handshake, verify_signature};

/// Daraja's bodies and the pull API's are a few kilobytes.
pub const MAX_SMALL_BODY: usize = 64 * 1024;
/// Acknowledgements in one request.
const MAX_ACK_IDS: usize = 1000;

#[derive(Clone)]
pub struct RelayState {
    pub queue: Queue,
    pub key: RelayKey,
    pub path_token: String,
    pub whatsapp_app_secret: Option<Secret>,
    pub whatsapp_verify_token: Option<Secret>,
    pub limiter: Arc<Mutex<RateLimiter>>,
    pub trust_proxy: bool,
    pub clock: SharedClock,
    /// True once the relay is stopping: long polls end at once.
    pub stopping: watch::Receiver<bool>,
}

pub fn router(state: RelayState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/webhooks/whatsapp", get(handshake).post(whatsapp).layer(DefaultBodyLimit::max(WHATSAPP_MAX_BODY)))
        .route("/webhooks/daraja/stk/{token}", post(stk_callback))
        .route("/webhooks/daraja/c2b/{token}/validation", post(c2b_validation))
        .route("/webhooks/daraja/c2b/{token}/confirmation", post(c2b_confirmation))
        .route(wire::EVENTS_PATH, get(pull))
        .route(wire::ACK_PATH, post(ack))
        .route(wire::TEST_PATH, post(self_test))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state)
}

async fn rate_limit(State(state): State<RelayState>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let source = client_address(peer, forwarded, state.trust_proxy);
    let verdict = state.limiter.lock().unwrap_or_else(|p| p.into_inner()).check(source, Instant::now());
    match verdict {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            tracing::debug!(%source, "rate limited");
            let retry_after = wait.as_secs().max(1).to_string();
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry_after)], "too many requests").into_response()
        }
    }
}

async fn healthz() -> Response {
    Json(json!({"status": "ok", "role": "relay", "version": env!("CARGO_PKG_VERSION")})).into_response()
}

/// Stores the events, then answers `ok`; a storage failure is a 503 so the sender retries.
async fn store_then(state: &RelayState, source: &'static str, events: Vec<(String, String)>, ok: Response) -> Response {
    match state.queue.push(source, events, state.clock.now()).await {
        Ok(_) => ok,
        Err(e) => {
            tracing::error!(source, error = %e, "could not store a webhook; the sender will retry");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}

async fn handshake(State(state): State<RelayState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(expected) = &state.whatsapp_verify_token else {
        tracing::warn!("WhatsApp webhook verification refused: MALIPO_WHATSAPP_VERIFY_TOKEN is not set on the relay");
        return StatusCode::FORBIDDEN.into_response();
    };
    let param = |k: &str| q.get(k).map(String::as_str);
    match verify_handshake(param("hub.mode"), param("hub.verify_token"), param("hub.challenge"), expected.expose()) {
        Some(challenge) => (StatusCode::OK, challenge).into_response(),
        None => StatusCode::FORBIDDEN.into_response(),
    }
}

async fn whatsapp(State(state): State<RelayState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(app_secret) = &state.whatsapp_app_secret else {
        // Not 200: Meta keeps the event and retries once the secret is set.
        tracing::error!("WhatsApp webhook refused: MALIPO_WHATSAPP_APP_SECRET is not set on the relay");
        return (StatusCode::SERVICE_UNAVAILABLE, "app secret not configured").into_response();
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !verify_signature(app_secret.expose().as_bytes(), &body, signature) {
        tracing::warn!(present = signature.is_some(), "WhatsApp webhook with a missing or wrong signature refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let events = match wire::split_whatsapp(&body) {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "signed WhatsApp webhook could not be parsed");
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    let rows = events.into_iter().map(|e| (e.external_id, e.body)).collect();
    store_then(&state, wire::WHATSAPP, rows, StatusCode::OK.into_response()).await
}

async fn stk_callback(State(state): State<RelayState>, Path(token): Path<String>, body: Bytes) -> Response {
    if !token_ok(&state.path_token, &token) {
        return not_found();
    }
    let checkout = match parse_stk_callback(&body) {
        Ok(cb) => cb.checkout_request_id,
        Err(e) => return bad_request(e.to_string()),
    };
    let row = vec![(checkout, String::from_utf8_lossy(&body).into_owned())];
    store_then(&state, wire::DARAJA_STK, row, Json(json!({"ResultCode": 0, "ResultDesc": "Accepted"})).into_response()).await
}

/// Accepted at once, as `serve` does: there is nothing to hold, and Daraja waits only seconds.
async fn c2b_validation(State(state): State<RelayState>, Path(token): Path<String>, body: Bytes) -> Response {
    if !token_ok(&state.path_token, &token) {
        return not_found();
    }
    Json(c2b_validation_answer(&body)).into_response()
}

async fn c2b_confirmation(State(state): State<RelayState>, Path(token): Path<String>, body: Bytes) -> Response {
    if !token_ok(&state.path_token, &token) {
        return not_found();
    }
    let trans_id = match parse_c2b(&body) {
        Ok(p) => p.trans_id,
        Err(e) => return bad_request(e.to_string()),
    };
    let row = vec![(trans_id, String::from_utf8_lossy(&body).into_owned())];
    store_then(&state, wire::DARAJA_C2B, row, Json(json!({"ResultCode": 0, "ResultDesc": "Success"})).into_response()).await
}

/// 401 and nothing else for a missing or wrong key (checked before the body is even read).
fn refuse_without_key(state: &RelayState, headers: &HeaderMap) -> Option<Response> {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if state.key.authorizes(given) {
        return None;
    }
    tracing::warn!(present = given.is_some(), "pull API call with a missing or wrong relay key refused");
    Some((StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(json!({"error": "unauthorized"}))).into_response())
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "relay database error");
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "storage"}))).into_response()
}

/// Long poll: answers as soon as events wait, or after `wait` seconds with none.
async fn pull(State(state): State<RelayState>, headers: HeaderMap, Query(q): Query<PullQuery>) -> Response {
    if let Some(refused) = refuse_without_key(&state, &headers) {
        return refused;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.min(wire::MAX_WAIT_SECONDS));
    let mut changed = state.queue.subscribe();
    let mut stopping = state.stopping.clone();
    loop {
        changed.borrow_and_update();
        match state.queue.waiting(q.test, wire::MAX_BATCH).await {
            Ok(events) if !events.is_empty() => return Json(Pulled { events }).into_response(),
            Ok(_) => {}
            Err(e) => return internal(e),
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { break },
            _ = tokio::time::sleep_until(deadline) => break,
            _ = stopping.wait_for(|s| *s) => break,
        }
    }
    Json(Pulled::default()).into_response()
}

async fn ack(State(state): State<RelayState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_without_key(&state, &headers) {
        return refused;
    }
    let ids = match serde_json::from_slice::<Ack>(&body) {
        Ok(Ack { ids }) if ids.len() <= MAX_ACK_IDS => ids,
        Ok(_) => return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("at most {MAX_ACK_IDS} ids at once")}))).into_response(),
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
    };
    match state.queue.ack(ids, state.clock.now()).await {
        Ok(acked) => Json(Acked { acked }).into_response(),
        Err(e) => internal(e),
    }
}

/// Enqueues a self-test event for the desktop's "Test inbound" round trip.
async fn self_test(State(state): State<RelayState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_without_key(&state, &headers) {
        return refused;
    }
    let nonce = match serde_json::from_slice::<SelfTest>(&body) {
        Ok(t) if (1..=64).contains(&t.nonce.len()) && t.nonce.chars().all(|c| c.is_ascii_alphanumeric()) => t.nonce,
        _ => return (StatusCode::BAD_REQUEST, Json(json!({"error": "nonce: 1 to 64 letters or digits"}))).into_response(),
    };
    store_then(&state, wire::SELF_TEST, vec![(nonce, "{}".to_string())], Json(json!({"queued": true})).into_response()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve(per_minute: u32) -> (String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let key = RelayKey::parse(Some(Secret::new("k".repeat(32)))).unwrap();
        let state = RelayState {
            queue: Queue::open(&dir.path().join("relay.db"), &key).unwrap(),
            path_token: key.path_token(),
            key,
            whatsapp_app_secret: Some(Secret::new("secret")),
            whatsapp_verify_token: None,
            limiter: Arc::new(Mutex::new(RateLimiter::new(per_minute))),
            trust_proxy: false,
            clock: crate::clock::system(),
            stopping: watch::channel(false).1,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>()).await });
        (url, dir)
    }

    #[tokio::test]
    async fn bodies_are_limited_per_route() {
        let (url, _dir) = serve(600).await;
        let http = reqwest::Client::new();
        let big = vec![b' '; 100 * 1024];
        let r = http.post(format!("{url}/webhooks/daraja/stk/{}", "0".repeat(32))).body(big.clone()).send().await.unwrap();
        assert_eq!(r.status(), 413, "Daraja bodies are small");
        let r = http.post(format!("{url}/webhooks/whatsapp")).body(big).send().await.unwrap();
        assert_eq!(r.status(), 401, "WhatsApp batches up to 3 MB get as far as the signature check");
        let r = http.post(format!("{url}/webhooks/whatsapp")).body(vec![b' '; WHATSAPP_MAX_BODY + 1]).send().await.unwrap();
        assert_eq!(r.status(), 413);
        let r = http.get(format!("{url}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1")).send().await.unwrap();
        assert_eq!(r.status(), 403, "no verify token set: Meta's handshake is refused");
    }

    #[tokio::test]
    async fn a_source_over_its_rate_gets_429_with_retry_after() {
        let (url, _dir) = serve(3).await;
        let http = reqwest::Client::new();
        for _ in 0..3 {
            assert_eq!(http.get(format!("{url}/healthz")).send().await.unwrap().status(), 200);
        }
        let r = http.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert!(r.headers().get("retry-after").is_some());
    }
}
