//! Buffers of received messages that come back to their connection for reuse.
//!
//! A message larger than one record is reassembled into a buffer of its own, which is handed
//! to the application and freed wherever the application drops it. At tens of thousands of
//! 64 KiB messages a second the allocator returns those pages to the kernel and the next
//! reassembly faults them in again: a profile of S1 put 97 % of the receiving shard's page
//! faults in that copy (`docs/PERFORMANCE.md`, "Reassembly buffers come back"). Instead, the
//! bytes handed out own their buffer together with a handle on the connection's
//! [`SpareBuffers`], and the last one dropped, on whatever thread, puts the buffer back there
//! for the next message.
//!
//! The spares are bounded twice: at most [`MAX_SPARES`] buffers and a byte limit the
//! connection sets from its receive window, so an idle connection keeps at most what it
//! recently had in flight, and all of it is freed when the connection and the last message
//! it handed out are gone.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// The most buffers one connection keeps for reuse.
pub const MAX_SPARES: usize = 8;

/// The least capacity worth keeping: smaller buffers come from the allocator's caches
/// without faulting pages in.
pub const MIN_SPARE_CAPACITY: usize = 16 * 1024;

/// Emptied message buffers waiting for the next message on one connection.
#[derive(Debug)]
pub struct SpareBuffers {
    max_bytes: usize,
    max_buffers: usize,
    spares: Mutex<Spares>,
}

#[derive(Debug, Default)]
struct Spares {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

impl SpareBuffers {
    /// A pool that keeps at most `max_bytes` of capacity (and [`MAX_SPARES`] buffers); 0 keeps
    /// none.
    pub fn new(max_bytes: usize) -> Arc<Self> {
        Self::with_count(max_bytes, MAX_SPARES)
    }

    /// A pool that keeps at most `max_bytes` of capacity in at most `max_buffers` buffers (a
    /// shard's spare write buffers, shared by all its connections).
    pub fn with_count(max_bytes: usize, max_buffers: usize) -> Arc<Self> {
        Arc::new(Self {
            max_bytes,
            max_buffers,
            spares: Mutex::new(Spares::default()),
        })
    }

    /// Bytes of capacity kept now.
    pub fn kept_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Buffers kept now.
    pub fn kept(&self) -> usize {
        self.lock().buffers.len()
    }

    /// An empty buffer with a capacity of at least `min` and at most twice that, if one is
    /// kept: a buffer far larger than the message would keep memory the message does not use.
    pub fn take(&self, min: usize) -> Option<Vec<u8>> {
        if min < MIN_SPARE_CAPACITY / 2 {
            return None;
        }
        let mut s = self.lock();
        let at = s
            .buffers
            .iter()
            .position(|b| b.capacity() >= min && b.capacity() / 2 <= min)?;
        let buf = s.buffers.swap_remove(at);
        s.bytes = s.bytes.saturating_sub(buf.capacity());
        Some(buf)
    }

    /// Makes room in `buf` for `more` bytes: when it lacks it, its bytes move to a kept buffer
    /// that holds them and `more` (at most twice that), or else to a fresh one with room for
    /// as much again (within `max`), and the old buffer is given back. Growing in place would
    /// fault the new pages in.
    pub fn grow(&self, buf: &mut Vec<u8>, more: usize, max: usize) {
        if buf.capacity() - buf.len() >= more {
            return;
        }
        let need = buf.len().saturating_add(more);
        let mut next = self.take(need).unwrap_or_else(|| {
            let room = need.saturating_mul(2).min(max).max(need);
            Vec::with_capacity(room)
        });
        next.extend_from_slice(buf);
        self.give(std::mem::replace(buf, next));
    }

    /// Keeps `buf` (emptied) if there is room and it is worth keeping; frees it otherwise.
    pub fn give(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap < MIN_SPARE_CAPACITY {
            return;
        }
        buf.clear();
        let mut s = self.lock();
        if s.buffers.len() < self.max_buffers && s.bytes.saturating_add(cap) <= self.max_bytes {
            s.bytes += cap;
            s.buffers.push(buf);
        }
    }

