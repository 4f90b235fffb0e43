//! Tauri commands: each one calls the core and maps errors to a stable code plus a human message,
//! so the UI branches on codes, never on message text.

use serde::Serialize;
use tauri::State;

use super::AppState;
use crate::engine::Engine;
use crate::store::{invoices, StoreError};

#[derive(Debug, Serialize)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::NotFound(_) => "not_found",
            StoreError::Conflict(_) => "conflict",
            StoreError::NewerSchema { .. } => "newer_schema",
            _ => "store",
        };
        ApiError { code, message: e.to_string() }
    }
}

fn engine<'a>(state: &'a State<'_, AppState>) -> Result<&'a Engine, ApiError> {
    state.engine.as_ref().ok_or_else(|| ApiError {
        code: "engine_unavailable",
        message: state.startup_error.clone().unwrap_or_else(|| "the engine is not running".into()),
    })
}

#[derive(Debug, Serialize)]
pub struct AppInfo {
    version: &'static str,
    merchant_name: Option<String>,
    /// "simulator", "sandbox" or "production".
    daraja_environment: Option<String>,
    database: Option<String>,
    webhook_url: Option<String>,
    timezone: Option<String>,
    startup_error: Option<String>,
}

#[tauri::command]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    let config = state.engine.as_ref().map(|e| e.config.clone());
    AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        merchant_name: config.as_ref().map(|c| c.merchant_name.clone()),
        daraja_environment: config.as_ref().map(|c| {
            serde_json::to_value(c.daraja.environment).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        }),
        database: config.as_ref().map(|c| c.database.display().to_string()),
        webhook_url: state.webhook_addr.map(|a| format!("http://{a}")),
        timezone: config.as_ref().map(|c| c.timezone.name().to_string()),
        startup_error: state.startup_error.clone(),
    }
}

#[tauri::command]
pub async fn list_invoices(state: State<'_, AppState>) -> Result<Vec<invoices::Invoice>, ApiError> {
    Ok(engine(&state)?.store.read_async(invoices::list).await?)
}
