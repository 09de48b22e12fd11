//! The peer manager's decisions, sans-IO: whom to admit, whom to dial and when, and which of
//! two connections to the same peer to keep.
//!
//! Like [`crate::proto`], nothing here opens a socket, starts a thread or reads a clock: time
//! is an `Instant` argument and randomness is a seed. The node drives these pieces from its
//! runtime.
//!
//! - [`PeerAddr`], [`parse_addr_list`] — `<node id>@host:port` addresses and lists, parsed as
//!   stock CometBFT parses `persistent_peers` and `seeds`.
//! - [`BackoffConfig`], [`Retry`] — jittered, capped exponential backoff per peer.
//! - [`Admission`] — inbound/outbound limits, per-address and pending-handshake caps, enforced
//!   before any large allocation; [`PendingPermit`] and [`PeerSlot`] hold places and free them
//!   when dropped; [`RefusalCounts`] counts refusals for metrics; [`HandshakeRate`] is the
//!   per-address token bucket on handshakes started.
//! - [`resolve`] — the tie-break that leaves exactly one connection between two nodes that
//!   dial each other at once.
//! - [`BanList`] — banned peers (or addresses) with expiry; [`Bans`] — the bans in force as
//!   the bans file beside the address book holds them.
//! - [`Scores`] — peer scores: misbehaviour ([`Offence`]) lowers them, useful and long-lived
//!   connections raise them; a low score bans the ID, and repeat offenders their address.
//! - [`PeerManager`] — ties them together: persistent peers, dial scheduling, reconnects, bans.

#![forbid(unsafe_code)]

mod addr;
mod backoff;
mod ban;
mod ban_file;
mod error;
mod limits;
mod manager;
mod rate;
mod refusal;
mod score;
mod tiebreak;

#[cfg(test)]
mod tests;

pub use addr::{
    AddrError, AddrListError, Host, MAX_ADDR_LEN, MAX_HOSTNAME_LEN, MAX_LABEL_LEN, PeerAddr,
    parse_addr_list,
};
pub use backoff::{BackoffConfig, Retry, seed_for};
pub use ban::{BanList, DEFAULT_MAX_BANS};
pub use ban_file::{BANS_FILE_NAME, Bans, MAX_FILE_BANS, Now};
pub use error::ConfigError;
pub use limits::{
    Admission, AdmissionLimits, AdmissionStats, ConnectionId, PeerSlot, PendingPermit, Promoted,
};
pub use manager::{AddPeerError, Dial, DisconnectReason, ManagerConfig, PeerManager, TargetView};
pub use rate::HandshakeRate;
pub use refusal::{RefusalCounts, Refused};
pub use score::{
    BAN_DURATION, BAN_THRESHOLD, Ban, CREDIT_BYTES, CREDIT_UPTIME, IP_BAN_AFTER, IP_BAN_WINDOW,
    MAX_CREDIT, MAX_IP_RECORDS, MAX_SCORED, Offence, PENALTY_DECAY_PER_MINUTE, ScoreCounts, Scores,
};
pub use tiebreak::{Keep, dialer, resolve};

/// Which end opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer dialed us.
    Inbound,
    /// We dialed the peer.
    Outbound,
}
