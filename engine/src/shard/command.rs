//! Work other threads hand to a shard through its bounded inbox.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::proto::conn::PeerInfo;
use crate::proto::native::RequestId;
use crate::proto::secret::NodeId;
use crate::router::{ConnId, DialError, Pending, SendError};
use crate::rt::memory::MemoryEnd;

/// Where a dial goes.
pub(crate) enum DialTarget {
    /// A TCP address.
    Tcp(SocketAddr),
    /// One end of an in-memory pipe whose other end another node adopts.
    Memory(MemoryEnd),
}

/// The answer to a dial: the peer once it is up.
pub(crate) type DialReply = oneshot::Sender<Result<Arc<PeerInfo>, DialError>>;

/// The answer to a request: the response payload.
pub(crate) type RequestReply = oneshot::Sender<Result<Bytes, SendError>>;

/// One unit of work for a shard.
pub(crate) enum Command {
    /// Queue `payload` on a connection. The sender holds one credit on the channel; the shard
    /// returns it.
    Send {
        conn: ConnId,
        channel: u8,
        payload: Bytes,
    },
    /// Queue `payloads` in order on a connection; each holds one credit, as in `Send`.
    SendMany {
        conn: ConnId,
        channel: u8,
        payloads: Vec<Bytes>,
    },
    /// Queue `payload` on many connections of this shard (`None`: all that share the channel),
    /// best effort: a connection whose queue is far behind skips it (counted).
    Fanout {
        targets: Option<Vec<ConnId>>,
        channel: u8,
        payload: Bytes,
    },
    /// Send a request (holds one credit, like `Send`).
    Request {
        conn: ConnId,
        channel: u8,
        payload: Bytes,
        deadline: Instant,
        reply: RequestReply,
    },
    /// Withdraw the requests on a connection whose callers stopped waiting (their reply
    /// channel is closed): held ones are dropped, sent ones cancelled at the peer.
    Cancel { conn: ConnId },
    /// Answer a request the peer sent.
    Respond {
        conn: ConnId,
        channel: u8,
        id: RequestId,
        payload: Bytes,
    },
    /// Open a connection.
    Dial {
        target: DialTarget,
        expected: Option<NodeId>,
        deadline: Instant,
        reply: DialReply,
        /// The place the gate holds for this dial.
        pending: Option<Pending>,
    },
    /// Take over the inbound end of an in-memory pipe.
    Adopt { end: MemoryEnd },
    /// Close a connection.
    Disconnect { conn: ConnId, reason: String },
    /// Close every connection (waiting for them until `deadline`) and stop.
    Shutdown {
        deadline: Instant,
        done: oneshot::Sender<()>,
    },
}
