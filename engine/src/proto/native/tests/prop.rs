//! Property tests: decoders never panic; random traffic arrives intact and in order.

use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;

use super::pair::{Pair, hello, record};
use crate::proto::native::frame::{
    DATA_COMPRESSED, DATA_FLAGS_KNOWN, DATA_REQUEST, DATA_RESPONSE, DATA_START, DATA_TTL,
    DataFrame, Frame,
};
use crate::proto::native::{Mux, NativeChannelConfig, NativeConfig};

fn small_config() -> NativeConfig {
    let mut a = NativeChannelConfig::new(0x20, 1, 300);
    a.initial_window = 1024;
    let b = NativeChannelConfig::new(0x21, 3, 300);
    let mut c = NativeConfig::with_channels(vec![a, b]);
    c.max_inflight_requests = 3;
    c.recv_queue_capacity = 8;
    c
}

fn arb_frame() -> impl Strategy<Value = (u8, u8, u64, Vec<u8>, u32)> {
    (
        0u8..9,
        any::<u8>(),
        0u64..6,
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<u32>(),
    )
}

fn to_frame((kind, x, id, bytes, n): &(u8, u8, u64, Vec<u8>, u32)) -> Option<Frame<'_>> {
    let channel = 0x1F + x % 4;
    Some(match kind {
        0 => Frame::Hello(hello(&[(0x20, 1024, 300), (0x21, 1024 + n % 1000, 300)])),
        1..=3 => {
            let mut flags = x & DATA_FLAGS_KNOWN & !DATA_COMPRESSED;
            if flags & DATA_REQUEST != 0 {
                flags &= !DATA_RESPONSE;
            }
            if flags & DATA_START == 0 {
                flags &= !DATA_TTL;
            }
            let ttl_ms = (flags & DATA_TTL != 0).then_some(n % 5000);
            let request_id = (flags & (DATA_REQUEST | DATA_RESPONSE) != 0).then_some(id + 1);
            let chunk = if bytes.is_empty() && flags & 2 == 0 {
                &[0u8][..]
            } else {
                bytes
            };
            Frame::Data(DataFrame {
                ttl_ms,
                channel,
                flags,
                request_id,
                chunk,
            })
        }
        4 => Frame::WindowUpdate {
            channel,
            increment: 1 + n % 100_000,
        },
        5 => Frame::Ping(*id),
        6 => Frame::Pong(*id),
        7 => Frame::Cancel(id + 1),
        _ => return None,
    })
}

proptest! {
    #[test]
    fn handle_record_never_panics_on_bytes(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
        with_hello in any::<bool>(),
    ) {
        let now = Instant::now();
        let mut m = Mux::new(small_config(), now).unwrap();
        if with_hello {
            m.handle_record(now, &record(&[Frame::Hello(hello(&[(0x20, 1024, 300)]))])).unwrap();
        }
        for r in &records {
            let _ = m.handle_record(now, r);
            let _ = m.handle_record_bytes(now, Bytes::copy_from_slice(r));
            while m.poll_event().is_some() {}
            let mut out = Vec::new();
            while m.poll_record(now, &mut out, 65536) {}
        }
    }

    #[test]
    fn handle_record_never_panics_on_frame_sequences(
        records in proptest::collection::vec(proptest::collection::vec(arb_frame(), 1..8), 1..12),
        drain in any::<bool>(),
    ) {
        let now = Instant::now();
        let mut m = Mux::new(small_config(), now).unwrap();
        let _ = m.send(0x20, Bytes::from_static(b"hi"));
        let _ = m.request(0x21, Bytes::from_static(b"q"), now);
        for r in &records {
            let frames: Vec<_> = r.iter().filter_map(to_frame).collect();
            if frames.is_empty() {
                continue;
            }
            let _ = m.handle_record(now, &record(&frames));
            let _ = m.handle_timeout(now);
            if drain {
                while let Some(e) = m.poll_event() {
                    if let crate::proto::native::MuxEvent::Message {
                        channel, kind: crate::proto::native::MessageKind::Request(id), ..
                    } = e {
                        let _ = m.respond(channel, id, Bytes::new());
                    }
                }
            }
            let mut out = Vec::new();
            while m.poll_record(now, &mut out, 4096) {}
        }
    }

    #[test]
    fn random_traffic_arrives_intact_and_in_order(
        msgs in proptest::collection::vec((0usize..4, 0usize..40_000, any::<u8>()), 1..40),
        windows in proptest::collection::vec(1024u32..100_000, 4),
        prios in proptest::collection::vec(1u32..10, 4),
        max_chunk in 1usize..20_000,
        max_record in 0usize..70_000,
        drain_every in 1usize..5,
    ) {
        let mk = || {
            let mut c = NativeConfig::with_channels(
                (0..4)
                    .map(|i| {
                        let mut ch = NativeChannelConfig::new(i as u8 * 3, prios[i], 40_000);
                        ch.initial_window = windows[i];
                        ch.send_queue_capacity = 64;
                        ch
                    })
                    .collect(),
            );
            c.max_chunk = max_chunk;
            c.recv_queue_capacity = 4;
            c
        };
        let mut p = Pair::new(mk(), mk());
        p.max_record = max_record;
        let mut sent: Vec<Vec<Bytes>> = vec![Vec::new(); 4];
        for (ch, len, seed) in &msgs {
            let payload: Bytes = (0..*len).map(|i| seed.wrapping_add(i as u8)).collect::<Vec<_>>().into();
            p.a.mux.send(*ch as u8 * 3, payload.clone()).unwrap();
            sent[*ch].push(payload);
        }
        p.b.drain = false;
        let mut steps = 0;
        loop {
            let moved = p.step();
            steps += 1;
            if steps % drain_every == 0 || !moved {
                p.b.drain_events();
            }
            if !moved && !p.step() {
                break;
            }
            prop_assert!(steps < 200_000);
        }
        prop_assert_eq!(&p.a.error, &None);
        prop_assert_eq!(&p.b.error, &None);
        let got = p.b.messages();
        for (ch, want) in sent.iter().enumerate() {
            let on: Vec<Bytes> = got.iter().filter(|(c, _)| *c == ch as u8 * 3).map(|(_, b)| b.clone()).collect();
            prop_assert_eq!(&on, want);
        }
    }
}
