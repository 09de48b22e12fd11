//! `[p2p]`: the keys of CometBFT's `[p2p]` section, with the same names, meanings and defaults
//! (CometBFT v0.38–v0.40), so an operator's settings carry over unchanged — except the
//! defaults of `send_rate`, `recv_rate` and `flush_throttle_timeout`: ringwire neither paces
//! nor holds back unless asked (stock: 5 MB/s each way per peer and a 10ms flush throttle).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::address::{HostPort, PeerAddress};
use super::error::Problems;
use crate::pex::CapabilityTarget;
use crate::proto::mconn::MAX_PAYLOAD_SIZE_LIMIT;
use crate::proto::native::frame::hello::{MAX_CAPABILITIES, valid_capability};
use crate::proto::secret::NodeId;

const SECOND: Duration = Duration::from_secs(1);
const TEN_MINUTES: Duration = Duration::from_secs(600);

/// Most inbound or outbound peers a configuration may ask for.
pub const MAX_PEERS_LIMIT: u32 = 10_000;

section! {
    /// `[p2p]`: listening, peers and the stock connection settings.
    pub struct P2pConfig in "p2p" {
        /// Address to listen on for incoming connections ("tcp://" is optional).
        #[serde(with = "super::address::serde_text::tcp_socket")]
        laddr: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 26656)),
        /// Address advertised to peers for them to dial, as host:port: the NodeInfo listen
        /// address this node sends, which peers learn and gossip. Empty: the bound listen
        /// address.
        #[serde(with = "super::address::serde_text::optional")]
        external_address: Option<HostPort> = None,
        /// Seed nodes, as "NODE_ID@host:port" (an array, or one comma-separated string as in
        /// CometBFT). While the address book holds fewer than 1000 addresses and none of them
        /// can be dialed, the node dials a seed, asks it for addresses and disconnects it once
        /// it answered.
        #[serde(with = "super::address::serde_text::list")]
        seeds: Vec<PeerAddress> = Vec::new(),
        /// Peers to stay connected to, as "NODE_ID@host:port"; redialed when they drop.
        #[serde(with = "super::address::serde_text::list")]
        persistent_peers: Vec<PeerAddress> = Vec::new(),
        /// Node IDs that are always accepted and dialed, whatever the peer limits.
        #[serde(with = "super::address::serde_text::list")]
        unconditional_peer_ids: Vec<NodeId> = Vec::new(),
        /// Node IDs whose addresses are never gossiped to other peers (stock or ringwire) and
        /// never learned from another peer's address list.
        #[serde(with = "super::address::serde_text::list")]
        private_peer_ids: Vec<NodeId> = Vec::new(),
        /// Most inbound peers (unconditional peers excepted).
        max_num_inbound_peers: u32 = 40,
        /// Most outbound peers, persistent peers excepted.
        max_num_outbound_peers: u32 = 10,
        /// Bytes per second sent to one peer, on both protocols; 0 means unlimited.
        /// ringwire's default is 0; stock's (5120000, kept by an imported CometBFT home) caps
        /// bulk transfer such as block parts at about 5 MB/s per peer.
        send_rate: u64 = 0,
        /// Bytes per second received from one peer, on both protocols; 0 means unlimited
        /// (stock's default: 5120000).
        recv_rate: u64 = 0,
        /// How long a partly filled batch of stock (MConnection) packets may wait for more
        /// before it is written, as stock's flush throttle; 0 writes at once (ringwire's
        /// default; stock's is 10ms, 100ms before v0.40). Native connections write at once.
        #[serde(with = "super::duration::serde_text")]
        flush_throttle_timeout: Duration = Duration::ZERO,
        /// Payload bytes per MConnection packet. Stock peers use 1024; keep it for them.
        max_packet_msg_payload_size: usize = 1024,
        /// Run the peer-exchange protocol (learn and share peer addresses).
        pex: bool = true,
        /// Seed mode: crawl the network for addresses (dial addresses of the book, ask each
        /// for addresses, disconnect it once it answered), answer each inbound peer's first
        /// address request and disconnect it; no peer but persistent ones stays longer than
        /// 30 seconds. Needs pex = true.
        seed_mode: bool = false,
        /// Allow several peers from one IP address (see limits.max_connections_per_ip).
        allow_duplicate_ip: bool = false,
        /// Deadline for the encrypted handshake and the NodeInfo exchange of a connection.
        #[serde(with = "super::duration::serde_text")]
        handshake_timeout: Duration = Duration::from_secs(20),
        /// Deadline for a TCP connect.
        #[serde(with = "super::duration::serde_text")]
        dial_timeout: Duration = Duration::from_secs(3),
        /// Where learned peer addresses are kept (relative to node.home).
        addr_book_file: PathBuf = PathBuf::from("config/addrbook.json"),
        /// Refuse non-routable addresses (private, loopback, link-local, unspecified, ...) in
        /// the address book, learned or announced. Set false for private or local networks.
        addr_book_strict: bool = true,
        /// Outbound peers wanted with a capability, as a percentage of
        /// max_num_outbound_peers (rounded up) or a count, for example
        /// `{ archive = "30%" }` or `{ archive = 3 }`. While fewer outbound peers announce the
        /// capability, the node dials addresses known to carry it first (confirmed by its own
        /// handshake, then learned from ringwire peers) and, with its outbound slots full,
        /// lets go of one outbound peer without it per dialing round. Needs pex = true.
        capability_targets: BTreeMap<String, CapabilityTarget> = BTreeMap::new(),
    }
}

