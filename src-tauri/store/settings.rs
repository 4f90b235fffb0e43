//! Non-secret settings changed at run time, as JSON values under a key.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::{de::DeserializeOwned, Serialize};

use super::{ts, Result, StoreError};

pub fn get<T: DeserializeOwned>(conn: &Connection, key: &str) -> Result<Option<T>> {
    let raw: Option<String> = conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?;
    raw.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))).transpose()
}

pub fn set<T: Serialize>(tx: &Transaction, key: &str, value: &T, now: DateTime<Utc>) -> Result<()> {
    let json = serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, json, ts(now)),
    )?;
    Ok(())
}

/// A random token kept under `key`, created on first use (e.g. the Daraja callback path token).
pub fn token(tx: &Transaction, key: &str, now: DateTime<Utc>) -> Result<String> {
    if let Some(t) = get::<String>(tx, key)? {
        return Ok(t);
    }
    let t = random_token();
    set(tx, key, &t, now)?;
    Ok(t)
}

/// 32 random bytes as hex: unguessable.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[test]
    fn settings_round_trip_and_tokens_are_stable() {
        let s = temp_store();
        let now = Utc::now();
        s.write(|tx| set(tx, "agent.languages", &vec!["en", "sw"], now)).unwrap();
        let v: Vec<String> = s.read(|c| get(c, "agent.languages")).unwrap().unwrap();
        assert_eq!(v, ["en", "sw"]);
        let t1 = s.write(|tx| token(tx, "daraja.callback_token", now)).unwrap();
        let t2 = s.write(|tx| token(tx, "daraja.callback_token", now)).unwrap();
        assert_eq!(t1, t2);
        assert_eq!(t1.len(), 64);
    }
}
