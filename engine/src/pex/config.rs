//! [`PexConfig`]: the settings of peer exchange. The defaults are those of the configuration
//! file's keys (`[limits] pex_*`, `max_address_book_size`, `[p2p] addr_book_strict`,
//! `private_peer_ids`), so `Config::default().pex_config()` is `Some(PexConfig::default())`.

use std::time::Duration;

use crate::proto::secret::NodeId;

/// PEX settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PexConfig {
    /// Shortest time between two requests of one peer (after its two free ones); a peer that
    /// asks sooner breaks the rules. Stock: `ensurePeersPeriod / 3` = 10 s
    /// (`limits.pex_request_interval`).
    pub min_request_interval: Duration,
    /// Most addresses kept in the address book. When it is full, a new address replaces a
    /// random one learned from another peer's list; addresses that nodes announced themselves
    /// are kept, unless nothing else is left to replace for a new announcement
    /// (`limits.max_address_book_size`).
    pub max_addresses: usize,
    /// Most addresses in one answer (stock: 250); answers never carry more than
    /// `max_addrs_per_message` either.
    pub max_addrs_per_response: usize,
    /// Most addresses a received list may carry; a longer one breaks the rules
    /// (`limits.pex_max_addresses_per_message`, stock's largest answer: 250).
    pub max_addrs_per_message: usize,
    /// Addresses per second accepted from one peer: the refill rate of its token bucket
    /// (`limits.pex_address_rate`). Addresses beyond the bucket are dropped and counted.
    pub address_rate: f64,
    /// Addresses accepted from one peer at once: the size of its token bucket, full when the
    /// peer connects (`limits.pex_address_burst`).
    pub address_burst: u32,
    /// How long a peer that broke the PEX rules is banned, through the peer manager, besides
    /// being disconnected; zero: disconnected only. A node without a peer manager only
    /// disconnects (`limits.pex_ban_duration`, stock: 24 h).
    pub ban_duration: Duration,
    /// Refuse addresses that are not routable on the public internet: private, loopback,
    /// link-local, unspecified, documentation and benchmark ranges, multicast
    /// (`p2p.addr_book_strict`, as stock's `Routable`). Set false on local networks.
    pub addr_book_strict: bool,
    /// Nodes whose addresses are never sent to any peer and never learned from another
    /// peer's list (`p2p.private_peer_ids`).
    pub private_peer_ids: Vec<NodeId>,
    /// Ask every new outbound peer for addresses (stock does while its book needs more).
    pub request_outbound: bool,
}

impl Default for PexConfig {
    fn default() -> Self {
        PexConfig {
            min_request_interval: Duration::from_secs(10),
            max_addresses: 20_000,
            max_addrs_per_response: 250,
            max_addrs_per_message: 250,
            address_rate: 0.1,
            address_burst: 1000,
            ban_duration: Duration::from_secs(24 * 3600),
            addr_book_strict: true,
            private_peer_ids: Vec::new(),
            request_outbound: true,
        }
    }
}
