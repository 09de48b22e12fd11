//! Request/response: round trip, deadlines, cancellation, unknown ids and limits.

use std::time::Duration;

use bytes::Bytes;

use super::pair::{Pair, config, hello, outgoing_frames, record};
use crate::proto::native::frame::{
    DATA_END, DATA_REQUEST, DATA_RESPONSE, DATA_START, DataFrame, Frame,
};
use crate::proto::native::{
    MessageKind, Mux, MuxError, MuxEvent, MuxQueueError, NativeConfig, RequestId, ResetCode,
};

fn requests_in(events: &[MuxEvent]) -> Vec<(RequestId, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            MuxEvent::Message {
                kind: MessageKind::Request(id),
                payload,
                ..
            } => Some((*id, payload.clone())),
            _ => None,
        })
        .collect()
}

fn responses_in(events: &[MuxEvent]) -> Vec<(RequestId, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            MuxEvent::Message {
                kind: MessageKind::Response(id),
                payload,
                ..
            } => Some((*id, payload.clone())),
            _ => None,
        })
        .collect()
}

fn pair() -> Pair {
    Pair::new(
        config(&[(0x20, 1), (0x21, 1)]),
        config(&[(0x20, 1), (0x21, 1)]),
    )
}

#[test]
fn round_trip_both_ways_and_large() {
    let mut p = pair();
    let deadline = p.now + Duration::from_secs(10);
    let id =
        p.a.mux
            .request(0x20, Bytes::from_static(b"what time is it"), deadline)
            .unwrap();
    let big = Bytes::from(vec![3u8; 200_000]);
    let id2 = p.b.mux.request(0x21, big.clone(), deadline).unwrap();
    p.drive();
    let (rid, q) = requests_in(&p.b.events).pop().unwrap();
    assert_eq!(&q[..], b"what time is it");
    p.b.mux
        .respond(0x20, rid, Bytes::from_static(b"noon"))
        .unwrap();
    // Answered once only.
    assert_eq!(
        p.b.mux.respond(0x20, rid, Bytes::new()),
        Err(MuxQueueError::UnknownRequest(rid))
    );
    let (rid2, q2) = requests_in(&p.a.events).pop().unwrap();
    assert_eq!(q2, big);
    assert_eq!(
        p.a.mux.respond(0x20, rid2, Bytes::new()),
        Err(MuxQueueError::UnknownRequest(rid2))
    );
    p.a.mux.respond(0x21, rid2, big.clone()).unwrap();
    p.drive();
    assert_eq!(
        responses_in(&p.a.events),
        vec![(id, Bytes::from_static(b"noon"))]
    );
    assert_eq!(responses_in(&p.b.events), vec![(id2, big)]);
    // No timeout fires for answered requests.
    p.advance(Duration::from_secs(11));
    assert!(
        !p.a.events
            .iter()
            .chain(&p.b.events)
            .any(|e| matches!(e, MuxEvent::RequestTimedOut(_)))
    );
}

#[test]
fn timeout_cancels_at_the_peer_and_a_late_response_is_dropped_and_counted() {
    let mut p = pair();
    let id =
        p.a.mux
            .request(
                0x20,
                Bytes::from_static(b"q"),
                p.now + Duration::from_secs(1),
            )
            .unwrap();
    p.drive();
    let (rid, _) = requests_in(&p.b.events).pop().unwrap();
    // b answers, but a gives up before the answer arrives.
    p.b.mux
        .respond(0x20, rid, Bytes::from_static(b"late"))
        .unwrap();
    p.now += Duration::from_secs(2);
    p.a.mux.handle_timeout(p.now).unwrap();
    p.drive();
    assert!(p.a.events.contains(&MuxEvent::RequestTimedOut(id)));
    assert!(responses_in(&p.a.events).is_empty());
    assert_eq!(p.a.mux.stats().unknown_responses, 1);
    assert_eq!(p.a.mux.stats().requests_timed_out, 1);
    // b had already answered, so the CANCEL names nothing it holds.
    assert_eq!(p.b.mux.stats().unknown_cancels, 1);
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
}

#[test]
fn timeout_while_the_peer_holds_the_request_tells_the_peer() {
    let mut p = pair();
    let id =
        p.a.mux
            .request(
                0x20,
                Bytes::from_static(b"q"),
                p.now + Duration::from_secs(1),
            )
            .unwrap();
    p.drive();
    let (rid, _) = requests_in(&p.b.events).pop().unwrap();
    p.advance(Duration::from_secs(2));
    assert!(p.a.events.contains(&MuxEvent::RequestTimedOut(id)));
    assert!(p.b.events.contains(&MuxEvent::Cancelled(rid)));
    assert_eq!(
        p.b.mux.respond(0x20, rid, Bytes::new()),
        Err(MuxQueueError::UnknownRequest(rid))
    );
}

