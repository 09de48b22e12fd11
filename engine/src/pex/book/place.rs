//! Where an address goes: the bucket placement of stock's `calcNewBucket` and `calcOldBucket`,
//! keyed by the book's random key so peers cannot aim at a bucket.
//!
//! - A **new** address goes to one of the [`NEW_BUCKETS_PER_GROUP`] buckets its *source's*
//!   group may use, picked by its own group: `H(key, source group, H(key, group, source group)
//!   mod 32) mod 256`. One source group thus fills at most 32 × 64 places of the new table,
//!   whatever it tells.
//! - A **tried** address goes to one of the [`TRIED_BUCKETS_PER_GROUP`] buckets its group may
//!   use, picked by the address itself: `H(key, group, H(key, id@ip:port) mod 4) mod 64`.
//!
//! `H` is the first eight bytes (big-endian) of SHA-256 over the key and the parts. Stock keys a
//! HighwayHash with a secret it never stores, so its placements change at every start (the file
//! keeps the buckets, not the way to them); ringwire derives them from the `key` the file keeps,
//! so a restarted node places an address where it placed it before.

use sha2::{Digest as _, Sha256};

use super::super::PexAddr;
use super::rng::SplitMix;

/// Buckets of the new table (stock's `newBucketCount`).
pub(super) const NEW_BUCKET_COUNT: usize = 256;
/// Addresses per new bucket (stock's `newBucketSize`).
pub(super) const NEW_BUCKET_SIZE: usize = 64;
/// Buckets of the tried table (stock's `oldBucketCount`).
pub(super) const TRIED_BUCKET_COUNT: usize = 64;
/// Addresses per tried bucket (stock's `oldBucketSize`).
pub(super) const TRIED_BUCKET_SIZE: usize = 64;
/// New buckets one source group may use (stock's `newBucketsPerGroup`).
pub(super) const NEW_BUCKETS_PER_GROUP: u64 = 32;
/// Tried buckets one group may use (stock's `oldBucketsPerGroup`).
pub(super) const TRIED_BUCKETS_PER_GROUP: u64 = 4;
/// New buckets one address may be in at once (stock's `maxNewBucketsPerAddress`).
pub(super) const MAX_NEW_BUCKETS_PER_ADDRESS: usize = 4;

/// Longest key taken from a file (stock writes 24 hex characters).
const MAX_KEY_LEN: usize = 128;

/// The book's random key: stock's 24 hexadecimal characters, kept in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BookKey(String);

impl BookKey {
    /// A fresh key of 96 random bits, as stock's `crypto.CRandHex(24)`.
    pub(super) fn random(rng: &mut SplitMix) -> Self {
        let mut bytes = [0u8; 12];
        for chunk in bytes.chunks_mut(8) {
            let word = rng.next().to_le_bytes();
            for (b, w) in chunk.iter_mut().zip(word) {
                *b = w;
            }
        }
        BookKey(hex::encode(bytes))
    }

    /// A key read from a file: 1 to 128 printable ASCII characters, else `None`.
    pub(super) fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= MAX_KEY_LEN
            && text.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| BookKey(text.to_owned()))
    }

    /// The key as the file stores it.
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    /// The new bucket of an address of group `group` learned from a source of group
    /// `src_group`.
    pub(super) fn new_bucket(&self, group: &str, src_group: &str) -> usize {
        let within = self.hash(&[group.as_bytes(), src_group.as_bytes()]) % NEW_BUCKETS_PER_GROUP;
        let h = self.hash(&[src_group.as_bytes(), &within.to_be_bytes()]);
        (h % NEW_BUCKET_COUNT as u64) as usize
    }

    /// The tried bucket of `addr`, of group `group`.
    pub(super) fn tried_bucket(&self, addr: &PexAddr, group: &str) -> usize {
        let within = self.hash(&[addr.to_string().as_bytes()]) % TRIED_BUCKETS_PER_GROUP;
        let h = self.hash(&[group.as_bytes(), &within.to_be_bytes()]);
        (h % TRIED_BUCKET_COUNT as u64) as usize
    }

    /// `H(key, parts…)`.
    fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut h = Sha256::new();
        h.update(self.0.as_bytes());
        for p in parts {
            h.update(p);
        }
        let digest = h.finalize();
        let mut first = [0u8; 8];
        for (b, d) in first.iter_mut().zip(digest.iter()) {
            *b = *d;
        }
        u64::from_be_bytes(first)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn keys_are_24_hex_characters_and_differ() {
        let mut rng = SplitMix::new(1);
        let a = BookKey::random(&mut rng);
        let b = BookKey::random(&mut rng);
        assert_eq!(a.as_str().len(), 24);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(BookKey::parse(a.as_str()), Some(a));
        assert_eq!(BookKey::parse(""), None);
        assert_eq!(BookKey::parse("has space"), None);
        assert_eq!(BookKey::parse(&"x".repeat(129)), None);
    }

    #[test]
    fn a_source_group_reaches_at_most_32_new_buckets_and_a_group_4_tried_ones() {
        let key = BookKey::random(&mut SplitMix::new(2));
        let new: HashSet<usize> = (0..5000)
            .map(|n| key.new_bucket(&format!("group-{n}"), "one-source"))
            .collect();
        assert!(new.len() <= 32, "{} buckets", new.len());
        assert!(new.len() >= 20, "spread over {} buckets only", new.len());
        // Many sources telling of one group spread wide.
        let sources: HashSet<usize> = (0..5000)
            .map(|n| key.new_bucket("one-group", &format!("source-{n}")))
            .collect();
        assert!(sources.len() > 200, "{} buckets", sources.len());
        let tried: HashSet<usize> = (0..1000u16)
            .map(|n| {
                let addr = PexAddr {
                    id: crate::proto::secret::NodeId([n as u8; 20]),
                    ip: "1.2.3.4".parse().unwrap(),
                    port: n,
                };
                key.tried_bucket(&addr, "1.2.0.0")
            })
            .collect();
        assert!(tried.len() <= 4 && tried.len() >= 2, "{tried:?}");
        // Another key places differently.
        let other = BookKey::random(&mut SplitMix::new(3));
        let moved = (0..100)
            .filter(|n| {
                let g = format!("group-{n}");
                key.new_bucket(&g, "s") != other.new_bucket(&g, "s")
            })
            .count();
        assert!(moved > 90, "{moved}");
    }
}
