//! The store: one SQLite file in WAL mode. One writer connection (SQLite allows one writer anyway, and
//! a single owner makes "claim a row" races impossible); readers use their own connections and never
//! block it. Numbered migrations are embedded in the binary and applied in one transaction at open.

pub mod backup;
pub mod customers;
pub mod invoices;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, Transaction};

/// The migrations, in order. Never edit one that has shipped; add the next number.
const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_whatsapp.sql")),
    (3, include_str!("migrations/0003_agent.sql")),
    (4, include_str!("migrations/0004_report_indexes.sql")),
    (5, include_str!("migrations/0005_report_covering.sql")),
];

pub fn schema_version() -> u32 {
    MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path} was written by a newer Malipo (schema {found}, this build knows up to {known}); update Malipo instead of opening it with this version")]
    NewerSchema { path: PathBuf, found: u32, known: u32 },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("migration {version} failed: {source}")]
    Migration { version: u32, source: rusqlite::Error },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database task failed: {0}")]
    Task(String),
    #[error("could not write the backup {to}: {reason}")]
    Backup { to: PathBuf, reason: String },
    #[error("{path} is not a Malipo database: {reason}")]
    NotMalipo { path: PathBuf, reason: String },
    #[error("database {path} is in use: close the Malipo window and stop `malipo serve`, then try again")]
    InUse { path: PathBuf },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Timestamps are stored as fixed-width RFC 3339 UTC so text order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
        let mut writer = Connection::open(path).map_err(open_err)?;
        configure(&writer).map_err(open_err)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite did not switch to WAL; readers may wait for the writer");
        }
        migrate(&mut writer, path)?;
        Ok(Store {
            inner: Arc::new(Inner { path: path.to_path_buf(), writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one write transaction on the writer connection. Committed when `f` returns Ok.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` on a read-only connection. Under WAL it sees the last commit and never blocks the writer.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                )?;
                configure(&c)?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    /// `write` from async code, off the runtime's threads.
    pub async fn write_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write(f)).await.map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// `read` from async code, off the runtime's threads.
    pub async fn read_async<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read(f)).await.map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// A quick liveness check for `/healthz`.
    pub fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = schema_version();
    if found > known {
        return Err(StoreError::NewerSchema { path: path.to_path_buf(), found, known });
    }
    if found == known {
        return Ok(());
    }
    if found > 0 {
        // An existing database about to change shape: keep a copy from before, so an update can be undone.
        let copy = backup::automatic(conn, path, &format!("schema-{known}"))?;
        tracing::info!(backup = %copy.display(), from = found, to = known, "database backed up before migrating");
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    // Another process may have migrated while this one waited for the lock.
    let found: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.execute_batch(sql).map_err(|source| StoreError::Migration { version: *version, source })?;
        tx.pragma_update(None, "user_version", version).map_err(|source| StoreError::Migration { version: *version, source })?;
    }
    tx.commit()?;
    tracing::info!(from = found, to = known, "database schema migrated");
    Ok(())
}

/// Records who did what, for the merchant's audit trail.
pub fn audit(tx: &Transaction, at: DateTime<Utc>, actor: &str, action: &str, subject: &str, detail: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        (ts(at), actor, action, subject, detail),
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A real database file in a temporary directory, removed when dropped.
    pub struct TempStore {
        pub store: Store,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for TempStore {
        type Target = Store;
        fn deref(&self) -> &Store {
            &self.store
        }
    }

    pub fn temp_store() -> TempStore {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("malipo.db")).unwrap();
        TempStore { store, _dir: dir }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::temp_store;
    use super::*;

    #[test]
    fn a_fresh_database_gets_the_latest_schema_in_wal_mode() {
        let s = temp_store();
        let (version, mode, fk): (u32, String, i64) = s
            .write(|tx| {
                Ok((
                    tx.pragma_query_value(None, "user_version", |r| r.get(0))?,
                    tx.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                    tx.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!(version, schema_version());
        assert_eq!(mode, "wal");
        assert_eq!(fk, 1);
    }

    #[test]
    fn an_existing_database_is_backed_up_before_it_is_migrated_and_a_new_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malipo.db");
        // A database as an older Malipo left it: the first three migrations, with a row in it.
        let old = Connection::open(&path).unwrap();
        for (v, sql) in &MIGRATIONS[..3] {
            old.execute_batch(sql).unwrap();
            old.pragma_update(None, "user_version", v).unwrap();
        }
        old.execute("INSERT INTO settings (key, value, updated_at) VALUES ('merchant', 'Mama Wanjiku', 'x')", []).unwrap();
        drop(old);

        let store = Store::open(&path).unwrap();
        let version: u32 = store.read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)).unwrap();
        assert_eq!(version, schema_version());
        let backups: Vec<_> = std::fs::read_dir(backup::backups_dir(&path)).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(backups.len(), 1, "{backups:?}");
        assert!(backups[0].to_str().unwrap().ends_with(&format!("-before-schema-{}.db", schema_version())), "{backups:?}");
        // The backup is the database as it was: old schema, same data.
        let copy = Connection::open(&backups[0]).unwrap();
        let (v, merchant): (u32, String) = (
            copy.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap(),
            copy.query_row("SELECT value FROM settings WHERE key = 'merchant'", [], |r| r.get(0)).unwrap(),
        );
        assert_eq!((v, merchant.as_str()), (3, "Mama Wanjiku"));

        // Opening an up-to-date database, or creating a new one, takes no backup.
        drop(store);
        Store::open(&path).unwrap();
        Store::open(&dir.path().join("fresh/malipo.db")).unwrap();
        assert_eq!(std::fs::read_dir(backup::backups_dir(&path)).unwrap().count(), 1);
        assert!(!dir.path().join("fresh/backups").exists());
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let s = temp_store();
        let r: Result<()> = s.write(|tx| {
            tx.execute("INSERT INTO settings (key, value, updated_at) VALUES ('a', '1', 'x')", [])?;
            Err(StoreError::Conflict("stop".into()))
        });
        assert!(r.is_err());
        let n: i64 = s.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0))?)).unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn readers_do_not_wait_for_an_open_write() {
        let s = temp_store();
        s.write(|tx| Ok(tx.execute("INSERT INTO settings (key, value, updated_at) VALUES ('k', 'old', 'x')", [])?)).unwrap();
        let reader = s.clone();
        s.write(|tx| {
            tx.execute("UPDATE settings SET value = 'new' WHERE key = 'k'", [])?;
            // While this write transaction is open, a reader sees the last commit at once.
            let seen = std::thread::spawn(move || {
                reader.read(|c| Ok(c.query_row("SELECT value FROM settings WHERE key = 'k'", [], |r| r.get::<_, String>(0))?))
            })
            .join()
            .unwrap()
            .unwrap();
            assert_eq!(seen, "old");
            Ok(())
        })
        .unwrap();
    }
}
