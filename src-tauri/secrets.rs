//! Secrets: the OS keyring on the desktop, the environment for headless `serve`. Never SQLite, the
//! config file, logs or the webview.

use std::fmt;

/// A value that prints as `[redacted]` in `Debug` and `Display`. `expose()` is the only way in.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Every secret Malipo knows, with its environment variable and keyring entry name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretName {
    DarajaConsumerKey,
    DarajaConsumerSecret,
    DarajaPasskey,
    WhatsappToken,
    WhatsappAppSecret,
    WhatsappVerifyToken,
    /// The key the desktop uses to pull events from `malipo relay`.
    RelayKey,
    /// Bearer key for an optional OpenAI-compatible model server.
    LlmApiKey,
}

impl SecretName {
    pub const ALL: [SecretName; 8] = [
        SecretName::DarajaConsumerKey,
        SecretName::DarajaConsumerSecret,
        SecretName::DarajaPasskey,
        SecretName::WhatsappToken,
        SecretName::WhatsappAppSecret,
        SecretName::WhatsappVerifyToken,
        SecretName::RelayKey,
        SecretName::LlmApiKey,
    ];

    pub fn env_var(self) -> &'static str {
        match self {
            SecretName::DarajaConsumerKey => "MALIPO_DARAJA_CONSUMER_KEY",
            SecretName::DarajaConsumerSecret => "MALIPO_DARAJA_CONSUMER_SECRET",
            SecretName::DarajaPasskey => "MALIPO_DARAJA_PASSKEY",
            SecretName::WhatsappToken => "MALIPO_WHATSAPP_TOKEN",
            SecretName::WhatsappAppSecret => "MALIPO_WHATSAPP_APP_SECRET",
            SecretName::WhatsappVerifyToken => "MALIPO_WHATSAPP_VERIFY_TOKEN",
            SecretName::RelayKey => "MALIPO_RELAY_KEY",
            SecretName::LlmApiKey => "MALIPO_AGENT_LLM_API_KEY",
        }
    }

    /// The keyring entry's user name (service is always "malipo").
    pub fn keyring_user(self) -> &'static str {
        match self {
            SecretName::DarajaConsumerKey => "daraja.consumer_key",
            SecretName::DarajaConsumerSecret => "daraja.consumer_secret",
            SecretName::DarajaPasskey => "daraja.passkey",
            SecretName::WhatsappToken => "whatsapp.token",
            SecretName::WhatsappAppSecret => "whatsapp.app_secret",
            SecretName::WhatsappVerifyToken => "whatsapp.verify_token",
            SecretName::RelayKey => "relay.key",
            SecretName::LlmApiKey => "agent.llm_api_key",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the OS keyring is not available: {0}")]
    Keyring(String),
    #[error("secrets can only be saved in the OS keyring, which this build does not have; set {0} in the environment")]
    ReadOnly(&'static str),
}

/// Where secrets come from. The environment always wins, so `serve` on a server needs no keyring.
pub trait SecretStore: Send + Sync {
    fn get(&self, name: SecretName) -> Result<Option<Secret>, SecretError>;
    fn set(&self, name: SecretName, value: &Secret) -> Result<(), SecretError>;
    fn delete(&self, name: SecretName) -> Result<(), SecretError>;
}

/// Reads secrets from the process environment only (headless `serve`).
pub struct EnvSecrets;

impl SecretStore for EnvSecrets {
    fn get(&self, name: SecretName) -> Result<Option<Secret>, SecretError> {
        Ok(std::env::var(name.env_var()).ok().filter(|v| !v.is_empty()).map(Secret::new))
    }
    fn set(&self, name: SecretName, _: &Secret) -> Result<(), SecretError> {
        Err(SecretError::ReadOnly(name.env_var()))
    }
    fn delete(&self, name: SecretName) -> Result<(), SecretError> {
        Err(SecretError::ReadOnly(name.env_var()))
    }
}

#[cfg(feature = "desktop")]
pub use keyring_store::KeyringSecrets;

#[cfg(feature = "desktop")]
mod keyring_store {
    use super::*;

    const SERVICE: &str = "malipo";

    /// The OS keyring (Keychain, Windows Credential Manager, Secret Service), with the environment
    /// taking precedence so a developer can override a saved secret for one run.
    pub struct KeyringSecrets {
        service: String,
    }

    impl KeyringSecrets {
        pub fn new() -> Self {
            KeyringSecrets { service: SERVICE.to_string() }
        }

        /// A separate keyring namespace, for tests.
        pub fn with_service(service: impl Into<String>) -> Self {
            KeyringSecrets { service: service.into() }
        }

        fn entry(&self, name: SecretName) -> Result<keyring::Entry, SecretError> {
            keyring::Entry::new(&self.service, name.keyring_user()).map_err(|e| SecretError::Keyring(e.to_string()))
        }
    }

    impl Default for KeyringSecrets {
        fn default() -> Self {
            Self::new()
        }
    }

    impl SecretStore for KeyringSecrets {
        fn get(&self, name: SecretName) -> Result<Option<Secret>, SecretError> {
            if let Some(v) = EnvSecrets.get(name)? {
                return Ok(Some(v));
            }
            let entry = match self.entry(name) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "the OS keyring is not available; continuing without saved secrets");
                    return Ok(None);
                }
            };
            match entry.get_password() {
                Ok(v) => Ok(Some(Secret::new(v))),
                Err(keyring::Error::NoEntry) => Ok(None),
                // No keyring service running (a bare Linux session): nothing can have been saved there,
                // so run as if nothing was (simulator mode) rather than refusing to start.
                Err(e @ (keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_))) => {
                    tracing::warn!(error = %e, "the OS keyring is not available; continuing without saved secrets");
                    Ok(None)
                }
                Err(e) => Err(SecretError::Keyring(e.to_string())),
            }
        }

        fn set(&self, name: SecretName, value: &Secret) -> Result<(), SecretError> {
            self.entry(name)?.set_password(value.expose()).map_err(|e| SecretError::Keyring(e.to_string()))
        }

        fn delete(&self, name: SecretName) -> Result<(), SecretError> {
            match self.entry(name)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(SecretError::Keyring(e.to_string())),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn keyring_round_trip_with_the_mock_backend() {
            keyring::set_default_credential_builder(keyring::mock::default_credential_builder());
            let store = KeyringSecrets::with_service("malipo-test");
            // The mock keeps each Entry's value in that Entry only, so read back through one entry.
            let entry = store.entry(SecretName::WhatsappAppSecret).unwrap();
            entry.set_password("s3cret").unwrap();
            assert_eq!(entry.get_password().unwrap(), "s3cret");
            entry.delete_credential().unwrap();
            assert!(matches!(entry.get_password(), Err(keyring::Error::NoEntry)));
        }
    }
}

