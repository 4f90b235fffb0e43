//! The dialogue policy: a pure state machine per conversation. `decide(state, input, facts)` returns
//! the new state and the actions to take; the shell (agent::service) does the I/O.
//!
//! Safety lives here and is property-tested:
//! - a payment starts only from an explicit, unexpired confirmation of that exact invoice, amount
//!   and phone (a button carrying the confirmation's id, or "yes" while it is open);
//! - amounts come from `Facts` (the ledger), never above the balance; text can only *choose* an amount
//!   within the rules, and every chosen amount is confirmed before it is charged;
//! - one payment in flight per conversation; a late "yes" after expiry re-confirms, it never charges.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::replies::{kes, ListRow, Reply, Voice};
use crate::payments::attempt::State as AttemptState;
use crate::understand::{Intent, Language, Understanding};

/// An invoice the customer can pay, as the ledger says now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInvoice {
    pub id: i64,
    pub number: String,
    pub balance: i64,
    pub due: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub confirm_threshold: i64,
    pub allow_partial: bool,
    pub min_partial: i64,
    pub confirmation_timeout_minutes: u32,
    /// The merchant's choice to answer in one language only; None answers in the customer's.
    pub only_language: Option<Language>,
}

/// What the shell looked up for this turn. The policy trusts nothing else.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: DateTime<Utc>,
    pub merchant: String,
    pub customer_name: String,
    pub phone: String,
    pub phone_masked: String,
    pub invoices: Vec<OpenInvoice>,
    pub rules: Rules,
    /// When the message carried an M-Pesa code: the ledger entry with it (amount, invoice), if any.
    pub receipt_found: Option<(String, i64, String)>,
    /// The customer's recent payments (receipt, amount, invoice), newest first.
    pub recent_payments: Vec<(String, i64, String)>,
    pub opted_out: bool,
}

/// A payment the customer has been asked to confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub id: u64,
    pub invoice_id: i64,
    pub invoice_number: String,
    pub amount: i64,
    pub phone: String,
    pub expires_at: DateTime<Utc>,
    /// Above the threshold: the first "yes" asks once more.
    pub needs_second: bool,
    pub first_given: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Idle,
    ChoosingInvoice,
    AskingAmount { invoice_id: i64 },
    Confirming { offer: Offer },
    Paying { offer: Offer, key: String },
    AskingReceiptCode,
    AskingPromiseDate { invoice_id: Option<i64> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Conversation {
    pub stage: Stage,
    pub language: Option<Language>,
    /// A person from the merchant's team is handling it: the bot stays quiet.
    pub human: bool,
    /// The last offer that ended without payment, for "Try again".
    pub retry: Option<Offer>,
    /// Increments with every offer, so ids (and idempotency keys) are unique per conversation.
    pub seq: u64,
    /// Consecutive "M-Pesa is down" failures, to hand to a person after two.
    pub failures: u32,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Input {
    Text { understanding: Understanding, pin_removed: bool },
    /// What an optional language model proposes the customer meant. Acted on like their words, except
    /// that it is never taken as consent: only the customer's own "yes" or tap confirms a payment.
    ModelProposal { understanding: Understanding },
    /// A reply-button or list tap (its id), or a template quick reply (its payload).
    Tap { id: String },
    /// Media, location, stickers…: we can only read text.
    NonText,
    /// A payment attempt this conversation started reached a final state.
    PaymentResult { key: String, state: AttemptState, result_code: Option<i64>, receipt: Option<String>, amount: i64, balance_after: i64, invoice_number: String, correction: bool },
    HumanTakeover,
    Handback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(Reply),
    /// Push exactly this; the key makes a repeat harmless.
    StartPayment { key: String, invoice_id: i64, amount: i64, phone: String },
    RecordPromise { invoice_id: Option<i64>, date: NaiveDate },
    /// Tell the merchant; with `pause_invoice`, reminders for that invoice stop.
    Escalate { reason: String, pause_invoice: Option<i64> },
    QueueReceiptCheck { code: String },
    OptOut,
    OptIn,
}

pub fn decide(mut c: Conversation, input: Input, f: &Facts) -> (Conversation, Vec<Action>) {
    let mut out = Vec::new();
    match input {
        Input::HumanTakeover => {
            c.human = true;
        }
        Input::Handback => {
            c.human = false;
            c.stage = Stage::Idle;
            out.push(Action::Send(voice(&c, f).handed_back()));
        }
        Input::PaymentResult { key, state, result_code, receipt, amount, balance_after, invoice_number, correction } => {
            payment_result(&mut c, f, &key, state, result_code, receipt.as_deref(), amount, balance_after, &invoice_number, correction, &mut out);
        }
        _ if c.human => {}
        Input::NonText => out.push(Action::Send(voice(&c, f).please_type())),
        Input::Tap { id } => tap(&mut c, f, &id, &mut out),
        Input::Text { understanding, pin_removed } => {
            if pin_removed {
                c.language = Some(understanding.language);
                out.push(Action::Send(voice(&c, f).pin_warning()));
            }
            text(&mut c, f, &understanding, true, &mut out);
        }
        Input::ModelProposal { understanding } => text(&mut c, f, &understanding, false, &mut out),
    }
    (c, out)
}

fn voice<'a>(c: &Conversation, f: &'a Facts) -> Voice<'a> {
    Voice { lang: reply_language(c, f), merchant: &f.merchant }
}

