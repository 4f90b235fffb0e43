//! Money moves exactly once whatever Daraja does: every result code, duplicated, late, lost and forged
//! callbacks, 500s on the push — all over real HTTP between the payments service, its webhook server
//! and the Daraja simulator, with the store on disk and time moved by a manual clock.

use std::time::Duration;

use malipo::daraja::simulator::{CallbackPlan, PushPlan, QueryPlan, Script, SimResult};
use malipo::domain::{Kes, Msisdn};
use malipo::payments::attempt::State;
use malipo::payments::repo::{self, Attempt};
use malipo::payments::{ledger, Origin, PaymentRequest};
use malipo::store::invoices::{self, InvoiceStatus};

#[path = "common/lab.rs"]
mod lab;
use lab::{Lab, TOKEN};

const PHONE: &str = "254712345678";

struct Harness {
    lab: Lab,
    invoice_id: i64,
}

impl std::ops::Deref for Harness {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

async fn harness(confirm_with_query: bool) -> Harness {
    let lab = Lab::start(confirm_with_query).await;
    let invoice_id = lab.add_invoice("INV-1042", "0712345678", 2500);
    Harness { lab, invoice_id }
}

impl Harness {
    async fn request(&self, key: &str) -> Attempt {
        self.payments
            .request(PaymentRequest {
                invoice_id: self.invoice_id,
                amount: Kes::positive(2500).unwrap(),
                phone: Msisdn::parse(PHONE).unwrap(),
                origin: Origin::Chat,
                idempotency_key: key.into(),
            })
            .await
            .unwrap()
    }

    fn attempt(&self, id: i64) -> Attempt {
        self.store.read(|c| repo::get(c, id)).unwrap()
    }

    fn balance(&self) -> i64 {
        self.store.read(|c| invoices::get(c, self.invoice_id)).unwrap().balance.shillings()
    }

    fn ledger_rows(&self) -> Vec<ledger::LedgerEntry> {
        self.store.read(ledger::list).unwrap()
    }

    /// Waits (real time, briefly) until the attempt reaches `state`.
    async fn wait_for(&self, id: i64, state: State) -> Attempt {
        for _ in 0..100 {
            let a = self.attempt(id);
            if a.state == state {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("attempt {id} never reached {state:?}; it is {:?}", self.attempt(id).state);
    }

    /// Moves business time on and runs the due checks, as the poller would.
    async fn advance(&self, secs: i64) {
        self.clock.advance(chrono::Duration::seconds(secs));
        self.payments.poll_due().await.unwrap();
    }

    fn events(&self, id: i64) -> Vec<repo::EventRow> {
        self.store.read(|c| repo::events(c, id)).unwrap()
    }
}

fn script(result: SimResult, callback: CallbackPlan) -> Script {
    Script { result, callback, ..Script::default() }
}

#[tokio::test]
async fn a_payment_is_pushed_once_with_the_right_details_and_credited_with_its_receipt() {
    let h = harness(false).await;
    let a = h.request("chat:1").await;
    let paid = h.wait_for(a.id, State::Paid).await;
    let pushes = h.sim.pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!((pushes[0].amount, pushes[0].phone.as_str(), pushes[0].account_reference.as_str()), (2500, PHONE, "INV-1042"));
    assert_eq!(h.balance(), 0);
    assert_eq!(h.store.read(|c| invoices::get(c, h.invoice_id)).unwrap().status, InvoiceStatus::Paid);
    let rows = h.ledger_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].receipt, paid.receipt);
    assert!(paid.receipt.as_deref().is_some_and(|r| r.len() == 10));
    // The same confirmed intent asked again does not push again.
    let again = h.request("chat:1").await;
    assert_eq!((again.id, h.sim.pushes().len()), (a.id, 1));
}

#[tokio::test]
async fn every_result_code_ends_in_the_right_state_and_only_zero_credits() {
    let cases = [
        (1, State::Failed),
        (2, State::Failed),
        (3, State::Failed),
        (4, State::Failed),
        (8, State::Failed),
        (17, State::Failed),
        (26, State::Failed),
        (1019, State::Failed),
        (1025, State::Failed),
        (9999, State::Failed),
        (1031, State::Cancelled),
        (1032, State::Cancelled),
        (1037, State::Failed),
        (2001, State::Failed),
        (2028, State::Failed),
        (8006, State::Failed),
        (0, State::Paid),
    ];
    for (code, want) in cases {
        let h = harness(false).await;
        let result = if code == 0 { SimResult::Pay } else { SimResult::Code(code) };
        h.sim.script_phone(PHONE, script(result, CallbackPlan::Immediate { copies: 1 }));
        let a = h.request(&format!("chat:{code}")).await;
        let done = h.wait_for(a.id, want).await;
        assert_eq!(done.result_code, Some(code), "code {code}");
        assert_eq!(h.balance(), if code == 0 { 0 } else { 2500 }, "code {code}");
        assert_eq!(h.ledger_rows().len(), usize::from(code == 0), "code {code}");
    }
}

#[tokio::test]
async fn a_callback_delivered_three_times_credits_once() {
    let h = harness(false).await;
    h.sim.script_phone(PHONE, script(SimResult::Pay, CallbackPlan::Immediate { copies: 3 }));
    let a = h.request("chat:dup").await;
    h.wait_for(a.id, State::Paid).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.ledger_rows().len(), 1);
    assert_eq!(h.balance(), 0);
    let stored: i64 = h.store.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM inbound_events WHERE source = 'daraja_stk'", [], |r| r.get(0))?)).unwrap();
    assert_eq!(stored, 1, "duplicates are stored once");
}

