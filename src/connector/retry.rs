//! When to try again: exponential backoff with full jitter between attempts, and
//! the service's own `Retry-After` (seconds or an HTTP date) when it sends one.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::spec::common::RetrySpec;

/// `Retry-After` delays up to this long (or the retry policy's `max_backoff`, if
/// longer) are waited for; a longer one ends the call as `Throttled`.
const MAX_HONOURED_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    attempts: u32,
    initial: Duration,
    max: Duration,
}

impl RetryPolicy {
    /// From the connection's `retry` (defaults: 5 attempts, 500ms doubling to 1m).
    pub(crate) fn new(spec: Option<&RetrySpec>) -> RetryPolicy {
        let d = |v: Option<&crate::spec::common::Duration>, default| {
            v.and_then(|d| d.to_std()).unwrap_or(default)
        };
        RetryPolicy {
            attempts: spec.and_then(|s| s.attempts).unwrap_or(5).clamp(1, 100),
            initial: d(
                spec.and_then(|s| s.initial_backoff.as_ref()),
                Duration::from_millis(500),
            ),
            max: d(
                spec.and_then(|s| s.max_backoff.as_ref()),
                Duration::from_secs(60),
            ),
        }
    }

    /// Total attempts, the first included.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The longest `Retry-After` waited for.
    pub(crate) fn longest_wait(&self) -> Duration {
        MAX_HONOURED_RETRY_AFTER.max(self.max)
    }

    /// Full jitter: uniform in `[0, min(max, initial * 2^(n-1))]` before retry `n`.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(30));
        let cap = self.initial.saturating_mul(factor).min(self.max);
        let unit = (uuid::Uuid::new_v4().as_u128() % 1_000_001) as f64 / 1_000_000.0;
        cap.mul_f64(unit)
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_is_capped_and_retry_after_parses() {
        let policy = RetryPolicy::new(Some(&RetrySpec {
            attempts: Some(4),
            initial_backoff: Some(crate::spec::common::Duration("100ms".into())),
            max_backoff: Some(crate::spec::common::Duration("250ms".into())),
        }));
        assert_eq!(policy.attempts(), 4);
        for retry in 1..10 {
            assert!(policy.backoff(retry) <= Duration::from_millis(250));
        }
        assert!(policy.backoff(1) <= Duration::from_millis(100));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
