//! Importing invoices from the merchant's CSV or Excel file, in two steps:
//!
//! 1. `preview` reads the file, finds what each column means (or takes the merchant's `Mapping`) and
//!    checks every row. Nothing is saved. Every bad row is listed with the line number the merchant sees
//!    in their spreadsheet (the header is usually line 1) and a plain reason.
//! 2. `commit` saves the good rows in one transaction: all or nothing, or the valid rows only. Importing
//!    the same file again changes nothing; a changed row updates its invoice by number. A balance that
//!    has payments recorded against it in Malipo is never lowered (or raised) by a file: the ledger wins
//!    and the row gets a warning. Cancelled and written-off invoices are left as they are.
//!
//! Manual operations (create, edit, cancel, write off) live in `store::invoices`; recording a cash or
//! bank payment is `record_payment` here.

pub mod fields;
mod manual;
pub mod read;
pub mod sample;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::{Serialize, Serializer};

use crate::domain::{InvoiceNo, Kes, Msisdn};
use crate::store::invoices::{self, ImportTarget, ImportUpdate, InvoiceStatus, NewInvoice};
use crate::store::{audit, ts, Store, StoreError};

pub use fields::{Field, Mapping};
pub use manual::{record_payment, ManualPayment, PaymentMethod};
pub use read::Format;
use read::{Cell, Row};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the file is empty")]
    Empty,
    #[error("{0}")]
    Unreadable(String),
    #[error("{bad_rows} row(s) have errors, so nothing was imported; fix them, or import the valid rows only")]
    HasErrors { bad_rows: usize },
    #[error("the file's columns could not be matched, so nothing was imported: {0}")]
    Columns(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A row that will become (or update) an invoice.
#[derive(Debug, Clone, Serialize)]
pub struct ValidRow {
    pub line: usize,
    pub number: InvoiceNo,
    pub customer_name: String,
    /// Masked when serialised.
    #[serde(serialize_with = "masked")]
    pub phone: Option<Msisdn>,
    pub amount: Kes,
    /// None when the file has no balance (the full amount is owed, or an update keeps the balance).
    pub balance: Option<Kes>,
    pub issue_date: NaiveDate,
    /// False when the file has no issue date for this row and `issue_date` is the day of the import.
    pub issue_date_given: bool,
    pub due_date: NaiveDate,
    /// None when the file has no description column (an update keeps the one stored).
    pub description: Option<String>,
}

fn masked<S: Serializer>(phone: &Option<Msisdn>, s: S) -> Result<S::Ok, S::Error> {
    match phone {
        Some(p) => s.serialize_some(&p.masked()),
        None => s.serialize_none(),
    }
}

impl ValidRow {
    pub fn to_new_invoice(&self) -> NewInvoice {
        NewInvoice {
            number: self.number.clone(),
            customer_name: self.customer_name.clone(),
            phone: self.phone.clone(),
            amount: self.amount,
            balance: self.balance,
            issue_date: self.issue_date,
            due_date: self.due_date,
            description: self.description.clone().unwrap_or_default(),
        }
    }
}

/// One problem with one row. `line` is the spreadsheet row the merchant sees; `column` the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: usize,
    pub column: Option<String>,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    pub number: String,
    pub lines: Vec<usize>,
}

/// What a file holds, checked, before anything is saved.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The file name, for messages and the audit log.
    pub source: String,
    pub format: Format,
    pub delimiter: Option<char>,
    /// The line holding the column names.
    pub header_line: usize,
    pub headers: Vec<String>,
    /// The header used for each field (as detected, or as the override said).
    pub mapping: Mapping,
    pub rows: Vec<ValidRow>,
    /// Every problem, in line order. A line can have several.
    pub errors: Vec<RowError>,
    /// Invoice numbers that appear on more than one line (each of those lines is also an error).
    pub duplicates_in_file: Vec<Duplicate>,
    /// Rows below the header that hold an invoice (good or bad); blank and total rows are not counted.
    pub data_rows: usize,
    /// Blank rows and total rows, left out.
    pub ignored_lines: Vec<usize>,
    /// False when a required column is missing (or a chosen one is not in the file): then `errors` holds
    /// that one problem and no row was checked.
    pub columns_ok: bool,
}

