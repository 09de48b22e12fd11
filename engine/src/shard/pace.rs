//! Pacing to a rate: a connection's bytes (`[p2p] send_rate`, `recv_rate`) and a listener's
//! accepts (`[limits] max_accepts_per_second`, one token each). A token bucket that may run
//! into debt. Each write or read takes its bytes at once, whatever the balance; a
//! negative balance is the time to wait before the next one, so the average stays at the rate
//! and no write is split. On the read side the wait leaves the bytes in the kernel, so the
//! peer feels TCP backpressure.
//!
//! A connection's bucket holds a tenth of a second of its rate ([`BYTE_BURST_WINDOW`]), as
//! stock's MConnection does: its `flowrate` monitor lets `rate` × 100 ms bytes through per
//! 100 ms sample, so a block's parts (a few 64 KiB messages at stock's 5,120,000 B/s) go at
//! once after an idle moment instead of one every 13 ms.

use std::time::{Duration, Instant};

/// How much of its rate a connection may send or receive at once after an idle time: stock's
/// flowrate sample period.
const BYTE_BURST_WINDOW: Duration = Duration::from_millis(100);

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

    /// A byte limiter for one direction of a connection: `rate` bytes per second with bursts
    /// of [`BYTE_BURST_WINDOW`] of the rate, and at least `min_burst` (one whole write batch or
    /// read); `None` for a rate of 0 (unlimited).
    pub(crate) fn bytes(rate: u64, min_burst: usize, now: Instant) -> Option<Self> {
        let window = (rate as f64 * BYTE_BURST_WINDOW.as_secs_f64()) as usize;
        Self::new(rate, window.max(min_burst), now)
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
    fn a_connection_bursts_a_tenth_of_a_second_of_its_rate() {
        let t0 = Instant::now();
        // Stock's default rate: 512,000 bytes at once, then the rate.
        let mut p = Pace::bytes(5_120_000, 32 * 1024, t0).unwrap();
        for _ in 0..7 {
            assert_eq!(p.take(65_695, t0), Duration::ZERO);
        }
        assert!(p.take(65_695, t0) > Duration::ZERO);
        // A slow rate still lets one whole write batch or read go.
        let mut p = Pace::bytes(1_000, 32 * 1024, t0).unwrap();
        assert_eq!(p.take(32 * 1024, t0), Duration::ZERO);
        assert!(p.take(1, t0) > Duration::ZERO);
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
