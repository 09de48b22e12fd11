//! Frame sizes, tamper detection, declared-length limit and the nonce sequence.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use super::super::{
    DATA_MAX_SIZE, FRAME_PLAIN_SIZE, FRAME_SEALED_SIZE, FrameOpener, FrameSealer, SecretError,
};

const KEY: [u8; 32] = [0x42; 32];

/// Seals a raw 1028-byte plaintext with the test key and counter `n`, bypassing the sealer's
/// checks.
fn raw_seal(plain: &[u8; FRAME_PLAIN_SIZE], n: u64) -> [u8; FRAME_SEALED_SIZE] {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &KEY).unwrap());
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    let mut out = [0u8; FRAME_SEALED_SIZE];
    out[..FRAME_PLAIN_SIZE].copy_from_slice(plain);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut out[..FRAME_PLAIN_SIZE],
        )
        .unwrap();
    out[FRAME_PLAIN_SIZE..].copy_from_slice(tag.as_ref());
    out
}

fn plain_frame(data: &[u8], declared: u32) -> [u8; FRAME_PLAIN_SIZE] {
    let mut p = [0u8; FRAME_PLAIN_SIZE];
    p[..4].copy_from_slice(&declared.to_le_bytes());
    p[4..4 + data.len()].copy_from_slice(data);
    p
}

fn seal(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameSealer::new(&KEY).seal(data, &mut out).unwrap();
    out
}

#[test]
fn sizes() {
    assert_eq!(FRAME_PLAIN_SIZE, 1028);
    assert_eq!(FRAME_SEALED_SIZE, 1044);
    assert_eq!(seal(&[]).len(), 0);
    assert_eq!(seal(&[1]).len(), FRAME_SEALED_SIZE);
    assert_eq!(seal(&[1; 1024]).len(), FRAME_SEALED_SIZE);
    assert_eq!(seal(&[1; 1025]).len(), 2 * FRAME_SEALED_SIZE);
    assert_eq!(seal(&[1; 4096]).len(), 4 * FRAME_SEALED_SIZE);
}

#[test]
fn seal_appends_without_touching_existing_bytes() {
    let mut out = b"prefix".to_vec();
    FrameSealer::new(&KEY).seal(b"abc", &mut out).unwrap();
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(out.len(), 6 + FRAME_SEALED_SIZE);
}

#[test]
fn frame_layout_matches_raw_seal() {
    // Data "abc": length 3 LE, data, zero padding (nothing sealed before); nonce 0. Then "de":
    // length 2, data, and stock's stale padding — the "c" left from the first frame; nonce 1.
    let mut sealer = FrameSealer::new(&KEY);
    let mut out = Vec::new();
    sealer.seal(b"abc", &mut out).unwrap();
    sealer.seal(b"de", &mut out).unwrap();
    assert_eq!(
        out[..FRAME_SEALED_SIZE],
        raw_seal(&plain_frame(b"abc", 3), 0)
    );
    assert_eq!(
        out[FRAME_SEALED_SIZE..],
        raw_seal(&plain_frame(b"dec", 2), 1)
    );
    assert_eq!(sealer.next_nonce(), Some(2));
}

#[test]
fn short_frame_padding_is_the_previous_frames_tail() {
    let data: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    let mut sealer = FrameSealer::new(&KEY);
    let mut out = Vec::new();
    sealer.seal(&data, &mut out).unwrap();
    sealer.seal(b"xy", &mut out).unwrap();
    // Frame 1 (476 bytes) is padded with the tail of frame 0 (the first 1024 data bytes).
    let mut plain1 = [0u8; FRAME_PLAIN_SIZE];
    plain1[..4].copy_from_slice(&476u32.to_le_bytes());
    plain1[4..480].copy_from_slice(&data[1024..]);
    plain1[480..].copy_from_slice(&data[476..1024]);
    assert_eq!(
        out[FRAME_SEALED_SIZE..2 * FRAME_SEALED_SIZE],
        raw_seal(&plain1, 1)
    );
    // Frame 2 ("xy") keeps the rest of frame 1's plaintext.
    let mut plain2 = plain1;
    plain2[..4].copy_from_slice(&2u32.to_le_bytes());
    plain2[4..6].copy_from_slice(b"xy");
    assert_eq!(out[2 * FRAME_SEALED_SIZE..], raw_seal(&plain2, 2));
    // The receiver sees only the data.
    let mut got = Vec::new();
    FrameOpener::new(&KEY).open(&out, &mut got).unwrap();
    assert_eq!(got[..1500], data[..]);
    assert_eq!(&got[1500..], b"xy");
}