impl Preview {
    /// How many rows have at least one error (all of them when the columns could not be matched).
    pub fn bad_rows(&self) -> usize {
        if !self.columns_ok {
            return self.data_rows;
        }
        let mut lines: Vec<usize> = self.errors.iter().map(|e| e.line).collect();
        lines.dedup();
        lines.len()
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// Options for `preview_with`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Columns chosen by the merchant; fields left None are detected.
    pub mapping: Mapping,
    /// The issue date of rows without one. Default: today in Nairobi.
    pub today: Option<NaiveDate>,
}

/// Reads and checks a file with detected columns. Saves nothing.
pub fn preview(path: &Path) -> Result<Preview, ImportError> {
    preview_with(path, &Options::default())
}

pub fn preview_with(path: &Path, options: &Options) -> Result<Preview, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io { path: path.to_path_buf(), source })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    preview_bytes(&name, bytes, options)
}

/// `preview_with` for a file already in memory (a drop in the window, a test).
pub fn preview_bytes(name: &str, bytes: Vec<u8>, options: &Options) -> Result<Preview, ImportError> {
    let table = read::read(bytes)?;
    let today = options.today.unwrap_or_else(|| Utc::now().with_timezone(&chrono_tz::Africa::Nairobi).date_naive());
    Ok(check(name, table, &options.mapping, today))
}

/// Rows that hold no invoice: empty, or a "Total" line under the data.
fn is_total_row(row: &Row, number_col: Option<usize>) -> bool {
    let number_empty_or_total = match number_col.map(|i| row.cell(i)) {
        None | Some(Cell::Empty) => true,
        Some(c) => is_total_word(&c.text()),
    };
    number_empty_or_total && row.cells.iter().any(|c| matches!(c, Cell::Text(t) if is_total_word(t)))
}

fn is_total_word(s: &str) -> bool {
    matches!(fields::normalise(s).as_str(), "total" | "totals" | "grandtotal" | "subtotal" | "jumla" | "sum")
}

fn choose_header(rows: &[Row], overrides: &Mapping) -> Option<(usize, fields::Columns)> {
    let candidates: Vec<usize> = rows.iter().enumerate().filter(|(_, r)| !r.is_blank()).map(|(i, _)| i).take(10).collect();
    let mut best: Option<(usize, fields::Columns)> = None;
    for &at in &candidates {
        let headers: Vec<String> = rows[at].cells.iter().map(Cell::text).collect();
        let sample = |col: usize| rows[at + 1..].iter().map(|r| r.cell(col).clone()).filter(|c| !c.is_empty()).take(20).collect();
        let cols = fields::detect(&headers, overrides, sample);
        if cols.missing_required().is_empty() && cols.unknown_overrides.is_empty() {
            return Some((at, cols));
        }
        if best.as_ref().is_none_or(|(_, b)| cols.found() > b.found()) {
            best = Some((at, cols));
        }
    }
    match best {
        Some((at, cols)) if cols.found() > 0 => Some((at, cols)),
        _ => candidates.first().map(|&at| {
            let headers: Vec<String> = rows[at].cells.iter().map(Cell::text).collect();
            (at, fields::detect(&headers, overrides, |_| Vec::new()))
        }),
    }
}

