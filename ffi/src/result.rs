//! Result codes and error messages.
//!
//! Every fallible function returns a `ringwire_result`. `ringwire_error_message` writes the
//! fixed text of a code; `ringwire_last_error` writes the detail of the last failure on the
//! calling thread (for example which configuration key was wrong).

use std::cell::RefCell;
use std::ffi::c_char;

use ringwire::{DialError, SendError};

use crate::guard;

/// The outcome of a call. `RINGWIRE_RESULT_OK` (0) is success; every other value is an error.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringwire_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 1,
    /// An argument is out of range or malformed (bad text, unknown enum value, bad address).
    InvalidArgument = 2,
    /// The caller's buffer is too small; nothing was written.
    BufferTooSmall = 3,
    /// The library panicked inside the call. The handle involved should be freed.
    Panic = 4,
    /// The node is stopped (or stopping).
    Stopped = 5,
    /// The deadline passed.
    Timeout = 6,
    /// The send queue is full.
    Full = 7,
    /// The peer is not connected.
    PeerGone = 8,
    /// The peer does not run this channel.
    ChannelNotShared = 9,
    /// The payload exceeds the channel's maximum message size.
    TooLarge = 10,
    /// The peer speaks the stock protocol, which has no request/response.
    Unsupported = 11,
    /// Too many requests to this peer are in flight.
    TooManyRequests = 12,
    /// The channel has no local receiver.
    NoReceiver = 13,
    /// The configuration is invalid or could not be read.
    Config = 14,
    /// The node key could not be read.
    NodeKey = 15,
    /// The node did not start (driver, listen socket, channel settings).
    Start = 16,
    /// The channel could not be opened (already open, or invalid).
    Channel = 17,
    /// A dial failed: connect, handshake or admission.
    Dial = 18,
    /// The request id is unknown (already answered, or never issued).
    UnknownRequest = 19,
    /// An operating-system call failed.
    Io = 20,
    /// The handle is not live: already freed, or not made by this library.
    InvalidHandle = 21,
    /// The call was given up through its cancel token (`ringwire_cancel_fire`).
    Cancelled = 22,
}

impl ringwire_result {
    /// The fixed text of this code.
    pub fn message(self) -> &'static str {
        use ringwire_result::*;
        match self {
            Ok => "success",
            NullParameter => "a required pointer argument is NULL",
            InvalidArgument => "an argument is invalid",
            BufferTooSmall => "the buffer is too small",
            Panic => "internal error: the library panicked",
            Stopped => "the node is stopped",
            Timeout => "deadline passed",
            Full => "send queue is full",
            PeerGone => "peer is not connected",
            ChannelNotShared => "peer does not accept this channel",
            TooLarge => "payload exceeds the channel limit",
            Unsupported => "request/response is not supported by this peer (stock protocol)",
            TooManyRequests => "too many requests in flight",
            NoReceiver => "the channel has no local receiver",
            Config => "invalid configuration",
            NodeKey => "the node key could not be read",
            Start => "the node did not start",
            Channel => "the channel could not be opened",
            Dial => "dial failed",
            UnknownRequest => "unknown request id",
            Io => "operating-system call failed",
            InvalidHandle => "the handle is not live (freed, or not made by this library)",
            Cancelled => "the call was cancelled",
        }
    }
}

impl From<SendError> for ringwire_result {
    fn from(e: SendError) -> Self {
        set_detail(&e.to_string());
        match e {
            SendError::Timeout => ringwire_result::Timeout,
            SendError::Full => ringwire_result::Full,
            SendError::PeerGone => ringwire_result::PeerGone,
            SendError::ChannelNotShared(_) => ringwire_result::ChannelNotShared,
            SendError::TooLarge { .. } => ringwire_result::TooLarge,
            SendError::Unsupported => ringwire_result::Unsupported,
            SendError::TooManyRequests => ringwire_result::TooManyRequests,
            SendError::NoReceiver => ringwire_result::NoReceiver,
            // The request id no longer names a live request; the detail says why.
            SendError::Cancelled => ringwire_result::UnknownRequest,
            SendError::Stopped => ringwire_result::Stopped,
            SendError::Abandoned => ringwire_result::Cancelled,
        }
    }
}

