//! The relay's own SQLite file: each verified webhook event, stored once per (source, external_id)
//! before the relay answers 200, encrypted at rest, until the desktop acknowledges it.
//!
//! Why encrypted: a VPS disk, its snapshots and backups are outside the merchant's control, and the
//! events hold customers' names, numbers, messages and payments. The key is derived from the relay
//! key, which lives only in the relay's environment, so a copied database file reveals nothing but
//! event ids and times. Acknowledged events lose their content at once; their ids stay until the
//! retention ends, so a webhook that Meta or Daraja repeats later is still recognised and not
//! delivered twice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use rusqlite::{params_from_iter, Connection};
use tokio::sync::watch;

use super::keys::RelayKey;
use super::wire::{RelayEvent, SELF_TEST};
use crate::store::ts;

const SCHEMA_VERSION: u32 = 1;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    -- nonce || ciphertext; NULL once acknowledged.
    sealed      BLOB,
    acked_at    TEXT,
    UNIQUE (source, external_id)
);
CREATE INDEX IF NOT EXISTS events_waiting ON events(id) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS events_by_age ON events(received_at);
";

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("relay database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("relay database {path} was written by a newer Malipo (schema {found}); update this relay")]
    NewerSchema { path: PathBuf, found: u32 },
    #[error("relay database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("relay database task failed: {0}")]
    Task(String),
    #[error("an event could not be encrypted")]
    Seal,
}

/// Encrypts event bodies with XChaCha20-Poly1305 (random 24-byte nonces, safe to pick at random).
/// The event's source and id are bound in as associated data, so a body cannot be moved to another row.
struct Sealer(XChaCha20Poly1305);

impl Sealer {
    fn new(key: &RelayKey) -> Self {
        Sealer(XChaCha20Poly1305::new(Key::from_slice(&key.storage_key())))
    }

    fn aad(source: &str, external_id: &str) -> Vec<u8> {
        [source.as_bytes(), b"\0", external_id.as_bytes()].concat()
    }

    fn seal(&self, source: &str, external_id: &str, body: &str) -> Result<Vec<u8>, QueueError> {
        let nonce: [u8; 24] = rand::random();
        let aad = Self::aad(source, external_id);
        let sealed = self.0.encrypt(XNonce::from_slice(&nonce), Payload { msg: body.as_bytes(), aad: &aad }).map_err(|_| QueueError::Seal)?;
        Ok([&nonce[..], &sealed].concat())
    }

    /// None when the bytes were not sealed with this key for this event (say, the key was changed).
    fn open(&self, source: &str, external_id: &str, sealed: &[u8]) -> Option<String> {
        let (nonce, ciphertext) = (sealed.get(..24)?, sealed.get(24..)?);
        let aad = Self::aad(source, external_id);
        let plain = self.0.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad }).ok()?;
        String::from_utf8(plain).ok()
    }
}

/// What a purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Never acknowledged: the desktop did not connect within the retention.
    pub undelivered: usize,
    pub acknowledged: usize,
}

#[derive(Clone)]
pub struct Queue {
    conn: Arc<Mutex<Connection>>,
    sealer: Arc<Sealer>,
    /// Bumped on every new event; long polls wait on it.
    changed: Arc<watch::Sender<u64>>,
}

impl Queue {
    pub fn open(path: &Path, key: &RelayKey) -> Result<Queue, QueueError> {
        let open_err = |source| QueueError::Open { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).map_err(open_err)?;
        // FULL: an event answered with 200 must survive a power cut, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(open_err)?;
        if found > SCHEMA_VERSION {
            return Err(QueueError::NewerSchema { path: path.to_path_buf(), found });
        }
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(open_err)?;
        let (changed, _) = watch::channel(0);
        Ok(Queue { conn: Arc::new(Mutex::new(conn)), sealer: Arc::new(Sealer::new(key)), changed: Arc::new(changed) })
    }

