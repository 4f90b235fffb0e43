//! What each column means, and how each cell is read: header names as merchants write them, dates
//! (dd/mm/yyyy, d/m/yy, yyyy-mm-dd, "4 Dec 2026", Excel serials and date cells), amounts ("2,500",
//! "KES 2,500", "Ksh 2,500.00", "2,500/="), phone numbers and invoice numbers.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::read::Cell;
use crate::domain::{DomainError, InvoiceNo, Kes, Msisdn};

/// A column Malipo understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Number,
    Customer,
    Phone,
    Amount,
    Balance,
    DueDate,
    IssueDate,
    Description,
}

impl Field {
    pub const ALL: [Field; 8] =
        [Field::Number, Field::Customer, Field::Phone, Field::Amount, Field::Balance, Field::DueDate, Field::IssueDate, Field::Description];

    pub fn required(self) -> bool {
        matches!(self, Field::Number | Field::Customer | Field::Amount | Field::DueDate)
    }

    /// How the merchant knows this column.
    pub fn label(self) -> &'static str {
        match self {
            Field::Number => "invoice number",
            Field::Customer => "customer",
            Field::Phone => "phone",
            Field::Amount => "amount",
            Field::Balance => "balance",
            Field::DueDate => "due date",
            Field::IssueDate => "issue date",
            Field::Description => "description",
        }
    }

    /// Headers shown as examples when a column is missing.
    pub fn examples(self) -> &'static str {
        match self {
            Field::Number => "Invoice No, Inv #, Number, Invoice, Ref",
            Field::Customer => "Customer, Name, Client",
            Field::Phone => "Phone, Mobile, Tel, MSISDN",
            Field::Amount => "Amount, Total, Invoice Amount",
            Field::Balance => "Balance, Amount Due, Outstanding",
            Field::DueDate => "Due Date, Due",
            Field::IssueDate => "Date, Issue Date, Invoice Date",
            Field::Description => "Description, Details, Item",
        }
    }

    /// Normalised header names that mean this field exactly.
    fn synonyms(self) -> &'static [&'static str] {
        match self {
            Field::Number => &[
                "invoiceno", "invoicenumber", "invoicenum", "invoiceid", "invoice", "invno", "invnum", "invnumber", "inv", "invoiceref",
                "invoicereference", "number", "num", "no", "ref", "refno", "reference", "referenceno", "billno", "billnumber", "docno",
                "documentno", "documentnumber",
            ],
            Field::Customer => &["customer", "customername", "name", "client", "clientname", "buyer", "debtor", "accountname", "mteja", "jina"],
            Field::Phone => &[
                "phone", "phoneno", "phonenumber", "mobile", "mobileno", "mobilenumber", "tel", "telno", "telephone", "telephoneno", "msisdn",
                "mpesa", "mpesano", "mpesanumber", "mpesaphone", "cell", "cellphone", "cellno", "whatsapp", "whatsappno", "whatsappnumber",
                "contact", "contactno", "simu",
            ],
            Field::Amount => &["amount", "total", "invoiceamount", "invoicetotal", "totalamount", "grandtotal", "value", "invoicevalue", "kiasi"],
            Field::Balance => &[
                "balance", "amountdue", "balancedue", "outstanding", "outstandingbalance", "outstandingamount", "amountoutstanding", "unpaid",
                "unpaidamount", "owing", "amountowing", "deni", "salio",
            ],
            Field::DueDate => &["duedate", "dueon", "datedue", "paymentdue", "paymentduedate", "payby", "paybydate", "duedt"],
            Field::IssueDate => &["date", "issuedate", "invoicedate", "issued", "dateissued", "issuedon", "billdate", "documentdate", "tarehe"],
            Field::Description => &["description", "desc", "details", "detail", "item", "items", "particulars", "notes", "note", "memo", "narration", "product", "goods"],
        }
    }

    /// A looser match for headers no synonym fits, e.g. "Customer Mobile" or "Invoice Due Date".
    fn loosely(self, h: &str) -> bool {
        let has = |w: &str| h.contains(w);
        match self {
            Field::Phone => ["phone", "mobile", "msisdn", "whatsapp", "telephone", "mpesano"].iter().any(|w| has(w)),
            Field::DueDate => has("due") && has("date"),
            Field::IssueDate => has("date") && !["due", "paid", "payment", "birth"].iter().any(|w| has(w)),
            Field::Balance => ["balance", "outstanding", "amountdue", "owing"].iter().any(|w| has(w)),
            Field::Amount => {
                (has("amount") || has("total")) && !["paid", "balance", "due", "outstanding", "tax", "vat", "discount"].iter().any(|w| has(w))
            }
            Field::Number => {
                (h.starts_with("invoice") || h.starts_with("inv")) && !["date", "amount", "total", "due", "description"].iter().any(|w| has(w))
            }
            Field::Customer => {
                (has("customer") || has("client")) && !["id", "code", "no", "number", "phone", "mobile", "email", "tel"].iter().any(|w| h.ends_with(w))
            }
            Field::Description => ["description", "item", "detail"].iter().any(|w| has(w)),
        }
    }
}

