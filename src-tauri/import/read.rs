//! Reading a merchant's file into rows of cells: CSV (comma, semicolon or tab; UTF-8 with or without
//! a BOM, UTF-16 with a BOM, or Windows-1252 as older Excel saves it) or a workbook (.xlsx, .xls, .xlsb,
//! .ods; the first sheet). Each row keeps the line number the merchant sees in their spreadsheet.

use std::io::Cursor;

use calamine::{Data, Reader};
use chrono::NaiveDate;

use super::ImportError;

/// One cell as read. CSV gives only text; a workbook also gives numbers and real dates.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Date(NaiveDate),
}

impl Cell {
    pub fn is_empty(&self) -> bool {
        matches!(self, Cell::Empty)
    }

    /// The cell as a merchant would read it, shortened for messages.
    pub fn shown(&self) -> String {
        let s = match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.clone(),
            Cell::Number(n) => number_text(*n),
            Cell::Date(d) => d.format("%d/%m/%Y").to_string(),
        };
        if s.chars().count() > 40 {
            s.chars().take(39).chain(std::iter::once('…')).collect()
        } else {
            s
        }
    }

    /// The cell as text: numbers without a trailing ".0".
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.clone(),
            Cell::Number(n) => number_text(*n),
            Cell::Date(d) => d.format("%d/%m/%Y").to_string(),
        }
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn text_cell(s: &str) -> Cell {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(t.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based, as the spreadsheet shows it.
    pub line: usize,
    pub cells: Vec<Cell>,
}

impl Row {
    pub fn cell(&self, i: usize) -> &Cell {
        self.cells.get(i).unwrap_or(&Cell::Empty)
    }

    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(Cell::is_empty)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Workbook,
}

pub struct Table {
    pub format: Format,
    /// For CSV: the delimiter found.
    pub delimiter: Option<char>,
    pub rows: Vec<Row>,
}

/// Reads any supported file from its bytes; the format is told by its content, not its name.
pub fn read(bytes: Vec<u8>) -> Result<Table, ImportError> {
    if bytes.is_empty() {
        return Err(ImportError::Empty);
    }
    let zip = bytes.starts_with(b"PK\x03\x04");
    let ole = bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    if zip || ole {
        return read_workbook(bytes);
    }
    read_csv(&decode(bytes))
}

fn read_workbook(bytes: Vec<u8>) -> Result<Table, ImportError> {
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| ImportError::Unreadable(format!("this does not look like an Excel or OpenDocument workbook ({e})")))?;
    let range = match book.worksheet_range_at(0) {
        Some(r) => r.map_err(|e| ImportError::Unreadable(format!("cannot read the first sheet: {e}")))?,
        None => return Err(ImportError::Unreadable("the workbook has no sheets".into())),
    };
    let (top, left) = range.start().unwrap_or((0, 0));
    let mut rows = Vec::with_capacity(range.height());
    for (i, r) in range.rows().enumerate() {
        let mut cells = vec![Cell::Empty; left as usize];
        cells.extend(r.iter().map(workbook_cell));
        rows.push(Row { line: top as usize + i + 1, cells });
    }
    Ok(Table { format: Format::Workbook, delimiter: None, rows })
}

fn workbook_cell(d: &Data) -> Cell {
    match d {
        Data::Empty => Cell::Empty,
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::String(s) => text_cell(s),
        Data::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }.into()),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32).map(Cell::Date).unwrap_or(Cell::Number(dt.as_f64()))
        }
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => text_cell(s),
        Data::Error(e) => Cell::Text(format!("#{e:?}")),
    }
}

/// Text from bytes: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252.
pub fn decode(bytes: Vec<u8>) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8(rest.to_vec()).unwrap_or_else(|e| windows_1252(e.as_bytes()));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        let le = bytes[0] == 0xFF;
        let units = bytes[2..].chunks_exact(2).map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) });
        return char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')).collect();
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => windows_1252(e.as_bytes()),
    }
}

fn windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–',
        '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    bytes.iter().map(|&b| if (0x80..0xA0).contains(&b) { HIGH[(b - 0x80) as usize] } else { b as char }).collect()
}

