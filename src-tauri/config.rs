//! Configuration: an optional TOML file, every key overridable from the environment
//! (`MALIPO_<KEY>` at the top level, `MALIPO_<SECTION>_<KEY>` inside a section). Defaults plus the
//! environment alone must work. A bad value names its key, where it came from and why it is wrong.
//! Secrets are never read from here (see `secrets`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::Kes;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("unknown config key `{key}` in {path}; known keys: {known}")]
    UnknownKey { key: String, path: PathBuf, known: String },
    #[error("`{key}` is a secret and is never read from the config file; save it in the keyring (desktop Settings) or set {env}")]
    SecretInFile { key: String, env: String },
    #[error("config key `{key}` ({origin}): {reason}")]
    Invalid { key: String, origin: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DarajaEnvironment {
    /// Malipo's built-in Daraja simulator on loopback.
    Simulator,
    /// Safaricom's public sandbox.
    Sandbox,
    Production,
}

impl DarajaEnvironment {
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            DarajaEnvironment::Simulator => None,
            DarajaEnvironment::Sandbox => Some("https://sandbox.safaricom.co.ke"),
            DarajaEnvironment::Production => Some("https://api.safaricom.co.ke"),
        }
    }
}

impl FromStr for DarajaEnvironment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "simulator" => Ok(DarajaEnvironment::Simulator),
            "sandbox" => Ok(DarajaEnvironment::Sandbox),
            "production" => Ok(DarajaEnvironment::Production),
            _ => Err(format!("{s:?} is not one of simulator, sandbox, production")),
        }
    }
}

/// Paybill (PartyB = shortcode) or Buy Goods till (PartyB = till number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TransactionType {
    CustomerPayBillOnline,
    CustomerBuyGoodsOnline,
}

impl FromStr for TransactionType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "CustomerPayBillOnline" | "paybill" => Ok(TransactionType::CustomerPayBillOnline),
            "CustomerBuyGoodsOnline" | "till" | "buygoods" => Ok(TransactionType::CustomerBuyGoodsOnline),
            _ => Err(format!("{s:?} is not CustomerPayBillOnline (paybill) or CustomerBuyGoodsOnline (till)")),
        }
    }
}

impl fmt::Display for TransactionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransactionType::CustomerPayBillOnline => "CustomerPayBillOnline",
            TransactionType::CustomerBuyGoodsOnline => "CustomerBuyGoodsOnline",
        })
    }
}

/// How webhooks reach this machine: its own webhook server (`direct`, e.g. behind a tunnel), or
/// events pulled from `malipo relay` on a public host (`relay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundMode {
    #[default]
    Direct,
    Relay,
}

impl FromStr for InboundMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "direct" => Ok(InboundMode::Direct),
            "relay" => Ok(InboundMode::Relay),
            _ => Err(format!("{s:?} is not one of direct, relay")),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InboundConfig {
    pub mode: InboundMode,
    /// The relay's public https URL; required in relay mode. The key is a secret (MALIPO_RELAY_KEY).
    pub relay_url: Option<String>,
}

