//! The small fixed-layout control frames: WINDOW_UPDATE, PING, PONG, CANCEL, CLOSE and RESET.
//!
//! ```text
//! WINDOW_UPDATE  body: channel u8 | increment u32        (5 bytes, increment >= 1)
//! PING / PONG    body: opaque u64                         (8 bytes)
//! CANCEL         body: request id u64                     (8 bytes, id != 0)
//! CLOSE          body: reason                             (0..=256 bytes of UTF-8)
//! RESET          body: code u32 | reason                  (4..=260 bytes, reason UTF-8)
//! ```

use super::{FrameError, frame_type, put_header};

/// Longest CLOSE or RESET reason, in bytes.
pub const MAX_REASON_LEN: usize = 256;

/// Cuts `reason` to at most [`MAX_REASON_LEN`] bytes on a character boundary.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or_default()
}

pub(super) fn encode_window_update(out: &mut Vec<u8>, channel: u8, increment: u32) {
    put_header(out, frame_type::WINDOW_UPDATE, 0, 5);
    out.push(channel);
    out.extend_from_slice(&increment.to_be_bytes());
}

pub(super) fn decode_window_update(body: &[u8]) -> Result<(u8, u32), FrameError> {
    let [channel, a, b, c, d] = *body else {
        return Err(FrameError::BadLength {
            frame_type: frame_type::WINDOW_UPDATE,
            len: body.len(),
        });
    };
    let increment = u32::from_be_bytes([a, b, c, d]);
    if increment == 0 {
        return Err(FrameError::ZeroIncrement);
    }
    Ok((channel, increment))
}

pub(super) fn encode_u64(out: &mut Vec<u8>, ty: u8, v: u64) {
    put_header(out, ty, 0, 8);
    out.extend_from_slice(&v.to_be_bytes());
}

pub(super) fn decode_u64(ty: u8, body: &[u8]) -> Result<u64, FrameError> {
    let Ok(b) = <[u8; 8]>::try_from(body) else {
        return Err(FrameError::BadLength {
            frame_type: ty,
            len: body.len(),
        });
    };
    Ok(u64::from_be_bytes(b))
}

pub(super) fn encode_close(out: &mut Vec<u8>, reason: &str) -> Result<(), FrameError> {
    if reason.len() > MAX_REASON_LEN {
        return Err(FrameError::ReasonTooLong(reason.len()));
    }
    // Length fits: at most 256.
    put_header(out, frame_type::CLOSE, 0, reason.len() as u16);
    out.extend_from_slice(reason.as_bytes());
    Ok(())
}

pub(super) fn decode_reason(body: &[u8]) -> Result<&str, FrameError> {
    if body.len() > MAX_REASON_LEN {
        return Err(FrameError::ReasonTooLong(body.len()));
    }
    std::str::from_utf8(body).map_err(|_| FrameError::ReasonNotUtf8)
}

pub(super) fn encode_reset(out: &mut Vec<u8>, code: u32, reason: &str) -> Result<(), FrameError> {
    if reason.len() > MAX_REASON_LEN {
        return Err(FrameError::ReasonTooLong(reason.len()));
    }
    // Length fits: at most 260.
    put_header(out, frame_type::RESET, 0, (4 + reason.len()) as u16);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    Ok(())
}

pub(super) fn decode_reset(body: &[u8]) -> Result<(u32, &str), FrameError> {
    let (Some(&[a, b, c, d]), Some(reason)) = (body.get(..4), body.get(4..)) else {
        return Err(FrameError::BadLength {
            frame_type: frame_type::RESET,
            len: body.len(),
        });
    };
    let code = u32::from_be_bytes([a, b, c, d]);
    Ok((code, decode_reason(reason)?))
}
