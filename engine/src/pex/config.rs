//! [`PexConfig`]: the settings of peer exchange. The defaults are those of the configuration
//! file's keys (`[limits] pex_*`, `max_address_book_size`, `[p2p] addr_book_strict`,
//! `private_peer_ids`), so `Config::default().pex_config()` is `Some(PexConfig::default())`
//! (a configuration without a home keeps its book in memory, as the default does).

use std::path::PathBuf;
use std::time::Duration;

use crate::proto::secret::NodeId;

use super::CapabilityTarget;

/// PEX settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PexConfig {
    /// Shortest time between two requests of one peer (after its two free ones); a peer that
    /// asks sooner breaks the rules. Stock: `ensurePeersPeriod / 3` = 10 s
    /// (`limits.pex_request_interval`).
    pub min_request_interval: Duration,
    /// Most addresses kept in the address book (`limits.max_address_book_size`). Besides,
    /// each of its buckets holds at most 64, and one source group reaches at most 32 of the
    /// 256 new buckets, as stock's. A full bucket or book gives up a bad or the least
    /// recently attempted address of the bucket (the most crowded one, for a full book):
    /// learned from other peers' lists first; addresses that nodes announced themselves only
    /// for another announcement; tried addresses never.
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
    /// Where the address book is kept, in stock CometBFT's `addrbook.json` format: read when
    /// the node starts (a missing file is an empty book, one that is not an address book
    /// fails the start), written atomically every [`PexConfig::save_interval`] while the book
    /// changed and when the node stops. `None`: in memory only (the default, and what a
    /// configuration without `node.home` gives; see `Config::pex_config`).
    pub book_file: Option<PathBuf>,
    /// How often a changed book is written to [`PexConfig::book_file`] (stock: 2 minutes).
    pub save_interval: Duration,
    /// How long a connection this node dialed to the IP a peer announces must stay up before
    /// the announced address is marked good (moved to the tried table).
    pub good_after: Duration,
    /// How often the node dials addresses from the book to fill its outbound peers
    /// (`max_num_outbound_peers`), or, in seed mode, crawls the book: stock's
    /// `ensurePeersPeriod` and `crawlPeerPeriod`, both 30 s. A round also runs at once when a
    /// seed answers or a seed dial fails. Dialing from the book needs the peer manager
    /// ([`crate::NodeBuilder::peer_manager`]; a node made from a configuration runs one).
    pub ensure_peers_period: Duration,
    /// The first pause before an address of the book that failed is dialed again
    /// (`limits.dial_backoff_min`); each further failure doubles it.
    pub dial_backoff_min: Duration,
    /// The longest pause between dials of an address that keeps failing
    /// (`limits.dial_backoff_max`). After 16 failures in a row (stock's `maxAttemptsToDial`)
    /// the address is banned from the book for [`PexConfig::ban_duration`].
    pub dial_backoff_max: Duration,
    /// Seed mode (`p2p.seed_mode`): instead of filling its outbound peers the node crawls its
    /// book (dials addresses it has not asked for two minutes and asks each for addresses),
    /// answers each inbound peer's first request and then disconnects it, disconnects each
    /// crawled peer once it answered, and any peer connected for
    /// [`PexConfig::seed_disconnect_wait`]. Persistent peers stay.
    pub seed_mode: bool,
    /// In seed mode, how long a peer may stay connected (stock: 28 hours, kept so that
    /// seeds' crawled peers became good; ringwire's seeds drop peers once the exchange is
    /// done, and this bounds peers that neither ask nor answer). A seed this node dialed is
    /// dropped after it too, answered or not.
    pub seed_disconnect_wait: Duration,
    /// Outbound peers wanted with a capability (`p2p.capability_targets`), as a percentage of
    /// `max_num_outbound_peers` or a count: while below target the dialer prefers addresses
    /// the book knows to carry the capability and replaces outbound peers without it (see
    /// `targets`). Empty: no targets.
    pub capability_targets: Vec<(String, CapabilityTarget)>,
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
            book_file: None,
            save_interval: Duration::from_secs(120),
            good_after: Duration::from_secs(60),
            ensure_peers_period: Duration::from_secs(30),
            dial_backoff_min: Duration::from_secs(1),
            dial_backoff_max: Duration::from_secs(300),
            seed_mode: false,
            seed_disconnect_wait: Duration::from_secs(30),
            capability_targets: Vec::new(),
        }
    }
}
