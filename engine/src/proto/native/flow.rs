//! Per-channel credit-based flow control.
//!
//! Policy (docs/PROTOCOL.md, "Flow control"):
//! - A DATA frame costs its chunk length plus [`DATA_CREDIT_OVERHEAD`] (64) bytes of credit: no
//!   frame is free, and the overhead stands for the receiver's per-message bookkeeping, so the
//!   window bounds how many messages can wait as well as their bytes. Each side announces an
//!   initial window (at least 1024) per channel in its HELLO.
//! - A sender never sends a chunk that costs more than its remaining credit ([`SendWindow`]); a
//!   WINDOW_UPDATE that would grow the credit past [`MAX_WINDOW`] is a flow-control error.
//! - A receiver ([`RecvWindow`]) rejects a chunk that costs more than the credit it granted,
//!   and returns credit when the bytes leave its memory: when the application takes the message
//!   that holds them. So that a message larger than the window can always complete, chunks of
//!   a message still being reassembled are credited on receipt while no complete message waits
//!   on that channel; once the application takes the last waiting message, the credit held for
//!   the unfinished message is returned too. Memory per channel is thus at most one maximal
//!   message plus one window, whatever the application does; the driver never has to stop
//!   reading for memory's sake, so keepalive keeps working while the application is slow.
//! - Returned credit is batched: a WINDOW_UPDATE goes out once a quarter of the initial window
//!   has accumulated. A blocked sender is always released: when nothing is held, all credit is
//!   pending, which crosses the threshold.
//! - Credit follows priority: while a channel of higher priority carried DATA (either way)
//!   within [`BUSY_HORIZON`], a channel's credit is topped up only to its busy cap
//!   ([`busy_cap`]), not to its full window. Records are opened in order, so an urgent
//!   message waits behind every bulk byte sealed before it; a full window of bulk (1 MiB by
//!   default) is most of a millisecond of decryption on the receiving side. Credit already
//!   granted is not taken back, so the cap takes hold within one window. The cap scales with
//!   the connection's smallest measured round trip, so on a long link a yielding channel
//!   still keeps its share of the bandwidth (the bytes in the network pipe do not delay the
//!   urgent message; only bytes queued at the receiver do).
//! - Credit follows the drain: a channel's credit is also topped up only to what its
//!   application took in [`DRAIN_HORIZON`] at the best rate seen over the last one to two
//!   seconds ([`DrainRate`]), never below the busy cap and never above the initial window.
//!   A receiver that keeps up (the rate times the horizon exceeds the window) grants the full
//!   window; one that falls behind lets at most about a tenth of a second of its own pace wait
//!   in flight, instead of a whole window, which at a slow pace is seconds of stale messages.
//!   Before the first rate sample the full window applies.

use std::time::{Duration, Instant};

use super::frame::{DATA_CREDIT_OVERHEAD, MAX_WINDOW, MIN_WINDOW};

/// How long a channel counts as busy after DATA went out or came in on it.
pub(crate) const BUSY_HORIZON: Duration = Duration::from_secs(1);

/// How much of its own drain rate a channel may have in flight.
pub(crate) const DRAIN_HORIZON: Duration = Duration::from_millis(100);
/// One drain-rate sample covers at least this long.
const DRAIN_SAMPLE: Duration = Duration::from_millis(100);
/// The best sample is kept over the current and the previous window of this length.
const DRAIN_WINDOW: Duration = Duration::from_secs(1);

/// The rate at which the application takes a channel's bytes: the best 100 ms sample over the
/// last one to two seconds (a windowed maximum, so a bursty channel keeps its window between
/// bursts). Fed by the credit the channel returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DrainRate {
    /// Bytes returned since `sample_start`.
    bytes: u64,
    sample_start: Instant,
    /// The best sample (bytes per second) of the current window, and of the one before.
    best: u64,
    best_before: u64,
    window_start: Instant,
    /// At least one sample has closed.
    known: bool,
}

