//! What the multiplexer reports to the application, and the identifiers it uses.

use std::time::Instant;

use bytes::Bytes;

/// A request id. Each side numbers its own requests from 1; a response carries the id of the
/// request it answers, so the ids of requests sent and of requests received are separate spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// How a received message relates to requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// An ordinary message.
    Plain,
    /// A request from the peer; answer it with `Mux::respond` and this id.
    Request(RequestId),
    /// The response to a request we sent with `Mux::request`.
    Response(RequestId),
}

/// Why an accepted outgoing request was dropped before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The peer's HELLO does not list the channel.
    PeerLacksChannel,
    /// The payload exceeds the maximum message size the peer announced for the channel.
    TooLarge {
        /// Payload length.
        len: usize,
        /// The peer's maximum.
        max: usize,
    },
}

/// A connection-level reset code carried by RESET frames.
///
/// Codes not listed here are delivered as they are; a receiver never rejects a RESET for its
/// code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResetCode(pub u32);

impl ResetCode {
    /// No error (not normally sent; a clean end uses CLOSE).
    pub const NO_ERROR: Self = Self(0);
    /// A malformed frame, a frame out of place, or any other breach of the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1);
    /// DATA beyond the granted window, or a window grown past 2^31 − 1.
    pub const FLOW_CONTROL_ERROR: Self = Self(2);
    /// A frame for a channel not listed in both HELLOs.
    pub const UNKNOWN_CHANNEL: Self = Self(3);
    /// A message larger than the channel's announced maximum.
    pub const MESSAGE_TOO_LARGE: Self = Self(4);
    /// More requests in flight than the receiver announced.
    pub const REQUEST_LIMIT: Self = Self(5);
    /// No PONG within the keepalive timeout.
    pub const KEEPALIVE_TIMEOUT: Self = Self(6);
    /// No protocol version in common.
    pub const UNSUPPORTED_VERSION: Self = Self(7);
    /// A compressed message failed to decompress within its bound.
    pub const COMPRESSION_ERROR: Self = Self(8);
    /// A local failure unrelated to the peer's behaviour.
    pub const INTERNAL_ERROR: Self = Self(9);
    /// The application or operator ended the connection (for example a ban).
    pub const APPLICATION: Self = Self(10);
    /// A record failed to open (bad tag, bad length, counter spent).
    pub const RECORD_ERROR: Self = Self(11);
}

/// An event for the application, from `Mux::poll_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent {
    /// The peer's HELLO arrived and the version is agreed.
    Hello {
        /// The negotiated protocol version.
        version: u16,
        /// The peer's service capabilities.
        capabilities: Vec<String>,
    },
    /// A whole message.
    Message {
        /// Channel id.
        channel: u8,
        /// The payload, decompressed.
        payload: Bytes,
        /// Plain message, request or response.
        kind: MessageKind,
        /// When the peer sent a time-to-live: arrival plus that time, after which the message
        /// is not worth handing to the application.
        deliver_by: Option<Instant>,
    },
    /// A request we sent passed its deadline; a late response will be dropped.
    RequestTimedOut(RequestId),
    /// A request we accepted could not be sent.
    RequestFailed {
        /// The request.
        id: RequestId,
        /// Why.
        reason: DropReason,
    },
    /// The peer cancelled a request it sent us, after we had taken it; no answer is needed.
    /// The request keeps its place among those the peer may have in flight until the
    /// application is done with it ([`Mux::respond`](super::Mux::respond) or
    /// [`Mux::finish_request`](super::Mux::finish_request)).
    Cancelled(RequestId),
    /// The peer closed cleanly. Messages it sent before closing were delivered first.
    Closed {
        /// The peer's reason.
        reason: String,
    },
    /// The peer aborted the connection.
    Reset {
        /// The peer's reset code.
        code: ResetCode,
        /// The peer's reason.
        reason: String,
    },
    /// Input held while the receive queue was full broke the protocol when it was taken up:
    /// the connection is dead and a RESET is queued, as after an error from `handle_record`.
    Failed(super::MuxError),
}