/// The delimiter that splits the first lines most consistently (counted outside quotes): comma,
/// semicolon or tab. A thousands comma in a semicolon file varies from line to line; the delimiter
/// gives every line the same count.
pub fn sniff_delimiter(text: &str) -> u8 {
    let candidates = [b',', b';', b'\t'];
    let mut counts: [Vec<usize>; 3] = Default::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(20) {
        let mut quoted = false;
        let mut n = [0usize; 3];
        for b in line.bytes() {
            if b == b'"' {
                quoted = !quoted;
            } else if !quoted {
                if let Some(i) = candidates.iter().position(|c| *c == b) {
                    n[i] += 1;
                }
            }
        }
        for i in 0..3 {
            counts[i].push(n[i]);
        }
    }
    // For each delimiter: how many lines share its most common non-zero count, then that count.
    let score = |i: usize| {
        let mut freq = std::collections::HashMap::new();
        for &c in counts[i].iter().filter(|c| **c > 0) {
            *freq.entry(c).or_insert(0usize) += 1;
        }
        freq.into_iter().map(|(count, lines)| (lines, count)).max().unwrap_or((0, 0))
    };
    let best = (0..3).max_by_key(|&i| (score(i), std::cmp::Reverse(i))).unwrap();
    candidates[best]
}

fn read_csv(text: &str) -> Result<Table, ImportError> {
    if text.trim().is_empty() {
        return Err(ImportError::Empty);
    }
    let delimiter = sniff_delimiter(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .trim(csv::Trim::None)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    // The spreadsheet row of a record: the physical line it starts on (blank lines count, as Excel shows
    // them), less the line breaks inside quoted fields before it (Excel shows such a field in one row).
    let bytes = text.as_bytes();
    let (mut scanned, mut newlines, mut inner_newlines) = (0usize, 0usize, 0usize);
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let mut start = record.position().map(|p| p.byte() as usize).unwrap_or(scanned).max(scanned).min(bytes.len());
                while start < bytes.len() && (bytes[start] == b'\n' || bytes[start] == b'\r') {
                    start += 1;
                }
                newlines += bytes[scanned..start].iter().filter(|b| **b == b'\n').count();
                scanned = start;
                let line = (newlines + 1).saturating_sub(inner_newlines).max(1);
                let cells: Vec<Cell> = record.iter().map(text_cell).collect();
                inner_newlines += record.iter().map(|f| f.bytes().filter(|b| *b == b'\n').count()).sum::<usize>();
                rows.push(Row { line, cells });
            }
            Err(e) => {
                let at = e.position().map(|p| format!(" near line {}", p.line())).unwrap_or_default();
                return Err(ImportError::Unreadable(format!("the CSV cannot be read{at}: {e}")));
            }
        }
    }
    Ok(Table { format: Format::Csv, delimiter: Some(delimiter as char), rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_found_even_with_thousands_commas() {
        assert_eq!(sniff_delimiter("Invoice No,Customer,Amount\nINV-1,Wanjiku,\"2,500\"\n"), b',');
        assert_eq!(sniff_delimiter("Invoice No;Customer;Amount;Due\nINV-1;Wanjiku;2,500;4/12/2026\nINV-2;Otieno;12,500,000;4/12/2026\n"), b';');
        assert_eq!(sniff_delimiter("Invoice No\tCustomer\tAmount\nINV-1\tWanjiku, Kamau\t2,500\n"), b'\t');
    }

    #[test]
    fn bom_utf16_and_windows_1252_are_decoded() {
        assert_eq!(decode(b"\xEF\xBB\xBFInvoice".to_vec()), "Invoice");
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("Né".encode_utf16().flat_map(|u| u.to_le_bytes())).collect();
        assert_eq!(decode(utf16), "Né");
        assert_eq!(decode(b"Caf\xe9 \x80".to_vec()), "Café €");
    }

    #[test]
    fn line_numbers_are_spreadsheet_rows_even_with_blank_lines_and_multiline_cells() {
        let t = read_csv("No,Name\n\nA1,\"two\nlines\"\nA2,x\n").unwrap();
        let lines: Vec<usize> = t.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![1, 3, 4]);
    }
}
