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

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::peering::Peering;
use crate::peers::{AddrListError, AdmissionStats, ManagerConfig, PeerAddr, PeerManager};
use crate::pex::service::PexRuntime;
use crate::pex::{self, Pex, PexAddr, PexConfig};
use crate::proto::conn::{ChannelDescriptor, Connection, ConnectionConfig, PeerInfo};
use crate::proto::nodeinfo::{NodeInfo, NodeInfoOther, ProtocolVersion};
use crate::proto::secret::{NodeId, NodeKey};
use crate::router::{
    Channel, ChannelError, DefaultGate, DialError, NodeStats, PeerEvents, PeerGate, PeerSummary,
    PeerTraffic, Router, RouterConfig,
};
use crate::rt::driver::{self, Driver, DriverError, DriverKind};
use crate::rt::memory::memory_pipe;
use crate::rt::{clock, net, thread};
use crate::shard::{Command, DialTarget, Shard, ShardConfig};

/// Submission queue entries of each shard's ring.
const RING_ENTRIES: u32 = 256;

/// Default of [`Limits::shard_read_buffers`].
const DEFAULT_SHARD_READ_BUFFERS: u16 = 256;

/// Most buffers in a provided-buffer ring (the kernel's limit on its entries).
const MAX_SHARD_READ_BUFFERS: u16 = 1 << 15;

/// Bounds on queues, buffers and connection counts. Every queue in the node is bounded by one
/// of these (or by a channel's descriptor).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Commands waiting in one shard's inbox.
    pub inbox_capacity: usize,
    /// Messages waiting in one channel's receive queue for the application.
    pub recv_queue_capacity: usize,
    /// Peer events a subscriber may fall behind before it loses the oldest.
    pub peer_event_capacity: usize,
    /// Most connections per shard (inbound beyond it are closed at once).
    pub max_connections_per_shard: usize,
    /// Bytes read per read call, per connection.
    pub read_buffer: usize,
    /// Buffers (of `read_buffer` bytes) each shard lends to reads; 0 gives every connection
    /// its own read buffer instead. The pool is an io_uring provided-buffer ring: the kernel
    /// picks a buffer when data arrives, so idle connections hold none. Ignored on epoll.
    /// Rounded up to a power of two, at most 32768.
    ///
    /// The default, 256 (8 MiB of address space per shard with the default `read_buffer`,
    /// touched only as data arrives), makes lent buffers and multishot receive the io_uring
    /// default: a shard holds one fixed pool instead of a buffer per connection. In the
    /// loopback measurements of `tests/node_throughput.rs` 256 buffers ran within the noise of
    /// per-connection buffers (one connection, 256 B and 64 KiB messages), and a two-shard hub
    /// with 1000 idle peers used 20.9 MB of RSS instead of 23.0 MB (`rss_per_idle_peer`; the
    /// rings' share is about 1 MB per shard, paid at start). If a shard's
    /// kernel refuses the ring (a low `RLIMIT_MEMLOCK`, an older kernel, any error), that
    /// shard logs one warning and its connections read into buffers of their own; the node
    /// still starts.
    pub shard_read_buffers: u16,
    /// With lent buffers (`shard_read_buffers` > 0) on io_uring: keep one multishot receive
    /// armed per connection instead of submitting a receive per read. Used only when the
    /// kernel supports it natively (Linux 6.0+); otherwise reads stay single-shot.
    pub multishot_recv: bool,
    /// On io_uring, writes of at least this many bytes go out as zero-copy sends (`SEND_ZC`);
    /// 0 turns them off. The default, 64 KiB, is where zero-copy sends overtook plain ones in
    /// the loopback measurement `rt::net::tests::send_zc_threshold` (below it they were up to
    /// twice as slow).
    pub send_zc_threshold: usize,
    /// Bytes coalesced into one write, per connection.
    pub write_batch: usize,
    /// TCP connect timeout for dials.
    pub dial_timeout: Duration,
    /// How long a closing connection may take to flush its last bytes.
    pub close_grace: Duration,
    /// Listen backlog.
    pub backlog: i32,
    /// Buffer of each direction of an in-memory connection.
    pub memory_pipe_capacity: usize,
    /// Inbox commands a shard handles in a row before it yields to I/O completions and its
    /// connections' tasks (0 counts as 1). Bounds how long a full inbox (an unpaced broadcast
    /// loop) can keep a shard from reading and writing its sockets.
    pub commands_per_turn: usize,
    /// `TCP_NOTSENT_LOWAT` of every TCP connection, in bytes; 0 leaves the kernel's default
    /// (no limit). The kernel then holds at most about this many unsent bytes per socket, so
    /// a high-priority message waits behind that much lower-priority data at most instead of
    /// a whole socket buffer; see docs/PERFORMANCE.md for the measurement behind the default.
    pub tcp_notsent_lowat: u32,
    /// `SO_RCVBUF` of every TCP connection, in bytes; 0 keeps the kernel's autotuning. This
    /// bounds how much the peer can have in flight towards this node, which is what a
    /// high-priority message from the peer waits behind once low-priority data fills the
    /// connection; see docs/PERFORMANCE.md.
    pub tcp_recv_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            inbox_capacity: 4096,
            recv_queue_capacity: 1024,
            peer_event_capacity: 1024,
            max_connections_per_shard: 4096,
            read_buffer: 32 * 1024,
            shard_read_buffers: DEFAULT_SHARD_READ_BUFFERS,
            multishot_recv: true,
            send_zc_threshold: 64 * 1024,
            write_batch: 256 * 1024,
            dial_timeout: Duration::from_secs(3),
            close_grace: Duration::from_secs(1),
            backlog: 1024,
            memory_pipe_capacity: 256 * 1024,
            commands_per_turn: 64,
            tcp_notsent_lowat: 16 * 1024,
            tcp_recv_buffer: 0,
        }
    }
}

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No usable I/O driver.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A channel was refused.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The connection settings are invalid.
    #[error("connection settings: {0}")]
    Config(String),
}

