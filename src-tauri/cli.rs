//! The `malipo` command line: the external contract in DESIGN.md. Each subcommand is a thin call into
//! the same services the desktop uses.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::config::Config;
use crate::domain::{Kes, Msisdn};
use crate::engine::Engine;
use crate::payments::attempt::{self, State};
use crate::payments::repo;
use crate::payments::ledger;
use crate::store::{invoices, StoreError};

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
    /// Run the store-and-forward relay on a public host for a desktop behind NAT (key: MALIPO_RELAY_KEY).
    Relay {
        /// Print the webhook URLs to paste into Meta and Daraja, then exit.
        #[arg(long)]
        print_urls: bool,
        /// Print a new random relay key, then exit.
        #[arg(long, conflicts_with = "print_urls")]
        new_key: bool,
    },
    /// Import invoices from a CSV or Excel file (.csv, .xlsx, .xls; the first sheet).
    Import {
        file: PathBuf,
        /// Check the file and list bad rows without saving anything.
        #[arg(long)]
        dry_run: bool,
        /// Import the good rows even when some rows have errors (by default a file with errors imports nothing).
        #[arg(long)]
        valid_only: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        /// Choose a column by hand: FIELD=HEADER, e.g. --map phone="Customer Mobile". Fields: number, customer,
        /// phone, amount, balance, due_date, issue_date, description. An empty HEADER ignores that field.
        #[arg(long, value_name = "FIELD=HEADER")]
        map: Vec<String>,
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
        /// Default: the invoice's balance.
        #[arg(long)]
        amount: Option<String>,
        /// Default: the customer's number.
        #[arg(long)]
        phone: Option<String>,
        /// Return once the prompt is sent instead of waiting for the customer.
        #[arg(long)]
        no_wait: bool,
    },
    /// Copy the database to a backup file (default: a new file in `backups/` next to the database).
    Backup {
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// Replace the database with a backup, after backing up the current one. Close Malipo first.
    Restore { file: PathBuf },
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
        Command::Relay { print_urls, new_key } => crate::relay::service::run(config, print_urls, new_key),
        Command::Import { file, dry_run, valid_only, json, map } => import_cmd(config, &file, dry_run, valid_only, json, &map),
        Command::Payments { json } => list_payments(config, json),
        Command::Report { from, to, json, csv } => report_cmd(config, from, to, json, csv),
        Command::Understand { batch, text } => understand_cmd(&config, batch, text),
        Command::RequestPayment { invoice, amount, phone, no_wait } => request_payment(config, &invoice, amount, phone, no_wait),
        Command::Backup { to } => backup_cmd(&config, to.as_deref()),
        Command::Restore { file } => restore_cmd(&config, &file),
    }
}

fn serve(config: Config) -> Result<(), CliError> {
    let _logs = crate::logging::init(Some(&config.log_dir));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listen = config.listen;
        let listener = crate::server::bind(listen).await.map_err(|e| CliError::from(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr()?;
        // Headless: secrets come from the environment only.
        let engine = Engine::open(config, crate::clock::system(), Arc::new(crate::secrets::EnvSecrets))?;
        let app = App::start(engine, &format!("http://{addr}")).await?;
        app.spawn_workers();
        tracing::info!(%addr, database = %app.engine.store.path().display(), "malipo serve started");
        // Tests and scripts read the bound address (port 0 picks a free one) from this line.
        println!("Malipo listening on http://{addr}");
        std::io::stdout().flush()?;
        let stopping = app.clone();
        crate::server::serve(listener, &app, async move {
            crate::server::shutdown_signal().await;
            stopping.shutdown();
        })
        .await?;
        tracing::info!("malipo serve stopped");
        Ok(())
    })
}

