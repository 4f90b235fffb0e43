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

#[tauri::command]
pub async fn dashboard(
    state: State<'_, AppState>,
) -> Result<crate::dashboard::Dashboard, ApiError> {
    let engine = engine(&state)?;
    let (now, tz) = (engine.clock.now(), engine.config.timezone);
    Ok(engine
        .store
        .read_async(move |c| crate::dashboard::dashboard(c, now, tz))
        .await?)
}

#[tauri::command]
pub async fn attention(
    state: State<'_, AppState>,
) -> Result<Vec<crate::dashboard::AttentionItem>, ApiError> {
    let engine = engine(&state)?;
    let now = engine.clock.now();
    Ok(engine
        .store
        .read_async(move |c| crate::dashboard::attention(c, now))
        .await?)
}

/// The merchant dealt with a dispute, a request for a person or an M-Pesa code to check.
#[tauri::command]
pub async fn resolve_attention(state: State<'_, AppState>, id: i64) -> Result<(), ApiError> {
    let engine = engine(&state)?;
    let now = engine.clock.now();
    Ok(engine
        .store
        .write_async(move |tx| crate::dashboard::resolve_attention(tx, id, now))
        .await?)
}

/// The merchant fixed what paused WhatsApp sending (a new token, an approved template).
#[tauri::command]
pub async fn resume_whatsapp_sending(state: State<'_, AppState>) -> Result<(), ApiError> {
    let app = running(&state)?;
    let now = app.engine.clock.now();
    app.engine
        .store
        .write_async(move |tx| crate::whatsapp::outbox::resume(tx, now))
        .await?;
    app.wake_outbox();
    Ok(())
}

/// A paybill payment nobody could match, matched by the merchant to one of their invoices.
#[tauri::command]
pub async fn match_payment(
    state: State<'_, AppState>,
    unmatched_id: i64,
    invoice_id: i64,
) -> Result<(), ApiError> {
    running(&state)?
        .payments
        .resolve_unmatched(unmatched_id, invoice_id)
        .await?;
    Ok(())
}

#[tauri::command]
pub async fn invoice_timeline(
    state: State<'_, AppState>,
    invoice_id: i64,
) -> Result<Vec<crate::timeline::TimelineEntry>, ApiError> {
    Ok(engine(&state)?
        .store
        .read_async(move |c| crate::timeline::invoice_timeline(c, invoice_id))
        .await?)
}

/// Cash at the counter or a bank transfer, recorded against an invoice.
#[tauri::command]
pub async fn record_manual_payment(
    state: State<'_, AppState>,
    invoice_id: i64,
    amount: i64,
    method: crate::import::PaymentMethod,
    reference: String,
) -> Result<(), ApiError> {
    let engine = engine(&state)?;
    let amount = Kes::positive(amount).map_err(|e| ApiError {
        code: "invalid",
        message: e.to_string(),
    })?;
    let now = engine.clock.now();
    let payment = crate::import::ManualPayment {
        invoice_id,
        amount,
        method,
        reference,
        paid_at: now,
    };
    let applied = engine
        .store
        .write_async(move |tx| crate::import::record_payment(tx, &payment, "merchant", now))
        .await?;
    if matches!(applied, crate::payments::ledger::Applied::Duplicate { .. }) {
        return Err(ApiError {
            code: "duplicate",
            message: "this payment (same reference) is already recorded on this invoice".into(),
        });
    }
    Ok(())
}

/// What the import wizard shows before anything is saved: the columns as understood, the bad rows
/// with their line numbers, a sample of the good ones, and what saving would do.
#[derive(Debug, Serialize)]
pub struct ImportPreview {
    source: String,
    headers: Vec<String>,
    mapping: crate::import::Mapping,
    columns_ok: bool,
    data_rows: usize,
    good_rows: usize,
    bad_rows: usize,
    /// The first problems, in line order.
    errors: Vec<crate::import::RowError>,
    errors_total: usize,
    sample: Vec<crate::import::ValidRow>,
    /// What "valid rows only" would do; None when the columns are not understood.
    plan: Option<crate::import::ImportReport>,
}

const ERRORS_SHOWN: usize = 200;
const SAMPLE_ROWS: usize = 8;

impl From<crate::import::ImportError> for ApiError {
    fn from(e: crate::import::ImportError) -> Self {
        let code = match e {
            crate::import::ImportError::HasErrors { .. } => "has_errors",
            crate::import::ImportError::Store(_) => "store",
            _ => "unreadable",
        };
        ApiError {
            code,
            message: e.to_string(),
        }
    }
}

/// Reads a file the merchant picked (its bytes come from the window) with their column choices.
/// The checked preview is kept for `import_commit`.
#[tauri::command]
pub async fn import_preview(
    state: State<'_, AppState>,
    name: String,
    bytes: Vec<u8>,
    mapping: crate::import::Mapping,
) -> Result<ImportPreview, ApiError> {
    let store = engine(&state)?.store.clone();
    let (preview, plan) = tauri::async_runtime::spawn_blocking(move || {
        let options = crate::import::Options {
            mapping,
            today: None,
        };
        let preview = crate::import::preview_bytes(&name, bytes, &options)?;
        let plan = if preview.columns_ok {
            Some(crate::import::plan(
                Some(&store),
                &preview,
                crate::import::CommitMode::ValidRowsOnly,
            )?)
        } else {
            None
        };
        Ok::<_, crate::import::ImportError>((preview, plan))
    })
    .await
    .map_err(|e| ApiError {
        code: "internal",
        message: e.to_string(),
    })??;
    let view = ImportPreview {
        source: preview.source.clone(),
        headers: preview.headers.clone(),
        mapping: preview.mapping.clone(),
        columns_ok: preview.columns_ok,
        data_rows: preview.data_rows,
        good_rows: preview.rows.len(),
        bad_rows: preview.bad_rows(),
        errors: preview.errors.iter().take(ERRORS_SHOWN).cloned().collect(),
        errors_total: preview.errors.len(),
        sample: preview.rows.iter().take(SAMPLE_ROWS).cloned().collect(),
        plan,
    };
    *state
        .pending_import
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(preview);
    Ok(view)
}

