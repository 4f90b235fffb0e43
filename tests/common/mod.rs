//! Helpers shared by the integration tests: temp databases, the CLI binary, a running `malipo serve`.
#![allow(dead_code)]

pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use malipo::domain::{InvoiceNo, Kes, Msisdn};
use malipo::store::invoices::{self, NewInvoice};
use malipo::store::Store;

pub fn malipo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_malipo")
}

/// A command for `malipo` isolated from the developer's own config, data and keyring.
pub fn malipo(dir: &Path) -> Command {
    let mut cmd = Command::new(malipo_bin());
    isolate(&mut cmd, dir);
    cmd
}

/// Points every path Malipo might touch into `dir` and clears MALIPO_* from the environment.
pub fn isolate(cmd: &mut Command, dir: &Path) {
    for (k, _) in std::env::vars() {
        if k.starts_with("MALIPO_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("MALIPO_DATABASE", dir.join("malipo.db"))
        .env("MALIPO_LOG_DIR", dir.join("logs"))
        .env("MALIPO_LISTEN", "127.0.0.1:0");
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("malipo.db")
}

pub fn new_invoice(number: &str, customer: &str, phone: &str, amount: i64) -> NewInvoice {
    NewInvoice {
        number: InvoiceNo::parse(number).unwrap(),
        customer_name: customer.to_string(),
        phone: Some(Msisdn::parse(phone).unwrap()),
        amount: Kes::positive(amount).unwrap(),
        balance: None,
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        due_date: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
        description: "Goods on credit".into(),
    }
}

/// Seeds two invoices into the database at `dir`. Scheduled reminders are switched off so that what
/// a test sees does not depend on the time of day it runs.
pub fn seed(dir: &Path) {
    let store = Store::open(&db_path(dir)).unwrap();
    store
        .write(|tx| {
            invoices::insert(tx, &new_invoice("INV-1042", "Wanjiku Kamau", "0712345678", 2500), Utc::now())?;
            invoices::insert(tx, &new_invoice("INV-1043", "Otieno Ochieng", "0722000111", 12500), Utc::now())?;
            let off = malipo::reminders::ReminderPolicy { enabled: false, ..Default::default() };
            malipo::reminders::save_policy(tx, &off, Utc::now()).map(|r| r.expect("a valid policy"))
        })
        .unwrap();
}

/// A `malipo serve` child process; killed when dropped.
pub struct Served {
    pub child: Child,
    pub base_url: String,
}

impl Served {
    pub fn start(dir: &Path) -> Served {
        let mut cmd = malipo(dir);
        cmd.arg("serve").stdout(Stdio::piped()).stderr(Stdio::piped());
        Self::start_with(cmd)
    }

    pub fn start_with(mut cmd: Command) -> Served {
        let mut child = cmd.spawn().expect("malipo serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Malipo listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base_url) => Served { child, base_url },
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("malipo serve did not start: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    #[cfg(unix)]
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "malipo serve did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(unix)]
pub fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}