/// Which header the file uses for each field, by its text in the file. As an override (from the import
/// wizard or `--map`), `Some("")` means "no column for this field".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mapping {
    pub number: Option<String>,
    pub customer: Option<String>,
    pub phone: Option<String>,
    pub amount: Option<String>,
    pub balance: Option<String>,
    pub due_date: Option<String>,
    pub issue_date: Option<String>,
    pub description: Option<String>,
}

impl Mapping {
    pub fn get(&self, f: Field) -> Option<&str> {
        match f {
            Field::Number => self.number.as_deref(),
            Field::Customer => self.customer.as_deref(),
            Field::Phone => self.phone.as_deref(),
            Field::Amount => self.amount.as_deref(),
            Field::Balance => self.balance.as_deref(),
            Field::DueDate => self.due_date.as_deref(),
            Field::IssueDate => self.issue_date.as_deref(),
            Field::Description => self.description.as_deref(),
        }
    }

    pub fn set(&mut self, f: Field, header: Option<String>) {
        let slot = match f {
            Field::Number => &mut self.number,
            Field::Customer => &mut self.customer,
            Field::Phone => &mut self.phone,
            Field::Amount => &mut self.amount,
            Field::Balance => &mut self.balance,
            Field::DueDate => &mut self.due_date,
            Field::IssueDate => &mut self.issue_date,
            Field::Description => &mut self.description,
        };
        *slot = header;
    }

    /// Parses `FIELD=HEADER` as given to `malipo import --map`.
    pub fn parse_assignment(&mut self, s: &str) -> Result<(), String> {
        let (field, header) = s.split_once('=').ok_or_else(|| format!("--map {s:?}: write it as FIELD=HEADER, e.g. phone=\"Customer Mobile\""))?;
        let key = normalise(field);
        let f = Field::ALL
            .into_iter()
            .find(|f| normalise(f.label()) == key || serde_json::to_value(f).ok().and_then(|v| v.as_str().map(normalise)).as_deref() == Some(&key))
            .ok_or_else(|| {
                format!("--map {s:?}: unknown field {field:?}; the fields are number, customer, phone, amount, balance, due_date, issue_date, description")
            })?;
        self.set(f, Some(header.trim().to_string()));
        Ok(())
    }
}

/// Lowercase letters and digits only; '#' and '№' read as "no"; a currency marker is dropped:
/// "Inv #" → "invno", "Amount (KES)" → "amount", "Due Date" → "duedate".
pub fn normalise(header: &str) -> String {
    let mut s = String::with_capacity(header.len());
    for c in header.chars() {
        match c {
            '#' | '№' => s.push_str("no"),
            c if c.is_alphanumeric() => s.extend(c.to_lowercase()),
            _ => {}
        }
    }
    for currency in ["kshs", "ksh", "kes"] {
        if s.len() > currency.len() {
            if let Some(rest) = s.strip_suffix(currency) {
                return rest.to_string();
            }
            if let Some(rest) = s.strip_prefix(currency) {
                return rest.to_string();
            }
        }
    }
    s
}

/// The column chosen for each field (index into the header row), with the problems found.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub index: [Option<usize>; 8],
    /// Override headers that name no column of the file.
    pub unknown_overrides: Vec<(Field, String)>,
}

impl Columns {
    pub fn of(&self, f: Field) -> Option<usize> {
        self.index[f as usize]
    }

    pub fn missing_required(&self) -> Vec<Field> {
        Field::ALL.into_iter().filter(|f| f.required() && self.of(*f).is_none()).collect()
    }

    pub fn found(&self) -> usize {
        self.index.iter().flatten().count()
    }
}

