use proptest::prelude::*;

use super::*;

fn encode(f: &Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    f.encode(&mut out).unwrap();
    out
}

fn decode_one(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (f, end) = decode_frame(buf, 0)?;
    assert_eq!(end, buf.len());
    Ok(f)
}

fn sample_hello() -> Hello {
    Hello {
        min_version: 1,
        max_version: 1,
        features: FEATURE_COMPRESSION,
        max_inflight_requests: 256,
        capabilities: vec!["archive".into(), "statesync".into()],
        channels: vec![
            HelloChannel {
                id: 0x20,
                initial_window: 1 << 20,
                max_message: 1 << 20,
            },
            HelloChannel {
                id: 0x40,
                initial_window: 1 << 20,
                max_message: 104_857_605,
            },
        ],
    }
}

#[test]
fn golden_bytes() {
    assert_eq!(
        encode(&Frame::Ping(0x0102)),
        [4, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2]
    );
    assert_eq!(
        encode(&Frame::Pong(7)),
        [5, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]
    );
    assert_eq!(
        encode(&Frame::Cancel(9)),
        [6, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9]
    );
    assert_eq!(
        encode(&Frame::WindowUpdate {
            channel: 0x20,
            increment: 0x10000
        }),
        [3, 0, 0, 5, 0x20, 0, 1, 0, 0]
    );
    assert_eq!(
        encode(&Frame::Close { reason: "bye" }),
        [7, 0, 0, 3, b'b', b'y', b'e']
    );
    assert_eq!(
        encode(&Frame::Reset {
            code: 2,
            reason: ""
        }),
        [8, 0, 0, 4, 0, 0, 0, 2]
    );
    let d = DataFrame {
        ttl_ms: None,
        channel: 0x30,
        flags: DATA_START | DATA_END,
        request_id: None,
        chunk: b"hi",
    };
    assert_eq!(encode(&Frame::Data(d)), [2, 3, 0, 3, 0x30, b'h', b'i']);
    let d = DataFrame {
        ttl_ms: None,
        channel: 0x30,
        flags: DATA_START | DATA_REQUEST,
        request_id: Some(1),
        chunk: b"q",
    };
    assert_eq!(
        encode(&Frame::Data(d)),
        [2, 9, 0, 10, 0x30, 0, 0, 0, 0, 0, 0, 0, 1, b'q']
    );
    let h = Hello {
        min_version: 1,
        max_version: 1,
        features: 1,
        max_inflight_requests: 256,
        capabilities: vec!["ab".into()],
        channels: vec![HelloChannel {
            id: 0x20,
            initial_window: 0x100000,
            max_message: 0x200,
        }],
    };
    assert_eq!(
        encode(&Frame::Hello(h)),
        [
            1, 0, 0, 26, // header
            0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, // versions, features, max inflight
            1, 2, b'a', b'b', // capabilities
            1, 0x20, 0, 0x10, 0, 0, 0, 0, 2, 0, // channels
        ]
    );
}

#[test]
fn constants() {
    assert_eq!(MAX_DATA_CHUNK, 65523);
    assert_eq!(MAX_HELLO_FRAME_LEN, 2674);
    assert_eq!(data_header_len(false), 5);
    assert_eq!(data_header_len(true), 13);
    // The largest DATA frame fills a record exactly.
    assert_eq!(
        data_header_len(true) + MAX_DATA_CHUNK,
        crate::proto::native::MAX_RECORD_PLAINTEXT
    );
}

#[test]
fn largest_data_frame_round_trips() {
    let chunk = vec![1u8; MAX_DATA_CHUNK];
    let d = DataFrame {
        ttl_ms: None,
        channel: 1,
        flags: DATA_END | DATA_RESPONSE,
        request_id: Some(u64::MAX),
        chunk: &chunk,
    };
    let buf = encode(&Frame::Data(d.clone()));
    assert_eq!(decode_one(&buf).unwrap(), Frame::Data(d));
    let mut out = Vec::new();
    assert_eq!(
        encode_data_header(&mut out, 1, DATA_END, None, MAX_DATA_CHUNK + 1),
        Err(FrameError::ChunkTooLarge(MAX_DATA_CHUNK + 1))
    );
    assert!(out.is_empty());
}

