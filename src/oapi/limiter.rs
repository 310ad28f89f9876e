//! A client-side rate limit, as every OUTSCALE SDK keeps one (5 requests per
//! second by default), so a busy apply does not run into the per-account
//! throttling in the first place.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a background request lets the others go first, at the most.
const MAX_YIELD: Duration = Duration::from_secs(5);

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A token bucket: `burst` requests at once, refilled at `rate` per second.
/// Background requests (tagging) let the others go first.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
    /// Requests waiting for a token that background ones yield to.
    waiting: AtomicUsize,
}

impl RateLimiter {
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Waits until one request may be sent.
    pub async fn acquire(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Counted out however the wait ends (its caller may give up).
        let _waiting = Waiting(&self.waiting);
        self.take(false).await;
    }

    /// Waits until one request may be sent and no other waits for it, for
    /// a while: then it takes its turn like any other.
    pub async fn acquire_background(&self) {
        self.take(true).await;
    }

    async fn take(&self, background: bool) {
        let since = Instant::now();
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                if background
                    && self.waiting.load(Ordering::SeqCst) > 0
                    && since.elapsed() < MAX_YIELD
                {
                    drop(state);
                    tokio::time::sleep(Duration::from_secs_f64(1.0 / self.rate)).await;
                    continue;
                }
                let now = Instant::now();
                let refill = now.duration_since(state.1).as_secs_f64() * self.rate;
                state.0 = (state.0 + refill).min(self.burst);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn background_requests_let_the_others_go_first() {
        let limiter = std::sync::Arc::new(RateLimiter::new(5.0, 1));
        limiter.acquire().await;
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let spawn = |name: &'static str, background: bool| {
            let (limiter, order) = (limiter.clone(), order.clone());
            tokio::spawn(async move {
                if background {
                    limiter.acquire_background().await;
                } else {
                    limiter.acquire().await;
                }
                order.lock().unwrap().push(name);
            })
        };
        let tag = spawn("tag", true);
        tokio::task::yield_now().await;
        let create = spawn("create", false);
        tag.await.unwrap();
        create.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["create", "tag"]);
    }

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_after_the_burst() {
        let limiter = RateLimiter::new(5.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..5 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed < Duration::from_millis(1100),
            "{elapsed:?}"
        );
    }
}
