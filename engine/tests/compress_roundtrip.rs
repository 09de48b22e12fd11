//! Compression round trips, the skip rules, and never-panic properties of the decompressor.

use proptest::prelude::*;
use ringwire::proto::compress::{
    CompressionConfig, Compressor, DecompressError, Decompressor, Outcome, SkipReason,
};
use ringwire_test_support::compress::{compressible, random};

const SIZES: [usize; 14] = [
    0,
    1,
    31,
    255,
    256,
    257,
    1000,
    1024,
    4096,
    16 << 10,
    65_535,
    64 << 10,
    131_073,
    1 << 20,
];

fn pair(config: CompressionConfig) -> (Compressor, Decompressor) {
    (
        Compressor::new(config).unwrap(),
        Decompressor::new(&config).unwrap(),
    )
}

#[test]
fn compressible_messages_round_trip_at_every_size() {
    let config = CompressionConfig {
        min_size: 0,
        ..CompressionConfig::default()
    };
    let (mut compressor, mut decompressor) = pair(config);
    let mut frame = Vec::new();
    let mut out = Vec::new();
    for (seed, &len) in SIZES.iter().enumerate() {
        let input = compressible(seed as u64, len);
        frame.clear();
        let outcome = compressor.compress(&input, &mut frame).unwrap();
        if outcome == Outcome::Skipped(SkipReason::Incompressible) {
            assert!(len < 256, "{len} bytes of transactions should compress");
            assert!(frame.is_empty());
            continue;
        }
        assert_eq!(outcome, Outcome::Compressed, "{len} bytes");
        assert!(
            frame.len() * 10 <= len * 9,
            "{len} bytes became {}",
            frame.len()
        );
        out.clear();
        decompressor.decompress(&frame, len, &mut out).unwrap();
        assert_eq!(out, input, "{len} bytes");
        // The cap is inclusive and exact.
        assert_eq!(
            decompressor.decompress(&frame, len - 1, &mut out),
            Err(DecompressError::TooLarge {
                declared: len as u64,
                cap: len - 1
            })
        );
    }
}

#[test]
fn messages_below_min_size_are_skipped_untouched() {
    let (mut compressor, _) = pair(CompressionConfig::default());
    let mut out = b"header".to_vec();
    for len in [0, 1, 100, 255] {
        assert_eq!(
            compressor.compress(&vec![0; len], &mut out),
            Ok(Outcome::Skipped(SkipReason::TooSmall))
        );
    }
    assert_eq!(out, b"header");
    assert_eq!(
        compressor.compress(&[0; 256], &mut out),
        Ok(Outcome::Compressed)
    );
}

#[test]
fn random_messages_are_skipped_at_every_size() {
    let (mut compressor, _) = pair(CompressionConfig::default());
    let mut out = b"header".to_vec();
    for (seed, &len) in SIZES.iter().enumerate() {
        let expected = if len < 256 {
            SkipReason::TooSmall
        } else {
            SkipReason::Incompressible
        };
        assert_eq!(
            compressor.compress(&random(seed as u64, len), &mut out),
            Ok(Outcome::Skipped(expected)),
            "{len} bytes"
        );
        assert_eq!(out, b"header");
    }
}

#[test]
fn frames_are_appended_after_existing_bytes() {
    let (mut compressor, mut decompressor) = pair(CompressionConfig::default());
    let input = compressible(1, 10_000);
    let mut wire = b"record header".to_vec();
    assert_eq!(
        compressor.compress(&input, &mut wire),
        Ok(Outcome::Compressed)
    );
    let frame = &wire[13..];
    let mut out = b"prefix".to_vec();
    decompressor
        .decompress(frame, input.len(), &mut out)
        .unwrap();
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..], &input[..]);
}

