//! Errors the application sees.

use crate::proto::conn::ConnError;

/// Why a send, request or response did not go out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The deadline passed while waiting for queue space (or, for a request, for the response).
    #[error("deadline passed")]
    Timeout,
    /// The queue is full and the call does not wait (`try_send`).
    #[error("send queue is full")]
    Full,
    /// The peer is not connected (or disconnected while the call waited).
    #[error("peer is not connected")]
    PeerGone,
    /// The peer does not run this channel.
    #[error("peer does not accept channel {0:#04x}")]
    ChannelNotShared(u8),
    /// The payload exceeds the channel's maximum message size.
    #[error("payload of {len} bytes exceeds the channel limit of {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The channel's `recv_message_capacity`.
        max: usize,
    },
    /// Request/response needs a native (ringwire) peer; this one speaks stock MConnection.
    #[error("request/response is not supported by this peer (stock protocol)")]
    Unsupported,
    /// As many requests to this peer are in flight as it allows.
    #[error("too many requests in flight")]
    TooManyRequests,
    /// The peer cancelled the request this response answers (it no longer waits for it).
    #[error("the peer cancelled this request")]
    Cancelled,
    /// The local receiver of the channel is gone.
    #[error("the channel has no local receiver")]
    NoReceiver,
    /// The caller gave the request up through its [`CancelToken`](crate::router::CancelToken)
    /// (the request is withdrawn; a late response is dropped).
    #[error("the request was given up by its caller")]
    Abandoned,
    /// The node is shutting down or stopped.
    #[error("node is stopped")]
    Stopped,
}

/// Why a dial did not produce a connected peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The TCP connection failed (or timed out).
    #[error("connect: {0}")]
    Connect(String),
    /// The handshake or NodeInfo exchange failed.
    #[error("handshake: {0}")]
    Handshake(ConnError),
    /// The connection failed at the socket during the handshake.
    #[error("i/o: {0}")]
    Io(String),
    /// The connection came up but this node refused it (duplicate peer, limits, policy).
    #[error("refused: {0}")]
    Refused(String),
    /// The caller gave the dial up through its [`CancelToken`](crate::router::CancelToken)
    /// before the peer was up (a connection still being made is closed).
    #[error("the dial was given up by its caller")]
    Abandoned,
    /// The node is shutting down or stopped.
    #[error("node is stopped")]
    Stopped,
}

/// Why a peer went down.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DownReason {
    /// The protocol failed or the peer closed it (the connection's own reason).
    #[error("{0}")]
    Protocol(ConnError),
    /// The socket failed or reached end of stream.
    #[error("i/o: {0}")]
    Io(String),
    /// This node closed it (shutdown, disconnect, a refused duplicate).
    #[error("closed locally: {0}")]
    Local(String),
}

impl DownReason {
    /// Sorts a connection's close reason.
    pub(crate) fn from_conn(e: ConnError) -> Self {
        match e {
            ConnError::LocalClose(r) => DownReason::Local(r),
            other => DownReason::Protocol(other),
        }
    }
}
