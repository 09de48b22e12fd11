//! A connected peer as every thread sees it: identity, where it lives, and per-channel send
//! credit.
//!
//! Credit policy: each channel the peer shares has `send_queue_capacity` credits. A sender takes
//! one before it hands a message to the peer's shard and the shard returns it once the
//! connection has accepted the message into its own queue (which is bounded by the same
//! capacity). So at most twice the capacity waits per peer and channel, and a sender learns
//! `Full` at once, on its own thread, without a round trip to the shard. Senders that wait for
//! credit sleep on one notifier per peer, woken when credit returns after the channel was at
//! capacity or when the peer goes down.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

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
    credits: Box<[Credit]>,
    alive: AtomicBool,
    space: Notify,
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
        PeerEntry {
            info,
            conn,
            shard,
            direction,
            addr,
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
            alive: AtomicBool::new(true),
            space: Notify::new(),
        }
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
        PeerSummary {
            info: self.info.clone(),
            direction: self.direction,
            addr: self.addr,
            shard: self.shard,
        }
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

    /// Takes as many credits on `channel` as there are free, up to one per entry of `lens`
    /// (the payload lengths of the messages, in order), or reports why not (`Full`: none
    /// free). Returns how many it took.
    pub(crate) fn try_acquire_many(&self, channel: u8, lens: &[usize]) -> Result<usize, SendError> {
        if !self.is_alive() {
            return Err(SendError::PeerGone);
        }
        let c = self.credit(channel)?;
        let mut took = 0;
        c.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                took = c.capacity.saturating_sub(u).min(lens.len());
                (took > 0).then_some(u + took)
            })
            .map_err(|_| SendError::Full)?;
        let bytes: usize = lens[..took].iter().sum();
        c.pending.fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(took)
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
            match self.try_acquire_many(channel, lens) {
                Err(SendError::Full) => {}
                other => return other,
            }
            if clock::timeout_at(deadline, notified).await.is_none() {
                return Err(SendError::Timeout);
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
            let prev = c
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| u.checked_sub(1))
                .unwrap_or(0);
            if prev >= c.capacity {
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
