//! Commands for the Settings screen: the config file (through `config_edit`), secrets in the OS
//! keyring, "Test connection" per service and restarting the app.
//!
//! Commands are async so keyring and file access never run on the window's thread.
//! These work even when the engine could not start — that is when the merchant needs Settings most.
//! Secrets go one way: the webview can save or remove one and learn whether it is saved, never read
//! it back; no message here carries a secret's value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tauri::State;

use super::collections::FieldError;
use super::commands::ApiError;
use super::AppState;
use crate::config::{self, Config, DarajaEnvironment};
use crate::config_edit::{self, EditError, EditableSettings};
use crate::daraja::{Credentials, DarajaClient, DarajaError, DarajaSettings};
use crate::secrets::{KeyringSecrets, Secret, SecretError, SecretName, SecretStore};

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        ApiError { code: "keyring", message: e.to_string() }
    }
}

/// The file Settings edits: the one the running config came from, else `MALIPO_CONFIG`, else the
/// default location (created on first save).
fn config_path(state: &State<'_, AppState>) -> Result<PathBuf, ApiError> {
    state
        .app
        .as_ref()
        .and_then(|a| a.engine.config.file.clone())
        .or_else(|| std::env::var_os("MALIPO_CONFIG").map(PathBuf::from))
        .or_else(config::default_config_path)
        .ok_or_else(|| ApiError { code: "no_config_path", message: "this computer has no folder for Malipo's settings".into() })
}

fn read_text(path: &Path) -> Result<Option<String>, ApiError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ApiError { code: "io", message: format!("cannot read {}: {e}", path.display()) }),
    }
}

#[derive(Debug, Serialize)]
pub struct SettingsView {
    /// The config file, shown so the merchant (or their IT person) knows where it lives.
    path: String,
    values: EditableSettings,
    /// Why the file does not load as it is, if it does not (the values are then the defaults).
    problem: Option<String>,
    /// Keys set in the environment (MALIPO_…), which win over the file.
    env_overrides: Vec<String>,
}

fn view(path: &Path, text: Option<&str>) -> SettingsView {
    let (values, problem) = config_edit::read(path, text);
    let env_overrides = config_edit::editable_keys().into_iter().filter(|k| std::env::var_os(config::env_name(k)).is_some()).map(String::from).collect();
    SettingsView { path: path.display().to_string(), values, problem: problem.map(|e| e.to_string()), env_overrides }
}

#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Result<SettingsView, ApiError> {
    let path = config_path(&state)?;
    let text = read_text(&path)?;
    Ok(view(&path, text.as_deref()))
}

/// Saves the settings into the config file. A value the config would refuse comes back as
/// `invalid` with its key in `field` (e.g. `daraja.shortcode`) and nothing is written. The engine
/// reads the file at start-up, so changes apply after a restart.
#[tauri::command]
pub async fn save_settings(state: State<'_, AppState>, values: EditableSettings) -> Result<SettingsView, FieldError> {
    let path = config_path(&state)?;
    config_edit::save(&path, &values).map_err(|e| FieldError {
        code: if matches!(e, EditError::Invalid(_)) { "invalid" } else { "io" },
        field: e.key().map(String::from),
        message: e.to_string(),
    })?;
    tracing::info!(path = %path.display(), "settings saved");
    let text = read_text(&path)?;
    Ok(view(&path, text.as_deref()))
}

#[derive(Debug, Serialize)]
pub struct SecretStatus {
    name: SecretName,
    saved: bool,
    /// Set in the environment, which wins over the keyring (Remove cannot clear it).
    from_environment: bool,
}

#[tauri::command]
pub async fn secret_status() -> Result<Vec<SecretStatus>, ApiError> {
    let store = KeyringSecrets::new();
    SecretName::ALL
        .into_iter()
        .map(|name| {
            Ok(SecretStatus {
                name,
                saved: store.get(name)?.is_some(),
                from_environment: std::env::var_os(name.env_var()).is_some_and(|v| !v.is_empty()),
            })
        })
        .collect()
}

#[tauri::command]
pub async fn save_secret(name: SecretName, value: String) -> Result<(), ApiError> {
    let value = Secret::new(value.trim());
    if value.expose().is_empty() {
        return Err(ApiError { code: "empty", message: "type the value before saving".into() });
    }
    KeyringSecrets::new().set(name, &value)?;
    tracing::info!(secret = name.keyring_user(), "secret saved in the OS keyring");
    Ok(())
}