#[test]
fn max_ratio_decides_what_is_worth_sending() {
    let input = compressible(2, 4096);
    let mut frame = Vec::new();
    Compressor::new(CompressionConfig::default())
        .unwrap()
        .compress(&input, &mut frame)
        .unwrap();
    let ratio = frame.len() as f64 / input.len() as f64;
    let strict = CompressionConfig {
        max_ratio: ratio * 0.99,
        ..CompressionConfig::default()
    };
    let mut out = Vec::new();
    assert_eq!(
        Compressor::new(strict).unwrap().compress(&input, &mut out),
        Ok(Outcome::Skipped(SkipReason::Incompressible))
    );
    assert!(out.is_empty());
    let loose = CompressionConfig {
        max_ratio: ratio * 1.01,
        ..CompressionConfig::default()
    };
    assert_eq!(
        Compressor::new(loose).unwrap().compress(&input, &mut out),
        Ok(Outcome::Compressed)
    );
    assert_eq!(out, frame);
}

#[test]
fn contexts_are_reusable_across_successes_skips_and_failures() {
    let (mut compressor, mut decompressor) = pair(CompressionConfig::default());
    let mut frame = Vec::new();
    let mut out = Vec::new();
    for round in 0..50u64 {
        let input = compressible(round, 300 + (round as usize * 997) % 50_000);
        frame.clear();
        assert_eq!(
            compressor.compress(&input, &mut frame),
            Ok(Outcome::Compressed)
        );
        assert_eq!(
            compressor.compress(&random(round, 5000), &mut Vec::new()),
            Ok(Outcome::Skipped(SkipReason::Incompressible))
        );
        let mut broken = frame.clone();
        let middle = broken.len() / 2;
        broken[middle] ^= 0x55;
        let _ = decompressor.decompress(&broken, input.len(), &mut Vec::new());
        out.clear();
        decompressor
            .decompress(&frame, input.len(), &mut out)
            .unwrap();
        assert_eq!(out, input);
    }
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..4096),
        (proptest::collection::vec(any::<u8>(), 1..64), 1..500usize)
            .prop_map(|(unit, times)| unit.repeat(times)),
        (any::<u64>(), 0..20_000usize).prop_map(|(seed, len)| compressible(seed, len)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_message_round_trips_or_is_skipped(input in message()) {
        let config = CompressionConfig { min_size: 0, max_ratio: 1.0, ..CompressionConfig::default() };
        let (mut compressor, mut decompressor) = pair(config);
        let mut frame = Vec::new();
        match compressor.compress(&input, &mut frame).unwrap() {
            Outcome::Compressed => {
                prop_assert!(frame.len() <= input.len());
                let mut out = Vec::new();
                decompressor.decompress(&frame, input.len(), &mut out).unwrap();
                prop_assert_eq!(out, input);
            }
            Outcome::Skipped(reason) => {
                prop_assert_eq!(reason, SkipReason::Incompressible);
                prop_assert!(frame.is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_exceed_the_cap(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        zstd_magic in any::<bool>(),
        cap in 0..70_000usize,
    ) {
        let mut input = input;
        if zstd_magic && input.len() >= 4 {
            input[..4].copy_from_slice(&[0x28, 0xB5, 0x2F, 0xFD]);
        }
        let mut out = vec![7; 3];
        let mut decompressor = Decompressor::new(&CompressionConfig::default()).unwrap();
        match decompressor.decompress(&input, cap, &mut out) {
            Ok(()) => prop_assert!(out.len() - 3 <= cap),
            Err(_) => prop_assert_eq!(out, vec![7; 3]),
        }
    }

    #[test]
    fn damaged_frames_never_panic_or_exceed_the_cap(
        seed in any::<u64>(),
        len in 256..8192usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
        cap in 0..10_000usize,
    ) {
        let input = compressible(seed, len);
        let mut frame = Vec::new();
        Compressor::new(CompressionConfig::default()).unwrap().compress(&input, &mut frame).unwrap();
        for (index, byte, kind) in edits {
            let at = index.index(frame.len());
            match kind {
                0 => frame[at] ^= byte | 1,
                1 => frame.insert(at, byte),
                _ => { frame.remove(at); }
            }
            if frame.is_empty() { break; }
        }
        let mut out = Vec::new();
        let mut decompressor = Decompressor::new(&CompressionConfig::default()).unwrap();
        match decompressor.decompress(&frame, cap, &mut out) {
            Ok(()) => prop_assert!(out.len() <= cap),
            Err(_) => prop_assert!(out.is_empty()),
        }
    }
}
