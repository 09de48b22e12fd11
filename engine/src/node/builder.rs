//! [`NodeBuilder`]: what a node is made of, set before it starts ([`NodeBuilder::start`] is in
//! `start.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::peers::{AddrListError, ManagerConfig, PeerAddr};
use crate::pex::{BookFileError, PexConfig};
use crate::proto::conn::{ChannelDescriptor, ConnectionConfig};
use crate::proto::nodeinfo::{NodeInfo, NodeInfoOther, ProtocolVersion};
use crate::proto::secret::NodeKey;
use crate::registry::{ChannelError, DefaultGate, PeerGate};
use crate::rt::driver::{Driver, DriverError};

use super::Limits;

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
    /// The PEX address book file ([`PexConfig::book_file`], `p2p.addr_book_file`) exists but
    /// cannot be read or is not an address book; the error names the file.
    #[error(transparent)]
    AddrBook(#[from] BookFileError),
}

/// A change to the per-connection settings.
pub(super) type Tune = Box<dyn FnOnce(&mut ConnectionConfig) + Send>;

/// Builds a [`Node`](super::Node).
pub struct NodeBuilder {
    pub(super) node_key: NodeKey,
    pub(super) node_info: NodeInfo,
    pub(super) listen: Option<SocketAddr>,
    pub(super) external_address: Option<String>,
    pub(super) shards: usize,
    pub(super) driver: Driver,
    pub(super) pin_threads: bool,
    pub(super) channels: Vec<ChannelDescriptor>,
    pub(super) limits: Limits,
    pub(super) gate: Arc<dyn PeerGate>,
    pub(super) manager: Option<ManagerConfig>,
    pub(super) tune: Vec<Tune>,
    pub(super) offer_native: bool,
    pub(super) capabilities: Vec<String>,
    pub(super) pex: Option<PexConfig>,
    /// Shards act as if the kernel refused their provided-buffer ring.
    #[cfg(test)]
    pub(super) refuse_read_pool: bool,
}

impl NodeBuilder {
    pub(super) fn new(node_key: NodeKey, network: &str) -> Self {
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
            external_address: None,
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

    /// Sets the software version peers see in NodeInfo (`version`; CometBFT puts its own
    /// semantic version there).
    pub fn software_version(mut self, version: impl Into<String>) -> Self {
        self.node_info.version = version.into();
        self
    }

    /// Sets the protocol versions peers see in NodeInfo (p2p, block and the application's,
    /// which a CometBFT node takes from its ABCI application).
    pub fn protocol_version(mut self, version: ProtocolVersion) -> Self {
        self.node_info.protocol_version = version;
        self
    }

    /// Sets NodeInfo's `other` fields: whether the node indexes transactions (`"on"` or
    /// `"off"`) and its RPC address.
    pub fn node_info_other(mut self, other: NodeInfoOther) -> Self {
        self.node_info.other = other;
        self
    }

    /// Listens for inbound TCP on `addr` (port 0 picks one; see [`Node::listen_addr`](super::Node::listen_addr)).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// The address peers are told to dial: the NodeInfo `listen_addr` this node sends (which
    /// peers learn and gossip through PEX), as `tcp://host:port` or `host:port`, the host an
    /// IP or a DNS name (CometBFT's `external_address`). Default: the bound listen address.
    /// For a node behind NAT or listening on `0.0.0.0`; start fails if it does not parse.
    pub fn external_address(mut self, addr: impl Into<String>) -> Self {
        self.external_address = Some(addr.into());
        self
    }

    /// Does not listen for inbound TCP (the default; undoes [`NodeBuilder::listen`]).
    pub fn no_listen(mut self) -> Self {
        self.listen = None;
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
    /// [`Node::open_channel`](super::Node::open_channel), but connections made before that do not carry it).
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

    /// Seed nodes (CometBFT's `seeds`): while the address book is low and no address of it
    /// can be dialed, the node dials one seed, asks it for addresses and drops it once it
    /// answers. Needs PEX ([`NodeBuilder::pex`]); turns the peer manager on (default settings
    /// unless [`NodeBuilder::peer_manager`] set them; call that first).
    pub fn seeds(mut self, seeds: Vec<PeerAddr>) -> Self {
        self.manager
            .get_or_insert_with(ManagerConfig::default)
            .seeds = seeds;
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
    /// called (the configuration file's `p2p.pex` defaults to on, as in CometBFT). With the
    /// peer manager ([`NodeBuilder::peer_manager`]) the node also fills its outbound peers
    /// from the address book and its seeds, or crawls in seed mode
    /// ([`PexConfig::seed_mode`]); without it PEX only exchanges addresses.
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
}