/// Chooses a column for each field. `sample(i)` gives a few values of column `i` to settle a header
/// that could mean two things ("Due": a due date or the amount due?).
pub fn detect(headers: &[String], overrides: &Mapping, sample: impl Fn(usize) -> Vec<Cell>) -> Columns {
    let norm: Vec<String> = headers.iter().map(|h| normalise(h)).collect();
    let mut cols = Columns::default();
    let mut used = vec![false; headers.len()];
    let mut decided = [false; 8];
    for f in Field::ALL {
        if let Some(name) = overrides.get(f) {
            decided[f as usize] = true;
            if name.trim().is_empty() {
                continue;
            }
            let exact = headers.iter().position(|h| h.trim() == name.trim());
            let loose = || norm.iter().position(|h| *h == normalise(name) && !h.is_empty());
            match exact.or_else(loose) {
                Some(i) => {
                    cols.index[f as usize] = Some(i);
                    used[i] = true;
                }
                None => cols.unknown_overrides.push((f, name.to_string())),
            }
        }
    }
    let assign = |f: Field, i: usize, cols: &mut Columns, used: &mut Vec<bool>, decided: &mut [bool; 8]| {
        cols.index[f as usize] = Some(i);
        used[i] = true;
        decided[f as usize] = true;
    };
    for f in Field::ALL {
        if decided[f as usize] {
            continue;
        }
        if let Some(i) = (0..norm.len()).find(|&i| !used[i] && f.synonyms().contains(&norm[i].as_str())) {
            assign(f, i, &mut cols, &mut used, &mut decided);
        }
    }
    for f in [Field::Phone, Field::DueDate, Field::IssueDate, Field::Balance, Field::Amount, Field::Number, Field::Customer, Field::Description] {
        if decided[f as usize] {
            continue;
        }
        if let Some(i) = (0..norm.len()).find(|&i| !used[i] && !norm[i].is_empty() && f.loosely(&norm[i])) {
            assign(f, i, &mut cols, &mut used, &mut decided);
        }
    }
    // "Due" alone is the due date or the amount due: whichever is still free, else look at the values.
    if let Some(i) = (0..norm.len()).find(|&i| !used[i] && norm[i] == "due") {
        let f = match (decided[Field::DueDate as usize], decided[Field::Balance as usize]) {
            (false, true) => Some(Field::DueDate),
            (true, false) => Some(Field::Balance),
            (false, false) => {
                let values = sample(i);
                let dates = values.iter().filter(|c| parse_date(c).is_ok()).count();
                let amounts = values.iter().filter(|c| parse_amount(c).is_ok()).count();
                Some(if dates >= amounts { Field::DueDate } else { Field::Balance })
            }
            (true, true) => None,
        };
        if let Some(f) = f {
            assign(f, i, &mut cols, &mut used, &mut decided);
        }
    }
    cols
}

// ---------------------------------------------------------------------------------------------
// Cells

/// Why a cell was refused, to follow `Header "value"` in a message.
pub type Reason = String;

const MONTHS: [(&str, u32); 36] = [
    ("jan", 1), ("january", 1), ("januari", 1), ("feb", 2), ("february", 2), ("februari", 2), ("mar", 3), ("march", 3), ("machi", 3),
    ("apr", 4), ("april", 4), ("aprili", 4), ("may", 5), ("mei", 5), ("jun", 6), ("june", 6), ("juni", 6), ("jul", 7), ("july", 7),
    ("julai", 7), ("aug", 8), ("august", 8), ("agosti", 8), ("sep", 9), ("sept", 9), ("september", 9), ("septemba", 9), ("oct", 10),
    ("october", 10), ("oktoba", 10), ("nov", 11), ("november", 11), ("novemba", 11), ("dec", 12), ("december", 12), ("desemba", 12),
];

fn month(token: &str) -> Option<u32> {
    let t = token.to_lowercase();
    MONTHS.iter().find(|(name, _)| *name == t).map(|(_, m)| *m)
}

/// Excel's day numbers: 1 is 1900-01-01, counted from 1899-12-30 because of Excel's 1900 leap year.
pub fn excel_serial(serial: f64) -> Option<NaiveDate> {
    // 1950-01-01 .. 2149-12-31: a number outside that range is not meant as a date.
    if !(18264.0..=91310.0).contains(&serial) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30).map(|epoch| epoch + Duration::days(serial.floor() as i64))
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    if !(1900..=2199).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

