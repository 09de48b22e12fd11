//! A connected peer as every thread sees it: identity, where it lives, and per-channel send
//! credit.
//!
//! Credit policy: each channel the peer shares has `send_queue_capacity` credits. A sender takes
//! one before it hands a message to the peer's shard and the shard returns it once the
//! connection has accepted the message into its own queue (which is bounded by the same
//! capacity). So at most twice the capacity waits per peer and channel, and a sender learns
//! `Full` at once, on its own thread, without a round trip to the shard. Senders that wait for
//! credit sleep on one notifier per peer, woken when a full channel has drained to half its
//! capacity (the credit's low mark) or when the peer goes down, and they look once more at
//! their deadline. Waking at the first free credit made a sender that keeps a channel full
//! wake, queue one message and sleep again for every message the shard took (S2's sender
//! spent a quarter of its time switching threads); from the low mark it queues half a
//! queue's worth per wake. A message queued at the low mark is not delivered later than one
//! queued at the first free credit: the queue ahead of it is that much shorter.
//!
//! Byte budget: the payload bytes of all messages holding credits for one peer, over all its
//! channels, are bounded too (`Limits::max_peer_send_bytes`). A send that would go over it
//! fails like one on a full channel (`Full` without a deadline, a wait and then `Timeout` with
//! one); a message larger than the whole budget still goes when nothing else waits for the
//! peer, so no size is refused for ever. Broadcast copies and responses hold no credit and are
//! bounded by their own rules (`shard/staging.rs`). A budget the peer's credits cannot reach
//! (each shared channel's capacity times its largest message, summed, is within it) is not
//! counted at all: every send and every release would otherwise update one more counter that
//! the sending threads and the owning shard share, for a bound that never applies.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::proto::conn::{Mode, PeerInfo};
use crate::proto::secret::NodeId;
use crate::rt::clock;

use super::{ConnId, Direction, SendError};

/// What the application learns about peers.
#[derive(Clone, Debug)]
pub enum PeerEvent {
    /// A peer connected and passed every check. When a new connection to a connected peer
    /// replaces the old one (the simultaneous-dial tie-break), `Up` comes again with the new
    /// connection's direction and address, and no `Down` in between: the peer never left.
    Up {
        /// Identity, NodeInfo, protocol mode and capabilities.
        peer: Arc<PeerInfo>,
        /// Who dialed.
        direction: Direction,
        /// The remote socket address (TCP only).
        addr: Option<SocketAddr>,
    },
    /// A peer that was up is gone.
    Down {
        /// The peer.
        node_id: NodeId,
        /// Why.
        reason: super::DownReason,
    },
}

/// A snapshot of one connected peer.
#[derive(Clone, Debug)]
pub struct PeerSummary {
    /// Identity, NodeInfo, protocol mode and capabilities.
    pub info: Arc<PeerInfo>,
    /// Who dialed.
    pub direction: Direction,
    /// The remote socket address (TCP only).
    pub addr: Option<SocketAddr>,
    /// The shard that owns the connection.
    pub shard: usize,
    /// When the peer was registered (its handshake and admission done).
    pub connected_at: Instant,
    /// The round-trip time of the latest answered keepalive ping, once one was answered.
    pub rtt: Option<Duration>,
}

struct Credit {
    channel: u8,
    capacity: usize,
    used: AtomicUsize,
    /// Payload bytes of the messages holding credits (waiting to be sent).
    pending: AtomicU64,
    /// Payload bytes the connection accepted for sending on this channel.
    sent: AtomicU64,
    /// Payload bytes received on this channel.
    received: AtomicU64,
}

/// Traffic of one peer on one channel since the peer came up (see [`PeerTraffic`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelTraffic {
    /// The channel.
    pub channel: u8,
    /// Payload bytes handed to the connection for sending.
    pub sent_bytes: u64,
    /// Payload bytes received.
    pub received_bytes: u64,
    /// Messages waiting to be sent (taken send credits not yet returned).
    pub queued_messages: usize,
    /// Payload bytes of those messages.
    pub pending_bytes: u64,
}