    /// `buf` as shared bytes that give it back to `spares` when the last slice is dropped.
    pub fn share(spares: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Returning {
            buf,
            home: Arc::clone(spares),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spares> {
        // A panic while the lock was held cannot leave the list inconsistent: every update is
        // one push or one swap_remove with its byte count.
        self.spares.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A buffer handed out as [`Bytes`] that goes back to its connection's spares when dropped.
struct Returning {
    buf: Vec<u8>,
    home: Arc<SpareBuffers>,
}

impl AsRef<[u8]> for Returning {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        self.home.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: usize = MIN_SPARE_CAPACITY;

    #[test]
    fn a_shared_buffer_comes_back_when_its_last_slice_drops() {
        let spares = SpareBuffers::new(1 << 20);
        let mut buf = Vec::with_capacity(2 * K);
        buf.extend_from_slice(&vec![7u8; K + 600]);
        let ptr = buf.as_ptr();
        let bytes = SpareBuffers::share(&spares, buf);
        let part = bytes.slice(100..200);
        drop(bytes);
        assert_eq!(spares.kept(), 0, "a slice still holds it");
        std::thread::spawn(move || drop(part)).join().unwrap();
        assert_eq!(spares.kept(), 1);
        assert_eq!(spares.kept_bytes(), 2 * K);
        let again = spares.take(K + 600).expect("the buffer is kept");
        assert_eq!(again.as_ptr(), ptr, "the same allocation");
        assert!(again.is_empty());
        assert_eq!(spares.kept_bytes(), 0);
    }

    #[test]
    fn a_buffer_is_taken_only_for_a_message_it_fits_without_waste() {
        let spares = SpareBuffers::new(1 << 20);
        spares.give(Vec::with_capacity(2 * K));
        assert!(spares.take(2 * K + 1).is_none(), "too small");
        assert!(spares.take(K - 1).is_none(), "more than twice the message");
        assert!(spares.take(K).is_some());
    }

    #[test]
    fn spares_are_bounded_by_count_bytes_and_worth() {
        let spares = SpareBuffers::new(1 << 30);
        for _ in 0..MAX_SPARES + 3 {
            spares.give(Vec::with_capacity(K));
        }
        assert_eq!(spares.kept(), MAX_SPARES, "the count limit");
        let small = SpareBuffers::new(3 * K);
        small.give(Vec::with_capacity(2 * K));
        small.give(Vec::with_capacity(2 * K));
        assert_eq!(small.kept(), 1, "the byte limit refuses the second");
        small.give(Vec::with_capacity(K - 1));
        assert_eq!(small.kept(), 1, "too small to be worth keeping");
        let none = SpareBuffers::new(0);
        none.give(Vec::with_capacity(K));
        assert_eq!(none.kept(), 0);
        let wide = SpareBuffers::with_count(1 << 30, MAX_SPARES * 4);
        for _ in 0..MAX_SPARES * 4 + 3 {
            wide.give(Vec::with_capacity(K));
        }
        assert_eq!(wide.kept(), MAX_SPARES * 4, "a pool's own count limit");
    }

    #[test]
    fn growing_moves_the_bytes_into_a_kept_buffer_and_keeps_the_old_one() {
        let spares = SpareBuffers::new(1 << 20);
        let big = Vec::with_capacity(8 * K);
        let big_ptr = big.as_ptr();
        spares.give(big);
        let mut buf = Vec::with_capacity(2 * K);
        buf.extend_from_slice(&vec![1u8; 2 * K]);
        spares.grow(&mut buf, 2 * K, usize::MAX);
        assert_eq!(
            buf.as_ptr(),
            big_ptr,
            "room for twice 4 K came from the kept buffer"
        );
        assert_eq!(buf, vec![1u8; 2 * K], "the bytes moved");
        assert_eq!(spares.kept_bytes(), 2 * K, "the outgrown buffer is kept");
        let (cap, free) = (buf.capacity(), buf.capacity() - buf.len());
        spares.grow(&mut buf, free, usize::MAX);
        assert_eq!(buf.capacity(), cap, "no move while it fits");
    }
}
