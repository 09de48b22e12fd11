//! Delivery deadlines: a message's time-to-live on the wire, the sender's and the receiver's
//! drops, and peers that do not take TTLs.

use std::time::Duration;

use bytes::Bytes;

use super::pair::{Pair, config, hello, outgoing_frames, record};
use crate::proto::native::frame::{
    DATA_END, DATA_REQUEST, DATA_START, DATA_TTL, DataFrame, FEATURE_DEADLINE, Frame,
};
use crate::proto::native::{Mux, MuxEvent};

fn pair() -> Pair {
    Pair::new(
        config(&[(0x20, 1), (0x21, 1)]),
        config(&[(0x20, 1), (0x21, 1)]),
    )
}

#[test]
fn a_message_within_its_deadline_is_delivered_with_its_ttl_on_the_wire() {
    let now = std::time::Instant::now();
    let mut m = Mux::new(config(&[(0x20, 1)]), now).unwrap();
    let mut h = hello(&[(0x20, 1 << 20, 1 << 20)]);
    h.features = FEATURE_DEADLINE;
    m.handle_record(now, &record(&[Frame::Hello(h)])).unwrap();
    m.send_by(
        0x20,
        Bytes::from_static(b"vote"),
        Some(now + Duration::from_millis(300)),
    )
    .unwrap();
    m.send(0x20, Bytes::from_static(b"part")).unwrap();
    let frames = outgoing_frames(&mut m, now + Duration::from_millis(100));
    let data: Vec<_> = frames.iter().filter(|f| f.starts_with("Data")).collect();
    assert_eq!(data.len(), 2, "{frames:?}");
    assert!(
        data[0].contains(&format!(
            "flags: {}, ttl_ms: Some(200)",
            DATA_START | DATA_END | DATA_TTL
        )),
        "{}",
        data[0]
    );
    assert!(data[1].contains("ttl_ms: None"), "{}", data[1]);
}

#[test]
fn a_peer_without_the_feature_gets_no_ttl_but_the_sender_still_drops() {
    let now = std::time::Instant::now();
    let mut m = Mux::new(config(&[(0x20, 1)]), now).unwrap();
    m.handle_record(
        now,
        &record(&[Frame::Hello(hello(&[(0x20, 1 << 20, 1 << 20)]))]),
    )
    .unwrap();
    let by = now + Duration::from_millis(50);
    m.send_by(0x20, Bytes::from_static(b"fresh"), Some(by))
        .unwrap();
    let frames = outgoing_frames(&mut m, now);
    assert!(
        frames
            .iter()
            .any(|f| f.contains("ttl_ms: None") && f.contains("flags: 3,"))
    );
    assert!(
        !frames.iter().any(|f| f.contains("ttl_ms: Some")),
        "{frames:?}"
    );
    m.send_by(0x20, Bytes::from_static(b"stale"), Some(by))
        .unwrap();
    let frames = outgoing_frames(&mut m, by);
    assert!(!frames.iter().any(|f| f.starts_with("Data")), "{frames:?}");
    assert_eq!(m.stats().expired_before_send, 1);
}

#[test]
fn the_sender_drops_what_expired_while_queued() {
    let mut p = pair();
    p.drive();
    let now = p.now;
    p.a.mux
        .send_by(
            0x20,
            Bytes::from_static(b"old"),
            Some(now + Duration::from_millis(10)),
        )
        .unwrap();
    p.a.mux
        .send_by(
            0x20,
            Bytes::from_static(b"new"),
            Some(now + Duration::from_secs(10)),
        )
        .unwrap();
    p.a.mux.send(0x21, Bytes::from_static(b"none")).unwrap();
    p.now += Duration::from_millis(10);
    p.drive();
    let got: Vec<_> = p.b.messages().into_iter().map(|(_, m)| m).collect();
    assert_eq!(
        got,
        vec![Bytes::from_static(b"new"), Bytes::from_static(b"none")]
    );
    assert_eq!(p.a.mux.stats().expired_before_send, 1);
    assert_eq!(p.b.mux.stats().expired_before_delivery, 0);
}

