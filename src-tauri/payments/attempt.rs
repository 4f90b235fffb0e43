//! The payment attempt: one STK push for one confirmed intent, and the only owner of its state.
//! Pure: `apply(state, event)` says what the new state is, or why the event changes nothing.
//! The service persists each transition as a `payment_events` row with its cause.
//!
//! ```text
//!  Pending ──sending──▶ Sending ──accepted──▶ Pushed ──result 0──▶ Paid
//!     ▲ │                 │ │                  │ │ └──result ≠0──▶ Failed / Cancelled
//!     │ └─rejected──▶ Rejected                 │ └──deadline──▶ TimedOut ──late success──▶ Paid (correction)
//!     └──locked (wait, never stack)  └─no answer─▶ Unknown ──result──▶ Paid / Failed / Cancelled
//!  any open state ──amount or phone mismatch──▶ NeedsReview ──merchant──▶ Paid / Failed
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Recorded, push not yet sent. Safe to send.
    Pending,
    /// The push request is on its way; if we crash now we cannot know whether it reached Daraja.
    Sending,
    /// Daraja accepted the push (we hold its CheckoutRequestID); the customer is being prompted.
    Pushed,
    /// The push may or may not have reached the customer. Never re-sent; resolved by query or callback.
    Unknown,
    /// Money received. The receipt may arrive later (an STK Query answer carries none).
    Paid,
    /// M-Pesa answered with a failure code (insufficient balance, wrong PIN, expired, …).
    Failed,
    /// The customer cancelled the prompt.
    Cancelled,
    /// No final answer in time. Not charged as far as we know; a late success still credits.
    TimedOut,
    /// Daraja refused the request itself: nobody was prompted.
    Rejected,
    /// Signals disagree (amount, phone, callback vs query): the merchant decides.
    NeedsReview,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Pushed => "pushed",
            State::Unknown => "unknown",
            State::Paid => "paid",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::TimedOut => "timed_out",
            State::Rejected => "rejected",
            State::NeedsReview => "needs_review",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "pending" => State::Pending,
            "sending" => State::Sending,
            "pushed" => State::Pushed,
            "unknown" => State::Unknown,
            "paid" => State::Paid,
            "failed" => State::Failed,
            "cancelled" => State::Cancelled,
            "timed_out" => State::TimedOut,
            "rejected" => State::Rejected,
            "needs_review" => State::NeedsReview,
            _ => return None,
        })
    }

    /// In flight: a push exists or may exist whose outcome we are still waiting for. At most one per
    /// invoice and one per phone (enforced again by unique indexes in the store).
    pub fn in_flight(self) -> bool {
        matches!(self, State::Pending | State::Sending | State::Pushed | State::Unknown)
    }

    /// Nothing more will happen without a late success or the merchant.
    pub fn is_final(self) -> bool {
        !self.in_flight()
    }
}

/// What caused a transition; recorded with every event row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Push,
    Callback,
    Query,
    C2b,
    Merchant,
    Timeout,
    /// Start-up recovery of an attempt interrupted by a crash.
    Recovery,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Push => "push",
            Cause::Callback => "callback",
            Cause::Query => "query",
            Cause::C2b => "c2b",
            Cause::Merchant => "merchant",
            Cause::Timeout => "timeout",
            Cause::Recovery => "recovery",
        }
    }
}

/// M-Pesa's final answer for a push, from a callback, an STK Query or a C2B record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub result_code: i64,
    pub result_desc: String,
    /// Present on successful callbacks and C2B records, absent from STK Query answers.
    pub receipt: Option<String>,
    /// What the callback says was paid, and by whom, for the cross-check. Absent from a query.
    pub amount: Option<i64>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// About to send the HTTP request.
    Sending,
    Accepted { checkout_request_id: String },
    /// Daraja refused the request outright (bad phone, bad amount, wrong credentials…).
    Rejected { code: String, message: String },
    /// "A transaction is already in process" for this subscriber: wait and send later, never stack.
    SubscriberLocked,
    /// Timeout or 5xx on the push: it may have reached the customer.
    NoAnswer { reason: String },
    Result { outcome: Outcome, cause: Cause },
    /// No final answer by the deadline.
    Deadline,
    /// Start-up found this attempt in `Sending`: the push may have gone out before the crash.
    Interrupted,
    /// The merchant settled a needs-review attempt by hand.
    MerchantResolved { paid: bool, note: String },
}

