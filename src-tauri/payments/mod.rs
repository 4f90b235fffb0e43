//! Payments: the attempt state machine (pure), its persistence, the ledger, and the service that
//! pushes, polls and reconciles.

pub mod attempt;
pub mod ledger;
pub mod repo;
pub mod service;
pub mod webhooks;

pub use repo::Origin;
pub use service::{PaymentError, PaymentRequest, PaymentUpdate, Payments, PaymentsConfig};
