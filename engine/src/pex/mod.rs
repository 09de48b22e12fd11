//! Peer exchange (PEX) on channel 0x00, wire-compatible with stock CometBFT's PEX reactor.
//!
//! - [`Pex`] is the protocol logic, sans-IO like [`crate::proto`]: peer events and received
//!   bytes in, [`Action`]s (messages to send, peers to drop) out; time is an argument.
//! - [`PexConfig`] holds its settings; [`crate::NodeBuilder::pex`] runs it inside a node, on
//!   compat and native peers alike, with a small service thread (`service`).
//!
//! Policy, as stock v0.38–v0.40 (`p2p/pex/pex_reactor.go`) where stock has one:
//! - A new **outbound** peer is sent one `PexRequest` (stock asks while its book needs
//!   addresses; ringwire asks while its book has room). Every peer's NodeInfo listen address
//!   is learned as the address it announced; nothing is sent to an inbound peer.
//! - A `PexRequest` is answered with up to `max_addrs_per_response` addresses chosen at random
//!   (never the requester's own, never a node of `private_peer_ids`). Request pacing follows
//!   stock exactly: the first request is free, the second is free too and starts the clock,
//!   and every later one must come at least `min_request_interval` (stock:
//!   `ensurePeersPeriod / 3` = 10 s) after the previous one, or the peer breaks the rules
//!   (stock's reason: "sent next PEX request too soon").
//! - The answer of a peer that went away while asked is still taken for
//!   [`LATE_ANSWER_GRACE`]: stock's seed answers and closes at once, and the node may hand
//!   the answer over after the peer's `Down`.
//! - A `PexAddrs` without an outstanding request ("unsolicited pexAddrsMessage"), an
//!   undecodable message, an empty one, a list longer than `max_addrs_per_message`, or an
//!   address whose IP does not parse or whose port is over 65535 (stock's
//!   `NetAddressFromProto`) breaks the rules too. A peer that breaks them is disconnected and
//!   banned for `ban_duration` through the peer manager (stock marks it bad for 24 h).
//! - Each peer has a token bucket of addresses (`address_burst`, refilled at `address_rate`
//!   per second): addresses of a list beyond it are dropped and counted.
//! - The address book (`book`) is stock's: new and tried tables of buckets, a new address
//!   placed by its source's group and its own under a per-node random key (so one source group
//!   reaches an eighth of the new table), a tried one by its own group; bounded per bucket and
//!   overall (`max_addresses`), evicting bad addresses first (stock's `isBad`), then the least
//!   recently attempted, learned from other peers' lists before announced ones, never tried
//!   ones. A peer's own announced address is never overwritten by hearsay; a connection this
//!   node dialed to it that stays up `good_after` promotes it to the tried table. With
//!   `addr_book_strict` the book refuses non-routable addresses; it never learns a private
//!   node's address from hearsay; a peer that breaks the rules is also banned from the book.
//!   Answers are random selections; `Pex::pick_address` picks addresses to dial with stock's
//!   new-versus-tried bias.
//! - The book lives in `book_file` (stock's `addrbook.json` format, so a CometBFT home keeps
//!   its book): read at start, written atomically every `save_interval` while it changed and
//!   at shutdown (`store`, driven by `service`).
//! - Between ringwire peers on native connections, answers carry each address's capabilities
//!   as the answering node saw them in that node's HELLO (`caps`, `docs/PROTOCOL.md` §18); the
//!   book keeps them as hearsay until this node's own handshake confirms them, and the file
//!   keeps them in a field stock ignores. Stock peers get stock's bytes.
//! - With the node's peer manager, the service dials from the book to fill the outbound peers,
//!   dials seeds when the book is low and lets them go once they answered, or crawls in seed
//!   mode (`discover`: [`Pex::ensure_peers`], [`Pex::crawl`], [`DialPlan`]), keeping the
//!   capability targets (`targets`: [`CapabilityTarget`]).

#![forbid(unsafe_code)]
// Peer bytes flow through here: no panicking lookups (tests may; see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod addr;
mod book;
mod bucket;
mod caps;
mod config;
mod discover;
mod error;
pub(crate) mod service;
mod state;
mod store;
mod targets;

pub use addr::PexAddr;
pub use book::{AddrBookFile, BookEntry, BookFormatError};
pub use caps::{BookCapabilities, PEX_CAPS_VERSION};
pub use config::PexConfig;
pub use discover::{
    DialPlan, MAX_DIAL_ATTEMPTS, MIN_TIME_BETWEEN_CRAWLS, NEED_ADDRESS_THRESHOLD, Outbound,
};
pub use error::PexError;
pub use state::{
    Action, LATE_ANSWER_GRACE, MAX_LATE_ANSWERS, PEX_CHANNEL, Pex, PexPeer, PexStats,
    channel_descriptor,
};
pub use store::{BookFileError, MAX_BOOK_FILE_SIZE};
pub use targets::CapabilityTarget;

#[cfg(test)]
mod tests;
