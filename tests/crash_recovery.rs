//! A Malipo process killed with SIGKILL in the middle of a payment loses nothing and charges nobody
//! twice: a restarted `malipo serve` resolves the attempt exactly once. Real processes, a real
//! database file and the Daraja simulator over loopback HTTP.
#![cfg(unix)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use malipo::clock;
use malipo::daraja::simulator::{CallbackPlan, DarajaSimulator, PushPlan, Script, SimulatorConfig, SimulatorHandle};
use malipo::payments::attempt::State;
use malipo::payments::{ledger, repo};
use malipo::store::{invoices, Store};

mod common;

const PHONE: &str = "254712345678";

/// These tests give `malipo` a fixed port picked by `free_port`; run one at a time so no other test's
/// process can take that port between the pick and the bind (a callback would then go astray).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `malipo` pointed at the test's simulator as if it were Safaricom's sandbox.
fn malipo(dir: &std::path::Path, sim: &SimulatorHandle, port: u16) -> Command {
    let config = SimulatorConfig::sandbox_defaults(clock::system());
    let mut cmd = common::malipo(dir);
    cmd.env("MALIPO_DARAJA_ENVIRONMENT", "sandbox")
        .env("MALIPO_DARAJA_BASE_URL", &sim.base_url)
        .env("MALIPO_DARAJA_SHORTCODE", &config.shortcode)
        .env("MALIPO_DARAJA_CONSUMER_KEY", &config.consumer_key)
        .env("MALIPO_DARAJA_CONSUMER_SECRET", &config.consumer_secret)
        .env("MALIPO_DARAJA_PASSKEY", &config.passkey)
        .env("MALIPO_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

fn attempt_state(store: &Store) -> Option<State> {
    store.read(|c| Ok(repo::list(c)?.first().map(|a| a.state))).unwrap()
}

fn kill9(child: &mut Child) {
    common::unsafe_kill(child.id(), "KILL");
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not exited");
}

/// Kills the paying process once its attempt reaches `kill_in`, restarts the engine as `malipo serve`,
/// delivers the held callback and checks the invoice was credited exactly once.
async fn killed_mid_payment_then_resolved_once(push: PushPlan, kill_in: State) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    common::seed(dir.path());
    let sim = DarajaSimulator::start(SimulatorConfig::sandbox_defaults(clock::system())).await.unwrap();
    sim.script_phone(PHONE, Script { callback: CallbackPlan::Hold, push, ..Script::default() });
    let port = free_port();
    let store = Store::open(&common::db_path(dir.path())).unwrap();

    let mut paying = malipo(dir.path(), &sim, port).args(["request-payment", "INV-1042"]).spawn().unwrap();
    wait_until("the attempt is recorded", || attempt_state(&store) == Some(kill_in)).await;
    kill9(&mut paying);
    assert_eq!(sim.pushes().len(), 1);

    let mut serve = malipo(dir.path(), &sim, port);
    serve.arg("serve");
    let served = common::Served::start_with(serve);
    // The callback Daraja was holding now reaches the restarted engine.
    let pushes = sim.pushes();
    let checkout = pushes[0].checkout_request_id.clone().expect("the customer was prompted");
    wait_until("the callback is delivered", || sim.release_callbacks(&checkout) == 1).await;
    wait_until("the payment is credited", || attempt_state(&store) == Some(State::Paid)).await;

    let (rows, inv) = store.read(|c| Ok((ledger::list(c)?, invoices::by_number(c, "INV-1042")?.unwrap()))).unwrap();
    assert_eq!(rows.len(), 1, "credited exactly once");
    assert_eq!(inv.balance.shillings(), 0);
    assert_eq!(sim.pushes().len(), 1, "never pushed twice");
    assert!(rows[0].receipt.is_some());
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_push_was_accepted_then_a_restarted_serve_credits_once() {
    killed_mid_payment_then_resolved_once(PushPlan::Normal, State::Pushed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_push_was_in_flight_it_is_never_resent_and_credits_once() {
    killed_mid_payment_then_resolved_once(PushPlan::Slow(Duration::from_secs(4)), State::Sending).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_public_url_registers_its_c2b_urls_and_credits_a_paybill_payment_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    common::seed(dir.path());
    let sim = DarajaSimulator::start(SimulatorConfig::sandbox_defaults(clock::system())).await.unwrap();
    let port = free_port();
    let mut serve = malipo(dir.path(), &sim, port);
    serve.arg("serve").env("MALIPO_PUBLIC_URL", format!("http://127.0.0.1:{port}"));
    let served = common::Served::start_with(serve);
    wait_until("the C2B URLs are registered", || sim.c2b_urls().is_some()).await;
    let (confirmation, _) = sim.c2b_urls().unwrap();
    assert!(confirmation.starts_with(&format!("http://127.0.0.1:{port}/webhooks/daraja/c2b/")) && confirmation.ends_with("/confirmation"));

    // The customer pays the paybill directly, typing the invoice number as the account.
    sim.c2b_pay("inv1042", 2500, PHONE).await.unwrap();
    let store = Store::open(&common::db_path(dir.path())).unwrap();
    let balance = || store.read(|c| invoices::by_number(c, "INV-1042")).unwrap().unwrap().balance.shillings();
    wait_until("the paybill payment is credited", || balance() == 0).await;
    let rows = store.read(ledger::list).unwrap();
    assert_eq!((rows.len(), rows[0].source.as_str()), (1, "c2b"));
    drop(served);
}
