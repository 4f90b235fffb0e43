//! The desktop's "Inbound" setting in relay mode: a worker that pulls events from `malipo relay`,
//! stores each through the same code as the direct webhook routes (so deduplication on (source,
//! external_id) and processing are identical), and only then acknowledges them; a status the UI
//! reads; and the "Test inbound" round trip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::client::{check_health, RelayClient, RelayError};
use super::keys::{KeyError, RelayKey};
use super::wire::{self, RelayEvent};
use crate::clock::SharedClock;
use crate::config::{InboundConfig, InboundMode};
use crate::payments::webhooks::{ingest_c2b_confirmation, ingest_stk_callback, DarajaWebhooks, IngestError as DarajaIngestError};
use crate::secrets::Secret;
use crate::whatsapp::routes::{store_webhook, IngestError as WhatsappIngestError};
use crate::whatsapp::WhatsappState;

/// How long one pull waits for events on the relay.
const LONG_POLL: Duration = Duration::from_secs(25);
/// How long the self test waits for its event to come back.
const ROUND_TRIP: Duration = Duration::from_secs(10);

/// What the Settings screen shows about inbound events.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InboundStatus {
    pub mode: InboundMode,
    pub relay_url: Option<String>,
    /// The last pull reached the relay and the key was accepted.
    pub connected: bool,
    pub last_contact: Option<DateTime<Utc>>,
    /// Why the last attempt failed, in words for the merchant; None after a success.
    pub last_error: Option<String>,
    /// Events stored from the relay since the app started.
    pub received: u64,
}

/// Where pulled events are stored: the same state the direct webhook routes use.
#[derive(Clone)]
pub struct Sinks {
    pub whatsapp: WhatsappState,
    pub daraja: DarajaWebhooks,
}

/// The inbound setting with, in relay mode, the client and its live status.
#[derive(Clone)]
pub struct Inbound {
    mode: InboundMode,
    relay_url: Option<String>,
    client: Result<RelayClient, KeyError>,
    clock: SharedClock,
    status: Arc<Mutex<InboundStatus>>,
}

impl Inbound {
    pub fn new(config: &InboundConfig, saved_key: Option<Secret>, clock: SharedClock) -> Inbound {
        let relay_url = match config.mode {
            InboundMode::Relay => config.relay_url.clone(),
            InboundMode::Direct => None,
        };
        let client = RelayKey::parse(saved_key).map(|key| RelayClient::new(relay_url.as_deref().unwrap_or_default(), key));
        let last_error = match (&config.mode, &client) {
            (InboundMode::Relay, Err(e)) => Some(e.to_string()),
            _ => None,
        };
        let status = InboundStatus { mode: config.mode, relay_url: relay_url.clone(), connected: false, last_contact: None, last_error, received: 0 };
        Inbound { mode: config.mode, relay_url, client, clock, status: Arc::new(Mutex::new(status)) }
    }

    pub fn mode(&self) -> InboundMode {
        self.mode
    }

    /// In relay mode, the relay's public URL: where Daraja and Meta are sent.
    pub fn relay_url(&self) -> Option<&str> {
        self.relay_url.as_deref()
    }

    /// In relay mode with a valid key, the Daraja path token derived from it (the relay derives the same).
    pub fn path_token(&self) -> Option<String> {
        match (&self.mode, &self.client) {
            (InboundMode::Relay, Ok(client)) => Some(client.key().path_token()),
            _ => None,
        }
    }

    pub fn status(&self) -> InboundStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut InboundStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn reached(&self) {
        let now = self.clock.now();
        self.update(|s| {
            s.connected = true;
            s.last_contact = Some(now);
            s.last_error = None;
        });
    }

    fn failed(&self, why: &str) {
        self.update(|s| {
            s.connected = false;
            s.last_error = Some(why.to_string());
        });
    }

