//! Copies of the payloads a send call is given, packed into recycled chunks.
//!
//! The C ABI copies every payload (the caller may reuse its buffers when the call returns).
//! Copying each small payload into an allocation of its own costs an allocation on the
//! caller's thread and a free on the shard thread per message, and the fresh pages fault in.
//! Runs of payloads to the same peer that fill at least a quarter of a chunk are copied into
//! one chunk instead, which each message references (`Bytes::slice`); when the last of them is
//! written or dropped, the chunk returns to its channel's free list for the next send. Only
//! payloads to one peer share a chunk, and a peer's messages on a channel leave in order, so
//! the memory a slow peer holds is at most four times its queued payload bytes, plus the
//! chunk it is partway through.

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

/// Bytes per chunk.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Free chunks a channel keeps for reuse (2 MiB); more are freed.
const KEEP: usize = 32;

/// A channel's free chunks.
pub(crate) struct Payloads {
    free: Mutex<Vec<Vec<u8>>>,
}

impl Payloads {
    /// An empty free list.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Payloads {
            free: Mutex::new(Vec::new()),
        })
    }

    /// Copies `parts` (at most [`CHUNK`] bytes in all) into one chunk and appends one `Bytes`
    /// per part, in order, to `out`.
    pub(crate) fn pack<'a>(
        self: &Arc<Self>,
        parts: impl Iterator<Item = &'a [u8]> + Clone,
        out: &mut Vec<Bytes>,
    ) {
        let mut buf = self
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK));
        for p in parts.clone() {
            buf.extend_from_slice(p);
        }
        let chunk = Bytes::from_owner(Chunk {
            buf,
            home: Arc::downgrade(self),
        });
        let mut at = 0;
        for p in parts {
            out.push(chunk.slice(at..at + p.len()));
            at += p.len();
        }
    }
}

/// The owner of a chunk's bytes; returns them to its channel's free list when the last
/// message that references it is dropped.
struct Chunk {
    buf: Vec<u8>,
    home: Weak<Payloads>,
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let Some(home) = self.home.upgrade() else {
            return;
        };
        let mut free = home.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < KEEP {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_in_order_and_the_chunk_is_reused() {
        let payloads = Payloads::new();
        let parts: [&[u8]; 3] = [b"alpha", b"", b"gamma!"];
        let mut out = Vec::new();
        payloads.pack(parts.iter().copied(), &mut out);
        assert_eq!(out, [&b"alpha"[..], b"", b"gamma!"]);
        let first = out[0].as_ptr();
        assert!(payloads.free.lock().unwrap().is_empty(), "in use");
        drop(out);
        assert_eq!(payloads.free.lock().unwrap().len(), 1, "returned");
        let mut again = Vec::new();
        payloads.pack([&b"beta"[..]].into_iter(), &mut again);
        assert_eq!(again[0], &b"beta"[..]);
        assert_eq!(again[0].as_ptr(), first, "the same chunk");
        assert!(payloads.free.lock().unwrap().is_empty());
    }

    #[test]
    fn a_chunk_outliving_its_channel_is_freed() {
        let payloads = Payloads::new();
        let mut out = Vec::new();
        payloads.pack([&b"late"[..]].into_iter(), &mut out);
        drop(payloads);
        assert_eq!(out[0], &b"late"[..]);
        drop(out);
    }

    #[test]
    fn the_free_list_is_bounded() {
        let payloads = Payloads::new();
        let mut held = Vec::new();
        for _ in 0..KEEP + 5 {
            payloads.pack([&b"x"[..]].into_iter(), &mut held);
        }
        drop(held);
        assert_eq!(payloads.free.lock().unwrap().len(), KEEP);
    }
}