impl DrainRate {
    /// No samples yet.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            bytes: 0,
            sample_start: now,
            best: 0,
            best_before: 0,
            window_start: now,
            known: false,
        }
    }

    /// Counts `n` bytes the application took at `now`.
    pub(crate) fn on_drain(&mut self, n: u32, now: Instant) {
        self.close_sample(now);
        self.bytes = self.bytes.saturating_add(u64::from(n));
    }

    /// Closes the running sample if it is long enough, rotating the windows as they pass.
    fn close_sample(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.sample_start);
        if elapsed < DRAIN_SAMPLE {
            return;
        }
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let rate = self.bytes.saturating_mul(1_000_000) / micros;
        if now.saturating_duration_since(self.window_start) >= DRAIN_WINDOW {
            // A window with no sample at all (the channel sat idle) leaves nothing behind.
            let idle = now.saturating_duration_since(self.window_start) >= 2 * DRAIN_WINDOW;
            self.best_before = if idle { 0 } else { self.best };
            self.best = 0;
            self.window_start = now;
        }
        self.best = self.best.max(rate);
        self.bytes = 0;
        self.sample_start = now;
        self.known = true;
    }

    /// The best rate of the last one to two seconds in bytes per second; `None` before the
    /// first sample.
    pub(crate) fn rate(&self) -> Option<u64> {
        self.known.then(|| self.best.max(self.best_before))
    }
}

/// The credit cap of a channel that drains at `rate` (see [`DrainRate`]) over a path of
/// round trip `min_rtt`: what it takes in [`DRAIN_HORIZON`] or two round trips, whichever is
/// longer (so a window-limited sender over a long path is never squeezed below what it moves
/// per round trip), at least `floor`, at most `initial`; `initial` while either is unknown.
pub(crate) fn drain_cap(
    rate: Option<u64>,
    min_rtt: Option<Duration>,
    floor: u32,
    initial: u32,
) -> u32 {
    let (Some(rate), Some(rtt)) = (rate, min_rtt) else {
        return initial;
    };
    let horizon = DRAIN_HORIZON.max(rtt.saturating_mul(2));
    let micros = u64::try_from(horizon.as_micros()).unwrap_or(u64::MAX);
    let in_horizon = u128::from(rate) * u128::from(micros) / 1_000_000;
    u32::try_from(in_horizon)
        .unwrap_or(u32::MAX)
        .max(floor)
        .min(initial)
}

/// The most credit a channel with initial window `initial` holds while a channel of higher
/// priority is busy: `busy_window` per started millisecond of `min_rtt` (unknown: one), at
/// least [`MIN_WINDOW`], at most `initial`. `busy_window` 0: no cap (`initial`).
pub(crate) fn busy_cap(busy_window: u32, min_rtt: Option<Duration>, initial: u32) -> u32 {
    if busy_window == 0 {
        return initial;
    }
    let millis = min_rtt.map_or(1, |d| d.as_micros().div_ceil(1000).max(1));
    let cap = u128::from(busy_window).saturating_mul(millis);
    u32::try_from(cap)
        .unwrap_or(u32::MAX)
        .max(MIN_WINDOW)
        .min(initial)
}

/// The cost in credit of a DATA chunk of `len` bytes.
pub(crate) fn chunk_cost(len: usize) -> u32 {
    u32::try_from(len)
        .unwrap_or(u32::MAX)
        .saturating_add(DATA_CREDIT_OVERHEAD)
}

/// The longest chunk `credit` pays for (0 when it does not even pay for an empty one).
pub(crate) fn chunk_allowance(credit: u32) -> usize {
    credit.saturating_sub(DATA_CREDIT_OVERHEAD) as usize
}

/// Credit the peer granted us on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendWindow {
    available: u32,
}

impl SendWindow {
    /// A window starting at the peer's announced initial window.
    pub(crate) fn new(initial: u32) -> Self {
        Self { available: initial }
    }

    /// Remaining credit.
    pub(crate) fn available(&self) -> u32 {
        self.available
    }

    /// Spends credit for a chunk; the caller never spends more than [`available`](Self::available).
    pub(crate) fn consume(&mut self, cost: u32) {
        self.available = self.available.saturating_sub(cost);
    }

    /// Adds credit from a WINDOW_UPDATE; `Err` when the window would pass [`MAX_WINDOW`].
    pub(crate) fn grant(&mut self, increment: u32) -> Result<(), ()> {
        match self.available.checked_add(increment) {
            Some(v) if v <= MAX_WINDOW => {
                self.available = v;
                Ok(())
            }
            _ => Err(()),
        }
    }
}

/// Credit we granted the peer on one channel, and credit waiting to be returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecvWindow {
    /// How fast the application takes this channel's bytes.
    drain: DrainRate,
    /// Bytes the peer may still send.
    remaining: u32,
    /// Bytes received and not yet returned (held for the application).
    held: u32,
    /// Credit returned by the application but not yet announced.
    pending: u32,
    /// The announced initial window.
    initial: u32,
}

