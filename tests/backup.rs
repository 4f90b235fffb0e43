//! `malipo backup` and `malipo restore` as a merchant uses them: a copy that restores what was lost, a
//! current database that is backed up before it is replaced, and clear refusals for a file that is
//! not a Malipo database, one from a newer Malipo, and a database Malipo is running on.

use std::path::{Path, PathBuf};
use std::process::Output;

use malipo::store::{backup::backups_dir, schema_version};

mod common;
use common::{db_path, malipo, seed, Served};

fn run(dir: &Path, args: &[&str]) -> Output {
    malipo(dir).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn invoice_count(db: &Path) -> i64 {
    rusqlite::Connection::open(db).unwrap().query_row("SELECT COUNT(*) FROM invoices", [], |r| r.get(0)).unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_backup_restores_what_was_lost_and_the_replaced_database_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let db = db_path(dir.path());

    let out = run(dir.path(), &["backup"]);
    assert!(out.status.success(), "{}", text(&out));
    let copies = files_in(&backups_dir(&db));
    assert_eq!(copies.len(), 1);
    assert!(text(&out).contains(copies[0].to_str().unwrap()), "the output names the copy: {}", text(&out));

    // The merchant loses an invoice.
    rusqlite::Connection::open(&db).unwrap().execute("DELETE FROM invoices WHERE number = 'INV-1042'", []).unwrap();
    assert_eq!(invoice_count(&db), 1);

    let out = run(dir.path(), &["restore", copies[0].to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("schema {}", schema_version())), "{}", text(&out));
    assert_eq!(invoice_count(&db), 2);
    // The database as it was before the restore is kept too.
    let before = files_in(&backups_dir(&db)).into_iter().find(|p| p.to_str().unwrap().ends_with("-before-restore.db")).expect("a before-restore backup");
    assert_eq!(invoice_count(&before), 1);
    // And the app opens the restored database as usual.
    let out = run(dir.path(), &["invoices", "--json"]);
    assert!(out.status.success() && text(&out).contains("INV-1042"), "{}", text(&out));
}

#[test]
fn backup_to_a_file_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let to = dir.path().join("usb/malipo-monday.db");
    let out = run(dir.path(), &["backup", "--to", to.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(invoice_count(&to), 2);

    let out = run(dir.path(), &["backup", "--to", to.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("malipo-monday.db") && text(&out).contains("already exists"), "{}", text(&out));
}

#[test]
fn backup_without_a_database_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("nothing to back up"), "{}", text(&out));
}

#[test]
fn restore_refuses_a_file_that_is_not_a_malipo_database() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let sheet = dir.path().join("invoices.csv");
    std::fs::write(&sheet, "number,customer,amount\nINV-1,Wanjiku,2500\n").unwrap();
    let out = run(dir.path(), &["restore", sheet.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("invoices.csv is not a Malipo database"), "{}", text(&out));
    assert_eq!(invoice_count(&db_path(dir.path())), 2);
}

#[test]
fn restore_refuses_a_backup_from_a_newer_malipo() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let newer = dir.path().join("from-the-future.db");
    assert!(run(dir.path(), &["backup", "--to", newer.to_str().unwrap()]).status.success());
    rusqlite::Connection::open(&newer).unwrap().pragma_update(None, "user_version", schema_version() + 1).unwrap();
    rusqlite::Connection::open(db_path(dir.path())).unwrap().execute("DELETE FROM invoices WHERE number = 'INV-1042'", []).unwrap();

    let out = run(dir.path(), &["restore", newer.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("from-the-future.db") && text(&out).contains("newer Malipo"), "{}", text(&out));
    assert_eq!(invoice_count(&db_path(dir.path())), 1, "the current database is untouched");
}

#[test]
fn restore_is_refused_while_malipo_is_running_on_the_database() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let copy = dir.path().join("copy.db");
    assert!(run(dir.path(), &["backup", "--to", copy.to_str().unwrap()]).status.success());

    let served = Served::start(dir.path());
    let out = run(dir.path(), &["restore", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is in use") && text(&out).contains("malipo serve"), "{}", text(&out));
    assert!(!backups_dir(&db_path(dir.path())).exists(), "nothing was written");
    drop(served);

    let out = run(dir.path(), &["restore", copy.to_str().unwrap()]);
    assert!(out.status.success(), "once Malipo has stopped, the restore goes ahead: {}", text(&out));
}
