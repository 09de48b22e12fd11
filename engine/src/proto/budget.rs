//! Budgets the protocol core enforces per peer and per node: control frames per second and
//! bytes held in partly received messages.
//!
//! Policy (`docs/RELIABILITY.md` rows 6 and 7):
//! - **Control frames.** Each connection has a token bucket of `per_second` frames, full at the
//!   start and refilled continuously from the `now` its input carries (at most one second's
//!   worth is kept). A frame that finds the bucket empty fails the connection: on native
//!   connections every frame but DATA counts (pings, pongs, window updates, cancels, HELLO,
//!   CLOSE, RESET; the multiplexer exempts updates and cancels a well-behaved peer owes, see
//!   `native/mux/recv.rs`), on compat connections ping and pong packets.
//! - **Partly received messages.** Every byte a connection appends to a reassembly buffer is
//!   first reserved: from the connection's own cap ([`PartialBudget::per_peer`]) and from the
//!   node-wide [`PartialPool`] that all connections of a node share. A reservation that does
//!   not fit fails the connection before the buffer grows; bytes are returned when their message
//!   completes and whatever is left when the connection is dropped. A message that arrives in
//!   one piece is never buffered, so it reserves nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Default most control frames one peer may send per second.
pub const DEFAULT_MAX_CONTROL_FRAMES_PER_SECOND: u32 = 1000;
/// Default most bytes of partly received messages one connection may hold: 112 MiB, room for
/// the largest stock message (block sync, 100 MiB) and a few smaller ones beside it.
pub const DEFAULT_MAX_PARTIAL_BYTES_PER_PEER: usize = 112 << 20;
/// Default most bytes of partly received messages all connections of a node may hold: 1 GiB.
pub const DEFAULT_MAX_PARTIAL_BYTES: usize = 1 << 30;

const NANOS_PER_FRAME: u64 = 1_000_000_000;

/// A per-connection budget of control frames per second (a token bucket on the caller's
/// clock).
#[derive(Clone, Debug)]
pub(crate) struct ControlRate {
    per_second: u32,
    /// Tokens, in billionths of a frame.
    tokens: u64,
    last: Instant,
}

impl ControlRate {
    /// A full bucket of `per_second` frames at `now`.
    pub(crate) fn new(per_second: u32, now: Instant) -> Self {
        ControlRate {
            per_second,
            tokens: u64::from(per_second) * NANOS_PER_FRAME,
            last: now,
        }
    }

    /// The frames allowed per second.
    pub(crate) fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Spends one frame at `now`; false when the budget is spent.
    pub(crate) fn charge(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        if elapsed > 0 {
            // At most one second of refill is kept, so the product stays far below u64::MAX.
            let refill = elapsed.min(u128::from(NANOS_PER_FRAME)) as u64;
            let cap = u64::from(self.per_second) * NANOS_PER_FRAME;
            self.tokens = self
                .tokens
                .saturating_add(refill * u64::from(self.per_second))
                .min(cap);
            self.last = now;
        }
        match self.tokens.checked_sub(NANOS_PER_FRAME) {
            Some(left) => {
                self.tokens = left;
                true
            }
            None => false,
        }
    }
}

/// The bytes of partly received messages that all connections of a node may hold together.
/// Connections reserve from it before growing a reassembly buffer; share one `Arc` across a
/// node's connections.
#[derive(Debug)]
pub struct PartialPool {
    limit: usize,
    used: AtomicUsize,
}

impl PartialPool {
    /// A pool of `limit` bytes, none in use.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(PartialPool {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// The pool's size in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

/// How many bytes of partly received messages one connection may hold.
#[derive(Clone, Debug)]
pub struct PartialBudget {
    /// Most bytes this connection may hold in its reassembly buffers, all channels together.
    pub per_peer: usize,
    /// The node-wide pool this connection also reserves from; `None`: no node-wide bound.
    pub pool: Option<Arc<PartialPool>>,
}

impl PartialBudget {
    /// A per-peer cap and a fresh node-wide pool of `node` bytes.
    pub fn new(per_peer: usize, node: usize) -> Self {
        PartialBudget {
            per_peer,
            pool: Some(PartialPool::new(node)),
        }
    }
}

impl Default for PartialBudget {
    /// The default per-peer cap and no node-wide pool.
    fn default() -> Self {
        PartialBudget {
            per_peer: DEFAULT_MAX_PARTIAL_BYTES_PER_PEER,
            pool: None,
        }
    }
}

impl PartialEq for PartialBudget {
    /// Equal settings: the same per-peer cap and pools of the same size (or none on both),
    /// whether or not the pools are shared.
    fn eq(&self, other: &Self) -> bool {
        self.per_peer == other.per_peer
            && self.pool.as_ref().map(|p| p.limit()) == other.pool.as_ref().map(|p| p.limit())
    }
}

impl Eq for PartialBudget {}

/// A budget whose exhaustion closed a connection (see `ConnError::exceeded_budget`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    /// The peer sent more control frames (compat: ping and pong packets) per second than
    /// allowed.
    ControlFrames,
    /// The connection's own cap on bytes of partly received messages.
    PeerPartialBytes,
    /// The node-wide pool of bytes of partly received messages.
    NodePartialBytes,
}

