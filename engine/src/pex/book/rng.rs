//! The book's random choices: a small deterministic generator (SplitMix64). Its choices must be
//! unpredictable to peers, not cryptographic; a node seeds it from the operating system, a test
//! from a constant.

/// SplitMix64.
#[derive(Clone, Debug)]
pub(in crate::pex) struct SplitMix(u64);

impl SplitMix {
    /// A generator started from `seed`.
    pub(in crate::pex) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub(in crate::pex) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; 0 when `n` is 0).
    pub(in crate::pex) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// A number in `[0, 1)`.
    pub(in crate::pex) fn unit(&mut self) -> f64 {
        // The top 53 bits, exactly representable.
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_and_unit_stay_in_range_and_spread() {
        let mut r = SplitMix::new(3);
        let mut hits = [0u32; 10];
        for _ in 0..10_000 {
            let n = r.below(10);
            hits[n] += 1;
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(hits.iter().all(|&h| (800..1200).contains(&h)), "{hits:?}");
        assert_eq!(r.below(0), 0);
    }
}
