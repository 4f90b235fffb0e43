//! Domain types that cannot hold bad values. Parse at the edge (CSV, webhook, CLI, chat),
//! and the core never has to check again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("phone number {input:?}: {reason}")]
    Phone { input: String, reason: &'static str },
    #[error("amount {input:?}: {reason}")]
    Amount { input: String, reason: &'static str },
    #[error("invoice number {input:?}: {reason}")]
    InvoiceNo { input: String, reason: &'static str },
    #[error("M-Pesa receipt {input:?}: {reason}")]
    Receipt { input: String, reason: &'static str },
}

/// A mobile number in international form without the plus: `2547XXXXXXXX`, `2541XXXXXXXX` (Kenya),
/// `255XXXXXXXXX` (Tanzania) or `256XXXXXXXXX` (Uganda). `Display` and `Debug` mask it so a number
/// can never leak into a log by accident; `as_str()` is the only way to the full digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn(String);

impl Msisdn {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::Phone { input: mask_digits(input), reason };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(err("is empty"));
        }
        let mut digits = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => {}
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(err("contains characters that are not digits")),
            }
        }
        let international = if let Some(rest) = digits.strip_prefix('0') {
            // Kenyan national form: 07XXXXXXXX or 01XXXXXXXX.
            if rest.len() != 9 {
                return Err(err("a Kenyan number starting with 0 has 10 digits"));
            }
            format!("254{rest}")
        } else if digits.len() == 9 && (digits.starts_with('7') || digits.starts_with('1')) {
            // "712345678" as typed without the leading zero.
            format!("254{digits}")
        } else {
            digits
        };
        let (country, national) = international.split_at(international.len().min(3));
        match country {
            "254" | "255" | "256" => {}
            _ => return Err(err("only Kenyan (254), Tanzanian (255) and Ugandan (256) numbers are supported")),
        }
        if national.len() != 9 {
            return Err(err("has the wrong number of digits"));
        }
        let mobile_prefix_ok = match country {
            "254" => national.starts_with('7') || national.starts_with('1'),
            _ => national.starts_with('6') || national.starts_with('7'),
        };
        if !mobile_prefix_ok {
            return Err(err("is not a mobile number"));
        }
        Ok(Msisdn(international))
    }

    /// The full digits, for the Daraja and WhatsApp APIs only.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `2547•••••123`: enough for a merchant to recognise, useless to a spammer.
    pub fn masked(&self) -> String {
        let (head, rest) = self.0.split_at(4);
        let tail = &rest[rest.len() - 3..];
        format!("{head}•••••{tail}")
    }
}

fn mask_digits(input: &str) -> String {
    let n = input.chars().filter(|c| c.is_ascii_digit()).count();
    if n <= 6 {
        return input.to_string();
    }
    let mut seen = 0;
    input
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > 4 && seen <= n - 3 {
                    return '•';
                }
            }
            c
        })
        .collect()
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

impl FromStr for Msisdn {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Msisdn::parse(s)
    }
}

/// Serialised in full: it is written to the store and to the APIs, never to logs.
impl Serialize for Msisdn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Msisdn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Msisdn::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whole Kenyan shillings. Money is never a float.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Kes(i64);

impl Kes {
    /// Daraja's ceiling for one STK push.
    pub const MAX_STK: Kes = Kes(250_000);
    pub const ZERO: Kes = Kes(0);

    pub fn new(shillings: i64) -> Result<Self, DomainError> {
        if shillings < 0 {
            return Err(DomainError::Amount { input: shillings.to_string(), reason: "cannot be negative" });
        }
        Ok(Kes(shillings))
    }

    /// A strictly positive amount, as an invoice total or a payment must be.
    pub fn positive(shillings: i64) -> Result<Self, DomainError> {
        if shillings <= 0 {
            return Err(DomainError::Amount { input: shillings.to_string(), reason: "must be more than zero" });
        }
        Ok(Kes(shillings))
    }