/// Why a reassembly buffer could not grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartialBudgetError {
    /// The connection would hold more partly received bytes than its own cap.
    #[error(
        "partly received messages would hold {wanted} bytes, over the per-peer budget of {limit}"
    )]
    Peer {
        /// The bytes the connection would hold.
        wanted: usize,
        /// The per-peer cap.
        limit: usize,
    },
    /// The node-wide pool is spent (by all connections together).
    #[error("the node-wide budget of {limit} bytes for partly received messages is spent")]
    Node {
        /// The pool's size.
        limit: usize,
    },
}

/// The bytes one connection holds in reassembly buffers, reserved from its [`PartialBudget`];
/// what is still held returns to the pool when this is dropped.
#[derive(Debug)]
pub(crate) struct PartialBytes {
    budget: PartialBudget,
    held: usize,
}

impl PartialBytes {
    pub(crate) fn new(budget: PartialBudget) -> Self {
        PartialBytes { budget, held: 0 }
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Reserves `n` more bytes, or fails without reserving anything.
    pub(crate) fn reserve(&mut self, n: usize) -> Result<(), PartialBudgetError> {
        let limit = self.budget.per_peer;
        let wanted = self.held.saturating_add(n);
        if wanted > limit {
            return Err(PartialBudgetError::Peer { wanted, limit });
        }
        if let Some(pool) = &self.budget.pool
            && !pool.try_reserve(n)
        {
            return Err(PartialBudgetError::Node {
                limit: pool.limit(),
            });
        }
        self.held = wanted;
        Ok(())
    }

    /// Returns `n` bytes (at most what is held).
    pub(crate) fn release(&mut self, n: usize) {
        let n = n.min(self.held);
        self.held -= n;
        if let Some(pool) = &self.budget.pool {
            pool.release(n);
        }
    }
}

impl Drop for PartialBytes {
    fn drop(&mut self) {
        self.release(self.held);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn control_rate_allows_a_second_of_frames_then_refills_with_time() {
        let t0 = Instant::now();
        let mut r = ControlRate::new(10, t0);
        assert!((0..10).all(|_| r.charge(t0)));
        assert!(!r.charge(t0));
        // A tenth of a second buys one frame; a long pause refills at most one second's worth.
        assert!(r.charge(t0 + Duration::from_millis(100)));
        assert!(!r.charge(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(3600);
        assert!((0..10).all(|_| r.charge(later)));
        assert!(!r.charge(later));
        // A clock that goes backwards refills nothing.
        assert!(!r.charge(t0));
    }

    #[test]
    fn partial_bytes_respect_the_peer_cap_and_the_shared_pool() {
        let budget = PartialBudget::new(100, 150);
        let pool = budget.pool.clone().unwrap();
        let mut a = PartialBytes::new(budget.clone());
        let mut b = PartialBytes::new(budget);
        a.reserve(100).unwrap();
        assert_eq!(
            a.reserve(1),
            Err(PartialBudgetError::Peer {
                wanted: 101,
                limit: 100
            })
        );
        b.reserve(50).unwrap();
        assert_eq!(b.reserve(1), Err(PartialBudgetError::Node { limit: 150 }));
        assert_eq!((a.held(), b.held(), pool.used()), (100, 50, 150));
        a.release(60);
        b.reserve(50).unwrap();
        assert_eq!(pool.used(), 140);
        drop(b);
        assert_eq!(pool.used(), 40);
        drop(a);
        assert_eq!(pool.used(), 0);
    }
}
