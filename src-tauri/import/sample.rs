//! Sample invoices for trying Malipo in simulator mode: a new merchant can pay one from the Simulator
//! within a minute of first launch, before they have a file to import. They go through the normal
//! import, never get reminders, and are cancelled when Malipo first runs with real M-Pesa details, so
//! a made-up customer can never be messaged for real.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rusqlite::Transaction;

use super::{commit, preview_bytes, CommitMode, ImportError, ImportReport, Options};
use crate::store::{audit, Result, Store};

/// Sample invoice numbers start with this.
pub const PREFIX: &str = "SAMPLE-";

/// Three customers: one due soon, one overdue, one large enough to need a second confirmation.
pub fn sample_csv(today: NaiveDate) -> String {
    let day = |d: i64| (today + Duration::days(d)).format("%Y-%m-%d").to_string();
    format!(
        "Invoice No,Customer,Phone,Amount,Issue Date,Due Date,Description\n\
         {PREFIX}1001,Wanjiku Kamau (sample),0712345678,2500,{},{},Sample: 5 crates of eggs\n\
         {PREFIX}1002,Otieno Ochieng (sample),0722000111,1200,{},{},Sample: maize flour\n\
         {PREFIX}1003,Akinyi Odhiambo (sample),0733000222,12500,{},{},Sample: school uniforms\n",
        day(-10),
        day(5),
        day(-30),
        day(-3),
        day(-2),
        day(14),
    )
}

/// Imports the samples (again: importing them twice changes nothing) with their reminders paused.
pub fn load(store: &Store, today: NaiveDate, now: DateTime<Utc>) -> std::result::Result<ImportReport, ImportError> {
    let preview = preview_bytes("sample invoices", sample_csv(today).into_bytes(), &Options { today: Some(today), ..Options::default() })?;
    let report = commit(store, &preview, CommitMode::AllOrNothing, now)?;
    store.write(|tx| {
        tx.execute("UPDATE invoices SET reminders_paused = 1 WHERE number LIKE ?1 || '%'", [PREFIX])?;
        Ok(())
    })?;
    Ok(report)
}

/// With real M-Pesa details, open sample invoices are cancelled so nobody is reminded or charged for them.
pub fn close_for_live(tx: &Transaction, now: DateTime<Utc>) -> Result<usize> {
    let n = tx.execute(
        "UPDATE invoices SET status = 'cancelled' WHERE number LIKE ?1 || '%' AND status IN ('open', 'partially_paid', 'disputed')",
        [PREFIX],
    )?;
    if n > 0 {
        audit(tx, now, "system", "sample_invoices_cancelled", PREFIX, &format!("{n} sample invoice(s) cancelled: Malipo now runs with real M-Pesa details"))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::invoices;
    use crate::store::test_support::temp_store;

    #[test]
    fn samples_load_once_without_reminders_and_close_when_going_live() {
        let s = temp_store();
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let first = load(&s, today, Utc::now()).unwrap();
        assert_eq!((first.created, first.skipped), (3, 0));
        let again = load(&s, today, Utc::now()).unwrap();
        assert_eq!((again.created, again.unchanged), (0, 3), "loading twice changes nothing");

        let all = s.read(invoices::list).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|i| i.number.starts_with(PREFIX) && i.customer_name.ends_with("(sample)")));
        let paused: i64 = s.read(|c| Ok(c.query_row("SELECT SUM(reminders_paused) FROM invoices", [], |r| r.get(0))?)).unwrap();
        assert_eq!(paused, 3, "sample customers are never reminded");

        assert_eq!(s.write(|tx| close_for_live(tx, Utc::now())).unwrap(), 3);
        assert!(s.read(invoices::list).unwrap().iter().all(|i| i.status == invoices::InvoiceStatus::Cancelled));
        assert_eq!(s.write(|tx| close_for_live(tx, Utc::now())).unwrap(), 0);
    }
}
