//! The running engine: storage plus the services and background workers, wired once for every mode
//! (desktop, `serve`, CLI commands that move money). In simulator mode it also starts the built-in
//! Daraja simulator on loopback and points the client at it.

use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use crate::agent::llm::{LlmProposer, LlmSettings};
use crate::agent::{service::pin_redactor, Agent};
use crate::config::{DarajaEnvironment, InboundMode};
use crate::daraja::simulator::{DarajaSimulator, SimulatorConfig, SimulatorHandle};
use crate::daraja::{Credentials, DarajaClient, DarajaSettings};
use crate::engine::Engine;
use crate::payments::webhooks::DarajaWebhooks;
use crate::payments::{Payments, PaymentsConfig};
use crate::secrets::{MemorySecrets, Secret, SecretName, SecretStore};
use crate::store::settings;
use crate::whatsapp::outbox::RateLimits;
use crate::whatsapp::simulator::{GraphSimulator, SimulatorConfig as GraphSimulatorConfig};
use crate::whatsapp::{GraphClient, Inbox, OutboxWorker, WhatsappState};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("M-Pesa (Daraja) credentials are missing for the {environment} environment: save them in Settings or set {names}")]
    MissingSecrets { environment: &'static str, names: String },
    #[error("{0}")]
    Secrets(#[from] crate::secrets::SecretError),
    #[error("the built-in Daraja simulator could not start: {0}")]
    Simulator(std::io::Error),
    #[error("the WhatsApp access token is missing: save it in Settings or set MALIPO_WHATSAPP_TOKEN (or unset whatsapp.base_url to use the built-in simulator)")]
    MissingWhatsappToken,
}

/// The built-in simulators, present in simulator mode.
#[derive(Clone, Default)]
pub struct Simulators {
    pub daraja: Option<SimulatorHandle>,
    pub whatsapp: Option<Arc<GraphSimulator>>,
}

#[derive(Clone)]
pub struct App {
    pub engine: Engine,
    pub payments: Payments,
    pub daraja_webhooks: DarajaWebhooks,
    pub whatsapp: WhatsappState,
    pub agent: Agent,
    pub simulators: Simulators,
    /// How webhooks reach this machine (direct or via `malipo relay`), with the relay status.
    pub inbound: crate::relay::Inbound,
    /// Where Daraja reaches this machine: `public_url`, else in relay mode the relay's URL.
    public_url: Option<String>,
    outbox_wake: Arc<Notify>,
    /// The inbox processor and outbox sender, until `spawn_workers` starts them.
    workers: Arc<Mutex<Option<(Inbox, OutboxWorker)>>>,
    shutdown: watch::Sender<bool>,
}

/// The Daraja callback path token: unguessable, kept in settings so restarts and the relay agree.
const CALLBACK_TOKEN_KEY: &str = "daraja.callback_token";

impl App {
    /// Builds the services. `local_url` is this process's own webhook server (e.g.
    /// `http://127.0.0.1:8787`), used for callbacks when no `public_url` is configured.
    pub async fn start(engine: Engine, local_url: &str) -> Result<App, StartError> {
        let now = engine.clock.now();
        let config = engine.config.clone();
        if config.daraja.environment != DarajaEnvironment::Simulator {
            let closed = engine.store.write_async(move |tx| crate::import::sample::close_for_live(tx, now)).await?;
            if closed > 0 {
                tracing::info!(count = closed, "sample invoices cancelled: Malipo runs with real M-Pesa details now");
            }
        }
        let relay_key = match config.inbound.mode {
            InboundMode::Relay => engine.secrets.get(SecretName::RelayKey)?,
            InboundMode::Direct => None,
        };
        let inbound = crate::relay::Inbound::new(&config.inbound, relay_key, engine.clock.clone());
        // Via the relay, the path token is derived from the relay key, so both sides agree on it.
        let token = match inbound.path_token() {
            Some(derived) => derived,
            None => engine.store.write_async(move |tx| settings::token(tx, CALLBACK_TOKEN_KEY, now)).await?,
        };
        if let Some(why) = inbound.status().last_error {
            tracing::error!(error = %why, "inbound mode is relay, but WhatsApp messages and C2B payments cannot be received");
        }
        let public_url = config.public_url.clone().or_else(|| inbound.relay_url().map(str::to_string));

        let mut simulators = Simulators::default();
        let daraja_settings = match config.daraja.environment {
            DarajaEnvironment::Simulator => {
                let sim_config = SimulatorConfig::sandbox_defaults(engine.clock.clone());
                let settings = DarajaSettings {
                    base_url: String::new(),
                    shortcode: sim_config.shortcode.clone(),
                    transaction_type: config.daraja.transaction_type,
                    party_b: if config.daraja.party_b == config.daraja.shortcode { sim_config.shortcode.clone() } else { config.daraja.party_b.clone() },
                    credentials: Credentials {
                        consumer_key: Secret::new(sim_config.consumer_key.clone()),
                        consumer_secret: Secret::new(sim_config.consumer_secret.clone()),
                        passkey: Secret::new(sim_config.passkey.clone()),
                    },
                };
                let handle = DarajaSimulator::start(sim_config).await.map_err(StartError::Simulator)?;
                let settings = DarajaSettings { base_url: config.daraja.base_url.clone().unwrap_or_else(|| handle.base_url.clone()), ..settings };
                simulators.daraja = Some(handle);
                settings
            }
            env => {
                let credentials = daraja_credentials(&engine, env)?;
                DarajaSettings {
                    base_url: config
                        .daraja
                        .base_url
                        .clone()
                        .or_else(|| env.default_base_url().map(String::from))
                        .expect("sandbox and production have a default host"),
                    shortcode: config.daraja.shortcode.clone(),
                    transaction_type: config.daraja.transaction_type,
                    party_b: config.daraja.party_b.clone(),
                    credentials,
                }
            }
        };
        let daraja = DarajaClient::new(daraja_settings, engine.clock.clone());
        let base = public_url.clone().unwrap_or_else(|| local_url.to_string());
        let payments = Payments::new(
            engine.store.clone(),
            engine.clock.clone(),
            daraja,
            PaymentsConfig {
                callback_url: format!("{}/webhooks/daraja/stk/{token}", base.trim_end_matches('/')),
                confirm_with_query: config.daraja.confirm_with_query,
                max_pushes_per_hour: config.daraja.max_pushes_per_hour,
            },
        );
        let daraja_webhooks = DarajaWebhooks { store: engine.store.clone(), payments: payments.clone(), token };

        // WhatsApp: the built-in Graph API simulator until an access token is saved.
        let saved_token = engine.secrets.get(SecretName::WhatsappToken)?;
        let (graph_token, whatsapp_secrets): (Secret, Arc<dyn SecretStore>) = match (saved_token, &config.whatsapp.base_url) {
            (Some(token), _) => (token, engine.secrets.clone()),
            (None, Some(_)) => return Err(StartError::MissingWhatsappToken),
            (None, None) => {
                let sim_config = GraphSimulatorConfig {
                    phone_number_id: config.whatsapp.phone_number_id.clone(),
                    webhook_url: Some(format!("{}/webhooks/whatsapp", local_url.trim_end_matches('/'))),
                    ..GraphSimulatorConfig::default()
                };
                let secrets = MemorySecrets::default();
                secrets.set(SecretName::WhatsappToken, &Secret::new(sim_config.token.clone()))?;
                secrets.set(SecretName::WhatsappAppSecret, &Secret::new(sim_config.app_secret.clone()))?;
                secrets.set(SecretName::WhatsappVerifyToken, &Secret::new("simulator-verify-token"))?;
                let token = Secret::new(sim_config.token.clone());
                let sim = GraphSimulator::start(sim_config, engine.clock.clone()).await.map_err(StartError::Simulator)?;
                simulators.whatsapp = Some(Arc::new(sim));
                (token, Arc::new(secrets))
            }
        };
        let sim_url = simulators.whatsapp.as_ref().map(|s| s.base_url());
        let graph = GraphClient::new(crate::whatsapp::graph_settings(&config.whatsapp, graph_token, sim_url.as_deref()));
        // WhatsApp lets a business send a short burst to one customer before the 6-second pair rate applies.
        let limits = RateLimits { pair_burst: 3, ..RateLimits::from_config(&config.whatsapp) };
        let worker = OutboxWorker::new(engine.store.clone(), graph.clone(), engine.clock.clone(), limits);
        let outbox_wake = worker.wake();
        let llm = match config.agent.llm_enabled {
            true => Some(LlmProposer::new(LlmSettings::from_config(&config.agent, engine.secrets.get(SecretName::LlmApiKey)?))),
            false => None,
        };
        let agent = Agent::new(engine.store.clone(), engine.clock.clone(), payments.clone(), config.clone(), outbox_wake.clone(), llm);
        let inbox = Inbox::new(engine.store.clone(), graph, engine.clock.clone())
            .with_handler(Arc::new(agent.clone()))
            .with_redactor(pin_redactor())
            .with_outbox_wake(outbox_wake.clone())
            .with_merchant_name(config.merchant_name.clone());
        let whatsapp = WhatsappState { store: engine.store.clone(), secrets: whatsapp_secrets, clock: engine.clock.clone(), wake: Arc::new(Notify::new()) };

        let (shutdown, _) = watch::channel(false);
        Ok(App {
            engine,
            payments,
            daraja_webhooks,
            whatsapp,
            agent,
            simulators,
            inbound,
            public_url,
            outbox_wake,
            workers: Arc::new(Mutex::new(Some((inbox, worker)))),
            shutdown,
        })
    }

    /// Starts the background workers (once): stored Daraja events then the payment poller, the
    /// WhatsApp inbox and outbox, and the agent's payment follow-up.
    pub fn spawn_workers(&self) {
        let Some((inbox, worker)) = self.workers.lock().unwrap().take() else { return };
        tokio::spawn(self.payments.clone().run_poller(self.stopped()));
        self.register_c2b_urls();
        tokio::spawn(inbox.run(self.whatsapp.wake.clone(), self.stopped()));
        tokio::spawn(worker.run(self.stopped()));
        tokio::spawn(self.agent.clone().follow_payments(self.stopped()));
        tokio::spawn(self.clone().run_reminders());
        let sinks = crate::relay::Sinks { whatsapp: self.whatsapp.clone(), daraja: self.daraja_webhooks.clone() };
        tokio::spawn(self.inbound.clone().run(sinks, self.stopped()));
        // Events stored before a restart are processed now.
        self.whatsapp.wake.notify_one();
    }

    /// With a public address, tells Daraja where to confirm paybill/till payments made outside the
    /// chat. Without one, C2B payments reach the desktop only through `malipo relay`, whose URL is
    /// the public one in relay mode.
    fn register_c2b_urls(&self) {
        let config = &self.engine.config;
        let (Some(public), false) = (&self.public_url, config.daraja.environment == DarajaEnvironment::Simulator) else { return };
        let base = format!("{}/webhooks/daraja/c2b/{}", public.trim_end_matches('/'), self.daraja_webhooks.token);
        let daraja = self.payments.daraja().clone();
        tokio::spawn(async move {
            match daraja.register_c2b_urls(&format!("{base}/confirmation"), &format!("{base}/validation")).await {
                Ok(()) => tracing::info!("C2B confirmation and validation URLs registered with Daraja"),
                Err(e) => tracing::warn!(error = %e, "could not register the C2B URLs with Daraja; paybill payments made outside the chat will not arrive"),
            }
        });
    }

    /// Sends due reminders and promise follow-ups once a minute until shutdown. What was sent is
    /// stored with the next run, so closing the app never causes a burst on reopening.
    async fn run_reminders(self) {
        let stop = self.stopped();
        tokio::pin!(stop);
        loop {
            let (tz, merchant) = (self.engine.config.timezone, self.engine.config.merchant_name.clone());
            let now = self.engine.clock.now();
            let result = self
                .engine
                .store
                .write_async(move |tx| {
                    let sent = crate::reminders::run_due(tx, now, tz, &merchant)?.len();
                    Ok(sent + crate::reminders::follow_up_promises(tx, now, tz, &merchant)?)
                })
                .await;
            match result {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(count = n, "reminders queued");
                    self.wake_outbox();
                }
                Err(e) => tracing::warn!(error = %e, "reminders could not run; will retry"),
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            }
        }
    }

    /// Tells the outbox sender a message is waiting.
    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// Resolves when `shutdown` is called.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

fn daraja_credentials(engine: &Engine, env: DarajaEnvironment) -> Result<Credentials, StartError> {
    let names = [SecretName::DarajaConsumerKey, SecretName::DarajaConsumerSecret, SecretName::DarajaPasskey];
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match engine.secrets.get(name)? {
            Some(v) => values.push(v),
            None => missing.push(name.env_var()),
        }
    }
    if !missing.is_empty() {
        let environment = if env == DarajaEnvironment::Sandbox { "sandbox" } else { "production" };
        return Err(StartError::MissingSecrets { environment, names: missing.join(", ") });
    }
    let mut values = values.into_iter();
    Ok(Credentials { consumer_key: values.next().unwrap(), consumer_secret: values.next().unwrap(), passkey: values.next().unwrap() })
}