/// The customer's language unless the merchant keeps to one; English until the customer writes.
pub fn reply_language(c: &Conversation, f: &Facts) -> Language {
    f.rules.only_language.or(c.language).unwrap_or(Language::En)
}

fn send(out: &mut Vec<Action>, r: Reply) {
    out.push(Action::Send(r));
}

fn in_flight(c: &Conversation) -> bool {
    matches!(c.stage, Stage::Paying { .. })
}

/// Offers `amount` on `invoice` for confirmation, after checking it against the ledger's balance.
fn offer(c: &mut Conversation, f: &Facts, invoice: &OpenInvoice, amount: i64, out: &mut Vec<Action>) {
    let v = voice(c, f);
    if amount > invoice.balance {
        send(out, v.above_balance(amount, invoice.balance));
        return offer(c, f, invoice, invoice.balance, out);
    }
    if amount < invoice.balance {
        if !f.rules.allow_partial {
            send(out, v.no_partial(invoice.balance));
            return offer(c, f, invoice, invoice.balance, out);
        }
        if amount < f.rules.min_partial.max(1) {
            send(out, v.below_minimum(f.rules.min_partial.max(1)));
            c.stage = Stage::AskingAmount { invoice_id: invoice.id };
            return;
        }
    }
    // A new confirmation replaces an earlier "Try again": only the latest offer can be consented to.
    c.retry = None;
    c.seq += 1;
    let o = Offer {
        id: c.seq,
        invoice_id: invoice.id,
        invoice_number: invoice.number.clone(),
        amount,
        phone: f.phone.clone(),
        expires_at: f.now + Duration::minutes(f.rules.confirmation_timeout_minutes as i64),
        needs_second: amount > f.rules.confirm_threshold,
        first_given: false,
    };
    send(out, v.confirm(&f.customer_name, &o.invoice_number, amount, &f.phone_masked, &format!("CONFIRM:{}", o.id), f.rules.confirmation_timeout_minutes));
    c.stage = Stage::Confirming { offer: o };
}

/// The customer said yes to offer `o` (by button or text). Charges only if it is still open and
/// still matches the ledger; otherwise offers again at today's amount.
fn accept(c: &mut Conversation, f: &Facts, o: Offer, out: &mut Vec<Action>) {
    let v = voice(c, f);
    let current = f.invoices.iter().find(|i| i.id == o.invoice_id);
    let Some(invoice) = current else {
        send(out, v.nothing_owed());
        c.stage = Stage::Idle;
        return;
    };
    let still_valid = f.now <= o.expires_at && o.amount <= invoice.balance && o.phone == f.phone;
    if !still_valid {
        send(out, v.expired());
        let amount = o.amount.min(invoice.balance);
        return offer(c, f, invoice, amount, out);
    }
    if o.needs_second && !o.first_given {
        send(out, v.confirm_again(o.amount, &o.invoice_number, &format!("CONFIRM2:{}", o.id)));
        c.stage = Stage::Confirming { offer: Offer { first_given: true, ..o } };
        return;
    }
    let key = format!("chat:{}:{}", f.phone, o.id);
    out.push(Action::StartPayment { key: key.clone(), invoice_id: o.invoice_id, amount: o.amount, phone: o.phone.clone() });
    send(out, v.prompt_sent(&f.phone_masked));
    c.stage = Stage::Paying { offer: o, key };
}

