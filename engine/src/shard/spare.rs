//! Write buffers a shard keeps between one connection's burst and the next.
//!
//! A connection that goes idle gives up a write buffer larger than a small floor, so that idle
//! peers hold no large buffers. On io_uring a busy connection's writes coalesce many messages,
//! so its buffer often passes that floor, and the next burst grew a fresh one from empty:
//! fresh pages and a copy at every doubling, for each of a hub's connections in turn. The
//! shard keeps such buffers instead, most recently returned first (the one likeliest still in
//! cache), up to a byte bound, and hands them to whichever connection writes next.

use std::cell::{Cell, RefCell};

/// Spare write buffers, at most `max_bytes` of capacity in all.
pub(crate) struct SpareBuffers {
    buffers: RefCell<Vec<Vec<u8>>>,
    held: Cell<usize>,
    max_bytes: usize,
}

impl SpareBuffers {
    /// A pool that keeps at most `max_bytes` of buffer capacity (0: keeps none).
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            buffers: RefCell::new(Vec::new()),
            held: Cell::new(0),
            max_bytes,
        }
    }

    /// An empty buffer: the most recently returned spare, or a new one without capacity.
    pub(crate) fn take(&self) -> Vec<u8> {
        match self.buffers.borrow_mut().pop() {
            Some(buffer) => {
                self.held.set(self.held.get() - buffer.capacity());
                buffer
            }
            None => Vec::new(),
        }
    }

    /// Keeps `buffer` (emptied) for the next writer, or frees it if the pool is full.
    pub(crate) fn give(&self, mut buffer: Vec<u8>) {
        let held = self.held.get().saturating_add(buffer.capacity());
        if buffer.capacity() == 0 || held > self.max_bytes {
            return;
        }
        buffer.clear();
        self.held.set(held);
        self.buffers.borrow_mut().push(buffer);
    }

    /// Capacity kept, in bytes.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_buffers_up_to_its_bound_and_hands_back_the_latest_first() {
        let pool = SpareBuffers::new(100 * 1024);
        let mut a = Vec::with_capacity(64 * 1024);
        a.extend_from_slice(b"old bytes");
        let a_ptr = a.as_ptr();
        pool.give(a);
        assert_eq!(pool.held(), 64 * 1024);
        // Over the bound: freed, not kept.
        pool.give(Vec::with_capacity(64 * 1024));
        assert_eq!(pool.held(), 64 * 1024);
        let b = Vec::with_capacity(32 * 1024);
        let b_ptr = b.as_ptr();
        pool.give(b);
        assert_eq!(pool.held(), 96 * 1024);
        let first = pool.take();
        assert_eq!(first.as_ptr(), b_ptr);
        let second = pool.take();
        assert_eq!(second.as_ptr(), a_ptr);
        assert!(second.is_empty(), "a spare comes back emptied");
        assert_eq!(pool.held(), 0);
        assert_eq!(pool.take().capacity(), 0);
    }

    #[test]
    fn a_pool_without_room_keeps_nothing() {
        let pool = SpareBuffers::new(0);
        pool.give(Vec::with_capacity(1024));
        assert_eq!(pool.held(), 0);
        assert_eq!(pool.take().capacity(), 0);
    }
}