fn check(name: &str, table: read::Table, overrides: &Mapping, today: NaiveDate) -> Preview {
    let mut preview = Preview {
        source: name.to_string(),
        format: table.format,
        delimiter: table.delimiter,
        header_line: 1,
        headers: Vec::new(),
        mapping: Mapping::default(),
        rows: Vec::new(),
        errors: Vec::new(),
        duplicates_in_file: Vec::new(),
        data_rows: 0,
        ignored_lines: Vec::new(),
        columns_ok: false,
    };
    let Some((at, cols)) = choose_header(&table.rows, overrides) else {
        preview.errors.push(RowError { line: 1, column: None, reason: "the file has no rows".into() });
        return preview;
    };
    let header_row = &table.rows[at];
    preview.header_line = header_row.line;
    preview.headers = header_row.cells.iter().map(Cell::text).collect();
    for f in Field::ALL {
        preview.mapping.set(f, cols.of(f).map(|i| preview.headers[i].clone()));
    }
    let body = &table.rows[at + 1..];

    let missing = cols.missing_required();
    if !missing.is_empty() || !cols.unknown_overrides.is_empty() {
        let found: Vec<String> = preview.headers.iter().filter(|h| !h.trim().is_empty()).map(|h| format!("{h:?}")).collect();
        let mut parts = Vec::new();
        for (f, h) in &cols.unknown_overrides {
            parts.push(format!("the {} column was set to {h:?}, which is not a column of this file", f.label()));
        }
        let missing: Vec<String> = missing.iter().map(|f| format!("{} (such as {})", f.label(), f.examples())).collect();
        if !missing.is_empty() {
            parts.push(format!("no column for {}", missing.join(", ")));
        }
        let found = if found.is_empty() { "none".to_string() } else { found.join(", ") };
        preview.errors.push(RowError {
            line: preview.header_line,
            column: None,
            reason: format!("{}. The columns found are: {found}. Rename the columns, or choose them by hand.", capitalise(&parts.join("; "))),
        });
        preview.data_rows = body.iter().filter(|r| !r.is_blank()).count();
        return preview;
    }
    preview.columns_ok = true;

    let header = |f: Field| -> String { cols.of(f).map(|i| preview.headers[i].clone()).unwrap_or_else(|| f.label().to_string()) };
    let headers: HashMap<Field, String> = Field::ALL.into_iter().map(|f| (f, header(f))).collect();
    let mut numbers: HashMap<String, Vec<(usize, String)>> = HashMap::new();
    for row in body {
        if row.is_blank() || is_total_row(row, cols.of(Field::Number)) {
            preview.ignored_lines.push(row.line);
            continue;
        }
        preview.data_rows += 1;
        let (valid, errors, number) = check_row(row, &cols, &headers, today);
        if let Some(n) = number {
            numbers.entry(n.key()).or_default().push((row.line, n.as_str().to_string()));
        }
        preview.errors.extend(errors);
        preview.rows.extend(valid);
    }

    let mut dup_keys = std::collections::HashSet::new();
    for (key, seen) in numbers.into_iter().filter(|(_, v)| v.len() > 1) {
        let lines: Vec<usize> = seen.iter().map(|(l, _)| *l).collect();
        let listed = list_lines(&lines);
        for (line, shown) in &seen {
            preview.errors.push(RowError {
                line: *line,
                column: Some(headers[&Field::Number].clone()),
                reason: format!("{} {shown:?} appears more than once in the file ({listed})", headers[&Field::Number]),
            });
        }
        preview.duplicates_in_file.push(Duplicate { number: seen[0].1.clone(), lines });
        dup_keys.insert(key);
    }
    if !dup_keys.is_empty() {
        preview.rows.retain(|r| !dup_keys.contains(&r.number.key()));
        preview.duplicates_in_file.sort_by_key(|d| d.lines[0]);
    }
    preview.errors.sort_by_key(|e| e.line);
    preview
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn list_lines(lines: &[usize]) -> String {
    let shown: Vec<String> = lines.iter().map(usize::to_string).collect();
    match shown.as_slice() {
        [a, b] => format!("lines {a} and {b}"),
        _ => format!("lines {}", shown.join(", ")),
    }
}

fn check_row(
    row: &Row,
    cols: &fields::Columns,
    headers: &HashMap<Field, String>,
    today: NaiveDate,
) -> (Option<ValidRow>, Vec<RowError>, Option<InvoiceNo>) {
    let errors = std::cell::RefCell::new(Vec::new());
    let cell = |f: Field| cols.of(f).map(|i| row.cell(i));
    let fail = |f: Field, c: &Cell, reason: String| {
        let h = &headers[&f];
        let reason = if c.is_empty() { format!("{h} {reason}") } else { format!("{h} {:?} {reason}", c.shown()) };
        errors.borrow_mut().push(RowError { line: row.line, column: Some(h.clone()), reason });
    };

    let number_cell = cell(Field::Number).unwrap_or(&Cell::Empty);
    let number = fields::parse_number(number_cell).map_err(|r| fail(Field::Number, number_cell, r)).ok();

    let customer_cell = cell(Field::Customer).unwrap_or(&Cell::Empty);
    let customer = customer_cell.text().trim().to_string();
    if customer.is_empty() {
        fail(Field::Customer, customer_cell, "is empty".into());
    }

    let phone = match cell(Field::Phone) {
        None => Ok(None),
        Some(c) => fields::parse_phone(c).map_err(|(shown, reason)| {
            let h = &headers[&Field::Phone];
            errors.borrow_mut().push(RowError { line: row.line, column: Some(h.clone()), reason: format!("{h} {shown:?} {reason}") });
        }),
    };

    let amount_cell = cell(Field::Amount).unwrap_or(&Cell::Empty);
    let amount = match fields::parse_amount(amount_cell) {
        Ok(a) if a.is_zero() => {
            fail(Field::Amount, amount_cell, "must be more than zero".into());
            None
        }
        Ok(a) => Some(a),
        Err(r) => {
            fail(Field::Amount, amount_cell, r);
            None
        }
    };

    let balance = match cell(Field::Balance) {
        None | Some(Cell::Empty) => None,
        Some(c) => match fields::parse_amount(c) {
            Ok(b) => match amount {
                Some(a) if b > a => {
                    fail(Field::Balance, c, format!("is more than the {} ({a})", headers[&Field::Amount]));
                    None
                }
                _ => Some(b),
            },
            Err(r) => {
                fail(Field::Balance, c, r);
                None
            }
        },
    };

    let due_cell = cell(Field::DueDate).unwrap_or(&Cell::Empty);
    let due_date = fields::parse_date(due_cell).map_err(|r| fail(Field::DueDate, due_cell, r)).ok();

    let (issue_date, issue_date_given) = match cell(Field::IssueDate) {
        None | Some(Cell::Empty) => (Some(today), false),
        Some(c) => (fields::parse_date(c).map_err(|r| fail(Field::IssueDate, c, r)).ok(), true),
    };

    let description = cell(Field::Description).map(|c| c.text().trim().to_string());
    let errors = errors.into_inner();

    let valid = match (&number, phone, amount, due_date, issue_date) {
        (Some(n), Ok(phone), Some(amount), Some(due_date), Some(issue_date)) if errors.is_empty() => Some(ValidRow {
            line: row.line,
            number: n.clone(),
            customer_name: customer,
            phone,
            amount,
            balance,
            issue_date,
            issue_date_given,
            due_date,
            description,
        }),
        _ => None,
    };
    (valid, errors, number)
}

// ---------------------------------------------------------------------------------------------
// Commit

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// Refuse the whole file if any row has an error.
    AllOrNothing,
    /// Import the good rows; the bad ones are skipped.
    ValidRowsOnly,
}

