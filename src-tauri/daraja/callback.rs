//! Pure, tolerant parsing of what Daraja POSTs to us: STK callbacks and C2B validations and
//! confirmations. Tolerant of what varies in practice (numbers or strings, items in any order,
//! items without a Value, failures without metadata); strict about money (10.50 is refused, never
//! rounded). Errors say exactly what is wrong, and never echo a phone number.

use std::fmt;

use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("missing {0}")]
    Missing(String),
    #[error("{field} {value} is not whole shillings")]
    NotWholeShillings { field: String, value: String },
    #[error("{field} {reason}")]
    Invalid { field: String, reason: String },
}

/// The result of one STK push, as POSTed to its CallBackURL.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct StkCallback {
    pub merchant_request_id: String,
    pub checkout_request_id: String,
    /// 0 is paid; see the reference's result-code table for the rest.
    pub result_code: i64,
    pub result_desc: String,
    /// Whole shillings.
    pub amount: Option<i64>,
    /// The M-Pesa receipt, e.g. `NLJ7RT61SV`.
    pub receipt: Option<String>,
    /// Digits only, e.g. `254708374149`.
    pub phone: Option<String>,
    /// `YYYYMMDDHHmmss`, Nairobi time (see [`super::parse_nairobi_timestamp`]).
    pub transaction_date: Option<String>,
}

impl StkCallback {
    pub fn paid(&self) -> bool {
        self.result_code == 0
    }
}

impl fmt::Debug for StkCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StkCallback")
            .field("merchant_request_id", &self.merchant_request_id)
            .field("checkout_request_id", &self.checkout_request_id)
            .field("result_code", &self.result_code)
            .field("result_desc", &self.result_desc)
            .field("amount", &self.amount)
            .field("receipt", &self.receipt)
            .field("phone", &self.phone.as_deref().map(mask))
            .field("transaction_date", &self.transaction_date)
            .finish()
    }
}

/// Parses `{"Body":{"stkCallback":{...}}}`.
pub fn parse_stk_callback(body: &[u8]) -> Result<StkCallback, CallbackError> {
    let v = parse_json(body)?;
    let cb = v.pointer("/Body/stkCallback").filter(|c| c.is_object()).ok_or_else(|| missing("Body.stkCallback"))?;
    let text = |key: &str| cb.get(key).and_then(text_of).filter(|s| !s.is_empty());
    let checkout_request_id = text("CheckoutRequestID").ok_or_else(|| missing("Body.stkCallback.CheckoutRequestID"))?;
    let merchant_request_id = text("MerchantRequestID").unwrap_or_default();
    let result_code = match cb.get("ResultCode") {
        None | Some(Value::Null) => return Err(missing("Body.stkCallback.ResultCode")),
        Some(v) => integer_of(v).ok_or_else(|| invalid("ResultCode", format!("{v} is not an integer")))?,
    };
    let result_desc = text("ResultDesc").unwrap_or_default();

    // Items are looked up by Name; a missing item, a missing Value or a null Value is None.
    let items: Vec<&Value> = match cb.pointer("/CallbackMetadata/Item") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    };
    let item = |name: &str| {
        items
            .iter()
            .find(|i| i.get("Name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|i| i.get("Value"))
            .filter(|v| !v.is_null())
    };
    let amount = item("Amount").map(|v| whole_shillings("Amount", v)).transpose()?;
    let receipt = item("MpesaReceiptNumber").and_then(text_of).filter(|s| !s.is_empty());
    let phone = match item("PhoneNumber") {
        None => None,
        Some(v) => {
            let digits: String = text_of(v).unwrap_or_default().chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.is_empty() {
                return Err(invalid("PhoneNumber", "is not a phone number".into()));
            }
            Some(digits)
        }
    };
    let transaction_date = item("TransactionDate").and_then(text_of).filter(|s| !s.is_empty());
    Ok(StkCallback { merchant_request_id, checkout_request_id, result_code, result_desc, amount, receipt, phone, transaction_date })
}

/// A customer paid the paybill or till directly (C2B validation or confirmation body).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct C2bPayment {
    pub trans_id: String,
    /// "Pay Bill", "Buy Goods", ...
    pub trans_type: String,
    /// `YYYYMMDDHHmmss`, Nairobi time.
    pub trans_time: String,
    /// Whole shillings.
    pub amount: i64,
    pub business_short_code: String,
    /// What the customer typed as the account number (≤ 20 characters); empty for tills.
    pub bill_ref_number: String,
    /// As received: masked (`25470****149`) or a SHA-256 hash of the 254… number.
    pub msisdn: String,
    pub first_name: String,
}

