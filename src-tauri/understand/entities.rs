//! Entity extraction: amount, invoice reference, M-Pesa receipt code, phone number and date.
//!
//! Everything works on an ASCII-lower-cased copy of the message (same byte offsets as the
//! original), in this order, each step marking the bytes it used so later steps cannot reuse them:
//! PIN digits → receipt codes → phone numbers → invoice references → clock times → dates →
//! amounts. That is what keeps `INV-1042` from becoming 1 042 shillings, `0712345678` from being an
//! amount, `15th` from being 15 shillings and `2:15 PM` from being anything.
//!
//! Normal forms (what [`super::Entities`] carries):
//! * amount — whole shillings (`Ksh2,500.50` → 2500; decimals are dropped). Currency-marked amounts
//!   (`KES 2,500/=`, `Ksh2,500.00`, `sh 300`, `300 bob`, `2.5k`, `thao mbili`, `elfu mbili na mia
//!   tano`) win over bare numbers; a bare number (`nitalipa 500`) counts only in a money context and
//!   when it is ≥ 10 and not next to a unit (`10 minutes`, `3 days`, `size 42`). The first one wins.
//! * invoice — see [`normalise_invoice_ref`].
//! * receipt — the 10-character M-Pesa transaction code, upper-cased.
//! * phone — digits with the country code (`0712 345 678` → `254712345678`; local `07…`/`01…`
//!   numbers are taken as Kenyan; `+255…`/`+256…` keep Tanzania/Uganda).
//! * date — the first non-negated mention ("not today, tomorrow" → tomorrow), resolved against the
//!   merchant's `today`:
//!   - `leo`/`today`/`tonight`/`this evening` = today; part-of-day words alone (`jioni`, `asubuhi`)
//!     = today, but only when nothing else is said and not in a greeting (`habari za asubuhi`);
//!   - `kesho`/`tomorrow`/`tmrw` = +1; `keshokutwa`/`kesho kutwa`/`day after tomorrow` = +2;
//!     `jana`/`yesterday` = −1 (not `mwezi jana` = last month); `juzi` = −2;
//!   - a weekday (`Friday`, `Ijumaa`, `fri`) = the next one *after* today (so "Friday" said on a
//!     Friday is +7), or the last one *before* today in a past-tense message; `this Friday` /
//!     `Ijumaa ijayo` = the coming one; `next Friday` / `Friday next week` / `Ijumaa wiki ijayo` = that
//!     weekday in next (Monday-based) week — on a Friday that is +7, on a Monday +11;
//!     `last Friday` / `Ijumaa iliyopita` = the previous one;
//!   - `wiki ijayo`/`next week` = +7; `mwezi ujao`/`next month` = the 1st of next month;
//!     `end month`/`end of the month`/`month end`/`mwisho wa mwezi` = the last day of this month;
//!     `weekend`/`wikendi`/`mwisho wa wiki` = the coming Saturday (today on a weekend);
//!   - `in 3 days`/`give me 3 days`/`baada ya siku tatu` = +3 (`two weeks` = +14);
//!   - `the 15th`/`tarehe 15` = the next 15th on or after today (the last one on or before today in a
//!     past-tense message); `15/12`, `15 Dec`, `Dec 15th` = the occurrence nearest to today;
//!     `15/12/26`, `15.12.2026`, `2026-12-20` as written (day first; two-digit years are 20xx).

use super::numbers;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use regex::Regex;
use std::sync::LazyLock;

/// Normalise an invoice reference so that references typed by customers and invoice numbers stored
/// by the merchant compare equal. Apply it to both sides.
///
/// * `INV-1042`, `inv 1042`, `INV1042`, `inv-1042`, `Invoice 1042`, `ankara 1042`, `#1042`, `1042`
///   all become `INV-1042`: any reference that is a bare number, or starts with `INV`, is written
///   `INV-` + the rest (leading zeros kept: `#0099` → `INV-0099`).
/// * Anything else is upper-cased with spaces removed and `/` or `_` turned into `-`
///   (`A/331` → `A-331`, `duka77` → `DUKA77`).
pub fn normalise_invoice_ref(raw: &str) -> String {
    let mut s: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if c == '/' || c == '_' { '-' } else { c.to_ascii_uppercase() })
        .collect();
    s = s.trim_start_matches('#').trim_matches(|c: char| matches!(c, '.' | '-' | ':' | ',' | ';')).to_string();
    let rest = s.strip_prefix("INVOICE").or_else(|| s.strip_prefix("INV"));
    if let Some(rest) = rest {
        let rest = rest.trim_start_matches(['-', '.', '#', ':']);
        if !rest.is_empty() && rest.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return format!("INV-{rest}");
        }
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return format!("INV-{s}");
    }
    s
}

