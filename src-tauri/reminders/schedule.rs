//! Schedule maths for payment reminders, pure: which reminder step is due for an invoice on a day,
//! and when exactly it goes out in the merchant's timezone (send time, quiet hours, no Sundays).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The merchant's reminder rules. Stored in settings; these defaults suit most shops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderPolicy {
    pub enabled: bool,
    /// Days relative to the due date: −3 is three days before, 0 the due date, 7 a week late.
    pub steps: Vec<i32>,
    /// After the last step, remind again every this many days…
    pub repeat_every_days: u32,
    /// …at most this many more times.
    pub max_repeats: u32,
    /// Local time of day reminders go out.
    pub send_at: NaiveTime,
    /// No reminder between these local times (may wrap midnight).
    pub quiet_from: NaiveTime,
    pub quiet_until: NaiveTime,
    pub skip_sundays: bool,
}

impl Default for ReminderPolicy {
    fn default() -> Self {
        ReminderPolicy {
            enabled: true,
            steps: vec![-3, 0, 3, 7],
            repeat_every_days: 7,
            max_repeats: 4,
            send_at: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            quiet_from: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            quiet_until: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            skip_sundays: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("add at least one reminder step")]
    NoSteps,
    #[error("reminder steps must go from earliest to latest without repeats")]
    Unordered,
    #[error("a step of {0} days is too far from the due date (at most a year either way)")]
    TooFar(i32),
    #[error("the send time {0} falls in the quiet hours")]
    SendInQuietHours(NaiveTime),
    #[error("repeat every at least 1 day")]
    ZeroRepeat,
}

impl ReminderPolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.steps.is_empty() {
            return Err(PolicyError::NoSteps);
        }
        if self.steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(PolicyError::Unordered);
        }
        if let Some(s) = self.steps.iter().find(|s| s.abs() > 366) {
            return Err(PolicyError::TooFar(*s));
        }
        if self.is_quiet(self.send_at) {
            return Err(PolicyError::SendInQuietHours(self.send_at));
        }
        if self.repeat_every_days == 0 && self.max_repeats > 0 {
            return Err(PolicyError::ZeroRepeat);
        }
        Ok(())
    }

    /// How many steps there are in all, repeats included.
    pub fn step_count(&self) -> usize {
        self.steps.len() + self.max_repeats as usize
    }

    /// The day step `n` falls on for an invoice due on `due`, before Sunday and quiet-hour moves.
    pub fn step_day(&self, due: NaiveDate, n: usize) -> Option<NaiveDate> {
        let offset = match self.steps.get(n) {
            Some(d) => *d as i64,
            None => {
                let k = (n - self.steps.len()) as i64 + 1;
                if k > self.max_repeats as i64 {
                    return None;
                }
                *self.steps.last()? as i64 + k * self.repeat_every_days as i64
            }
        };
        Some(due + Duration::days(offset))
    }

    /// The day a step is actually sent: a Sunday moves to Monday when Sundays are skipped.
    pub fn send_day(&self, day: NaiveDate) -> NaiveDate {
        if self.skip_sundays && day.weekday() == Weekday::Sun {
            day + Duration::days(1)
        } else {
            day
        }
    }

    fn is_quiet(&self, t: NaiveTime) -> bool {
        if self.quiet_from <= self.quiet_until {
            t >= self.quiet_from && t < self.quiet_until
        } else {
            t >= self.quiet_from || t < self.quiet_until
        }
    }

    /// The latest step due on `today` or before that was not sent yet (`sent` steps were). After the
    /// app was closed for days this is only the newest step: never a burst of the missed ones.
    pub fn due_step(&self, due: NaiveDate, sent: Option<usize>, today: NaiveDate) -> Option<usize> {
        let first_unsent = sent.map(|s| s + 1).unwrap_or(0);
        (first_unsent..self.step_count()).take_while(|n| self.step_day(due, *n).is_some_and(|d| self.send_day(d) <= today)).last()
    }

    /// When the next reminder for this invoice may go out, after `sent`: the instant in UTC.
    pub fn next_send(&self, due: NaiveDate, sent: Option<usize>, tz: Tz) -> Option<DateTime<Utc>> {
        let n = sent.map(|s| s + 1).unwrap_or(0);
        let day = self.send_day(self.step_day(due, n)?);
        Some(self.local_send_time(day, tz))
    }

    /// `day` at the send time in the merchant's timezone.
    pub fn local_send_time(&self, day: NaiveDate, tz: Tz) -> DateTime<Utc> {
        let local = day.and_time(self.send_at);
        // Nairobi, Dar and Kampala have no DST; elsewhere take the earlier of an ambiguous time.
        tz.from_local_datetime(&local).earliest().unwrap_or_else(|| tz.from_utc_datetime(&local)).with_timezone(&Utc)
    }

    /// Whether a reminder may go out at `now` (the local time is past the send time and not quiet).
    pub fn may_send_now(&self, now: DateTime<Utc>, tz: Tz) -> bool {
        let local = now.with_timezone(&tz);
        self.enabled && local.time() >= self.send_at && !self.is_quiet(local.time()) && !(self.skip_sundays && local.weekday() == Weekday::Sun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn steps_fall_relative_to_the_due_date_then_repeat() {
        let p = ReminderPolicy::default();
        let due = d(2026, 12, 10);
        let days: Vec<_> = (0..p.step_count()).filter_map(|n| p.step_day(due, n)).collect();
        assert_eq!(days, [d(2026, 12, 7), d(2026, 12, 10), d(2026, 12, 13), d(2026, 12, 17), d(2026, 12, 24), d(2026, 12, 31), d(2027, 1, 7), d(2027, 1, 14)]);
        assert_eq!(p.step_day(due, 8), None, "stops after the repeats");
    }

    #[test]
    fn month_ends_and_year_ends_are_plain_day_arithmetic() {
        let p = ReminderPolicy { steps: vec![-3, 0, 3], ..ReminderPolicy::default() };
        assert_eq!(p.step_day(d(2027, 3, 1), 0), Some(d(2027, 2, 26)));
        assert_eq!(p.step_day(d(2028, 2, 28), 2), Some(d(2028, 3, 2)), "leap year");
        assert_eq!(p.step_day(d(2026, 12, 30), 2), Some(d(2027, 1, 2)));
    }

    #[test]
    fn after_days_closed_only_the_latest_due_step_is_sent() {
        let p = ReminderPolicy::default();
        let due = d(2026, 12, 10);
        // Nothing sent; the app reopens on the 18th: steps −3, 0, +3 and +7 are all past.
        assert_eq!(p.due_step(due, None, d(2026, 12, 18)), Some(3));
        assert_eq!(p.due_step(due, Some(3), d(2026, 12, 18)), None);
        assert_eq!(p.due_step(due, None, d(2026, 12, 6)), None, "too early");
        assert_eq!(p.due_step(due, None, d(2026, 12, 7)), Some(0));
    }

    #[test]
    fn sundays_move_to_monday_when_skipped() {
        let p = ReminderPolicy { steps: vec![0], max_repeats: 0, ..ReminderPolicy::default() };
        let sunday = d(2026, 12, 6);
        assert_eq!(sunday.weekday(), Weekday::Sun);
        assert_eq!(p.due_step(sunday, None, sunday), None);
        assert_eq!(p.due_step(sunday, None, d(2026, 12, 7)), Some(0));
        let nairobi = chrono_tz::Africa::Nairobi;
        assert_eq!(p.next_send(sunday, None, nairobi).unwrap(), Utc.with_ymd_and_hms(2026, 12, 7, 6, 0, 0).unwrap(), "09:00 Nairobi = 06:00 UTC");
    }

    #[test]
    fn reminders_wait_for_the_send_time_and_respect_quiet_hours() {
        let p = ReminderPolicy::default();
        let nairobi = chrono_tz::Africa::Nairobi;
        let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 8, h, m, 0).unwrap(); // a Tuesday
        assert!(!p.may_send_now(at(5, 59), nairobi), "08:59 Nairobi is before the send time");
        assert!(p.may_send_now(at(6, 0), nairobi));
        assert!(!p.may_send_now(at(17, 30), nairobi), "20:30 Nairobi is quiet");
        assert!(!p.may_send_now(Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap(), nairobi), "Sunday");
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        let base = ReminderPolicy::default();
        assert_eq!(ReminderPolicy { steps: vec![], ..base.clone() }.validate(), Err(PolicyError::NoSteps));
        assert_eq!(ReminderPolicy { steps: vec![3, 0], ..base.clone() }.validate(), Err(PolicyError::Unordered));
        assert!(matches!(ReminderPolicy { send_at: NaiveTime::from_hms_opt(21, 0, 0).unwrap(), ..base.clone() }.validate(), Err(PolicyError::SendInQuietHours(_))));
        assert_eq!(base.validate(), Ok(()));
    }

    proptest! {
        /// Whatever the rules and the day the app wakes, at most one step is due, it is never one
        /// already sent, and never a day in the future.
        #[test]
        fn one_step_at_most_never_resent_never_early(
            due_offset in -400i64..400, wake in 0i64..500, sent in prop::option::of(0usize..10),
            steps in prop::collection::btree_set(-30i32..60, 1..6), repeat in 1u32..15, max in 0u32..6,
        ) {
            let p = ReminderPolicy { steps: steps.into_iter().collect(), repeat_every_days: repeat, max_repeats: max, ..ReminderPolicy::default() };
            let due = d(2026, 12, 1) + Duration::days(due_offset);
            let today = d(2026, 1, 1) + Duration::days(wake);
            if let Some(n) = p.due_step(due, sent, today) {
                prop_assert!(sent.is_none_or(|s| n > s));
                prop_assert!(p.send_day(p.step_day(due, n).unwrap()) <= today);
                prop_assert!(p.due_step(due, Some(n), today).is_none(), "nothing else is due the same day");
            }
        }
    }
}
