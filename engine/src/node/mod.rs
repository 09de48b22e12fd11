//! A node: configuration → shard threads + router; start and stop.
//!
//! With [`NodeBuilder::peer_manager`] or [`NodeBuilder::persistent_peers`] the node runs the
//! peer manager ([`crate::peers`]): its admission limits apply from `accept` on (before a
//! connection allocates anything), simultaneous dials resolve to one connection by the
//! [tie-break](crate::peers::resolve), and persistent peers are dialed and redialled with
//! jittered exponential backoff by a small dialer thread.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use ringwire::node::Node;
//! use ringwire::proto::conn::ChannelDescriptor;
//! use ringwire::proto::secret::NodeKey;
//! use ringwire::router::Envelope;
//!
//! let node = Node::builder(NodeKey::from_seed([7; 32]), "my-chain")
//!     .listen("127.0.0.1:26656".parse().unwrap())
//!     .start()
//!     .unwrap();
//! let mut consensus = node.open_channel(ChannelDescriptor::stock()[1].clone()).unwrap();
//! let deadline = Instant::now() + Duration::from_secs(1);
//! consensus.send_blocking(Envelope::broadcast(Bytes::from_static(b"vote")), deadline).unwrap();
//! while let Some(msg) = consensus.recv_blocking(deadline) {
//!     println!("{:?} sent {} bytes", msg.origin, msg.payload.len());
//! }
//! node.shutdown_blocking(Instant::now() + Duration::from_secs(5));
//! ```
#![forbid(unsafe_code)]

mod builder;
mod from_config;
mod limits;
mod peering;
mod scoring;
mod start;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::peers::{AdmissionStats, Bans, RefusalCounts, ScoreCounts};
use crate::pex::service::PexRuntime;
use crate::pex::{BookEntry, PexAddr};
use crate::proto::conn::{ChannelDescriptor, PeerInfo};
use crate::proto::secret::{NodeId, NodeKey};
use crate::router::{
    CancelToken, Channel, ChannelError, DialError, NodeStats, PeerEvents, PeerSummary, PeerTraffic,
    Router,
};
use crate::rt::clock;
use crate::rt::driver::DriverKind;
use crate::rt::memory::memory_pipe;
use crate::shard::{Command, DialTarget};

pub use builder::{NodeBuilder, StartError};
pub use limits::Limits;
use peering::Peering;

/// Submission queue entries of each shard's ring.
const RING_ENTRIES: u32 = 256;

/// A node's parts once started. Dropping it stops them all (the shards, the dialer, PEX): a
/// running node when its last handle goes, or a start that failed half way.
struct NodeInner {
    router: Arc<Router>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    kind: DriverKind,
    listen_addr: Option<SocketAddr>,
    limits: Limits,
    peering: Option<Arc<Peering>>,
    dialer: Mutex<Option<JoinHandle<()>>>,
    pex: Option<PexRuntime>,
}

impl NodeInner {
    /// Stops the dialer thread (after the shards, so its dial in flight has failed).
    fn stop_dialer(&self) {
        if let Some(p) = &self.peering {
            p.stop();
        }
        let dialer = self.dialer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(d) = dialer {
            let _ = d.join();
        }
        if let Some(p) = &self.peering {
            p.save_bans();
        }
        if let Some(p) = &self.pex {
            p.join();
        }
    }
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        if let Some(p) = &self.peering {
            p.stop();
        }
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !threads.is_empty() {
            stop_threads(
                &self.router,
                threads,
                Instant::now() + self.limits.close_grace,
            );
        }
        self.stop_dialer();
    }
}

/// Tells every shard to stop and joins the threads (blocking).
fn stop_threads(router: &Router, threads: Vec<JoinHandle<()>>, deadline: Instant) {
    let registry = router.registry();
    registry.stop();
    let inboxes = router.inboxes();
    let mut waits = Vec::new();
    for shard in 0..inboxes.len() {
        let (done, wait) = oneshot::channel();
        if inboxes
            .try_send(shard, Command::Shutdown { deadline, done })
            .is_ok()
        {
            waits.push(wait);
        }
    }
    for w in waits {
        let _ = clock::block_on(clock::timeout_at(deadline + Duration::from_secs(1), w));
    }
    for t in threads {
        let _ = t.join();
    }
    registry.close_channels();
}