#[test]
fn cancel_in_each_state() {
    let mut p = pair();
    let far = p.now + Duration::from_secs(60);
    // Queued (before HELLO): never reaches the wire.
    let queued =
        p.a.mux
            .request(0x20, Bytes::from_static(b"never"), far)
            .unwrap();
    assert!(p.a.mux.cancel(queued));
    assert!(!p.a.mux.cancel(queued));
    p.drive();
    assert!(requests_in(&p.b.events).is_empty());
    // Sent: the peer learns of it.
    let sent =
        p.a.mux
            .request(0x20, Bytes::from_static(b"sent"), far)
            .unwrap();
    p.drive();
    assert!(p.a.mux.cancel(sent));
    p.drive();
    let (rid, _) = requests_in(&p.b.events).pop().unwrap();
    assert!(p.b.events.contains(&MuxEvent::Cancelled(rid)));
    // Half sent: the rest goes out, then CANCEL.
    p.max_record = 4096;
    let sending =
        p.a.mux
            .request(0x21, Bytes::from(vec![1u8; 50_000]), far)
            .unwrap();
    assert!(p.step());
    assert!(p.a.mux.cancel(sending));
    p.drive();
    let (rid2, q) = requests_in(&p.b.events).pop().unwrap();
    assert_eq!(q.len(), 50_000);
    assert!(p.b.events.contains(&MuxEvent::Cancelled(rid2)));
    assert_eq!(p.b.mux.stats().requests_cancelled_by_peer, 2);
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
}

#[test]
fn cancel_before_the_application_takes_the_request_drops_it() {
    let mut p = pair();
    let far = p.now + Duration::from_secs(60);
    p.drive();
    p.b.drain = false;
    let id =
        p.a.mux
            .request(0x20, Bytes::from_static(b"x"), far)
            .unwrap();
    p.drive();
    p.a.mux.cancel(id);
    p.drive();
    p.b.drain_events();
    assert!(requests_in(&p.b.events).is_empty());
    assert!(
        !p.b.events
            .iter()
            .any(|e| matches!(e, MuxEvent::Cancelled(_)))
    );
    assert_eq!(p.b.mux.stats().dropped_incoming, 1);
}

#[test]
fn the_peers_inflight_limit_paces_requests() {
    let ca = config(&[(0x20, 1)]);
    let mut cb = config(&[(0x20, 1)]);
    cb.max_inflight_requests = 1;
    let mut p = Pair::new(ca, cb);
    let far = p.now + Duration::from_secs(60);
    let ids: Vec<_> = (0..3u8)
        .map(|i| p.a.mux.request(0x20, Bytes::from(vec![i]), far).unwrap())
        .collect();
    // A plain message behind them waits too: a channel stays in order.
    p.a.mux.send(0x20, Bytes::from_static(b"after")).unwrap();
    p.drive();
    for (k, id) in ids.iter().enumerate() {
        let reqs = requests_in(&p.b.events);
        assert_eq!(reqs.len(), k + 1);
        let (rid, _) = reqs[k].clone();
        p.b.mux.respond(0x20, rid, Bytes::new()).unwrap();
        p.drive();
        assert_eq!(responses_in(&p.a.events).last().unwrap().0, *id);
    }
    assert_eq!(
        p.b.messages().last().unwrap().1,
        Bytes::from_static(b"after")
    );
    assert_eq!(p.b.error, None);
}

#[test]
fn local_inflight_limit() {
    let mut ca = config(&[(0x20, 1)]);
    ca.max_inflight_requests = 2;
    let mut p = Pair::new(ca, config(&[(0x20, 1)]));
    let far = p.now + Duration::from_secs(60);
    p.a.mux.request(0x20, Bytes::new(), far).unwrap();
    let b = p.a.mux.request(0x20, Bytes::new(), far).unwrap();
    assert_eq!(
        p.a.mux.request(0x20, Bytes::new(), far),
        Err(MuxQueueError::TooManyRequests)
    );
    p.a.mux.cancel(b);
    p.a.mux.request(0x20, Bytes::new(), far).unwrap();
}

fn scripted(cfg: NativeConfig) -> (Mux, std::time::Instant) {
    let now = std::time::Instant::now();
    let mut m = Mux::new(cfg, now).unwrap();
    let h = hello(&[(0x20, 1 << 20, 1 << 20), (0x21, 1 << 20, 1 << 20)]);
    m.handle_record(now, &record(&[Frame::Hello(h)])).unwrap();
    (m, now)
}