/// What the service must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Credit the ledger with this receipt (None: receipt pending) and tell the customer.
    Credit { receipt: Option<String>, late: bool },
    /// The payment was already credited without a receipt; record this one against it.
    AttachReceipt { receipt: String },
    /// Tell the customer and the merchant why it failed.
    Report,
    /// Ask the merchant to look.
    Review { reason: String },
    /// Nothing outside the attempt changes.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: State,
    pub effect: Effect,
    /// Human-readable, recorded in the event row.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event} does not apply to an attempt in state {state}")]
pub struct Ignored {
    pub state: &'static str,
    pub event: String,
}

/// The attempt's fixed facts, for cross-checking results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub amount: i64,
    pub phone: String,
}

/// Result codes that mean the customer cancelled.
fn is_cancel(code: i64) -> bool {
    matches!(code, 1032 | 1031)
}

/// What a result code means for the customer, in a few words (for event details and the UI).
pub fn describe(code: i64) -> &'static str {
    match code {
        0 => "paid",
        1 => "insufficient M-Pesa balance",
        2 => "below the minimum transaction amount",
        3 => "above the maximum transaction amount",
        4 => "over the daily transfer limit",
        8 => "over the account's maximum balance",
        17 => "same amount to the same customer within 2 minutes",
        26 => "M-Pesa system busy",
        1019 => "the prompt expired",
        1025 | 9999 => "the prompt could not be sent",
        1031 | 1032 => "cancelled by the customer",
        1037 => "the customer's phone could not be reached",
        2001 => "wrong M-Pesa PIN",
        2028 => "not permitted: check the paybill/till settings",
        8006 => "security credential locked",
        _ => "failed",
    }
}

pub fn apply(state: State, expected: &Expected, event: &Event) -> Result<Transition, Ignored> {
    use State::*;
    let ignored = || Ignored { state: state.as_str(), event: format!("{event:?}") };
    let go = |to, effect, detail: String| Ok(Transition { to, effect, detail });
    match (state, event) {
        (Pending, Event::Sending) => go(Sending, Effect::None, "sending STK push".into()),
        (Pending, Event::SubscriberLocked) | (Sending, Event::SubscriberLocked) => {
            go(Pending, Effect::None, "a transaction is already in process for this phone; waiting before sending".into())
        }
        (Sending, Event::Accepted { checkout_request_id }) => {
            go(Pushed, Effect::None, format!("accepted by Daraja as {checkout_request_id}"))
        }
        (Pending | Sending, Event::Rejected { code, message }) => {
            go(Rejected, Effect::Report, format!("refused by Daraja: {code} {message}"))
        }
        (Sending, Event::NoAnswer { reason }) => go(Unknown, Effect::None, format!("no answer to the push ({reason}); will not re-send")),
        (Sending, Event::Interrupted) => {
            go(Unknown, Effect::None, "interrupted while sending; the push may have gone out, will not re-send".into())
        }
        (Pushed | Unknown | TimedOut, Event::Result { outcome, cause }) => {
            let late = state == TimedOut;
            if outcome.result_code == 0 {
                if let Some(reason) = mismatch(expected, outcome) {
                    return go(NeedsReview, Effect::Review { reason: reason.clone() }, reason);
                }
                let what = if late { "late success after timing out: crediting as a correction" } else { "paid" };
                let receipt = outcome.receipt.clone();
                let detail = format!("{what} ({}, {})", receipt.as_deref().unwrap_or("receipt pending"), cause.as_str());
                return go(Paid, Effect::Credit { receipt, late }, detail);
            }
            if late {
                // We already told everyone it timed out; a late failure changes nothing.
                return Err(ignored());
            }
            let to = if is_cancel(outcome.result_code) { Cancelled } else { Failed };
            go(to, Effect::Report, format!("{} ({}: {})", describe(outcome.result_code), outcome.result_code, outcome.result_desc))
        }
        // A receipt that arrives after an STK Query already confirmed the payment.
        (Paid, Event::Result { outcome, .. }) if outcome.result_code == 0 => match &outcome.receipt {
            Some(receipt) => go(Paid, Effect::AttachReceipt { receipt: receipt.clone() }, format!("receipt {receipt} arrived")),
            None => Err(ignored()),
        },
        (Pushed | Unknown, Event::Deadline) => go(TimedOut, Effect::Report, "no final answer in time".into()),
        (NeedsReview, Event::MerchantResolved { paid, note }) => {
            if *paid {
                go(Paid, Effect::Credit { receipt: None, late: false }, format!("marked paid by the merchant: {note}"))
            } else {
                go(Failed, Effect::None, format!("marked not paid by the merchant: {note}"))
            }
        }
        _ => Err(ignored()),
    }
}