/// Something the merchant should know about a row that was imported (or deliberately left alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowWarning {
    pub line: usize,
    pub invoice: String,
    pub message: String,
}

impl fmt::Display for RowWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.invoice, self.message)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows not imported: rows with errors, and rows of cancelled or written-off invoices.
    pub skipped: usize,
    pub warnings: Vec<RowWarning>,
    /// False for a dry run.
    pub saved: bool,
}

// One per row, short-lived: the size of the big variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Decision {
    Create,
    /// A cancelled or written-off invoice: not reopened.
    Closed(InvoiceStatus),
    Existing {
        target: ImportTarget,
        /// The customer to upsert when the name or phone changed.
        customer: Option<(String, Option<Msisdn>)>,
        update: ImportUpdate,
        changes: Vec<String>,
        warnings: Vec<String>,
    },
}

/// The balance an existing invoice gets from a row: see the module comment.
fn reconcile_balance(t: &ImportTarget, amount: Kes, file_balance: Option<Kes>) -> (Kes, Vec<String>) {
    let paid = t.amount.saturating_sub(t.balance);
    let amount_changed = amount != t.amount;
    let derived = if amount_changed { invoices::rebalance(t.amount, t.balance, amount) } else { t.balance };
    let mut warnings = Vec::new();
    let over = if paid > amount { " (what was paid is more than the new amount)" } else { "" };
    if t.paid_in_ledger.is_zero() {
        return match file_balance {
            Some(b) => (b, warnings),
            None => {
                if amount_changed && !paid.is_zero() {
                    warnings.push(format!("the amount changed from {} to {amount}; {paid} was already paid, so the balance is now {derived}{over}", t.amount));
                }
                (derived, warnings)
            }
        };
    }
    if amount_changed {
        warnings.push(format!(
            "the amount changed from {} to {amount}; {paid} was already paid ({} recorded in Malipo), so the balance is now {derived}{over}",
            t.amount, t.paid_in_ledger
        ));
    }
    if let Some(b) = file_balance.filter(|b| *b != derived) {
        if b < derived {
            warnings.push(format!(
                "the file says the balance is {b}, but the payments recorded in Malipo leave {derived}; kept {derived} (record the missing payment if the customer paid)"
            ));
        } else {
            warnings.push(format!(
                "the file says the balance is {b}, but Malipo has recorded {} paid against it; kept {derived}",
                t.paid_in_ledger
            ));
        }
    }
    (derived, warnings)
}