/// A change to the per-connection settings.
type Tune = Box<dyn FnOnce(&mut ConnectionConfig) + Send>;

/// Builds a [`Node`].
pub struct NodeBuilder {
    node_key: NodeKey,
    node_info: NodeInfo,
    listen: Option<SocketAddr>,
    shards: usize,
    driver: Driver,
    pin_threads: bool,
    channels: Vec<ChannelDescriptor>,
    limits: Limits,
    gate: Arc<dyn PeerGate>,
    manager: Option<ManagerConfig>,
    tune: Vec<Tune>,
    offer_native: bool,
    capabilities: Vec<String>,
    pex: Option<PexConfig>,
    /// Shards act as if the kernel refused their provided-buffer ring.
    #[cfg(test)]
    refuse_read_pool: bool,
}

impl NodeBuilder {
    fn new(node_key: NodeKey, network: &str) -> Self {
        NodeBuilder {
            node_key,
            node_info: NodeInfo {
                protocol_version: ProtocolVersion {
                    p2p: crate::proto::nodeinfo::STOCK_P2P_PROTOCOL,
                    block: crate::proto::nodeinfo::STOCK_BLOCK_PROTOCOL,
                    app: 0,
                },
                node_id: String::new(),
                listen_addr: String::new(),
                network: network.to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                channels: Vec::new(),
                moniker: "ringwire".to_owned(),
                other: NodeInfoOther {
                    tx_index: "off".to_owned(),
                    rpc_address: String::new(),
                },
            },
            listen: None,
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            driver: Driver::Auto,
            pin_threads: false,
            channels: Vec::new(),
            limits: Limits::default(),
            gate: Arc::new(DefaultGate),
            manager: None,
            tune: Vec::new(),
            offer_native: true,
            capabilities: Vec::new(),
            pex: None,
            #[cfg(test)]
            refuse_read_pool: false,
        }
    }

    /// Replaces the NodeInfo sent to peers (its ID and channel list are always filled in from
    /// the key and the channels).
    pub fn node_info(mut self, info: NodeInfo) -> Self {
        self.node_info = info;
        self
    }