fn year(token: &str) -> Option<i32> {
    let y: i32 = token.parse().ok()?;
    match token.len() {
        2 => Some(2000 + y),
        4 => Some(y),
        _ => None,
    }
}

/// A date cell: a real date, an Excel serial, or text in the forms merchants use. Day comes first:
/// 04/12/2026 is the 4th of December.
pub fn parse_date(cell: &Cell) -> Result<NaiveDate, Reason> {
    let not_a_date = || "is not a date".to_string();
    match cell {
        Cell::Date(d) => Ok(*d),
        Cell::Number(n) => excel_serial(*n).ok_or_else(not_a_date),
        Cell::Empty => Err("is empty".into()),
        Cell::Text(s) => parse_date_text(s).ok_or_else(|| {
            // 12/31/2026 read day first fails; say why when month-first would have worked.
            let t = tokens(s);
            let swapped = t.len() == 3
                && t.iter().all(|x| x.chars().all(|c| c.is_ascii_digit()))
                && t[0].len() <= 2
                && year(&t[2]).zip(t[0].parse().ok()).zip(t[1].parse().ok()).and_then(|((y, m), d)| ymd(y, m, d)).is_some();
            if swapped {
                "is not a date (dates are read day first, as dd/mm/yyyy)".to_string()
            } else {
                not_a_date()
            }
        }),
    }
}

fn tokens(s: &str) -> Vec<String> {
    s.split(['/', '-', '.', ',', ' ', '\u{a0}'])
        .filter(|t| !t.is_empty())
        .map(|t| {
            // "4th", "1st", "22nd", "3rd" → the number.
            let lower = t.to_lowercase();
            for suffix in ["st", "nd", "rd", "th"] {
                if let Some(n) = lower.strip_suffix(suffix) {
                    if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) {
                        return n.to_string();
                    }
                }
            }
            t.to_string()
        })
        .collect()
}

fn parse_date_text(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    // A time after the date ("2026-12-04T00:00:00", "04/12/2026 00:00") is ignored.
    let s = match s.find(['T', ' ']) {
        Some(i) if s[i + 1..].contains(':') && s[..i].len() >= 6 => &s[..i],
        _ => s,
    };
    let s = s.split_whitespace().filter(|t| !t.contains(':')).collect::<Vec<_>>().join(" ");
    let t = tokens(&s);
    let numeric = |x: &String| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit());
    match t.len() {
        1 if numeric(&t[0]) && t[0].len() == 8 && (t[0].starts_with("19") || t[0].starts_with("20")) => {
            ymd(t[0][..4].parse().ok()?, t[0][4..6].parse().ok()?, t[0][6..].parse().ok()?)
        }
        1 => excel_serial(t[0].parse::<f64>().ok()?).filter(|_| t[0].len() >= 5),
        // "46360.0" split on the dot.
        2 if numeric(&t[0]) && t[1].chars().all(|c| c == '0') => excel_serial(t[0].parse().ok()?),
        3 if t.iter().all(numeric) => {
            if t[0].len() == 4 {
                ymd(t[0].parse().ok()?, t[1].parse().ok()?, t[2].parse().ok()?)
            } else if t[0].len() <= 2 && t[1].len() <= 2 {
                ymd(year(&t[2])?, t[1].parse().ok()?, t[0].parse().ok()?)
            } else {
                None
            }
        }
        3 => {
            let m_at = t.iter().position(|x| month(x).is_some())?;
            let m = month(&t[m_at])?;
            let rest: Vec<&String> = t.iter().enumerate().filter(|(i, _)| *i != m_at).map(|(_, x)| x).collect();
            if !rest.iter().all(|x| numeric(x)) {
                return None;
            }
            // "4 Dec 2026", "Dec 4 2026", "2026 Dec 4"
            let (d, y) = if rest[0].len() == 4 { (rest[1], rest[0]) } else { (rest[0], rest[1]) };
            if d.len() > 2 {
                return None;
            }
            ymd(year(y)?, m, d.parse().ok()?)
        }
        _ => None,
    }
}