/// Starts the pay flow: one invoice → confirm; several → pick from a list.
fn start_pay(c: &mut Conversation, f: &Facts, amount: Option<i64>, invoice_ref: Option<&str>, out: &mut Vec<Action>) {
    if in_flight(c) {
        return send(out, voice(c, f).already_in_progress());
    }
    let chosen = invoice_ref.and_then(|r| find_invoice(f, r));
    match (chosen, f.invoices.len()) {
        (_, 0) => {
            send(out, voice(c, f).nothing_owed());
            c.stage = Stage::Idle;
        }
        (Some(inv), _) => offer(c, f, inv, amount.unwrap_or(inv.balance), out),
        (None, 1) => offer(c, f, &f.invoices[0], amount.unwrap_or(f.invoices[0].balance), out),
        (None, _) => {
            let rows = f
                .invoices
                .iter()
                .take(10)
                .map(|i| ListRow { id: format!("INV:{}", i.id), title: truncate(&i.number, 24), description: truncate(&format!("{} due {}", kes(i.balance), i.due), 72) })
                .collect();
            send(out, voice(c, f).choose_invoice(rows));
            c.stage = Stage::ChoosingInvoice;
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn find_invoice<'a>(f: &'a Facts, reference: &str) -> Option<&'a OpenInvoice> {
    // Understanding writes bare numbers as "INV-1042"; merchants may number invoices "1042".
    let bare = |r: &str| {
        let key = crate::domain::invoice_key(r);
        key.strip_prefix("INV").map(String::from).unwrap_or(key)
    };
    let wanted = bare(reference);
    f.invoices.iter().find(|i| bare(&i.number) == wanted)
}

fn tap(c: &mut Conversation, f: &Facts, id: &str, out: &mut Vec<Action>) {
    let (kind, arg) = id.split_once(':').unwrap_or((id, ""));
    let v = voice(c, f);
    match kind {
        "CONFIRM" | "CONFIRM2" | "RETRY" => {
            let n: u64 = arg.parse().unwrap_or(0);
            match (&c.stage, kind) {
                (Stage::Confirming { offer }, "CONFIRM") if offer.id == n => accept(c, f, offer.clone(), out),
                (Stage::Confirming { offer }, "CONFIRM2") if offer.id == n && offer.first_given => accept(c, f, offer.clone(), out),
                (Stage::Paying { .. }, _) => send(out, v.already_in_progress()),
                // A "Try again" button is good for as long as a confirmation: later, the amount may be stale.
                (_, "RETRY") if c.retry.as_ref().is_some_and(|o| o.id == n && f.now <= o.expires_at) => {
                    // "Try again" is consent to the same invoice and amount, re-checked against the ledger.
                    let o = c.retry.take().unwrap();
                    let fresh = Offer { expires_at: f.now + Duration::minutes(f.rules.confirmation_timeout_minutes as i64), first_given: o.needs_second, ..o };
                    accept(c, f, fresh, out)
                }
                // A stale or unknown button: never charge on it; offer the current amount instead.
                _ => {
                    if matches!(c.stage, Stage::Confirming { .. }) || n > 0 {
                        send(out, v.expired());
                    }
                    start_pay(c, f, None, None, out)
                }
            }
        }
        // A template quick reply: "PAY:INV-1042".
        "PAY" => start_pay(c, f, None, (!arg.is_empty()).then_some(arg), out),
        "INV" => match arg.parse::<i64>().ok().and_then(|id| f.invoices.iter().find(|i| i.id == id)) {
            Some(inv) => offer(c, f, inv, inv.balance, out),
            None => start_pay(c, f, None, None, out),
        },
        "AMOUNT" => {
            let invoice = current_invoice(c, f);
            match invoice {
                Some(inv) if f.rules.allow_partial => {
                    send(out, v.ask_amount(&inv.number, inv.balance, f.rules.min_partial.max(1)));
                    c.stage = Stage::AskingAmount { invoice_id: inv.id };
                }
                Some(inv) => send(out, v.no_partial(inv.balance)),
                None => start_pay(c, f, None, None, out),
            }
        }
        "LATER" => {
            c.stage = Stage::AskingPromiseDate { invoice_id: current_invoice(c, f).map(|i| i.id) };
            send(out, v.ask_when());
        }
        "BALANCE" => balance(c, f, out),
        // "START" typed or tapped by an opted-out customer (the shell turns the word into this tap).
        "START" => {
            out.push(Action::OptIn);
            send(out, v.opted_in());
        }
        "HUMAN" => hand_to_person(c, f, "the customer asked to talk to a person", out),
        "CANCEL" => {
            if !in_flight(c) {
                c.stage = Stage::Idle;
                send(out, v.cancelled_by_customer());
            }
        }
        _ => send(out, v.fallback()),
    }
}

/// The invoice the conversation is about, if any.
fn current_invoice<'a>(c: &Conversation, f: &'a Facts) -> Option<&'a OpenInvoice> {
    let id = match &c.stage {
        Stage::Confirming { offer } | Stage::Paying { offer, .. } => Some(offer.invoice_id),
        Stage::AskingAmount { invoice_id } => Some(*invoice_id),
        Stage::AskingPromiseDate { invoice_id } => *invoice_id,
        _ => c.retry.as_ref().map(|o| o.invoice_id),
    };
    match id {
        Some(id) => f.invoices.iter().find(|i| i.id == id),
        None if f.invoices.len() == 1 => f.invoices.first(),
        None => None,
    }
}