fn decide(conn: &Connection, row: &ValidRow) -> Result<Decision, StoreError> {
    let Some(t) = invoices::for_import(conn, &row.number.key())? else { return Ok(Decision::Create) };
    if matches!(t.status, InvoiceStatus::Cancelled | InvoiceStatus::WrittenOff) {
        return Ok(Decision::Closed(t.status));
    }
    let mut changes = Vec::new();
    let name = row.customer_name.trim().to_string();
    let phone = row.phone.clone().or_else(|| t.customer_phone.as_deref().and_then(|p| Msisdn::parse(p).ok()));
    let phone_changed = phone.as_ref().map(Msisdn::as_str) != t.customer_phone.as_deref();
    if name != t.customer_name {
        changes.push(format!("customer {:?} → {name:?}", t.customer_name));
    }
    if phone_changed {
        changes.push(format!("phone → {}", phone.as_ref().map(Msisdn::masked).unwrap_or_default()));
    }
    let customer = (name != t.customer_name || phone_changed).then(|| (name.clone(), phone.clone()));

    let (balance, warnings) = reconcile_balance(&t, row.amount, row.balance);
    let status = if t.status == InvoiceStatus::Disputed { t.status } else { InvoiceStatus::for_balance(row.amount, balance) };
    let update = ImportUpdate {
        customer_id: t.customer_id,
        amount: row.amount,
        balance,
        issue_date: if row.issue_date_given { row.issue_date } else { t.issue_date },
        due_date: row.due_date,
        status,
        description: row.description.clone().unwrap_or_else(|| t.description.clone()),
    };
    if update.amount != t.amount {
        changes.push(format!("amount {} → {}", t.amount, update.amount));
    }
    if update.balance != t.balance {
        changes.push(format!("balance {} → {}", t.balance, update.balance));
    }
    if update.due_date != t.due_date {
        changes.push(format!("due date {} → {}", t.due_date, update.due_date));
    }
    if update.issue_date != t.issue_date {
        changes.push(format!("issue date {} → {}", t.issue_date, update.issue_date));
    }
    if update.description != t.description {
        changes.push("description changed".into());
    }
    if update.status != t.status {
        changes.push(format!("status {} → {}", t.status.as_str(), update.status.as_str()));
    }
    Ok(Decision::Existing { target: t, customer, update, changes, warnings })
}