fn mismatch(expected: &Expected, outcome: &Outcome) -> Option<String> {
    if let Some(amount) = outcome.amount {
        if amount != expected.amount {
            return Some(format!("paid amount {amount} differs from the requested {}", expected.amount));
        }
    }
    if let Some(phone) = &outcome.phone {
        if phone != &expected.phone {
            return Some("paid from a different phone number than the one prompted".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn expected() -> Expected {
        Expected { amount: 2500, phone: "254712345678".into() }
    }

    fn result(code: i64, receipt: Option<&str>, amount: Option<i64>) -> Event {
        Event::Result {
            outcome: Outcome {
                result_code: code,
                result_desc: describe(code).into(),
                receipt: receipt.map(String::from),
                amount,
                phone: amount.map(|_| "254712345678".into()),
            },
            cause: Cause::Callback,
        }
    }

    fn run(events: &[Event]) -> (State, Vec<Effect>) {
        let mut s = State::Pending;
        let mut effects = vec![];
        for e in events {
            if let Ok(t) = apply(s, &expected(), e) {
                s = t.to;
                effects.push(t.effect);
            }
        }
        (s, effects)
    }

    fn accepted() -> Event {
        Event::Accepted { checkout_request_id: "ws_CO_1".into() }
    }

    #[test]
    fn a_normal_payment_credits_once_with_its_receipt() {
        let (s, effects) = run(&[Event::Sending, accepted(), result(0, Some("NLJ7RT61SV"), Some(2500))]);
        assert_eq!(s, State::Paid);
        assert_eq!(effects.last(), Some(&Effect::Credit { receipt: Some("NLJ7RT61SV".into()), late: false }));
    }

    #[test]
    fn a_duplicate_failure_after_payment_changes_nothing() {
        let (s, _) = run(&[Event::Sending, accepted(), result(0, Some("NLJ7RT61SV"), Some(2500)), result(1032, None, None)]);
        assert_eq!(s, State::Paid);
    }

    #[test]
    fn a_wrong_amount_goes_to_review_never_to_paid() {
        let (s, effects) = run(&[Event::Sending, accepted(), result(0, Some("NLJ7RT61SV"), Some(250))]);
        assert_eq!(s, State::NeedsReview);
        assert!(matches!(effects.last(), Some(Effect::Review { .. })));
    }

    #[test]
    fn cancel_codes_cancel_and_other_codes_fail() {
        for (code, want) in [(1032, State::Cancelled), (1031, State::Cancelled), (1, State::Failed), (2001, State::Failed), (1037, State::Failed)] {
            assert_eq!(run(&[Event::Sending, accepted(), result(code, None, None)]).0, want, "{code}");
        }
    }

    #[test]
    fn no_answer_to_the_push_is_unknown_and_a_later_result_settles_it() {
        let (s, _) = run(&[Event::Sending, Event::NoAnswer { reason: "timeout".into() }]);
        assert_eq!(s, State::Unknown);
        let (s, _) = run(&[Event::Sending, Event::NoAnswer { reason: "timeout".into() }, result(0, None, None)]);
        assert_eq!(s, State::Paid);
    }

    #[test]
    fn a_late_success_after_timing_out_is_credited_as_a_correction() {
        let (s, effects) = run(&[Event::Sending, accepted(), Event::Deadline, result(0, Some("NLJ7RT61SV"), Some(2500))]);
        assert_eq!(s, State::Paid);
        assert_eq!(effects.last(), Some(&Effect::Credit { receipt: Some("NLJ7RT61SV".into()), late: true }));
        // …but a late failure is ignored.
        assert_eq!(run(&[Event::Sending, accepted(), Event::Deadline, result(1037, None, None)]).0, State::TimedOut);
    }

    #[test]
    fn the_subscriber_lock_waits_instead_of_stacking() {
        let (s, _) = run(&[Event::Sending, Event::SubscriberLocked]);
        assert_eq!(s, State::Pending);
    }

    #[test]
    fn a_query_success_then_the_callback_receipt() {
        let query = Event::Result {
            outcome: Outcome { result_code: 0, result_desc: "ok".into(), receipt: None, amount: None, phone: None },
            cause: Cause::Query,
        };
        let (s, effects) = run(&[Event::Sending, accepted(), query, result(0, Some("NLJ7RT61SV"), Some(2500))]);
        assert_eq!(s, State::Paid);
        assert_eq!(effects[2], Effect::Credit { receipt: None, late: false });
        assert_eq!(effects[3], Effect::AttachReceipt { receipt: "NLJ7RT61SV".into() });
    }

    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Sending),
            Just(accepted()),
            Just(Event::Rejected { code: "400.002.02".into(), message: "bad".into() }),
            Just(Event::SubscriberLocked),
            Just(Event::NoAnswer { reason: "timeout".into() }),
            Just(Event::Deadline),
            Just(Event::Interrupted),
            (prop::sample::select(vec![0i64, 1, 17, 1032, 1037, 2001]), prop::option::of(Just("NLJ7RT61SV")), prop::option::of(prop::sample::select(vec![2500i64, 100]))).prop_map(|(c, r, a)| result(c, r, a)),
            any::<bool>().prop_map(|paid| Event::MerchantResolved { paid, note: "checked".into() }),
        ]
    }

    proptest! {
        /// Whatever Daraja does, money is credited only on a success with the right amount and phone,
        /// at most once without a receipt, and a final state is never left except by a late success
        /// or a receipt arriving.
        #[test]
        fn credits_only_on_a_matching_success(events in prop::collection::vec(any_event(), 0..24)) {
            let mut s = State::Pending;
            let mut credits_without_receipt = 0;
            for e in &events {
                let Ok(t) = apply(s, &expected(), e) else { continue };
                if let Effect::Credit { receipt, .. } = &t.effect {
                    match e {
                        Event::Result { outcome, .. } => {
                            prop_assert_eq!(outcome.result_code, 0);
                            prop_assert!(outcome.amount.is_none_or(|a| a == 2500));
                        }
                        Event::MerchantResolved { paid, .. } => prop_assert!(*paid),
                        other => prop_assert!(false, "credit from {:?}", other),
                    }
                    if receipt.is_none() { credits_without_receipt += 1; }
                }
                if s.is_final() && s != State::Pending {
                    let allowed = matches!((s, t.to), (State::TimedOut, State::Paid | State::NeedsReview) | (State::Paid, State::Paid) | (State::NeedsReview, _));
                    prop_assert!(allowed, "left final state {:?} for {:?}", s, t.to);
                }
                s = t.to;
            }
            prop_assert!(credits_without_receipt <= 1);
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in [State::Pending, State::Sending, State::Pushed, State::Unknown, State::Paid, State::Failed, State::Cancelled, State::TimedOut, State::Rejected, State::NeedsReview] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
    }
}
