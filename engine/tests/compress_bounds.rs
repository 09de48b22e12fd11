//! Hostile frames against the decompressor (`docs/RELIABILITY.md` row 8): bombs, lies, huge windows,
//! foreign dictionaries, trailing and missing bytes. Each must fail before the output grows.

use ringwire::proto::compress::{
    CompressionConfig, Compressor, ConfigError, DecompressError, Decompressor, Outcome, SkipReason,
};
use ringwire_test_support::compress::{compressible, patch_content_size, random};
use zstd::zstd_safe::{self, CCtx, CParameter};

const MIB: usize = 1 << 20;

fn frame_of(input: &[u8]) -> Vec<u8> {
    let mut compressor = Compressor::new(CompressionConfig::default()).unwrap();
    let mut frame = Vec::new();
    assert_eq!(
        compressor.compress(input, &mut frame),
        Ok(Outcome::Compressed)
    );
    frame
}

fn decompressor() -> Decompressor {
    Decompressor::new(&CompressionConfig::default()).unwrap()
}

/// A valid single-segment frame of RLE blocks declaring `declared` bytes and holding `blocks`
/// blocks of 128 KiB of zeros each: 4 bytes of input per 128 KiB of output.
fn rle_frame(declared: u64, blocks: usize) -> Vec<u8> {
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
    frame.extend_from_slice(&declared.to_le_bytes());
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = last | (1 << 1) | ((128 << 10) << 3);
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

#[test]
fn crafted_rle_frames_are_valid_zstd() {
    let frame = rle_frame(MIB as u64, 8);
    assert_eq!(
        zstd_safe::find_frame_compressed_size(&frame),
        Ok(frame.len())
    );
    let mut out = Vec::new();
    decompressor().decompress(&frame, MIB, &mut out).unwrap();
    assert_eq!(out, vec![0; MIB]);
}

#[test]
fn gibibyte_bomb_is_rejected_by_declared_size_before_allocating() {
    let bomb = rle_frame(1 << 30, 8192);
    assert_eq!(bomb.len(), 13 + 8192 * 4);
    assert_eq!(zstd_safe::find_frame_compressed_size(&bomb), Ok(bomb.len()));
    let mut out = Vec::new();
    let err = decompressor()
        .decompress(&bomb, 64 << 10, &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        DecompressError::TooLarge {
            declared: 1 << 30,
            cap: 64 << 10
        }
    );
    assert_eq!(
        out.capacity(),
        0,
        "nothing may be allocated for a rejected frame"
    );
}

#[test]
fn zstd_made_bomb_is_rejected_and_accepted_only_under_a_cap_that_fits() {
    let zeros = vec![0u8; 64 * MIB];
    let bomb = zstd::bulk::compress(&zeros, 19).unwrap();
    drop(zeros);
    assert!(
        bomb.len() < 4096,
        "64 MiB of zeros compress to {} bytes",
        bomb.len()
    );
    let mut out = Vec::new();
    let mut decompressor = decompressor();
    assert_eq!(
        decompressor.decompress(&bomb, MIB, &mut out),
        Err(DecompressError::TooLarge {
            declared: 64 * MIB as u64,
            cap: MIB
        })
    );
    assert_eq!(out.capacity(), 0);
    // A stock zstd frame is otherwise acceptable: the same bytes pass a cap that fits them.
    decompressor.decompress(&bomb, 64 * MIB, &mut out).unwrap();
    assert_eq!(out.len(), 64 * MIB);
}

#[test]
fn bomb_declaring_a_small_size_stops_at_that_size() {
    // Declares 1000 bytes, holds 1 GiB: zstd gets a 1000-byte buffer and fails on the first block.
    let liar = rle_frame(1000, 8192);
    let mut out = b"prefix".to_vec();
    let err = decompressor().decompress(&liar, MIB, &mut out).unwrap_err();
    assert!(matches!(err, DecompressError::Corrupt(_)), "{err:?}");
    assert_eq!(out, b"prefix");
    assert!(out.capacity() < 2000);
}

#[test]
fn frame_lying_about_its_content_size_is_rejected() {
    let input = compressible(1, 10_000);
    let frame = frame_of(&input);
    let mut decompressor = decompressor();
    for declared in [300, 5_000, 9_999, 10_001, 20_000, 65_000] {
        let mut liar = frame.clone();
        patch_content_size(&mut liar, declared);
        let mut out = Vec::new();
        let err = decompressor.decompress(&liar, MIB, &mut out).unwrap_err();
        assert!(
            matches!(err, DecompressError::Corrupt(_)),
            "declared {declared}: {err:?}"
        );
        assert!(out.is_empty());
        // Lying above the cap is caught before zstd sees the frame.
        let err = decompressor.decompress(&liar, declared as usize - 1, &mut out);
        assert_eq!(
            err,
            Err(DecompressError::TooLarge {
                declared,
                cap: declared as usize - 1
            })
        );
    }
    // The context is not poisoned by the failures.
    let mut out = Vec::new();
    decompressor.decompress(&frame, MIB, &mut out).unwrap();
    assert_eq!(out, input);
}

#[test]
fn frame_needing_a_larger_window_is_rejected() {
    // 3 MiB with a 2 MiB window: the frame is not single-segment and declares its window.
    let input = compressible(2, 3 * MIB);
    let small_window = CompressionConfig {
        window_log_max: 21,
        ..CompressionConfig::default()
    };
    let mut frame = Vec::new();
    let outcome = Compressor::new(small_window)
        .unwrap()
        .compress(&input, &mut frame);
    assert_eq!(outcome, Ok(Outcome::Compressed));
    assert_eq!(
        frame[4] & 0x20,
        0,
        "expected a frame with a window descriptor"
    );

    let tighter = CompressionConfig {
        window_log_max: 20,
        ..CompressionConfig::default()
    };
    let mut out = Vec::new();
    assert_eq!(
        Decompressor::new(&tighter)
            .unwrap()
            .decompress(&frame, 4 * MIB, &mut out),
        Err(DecompressError::WindowTooLarge {
            window: 2 * MIB as u64,
            max: MIB as u64
        })
    );
    assert_eq!(out.capacity(), 0);
    Decompressor::new(&small_window)
        .unwrap()
        .decompress(&frame, 4 * MIB, &mut out)
        .unwrap();
    assert_eq!(out, input);

    // The same frame claiming a 1 GiB window fails under the default 8 MiB limit.
    frame[5] = 20 << 3;
    assert_eq!(
        decompressor().decompress(&frame, 4 * MIB, &mut out),
        Err(DecompressError::WindowTooLarge {
            window: 1 << 30,
            max: 8 * MIB as u64
        })
    );
}

#[test]
fn compressor_never_writes_a_window_above_its_limit() {
    let input = compressible(3, 3 * MIB);
    // Level 3 would use a 2 MiB window for this input; the limit wins.
    for window_log_max in [17, 20] {
        let config = CompressionConfig {
            window_log_max,
            ..CompressionConfig::default()
        };
        let mut frame = Vec::new();
        let outcome = Compressor::new(config)
            .unwrap()
            .compress(&input, &mut frame);
        assert_eq!(outcome, Ok(Outcome::Compressed));
        let mut out = Vec::new();
        Decompressor::new(&config)
            .unwrap()
            .decompress(&frame, 4 * MIB, &mut out)
            .unwrap();
        assert_eq!(out, input);
    }
}

#[test]
fn trailing_bytes_and_concatenated_frames_are_rejected() {
    let input = compressible(4, 4096);
    let frame = frame_of(&input);
    let skippable = [0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 0xAA, 0xBB];
    let mut decompressor = decompressor();
    let cases: [(&[u8], usize); 4] = [
        (&[0], 1),
        (b"garbage!", 8),
        (&frame, frame.len()),
        (&skippable, skippable.len()),
    ];
    for (suffix, extra) in cases {
        let mut input = frame.clone();
        input.extend_from_slice(suffix);
        let mut out = Vec::new();
        assert_eq!(
            decompressor.decompress(&input, MIB, &mut out),
            Err(DecompressError::TrailingBytes(extra))
        );
        assert_eq!(out.capacity(), 0);
    }
}

#[test]
fn skippable_and_foreign_frames_are_rejected() {
    let mut out = Vec::new();
    let mut decompressor = decompressor();
    let skippable = [0x5F, 0x2A, 0x4D, 0x18, 0, 0, 0, 0];
    assert_eq!(
        decompressor.decompress(&skippable, MIB, &mut out),
        Err(DecompressError::Skippable)
    );
    let gzip = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0];
    assert_eq!(
        decompressor.decompress(&gzip, MIB, &mut out),
        Err(DecompressError::NotZstd(0x0008_8B1F))
    );
    assert_eq!(
        decompressor.decompress(&[], MIB, &mut out),
        Err(DecompressError::Truncated)
    );
}