/// A date mention before it is resolved against `today` and the tense of the message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DateRef {
    Abs(NaiveDate),
    Offset(i64),
    Weekday(Weekday, WdMod),
    DayOfMonth(u32),
    DayMonth(u32, u32),
    EndOfMonth,
    NextMonth,
    Weekend,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WdMod {
    /// "Friday": next one after today, or the last one before today in a past-tense message.
    Plain,
    /// "this Friday", "Ijumaa ijayo": the coming one.
    Coming,
    /// "next Friday", "Friday next week": that weekday in next (Monday-based) week.
    Next,
    /// "last Friday", "Ijumaa iliyopita".
    Last,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct DateCand {
    pub r: DateRef,
    pub pos: usize,
    pub negated: bool,
    /// Part-of-day words alone (`jioni`, `asubuhi`): today, used only when nothing else is said.
    pub weak: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AmountCand {
    pub value: u64,
    /// Currency-marked or spelled with a magnitude word.
    pub strong: bool,
    pub pos: usize,
}

/// Raw extraction result; the intent decides which bare amounts count and which way dates point.
#[derive(Debug, Clone, Default)]
pub(crate) struct Raw {
    pub receipt: Option<String>,
    pub phone: Option<String>,
    pub invoice: Option<String>,
    pub amounts: Vec<AmountCand>,
    pub dates: Vec<DateCand>,
    /// Looks like a pasted M-Pesa confirmation SMS.
    pub sms: bool,
    /// "1,200 not 1,800" / "1500 sio 2500": a contested amount.
    pub contrast_amounts: bool,
}

fn rx(p: &str) -> Regex {
    Regex::new(p).expect("entity regex")
}

static RECEIPT: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)[a-z][a-z0-9]{9}(?-u:\b)"));
static RECEIPT_NOT: LazyLock<Regex> =
    LazyLock::new(|| rx(r"^(?:inv|invoice|ksh|kshs|kes|tsh|tzs|ugx|ush|shs|sh|ref|acc|tel|no|till|pin|tarehe|date|order|bill)\d+$"));
static INV_A: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)inv[-_/.# ]{0,2}(\d[a-z0-9]*(?:[-/][a-z0-9]+)*)"));
static INV_B: LazyLock<Regex> = LazyLock::new(|| {
    rx(r"(?-u:\b)(?:invoices?|invoic|invoce|invoise|invioce|ankara|bill|bili|acc|account|akaunti|a/c)(?:\s*(?:no|nr|number|num|namba|nambari|ref)(?-u:\b))?[\s.:#-]*((?:inv[-_/]?)?\d[a-z0-9]*(?:[-/][a-z0-9]+)*|[a-z]{1,6}\d[a-z0-9]*(?:[-/][a-z0-9]+)*)")
});
static INV_C: LazyLock<Regex> = LazyLock::new(|| rx(r"(?:^|[^a-z0-9&])#\s?(\d{2,}[a-z0-9-]*)"));
static TIME_A: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)\d{1,2}:\d{2}(?:\s*[ap]\.?m(?-u:\b)\.?)?"));
static TIME_B: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)\d{1,2}(?:\.\d{2})?\s*[ap]\.?m(?-u:\b)"));
static TIME_C: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)saa\s+\d{1,2}(?-u:\b)"));
static DATE_ISO: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)(\d{4})-(\d{1,2})-(\d{1,2})(?-u:\b)"));
static DATE_DMY: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?-u:\b)"));
static DATE_DM: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)(\d{1,2})/(\d{1,2})(?-u:\b)"));
static DATE_ORD: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)(\d{1,2})(?:st|nd|rd|th)(?-u:\b)(?:\s+(?:of\s+)?([a-z]+))?"));
static DATE_MD: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?-u:\b)"));
static DATE_DMN: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)(\d{1,2})\s+(?:of\s+)?([a-z]+)(?-u:\b)"));
static DATE_TAREHE: LazyLock<Regex> =
    LazyLock::new(|| rx(r"(?-u:\b)(?:tarehe|tar|date)\s*(\d{1,2})(?-u:\b)(?:\s+(?:mwezi\s+)?([a-z]+))?"));
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    rx(r"(?:(?-u:\b)(kshs|ksh|kes|shs|sh|tshs|tsh|tzs|ugx|ush|shilingi)\.?\s*)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(\s*(?:k(?-u:\b)|thao(?-u:\b)|ngiri(?-u:\b)|elfu(?-u:\b)|thousand(?-u:\b)|soo(?-u:\b)|bob(?-u:\b)|/=|/-|=/|shillings?(?-u:\b)|shilingi(?-u:\b)|kshs(?-u:\b)|ksh(?-u:\b)|kes(?-u:\b)|sh(?-u:\b)|tsh(?-u:\b)|ugx(?-u:\b)))?")
});
static AMOUNT_COMMA_K: LazyLock<Regex> = LazyLock::new(|| rx(r"(?-u:\b)(\d{1,3}),(\d{1,2})\s*k(?-u:\b)"));
static CONTRAST: LazyLock<Regex> = LazyLock::new(|| {
    rx(r"\d[\d,.]*\s*(?:k(?-u:\b)|/=|bob(?-u:\b))?\s*,?\s*(?:not|sio|si|siyo|badala\s+ya|instead\s+of)\s+(?:ksh\.?\s*|kes\s*)?\d")
});

fn month_from(w: &str) -> Option<u32> {
    Some(match w {
        "jan" | "january" | "januari" => 1,
        "feb" | "february" | "februari" => 2,
        "mar" | "march" | "machi" => 3,
        "apr" | "april" | "aprili" => 4,
        "may" | "mei" => 5,
        "jun" | "june" | "juni" => 6,
        "jul" | "july" | "julai" => 7,
        "aug" | "august" | "agosti" => 8,
        "sep" | "sept" | "september" | "septemba" => 9,
        "oct" | "october" | "oktoba" => 10,
        "nov" | "november" | "novemba" => 11,
        "dec" | "december" | "desemba" | "disemba" => 12,
        _ => return None,
    })
}

fn weekday_from(w: &str) -> Option<Weekday> {
    Some(match w {
        "monday" | "mon" | "jumatatu" => Weekday::Mon,
        "tuesday" | "tue" | "tues" | "jumanne" => Weekday::Tue,
        "wednesday" | "wed" | "wednes" | "jumatano" => Weekday::Wed,
        "thursday" | "thu" | "thur" | "thurs" | "alhamisi" | "alhamis" => Weekday::Thu,
        "friday" | "fri" | "ijumaa" | "friday's" => Weekday::Fri,
        "saturday" | "sat" | "jumamosi" => Weekday::Sat,
        "sunday" | "sun" | "jumapili" => Weekday::Sun,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    s: &'a str,
    start: usize,
    end: usize,
}

/// Split the lower-cased text into alphanumeric tokens (a `.` between digits stays inside: `2.5`).
fn tokenize(lower: &str) -> Vec<Tok<'_>> {
    let b = lower.as_bytes();
    let mut out = Vec::with_capacity(16);
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || (b[i] == b'.' && i > start && b[i - 1].is_ascii_digit() && i + 1 < b.len() && b[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            out.push(Tok { s: &lower[start..i], start, end: i });
        } else {
            i += 1;
        }
    }
    out
}

struct Taken(Vec<(usize, usize)>);

impl Taken {
    fn overlaps(&self, s: usize, e: usize) -> bool {
        self.0.iter().any(|&(a, b)| s < b && a < e)
    }
    fn add(&mut self, s: usize, e: usize) {
        self.0.push((s, e));
    }
}

fn phone_from_digits(d: &str) -> Option<String> {
    let d = d.strip_prefix("00").unwrap_or(d);
    let b = d.as_bytes();
    match b.len() {
        10 if b[0] == b'0' && (b[1] == b'7' || b[1] == b'1') => Some(format!("254{}", &d[1..])),
        12 if d.starts_with("254") && (b[3] == b'7' || b[3] == b'1') => Some(d.to_string()),
        12 if d.starts_with("255") && (b[3] == b'6' || b[3] == b'7') => Some(d.to_string()),
        12 if d.starts_with("256") && (b[3] == b'7' || b[3] == b'3') => Some(d.to_string()),
        _ => None,
    }
}

/// Find phone numbers: chains of digit groups separated by single spaces/dashes, optionally
/// starting with `+`. Returns (normalised, start, end) for each phone found.
fn find_phones(lower: &str, taken: &Taken) -> Vec<(String, usize, usize)> {
    let b = lower.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts_chain = b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric()));
        if !starts_chain {
            i += 1;
            continue;
        }
        // collect groups
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut j = i;
        loop {
            let gs = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((gs, j));
            if j + 1 < b.len() && (b[j] == b' ' || b[j] == b'-') && b[j + 1].is_ascii_digit() {
                j += 1;
                continue;
            }
            break;
        }
        let chain_end = j;
        if chain_end < b.len() && (b[chain_end].is_ascii_alphabetic() || b[chain_end] == b'/' || b[chain_end] == b',') {
            // "15th", "3/12" … never a phone; skip the chain's first group only
        }
        let mut k = 0;
        while k < groups.len() {
            let mut digits = String::new();
            let mut found = None;
            for (m, &(gs, ge)) in groups.iter().enumerate().skip(k) {
                digits.push_str(&lower[gs..ge]);
                if digits.len() > 14 {
                    break;
                }
                if let Some(p) = phone_from_digits(&digits) {
                    let end_ok = ge >= b.len() || !(b[ge].is_ascii_alphanumeric() || b[ge] == b'/');
                    if end_ok {
                        found = Some((p, m));
                    }
                }
                if digits.len() >= 12 {
                    break;
                }
            }
            if let Some((p, m)) = found {
                let mut s = groups[k].0;
                if s > 0 && b[s - 1] == b'+' {
                    s -= 1;
                }
                let e = groups[m].1;
                if !taken.overlaps(s, e) {
                    out.push((p, s, e));
                }
                k = m + 1;
            } else {
                k += 1;
            }
        }
        i = chain_end.max(i + 1);
    }
    out
}

