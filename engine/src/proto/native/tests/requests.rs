//! Request/response: round trip, deadlines, cancellation, unknown ids and limits.

use std::time::Duration;

use bytes::Bytes;

use super::pair::{Pair, config, hello, outgoing_frames, record};
use crate::proto::native::frame::{
    DATA_END, DATA_REQUEST, DATA_RESPONSE, DATA_START, DataFrame, FEATURE_CANCEL_ACK, Frame,
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
    // The answer that crossed the CANCEL is what frees the request's place at a.
    assert_eq!(p.a.mux.stats().cancel_acks_in, 1);
    assert_eq!(p.a.mux.stats().unknown_responses, 0);
    assert_eq!(p.a.mux.stats().dropped_incoming, 1);
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
    // The answer is not sent: an empty response acknowledges the CANCEL instead.
    p.b.mux
        .respond(0x20, rid, Bytes::from_static(b"unwanted"))
        .unwrap();
    assert_eq!(
        p.b.mux.respond(0x20, rid, Bytes::new()),
        Err(MuxQueueError::UnknownRequest(rid))
    );
    p.drive();
    assert_eq!(p.b.mux.stats().cancel_acks_out, 1);
    assert_eq!(p.a.mux.stats().cancel_acks_in, 1);
    assert!(responses_in(&p.a.events).is_empty());
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
    scripted_with(cfg, 0, 4)
}

/// A multiplexer that has read a scripted peer's HELLO with `features` and `max_inflight`.
fn scripted_with(cfg: NativeConfig, features: u32, max_inflight: u32) -> (Mux, std::time::Instant) {
    let now = std::time::Instant::now();
    let mut m = Mux::new(cfg, now).unwrap();
    let mut h = hello(&[(0x20, 1 << 20, 1 << 20), (0x21, 1 << 20, 1 << 20)]);
    h.features = features;
    h.max_inflight_requests = max_inflight;
    m.handle_record(now, &record(&[Frame::Hello(h)])).unwrap();
    (m, now)
}