#[test]
fn rejects() {
    let cases: Vec<(Vec<u8>, FrameError)> = vec![
        (vec![], FrameError::Truncated { needed: 4, have: 0 }),
        (vec![4, 0, 0], FrameError::Truncated { needed: 4, have: 3 }),
        (
            vec![4, 0, 0, 8, 1],
            FrameError::Truncated {
                needed: 12,
                have: 5,
            },
        ),
        (vec![0, 0, 0, 0], FrameError::UnknownType(0)),
        (vec![9, 0, 0, 0], FrameError::UnknownType(9)),
        (vec![0xFF, 1, 0, 0], FrameError::UnknownType(0xFF)),
        (
            vec![4, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0],
            FrameError::ReservedFlags {
                frame_type: 4,
                flags: 1,
            },
        ),
        (
            vec![2, 0x40, 0, 2, 0, 1],
            FrameError::ReservedFlags {
                frame_type: 2,
                flags: 0x40,
            },
        ),
        (
            vec![2, 0x80 | 3, 0, 2, 0, 1],
            FrameError::ReservedFlags {
                frame_type: 2,
                flags: 0x83,
            },
        ),
        (
            vec![4, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0],
            FrameError::BadLength {
                frame_type: 4,
                len: 7,
            },
        ),
        (
            vec![5, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            FrameError::BadLength {
                frame_type: 5,
                len: 9,
            },
        ),
        (
            vec![6, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0],
            FrameError::ZeroRequestId,
        ),
        (vec![3, 0, 0, 5, 1, 0, 0, 0, 0], FrameError::ZeroIncrement),
        (
            vec![3, 0, 0, 4, 1, 0, 0, 1],
            FrameError::BadLength {
                frame_type: 3,
                len: 4,
            },
        ),
        (
            vec![2, 3, 0, 0],
            FrameError::BadLength {
                frame_type: 2,
                len: 0,
            },
        ),
        (vec![2, 1, 0, 1, 7], FrameError::EmptyChunk),
        (
            vec![2, 0x18 | 3, 0, 10, 7, 0, 0, 0, 0, 0, 0, 0, 1, 1],
            FrameError::RequestAndResponse,
        ),
        (
            vec![2, 0x08 | 3, 0, 5, 7, 0, 0, 0, 1],
            FrameError::BadLength {
                frame_type: 2,
                len: 5,
            },
        ),
        (
            vec![2, 0x08 | 3, 0, 10, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            FrameError::ZeroRequestId,
        ),
        (vec![7, 0, 0, 1, 0xFF], FrameError::ReasonNotUtf8),
        (
            vec![8, 0, 0, 3, 0, 0, 1],
            FrameError::BadLength {
                frame_type: 8,
                len: 3,
            },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            decode_one(&bytes).map(|_| ()),
            Err(want.clone()),
            "{bytes:?}"
        );
    }
    let mut long = vec![7, 0, 1, 1];
    long.extend_from_slice(&[b'a'; 257]);
    assert_eq!(decode_one(&long), Err(FrameError::ReasonTooLong(257)));
    let mut out = Vec::new();
    assert_eq!(
        Frame::Close {
            reason: &"x".repeat(257)
        }
        .encode(&mut out),
        Err(FrameError::ReasonTooLong(257))
    );
    assert_eq!(
        Frame::Cancel(0).encode(&mut out),
        Err(FrameError::ZeroRequestId)
    );
    assert!(out.is_empty());
}

#[test]
fn hello_rules() {
    use hello::HelloError as E;
    let check = |h: Hello, e: E| {
        assert_eq!(h.validate(), Err(e.clone()));
        let mut out = Vec::new();
        assert_eq!(h.encode(&mut out), Err(FrameError::Hello(e)));
        assert!(out.is_empty());
    };
    let mut h = sample_hello();
    h.min_version = 0;
    check(h, E::BadVersionRange { min: 0, max: 1 });
    let mut h = sample_hello();
    h.min_version = 2;
    check(h, E::BadVersionRange { min: 2, max: 1 });
    let mut h = sample_hello();
    h.capabilities = (0..33).map(|i| format!("c{i}")).collect();
    check(h, E::TooManyCapabilities(33));
    for bad in ["", "has space", "é", &"x".repeat(65)] {
        let mut h = sample_hello();
        h.capabilities = vec![bad.to_owned()];
        check(h, E::BadCapability);
    }
    let mut h = sample_hello();
    h.capabilities = vec!["a".into(), "a".into()];
    check(h, E::DuplicateCapability);
    let mut h = sample_hello();
    h.channels = (0..65)
        .map(|i| HelloChannel {
            id: i,
            initial_window: 1,
            max_message: 1,
        })
        .collect();
    check(h, E::TooManyChannels(65));
    let mut h = sample_hello();
    h.channels.swap(0, 1);
    check(h, E::ChannelOrder(0x20));
    let mut h = sample_hello();
    h.channels[1].id = 0x20;
    check(h, E::ChannelOrder(0x20));
    let mut h = sample_hello();
    h.channels[0].initial_window = MIN_WINDOW - 1;
    check(
        h,
        E::BadWindow {
            channel: 0x20,
            window: 1023,
        },
    );
    let mut h = sample_hello();
    h.channels[0].initial_window = 0;
    check(
        h,
        E::BadWindow {
            channel: 0x20,
            window: 0,
        },
    );
    let mut h = sample_hello();
    h.channels[0].initial_window = MAX_WINDOW + 1;
    check(
        h,
        E::BadWindow {
            channel: 0x20,
            window: MAX_WINDOW + 1,
        },
    );
    let mut h = sample_hello();
    h.channels[0].max_message = 0;
    check(h, E::ZeroMaxMessage(0x20));

    // Decoder-side count checks happen before reading entries.
    let mut bytes = vec![1, 0, 0, 13, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 33];
    assert_eq!(
        decode_one(&bytes),
        Err(FrameError::Hello(E::TooManyCapabilities(33)))
    );
    bytes[16] = 1;
    assert_eq!(decode_one(&bytes), Err(FrameError::Hello(E::Truncated)));
}

#[test]
fn hello_extension_bytes_are_ignored() {
    let h = sample_hello();
    let mut buf = encode(&Frame::Hello(h.clone()));
    let body = u16::from_be_bytes([buf[2], buf[3]]) + 5;
    buf[2..4].copy_from_slice(&body.to_be_bytes());
    buf.extend_from_slice(b"later");
    assert_eq!(decode_one(&buf).unwrap(), Frame::Hello(h.clone()));
    assert_eq!(h.channel(0x40).unwrap().max_message, 104_857_605);
    assert!(h.channel(0x41).is_none());
}

#[test]
fn decoder_iterates_and_stops_at_error() {
    let mut buf = encode(&Frame::Ping(1));
    buf.extend(encode(&Frame::Pong(2)));
    buf.extend_from_slice(&[9, 0, 0, 0]);
    buf.extend(encode(&Frame::Ping(3)));
    let got: Vec<_> = FrameDecoder::new(&buf).collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], Ok(Frame::Ping(1)));
    assert_eq!(got[1], Ok(Frame::Pong(2)));
    assert_eq!(got[2], Err(FrameError::UnknownType(9)));
}