/// `customers::upsert` with cached statements, and no write when nothing changes.
fn upsert_customer(tx: &Transaction, name: &str, phone: Option<&Msisdn>, now: DateTime<Utc>) -> Result<i64, StoreError> {
    let name = name.trim();
    let existing: Option<(i64, String)> = match phone {
        Some(p) => tx.prepare_cached("SELECT id, name FROM customers WHERE phone = ?1")?.query_row([p.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?,
        None => tx
            .prepare_cached("SELECT id, name FROM customers WHERE phone IS NULL AND name = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    };
    if let Some((id, old)) = existing {
        if !name.is_empty() && old != name {
            tx.prepare_cached("UPDATE customers SET name = ?1 WHERE id = ?2")?.execute((name, id))?;
        }
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO customers (name, phone, created_at) VALUES (?1, ?2, ?3)")?.execute((name, phone.map(Msisdn::as_str), ts(now)))?;
    Ok(tx.last_insert_rowid())
}

fn refuse_errors(preview: &Preview, mode: CommitMode) -> Result<(), ImportError> {
    if !preview.columns_ok && mode == CommitMode::AllOrNothing {
        return Err(ImportError::Columns(preview.errors.first().map(|e| e.reason.clone()).unwrap_or_default()));
    }
    if mode == CommitMode::AllOrNothing && preview.has_errors() {
        return Err(ImportError::HasErrors { bad_rows: preview.bad_rows() });
    }
    Ok(())
}

fn warn(report: &mut ImportReport, row: &ValidRow, message: String) {
    report.warnings.push(RowWarning { line: row.line, invoice: row.number.to_string(), message });
}

/// Counts and warnings of what `commit` would do, reading the store only. Without a store (no database
/// yet), every row would be created.
pub fn plan(store: Option<&Store>, preview: &Preview, mode: CommitMode) -> Result<ImportReport, ImportError> {
    refuse_errors(preview, mode)?;
    let mut report = ImportReport { skipped: preview.data_rows.saturating_sub(preview.rows.len()), ..Default::default() };
    let Some(store) = store else {
        report.created = preview.rows.len();
        return Ok(report);
    };
    store.read(|conn| {
        for row in &preview.rows {
            tally(&mut report, row, decide(conn, row)?);
        }
        Ok(())
    })?;
    Ok(report)
}

fn tally(report: &mut ImportReport, row: &ValidRow, decision: Decision) -> Option<Decision> {
    match decision {
        Decision::Create => {
            report.created += 1;
            Some(Decision::Create)
        }
        Decision::Closed(status) => {
            report.skipped += 1;
            warn(report, row, format!("the invoice is {}; the import leaves it as it is", status.as_str().replace('_', " ")));
            None
        }
        Decision::Existing { target, customer, update, changes, warnings } => {
            for w in &warnings {
                warn(report, row, w.clone());
            }
            if changes.is_empty() {
                report.unchanged += 1;
            } else {
                report.updated += 1;
            }
            Some(Decision::Existing { target, customer, update, changes, warnings })
        }
    }
}

/// Saves the preview's rows in one transaction. `AllOrNothing` refuses a preview with any error and
/// saves nothing; `ValidRowsOnly` saves the good rows and counts the rest as skipped.
pub fn commit(store: &Store, preview: &Preview, mode: CommitMode, now: DateTime<Utc>) -> Result<ImportReport, ImportError> {
    commit_with_progress(store, preview, mode, now, &|_, _| {})
}

/// How often `commit_with_progress` reports, in rows.
const PROGRESS_EVERY: usize = 500;

/// `commit`, calling `progress(rows done, rows in all)` as it goes (for the import wizard's bar).
pub fn commit_with_progress(store: &Store, preview: &Preview, mode: CommitMode, now: DateTime<Utc>, progress: &dyn Fn(usize, usize)) -> Result<ImportReport, ImportError> {
    refuse_errors(preview, mode)?;
    let total = preview.rows.len();
    let report = store.write(|tx| {
        let mut report =
            ImportReport { skipped: preview.data_rows.saturating_sub(preview.rows.len()), saved: true, ..Default::default() };
        for (done, row) in preview.rows.iter().enumerate() {
            if done % PROGRESS_EVERY == 0 {
                progress(done, total);
            }
            let decision = decide(tx, row)?;
            match tally(&mut report, row, decision) {
                None => {}
                Some(Decision::Create) => {
                    let customer_id = upsert_customer(tx, &row.customer_name, row.phone.as_ref(), now)?;
                    invoices::insert_for_import(tx, &row.to_new_invoice(), customer_id, now)?;
                }
                Some(Decision::Existing { target, customer, mut update, changes, warnings }) => {
                    if !changes.is_empty() {
                        if let Some((name, phone)) = customer {
                            update.customer_id = upsert_customer(tx, &name, phone.as_ref(), now)?;
                        }
                        invoices::update_from_import(tx, target.id, &update, now)?;
                    }
                    if !changes.is_empty() || !warnings.is_empty() {
                        let mut detail = changes.join("; ");
                        for w in &warnings {
                            if !detail.is_empty() {
                                detail.push_str("; ");
                            }
                            detail.push_str(w);
                        }
                        let action = if changes.is_empty() { "invoice_import_warning" } else { "invoice_updated_by_import" };
                        audit(tx, now, "import", action, &target.number, &format!("{} line {}: {detail}", preview.source, row.line))?;
                    }
                }
                Some(Decision::Closed(_)) => {}
            }
        }
        let detail = format!(
            "{} ({:?}): {} created, {} updated, {} unchanged, {} skipped, {} warning(s)",
            preview.source,
            mode,
            report.created,
            report.updated,
            report.unchanged,
            report.skipped,
            report.warnings.len()
        );
        audit(tx, now, "import", "invoices_imported", &preview.source, &detail)?;
        progress(total, total);
        Ok(report)
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(amount: i64, balance: i64, ledger: i64) -> ImportTarget {
        ImportTarget {
            id: 1,
            number: "INV-1".into(),
            customer_id: 1,
            customer_name: "Wanjiku".into(),
            customer_phone: None,
            amount: Kes::new(amount).unwrap(),
            balance: Kes::new(balance).unwrap(),
            issue_date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            due_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            status: InvoiceStatus::PartiallyPaid,
            description: String::new(),
            paid_in_ledger: Kes::new(ledger).unwrap(),
        }
    }

    fn k(n: i64) -> Kes {
        Kes::new(n).unwrap()
    }

    #[test]
    fn without_payments_in_malipo_the_file_sets_the_balance() {
        assert_eq!(reconcile_balance(&target(5000, 5000, 0), k(5000), Some(k(1000))), (k(1000), vec![]));
        assert_eq!(reconcile_balance(&target(5000, 5000, 0), k(6000), None), (k(6000), vec![]));
        let (b, w) = reconcile_balance(&target(5000, 3000, 0), k(6000), None);
        assert_eq!(b, k(4000));
        assert!(w[0].contains("KES 2,000 was already paid"), "{w:?}");
    }

    #[test]
    fn payments_in_malipo_win_over_the_files_balance() {
        let (b, w) = reconcile_balance(&target(5000, 3000, 2000), k(5000), Some(k(1000)));
        assert_eq!(b, k(3000));
        assert!(w[0].contains("kept KES 3,000"), "{w:?}");
        let (b, w) = reconcile_balance(&target(5000, 3000, 2000), k(5000), Some(k(5000)));
        assert_eq!(b, k(3000));
        assert!(w[0].contains("KES 2,000 paid against it"), "{w:?}");
        assert_eq!(reconcile_balance(&target(5000, 3000, 2000), k(5000), Some(k(3000))), (k(3000), vec![]));
    }

    #[test]
    fn a_new_amount_keeps_what_was_paid_and_never_goes_below_zero() {
        let (b, w) = reconcile_balance(&target(5000, 3000, 2000), k(8000), None);
        assert_eq!(b, k(6000));
        assert!(w[0].contains("balance is now KES 6,000"), "{w:?}");
        let (b, w) = reconcile_balance(&target(5000, 1000, 4000), k(3000), None);
        assert_eq!(b, k(0));
        assert!(w[0].contains("more than the new amount"), "{w:?}");
    }

    fn preview_csv(text: &str) -> Preview {
        preview_bytes("t.csv", text.as_bytes().to_vec(), &Options { today: NaiveDate::from_ymd_opt(2026, 12, 4), ..Default::default() }).unwrap()
    }

    #[test]
    fn title_rows_above_the_header_and_total_rows_below_are_left_out() {
        let p = preview_csv(
            "Invoices as at 4 Dec 2026,,,\n\nInvoice No,Customer,Amount,Due Date\nINV-1,Wanjiku,\"2,500\",04/12/2026\n,,,\nTotal,,\"2,500\",\n",
        );
        assert_eq!(p.header_line, 3);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!((p.rows.len(), p.rows[0].line), (1, 4));
        assert_eq!(p.ignored_lines, vec![5, 6]);
    }

    #[test]
    fn a_row_with_several_problems_lists_each() {
        let p = preview_csv("Invoice No,Customer,Phone,Amount,Due Date\n,,0712,abc,31/02/2026\n");
        let reasons: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(reasons.iter().all(|r| r.starts_with("line 2: ")), "{reasons:?}");
        assert!(reasons.contains(&"line 2: Due Date \"31/02/2026\" is not a date".to_string()), "{reasons:?}");
        assert_eq!(p.bad_rows(), 1);
    }
}