    /// Parses what merchants type into spreadsheets: "2500", "2,500", "KES 2,500", "Ksh 2,500.00",
    /// "2500/=". Cents other than .00 are refused rather than rounded.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::Amount { input: input.to_string(), reason };
        let mut s = input.trim().to_ascii_uppercase();
        for prefix in ["KSHS", "KSH", "KES", "SH"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest.trim_start_matches(['.', ' ']).to_string();
                break;
            }
        }
        let s = s.trim_end_matches("/=").trim().replace([',', ' ', '_'], "");
        let whole = match s.split_once('.') {
            Some((whole, cents)) if cents.chars().all(|c| c == '0') => whole.to_string(),
            Some(_) => return Err(err("has cents; amounts are whole shillings")),
            None => s,
        };
        if whole.is_empty() {
            return Err(err("is empty"));
        }
        if whole.starts_with('-') {
            return Err(err("cannot be negative"));
        }
        if !whole.chars().all(|c| c.is_ascii_digit()) {
            return Err(err("is not a number"));
        }
        let value: i64 = whole.parse().map_err(|_| err("is too large"))?;
        Ok(Kes(value))
    }

    pub fn shillings(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_sub(self, other: Kes) -> Option<Kes> {
        self.0.checked_sub(other.0).filter(|v| *v >= 0).map(Kes)
    }

    pub fn saturating_sub(self, other: Kes) -> Kes {
        Kes((self.0 - other.0).max(0))
    }

    pub fn min(self, other: Kes) -> Kes {
        Kes(self.0.min(other.0))
    }
}

impl std::ops::Add for Kes {
    type Output = Kes;
    fn add(self, rhs: Kes) -> Kes {
        Kes(self.0.checked_add(rhs.0).expect("shilling total overflow"))
    }
}

impl std::iter::Sum for Kes {
    fn sum<I: Iterator<Item = Kes>>(iter: I) -> Kes {
        iter.fold(Kes::ZERO, |a, b| a + b)
    }
}

/// `KES 12,500` — how Kenyans write money.
impl fmt::Display for Kes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kes_text(self.0))
    }
}

/// Whole shillings as people read them, 12500 → "KES 12,500", for any amount (a credit, a total).
pub fn kes_text(n: i64) -> String {
    format!("KES {}", group_thousands(n))
}

impl fmt::Debug for Kes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kes({})", self.0)
    }
}

pub fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An invoice number as the merchant wrote it. `key()` is the form used for matching what customers
/// and M-Pesa account references type: uppercase, without spaces, dashes or a leading '#'.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InvoiceNo(String);

impl InvoiceNo {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::InvoiceNo { input: input.to_string(), reason };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("is empty"));
        }
        if s.chars().count() > 40 {
            return Err(err("is longer than 40 characters"));
        }
        if !s.chars().any(|c| c.is_ascii_alphanumeric()) {
            return Err(err("has no letters or digits"));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(err("contains control characters"));
        }
        Ok(InvoiceNo(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        invoice_key(&self.0)
    }
}

/// The matching form of any invoice reference (see `InvoiceNo::key`).
pub fn invoice_key(reference: &str) -> String {
    reference.trim().trim_start_matches('#').chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

impl TryFrom<String> for InvoiceNo {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        InvoiceNo::parse(&s)
    }
}

impl From<InvoiceNo> for String {
    fn from(n: InvoiceNo) -> String {
        n.0
    }
}

impl fmt::Display for InvoiceNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An M-Pesa transaction code such as `NLJ7RT61SV`: ten uppercase letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MpesaReceipt(String);

