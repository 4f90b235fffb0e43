//! The desktop shell: a Tauri window over the same engine `malipo serve` runs. Commands are one-liners
//! into the core (see `commands`); nothing here holds business logic.

mod commands;

use std::sync::Arc;

use tauri::Manager;

use crate::config::Config;
use crate::engine::Engine;

/// What the window needs to know about the engine, including why it could not start.
pub struct AppState {
    pub engine: Option<Engine>,
    pub startup_error: Option<String>,
    pub webhook_addr: Option<std::net::SocketAddr>,
}

fn start_engine() -> Result<Engine, String> {
    let config = Config::load(None).map_err(|e| e.to_string())?;
    Engine::open(config, crate::clock::system(), Arc::new(crate::secrets::KeyringSecrets::new())).map_err(|e| e.to_string())
}

pub fn run() {
    let log_dir = Config::load(None).ok().map(|c| c.log_dir);
    let _logs = crate::logging::init(log_dir.as_deref());

    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            // A second launch brings the running window forward instead of starting another engine.
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.show();
                let _ = w.set_focus();
            }
        }))
        .plugin(tauri_plugin_updater::Builder::new().build())
        .setup(|app| {
            let (engine, startup_error) = match start_engine() {
                Ok(e) => (Some(e), None),
                Err(e) => {
                    tracing::error!(error = %e, "the engine could not start");
                    (None, Some(e))
                }
            };
            let webhook_addr = match &engine {
                Some(engine) => start_webhook_server(engine.clone()),
                None => None,
            };
            app.manage(AppState { engine, startup_error, webhook_addr });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![commands::app_info, commands::list_invoices])
        .run(tauri::generate_context!())
        .expect("error while running the Malipo window");
}

/// The same webhook server `malipo serve` runs, on the configured address. A busy port (say `malipo
/// serve` is already running) is reported in the app, not fatal: payments still complete by polling.
fn start_webhook_server(engine: Engine) -> Option<std::net::SocketAddr> {
    let listen = engine.config.listen;
    let std_listener = match std::net::TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%listen, error = %e, "webhook server not started");
            return None;
        }
    };
    let addr = std_listener.local_addr().ok();
    let _ = std_listener.set_nonblocking(true);
    tauri::async_runtime::spawn(async move {
        match tokio::net::TcpListener::from_std(std_listener) {
            Ok(listener) => {
                if let Err(e) = crate::server::serve(listener, engine, std::future::pending()).await {
                    tracing::error!(error = %e, "webhook server stopped");
                }
            }
            Err(e) => tracing::error!(error = %e, "webhook server not started"),
        }
    });
    addr
}
