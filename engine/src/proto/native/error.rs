//! Errors of the multiplexer: fatal protocol errors, refused sends and bad configuration.

use super::event::{RequestId, ResetCode};
use super::frame::FrameError;
use super::frame::hello::HelloError;
use crate::proto::budget::PartialBudgetError;

/// A fatal error: the peer broke the protocol or the connection is dead.
///
/// After one, the multiplexer accepts no more input and has queued a RESET frame with
/// [`reset_code`](Self::reset_code); the driver flushes it with `poll_record` and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// A frame failed to decode.
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    /// A record plaintext with no frames.
    #[error("empty record")]
    EmptyRecord,
    /// The peer's first frame was not HELLO.
    #[error("expected HELLO first, got frame type 0x{0:02x}")]
    HelloExpected(u8),
    /// A second HELLO.
    #[error("duplicate HELLO")]
    DuplicateHello,
    /// The peer's version range does not include one we speak.
    #[error("no common protocol version: peer speaks {min}..={max}")]
    UnsupportedVersion {
        /// Peer's lowest version.
        min: u16,
        /// Peer's highest version.
        max: u16,
    },
    /// A frame for a channel not listed in both HELLOs.
    #[error("frame for unknown channel 0x{0:02x}")]
    UnknownChannel(u8),
    /// DATA beyond the window we granted.
    #[error("channel 0x{channel:02x}: {len} bytes of DATA beyond a window of {window}")]
    FlowControl {
        /// The channel.
        channel: u8,
        /// Credit the chunk needs.
        len: u32,
        /// Credit the peer had left.
        window: u32,
    },
    /// A WINDOW_UPDATE that grows our send window past 2^31 − 1.
    #[error("channel 0x{0:02x}: window grown past 2^31-1")]
    WindowOverflow(u8),
    /// A message larger than the channel accepts.
    #[error("channel 0x{channel:02x}: message exceeds {max} bytes")]
    MessageTooLarge {
        /// The channel.
        channel: u8,
        /// The channel's maximum message size.
        max: usize,
    },
    /// A START chunk while a message on the channel is unfinished.
    #[error("channel 0x{0:02x}: new message before the previous one ended")]
    MessageInterrupted(u8),
    /// A continuation chunk with no message started.
    #[error("channel 0x{0:02x}: continuation chunk without a started message")]
    UnexpectedContinuation(u8),
    /// A continuation chunk whose flags or request id differ from its message's first chunk.
    #[error("channel 0x{0:02x}: chunk flags or request id differ from the message's first chunk")]
    ChunkMismatch(u8),
    /// A COMPRESSED message although we did not offer compression.
    #[error("channel 0x{0:02x}: compressed message without negotiated compression")]
    CompressionNotNegotiated(u8),
    /// A compressed message failed to decompress within the channel's bound.
    #[error("channel 0x{channel:02x}: decompression failed: {reason}")]
    Decompress {
        /// The channel.
        channel: u8,
        /// The codec's error.
        reason: String,
    },
    /// A request id already in flight.
    #[error("request id {0} already in flight")]
    DuplicateRequestId(u64),
    /// More requests in flight than we announced.
    #[error("more than {0} requests in flight")]
    RequestLimit(u32),
    /// A response on another channel than its request.
    #[error("response {id} on channel 0x{got:02x}, request was on 0x{expected:02x}")]
    ResponseChannelMismatch {
        /// The request id.
        id: u64,
        /// Channel the response came on.
        got: u8,
        /// Channel of the request.
        expected: u8,
    },
    /// Input after the peer's CLOSE.
    #[error("frames after CLOSE")]
    AfterClose,
    /// No PONG within the keepalive timeout.
    #[error("no PONG within the keepalive timeout")]
    PongTimeout,
    /// More control frames (every frame but DATA) than `max_control_frames_per_second`.
    #[error("control frame flood: more than {limit} control frames per second")]
    ControlFlood {
        /// The frames allowed per second.
        limit: u32,
    },
    /// A reassembly buffer could not grow within the partial-message budget.
    #[error("{0}")]
    PartialBudget(#[from] PartialBudgetError),
}