fn balance(c: &mut Conversation, f: &Facts, out: &mut Vec<Action>) {
    let v = voice(c, f);
    if f.invoices.is_empty() {
        return send(out, v.nothing_owed());
    }
    let lines: Vec<_> = f.invoices.iter().map(|i| (i.number.clone(), i.balance, i.due)).collect();
    send(out, v.balance(&lines, None));
    if !in_flight(c) {
        start_pay(c, f, None, None, out);
    }
}

fn hand_to_person(c: &mut Conversation, f: &Facts, reason: &str, out: &mut Vec<Action>) {
    out.push(Action::Escalate { reason: reason.to_string(), pause_invoice: None });
    send(out, voice(c, f).handed_over());
    c.human = true;
    if !in_flight(c) {
        c.stage = Stage::Idle;
    }
}

/// `own_words`: the customer's message itself, not a model's reading of it; only then can it consent.
fn text(c: &mut Conversation, f: &Facts, u: &Understanding, own_words: bool, out: &mut Vec<Action>) {
    // Keep the customer's language: a yes/no, or a bare answer to our question ("1000", a receipt
    // code, "Friday"), says nothing about the language they prefer.
    let answering = matches!(c.stage, Stage::AskingAmount { .. } | Stage::AskingReceiptCode | Stage::AskingPromiseDate { .. } | Stage::ChoosingInvoice);
    if c.language.is_none() || !(answering || matches!(u.intent, Intent::Affirm | Intent::Deny)) {
        c.language = Some(u.language);
    }
    let e = &u.entities;
    let v = voice(c, f);
    // Answers to a question the conversation is waiting on come first.
    match (&c.stage, u.intent) {
        (Stage::Confirming { offer }, Intent::Affirm) if own_words => return accept(c, f, offer.clone(), out),
        (Stage::Confirming { offer }, Intent::Pay) if own_words && e.amount.is_none_or(|a| a as i64 == offer.amount) && e.invoice.is_none() => {
            return accept(c, f, offer.clone(), out)
        }
        (Stage::Confirming { .. }, Intent::Deny) => {
            c.stage = Stage::Idle;
            return send(out, v.cancelled_by_customer());
        }
        (Stage::AskingAmount { invoice_id }, Intent::Pay | Intent::Other | Intent::Affirm) if e.amount.is_some() => {
            if let Some(inv) = f.invoices.iter().find(|i| i.id == *invoice_id) {
                return offer(c, f, inv, e.amount.unwrap() as i64, out);
            }
        }
        (Stage::AskingReceiptCode, _) if e.receipt.is_some() => return already_paid(c, f, u, out),
        (Stage::AskingPromiseDate { invoice_id }, _) if e.date.is_some() => {
            out.push(Action::RecordPromise { invoice_id: *invoice_id, date: e.date.unwrap() });
            c.stage = Stage::Idle;
            return send(out, v.promise_recorded(e.date.unwrap()));
        }
        (Stage::ChoosingInvoice, _) if e.invoice.is_some() => {
            if let Some(inv) = find_invoice(f, e.invoice.as_deref().unwrap()) {
                return offer(c, f, inv, e.amount.map(|a| a as i64).unwrap_or(inv.balance), out);
            }
        }
        _ => {}
    }
    let amount = e.amount.map(|a| a.min(i64::MAX as u64) as i64);
    match u.intent {
        Intent::Pay => start_pay(c, f, amount, e.invoice.as_deref(), out),
        Intent::Affirm if own_words && c.retry.is_some() && !in_flight(c) => {
            let id = c.retry.as_ref().unwrap().id;
            tap(c, f, &format!("RETRY:{id}"), out)
        }
        Intent::AlreadyPaid => already_paid(c, f, u, out),
        Intent::Balance => balance(c, f, out),
        Intent::PromiseToPay => match e.date {
            Some(date) => {
                out.push(Action::RecordPromise { invoice_id: current_invoice(c, f).map(|i| i.id), date });
                if !in_flight(c) {
                    c.stage = Stage::Idle;
                }
                send(out, v.promise_recorded(date));
            }
            None => {
                c.stage = Stage::AskingPromiseDate { invoice_id: current_invoice(c, f).map(|i| i.id) };
                send(out, v.ask_when());
            }
        },
        Intent::Dispute => {
            let invoice = e.invoice.as_deref().and_then(|r| find_invoice(f, r)).or_else(|| current_invoice(c, f));
            out.push(Action::Escalate {
                reason: format!("the customer disputes {}", invoice.map(|i| i.number.as_str()).unwrap_or("an invoice")),
                pause_invoice: invoice.map(|i| i.id),
            });
            send(out, v.dispute(invoice.map(|i| i.number.as_str())));
            c.human = true;
            if !in_flight(c) {
                c.stage = Stage::Idle;
            }
        }
        Intent::Human => hand_to_person(c, f, "the customer asked to talk to a person", out),
        Intent::OptOut => {
            out.push(Action::OptOut);
            send(out, v.opted_out());
        }
        Intent::Greeting => send(out, v.greeting(&f.customer_name)),
        Intent::Thanks => send(out, v.thanks()),
        Intent::Deny if matches!(c.stage, Stage::AskingAmount { .. } | Stage::ChoosingInvoice) => {
            c.stage = Stage::Idle;
            send(out, v.cancelled_by_customer());
        }
        Intent::Affirm | Intent::Deny => {
            if in_flight(c) {
                send(out, v.already_in_progress());
            } else {
                send(out, v.fallback());
            }
        }
        Intent::Other => {
            if in_flight(c) {
                send(out, v.already_in_progress());
            } else {
                send(out, v.fallback());
            }
        }
    }
}

