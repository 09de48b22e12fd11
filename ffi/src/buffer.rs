//! Payload buffers in library memory. A caller that builds a message straight into one (or
//! sends one message many times) hands it to `ringwire_channel_send_buffer` without the copy
//! `ringwire_channel_send` makes of every payload: the queued message refers to the buffer's
//! own bytes.
//!
//! A buffer is writable until its first send. From then on it is shared: every queued message
//! and the caller's handle each hold a reference, the bytes must not change, and the memory
//! goes back when the last reference does (`ringwire_buffer_free` drops the caller's).

use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use crate::registry::Registry;
use crate::result::fail;
use crate::{guard, guard_free, non_null, ringwire_result};

/// The largest buffer: the largest message the protocol can carry (2^32 − 1 bytes).
const MAX_BUFFER_LEN: usize = u32::MAX as usize;

/// A payload buffer. Create with `ringwire_buffer_new`, fill through the data pointer it
/// returns, send with `ringwire_channel_send_buffer` (any number of times, to any peers),
/// free with `ringwire_buffer_free`.
pub struct ringwire_buffer {
    /// The bytes until the first send (the caller may still write them); empty after.
    writable: Mutex<Vec<u8>>,
    /// The same allocation from the first send on, shared with the queued messages.
    shared: OnceLock<Bytes>,
}

impl ringwire_buffer {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            writable: Mutex::new(bytes),
            shared: OnceLock::new(),
        }
    }

    /// The buffer's bytes as a shared payload. The first call freezes the buffer; the bytes
    /// stay where they are (a `Vec` turns into `Bytes` without moving its allocation). Later
    /// calls take no lock.
    pub(crate) fn share(&self) -> Bytes {
        self.shared
            .get_or_init(|| {
                let mut w = self.writable.lock().unwrap_or_else(|e| e.into_inner());
                Bytes::from(std::mem::take(&mut *w))
            })
            .clone()
    }
}

/// The live buffers.
pub(crate) static BUFFERS: Registry<ringwire_buffer> = Registry::new();

/// Allocates a zero-filled buffer of `len` bytes (at most 2^32 − 1; 0 is allowed) and writes
/// its handle to `*out_buffer` and the address of its bytes to `*out_data`. The caller may
/// write the `len` bytes at `*out_data` until the buffer's first send, and may read them until
/// it frees the buffer. Fails with `RINGWIRE_RESULT_TOO_LARGE` above the bound and
/// `RINGWIRE_RESULT_INVALID_ARGUMENT` when the memory cannot be had.
///
/// # Safety
/// `out_buffer` and `out_data` are valid for one write each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_buffer_new(
    len: usize,
    out_buffer: *mut *mut ringwire_buffer,
    out_data: *mut *mut u8,
) -> ringwire_result {
    guard(|| {
        non_null(out_buffer)?;
        non_null(out_data)?;
        if len > MAX_BUFFER_LEN {
            return Err(fail(
                ringwire_result::TooLarge,
                "a buffer holds at most 2^32 - 1 bytes",
            ));
        }
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(len).map_err(|_| {
            fail(
                ringwire_result::InvalidArgument,
                "not enough memory for the buffer",
            )
        })?;
        bytes.resize(len, 0);
        let data = bytes.as_mut_ptr();
        let h = BUFFERS.insert(ringwire_buffer::new(bytes));
        // SAFETY: both checked non-NULL; valid for a write by the caller's contract. `data`
        // stays valid while the buffer lives: the allocation never moves (it is never grown,
        // and turning it into `Bytes` keeps it in place).
        unsafe {
            *out_buffer = h;
            *out_data = data;
        }
        Ok(())
    })
}

/// Drops the caller's reference to a buffer. Messages queued from it keep their bytes until
/// they are sent. NULL is accepted and ignored.
///
/// # Safety
/// None for the call: any pointer is accepted; only live handles are freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_buffer_free(buffer: *mut ringwire_buffer) {
    guard_free(|| {
        drop(BUFFERS.remove(buffer));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_keeps_the_bytes_in_place_and_counts_references() {
        let mut v = vec![0u8; 4096];
        v[0] = 7;
        let at = v.as_ptr();
        let b = ringwire_buffer::new(v);
        let first = b.share();
        let second = b.share();
        assert_eq!(first.as_ptr(), at);
        assert_eq!(second.as_ptr(), at);
        assert_eq!(first[0], 7);
        assert_eq!(first.len(), 4096);
    }
}
