//! Collection reports for a period: how much came in, how fast, what is at risk, and what made
//! customers pay. Every figure is computed in SQL over the ledger (never from cached totals), so it
//! agrees with the Payments screen. Definitions are in the README ("Reports").

use chrono::{Datelike, Duration, NaiveDate};
use rusqlite::{params, Connection};
use serde::Serialize;

use crate::payments::attempt::describe;
use crate::store::Result;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Invoices due in the period (not cancelled) and how many / how much of them is collected.
    pub invoices_due: i64,
    pub invoices_due_paid: i64,
    pub amount_due: i64,
    pub amount_due_collected: i64,
    /// Percentages, 0–100, one decimal; None when nothing was due.
    pub collection_rate_by_count: Option<f64>,
    pub collection_rate_by_amount: Option<f64>,
    /// Money received in the period, all sources (credits included).
    pub amount_collected: i64,
    /// Days sales outstanding by the countback method at the period's end.
    pub dso_days: Option<f64>,
    /// For invoices fully paid in the period: days from issue to the payment that cleared them.
    pub average_days_to_pay: Option<f64>,
    pub median_days_to_pay: Option<f64>,
    pub aging: Aging,
    /// Share of what is owed that is more than 90 days past due, 0–100.
    pub at_risk_share: Option<f64>,
    /// Collection effectiveness index, 0–100.
    pub cei: Option<f64>,
    pub funnel: Funnel,
    pub stk_outcomes: Vec<Outcome>,
    pub sources: Vec<SourceTotal>,
    pub reminder_steps: Vec<StepConversion>,
}

/// What is owed at the period's end, by days past due.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Aging {
    pub current: i64,
    pub days_1_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub days_over_90: i64,
}

impl Aging {
    pub fn total(&self) -> i64 {
        self.current + self.days_1_30 + self.days_31_60 + self.days_61_90 + self.days_over_90
    }
}