fn already_paid(c: &mut Conversation, f: &Facts, u: &Understanding, out: &mut Vec<Action>) {
    let v = voice(c, f);
    if let Some(code) = &u.entities.receipt {
        match &f.receipt_found {
            Some((receipt, amount, invoice)) if receipt == code => send(out, v.paid_found(receipt, *amount, invoice)),
            _ => {
                out.push(Action::QueueReceiptCheck { code: code.clone() });
                send(out, v.code_queued(code));
            }
        }
        c.stage = Stage::Idle;
        return;
    }
    if !f.recent_payments.is_empty() {
        send(out, v.recent_payments(&f.recent_payments));
    } else {
        send(out, v.ask_for_code());
    }
    c.stage = Stage::AskingReceiptCode;
}

#[allow(clippy::too_many_arguments)]
fn payment_result(
    c: &mut Conversation,
    f: &Facts,
    key: &str,
    state: AttemptState,
    code: Option<i64>,
    receipt: Option<&str>,
    amount: i64,
    balance_after: i64,
    invoice_number: &str,
    correction: bool,
    out: &mut Vec<Action>,
) {
    let v = voice(c, f);
    let offer = match &c.stage {
        Stage::Paying { offer, key: k } if k == key => Some(offer.clone()),
        _ => None,
    };
    if state == AttemptState::Paid {
        c.failures = 0;
        c.retry = None;
        if offer.is_some() {
            c.stage = Stage::Idle;
        }
        send(out, if correction { v.correction(amount, invoice_number, receipt) } else { v.receipt(amount, invoice_number, receipt, balance_after) });
        return;
    }
    // Failures only matter to the conversation that is waiting on them.
    let Some(o) = offer else { return };
    c.stage = Stage::Idle;
    c.seq += 1;
    let retry = Offer { id: c.seq, expires_at: f.now + Duration::minutes(f.rules.confirmation_timeout_minutes as i64), ..o.clone() };
    let retry_id = format!("RETRY:{}", retry.id);
    c.retry = Some(retry);
    let reply = match (state, code) {
        (AttemptState::Cancelled, _) => v.cancelled(&retry_id),
        (_, Some(1)) => v.insufficient(o.amount),
        (_, Some(2001)) => v.wrong_pin(&retry_id),
        (_, Some(17)) => v.wait_and_retry(&retry_id),
        (_, Some(2 | 3 | 4 | 8)) => v.limit_problem(crate::payments::attempt::describe(code.unwrap())),
        (_, Some(2028 | 8006)) => {
            c.retry = None;
            out.push(Action::Escalate { reason: format!("M-Pesa refused payments: {}", crate::payments::attempt::describe(code.unwrap())), pause_invoice: None });
            v.cannot_take_payments()
        }
        (_, Some(1037 | 1019)) | (AttemptState::TimedOut, _) => v.no_answer(&retry_id),
        _ => {
            c.failures += 1;
            if c.failures >= 2 {
                out.push(Action::Escalate { reason: "M-Pesa failed twice for this customer".into(), pause_invoice: None });
                c.human = true;
                v.handed_over()
            } else {
                v.mpesa_down(&retry_id)
            }
        }
    };
    send(out, reply);
}

#[cfg(test)]
mod tests;
