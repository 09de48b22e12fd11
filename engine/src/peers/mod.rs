//! The peer manager's decisions, sans-IO: whom to dial and when, whom to admit, and which of two
//! connections to the same peer to keep.
//!
//! Like [`crate::proto`], nothing here opens a socket, starts a thread or reads a clock: time is
//! an `Instant` argument and randomness is a seed. The node drives these pieces from its
//! runtime.
//!
//! - [`PeerAddr`] — `<node id>@host:port` addresses and lists, parsed as stock CometBFT does.
//! - [`BackoffConfig`], [`Retry`] — jittered, capped exponential backoff per peer.
//! - [`resolve`] — the tie-break that keeps exactly one connection per peer pair.

mod addr;
mod backoff;
mod error;
mod tiebreak;

pub use addr::{
    AddrError, AddrListError, Host, MAX_ADDR_LEN, MAX_HOSTNAME_LEN, MAX_LABEL_LEN, PeerAddr,
    parse_addr_list,
};
pub use backoff::{BackoffConfig, Retry, seed_for};
pub use error::ConfigError;
pub use tiebreak::{Keep, dialer, resolve};

/// Which end opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer dialed us.
    Inbound,
    /// We dialed the peer.
    Outbound,
}
