//! Updates are installed only when signed. A Tauri app on the mock runtime (no window), with the updater
//! configured as in tauri.conf.json, asks a loopback update server for `latest.json` through the
//! desktop's own `check_for_updates` / `install_update` code. The artifacts are signed here with a key
//! made for each test run; the release key never leaves CI's secrets.
#![cfg(feature = "desktop")]

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use malipo::desktop::updates;
use minisign::KeyPair;
use serde_json::{json, Value};
use tauri::test::MockRuntime;

const CONFIG: &str = include_str!("../tauri.conf.json");
const ARTIFACT: &[u8] = b"Malipo 0.2.0, pretend installer bytes";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A public key as tauri.conf.json holds it: the minisign .pub file, base64-encoded.
fn tauri_pubkey(key: &KeyPair) -> String {
    b64(&key.pk.to_box().unwrap().to_string())
}

/// A signature as `tauri build` writes it (.sig, base64), bound to `version` in the trusted comment.
fn sign(key: &KeyPair, bytes: &[u8], version: &str) -> String {
    let trusted = format!("timestamp:1780000000\tfile:malipo.tar.gz\tversion:{version}");
    let sig = minisign::sign(Some(&key.pk), &key.sk, Cursor::new(bytes), Some(&trusted), Some("signature from tauri secret key")).unwrap();
    b64(&sig.to_string())
}

/// What the loopback update server serves.
#[derive(Clone)]
struct Published {
    manifest: Arc<Mutex<Value>>,
    artifact: Arc<Mutex<Vec<u8>>>,
}

/// Starts the update server and returns the `latest.json` and artifact URLs.
async fn update_server(published: Published) -> (String, String) {
    let app = Router::new()
        .route("/desktop/latest.json", get(|State(p): State<Published>| async move { Json(p.manifest.lock().unwrap().clone()) }))
        .route("/download/malipo.tar.gz", get(|State(p): State<Published>| async move { p.artifact.lock().unwrap().clone() }))
        .with_state(published);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/desktop/latest.json"), format!("http://{addr}/download/malipo.tar.gz"))
}

/// `latest.json` as the release workflow publishes it, with an entry for this machine's platform.
fn manifest(version: &str, url: &str, signature: &str) -> Value {
    let platform = tauri_plugin_updater::target().expect("a platform the updater supports");
    json!({
        "version": version,
        "notes": "Faster reports; receipts in Swahili.",
        "pub_date": "2026-12-01T09:00:00Z",
        "platforms": { platform: { "url": url, "signature": signature } }
    })
}

/// The app as it ships (updater settings and version from tauri.conf.json) but pointed at the loopback
/// server and trusting `pubkey`.
fn app(endpoint: &str, pubkey: &str) -> tauri::App<MockRuntime> {
    let conf: Value = serde_json::from_str(CONFIG).unwrap();
    let mut updater = conf["plugins"]["updater"].clone();
    updater["pubkey"] = json!(pubkey);
    updater["endpoints"] = json!([endpoint]);
    // Plain HTTP on loopback only; the shipped endpoint is https.
    updater["dangerousInsecureTransportProtocol"] = json!(true);
    let mut context = tauri::test::mock_context(tauri::test::noop_assets());
    context.config_mut().plugins.0.insert("updater".into(), updater);
    context.package_info_mut().version = conf["version"].as_str().unwrap().parse().unwrap();
    tauri::test::mock_builder().plugin(tauri_plugin_updater::Builder::new().build()).build(context).unwrap()
}

/// A server publishing version 0.2.0, and an app trusting `trusted`.
async fn setup(trusted: &KeyPair) -> (tauri::App<MockRuntime>, Published, String) {
    let published = Published { manifest: Arc::default(), artifact: Arc::new(Mutex::new(ARTIFACT.to_vec())) };
    let (endpoint, url) = update_server(published.clone()).await;
    (app(&endpoint, &tauri_pubkey(trusted)), published, url)
}