/// Distinct customers at each stage in the period.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Funnel {
    pub reminded: i64,
    pub replied: i64,
    pub confirmed: i64,
    pub pushed: i64,
    pub paid: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Outcome {
    /// None: no final answer (in flight, unknown or timed out).
    pub result_code: Option<i64>,
    pub meaning: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SourceTotal {
    pub source: String,
    pub count: i64,
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepConversion {
    /// 1 = the first step of the schedule.
    pub step: i64,
    pub sent: i64,
    /// Reminded invoices that received a payment within 7 days of the reminder.
    pub paid_within_7_days: i64,
    pub conversion: Option<f64>,
}

fn pct(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

fn one(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// End of a local day as stored text (timestamps are UTC; the day boundary is the merchant's).
pub(crate) fn day_end(day: NaiveDate, tz: chrono_tz::Tz) -> String {
    let next = (day + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap();
    let utc = chrono::TimeZone::from_local_datetime(&tz, &next).earliest().map(|t| t.with_timezone(&chrono::Utc)).unwrap_or_else(|| next.and_utc());
    crate::store::ts(utc)
}

/// Receivables at the end of `day` (invoices issued by then, not cancelled): what they still owe
/// today plus what was applied to them after that day. Reads only invoices with a balance and the
/// payments since `day`, so it stays fast however long the shop's history.
fn receivables_at(conn: &Connection, day: NaiveDate, tz: chrono_tz::Tz, only_not_yet_due: bool) -> Result<i64> {
    let d = day.to_string();
    let owed: i64 = conn.query_row(
        "SELECT COALESCE(SUM(balance), 0) FROM invoices INDEXED BY invoices_owed
         WHERE balance > 0 AND status != 'cancelled' AND issue_date <= ?1 AND (?2 = 0 OR due_date > ?1)",
        params![d, only_not_yet_due],
        |r| r.get(0),
    )?;
    let paid_since: i64 = conn.query_row(
        "SELECT COALESCE(SUM(l.applied), 0) FROM ledger_payments l CROSS JOIN invoices i ON i.id = l.invoice_id
         WHERE l.paid_at >= ?1 AND l.invoice_id IS NOT NULL AND i.issue_date <= ?2 AND i.status != 'cancelled' AND (?3 = 0 OR i.due_date > ?2)",
        params![day_end(day, tz), d, only_not_yet_due],
        |r| r.get(0),
    )?;
    Ok(owed + paid_since)
}

pub fn report(conn: &Connection, from: NaiveDate, to: NaiveDate, tz: chrono_tz::Tz) -> Result<Report> {
    let (f, t) = (from.to_string(), to.to_string());
    let (start, end) = (day_end(from - Duration::days(1), tz), day_end(to, tz));

    let (invoices_due, invoices_due_paid, amount_due, amount_due_collected): (i64, i64, i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(status = 'paid'), 0), COALESCE(SUM(amount), 0), COALESCE(SUM(amount - balance), 0)
         FROM invoices WHERE due_date BETWEEN ?1 AND ?2 AND status != 'cancelled'",
        params![f, t],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let amount_collected: i64 =
        conn.query_row("SELECT COALESCE(SUM(amount), 0) FROM ledger_payments WHERE paid_at >= ?1 AND paid_at < ?2", params![start, end], |r| r.get(0))?;

    // Days to pay: issue date to the date of the payment that cleared the invoice.
    let mut stmt = conn.prepare(
        "SELECT julianday(substr(cleared_at, 1, 10)) - julianday(issue_date) FROM invoices
         WHERE cleared_at >= ?1 AND cleared_at < ?2",
    )?;
    let mut days: Vec<f64> = stmt.query_map(params![start, end], |r| r.get::<_, f64>(0))?.collect::<rusqlite::Result<_>>()?;
    days.sort_by(|a, b| a.total_cmp(b));
    let average_days_to_pay = (!days.is_empty()).then(|| one(days.iter().sum::<f64>() / days.len() as f64));
    let median_days_to_pay = (!days.is_empty()).then(|| {
        let m = days.len() / 2;
        one(if days.len().is_multiple_of(2) { (days[m - 1] + days[m]) / 2.0 } else { days[m] })
    });

    // Aging at the period's end, from today's balances of invoices issued by then.
    let aging = conn.query_row(
        "SELECT
            COALESCE(SUM(CASE WHEN julianday(?1) - julianday(due_date) <= 0 THEN balance END), 0),
            COALESCE(SUM(CASE WHEN julianday(?1) - julianday(due_date) BETWEEN 1 AND 30 THEN balance END), 0),
            COALESCE(SUM(CASE WHEN julianday(?1) - julianday(due_date) BETWEEN 31 AND 60 THEN balance END), 0),
            COALESCE(SUM(CASE WHEN julianday(?1) - julianday(due_date) BETWEEN 61 AND 90 THEN balance END), 0),
            COALESCE(SUM(CASE WHEN julianday(?1) - julianday(due_date) > 90 THEN balance END), 0)
         FROM invoices INDEXED BY invoices_owed
         WHERE balance > 0 AND status != 'cancelled' AND status IN ('open', 'partially_paid', 'disputed') AND issue_date <= ?1",
        [&t],
        |r| Ok(Aging { current: r.get(0)?, days_1_30: r.get(1)?, days_31_60: r.get(2)?, days_61_90: r.get(3)?, days_over_90: r.get(4)? }),
    )?;
    let at_risk_share = pct(aging.days_over_90, aging.total());

    // CEI = (begin + credit sales − end) / (begin + credit sales − end current) × 100.
    let begin = receivables_at(conn, from - Duration::days(1), tz, false)?;
    let ending = receivables_at(conn, to, tz, false)?;
    let ending_current = receivables_at(conn, to, tz, true)?;
    let credit_sales: i64 = conn.query_row(
        "SELECT COALESCE(SUM(amount), 0) FROM invoices WHERE issue_date BETWEEN ?1 AND ?2 AND status != 'cancelled'",
        params![f, t],
        |r| r.get(0),
    )?;
    let cei = pct(begin + credit_sales - ending, begin + credit_sales - ending_current);

    let dso_days = countback_dso(conn, to, ending)?;

    let funnel = funnel_between(conn, &start, &end)?;

    let mut stmt = conn.prepare(
        "SELECT CASE WHEN state IN ('paid', 'failed', 'cancelled') THEN result_code END AS code, COUNT(*)
         FROM payment_attempts WHERE created_at >= ?1 AND created_at < ?2 AND state != 'rejected' GROUP BY code ORDER BY COUNT(*) DESC, code",
    )?;
    let stk_outcomes = stmt
        .query_map(params![start, end], |r| {
            let code: Option<i64> = r.get(0)?;
            Ok(Outcome { result_code: code, meaning: code.map(describe).unwrap_or("no final answer").to_string(), count: r.get(1)? })
        })?
        .collect::<rusqlite::Result<_>>()?;

    let mut stmt = conn.prepare(
        "SELECT source, COUNT(*), SUM(amount) FROM ledger_payments WHERE paid_at >= ?1 AND paid_at < ?2 GROUP BY source ORDER BY SUM(amount) DESC",
    )?;
    let sources = stmt
        .query_map(params![start, end], |r| Ok(SourceTotal { source: r.get(0)?, count: r.get(1)?, amount: r.get(2)? }))?
        .collect::<rusqlite::Result<_>>()?;

    let mut stmt = conn.prepare(
        "SELECT s.step + 1, COUNT(*),
                SUM(EXISTS (SELECT 1 FROM ledger_payments l WHERE l.invoice_id = s.invoice_id AND l.paid_at >= s.at
                            AND julianday(l.paid_at) - julianday(s.at) <= 7))
         FROM reminder_sends s WHERE s.at >= ?1 AND s.at < ?2 GROUP BY s.step ORDER BY s.step",
    )?;
    let reminder_steps = stmt
        .query_map(params![start, end], |r| {
            let (step, sent, paid): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(StepConversion { step, sent, paid_within_7_days: paid, conversion: pct(paid, sent) })
        })?
        .collect::<rusqlite::Result<_>>()?;

    Ok(Report {
        from,
        to,
        invoices_due,
        invoices_due_paid,
        amount_due,
        amount_due_collected,
        collection_rate_by_count: pct(invoices_due_paid, invoices_due),
        collection_rate_by_amount: pct(amount_due_collected, amount_due),
        amount_collected,
        dso_days,
        average_days_to_pay,
        median_days_to_pay,
        aging,
        at_risk_share,
        cei,
        funnel,
        stk_outcomes,
        sources,
        reminder_steps,
    })
}

/// Countback DSO: walk back month by month from `to`, taking each month's sales off the receivables
/// until they are used up; full months count all their days, the last month its share.
fn countback_dso(conn: &Connection, to: NaiveDate, receivables: i64) -> Result<Option<f64>> {
    if receivables <= 0 {
        return Ok(Some(0.0));
    }
    let mut left = receivables as f64;
    let mut days = 0.0;
    let mut month_end = to;
    for _ in 0..36 {
        let month_start = NaiveDate::from_ymd_opt(month_end.year(), month_end.month(), 1).unwrap();
        let sales: i64 = conn.query_row(
            "SELECT COALESCE(SUM(amount), 0) FROM invoices WHERE issue_date BETWEEN ?1 AND ?2 AND status != 'cancelled'",
            params![month_start.to_string(), month_end.to_string()],
            |r| r.get(0),
        )?;
        let span = (month_end - month_start).num_days() as f64 + 1.0;
        if sales as f64 >= left {
            return Ok(Some(one(days + left / sales as f64 * span)));
        }
        left -= sales as f64;
        days += span;
        month_end = month_start - Duration::days(1);
    }
    Ok(None)
}

/// The funnel for the local days `from..=to`.
pub fn funnel(conn: &Connection, from: NaiveDate, to: NaiveDate, tz: chrono_tz::Tz) -> Result<Funnel> {
    funnel_between(conn, &day_end(from - Duration::days(1), tz), &day_end(to, tz))
}

fn funnel_between(conn: &Connection, start: &str, end: &str) -> Result<Funnel> {
    conn.query_row(
        "WITH reminded AS (SELECT DISTINCT customer_id FROM reminder_sends WHERE at >= ?1 AND at < ?2),
              replied AS (SELECT DISTINCT r.customer_id FROM reminded r JOIN conversations v ON v.customer_id = r.customer_id
                          JOIN messages m ON m.conversation_id = v.id WHERE m.direction = 'in' AND m.at >= ?1 AND m.at < ?2),
              attempts AS (SELECT a.* FROM payment_attempts a JOIN replied p ON p.customer_id = a.customer_id
                           WHERE a.origin = 'chat' AND a.created_at >= ?1 AND a.created_at < ?2)
         SELECT (SELECT COUNT(*) FROM reminded), (SELECT COUNT(*) FROM replied),
                (SELECT COUNT(DISTINCT customer_id) FROM attempts),
                (SELECT COUNT(DISTINCT customer_id) FROM attempts WHERE checkout_request_id IS NOT NULL),
                (SELECT COUNT(DISTINCT customer_id) FROM attempts WHERE state = 'paid')",
        params![start, end],
        |r| Ok(Funnel { reminded: r.get(0)?, replied: r.get(1)?, confirmed: r.get(2)?, pushed: r.get(3)?, paid: r.get(4)? }),
    )
    .map_err(Into::into)
}

/// The report as `metric,value` lines for a spreadsheet.
pub fn to_csv(r: &Report) -> String {
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut lines = vec![
        "metric,value".to_string(),
        format!("from,{}", r.from),
        format!("to,{}", r.to),
        format!("invoices_due,{}", r.invoices_due),
        format!("invoices_due_paid,{}", r.invoices_due_paid),
        format!("amount_due,{}", r.amount_due),
        format!("amount_due_collected,{}", r.amount_due_collected),
        format!("collection_rate_by_count_pct,{}", opt(r.collection_rate_by_count)),
        format!("collection_rate_by_amount_pct,{}", opt(r.collection_rate_by_amount)),
        format!("amount_collected,{}", r.amount_collected),
        format!("dso_days,{}", opt(r.dso_days)),
        format!("average_days_to_pay,{}", opt(r.average_days_to_pay)),
        format!("median_days_to_pay,{}", opt(r.median_days_to_pay)),
        format!("aging_current,{}", r.aging.current),
        format!("aging_1_30,{}", r.aging.days_1_30),
        format!("aging_31_60,{}", r.aging.days_31_60),
        format!("aging_61_90,{}", r.aging.days_61_90),
        format!("aging_over_90,{}", r.aging.days_over_90),
        format!("at_risk_share_pct,{}", opt(r.at_risk_share)),
        format!("cei_pct,{}", opt(r.cei)),
        format!("funnel_reminded,{}", r.funnel.reminded),
        format!("funnel_replied,{}", r.funnel.replied),
        format!("funnel_confirmed,{}", r.funnel.confirmed),
        format!("funnel_pushed,{}", r.funnel.pushed),
        format!("funnel_paid,{}", r.funnel.paid),
    ];
    for o in &r.stk_outcomes {
        lines.push(format!("stk_result_{},{}", o.result_code.map(|c| c.to_string()).unwrap_or_else(|| "none".into()), o.count));
    }
    for s in &r.sources {
        lines.push(format!("source_{}_count,{}", s.source, s.count));
        lines.push(format!("source_{}_amount,{}", s.source, s.amount));
    }
    for s in &r.reminder_steps {
        lines.push(format!("reminder_step_{}_sent,{}", s.step, s.sent));
        lines.push(format!("reminder_step_{}_paid_within_7_days,{}", s.step, s.paid_within_7_days));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
pub(crate) mod tests;
