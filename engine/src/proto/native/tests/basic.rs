//! HELLO exchange, delivery on many channels, priority, zero-copy and send errors.

use bytes::Bytes;

use super::pair::{Pair, chan, config, outgoing};
use crate::proto::native::{DropReason, MessageKind, Mux, MuxEvent, MuxQueueError, NativeConfig};

fn payload(channel: u8, index: usize, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ channel ^ (index as u8))
        .collect::<Vec<u8>>()
        .into()
}

#[test]
fn hello_exchange_carries_capabilities() {
    let mut ca = config(&[(0x20, 1)]);
    ca.capabilities = vec!["archive".into(), "statesync".into()];
    let mut cb = config(&[(0x20, 1)]);
    cb.capabilities = vec!["light".into()];
    let mut p = Pair::new(ca, cb);
    p.drive();
    assert_eq!(
        p.a.events,
        vec![MuxEvent::Hello {
            version: 1,
            capabilities: vec!["light".into()]
        }]
    );
    assert_eq!(
        p.b.events,
        vec![MuxEvent::Hello {
            version: 1,
            capabilities: vec!["archive".into(), "statesync".into()]
        }]
    );
    assert_eq!(p.a.mux.version(), Some(1));
    assert_eq!(p.a.mux.peer_hello().unwrap().channels[0].id, 0x20);
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
}

#[test]
fn ten_channels_every_size_up_to_the_cap() {
    const CAP: usize = 200_000;
    let mk = || {
        let mut c = NativeConfig::with_channels(
            (0..10u8)
                .map(|i| {
                    let mut ch = chan(0x10 + i, u32::from(i) + 1);
                    ch.recv_message_capacity = CAP;
                    ch.send_queue_capacity = 32;
                    ch.initial_window = 100_000;
                    ch
                })
                .collect(),
        );
        c.recv_queue_capacity = 10_000;
        c
    };
    let sizes = [
        0usize,
        1,
        2,
        100,
        16_383,
        16_384,
        16_385,
        65_536,
        100_001,
        CAP - 1,
        CAP,
    ];
    let mut p = Pair::new(mk(), mk());
    // Queued before either HELLO arrived: sent once it does.
    for i in 0..10u8 {
        for (k, &len) in sizes.iter().enumerate() {
            p.a.mux.send(0x10 + i, payload(0x10 + i, k, len)).unwrap();
            p.b.mux
                .send(0x10 + i, payload(0x10 + i, k + 1, len))
                .unwrap();
        }
    }
    p.drive();
    for (side, offset) in [(&p.b, 0), (&p.a, 1)] {
        let got = side.messages();
        assert_eq!(got.len(), 10 * sizes.len());
        for i in 0..10u8 {
            let on: Vec<_> = got
                .iter()
                .filter(|(c, _)| *c == 0x10 + i)
                .map(|(_, b)| b)
                .collect();
            for (k, &len) in sizes.iter().enumerate() {
                assert_eq!(
                    on[k],
                    &payload(0x10 + i, k + offset, len),
                    "channel {i} size {len}"
                );
            }
        }
    }
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
}

#[test]
fn high_priority_message_overtakes_a_16_mib_one() {
    let mk = || {
        let mut low = chan(0x40, 1);
        low.recv_message_capacity = 32 << 20;
        let high = chan(0x20, 10);
        NativeConfig::with_channels(vec![low, high])
    };
    let mut p = Pair::new(mk(), mk());
    p.drive();
    let big = payload(0x40, 0, 16 << 20);
    p.a.mux.send(0x40, big.clone()).unwrap();
    assert!(p.step());
    p.a.mux.send(0x20, payload(0x20, 0, 256)).unwrap();
    assert!(p.step());
    // The very next record carried it: it waited behind at most one chunk.
    assert_eq!(p.b.messages(), vec![(0x20, payload(0x20, 0, 256))]);
    p.drive();
    let got = p.b.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], (0x40, big));
}

#[test]
fn a_high_priority_chunk_waits_behind_at_most_one_chunk_within_a_record() {
    // Two channels of equal priority alternate chunk by chunk.
    let mk = || config(&[(1, 1), (2, 1)]);
    let mut p = Pair::new(mk(), mk());
    p.drive();
    p.a.mux.send(1, payload(1, 0, 24 * 1024)).unwrap();
    p.a.mux.send(2, payload(2, 0, 24 * 1024)).unwrap();
    let recs = outgoing(&mut p.a.mux, p.now);
    let mut order = Vec::new();
    for r in &recs {
        for f in crate::proto::native::frame::FrameDecoder::new(r) {
            if let crate::proto::native::frame::Frame::Data(d) = f.unwrap() {
                order.push(d.channel);
            }
        }
    }
    assert_eq!(recs.len(), 1);
    assert_eq!(order, vec![1, 2, 1, 2]);
}