impl MpesaReceipt {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::Receipt { input: input.to_string(), reason };
        let s = input.trim().to_ascii_uppercase();
        if s.len() != 10 {
            return Err(err("must be 10 letters and digits"));
        }
        if !s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return Err(err("must be only letters and digits"));
        }
        if !s.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(err("must start with a letter"));
        }
        Ok(MpesaReceipt(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MpesaReceipt {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MpesaReceipt::parse(&s)
    }
}

impl From<MpesaReceipt> for String {
    fn from(r: MpesaReceipt) -> String {
        r.0
    }
}

impl fmt::Display for MpesaReceipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kenyan_numbers_normalise_from_every_common_form() {
        for input in ["0712345678", "+254712345678", "254712345678", "0712 345 678", "712345678", "+254 712-345-678"] {
            assert_eq!(Msisdn::parse(input).unwrap().as_str(), "254712345678", "{input}");
        }
        assert_eq!(Msisdn::parse("0110123456").unwrap().as_str(), "254110123456");
    }

    #[test]
    fn tanzanian_and_ugandan_numbers_are_accepted() {
        assert_eq!(Msisdn::parse("+255 754 123 456").unwrap().as_str(), "255754123456");
        assert_eq!(Msisdn::parse("256772123456").unwrap().as_str(), "256772123456");
    }

    #[test]
    fn other_numbers_are_refused_with_a_reason() {
        let cases = [
            ("", "is empty"),
            ("+1 415 555 0100", "only Kenyan"),
            ("07123", "10 digits"),
            ("2547123456789", "wrong number of digits"),
            ("0712abc678", "not digits"),
            ("254201234567", "not a mobile"),
        ];
        for (input, reason) in cases {
            let e = Msisdn::parse(input).unwrap_err().to_string();
            assert!(e.contains(reason), "{input}: {e}");
        }
    }

    #[test]
    fn phone_numbers_are_masked_when_displayed_or_debugged() {
        let m = Msisdn::parse("0712345678").unwrap();
        assert_eq!(m.to_string(), "2547•••••678");
        assert_eq!(format!("{m:?}"), "Msisdn(2547•••••678)");
        let e = Msisdn::parse("+1 415 555 0100").unwrap_err().to_string();
        assert!(!e.contains("555 0100"), "{e}");
    }

    #[test]
    fn amounts_parse_as_merchants_write_them() {
        for (input, want) in [("2500", 2500), ("2,500", 2500), ("KES 2,500", 2500), ("Ksh 2,500.00", 2500), ("2500/=", 2500), ("Kshs.12,000", 12000), ("0", 0)] {
            assert_eq!(Kes::parse(input).unwrap().shillings(), want, "{input}");
        }
        for bad in ["", "2,500.50", "-5", "abc", "KES"] {
            assert!(Kes::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_display_kenyan_style() {
        assert_eq!(Kes::positive(12500).unwrap().to_string(), "KES 12,500");
        assert_eq!(Kes::positive(1_250_000).unwrap().to_string(), "KES 1,250,000");
        assert_eq!(Kes::new(0).unwrap().to_string(), "KES 0");
        assert!(Kes::positive(0).is_err());
        assert!(Kes::new(-1).is_err());
    }

    #[test]
    fn invoice_keys_ignore_case_spaces_dashes_and_hash() {
        let n = InvoiceNo::parse(" INV-1042 ").unwrap();
        assert_eq!(n.as_str(), "INV-1042");
        assert_eq!(n.key(), "INV1042");
        assert_eq!(invoice_key("inv 1042"), "INV1042");
        assert_eq!(invoice_key("#0099"), "0099");
        assert!(InvoiceNo::parse("  ").is_err());
        assert!(InvoiceNo::parse("---").is_err());
    }

    #[test]
    fn receipts_are_ten_uppercase_letters_and_digits() {
        assert_eq!(MpesaReceipt::parse("nlj7rt61sv").unwrap().as_str(), "NLJ7RT61SV");
        assert!(MpesaReceipt::parse("NLJ7RT61S").is_err());
        assert!(MpesaReceipt::parse("1LJ7RT61SV").is_err());
        assert!(MpesaReceipt::parse("NLJ7RT61S!").is_err());
    }

    proptest! {
        #[test]
        fn any_valid_kenyan_number_round_trips(n in 0u32..100_000_000u32, lead in prop::sample::select(vec!['7', '1'])) {
            let national = format!("0{lead}{n:08}");
            let m = Msisdn::parse(&national).unwrap();
            prop_assert_eq!(Msisdn::parse(m.as_str()).unwrap(), m.clone());
            let middle = format!("{:08}", n)[..5].to_string();
            prop_assert!(!m.to_string().contains(&middle));
        }

        #[test]
        fn parsing_never_panics(s in ".{0,40}") {
            let _ = Msisdn::parse(&s);
            let _ = Kes::parse(&s);
            let _ = InvoiceNo::parse(&s);
            let _ = MpesaReceipt::parse(&s);
        }

        #[test]
        fn grouped_amounts_parse_back(n in 0i64..10_000_000_000) {
            let shown = Kes::new(n).unwrap().to_string();
            prop_assert_eq!(Kes::parse(&shown).unwrap().shillings(), n);
        }
    }
}