#[test]
fn the_receiver_drops_what_expired_before_the_application_took_it() {
    let mut p = pair();
    p.drive();
    p.b.drain = false;
    let now = p.now;
    p.a.mux
        .send_by(
            0x20,
            Bytes::from_static(b"short"),
            Some(now + Duration::from_millis(20)),
        )
        .unwrap();
    p.a.mux
        .send_by(
            0x20,
            Bytes::from_static(b"long"),
            Some(now + Duration::from_secs(5)),
        )
        .unwrap();
    // A large message over several chunks, with a deadline.
    let big = Bytes::from(vec![7u8; 200_000]);
    p.a.mux
        .send_by(0x21, big.clone(), Some(now + Duration::from_millis(20)))
        .unwrap();
    p.drive();
    assert_eq!(p.a.mux.stats().expired_before_send, 0);
    // The application comes back late: the short-lived messages are gone, counted.
    p.now += Duration::from_millis(25);
    p.b.mux.set_now(p.now);
    p.b.drain_events();
    let got: Vec<_> = p.b.messages().into_iter().map(|(_, m)| m).collect();
    assert_eq!(got, vec![Bytes::from_static(b"long")]);
    assert_eq!(p.b.mux.stats().expired_before_delivery, 2);
    // Their credit came back: the channel still carries messages.
    p.b.drain = true;
    p.a.mux.send(0x21, big.clone()).unwrap();
    p.drive();
    assert_eq!(p.b.messages().last().map(|(_, m)| m.clone()), Some(big));
}

#[test]
fn requests_travel_without_ttl_and_a_ttl_on_a_request_is_ignored() {
    // Our requests carry no TTL: their deadline is the requester's timeout and CANCEL.
    let now = std::time::Instant::now();
    let mut m = Mux::new(config(&[(0x20, 1)]), now).unwrap();
    let mut h = hello(&[(0x20, 1 << 20, 1 << 20)]);
    h.features = FEATURE_DEADLINE;
    m.handle_record(now, &record(&[Frame::Hello(h)])).unwrap();
    m.request(0x20, Bytes::from_static(b"q"), now + Duration::from_secs(5))
        .unwrap();
    let frames = outgoing_frames(&mut m, now);
    let data: Vec<_> = frames.iter().filter(|f| f.starts_with("Data")).collect();
    assert_eq!(data.len(), 1, "{frames:?}");
    assert!(data[0].contains("ttl_ms: None"), "{}", data[0]);
    // A peer's request with an expired TTL is still handed to the application.
    let req = Frame::Data(DataFrame {
        channel: 0x20,
        flags: DATA_START | DATA_END | DATA_TTL | DATA_REQUEST,
        ttl_ms: Some(0),
        request_id: Some(1),
        chunk: b"late",
    });
    m.handle_record(now, &record(&[req])).unwrap();
    m.set_now(now + Duration::from_secs(1));
    let got: Vec<_> = std::iter::from_fn(|| m.poll_event())
        .filter(|e| matches!(e, MuxEvent::Message { .. }))
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(m.stats().expired_before_delivery, 0);
}

#[test]
fn a_full_queue_sheds_its_expired_messages_first() {
    let mut cfg = config(&[(0x20, 1)]);
    cfg.channels[0].send_queue_capacity = 2;
    let now = std::time::Instant::now();
    let mut m = Mux::new(cfg, now).unwrap();
    m.send_by(
        0x20,
        Bytes::from_static(b"a"),
        Some(now + Duration::from_millis(5)),
    )
    .unwrap();
    m.send(0x20, Bytes::from_static(b"b")).unwrap();
    assert!(m.send(0x20, Bytes::from_static(b"c")).is_err(), "full");
    m.set_now(now + Duration::from_millis(5));
    m.send(0x20, Bytes::from_static(b"c")).unwrap();
    assert_eq!(m.stats().expired_before_send, 1);
    assert!(
        m.send(0x20, Bytes::from_static(b"d")).is_err(),
        "full of live messages"
    );
}

#[test]
fn a_ttl_from_a_scripted_peer_is_honoured() {
    let now = std::time::Instant::now();
    let mut m = Mux::new(config(&[(0x20, 1)]), now).unwrap();
    m.handle_record(
        now,
        &record(&[Frame::Hello(hello(&[(0x20, 1 << 20, 1 << 20)]))]),
    )
    .unwrap();
    let data = |ttl_ms, chunk| {
        Frame::Data(DataFrame {
            channel: 0x20,
            flags: DATA_START | DATA_END | DATA_TTL,
            ttl_ms: Some(ttl_ms),
            request_id: None,
            chunk,
        })
    };
    m.handle_record(now, &record(&[data(0, b"dead"), data(1000, b"live")]))
        .unwrap();
    let got: Vec<_> = std::iter::from_fn(|| m.poll_event())
        .filter(|e| matches!(e, MuxEvent::Message { .. }))
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(m.stats().expired_before_delivery, 1);
}
