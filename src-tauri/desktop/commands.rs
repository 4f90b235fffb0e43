//! Tauri commands: each one calls the core and maps errors to a stable code plus a human message,
//! so the UI branches on codes, never on message text.

use serde::Serialize;
use tauri::State;

use super::AppState;
use crate::agent::service::AgentError;
use crate::console::{self, ConsoleError};
use crate::domain::Kes;
use crate::engine::Engine;
use crate::payments::{ledger, repo, PaymentError};
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
    state.app.as_ref().map(|a| &a.engine).ok_or_else(|| ApiError {
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
    let config = state.app.as_ref().map(|a| a.engine.config.clone());
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

fn running<'a>(state: &'a State<'_, AppState>) -> Result<&'a crate::app::App, ApiError> {
    state.app.as_ref().ok_or_else(|| ApiError {
        code: "engine_unavailable",
        message: state.startup_error.clone().unwrap_or_else(|| "the engine is not running".into()),
    })
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        ApiError { code: e.code(), message: e.to_string() }
    }
}

#[derive(Debug, Serialize)]
pub struct PaymentsView {
    attempts: Vec<repo::AttemptView>,
    ledger: Vec<ledger::LedgerEntry>,
}

#[tauri::command]
pub async fn list_payments(state: State<'_, AppState>) -> Result<PaymentsView, ApiError> {
    let (attempts, ledger) = engine(&state)?.store.read_async(|c| Ok((repo::views(c)?, ledger::list(c)?))).await?;
    Ok(PaymentsView { attempts, ledger })
}

#[tauri::command]
pub async fn payment_timeline(state: State<'_, AppState>, attempt_id: i64) -> Result<Vec<repo::EventRow>, ApiError> {
    Ok(engine(&state)?.store.read_async(move |c| repo::events(c, attempt_id)).await?)
}

/// "Request payment": an STK push to the customer for the invoice (amount defaults to the balance).
#[tauri::command]
pub async fn request_payment(state: State<'_, AppState>, invoice_id: i64, amount: Option<i64>) -> Result<repo::AttemptView, ApiError> {
    let app = running(&state)?;
    let amount = amount
        .map(Kes::positive)
        .transpose()
        .map_err(|e| ApiError { code: "invalid", message: e.to_string() })?;
    let attempt = app.payments.request_for_invoice(invoice_id, amount, None).await?;
    let views = app.engine.store.read_async(repo::views).await?;
    views.into_iter().find(|v| v.id == attempt.id).ok_or_else(|| ApiError { code: "not_found", message: "attempt vanished".into() })
}

impl From<ConsoleError> for ApiError {
    fn from(e: ConsoleError) -> Self {
        ApiError { code: e.code(), message: e.to_string() }
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        ApiError { code: "agent", message: e.to_string() }
    }
}

#[tauri::command]
pub async fn list_conversations(state: State<'_, AppState>) -> Result<Vec<console::ConversationSummary>, ApiError> {
    let engine = engine(&state)?;
    let now = engine.clock.now();
    Ok(engine.store.read_async(move |c| console::conversations(c, now)).await?)
}

#[tauri::command]
pub async fn conversation_messages(state: State<'_, AppState>, customer_id: i64) -> Result<Vec<console::ChatMessage>, ApiError> {
    Ok(engine(&state)?.store.read_async(move |c| console::messages(c, customer_id)).await?)
}

#[tauri::command]
pub async fn take_over(state: State<'_, AppState>, customer_id: i64) -> Result<(), ApiError> {
    Ok(running(&state)?.agent.take_over(customer_id).await?)
}

#[tauri::command]
pub async fn hand_back(state: State<'_, AppState>, customer_id: i64) -> Result<(), ApiError> {
    Ok(running(&state)?.agent.hand_back(customer_id).await?)
}

#[tauri::command]
pub async fn send_merchant_reply(state: State<'_, AppState>, customer_id: i64, body: String) -> Result<(), ApiError> {
    Ok(console::merchant_reply(running(&state)?, customer_id, &body).await?)
}

#[tauri::command]
pub async fn sim_state(state: State<'_, AppState>) -> Result<console::SimState, ApiError> {
    Ok(console::sim_state(running(&state)?).await?)
}

#[tauri::command]
pub async fn sim_messages(state: State<'_, AppState>, customer_id: i64) -> Result<Vec<console::SimMessage>, ApiError> {
    Ok(console::sim_messages(running(&state)?, customer_id).await?)
}

#[tauri::command]
pub async fn sim_send_text(state: State<'_, AppState>, customer_id: i64, body: String) -> Result<(), ApiError> {
    Ok(console::sim_send_text(running(&state)?, customer_id, &body).await?)
}

#[tauri::command]
pub async fn sim_tap(state: State<'_, AppState>, customer_id: i64, id: String, title: String) -> Result<(), ApiError> {
    Ok(console::sim_tap(running(&state)?, customer_id, &id, &title).await?)
}

#[tauri::command]
pub fn sim_answer(state: State<'_, AppState>, checkout_request_id: String, answer: String) -> Result<(), ApiError> {
    Ok(console::sim_answer(running(&state)?, &checkout_request_id, &answer)?)
}