impl MuxError {
    /// The RESET code that reports this error to the peer.
    pub fn reset_code(&self) -> ResetCode {
        match self {
            MuxError::UnsupportedVersion { .. } => ResetCode::UNSUPPORTED_VERSION,
            MuxError::UnknownChannel(_) => ResetCode::UNKNOWN_CHANNEL,
            MuxError::FlowControl { .. } | MuxError::WindowOverflow(_) => {
                ResetCode::FLOW_CONTROL_ERROR
            }
            MuxError::MessageTooLarge { .. } => ResetCode::MESSAGE_TOO_LARGE,
            MuxError::Decompress { .. } => ResetCode::COMPRESSION_ERROR,
            MuxError::RequestLimit(_) => ResetCode::REQUEST_LIMIT,
            MuxError::PongTimeout => ResetCode::KEEPALIVE_TIMEOUT,
            MuxError::PartialBudget(PartialBudgetError::Peer { .. }) => {
                ResetCode::MESSAGE_TOO_LARGE
            }
            MuxError::PartialBudget(PartialBudgetError::Node { .. }) => ResetCode::INTERNAL_ERROR,
            MuxError::Frame(_)
            | MuxError::EmptyRecord
            | MuxError::HelloExpected(_)
            | MuxError::DuplicateHello
            | MuxError::MessageInterrupted(_)
            | MuxError::UnexpectedContinuation(_)
            | MuxError::ChunkMismatch(_)
            | MuxError::CompressionNotNegotiated(_)
            | MuxError::DuplicateRequestId(_)
            | MuxError::ResponseChannelMismatch { .. }
            | MuxError::AfterClose
            | MuxError::ControlFlood { .. } => ResetCode::PROTOCOL_ERROR,
        }
    }
}

/// Why a send, request or response was refused. Nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxQueueError {
    /// The channel's send queue is full; retry after `poll_record` has made room.
    #[error("send queue full")]
    Full,
    /// The channel is not configured here, or the peer's HELLO does not list it.
    #[error("unknown channel 0x{0:02x}")]
    UnknownChannel(u8),
    /// The payload exceeds the channel's maximum message size (the peer's once known).
    #[error("payload of {len} bytes exceeds {max}")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The connection is closing, closed or reset.
    #[error("connection closed")]
    Closed,
    /// As many requests are in flight as configured.
    #[error("too many requests in flight")]
    TooManyRequests,
    /// No request with this id awaits a response on this channel (answered, cancelled or never
    /// received).
    #[error("no pending request {0:?} on this channel")]
    UnknownRequest(RequestId),
}

/// A configuration the multiplexer refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// More than 64 channels.
    #[error("{0} channels exceed 64")]
    TooManyChannels(usize),
    /// The capability channel 0xF0, which never carries messages.
    #[error("channel 0x{0:02x} is the ringwire capability channel and carries no messages")]
    ReservedChannel(u8),
    /// The same channel id twice.
    #[error("channel 0x{0:02x} configured twice")]
    DuplicateChannel(u8),
    /// A channel with priority 0.
    #[error("channel 0x{0:02x} has priority 0")]
    ZeroPriority(u8),
    /// A channel with a zero send queue capacity.
    #[error("channel 0x{0:02x} has a zero send queue capacity")]
    ZeroSendQueue(u8),
    /// A channel whose receive capacity is 0 or above `u32::MAX`.
    #[error("channel 0x{0:02x} receive message capacity outside 1..=u32::MAX")]
    BadRecvCapacity(u8),
    /// A channel whose initial window is below 1024 or above 2^31 − 1.
    #[error("channel 0x{0:02x} initial window outside 1024..=2^31-1")]
    BadWindow(u8),
    /// A busy window other than 0 below 1024 or above 2^31 − 1.
    #[error("busy_window {0} is neither 0 nor within 1024..=2^31-1")]
    BadBusyWindow(u32),
    /// `max_chunk` outside `1..=MAX_DATA_CHUNK`.
    #[error("max_chunk {0} outside 1..=65523")]
    BadMaxChunk(usize),
    /// A zero keepalive interval or timeout.
    #[error("{0} must be positive")]
    ZeroDuration(&'static str),
    /// A zero receive queue capacity.
    #[error("recv_queue_capacity must be positive")]
    ZeroRecvQueue,
    /// A zero control-frame budget.
    #[error("max_control_frames_per_second must be positive")]
    ZeroControlRate,
    /// Bad capability strings.
    #[error("capabilities: {0}")]
    Capabilities(#[from] HelloError),
}