#[tauri::command]
pub async fn remove_secret(name: SecretName) -> Result<(), ApiError> {
    KeyringSecrets::new().delete(name)?;
    tracing::info!(secret = name.keyring_user(), "secret removed from the OS keyring");
    Ok(())
}

/// A connection test's answer, in words for the merchant.
#[derive(Debug, Serialize)]
pub struct TestResult {
    ok: bool,
    message: String,
}

fn passed(message: impl Into<String>) -> TestResult {
    TestResult { ok: true, message: message.into() }
}

fn failed(message: impl Into<String>) -> TestResult {
    TestResult { ok: false, message: message.into() }
}

/// Tests the saved settings and secrets (what Malipo would use after a restart) for `service`:
/// `daraja`, `whatsapp` or `llm`.
#[tauri::command]
pub async fn test_connection(state: State<'_, AppState>, service: String) -> Result<TestResult, ApiError> {
    let path = config_path(&state)?;
    let text = read_text(&path)?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = match Config::from_sources(Some(&path), text.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => return Ok(failed(format!("Fix the settings first: {e}"))),
    };
    let secrets = KeyringSecrets::new();
    match service.as_str() {
        "daraja" => test_daraja(&config, &secrets).await,
        "whatsapp" => test_whatsapp(&config, &secrets).await,
        "llm" => test_llm(&config, &secrets).await,
        other => Err(ApiError { code: "invalid", message: format!("no connection test for {other:?}") }),
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        // A redirect would carry the token or key to another host.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("malipo/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds")
}

/// Daraja: an OAuth token from the configured environment with the saved consumer key and secret.
async fn test_daraja(config: &Config, secrets: &KeyringSecrets) -> Result<TestResult, ApiError> {
    let environment = config.daraja.environment;
    let Some(default_url) = environment.default_base_url() else {
        return Ok(passed("Simulator mode: M-Pesa is simulated on this computer, so there is nothing to connect to. Choose Safaricom sandbox or Live, save, and test again."));
    };
    let (Some(consumer_key), Some(consumer_secret)) = (secrets.get(SecretName::DarajaConsumerKey)?, secrets.get(SecretName::DarajaConsumerSecret)?) else {
        return Ok(failed("Save the consumer key and consumer secret first."));
    };
    let passkey = secrets.get(SecretName::DarajaPasskey)?;
    let place = if environment == DarajaEnvironment::Sandbox { "the Safaricom sandbox" } else { "Safaricom (live)" };
    let settings = DarajaSettings {
        base_url: config.daraja.base_url.clone().unwrap_or_else(|| default_url.to_string()),
        shortcode: config.daraja.shortcode.clone(),
        transaction_type: config.daraja.transaction_type,
        party_b: config.daraja.party_b.clone(),
        credentials: Credentials { consumer_key, consumer_secret, passkey: passkey.clone().unwrap_or_else(|| Secret::new("")) },
    };
    let client = DarajaClient::new(settings, crate::clock::system()).with_timeouts(Duration::from_secs(5), Duration::from_secs(15));
    Ok(match client.fetch_token().await {
        Ok(_) if passkey.is_none() => passed(format!("Connected to {place}: your consumer key and secret work. Save the passkey too — payments need it.")),
        Ok(_) => passed(format!("Connected to {place}: your consumer key and secret work. (The passkey is checked with the first payment.)")),
        Err(DarajaError::WrongCredentials { .. } | DarajaError::InvalidAccessToken) => {
            failed(format!("The consumer key or secret was refused by {place}. Check you copied them from the right app — sandbox keys do not work live, and live keys do not work in the sandbox."))
        }
        Err(DarajaError::Unreachable(_) | DarajaError::Timeout | DarajaError::Transport(_)) => {
            failed(format!("Could not reach {place}. Check the internet connection and try again."))
        }
        Err(e) => failed(format!("Got an error from {place}: {e}")),
    })
}

/// The `error.message` and `error.code` of a Graph API error answer.
fn graph_error(body: &Value) -> (Option<i64>, String) {
    let e = body.get("error");
    (e.and_then(|e| e.get("code")).and_then(Value::as_i64), e.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("no details").to_string())
}

/// WhatsApp: reads the configured phone number on the Graph API with the saved access token.
async fn test_whatsapp(config: &Config, secrets: &KeyringSecrets) -> Result<TestResult, ApiError> {
    let token = secrets.get(SecretName::WhatsappToken)?;
    let Some(token) = token else {
        return Ok(match config.whatsapp.base_url {
            None => passed("Simulator mode: WhatsApp is simulated on this computer. Save your access token to use your real WhatsApp number."),
            Some(_) => failed("Save the WhatsApp access token first."),
        });
    };
    let base = config.whatsapp.base_url.clone().unwrap_or_else(|| crate::whatsapp::GRAPH_BASE_URL.to_string());
    let id = &config.whatsapp.phone_number_id;
    let url = format!("{}/{}/{id}?fields=display_phone_number,verified_name", base.trim_end_matches('/'), config.whatsapp.api_version);
    let answer = match http().get(url).bearer_auth(token.expose()).send().await {
        Ok(a) => a,
        Err(_) => return Ok(failed("Could not reach WhatsApp. Check the internet connection and try again.")),
    };
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(String::from);
        return Ok(passed(match (text("display_phone_number"), text("verified_name")) {
            (Some(number), Some(name)) => format!("Connected: WhatsApp number {number} ({name})."),
            (Some(number), None) => format!("Connected: WhatsApp number {number}."),
            _ => format!("Connected: WhatsApp knows phone number ID {id}."),
        }));
    }
    Ok(match graph_error(&body) {
        (Some(190), _) => failed("WhatsApp refused the access token: it is wrong or has expired. Make a new one in Meta's Business settings and save it again."),
        (Some(100), _) => failed(format!("WhatsApp does not know the phone number ID {id}, or this access token cannot use it. Check the ID in WhatsApp Manager.")),
        (_, message) => failed(format!("WhatsApp answered with an error (HTTP {}): {message}", status.as_u16())),
    })
}

