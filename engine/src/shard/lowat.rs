//! `TCP_NOTSENT_LOWAT` that follows a connection's send rate.
//!
//! The option bounds the bytes a connection's socket holds unsent, which is what an urgent
//! message written now waits behind before the kernel sends it. A fixed number of bytes is a
//! fixed wait only at one rate: the default 16 KiB is 2.6 ms at 50 Mbit/s but 7 µs on
//! loopback at 2.3 GB/s, where the shard is then woken for every 16 KiB the kernel drains and
//! spends its time on wake-ups (quick S1 runs: 1,742–2,030 MB/s with 16 KiB, 2,378–2,661 MB/s
//! with 64 KiB, S3's loaded p99 unchanged; docs/PERFORMANCE.md, "Unsent bytes bounded in
//! time"). So the bound is `Limits::tcp_notsent_lowat` bytes or [`UNSENT_TIME`] of the
//! connection's measured rate, whichever is larger, and never above [`MAX_LOWAT`]: on links
//! slower than 512 MB/s nothing changes.

use std::time::{Duration, Instant};

/// How long the unsent bytes may take to leave at the connection's measured rate.
pub(crate) const UNSENT_TIME: Duration = Duration::from_micros(32);

/// The most unsent bytes the rate can raise the bound to.
pub(crate) const MAX_LOWAT: u32 = 256 * 1024;

/// The rate is measured over writes spanning at least this long.
const MEASURE: Duration = Duration::from_millis(5);

/// The clock is read once this many bytes were written since the last reading: small writes
/// (many a second when messages are small) do not each pay for one.
const CHECK_BYTES: u64 = 64 * 1024;

/// Bounds are set in steps of this many bytes, so small changes of the rate do not cost a
/// system call each.
const STEP: u32 = 16 * 1024;

/// The bound one connection's socket has, and its send rate being measured.
#[derive(Debug)]
pub(crate) struct RateLowat {
    base: u32,
    current: u32,
    since: Instant,
    bytes: u64,
}

impl RateLowat {
    /// A connection whose socket was given `base` (`Limits::tcp_notsent_lowat`, not 0).
    pub(crate) fn new(base: u32, now: Instant) -> Self {
        Self {
            base,
            current: base,
            since: now,
            bytes: 0,
        }
    }

    /// Counts a write of `n` bytes; returns the bound the socket should get when it changes.
    /// `now` is read only when the bytes since the last reading reach [`CHECK_BYTES`].
    pub(crate) fn wrote(&mut self, n: usize, now: impl FnOnce() -> Instant) -> Option<u32> {
        let before = self.bytes;
        self.bytes = self.bytes.saturating_add(n as u64);
        if self.bytes / CHECK_BYTES == before / CHECK_BYTES {
            return None;
        }
        let now = now();
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < MEASURE {
            return None;
        }
        // Bytes per UNSENT_TIME at the rate of this span (an idle gap inside it lowers it).
        let per_unsent =
            u128::from(self.bytes) * UNSENT_TIME.as_nanos() / elapsed.as_nanos().max(1);
        self.since = now;
        self.bytes = 0;
        let wanted = u32::try_from(per_unsent).unwrap_or(u32::MAX);
        let target = wanted
            .div_ceil(STEP)
            .saturating_mul(STEP)
            .clamp(self.base, MAX_LOWAT.max(self.base));
        (target != self.current).then(|| {
            self.current = target;
            target
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `rate` bytes per second in 256 KiB writes for `span`, from `now`.
    fn run(l: &mut RateLowat, now: &mut Instant, rate: u64, span: Duration) -> Option<u32> {
        let write = 256 * 1024u64;
        let gap = Duration::from_nanos(write * 1_000_000_000 / rate);
        let end = *now + span;
        let mut last = None;
        while *now < end {
            *now += gap;
            if let Some(b) = l.wrote(write as usize, || *now) {
                last = Some(b);
            }
        }
        last
    }

    #[test]
    fn a_fast_connection_gets_32_microseconds_of_its_rate_and_an_idle_one_the_base_again() {
        let mut now = Instant::now();
        let mut l = RateLowat::new(16 * 1024, now);
        // 2 GB/s: 32 µs is 64,000 bytes, set in 16 KiB steps.
        let fast = run(&mut l, &mut now, 2_000_000_000, Duration::from_millis(20));
        assert_eq!(fast, Some(64 * 1024));
        assert_eq!(
            run(&mut l, &mut now, 2_000_000_000, Duration::from_millis(20)),
            None,
            "no system call while the rate holds"
        );
        // 50 GB/s would want 1.6 MB: capped.
        let capped = run(&mut l, &mut now, 50_000_000_000, Duration::from_millis(20));
        assert_eq!(capped, Some(MAX_LOWAT));
        // A write after a second of silence: the span's rate is low, back to the base.
        now += Duration::from_secs(1);
        assert_eq!(l.wrote(CHECK_BYTES as usize, || now), Some(16 * 1024));
    }

    #[test]
    fn slower_than_512_megabytes_a_second_the_base_holds() {
        let mut now = Instant::now();
        let mut l = RateLowat::new(16 * 1024, now);
        assert_eq!(
            run(&mut l, &mut now, 400_000_000, Duration::from_millis(50)),
            None
        );
        let mut big = RateLowat::new(1 << 20, now);
        assert_eq!(
            run(
                &mut big,
                &mut now,
                50_000_000_000,
                Duration::from_millis(20)
            ),
            None,
            "a base above the cap is never lowered"
        );
    }
}
