//! Peer bytes into SecretConnection's frame opener: whatever arrives, in whatever slicing,
//! nothing panics, every byte is accounted for, no frame yields more than 1024 data bytes, and
//! a failed stream stays failed.
//!
//! Two more modes check the cipher end to end: fuzzer-chosen writes are sealed with a
//! [`FrameSealer`] under the same key and fuzzer-chosen bytes of the sealed stream are flipped.
//! An intact stream must open to exactly the writes; a damaged one must fail at the first
//! damaged frame, after yielding exactly the data of the frames before it.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringwire::proto::secret::{
    DATA_MAX_SIZE, FRAME_SEALED_SIZE, FrameOpener, FrameSealer, SecretError,
};
use ringwire_fuzz::{chunks, flip};

const KEY: [u8; 32] = [0x5A; 32];

#[derive(Arbitrary, Debug)]
enum Input {
    /// Raw bytes through the streaming `open`.
    Open { sizes: Vec<u16>, wire: Vec<u8> },
    /// Raw bytes through `open_one`, one frame at most per call.
    OpenOne { sizes: Vec<u16>, wire: Vec<u8> },
    /// Sealed writes, damaged by the edits, opened with `open` or `open_frame`.
    Sealed {
        whole_frames: bool,
        edits: Vec<(u32, u8)>,
        writes: Vec<u16>,
        sizes: Vec<u16>,
        plain: Vec<u8>,
    },
}

fuzz_target!(|input: Input| match input {
    Input::Open { sizes, wire } => {
        let mut opener = FrameOpener::new(&KEY);
        let mut out = Vec::new();
        let mut fed = 0usize;
        let mut failed = false;
        for chunk in chunks(&wire, &sizes, 4096) {
            match opener.open(chunk, &mut out) {
                Ok(n) => {
                    assert!(!failed, "a failed stream accepted input");
                    assert_eq!(n, chunk.len(), "open must consume everything");
                    fed += n;
                    assert_eq!(opener.buffered(), fed % FRAME_SEALED_SIZE);
                }
                Err(e) => {
                    if failed {
                        assert_eq!(e, SecretError::StreamFailed);
                    }
                    failed = true;
                }
            }
            assert!(out.len() <= (fed / FRAME_SEALED_SIZE + 1) * DATA_MAX_SIZE);
        }
    }
    Input::OpenOne { sizes, wire } => {
        let mut opener = FrameOpener::new(&KEY);
        'outer: for chunk in chunks(&wire, &sizes, 4096) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let before = opener.buffered();
                match opener.open_one(rest) {
                    Ok((used, data)) => {
                        assert!(used >= 1 && used <= rest.len(), "consumed {used}");
                        assert!(before + used <= FRAME_SEALED_SIZE);
                        match data {
                            Some(d) => {
                                assert_eq!(before + used, FRAME_SEALED_SIZE);
                                assert!(d.len() <= DATA_MAX_SIZE);
                            }
                            None => assert_eq!(used, rest.len()),
                        }
                        rest = &rest[used..];
                    }
                    Err(_) => {
                        assert_eq!(opener.open_one(b"x"), Err(SecretError::StreamFailed));
                        break 'outer;
                    }
                }
            }
        }
    }
    Input::Sealed {
        whole_frames,
        edits,
        writes,
        sizes,
        plain,
    } => {
        let mut sealer = FrameSealer::new(&KEY);
        let mut stream = Vec::new();
        // The data each frame carries, in order.
        let mut frames: Vec<&[u8]> = Vec::new();
        for write in chunks(&plain, &writes, 4096) {
            let before = stream.len();
            sealer.seal(write, &mut stream).expect("nonces remain");
            assert_eq!(
                stream.len() - before,
                write.len().div_ceil(DATA_MAX_SIZE) * FRAME_SEALED_SIZE
            );
            frames.extend(write.chunks(DATA_MAX_SIZE));
        }
        let first = flip(&mut stream, &edits);
        let mut opener = FrameOpener::new(&KEY);
        let mut out = Vec::new();
        let mut error = None;
        if whole_frames {
            for frame in stream.chunks_exact_mut(FRAME_SEALED_SIZE) {
                let frame: &mut [u8; FRAME_SEALED_SIZE] = frame.try_into().expect("exact");
                match opener.open_frame(frame) {
                    Ok(data) => out.extend_from_slice(data),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
        } else {
            for chunk in chunks(&stream, &sizes, 4096) {
                if let Err(e) = opener.open(chunk, &mut out) {
                    error = Some(e);
                    break;
                }
            }
        }
        match first {
            None => {
                assert_eq!(error, None, "an intact stream failed");
                assert_eq!(out, plain, "the round trip changed the data");
                assert_eq!(opener.buffered(), 0);
            }
            Some(at) => {
                let bad = at / FRAME_SEALED_SIZE;
                assert!(error.is_some(), "a damaged frame (byte {at}) opened");
                assert_eq!(
                    out,
                    frames[..bad].concat(),
                    "data before the damage changed"
                );
            }
        }
    }
});