const CURRENCY_WORDS: &[&str] = &["shilingi", "shillings", "shilling", "bob", "ksh", "kes", "kshs", "sh", "shs", "tsh", "ugx"];
const BARE_BEFORE_NOT: &[&str] = &[
    "saa", "size", "tarehe", "on", "by", "till", "until", "mpaka", "hadi", "in", "within", "after", "no", "number", "namba",
    "nambari", "option", "room", "plot", "mara", "page", "code", "pin", "the", "at", "siku", "wiki", "miezi", "mwezi", "year",
    "mwaka", "age", "umri", "item", "house", "nyumba", "about", "around", "next", "paybill", "till", "account",
    "acc", "business", "shortcode", "agent", "store",
];
const BARE_AFTER_NOT: &[&str] = &[
    "days", "day", "siku", "weeks", "week", "wiki", "months", "month", "minutes", "minute", "mins", "min", "hours", "hour",
    "hrs", "hr", "pm", "am", "items", "item", "bags", "bag", "pcs", "pieces", "piece", "kg", "kgs", "kilo", "kilos", "litres",
    "liters", "litre", "shoes", "people", "times", "mara", "years", "yrs", "st", "nd", "rd", "th", "percent", "pc", "units",
    "boxes", "box", "crates", "cartons", "bales", "trays", "dozen", "km", "metres", "meters", "sec", "seconds", "o'clock",
    "oclock", "of",
];

