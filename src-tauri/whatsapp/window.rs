//! The 24-hour customer-service window: free-form messages only within 24 hours of the customer's
//! last message (each message resets it); outside it, only approved templates.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::domain::Msisdn;
use crate::store::{self, parse_ts, ts};

pub const LENGTH: Duration = Duration::hours(24);

/// Sending this close to the end is treated as outside: the message may reach WhatsApp after it shut.
pub const MARGIN: Duration = Duration::minutes(1);

pub fn is_open(last_inbound_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    closes_at(last_inbound_at).is_some_and(|closes| now + MARGIN < closes)
}

pub fn closes_at(last_inbound_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    last_inbound_at.map(|t| t + LENGTH)
}

pub fn last_inbound_at(conn: &Connection, phone: &Msisdn) -> store::Result<Option<DateTime<Utc>>> {
    let raw: Option<Option<String>> =
        conn.query_row("SELECT last_inbound_at FROM customers WHERE phone = ?1", [phone.as_str()], |r| r.get(0)).optional()?;
    raw.flatten().map(|s| parse_ts(&s)).transpose()
}

/// Whether a free-form message to `phone` may be sent now.
pub fn is_open_for(conn: &Connection, phone: &Msisdn, now: DateTime<Utc>) -> store::Result<bool> {
    Ok(is_open(last_inbound_at(conn, phone)?, now))
}

/// Moves the window's start forward to `at` (never backwards: a late, older message does not shorten it).
pub fn refresh(tx: &Transaction, customer_id: i64, at: DateTime<Utc>) -> store::Result<()> {
    tx.execute(
        "UPDATE customers SET last_inbound_at = ?1 WHERE id = ?2 AND (last_inbound_at IS NULL OR last_inbound_at < ?1)",
        (ts(at), customer_id),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{customers, test_support::temp_store};

    #[test]
    fn the_window_is_open_for_24_hours_after_the_last_message() {
        let t0 = Utc::now();
        assert!(!is_open(None, t0));
        assert!(is_open(Some(t0), t0));
        assert!(is_open(Some(t0), t0 + Duration::hours(23)));
        assert!(!is_open(Some(t0), t0 + Duration::hours(24)));
        assert!(!is_open(Some(t0), t0 + LENGTH - Duration::seconds(30)));
    }

    #[test]
    fn refresh_only_moves_forward() {
        let s = temp_store();
        let phone = Msisdn::parse("0712345678").unwrap();
        let t0 = Utc::now();
        let id = s.write(|tx| customers::upsert(tx, "W", Some(&phone), t0)).unwrap();
        s.write(|tx| refresh(tx, id, t0)).unwrap();
        s.write(|tx| refresh(tx, id, t0 - Duration::hours(2))).unwrap();
        let last = s.read(|c| last_inbound_at(c, &phone)).unwrap().unwrap();
        assert_eq!(ts(last), ts(t0));
        assert!(s.read(|c| is_open_for(c, &phone, t0 + Duration::hours(1))).unwrap());
    }
}