fn list_payments(config: Config, json: bool) -> Result<(), CliError> {
    let engine = open_engine(config)?;
    let (attempts, ledger) = engine.store.read(|c| Ok((repo::views(c)?, ledger::list(c)?)))?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "attempts": attempts, "ledger": ledger }))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "Payments received")?;
    if ledger.is_empty() {
        writeln!(out, "  none yet")?;
    }
    for l in &ledger {
        writeln!(
            out,
            "  {:<12} {:>12} {:<12} {:<14} {}",
            l.receipt.as_deref().unwrap_or("(pending)"),
            l.amount.to_string(),
            l.source,
            l.invoice_number.as_deref().unwrap_or("-"),
            l.paid_at
        )?;
    }
    writeln!(out, "\nM-Pesa prompts (STK push)")?;
    if attempts.is_empty() {
        writeln!(out, "  none yet")?;
    }
    for a in &attempts {
        writeln!(out, "  #{:<5} {:<14} {:>12} {:<13} {:<13} {}", a.id, a.invoice_number, a.amount.to_string(), a.phone, a.state.as_str(), a.detail)?;
    }
    Ok(())
}

fn request_payment(config: Config, invoice: &str, amount: Option<String>, phone: Option<String>, no_wait: bool) -> Result<(), CliError> {
    let _logs = crate::logging::init(Some(&config.log_dir));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let local_url = format!("http://{}", config.listen);
        let engine = open_engine(config)?;
        let reference = invoice.to_string();
        let inv = engine.store.read(|c| invoices::by_number(c, &reference)?.ok_or_else(|| StoreError::NotFound(format!("invoice {reference}"))))?;
        let amount = amount.map(|a| Kes::parse(&a)).transpose()?;
        let phone = phone.map(|p| Msisdn::parse(&p)).transpose()?;
        let app = App::start(engine, &local_url).await?;
        let attempt = app.payments.request_for_invoice(inv.id, amount, phone).await.map_err(|e| CliError { message: e.to_string(), code: 1 })?;
        let (phone, amount) = (Msisdn::parse(&attempt.phone)?, attempt.amount);
        println!("Asked {phone} to pay {amount} for {} on their phone (attempt #{}: {}).", inv.number, attempt.id, attempt.state.as_str());
        if no_wait || attempt.state.is_final() {
            return finish(&attempt);
        }
        println!("Waiting for the customer (up to 6 minutes)…");
        let id = attempt.id;
        loop {
            app.payments.poll_due().await.map_err(|e| CliError::from(e.to_string()))?;
            let a = app.engine.store.read(|c| repo::get(c, id))?;
            if a.state.is_final() {
                return finish(&a);
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    })
}

fn finish(a: &repo::Attempt) -> Result<(), CliError> {
    match a.state {
        State::Paid => {
            println!("Paid: {} (M-Pesa receipt {}).", a.amount, a.receipt.as_deref().unwrap_or("pending"));
            Ok(())
        }
        s if s.in_flight() => Ok(()),
        s => Err(CliError {
            message: format!("not paid: {} ({})", s.as_str(), a.result_code.map(attempt::describe).unwrap_or("no answer")),
            code: 3,
        }),
    }
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
    writeln!(out, "{:<14} {:<24} {:>14} {:>14} {:<10} STATUS", "NUMBER", "CUSTOMER", "AMOUNT", "BALANCE", "DUE")?;
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

fn parse_day(flag: &str, value: &str) -> Result<chrono::NaiveDate, CliError> {
    value.parse().map_err(|_| CliError { message: format!("{flag} {value:?} is not a date like 2026-12-31"), code: 2 })
}

/// `malipo report`: the collection report for a period (default: this month so far).
fn report_cmd(config: Config, from: Option<String>, to: Option<String>, json: bool, csv: bool) -> Result<(), CliError> {
    use chrono::Datelike;
    let today = chrono::Utc::now().with_timezone(&config.timezone).date_naive();
    let from = from.map(|f| parse_day("--from", &f)).transpose()?.unwrap_or_else(|| today.with_day(1).unwrap());
    let to = to.map(|t| parse_day("--to", &t)).transpose()?.unwrap_or(today);
    if from > to {
        return Err(CliError { message: format!("--from {from} is after --to {to}"), code: 2 });
    }
    let tz = config.timezone;
    let engine = open_engine(config)?;
    let r = engine.store.read(|c| crate::reports::report(c, from, to, tz))?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
    } else if csv {
        out.write_all(crate::reports::to_csv(&r).as_bytes())?;
    } else {
        let rate = |v: Option<f64>| v.map(|x| format!("{x}%")).unwrap_or_else(|| "—".into());
        writeln!(out, "Collections {from} to {to}")?;
        writeln!(out, "  Collected:            {}", Kes::new(r.amount_collected).unwrap_or_default())?;
        writeln!(out, "  Collection rate:      {} of invoices due, {} of the amount due", rate(r.collection_rate_by_count), rate(r.collection_rate_by_amount))?;
        writeln!(out, "  DSO (countback):      {} days", r.dso_days.map(|d| d.to_string()).unwrap_or_else(|| "—".into()))?;
        writeln!(out, "  Days to pay:          average {}, median {}", r.average_days_to_pay.map(|d| d.to_string()).unwrap_or_else(|| "—".into()), r.median_days_to_pay.map(|d| d.to_string()).unwrap_or_else(|| "—".into()))?;
        writeln!(out, "  Owed, by days late:   current {} · 1–30 {} · 31–60 {} · 61–90 {} · 90+ {} (at risk {})", r.aging.current, r.aging.days_1_30, r.aging.days_31_60, r.aging.days_61_90, r.aging.days_over_90, rate(r.at_risk_share))?;
        writeln!(out, "  CEI:                  {}", rate(r.cei))?;
        writeln!(out, "  Funnel:               reminded {} → replied {} → confirmed {} → pushed {} → paid {}", r.funnel.reminded, r.funnel.replied, r.funnel.confirmed, r.funnel.pushed, r.funnel.paid)?;
    }
    Ok(())
}