fn prev_word<'a>(toks: &[Tok<'a>], pos: usize) -> Option<&'a str> {
    toks.iter().rev().find(|t| t.end <= pos).map(|t| t.s)
}
fn next_word<'a>(toks: &[Tok<'a>], pos: usize) -> Option<&'a str> {
    toks.iter().find(|t| t.start >= pos).map(|t| t.s)
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Extract everything that does not depend on the intent.
pub(crate) fn extract(text: &str) -> Raw {
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    // cheap gates so short messages skip most regex passes
    let has_digit = b.iter().any(|c| c.is_ascii_digit());
    let has = |needle: &str| lower.contains(needle);
    let mut taken = Taken(super::pin::pin_spans(text));
    let mut raw = Raw::default();

    // --- receipts -------------------------------------------------------------------------
    for m in RECEIPT.find_iter(if has_digit { &lower } else { "" }) {
        let t = m.as_str();
        let digits = t.bytes().filter(|c| c.is_ascii_digit()).count();
        if (2..=8).contains(&digits) && !RECEIPT_NOT.is_match(t) && !taken.overlaps(m.start(), m.end()) {
            if raw.receipt.is_none() {
                raw.receipt = Some(t.to_ascii_uppercase());
            }
            taken.add(m.start(), m.end());
        }
    }

    // --- phones -----------------------------------------------------------------------------
    for (p, s, e) in find_phones(&lower, &taken) {
        if raw.phone.is_none() {
            raw.phone = Some(p);
        }
        taken.add(s, e);
    }

    // --- invoice ----------------------------------------------------------------------------
    let mut best: Option<(usize, usize, usize, String)> = None; // (match start, ref start, ref end, normal)
    let mut consider = |ms: usize, rs: usize, re: usize, r: &str, taken: &Taken| {
        if taken.overlaps(rs, re) {
            return;
        }
        // "invoice 2,500" is an amount, not a reference
        if re < b.len() && b[re] == b',' && b.get(re + 1).is_some_and(|c| c.is_ascii_digit()) {
            return;
        }
        let r = r.trim_end_matches(['-', '/', '.']);
        if r.is_empty() || !r.bytes().any(|c| c.is_ascii_digit()) {
            return;
        }
        if best.as_ref().is_none_or(|bb| ms < bb.0) {
            best = Some((ms, rs, rs + r.len(), normalise_invoice_ref(r)));
        }
    };
    let inv_ok = has_digit && (has("inv") || has("ankara") || has("bil") || has("acc") || has("akaunti") || has("a/c"));
    let inv_text = if inv_ok { lower.as_str() } else { "" };
    for c in INV_A.captures_iter(inv_text) {
        let (m, g) = (c.get(0).unwrap(), c.get(1).unwrap());
        consider(m.start(), m.start(), g.end(), &lower[m.start()..g.end()], &taken);
    }
    for c in INV_B.captures_iter(inv_text) {
        let (m, g) = (c.get(0).unwrap(), c.get(1).unwrap());
        consider(m.start(), g.start(), g.end(), g.as_str(), &taken);
    }
    for c in INV_C.captures_iter(if has_digit && has("#") { lower.as_str() } else { "" }) {
        let g = c.get(1).unwrap();
        consider(g.start(), g.start(), g.end(), g.as_str(), &taken);
    }
    if let Some((_, rs, re, norm)) = best {
        raw.invoice = Some(norm);
        taken.add(rs, re);
    }
    // other INV-like references are never amounts either
    for m in INV_A.find_iter(inv_text) {
        taken.add(m.start(), m.end());
    }

    // --- times ------------------------------------------------------------------------------
    for re in [&*TIME_A, &*TIME_B, &*TIME_C] {
        for m in re.find_iter(if has_digit { lower.as_str() } else { "" }) {
            if !taken.overlaps(m.start(), m.end()) {
                taken.add(m.start(), m.end());
            }
        }
    }

    let toks = tokenize(&lower);
    let digits_text = if has_digit { lower.as_str() } else { "" };
    let has_month = has_digit && toks.iter().any(|t| month_from(t.s).is_some());
    let month_text = if has_month { lower.as_str() } else { "" };

    // --- numeric dates ----------------------------------------------------------------------
    let mut dates: Vec<DateCand> = Vec::new();
    let push_date = |dates: &mut Vec<DateCand>, taken: &mut Taken, r: Option<DateRef>, s: usize, e: usize| {
        if let Some(r) = r {
            if !taken.overlaps(s, e) {
                let negated = is_negated(&toks, s);
                dates.push(DateCand { r, pos: s, negated, weak: false });
                taken.add(s, e);
            }
        }
    };
    for c in DATE_ISO.captures_iter(digits_text) {
        let m = c.get(0).unwrap();
        let y: i32 = c[1].parse().unwrap_or(0);
        let mo: u32 = c[2].parse().unwrap_or(0);
        let d: u32 = c[3].parse().unwrap_or(0);
        push_date(&mut dates, &mut taken, ymd(y, mo, d).map(DateRef::Abs), m.start(), m.end());
    }
    for c in DATE_DMY.captures_iter(digits_text) {
        let m = c.get(0).unwrap();
        let d: u32 = c[1].parse().unwrap_or(0);
        let mo: u32 = c[2].parse().unwrap_or(0);
        let mut y: i32 = c[3].parse().unwrap_or(0);
        if y < 100 {
            y += 2000;
        }
        push_date(&mut dates, &mut taken, ymd(y, mo, d).map(DateRef::Abs), m.start(), m.end());
    }
    for c in DATE_DM.captures_iter(digits_text) {
        let m = c.get(0).unwrap();
        if m.end() < b.len() && matches!(b[m.end()], b'/' | b'k') {
            continue;
        }
        if m.start() > 0 && matches!(b[m.start() - 1], b'/' | b'-' | b'.') {
            continue;
        }
        let d: u32 = c[1].parse().unwrap_or(0);
        let mo: u32 = c[2].parse().unwrap_or(0);
        let r = ((1..=31).contains(&d) && (1..=12).contains(&mo)).then_some(DateRef::DayMonth(d, mo));
        push_date(&mut dates, &mut taken, r, m.start(), m.end());
    }
    for c in DATE_ORD.captures_iter(digits_text) {
        let m = c.get(0).unwrap();
        let d: u32 = c[1].parse().unwrap_or(0);
        if !(1..=31).contains(&d) {
            continue;
        }
        let month = c.get(2).and_then(|g| month_from(g.as_str()));
        let (r, e) = match month {
            Some(mo) => (DateRef::DayMonth(d, mo), m.end()),
            None => {
                // "Dec 15th" — month before the day
                let before = prev_word(&toks, m.start()).and_then(month_from);
                match before {
                    Some(mo) => (DateRef::DayMonth(d, mo), c.get(1).unwrap().end() + 2),
                    None => (DateRef::DayOfMonth(d), c.get(1).unwrap().end() + 2),
                }
            }
        };
        push_date(&mut dates, &mut taken, Some(r), m.start(), e.min(m.end()));
    }
    for c in DATE_TAREHE.captures_iter(digits_text) {
        let m = c.get(0).unwrap();
        let g = c.get(1).unwrap();
        let d: u32 = g.as_str().parse().unwrap_or(0);
        if !(1..=31).contains(&d) {
            continue;
        }
        let (r, e) = match c.get(2).and_then(|g2| month_from(g2.as_str()).map(|mo| (mo, g2.end()))) {
            Some((mo, e)) => (DateRef::DayMonth(d, mo), e),
            None => (DateRef::DayOfMonth(d), g.end()),
        };
        push_date(&mut dates, &mut taken, Some(r), g.start(), e);
        let _ = m;
    }
    for c in DATE_MD.captures_iter(month_text) {
        let (mw, g) = (c.get(1).unwrap(), c.get(2).unwrap());
        if let Some(mo) = month_from(mw.as_str()) {
            let d: u32 = g.as_str().parse().unwrap_or(0);
            if (1..=31).contains(&d) && !(g.end() < b.len() && (b[g.end()] == b',' || b[g.end()] == b'k')) {
                let m = c.get(0).unwrap();
                push_date(&mut dates, &mut taken, Some(DateRef::DayMonth(d, mo)), m.start(), m.end());
            }
        }
    }
    for c in DATE_DMN.captures_iter(month_text) {
        let (g, mw) = (c.get(1).unwrap(), c.get(2).unwrap());
        if let Some(mo) = month_from(mw.as_str()) {
            let d: u32 = g.as_str().parse().unwrap_or(0);
            if (1..=31).contains(&d) && !(g.start() > 0 && matches!(b[g.start() - 1], b',' | b'.')) {
                let m = c.get(0).unwrap();
                push_date(&mut dates, &mut taken, Some(DateRef::DayMonth(d, mo)), m.start(), m.end());
            }
        }
    }

    // --- word dates -------------------------------------------------------------------------
    word_dates(&toks, &mut dates, &mut taken);
    dates.sort_by_key(|d| d.pos);
    raw.dates = dates;

    // --- amounts: number words first (they may contain digits: "elfu 2") ----------------------
    let mut amounts: Vec<AmountCand> = Vec::new();
    let words: Vec<&str> = toks.iter().map(|t| t.s).collect();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if taken.overlaps(t.start, t.end) {
            i += 1;
            continue;
        }
        let prev = if i > 0 { Some(toks[i - 1].s) } else { None };
        let prev_is_digit = prev.is_some_and(|p| p.bytes().all(|c| c.is_ascii_digit() || c == b'.'));
        let duration_before = prev.is_some_and(|p| {
            matches!(p, "saa" | "siku" | "wiki" | "mwezi" | "miezi" | "tarehe" | "mara" | "namba" | "size" | "in" | "for")
        });
        let mut parsed = None;
        if numbers::is_sw_number_word(t.s) && !prev_is_digit && !duration_before {
            parsed = numbers::parse_sw(&words, i);
        }
        if parsed.is_none() && !duration_before && t.s.bytes().all(|c| c.is_ascii_alphabetic()) {
            parsed = numbers::parse_en(&words, i);
        }
        if let Some((v, j, mag)) = parsed {
            let last = toks[j - 1];
            let after = toks.get(j).map(|t| t.s);
            let currency = prev.is_some_and(|p| CURRENCY_WORDS.contains(&p)) || after.is_some_and(|a| CURRENCY_WORDS.contains(&a));
            let span_free = !taken.overlaps(t.start, last.end);
            let unit_after = after.is_some_and(|a| BARE_AFTER_NOT.contains(&a));
            // "a thousand" is an amount only next to a currency word ("thanks a million" is not)
            let idiom = t.s == "a" && !currency;
            if (mag || currency) && span_free && !unit_after && !idiom && v > 0 {
                amounts.push(AmountCand { value: v, strong: true, pos: t.start });
                taken.add(t.start, last.end);
                i = j;
                continue;
            }
        }
        i += 1;
    }

    // --- amounts: digits ---------------------------------------------------------------------
    // "1,5k" typed for 1.5k
    for c in AMOUNT_COMMA_K.captures_iter(digits_text) {
        let m = c.get(0).unwrap();
        if taken.overlaps(m.start(), m.end()) {
            continue;
        }
        if let Ok(f) = format!("{}.{}", &c[1], &c[2]).parse::<f64>() {
            amounts.push(AmountCand { value: (f * 1000.0).round() as u64, strong: true, pos: m.start() });
            taken.add(m.start(), m.end());
        }
    }
    for c in AMOUNT.captures_iter(digits_text) {
        let m = c.get(0).unwrap();
        let num = c.get(2).unwrap();
        let prefix = c.get(1);
        let suffix = c.get(4).map(|s| s.as_str().trim());
        if taken.overlaps(num.start(), num.end()) {
            continue;
        }
        // digits glued to letters belong to a word/code ("ul2hx", "2nd") unless it is a currency
        if prefix.is_none() && num.start() > 0 {
            let pb = b[num.start() - 1];
            if pb.is_ascii_alphanumeric() || pb == b'#' || pb == b'/' || pb == b'+' {
                continue;
            }
            if (pb == b'-' || pb == b'.') && num.start() > 1 && b[num.start() - 2].is_ascii_alphanumeric() {
                continue;
            }
        }
        let after = m.end();
        if suffix.is_none() {
            if after < b.len() && (b[after].is_ascii_alphabetic() || b[after] == b'%') {
                continue;
            }
            if after + 1 < b.len() && matches!(b[after], b'/' | b':') && b[after + 1].is_ascii_digit() {
                continue;
            }
        }
        let int: u64 = match num.as_str().replace(',', "").parse() {
            Ok(v) => v,
            Err(_) => continue,
        };
        let dec = c.get(3).map(|d| d.as_str());
        let mult: u64 = match suffix {
            Some("k" | "thao" | "ngiri" | "elfu" | "thousand") => 1000,
            Some("soo") => 100,
            _ => 1,
        };
        let value = if mult > 1 {
            let f: f64 = format!("{}.{}", int, dec.unwrap_or("0")).parse().unwrap_or(int as f64);
            (f * mult as f64).round() as u64
        } else {
            int
        };
        let strong = prefix.is_some() || suffix.is_some();
        if !strong {
            if dec.is_some_and(|d| d.len() != 2) || value < 10 || num.as_str().len() > 9 || num.as_str().starts_with('0') {
                continue;
            }
            if prev_word(&toks, num.start()).is_some_and(|w| BARE_BEFORE_NOT.contains(&w)) {
                continue;
            }
            if next_word(&toks, num.end()).is_some_and(|w| BARE_AFTER_NOT.contains(&w) || month_from(w).is_some()) {
                continue;
            }
        }
        if value == 0 {
            continue;
        }
        amounts.push(AmountCand { value, strong, pos: m.start() });
        taken.add(m.start(), m.end());
    }
    amounts.sort_by_key(|a| a.pos);
    raw.amounts = amounts;

    raw.sms = raw.receipt.is_some()
        && (lower.contains("confirmed") || lower.contains("imethibitishwa"))
        && (lower.contains("ksh") || lower.contains("tsh") || lower.contains("sent to") || lower.contains("paid to") || lower.contains("m-pesa"));
    raw.contrast_amounts = has_digit && CONTRAST.is_match(&lower);
    raw
}