/// An amount cell: whole shillings, as merchants write them.
pub fn parse_amount(cell: &Cell) -> Result<Kes, Reason> {
    match cell {
        Cell::Empty => Err("is empty".into()),
        Cell::Date(_) => Err("is not an amount".into()),
        Cell::Number(n) => {
            if !n.is_finite() {
                return Err("is not an amount".into());
            }
            if *n < 0.0 {
                return Err("cannot be negative".into());
            }
            let cents = (n * 100.0).round();
            if cents % 100.0 != 0.0 {
                return Err("has cents; amounts are whole shillings".into());
            }
            if *n > 1e15 {
                return Err("is too large".into());
            }
            Kes::new((cents / 100.0) as i64).map_err(domain_reason)
        }
        Cell::Text(s) => {
            let mut t = s.replace('\u{a0}', " ").trim().to_string();
            // "2,500/-", "2,500 KES", "(KES) 2,500"
            for suffix in ["/-", "/="] {
                if let Some(rest) = t.strip_suffix(suffix) {
                    t = rest.trim_end().to_string();
                }
            }
            let upper = t.to_ascii_uppercase();
            for currency in [" KSHS", " KSH", " KES", "KSHS", "KSH", "KES"] {
                if upper.ends_with(currency) && upper.len() > currency.len() {
                    t.truncate(t.len() - currency.len());
                    break;
                }
            }
            if t.starts_with('(') && t.ends_with(')') || t.starts_with('-') {
                return Err("cannot be negative".into());
            }
            Kes::parse(&t).map_err(domain_reason)
        }
    }
}

fn domain_reason(e: DomainError) -> Reason {
    match e {
        DomainError::Amount { reason: "is not a number", .. } => "is not an amount".into(),
        DomainError::Amount { reason, .. }
        | DomainError::Phone { reason, .. }
        | DomainError::InvoiceNo { reason, .. }
        | DomainError::Receipt { reason, .. } => reason.to_string(),
    }
}

/// A phone cell. On failure, the number as it may be shown (masked) and why.
pub fn parse_phone(cell: &Cell) -> Result<Option<Msisdn>, (String, Reason)> {
    let text = cell.text();
    if text.trim().is_empty() {
        return Ok(None);
    }
    Msisdn::parse(&text).map(Some).map_err(|e| match e {
        DomainError::Phone { input, reason } if reason.starts_with("is ") || reason.starts_with("has ") || reason.starts_with("contains ") => {
            (input, reason.to_string())
        }
        DomainError::Phone { input, reason } => (input, format!("is not accepted: {reason}")),
        other => (String::new(), other.to_string()),
    })
}

