//! The `malipo` command line as a new user meets it: help, config errors, `serve`, `invoices`.

use std::process::Stdio;

mod common;
use common::{malipo, seed, Served};

#[test]
fn help_lists_every_subcommand_of_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let out = malipo(dir.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for sub in ["serve", "relay", "import", "invoices", "payments", "report", "understand", "request-payment"] {
        assert!(help.contains(sub), "--help lacks {sub}:\n{help}");
    }
}

#[test]
fn relay_without_a_key_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = malipo(dir.path()).arg("relay").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MALIPO_RELAY_KEY") && stderr.contains("malipo relay --new-key"), "{stderr}");
}

#[test]
fn invoices_json_reads_the_store() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let out = malipo(dir.path()).args(["invoices", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let inv = rows.iter().find(|r| r["number"] == "INV-1042").unwrap();
    assert_eq!(inv["amount"], 2500);
    assert_eq!(inv["balance"], 2500);
    assert_eq!(inv["status"], "open");
    assert_eq!(inv["customer_name"], "Wanjiku Kamau");
    // Never the full phone number.
    assert_eq!(inv["customer_phone"], "2547•••••678");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("712345678"));
}

#[test]
fn invoices_as_a_table_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let out = malipo(dir.path()).arg("invoices").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("No invoices yet"));
    seed(dir.path());
    let out = malipo(dir.path()).arg("invoices").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("INV-1043") && table.contains("KES 12,500"), "{table}");
}

#[test]
fn a_bad_environment_value_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = malipo(dir.path()).args(["invoices"]).env("MALIPO_DARAJA_ENVIRONMENT", "live").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("daraja.environment") && err.contains("MALIPO_DARAJA_ENVIRONMENT"), "{err}");
}

#[test]
fn a_bad_config_file_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("malipo.toml");
    std::fs::write(&file, "[agent]\nconfirm_threshold = \"lots\"\n").unwrap();
    let out = malipo(dir.path()).arg("--config").arg(&file).arg("invoices").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.confirm_threshold") && err.contains("malipo.toml"), "{err}");

    std::fs::write(&file, "[whatsapp]\ntoken = \"EAAG...\"\n").unwrap();
    let out = malipo(dir.path()).arg("--config").arg(&file).arg("invoices").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MALIPO_WHATSAPP_TOKEN") && err.contains("keyring"), "{err}");

    let out = malipo(dir.path()).args(["--config", "/nonexistent/malipo.toml", "invoices"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/malipo.toml"));
}

#[test]
fn the_config_file_is_read_when_named_by_malipo_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    let db = dir.path().join("elsewhere.db");
    std::fs::write(&file, format!("database = {:?}\n", db.display().to_string())).unwrap();
    let out = malipo(dir.path()).env_remove("MALIPO_DATABASE").env("MALIPO_CONFIG", &file).arg("invoices").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.exists(), "the database named in the file was created");
}

#[test]
fn serve_answers_healthz_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path());
    let http = common::http();
    let resp = http.get(format!("{}/healthz", served.base_url)).send().unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["daraja"], "simulator");

    // The Daraja callback needs its secret path token: a guess is a 404.
    let resp = http.post(format!("{}/webhooks/daraja/stk/sometoken", served.base_url)).body("{}").send().unwrap();
    assert_eq!(resp.status(), 404);

    #[cfg(unix)]
    {
        let status = served.terminate();
        assert!(status.success(), "exit status after SIGTERM: {status}");
    }
}

#[test]
fn serve_reports_a_busy_port() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = malipo(dir.path()).arg("serve").env("MALIPO_LISTEN", &addr).stdout(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cannot listen on {addr}")));
}

#[test]
fn serve_writes_its_log_in_the_log_dir() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path());
    drop(served);
    let logs: Vec<_> = std::fs::read_dir(dir.path().join("logs")).unwrap().collect();
    assert!(!logs.is_empty(), "a log file is written in the log dir");
}

#[test]
fn report_prints_json_csv_and_refuses_a_bad_date() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let out = malipo(dir.path()).args(["report", "--from", "2026-12-01", "--to", "2026-12-31", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Both seeded invoices are due on 4 December and unpaid.
    assert_eq!((r["invoices_due"].as_i64(), r["amount_due"].as_i64(), r["collection_rate_by_count"].as_f64()), (Some(2), Some(15000), Some(0.0)));
    let out = malipo(dir.path()).args(["report", "--from", "2026-12-01", "--to", "2026-12-31", "--csv"]).output().unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("metric,value\n") && csv.contains("\namount_due,15000\n"), "{csv}");
    let out = malipo(dir.path()).args(["report", "--from", "31/12/2026"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
}
