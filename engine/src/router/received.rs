//! What a channel's receiver yields.

use bytes::Bytes;

use crate::proto::native::RequestId;
use crate::proto::secret::NodeId;

use super::ConnId;

/// Where a received message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// This node ([`To::Local`](super::To::Local)).
    Local,
    /// A connected peer.
    Peer(NodeId),
}

/// A request a peer sent; answer it with `respond` on the same channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    pub(crate) peer: NodeId,
    pub(crate) conn: ConnId,
    pub(crate) shard: usize,
    pub(crate) channel: u8,
    pub(crate) id: RequestId,
}

impl PendingRequest {
    /// The peer that asked.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// The channel it arrived on.
    pub fn channel(&self) -> u8 {
        self.channel
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
}
