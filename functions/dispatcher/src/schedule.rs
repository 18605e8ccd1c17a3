//! When to try again: the documented retry schedule, jitter, and the
//! receiver's `Retry-After`.

use chrono::{DateTime, Duration, Utc};

/// Delay before each attempt, the first being immediate: immediately, 5 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts over about 28 hours.
pub const DEFAULT_SCHEDULE_SECS: [i64; 8] = [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// Each delay varies by up to ±20 %, so receivers that failed together are
/// not hit again all at once.
pub const JITTER: f64 = 0.20;

/// A `Retry-After` longer than this is capped: the schedule still moves on.
pub const MAX_RETRY_AFTER_SECS: i64 = 12 * 3_600;

#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::new(
            DEFAULT_SCHEDULE_SECS
                .iter()
                .map(|&s| Duration::seconds(s))
                .collect(),
            JITTER,
        )
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>, jitter: f64) -> Self {
        Self {
            delays,
            jitter: jitter.clamp(0.0, 0.9),
        }
    }

    pub fn attempts(&self) -> usize {
        self.delays.len()
    }

    /// The delay before the next attempt after `failed` failed attempts, or
    /// `None` when the schedule is exhausted. `unit` in [0, 1) picks the
    /// jitter; `retry_after` from the receiver lengthens the delay (bounded).
    pub fn next_delay(
        &self,
        failed: u32,
        unit: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *self.delays.get(failed as usize)?;
        let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let jittered =
            Duration::milliseconds((base.num_milliseconds() as f64 * factor).round() as i64);
        let asked = retry_after
            .map(|d| d.min(Duration::seconds(MAX_RETRY_AFTER_SECS)))
            .unwrap_or_else(Duration::zero);
        Some(jittered.max(asked))
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3),
/// clamped to [0, [`MAX_RETRY_AFTER_SECS`]]. The value comes from a remote
/// server, so no value may panic: any run of digits, however long, is read
/// as "very long" and capped; a negative number or a past date is ignored or
/// zero.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let max = Duration::seconds(MAX_RETRY_AFTER_SECS);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: delta-seconds. Too long for an i64 is simply "too long".
        let secs = value.parse::<i64>().unwrap_or(i64::MAX);
        return Some(Duration::try_seconds(secs.min(MAX_RETRY_AFTER_SECS)).unwrap_or(max));
    }
    if value.starts_with('-') && value[1..].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    // Subtraction of two valid dates cannot overflow, but clamp all the same.
    let delta = date.signed_duration_since(now);
    Some(delta.clamp(Duration::zero(), max))
}

/// A uniform number in [0, 1) from the OS random source.
pub fn random_unit() -> f64 {
    let mut buf = [0u8; 8];
    getrandom::getrandom(&mut buf).expect("the OS random number generator is unavailable");
    (u64::from_le_bytes(buf) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_documented_schedule_within_jitter() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        // Middle of the jitter range: exactly the schedule.
        let mid: Vec<i64> = (0..8)
            .map(|i| s.next_delay(i, 0.5, None).unwrap().num_seconds())
            .collect();
        assert_eq!(mid, DEFAULT_SCHEDULE_SECS);
        assert_eq!(
            s.next_delay(8, 0.5, None),
            None,
            "exhausted after eight attempts"
        );
        let low = s.next_delay(2, 0.0, None).unwrap().num_seconds();
        let high = s.next_delay(2, 0.999_999, None).unwrap().num_seconds();
        assert_eq!((low, high), (240, 360), "5 min ± 20 %");
    }

    #[test]
    fn retry_after_lengthens_but_is_bounded() {
        let s = RetrySchedule::default();
        let asked = s.next_delay(1, 0.5, Some(Duration::seconds(120))).unwrap();
        assert_eq!(asked.num_seconds(), 120, "longer than the 5 s step");
        let shorter = s.next_delay(2, 0.5, Some(Duration::seconds(1))).unwrap();
        assert_eq!(
            shorter.num_seconds(),
            300,
            "never shorter than the schedule"
        );
        let capped = s.next_delay(1, 0.5, Some(Duration::days(30))).unwrap();
        assert_eq!(capped.num_seconds(), MAX_RETRY_AFTER_SECS);
    }

    #[test]
    fn parses_both_retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("120", now), Some(Duration::seconds(120)));
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 10:01:30 GMT", now),
            Some(Duration::seconds(90))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 09:00:00 GMT", now),
            Some(Duration::zero())
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn hostile_retry_after_values_are_clamped_never_panic() {
        let now = Utc::now();
        let max = Some(Duration::seconds(MAX_RETRY_AFTER_SECS));
        assert_eq!(parse_retry_after("9999999999999999", now), max);
        assert_eq!(parse_retry_after("99999999999999999999999999", now), max);
        assert_eq!(parse_retry_after(&i64::MAX.to_string(), now), max);
        assert_eq!(parse_retry_after("-9223372036854775808", now), None);
        assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), max);
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 1900 00:00:00 GMT", now),
            Some(Duration::zero())
        );
        let s = RetrySchedule::default();
        let d = s.next_delay(1, 0.5, max).unwrap();
        assert!(now.checked_add_signed(d).is_some());
    }

    #[test]
    fn random_units_are_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