impl RecvWindow {
    /// A window of `initial` bytes, as announced in our HELLO.
    pub(crate) fn new(initial: u32, now: Instant) -> Self {
        Self {
            drain: DrainRate::new(now),
            remaining: initial,
            held: 0,
            pending: 0,
            initial,
        }
    }

    /// Credit the peer has left.
    #[cfg(test)]
    pub(crate) fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Accounts for a received chunk; `Err(remaining)` when it exceeds the granted credit.
    pub(crate) fn on_receive(&mut self, cost: u32) -> Result<(), u32> {
        match self.remaining.checked_sub(cost) {
            Some(r) => {
                self.remaining = r;
                self.held = self.held.saturating_add(cost);
                Ok(())
            }
            None => Err(self.remaining),
        }
    }

    /// Returns `n` bytes of credit (announced later by [`take_update`](Self::take_update)),
    /// taken by the application at `now`.
    pub(crate) fn credit(&mut self, n: u32, now: Instant) {
        self.pending = self.pending.saturating_add(n);
        self.held = self.held.saturating_sub(n);
        self.drain.on_drain(n, now);
    }

    /// How fast the application takes this channel's bytes (`None`: not known yet).
    pub(crate) fn drain_rate(&self) -> Option<u64> {
        self.drain.rate()
    }

    /// The announced initial window.
    pub(crate) fn initial(&self) -> u32 {
        self.initial
    }

