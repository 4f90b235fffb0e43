//! The `malipo relay` process: reads the relay key and the WhatsApp verification secrets from the
//! environment, opens its own database, serves, and purges events past the retention once an hour.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::keys::RelayKey;
use super::limit::RateLimiter;
use super::queue::Queue;
use super::server::{router, RelayState};
use super::wire::WebhookUrls;
use crate::cli::CliError;
use crate::config::{Config, RelayConfig};
use crate::secrets::{EnvSecrets, SecretName, SecretStore};

const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// `malipo relay [--print-urls] [--new-key]`.
pub fn run(config: Config, print_urls: bool, new_key: bool) -> Result<(), CliError> {
    if new_key {
        println!("{}", RelayKey::generate());
        return Ok(());
    }
    let secrets = EnvSecrets;
    let key = RelayKey::parse(secrets.get(SecretName::RelayKey)?).map_err(|e| CliError { message: e.to_string(), code: 2 })?;
    if print_urls {
        print!("{}", url_instructions(&config.relay, &key));
        return Ok(());
    }
    let _logs = crate::logging::init(Some(&config.log_dir));
    for unneeded in [SecretName::DarajaConsumerKey, SecretName::DarajaConsumerSecret, SecretName::DarajaPasskey, SecretName::WhatsappToken] {
        if secrets.get(unneeded)?.is_some() {
            tracing::warn!(variable = unneeded.env_var(), "the relay never uses this secret; remove it from the relay's environment");
        }
    }
    let app_secret = secrets.get(SecretName::WhatsappAppSecret)?;
    let verify_token = secrets.get(SecretName::WhatsappVerifyToken)?;
    if app_secret.is_none() || verify_token.is_none() {
        tracing::warn!("MALIPO_WHATSAPP_APP_SECRET or MALIPO_WHATSAPP_VERIFY_TOKEN is not set: WhatsApp webhooks will be refused (Meta retries them)");
    }
    let relay = config.relay.clone();
    // One thread: a relay handles a handful of requests a second and should stay a few MB.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().max_blocking_threads(4).build()?;
    runtime.block_on(async move {
        let queue = Queue::open(&relay.database, &key)?;
        let listener = tokio::net::TcpListener::bind(relay.listen).await.map_err(|e| CliError::from(format!("cannot listen on {} (relay.listen): {e}", relay.listen)))?;
        let addr = listener.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let state = RelayState {
            queue: queue.clone(),
            path_token: key.path_token(),
            key,
            whatsapp_app_secret: app_secret,
            whatsapp_verify_token: verify_token,
            limiter: Arc::new(Mutex::new(RateLimiter::new(relay.rate_limit_per_minute))),
            trust_proxy: relay.trust_proxy,
            clock: crate::clock::system(),
            stopping: stopping.clone(),
        };
        tokio::spawn(purge_periodically(queue.clone(), relay.retention_days, stopping));
        let waiting = queue.waiting_count().await?;
        tracing::info!(%addr, database = %relay.database.display(), waiting, "malipo relay started; `malipo relay --print-urls` shows the URLs for Meta and Daraja");
        // Tests and scripts read the bound address (port 0 picks a free one) from this line.
        println!("Malipo listening on http://{addr}");
        std::io::stdout().flush()?;
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                crate::server::shutdown_signal().await;
                let _ = stop.send(true);
            })
            .await?;
        tracing::info!("malipo relay stopped");
        Ok(())
    })
}

async fn purge_periodically(queue: Queue, retention_days: u32, mut stopping: watch::Receiver<bool>) {
    let retention = chrono::Duration::days(i64::from(retention_days));
    loop {
        match queue.purge(chrono::Utc::now(), retention).await {
            Ok(p) if p.undelivered > 0 => {
                tracing::warn!(count = p.undelivered, retention_days, "events the desktop never collected were deleted after the retention period")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not purge old events"),
        }
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(PURGE_EVERY) => {}
        }
    }
}

/// What `--print-urls` prints: where to paste each URL.
pub fn url_instructions(relay: &RelayConfig, key: &RelayKey) -> String {
    let (base, note) = match &relay.public_url {
        Some(url) => (url.clone(), String::new()),
        None => (
            "https://YOUR-RELAY-HOST".to_string(),
            "(set relay.public_url or MALIPO_RELAY_PUBLIC_URL to your relay's https address to see the real URLs)\n".to_string(),
        ),
    };
    let urls = WebhookUrls::new(&base, &key.path_token());
    format!(
        "{note}\
Meta (WhatsApp Manager → Configuration → Webhook):
  Callback URL:       {whatsapp}
  Verify token:       the value of MALIPO_WHATSAPP_VERIFY_TOKEN on this relay
  Subscribe to:       messages

Daraja C2B (the desktop registers these itself for sandbox and production; paste them only to register by hand):
  Confirmation URL:   {confirmation}
  Validation URL:     {validation}

STK callbacks (the desktop puts this in each push itself): {stk}

Desktop (Settings → Inbound): mode relay, relay URL {base}, key = this relay's MALIPO_RELAY_KEY.
Keep the Daraja URLs private: they carry the path token derived from the key.
",
        whatsapp = urls.whatsapp,
        confirmation = urls.c2b_confirmation,
        validation = urls.c2b_validation,
        stk = urls.stk_callback,
    )
}
