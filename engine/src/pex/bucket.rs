//! A token bucket on explicit time: how many addresses one peer may still hand this node.

use std::time::Instant;

/// Holds up to `burst` tokens, refilled at `rate` per second; starts full.
#[derive(Clone, Debug)]
pub(super) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens at `now`.
    pub(super) fn full(burst: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes up to `want` whole tokens at `now` (after refilling at `rate` per second, up to
    /// `burst`); returns how many it took.
    pub(super) fn take(&mut self, want: usize, rate: f64, burst: u32, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let refill = elapsed * rate;
        if refill.is_finite() && refill > 0.0 {
            self.tokens = (self.tokens + refill).min(f64::from(burst));
        }
        // `tokens` is within [0, burst], so the cast is exact.
        let whole = self.tokens.floor().max(0.0) as usize;
        let taken = whole.min(want);
        self.tokens -= taken as f64;
        taken
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_rate() {
        let t = Instant::now();
        let mut b = TokenBucket::full(5, t);
        assert_eq!(b.take(3, 0.5, 5, t), 3);
        assert_eq!(b.take(10, 0.5, 5, t), 2, "the rest of the burst");
        assert_eq!(b.take(10, 0.5, 5, t), 0, "empty");
        // 0.5 per second: one token after 2 s, none more at 3 s.
        assert_eq!(b.take(10, 0.5, 5, t + Duration::from_secs(2)), 1);
        assert_eq!(b.take(10, 0.5, 5, t + Duration::from_secs(3)), 0);
        // A long pause refills to the burst, not beyond.
        assert_eq!(b.take(100, 0.5, 5, t + Duration::from_secs(3600)), 5);
        // Time going backwards takes nothing and refills nothing.
        assert_eq!(b.take(1, 0.5, 5, t), 0);
    }
}