#[test]
fn truncated_frames_are_rejected_at_every_length() {
    let input = compressible(5, 20_000);
    let frame = frame_of(&input);
    let mut decompressor = decompressor();
    let mut out = Vec::new();
    for len in 0..frame.len() {
        let err = decompressor
            .decompress(&frame[..len], MIB, &mut out)
            .unwrap_err();
        assert!(
            matches!(err, DecompressError::Truncated | DecompressError::BadHeader),
            "length {len}: {err:?}"
        );
        assert!(out.is_empty());
    }
    assert_eq!(
        decompressor.decompress(&frame[..frame.len() - 1], MIB, &mut out),
        Err(DecompressError::Truncated)
    );
}

#[test]
fn frame_without_content_size_is_rejected() {
    let input = compressible(6, 4096);
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::ContentSizeFlag(false))
        .unwrap();
    let mut frame = Vec::with_capacity(8192);
    cctx.compress2(&mut frame, &input).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        decompressor().decompress(&frame, MIB, &mut out),
        Err(DecompressError::MissingContentSize)
    );
}

#[test]
fn stock_frames_with_a_checksum_are_accepted() {
    let input = compressible(7, 50_000);
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::ChecksumFlag(true)).unwrap();
    let mut frame = Vec::with_capacity(60_000);
    cctx.compress2(&mut frame, &input).unwrap();
    let mut out = Vec::new();
    decompressor().decompress(&frame, 50_000, &mut out).unwrap();
    assert_eq!(out, input);
    // A flipped content bit is then caught by the checksum as well.
    let last = frame.len() - 1;
    frame[last] ^= 1;
    out.clear();
    assert!(decompressor().decompress(&frame, 50_000, &mut out).is_err());
    assert!(out.is_empty());
}