pub fn parse_number(cell: &Cell) -> Result<InvoiceNo, Reason> {
    InvoiceNo::parse(&cell.text()).map_err(domain_reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn headers_are_normalised() {
        assert_eq!(normalise("Inv #"), "invno");
        assert_eq!(normalise(" Invoice No. "), "invoiceno");
        assert_eq!(normalise("Amount (KES)"), "amount");
        assert_eq!(normalise("Ksh Total"), "total");
        assert_eq!(normalise("DUE_DATE"), "duedate");
        assert_eq!(normalise("M-Pesa No"), "mpesano");
    }

    fn detect_names(headers: &[&str]) -> Vec<(Field, String)> {
        let h: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
        let cols = detect(&h, &Mapping::default(), |_| vec![]);
        Field::ALL.into_iter().filter_map(|f| cols.of(f).map(|i| (f, h[i].clone()))).collect()
    }

    #[test]
    fn common_header_names_are_recognised() {
        let got = detect_names(&["Inv #", "Client", "Tel", "Total", "Outstanding", "Due Date", "Date", "Details"]);
        assert_eq!(got.len(), 8, "{got:?}");
        let got = detect_names(&["Phone Number", "Number", "Name", "Amount", "Due"]);
        assert!(got.contains(&(Field::Phone, "Phone Number".into())) && got.contains(&(Field::Number, "Number".into())), "{got:?}");
        assert!(got.contains(&(Field::DueDate, "Due".into())), "{got:?}");
        let got = detect_names(&["Ref", "Customer Name", "Customer Mobile", "Invoice Amount", "Due", "Invoice Due Date", "Invoice Date"]);
        assert!(got.contains(&(Field::Balance, "Due".into())), "{got:?}");
        assert!(got.contains(&(Field::DueDate, "Invoice Due Date".into())), "{got:?}");
        assert!(got.contains(&(Field::Phone, "Customer Mobile".into())), "{got:?}");
        assert!(got.contains(&(Field::IssueDate, "Invoice Date".into())), "{got:?}");
    }

    #[test]
    fn a_due_column_alone_is_told_apart_by_its_values() {
        let h: Vec<String> = ["Invoice", "Customer", "Amount", "Due", "Payment Date"].iter().map(|s| s.to_string()).collect();
        let cols = detect(&h, &Mapping::default(), |_| vec![t("1,500"), t("0")]);
        assert_eq!(cols.of(Field::Balance), Some(3));
        let cols = detect(&h, &Mapping::default(), |_| vec![t("04/12/2026"), t("2026-12-05")]);
        assert_eq!(cols.of(Field::DueDate), Some(3));
    }

    #[test]
    fn an_override_wins_and_an_empty_one_unmaps() {
        let h: Vec<String> = ["Invoice No", "Customer", "Amount", "Balance", "Due Date", "Alt Phone"].iter().map(|s| s.to_string()).collect();
        let mut m = Mapping::default();
        m.parse_assignment("phone=alt phone").unwrap();
        m.parse_assignment("balance=").unwrap();
        m.parse_assignment("due date=Nope").unwrap();
        let cols = detect(&h, &m, |_| vec![]);
        assert_eq!(cols.of(Field::Phone), Some(5));
        assert_eq!(cols.of(Field::Balance), None);
        assert_eq!(cols.unknown_overrides, vec![(Field::DueDate, "Nope".to_string())]);
        assert!(m.parse_assignment("colour=Red").is_err());
    }

    #[test]
    fn every_date_form() {
        let want = d(2026, 12, 4);
        for s in [
            "04/12/2026", "4/12/2026", "4/12/26", "04-12-2026", "04.12.2026", "2026-12-04", "2026/12/04", "4 Dec 2026", "4-Dec-2026",
            "4 December 2026", "Dec 4, 2026", "4th Dec 2026", "04-Dec-26", "2026-12-04T00:00:00", "2026-12-04 00:00:00", "04/12/2026 00:00",
            "20261204", "46360", "46360.0", "4 Desemba 2026",
        ] {
            assert_eq!(parse_date(&t(s)), Ok(want), "{s}");
        }
        assert_eq!(parse_date(&Cell::Number(46360.0)), Ok(want));
        assert_eq!(parse_date(&Cell::Number(46360.75)), Ok(want));
        assert_eq!(parse_date(&Cell::Date(want)), Ok(want));
        for bad in ["31/02/2026", "tomorrow", "13/13/2026", "4 Foo 2026", "2026-02-30", "12", "4/12"] {
            assert_eq!(parse_date(&t(bad)), Err("is not a date".to_string()), "{bad}");
        }
        assert!(parse_date(&t("12/31/2026")).unwrap_err().contains("day first"));
        assert!(parse_date(&Cell::Number(12.0)).is_err());
    }

    #[test]
    fn every_amount_form() {
        for (s, want) in [
            ("2500", 2500), ("2,500", 2500), ("KES 2,500", 2500), ("Ksh 2,500.00", 2500), ("Kshs. 2,500", 2500), ("2,500/=", 2500),
            ("2,500/-", 2500), ("2500 KES", 2500), ("2,500.00 Ksh", 2500), ("1,250,000", 1_250_000), ("2 500", 2500), ("KES 2,500.00/=", 2500),
        ] {
            assert_eq!(parse_amount(&t(s)).map(Kes::shillings), Ok(want), "{s}");
        }
        assert_eq!(parse_amount(&Cell::Number(2500.0)).map(Kes::shillings), Ok(2500));
        assert_eq!(parse_amount(&Cell::Number(2500.000000001)).map(Kes::shillings), Ok(2500));
        assert!(parse_amount(&t("2,500.50")).unwrap_err().contains("cents"));
        assert!(parse_amount(&Cell::Number(2500.5)).unwrap_err().contains("cents"));
        assert!(parse_amount(&t("-200")).unwrap_err().contains("negative"));
        assert!(parse_amount(&t("(200)")).unwrap_err().contains("negative"));
        assert_eq!(parse_amount(&t("abc")), Err("is not an amount".into()));
        assert_eq!(parse_amount(&t("#DIV/0!")), Err("is not an amount".into()));
    }

    #[test]
    fn phones_in_errors_are_masked() {
        let (shown, reason) = parse_phone(&t("+1 415 555 0100")).unwrap_err();
        assert!(!shown.contains("555 0100") && reason.contains("only Kenyan"), "{shown} {reason}");
        assert_eq!(parse_phone(&Cell::Number(712345678.0)).unwrap().unwrap().as_str(), "254712345678");
        assert_eq!(parse_phone(&Cell::Empty).unwrap(), None);
    }
}