impl From<DialError> for ringwire_result {
    fn from(e: DialError) -> Self {
        set_detail(&e.to_string());
        match e {
            DialError::Stopped => ringwire_result::Stopped,
            DialError::Abandoned => ringwire_result::Cancelled,
            _ => ringwire_result::Dial,
        }
    }
}

/// Longest detail kept per thread, in bytes.
const MAX_DETAIL: usize = 1024;

thread_local! {
    static DETAIL: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records the detail of a failure on this thread.
pub(crate) fn set_detail(text: &str) {
    let mut end = text.len().min(MAX_DETAIL);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    DETAIL.with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            d.clear();
            d.push_str(&text[..end]);
        }
    });
}

/// `code` with `detail` recorded.
pub(crate) fn fail(code: ringwire_result, detail: impl std::fmt::Display) -> ringwire_result {
    set_detail(&detail.to_string());
    code
}

/// Copies `text` and a terminating NUL into `buf` (capacity `len`); writes the text length
/// (without the NUL) to `out_written`.
///
/// # Safety
/// `buf` is valid for `len` bytes, `out_written` for one `size_t` (both checked for NULL).
pub(crate) unsafe fn write_text(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_written: *mut usize,
) -> Result<(), ringwire_result> {
    if buf.is_null() || out_written.is_null() {
        return Err(ringwire_result::NullParameter);
    }
    let n = text.len();
    if n >= len {
        return Err(ringwire_result::BufferTooSmall);
    }
    // SAFETY: the caller gives `buf` valid for `len` bytes and n + 1 <= len; the regions cannot
    // overlap (ours is a Rust string).
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    // SAFETY: checked non-NULL; the caller gives it valid for one size_t.
    unsafe { *out_written = n };
    Ok(())
}

/// Writes the text of `result` and a terminating NUL into `buf` (capacity `len`) and the text
/// length (without the NUL) into `*out_written`. 128 bytes always suffice. An unknown code gets
/// a text that says so.
///
/// # Safety
/// `buf` is valid for writes of `len` bytes; `out_written` for one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_error_message(
    result: u32,
    buf: *mut c_char,
    len: usize,
    out_written: *mut usize,
) -> ringwire_result {
    guard(|| {
        let text = code_from_u32(result).map_or("unknown result code", |c| c.message());
        // SAFETY: forwarded from this function's contract.
        unsafe { write_text(text, buf, len, out_written) }
    })
}

/// Writes the detail of the last failed call on this thread (for example which configuration
/// key was wrong and why) with a terminating NUL into `buf`; an empty text when there is none.
/// 1025 bytes always suffice.
///
/// # Safety
/// `buf` is valid for writes of `len` bytes; `out_written` for one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_last_error(
    buf: *mut c_char,
    len: usize,
    out_written: *mut usize,
) -> ringwire_result {
    guard(|| {
        let text = DETAIL.with(|d| d.try_borrow().map(|d| d.clone()).unwrap_or_default());
        // SAFETY: forwarded from this function's contract.
        unsafe { write_text(&text, buf, len, out_written) }
    })
}

fn code_from_u32(v: u32) -> Option<ringwire_result> {
    use ringwire_result::*;
    const ALL: [ringwire_result; 23] = [
        Ok,
        NullParameter,
        InvalidArgument,
        BufferTooSmall,
        Panic,
        Stopped,
        Timeout,
        Full,
        PeerGone,
        ChannelNotShared,
        TooLarge,
        Unsupported,
        TooManyRequests,
        NoReceiver,
        Config,
        NodeKey,
        Start,
        Channel,
        Dial,
        UnknownRequest,
        Io,
        InvalidHandle,
        Cancelled,
    ];
    ALL.into_iter().find(|c| *c as u32 == v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_text() {
        // The last code: a new one goes after it, here and in `code_from_u32`.
        let last = ringwire_result::Cancelled as u32;
        for v in 0..=last {
            assert!(code_from_u32(v).is_some(), "code {v} has no text");
        }
        assert_eq!(code_from_u32(last + 1), None);
        assert_eq!(
            code_from_u32(22).map(ringwire_result::message),
            Some("the call was cancelled")
        );
    }
}