fn req(channel: u8, flags: u8, id: u64, chunk: &[u8]) -> Frame<'_> {
    Frame::Data(DataFrame {
        channel,
        flags,
        request_id: Some(id),
        chunk,
    })
}

const ONE: u8 = DATA_START | DATA_END;

#[test]
fn unknown_response_is_dropped_and_counted() {
    let (mut m, now) = scripted(config(&[(0x20, 1)]));
    m.handle_record(now, &record(&[req(0x20, ONE | DATA_RESPONSE, 99, b"?")]))
        .unwrap();
    // Multi-chunk unknown responses are dropped whole, and their credit returned.
    m.handle_record(
        now,
        &record(&[req(0x20, DATA_START | DATA_RESPONSE, 98, &[0; 500])]),
    )
    .unwrap();
    m.handle_record(
        now,
        &record(&[req(0x20, DATA_END | DATA_RESPONSE, 98, &[0; 500])]),
    )
    .unwrap();
    assert_eq!(m.stats().unknown_responses, 2);
    let events: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert_eq!(events.len(), 1, "{events:?}"); // the HELLO only
}

#[test]
fn request_flood_beyond_the_limit_resets() {
    let mut c = config(&[(0x20, 1)]);
    c.max_inflight_requests = 2;
    let (mut m, now) = scripted(c);
    m.handle_record(
        now,
        &record(&[
            req(0x20, ONE | DATA_REQUEST, 1, b"a"),
            req(0x20, ONE | DATA_REQUEST, 2, b"b"),
        ]),
    )
    .unwrap();
    assert_eq!(
        m.handle_record(now, &record(&[req(0x20, ONE | DATA_REQUEST, 3, b"c")])),
        Err(MuxError::RequestLimit(2))
    );
    let frames = outgoing_frames(&mut m, now);
    assert!(
        frames
            .last()
            .unwrap()
            .starts_with(&format!("Reset {{ code: {}", ResetCode::REQUEST_LIMIT.0)),
        "{frames:?}"
    );
}

#[test]
fn duplicate_request_id_and_response_on_the_wrong_channel() {
    let (mut m, now) = scripted(config(&[(0x20, 1), (0x21, 1)]));
    m.handle_record(now, &record(&[req(0x20, ONE | DATA_REQUEST, 7, b"a")]))
        .unwrap();
    assert_eq!(
        m.handle_record(now, &record(&[req(0x21, ONE | DATA_REQUEST, 7, b"b")])),
        Err(MuxError::DuplicateRequestId(7))
    );
    let (mut m, now) = scripted(config(&[(0x20, 1), (0x21, 1)]));
    let id = m
        .request(0x20, Bytes::from_static(b"q"), now + Duration::from_secs(5))
        .unwrap();
    outgoing_frames(&mut m, now);
    assert_eq!(
        m.handle_record(now, &record(&[req(0x21, ONE | DATA_RESPONSE, id.0, b"r")])),
        Err(MuxError::ResponseChannelMismatch {
            id: id.0,
            got: 0x21,
            expected: 0x20
        })
    );
}

#[test]
fn a_cancelled_request_counts_until_its_cancel_is_written() {
    // The peer allows one request in flight. Request 1 is cancelled while its chunks go out;
    // request 2 must not start before the CANCEL of request 1, or the peer would see two.
    let ca = config(&[(0x20, 1), (0x21, 1)]);
    let mut cb = config(&[(0x20, 1), (0x21, 1)]);
    cb.max_inflight_requests = 1;
    let mut p = Pair::new(ca, cb);
    p.drive();
    p.max_record = 4096;
    let far = p.now + Duration::from_secs(60);
    let first =
        p.a.mux
            .request(0x20, Bytes::from(vec![1u8; 20_000]), far)
            .unwrap();
    assert!(p.step());
    assert!(p.a.mux.cancel(first));
    let second =
        p.a.mux
            .request(0x21, Bytes::from_static(b"two"), far)
            .unwrap();
    p.drive();
    assert_eq!(p.b.error, None);
    let reqs = requests_in(&p.b.events);
    assert_eq!(reqs.len(), 2);
    p.b.mux
        .respond(0x21, reqs[1].0, Bytes::from_static(b"ok"))
        .unwrap();
    p.drive();
    assert_eq!(
        responses_in(&p.a.events),
        vec![(second, Bytes::from_static(b"ok"))]
    );
}
