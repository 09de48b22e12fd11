//! DATA frames with a time-to-live: the varint's encoding, its bounds, and where TTL may appear.

use super::*;

fn decode_one(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    decode_frame(bytes, 0).map(|(f, _)| f)
}

#[test]
fn ttl_varint_round_trips_and_sizes() {
    for (v, len) in [
        (0u32, 1usize),
        (1, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (2_097_151, 3),
        (2_097_152, 4),
        (MAX_TTL_MS, 4),
    ] {
        let mut out = Vec::new();
        put_ttl(&mut out, v);
        assert_eq!(out.len(), len, "{v}");
        assert_eq!(ttl_len(v), len, "{v}");
        assert_eq!(get_ttl(&out), Some((v, len)), "{v}");
    }
    // Longer values are clamped, never written as five bytes.
    let mut out = Vec::new();
    put_ttl(&mut out, u32::MAX);
    assert_eq!(out.len(), MAX_TTL_LEN);
    assert_eq!(get_ttl(&out), Some((MAX_TTL_MS, 4)));
}

#[test]
fn ttl_varint_is_bounded() {
    // Four continuation bytes: a fifth is never read.
    assert_eq!(get_ttl(&[0x80, 0x80, 0x80, 0x80, 0x01]), None);
    assert_eq!(get_ttl(&[0xFF; 64]), None);
    // Cut off.
    assert_eq!(get_ttl(&[0x80]), None);
    assert_eq!(get_ttl(&[]), None);
    // Each value has one encoding: a longer one than its value needs is refused (a frame
    // re-encodes to the bytes it came in).
    assert_eq!(get_ttl(&[0x85, 0x00]), None);
    assert_eq!(get_ttl(&[0xFF, 0x93, 0x00]), None);
    assert_eq!(get_ttl(&[0x80, 0x80, 0x00]), None);
    assert_eq!(get_ttl(&[0x00]), Some((0, 1)));
    assert_eq!(get_ttl(&[0xFF, 0x13]), Some((2559, 2)));
}

#[test]
fn data_with_ttl_round_trips() {
    for request_id in [None, Some(7u64)] {
        let flags = DATA_START
            | DATA_END
            | DATA_TTL
            | if request_id.is_some() {
                DATA_REQUEST
            } else {
                0
            };
        let d = DataFrame {
            channel: 0x21,
            flags,
            request_id,
            ttl_ms: Some(300),
            chunk: b"vote",
        };
        let mut out = Vec::new();
        Frame::Data(d.clone()).encode(&mut out).unwrap();
        let fixed = data_header_len(request_id.is_some());
        assert_eq!(out.len(), fixed + 2 + 4);
        // 300 = 0b10_0101100: 0xAC, 0x02.
        assert_eq!(&out[fixed..fixed + 2], &[0xAC, 0x02]);
        assert_eq!(decode_one(&out).unwrap(), Frame::Data(d));
    }
}

#[test]
fn ttl_only_on_start_chunks() {
    // END without START, TTL 5.
    let bytes = [2, DATA_END | DATA_TTL, 0, 3, 1, 5, b'x'];
    assert_eq!(decode_one(&bytes), Err(FrameError::BadTtl));
    let mut out = Vec::new();
    assert_eq!(
        encode_data_header_ttl(&mut out, 1, DATA_END | DATA_TTL, None, Some(5), 1),
        Err(FrameError::BadTtl)
    );
    // Flag and value must agree.
    assert_eq!(
        encode_data_header_ttl(&mut out, 1, DATA_START | DATA_END, None, Some(5), 1),
        Err(FrameError::BadTtl)
    );
    assert_eq!(
        encode_data_header_ttl(&mut out, 1, DATA_START | DATA_END | DATA_TTL, None, None, 1),
        Err(FrameError::BadTtl)
    );
    assert!(out.is_empty());
}

#[test]
fn ttl_running_past_the_body_is_rejected() {
    // Body: channel, then a varint whose continuation bit runs into the end of the body.
    let bytes = [2, DATA_START | DATA_END | DATA_TTL, 0, 2, 1, 0x80];
    assert_eq!(decode_one(&bytes), Err(FrameError::BadTtl));
    // Five varint bytes.
    let bytes = [
        2,
        DATA_START | DATA_END | DATA_TTL,
        0,
        6,
        1,
        0x80,
        0x80,
        0x80,
        0x80,
        0x01,
    ];
    assert_eq!(decode_one(&bytes), Err(FrameError::BadTtl));
}

#[test]
fn ttl_frame_must_fit_a_record() {
    let mut out = Vec::new();
    // A request chunk of MAX_DATA_CHUNK bytes fits without TTL, not with it.
    let flags = DATA_START | DATA_END | DATA_REQUEST;
    assert!(encode_data_header_ttl(&mut out, 1, flags, Some(1), None, MAX_DATA_CHUNK).is_ok());
    out.clear();
    assert_eq!(
        encode_data_header_ttl(
            &mut out,
            1,
            flags | DATA_TTL,
            Some(1),
            Some(1),
            MAX_DATA_CHUNK
        ),
        Err(FrameError::ChunkTooLarge(MAX_DATA_CHUNK))
    );
}

#[test]
fn golden_ttl_bytes() {
    // docs/PROTOCOL.md §16: DATA(ch 0x21, START|END|TTL, ttl 300 ms, "vote").
    let d = DataFrame {
        channel: 0x21,
        flags: DATA_START | DATA_END | DATA_TTL,
        ttl_ms: Some(300),
        request_id: None,
        chunk: b"vote",
    };
    let mut out = Vec::new();
    Frame::Data(d).encode(&mut out).unwrap();
    assert_eq!(
        out,
        [
            0x02, 0x23, 0x00, 0x07, 0x21, 0xAC, 0x02, 0x76, 0x6F, 0x74, 0x65
        ]
    );
}