#[test]
fn single_chunk_messages_are_zero_copy_slices_of_the_record() {
    let now = std::time::Instant::now();
    let mut a = Mux::new(config(&[(0x20, 1)]), now).unwrap();
    let mut b = Mux::new(config(&[(0x20, 1)]), now).unwrap();
    for r in outgoing(&mut a, now) {
        b.handle_record(now, &r).unwrap();
    }
    for r in outgoing(&mut b, now) {
        a.handle_record(now, &r).unwrap();
    }
    a.send(0x20, Bytes::from_static(b"zero copy")).unwrap();
    let rec = Bytes::from(outgoing(&mut a, now).pop().unwrap());
    let range = rec.as_ptr() as usize..rec.as_ptr() as usize + rec.len();
    b.handle_record_bytes(now, rec.clone()).unwrap();
    let _hello = b.poll_event();
    let Some(MuxEvent::Message { payload, .. }) = b.poll_event() else {
        panic!()
    };
    assert_eq!(&payload[..], b"zero copy");
    assert!(range.contains(&(payload.as_ptr() as usize)));
}

#[test]
fn send_errors() {
    let mut small = chan(0x20, 1);
    small.recv_message_capacity = 100;
    small.send_queue_capacity = 2;
    let mut ca = NativeConfig::with_channels(vec![small, chan(0x21, 1), chan(0x22, 1)]);
    ca.max_inflight_requests = 1;
    let mut cb_small = chan(0x20, 1);
    cb_small.recv_message_capacity = 50;
    let cb = NativeConfig::with_channels(vec![cb_small, chan(0x21, 1)]);
    let mut p = Pair::new(ca, cb);
    let m = |n| Bytes::from(vec![0u8; n]);
    let far = p.now + std::time::Duration::from_secs(60);
    assert_eq!(
        p.a.mux.send(0x99, m(1)),
        Err(MuxQueueError::UnknownChannel(0x99))
    );
    // Before the peer's HELLO our own cap applies.
    assert_eq!(
        p.a.mux.send(0x20, m(101)),
        Err(MuxQueueError::TooLarge { len: 101, max: 100 })
    );
    p.a.mux.send(0x20, m(80)).unwrap();
    p.a.mux.send(0x20, m(10)).unwrap();
    assert_eq!(p.a.mux.send(0x20, m(1)), Err(MuxQueueError::Full));
    // Queued on a channel the peer turns out not to have.
    p.a.mux.send(0x22, m(1)).unwrap();
    let id = p.a.mux.request(0x22, m(1), far).unwrap();
    assert_eq!(
        p.a.mux.request(0x21, m(1), far),
        Err(MuxQueueError::TooManyRequests)
    );
    p.drive();
    // 80 > the peer's 50: dropped when the HELLO arrived; the 10-byte one went through.
    assert_eq!(p.b.messages(), vec![(0x20, m(10))]);
    assert!(p.a.events.contains(&MuxEvent::RequestFailed {
        id,
        reason: DropReason::PeerLacksChannel
    }));
    assert_eq!(p.a.mux.stats().dropped_outgoing, 3);
    assert_eq!(
        p.a.mux.send(0x22, m(1)),
        Err(MuxQueueError::UnknownChannel(0x22))
    );
    assert_eq!(
        p.a.mux.send(0x20, m(51)),
        Err(MuxQueueError::TooLarge { len: 51, max: 50 })
    );
    assert_eq!(
        p.a.mux
            .respond(0x20, crate::proto::native::RequestId(5), m(1)),
        Err(MuxQueueError::UnknownRequest(
            crate::proto::native::RequestId(5)
        ))
    );
    p.a.mux.close("done");
    assert_eq!(p.a.mux.send(0x20, m(1)), Err(MuxQueueError::Closed));
    assert_eq!(p.a.mux.request(0x20, m(1), far), Err(MuxQueueError::Closed));
    let _ = MessageKind::Plain;
}

#[test]
fn too_large_request_queued_before_hello_fails() {
    let ca = config(&[(0x20, 1)]);
    let mut small = chan(0x20, 1);
    small.recv_message_capacity = 10;
    let cb = NativeConfig::with_channels(vec![small]);
    let mut p = Pair::new(ca, cb);
    let far = p.now + std::time::Duration::from_secs(60);
    let id =
        p.a.mux
            .request(0x20, Bytes::from(vec![1u8; 11]), far)
            .unwrap();
    p.drive();
    assert!(p.a.events.contains(&MuxEvent::RequestFailed {
        id,
        reason: DropReason::TooLarge { len: 11, max: 10 }
    }));
    // No timeout fires later for it.
    p.advance(std::time::Duration::from_secs(61));
    assert!(
        !p.a.events
            .iter()
            .any(|e| matches!(e, MuxEvent::RequestTimedOut(_)))
    );
}

#[test]
fn small_record_budget_still_carries_hello_and_big_messages() {
    let mut p = Pair::new(config(&[(1, 1)]), config(&[(1, 1)]));
    p.max_record = 1; // raised to MIN_RECORD_BUDGET
    p.a.mux.send(1, payload(1, 0, 100_000)).unwrap();
    p.drive();
    assert_eq!(p.b.messages(), vec![(1, payload(1, 0, 100_000))]);
    assert!(p.records_ab > 100_000 / crate::proto::native::MIN_RECORD_BUDGET);
}