impl fmt::Debug for C2bPayment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("C2bPayment")
            .field("trans_id", &self.trans_id)
            .field("trans_type", &self.trans_type)
            .field("trans_time", &self.trans_time)
            .field("amount", &self.amount)
            .field("business_short_code", &self.business_short_code)
            .field("bill_ref_number", &self.bill_ref_number)
            .field("msisdn", &mask(&self.msisdn))
            .field("first_name", &self.first_name)
            .finish()
    }
}

/// Parses a C2B validation or confirmation body.
pub fn parse_c2b(body: &[u8]) -> Result<C2bPayment, CallbackError> {
    let v = parse_json(body)?;
    if !v.is_object() {
        return Err(invalid("body", "is not a JSON object".into()));
    }
    let text = |key: &str| v.get(key).and_then(text_of).map(|s| s.trim().to_string()).unwrap_or_default();
    let trans_id = text("TransID");
    if trans_id.is_empty() {
        return Err(missing("TransID"));
    }
    let amount = match v.get("TransAmount") {
        None | Some(Value::Null) => return Err(missing("TransAmount")),
        Some(a) => whole_shillings("TransAmount", a)?,
    };
    if amount <= 0 {
        return Err(invalid("TransAmount", format!("{amount} is not a positive amount")));
    }
    Ok(C2bPayment {
        trans_id,
        trans_type: text("TransactionType"),
        trans_time: text("TransTime"),
        amount,
        business_short_code: text("BusinessShortCode"),
        bill_ref_number: text("BillRefNumber"),
        msisdn: text("MSISDN"),
        first_name: text("FirstName"),
    })
}

/// The acknowledgement Daraja expects for an STK callback or a C2B confirmation.
pub fn ack() -> Value {
    json!({"ResultCode": 0, "ResultDesc": "Success"})
}

/// Why a C2B validation is refused (Daraja's documented rejection codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum C2bRejection {
    InvalidMsisdn,
    InvalidAccountNumber,
    InvalidAmount,
    InvalidKycDetails,
    InvalidShortcode,
    Other,
}

impl C2bRejection {
    pub fn code(self) -> &'static str {
        match self {
            C2bRejection::InvalidMsisdn => "C2B00011",
            C2bRejection::InvalidAccountNumber => "C2B00012",
            C2bRejection::InvalidAmount => "C2B00013",
            C2bRejection::InvalidKycDetails => "C2B00014",
            C2bRejection::InvalidShortcode => "C2B00015",
            C2bRejection::Other => "C2B00016",
        }
    }
}

/// The answer to a C2B validation: accept (`"0"`) or reject with a `C2B000xx` code.
pub fn c2b_validation_reply(rejection: Option<C2bRejection>) -> Value {
    match rejection {
        None => json!({"ResultCode": "0", "ResultDesc": "Accepted"}),
        Some(r) => json!({"ResultCode": r.code(), "ResultDesc": "Rejected"}),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, CallbackError> {
    serde_json::from_slice(body).map_err(|e| CallbackError::NotJson(e.to_string()))
}

fn missing(path: &str) -> CallbackError {
    CallbackError::Missing(path.to_string())
}

fn invalid(field: &str, reason: String) -> CallbackError {
    CallbackError::Invalid { field: field.to_string(), reason }
}

/// A string as is, or a number written out in full (never in exponent form).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64()?;
                if f.fract() == 0.0 && f.abs() < 1e17 {
                    return Some(format!("{f:.0}"));
                }
            }
            Some(n.to_string())
        }
        _ => None,
    }
}

fn integer_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `1`, `1.0`, `"1"`, `"1.00"`, `"1,000"` → whole shillings; `10.50` in any form is an error.
fn whole_shillings(field: &str, v: &Value) -> Result<i64, CallbackError> {
    let not_whole = |value: String| CallbackError::NotWholeShillings { field: field.to_string(), value };
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(f as i64),
                _ => Err(not_whole(n.to_string())),
            }
        }
        Value::String(s) => {
            let t = s.trim().replace(',', "");
            let (whole, cents) = t.split_once('.').unwrap_or((&t, ""));
            let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
            if whole.is_empty() || !digits(whole) || !digits(cents) {
                return Err(invalid(field, format!("{s:?} is not an amount")));
            }
            if cents.bytes().any(|b| b != b'0') {
                return Err(not_whole(s.trim().to_string()));
            }
            whole.parse().map_err(|_| invalid(field, format!("{s:?} is too large")))
        }
        other => Err(invalid(field, format!("{other} is not an amount"))),
    }
}

