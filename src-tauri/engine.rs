//! The engine: the services every mode shares (desktop, `serve`, CLI commands), built once from config.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::secrets::SecretStore;
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct Engine {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: SharedClock,
    pub secrets: Arc<dyn SecretStore>,
}

impl Engine {
    pub fn open(config: Config, clock: SharedClock, secrets: Arc<dyn SecretStore>) -> Result<Engine, StoreError> {
        let store = Store::open(&config.database)?;
        Ok(Engine { config: Arc::new(config), store, clock, secrets })
    }
}
