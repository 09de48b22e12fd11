//! Native frames: the units a record plaintext carries.
//!
//! A record plaintext is a sequence of one or more whole frames; a frame never spans two
//! records. Every frame starts with the same four-byte header:
//!
//! ```text
//!  0        1        2                 4
//! +--------+--------+-----------------+---------------------+
//! | type   | flags  | body length u16 | body (length bytes) |
//! +--------+--------+-----------------+---------------------+
//! ```
//!
//! All integers are big-endian. Only DATA defines flags; every other type requires flags 0.
//! Decoding is a pure function of the bytes: it checks every length against the remaining bytes
//! and the limits below before it reads or allocates, uses checked arithmetic, and rejects
//! unknown frame types and reserved flag bits (a version 1 receiver tolerates nothing it does
//! not know, except trailing extension bytes in HELLO; see [`hello`]).

mod control;
mod data;
pub mod hello;

pub use control::{MAX_REASON_LEN, truncate_reason};
pub use data::{
    DATA_COMPRESSED, DATA_END, DATA_FLAGS_KNOWN, DATA_REQUEST, DATA_RESPONSE, DATA_START, DATA_TTL,
    DataFrame, MAX_DATA_CHUNK, MAX_TTL_LEN, MAX_TTL_MS, data_header_len, encode_data_header,
    encode_data_header_ttl, get_ttl, holds_whole_message, put_ttl, ttl_len,
};
pub use hello::{
    FEATURE_CANCEL_ACK, FEATURE_COMPRESSION, FEATURE_DEADLINE, Hello, HelloChannel,
    MAX_CAPABILITIES, MAX_CAPABILITY_LEN, MAX_HELLO_CHANNELS, MAX_HELLO_FRAME_LEN,
};

/// Length of the common frame header.
pub const FRAME_HEADER_LEN: usize = 4;
/// Largest frame body the `u16` length field can declare.
pub const MAX_FRAME_BODY: usize = u16::MAX as usize;
/// Largest credit window a peer may grant on one channel (2^31 − 1 bytes).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;
/// Smallest initial window a HELLO may announce.
pub const MIN_WINDOW: u32 = 1024;
/// Credit a DATA frame costs on top of its chunk length. It stands for the receiver's
/// per-message bookkeeping, so that flow control bounds the number of waiting messages as well
/// as their bytes.
pub const DATA_CREDIT_OVERHEAD: u32 = 64;

/// Frame type codes.
pub mod frame_type {
    /// HELLO: protocol versions, features, limits, capabilities and channels.
    pub const HELLO: u8 = 0x01;
    /// DATA: one chunk of a message on a channel.
    pub const DATA: u8 = 0x02;
    /// WINDOW_UPDATE: credit returned on a channel.
    pub const WINDOW_UPDATE: u8 = 0x03;
    /// PING: keepalive probe with an opaque value.
    pub const PING: u8 = 0x04;
    /// PONG: answer to a PING, echoing its value.
    pub const PONG: u8 = 0x05;
    /// CANCEL: the requester no longer wants the response to a request.
    pub const CANCEL: u8 = 0x06;
    /// CLOSE: clean end of the sender's side, with a reason.
    pub const CLOSE: u8 = 0x07;
    /// RESET: connection-level abort with a code and a reason.
    pub const RESET: u8 = 0x08;
}

/// Errors from decoding or encoding frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The record ended inside a frame header or body.
    #[error("frame truncated: need {needed} bytes, {have} remain")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes that remain in the record.
        have: usize,
    },
    /// The frame type is not defined in protocol version 1.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// Flag bits set that the frame type does not define.
    #[error("frame type 0x{frame_type:02x} has undefined flags 0x{flags:02x}")]
    ReservedFlags {
        /// The frame type.
        frame_type: u8,
        /// The flags byte as received.
        flags: u8,
    },
    /// A body length that does not fit the frame type.
    #[error("frame type 0x{frame_type:02x} has a body of {len} bytes")]
    BadLength {
        /// The frame type.
        frame_type: u8,
        /// The declared body length.
        len: usize,
    },
    /// A DATA frame sets both REQUEST and RESPONSE.
    #[error("DATA frame is both a request and a response")]
    RequestAndResponse,
    /// A DATA frame with an empty chunk that does not end its message.
    #[error("DATA frame has an empty chunk without END")]
    EmptyChunk,
    /// A DATA frame's time-to-live: TTL on a chunk that is not a START, a varint longer than
    /// four bytes or cut off by the end of the body, or (encoding) a TTL flag and value that
    /// disagree.
    #[error("DATA frame has a bad time-to-live")]
    BadTtl,
    /// Request id 0, which is reserved.
    #[error("request id 0 is reserved")]
    ZeroRequestId,
    /// A WINDOW_UPDATE with increment 0.
    #[error("window update with a zero increment")]
    ZeroIncrement,
    /// A CLOSE or RESET reason longer than [`MAX_REASON_LEN`].
    #[error("reason of {0} bytes exceeds {MAX_REASON_LEN}")]
    ReasonTooLong(usize),
    /// A CLOSE or RESET reason that is not UTF-8.
    #[error("reason is not valid UTF-8")]
    ReasonNotUtf8,
    /// A DATA chunk larger than [`MAX_DATA_CHUNK`] (encoding only).
    #[error("DATA chunk of {0} bytes exceeds {MAX_DATA_CHUNK}")]
    ChunkTooLarge(usize),
    /// A malformed HELLO.
    #[error("bad HELLO: {0}")]
    Hello(#[from] hello::HelloError),
}

