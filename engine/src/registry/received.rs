//! What a channel's receiver yields.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;

use crate::proto::native::RequestId;
use crate::proto::secret::NodeId;

use super::ConnId;
use super::finished::RequestTicket;

/// Where a received message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// This node ([`To::Local`](crate::router::To::Local)).
    Local,
    /// A connected peer.
    Peer(NodeId),
}

/// A request a peer sent; answer it with `respond` on the same channel.
///
/// The request holds one of the places the peer may have in flight to this node
/// (`max_inflight_requests`) until the application is done with it: it answers it, or drops
/// every copy of it unanswered. The peer may give the request up (its caller stopped waiting,
/// or its deadline passed): the CANCEL it sends marks the request,
/// [`PendingRequest::is_cancelled`] turns true and `respond` answers
/// [`SendError::Cancelled`](super::SendError::Cancelled) instead of sending — but the place
/// stays taken while the application holds the request, so a peer cannot keep the
/// application busy without bound by pairing requests with CANCELs. Drop a request you will
/// not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequest(pub(crate) Arc<RequestHandle>);

/// What every copy of one [`PendingRequest`] shares: a received message stays small (one
/// pointer for its request, or none), and dropping the last copy drops the ticket, which
/// finishes the request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestHandle {
    pub(crate) peer: NodeId,
    pub(crate) conn: ConnId,
    pub(crate) shard: usize,
    pub(crate) channel: u8,
    pub(crate) id: RequestId,
    pub(crate) cancelled: CancelFlag,
    pub(crate) ticket: RequestTicket,
}

/// Set by the shard when the peer cancels a request; shared with every copy of the request.
#[derive(Clone, Debug, Default)]
pub(crate) struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// Marks the request cancelled.
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the peer cancelled the request.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl PartialEq for CancelFlag {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CancelFlag {}

impl PendingRequest {
    /// The peer that asked.
    pub fn peer(&self) -> NodeId {
        self.0.peer
    }

    /// The channel it arrived on.
    pub fn channel(&self) -> u8 {
        self.0.channel
    }

    /// Whether the peer has cancelled the request (its CANCEL arrived); answering it is then
    /// pointless and `respond` refuses with `Cancelled`.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.is_set()
    }
}

/// A message taken from a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Who sent it.
    pub origin: Origin,
    /// The channel it arrived on.
    pub channel: u8,
    /// The bytes, exactly as sent.
    pub payload: Bytes,
    /// Set when the message is a request that expects an answer.
    pub request: Option<PendingRequest>,
    /// Arrival plus the time-to-live the sender gave it (native peers), by this node's clock:
    /// the channel's receive calls drop it once this has passed (counted in
    /// `NodeStats::expired_before_delivery`).
    pub deliver_by: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_message_is_small_to_move() {
        // Every received message is moved from the connection into a batch and from the batch
        // into the application's vector; a request's details live behind one pointer.
        assert_eq!(size_of::<Option<PendingRequest>>(), size_of::<usize>());
        assert!(size_of::<Received>() <= 80, "{}", size_of::<Received>());
    }
}
