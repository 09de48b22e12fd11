//! Peer exchange (PEX) on channel 0x00, wire-compatible with stock CometBFT's PEX reactor.
//!
//! - [`Pex`] is the protocol logic, sans-IO like [`crate::proto`]: peer events and received
//!   bytes in, [`Action`]s (messages to send, peers to drop) out; time is an argument.
//! - [`PexConfig`] holds its settings; [`crate::NodeBuilder::pex`] runs it inside a node, on
//!   compat and native peers alike, with a small service thread (`service`).
//!
//! Policy, as stock v0.38–v0.40 (`p2p/pex/pex_reactor.go`):
//! - A new **outbound** peer is sent one `PexRequest` (stock asks while its book needs
//!   addresses; ringwire's in-memory set always does until it is full). An **inbound** peer's
//!   NodeInfo listen address is learned, nothing is sent.
//! - A `PexRequest` is answered with up to `max_addrs_per_response` known addresses (never the
//!   requester's own). Request pacing follows stock exactly: the first request is free, the
//!   second is free too and starts the clock, and every later one must come at least
//!   `min_request_interval` (stock: `ensurePeersPeriod / 3` = 10 s) after the previous one, or
//!   the peer is disconnected with stock's reason ("sent next PEX request too soon").
//! - A `PexAddrs` without an outstanding request is rejected ("unsolicited pexAddrsMessage") and
//!   the peer disconnected; so is an undecodable message, an empty one, or an address whose IP
//!   does not parse or whose port is over 65535 (stock's `NetAddressFromProto`).
//! - Learned addresses live in a bounded in-memory set (`max_addresses`); when it is full, new
//!   addresses are ignored. The persistent address book comes later.

#![forbid(unsafe_code)]

mod addr;
mod error;
pub(crate) mod service;
mod state;

pub use addr::PexAddr;
pub use error::PexError;
pub use state::{Action, PEX_CHANNEL, Pex, PexConfig, channel_descriptor};