fn train(seed: u64) -> Vec<u8> {
    let samples: Vec<Vec<u8>> = (0..500)
        .map(|i| compressible(seed * 10_000 + i, 300))
        .collect();
    zstd::dict::from_samples(&samples, 4 << 10).unwrap()
}

#[test]
fn dictionaries_must_match_on_both_sides() {
    let ours = train(1);
    let theirs = train(2);
    let config = CompressionConfig::default();
    let mut compressor = Compressor::with_dictionary(config, &ours).unwrap();
    let id = compressor.dictionary_id().unwrap();
    assert_eq!(
        Decompressor::with_dictionary(&config, &ours)
            .unwrap()
            .dictionary_id(),
        Some(id)
    );

    let message = compressible(99, 600);
    let mut with_dict = Vec::new();
    assert_eq!(
        compressor.compress(&message, &mut with_dict),
        Ok(Outcome::Compressed)
    );
    let plain = frame_of(&message);
    assert!(
        with_dict.len() < plain.len(),
        "dictionary frame {} bytes, plain {} bytes",
        with_dict.len(),
        plain.len()
    );

    let mut out = Vec::new();
    let mut matching = Decompressor::with_dictionary(&config, &ours).unwrap();
    matching.decompress(&with_dict, 600, &mut out).unwrap();
    assert_eq!(out, message);
    // Frames without a dictionary still decode on a channel that has one.
    out.clear();
    matching.decompress(&plain, 600, &mut out).unwrap();
    assert_eq!(out, message);

    let mut out = Vec::new();
    let mut none = decompressor();
    assert_eq!(
        none.decompress(&with_dict, 600, &mut out),
        Err(DecompressError::UnknownDictionary(id))
    );
    let mut other = Decompressor::with_dictionary(&config, &theirs).unwrap();
    assert_eq!(
        other.decompress(&with_dict, 600, &mut out),
        Err(DecompressError::UnknownDictionary(id))
    );
    assert_eq!(out.capacity(), 0);
}

#[test]
fn raw_content_is_not_accepted_as_a_dictionary() {
    let config = CompressionConfig::default();
    let raw = compressible(8, 4096);
    assert_eq!(
        Compressor::with_dictionary(config, &raw).unwrap_err(),
        ConfigError::Dictionary
    );
    assert_eq!(
        Decompressor::with_dictionary(&config, &raw).unwrap_err(),
        ConfigError::Dictionary
    );
}

#[test]
fn invalid_configs_are_refused_by_both_constructors() {
    let config = CompressionConfig {
        window_log_max: 40,
        ..CompressionConfig::default()
    };
    assert!(matches!(
        Compressor::new(config),
        Err(ConfigError::WindowLog { .. })
    ));
    assert!(matches!(
        Decompressor::new(&config),
        Err(ConfigError::WindowLog { .. })
    ));
}

#[test]
fn random_bytes_never_produce_more_than_the_cap() {
    let mut decompressor = decompressor();
    for seed in 0..2000 {
        let mut input = random(seed, 64);
        // Half the inputs get a real magic number so zstd's own parser is exercised too.
        if seed % 2 == 0 {
            input[..4].copy_from_slice(&[0x28, 0xB5, 0x2F, 0xFD]);
        }
        let mut out = Vec::new();
        let cap = (seed as usize * 37) % 5000;
        if decompressor.decompress(&input, cap, &mut out).is_ok() {
            assert!(out.len() <= cap);
        } else {
            assert!(out.is_empty());
        }
    }
    // Random data compresses to nothing worth sending.
    let mut compressor = Compressor::new(CompressionConfig::default()).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        compressor.compress(&random(1, 100_000), &mut out),
        Ok(Outcome::Skipped(SkipReason::Incompressible))
    );
    assert!(out.is_empty());
}