    async fn with_conn<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> Result<T, QueueError> + Send + 'static) -> Result<T, QueueError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(|e| QueueError::Task(e.to_string()))?
    }

    /// Stores events durably before the caller answers 200. Returns how many were new (the rest were
    /// already stored: a webhook repeated by Meta or Daraja).
    pub async fn push(&self, source: &'static str, events: Vec<(String, String)>, now: DateTime<Utc>) -> Result<usize, QueueError> {
        let mut rows = Vec::with_capacity(events.len());
        for (external_id, body) in events {
            let sealed = self.sealer.seal(source, &external_id, &body)?;
            rows.push((external_id, sealed));
        }
        let new = self
            .with_conn(move |conn| {
                let tx = conn.transaction()?;
                let mut new = 0;
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO events (source, external_id, received_at, sealed) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (source, external_id) DO NOTHING",
                    )?;
                    for (external_id, sealed) in &rows {
                        new += stmt.execute((source, external_id, ts(now), sealed))?;
                    }
                }
                tx.commit()?;
                Ok(new)
            })
            .await?;
        if new > 0 {
            self.changed.send_modify(|n| *n += 1);
        }
        Ok(new)
    }

    /// Unacknowledged events, oldest first: only the self-test's, or only real ones. An event that
    /// cannot be decrypted (sealed with an earlier key) is left for the purge and logged.
    pub async fn waiting(&self, self_test: bool, limit: usize) -> Result<Vec<RelayEvent>, QueueError> {
        let rows: Vec<(i64, String, String, String, Vec<u8>)> = self
            .with_conn(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, source, external_id, received_at, sealed FROM events
                     WHERE acked_at IS NULL AND (source = ?1) = ?2 ORDER BY id LIMIT ?3",
                )?;
                let rows = stmt
                    .query_map((SELF_TEST, self_test, limit as i64), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(rows)
            })
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for (id, source, external_id, received_at, sealed) in rows {
            match self.sealer.open(&source, &external_id, &sealed) {
                Some(body) => events.push(RelayEvent { id, source, external_id, received_at, body }),
                None => tracing::error!(event = id, source, "a stored event cannot be decrypted with the current relay key; it stays until the retention ends"),
            }
        }
        Ok(events)
    }

    /// Forgets the content of acknowledged events. Returns how many were newly acknowledged.
    pub async fn ack(&self, ids: Vec<i64>, now: DateTime<Utc>) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.with_conn(move |conn| {
            let placeholders = vec!["?"; ids.len()].join(",");
            let sql = format!("UPDATE events SET sealed = NULL, acked_at = '{}' WHERE acked_at IS NULL AND id IN ({placeholders})", ts(now));
            Ok(conn.execute(&sql, params_from_iter(ids.iter()))?)
        })
        .await
    }

    /// Deletes every event received before `now - retention`, delivered or not.
    pub async fn purge(&self, now: DateTime<Utc>, retention: chrono::Duration) -> Result<Purged, QueueError> {
        let cutoff = ts(now - retention);
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            let undelivered = tx.execute("DELETE FROM events WHERE received_at < ?1 AND acked_at IS NULL", [&cutoff])?;
            let acknowledged = tx.execute("DELETE FROM events WHERE received_at < ?1", [&cutoff])?;
            tx.commit()?;
            Ok(Purged { undelivered, acknowledged })
        })
        .await
    }

    /// How many events wait for the desktop.
    pub async fn waiting_count(&self) -> Result<i64, QueueError> {
        self.with_conn(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM events WHERE acked_at IS NULL AND source != ?1", [SELF_TEST], |r| r.get(0))?))
            .await
    }

    /// Changes whenever a new event is stored.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    fn key(k: &str) -> RelayKey {
        RelayKey::parse(Some(Secret::new(k.repeat(32)))).unwrap()
    }

    #[test]
    fn sealed_bodies_open_only_with_the_same_key_and_row() {
        let sealer = Sealer::new(&key("a"));
        let sealed = sealer.seal("whatsapp", "wamid.1", "Nataka kulipa 2500").unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("kulipa"));
        assert_eq!(sealer.open("whatsapp", "wamid.1", &sealed).as_deref(), Some("Nataka kulipa 2500"));
        assert_eq!(sealer.open("whatsapp", "wamid.2", &sealed), None, "bound to its row");
        assert_eq!(Sealer::new(&key("b")).open("whatsapp", "wamid.1", &sealed), None);
        assert_eq!(sealer.open("whatsapp", "wamid.1", &sealed[..10]), None);
        assert_ne!(sealer.seal("whatsapp", "wamid.1", "x").unwrap(), sealer.seal("whatsapp", "wamid.1", "x").unwrap(), "fresh nonce each time");
    }

    #[tokio::test]
    async fn events_are_stored_once_delivered_until_acked_and_purged_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let q = Queue::open(&path, &key("a")).unwrap();
        let t0 = Utc::now();
        let events = vec![("wamid.1".to_string(), "{\"a\":1}".to_string()), ("wamid.2".to_string(), "{\"a\":2}".to_string())];
        assert_eq!(q.push("whatsapp", events.clone(), t0).await.unwrap(), 2);
        assert_eq!(q.push("whatsapp", events, t0).await.unwrap(), 0, "a repeated webhook is not stored again");
        q.push(SELF_TEST, vec![("nonce".into(), "{}".into())], t0).await.unwrap();

        let waiting = q.waiting(false, 10).await.unwrap();
        assert_eq!(waiting.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(), ["{\"a\":1}", "{\"a\":2}"]);
        assert_eq!(q.waiting(true, 10).await.unwrap().len(), 1, "self-test events apart");
        assert_eq!(q.waiting(false, 10).await.unwrap().len(), 2, "unacknowledged events are handed out again");

        assert_eq!(q.ack(vec![waiting[0].id, 9999], t0).await.unwrap(), 1);
        assert_eq!(q.ack(vec![waiting[0].id], t0).await.unwrap(), 0);
        assert_eq!(q.waiting_count().await.unwrap(), 1);
        assert_eq!(q.push("whatsapp", vec![("wamid.1".into(), "{}".into())], t0).await.unwrap(), 0, "still known after the ack");

        // Reopened (the relay restarted): the unacknowledged event is still there.
        drop(q);
        let q = Queue::open(&path, &key("a")).unwrap();
        assert_eq!(q.waiting(false, 10).await.unwrap().len(), 1);
        let purged = q.purge(t0 + chrono::Duration::days(8), chrono::Duration::days(7)).await.unwrap();
        assert_eq!(purged, Purged { undelivered: 2, acknowledged: 1 });
        assert_eq!(q.waiting_count().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn content_is_not_in_the_file_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let q = Queue::open(&path, &key("a")).unwrap();
        q.push("whatsapp", vec![("wamid.9".into(), "Habari Wanjiku 254712345678".into())], Utc::now()).await.unwrap();
        drop(q);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("Wanjiku") && !text.contains("254712345678"));
    }
}
