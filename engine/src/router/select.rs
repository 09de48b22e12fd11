//! Choosing `k` of `n` peers at random for role-addressed sends.

use std::sync::atomic::{AtomicU64, Ordering};

/// A small, lock-free pseudo-random source (SplitMix64) seeded from the OS. Role fan-out needs
/// spread, not secrecy.
pub(crate) struct Picker {
    state: AtomicU64,
}

impl Picker {
    pub(crate) fn new() -> Self {
        let mut seed = [0u8; 8];
        // Without OS randomness the choice is still spread, just predictable.
        let _ = getrandom::fill(&mut seed);
        Picker {
            state: AtomicU64::new(u64::from_le_bytes(seed) | 1),
        }
    }

    fn next(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Keeps `k` of `items`, chosen uniformly (partial Fisher–Yates).
    pub(crate) fn choose<T>(&self, items: &mut Vec<T>, k: usize) {
        let n = items.len();
        let k = k.min(n);
        for i in 0..k {
            let span = (n - i) as u64;
            let j = i + (self.next() % span) as usize;
            items.swap(i, j);
        }
        items.truncate(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_exactly_k_distinct() {
        let p = Picker::new();
        for k in 0..=10 {
            let mut v: Vec<u32> = (0..10).collect();
            p.choose(&mut v, k);
            assert_eq!(v.len(), k);
            let mut s = v.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), k);
        }
        let mut v: Vec<u32> = (0..3).collect();
        p.choose(&mut v, 10);
        assert_eq!(v.len(), 3);
    }
}