/// Traffic counters of one connected peer, per channel. The counters start at zero when the
/// peer comes up; each update is one relaxed atomic add on the shard that owns the peer.
#[derive(Clone, Debug)]
pub struct PeerTraffic {
    /// The peer.
    pub node_id: NodeId,
    /// One entry per shared channel.
    pub channels: Vec<ChannelTraffic>,
}

/// A registered peer (shared between the router, the registry and the owning shard).
pub(crate) struct PeerEntry {
    pub(crate) info: Arc<PeerInfo>,
    pub(crate) conn: ConnId,
    pub(crate) shard: usize,
    pub(crate) direction: Direction,
    pub(crate) addr: Option<SocketAddr>,
    /// The network group of `addr` (stock's groups, loopback and private ranges by /16;
    /// a peer without an address is a group of its own), hashed once here so that
    /// role-addressed picks compare numbers, not strings formatted per send.
    pub(crate) net_group: u64,
    credits: Box<[Credit]>,
    /// Payload bytes holding credits, all channels together (counted only while
    /// `send_budget` is finite).
    pending: AtomicU64,
    /// The most `pending` may reach (see the module documentation); `u64::MAX`: no bound, and
    /// `pending` is not counted.
    send_budget: u64,
    /// A sender waits because of the byte budget: releases must wake it.
    budget_waiters: AtomicBool,
    alive: AtomicBool,
    space: Notify,
    connected_at: Instant,
    /// The latest keepalive round trip in microseconds plus one; 0 until one is measured.
    rtt_micros: AtomicU64,
}

impl PeerEntry {
    /// An entry whose shared channels are `channels` (`(id, send_queue_capacity)`).
    pub(crate) fn new(
        info: Arc<PeerInfo>,
        conn: ConnId,
        shard: usize,
        direction: Direction,
        addr: Option<SocketAddr>,
        channels: impl IntoIterator<Item = (u8, usize)>,
    ) -> Self {
        let net_group = {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            match addr {
                Some(a) => crate::proto::netgroup::group_key(a.ip(), false).hash(&mut h),
                None => info.node_id.hash(&mut h),
            }
            h.finish()
        };
        PeerEntry {
            info,
            conn,
            shard,
            direction,
            addr,
            net_group,
            credits: channels
                .into_iter()
                .map(|(channel, capacity)| Credit {
                    channel,
                    capacity: capacity.max(1),
                    used: AtomicUsize::new(0),
                    pending: AtomicU64::new(0),
                    sent: AtomicU64::new(0),
                    received: AtomicU64::new(0),
                })
                .collect(),
            pending: AtomicU64::new(0),
            send_budget: u64::MAX,
            budget_waiters: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            space: Notify::new(),
            connected_at: Instant::now(),
            rtt_micros: AtomicU64::new(0),
        }
    }

    /// Bounds the payload bytes waiting for this peer, all channels together, to `bytes`.
    /// `reachable` is the most the peer's credits can hold together (each channel's capacity
    /// times the largest message a send may carry on it, summed): a budget at or above it
    /// never refuses a send, so it is not counted.
    pub(crate) fn with_send_budget(mut self, bytes: usize, reachable: u64) -> Self {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        if bytes < reachable {
            self.send_budget = bytes;
        }
        self
    }

    /// Whether the byte budget applies (and `pending` is counted).
    fn budgeted(&self) -> bool {
        self.send_budget != u64::MAX
    }