/// `2547•••••149` for anything that looks like a full number; hashes and masked numbers pass through.
fn mask(s: &str) -> String {
    let digits = s.chars().all(|c| c.is_ascii_digit());
    if digits && s.len() >= 10 {
        format!("{}•••••{}", &s[..4], &s[s.len() - 3..])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE_SUCCESS: &str = r#"{"Body":{"stkCallback":{"MerchantRequestID":"29115-34620561-1","CheckoutRequestID":"ws_CO_191220191020363925","ResultCode":0,"ResultDesc":"The service request is processed successfully.","CallbackMetadata":{"Item":[{"Name":"Amount","Value":1.00},{"Name":"MpesaReceiptNumber","Value":"NLJ7RT61SV"},{"Name":"Balance"},{"Name":"TransactionDate","Value":20191219102115},{"Name":"PhoneNumber","Value":254708374149}]}}}}"#;

    #[test]
    fn the_reference_success_callback_parses() {
        let cb = parse_stk_callback(REFERENCE_SUCCESS.as_bytes()).unwrap();
        assert!(cb.paid());
        assert_eq!(cb.checkout_request_id, "ws_CO_191220191020363925");
        assert_eq!(cb.merchant_request_id, "29115-34620561-1");
        assert_eq!(cb.amount, Some(1));
        assert_eq!(cb.receipt.as_deref(), Some("NLJ7RT61SV"));
        assert_eq!(cb.phone.as_deref(), Some("254708374149"));
        assert_eq!(cb.transaction_date.as_deref(), Some("20191219102115"));
    }

    #[test]
    fn strings_instead_of_numbers_are_accepted() {
        let body = r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_1","ResultCode":"0","ResultDesc":"ok",
            "CallbackMetadata":{"Item":[{"Name":"Amount","Value":"2500.00"},{"Name":"MpesaReceiptNumber","Value":"TKL1ABC2DE"},
            {"Name":"TransactionDate","Value":"20261204101500"},{"Name":"PhoneNumber","Value":"+254712345678"}]}}}}"#;
        let cb = parse_stk_callback(body.as_bytes()).unwrap();
        assert_eq!((cb.result_code, cb.amount), (0, Some(2500)));
        assert_eq!(cb.phone.as_deref(), Some("254712345678"));
        assert_eq!(cb.transaction_date.as_deref(), Some("20261204101500"));
    }

    #[test]
    fn items_are_found_by_name_in_any_order_and_may_lack_a_value() {
        let body = r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_2","ResultCode":0,"ResultDesc":"ok",
            "CallbackMetadata":{"Item":[{"Name":"PhoneNumber","Value":254712345678},{"Name":"Balance"},{"Name":"TransactionDate","Value":null},
            {"Name":"Amount","Value":700},{"Name":"MpesaReceiptNumber","Value":"TKL1ABC2DE"}]}}}}"#;
        let cb = parse_stk_callback(body.as_bytes()).unwrap();
        assert_eq!(cb.amount, Some(700));
        assert_eq!(cb.receipt.as_deref(), Some("TKL1ABC2DE"));
        assert_eq!(cb.transaction_date, None);
        assert_eq!(cb.phone.as_deref(), Some("254712345678"));
    }

    #[test]
    fn a_failure_without_metadata_parses() {
        let body = r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_3","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}"#;
        let cb = parse_stk_callback(body.as_bytes()).unwrap();
        assert!(!cb.paid());
        assert_eq!(cb.result_code, 1032);
        assert_eq!((cb.amount, cb.receipt, cb.phone, cb.transaction_date), (None, None, None, None));
    }

    #[test]
    fn cents_are_refused_not_rounded() {
        let body = REFERENCE_SUCCESS.replace(r#""Value":1.00"#, r#""Value":10.50"#);
        assert_eq!(parse_stk_callback(body.as_bytes()).unwrap_err().to_string(), "Amount 10.5 is not whole shillings");
        let body = REFERENCE_SUCCESS.replace(r#""Value":1.00"#, r#""Value":"10.50""#);
        assert_eq!(parse_stk_callback(body.as_bytes()).unwrap_err().to_string(), "Amount 10.50 is not whole shillings");
    }

    #[test]
    fn errors_name_what_is_missing() {
        let e = |b: &str| parse_stk_callback(b.as_bytes()).unwrap_err().to_string();
        assert_eq!(e(r#"{"Body":{}}"#), "missing Body.stkCallback");
        assert_eq!(e(r#"{"Body":{"stkCallback":{"ResultCode":0}}}"#), "missing Body.stkCallback.CheckoutRequestID");
        assert_eq!(e(r#"{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_1"}}}"#), "missing Body.stkCallback.ResultCode");
        assert!(e("not json").starts_with("the body is not JSON"));
        assert!(e(r#"{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_1","ResultCode":"x"}}}"#).contains("ResultCode"));
    }

    #[test]
    fn phone_numbers_do_not_leak_through_debug() {
        let cb = parse_stk_callback(REFERENCE_SUCCESS.as_bytes()).unwrap();
        let dbg = format!("{cb:?}");
        assert!(!dbg.contains("254708374149") && dbg.contains("2547•••••149"), "{dbg}");
    }

    const REFERENCE_C2B: &str = r#"{"TransactionType":"Pay Bill","TransID":"RKTQDM7W6S","TransTime":"20191122063845","TransAmount":"10","BusinessShortCode":"600638","BillRefNumber":"invoice008","InvoiceNumber":"","OrgAccountBalance":"","ThirdPartyTransID":"","MSISDN":"25470****149","FirstName":"John"}"#;

    #[test]
    fn the_reference_c2b_confirmation_parses() {
        let p = parse_c2b(REFERENCE_C2B.as_bytes()).unwrap();
        assert_eq!(p.trans_id, "RKTQDM7W6S");
        assert_eq!(p.trans_type, "Pay Bill");
        assert_eq!(p.trans_time, "20191122063845");
        assert_eq!(p.amount, 10);
        assert_eq!(p.business_short_code, "600638");
        assert_eq!(p.bill_ref_number, "invoice008");
        assert_eq!(p.msisdn, "25470****149");
        assert_eq!(p.first_name, "John");
    }

    #[test]
    fn c2b_amounts_as_numbers_or_with_zero_cents_are_accepted_and_cents_refused() {
        let with = |amount: &str| REFERENCE_C2B.replace(r#""TransAmount":"10""#, &format!(r#""TransAmount":{amount}"#));
        assert_eq!(parse_c2b(with(r#""1500.00""#).as_bytes()).unwrap().amount, 1500);
        assert_eq!(parse_c2b(with("1500").as_bytes()).unwrap().amount, 1500);
        assert_eq!(parse_c2b(with("1500.0").as_bytes()).unwrap().amount, 1500);
        assert_eq!(parse_c2b(with(r#""10.50""#).as_bytes()).unwrap_err().to_string(), "TransAmount 10.50 is not whole shillings");
        assert!(parse_c2b(with(r#""0""#).as_bytes()).is_err());
        assert!(parse_c2b(with(r#""ten""#).as_bytes()).is_err());
    }

    #[test]
    fn c2b_tolerates_numbers_and_missing_optional_fields() {
        let body = r#"{"TransID":"RKTQDM7W6S","TransAmount":250,"BusinessShortCode":600638,"MSISDN":254708374149}"#;
        let p = parse_c2b(body.as_bytes()).unwrap();
        assert_eq!((p.amount, p.business_short_code.as_str(), p.bill_ref_number.as_str()), (250, "600638", ""));
        assert_eq!(p.msisdn, "254708374149");
        assert!(!format!("{p:?}").contains("254708374149"));
        assert_eq!(parse_c2b(br#"{"TransAmount":"10"}"#).unwrap_err().to_string(), "missing TransID");
        assert_eq!(parse_c2b(br#"{"TransID":"X"}"#).unwrap_err().to_string(), "missing TransAmount");
    }

    #[test]
    fn replies_have_darajas_shape() {
        assert_eq!(ack(), json!({"ResultCode": 0, "ResultDesc": "Success"}));
        assert_eq!(c2b_validation_reply(None)["ResultCode"], "0");
        assert_eq!(c2b_validation_reply(Some(C2bRejection::InvalidAccountNumber))["ResultCode"], "C2B00012");
    }
}