#[test]
fn truncate_reason_respects_char_boundaries() {
    let s = "é".repeat(200);
    let t = truncate_reason(&s);
    assert!(t.len() <= MAX_REASON_LEN);
    assert_eq!(t.len(), 256);
    let s = format!("a{}", "é".repeat(200));
    assert_eq!(truncate_reason(&s).len(), 255);
    assert_eq!(truncate_reason("short"), "short");
}

#[derive(Debug, Clone)]
enum OwnedFrame {
    Hello(Hello),
    Data {
        channel: u8,
        flags: u8,
        request_id: Option<u64>,
        chunk: Vec<u8>,
    },
    WindowUpdate(u8, u32),
    Ping(u64),
    Pong(u64),
    Cancel(u64),
    Close(String),
    Reset(u32, String),
}

impl OwnedFrame {
    fn as_frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Hello(h) => Frame::Hello(h.clone()),
            OwnedFrame::Data {
                channel,
                flags,
                request_id,
                chunk,
            } => Frame::Data(DataFrame {
                ttl_ms: None,
                channel: *channel,
                flags: *flags,
                request_id: *request_id,
                chunk,
            }),
            OwnedFrame::WindowUpdate(c, i) => Frame::WindowUpdate {
                channel: *c,
                increment: *i,
            },
            OwnedFrame::Ping(v) => Frame::Ping(*v),
            OwnedFrame::Pong(v) => Frame::Pong(*v),
            OwnedFrame::Cancel(v) => Frame::Cancel(*v),
            OwnedFrame::Close(r) => Frame::Close { reason: r },
            OwnedFrame::Reset(c, r) => Frame::Reset {
                code: *c,
                reason: r,
            },
        }
    }
}

fn arb_hello() -> impl Strategy<Value = Hello> {
    (
        1u16..4,
        0u16..4,
        any::<u32>(),
        any::<u32>(),
        proptest::collection::btree_set("[!-~]{1,64}", 0..=32),
        proptest::collection::btree_map(
            any::<u8>(),
            (MIN_WINDOW..=MAX_WINDOW, 1..=u32::MAX),
            0..=64,
        ),
    )
        .prop_map(|(min, extra, features, inflight, caps, chans)| Hello {
            min_version: min,
            max_version: min.saturating_add(extra),
            features,
            max_inflight_requests: inflight,
            capabilities: caps.into_iter().collect(),
            channels: chans
                .into_iter()
                .map(|(id, (w, m))| HelloChannel {
                    id,
                    initial_window: w,
                    max_message: m,
                })
                .collect(),
        })
}

