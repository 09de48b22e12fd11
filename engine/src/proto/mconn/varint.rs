//! Unsigned LEB128 varints as stock CometBFT frames its messages with (`binary.PutUvarint` and
//! `binary.ReadUvarint` around every delimited proto).

/// The most bytes a 64-bit varint can take.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Outcome of reading a length prefix from the front of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Uvarint {
    /// The value and how many bytes it took.
    Done(u64, usize),
    /// The buffer ends inside the varint: more bytes are needed.
    Incomplete,
    /// More than 64 bits: Go's `binary.ReadUvarint` reports overflow.
    Overflow,
}

/// Go's `binary.ReadUvarint`: at most ten bytes, the tenth at most 1; non-minimal encodings are
/// accepted.
pub(crate) fn read_uvarint(input: &[u8]) -> Uvarint {
    let mut x = 0u64;
    for i in 0..MAX_VARINT_LEN {
        let Some(&b) = input.get(i) else {
            return Uvarint::Incomplete;
        };
        let shift = 7 * i as u32;
        if b < 0x80 {
            if i == MAX_VARINT_LEN - 1 && b > 1 {
                return Uvarint::Overflow;
            }
            return Uvarint::Done(x | (u64::from(b) << shift), i + 1);
        }
        x |= u64::from(b & 0x7f) << shift;
    }
    Uvarint::Overflow
}

/// Appends `v` as a minimal uvarint (Go's `binary.PutUvarint`).
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The number of bytes [`put_uvarint`] writes for `v`.
pub(crate) const fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lengths() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(out.len(), uvarint_len(v));
            assert_eq!(read_uvarint(&out), Uvarint::Done(v, out.len()));
            assert_eq!(read_uvarint(&out[..out.len() - 1]), Uvarint::Incomplete);
        }
    }

    #[test]
    fn overflow_and_non_minimal_follow_go() {
        // Ten bytes with a final byte above 1 overflow; eleven bytes always overflow.
        let mut ten = vec![0xff; 9];
        ten.push(0x02);
        assert_eq!(read_uvarint(&ten), Uvarint::Overflow);
        assert_eq!(read_uvarint(&[0x80; 11]), Uvarint::Overflow);
        // Non-minimal encodings are accepted, as Go does.
        assert_eq!(read_uvarint(&[0x80, 0x00]), Uvarint::Done(0, 2));
    }
}
