//! Copies of the merchant's database: taken automatically before a migration or a restore (the last
//! few kept), and by hand with `malipo backup`. They live in `backups/` next to the database.
//!
//! A backup is `VACUUM INTO`: a consistent, compact snapshot taken while Malipo keeps running.
//! A restore writes the copy back with SQLite's backup API while holding the database exclusively,
//! so it is refused, not raced, while the window or `malipo serve` has the database open.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, MAIN_DB};

use super::{schema_version, Result, StoreError};

/// Automatic backups kept per database; manual ones are never removed.
pub const KEEP_AUTOMATIC: usize = 5;

/// Automatic backups carry this in their name, so pruning never touches a merchant's own copies.
const AUTOMATIC_MARK: &str = "-before-";

/// Where backups of the database at `db` go: `backups/` in the same folder.
pub fn backups_dir(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new("")).join("backups")
}

/// A file name that sorts by time: `20261204T195501.123Z-manual.db`.
fn stamped(what: &str) -> String {
    format!("{}-{what}.db", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Writes a consistent copy of the database `conn` has open to `dest`, which must not exist yet.
pub fn copy_to(conn: &Connection, dest: &Path) -> Result<()> {
    let fail = |reason: String| StoreError::Backup { to: dest.to_path_buf(), reason };
    if dest.exists() {
        return Err(fail("the file already exists; choose another name".into()));
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let target = dest.to_str().ok_or_else(|| fail("the path is not valid UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Takes an automatic backup of the database at `db` (open on `conn`) named after `why`, e.g.
/// `before-schema-6`, and removes the oldest automatic ones beyond [`KEEP_AUTOMATIC`].
pub fn automatic(conn: &Connection, db: &Path, why: &str) -> Result<PathBuf> {
    let dest = automatic_copy(conn, db, why)?;
    prune(&backups_dir(db), KEEP_AUTOMATIC);
    Ok(dest)
}

fn automatic_copy(conn: &Connection, db: &Path, why: &str) -> Result<PathBuf> {
    let dest = backups_dir(db).join(stamped(&format!("before-{why}")));
    copy_to(conn, &dest)?;
    Ok(dest)
}

/// Removes all but the newest `keep` automatic backups in `dir`. Best effort: a file that cannot be
/// removed stays, and the backup that was just taken is never at risk.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut automatic: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(AUTOMATIC_MARK) && n.ends_with(".db")))
        .collect();
    automatic.sort();
    let excess = automatic.len().saturating_sub(keep);
    for old in &automatic[..excess] {
        if let Err(e) = std::fs::remove_file(old) {
            tracing::warn!(file = %old.display(), error = %e, "could not remove an old automatic backup");
        }
    }
}

/// `malipo backup [--to FILE]`: a copy of the database at `db`, by default in its `backups/` folder.
pub fn manual(db: &Path, to: Option<&Path>) -> Result<PathBuf> {
    let dest = to.map(Path::to_path_buf).unwrap_or_else(|| backups_dir(db).join(stamped("manual")));
    if !db.exists() {
        let reason = format!("there is no database at {} yet, so nothing to back up", db.display());
        return Err(StoreError::Backup { to: dest, reason });
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| StoreError::Open { path: db.to_path_buf(), source })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    copy_to(&conn, &dest)?;
    Ok(dest)
}

/// Checks that `file` is a Malipo database this build can open, and returns its schema version.
pub fn check(file: &Path) -> Result<u32> {
    let not_malipo = |reason: &str| StoreError::NotMalipo { path: file.to_path_buf(), reason: reason.to_string() };
    if !file.is_file() {
        return Err(StoreError::NotFound(format!("backup file {}", file.display())));
    }
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| StoreError::Open { path: file.to_path_buf(), source })?;
    // Any read fails on a file that is not SQLite at all.
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|_| not_malipo("not an SQLite database"))?;
    let tables: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('invoices', 'settings', 'audit_log')",
        [],
        |r| r.get(0),
    )?;
    if version == 0 || tables < 3 {
        return Err(not_malipo("it lacks Malipo's tables"));
    }
    let known = schema_version();
    if version > known {
        return Err(StoreError::NewerSchema { path: file.to_path_buf(), found: version, known });
    }
    let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(not_malipo(&format!("it is damaged ({verdict})")));
    }
    Ok(version)
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The backup of the database as it was before, if there was one.
    pub previous: Option<PathBuf>,
    /// The restored database's schema; it is migrated the next time Malipo opens it.
    pub schema: u32,
}

/// `malipo restore FILE`: replaces the database at `db` with the backup `from`, after checking the
/// backup and taking an automatic backup of the current database. Refused while Malipo runs.
pub fn restore(db: &Path, from: &Path) -> Result<Restored> {
    let schema = check(from)?;
    if db.exists() && std::fs::canonicalize(db).ok() == std::fs::canonicalize(from).ok() {
        return Err(StoreError::NotMalipo { path: from.to_path_buf(), reason: "it is the database itself, not a backup".into() });
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backup { to: db.to_path_buf(), reason: e.to_string() })?;
    }
    let mut conn = Connection::open(db).map_err(|source| StoreError::Open { path: db.to_path_buf(), source })?;
    // Long enough for a command's brief read to finish; a running engine holds the database for good.
    conn.busy_timeout(std::time::Duration::from_secs(1))?;
    // Exclusive locking mode keeps the lock after the transaction ends, until the connection closes.
    // Any other connection (the window, `malipo serve`, another command) makes this fail at once.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    if let Err(e) = conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;") {
        return Err(match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => StoreError::InUse { path: db.to_path_buf() },
            _ => e.into(),
        });
    }
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let previous = if current > 0 { Some(automatic_copy(&conn, db, "restore")?) } else { None };
    conn.restore(MAIN_DB, from, None::<fn(rusqlite::backup::Progress)>)?;
    // Only now: the backup being restored may itself be the oldest automatic one.
    prune(&backups_dir(db), KEEP_AUTOMATIC);
    let restored: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if restored != schema {
        return Err(StoreError::Corrupt(format!("after restoring {} the database reports schema {restored}, not {schema}", from.display())));
    }
    tracing::info!(from = %from.display(), schema, previous = ?previous, "database restored");
    Ok(Restored { previous, schema })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn pruning_keeps_the_newest_automatic_backups_and_every_manual_one() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["20260101T000000.000Z-manual.db", "notes.txt"] {
            std::fs::write(dir.path().join(n), "x").unwrap();
        }
        for i in 0..7 {
            std::fs::write(dir.path().join(format!("2026010{i}T000000.000Z-before-schema-6.db")), "x").unwrap();
        }
        prune(dir.path(), 3);
        assert_eq!(
            names(dir.path()),
            [
                "20260101T000000.000Z-manual.db",
                "20260104T000000.000Z-before-schema-6.db",
                "20260105T000000.000Z-before-schema-6.db",
                "20260106T000000.000Z-before-schema-6.db",
                "notes.txt"
            ]
        );
    }

    #[test]
    fn a_copy_is_a_malipo_database_with_the_same_schema() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("malipo.db");
        let store = Store::open(&db).unwrap();
        store.write(|tx| Ok(tx.execute("INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', 'x')", [])?)).unwrap();
        let copy = manual(&db, None).unwrap();
        assert_eq!(copy.parent().unwrap(), backups_dir(&db));
        assert_eq!(check(&copy).unwrap(), schema_version());
        // An existing file is never overwritten.
        let again = manual(&db, Some(&copy)).unwrap_err();
        assert!(again.to_string().contains("already exists"), "{again}");
    }

    #[test]
    fn check_names_the_file_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.db");
        std::fs::write(&text, "not a database at all, just some text that is long enough").unwrap();
        let e = check(&text).unwrap_err().to_string();
        assert!(e.contains("notes.db") && e.contains("not an SQLite database"), "{e}");

        let other = dir.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x); PRAGMA user_version = 3;").unwrap();
        let e = check(&other).unwrap_err().to_string();
        assert!(e.contains("other.db") && e.contains("lacks Malipo's tables"), "{e}");

        let e = check(&dir.path().join("missing.db")).unwrap_err().to_string();
        assert!(e.contains("missing.db") && e.contains("not found"), "{e}");
    }

    #[test]
    fn restoring_the_oldest_automatic_backup_works_although_the_restore_adds_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("malipo.db");
        drop(Store::open(&db).unwrap());
        let conn = Connection::open(&db).unwrap();
        let oldest = automatic(&conn, &db, "schema-2").unwrap();
        for _ in 1..KEEP_AUTOMATIC {
            std::thread::sleep(std::time::Duration::from_millis(2)); // names are stamped to the millisecond
            automatic(&conn, &db, "schema-3").unwrap();
        }
        drop(conn);
        restore(&db, &oldest).unwrap();
        assert_eq!(std::fs::read_dir(backups_dir(&db)).unwrap().count(), KEEP_AUTOMATIC);
        assert!(!oldest.exists(), "pruned once it was restored");
    }

    #[test]
    fn restore_is_refused_while_the_database_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("malipo.db");
        let store = Store::open(&db).unwrap();
        let copy = manual(&db, None).unwrap();
        let e = restore(&db, &copy).unwrap_err();
        assert!(matches!(e, StoreError::InUse { .. }), "{e}");
        drop(store);
        assert_eq!(restore(&db, &copy).unwrap().schema, schema_version());
    }
}