    /// Sets the moniker.
    pub fn moniker(mut self, moniker: impl Into<String>) -> Self {
        self.node_info.moniker = moniker.into();
        self
    }

    /// Listens for inbound TCP on `addr` (port 0 picks one; see [`Node::listen_addr`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Number of shard threads (default: available cores).
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n.max(1);
        self
    }

    /// The I/O driver (default `Auto`).
    pub fn driver(mut self, driver: Driver) -> Self {
        self.driver = driver;
        self
    }

    /// Pins shard `i` to CPU `i` (modulo the available cores).
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.pin_threads = pin;
        self
    }

    /// Registers a channel before start (it can also be opened later with
    /// [`Node::open_channel`], but connections made before that do not carry it).
    pub fn channel(mut self, desc: ChannelDescriptor) -> Self {
        self.channels.push(desc);
        self
    }

    /// Queue and buffer bounds.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Offer ringwire's native protocol to peers (default true). With `false` every connection
    /// speaks stock MConnection.
    pub fn offer_native(mut self, offer: bool) -> Self {
        self.offer_native = offer;
        self
    }

    /// Service capabilities announced to native peers.
    pub fn capabilities<I, S>(mut self, caps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capabilities = caps.into_iter().map(Into::into).collect();
        self
    }

    /// The admission gate (the peer manager's seam; default: first connection per peer wins).
    pub fn gate(mut self, gate: Arc<dyn PeerGate>) -> Self {
        self.gate = gate;
        self
    }

    /// Runs the peer manager: its limits, tie-break and bans become the admission gate
    /// (replacing [`NodeBuilder::gate`]), enforced from `accept` on, and its persistent peers
    /// are dialed and redialled with backoff.
    pub fn peer_manager(mut self, config: ManagerConfig) -> Self {
        self.manager = Some(config);
        self
    }

    /// Peers to keep connected: dialed at start and redialled with jittered exponential
    /// backoff whenever they go away. Turns the peer manager on (default settings unless
    /// [`NodeBuilder::peer_manager`] set them; call that first).
    pub fn persistent_peers(mut self, peers: Vec<PeerAddr>) -> Self {
        self.manager
            .get_or_insert_with(ManagerConfig::default)
            .persistent_peers = peers;
        self
    }

    /// [`NodeBuilder::persistent_peers`] from a comma-separated `id@host:port` list, as in
    /// CometBFT's `persistent_peers`.
    pub fn persistent_peers_list(self, list: &str) -> Result<Self, AddrListError> {
        let peers = crate::peers::parse_addr_list(list)?;
        Ok(self.persistent_peers(peers))
    }

    /// Runs peer exchange on channel 0x00 ([`crate::pex`]) with compat and native peers alike:
    /// registers stock's PEX channel and starts the PEX service with the node. Off unless
    /// called (the configuration file's `p2p.pex` defaults to on, as in CometBFT).
    pub fn pex(mut self, config: PexConfig) -> Self {
        self.pex = Some(config);
        self
    }

    /// Adjusts the per-connection protocol settings (timeouts, windows, compression).
    pub fn connection_config(
        mut self,
        f: impl FnOnce(&mut ConnectionConfig) + Send + 'static,
    ) -> Self {
        self.tune.push(Box::new(f));
        self
    }

    /// Starts the shard threads (and listeners).
    pub fn start(self) -> Result<Node, StartError> {
        let kind = driver::resolve(self.driver, RING_ENTRIES)?;
        let shards = self.shards.max(1);
        let listeners = match self.listen {
            Some(addr) => net::bind_group(addr, shards, self.limits.backlog)
                .map_err(|source| StartError::Bind { addr, source })?,
            None => Vec::new(),
        };
        let listen_addr = listeners.first().and_then(|l| l.local_addr().ok());
        let mut node_info = self.node_info;
        match listen_addr {
            Some(a) => node_info.listen_addr = format!("tcp://{a}"),
            // Stock NodeInfo validation requires a host and port even from a node that does not
            // accept connections.
            None if node_info.listen_addr.is_empty() => {
                node_info.listen_addr = "tcp://0.0.0.0:0".to_owned();
            }
            None => {}
        }
        let mut template = ConnectionConfig::new(self.node_key.clone(), node_info);
        template.offer_native = self.offer_native;
        template.capabilities = self.capabilities;
        if let Some(manager) = &self.manager {
            // The peer manager's handshake timeout (stock `handshake_timeout`) bounds how long
            // a pending-handshake place can be held; `connection_config` may still override it.
            template.handshake_timeout = manager.handshake_timeout;
        }
        for f in self.tune {
            f(&mut template);
        }
        let local_id = self.node_key.node_id();

        let peering = match self.manager {
            Some(config) => {
                let mut seed = [0u8; 8];
                getrandom::fill(&mut seed).map_err(|e| StartError::Config(e.to_string()))?;
                let manager =
                    PeerManager::new(local_id, config, u64::from_le_bytes(seed), Instant::now())
                        .map_err(|e| StartError::Config(format!("peer manager: {e}")))?;
                Some(Peering::new(manager))
            }
            None => None,
        };
        let gate: Arc<dyn PeerGate> = match &peering {
            Some(p) => p.clone(),
            None => self.gate,
        };

        let mut inboxes = Vec::with_capacity(shards);
        let mut receivers = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (tx, rx) = mpsc::channel(self.limits.inbox_capacity.max(1));
            inboxes.push(tx);
            receivers.push(rx);
        }
        let router = Arc::new(Router::new(
            RouterConfig {
                local_id,
                recv_queue_capacity: self.limits.recv_queue_capacity,
                peer_event_capacity: self.limits.peer_event_capacity,
            },
            inboxes,
            gate,
        ));
        for desc in self.channels {
            router.register_channel(desc)?;
        }
        if self.pex.is_some() {
            router.register_channel(pex::channel_descriptor())?;
        }
        // Check the settings once here, so a bad one fails start and not every connection.
        let mut check = template.clone();
        check.channels = router.table().descriptors();
        Connection::new(check, [1; 32], Instant::now())
            .map_err(|e| StartError::Config(e.to_string()))?;

        let lent = self.limits.shard_read_buffers > 0 && kind == DriverKind::IoUring;
        let multishot = lent && self.limits.multishot_recv && net::multishot_recv_native();
        if lent {
            tracing::debug!(
                multishot,
                "receiving into the shards' provided-buffer rings"
            );
        }
        let config = Arc::new(ShardConfig {
            template,
            read_buffer: self.limits.read_buffer.max(1024),
            // epoll has no provided-buffer ring: a pending read would hold a pooled buffer while
            // it waits, so there every connection keeps its own.
            lent_buffers: lent,
            multishot_recv: multishot,
            send_zc_threshold: (kind == DriverKind::IoUring
                && self.limits.send_zc_threshold > 0
                && driver::send_zc_supported())
            .then_some(self.limits.send_zc_threshold),
            write_batch: self.limits.write_batch.max(16 * 1024),
            max_connections: self.limits.max_connections_per_shard,
            close_grace: self.limits.close_grace,
            commands_per_turn: self.limits.commands_per_turn.max(1),
            notsent_lowat: (self.limits.tcp_notsent_lowat > 0)
                .then_some(self.limits.tcp_notsent_lowat),
            recv_buffer: (self.limits.tcp_recv_buffer > 0).then_some(self.limits.tcp_recv_buffer),
        });
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut listeners = listeners.into_iter();
        let mut threads = Vec::with_capacity(shards);
        for (index, inbox) in receivers.into_iter().enumerate() {
            let spec = thread::ThreadSpec {
                name: format!("ringwire-shard-{index}"),
                kind,
                cpu: self.pin_threads.then_some(index % cores),
                ring_entries: RING_ENTRIES,
                read_pool: lent.then_some((
                    self.limits.shard_read_buffers.min(MAX_SHARD_READ_BUFFERS),
                    self.limits.read_buffer.max(1024),
                )),
                #[cfg(test)]
                refuse_read_pool: self.refuse_read_pool,
            };
            let router2 = router.clone();
            let config2 = config.clone();
            let listener = listeners.next();
            match thread::spawn_shard_thread(spec, move || {
                Shard::run(index, router2, config2, inbox, listener)
            }) {
                Ok(h) => threads.push(h),
                Err(e) => {
                    stop_threads(&router, threads, Instant::now() + Duration::from_secs(1));
                    return Err(e.into());
                }
            }
        }
        let dialer = match &peering {
            Some(p) => match p.spawn_dialer(router.clone()) {
                Ok(h) => Some(h),
                Err(e) => {
                    stop_threads(&router, threads, Instant::now() + Duration::from_secs(1));
                    return Err(StartError::Config(format!("cannot start the dialer: {e}")));
                }
            },
            None => None,
        };
        let pex = match self.pex {
            Some(config) => {
                let started = router
                    .open_channel(pex::channel_descriptor())
                    .map_err(StartError::from)
                    .and_then(|channel| {
                        let events = PeerEvents {
                            rx: router.subscribe(),
                            router: router.clone(),
                        };
                        PexRuntime::spawn(
                            router.clone(),
                            Pex::new(local_id, config),
                            channel,
                            events,
                        )
                        .map_err(|e| StartError::Config(format!("cannot start pex: {e}")))
                    });
                match started {
                    Ok(rt) => Some(rt),
                    Err(e) => {
                        stop_threads(&router, threads, Instant::now() + Duration::from_secs(1));
                        if let Some(p) = &peering {
                            p.stop();
                        }
                        if let Some(d) = dialer {
                            let _ = d.join();
                        }
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        tracing::info!(
            node = %local_id,
            driver = %kind,
            shards,
            listen = ?listen_addr,
            "node started"
        );
        Ok(Node {
            inner: Arc::new(NodeInner {
                router,
                threads: Mutex::new(threads),
                kind,
                listen_addr,
                limits: self.limits,
                peering,
                dialer: Mutex::new(dialer),
                pex,
            }),
        })
    }
}

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
    router.stop();
    let mut waits = Vec::new();
    for shard in 0..router.shard_count() {
        let (done, wait) = oneshot::channel();
        if router
            .try_command(shard, Command::Shutdown { deadline, done })
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
    router.close_channels();
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
        self.inner.router.local_id
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
        self.inner.router.shard_count()
    }

    /// Opens a channel: registers it if needed and returns its handle (once per channel).
    pub fn open_channel(&self, desc: ChannelDescriptor) -> Result<Channel, ChannelError> {
        self.inner.router.open_channel(desc)
    }

    /// Subscribes to peer up/down events from now on.
    pub fn peer_events(&self) -> PeerEvents {
        PeerEvents {
            rx: self.inner.router.subscribe(),
            router: self.inner.router.clone(),
        }
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerSummary> {
        self.inner.router.peer_list()
    }

    /// Bytes sent and received per connected peer and channel, and messages queued.
    pub fn peer_traffic(&self) -> Vec<PeerTraffic> {
        self.inner.router.peer_traffic()
    }

    /// Commands waiting in each shard's inbox (index = shard).
    pub fn inbox_depths(&self) -> Vec<usize> {
        self.inner.router.inbox_depths()
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.inner.router.stats()
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

    /// The peer manager's admission counts (peers per direction, handshakes in progress),
    /// if the node runs one.
    pub fn admission_stats(&self) -> Option<AdmissionStats> {
        self.inner.peering.as_ref().map(|p| p.stats())
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
    /// without one (a node with its own [`PeerGate`] keeps its own ban list).
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
        let router = &self.inner.router;
        if let Some(p) = &self.inner.peering {
            p.stop();
        }
        router.stop();
        let mut waits = Vec::new();
        for shard in 0..router.shard_count() {
            let (done, wait) = oneshot::channel();
            if router
                .command(shard, Command::Shutdown { deadline, done }, deadline)
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
        router.close_channels();
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