/// Saves the previewed file. Progress goes to the window as `import-progress` {done, total}.
#[tauri::command]
pub async fn import_commit(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    mode: crate::import::CommitMode,
) -> Result<crate::import::ImportReport, ApiError> {
    use tauri::Emitter;
    let engine = engine(&state)?;
    let (store, now) = (engine.store.clone(), engine.clock.now());
    let preview = state
        .pending_import
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| ApiError {
            code: "no_preview",
            message: "choose the file again: nothing is waiting to be imported".into(),
        })?;
    let (preview, result) = tauri::async_runtime::spawn_blocking(move || {
        let progress = |done: usize, total: usize| {
            let _ = app.emit(
                "import-progress",
                serde_json::json!({ "done": done, "total": total }),
            );
        };
        let result = crate::import::commit_with_progress(&store, &preview, mode, now, &progress);
        (preview, result)
    })
    .await
    .map_err(|e| ApiError {
        code: "internal",
        message: e.to_string(),
    })?;
    if result.is_err() {
        // Refused (say, bad rows with "all or nothing"): the merchant may choose "valid rows only" next.
        *state
            .pending_import
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(preview);
    }
    Ok(result?)
}

/// Settings → Inbound: where webhooks reach this computer, and whether the relay is connected.
#[derive(Debug, Serialize)]
pub struct InboundView {
    status: crate::relay::InboundStatus,
    /// What to paste into Meta's and Daraja's consoles; None without a public address.
    urls: Option<crate::relay::WebhookUrls>,
}

#[tauri::command]
pub fn inbound_status(state: State<'_, AppState>) -> Result<InboundView, ApiError> {
    let app = running(&state)?;
    let status = app.inbound.status();
    let base = app.engine.config.public_url.clone().or_else(|| status.relay_url.clone());
    let urls = base.map(|b| crate::relay::WebhookUrls::new(&b, &app.daraja_webhooks.token));
    Ok(InboundView { status, urls })
}

/// "Test inbound": in relay mode an event goes round through the relay; in direct mode this computer's
/// public address must answer. Each step says what failed.
#[tauri::command]
pub async fn test_inbound(state: State<'_, AppState>) -> Result<serde_json::Value, ApiError> {
    let app = running(&state)?;
    if app.inbound.mode() == crate::config::InboundMode::Relay {
        return Ok(serde_json::to_value(crate::relay::test_inbound(app).await).unwrap_or_default());
    }
    let step = |ok: bool, detail: Option<String>| {
        serde_json::json!({ "ok": ok, "steps": [{ "step": "reach_this_computer", "label": "Reach this computer from the internet", "outcome": if ok { "passed" } else { "failed" }, "detail": detail }] })
    };
    let Some(public) = app.engine.config.public_url.clone() else {
        return Ok(step(false, Some("no public address is set: WhatsApp messages and paybill confirmations cannot reach this computer. Set public_url to your tunnel's address, or use a relay".into())));
    };
    let url = format!("{}/healthz", public.trim_end_matches('/'));
    let answer = reqwest::Client::new().get(&url).timeout(std::time::Duration::from_secs(10)).send().await;
    Ok(match answer {
        Ok(r) if r.status().is_success() => step(true, None),
        Ok(r) => step(false, Some(format!("{url} answered {}: is the tunnel pointing at this computer's port?", r.status()))),
        Err(e) => step(false, Some(format!("{url} could not be reached: {e}"))),
    })
}

/// "Back up now" in Settings: a copy of the database in its `backups/` folder; returns the file.
/// The installers ship the window only, so this is the merchant's way to a backup without the CLI.
#[tauri::command]
pub async fn backup_now(state: State<'_, AppState>) -> Result<String, ApiError> {
    let db = engine(&state)?.config.database.clone();
    let path = tauri::async_runtime::spawn_blocking(move || crate::store::backup::manual(&db, None))
        .await
        .map_err(|e| ApiError { code: "internal", message: e.to_string() })??;
    Ok(path.display().to_string())
}

/// "Try it with sample invoices": only in simulator mode, where no real money or chat can be touched.
#[tauri::command]
pub async fn load_sample_invoices(state: State<'_, AppState>) -> Result<crate::import::ImportReport, ApiError> {
    let engine = engine(&state)?;
    if engine.config.daraja.environment != crate::config::DarajaEnvironment::Simulator {
        return Err(ApiError { code: "not_simulator", message: "sample invoices are only for simulator mode; import your own invoices instead".into() });
    }
    let (store, now, tz) = (engine.store.clone(), engine.clock.now(), engine.config.timezone);
    let today = now.with_timezone(&tz).date_naive();
    tauri::async_runtime::spawn_blocking(move || crate::import::sample::load(&store, today, now))
        .await
        .map_err(|e| ApiError { code: "internal", message: e.to_string() })?
        .map_err(ApiError::from)
}
