//! Working hours in a technician's own time zone, turned into UTC intervals.
//!
//! A technician works `start..end` (minutes after local midnight) on the listed
//! weekdays, in an IANA time zone (`Europe/Berlin`, `Asia/Shanghai`). Matching asks
//! "when can this person start a job of N minutes that needs T minutes of travel": the
//! answer depends on the zone's offset on that date (daylight saving included), so the
//! schedule is expanded once per matching run into UTC intervals for the next days and
//! every question after that is a scan over a handful of integers.
//!
//! Pure: the current time is passed in. The zone database is compiled in (jiff's bundled
//! tzdb), so a server without `/usr/share/zoneinfo` computes the same answers.

use serde::{Deserialize, Serialize};

use crate::UnixMillis;

/// Weekly working hours in a named zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// IANA zone name.
    pub timezone: String,
    /// ISO weekdays worked, 1 = Monday ... 7 = Sunday.
    pub days: Vec<u8>,
    /// Start of the shift, minutes after local midnight.
    pub start_minute: u16,
    /// End of the shift, minutes after local midnight (after `start_minute`; shifts over
    /// midnight are written as two days).
    pub end_minute: u16,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours { timezone: "UTC".into(), days: vec![1, 2, 3, 4, 5], start_minute: 8 * 60, end_minute: 17 * 60 }
    }
}

impl WorkingHours {
    /// Checks the fields; returns the problem in words.
    pub fn validate(&self) -> Result<(), String> {
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            return Err(format!("`{}` is not a known IANA time zone", self.timezone));
        }
        if self.days.is_empty() || self.days.iter().any(|d| !(1..=7).contains(d)) {
            return Err("days must list ISO weekdays 1 (Monday) to 7 (Sunday)".into());
        }
        if self.start_minute >= self.end_minute || self.end_minute > 24 * 60 {
            return Err("start_minute must be before end_minute, both within one day (0..=1440)".into());
        }
        Ok(())
    }

    /// Expands the hours into UTC intervals `[start, end)` that end after `from` and
    /// start within `horizon_days` days of it, in order. An unknown zone yields none.
    pub fn expand(&self, from: UnixMillis, horizon_days: u32) -> Schedule {
        let mut out = Vec::new();
        let Ok(tz) = jiff::tz::TimeZone::get(&self.timezone) else { return Schedule(out) };
        let Ok(ts) = jiff::Timestamp::from_millisecond(from) else { return Schedule(out) };
        let today = ts.to_zoned(tz.clone()).date();
        // Start a day early: yesterday's shift may still be running in UTC terms.
        for offset in -1..=(horizon_days as i64) {
            let Ok(date) = today.checked_add(jiff::Span::new().days(offset)) else { continue };
            let weekday = date.weekday().to_monday_one_offset() as u8;
            if !self.days.contains(&weekday) {
                continue;
            }
            let at = |minute: u16| -> Option<UnixMillis> {
                // End of day (1440) is midnight of the next date. `at` panics on an
                // hour of 24, so that case never reaches it; validate() bounds the rest.
                let dt = if minute >= 24 * 60 {
                    date.tomorrow().ok()?.at(0, 0, 0, 0)
                } else {
                    date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
                };
                // In a DST gap the wall time does not exist: jiff's compatible strategy
                // moves it forward, which is what a shift starting then does too.
                Some(dt.to_zoned(tz.clone()).ok()?.timestamp().as_millisecond())
            };
            let (Some(s), Some(e)) = (at(self.start_minute), at(self.end_minute)) else { continue };
            if e > from && e > s {
                match out.last_mut() {
                    // Back-to-back shifts (a 24-hour day, or 00:00-24:00 every day) are one
                    // interval: a job may run across midnight.
                    Some((_, last_end)) if *last_end >= s => *last_end = (*last_end).max(e),
                    _ => out.push((s, e)),
                }
            }
        }
        Schedule(out)
    }
}

