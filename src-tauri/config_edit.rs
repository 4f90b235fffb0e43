//! Editing the config file from Settings: the keys the merchant can change are written into the TOML
//! text with `toml_edit`, so comments, layout and every other key stay as the merchant left them.
//! The edited text is checked by the same parser `malipo serve` uses before anything is written, and
//! it is written atomically (temp file + rename): a bad value is refused with its key named, and a
//! crash mid-save never leaves half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml_edit::{DocumentMut, Item, Value};

use crate::config::{Config, ConfigError, TransactionType};

/// What Settings edits. Field names follow the config keys (`daraja.shortcode` is `daraja.shortcode`),
/// so a validation error's key points straight at its field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditableSettings {
    pub merchant_name: String,
    pub timezone: String,
    pub daraja: DarajaSettings,
    pub whatsapp: WhatsappSettings,
    pub agent: AgentSettings,
    pub inbound: InboundSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundSettings {
    /// "direct" or "relay".
    pub mode: String,
    /// The relay's https address; "" when unused.
    pub relay_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DarajaSettings {
    /// simulator, sandbox or production.
    pub environment: String,
    /// "paybill" or "till".
    pub transaction_type: String,
    pub shortcode: String,
    pub party_b: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatsappSettings {
    pub phone_number_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSettings {
    /// Whole shillings. Signed so a wrong entry reaches the config check (and its message) instead of
    /// failing to deserialise.
    pub confirm_threshold: i64,
    pub allow_partial: bool,
    pub min_partial: i64,
    pub confirmation_timeout_minutes: i64,
    /// "en,sw" (each customer in theirs), "en" or "sw".
    pub languages: String,
    pub llm_enabled: bool,
    pub llm_endpoint: String,
    pub llm_model: String,
}

impl From<&Config> for EditableSettings {
    fn from(c: &Config) -> Self {
        let environment = serde_json::to_value(c.daraja.environment).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        EditableSettings {
            merchant_name: c.merchant_name.clone(),
            timezone: c.timezone.name().to_string(),
            daraja: DarajaSettings {
                environment,
                transaction_type: match c.daraja.transaction_type {
                    TransactionType::CustomerPayBillOnline => "paybill",
                    TransactionType::CustomerBuyGoodsOnline => "till",
                }
                .to_string(),
                shortcode: c.daraja.shortcode.clone(),
                party_b: c.daraja.party_b.clone(),
            },
            whatsapp: WhatsappSettings { phone_number_id: c.whatsapp.phone_number_id.clone() },
            agent: AgentSettings {
                confirm_threshold: c.agent.confirm_threshold.shillings(),
                allow_partial: c.agent.allow_partial,
                min_partial: c.agent.min_partial.shillings(),
                confirmation_timeout_minutes: c.agent.confirmation_timeout_minutes.into(),
                languages: match c.agent.only_language {
                    None => "en,sw",
                    Some(crate::understand::Language::En) => "en",
                    Some(crate::understand::Language::Sw) => "sw",
                }
                .to_string(),
                llm_enabled: c.agent.llm_enabled,
                llm_endpoint: c.agent.llm_endpoint.clone(),
                llm_model: c.agent.llm_model.clone(),
            },
            inbound: InboundSettings {
                mode: serde_json::to_value(c.inbound.mode).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                relay_url: c.inbound.relay_url.clone().unwrap_or_default(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot save {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// The file as it is on disk is not TOML, so it cannot be edited without losing what is in it.
    #[error("{path} is not valid TOML, so Malipo will not overwrite it: {message}")]
    Syntax { path: PathBuf, message: String },
    /// The edited file would not load; nothing was written.
    #[error("{0}")]
    Invalid(ConfigError),
}

impl EditError {
    /// The config key at fault (`agent.min_partial`), when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            EditError::Invalid(ConfigError::Invalid { key, .. } | ConfigError::UnknownKey { key, .. } | ConfigError::SecretInFile { key, .. }) => Some(key),
            _ => None,
        }
    }
}

/// The settings as the file alone says (the environment is left out: it overrides, it is not edited).
/// Also returns why the file does not load, if it does not; the settings are then the defaults.
pub fn read(path: &Path, text: Option<&str>) -> (EditableSettings, Option<ConfigError>) {
    match Config::from_sources(Some(path), text, &[]) {
        Ok(c) => (EditableSettings::from(&c), None),
        Err(e) => (defaults(), Some(e)),
    }
}

fn defaults() -> EditableSettings {
    EditableSettings::from(&Config::from_sources(None, None, &[]).expect("the defaults are valid"))
}

/// One key of the file and its value in `s`, as TOML.
fn entries(s: &EditableSettings) -> Vec<(&'static str, Value)> {
    // A paybill pays into its own shortcode; keep the two equal so the merchant need not.
    let party_b = if s.daraja.transaction_type == "paybill" { &s.daraja.shortcode } else { &s.daraja.party_b };
    let transaction_type = match s.daraja.transaction_type.as_str() {
        "paybill" => TransactionType::CustomerPayBillOnline.to_string(),
        "till" => TransactionType::CustomerBuyGoodsOnline.to_string(),
        other => other.to_string(),
    };
    vec![
        ("merchant_name", s.merchant_name.trim().into()),
        ("timezone", s.timezone.trim().into()),
        ("daraja.environment", s.daraja.environment.as_str().into()),
        ("daraja.transaction_type", transaction_type.into()),
        ("daraja.shortcode", s.daraja.shortcode.trim().into()),
        ("daraja.party_b", party_b.trim().into()),
        ("whatsapp.phone_number_id", s.whatsapp.phone_number_id.trim().into()),
        ("agent.confirm_threshold", s.agent.confirm_threshold.into()),
        ("agent.allow_partial", s.agent.allow_partial.into()),
        ("agent.min_partial", s.agent.min_partial.into()),
        ("agent.confirmation_timeout_minutes", s.agent.confirmation_timeout_minutes.into()),
        ("agent.languages", s.agent.languages.trim().into()),
        ("agent.llm_enabled", s.agent.llm_enabled.into()),
        ("agent.llm_endpoint", s.agent.llm_endpoint.trim().into()),
        ("agent.llm_model", s.agent.llm_model.trim().into()),
        ("inbound.mode", s.inbound.mode.trim().into()),
        ("inbound.relay_url", s.inbound.relay_url.trim().into()),
    ]
}

/// The config keys Settings edits, as `section.key`.
pub fn editable_keys() -> Vec<&'static str> {
    entries(&defaults()).into_iter().map(|(k, _)| k).collect()
}

/// `text` with the settings in `s` written into it. Only keys whose value changed are touched, so an
/// untouched file stays byte for byte the same and defaults are not written out for no reason; a
/// changed key keeps its comment. When the file does not load as it is, every key is written, so
/// what the merchant saw in the form is what ends up in the file.
pub fn apply(path: &Path, text: &str, s: &EditableSettings) -> Result<String, EditError> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| EditError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
    let current = match read(path, Some(text)) {
        (c, None) => Some(entries(&c)),
        (_, Some(_)) => None,
    };
    for (i, (key, value)) in entries(s).into_iter().enumerate() {
        let unchanged = current.as_ref().is_some_and(|c| c[i].1.to_string().trim() == value.to_string().trim());
        if !unchanged {
            set(&mut doc, key, value).map_err(|reason| EditError::Invalid(ConfigError::Invalid { key: key.into(), origin: format!("in {}", path.display()), reason }))?;
        }
    }
    Ok(doc.to_string())
}

/// Sets `section.key` (or a top-level `key`), creating the section when missing and keeping the
/// old value's comment and spacing.
fn set(doc: &mut DocumentMut, key: &str, value: Value) -> Result<(), String> {
    let (table, name) = match key.split_once('.') {
        None => (doc.as_table_mut() as &mut dyn toml_edit::TableLike, key),
        Some((section, name)) => {
            let item = doc.entry(section).or_insert_with(toml_edit::table);
            (item.as_table_like_mut().ok_or_else(|| format!("[{section}] is not a table"))?, name)
        }
    };
    match table.get_mut(name).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        None => {
            table.insert(name, Item::Value(value));
        }
    }
    Ok(())
}

/// Checks the edited text with the config parser itself, then writes it atomically. Returns the
/// config as the file now says. On any error nothing is written.
pub fn save(path: &Path, s: &EditableSettings) -> Result<Config, EditError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(EditError::Read { path: path.to_path_buf(), source }),
    };
    let edited = apply(path, &text, s)?;
    let config = Config::from_sources(Some(path), Some(&edited), &[]).map_err(EditError::Invalid)?;
    if edited != text {
        write_atomically(path, &edited).map_err(|source| EditError::Write { path: path.to_path_buf(), source })?;
    }
    Ok(config)
}

/// Temp file in the same folder, flushed to disk, then renamed over the target (atomic on one file
/// system; `rename` replaces an existing file on Windows too).
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "malipo.toml".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Malipo for Mama Mboga's shop\nmerchant_name = \"Mama Mboga\"   # shown to customers\nlisten = \"127.0.0.1:9000\"\n\n[daraja]\n# Safaricom's test system\nenvironment = \"sandbox\"\nshortcode = \"600000\"\n\n[agent]\nconfirm_threshold = 6500 # ask twice above this\n";

    fn settings(text: &str) -> EditableSettings {
        let (s, problem) = read(Path::new("m.toml"), Some(text));
        assert!(problem.is_none(), "{problem:?}");
        s
    }

    #[test]
    fn reads_the_file_without_the_environment() {
        let s = settings(FILE);
        assert_eq!(s.merchant_name, "Mama Mboga");
        assert_eq!(s.daraja.environment, "sandbox");
        assert_eq!(s.daraja.transaction_type, "paybill");
        assert_eq!(s.daraja.party_b, "600000");
        assert_eq!(s.agent.confirm_threshold, 6500);
        assert_eq!(s.timezone, "Africa/Nairobi");
    }

    #[test]
    fn unchanged_settings_leave_the_file_exactly_as_it_was() {
        assert_eq!(apply(Path::new("m.toml"), FILE, &settings(FILE)).unwrap(), FILE);
    }

    #[test]
    fn a_change_keeps_comments_and_other_keys() {
        let mut s = settings(FILE);
        s.merchant_name = "Duka la Amani".into();
        s.agent.confirm_threshold = 10_000;
        s.agent.allow_partial = false;
        s.whatsapp.phone_number_id = "109876543210".into();
        let out = apply(Path::new("m.toml"), FILE, &s).unwrap();
        assert!(out.contains("# Malipo for Mama Mboga's shop"), "{out}");
        assert!(out.contains("merchant_name = \"Duka la Amani\"   # shown to customers"), "{out}");
        assert!(out.contains("confirm_threshold = 10000 # ask twice above this"), "{out}");
        assert!(out.contains("listen = \"127.0.0.1:9000\""), "{out}");
        assert!(out.contains("# Safaricom's test system\nenvironment = \"sandbox\""), "{out}");
        assert!(out.contains("allow_partial = false"), "{out}");
        assert!(out.contains("[whatsapp]") && out.contains("phone_number_id = \"109876543210\""), "{out}");
        // Defaults that did not change are not written out.
        assert!(!out.contains("llm_model"), "{out}");
        let reread = settings(&out);
        assert_eq!(reread, s);
    }

    #[test]
    fn a_till_keeps_its_own_party_b_and_a_paybill_follows_the_shortcode() {
        let mut s = settings(FILE);
        s.daraja.transaction_type = "till".into();
        s.daraja.party_b = "5123456".into();
        let out = apply(Path::new("m.toml"), FILE, &s).unwrap();
        assert!(out.contains("transaction_type = \"CustomerBuyGoodsOnline\"") && out.contains("party_b = \"5123456\""), "{out}");
        s.daraja.transaction_type = "paybill".into();
        s.daraja.shortcode = "700700".into();
        let out = apply(Path::new("m.toml"), &out, &s).unwrap();
        assert_eq!(settings(&out).daraja.party_b, "700700");
    }

    #[test]
    fn inbound_and_languages_are_saved_and_a_relay_needs_its_address() {
        let mut s = defaults();
        s.agent.languages = "sw".into();
        s.inbound.mode = "relay".into();
        let dir = tempfile::tempdir().unwrap();
        let e = save(&dir.path().join("malipo.toml"), &s).unwrap_err();
        assert_eq!(e.key(), Some("inbound.relay_url"), "{e}");
        s.inbound.relay_url = "https://relay.example.co.ke".into();
        let out = apply(Path::new("m.toml"), "", &s).unwrap();
        assert!(out.contains("languages = \"sw\"") && out.contains("[inbound]") && out.contains("mode = \"relay\""), "{out}");
        assert_eq!(settings(&out), s);
    }

    #[test]
    fn an_empty_or_missing_file_gets_only_what_changed() {
        let mut s = defaults();
        s.timezone = "Africa/Dar_es_Salaam".into();
        let out = apply(Path::new("m.toml"), "", &s).unwrap();
        assert_eq!(out.trim(), "timezone = \"Africa/Dar_es_Salaam\"");
    }

    #[test]
    fn a_bad_value_is_refused_with_its_key_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malipo.toml");
        std::fs::write(&path, FILE).unwrap();
        let mut s = settings(FILE);
        s.timezone = "Mars/Olympus".into();
        let e = save(&path, &s).unwrap_err();
        assert_eq!(e.key(), Some("timezone"), "{e}");
        s.timezone = "Africa/Nairobi".into();
        s.daraja.shortcode = "12ab".into();
        assert_eq!(save(&path, &s).unwrap_err().key(), Some("daraja.shortcode"));
        s.daraja.shortcode = "600000".into();
        s.agent.confirmation_timeout_minutes = -5;
        assert_eq!(save(&path, &s).unwrap_err().key(), Some("agent.confirmation_timeout_minutes"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), FILE, "nothing written");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no temp files left: {names:?}");
    }

    #[test]
    fn save_writes_atomically_and_creates_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config").join("malipo.toml");
        let mut s = defaults();
        s.merchant_name = "Kibanda cha Juma".into();
        s.agent.llm_enabled = true;
        let config = save(&path, &s).unwrap();
        assert_eq!(config.merchant_name, "Kibanda cha Juma");
        assert!(config.agent.llm_enabled);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[agent]\nllm_enabled = true"), "{text}");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_that_is_not_toml_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malipo.toml");
        std::fs::write(&path, "merchant_name = \"unterminated\n").unwrap();
        assert!(matches!(save(&path, &defaults()), Err(EditError::Syntax { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "merchant_name = \"unterminated\n");
    }

    #[test]
    fn a_file_with_a_bad_value_is_fixed_by_what_the_form_shows() {
        let broken = "timezone = \"Mars/Olympus\" # oops\n";
        let (s, problem) = read(Path::new("m.toml"), Some(broken));
        assert!(problem.unwrap().to_string().contains("timezone"));
        assert_eq!(s, defaults());
        let out = apply(Path::new("m.toml"), broken, &s).unwrap();
        assert!(out.contains("timezone = \"Africa/Nairobi\" # oops"), "{out}");
        assert!(Config::from_sources(Some(Path::new("m.toml")), Some(&out), &[]).is_ok());
    }
}