/// Secrets held in memory: for tests and the built-in simulators, whose credentials are public.
#[derive(Default)]
pub struct MemorySecrets(std::sync::Mutex<std::collections::HashMap<SecretName, Secret>>);

impl SecretStore for MemorySecrets {
    fn get(&self, name: SecretName) -> Result<Option<Secret>, SecretError> {
        Ok(self.0.lock().unwrap().get(&name).cloned())
    }
    fn set(&self, name: SecretName, value: &Secret) -> Result<(), SecretError> {
        self.0.lock().unwrap().insert(name, value.clone());
        Ok(())
    }
    fn delete(&self, name: SecretName) -> Result<(), SecretError> {
        self.0.lock().unwrap().remove(&name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn env_names_follow_the_contract() {
        assert_eq!(SecretName::DarajaPasskey.env_var(), "MALIPO_DARAJA_PASSKEY");
        assert_eq!(SecretName::WhatsappVerifyToken.env_var(), "MALIPO_WHATSAPP_VERIFY_TOKEN");
        let users: std::collections::HashSet<_> = SecretName::ALL.iter().map(|n| n.keyring_user()).collect();
        assert_eq!(users.len(), SecretName::ALL.len());
    }

    #[test]
    fn the_environment_store_refuses_to_save() {
        let e = EnvSecrets.set(SecretName::DarajaPasskey, &Secret::new("x")).unwrap_err();
        assert!(e.to_string().contains("MALIPO_DARAJA_PASSKEY"));
    }
}
