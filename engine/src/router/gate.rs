//! The admission seam: who may stay connected once authenticated.
//!
//! The router asks a [`PeerGate`] about every peer that finished the handshake and the NodeInfo
//! checks, before the peer becomes visible to the application. The peer manager (limits,
//! simultaneous-dial tie-break, bans, persistent peers) plugs in here; [`DefaultGate`] accepts
//! everyone and keeps the first connection when a peer connects twice.

use std::net::SocketAddr;

use crate::proto::conn::PeerInfo;
use crate::proto::secret::NodeId;

use super::{Direction, DownReason, PeerSummary};

/// The verdict on a newly authenticated peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Register the peer.
    Accept,
    /// Close the new connection with this reason.
    Reject(String),
    /// Close the existing connection to the same peer and register the new one (for a
    /// deterministic simultaneous-dial tie-break).
    ReplaceExisting,
}

/// Decides whether an authenticated peer may stay connected.
pub trait PeerGate: Send + Sync + 'static {
    /// Called on the owning shard for every authenticated peer. `existing` is the connection
    /// already registered for the same node ID, if any.
    fn admit(
        &self,
        peer: &PeerInfo,
        direction: Direction,
        addr: Option<SocketAddr>,
        existing: Option<&PeerSummary>,
    ) -> Admission;

    /// Called when an admitted peer goes down.
    fn on_down(&self, _peer: NodeId, _reason: &DownReason) {}
}

/// Accepts every peer once: a second connection to a connected peer is rejected.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultGate;

impl PeerGate for DefaultGate {
    fn admit(
        &self,
        _peer: &PeerInfo,
        _direction: Direction,
        _addr: Option<SocketAddr>,
        existing: Option<&PeerSummary>,
    ) -> Admission {
        match existing {
            Some(_) => Admission::Reject("already connected to this peer".into()),
            None => Admission::Accept,
        }
    }
}
