//! M-Pesa PIN redaction.
//!
//! Customers sometimes type their PIN into the chat ("pin yangu ni 4821", "my pin is 1234",
//! "PIN: 4821", "namba ya siri 4821", "4821 ndio pin yangu"). The PIN must never be stored or logged,
//! so the caller runs [`redact_pin`] before persisting a message and warns the customer when it
//! returns `Some`.
//!
//! Detection: a trigger word (`pin`, `siri`, `password`, `passcode`, `mpesa pin`) followed by at most
//! four filler words (`yangu`, `ni`, `is`, `my`, `number`, `ya`, `ndio`, `:` …) and then a run of 4–6
//! digits (single spaces or dashes between digits are allowed: "4 8 2 1"); or such a run followed by
//! `is/ni/ndio [my/yangu] pin`. Every standalone occurrence of a detected PIN elsewhere in the same
//! message is redacted too. Digits are replaced by `••••` (always four bullets, so the length of the
//! PIN does not leak). Numbers without a PIN trigger ("INV-1042", "2500") are left alone.

use regex::Regex;
use std::sync::LazyLock;

/// What a redacted PIN is replaced with.
pub const PIN_MASK: &str = "••••";

static TRIGGER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:pin|p\.i\.n\.?|siri|password|passcode|passcde|pasword)\b").expect("pin trigger regex")
});

static REVERSED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:^|[^0-9])(\d(?:[ -]?\d){3,5})\s+(?:ndio|ndiyo|ndo|is|ni|was|ilikuwa)\s+(?:(?:my|the|yangu|ya|m-?pesa|mpesa)\s+){0,2}(?:pin|siri|password)\b",
    )
    .expect("pin reversed regex")
});

const FILLERS: &[&str] = &[
    "yangu", "ni", "is", "my", "number", "no", "namba", "nambari", "code", "ya", "mpesa", "m-pesa", "ndio", "ndiyo",
    "iko", "ilikuwa", "was", "its", "it", "it's", "imekuwa", "mpya", "new", "the", "as", "kama", "num", "nr", "yake",
    "here", "hii", "hapa", "ni:", "=", "code:", "nimeweka", "niliweka", "used", "entered", "put", "enter",
];

fn is_digit_boundary(text: &[u8], pos: usize) -> bool {
    pos >= text.len() || !text[pos].is_ascii_digit()
}

/// Parse a PIN-like digit run starting exactly at `start`; returns its end (exclusive).
fn digit_run(bytes: &[u8], start: usize) -> Option<usize> {
    if start > 0 && (bytes[start - 1].is_ascii_alphanumeric()) {
        return None;
    }
    let mut i = start;
    let mut n = 0;
    let mut end = start;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            n += 1;
            i += 1;
            end = i;
        } else if (bytes[i] == b' ' || bytes[i] == b'-') && n > 0 && i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit() {
            // a single separator between two single digits only ("4 8 2 1", "48-21")
            i += 1;
        } else {
            break;
        }
        if n > 6 {
            return None;
        }
    }
    if !(4..=6).contains(&n) || !is_digit_boundary(bytes, end) {
        return None;
    }
    if end < bytes.len() && bytes[end].is_ascii_alphabetic() {
        // "1234abc" is not a PIN-like number; "1234th" neither.
        return None;
    }
    Some(end)
}