/// Working intervals in UTC milliseconds, ordered and disjoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule(pub Vec<(UnixMillis, UnixMillis)>);

impl Schedule {
    /// Always available (24/7 on-call), for tests and for technicians without hours.
    pub fn always() -> Schedule {
        Schedule(vec![(i64::MIN / 4, i64::MAX / 4)])
    }

    /// The earliest start `t >= now` such that `t .. t + minutes` lies inside one working
    /// interval (travel and the job are both working time), or None within the horizon.
    pub fn earliest_fit(&self, now: UnixMillis, minutes: u32) -> Option<UnixMillis> {
        let need = minutes as i64 * 60_000;
        self.0.iter().find_map(|&(s, e)| {
            let t = s.max(now);
            (t + need <= e).then_some(t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> UnixMillis {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn shanghai_hours_are_utc_plus_eight_and_weekends_are_skipped() {
        let h = WorkingHours { timezone: "Asia/Shanghai".into(), days: vec![1, 2, 3, 4, 5], start_minute: 9 * 60, end_minute: 18 * 60 };
        // Friday 2026-11-20 12:00 UTC = 20:00 in Shanghai: the shift is over.
        let s = h.expand(ms("2026-11-20T12:00:00Z"), 7);
        // Next start: Monday 2026-11-23 09:00 +08:00 = 01:00 UTC.
        assert_eq!(s.earliest_fit(ms("2026-11-20T12:00:00Z"), 60), Some(ms("2026-11-23T01:00:00Z")));
        // A 10-hour job never fits a 9-hour shift.
        assert_eq!(s.earliest_fit(ms("2026-11-20T12:00:00Z"), 600), None);
    }

    #[test]
    fn the_same_local_hours_move_in_utc_across_a_dst_change() {
        let h = WorkingHours { timezone: "Europe/Berlin".into(), days: vec![1, 2, 3, 4, 5, 6, 7], start_minute: 8 * 60, end_minute: 16 * 60 };
        // Saturday before the end of summer time (2026-10-25): 08:00 CEST = 06:00 UTC.
        let s = h.expand(ms("2026-10-24T00:00:00Z"), 3);
        assert_eq!(s.earliest_fit(ms("2026-10-24T00:00:00Z"), 30), Some(ms("2026-10-24T06:00:00Z")));
        // Monday after: 08:00 CET = 07:00 UTC.
        assert_eq!(s.earliest_fit(ms("2026-10-26T00:00:00Z"), 30), Some(ms("2026-10-26T07:00:00Z")));
    }

    #[test]
    fn a_job_that_does_not_fit_the_rest_of_today_starts_tomorrow() {
        let h = WorkingHours::default(); // UTC 08-17, Mon-Fri
        let now = ms("2026-11-18T15:30:00Z"); // Wednesday
        let s = h.expand(now, 7);
        assert_eq!(s.earliest_fit(now, 60), Some(now));
        assert_eq!(s.earliest_fit(now, 120), Some(ms("2026-11-19T08:00:00Z")));
    }

    #[test]
    fn bad_hours_are_refused_with_a_reason() {
        let mut h = WorkingHours::default();
        h.timezone = "Mars/Olympus".into();
        assert!(h.validate().unwrap_err().contains("Mars/Olympus"));
        assert!(h.expand(0, 7).0.is_empty());
        let h = WorkingHours { start_minute: 600, end_minute: 500, ..WorkingHours::default() };
        assert!(h.validate().is_err());
        let h = WorkingHours { days: vec![0], ..WorkingHours::default() };
        assert!(h.validate().is_err());
        let h = WorkingHours { start_minute: 0, end_minute: 1440, days: vec![1, 2, 3, 4, 5, 6, 7], ..WorkingHours::default() };
        assert!(h.validate().is_ok());
        assert_eq!(h.expand(ms("2026-11-18T15:30:00Z"), 1).earliest_fit(ms("2026-11-18T15:30:00Z"), 60), Some(ms("2026-11-18T15:30:00Z")));
    }
}
