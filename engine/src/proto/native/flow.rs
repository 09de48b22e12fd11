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

use std::time::Duration;

use super::frame::{DATA_CREDIT_OVERHEAD, MAX_WINDOW, MIN_WINDOW};

/// How long a channel counts as busy after DATA went out or came in on it.
pub(crate) const BUSY_HORIZON: Duration = Duration::from_secs(1);

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
    /// Bytes the peer may still send.
    remaining: u32,
    /// Credit returned by the application but not yet announced.
    pending: u32,
    /// The announced initial window.
    initial: u32,
}

impl RecvWindow {
    /// A window of `initial` bytes, as announced in our HELLO.
    pub(crate) fn new(initial: u32) -> Self {
        Self {
            remaining: initial,
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
                Ok(())
            }
            None => Err(self.remaining),
        }
    }

    /// Returns `n` bytes of credit (announced later by [`take_update`](Self::take_update)).
    pub(crate) fn credit(&mut self, n: u32) {
        self.pending = self.pending.saturating_add(n);
    }

    /// The announced initial window.
    pub(crate) fn initial(&self) -> u32 {
        self.initial
    }

    /// Credit to announce now, if enough has accumulated, topping the peer's credit up to at
    /// most `cap` (the initial window, or a busy cap below it; see [`busy_cap`]). An update
    /// goes out once it would return a quarter of `cap`.
    pub(crate) fn take_update(&mut self, cap: u32) -> Option<u32> {
        let threshold = (cap / 4).max(1);
        let room = cap
            .max(1)
            .saturating_sub(self.remaining)
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
        let mut w = RecvWindow::new(100);
        w.on_receive(60).unwrap();
        assert_eq!(w.on_receive(41), Err(40));
        w.credit(24);
        assert_eq!(w.take_update(w.initial()), None);
        w.credit(1);
        assert_eq!(w.take_update(w.initial()), Some(25));
        assert_eq!(w.remaining(), 65);
        let mut tiny = RecvWindow::new(3);
        tiny.on_receive(1).unwrap();
        tiny.credit(1);
        assert_eq!(tiny.take_update(tiny.initial()), Some(1));
    }

    #[test]
    fn a_capped_window_tops_up_only_to_its_cap() {
        let mut w = RecvWindow::new(1 << 20);
        w.on_receive(1 << 20).unwrap();
        w.credit(1 << 20);
        // Capped at 64 KiB: the peer gets 64 KiB back, the rest stays pending.
        assert_eq!(w.take_update(64 << 10), Some(64 << 10));
        assert_eq!(w.remaining(), 64 << 10);
        // Nothing more while the peer has not spent it.
        assert_eq!(w.take_update(64 << 10), None);
        // Spent a quarter of the cap: that quarter comes back.
        w.on_receive(16 << 10).unwrap();
        assert_eq!(w.take_update(64 << 10), Some(16 << 10));
        // Less than a quarter spent: no update (no trickle of tiny frames).
        w.on_receive(1000).unwrap();
        assert_eq!(w.take_update(64 << 10), None);
        // Uncapped again: everything pending goes out at once.
        assert_eq!(w.take_update(w.initial()), Some((1 << 20) - (80 << 10)));
        assert_eq!(w.remaining(), (1 << 20) - (16 << 10) - 1000);
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
}
