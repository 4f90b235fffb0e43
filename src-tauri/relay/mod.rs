//! `malipo relay`: store-and-forward for a desktop behind NAT. The relay runs on a small public host,
//! serves the same webhook routes as `malipo serve`, verifies and stores each event before answering
//! 200, and hands the events to the merchant's desktop, which pulls them over an outbound HTTPS
//! connection with the per-merchant relay key and acknowledges each once it has stored it.
//!
//! - `keys`: the relay key and what is derived from it (Daraja path token, storage key). Pure.
//! - `wire`: the pull API's shapes and paths; a WhatsApp batch cut into one webhook per event. Pure.
//! - `limit`: per-source rate limits and `X-Forwarded-For` handling. Pure.
//! - `queue`: the relay's own SQLite file, events encrypted at rest.
//! - `server`: the relay's HTTP routes.
//! - `service`: the `malipo relay` process.
//! - `client`, `inbound`: the desktop's side — the pull worker, its status and "Test inbound".

pub mod client;
pub mod inbound;
pub mod keys;
pub mod limit;
pub mod queue;
pub mod server;
pub mod service;
pub mod wire;

pub use inbound::{Inbound, InboundStatus, InboundTest, Outcome, Sinks, Step, TestStep};
pub use keys::{KeyError, RelayKey};
pub use wire::WebhookUrls;

/// "Test inbound" on the Settings screen: a round trip through the relay, step by step.
pub async fn test_inbound(app: &crate::app::App) -> InboundTest {
    app.inbound.self_test().await
}
