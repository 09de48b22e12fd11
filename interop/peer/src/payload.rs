//! The deterministic message contents both sides of a test compute.

use bytes::Bytes;

/// `len` bytes for `seed`: byte `i` is the top byte of `seed·0x9E3779B1 ⊕ i·0x85EBCA6B`
/// (32-bit wrapping arithmetic), mirrored by `payload` in the Go tests.
pub(crate) fn payload(len: usize, seed: u32) -> Bytes {
    let base = seed.wrapping_mul(0x9E37_79B1);
    (0..len)
        .map(|i| ((base ^ (i as u32).wrapping_mul(0x85EB_CA6B)) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into()
}
