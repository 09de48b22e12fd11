//! The admission seam: who may stay connected once authenticated.
//!
//! The registry asks a [`PeerGate`] about every peer that finished the handshake and the NodeInfo
//! checks, before the peer becomes visible to the application. The peer manager (limits,
//! simultaneous-dial tie-break, bans, persistent peers) plugs in here; [`DefaultGate`] accepts
//! everyone and keeps the first connection when a peer connects twice.
//!
//! A gate may also hold a place for a connection from its very start: [`PeerGate::on_accept`]
//! is asked right after `accept`, before the connection allocates anything, and
//! [`PeerGate::on_dial`] before a dial. The [`Pending`] place they return travels with the
//! connection and comes back to [`PeerGate::admit`]; if the handshake fails it is dropped.

use std::any::Any;
use std::net::SocketAddr;

use crate::proto::conn::PeerInfo;
use crate::proto::secret::NodeId;

use super::{Direction, DownReason, PeerSummary};

/// The verdict on a newly authenticated peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Register the peer.
    Accept,
    /// Close the new connection with this reason.
    Reject(String),
    /// Close the existing connection to the same peer and register the new one (for a
    /// deterministic simultaneous-dial tie-break).
    ReplaceExisting,
}

/// A place a gate holds for one connection between its start and its admission; dropping it
/// frees the place.
pub type Pending = Box<dyn Any + Send>;

/// Decides whether an authenticated peer may stay connected.
pub trait PeerGate: Send + Sync + 'static {
    /// Called on the accepting shard right after a TCP `accept`, before anything is allocated
    /// for the connection. `Err` closes the socket at once.
    fn on_accept(&self, _addr: SocketAddr) -> Result<Option<Pending>, String> {
        Ok(None)
    }

    /// Called before a dial to `expected` (if known) starts. `Err` fails the dial at once.
    fn on_dial(&self, _expected: Option<NodeId>) -> Result<Option<Pending>, String> {
        Ok(None)
    }

    /// Called on the owning shard for every authenticated peer. `existing` is the connection
    /// already registered for the same node ID, if any; `pending` is the place
    /// [`PeerGate::on_accept`] or [`PeerGate::on_dial`] returned for this connection.
    fn admit(
        &self,
        peer: &PeerInfo,
        direction: Direction,
        addr: Option<SocketAddr>,
        existing: Option<&PeerSummary>,
        pending: Option<Pending>,
    ) -> Verdict;

    /// Called when an admitted peer's registered connection goes down (not for a connection
    /// that [`Verdict::ReplaceExisting`] displaced).
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
        _pending: Option<Pending>,
    ) -> Verdict {
        match existing {
            Some(_) => Verdict::Reject("already connected to this peer".into()),
            None => Verdict::Accept,
        }
    }
}
