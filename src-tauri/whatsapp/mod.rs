//! The WhatsApp channel: verified webhooks into a durable inbox, a durable outbox sent within
//! WhatsApp's rules (rate limits, the 24-hour window, templates, opt-outs), and a Graph API simulator
//! for simulator mode and tests. Facts: shared/reference/whatsapp-cloud.md.
//!
//! - `webhook`: pure signature, handshake and parsing.
//! - `routes`: `GET|POST /webhooks/whatsapp` — store before 200.
//! - `inbox`: processes stored events in order per customer.
//! - `graph`: the Graph API client, message limits, error-code actions.
//! - `outbox`: durable sends with leases, rate limits, retries, crash safety.
//! - `window`, `templates`, `optout`: the rules.
//! - `simulator`: the loopback Graph API and the customer phone.

pub mod graph;
pub mod inbox;
pub mod optout;
pub mod outbox;
pub mod routes;
pub mod simulator;
pub mod templates;
pub mod webhook;
pub mod window;

use std::sync::Arc;

use tokio::sync::Notify;

pub use graph::{ErrorAction, GraphClient, GraphError, GraphSettings, LimitError, OutboundMessage};
pub use inbox::{InboundHandler, Inbox};
pub use outbox::{enqueue, paused_reason, OutboxWorker, Outgoing, RateLimits, WorkOutcome};
pub use routes::{router, WhatsappState};
pub use webhook::{parse_webhook, verify_handshake, verify_signature, Content, DeliveryStatus, InboundMessage, StatusUpdate, WebhookEvent};

use crate::config::WhatsappConfig;
use crate::secrets::Secret;

pub const GRAPH_BASE_URL: &str = "https://graph.facebook.com";

/// Graph API settings from config: `base_url` when set, else Meta's (or the simulator's, passed in).
pub fn graph_settings(config: &WhatsappConfig, token: Secret, simulator_base_url: Option<&str>) -> GraphSettings {
    let base_url = config.base_url.clone().or_else(|| simulator_base_url.map(str::to_string)).unwrap_or_else(|| GRAPH_BASE_URL.to_string());
    GraphSettings { base_url, api_version: config.api_version.clone(), phone_number_id: config.phone_number_id.clone(), token }
}

/// The inbox processor and outbox worker running in the background.
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Runs `inbox` (woken by `inbox_wake`, the webhook route's `Notify`) and `worker` until `shutdown()`.
pub fn spawn_background(inbox: Inbox, inbox_wake: Arc<Notify>, worker: OutboxWorker) -> Background {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let inbox_task = tokio::spawn(inbox.run(inbox_wake, wait(stopped.clone())));
    let worker_task = tokio::spawn(worker.run(wait(stopped)));
    Background { stop, tasks: vec![inbox_task, worker_task] }
}

impl Background {
    /// Stops both, letting a send in progress finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