/// `malipo relay`'s own settings (the desktop side is `[inbound]`).
#[derive(Debug, Clone, Serialize)]
pub struct RelayConfig {
    /// Behind a TLS reverse proxy on the same host: loopback.
    pub listen: SocketAddr,
    /// The relay's own SQLite file, separate from the merchant's database.
    pub database: PathBuf,
    /// The relay's public https URL, for `malipo relay --print-urls`.
    pub public_url: Option<String>,
    /// Unacknowledged events are deleted after this many days.
    pub retention_days: u32,
    /// Take the client address from X-Forwarded-For on connections from loopback (the proxy).
    pub trust_proxy: bool,
    /// Requests a minute from one address.
    pub rate_limit_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from, if any.
    pub file: Option<PathBuf>,
    pub database: PathBuf,
    pub log_dir: PathBuf,
    pub listen: SocketAddr,
    /// Where Daraja and Meta reach this machine's webhooks (a tunnel or `malipo relay`).
    pub public_url: Option<String>,
    pub timezone: Tz,
    pub merchant_name: String,
    pub daraja: DarajaConfig,
    pub whatsapp: WhatsappConfig,
    pub agent: AgentConfig,
    pub inbound: InboundConfig,
    pub relay: RelayConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct DarajaConfig {
    pub environment: DarajaEnvironment,
    /// Overrides the environment's host (tests point this at a loopback simulator).
    pub base_url: Option<String>,
    pub shortcode: String,
    pub transaction_type: TransactionType,
    /// The till number for Buy Goods; the shortcode for Paybill.
    pub party_b: String,
    /// Credit a callback only after STK Query confirms it.
    pub confirm_with_query: bool,
    pub max_pushes_per_hour: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct WhatsappConfig {
    /// Unset: the built-in Graph API simulator until a WhatsApp token is saved.
    pub base_url: Option<String>,
    pub api_version: String,
    pub phone_number_id: String,
    pub messages_per_second: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentConfig {
    /// Above this, a second confirmation is required.
    pub confirm_threshold: Kes,
    pub allow_partial: bool,
    pub min_partial: Kes,
    pub confirmation_timeout_minutes: u32,
    /// `agent.languages`: "en,sw" (the default) answers each customer in their language; "en" or "sw"
    /// always answers in that one.
    pub only_language: Option<crate::understand::Language>,
    /// An optional OpenAI-compatible model for messages the built-in understanding scores low.
    pub llm_enabled: bool,
    pub llm_endpoint: String,
    pub llm_model: String,
    /// Below this understanding confidence the model is asked (when enabled).
    pub llm_below_confidence: f32,
}

/// `agent.languages` as written ("en,sw", "sw", "EN") to the one language to keep to, if any.
fn only_language(value: Option<&str>) -> Result<Option<crate::understand::Language>, String> {
    use crate::understand::Language;
    let mut chosen = Vec::new();
    for part in value.unwrap_or("en,sw").split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()) {
        let lang = match part.as_str() {
            "en" | "english" => Language::En,
            "sw" | "swahili" | "kiswahili" => Language::Sw,
            other => return Err(format!("{other:?} is not a language Malipo speaks; use en, sw or \"en,sw\"")),
        };
        if !chosen.contains(&lang) {
            chosen.push(lang);
        }
    }
    match chosen.as_slice() {
        [] => Err("name at least one language: en, sw or \"en,sw\"".into()),
        [one] => Ok(Some(*one)),
        _ => Ok(None),
    }
}

/// The keys a config file may hold, as `section.key`. Each can also be set as MALIPO_SECTION_KEY.
const KEYS: &[&str] = &[
    "database",
    "log_dir",
    "listen",
    "public_url",
    "timezone",
    "merchant_name",
    "daraja.environment",
    "daraja.base_url",
    "daraja.shortcode",
    "daraja.transaction_type",
    "daraja.party_b",
    "daraja.confirm_with_query",
    "daraja.max_pushes_per_hour",
    "whatsapp.base_url",
    "whatsapp.api_version",
    "whatsapp.phone_number_id",
    "whatsapp.messages_per_second",
    "agent.confirm_threshold",
    "agent.allow_partial",
    "agent.min_partial",
    "agent.confirmation_timeout_minutes",
    "agent.languages",
    "agent.llm_enabled",
    "agent.llm_endpoint",
    "agent.llm_model",
    "agent.llm_below_confidence",
    "inbound.mode",
    "inbound.relay_url",
    "relay.listen",
    "relay.database",
    "relay.public_url",
    "relay.retention_days",
    "relay.trust_proxy",
    "relay.rate_limit_per_minute",
];

const SECRET_KEYS: &[&str] = &[
    "daraja.consumer_key",
    "daraja.consumer_secret",
    "daraja.passkey",
    "whatsapp.token",
    "whatsapp.app_secret",
    "whatsapp.verify_token",
    "relay.key",
];

pub fn env_name(key: &str) -> String {
    format!("MALIPO_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Where the OS keeps Malipo's data, logs and config.
pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("ke", "Malipo", "Malipo")
}

pub fn default_config_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("malipo.toml"))
}

/// A raw value with where it came from, so errors can say "from MALIPO_LISTEN" or "in malipo.toml".
struct Raw {
    value: String,
    origin: String,
}

struct Values(BTreeMap<&'static str, Raw>);

impl Values {
    fn get<T: FromStr>(&self, key: &'static str, default: impl FnOnce() -> T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.0.get(key) {
            None => Ok(default()),
            Some(raw) => raw.value.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                key: key.to_string(),
                origin: raw.origin.clone(),
                reason: e.to_string(),
            }),
        }
    }

    fn optional(&self, key: &'static str) -> Option<String> {
        self.0.get(key).map(|r| r.value.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn invalid(&self, key: &'static str, reason: impl Into<String>) -> ConfigError {
        let origin = self.0.get(key).map(|r| r.origin.clone()).unwrap_or_else(|| "default".into());
        ConfigError::Invalid { key: key.to_string(), origin, reason: reason.into() }
    }
}

impl Config {
    /// Reads `file` (or the default config path when it exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let explicit = file.map(Path::to_path_buf).or_else(|| lookup(&env, "MALIPO_CONFIG").map(PathBuf::from));
        let path = match explicit {
            Some(p) => Some(p),
            None => default_config_path().filter(|p| p.exists()),
        };
        let text = match &path {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.clone(), source })?),
            None => None,
        };
        Self::from_sources(path.as_deref(), text.as_deref(), &env)
    }

    /// The pure part of `load`: a file's text and an environment in, a checked config out.
    pub fn from_sources(path: Option<&Path>, text: Option<&str>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut values = Values(BTreeMap::new());
        if let (Some(path), Some(text)) = (path, text) {
            read_file(path, text, &mut values)?;
        }
        for key in KEYS {
            let name = env_name(key);
            if let Some(v) = lookup(env, &name) {
                values.0.insert(key, Raw { value: v.to_string(), origin: format!("from {name}") });
            }
        }
        Self::from_values(path, &values)
    }

    fn from_values(path: Option<&Path>, v: &Values) -> Result<Config, ConfigError> {
        let dirs = project_dirs();
        let data_dir = dirs.as_ref().map(|d| d.data_dir().to_path_buf()).unwrap_or_else(|| PathBuf::from("."));
        let database = v.get("database", || data_dir.join("malipo.db"))?;
        let log_dir = v.get("log_dir", || {
            dirs.as_ref().map(|d| d.data_local_dir().join("logs")).unwrap_or_else(|| data_dir.join("logs"))
        })?;
        let listen = v.get("listen", || SocketAddr::from(([127, 0, 0, 1], 8787)))?;
        let public_url = v.optional("public_url");
        if let Some(url) = &public_url {
            check_url(url).map_err(|r| v.invalid("public_url", r))?;
        }
        let timezone = v.get("timezone", || chrono_tz::Africa::Nairobi)?;
        let merchant_name = v.optional("merchant_name").unwrap_or_else(|| "Malipo Demo Shop".to_string());

        let environment = v.get("daraja.environment", || DarajaEnvironment::Simulator)?;
        let base_url = v.optional("daraja.base_url");
        if let Some(url) = &base_url {
            check_url(url).map_err(|r| v.invalid("daraja.base_url", r))?;
        }
        let shortcode = v.optional("daraja.shortcode").unwrap_or_else(|| "174379".to_string());
        if !shortcode.chars().all(|c| c.is_ascii_digit()) || !(5..=7).contains(&shortcode.len()) {
            return Err(v.invalid("daraja.shortcode", format!("{shortcode:?} is not a 5–7 digit M-Pesa shortcode")));
        }
        let transaction_type = v.get("daraja.transaction_type", || TransactionType::CustomerPayBillOnline)?;
        let party_b = v.optional("daraja.party_b").unwrap_or_else(|| shortcode.clone());
        if transaction_type == TransactionType::CustomerPayBillOnline && party_b != shortcode {
            return Err(v.invalid("daraja.party_b", "for a paybill (CustomerPayBillOnline) party_b must equal the shortcode"));
        }
        let daraja = DarajaConfig {
            environment,
            base_url,
            shortcode,
            transaction_type,
            party_b,
            confirm_with_query: v.get("daraja.confirm_with_query", || true)?,
            max_pushes_per_hour: v.get("daraja.max_pushes_per_hour", || 3)?,
        };

        let whatsapp_base_url = v.optional("whatsapp.base_url");
        if let Some(url) = &whatsapp_base_url {
            check_url(url).map_err(|r| v.invalid("whatsapp.base_url", r))?;
        }
        let whatsapp = WhatsappConfig {
            base_url: whatsapp_base_url,
            api_version: v.optional("whatsapp.api_version").unwrap_or_else(|| "v21.0".to_string()),
            phone_number_id: v.optional("whatsapp.phone_number_id").unwrap_or_else(|| "100000000000001".to_string()),
            messages_per_second: v.get("whatsapp.messages_per_second", || 80)?,
        };
        if whatsapp.messages_per_second == 0 {
            return Err(v.invalid("whatsapp.messages_per_second", "must be at least 1"));
        }

        let agent = AgentConfig {
            confirm_threshold: v.get::<KesValue>("agent.confirm_threshold", || KesValue(Kes::new(6_500).unwrap()))?.0,
            allow_partial: v.get("agent.allow_partial", || true)?,
            min_partial: v.get::<KesValue>("agent.min_partial", || KesValue(Kes::new(100).unwrap()))?.0,
            confirmation_timeout_minutes: v.get("agent.confirmation_timeout_minutes", || 15)?,
            only_language: only_language(v.optional("agent.languages").as_deref()).map_err(|r| v.invalid("agent.languages", r))?,
            llm_enabled: v.get("agent.llm_enabled", || false)?,
            llm_endpoint: v.optional("agent.llm_endpoint").unwrap_or_else(|| "http://localhost:11434/v1".to_string()),
            llm_model: v.optional("agent.llm_model").unwrap_or_else(|| "llama3.1".to_string()),
            llm_below_confidence: v.get("agent.llm_below_confidence", || 0.5)?,
        };
        check_url(&agent.llm_endpoint).map_err(|r| v.invalid("agent.llm_endpoint", r))?;
        if !(0.0..=1.0).contains(&agent.llm_below_confidence) {
            return Err(v.invalid("agent.llm_below_confidence", "must be between 0 and 1"));
        }
        if agent.confirmation_timeout_minutes == 0 {
            return Err(v.invalid("agent.confirmation_timeout_minutes", "must be at least 1 minute"));
        }

        let inbound = InboundConfig { mode: v.get("inbound.mode", InboundMode::default)?, relay_url: v.optional("inbound.relay_url") };
        if let Some(url) = &inbound.relay_url {
            check_url(url).map_err(|r| v.invalid("inbound.relay_url", r))?;
        }
        if inbound.mode == InboundMode::Relay && inbound.relay_url.is_none() {
            return Err(v.invalid("inbound.relay_url", "is required when inbound.mode is \"relay\": the relay's https URL"));
        }

        let relay = RelayConfig {
            listen: v.get("relay.listen", || SocketAddr::from(([127, 0, 0, 1], 8788)))?,
            database: v.get("relay.database", || data_dir.join("relay.db"))?,
            public_url: v.optional("relay.public_url"),
            retention_days: v.get("relay.retention_days", || 7)?,
            trust_proxy: v.get("relay.trust_proxy", || false)?,
            rate_limit_per_minute: v.get("relay.rate_limit_per_minute", || 600)?,
        };
        if let Some(url) = &relay.public_url {
            check_url(url).map_err(|r| v.invalid("relay.public_url", r))?;
        }
        if !(1..=30).contains(&relay.retention_days) {
            return Err(v.invalid("relay.retention_days", "must be between 1 and 30 days"));
        }
        if relay.rate_limit_per_minute == 0 {
            return Err(v.invalid("relay.rate_limit_per_minute", "must be at least 1"));
        }

        Ok(Config {
            file: path.map(Path::to_path_buf),
            database,
            log_dir,
            listen,
            public_url,
            timezone,
            merchant_name,
            daraja,
            whatsapp,
            agent,
            inbound,
            relay,
        })
    }
}

