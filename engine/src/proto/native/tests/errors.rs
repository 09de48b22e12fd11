//! Every fatal receive error, each followed by the RESET it queues.

use std::time::Instant;

use super::pair::{hello, outgoing_frames, record};
use crate::proto::native::frame::{
    DATA_COMPRESSED, DATA_END, DATA_REQUEST, DATA_START, DataFrame, Frame, FrameError, Hello,
};
use crate::proto::native::{Mux, MuxError, NativeChannelConfig, NativeConfig, ResetCode};

fn local() -> NativeConfig {
    let mut a = NativeChannelConfig::new(0x20, 1, 100);
    a.initial_window = 1024;
    let b = NativeChannelConfig::new(0x21, 1, 100);
    let mut c = NativeConfig::with_channels(vec![a, b]);
    c.max_inflight_requests = 8;
    c
}

fn peer_hello() -> Frame<'static> {
    // The peer also has 0x22, which we lack.
    Frame::Hello(hello(&[
        (0x20, 1024, 100),
        (0x21, 1024, 100),
        (0x22, 1024, 100),
    ]))
}

fn data(channel: u8, flags: u8, chunk: &[u8]) -> Frame<'_> {
    Frame::Data(DataFrame {
        ttl_ms: None,
        channel,
        flags,
        request_id: None,
        chunk,
    })
}

/// Feeds `records` (raw plaintexts) after a valid HELLO; expects `err` on the last one and a
/// RESET with `code` in the output.
fn expect(records: Vec<Vec<u8>>, err: MuxError, code: ResetCode) {
    let now = Instant::now();
    let mut m = Mux::new(local(), now).unwrap();
    outgoing_frames(&mut m, now);
    m.handle_record(now, &record(&[peer_hello()])).unwrap();
    let n = records.len();
    for (i, r) in records.into_iter().enumerate() {
        let got = m.handle_record(now, &r);
        if i + 1 < n {
            assert_eq!(got, Ok(()), "record {i}");
        } else {
            assert_eq!(got, Err(err.clone()));
        }
    }
    assert_eq!(err.reset_code(), code);
    let frames = outgoing_frames(&mut m, now);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        frames[0].starts_with(&format!("Reset {{ code: {}, ", code.0)),
        "{frames:?}"
    );
    assert!(m.is_finished());
    // Dead: further input is ignored, nothing more goes out.
    assert_eq!(m.handle_record(now, &record(&[Frame::Ping(1)])), Ok(()));
    assert!(outgoing_frames(&mut m, now).is_empty());
}

const ONE: u8 = DATA_START | DATA_END;

#[test]
fn every_error_path() {
    let p = ResetCode::PROTOCOL_ERROR;
    expect(vec![vec![]], MuxError::EmptyRecord, p);
    expect(
        vec![vec![0x2A, 0, 0, 0]],
        MuxError::Frame(FrameError::UnknownType(0x2A)),
        p,
    );
    expect(vec![record(&[peer_hello()])], MuxError::DuplicateHello, p);
    expect(
        vec![record(&[data(0x22, ONE, b"x")])],
        MuxError::UnknownChannel(0x22),
        ResetCode::UNKNOWN_CHANNEL,
    );
    expect(
        vec![record(&[data(0x99, ONE, b"x")])],
        MuxError::UnknownChannel(0x99),
        ResetCode::UNKNOWN_CHANNEL,
    );
    expect(
        vec![record(&[Frame::WindowUpdate {
            channel: 0x22,
            increment: 1,
        }])],
        MuxError::UnknownChannel(0x22),
        ResetCode::UNKNOWN_CHANNEL,
    );
    expect(
        vec![record(&[data(0x20, ONE, &[0; 101])])],
        MuxError::MessageTooLarge {
            channel: 0x20,
            max: 100,
        },
        ResetCode::MESSAGE_TOO_LARGE,
    );
    expect(
        vec![record(&[
            data(0x20, DATA_START, &[0; 60]),
            data(0x20, DATA_END, &[0; 41]),
        ])],
        MuxError::MessageTooLarge {
            channel: 0x20,
            max: 100,
        },
        ResetCode::MESSAGE_TOO_LARGE,
    );
    expect(
        vec![record(&[
            data(0x20, DATA_START, b"a"),
            data(0x20, DATA_START, b"b"),
        ])],
        MuxError::MessageInterrupted(0x20),
        p,
    );
    expect(
        vec![record(&[data(0x20, DATA_END, b"a")])],
        MuxError::UnexpectedContinuation(0x20),
        p,
    );
    expect(
        vec![record(&[
            data(0x20, DATA_START, b"a"),
            Frame::Data(DataFrame {
                ttl_ms: None,
                channel: 0x20,
                flags: DATA_END | DATA_REQUEST,
                request_id: Some(1),
                chunk: b"b",
            }),
        ])],
        MuxError::ChunkMismatch(0x20),
        p,
    );
    expect(
        vec![record(&[
            Frame::Data(DataFrame {
                ttl_ms: None,
                channel: 0x20,
                flags: DATA_START | DATA_REQUEST,
                request_id: Some(1),
                chunk: b"a",
            }),
            Frame::Data(DataFrame {
                ttl_ms: None,
                channel: 0x20,
                flags: DATA_END | DATA_REQUEST,
                request_id: Some(2),
                chunk: b"b",
            }),
        ])],
        MuxError::ChunkMismatch(0x20),
        p,
    );
    expect(
        vec![record(&[data(0x20, ONE | DATA_COMPRESSED, b"z")])],
        MuxError::CompressionNotNegotiated(0x20),
        p,
    );
    expect(
        vec![
            record(&[data(0x20, DATA_START, &[0; 100])]),
            record(&[data(0x20, DATA_END, &[0; 1])]),
        ],
        MuxError::MessageTooLarge {
            channel: 0x20,
            max: 100,
        },
        ResetCode::MESSAGE_TOO_LARGE,
    );
}