fn req(channel: u8, flags: u8, id: u64, chunk: &[u8]) -> Frame<'_> {
    Frame::Data(DataFrame {
        ttl_ms: None,
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
fn a_cancelled_request_counts_until_the_peer_acknowledges_it() {
    // The peer allows one request in flight. Request 1 is cancelled while its chunks go out;
    // request 2 must not start while the peer's application still holds request 1, or the
    // peer would see two.
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
    assert_eq!(reqs.len(), 1, "request 2 waits while b works on request 1");
    assert!(p.b.events.contains(&MuxEvent::Cancelled(reqs[0].0)));
    // b's application gives request 1 up: the acknowledgement lets request 2 start.
    assert!(p.b.mux.finish_request(reqs[0].0));
    p.drive();
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
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
}

#[test]
fn without_acknowledgements_a_cancelled_request_counts_until_its_cancel_is_written() {
    // A peer that does not set FEATURE_CANCEL_ACK frees a place when it reads the CANCEL.
    let (mut m, now) = scripted_with(config(&[(0x20, 1)]), 0, 1);
    let far = now + Duration::from_secs(60);
    let first = m.request(0x20, Bytes::from_static(b"1"), far).unwrap();
    let second = m.request(0x20, Bytes::from_static(b"2"), far).unwrap();
    let frames = outgoing_frames(&mut m, now).join("\n");
    assert!(frames.contains("request_id: Some(1)"), "{frames}");
    assert!(!frames.contains("request_id: Some(2)"), "{frames}");
    assert!(m.cancel(first));
    let frames = outgoing_frames(&mut m, now);
    assert_eq!(frames[0], "Cancel(1)");
    assert!(
        frames[1].contains(&format!("request_id: Some({})", second.0)),
        "{frames:?}"
    );
}

#[test]
fn cancelled_requests_hold_their_places_until_the_application_is_done() {
    // "Rapid reset": request + CANCEL pairs must not free places while the application still
    // works on the requests, or a peer could keep it busy without bound.
    let mut c = config(&[(0x20, 1)]);
    c.max_inflight_requests = 2;
    let pairs = |m: &mut Mux, now| {
        for id in [1, 2] {
            m.handle_record(now, &record(&[req(0x20, ONE | DATA_REQUEST, id, b"work")]))
                .unwrap();
            // The application takes the request, then the peer cancels it.
            let taken: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
            assert_eq!(requests_in(&taken).len(), 1);
            m.handle_record(now, &record(&[Frame::Cancel(id)])).unwrap();
            let told: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
            assert_eq!(told, vec![MuxEvent::Cancelled(RequestId(id))]);
        }
    };
    // While the application holds both, a third request is one too many.
    let (mut m, now) = scripted_with(c.clone(), FEATURE_CANCEL_ACK, 4);
    pairs(&mut m, now);
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
    // Once the application is done (it drops one, answers the other), new requests are
    // accepted, and the peer learns of each freed place from an empty response.
    let (mut m, now) = scripted_with(c, FEATURE_CANCEL_ACK, 4);
    pairs(&mut m, now);
    outgoing_frames(&mut m, now);
    assert!(m.finish_request(RequestId(1)));
    m.respond(0x20, RequestId(2), Bytes::from_static(b"unwanted"))
        .unwrap();
    let frames = outgoing_frames(&mut m, now);
    assert_eq!(frames.len(), 2, "{frames:?}");
    for (f, id) in frames.iter().zip([1, 2]) {
        assert!(
            f.contains(&format!("request_id: Some({id}), chunk: []")),
            "{f}"
        );
    }
    assert_eq!(m.stats().cancel_acks_out, 2);
    m.handle_record(
        now,
        &record(&[
            req(0x20, ONE | DATA_REQUEST, 3, b"c"),
            req(0x20, ONE | DATA_REQUEST, 4, b"d"),
        ]),
    )
    .unwrap();
    let taken: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert_eq!(requests_in(&taken).len(), 2);
}

#[test]
fn a_request_the_application_drops_unanswered_counts_until_the_peer_cancels_it() {
    // The peer still waits for an answer (until its deadline), so it still counts the request.
    let mut c = config(&[(0x20, 1)]);
    c.max_inflight_requests = 1;
    let dropped = |c: &NativeConfig| {
        let (mut m, now) = scripted_with(c.clone(), FEATURE_CANCEL_ACK, 4);
        m.handle_record(now, &record(&[req(0x20, ONE | DATA_REQUEST, 1, b"a")]))
            .unwrap();
        while m.poll_event().is_some() {}
        assert!(m.finish_request(RequestId(1)));
        assert!(!m.finish_request(RequestId(1)), "once");
        (m, now)
    };
    let (mut m, now) = dropped(&c);
    assert_eq!(
        m.handle_record(now, &record(&[req(0x20, ONE | DATA_REQUEST, 2, b"b")])),
        Err(MuxError::RequestLimit(1))
    );
    // The peer's CANCEL (at its deadline) frees the place at once, acknowledged.
    let (mut m, now) = dropped(&c);
    m.handle_record(now, &record(&[Frame::Cancel(1)])).unwrap();
    let frames = outgoing_frames(&mut m, now);
    assert!(
        frames
            .iter()
            .any(|f| f.contains("request_id: Some(1), chunk: []")),
        "{frames:?}"
    );
    m.handle_record(now, &record(&[req(0x20, ONE | DATA_REQUEST, 2, b"b")]))
        .unwrap();
    let taken: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert_eq!(
        requests_in(&taken),
        vec![(RequestId(2), Bytes::from_static(b"b"))]
    );
}

/// A mux whose peer may have one request in flight and whose receive queue holds one message
/// (so a second waits held), its HELLO exchange done.
fn one_request_one_message() -> (Mux, std::time::Instant) {
    let mut c = config(&[(0x20, 1), (0x21, 1)]);
    c.max_inflight_requests = 1;
    c.recv_queue_capacity = 1;
    let (mut m, now) = scripted_with(c, FEATURE_CANCEL_ACK, 4);
    while m.poll_event().is_some() {}
    (m, now)
}

/// A plain message on channel 0x21: fills a queue of one.
fn queue_filler() -> Frame<'static> {
    Frame::Data(DataFrame {
        ttl_ms: None,
        channel: 0x21,
        flags: ONE,
        request_id: None,
        chunk: b"fills the queue",
    })
}

/// Request `id` arrives and is delivered: the peer's one request place is free.
fn next_request_comes_in(m: &mut Mux, now: std::time::Instant, id: u64) {
    m.handle_record(now, &record(&[req(0x20, ONE | DATA_REQUEST, id, b"next")]))
        .unwrap();
    let taken: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert_eq!(
        requests_in(&taken),
        vec![(RequestId(id), Bytes::from_static(b"next"))]
    );
}

#[test]
fn a_cancel_behind_the_held_last_chunk_of_its_request_waits_for_it() {
    // Found by the mux_model fuzz target (fuzz/findings/mux_model-request-slot-not-returned).
    // With the receive queue full, a request's last chunk is held; its CANCEL, arriving
    // behind it, must wait behind it too. Handled at once, it found the request incomplete
    // and was ignored; the request was then delivered, and once its application let it go
    // unanswered, its place was taken for good at both ends (here: the next request would
    // be one too many).
    let (mut m, now) = one_request_one_message();
    m.handle_record(
        now,
        &record(&[req(0x20, DATA_START | DATA_REQUEST, 1, b"first ")]),
    )
    .unwrap();
    m.handle_record(now, &record(&[queue_filler()])).unwrap();
    m.handle_record(
        now,
        &record(&[
            req(0x20, DATA_END | DATA_REQUEST, 1, b"last"),
            Frame::Cancel(1),
        ]),
    )
    .unwrap();
    // A message on another channel fills the queue between the request's chunks. Taken up
    // in order once the application takes the message, the request completes and its CANCEL
    // then drops it before the application has it (as for any request cancelled before it
    // is taken), and its place is free again.
    let events: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(requests_in(&events).is_empty(), "{events:?}");
    assert!(
        !events.iter().any(|e| matches!(e, MuxEvent::Cancelled(_))),
        "{events:?}"
    );
    assert_eq!(events.len(), 1, "the message only: {events:?}");
    assert!(!m.finish_request(RequestId(1)), "nothing left to finish");
    next_request_comes_in(&mut m, now, 2);
}

#[test]
fn a_stale_cancel_behind_held_frames_is_taken_up_at_once_and_leaves_room_for_a_live_one() {
    // Found by the mux_model fuzz target (fuzz/findings/mux_model-stale-cancel-held). A
    // CANCEL whose request already ended here (its answer crossed the CANCEL) used to wait
    // behind held frames like one for a request not yet taken up, and took one of the
    // `max_inflight_requests` places for held CANCELs. The peer, its place freed by the
    // answer, may then have a new request held here and cancel it: that CANCEL found no room,
    // was dropped, and the new request, delivered and let go, kept its place at both ends for
    // good. A CANCEL waits now only for a request with chunks among the held frames.
    let (mut m, now) = one_request_one_message();
    // Request 1 arrives and is answered.
    m.handle_record(now, &record(&[req(0x20, ONE | DATA_REQUEST, 1, b"first")]))
        .unwrap();
    let first: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert_eq!(requests_in(&first).len(), 1, "{first:?}");
    m.respond(0x20, RequestId(1), Bytes::from_static(b"answer"))
        .unwrap();
    // A message fills the queue; request 2 is held behind it; then the peer's CANCEL of
    // request 1 (sent before our answer reached it) and its CANCEL of request 2.
    m.handle_record(now, &record(&[queue_filler()])).unwrap();
    m.handle_record(
        now,
        &record(&[
            req(0x20, ONE | DATA_REQUEST, 2, b"second"),
            Frame::Cancel(1),
            Frame::Cancel(2),
        ]),
    )
    .unwrap();
    // The application takes the message: request 2 is taken up, and its CANCEL after it
    // drops it before the application has it.
    let events: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(requests_in(&events).is_empty(), "{events:?}");
    assert_eq!(events.len(), 1, "the message only: {events:?}");
    assert!(!m.finish_request(RequestId(2)), "nothing left to finish");
    // Its place is free: the next request comes in.
    next_request_comes_in(&mut m, now, 3);
}