/// `malipo understand`: one JSON object a line, for a message given as an argument or, with `--batch`,
/// for each line of standard input. Dates resolve in the merchant's timezone.
fn understand_cmd(config: &Config, batch: bool, text: Option<String>) -> Result<(), CliError> {
    use std::io::BufRead;
    let today = chrono::Utc::now().with_timezone(&config.timezone).date_naive();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut emit = |line: &str| -> Result<(), CliError> {
        serde_json::to_writer(&mut out, &crate::understand::understand(line, today))?;
        writeln!(out)?;
        Ok(())
    };
    match (batch, text) {
        (false, Some(t)) => emit(&t)?,
        (true, None) => {
            for line in std::io::stdin().lock().lines() {
                emit(&line?)?;
            }
        }
        (true, Some(_)) => return Err(CliError { message: "give either TEXT or --batch (lines on standard input), not both".into(), code: 2 }),
        (false, None) => return Err(CliError { message: "give the message to understand, or --batch to read lines from standard input".into(), code: 2 }),
    }
    out.flush()?;
    Ok(())
}

/// `malipo import FILE`: checks the file, prints every bad row, and imports all rows or, with
/// `--valid-only`, the good ones. Exits 1 when nothing was imported because of errors.
fn import_cmd(config: Config, file: &std::path::Path, dry_run: bool, valid_only: bool, json: bool, map: &[String]) -> Result<(), CliError> {
    use crate::import::{self, CommitMode, Field, Mapping, Options};
    let mut mapping = Mapping::default();
    for m in map {
        mapping.parse_assignment(m).map_err(|message| CliError { message, code: 2 })?;
    }
    let now = chrono::Utc::now();
    let today = now.with_timezone(&config.timezone).date_naive();
    let preview = import::preview_with(file, &Options { mapping, today: Some(today) })?;
    let mode = if valid_only { CommitMode::ValidRowsOnly } else { CommitMode::AllOrNothing };
    let blocked = preview.has_errors() && !valid_only;
    let report = if dry_run {
        // What the valid rows would do; a dry run never creates the database.
        let store = if config.database.exists() { Some(crate::store::Store::open(&config.database)?) } else { None };
        Some(import::plan(store.as_ref(), &preview, CommitMode::ValidRowsOnly)?)
    } else if blocked || preview.rows.is_empty() {
        None
    } else {
        let engine = open_engine(config)?;
        Some(import::commit(&engine.store, &preview, mode, now)?)
    };
    let imported = report.as_ref().is_some_and(|r| r.saved);

    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "file": preview.source,
            "format": preview.format,
            "header_line": preview.header_line,
            "mapping": preview.mapping,
            "rows": preview.data_rows,
            "valid_rows": preview.rows.len(),
            "bad_rows": preview.bad_rows(),
            "errors": preview.errors,
            "duplicates_in_file": preview.duplicates_in_file,
            "ignored_lines": preview.ignored_lines,
            "dry_run": dry_run,
            "imported": imported,
            "report": report,
        });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        let what = match (preview.format, preview.delimiter) {
            (import::Format::Workbook, _) => "workbook, first sheet".to_string(),
            (_, Some('\t')) => "CSV, tab-separated".to_string(),
            (_, Some(d)) => format!("CSV, '{d}'-separated"),
            _ => "CSV".to_string(),
        };
        writeln!(out, "{}: {} invoice row(s) below the header on line {} ({what}).", preview.source, preview.data_rows, preview.header_line)?;
        let used: Vec<String> =
            Field::ALL.into_iter().filter_map(|f| preview.mapping.get(f).map(|h| format!("{} = {h:?}", f.label()))).collect();
        if !used.is_empty() {
            writeln!(out, "Columns: {}", used.join(", "))?;
        }
        if !preview.columns_ok {
            writeln!(out, "The columns could not be matched:")?;
        } else if !preview.errors.is_empty() {
            writeln!(out, "{} row(s) with errors:", preview.bad_rows())?;
        }
        for e in &preview.errors {
            writeln!(out, "  {e}")?;
        }
        if let Some(r) = &report {
            if !r.warnings.is_empty() {
                writeln!(out, "Warnings:")?;
                for w in &r.warnings {
                    writeln!(out, "  {w}")?;
                }
            }
            let counts = format!("{} created, {} updated, {} unchanged, {} skipped", r.created, r.updated, r.unchanged, r.skipped);
            if r.saved {
                writeln!(out, "Imported: {counts}.")?;
            } else if blocked {
                writeln!(out, "Dry run, nothing saved. With --valid-only it would import the {} valid row(s): {counts}.", preview.rows.len())?;
            } else {
                writeln!(out, "Dry run, nothing saved. It would import: {counts}.")?;
            }
        }
    }
    out.flush()?;
    if !preview.columns_ok {
        return Err(CliError {
            message: "nothing imported: rename the file's columns, or choose them with --map FIELD=HEADER (see `malipo import --help`)".into(),
            code: 1,
        });
    }
    if blocked {
        let hint = if preview.rows.is_empty() {
            "fix them and import again".to_string()
        } else {
            format!("fix them and import again, or add --valid-only to import the {} valid row(s)", preview.rows.len())
        };
        return Err(CliError { message: format!("nothing imported: {} row(s) have errors; {hint}", preview.bad_rows()), code: 1 });
    }
    if preview.rows.is_empty() {
        return Err(CliError { message: "nothing imported: the file has no valid invoice rows".into(), code: 1 });
    }
    if !dry_run && !imported {
        return Err(CliError { message: "nothing imported".into(), code: 1 });
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

/// `malipo backup [--to FILE]`: a consistent copy, safe to take while Malipo runs.
fn backup_cmd(config: &Config, to: Option<&std::path::Path>) -> Result<(), CliError> {
    let copy = crate::store::backup::manual(&config.database, to)?;
    println!("Backed up {} to {}", config.database.display(), copy.display());
    Ok(())
}

/// `malipo restore FILE`: refused while the window or `malipo serve` has the database open.
fn restore_cmd(config: &Config, file: &std::path::Path) -> Result<(), CliError> {
    let restored = crate::store::backup::restore(&config.database, file)?;
    if let Some(previous) = &restored.previous {
        println!("Backed up the current database to {}", previous.display());
    }
    println!("Restored {} from {} (schema {}).", config.database.display(), file.display(), restored.schema);
    Ok(())
}
