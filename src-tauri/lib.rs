//! Malipo's core: everything but the window. The `malipo` CLI, `malipo serve`, the desktop shell and
//! the tests all call into these modules. Nothing here imports tauri except `desktop`.

pub mod agent;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_edit;
pub mod console;
pub mod dashboard;
pub mod daraja;
pub mod domain;
pub mod engine;
pub mod import;
pub mod logging;
pub mod payments;
pub mod relay;
pub mod reminders;
pub mod reports;
pub mod secrets;
pub mod server;
pub mod store;
pub mod timeline;
pub mod understand;
pub mod whatsapp;

#[cfg(feature = "desktop")]
pub mod desktop;
