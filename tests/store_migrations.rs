//! The store as a merchant's data depends on it: created fresh, reopened without loss, and refused
//! (not corrupted) by an older binary.

use malipo::store::{invoices, schema_version, Store, StoreError};

mod common;

#[test]
fn a_new_database_is_created_with_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/malipo.db");
    let store = Store::open(&path).unwrap();
    assert!(path.exists());
    let version: u32 = store.read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?)).unwrap();
    assert_eq!(version, schema_version());
}

#[test]
fn reopening_keeps_every_invoice() {
    let dir = tempfile::tempdir().unwrap();
    common::seed(dir.path());
    let again = Store::open(&common::db_path(dir.path())).unwrap();
    let rows = again.read(invoices::list).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(again.read(|c| invoices::by_number(c, "inv-1042")).unwrap().unwrap().balance.shillings(), 2500);
}

#[test]
fn a_database_from_a_newer_malipo_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(dir.path());
    common::seed(dir.path());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema_version() + 1).unwrap();
    }
    let err = Store::open(&path).err().expect("a newer schema is refused");
    assert!(matches!(err, StoreError::NewerSchema { .. }));
    assert!(err.to_string().contains("newer Malipo"), "{err}");
    // Nothing was changed: the data and the newer version are still there.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM invoices", [], |r| r.get(0)).unwrap();
    assert_eq!((v, n), (schema_version() + 1, 2));
}