#[tokio::test]
async fn with_no_callback_at_all_stk_query_completes_the_payment() {
    let h = harness(true).await;
    h.sim.script_phone(PHONE, script(SimResult::Pay, CallbackPlan::Drop));
    let a = h.request("chat:nocb").await;
    assert_eq!(h.attempt(a.id).state, State::Pushed);
    h.advance(20).await;
    let paid = h.attempt(a.id);
    assert_eq!(paid.state, State::Paid);
    assert_eq!(paid.receipt, None, "a query carries no receipt: it stays pending");
    assert_eq!(h.balance(), 0);
    assert!(h.events(a.id).iter().any(|e| e.cause == "query" && e.to_state == "paid"));
}

#[tokio::test]
async fn a_callback_credits_only_once_stk_query_confirms_it() {
    let h = harness(true).await;
    h.sim.script_phone(PHONE, script(SimResult::Pay, CallbackPlan::Immediate { copies: 1 }));
    let a = h.request("chat:confirm").await;
    // The callback's receipt is kept; the query it triggers confirms and credits.
    for _ in 0..50 {
        h.payments.poll_due().await.unwrap();
        if h.attempt(a.id).state == State::Paid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let paid = h.attempt(a.id);
    assert_eq!(paid.state, State::Paid);
    assert!(paid.receipt.is_some(), "the callback's receipt is used");
    assert!(h.sim.query_count(paid.checkout_request_id.as_deref().unwrap()) >= 1);
    assert_eq!(h.ledger_rows()[0].receipt, paid.receipt);
}

#[tokio::test]
async fn a_success_five_minutes_late_after_a_timeout_still_credits_as_a_correction() {
    let h = harness(false).await;
    h.sim.script_phone(
        PHONE,
        Script { result: SimResult::Pay, callback: CallbackPlan::Hold, query: QueryPlan::ProcessingTimes(100), ..Script::default() },
    );
    let mut updates = h.payments.subscribe();
    let a = h.request("chat:late").await;
    for _ in 0..8 {
        h.advance(40).await;
    }
    assert_eq!(h.attempt(a.id).state, State::TimedOut);
    assert_eq!(h.balance(), 2500);
    // The callback finally arrives.
    assert_eq!(h.sim.release_callbacks(h.attempt(a.id).checkout_request_id.as_deref().unwrap()), 1);
    h.wait_for(a.id, State::Paid).await;
    assert_eq!(h.balance(), 0);
    let mut correction = false;
    while let Ok(u) = updates.try_recv() {
        correction |= u.correction && u.credited.is_some();
    }
    assert!(correction, "the late credit is reported as a correction");
}

#[tokio::test]
async fn a_callback_for_the_wrong_amount_goes_to_review_and_credits_nothing() {
    let h = harness(false).await;
    h.sim.script_phone(PHONE, script(SimResult::Pay, CallbackPlan::Drop));
    let a = h.request("chat:forge").await;
    let checkout = h.attempt(a.id).checkout_request_id.unwrap();
    let body = serde_json::json!({"Body": {"stkCallback": {
        "MerchantRequestID": "x", "CheckoutRequestID": checkout, "ResultCode": 0, "ResultDesc": "ok",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 25.0}, {"Name": "MpesaReceiptNumber", "Value": "QZZ1234567"},
            {"Name": "PhoneNumber", "Value": 254712345678u64}]}}}});
    let resp = reqwest::Client::new().post(format!("{}/webhooks/daraja/stk/{TOKEN}", h.base_url)).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h.attempt(a.id).state, State::NeedsReview);
    assert_eq!(h.balance(), 2500);
    assert!(h.ledger_rows().is_empty());
}