fn is_negated(toks: &[Tok<'_>], pos: usize) -> bool {
    matches!(
        prev_word(toks, pos),
        Some("not" | "si" | "sio" | "siyo" | "sitaweza" | "siwezi" | "isnt" | "cant" | "hapana" | "sina")
    )
}

fn word_dates(toks: &[Tok<'_>], dates: &mut Vec<DateCand>, taken: &mut Taken) {
    let n = toks.len();
    let w = |k: usize| -> &str { if k < n { toks[k].s } else { "" } };
    let mut i = 0;
    while i < n {
        let t = toks[i];
        if taken.overlaps(t.start, t.end) {
            i += 1;
            continue;
        }
        let prev = if i > 0 { w(i - 1) } else { "" };
        let prev2 = if i > 1 { w(i - 2) } else { "" };
        let mut r: Option<DateRef> = None;
        let mut used = 1;
        let mut weak = false;
        match t.s {
            "leo" | "today" | "tonight" | "tonite" | "2day" => {
                // "habari za leo" is a greeting, not a date
                if !(matches!(prev, "za" | "ya") && toks[..i].iter().any(|t| t.s == "habari")) {
                    r = Some(DateRef::Offset(0));
                }
            }
            "morning" | "afternoon" | "evening" if prev == "this" => r = Some(DateRef::Offset(0)),
            "asubuhi" | "mchana" | "jioni" | "usiku" => {
                if !matches!(prev, "za" | "ya" | "habari" | "good") {
                    r = Some(DateRef::Offset(0));
                    weak = true;
                }
            }
            "kesho" | "tomorrow" | "tommorow" | "tomorow" | "tomoro" | "tmrw" | "tmr" | "tommorrow" | "tmoro" | "kesh" => {
                if w(i + 1) == "kutwa" {
                    r = Some(DateRef::Offset(2));
                    used = 2;
                } else if prev == "after" && prev2 == "day" {
                    r = Some(DateRef::Offset(2));
                } else {
                    r = Some(DateRef::Offset(1));
                }
            }
            "keshokutwa" | "keshokuta" => r = Some(DateRef::Offset(2)),
            "jana" | "yesterday" | "yday" | "ystd" => {
                if !matches!(prev, "mwezi" | "wiki" | "mwaka" | "week" | "month") {
                    if prev == "before" && prev2 == "day" {
                        r = Some(DateRef::Offset(-2));
                    } else {
                        r = Some(DateRef::Offset(-1));
                    }
                }
            }
            "juzi" => r = Some(DateRef::Offset(-2)),
            "wiki" | "week" | "wk" => {
                let next = w(i + 1);
                if matches!(next, "ijayo" | "ijao" | "inayokuja" | "ijayo.") {
                    r = Some(DateRef::Offset(7));
                    used = 2;
                } else if matches!(prev, "next" | "nxt") {
                    r = Some(DateRef::Offset(7));
                } else if prev == "mwisho" || (prev == "wa" && prev2 == "mwisho") {
                    r = Some(DateRef::Weekend);
                } else if (matches!(prev, "in" | "a") && matches!(prev2, "in" | "within" | ""))
                    || prev == "baada"
                    || (prev == "ya" && prev2 == "baada")
                {
                    r = Some(DateRef::Offset(7));
                }
            }
            "mwezi" | "month" => {
                let next = w(i + 1);
                if matches!(next, "ujao" | "unaokuja" | "ujayo") {
                    r = Some(DateRef::NextMonth);
                    used = 2;
                } else if matches!(prev, "next" | "nxt") {
                    r = Some(DateRef::NextMonth);
                } else if (1..=3).any(|k| i >= k && w(i - k) == "end" && (1..k).all(|m| matches!(w(i - m), "of" | "the" | "this")))
                    || (prev == "wa" || prev == "mwa") && prev2 == "mwisho"
                    || prev == "mwisho"
                {
                    r = Some(DateRef::EndOfMonth);
                } else if next == "end" {
                    r = Some(DateRef::EndOfMonth);
                    used = 2;
                }
            }
            "endmonth" | "monthend" => r = Some(DateRef::EndOfMonth),
            "weekend" | "wikendi" | "wikend" | "weekends" => r = Some(DateRef::Weekend),
            "days" | "day" | "siku" | "weeks" => {
                let unit = if t.s == "weeks" { 7 } else { 1 };
                if t.s == "siku" {
                    let words: Vec<&str> = toks[i + 1..n.min(i + 5)].iter().map(|t| t.s).collect();
                    if let Some((c, k)) = numbers::small_count(&words, 0) {
                        if matches!(prev, "baada" | "ya" | "nipe" | "kwa") || prev2 == "baada" {
                            r = Some(DateRef::Offset(c as i64));
                            used = 1 + k;
                        }
                    }
                } else if i > 0 {
                    // "3 days", "two days", "in 2 days" (the count is the token before)
                    let words = [prev];
                    if let Some((c, _)) = numbers::small_count(&words, 0) {
                        let lead = if i > 1 { w(i - 2) } else { "" };
                        if matches!(lead, "in" | "me" | "within" | "after" | "next" | "give" | "another") || lead.is_empty() {
                            r = Some(DateRef::Offset(c as i64 * unit));
                        }
                    }
                }
            }
            s => {
                if let Some(wd) = weekday_from(s) {
                    let next = w(i + 1);
                    let next2 = w(i + 2);
                    let mut m = WdMod::Plain;
                    if matches!(prev, "next" | "nxt") {
                        m = WdMod::Next;
                    } else if matches!(prev, "last" | "past" | "previous") {
                        m = WdMod::Last;
                    } else if matches!(prev, "this" | "coming" | "hii") {
                        m = WdMod::Coming;
                    }
                    if matches!(next, "ijayo" | "inayokuja" | "ijao") {
                        m = WdMod::Coming;
                        used = 2;
                    } else if matches!(next, "iliyopita" | "iliopita" | "ilopita") {
                        m = WdMod::Last;
                        used = 2;
                    } else if (next == "next" && matches!(next2, "week" | "wk")) || (next == "wiki" && matches!(next2, "ijayo" | "ijao")) {
                        m = WdMod::Next;
                        used = 3;
                    } else if next == "hii" {
                        m = WdMod::Coming;
                        used = 2;
                    }
                    // "sat"/"sun"/"wed" are English words too: need a date-ish neighbour
                    let ambiguous = matches!(s, "sat" | "sun" | "wed" | "mon");
                    if !ambiguous || matches!(prev, "on" | "by" | "next" | "this" | "last" | "till" | "until") {
                        r = Some(DateRef::Weekday(wd, m));
                    }
                }
            }
        }
        if let Some(r) = r {
            let end = toks[(i + used - 1).min(n - 1)].end;
            let negated = is_negated(toks, t.start);
            dates.push(DateCand { r, pos: t.start, negated, weak });
            taken.add(t.start, end);
            i += used;
        } else {
            i += 1;
        }
    }
}

fn last_day_of_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = (d.year(), d.month());
    let first_next = if m == 12 { ymd(y + 1, 1, 1) } else { ymd(y, m + 1, 1) };
    first_next.and_then(|f| f.pred_opt()).unwrap_or(d)
}

fn add_days(d: NaiveDate, n: i64) -> Option<NaiveDate> {
    d.checked_add_signed(Duration::days(n))
}

/// Resolve one date mention. `past` = the message talks about something already done, so bare
/// weekdays and days of month point backwards ("nililipa Jumatatu" = last Monday).
pub(crate) fn resolve(r: DateRef, today: NaiveDate, past: bool) -> Option<NaiveDate> {
    match r {
        DateRef::Abs(d) => Some(d),
        DateRef::Offset(n) => add_days(today, n),
        DateRef::Weekday(wd, m) => {
            let t = today.weekday().num_days_from_monday() as i64;
            let w = wd.num_days_from_monday() as i64;
            let ahead = (w - t).rem_euclid(7); // 0..6
            let ahead = if ahead == 0 { 7 } else { ahead };
            let back = (t - w).rem_euclid(7);
            let back = if back == 0 { 7 } else { back };
            match m {
                WdMod::Plain if past => add_days(today, -back),
                WdMod::Plain | WdMod::Coming => add_days(today, ahead),
                WdMod::Last => add_days(today, -back),
                WdMod::Next => add_days(today, 7 - t + w),
            }
        }
        DateRef::DayOfMonth(d) => {
            let mut y = today.year();
            let mut m = today.month();
            for _ in 0..14 {
                if let Some(c) = ymd(y, m, d) {
                    if (!past && c >= today) || (past && c <= today) {
                        return Some(c);
                    }
                }
                if past {
                    if m == 1 {
                        m = 12;
                        y -= 1;
                    } else {
                        m -= 1;
                    }
                } else if m == 12 {
                    m = 1;
                    y += 1;
                } else {
                    m += 1;
                }
            }
            None
        }
        DateRef::DayMonth(d, m) => {
            // the occurrence nearest to today
            let y = today.year();
            [y - 1, y, y + 1]
                .iter()
                .filter_map(|&yy| ymd(yy, m, d))
                .min_by_key(|c| (*c - today).num_days().abs())
        }
        DateRef::EndOfMonth => Some(last_day_of_month(today)),
        DateRef::NextMonth => Some(add_days(last_day_of_month(today), 1).unwrap_or(today)),
        DateRef::Weekend => {
            let t = today.weekday();
            if t == Weekday::Sat || t == Weekday::Sun {
                Some(today)
            } else {
                add_days(today, 5 - t.num_days_from_monday() as i64)
            }
        }
    }
}

impl Raw {
    fn live_dates(&self) -> impl Iterator<Item = &DateCand> {
        self.dates.iter().filter(|d| !d.negated)
    }

    /// Is there a (non-negated) date mention after today?
    pub(crate) fn has_future_date(&self, today: NaiveDate) -> bool {
        self.live_dates().any(|d| !is_past_ref(d.r) && resolve(d.r, today, false).is_some_and(|x| x > today))
    }

    /// Does the message name a day in the past ("jana", "last Friday")?
    pub(crate) fn has_past_date(&self) -> bool {
        self.live_dates().any(|d| is_past_ref(d.r))
    }

    /// The date the message is about: the first non-negated mention (part-of-day words only when
    /// nothing else is said).
    pub(crate) fn resolve_date(&self, today: NaiveDate, past: bool) -> Option<NaiveDate> {
        let pick = self.live_dates().find(|d| !d.weak).or_else(|| self.live_dates().find(|d| d.weak))?;
        resolve(pick.r, today, past)
    }

    /// The amount: the first currency-marked/spelled one, else (in a money context) the first bare one.
    pub(crate) fn amount(&self, money_context: bool) -> Option<u64> {
        self.amounts
            .iter()
            .find(|a| a.strong)
            .or_else(|| if money_context { self.amounts.first() } else { None })
            .map(|a| a.value)
    }
}

fn is_past_ref(r: DateRef) -> bool {
    matches!(r, DateRef::Offset(n) if n < 0) || matches!(r, DateRef::Weekday(_, WdMod::Last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap() // a Friday
    }
    fn amount(s: &str) -> Option<u64> {
        extract(s).amount(true)
    }
    fn date(s: &str) -> Option<NaiveDate> {
        extract(s).resolve_date(today(), false)
    }
    fn past_date(s: &str) -> Option<NaiveDate> {
        extract(s).resolve_date(today(), true)
    }
    fn d(y: i32, m: u32, dd: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, dd)
    }

    #[test]
    fn amount_forms() {
        assert_eq!(amount("2500"), Some(2500));
        assert_eq!(amount("nitalipa 2,500"), Some(2500));
        assert_eq!(amount("2.5k"), Some(2500));
        assert_eq!(amount("5k"), Some(5000));
        assert_eq!(amount("1.5K"), Some(1500));
        assert_eq!(amount("KES 2,500/="), Some(2500));
        assert_eq!(amount("Ksh2,500.00"), Some(2500));
        assert_eq!(amount("sh 300"), Some(300));
        assert_eq!(amount("300 bob"), Some(300));
        assert_eq!(amount("kes2500"), Some(2500));
        assert_eq!(amount("1000ksh"), Some(1000));
        assert_eq!(amount("2500/-"), Some(2500));
        assert_eq!(amount("Tsh 10,000"), Some(10000));
        assert_eq!(amount("UGX 50,000"), Some(50000));
        assert_eq!(amount("2 thao"), Some(2000));
        assert_eq!(amount("tuma 1,5k"), Some(1500));
        assert_eq!(amount("paid 10,500.50"), Some(10500));
        assert_eq!(amount("paid 2.5"), None);
        assert_eq!(amount("niko ready kulipa 2k"), Some(2000));
    }

    #[test]
    fn amount_words() {
        assert_eq!(amount("elfu mbili na mia tano"), Some(2500));
        assert_eq!(amount("mia tatu na hamsini"), Some(350));
        assert_eq!(amount("elfu kumi na mbili"), Some(12000));
        assert_eq!(amount("laki moja na elfu ishirini"), Some(120000));
        assert_eq!(amount("thao mbili"), Some(2000));
        assert_eq!(amount("ngiri tatu"), Some(3000));
        assert_eq!(amount("soo tano"), Some(500));
        assert_eq!(amount("nitume elfu 2"), Some(2000));
        assert_eq!(amount("two thousand five hundred"), Some(2500));
        assert_eq!(amount("shilingi hamsini"), Some(50));
        assert_eq!(amount("nusu"), None);
        assert_eq!(amount("thanks a million"), None);
        assert_eq!(amount("a thousand bob"), Some(1000));
        assert_eq!(amount("nimelipa nusu"), None);
        assert_eq!(amount("saa tatu"), None);
        assert_eq!(amount("siku tatu"), None);
    }

    #[test]
    fn things_that_are_not_amounts() {
        assert_eq!(amount("INV-1042"), None);
        assert_eq!(amount("invoice 1042"), None);
        assert_eq!(amount("0712345678"), None);
        assert_eq!(amount("the 15th"), None);
        assert_eq!(amount("tarehe 15"), None);
        assert_eq!(amount("at 2:15 PM"), None);
        assert_eq!(amount("3pm"), None);
        assert_eq!(amount("QKJ7RT61SV"), None);
        assert_eq!(amount("in 10 minutes"), None);
        assert_eq!(amount("give me 3 days"), None);
        assert_eq!(amount("15/12"), None);
        assert_eq!(amount("2026-12-20"), None);
        assert_eq!(amount("#0099"), None);
        assert_eq!(amount("pin yangu ni 4821"), None);
        assert_eq!(amount("size 42"), None);
        // bare numbers need a money context
        assert_eq!(extract("do you have size 42 shoes").amount(false), None);
        assert_eq!(extract("nitalipa 500").amount(true), Some(500));
        // currency-marked amounts do not
        assert_eq!(extract("ksh 500").amount(false), Some(500));
    }

    #[test]
    fn first_strong_amount_wins() {
        assert_eq!(amount("I paid 1000 of Ksh 2,500"), Some(2500));
        assert_eq!(amount("this should be 3,000 not 5,000"), Some(3000));
        assert!(extract("it was 1,200 not 1,800").contrast_amounts);
        assert!(extract("bei ilikuwa 1500 sio 2500").contrast_amounts);
    }

    #[test]
    fn invoices() {
        let inv = |s: &str| extract(s).invoice;
        assert_eq!(inv("INV-1042").as_deref(), Some("INV-1042"));
        assert_eq!(inv("inv 1042").as_deref(), Some("INV-1042"));
        assert_eq!(inv("INV1042").as_deref(), Some("INV-1042"));
        assert_eq!(inv("invoice 1042").as_deref(), Some("INV-1042"));
        assert_eq!(inv("invoice no. 1042").as_deref(), Some("INV-1042"));
        assert_eq!(inv("Invoice #1042 please").as_deref(), Some("INV-1042"));
        assert_eq!(inv("ankara 1042").as_deref(), Some("INV-1042"));
        assert_eq!(inv("ankara namba 77").as_deref(), Some("INV-77"));
        assert_eq!(inv("#0099").as_deref(), Some("INV-0099"));
        assert_eq!(inv("inv-2026-014").as_deref(), Some("INV-2026-014"));
        assert_eq!(inv("for account INV-1042 on 3/12/26").as_deref(), Some("INV-1042"));
        assert_eq!(inv("invoice A331").as_deref(), Some("A331"));
        assert_eq!(inv("I need a new invoice"), None);
        assert_eq!(inv("account 0712345678"), None);
        assert_eq!(inv("invoice 2,500"), None);
    }

    #[test]
    fn invoice_normal_form_matches_stored_numbers() {
        for s in ["INV-1042", "inv 1042", "inv1042", "1042", "#1042", "Invoice 1042", " INV/1042 "] {
            assert_eq!(normalise_invoice_ref(s), "INV-1042", "{s}");
        }
        assert_eq!(normalise_invoice_ref("inv-2026/014"), "INV-2026-014");
        assert_eq!(normalise_invoice_ref("Duka 77"), "DUKA77");
    }

    #[test]
    fn receipts() {
        let r = |s: &str| extract(s).receipt;
        assert_eq!(r("QKJ7RT61SV").as_deref(), Some("QKJ7RT61SV"));
        assert_eq!(r("code ni ul5hj21klp").as_deref(), Some("UL5HJ21KLP"));
        assert_eq!(r("NLJ7RT61SV Confirmed.").as_deref(), Some("NLJ7RT61SV"));
        assert_eq!(r("confirmed transaction yesterday"), None);
        assert_eq!(r("INV2026001"), None);
        assert_eq!(r("ksh2500000"), None);
        assert_eq!(r("unsubscribe"), None);
        assert_eq!(r("ABCDEFGHIJ"), None);
        assert_eq!(r("QKJ7RT61S"), None);
        assert_eq!(r("QKJ7RT61SVX"), None);
    }

    #[test]
    fn pasted_sms() {
        let sms = "QKJ7RT61SV Confirmed. Ksh2,500.00 sent to DUKA LTD for account INV-1042 on 3/12/26 at 2:15 PM New M-PESA balance is Ksh3,410.50. Transaction cost, Ksh34.00.Amount you can transact within the day is 497,500.00.";
        let r = extract(sms);
        assert!(r.sms);
        assert_eq!(r.receipt.as_deref(), Some("QKJ7RT61SV"));
        assert_eq!(r.amount(true), Some(2500));
        assert_eq!(r.invoice.as_deref(), Some("INV-1042"));
        assert_eq!(r.phone, None);
        assert_eq!(r.resolve_date(today(), true), d(2026, 12, 3));

        let till = "UL2HX81KQP Confirmed. Ksh1,200.00 paid to MAMA WANJIKU STORES. on 2/12/26 at 10:04 AM.New M-PESA balance is Ksh540.00.";
        let r = extract(till);
        assert!(r.sms);
        assert_eq!(r.amount(true), Some(1200));
        assert_eq!(r.invoice, None);
        assert_eq!(r.resolve_date(today(), true), d(2026, 12, 2));

        let p2p = "UL3PQ7Z2TR Confirmed. Ksh750.00 sent to PETER OTIENO 0722334455 on 1/12/26 at 8:12 AM.";
        let r = extract(p2p);
        assert_eq!(r.phone.as_deref(), Some("254722334455"));
        assert_eq!(r.amount(true), Some(750));
    }

    #[test]
    fn phones() {
        let p = |s: &str| extract(s).phone;
        assert_eq!(p("0712345678").as_deref(), Some("254712345678"));
        assert_eq!(p("0712 345 678").as_deref(), Some("254712345678"));
        assert_eq!(p("0712-345-678").as_deref(), Some("254712345678"));
        assert_eq!(p("0112345678").as_deref(), Some("254112345678"));
        assert_eq!(p("+254712345678").as_deref(), Some("254712345678"));
        assert_eq!(p("+254 712 345 678").as_deref(), Some("254712345678"));
        assert_eq!(p("254112345678").as_deref(), Some("254112345678"));
        assert_eq!(p("+255 754 123 456").as_deref(), Some("255754123456"));
        assert_eq!(p("256772123456").as_deref(), Some("256772123456"));
        assert_eq!(p("tuma 2500 kwa 0712345678").as_deref(), Some("254712345678"));
        assert_eq!(p("2500"), None);
        assert_eq!(p("12345678901"), None);
        let r = extract("tuma 2500 kwa 0712345678");
        assert_eq!(r.amount(true), Some(2500));
    }

    #[test]
    fn date_words() {
        let t = today();
        assert_eq!(date("nitalipa leo"), Some(t));
        assert_eq!(date("today"), Some(t));
        assert_eq!(date("kesho"), d(2026, 12, 5));
        assert_eq!(date("tomorrow"), d(2026, 12, 5));
        assert_eq!(date("tmrw"), d(2026, 12, 5));
        assert_eq!(date("keshokutwa"), d(2026, 12, 6));
        assert_eq!(date("kesho kutwa"), d(2026, 12, 6));
        assert_eq!(date("day after tomorrow"), d(2026, 12, 6));
        assert_eq!(date("jana"), d(2026, 12, 3));
        assert_eq!(date("yesterday"), d(2026, 12, 3));
        assert_eq!(date("juzi"), d(2026, 12, 2));
        assert_eq!(date("wiki ijayo"), d(2026, 12, 11));
        assert_eq!(date("next week"), d(2026, 12, 11));
        assert_eq!(date("mwisho wa mwezi"), d(2026, 12, 31));
        assert_eq!(date("end month"), d(2026, 12, 31));
        assert_eq!(date("end of the month"), d(2026, 12, 31));
        assert_eq!(date("month end"), d(2026, 12, 31));
        assert_eq!(date("mwezi ujao"), d(2027, 1, 1));
        assert_eq!(date("next month"), d(2027, 1, 1));
        assert_eq!(date("weekend"), d(2026, 12, 5));
        assert_eq!(date("in 2 days"), d(2026, 12, 6));
        assert_eq!(date("baada ya siku tatu"), d(2026, 12, 7));
        assert_eq!(date("give me 3 days"), d(2026, 12, 7));
        assert_eq!(date("nitatuma jioni"), Some(t));
        assert_eq!(date("habari za asubuhi"), None);
        assert_eq!(date("habari za leo"), None);
        assert_eq!(date("deni ya mwezi jana"), None);
    }

    #[test]
    fn weekdays() {
        // today is Friday 2026-12-04
        assert_eq!(date("Friday"), d(2026, 12, 11));
        assert_eq!(date("Ijumaa"), d(2026, 12, 11));
        assert_eq!(date("next Friday"), d(2026, 12, 11));
        assert_eq!(date("on Saturday"), d(2026, 12, 5));
        assert_eq!(date("next Saturday"), d(2026, 12, 12));
        assert_eq!(date("Monday"), d(2026, 12, 7));
        assert_eq!(date("Jumatatu"), d(2026, 12, 7));
        assert_eq!(date("Jumanne"), d(2026, 12, 8));
        assert_eq!(date("Jumatano"), d(2026, 12, 9));
        assert_eq!(date("Alhamisi"), d(2026, 12, 10));
        assert_eq!(date("Jumamosi"), d(2026, 12, 5));
        assert_eq!(date("Jumapili"), d(2026, 12, 6));
        assert_eq!(date("Ijumaa wiki ijayo"), d(2026, 12, 11));
        assert_eq!(date("last Friday"), d(2026, 11, 27));
        assert_eq!(past_date("nililipa Jumatatu"), d(2026, 11, 30));
        // "next Monday" from a Friday is the coming Monday (next week)
        assert_eq!(date("next Monday"), d(2026, 12, 7));
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(date("the 15th"), d(2026, 12, 15));
        assert_eq!(date("tarehe 15"), d(2026, 12, 15));
        assert_eq!(date("tarehe 2"), d(2027, 1, 2));
        assert_eq!(past_date("nililipa tarehe 2"), d(2026, 12, 2));
        assert_eq!(date("15/12"), d(2026, 12, 15));
        assert_eq!(date("5/1"), d(2027, 1, 5));
        assert_eq!(date("20/12/2026"), d(2026, 12, 20));
        assert_eq!(date("3/12/26"), d(2026, 12, 3));
        assert_eq!(date("2026-12-20"), d(2026, 12, 20));
        assert_eq!(date("15 Dec"), d(2026, 12, 15));
        assert_eq!(date("Dec 15th"), d(2026, 12, 15));
        assert_eq!(date("15th of December"), d(2026, 12, 15));
        assert_eq!(date("tarehe 5 Januari"), d(2027, 1, 5));
        assert_eq!(date("not today, tomorrow"), d(2026, 12, 5));
    }

    #[test]
    fn end_of_month_edge() {
        let feb = NaiveDate::from_ymd_opt(2028, 2, 10).unwrap();
        assert_eq!(extract("end month").resolve_date(feb, false), d(2028, 2, 29));
        let dec31 = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(extract("the 31st").resolve_date(dec31, false), d(2026, 12, 31));
        assert_eq!(extract("the 30th").resolve_date(dec31, false), d(2027, 1, 30));
        assert_eq!(extract("the 31st").resolve_date(NaiveDate::from_ymd_opt(2027, 2, 1).unwrap(), false), d(2027, 3, 31));
    }
}
