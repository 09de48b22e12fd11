//! The few frame-header fields zstd's stable API does not expose: the magic number and the window.
//!
//! Layout (RFC 8878 §3.1.1): a 4-byte little-endian magic number, a descriptor byte, then a
//! window-descriptor byte unless the frame is single-segment. zstd itself reads the content size
//! and dictionary ID; this module only looks at the first six bytes.

use super::error::DecompressError;

/// The magic number that starts every zstd frame.
const FRAME_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames use the sixteen magic numbers `0x184D2A50..=0x184D2A5F`.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;

/// Descriptor bit: the frame is one segment and its window is its content size.
const SINGLE_SEGMENT: u8 = 0x20;
/// Descriptor bit that must be zero.
const RESERVED: u8 = 0x08;

/// What the receiver checks before handing a frame to zstd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHeader {
    /// The window the frame needs, or `None` for a single-segment frame (window = content size).
    pub(super) window: Option<u64>,
}

/// Reads the magic number and window descriptor at the start of `input`.
pub(super) fn peek(input: &[u8]) -> Result<FrameHeader, DecompressError> {
    let Some((magic, rest)) = input.split_first_chunk::<4>() else {
        return Err(DecompressError::Truncated);
    };
    let magic = u32::from_le_bytes(*magic);
    if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
        return Err(DecompressError::Skippable);
    }
    if magic != FRAME_MAGIC {
        return Err(DecompressError::NotZstd(magic));
    }
    let Some((&descriptor, rest)) = rest.split_first() else {
        return Err(DecompressError::Truncated);
    };
    if descriptor & RESERVED != 0 {
        return Err(DecompressError::BadHeader);
    }
    if descriptor & SINGLE_SEGMENT != 0 {
        return Ok(FrameHeader { window: None });
    }
    let Some(&window_descriptor) = rest.first() else {
        return Err(DecompressError::Truncated);
    };
    Ok(FrameHeader {
        window: Some(window_size(window_descriptor)),
    })
}

/// Decodes a window descriptor: `2^(10 + exponent) × (1 + mantissa / 8)`, at most 3.75 TiB.
fn window_size(descriptor: u8) -> u64 {
    let exponent = u32::from(descriptor >> 3);
    let mantissa = u64::from(descriptor & 0x07);
    // exponent ≤ 31, so the base is at most 2^41 and the sum at most 2^41 + 7 × 2^38: no overflow.
    let base = 1u64 << (10 + exponent);
    base + (base / 8) * mantissa
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_descriptor_decodes_per_rfc_8878() {
        assert_eq!(window_size(0x00), 1 << 10);
        assert_eq!(window_size(0x01), (1 << 10) + (1 << 7));
        assert_eq!(window_size(13 << 3), 8 << 20);
        assert_eq!(window_size(0xFF), (1u64 << 41) + 7 * (1u64 << 38));
    }

    #[test]
    fn short_or_foreign_inputs_are_classified() {
        assert_eq!(peek(&[]), Err(DecompressError::Truncated));
        assert_eq!(peek(&[0x28, 0xB5, 0x2F]), Err(DecompressError::Truncated));
        assert_eq!(
            peek(&[0x28, 0xB5, 0x2F, 0xFD]),
            Err(DecompressError::Truncated)
        );
        assert_eq!(
            peek(&[0x28, 0xB5, 0x2F, 0xFD, 0x00]),
            Err(DecompressError::Truncated)
        );
        assert_eq!(
            peek(&[0x5A, 0x2A, 0x4D, 0x18, 0, 0, 0, 0]),
            Err(DecompressError::Skippable)
        );
        assert_eq!(peek(b"GET /"), Err(DecompressError::NotZstd(0x2054_4547)));
        assert_eq!(
            peek(&[0x28, 0xB5, 0x2F, 0xFD, RESERVED]),
            Err(DecompressError::BadHeader)
        );
        assert_eq!(
            peek(&[0x28, 0xB5, 0x2F, 0xFD, SINGLE_SEGMENT]),
            Ok(FrameHeader { window: None })
        );
        assert_eq!(
            peek(&[0x28, 0xB5, 0x2F, 0xFD, 0x00, 13 << 3]),
            Ok(FrameHeader {
                window: Some(8 << 20)
            })
        );
    }
}
