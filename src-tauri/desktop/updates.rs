//! Updates for the Settings screen: is a newer Malipo published, and install it. The updater plugin
//! reads `plugins.updater` in tauri.conf.json (endpoint and public key); a download whose signature
//! does not verify against that key, or that was signed for another version, is never installed.

use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Runtime};
use tauri_plugin_updater::{Error, Update, UpdaterExt};

pub use super::commands::ApiError;

/// How long a check may take before the merchant is told the server cannot be reached. Downloads
/// have no limit: an update over a slow mobile connection takes minutes.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize)]
pub struct UpdateStatus {
    /// This build's version.
    pub current: String,
    pub available: bool,
    /// The newer version, when one is available.
    pub version: Option<String>,
    /// Its release notes.
    pub notes: Option<String>,
}

#[tauri::command]
pub async fn check_for_updates<R: Runtime>(app: AppHandle<R>) -> Result<UpdateStatus, ApiError> {
    let update = find(&app).await?;
    Ok(UpdateStatus {
        current: app.package_info().version.to_string(),
        available: update.is_some(),
        version: update.as_ref().map(|u| u.version.clone()),
        notes: update.and_then(|u| u.body),
    })
}

/// Downloads, verifies and installs the update, then restarts into it (on Windows the installer
/// closes the app and starts it again itself).
#[tauri::command]
pub async fn install_update<R: Runtime>(app: AppHandle<R>) -> Result<(), ApiError> {
    let (update, bytes) = download(&app).await?;
    update.install(bytes).map_err(api_error)?;
    tracing::info!(from = %update.current_version, to = %update.version, "update installed; restarting");
    app.restart()
}

/// The published update newer than this build, if there is one.
pub async fn find<R: Runtime>(app: &AppHandle<R>) -> Result<Option<Update>, ApiError> {
    let updater = app.updater_builder().timeout(CHECK_TIMEOUT).build().map_err(api_error)?;
    updater.check().await.map_err(api_error)
}

/// Downloads the update and verifies its signature. Nothing is installed yet.
pub async fn download<R: Runtime>(app: &AppHandle<R>) -> Result<(Update, Vec<u8>), ApiError> {
    let update = find(app).await?.ok_or_else(|| ApiError {
        code: "no_update",
        message: format!("Malipo {} is the latest version", app.package_info().version),
    })?;
    let bytes = update.download(|_, _| {}, || {}).await.map_err(api_error)?;
    Ok((update, bytes))
}

/// Stable codes for the Settings screen, with a message a merchant can act on.
fn api_error(e: Error) -> ApiError {
    let (code, message) = match &e {
        Error::Reqwest(_) | Error::Network(_) | Error::ReleaseNotFound => (
            "update_server_unreachable",
            format!("Could not reach the update server. Check the internet connection and try again later. ({e})"),
        ),
        Error::Minisign(_) | Error::SignedVersionMismatch { .. } | Error::MissingSignedVersion | Error::Base64(_) | Error::SignatureUtf8(_) => (
            "update_signature_invalid",
            format!("The update is not signed by Malipo's release key, so it was not installed. ({e})"),
        ),
        Error::Serialization(_) | Error::Semver(_) => {
            ("update_manifest_invalid", format!("The update server sent update information Malipo cannot read. ({e})"))
        }
        Error::TargetNotFound(_) | Error::TargetsNotFound(_) => {
            ("update_not_for_this_system", format!("The new version is not published for this system yet. ({e})"))
        }
        _ => ("update_failed", format!("The update failed: {e}")),
    };
    tracing::warn!(code, error = %e, "update check or install failed");
    ApiError { code, message }
}
