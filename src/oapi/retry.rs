//! When and how long to wait before sending a failed request again
//! (`reference/oapi.md` §5).

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter: `min(base * 2^attempt + U(0, jitter), max)`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub jitter: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_secs(1),
            jitter: Duration::from_secs(3),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, `attempt` counting from 0.
    /// A `Retry-After` from the server wins when it asks for longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::thread_rng().gen_range(Duration::ZERO..=self.jitter)
        };
        let computed = (exp + jitter).min(self.max_delay);
        match retry_after {
            Some(ra) => ra.min(self.max_delay).max(computed),
            None => computed,
        }
    }
}

/// What a failed attempt allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send again after the backoff.
    Retry,
    /// Give up and report the error.
    Fail,
}

/// Classifies a failed attempt. `status` is `None` for a transport error.
///
/// Throttling (429, and 503 with code 6) means the request was refused before
/// it ran, so anything may be sent again. A 5xx or a lost connection may hide
/// a request that did run, so only requests that cannot duplicate a resource
/// are sent again. 401 is never retried: repeated bad signatures lock the key.
pub fn classify(status: Option<u16>, throttled: bool, retry_safe: bool) -> Verdict {
    match status {
        _ if throttled => Verdict::Retry,
        None | Some(500 | 502 | 503 | 504) if retry_safe => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            jitter: Duration::ZERO,
            max_delay: Duration::from_millis(500),
        };
        assert_eq!(p.delay(0, None), Duration::from_millis(100));
        assert_eq!(p.delay(1, None), Duration::from_millis(200));
        assert_eq!(p.delay(2, None), Duration::from_millis(400));
        assert_eq!(p.delay(3, None), Duration::from_millis(500));
        assert_eq!(
            p.delay(0, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(9))),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let d = p.delay(0, None);
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }

    #[test]
    fn what_is_retried() {
        assert_eq!(classify(Some(429), true, false), Verdict::Retry);
        assert_eq!(classify(Some(503), true, false), Verdict::Retry);
        assert_eq!(classify(Some(500), false, true), Verdict::Retry);
        assert_eq!(classify(Some(500), false, false), Verdict::Fail);
        assert_eq!(classify(None, false, true), Verdict::Retry);
        assert_eq!(classify(None, false, false), Verdict::Fail);
        assert_eq!(classify(Some(401), false, true), Verdict::Fail);
        assert_eq!(classify(Some(400), false, true), Verdict::Fail);
        assert_eq!(classify(Some(409), false, true), Verdict::Fail);
    }
}
