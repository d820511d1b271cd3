//! When a failed attempt may be sent again, and how long to wait first.
//!
//! The whole rule set is [`verdict`]: a pure function of what happened and
//! whether the action is idempotent. The request loop in `client.rs` only
//! applies it and the budget in [`RetryPolicy`].

use std::time::{Duration, SystemTime};

use rand::Rng;

/// How many times, and for how long, a request may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = never retry).
    pub max_attempts: u32,
    /// No retry starts once this much time has passed since the first attempt,
    /// and none is scheduled whose wait would end past it.
    pub max_elapsed: Duration,
    /// The first backoff step (without `Retry-After`).
    pub base_delay: Duration,
    /// The longest backoff step (a `Retry-After` is honoured as given, within `max_elapsed`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts within 60 s, backoff from 250 ms up to 20 s.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// A policy that sends every request once.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The jittered exponential backoff before retry number `retry` (1 = the
    /// first retry): a random duration between half and all of
    /// `min(max_delay, base_delay * 2^(retry-1))`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    fn backoff_ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        self.base_delay.saturating_mul(1 << doublings).min(self.max_delay)
    }

    /// How long to wait before retry number `retry`, or `None` when the
    /// attempts or the time budget are spent. `retry_after` (from the response)
    /// replaces the backoff; if it would end past `max_elapsed` there is no retry.
    pub(crate) fn wait_before(&self, retry: u32, retry_after: Option<Duration>, elapsed: Duration) -> Option<Duration> {
        if retry >= self.max_attempts {
            return None;
        }
        let wait = retry_after.unwrap_or_else(|| self.backoff(retry));
        (elapsed.saturating_add(wait) <= self.max_elapsed).then_some(wait)
    }
}

/// Whether sending a request twice has the same effect as sending it once.
///
/// Every action declares one; it alone decides whether an ambiguous failure
/// may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Idempotency {
    /// GET, DELETE, keepAlive: safe to re-send after a timeout or 5xx.
    Idempotent,
    /// Every other POST (create, answer, transfer, ...): an ambiguous failure
    /// becomes [`crate::GraphClientError::OutcomeUnknown`], never a re-send.
    NonIdempotent,
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    /// Graph answered with this status.
    Status(u16),
    /// No answer within the request timeout; Graph may have acted.
    Timeout,
    /// The connection could not be opened: Graph never saw the request.
    NotSent,
    /// The connection failed once the request may have been sent.
    Interrupted,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Return this result (success, or Graph's definite answer).
    Finish,
    /// Safe to send again, after `Retry-After` or a backoff, within the budget.
    Retry,
    /// The token was refused: fetch a new one and send again (once).
    Reauthenticate,
    /// Graph may have acted and the action is not idempotent: never re-send.
    OutcomeUnknown,
}

/// The retry rules.
///
/// | outcome                          | idempotent | not idempotent  |
/// |----------------------------------|------------|-----------------|
/// | 2xx, 4xx (not 401/429)           | finish     | finish          |
/// | 401                              | new token  | new token       |
/// | 429, 503 (not processed)         | retry      | retry           |
/// | connection refused (not sent)    | retry      | retry           |
/// | other 5xx, timeout, cut off      | retry      | outcome unknown |
pub(crate) fn verdict(outcome: AttemptOutcome, idempotency: Idempotency) -> Verdict {
    let ambiguous = match idempotency {
        Idempotency::Idempotent => Verdict::Retry,
        Idempotency::NonIdempotent => Verdict::OutcomeUnknown,
    };
    match outcome {
        AttemptOutcome::Status(401) => Verdict::Reauthenticate,
        AttemptOutcome::Status(429 | 503) | AttemptOutcome::NotSent => Verdict::Retry,
        AttemptOutcome::Status(status) if status >= 500 => ambiguous,
        AttemptOutcome::Status(_) => Verdict::Finish,
        AttemptOutcome::Timeout | AttemptOutcome::Interrupted => ambiguous,
    }
}

/// Parses `Retry-After`: seconds, possibly fractional (Graph sends `2.128`),
/// or an HTTP date. A date in the past means no wait; anything else unreadable
/// is ignored (`None`, so the backoff applies).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_fractional_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("2.128", now), Some(Duration::from_millis(2128)));
        assert_eq!(parse_retry_after(" 0.2 ", now), Some(Duration::from_millis(200)));
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_takes_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_887_151); // Tue, 15 Nov 1994 08:12:31 GMT
        assert_eq!(
            parse_retry_after("Tue, 15 Nov 1994 08:12:41 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Tue, 15 Nov 1994 08:12:21 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn unreadable_retry_after_is_ignored() {
        let now = SystemTime::now();
        for bad in ["", "soon", "-1", "NaN", "inf", "1e400"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let policy = RetryPolicy {
            max_attempts: 50,
            max_elapsed: Duration::from_secs(3600),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..200 {
            for (retry, ceiling_ms) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)] {
                let wait = policy.backoff(retry);
                let ceiling = Duration::from_millis(ceiling_ms);
                assert!(wait <= ceiling && wait >= ceiling / 2, "retry {retry}: {wait:?}");
            }
        }
    }

    #[test]
    fn budget_bounds_attempts_and_elapsed_time() {
        let policy = RetryPolicy {
            max_attempts: 3,
            max_elapsed: Duration::from_secs(10),
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        };
        let hint = Some(Duration::from_secs(2));
        assert_eq!(policy.wait_before(1, hint, Duration::ZERO), hint);
        assert_eq!(policy.wait_before(2, hint, Duration::from_secs(8)), hint);
        assert_eq!(
            policy.wait_before(2, hint, Duration::from_secs(9)),
            None,
            "past max_elapsed"
        );
        assert_eq!(policy.wait_before(3, hint, Duration::ZERO), None, "attempts spent");
        assert_eq!(RetryPolicy::never().wait_before(1, None, Duration::ZERO), None);
    }

    #[test]
    fn ambiguous_failures_are_retried_only_when_idempotent() {
        use AttemptOutcome::*;
        use Idempotency::*;
        for outcome in [Status(500), Status(502), Status(504), Timeout, Interrupted] {
            assert_eq!(verdict(outcome, Idempotent), Verdict::Retry, "{outcome:?}");
            assert_eq!(verdict(outcome, NonIdempotent), Verdict::OutcomeUnknown, "{outcome:?}");
        }
        for outcome in [Status(429), Status(503), NotSent] {
            assert_eq!(verdict(outcome, NonIdempotent), Verdict::Retry, "{outcome:?}");
            assert_eq!(verdict(outcome, Idempotent), Verdict::Retry, "{outcome:?}");
        }
        for status in [200, 201, 202, 204, 400, 403, 404, 409] {
            assert_eq!(verdict(Status(status), NonIdempotent), Verdict::Finish);
        }
        assert_eq!(verdict(Status(401), NonIdempotent), Verdict::Reauthenticate);
    }
}