    /// Payload bytes waiting to be sent to this peer, all channels together.
    #[cfg(test)]
    fn pending_bytes(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    pub(crate) fn node_id(&self) -> NodeId {
        self.info.node_id
    }

    pub(crate) fn is_native(&self) -> bool {
        self.info.mode == Mode::Native
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub(crate) fn shares(&self, channel: u8) -> bool {
        self.credits.iter().any(|c| c.channel == channel)
    }

    pub(crate) fn has_capability(&self, capability: &str) -> bool {
        self.info.capabilities.iter().any(|c| c == capability)
    }

    pub(crate) fn summary(&self) -> PeerSummary {
        let rtt = self.rtt_micros.load(Ordering::Relaxed);
        PeerSummary {
            info: self.info.clone(),
            direction: self.direction,
            addr: self.addr,
            shard: self.shard,
            connected_at: self.connected_at,
            rtt: rtt.checked_sub(1).map(Duration::from_micros),
        }
    }

    /// Records the connection's latest keepalive round trip (the owning shard calls it).
    pub(crate) fn set_rtt(&self, rtt: Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX - 1);
        self.rtt_micros
            .store(micros.saturating_add(1), Ordering::Relaxed);
    }

    fn credit(&self, channel: u8) -> Result<&Credit, SendError> {
        self.credits
            .iter()
            .find(|c| c.channel == channel)
            .ok_or(SendError::ChannelNotShared(channel))
    }

    /// Counts `bytes` of payload sent on `channel`.
    pub(crate) fn record_sent(&self, channel: u8, bytes: usize) {
        if let Ok(c) = self.credit(channel) {
            c.sent.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// Counts `bytes` of payload received on `channel`.
    pub(crate) fn record_received(&self, channel: u8, bytes: usize) {
        if let Ok(c) = self.credit(channel) {
            c.received.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// A snapshot of the traffic counters.
    pub(crate) fn traffic(&self) -> PeerTraffic {
        PeerTraffic {
            node_id: self.node_id(),
            channels: self
                .credits
                .iter()
                .map(|c| ChannelTraffic {
                    channel: c.channel,
                    sent_bytes: c.sent.load(Ordering::Relaxed),
                    received_bytes: c.received.load(Ordering::Relaxed),
                    queued_messages: c.used.load(Ordering::Relaxed),
                    pending_bytes: c.pending.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }

    /// Takes one credit on `channel` for a message of `len` payload bytes, or reports why not.
    pub(crate) fn try_acquire(&self, channel: u8, len: usize) -> Result<(), SendError> {
        self.try_acquire_many(channel, &[len]).map(drop)
    }

    /// Takes one credit on `channel` for a message of `len` payload bytes, waiting until
    /// `deadline` for one to return.
    pub(crate) async fn acquire(
        &self,
        channel: u8,
        len: usize,
        deadline: Instant,
    ) -> Result<(), SendError> {
        self.acquire_many(channel, &[len], deadline).await.map(drop)
    }

    /// Takes as many credits on `channel` as there are free and the peer's byte budget
    /// allows, up to one per entry of `lens` (the payload lengths of the messages, in order),
    /// or reports why not (`Full`: none free, or no room in the budget). Returns how many it
    /// took.
    pub(crate) fn try_acquire_many(&self, channel: u8, lens: &[usize]) -> Result<usize, SendError> {
        if !self.is_alive() {
            return Err(SendError::PeerGone);
        }
        let c = self.credit(channel)?;
        let mut counted = 0;
        c.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                counted = c.capacity.saturating_sub(u).min(lens.len());
                (counted > 0).then_some(u + counted)
            })
            .map_err(|_| SendError::Full)?;
        let lens = lens.get(..counted).unwrap_or(lens);
        if !self.budgeted() {
            let bytes = lens.iter().map(|&l| l as u64).fold(0, u64::saturating_add);
            c.pending.fetch_add(bytes, Ordering::Relaxed);
            return Ok(counted);
        }
        let mut took = 0;
        let mut bytes = 0u64;
        let budget = self
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                (took, bytes) = fit(p, self.send_budget, lens);
                (took > 0).then_some(p.saturating_add(bytes))
            });
        if took < counted {
            self.return_counts(c, counted - took);
        }
        budget.map_err(|_| SendError::Full)?;
        c.pending.fetch_add(bytes, Ordering::Relaxed);
        Ok(took)
    }

    /// Gives back `n` credits of `c` taken but not used.
    fn return_counts(&self, c: &Credit, n: usize) {
        let prev = c
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| u.checked_sub(n))
            .unwrap_or(0);
        if prev > low_mark(c.capacity) {
            self.space.notify_waiters();
        }
    }

    /// [`PeerEntry::try_acquire_many`], waiting until `deadline` for at least one credit.
    pub(crate) async fn acquire_many(
        &self,
        channel: u8,
        lens: &[usize],
        deadline: Instant,
    ) -> Result<usize, SendError> {
        // Without waiting first: registering with `space` takes its lock twice.
        match self.try_acquire_many(channel, lens) {
            Err(SendError::Full) => {}
            other => return other,
        }
        loop {
            let mut notified = pin!(self.space.notified());
            notified.as_mut().enable();
            // Before looking again: a release from now on sees the flag and wakes us. (Without
            // a budget, a waiter waits for channel credit only, whose return wakes it.)
            if self.budgeted() {
                self.budget_waiters.store(true, Ordering::SeqCst);
            }
            match self.try_acquire_many(channel, lens) {
                Err(SendError::Full) => {}
                other => return other,
            }
            if clock::timeout_at(deadline, notified).await.is_none() {
                // Waiters wake at the low mark: credit that came free above it counts too.
                return match self.try_acquire_many(channel, lens) {
                    Err(SendError::Full) => Err(SendError::Timeout),
                    other => other,
                };
            }
        }
    }

    /// Returns one credit on `channel`, taken for a message of `len` payload bytes (the shard
    /// handed the message to the connection, or dropped it).
    pub(crate) fn release(&self, channel: u8, len: usize) {
        if let Ok(c) = self.credit(channel) {
            // Every release pairs with an earlier acquire of the same length, whose add
            // happens before the command that leads here: a plain subtraction cannot wrap.
            c.pending.fetch_sub(len as u64, Ordering::Relaxed);
            let budgeted = self.budgeted();
            if budgeted {
                self.pending.fetch_sub(len as u64, Ordering::SeqCst);
            }
            let prev = c
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| u.checked_sub(1))
                .unwrap_or(0);
            let budget_waiters = budgeted
                && self.budget_waiters.load(Ordering::SeqCst)
                && self.budget_waiters.swap(false, Ordering::SeqCst);
            // Waiters only exist once the channel was full, and every drain from full to the
            // low mark passes this release.
            if prev == low_mark(c.capacity) + 1 || budget_waiters {
                self.space.notify_waiters();
            }
        }
    }

    /// Marks the peer gone and wakes every waiting sender.
    pub(crate) fn mark_gone(&self) {
        self.alive.store(false, Ordering::Release);
        self.space.notify_waiters();
    }
}

/// The number of credits in use at or below which senders waiting for a channel of
/// `capacity` credits are woken: half the queue (0 for a queue of one).
fn low_mark(capacity: usize) -> usize {
    capacity / 2
}

/// How many of the messages `lens` fit a budget of `budget` bytes with `pending` bytes
/// already waiting, and their bytes. The first fits whatever its size when nothing waits.
fn fit(pending: u64, budget: u64, lens: &[usize]) -> (usize, u64) {
    let mut bytes = 0u64;
    let mut n = 0;
    for &len in lens {
        let next = pending.saturating_add(bytes).saturating_add(len as u64);
        if next > budget && !(pending == 0 && n == 0) {
            break;
        }
        bytes = bytes.saturating_add(len as u64);
        n += 1;
    }
    (n, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::conn::Mode;
    use crate::proto::nodeinfo::NodeInfo;
    use crate::proto::secret::NodeKey;
    use std::time::Duration;

    fn entry(cap: usize) -> PeerEntry {
        let info = Arc::new(PeerInfo {
            node_id: NodeKey::from_seed([3; 32]).node_id(),
            node_info: NodeInfo::default(),
            mode: Mode::Native,
            capabilities: vec!["archive".into()],
        });
        PeerEntry::new(info, 1, 0, Direction::Outbound, None, [(0x20, cap)])
    }

    #[test]
    fn credit_runs_out_and_returns() {
        let e = entry(2);
        assert_eq!(e.try_acquire(0x20, 10), Ok(()));
        assert_eq!(e.try_acquire(0x20, 25), Ok(()));
        assert_eq!(e.try_acquire(0x20, 10), Err(SendError::Full));
        assert_eq!(
            e.try_acquire(0x21, 10),
            Err(SendError::ChannelNotShared(0x21))
        );
        let pending = |e: &PeerEntry| e.traffic().channels[0].pending_bytes;
        assert_eq!(pending(&e), 35, "a refused send adds no pending bytes");
        e.release(0x20, 10);
        assert_eq!(pending(&e), 25);
        assert_eq!(e.try_acquire(0x20, 10), Ok(()));
        assert_eq!(pending(&e), 35);
        e.mark_gone();
        assert_eq!(e.try_acquire(0x20, 10), Err(SendError::PeerGone));
        assert!(e.has_capability("archive"));
    }

    #[test]
    fn credits_are_taken_many_at_a_time() {
        let e = entry(8);
        let pending = |e: &PeerEntry| e.traffic().channels[0].pending_bytes;
        assert_eq!(e.try_acquire_many(0x20, &[1, 2, 3]), Ok(3));
        assert_eq!(e.try_acquire_many(0x20, &[10; 20]), Ok(5), "the 5 left");
        assert_eq!(pending(&e), 56, "lengths of the taken ones only");
        assert_eq!(e.try_acquire_many(0x20, &[10]), Err(SendError::Full));
        e.release(0x20, 10);
        assert_eq!(e.try_acquire_many(0x20, &[7, 7]), Ok(1));
        assert_eq!(pending(&e), 53);
        assert_eq!(
            e.try_acquire_many(0x21, &[1]),
            Err(SendError::ChannelNotShared(0x21))
        );
        e.mark_gone();
        assert_eq!(e.try_acquire_many(0x20, &[1]), Err(SendError::PeerGone));
    }

    #[test]
    fn the_byte_budget_spans_every_channel_of_the_peer() {
        let info = entry(1).info.clone();
        let e = PeerEntry::new(
            info,
            1,
            0,
            Direction::Outbound,
            None,
            [(0x20, 8), (0x21, 8)],
        )
        .with_send_budget(100, u64::MAX);
        assert_eq!(e.try_acquire_many(0x20, &[40, 40, 40]), Ok(2), "80 of 100");
        assert_eq!(
            e.try_acquire(0x21, 30),
            Err(SendError::Full),
            "over on 0x21"
        );
        assert_eq!(e.try_acquire(0x21, 20), Ok(()), "exactly 100");
        assert_eq!(e.pending_bytes(), 100);
        let queued = |e: &PeerEntry| -> Vec<usize> {
            e.traffic()
                .channels
                .iter()
                .map(|c| c.queued_messages)
                .collect()
        };
        assert_eq!(queued(&e), vec![2, 1], "refused sends keep no credit");
        e.release(0x20, 40);
        assert_eq!(e.try_acquire(0x21, 40), Ok(()));
        assert_eq!(e.try_acquire(0x21, 1), Err(SendError::Full));
        // A message larger than the whole budget goes when nothing else waits.
        for (ch, len) in [(0x20, 40), (0x21, 20), (0x21, 40)] {
            e.release(ch, len);
        }
        assert_eq!(e.pending_bytes(), 0);
        assert_eq!(e.try_acquire(0x20, 500), Ok(()));
        assert_eq!(e.try_acquire(0x21, 1), Err(SendError::Full));
    }

    #[test]
    fn a_budget_the_credits_cannot_reach_is_not_counted() {
        let info = entry(1).info.clone();
        let two = |budget| {
            PeerEntry::new(info.clone(), 1, 0, Direction::Outbound, None, [(0x20, 2)])
                .with_send_budget(budget, 100)
        };
        // Two credits of at most 50 bytes each never reach 100 bytes.
        let e = two(100);
        assert_eq!(e.try_acquire_many(0x20, &[50, 50]), Ok(2));
        assert_eq!(e.pending_bytes(), 0, "the budget is not counted");
        assert_eq!(e.traffic().channels[0].pending_bytes, 100);
        assert_eq!(e.try_acquire(0x20, 50), Err(SendError::Full), "no credit");
        e.release(0x20, 50);
        assert_eq!(e.try_acquire(0x20, 50), Ok(()));
        // One byte less and it applies.
        let e = two(99);
        assert_eq!(e.try_acquire_many(0x20, &[50, 50]), Ok(1));
        assert_eq!(e.pending_bytes(), 50);
        e.release(0x20, 50);
        assert_eq!(e.pending_bytes(), 0);
    }

    #[test]
    fn a_sender_waiting_for_the_byte_budget_is_woken_by_another_channel() {
        let info = entry(1).info.clone();
        let e = Arc::new(
            PeerEntry::new(
                info,
                1,
                0,
                Direction::Outbound,
                None,
                [(0x20, 8), (0x21, 8)],
            )
            .with_send_budget(100, u64::MAX),
        );
        e.try_acquire(0x20, 100).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            clock::block_on(e.acquire(0x21, 10, soon)),
            Err(SendError::Timeout)
        );
        let e2 = e.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            e2.release(0x20, 100);
        });
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(clock::block_on(e.acquire(0x21, 10, later)), Ok(()));
        t.join().unwrap();
    }

