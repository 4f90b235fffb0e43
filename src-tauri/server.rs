//! The webhook server: `/healthz` and the webhook routes of the external contract.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::App;
use crate::engine::Engine;

pub fn router(app: &App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(app.engine.clone())
        .merge(crate::whatsapp::router(app.whatsapp.clone()))
        .merge(crate::payments::webhooks::router(app.daraja_webhooks.clone()))
}

async fn healthz(State(engine): State<Engine>) -> Response {
    let store = engine.store.clone();
    let db_ok = tokio::task::spawn_blocking(move || store.ping()).await.map(|r| r.is_ok()).unwrap_or(false);
    let body = json!({
        "status": if db_ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "schema": crate::store::schema_version(),
        "database": if db_ok { "ok" } else { "unavailable" },
        "daraja": engine.config.daraja.environment,
    });
    let status = if db_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, app: &App, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
