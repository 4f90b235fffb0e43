//! The `malipo` command line: the external contract in DESIGN.md. Each subcommand is a thin call into
//! the same services the desktop uses.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::engine::Engine;
use crate::store::invoices;

#[derive(Parser, Debug)]
#[command(name = "malipo", version, about = "Get paid: invoices, WhatsApp reminders and an M-Pesa payment agent")]
pub struct Cli {
    /// Config file (TOML). Default: the OS config dir's malipo.toml if it exists. Env: MALIPO_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the engine without a window: webhook server, agent, reminders.
    Serve,
    /// Run the store-and-forward relay on a public host for a desktop behind NAT.
    Relay,
    /// Import invoices from a CSV or Excel file.
    Import {
        file: PathBuf,
        /// Check the file and list bad rows without saving anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// List invoices.
    Invoices {
        #[arg(long)]
        json: bool,
    },
    /// List payment attempts and ledger entries.
    Payments {
        #[arg(long)]
        json: bool,
    },
    /// Collection report for a period.
    Report {
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<String>,
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: Option<String>,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        #[arg(long)]
        csv: bool,
    },
    /// Show how the agent understands a message (one JSON object a line).
    Understand {
        /// Read one message a line from standard input.
        #[arg(long)]
        batch: bool,
        text: Option<String>,
    },
    /// Send an M-Pesa STK push for an invoice (merchant-initiated).
    RequestPayment {
        invoice: String,
        #[arg(long)]
        amount: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
}

/// An error for the person at the terminal: a message and an exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError { message: e.to_string(), code: 1 }
    }
}

fn not_available(what: &str) -> Result<(), CliError> {
    Err(CliError { message: format!("malipo {what}: not available yet in this version"), code: 2 })
}

/// Entry point for the `malipo` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

fn open_engine(config: Config) -> Result<Engine, CliError> {
    Ok(Engine::open(config, crate::clock::system(), default_secrets())?)
}

/// The keyring (with environment override) where this build has one; the environment otherwise.
pub fn default_secrets() -> Arc<dyn crate::secrets::SecretStore> {
    #[cfg(feature = "desktop")]
    {
        Arc::new(crate::secrets::KeyringSecrets::new())
    }
    #[cfg(not(feature = "desktop"))]
    {
        Arc::new(crate::secrets::EnvSecrets)
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(config),
        Command::Invoices { json } => list_invoices(config, json),
        Command::Relay => not_available("relay"),
        Command::Import { .. } => not_available("import"),
        Command::Payments { .. } => not_available("payments"),
        Command::Report { .. } => not_available("report"),
        Command::Understand { .. } => not_available("understand"),
        Command::RequestPayment { .. } => not_available("request-payment"),
    }
}

fn serve(config: Config) -> Result<(), CliError> {
    let _logs = crate::logging::init(Some(&config.log_dir));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listen = config.listen;
        // Headless: secrets come from the environment only.
        let engine = Engine::open(config, crate::clock::system(), Arc::new(crate::secrets::EnvSecrets))?;
        let listener = crate::server::bind(listen).await.map_err(|e| CliError::from(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, database = %engine.store.path().display(), "malipo serve started");
        // Tests and scripts read the bound address (port 0 picks a free one) from this line.
        println!("Malipo listening on http://{addr}");
        std::io::stdout().flush()?;
        crate::server::serve(listener, engine, crate::server::shutdown_signal()).await?;
        tracing::info!("malipo serve stopped");
        Ok(())
    })
}

fn list_invoices(config: Config, json: bool) -> Result<(), CliError> {
    let engine = open_engine(config)?;
    let rows = engine.store.read(invoices::list)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "No invoices yet. Import some with `malipo import FILE`.")?;
        return Ok(());
    }
    writeln!(out, "{:<14} {:<24} {:>14} {:>14} {:<10} {}", "NUMBER", "CUSTOMER", "AMOUNT", "BALANCE", "DUE", "STATUS")?;
    for i in rows {
        writeln!(
            out,
            "{:<14} {:<24} {:>14} {:>14} {:<10} {}",
            i.number,
            truncate(&i.customer_name, 24),
            i.amount.to_string(),
            i.balance.to_string(),
            i.due_date,
            i.status.as_str()
        )?;
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}
