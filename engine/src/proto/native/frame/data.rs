//! DATA frames: one chunk of one message on one channel.
//!
//! ```text
//! header: type=0x02 | flags | body length
//! body:   channel u8 | [request id u64, only with REQUEST or RESPONSE]
//!         | [time-to-live varint, only with TTL] | chunk bytes
//! ```
//!
//! Flags: START (0x01) marks a message's first chunk, END (0x02) its last; a one-chunk message
//! sets both. COMPRESSED (0x04), REQUEST (0x08) and RESPONSE (0x10) describe the whole message
//! and, together with the request id, are repeated on every chunk of it. REQUEST and RESPONSE
//! exclude each other. TTL (0x20) may be set only on a START chunk and only towards a peer whose
//! HELLO set [`FEATURE_DEADLINE`](super::FEATURE_DEADLINE): the message's remaining
//! time-to-live in milliseconds follows as an unsigned LEB128 varint of at most
//! [`MAX_TTL_LEN`] bytes. Bits 0x40 and 0x80 are reserved and rejected. A chunk may be empty
//! only when END is set. The chunk is the rest of the body, so its length is implied.

use super::{FRAME_HEADER_LEN, FrameError, frame_type, peek_header, put_header};
use crate::proto::native::record::MAX_RECORD_PLAINTEXT;

/// DATA flag: first chunk of a message.
pub const DATA_START: u8 = 0x01;
/// DATA flag: last chunk of a message.
pub const DATA_END: u8 = 0x02;
/// DATA flag: the message payload is compressed.
pub const DATA_COMPRESSED: u8 = 0x04;
/// DATA flag: the message is a request; a request id follows the channel.
pub const DATA_REQUEST: u8 = 0x08;
/// DATA flag: the message is a response; a request id follows the channel.
pub const DATA_RESPONSE: u8 = 0x10;
/// DATA flag: the message's remaining time-to-live follows (START chunks only; sent only to a
/// peer that announced [`FEATURE_DEADLINE`](super::FEATURE_DEADLINE)).
pub const DATA_TTL: u8 = 0x20;
/// Every DATA flag defined by version 1 (TTL included: a peer that does not announce
/// `FEATURE_DEADLINE` never receives it).
pub const DATA_FLAGS_KNOWN: u8 =
    DATA_START | DATA_END | DATA_COMPRESSED | DATA_REQUEST | DATA_RESPONSE | DATA_TTL;
/// Most bytes of a time-to-live varint.
pub const MAX_TTL_LEN: usize = 4;
/// Largest time-to-live a DATA frame carries, in milliseconds (2^28 − 1, about 74 hours);
/// longer ones are sent as this.
pub const MAX_TTL_MS: u32 = (1 << 28) - 1;
/// Largest chunk a DATA frame can carry so that the frame fits one record:
/// 65536 − 4 (frame header) − 1 (channel) − 8 (request id) = 65523 bytes.
pub const MAX_DATA_CHUNK: usize = MAX_RECORD_PLAINTEXT - FRAME_HEADER_LEN - 1 - 8;

/// Whether a record's plaintext holds a message whole in one DATA chunk (START and END set,
/// not compressed): the kind the receiver hands out as a slice of the record rather than
/// copying. Walks frame headers only, and stops at the first such chunk; malformed input
/// answers `false` (the full decode reports it).
pub fn holds_whole_message(plaintext: &[u8]) -> bool {
    let whole = DATA_START | DATA_END;
    let mut rest = plaintext;
    while let Some((ty, flags, body_len)) = peek_header(rest) {
        if ty == frame_type::DATA && flags & (whole | DATA_COMPRESSED) == whole {
            return true;
        }
        rest = rest.get(FRAME_HEADER_LEN + body_len..).unwrap_or_default();
    }
    false
}

/// A decoded DATA frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFrame<'a> {
    /// Channel id.
    pub channel: u8,
    /// Flag bits (`DATA_*`).
    pub flags: u8,
    /// The message's remaining time-to-live in milliseconds when it was written, present
    /// exactly when TTL is set (START chunks only).
    pub ttl_ms: Option<u32>,
    /// Request id, present exactly when REQUEST or RESPONSE is set (never 0).
    pub request_id: Option<u64>,
    /// The chunk bytes.
    pub chunk: &'a [u8],
}

/// Bytes the varint of `ttl_ms` takes (after clamping to [`MAX_TTL_MS`]).
pub fn ttl_len(ttl_ms: u32) -> usize {
    match ttl_ms.min(MAX_TTL_MS) {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        _ => 4,
    }
}

/// Appends the varint of `ttl_ms`, clamped to [`MAX_TTL_MS`].
pub fn put_ttl(out: &mut Vec<u8>, ttl_ms: u32) {
    let mut v = ttl_ms.min(MAX_TTL_MS);
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a time-to-live varint at the start of `buf`: the value and the bytes it took. `None`
/// if `buf` ends inside it, it runs past [`MAX_TTL_LEN`] bytes, or it is longer than its value
/// needs (a last byte of zero after the first): each value has one encoding, as
/// [`put_ttl`] writes it. Reads at most four bytes and allocates nothing.
pub fn get_ttl(buf: &[u8]) -> Option<(u32, usize)> {
    let mut v: u32 = 0;
    for (i, &b) in buf.iter().take(MAX_TTL_LEN).enumerate() {
        v |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return None;
            }
            return Some((v, i + 1));
        }
    }
    None
}