#[tokio::test]
async fn a_forged_callback_with_a_bad_token_gets_404_and_changes_nothing() {
    let h = harness(false).await;
    h.sim.script_phone(PHONE, script(SimResult::Pay, CallbackPlan::Drop));
    let a = h.request("chat:token").await;
    let checkout = h.attempt(a.id).checkout_request_id.unwrap();
    let body = serde_json::json!({"Body": {"stkCallback": {"MerchantRequestID": "x", "CheckoutRequestID": checkout, "ResultCode": 0, "ResultDesc": "ok",
        "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 2500}, {"Name": "MpesaReceiptNumber", "Value": "QZZ1234567"}, {"Name": "PhoneNumber", "Value": 254712345678u64}]}}}});
    let http = reqwest::Client::new();
    for token in ["guess", &TOKEN[..63], &format!("{}0", &TOKEN[..63])] {
        let resp = http.post(format!("{}/webhooks/daraja/stk/{token}", h.base_url)).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 404);
    }
    assert_eq!(h.attempt(a.id).state, State::Pushed);
    let stored: i64 = h.store.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM inbound_events", [], |r| r.get(0))?)).unwrap();
    assert_eq!((stored, h.balance()), (0, 2500));
    // A malformed body with the right token is refused with 400, nothing stored.
    let resp = http.post(format!("{}/webhooks/daraja/stk/{TOKEN}", h.base_url)).body("{\"Body\":{}}").send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_500_on_the_push_is_never_pushed_again_and_the_callback_settles_it() {
    let h = harness(false).await;
    h.sim.script_phone(
        PHONE,
        Script { result: SimResult::Pay, callback: CallbackPlan::Hold, push: PushPlan::Http500 { reached_customer: true }, ..Script::default() },
    );
    let a = h.request("chat:500").await;
    assert_eq!(h.attempt(a.id).state, State::Unknown);
    for _ in 0..3 {
        h.advance(30).await;
    }
    assert_eq!(h.sim.pushes().len(), 1, "an unknown outcome is never re-sent");
    let checkout = h.sim.pushes()[0].checkout_request_id.clone().expect("the push reached the customer");
    h.sim.release_callbacks(&checkout);
    h.wait_for(a.id, State::Paid).await;
    assert_eq!((h.balance(), h.ledger_rows().len()), (0, 1));
}

#[tokio::test]
async fn the_subscriber_lock_waits_and_sends_once_instead_of_stacking() {
    let h = harness(false).await;
    h.sim.script_next(Script { push: PushPlan::Locked, ..Script::default() });
    let a = h.request("chat:lock").await;
    assert_eq!(h.attempt(a.id).state, State::Pending);
    h.advance(30).await;
    assert_eq!(h.attempt(a.id).state, State::Pending, "still waiting out the lock");
    h.advance(31).await;
    h.wait_for(a.id, State::Paid).await;
    assert_eq!(h.ledger_rows().len(), 1);
}

#[tokio::test]
async fn never_two_prompts_in_flight_for_one_invoice_or_more_than_the_balance() {
    let h = harness(false).await;
    h.sim.script_phone(PHONE, script(SimResult::AwaitCustomer, CallbackPlan::Immediate { copies: 1 }));
    h.request("chat:a").await;
    let second = h
        .payments
        .request(PaymentRequest {
            invoice_id: h.invoice_id,
            amount: Kes::positive(1000).unwrap(),
            phone: Msisdn::parse(PHONE).unwrap(),
            origin: Origin::Merchant,
            idempotency_key: "merchant:b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(second.code(), "in_flight", "{second}");
    let too_much = h
        .payments
        .request(PaymentRequest {
            invoice_id: h.invoice_id,
            amount: Kes::positive(2501).unwrap(),
            phone: Msisdn::parse("0722000111").unwrap(),
            origin: Origin::Merchant,
            idempotency_key: "merchant:c".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), "invalid", "{too_much}");
    assert_eq!(h.sim.pushes().len(), 1);
}

#[tokio::test]
async fn a_c2b_payment_matches_its_invoice_once_and_unknown_references_wait_for_the_merchant() {
    let h = harness(false).await;
    let http = reqwest::Client::new();
    let confirmation = |trans: &str, bill_ref: &str, amount: &str| {
        serde_json::json!({"TransactionType": "Pay Bill", "TransID": trans, "TransTime": "20261204093000", "TransAmount": amount,
            "BusinessShortCode": "174379", "BillRefNumber": bill_ref, "InvoiceNumber": "", "OrgAccountBalance": "",
            "ThirdPartyTransID": "", "MSISDN": "25471****678", "FirstName": "WANJIKU"})
    };
    for _ in 0..2 {
        let resp = http
            .post(format!("{}/webhooks/daraja/c2b/{TOKEN}/confirmation", h.base_url))
            .json(&confirmation("RKTQDM7W6S", "inv 1042", "1000"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!((h.balance(), h.ledger_rows().len()), (1500, 1));
    http.post(format!("{}/webhooks/daraja/c2b/{TOKEN}/confirmation", h.base_url))
        .json(&confirmation("RKTQDM7W7T", "shop", "300"))
        .send()
        .await
        .unwrap();
    let unmatched: i64 = h.store.read(|c| Ok(c.query_row("SELECT id FROM unmatched_payments WHERE trans_id = 'RKTQDM7W7T'", [], |r| r.get(0))?)).unwrap();
    assert_eq!(h.balance(), 1500, "an unknown reference credits nothing by itself");
    // The merchant recognises the payment and matches it by hand, once.
    let update = h.payments.resolve_unmatched(unmatched, h.invoice_id).await.unwrap();
    assert_eq!(update.credited.map(|k| k.shillings()), Some(300));
    assert_eq!(h.balance(), 1200);
    assert!(h.payments.resolve_unmatched(unmatched, h.invoice_id).await.is_err(), "never matched twice");
    assert_eq!(h.balance(), 1200);
    let resp = http.post(format!("{}/webhooks/daraja/c2b/wrong/confirmation", h.base_url)).json(&confirmation("X", "INV-1042", "5")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn an_stk_payment_confirmed_by_query_and_its_c2b_record_count_once() {
    let h = harness(true).await;
    h.sim.script_phone(PHONE, script(SimResult::Pay, CallbackPlan::Drop));
    let a = h.request("chat:twin").await;
    h.advance(20).await;
    assert_eq!(h.attempt(a.id).state, State::Paid);
    // Daraja also reports the same money as a paybill payment, with its receipt.
    let body = serde_json::json!({"TransactionType": "Pay Bill", "TransID": "SBC1234567", "TransTime": "20261204090100", "TransAmount": "2500.00",
        "BusinessShortCode": "174379", "BillRefNumber": "INV-1042", "MSISDN": "25471****678", "FirstName": "WANJIKU"});
    reqwest::Client::new().post(format!("{}/webhooks/daraja/c2b/{TOKEN}/confirmation", h.base_url)).json(&body).send().await.unwrap();
    let rows = h.ledger_rows();
    assert_eq!(rows.len(), 1, "one payment, not two");
    assert_eq!(rows[0].receipt.as_deref(), Some("SBC1234567"), "the receipt is filled in");
    assert_eq!(h.balance(), 0);
}

#[tokio::test]
async fn a_callback_that_beats_the_push_answer_is_not_lost() {
    let h = harness(false).await;
    // The customer pays and Daraja calls back before its answer to our push has arrived.
    h.sim.script_phone(PHONE, Script { result: SimResult::Pay, callback: CallbackPlan::Immediate { copies: 1 }, push: PushPlan::Slow(Duration::from_millis(400)), ..Script::default() });
    let a = h.request("chat:fast").await;
    let paid = h.wait_for(a.id, State::Paid).await;
    assert!(paid.receipt.is_some());
    assert_eq!((h.balance(), h.ledger_rows().len()), (0, 1));
}
