//! The desktop shell: a Tauri window over the same engine `malipo serve` runs. Commands are one-liners
//! into the core (see `commands`); nothing here holds business logic.

mod collections;
mod commands;
mod settings;
mod tray;
pub mod updates;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tauri::Manager;

use crate::app::App;
use crate::config::Config;
use crate::engine::Engine;

/// What the window needs to know about the engine, including why it could not start.
pub struct AppState {
    pub app: Option<App>,
    pub startup_error: Option<String>,
    pub webhook_addr: Option<SocketAddr>,
    /// The file the import wizard checked, waiting for the merchant to confirm.
    pub pending_import: Mutex<Option<crate::import::Preview>>,
}

/// Opens the store, starts the services and the webhook server. The configured port may be taken
/// (say `malipo serve` runs too): then a free one is used, since payments complete by polling anyway.
fn start_engine() -> Result<(App, SocketAddr), String> {
    tauri::async_runtime::block_on(async {
        let config = Config::load(None).map_err(|e| e.to_string())?;
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(listen = %config.listen, error = %e, "webhook port busy; using a free one");
                tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| e.to_string())?
            }
        };
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let engine = Engine::open(config, crate::clock::system(), Arc::new(crate::secrets::KeyringSecrets::new())).map_err(|e| e.to_string())?;
        let app = App::start(engine, &format!("http://{addr}")).await.map_err(|e| e.to_string())?;
        // On the desktop the merchant answers the simulated M-Pesa prompt on the Simulator screen.
        if let Some(daraja) = &app.simulators.daraja {
            daraja.set_default_script(crate::daraja::simulator::Script::await_customer());
        }
        app.spawn_workers();
        let server_app = app.clone();
        tokio::spawn(async move {
            let stop = server_app.stopped();
            if let Err(e) = crate::server::serve(listener, &server_app, stop).await {
                tracing::error!(error = %e, "webhook server stopped");
            }
        });
        Ok((app, addr))
    })
}

pub fn run() {
    let log_dir = Config::load(None).ok().map(|c| c.log_dir);
    let _logs = crate::logging::init(log_dir.as_deref());

    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            // A second launch brings the running window forward instead of starting another engine.
            tray::show_window(app);
        }))
        .plugin(tauri_plugin_updater::Builder::new().build())
        .setup(|app| {
            let state = match start_engine() {
                Ok((running, addr)) => AppState { app: Some(running), startup_error: None, webhook_addr: Some(addr), pending_import: Mutex::default() },
                Err(e) => {
                    tracing::error!(error = %e, "the engine could not start");
                    AppState { app: None, startup_error: Some(e), webhook_addr: None, pending_import: Mutex::default() }
                }
            };
            if let Some(running) = &state.app {
                forward_payment_updates(app.handle().clone(), running);
                forward_conversation_updates(app.handle().clone(), running);
                match tray::install(app.handle(), running) {
                    Ok(()) => keep_running_when_closed(app.handle()),
                    // Without a tray the window must close normally, or the merchant could not quit.
                    Err(e) => tracing::warn!(error = %e, "no tray icon; closing the window quits Malipo"),
                }
            }
            app.manage(state);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::list_invoices,
            commands::list_payments,
            commands::payment_timeline,
            commands::request_payment,
            commands::list_conversations,
            commands::conversation_messages,
            commands::take_over,
            commands::hand_back,
            commands::send_merchant_reply,
            commands::sim_state,
            commands::sim_messages,
            commands::sim_send_text,
            commands::sim_tap,
            commands::sim_answer,
            commands::dashboard,
            commands::attention,
            commands::resolve_attention,
            commands::resume_whatsapp_sending,
            commands::match_payment,
            commands::invoice_timeline,
            commands::record_manual_payment,
            commands::import_preview,
            commands::import_commit,
            commands::inbound_status,
            commands::test_inbound,
            commands::backup_now,
            commands::load_sample_invoices,
            collections::reminder_policy,
            collections::save_reminder_policy,
            collections::reminder_preview,
            collections::reminder_templates,
            collections::collection_report,
            collections::export_report_csv,
            settings::get_settings,
            settings::save_settings,
            settings::secret_status,
            settings::save_secret,
            settings::remove_secret,
            settings::test_connection,
            settings::restart_app,
            updates::check_for_updates,
            updates::install_update
        ])
        .run(tauri::generate_context!())
        .expect("error while running the Malipo window");
}

/// Closing the window hides it: the agent, reminders and payment checks keep running in the tray.
/// The first time, a notification says so, so the merchant is not surprised.
fn keep_running_when_closed(handle: &tauri::AppHandle) {
    let Some(window) = handle.get_webview_window("main") else { return };
    let told = std::sync::atomic::AtomicBool::new(false);
    let hidden = window.clone();
    window.on_window_event(move |event| {
        if let tauri::WindowEvent::CloseRequested { api, .. } = event {
            api.prevent_close();
            let _ = hidden.hide();
            if !told.swap(true, std::sync::atomic::Ordering::Relaxed) {
                notify("Malipo is still running", "Payments and reminders go on. Open Malipo from the tray icon, or quit it there.");
            }
        }
    });
}

/// Every payment change reaches the window as a `payment-updated` event (screens refresh without a
/// reload), and money received raises an OS notification.
fn forward_payment_updates(handle: tauri::AppHandle, app: &App) {
    use tauri::Emitter;
    let mut updates = app.payments.subscribe();
    let store = app.engine.store.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let update = match updates.recv().await {
                Ok(u) => u,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let _ = handle.emit("payment-updated", &update);
            tray::refresh(&handle);
            if let (Some(amount), Some(invoice_id)) = (update.credited, update.invoice_id) {
                let invoice = store.read_async(move |c| crate::store::invoices::get(c, invoice_id)).await.ok();
                notify_payment(amount, invoice.as_ref(), update.receipt.as_deref());
            }
        }
    });
}

/// "Payment received: KES 2,500 from Wanjiku Kamau for INV-1042".
fn notify_payment(amount: crate::domain::Kes, invoice: Option<&crate::store::invoices::Invoice>, receipt: Option<&str>) {
    let body = match invoice {
        Some(i) => format!("{amount} from {} for {}{}", i.customer_name, i.number, receipt.map(|r| format!(" (M-Pesa {r})")).unwrap_or_default()),
        None => format!("{amount}"),
    };
    notify("Payment received", &body);
}

fn notify(summary: &str, body: &str) {
    if let Err(e) = notify_rust::Notification::new().appname("Malipo").summary(summary).body(body).show() {
        tracing::warn!(error = %e, summary, "could not show a notification");
    }
}

/// `conversation-updated` whenever a message arrives or is sent, so the inbox is live.
fn forward_conversation_updates(handle: tauri::AppHandle, app: &App) {
    use tauri::Emitter;
    let store = app.engine.store.clone();
    tauri::async_runtime::spawn(async move {
        let mut seen = 0;
        loop {
            if let Ok(latest) = store.read_async(crate::console::latest_message_id).await {
                if latest != seen {
                    seen = latest;
                    let _ = handle.emit("conversation-updated", serde_json::json!({ "latest": latest }));
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        }
    });
}