#[test]
fn open_frame_in_place() {
    let mut frame = raw_seal(&plain_frame(b"hello", 5), 0);
    let mut opener = FrameOpener::new(&KEY);
    assert_eq!(opener.open_frame(&mut frame).unwrap(), b"hello");
    assert_eq!(opener.next_nonce(), Some(1));
    // The same frame again is out of sequence.
    let mut again = raw_seal(&plain_frame(b"hello", 5), 0);
    assert_eq!(
        opener.open_frame(&mut again).unwrap_err(),
        SecretError::Authentication
    );
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let sealed = seal(b"tamper-evident");
    let mut frame = [0u8; FRAME_SEALED_SIZE];
    for bit in 0..FRAME_SEALED_SIZE * 8 {
        frame.copy_from_slice(&sealed);
        frame[bit / 8] ^= 1 << (bit % 8);
        let mut opener = FrameOpener::new(&KEY);
        assert_eq!(
            opener.open_frame(&mut frame).unwrap_err(),
            SecretError::Authentication,
            "bit {bit}"
        );
    }
}

#[test]
fn declared_length_over_max_is_rejected() {
    for declared in [DATA_MAX_SIZE as u32 + 1, 4096, u32::MAX] {
        let frame = raw_seal(&plain_frame(&[9; 1024], declared), 0);
        let mut opener = FrameOpener::new(&KEY);
        let mut out = Vec::new();
        assert_eq!(
            opener.open(&frame, &mut out).unwrap_err(),
            SecretError::FrameTooLong(declared)
        );
        assert!(out.is_empty());
        assert_eq!(
            opener.open(&[], &mut out).unwrap_err(),
            SecretError::StreamFailed
        );
    }
    // Exactly the maximum is fine, and zero is an empty frame.
    let mut opener = FrameOpener::new(&KEY);
    let mut out = Vec::new();
    opener
        .open(&raw_seal(&plain_frame(&[9; 1024], 1024), 0), &mut out)
        .unwrap();
    opener
        .open(&raw_seal(&plain_frame(&[], 0), 1), &mut out)
        .unwrap();
    assert_eq!(out, [9; 1024]);
}

#[test]
fn stream_is_dead_after_first_error() {
    let mut sealed = seal(b"x");
    sealed[0] ^= 1;
    let mut opener = FrameOpener::new(&KEY);
    let mut out = Vec::new();
    assert_eq!(
        opener.open(&sealed, &mut out).unwrap_err(),
        SecretError::Authentication
    );
    for input in [&[][..], &[1u8][..], &seal(b"x")[..]] {
        assert_eq!(
            opener.open(input, &mut out).unwrap_err(),
            SecretError::StreamFailed
        );
    }
    let mut frame = [0u8; FRAME_SEALED_SIZE];
    frame.copy_from_slice(&seal(b"x"));
    assert_eq!(
        opener.open_frame(&mut frame).unwrap_err(),
        SecretError::StreamFailed
    );
}

#[test]
fn streaming_open_buffers_partial_frames() {
    let data: Vec<u8> = (0..2500u32).map(|i| (i * 7) as u8).collect();
    let sealed = seal(&data);
    let mut opener = FrameOpener::new(&KEY);
    let mut out = Vec::new();
    let (a, b) = sealed.split_at(1500);
    assert_eq!(opener.open(a, &mut out).unwrap(), 1500);
    assert_eq!(out.len(), 1024);
    assert_eq!(opener.buffered(), 1500 - FRAME_SEALED_SIZE);
    assert_eq!(opener.open(b, &mut out).unwrap(), b.len());
    assert_eq!(opener.buffered(), 0);
    assert_eq!(out, data);
}

#[test]
fn nonce_overflow_is_an_error_not_a_wrap() {
    let mut sealer = FrameSealer::new(&KEY);
    let mut opener = FrameOpener::new(&KEY);
    sealer.set_nonce(u64::MAX - 1);
    opener.set_nonce(u64::MAX - 1);

    // Two frames would need nonces MAX-1, MAX and one more: nothing is written.
    let mut out = Vec::new();
    let mut probe = FrameSealer::new(&KEY);
    probe.set_nonce(u64::MAX);
    assert_eq!(
        probe.seal(&[0; 1025], &mut out).unwrap_err(),
        SecretError::NonceExhausted
    );
    assert!(out.is_empty());
    assert_eq!(
        probe.seal(b"", &mut out).unwrap_err(),
        SecretError::StreamFailed
    );

    sealer.seal(b"second to last", &mut out).unwrap();
    sealer.seal(b"last", &mut out).unwrap();
    assert_eq!(sealer.next_nonce(), None);
    let mut last = plain_frame(b"second to last", 4);
    last[4..8].copy_from_slice(b"last");
    assert_eq!(out[FRAME_SEALED_SIZE..], raw_seal(&last, u64::MAX));
    let mut more = Vec::new();
    assert_eq!(
        sealer.seal(b"one more", &mut more).unwrap_err(),
        SecretError::NonceExhausted
    );
    assert!(more.is_empty());

    let mut got = Vec::new();
    opener.open(&out, &mut got).unwrap();
    assert_eq!(got, b"second to lastlast");
    assert_eq!(opener.next_nonce(), None);
    // Any further frame cannot be opened.
    let mut frame = [0u8; FRAME_SEALED_SIZE];
    frame.copy_from_slice(&out[..FRAME_SEALED_SIZE]);
    assert_eq!(
        opener.open_frame(&mut frame).unwrap_err(),
        SecretError::NonceExhausted
    );
}