#[test]
fn hello_must_come_first_and_versions_must_meet() {
    let now = Instant::now();
    let mut m = Mux::new(local(), now).unwrap();
    assert_eq!(
        m.handle_record(now, &record(&[Frame::Ping(1)])),
        Err(MuxError::HelloExpected(4))
    );
    assert_eq!(
        MuxError::HelloExpected(4).reset_code(),
        ResetCode::PROTOCOL_ERROR
    );

    let mut h = hello(&[]);
    h.min_version = 2;
    h.max_version = 5;
    let mut m = Mux::new(local(), now).unwrap();
    assert_eq!(
        m.handle_record(now, &record(&[Frame::Hello(h)])),
        Err(MuxError::UnsupportedVersion { min: 2, max: 5 })
    );
    let frames = outgoing_frames(&mut m, now);
    assert!(frames[0].starts_with("Hello"));
    assert!(frames[1].starts_with(&format!(
        "Reset {{ code: {}",
        ResetCode::UNSUPPORTED_VERSION.0
    )));

    // A later peer that also speaks 1 agrees on 1, and its HELLO extension is ignored.
    let h = Hello {
        max_version: 9,
        ..hello(&[(0x20, 1024, 10)])
    };
    let mut m = Mux::new(local(), now).unwrap();
    let mut rec = record(&[Frame::Hello(h)]);
    let body = u16::from_be_bytes([rec[2], rec[3]]) + 3;
    rec[2..4].copy_from_slice(&body.to_be_bytes());
    rec.extend_from_slice(b"new");
    m.handle_record(now, &rec).unwrap();
    assert_eq!(m.version(), Some(1));
}

#[test]
fn flow_control_bounds_a_flood_of_empty_messages() {
    let now = Instant::now();
    let mut ch = NativeChannelConfig::new(0x20, 1, 100);
    ch.initial_window = 64 * 1024;
    let mut m = Mux::new(NativeConfig::with_channels(vec![ch]), now).unwrap();
    m.handle_record(
        now,
        &record(&[Frame::Hello(hello(&[(0x20, 1 << 20, 100)]))]),
    )
    .unwrap();
    // Each empty message costs 64 bytes of credit: 1024 of them fill the window.
    let one = record(&[data(0x20, ONE, b"")]);
    let flood: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1024).collect();
    m.handle_record(now, &flood).unwrap();
    assert_eq!(
        m.handle_record(now, &one),
        Err(MuxError::FlowControl {
            channel: 0x20,
            len: 64,
            window: 0
        })
    );
}

#[test]
fn config_is_validated() {
    use crate::proto::native::ConfigError as E;
    let now = Instant::now();
    let ch = |id| NativeChannelConfig::new(id, 1, 100);
    let bad = |f: &dyn Fn(&mut NativeConfig), e: E| {
        let mut c = NativeConfig::with_channels(vec![ch(1)]);
        f(&mut c);
        assert_eq!(Mux::new(c, now).err(), Some(e));
    };
    bad(
        &|c| c.channels = (0..65).map(ch).collect(),
        E::TooManyChannels(65),
    );
    bad(&|c| c.channels.push(ch(1)), E::DuplicateChannel(1));
    bad(&|c| c.channels.push(ch(0xF0)), E::ReservedChannel(0xF0));
    bad(&|c| c.channels[0].priority = 0, E::ZeroPriority(1));
    bad(
        &|c| c.channels[0].send_queue_capacity = 0,
        E::ZeroSendQueue(1),
    );
    bad(
        &|c| c.channels[0].recv_message_capacity = 0,
        E::BadRecvCapacity(1),
    );
    bad(
        &|c| c.channels[0].recv_message_capacity = 1 << 33,
        E::BadRecvCapacity(1),
    );
    bad(&|c| c.channels[0].initial_window = 0, E::BadWindow(1));
    bad(&|c| c.channels[0].initial_window = 1023, E::BadWindow(1));
    bad(&|c| c.channels[0].initial_window = 1 << 31, E::BadWindow(1));
    bad(&|c| c.max_chunk = 0, E::BadMaxChunk(0));
    bad(&|c| c.max_chunk = 65524, E::BadMaxChunk(65524));
    bad(
        &|c| c.ping_interval = std::time::Duration::ZERO,
        E::ZeroDuration("ping_interval"),
    );
    bad(
        &|c| c.pong_timeout = std::time::Duration::ZERO,
        E::ZeroDuration("pong_timeout"),
    );
    bad(&|c| c.recv_queue_capacity = 0, E::ZeroRecvQueue);
    bad(&|c| c.max_control_frames_per_second = 0, E::ZeroControlRate);
    bad(
        &|c| c.capabilities = vec!["no spaces".into()],
        E::Capabilities(crate::proto::native::frame::hello::HelloError::BadCapability),
    );
}