    /// An entry whose channel 0x20 has all its `cap` credits taken.
    fn full_entry(cap: usize) -> Arc<PeerEntry> {
        let e = Arc::new(entry(cap));
        assert_eq!(e.try_acquire_many(0x20, &vec![1; cap]), Ok(cap));
        e
    }

    /// Releases `n` credits of channel 0x20, one every 20 ms, from another thread.
    fn release_later(e: &Arc<PeerEntry>, n: usize) -> std::thread::JoinHandle<()> {
        let e = e.clone();
        std::thread::spawn(move || {
            for _ in 0..n {
                std::thread::sleep(Duration::from_millis(20));
                e.release(0x20, 1);
            }
        })
    }

    #[test]
    fn a_waiting_sender_wakes_at_the_low_mark_and_takes_half_a_queue() {
        let e = full_entry(8);
        let t = release_later(&e, 4);
        let later = Instant::now() + Duration::from_secs(10);
        // Woken by the fourth release (8 used down to 4), not the first: four credits at once.
        assert_eq!(clock::block_on(e.acquire_many(0x20, &[1; 8], later)), Ok(4));
        t.join().unwrap();
    }

    #[test]
    fn at_its_deadline_a_waiting_sender_takes_credit_freed_above_the_low_mark() {
        let e = full_entry(8);
        // 8 used down to 7: above the low mark, so no wake.
        let t = release_later(&e, 1);
        let soon = Instant::now() + Duration::from_millis(200);
        assert_eq!(clock::block_on(e.acquire_many(0x20, &[1; 4], soon)), Ok(1));
        assert!(Instant::now() >= soon, "woken before the low mark");
        t.join().unwrap();
    }

    #[test]
    fn waiting_sender_times_out_or_is_woken() {
        let e = Arc::new(entry(1));
        e.try_acquire(0x20, 10).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            clock::block_on(e.acquire(0x20, 10, soon)),
            Err(SendError::Timeout)
        );
        let e2 = e.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            e2.release(0x20, 10);
        });
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(clock::block_on(e.acquire(0x20, 10, later)), Ok(()));
        t.join().unwrap();
    }
}