/// Length of a DATA frame's header and fixed body fields (everything but the chunk).
pub fn data_header_len(has_request_id: bool) -> usize {
    FRAME_HEADER_LEN + 1 + if has_request_id { 8 } else { 0 }
}

/// Writes a DATA frame's header and fixed fields for a chunk of `chunk_len` bytes; the caller
/// appends the chunk itself. This is the send path's encoder: nothing is allocated.
///
/// `request_id` must be `Some` exactly when `flags` has REQUEST or RESPONSE, and `chunk_len`
/// at most [`MAX_DATA_CHUNK`].
pub fn encode_data_header(
    out: &mut Vec<u8>,
    channel: u8,
    flags: u8,
    request_id: Option<u64>,
    chunk_len: usize,
) -> Result<(), FrameError> {
    encode_data_header_ttl(out, channel, flags, request_id, None, chunk_len)
}

/// Like [`encode_data_header`], with a time-to-live: `ttl_ms` must be `Some` exactly when
/// `flags` has TTL (which needs START), and the whole frame must fit one record.
pub fn encode_data_header_ttl(
    out: &mut Vec<u8>,
    channel: u8,
    flags: u8,
    request_id: Option<u64>,
    ttl_ms: Option<u32>,
    chunk_len: usize,
) -> Result<(), FrameError> {
    if chunk_len > MAX_DATA_CHUNK {
        return Err(FrameError::ChunkTooLarge(chunk_len));
    }
    check_flags(flags, request_id.is_some(), chunk_len)?;
    if request_id == Some(0) {
        return Err(FrameError::ZeroRequestId);
    }
    if (flags & DATA_TTL != 0) != ttl_ms.is_some() {
        return Err(FrameError::BadTtl);
    }
    let ttl = ttl_ms.map_or(0, ttl_len);
    let body = data_header_len(request_id.is_some()) - FRAME_HEADER_LEN + ttl + chunk_len;
    if body + FRAME_HEADER_LEN > MAX_RECORD_PLAINTEXT {
        return Err(FrameError::ChunkTooLarge(chunk_len));
    }
    let body = u16::try_from(body).map_err(|_| FrameError::ChunkTooLarge(chunk_len))?;
    put_header(out, frame_type::DATA, flags, body);
    out.push(channel);
    if let Some(id) = request_id {
        out.extend_from_slice(&id.to_be_bytes());
    }
    if let Some(t) = ttl_ms {
        put_ttl(out, t);
    }
    Ok(())
}

fn check_flags(flags: u8, has_id: bool, chunk_len: usize) -> Result<(), FrameError> {
    if flags & !DATA_FLAGS_KNOWN != 0 {
        return Err(FrameError::ReservedFlags {
            frame_type: frame_type::DATA,
            flags,
        });
    }
    let is_req = flags & DATA_REQUEST != 0;
    let is_resp = flags & DATA_RESPONSE != 0;
    if is_req && is_resp {
        return Err(FrameError::RequestAndResponse);
    }
    if (is_req || is_resp) != has_id {
        return Err(FrameError::BadLength {
            frame_type: frame_type::DATA,
            len: chunk_len,
        });
    }
    if chunk_len == 0 && flags & DATA_END == 0 {
        return Err(FrameError::EmptyChunk);
    }
    if flags & DATA_TTL != 0 && flags & DATA_START == 0 {
        return Err(FrameError::BadTtl);
    }
    Ok(())
}

impl<'a> DataFrame<'a> {
    /// Whether this chunk starts a message.
    pub fn is_start(&self) -> bool {
        self.flags & DATA_START != 0
    }

    /// Whether this chunk ends a message.
    pub fn is_end(&self) -> bool {
        self.flags & DATA_END != 0
    }

    pub(super) fn decode_body(flags: u8, body: &'a [u8]) -> Result<Self, FrameError> {
        if flags & !DATA_FLAGS_KNOWN != 0 {
            return Err(FrameError::ReservedFlags {
                frame_type: frame_type::DATA,
                flags,
            });
        }
        let has_id = flags & (DATA_REQUEST | DATA_RESPONSE) != 0;
        let fixed = data_header_len(has_id) - FRAME_HEADER_LEN;
        let (Some(head), Some(rest)) = (body.get(..fixed), body.get(fixed..)) else {
            return Err(FrameError::BadLength {
                frame_type: frame_type::DATA,
                len: body.len(),
            });
        };
        let (ttl_ms, chunk) = if flags & DATA_TTL != 0 {
            let (ttl, n) = get_ttl(rest).ok_or(FrameError::BadTtl)?;
            (Some(ttl), rest.get(n..).unwrap_or_default())
        } else {
            (None, rest)
        };
        check_flags(flags, has_id, chunk.len())?;
        let channel = head.first().copied().unwrap_or_default();
        let request_id = match head.get(1..9) {
            Some(b) if has_id => {
                let mut id = [0u8; 8];
                id.copy_from_slice(b);
                let id = u64::from_be_bytes(id);
                if id == 0 {
                    return Err(FrameError::ZeroRequestId);
                }
                Some(id)
            }
            _ => None,
        };
        Ok(Self {
            channel,
            flags,
            request_id,
            ttl_ms,
            chunk,
        })
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        encode_data_header_ttl(
            out,
            self.channel,
            self.flags,
            self.request_id,
            self.ttl_ms,
            self.chunk.len(),
        )?;
        out.extend_from_slice(self.chunk);
        Ok(())
    }
}
