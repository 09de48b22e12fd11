//! Opened records shared with the application.
//!
//! A message that arrives whole in one record is handed out as a slice of that record's
//! plaintext, so its bytes are copied once in user space (from the socket's read buffer into
//! the record buffer, where they are decrypted) and a record carrying many small messages costs
//! one allocation, not one per message. A slice keeps its whole record alive: a 200-byte vote
//! the application holds on to pins up to 64 KiB. [`PinBudget`] bounds that memory per
//! connection; a record that would exceed it is opened in the opener's own buffer instead and
//! its messages are copied out, as they were before records were shared
//! (`docs/PERFORMANCE.md`, "Received messages as slices").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

/// How many bytes of record buffers one connection's handed-out message slices may keep
/// alive. Shared between the connection (which charges a record when it shares it) and every
/// slice of that record (the last one dropped gives the bytes back), whichever thread drops it.
#[derive(Debug)]
pub struct PinBudget {
    limit: usize,
    held: AtomicUsize,
}

impl PinBudget {
    /// A budget of `limit` bytes; 0 shares no record (every message is copied out).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// Bytes of record buffers that handed-out slices keep alive now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The budget's size.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Charges `n` bytes if they fit. While nothing is held one record always fits, so a
    /// budget smaller than a record still shares records one at a time.
    fn try_charge(&self, n: usize) -> bool {
        if self.limit == 0 {
            return false;
        }
        let mut held = self.held.load(Ordering::Relaxed);
        loop {
            if held != 0 && held.saturating_add(n) > self.limit {
                return false;
            }
            match self.held.compare_exchange_weak(
                held,
                held.saturating_add(n),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => held = now,
            }
        }
    }

    fn release(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// A record buffer owned by the slices handed out of it; gives its charge back when the last
/// one is dropped.
struct PinnedRecord {
    buf: Vec<u8>,
    budget: Arc<PinBudget>,
    charged: usize,
}

impl AsRef<[u8]> for PinnedRecord {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PinnedRecord {
    fn drop(&mut self) {
        self.budget.release(self.charged);
    }
}

/// Turns `buf` into shared bytes charged to `budget` (its capacity is what it keeps alive), or
/// gives it back when the budget has no room.
pub(crate) fn share(buf: Vec<u8>, budget: &Arc<PinBudget>) -> Result<Bytes, Vec<u8>> {
    let charged = buf.capacity();
    if !budget.try_charge(charged) {
        return Err(buf);
    }
    Ok(Bytes::from_owner(PinnedRecord {
        buf,
        budget: Arc::clone(budget),
        charged,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_charged_until_its_last_slice_is_dropped() {
        let budget = PinBudget::new(1 << 20);
        let rec = share(vec![7u8; 1000], &budget).unwrap();
        assert_eq!(budget.held(), 1000);
        let a = rec.slice(10..20);
        let b = rec.slice(500..600);
        drop(rec);
        assert_eq!(budget.held(), 1000);
        drop(a);
        assert_eq!(budget.held(), 1000);
        let t = std::thread::spawn(move || drop(b));
        t.join().unwrap();
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_full_budget_hands_the_buffer_back() {
        let budget = PinBudget::new(1500);
        let first = share(vec![0u8; 1000], &budget).unwrap();
        let back = share(vec![1u8; 1000], &budget).unwrap_err();
        assert_eq!(back.len(), 1000, "the refused buffer is returned whole");
        assert_eq!(budget.held(), 1000);
        drop(first);
        assert!(
            share(back, &budget).is_ok(),
            "room again once the slice is gone"
        );
    }

    #[test]
    fn one_record_fits_a_budget_smaller_than_it_and_zero_shares_none() {
        let small = PinBudget::new(10);
        let big = share(vec![0u8; 100], &small).unwrap();
        assert!(share(vec![0u8; 100], &small).is_err());
        drop(big);
        assert_eq!(small.held(), 0);
        let off = PinBudget::new(0);
        assert!(share(vec![0u8; 1], &off).is_err());
    }
}