/// A running node. Cheap to clone; every method works from any thread.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.node_id())
            .field("driver", &self.inner.kind)
            .field("listen", &self.inner.listen_addr)
            .finish()
    }
}

impl Node {
    /// A builder for a node with this identity on this network (chain id).
    pub fn builder(node_key: NodeKey, network: &str) -> NodeBuilder {
        NodeBuilder::new(node_key, network)
    }

    /// This node's ID.
    pub fn node_id(&self) -> NodeId {
        self.inner.router.registry().local_id
    }

    /// The bound listen address, if listening.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.inner.listen_addr
    }

    /// The I/O driver that runs.
    pub fn driver(&self) -> DriverKind {
        self.inner.kind
    }

    /// Number of shard threads.
    pub fn shards(&self) -> usize {
        self.inner.router.inboxes().len()
    }

    /// Opens a channel: registers it if needed and returns its handle (once per channel).
    pub fn open_channel(&self, desc: ChannelDescriptor) -> Result<Channel, ChannelError> {
        self.inner.router.open_channel(desc)
    }

    /// Subscribes to peer up/down events from now on. Peers that came up while the node was
    /// starting are not reported: [`NodeBuilder::start_with_events`] subscribes before.
    pub fn peer_events(&self) -> PeerEvents {
        self.inner.router.registry().subscribe()
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerSummary> {
        self.inner.router.registry().peer_list()
    }

    /// Bytes sent and received per connected peer and channel, and messages queued.
    pub fn peer_traffic(&self) -> Vec<PeerTraffic> {
        self.inner.router.registry().peer_traffic()
    }

    /// Commands waiting in each shard's inbox (index = shard).
    pub fn inbox_depths(&self) -> Vec<usize> {
        self.inner.router.inboxes().depths()
    }

    /// Counters (the score counters stay 0 without a peer manager).
    pub fn stats(&self) -> NodeStats {
        let mut s = self.inner.router.registry().stats();
        if let Some(c) = self.score_counts() {
            use crate::peers::Offence as O;
            s.offences_protocol_violation = c.offences(O::ProtocolViolation);
            s.offences_pex_abuse = c.offences(O::PexAbuse);
            s.offences_budget_exceeded = c.offences(O::BudgetExceeded);
            s.offences_control_flood = c.offences(O::ControlFlood);
            s.offences_timeout = c.offences(O::Timeout);
            s.bans_protocol_violation = c.bans(O::ProtocolViolation);
            s.bans_pex_abuse = c.bans(O::PexAbuse);
            s.bans_budget_exceeded = c.bans(O::BudgetExceeded);
            s.bans_control_flood = c.bans(O::ControlFlood);
            s.bans_timeout = c.bans(O::Timeout);
            s.address_bans = c.ip_bans;
        }
        s
    }

    /// The addresses PEX has learned (empty when PEX is off).
    pub fn pex_addresses(&self) -> Vec<PexAddr> {
        self.inner.pex.as_ref().map_or_else(Vec::new, |p| {
            p.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .addresses()
        })
    }

    /// The address book, row by row (empty when PEX is off).
    pub fn address_book(&self) -> Vec<BookEntry> {
        self.inner.pex.as_ref().map_or_else(Vec::new, |p| {
            p.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .book_view(Instant::now())
        })
    }

    /// Dials the configured seeds now, once each, as PEX does when its book is low: PEX asks
    /// each seed that connects for addresses and lets it go once it answered. Seeds connected,
    /// being dialed or banned are left alone. Returns the seeds dialed (none without a peer
    /// manager).
    pub fn dial_seeds(&self) -> Vec<NodeId> {
        let Some(p) = &self.inner.peering else {
            return Vec::new();
        };
        let dialed = p.dial_seeds();
        if let Some(pex) = &self.inner.pex {
            let mut state = pex.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            for id in &dialed {
                state.seed_dialed(*id, now);
            }
        }
        dialed
    }

    /// The peer manager's admission counts (peers per direction, handshakes in progress),
    /// if the node runs one.
    pub fn admission_stats(&self) -> Option<AdmissionStats> {
        self.inner.peering.as_ref().map(|p| p.stats())
    }

    /// The connected peers that hold this node's outbound places (the outbound limit's count,
    /// [`AdmissionStats::outbound`]): those it dialed, and those whose connection came in while
    /// it was dialing them, which take the place the dial reserved. Empty without a peer
    /// manager.
    pub fn outbound_places(&self) -> Vec<NodeId> {
        self.inner
            .peering
            .as_ref()
            .map_or_else(Vec::new, |p| p.outbound_places())
    }

    /// The peer manager's refusals so far, by reason, if the node runs one.
    pub fn admission_refusals(&self) -> Option<RefusalCounts> {
        self.inner.peering.as_ref().map(|p| p.refusals())
    }

    /// `peer`'s score (see [`crate::peers::Scores`]; 0 for a peer not seen), if the node runs
    /// a peer manager.
    pub fn peer_score(&self, peer: &NodeId) -> Option<i64> {
        self.inner.peering.as_ref().map(|p| p.score(peer))
    }

    /// Offences and bans by score so far, by reason, if the node runs a peer manager.
    pub fn score_counts(&self) -> Option<ScoreCounts> {
        self.inner.peering.as_ref().map(|p| p.score_counts())
    }

    /// The bans in force (by node ID and by address), if the node runs a peer manager.
    pub fn bans(&self) -> Option<Bans> {
        self.inner.peering.as_ref().map(|p| p.bans())
    }

    /// Dials `addr` and waits until the peer is up (handshake, NodeInfo and admission done).
    /// With `expected`, the peer must authenticate as that ID. Under the peer manager, pass
    /// `expected`: the dial then reserves its outbound place before connecting and takes part
    /// in the simultaneous-dial tie-break (a dial to a connected peer is refused at once).
    pub async fn dial(
        &self,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<Arc<PeerInfo>, DialError> {
        let deadline = Instant::now() + self.inner.limits.dial_timeout;
        self.inner
            .router
            .dial(DialTarget::Tcp(addr), expected, deadline)
            .await
    }

    /// [`Node::dial`] for callers outside any executor.
    pub fn dial_blocking(
        &self,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<Arc<PeerInfo>, DialError> {
        clock::block_on(self.dial(addr, expected))
    }

    /// [`Node::dial_blocking`] that also gives up when `cancel` fires, with
    /// [`DialError::Abandoned`]: a TCP connect still in progress is dropped, and a connection
    /// still in its handshake is closed instead of admitted. A peer that came up before the
    /// token fired stays connected (the call may still report `Abandoned` if both happen at
    /// once; the peer events tell).
    pub fn dial_blocking_cancellable(
        &self,
        addr: SocketAddr,
        expected: Option<NodeId>,
        cancel: &CancelToken,
    ) -> Result<Arc<PeerInfo>, DialError> {
        clock::block_on(cancel.run(self.dial(addr, expected))).unwrap_or(Err(DialError::Abandoned))
    }

    /// Connects this node to `other` over an in-memory pipe (no sockets); waits until the peer
    /// is up on this side.
    pub async fn connect_memory(&self, other: &Node) -> Result<Arc<PeerInfo>, DialError> {
        let deadline = Instant::now() + self.inner.limits.dial_timeout;
        let (mine, theirs) = memory_pipe(self.inner.limits.memory_pipe_capacity);
        other.inner.router.adopt(theirs, deadline).await?;
        self.inner
            .router
            .dial(DialTarget::Memory(mine), Some(other.node_id()), deadline)
            .await
    }

    /// [`Node::connect_memory`] for callers outside any executor.
    pub fn connect_memory_blocking(&self, other: &Node) -> Result<Arc<PeerInfo>, DialError> {
        clock::block_on(self.connect_memory(other))
    }

    /// Closes the connection to `peer`; returns whether it was connected.
    pub fn disconnect(&self, peer: &NodeId, reason: &str) -> bool {
        self.inner.router.disconnect(peer, reason)
    }

    /// Bans `peer` until `until` and closes its connection: it is neither dialed nor admitted
    /// meanwhile. Needs the peer manager ([`NodeBuilder::peer_manager`]); returns false
    /// without one (a node with its own [`PeerGate`](crate::router::PeerGate) keeps its own ban list).
    pub fn ban(&self, peer: &NodeId, until: Instant) -> bool {
        let Some(p) = &self.inner.peering else {
            return false;
        };
        p.ban(*peer, until);
        self.inner.router.disconnect(peer, "banned");
        true
    }

    /// Stops the node: refuses new work, closes every connection (native peers are told why),
    /// waits for them until `deadline`, and stops the shard threads. Call it from an
    /// application thread, never from inside a [`crate::router::PeerGate`] callback.
    pub async fn shutdown(&self, deadline: Instant) {
        let registry = self.inner.router.registry();
        let inboxes = self.inner.router.inboxes();
        if let Some(p) = &self.inner.peering {
            p.stop();
        }
        registry.stop();
        let mut waits = Vec::new();
        for shard in 0..inboxes.len() {
            let (done, wait) = oneshot::channel();
            if inboxes
                .send(shard, Command::Shutdown { deadline, done }, Some(deadline))
                .await
                .is_ok()
            {
                waits.push(wait);
            }
        }
        for w in waits {
            let _ = clock::timeout_at(deadline + Duration::from_secs(1), w).await;
        }
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|e| e.into_inner()));
        // The shards have finished (or were told to); joining takes no longer than their exit.
        for t in threads {
            let _ = t.join();
        }
        self.inner.stop_dialer();
        registry.close_channels();
    }

    /// [`Node::shutdown`] for callers outside any executor.
    pub fn shutdown_blocking(&self, deadline: Instant) {
        clock::block_on(self.shutdown(deadline));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::conn::Compression;
    use crate::router::Envelope;
    use crate::rt::driver::{self, Driver};
    use crate::rt::net;

    fn chan() -> ChannelDescriptor {
        ChannelDescriptor {
            id: 0x20,
            priority: 1,
            send_queue_capacity: 16,
            recv_message_capacity: 1 << 20,
            compression: Compression::Off,
        }
    }

    fn node(seed: u8, native: bool, refuse_read_pool: bool) -> Node {
        let mut b = Node::builder(NodeKey::from_seed([seed; 32]), "test-chain")
            .driver(Driver::IoUring)
            .shards(2)
            .listen("127.0.0.1:0".parse().unwrap())
            .offer_native(native)
            .channel(chan());
        b.refuse_read_pool = refuse_read_pool;
        b.start().expect("the node starts")
    }

    /// Sends messages both ways between two nodes on io_uring with the default limits and
    /// returns the multishot receives armed on each side.
    fn exchange(native: bool, refuse_a: bool, refuse_b: bool) -> (u64, u64) {
        let a = node(1, native, refuse_a);
        let b = node(2, native, refuse_b);
        a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
            .expect("dial");
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.peers().is_empty() {
            assert!(Instant::now() < deadline, "the peer did not come up");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut ca = a.open_channel(chan()).unwrap();
        let mut cb = b.open_channel(chan()).unwrap();
        let deadline = || Instant::now() + Duration::from_secs(10);
        // Small and larger than one read buffer (32 KiB), so reads span buffers.
        for (i, len) in [1usize, 1000, 100_000, 700_000].into_iter().enumerate() {
            let msg = bytes::Bytes::from(vec![i as u8 + 1; len]);
            ca.send_blocking(Envelope::peer(b.node_id(), msg.clone()), deadline())
                .unwrap();
            assert_eq!(cb.recv_blocking(deadline()).expect("a to b").payload, msg);
            cb.send_blocking(Envelope::peer(a.node_id(), msg.clone()), deadline())
                .unwrap();
            assert_eq!(ca.recv_blocking(deadline()).expect("b to a").payload, msg);
        }
        let arms = (a.stats().multishot_arms, b.stats().multishot_arms);
        a.shutdown_blocking(deadline());
        b.shutdown_blocking(deadline());
        arms
    }

    fn io_uring_available() -> bool {
        if driver::probe().is_err() {
            eprintln!("io_uring unavailable: nothing to test");
            return false;
        }
        true
    }

    #[test]
    fn io_uring_receives_into_lent_buffers_by_default() {
        if !io_uring_available() {
            return;
        }
        let (a, b) = exchange(true, false, false);
        if net::multishot_recv_native() {
            assert!(a > 0 && b > 0, "multishot receives armed: {a}, {b}");
        }
        exchange(false, false, false);
    }

    #[test]
    fn refused_read_pool_falls_back_to_own_buffers() {
        if !io_uring_available() {
            return;
        }
        // Every shard of `a` is refused its ring: it still exchanges messages, reading into
        // per-connection buffers (no multishot receive), while `b` keeps its ring.
        let (a, b) = exchange(true, true, false);
        assert_eq!(a, 0, "a refused ring arms no multishot receive");
        if net::multishot_recv_native() {
            assert!(
                b > 0,
                "the other node still receives with multishot receives"
            );
        }
        assert_eq!(exchange(true, true, true), (0, 0));
        exchange(false, true, true);
    }
}