/// The error `download` gives; the test fails if the download was accepted.
async fn refused_download(app: &tauri::App<MockRuntime>) -> updates::ApiError {
    match updates::download(app.handle()).await {
        Ok((update, _)) => panic!("the download of {} was accepted", update.version),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_correctly_signed_update_is_offered_and_its_download_verifies() {
    let key = KeyPair::generate_unencrypted_keypair().unwrap();
    let (app, published, url) = setup(&key).await;
    *published.manifest.lock().unwrap() = manifest("0.2.0", &url, &sign(&key, ARTIFACT, "0.2.0"));

    let status = updates::check_for_updates(app.handle().clone()).await.unwrap();
    assert_eq!(status.current, env!("CARGO_PKG_VERSION"));
    assert!(status.available);
    assert_eq!(status.version.as_deref(), Some("0.2.0"));
    assert_eq!(status.notes.as_deref(), Some("Faster reports; receipts in Swahili."));

    let (update, bytes) = updates::download(app.handle()).await.unwrap();
    assert_eq!(update.version, "0.2.0");
    assert_eq!(bytes, ARTIFACT);
}

#[tokio::test]
async fn a_tampered_artifact_is_rejected() {
    let key = KeyPair::generate_unencrypted_keypair().unwrap();
    let (app, published, url) = setup(&key).await;
    *published.manifest.lock().unwrap() = manifest("0.2.0", &url, &sign(&key, ARTIFACT, "0.2.0"));
    published.artifact.lock().unwrap()[0] ^= 1;

    let e = refused_download(&app).await;
    assert_eq!(e.code, "update_signature_invalid", "{}", e.message);
}

#[tokio::test]
async fn an_update_signed_with_another_key_is_rejected() {
    let (trusted, other) = (KeyPair::generate_unencrypted_keypair().unwrap(), KeyPair::generate_unencrypted_keypair().unwrap());
    let (app, published, url) = setup(&trusted).await;
    *published.manifest.lock().unwrap() = manifest("0.2.0", &url, &sign(&other, ARTIFACT, "0.2.0"));

    let e = refused_download(&app).await;
    assert_eq!(e.code, "update_signature_invalid", "{}", e.message);
}

#[tokio::test]
async fn a_manifest_announcing_another_version_than_was_signed_is_rejected() {
    let key = KeyPair::generate_unencrypted_keypair().unwrap();
    let (app, published, url) = setup(&key).await;
    // An old, genuinely signed artifact dressed up as a newer release.
    *published.manifest.lock().unwrap() = manifest("0.3.0", &url, &sign(&key, ARTIFACT, "0.2.0"));

    let e = refused_download(&app).await;
    assert_eq!(e.code, "update_signature_invalid", "{}", e.message);
    assert!(e.message.contains("0.3.0"), "{}", e.message);
}

#[tokio::test]
async fn the_current_version_is_not_offered_as_an_update() {
    let key = KeyPair::generate_unencrypted_keypair().unwrap();
    let (app, published, url) = setup(&key).await;
    let current = env!("CARGO_PKG_VERSION");
    *published.manifest.lock().unwrap() = manifest(current, &url, &sign(&key, ARTIFACT, current));

    let status = updates::check_for_updates(app.handle().clone()).await.unwrap();
    assert!(!status.available);
    assert_eq!((status.version, status.notes), (None, None));
    assert_eq!(updates::install_update(app.handle().clone()).await.unwrap_err().code, "no_update");
}

#[tokio::test]
async fn an_unreachable_update_server_is_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key = KeyPair::generate_unencrypted_keypair().unwrap();
    let app = app(&format!("http://127.0.0.1:{port}/desktop/latest.json"), &tauri_pubkey(&key));

    let e = updates::check_for_updates(app.handle().clone()).await.unwrap_err();
    assert_eq!(e.code, "update_server_unreachable");
    assert!(e.message.starts_with("Could not reach the update server"), "{}", e.message);
}

#[test]
fn the_shipped_config_trusts_a_valid_key_and_requires_signed_versions() {
    let conf: Value = serde_json::from_str(CONFIG).unwrap();
    let updater = &conf["plugins"]["updater"];
    let decoded = base64::engine::general_purpose::STANDARD.decode(updater["pubkey"].as_str().unwrap()).unwrap();
    let key = minisign::PublicKeyBox::from_string(std::str::from_utf8(&decoded).unwrap()).unwrap().into_public_key().unwrap();
    // The key whose private half was lost (id 9CE1CEC6CCEC3D0C) must never come back.
    assert!(!std::str::from_utf8(&decoded).unwrap().contains("9CE1CEC6CCEC3D0C"));
    assert_eq!(key.keynum().len(), 8);
    assert_eq!(updater["requireSignedVersion"], json!(true));
    assert!(updater["endpoints"].as_array().unwrap().iter().all(|e| e.as_str().unwrap().starts_with("https://")));
    assert!(conf["bundle"]["createUpdaterArtifacts"].as_bool().unwrap());
}
