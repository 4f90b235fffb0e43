//! The webhook routes: `GET /webhooks/whatsapp` (verification handshake) and `POST` (events).
//! A POST is verified over its raw bytes, parsed, and every event stored (deduplicated) before the
//! 200; processing happens afterwards (`inbox`), woken through `wake`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Notify;

use super::inbox::{StoredEvent, SOURCE};
use super::webhook::{parse_webhook_raw, verify_handshake, verify_signature, ParseError};
use crate::clock::SharedClock;
use crate::secrets::{SecretName, SecretStore};
use crate::store::{ts, Store, StoreError};

/// Meta batches at most 3 MB in one POST.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

#[derive(Clone)]
pub struct WhatsappState {
    pub store: Store,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: SharedClock,
    /// Woken after events are stored: the inbox processor waits on it.
    pub wake: Arc<Notify>,
}

pub fn router(state: WhatsappState) -> Router {
    Router::new()
        .route("/webhooks/whatsapp", get(handshake).post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn secret(state: &WhatsappState, name: SecretName) -> Option<String> {
    let secrets = state.secrets.clone();
    match tokio::task::spawn_blocking(move || secrets.get(name)).await {
        Ok(Ok(Some(s))) => Some(s.expose().to_string()),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read a WhatsApp secret");
            None
        }
        Err(_) => None,
    }
}

async fn handshake(State(state): State<WhatsappState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(expected) = secret(&state, SecretName::WhatsappVerifyToken).await else {
        tracing::warn!("WhatsApp webhook verification refused: no verify token is saved");
        return StatusCode::FORBIDDEN.into_response();
    };
    match verify_handshake(q.get("hub.mode").map(String::as_str), q.get("hub.verify_token").map(String::as_str), q.get("hub.challenge").map(String::as_str), &expected) {
        Some(challenge) => (StatusCode::OK, challenge).into_response(),
        None => StatusCode::FORBIDDEN.into_response(),
    }
}

async fn receive(State(state): State<WhatsappState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(app_secret) = secret(&state, SecretName::WhatsappAppSecret).await else {
        // Not 200: Meta keeps the event and retries once the merchant saves the app secret.
        tracing::error!("WhatsApp webhook refused: no app secret is saved to verify it");
        return (StatusCode::SERVICE_UNAVAILABLE, "app secret not configured").into_response();
    };
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !verify_signature(app_secret.as_bytes(), &body, header) {
        tracing::warn!(present = header.is_some(), "WhatsApp webhook with a missing or wrong signature refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match store_webhook(&state, &body).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(IngestError::Parse(e)) => {
            tracing::warn!(error = %e, "signed WhatsApp webhook could not be parsed");
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(IngestError::Store(e)) => {
            // Not stored, so not acknowledged: Meta retries.
            tracing::error!(error = %e, "could not store a WhatsApp webhook");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Parses a verified webhook body and stores each of its events once (deduplicated on the message or
/// status id), then wakes the inbox. Returns how many events were new. The route calls this after
/// checking the signature; the `malipo relay` pull worker calls it for events the relay verified.
pub async fn store_webhook(state: &WhatsappState, body: &[u8]) -> Result<usize, IngestError> {
    let events = parse_webhook_raw(body)?;
    if events.is_empty() {
        return Ok(0);
    }
    let now = ts(state.clock.now());
    let mut rows = Vec::with_capacity(events.len());
    for p in events {
        let (external_id, key) = (p.event.external_id(), p.event.ordering_key().to_string());
        let payload = serde_json::to_string(&StoredEvent { event: p.event, raw: p.raw }).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        rows.push((external_id, key, payload));
    }
    let new = state
        .store
        .write_async(move |tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO inbound_events (source, external_id, ordering_key, payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (source, external_id) DO NOTHING",
            )?;
            let mut new = 0;
            for (external_id, key, payload) in &rows {
                new += stmt.execute((SOURCE, external_id, key, payload, &now))?;
            }
            Ok(new)
        })
        .await?;
    if new > 0 {
        state.wake.notify_one();
    }
    Ok(new)
}
