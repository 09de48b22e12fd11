//! Pacing to a rate: a connection's bytes (`[p2p] send_rate`, `recv_rate`) and a listener's
//! accepts (`[limits] max_accepts_per_second`, one token each). A token bucket that may run
//! into debt. Each write or read takes its bytes at once, whatever the balance; a
//! negative balance is the time to wait before the next one, so the average stays at the rate
//! and no write is split. On the read side the wait leaves the bytes in the kernel, so the
//! peer feels TCP backpressure.

use std::time::{Duration, Instant};

/// A byte-rate limiter for one direction of one connection.
#[derive(Debug)]
pub(crate) struct Pace {
    /// Bytes per second.
    rate: f64,
    /// Most bytes that may go at once after an idle time.
    burst: f64,
    /// Bytes that may go now (negative: owed).
    balance: f64,
    at: Instant,
}

impl Pace {
    /// A limiter of `rate` bytes per second with bursts of `burst` bytes; `None` for a rate of
    /// 0 (unlimited).
    pub(crate) fn new(rate: u64, burst: usize, now: Instant) -> Option<Self> {
        (rate > 0).then(|| Pace {
            rate: rate as f64,
            burst: burst.max(1) as f64,
            balance: burst.max(1) as f64,
            at: now,
        })
    }

    /// Takes `bytes`; returns how long to wait before the next bytes may go.
    pub(crate) fn take(&mut self, bytes: usize, now: Instant) -> Duration {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.at = now;
        self.balance = (self.balance + earned).min(self.burst) - bytes as f64;
        if self.balance >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.balance / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_unlimited() {
        assert!(Pace::new(0, 1024, Instant::now()).is_none());
    }

    #[test]
    fn a_burst_goes_at_once_and_debt_is_waited_off_at_the_rate() {
        let t0 = Instant::now();
        let mut p = Pace::new(1000, 500, t0).unwrap();
        assert_eq!(p.take(500, t0), Duration::ZERO);
        // 1000 more bytes owed at 1000 B/s: one second.
        assert_eq!(p.take(1000, t0), Duration::from_secs(1));
        // After that second the balance is back to zero: the next 100 bytes wait 0.1 s.
        let wait = p.take(100, t0 + Duration::from_secs(1));
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn idle_time_earns_at_most_one_burst() {
        let t0 = Instant::now();
        let mut p = Pace::new(1000, 500, t0).unwrap();
        let later = t0 + Duration::from_secs(60);
        assert_eq!(p.take(500, later), Duration::ZERO);
        assert!(p.take(1, later) > Duration::ZERO);
    }
}