impl P2pConfig {
    pub(crate) fn check(&self, p: &mut Problems) {
        const S: &str = "p2p";
        p.at_most(
            S,
            "max_num_inbound_peers",
            self.max_num_inbound_peers,
            MAX_PEERS_LIMIT,
        );
        p.at_most(
            S,
            "max_num_outbound_peers",
            self.max_num_outbound_peers,
            MAX_PEERS_LIMIT,
        );
        p.duration(
            S,
            "flush_throttle_timeout",
            self.flush_throttle_timeout,
            false,
            SECOND,
        );
        p.within(
            S,
            "max_packet_msg_payload_size",
            self.max_packet_msg_payload_size,
            1,
            MAX_PAYLOAD_SIZE_LIMIT,
        );
        if self.seed_mode && !self.pex {
            p.push(S, "seed_mode", "needs p2p.pex = true");
        }
        p.duration(
            S,
            "handshake_timeout",
            self.handshake_timeout,
            true,
            TEN_MINUTES,
        );
        p.duration(S, "dial_timeout", self.dial_timeout, true, TEN_MINUTES);
        if self.addr_book_file.as_os_str().is_empty() {
            p.push(S, "addr_book_file", "must not be empty");
        }
        self.check_targets(p);
    }

    fn check_targets(&self, p: &mut Problems) {
        const S: &str = "p2p";
        const K: &str = "capability_targets";
        if self.capability_targets.len() > MAX_CAPABILITIES {
            p.push(
                S,
                K,
                format!(
                    "at most {MAX_CAPABILITIES} capabilities, got {}",
                    self.capability_targets.len()
                ),
            );
        }
        for (cap, target) in &self.capability_targets {
            if !valid_capability(cap.as_bytes()) {
                p.push(
                    S,
                    K,
                    format!("{cap:?} is not a capability (1 to 64 printable ASCII characters)"),
                );
            }
            if let CapabilityTarget::AtLeast(n) = target
                && *n > MAX_PEERS_LIMIT
            {
                p.push(
                    S,
                    K,
                    format!("{cap} = {n} is over the limit of {MAX_PEERS_LIMIT} peers"),
                );
            }
        }
        if !self.capability_targets.is_empty() && !self.pex {
            p.push(S, K, "needs p2p.pex = true");
        }
    }
}