/// One decoded frame. Borrowed parts point into the record plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// HELLO (type 0x01).
    Hello(Hello),
    /// DATA (type 0x02).
    Data(DataFrame<'a>),
    /// WINDOW_UPDATE (type 0x03): `increment` more bytes may be sent on `channel`.
    WindowUpdate {
        /// The channel.
        channel: u8,
        /// Credit added, in bytes (at least 1).
        increment: u32,
    },
    /// PING (type 0x04) with its opaque value.
    Ping(u64),
    /// PONG (type 0x05) echoing a PING's value.
    Pong(u64),
    /// CANCEL (type 0x06) of a request id (nonzero).
    Cancel(u64),
    /// CLOSE (type 0x07) with a UTF-8 reason of at most [`MAX_REASON_LEN`] bytes.
    Close {
        /// Why the sender closes.
        reason: &'a str,
    },
    /// RESET (type 0x08) with a code and a UTF-8 reason of at most [`MAX_REASON_LEN`] bytes.
    Reset {
        /// A reset code (see `ResetCode`).
        code: u32,
        /// Why the sender aborts.
        reason: &'a str,
    },
}

impl Frame<'_> {
    /// Appends the encoded frame to `out`. Fails, writing nothing, on a value outside the
    /// limits a receiver enforces.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        match self {
            Frame::Hello(h) => h.encode(out),
            Frame::Data(d) => d.encode(out),
            Frame::WindowUpdate { channel, increment } => {
                control::encode_window_update(out, *channel, *increment);
                Ok(())
            }
            Frame::Ping(v) => {
                control::encode_u64(out, frame_type::PING, *v);
                Ok(())
            }
            Frame::Pong(v) => {
                control::encode_u64(out, frame_type::PONG, *v);
                Ok(())
            }
            Frame::Cancel(id) => {
                if *id == 0 {
                    return Err(FrameError::ZeroRequestId);
                }
                control::encode_u64(out, frame_type::CANCEL, *id);
                Ok(())
            }
            Frame::Close { reason } => control::encode_close(out, reason),
            Frame::Reset { code, reason } => control::encode_reset(out, *code, reason),
        }
    }
}

/// Writes a frame header.
pub(crate) fn put_header(out: &mut Vec<u8>, frame_type: u8, flags: u8, body_len: u16) {
    out.push(frame_type);
    out.push(flags);
    out.extend_from_slice(&body_len.to_be_bytes());
}

/// The header of the frame at the start of `buf`: its type, flags and body length (`None`
/// when fewer than [`FRAME_HEADER_LEN`] bytes are there).
pub(crate) fn peek_header(buf: &[u8]) -> Option<(u8, u8, usize)> {
    match *buf.get(..FRAME_HEADER_LEN)? {
        [ty, flags, hi, lo] => Some((ty, flags, usize::from(u16::from_be_bytes([hi, lo])))),
        _ => None,
    }
}

/// Decodes the frame that starts at `pos` in `buf`.
///
/// Returns the frame and the offset just past it. A DATA chunk is always the tail of its frame,
/// so it lies at `end - chunk.len() .. end`.
pub fn decode_frame(buf: &[u8], pos: usize) -> Result<(Frame<'_>, usize), FrameError> {
    let rest = buf.get(pos..).unwrap_or_default();
    let Some((ty, flags, body_len)) = peek_header(rest) else {
        return Err(FrameError::Truncated {
            needed: FRAME_HEADER_LEN,
            have: rest.len(),
        });
    };
    let total = FRAME_HEADER_LEN + body_len;
    let Some(body) = rest.get(FRAME_HEADER_LEN..total) else {
        return Err(FrameError::Truncated {
            needed: total,
            have: rest.len(),
        });
    };
    if ty != frame_type::DATA && flags != 0 {
        if ty == 0 || ty > frame_type::RESET {
            return Err(FrameError::UnknownType(ty));
        }
        return Err(FrameError::ReservedFlags {
            frame_type: ty,
            flags,
        });
    }
    let frame = match ty {
        frame_type::HELLO => Frame::Hello(Hello::decode_body(body)?),
        frame_type::DATA => Frame::Data(DataFrame::decode_body(flags, body)?),
        frame_type::WINDOW_UPDATE => {
            let (channel, increment) = control::decode_window_update(body)?;
            Frame::WindowUpdate { channel, increment }
        }
        frame_type::PING => Frame::Ping(control::decode_u64(ty, body)?),
        frame_type::PONG => Frame::Pong(control::decode_u64(ty, body)?),
        frame_type::CANCEL => {
            let id = control::decode_u64(ty, body)?;
            if id == 0 {
                return Err(FrameError::ZeroRequestId);
            }
            Frame::Cancel(id)
        }
        frame_type::CLOSE => Frame::Close {
            reason: control::decode_reason(body)?,
        },
        frame_type::RESET => {
            let (code, reason) = control::decode_reset(body)?;
            Frame::Reset { code, reason }
        }
        other => return Err(FrameError::UnknownType(other)),
    };
    Ok((frame, pos + total))
}

/// Iterates over the frames of one record plaintext. Stops after the first error.
#[derive(Debug, Clone)]
pub struct FrameDecoder<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> FrameDecoder<'a> {
    /// A decoder over a record plaintext.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Offset of the next frame in the plaintext.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for FrameDecoder<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        match decode_frame(self.buf, self.pos) {
            Ok((f, next)) => {
                self.pos = next;
                Some(Ok(f))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ttl;