    /// Pulls, stores and acknowledges events until `stop` resolves. Runs only in relay mode.
    pub async fn run(self, sinks: Sinks, stop: impl std::future::Future<Output = ()> + Send + 'static) {
        let client = match (&self.mode, &self.client) {
            (InboundMode::Relay, Ok(client)) => client.clone(),
            (InboundMode::Relay, Err(e)) => {
                tracing::error!(error = %e, "inbound mode is relay but events cannot be pulled");
                return;
            }
            (InboundMode::Direct, _) => return,
        };
        tracing::info!(relay = %client.base_url(), "pulling inbound events from the relay");
        tokio::pin!(stop);
        let mut failures = 0;
        loop {
            let round = tokio::select! {
                _ = &mut stop => return,
                r = self.pull_once(&client, &sinks) => r,
            };
            match round {
                Ok(_) => failures = 0,
                Err(why) => {
                    failures += 1;
                    let wait = backoff(failures);
                    tracing::warn!(error = %why, retry_in_s = wait.as_secs(), "could not pull inbound events from the relay");
                    self.failed(&why);
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// One long poll: store every event, then acknowledge those stored. Returns how many were stored.
    async fn pull_once(&self, client: &RelayClient, sinks: &Sinks) -> Result<usize, String> {
        let events = client.pull(LONG_POLL, false).await.map_err(|e| e.to_string())?;
        self.reached();
        let mut stored = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in &events {
            match deliver(sinks, event).await {
                Ok(()) => stored.push(event.id),
                Err(Undeliverable::Malformed(why)) => {
                    // Retrying cannot help; acknowledged so it does not hold up the events after it.
                    tracing::error!(source = %event.source, error = %why, "an event from the relay could not be read and was dropped");
                    stored.push(event.id);
                }
                Err(Undeliverable::NotStored(why)) => {
                    failure = Some(format!("an event from the relay could not be stored: {why}"));
                    break;
                }
            }
        }
        let count = stored.len();
        self.update(|s| s.received += count as u64);
        if !stored.is_empty() {
            client.ack(stored).await.map_err(|e| e.to_string())?;
        }
        match failure {
            Some(why) => Err(why),
            None => Ok(count),
        }
    }

    /// The "Test inbound" round trip: reach the relay, key accepted, a test event enqueued, pulled
    /// back and acknowledged. Every step is reported; after a failure the rest are skipped.
    pub async fn self_test(&self) -> InboundTest {
        let mut run = TestRun::default();
        let Some(url) = self.relay_url.as_deref().filter(|_| self.mode == InboundMode::Relay) else {
            return run.fail(Step::ReachRelay, "Inbound is set to direct: set it to relay with the relay's URL and key to test it".into());
        };
        if let Err(e) = check_health(url).await {
            return run.fail(Step::ReachRelay, e.to_string());
        }
        run.pass(Step::ReachRelay);
        let client = match &self.client {
            Ok(client) => client,
            Err(e) => return run.fail(Step::KeyAccepted, e.to_string()),
        };
        // Also clears test events left by an earlier, interrupted test.
        match client.pull(Duration::ZERO, true).await {
            Ok(leftover) => {
                let _ = client.ack(leftover.iter().map(|e| e.id).collect()).await;
            }
            Err(e) => return run.fail(Step::KeyAccepted, e.to_string()),
        }
        run.pass(Step::KeyAccepted);
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        if let Err(e) = client.enqueue_self_test(&nonce).await {
            return run.fail(Step::EventEnqueued, e.to_string());
        }
        run.pass(Step::EventEnqueued);
        let id = match pull_back(client, &nonce).await {
            Ok(id) => id,
            Err(e) => return run.fail(Step::EventPulledBack, e.to_string()),
        };
        run.pass(Step::EventPulledBack);
        match client.ack(vec![id]).await {
            Ok(1) => run.pass(Step::Acked),
            Ok(_) => return run.fail(Step::Acked, "the relay did not record the acknowledgement".into()),
            Err(e) => return run.fail(Step::Acked, e.to_string()),
        }
        self.reached();
        run.finish()
    }
}

/// Waits for the self-test event with `nonce` to come back from the relay; returns its id.
async fn pull_back(client: &RelayClient, nonce: &str) -> Result<i64, RelayError> {
    let deadline = tokio::time::Instant::now() + ROUND_TRIP;
    while tokio::time::Instant::now() < deadline {
        let events = client.pull(Duration::from_secs(2), true).await?;
        if let Some(e) = events.iter().find(|e| e.external_id == nonce) {
            return Ok(e.id);
        }
    }
    Err(RelayError::Timeout)
}

enum Undeliverable {
    /// The event can never be stored (it does not parse): retrying will not help.
    Malformed(String),
    /// Storage failed: leave it unacknowledged and try again.
    NotStored(String),
}

/// Stores one pulled event exactly as its direct webhook route would.
async fn deliver(sinks: &Sinks, event: &RelayEvent) -> Result<(), Undeliverable> {
    let body = Bytes::from(event.body.clone().into_bytes());
    let daraja = |r: Result<(), DarajaIngestError>| match r {
        Ok(()) => Ok(()),
        Err(DarajaIngestError::BadRequest(why)) => Err(Undeliverable::Malformed(why)),
        Err(DarajaIngestError::NotStored(e)) => Err(Undeliverable::NotStored(e.to_string())),
    };
    match event.source.as_str() {
        wire::WHATSAPP => match store_webhook(&sinks.whatsapp, &body).await {
            Ok(_) => Ok(()),
            Err(WhatsappIngestError::Parse(e)) => Err(Undeliverable::Malformed(e.to_string())),
            Err(WhatsappIngestError::Store(e)) => Err(Undeliverable::NotStored(e.to_string())),
        },
        wire::DARAJA_STK => daraja(ingest_stk_callback(&sinks.daraja, body).await),
        wire::DARAJA_C2B => daraja(ingest_c2b_confirmation(&sinks.daraja, body).await),
        other => Err(Undeliverable::Malformed(format!("unknown event source {other:?}"))),
    }
}

/// 1 s, 2 s, 4 s … up to a minute between failed pulls.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// The result of "Test inbound", for the Settings screen.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InboundTest {
    pub ok: bool,
    pub steps: Vec<TestStep>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TestStep {
    pub step: Step,
    pub label: &'static str,
    pub outcome: Outcome,
    /// Why it failed, in plain words.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    ReachRelay,
    KeyAccepted,
    EventEnqueued,
    EventPulledBack,
    Acked,
}

impl Step {
    pub const ALL: [Step; 5] = [Step::ReachRelay, Step::KeyAccepted, Step::EventEnqueued, Step::EventPulledBack, Step::Acked];

    pub fn label(self) -> &'static str {
        match self {
            Step::ReachRelay => "Reach the relay",
            Step::KeyAccepted => "Relay key accepted",
            Step::EventEnqueued => "Test event queued on the relay",
            Step::EventPulledBack => "Test event received back",
            Step::Acked => "Test event acknowledged",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// Collects step results in order; a failure skips the steps after it.
#[derive(Default)]
struct TestRun {
    steps: Vec<TestStep>,
}

impl TestRun {
    fn record(&mut self, step: Step, outcome: Outcome, detail: Option<String>) {
        self.steps.push(TestStep { step, label: step.label(), outcome, detail });
    }

    fn pass(&mut self, step: Step) {
        self.record(step, Outcome::Passed, None);
    }

    fn fail(mut self, step: Step, why: String) -> InboundTest {
        self.record(step, Outcome::Failed, Some(why));
        self.finish()
    }

    fn finish(mut self) -> InboundTest {
        for step in Step::ALL.into_iter().skip(self.steps.len()) {
            self.record(step, Outcome::Skipped, None);
        }
        InboundTest { ok: self.steps.iter().all(|s| s.outcome == Outcome::Passed), steps: self.steps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_failed_step_skips_the_rest_and_says_why() {
        let mut run = TestRun::default();
        run.pass(Step::ReachRelay);
        let result = run.fail(Step::KeyAccepted, RelayError::WrongKey.to_string());
        assert!(!result.ok);
        let outcomes: Vec<_> = result.steps.iter().map(|s| (s.step, s.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                (Step::ReachRelay, Outcome::Passed),
                (Step::KeyAccepted, Outcome::Failed),
                (Step::EventEnqueued, Outcome::Skipped),
                (Step::EventPulledBack, Outcome::Skipped),
                (Step::Acked, Outcome::Skipped)
            ]
        );
        assert!(result.steps[1].detail.as_deref().unwrap().contains("401"));
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["steps"][1]["step"], "key_accepted");
        assert_eq!(json["steps"][1]["outcome"], "failed");
    }

    #[test]
    fn status_starts_with_the_reason_a_relay_cannot_be_used() {
        let config = InboundConfig { mode: InboundMode::Relay, relay_url: Some("https://relay.example.co.ke".into()) };
        let inbound = Inbound::new(&config, None, crate::clock::system());
        let status = inbound.status();
        assert!(!status.connected);
        assert!(status.last_error.unwrap().contains("MALIPO_RELAY_KEY"));
        assert_eq!(inbound.path_token(), None);
        let direct = Inbound::new(&InboundConfig { mode: InboundMode::Direct, relay_url: config.relay_url }, Some(Secret::new("k".repeat(40))), crate::clock::system());
        assert_eq!((direct.relay_url(), direct.path_token(), direct.status().last_error), (None, None, None));
    }
}
