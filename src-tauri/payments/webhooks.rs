//! Daraja's webhooks: the STK callback and C2B validation/confirmation. Callbacks are not signed, so
//! the path carries an unguessable token (compared in constant time); every event is persisted and
//! deduplicated before it is acknowledged, and processed after.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::Payments;
use crate::daraja::callback::{parse_c2b, parse_stk_callback};
use crate::store::{ts, Store};

#[derive(Clone)]
pub struct DarajaWebhooks {
    pub store: Store,
    pub payments: Payments,
    pub token: String,
}

pub fn router(state: DarajaWebhooks) -> Router {
    Router::new()
        .route("/webhooks/daraja/stk/{token}", post(stk_callback))
        .route("/webhooks/daraja/c2b/{token}/validation", post(c2b_validation))
        .route("/webhooks/daraja/c2b/{token}/confirmation", post(c2b_confirmation))
        .with_state(state)
}

/// The path token check, in constant time (`malipo relay` checks its own token the same way).
pub fn token_ok(expected: &str, given: &str) -> bool {
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

pub(crate) fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
}

pub(crate) fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"ResultCode": 1, "ResultDesc": message}))).into_response()
}

/// Stores the raw event once. Returns its row id, or None if it was already stored (a duplicate).
async fn persist(store: &Store, source: &'static str, external_id: String, payload: Bytes, now: chrono::DateTime<chrono::Utc>) -> crate::store::Result<Option<i64>> {
    let body = String::from_utf8_lossy(&payload).into_owned();
    store
        .write_async(move |tx| {
            let n = tx.execute(
                "INSERT INTO inbound_events (source, external_id, payload, received_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source, external_id) DO NOTHING",
                (source, &external_id, body, ts(now)),
            )?;
            Ok((n == 1).then(|| tx.last_insert_rowid()))
        })
        .await
}

async fn mark_processed(store: &Store, id: i64, error: Option<String>, now: chrono::DateTime<chrono::Utc>) {
    let r = store
        .write_async(move |tx| {
            match error {
                None => tx.execute("UPDATE inbound_events SET processed_at = ?1, attempts = attempts + 1, error = NULL WHERE id = ?2", (ts(now), id))?,
                Some(e) => tx.execute("UPDATE inbound_events SET attempts = attempts + 1, error = ?1 WHERE id = ?2", (e, id))?,
            };
            Ok(())
        })
        .await;
    if let Err(e) = r {
        tracing::error!(event = id, error = %e, "could not mark inbound event");
    }
}

/// Why a Daraja event was not taken: its body is malformed (Daraja should not retry), or it could
/// not be stored (Daraja should retry).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    BadRequest(String),
    #[error("could not store the event: {0}")]
    NotStored(#[from] crate::store::StoreError),
}

impl IngestError {
    fn into_response(self) -> Response {
        match self {
            IngestError::BadRequest(message) => bad_request(message),
            IngestError::NotStored(e) => {
                tracing::error!(error = %e, "could not store a Daraja event");
                (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
            }
        }
    }
}

/// Stores the raw event once, then processes it. A duplicate is acknowledged without processing;
/// a processing failure leaves the event stored and unprocessed for `process_pending`.
async fn receive<F: std::future::Future<Output = Result<(), super::PaymentError>>>(
    state: &DarajaWebhooks,
    source: &'static str,
    external_id: String,
    body: Bytes,
    process: impl FnOnce() -> F,
) -> Result<(), IngestError> {
    let now = state.payments.clock().now();
    if let Some(id) = persist(&state.store, source, external_id, body, now).await? {
        let result = process().await.err().map(|e| e.to_string());
        mark_processed(&state.store, id, result, now).await;
    }
    Ok(())
}

/// An STK callback body whose path token was checked: stored once, then processed. The route and the
/// `malipo relay` pull worker both come through here.
pub async fn ingest_stk_callback(state: &DarajaWebhooks, body: Bytes) -> Result<(), IngestError> {
    let cb = parse_stk_callback(&body).map_err(|e| IngestError::BadRequest(e.to_string()))?;
    let checkout = cb.checkout_request_id.clone();
    let payments = state.payments.clone();
    receive(state, "daraja_stk", checkout, body, || payments.on_stk_callback(cb)).await
}

/// A C2B confirmation body whose path token was checked: stored once, then credited.
pub async fn ingest_c2b_confirmation(state: &DarajaWebhooks, body: Bytes) -> Result<(), IngestError> {
    let payment = parse_c2b(&body).map_err(|e| IngestError::BadRequest(e.to_string()))?;
    let trans_id = payment.trans_id.clone();
    let payments = state.payments.clone();
    receive(state, "daraja_c2b", trans_id, body, || async move { payments.on_c2b(payment).await.map(|_| ()) }).await
}

async fn stk_callback(State(state): State<DarajaWebhooks>, Path(token): Path<String>, body: Bytes) -> Response {
    if !token_ok(&state.token, &token) {
        return not_found();
    }
    match ingest_stk_callback(&state, body).await {
        Ok(()) => Json(json!({"ResultCode": 0, "ResultDesc": "Accepted"})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn c2b_validation(State(state): State<DarajaWebhooks>, Path(token): Path<String>, body: Bytes) -> Response {
    if !token_ok(&state.token, &token) {
        return not_found();
    }
    Json(c2b_validation_answer(&body)).into_response()
}

/// Accept every payment: money the merchant cannot match is better queued than refused.
pub fn c2b_validation_answer(body: &[u8]) -> serde_json::Value {
    match parse_c2b(body) {
        Ok(_) => json!({"ResultCode": "0", "ResultDesc": "Accepted"}),
        Err(e) => json!({"ResultCode": "C2B00016", "ResultDesc": format!("Rejected: {e}")}),
    }
}

async fn c2b_confirmation(State(state): State<DarajaWebhooks>, Path(token): Path<String>, body: Bytes) -> Response {
    if !token_ok(&state.token, &token) {
        return not_found();
    }
    match ingest_c2b_confirmation(&state, body).await {
        Ok(()) => Json(json!({"ResultCode": 0, "ResultDesc": "Success"})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Processes Daraja events that were stored but not processed: a crash right after the 200, a
/// failure while processing, or a callback that arrived before its push's answer was recorded.
/// `only` limits it to one external id (a CheckoutRequestID). An event that still cannot be processed
/// after 30 tries stays stored, unprocessed, with its error, for the merchant. Idempotent.
pub async fn process_pending(store: &Store, payments: &Payments, only: Option<String>) -> crate::store::Result<usize> {
    let pending: Vec<(i64, String, String)> = store
        .read_async(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, source, payload FROM inbound_events
                 WHERE processed_at IS NULL AND source IN ('daraja_stk', 'daraja_c2b') AND (?1 IS NULL OR external_id = ?1)
                   AND attempts < 30 ORDER BY id",
            )?;
            let rows = stmt.query_map([only], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await?;
    for (id, source, payload) in &pending {
        let now = payments.clock().now();
        let result = if source == "daraja_stk" {
            match parse_stk_callback(payload.as_bytes()) {
                Ok(cb) => payments.on_stk_callback(cb).await.err().map(|e| e.to_string()),
                Err(e) => Some(e.to_string()),
            }
        } else {
            match parse_c2b(payload.as_bytes()) {
                Ok(p) => payments.on_c2b(p).await.err().map(|e| e.to_string()),
                Err(e) => Some(e.to_string()),
            }
        };
        mark_processed(store, *id, result, now).await;
    }
    Ok(pending.len())
}