    /// Credit to announce now, if enough has accumulated, so that what the peer may still
    /// send plus what is held for the application stays within `cap` (the initial window, or
    /// a busy or drain cap below it; see [`busy_cap`] and [`drain_cap`]). With the initial
    /// window as the cap that is all pending credit. An update goes out once it would return a
    /// quarter of `cap`.
    pub(crate) fn take_update(&mut self, cap: u32) -> Option<u32> {
        let threshold = (cap / 4).max(1);
        let room = cap
            .max(1)
            .saturating_sub(self.remaining.saturating_add(self.held))
            .min(MAX_WINDOW.saturating_sub(self.remaining));
        let inc = self.pending.min(room);
        if inc == 0 || inc < threshold {
            return None;
        }
        self.pending -= inc;
        self.remaining += inc;
        Some(inc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants() {
        assert_eq!(MAX_WINDOW, 2_147_483_647);
        assert_eq!(DATA_CREDIT_OVERHEAD, 64);
        assert_eq!(chunk_cost(0), 64);
        assert_eq!(chunk_cost(16384), 16448);
        assert_eq!(chunk_cost(usize::MAX), u32::MAX);
        assert_eq!(chunk_allowance(63), 0);
        assert_eq!(chunk_allowance(1088), 1024);
    }

    #[test]
    fn send_window_grant_bounds() {
        let mut w = SendWindow::new(10);
        w.consume(4);
        assert_eq!(w.available(), 6);
        assert!(w.grant(MAX_WINDOW - 6).is_ok());
        assert_eq!(w.available(), MAX_WINDOW);
        assert!(w.grant(1).is_err());
        assert!(w.grant(u32::MAX).is_err());
        assert_eq!(w.available(), MAX_WINDOW);
    }

    #[test]
    fn recv_window_threshold_is_a_quarter() {
        let t0 = Instant::now();
        let mut w = RecvWindow::new(100, t0);
        w.on_receive(60).unwrap();
        assert_eq!(w.on_receive(41), Err(40));
        w.credit(24, t0);
        assert_eq!(w.take_update(w.initial()), None);
        w.credit(1, t0);
        assert_eq!(w.take_update(w.initial()), Some(25));
        assert_eq!(w.remaining(), 65);
        let mut tiny = RecvWindow::new(3, t0);
        tiny.on_receive(1).unwrap();
        tiny.credit(1, t0);
        assert_eq!(tiny.take_update(tiny.initial()), Some(1));
    }

    #[test]
    fn a_capped_window_tops_up_only_to_its_cap() {
        let t0 = Instant::now();
        let mut w = RecvWindow::new(1 << 20, t0);
        w.on_receive(1 << 20).unwrap();
        w.credit(1 << 20, t0);
        // Capped at 64 KiB: the peer gets 64 KiB back, the rest stays pending.
        assert_eq!(w.take_update(64 << 10), Some(64 << 10));
        assert_eq!(w.remaining(), 64 << 10);
        // Nothing more while the peer has not spent it.
        assert_eq!(w.take_update(64 << 10), None);
        // Spent a quarter of the cap, but the application has not taken it: held bytes count.
        w.on_receive(16 << 10).unwrap();
        assert_eq!(w.take_update(64 << 10), None);
        // Taken: that quarter comes back.
        w.credit(16 << 10, t0);
        assert_eq!(w.take_update(64 << 10), Some(16 << 10));
        // Less than a quarter spent and taken: no update (no trickle of tiny frames).
        w.on_receive(1000).unwrap();
        w.credit(1000, t0);
        assert_eq!(w.take_update(64 << 10), None);
        // Uncapped again: everything pending goes out at once.
        assert_eq!(
            w.take_update(w.initial()),
            Some((1 << 20) - (64 << 10) + 1000)
        );
        assert_eq!(w.remaining(), 1 << 20);
    }

    #[test]
    fn the_busy_cap_scales_with_the_round_trip() {
        let ms = Duration::from_millis;
        assert_eq!(busy_cap(0, Some(ms(1)), 1 << 20), 1 << 20);
        assert_eq!(busy_cap(64 << 10, None, 1 << 20), 64 << 10);
        assert_eq!(
            busy_cap(64 << 10, Some(Duration::from_micros(40)), 1 << 20),
            64 << 10
        );
        assert_eq!(busy_cap(64 << 10, Some(ms(4)), 1 << 20), 256 << 10);
        assert_eq!(busy_cap(64 << 10, Some(ms(50)), 1 << 20), 1 << 20);
        assert_eq!(busy_cap(64 << 10, Some(ms(1)), 8 << 10), 8 << 10);
        assert_eq!(busy_cap(1024, Some(Duration::MAX), MAX_WINDOW), MAX_WINDOW);
    }

    #[test]
    fn the_drain_rate_is_the_best_recent_sample() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = DrainRate::new(t0);
        d.on_drain(50_000, t0);
        assert_eq!(d.rate(), None, "no sample has closed yet");
        // 100 kB in the first 100 ms: 1 MB/s.
        d.on_drain(50_000, t0 + ms(50));
        d.on_drain(1, t0 + ms(100));
        assert_eq!(d.rate(), Some(1_000_000));
        // A slower sample does not lower the best of the window.
        d.on_drain(10_000, t0 + ms(150));
        d.on_drain(1, t0 + ms(200));
        assert_eq!(d.rate(), Some(1_000_000));
        // A window later the old best is still the one before; two windows later it is gone.
        for k in 1..=15 {
            d.on_drain(1_000, t0 + ms(200 + 100 * k));
        }
        assert_eq!(d.rate(), Some(1_000_000));
        for k in 16..=30 {
            d.on_drain(1_000, t0 + ms(200 + 100 * k));
        }
        assert_eq!(d.rate(), Some(10_000));
        // A channel idle for two windows starts from nothing.
        d.on_drain(1, t0 + ms(10_000));
        assert!(d.rate().is_some_and(|r| r < 1_000), "{:?}", d.rate());
    }

    #[test]
    fn the_drain_cap_is_a_tenth_of_a_second_of_the_rate_between_floor_and_window() {
        let rtt = Some(Duration::from_micros(50));
        assert_eq!(drain_cap(None, rtt, 64 << 10, 1 << 20), 1 << 20);
        assert_eq!(drain_cap(Some(0), None, 64 << 10, 1 << 20), 1 << 20);
        assert_eq!(drain_cap(Some(0), rtt, 64 << 10, 1 << 20), 64 << 10);
        assert_eq!(drain_cap(Some(5_000_000), rtt, 64 << 10, 1 << 20), 500_000);
        assert_eq!(
            drain_cap(Some(3_000_000_000), rtt, 64 << 10, 1 << 20),
            1 << 20
        );
        assert_eq!(drain_cap(Some(u64::MAX), rtt, 1024, MAX_WINDOW), MAX_WINDOW);
        // Over a 200 ms path the horizon is two round trips.
        let far = Some(Duration::from_millis(200));
        assert_eq!(drain_cap(Some(1_000_000), far, 64 << 10, 1 << 20), 400_000);
    }
}