/// Byte spans of PIN digits in `text` (sorted, non-overlapping).
pub(crate) fn pin_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for m in TRIGGER.find_iter(text) {
        let mut i = m.end();
        let mut fillers = 0;
        loop {
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b':' | b'=' | b',' | b'\'' | b'"' | b'-' | b'.' | b'\n' | b'(' | b'#') {
                i += 1;
            }
            if i >= bytes.len() {
                break;
            }
            if bytes[i].is_ascii_digit() {
                if let Some(end) = digit_run(bytes, i) {
                    spans.push((i, end));
                }
                break;
            }
            let w_end = text[i..].find(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | '=')).map_or(text.len(), |k| i + k);
            let word = text[i..w_end].to_ascii_lowercase();
            if fillers < 4 && FILLERS.contains(&word.as_str()) {
                fillers += 1;
                i = w_end;
            } else {
                break;
            }
        }
    }
    for c in REVERSED.captures_iter(text) {
        if let Some(g) = c.get(1) {
            if digit_run(bytes, g.start()).is_some() {
                spans.push((g.start(), g.end()));
            }
        }
    }
    if spans.is_empty() {
        return spans;
    }
    // Redact every other standalone occurrence of the same PIN digits.
    let pins: Vec<String> = spans
        .iter()
        .map(|&(s, e)| text[s..e].chars().filter(|c| c.is_ascii_digit()).collect())
        .collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let mut e = i;
            while e < bytes.len() && bytes[e].is_ascii_digit() {
                e += 1;
            }
            if pins.iter().any(|p| p.as_str() == &text[i..e]) {
                spans.push((i, e));
            }
            i = e;
        } else {
            i += 1;
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Redact PIN-like numbers. `Some(redacted)` when something was redacted, `None` otherwise.
///
/// ```ignore
/// assert_eq!(redact_pin("pin yangu ni 4821").as_deref(), Some("pin yangu ni ••••"));
/// assert_eq!(redact_pin("INV-1042"), None);
/// ```
pub fn redact_pin(text: &str) -> Option<String> {
    let spans = pin_spans(text);
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut last = 0;
    for (s, e) in spans {
        out.push_str(&text[last..s]);
        out.push_str(PIN_MASK);
        last = e;
    }
    out.push_str(&text[last..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redacts_common_forms() {
        assert_eq!(redact_pin("pin yangu ni 4821").as_deref(), Some("pin yangu ni ••••"));
        assert_eq!(redact_pin("my pin is 1234").as_deref(), Some("my pin is ••••"));
        assert_eq!(redact_pin("PIN: 4821 imekataa").as_deref(), Some("PIN: •••• imekataa"));
        assert_eq!(redact_pin("pin ni 48210").as_deref(), Some("pin ni ••••"));
        assert_eq!(redact_pin("namba ya siri ni 9876").as_deref(), Some("namba ya siri ni ••••"));
        assert_eq!(redact_pin("Nimeweka PIN 4 8 2 1 lakini").as_deref(), Some("Nimeweka PIN •••• lakini"));
        assert_eq!(redact_pin("4821 ndio pin yangu").as_deref(), Some("•••• ndio pin yangu"));
        assert_eq!(redact_pin("my mpesa pin is 556677 ok").as_deref(), Some("my mpesa pin is •••• ok"));
    }

    #[test]
    fn redacts_repeats_of_the_pin() {
        assert_eq!(
            redact_pin("pin 4821 haifanyi, nimejaribu 4821 mara mbili").as_deref(),
            Some("pin •••• haifanyi, nimejaribu •••• mara mbili")
        );
    }

    #[test]
    fn leaves_other_numbers_alone() {
        assert_eq!(redact_pin("INV-1042"), None);
        assert_eq!(redact_pin("2500"), None);
        assert_eq!(redact_pin("nimelipa 2500 kwa invoice 1042"), None);
        assert_eq!(redact_pin("I entered the wrong pin twice"), None);
        assert_eq!(redact_pin("pin imekataa, invoice 1042"), None);
        assert_eq!(redact_pin("my pin is wrong, invoice 1042"), None);
        assert_eq!(redact_pin("pin 12"), None);
        assert_eq!(redact_pin("pin 12345678"), None);
        assert_eq!(redact_pin("spinning 1234"), None);
    }

    proptest! {
        #[test]
        fn redacted_digits_never_survive(
            pre in "[^0-9]{0,20}",
            pin in "[0-9]{4,6}",
            trigger in prop::sample::select(vec!["pin", "PIN yangu ni", "pin ni", "siri", "my pin is", "Pin:"]),
            post in "[^0-9]{0,20}",
        ) {
            let text = format!("{pre} {trigger} {pin} {post}");
            let out = redact_pin(&text);
            prop_assert!(out.is_some(), "not redacted: {text:?}");
            let out = out.unwrap();
            prop_assert!(!out.contains(&pin), "{out:?} still has {pin}");
        }

        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = redact_pin(&s);
        }
    }
}