/// `Kes` read from config: "6500", "6,500" or "KES 6,500".
struct KesValue(Kes);

impl FromStr for KesValue {
    type Err = crate::domain::DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kes::parse(s).map(KesValue)
    }
}

fn lookup<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{url:?} must start with http:// or https://"))
    }
}

fn read_file(path: &Path, text: &str, values: &mut Values) -> Result<(), ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut flat = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(section) => {
                for (sk, sv) in section {
                    flat.push((format!("{k}.{sk}"), sv));
                }
            }
            other => flat.push((k, other)),
        }
    }
    for (key, value) in flat {
        if SECRET_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::SecretInFile { env: env_name(&key), key });
        }
        let Some(known) = KEYS.iter().find(|k| **k == key) else {
            return Err(ConfigError::UnknownKey { key, path: path.to_path_buf(), known: KEYS.join(", ") });
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(ConfigError::Invalid {
                    key,
                    origin: format!("in {}", path.display()),
                    reason: format!("expected a string, number or true/false, found {}", other.type_str()),
                })
            }
        };
        values.0.insert(known, Raw { value, origin: format!("in {}", path.display()) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn agent_languages_keep_to_one_or_follow_the_customer() {
        let only = |v: &str| Config::from_sources(None, None, &env(&[("MALIPO_AGENT_LANGUAGES", v)])).map(|c| c.agent.only_language);
        assert_eq!(Config::from_sources(None, None, &[]).unwrap().agent.only_language, None);
        assert_eq!(only("en, sw").unwrap(), None);
        assert_eq!(only("SW").unwrap(), Some(crate::understand::Language::Sw));
        let e = only("fr").unwrap_err().to_string();
        assert!(e.contains("agent.languages") && e.contains("MALIPO_AGENT_LANGUAGES") && e.contains("\"fr\""), "{e}");
    }

    #[test]
    fn defaults_alone_work() {
        let c = Config::from_sources(None, None, &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(c.timezone, chrono_tz::Africa::Nairobi);
        assert_eq!(c.daraja.environment, DarajaEnvironment::Simulator);
        assert_eq!(c.agent.confirm_threshold.shillings(), 6500);
        assert!(c.database.ends_with("malipo.db"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = "listen = \"127.0.0.1:9000\"\n[daraja]\nenvironment = \"sandbox\"\nshortcode = \"600000\"\n";
        let c = Config::from_sources(
            Some(Path::new("m.toml")),
            Some(file),
            &env(&[("MALIPO_LISTEN", "127.0.0.1:0"), ("MALIPO_DARAJA_BASE_URL", "http://127.0.0.1:1234")]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.daraja.environment, DarajaEnvironment::Sandbox);
        assert_eq!(c.daraja.shortcode, "600000");
        assert_eq!(c.daraja.base_url.as_deref(), Some("http://127.0.0.1:1234"));
    }

    #[test]
    fn a_bad_value_names_its_key_and_origin() {
        let e = Config::from_sources(None, None, &env(&[("MALIPO_DARAJA_ENVIRONMENT", "prod")])).unwrap_err().to_string();
        assert!(e.contains("daraja.environment") && e.contains("MALIPO_DARAJA_ENVIRONMENT") && e.contains("sandbox"), "{e}");
        let e = Config::from_sources(Some(Path::new("m.toml")), Some("listen = \"nowhere\""), &[]).unwrap_err().to_string();
        assert!(e.contains("`listen`") && e.contains("m.toml"), "{e}");
        let e = Config::from_sources(None, None, &env(&[("MALIPO_TIMEZONE", "Mars/Olympus")])).unwrap_err().to_string();
        assert!(e.contains("timezone"), "{e}");
    }

    #[test]
    fn a_misspelt_key_is_reported() {
        let e = Config::from_sources(Some(Path::new("m.toml")), Some("[daraja]\nshortcod = \"174379\""), &[]).unwrap_err();
        assert!(e.to_string().contains("daraja.shortcod"), "{e}");
    }

    #[test]
    fn secrets_in_the_file_are_refused() {
        let e = Config::from_sources(Some(Path::new("m.toml")), Some("[daraja]\npasskey = \"abc\""), &[]).unwrap_err();
        assert!(e.to_string().contains("MALIPO_DARAJA_PASSKEY"), "{e}");
    }

    #[test]
    fn paybill_party_b_must_match_the_shortcode() {
        let e = Config::from_sources(None, None, &env(&[("MALIPO_DARAJA_PARTY_B", "123456")])).unwrap_err();
        assert!(e.to_string().contains("daraja.party_b"), "{e}");
        let c = Config::from_sources(
            None,
            None,
            &env(&[("MALIPO_DARAJA_TRANSACTION_TYPE", "till"), ("MALIPO_DARAJA_PARTY_B", "123456")]),
        )
        .unwrap();
        assert_eq!(c.daraja.transaction_type, TransactionType::CustomerBuyGoodsOnline);
    }

    #[test]
    fn inbound_defaults_to_direct_and_relay_mode_needs_a_url() {
        let c = Config::from_sources(None, None, &[]).unwrap();
        assert_eq!((c.inbound.mode, c.inbound.relay_url), (InboundMode::Direct, None));
        assert_eq!(c.relay.listen.to_string(), "127.0.0.1:8788");
        assert_eq!((c.relay.retention_days, c.relay.trust_proxy), (7, false));
        assert!(c.relay.database.ends_with("relay.db"));

        let e = Config::from_sources(None, None, &env(&[("MALIPO_INBOUND_MODE", "relay")])).unwrap_err().to_string();
        assert!(e.contains("inbound.relay_url") && e.contains("required"), "{e}");
        let e = Config::from_sources(None, None, &env(&[("MALIPO_INBOUND_MODE", "tunnel")])).unwrap_err().to_string();
        assert!(e.contains("inbound.mode") && e.contains("MALIPO_INBOUND_MODE") && e.contains("direct, relay"), "{e}");
        let c = Config::from_sources(
            None,
            None,
            &env(&[("MALIPO_INBOUND_MODE", "relay"), ("MALIPO_INBOUND_RELAY_URL", "https://relay.example.co.ke")]),
        )
        .unwrap();
        assert_eq!(c.inbound.mode, InboundMode::Relay);
        assert_eq!(c.inbound.relay_url.as_deref(), Some("https://relay.example.co.ke"));
    }

    #[test]
    fn relay_settings_are_checked_and_the_key_never_comes_from_the_file() {
        let file = "[relay]\nlisten = \"127.0.0.1:9100\"\ntrust_proxy = true\nretention_days = 3\n";
        let c = Config::from_sources(Some(Path::new("m.toml")), Some(file), &env(&[("MALIPO_RELAY_DATABASE", "/tmp/r.db")])).unwrap();
        assert_eq!((c.relay.listen.port(), c.relay.trust_proxy, c.relay.retention_days), (9100, true, 3));
        assert_eq!(c.relay.database, PathBuf::from("/tmp/r.db"));
        let e = Config::from_sources(None, None, &env(&[("MALIPO_RELAY_RETENTION_DAYS", "0")])).unwrap_err().to_string();
        assert!(e.contains("relay.retention_days") && e.contains("MALIPO_RELAY_RETENTION_DAYS"), "{e}");
        let e = Config::from_sources(None, None, &env(&[("MALIPO_RELAY_TRUST_PROXY", "yes")])).unwrap_err().to_string();
        assert!(e.contains("relay.trust_proxy"), "{e}");
        let e = Config::from_sources(Some(Path::new("m.toml")), Some("[relay]\nkey = \"abc\""), &[]).unwrap_err().to_string();
        assert!(e.contains("MALIPO_RELAY_KEY"), "{e}");
    }

    #[test]
    fn every_key_has_an_environment_name() {
        assert_eq!(env_name("database"), "MALIPO_DATABASE");
        assert_eq!(env_name("whatsapp.phone_number_id"), "MALIPO_WHATSAPP_PHONE_NUMBER_ID");
        for key in KEYS {
            assert!(env_name(key).starts_with("MALIPO_"));
        }
    }
}
