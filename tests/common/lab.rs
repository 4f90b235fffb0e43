//! A payments service wired to the Daraja simulator and its own webhook server over loopback, with
//! the store on disk and a manual clock. Shared by the payment tests and the payments benchmark.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use malipo::clock::{ManualClock, SharedClock};
use malipo::config::TransactionType;
use malipo::daraja::simulator::{DarajaSimulator, SimulatorConfig, SimulatorHandle};
use malipo::daraja::{Credentials, DarajaClient, DarajaSettings};
use malipo::domain::{InvoiceNo, Kes, Msisdn};
use malipo::payments::webhooks::{self, DarajaWebhooks};
use malipo::payments::{Payments, PaymentsConfig};
use malipo::secrets::Secret;
use malipo::store::invoices::{self, NewInvoice};
use malipo::store::Store;

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub sim: SimulatorHandle,
    pub payments: Payments,
    pub base_url: String,
}

pub fn invoice(number: &str, phone: &str, amount: i64) -> NewInvoice {
    NewInvoice {
        number: InvoiceNo::parse(number).unwrap(),
        customer_name: "Wanjiku Kamau".into(),
        phone: Some(Msisdn::parse(phone).unwrap()),
        amount: Kes::positive(amount).unwrap(),
        balance: None,
        issue_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        due_date: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
        description: String::new(),
    }
}

impl Lab {
    pub async fn start(confirm_with_query: bool) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("malipo.db")).unwrap();
        let clock = ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap());
        let shared: SharedClock = clock.clone();
        let sim_config = SimulatorConfig::sandbox_defaults(shared.clone());
        let settings = DarajaSettings {
            base_url: String::new(),
            shortcode: sim_config.shortcode.clone(),
            transaction_type: TransactionType::CustomerPayBillOnline,
            party_b: sim_config.shortcode.clone(),
            credentials: Credentials {
                consumer_key: Secret::new(sim_config.consumer_key.clone()),
                consumer_secret: Secret::new(sim_config.consumer_secret.clone()),
                passkey: Secret::new(sim_config.passkey.clone()),
            },
        };
        let sim = DarajaSimulator::start(sim_config).await.unwrap();
        let client = DarajaClient::new(DarajaSettings { base_url: sim.base_url.clone(), ..settings }, shared.clone())
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(3));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let payments = Payments::new(
            store.clone(),
            shared,
            client,
            PaymentsConfig { callback_url: format!("{base_url}/webhooks/daraja/stk/{TOKEN}"), confirm_with_query, max_pushes_per_hour: 3 },
        );
        let router = webhooks::router(DarajaWebhooks { store: store.clone(), payments: payments.clone(), token: TOKEN.into() });
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Lab { dir, store, clock, sim, payments, base_url }
    }

    pub fn add_invoice(&self, number: &str, phone: &str, amount: i64) -> i64 {
        self.store.write(|tx| invoices::insert(tx, &invoice(number, phone, amount), Utc::now())).unwrap()
    }
}