/// The model server: lists its models (`GET {endpoint}/models`) and checks the configured one is there.
async fn test_llm(config: &Config, secrets: &KeyringSecrets) -> Result<TestResult, ApiError> {
    let endpoint = config.agent.llm_endpoint.trim().trim_end_matches('/');
    let mut request = http().get(format!("{endpoint}/models"));
    if let Some(key) = secrets.get(SecretName::LlmApiKey)?.filter(|k| !k.expose().trim().is_empty()) {
        request = request.bearer_auth(key.expose());
    }
    let answer = match request.send().await {
        Ok(a) => a,
        Err(_) => return Ok(failed(format!("Could not reach the model server at {endpoint}. Is it running?"))),
    };
    let status = answer.status().as_u16();
    if status == 401 || status == 403 {
        return Ok(failed("The model server refused the API key. Save the right key and test again."));
    }
    if status == 404 {
        return Ok(failed(format!("The server at {endpoint} answered, but has no model list there. Check the address (it usually ends in /v1).")));
    }
    if !(200..300).contains(&status) {
        return Ok(failed(format!("The model server answered with an error (HTTP {status}).")));
    }
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    let models: Vec<&str> = body.get("data").and_then(Value::as_array).map(|a| a.iter().filter_map(|m| m.get("id").and_then(Value::as_str)).collect()).unwrap_or_default();
    let wanted = &config.agent.llm_model;
    // Ollama lists "llama3.1:latest" for "llama3.1".
    Ok(if models.iter().any(|m| *m == wanted || m.strip_suffix(":latest") == Some(wanted)) {
        passed(format!("Connected: the model server has {wanted}."))
    } else if models.is_empty() {
        failed(format!("Connected, but the model server lists no models. Load {wanted} on it first."))
    } else {
        let some: Vec<&str> = models.iter().take(5).copied().collect();
        failed(format!("Connected, but the model server does not have {wanted}. It has: {}.", some.join(", ")))
    })
}

/// Restarts Malipo so saved settings and secrets take effect.
#[tauri::command]
pub fn restart_app(app: tauri::AppHandle, state: State<'_, AppState>) {
    if let Some(running) = &state.app {
        running.shutdown();
    }
    app.restart()
}