fn arb_reason() -> impl Strategy<Value = String> {
    ".{0,80}".prop_map(|s: String| truncate_reason(&s).to_owned())
}

fn arb_frame() -> impl Strategy<Value = OwnedFrame> {
    prop_oneof![
        arb_hello().prop_map(OwnedFrame::Hello),
        (
            any::<u8>(),
            0u8..4,
            0u8..3,
            1u64..,
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..600)
        )
            .prop_map(|(channel, se, kind, id, compressed, mut chunk)| {
                let mut flags = [0, DATA_START, DATA_END, DATA_START | DATA_END][se as usize];
                if compressed {
                    flags |= DATA_COMPRESSED;
                }
                let request_id = match kind {
                    0 => None,
                    1 => {
                        flags |= DATA_REQUEST;
                        Some(id)
                    }
                    _ => {
                        flags |= DATA_RESPONSE;
                        Some(id)
                    }
                };
                if chunk.is_empty() && flags & DATA_END == 0 {
                    chunk.push(0);
                }
                OwnedFrame::Data {
                    channel,
                    flags,
                    request_id,
                    chunk,
                }
            }),
        (any::<u8>(), 1u32..).prop_map(|(c, i)| OwnedFrame::WindowUpdate(c, i)),
        any::<u64>().prop_map(OwnedFrame::Ping),
        any::<u64>().prop_map(OwnedFrame::Pong),
        (1u64..).prop_map(OwnedFrame::Cancel),
        arb_reason().prop_map(OwnedFrame::Close),
        (any::<u32>(), arb_reason()).prop_map(|(c, r)| OwnedFrame::Reset(c, r)),
    ]
}

proptest! {
    #[test]
    fn round_trip(frames in proptest::collection::vec(arb_frame(), 1..12)) {
        let mut buf = Vec::new();
        for f in &frames {
            f.as_frame().encode(&mut buf).unwrap();
        }
        let decoded: Vec<_> = FrameDecoder::new(&buf).collect::<Result<_, _>>().unwrap();
        let want: Vec<_> = frames.iter().map(|f| f.as_frame()).collect();
        prop_assert_eq!(decoded, want);
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for r in FrameDecoder::new(&bytes) {
            let _ = r;
        }
    }

    #[test]
    fn decoder_never_panics_on_mutated_frames(
        frames in proptest::collection::vec(arb_frame(), 1..4),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut buf = Vec::new();
        for f in &frames {
            f.as_frame().encode(&mut buf).unwrap();
        }
        for (i, x) in flips {
            let n = buf.len();
            buf[i % n] ^= x;
        }
        for r in FrameDecoder::new(&buf) {
            let _ = r;
        }
    }
}

fn data(flags: u8, chunk: &[u8]) -> Vec<u8> {
    encode(&Frame::Data(DataFrame {
        ttl_ms: None,
        channel: 0x20,
        flags,
        request_id: None,
        chunk,
    }))
}

#[test]
fn holds_whole_message_finds_a_one_chunk_message_behind_control_frames() {
    let whole = DATA_START | DATA_END;
    let mut record = encode(&Frame::Ping(7));
    record.extend(encode(&Frame::WindowUpdate {
        channel: 0x20,
        increment: 4096,
    }));
    assert!(!holds_whole_message(&record), "control frames only");
    let mut parts = record.clone();
    parts.extend(data(DATA_START, &[1; 300]));
    parts.extend(data(DATA_END, &[2; 40]));
    parts.extend(data(0, &[3; 10]));
    assert!(!holds_whole_message(&parts), "chunks of larger messages");
    let mut compressed = record.clone();
    compressed.extend(data(whole | DATA_COMPRESSED, &[4; 30]));
    assert!(
        !holds_whole_message(&compressed),
        "a compressed message is decompressed into a buffer of its own"
    );
    parts.extend(data(whole, &[5; 20]));
    assert!(holds_whole_message(&parts));
    assert!(holds_whole_message(&data(whole, &[])));
    // A header that claims more than is there ends the walk; the full decode reports it.
    assert!(!holds_whole_message(&[0x02, 0x01, 0xff, 0xff, 0]));
    assert!(!holds_whole_message(&[]));
}
