//! The running engine: storage plus the services and background workers, wired once for every mode
//! (desktop, `serve`, CLI commands that move money). In simulator mode it also starts the built-in
//! Daraja simulator on loopback and points the client at it.

use tokio::sync::watch;

use crate::config::DarajaEnvironment;
use crate::daraja::simulator::{DarajaSimulator, SimulatorConfig, SimulatorHandle};
use crate::daraja::{Credentials, DarajaClient, DarajaSettings};
use crate::engine::Engine;
use crate::payments::webhooks::DarajaWebhooks;
use crate::payments::{Payments, PaymentsConfig};
use crate::secrets::{Secret, SecretName};
use crate::store::settings;

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
}

/// The built-in simulators, present in simulator mode.
#[derive(Clone, Default)]
pub struct Simulators {
    pub daraja: Option<SimulatorHandle>,
}

#[derive(Clone)]
pub struct App {
    pub engine: Engine,
    pub payments: Payments,
    pub daraja_webhooks: DarajaWebhooks,
    pub simulators: Simulators,
    shutdown: watch::Sender<bool>,
}

/// The Daraja callback path token: unguessable, kept in settings so restarts and the relay agree.
const CALLBACK_TOKEN_KEY: &str = "daraja.callback_token";

impl App {
    /// Builds the services. `local_url` is this process's own webhook server (e.g.
    /// `http://127.0.0.1:8787`), used for callbacks when no `public_url` is configured.
    pub async fn start(engine: Engine, local_url: &str) -> Result<App, StartError> {
        let now = engine.clock.now();
        let token = engine.store.write_async(move |tx| settings::token(tx, CALLBACK_TOKEN_KEY, now)).await?;
        let config = engine.config.clone();

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
        let base = config.public_url.clone().unwrap_or_else(|| local_url.to_string());
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
        let (shutdown, _) = watch::channel(false);
        Ok(App { engine, payments, daraja_webhooks, simulators, shutdown })
    }

    /// Starts the background workers: unprocessed webhooks, then the payment poller.
    pub fn spawn_workers(&self) {
        let webhooks = self.daraja_webhooks.clone();
        let payments = self.payments.clone();
        let stop = self.stopped();
        tokio::spawn(async move {
            if let Err(e) = crate::payments::webhooks::process_pending(&webhooks).await {
                tracing::error!(error = %e, "could not process stored Daraja events");
            }
            payments.run_poller(stop).await;
        });
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

