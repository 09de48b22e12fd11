//! Peer bytes into `Decompressor::decompress`: whatever arrives, nothing panics, the output never
//! exceeds the cap, and a rejected frame leaves the output untouched.
//!
//! Each input is tried three ways: as a frame under a fixed small cap; with its first byte choosing
//! the cap; and as a message that is compressed and then damaged by the rest of the input, so that
//! zstd's block decoder (compiled without coverage feedback) sees nearly valid frames too.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use ringwire::proto::compress::{CompressionConfig, Compressor, Decompressor, Outcome};

/// The fixed cap of the first pass.
const SMALL_CAP: usize = 4096;

thread_local! {
    // One context per thread, reused across inputs exactly as a shard reuses its own.
    static CONTEXTS: RefCell<(Compressor, Decompressor)> = RefCell::new({
        let config = CompressionConfig {
            min_size: 0,
            max_ratio: 1.0,
            ..CompressionConfig::default()
        };
        (
            Compressor::new(config).expect("valid config"),
            Decompressor::new(&config).expect("valid config"),
        )
    });
}

fuzz_target!(|data: &[u8]| {
    CONTEXTS.with_borrow_mut(|(compressor, decompressor)| {
        check(decompressor, data, SMALL_CAP);

        let Some((&first, rest)) = data.split_first() else {
            return;
        };
        // Quadratic in the byte: fine steps near zero, up to about 1 MiB.
        let cap = usize::from(first) * usize::from(first) * 16;
        check(decompressor, rest, cap);

        // A real frame of the first half, damaged by (position, xor) pairs from the second half.
        let (message, edits) = rest.split_at(rest.len() / 2);
        let mut frame = Vec::new();
        if compressor.compress(message, &mut frame) != Ok(Outcome::Compressed) {
            return;
        }
        let mut damaged = false;
        for edit in edits.chunks_exact(2) {
            if let [position, xor] = *edit
                && xor != 0
            {
                let at = usize::from(position) % frame.len();
                frame[at] ^= xor;
                damaged = true;
            }
        }
        let mut out = Vec::new();
        match decompressor.decompress(&frame, message.len(), &mut out) {
            Ok(()) if !damaged => assert_eq!(out, message, "round trip changed the message"),
            Ok(()) => assert!(out.len() <= message.len()),
            Err(error) => {
                assert!(damaged, "an intact frame was rejected: {error}");
                assert!(out.is_empty());
            }
        }
    });
});

/// Decompresses `input` under `cap` into a buffer that already holds bytes, and checks the bounds.
fn check(decompressor: &mut Decompressor, input: &[u8], cap: usize) {
    let mut out = vec![0xA5; 3];
    match decompressor.decompress(input, cap, &mut out) {
        Ok(()) => assert!(out.len() - 3 <= cap, "output exceeds the cap"),
        Err(_) => assert_eq!(out, [0xA5; 3], "a rejected frame changed the output"),
    }
}
