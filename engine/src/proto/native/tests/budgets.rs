//! Per-peer budgets: control frames per second, bytes of partly received messages (per peer and
//! node-wide), and the bound on messages waiting for the application.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::pair::{Pair, hello, outgoing_frames, record};
use crate::proto::budget::{PartialBudget, PartialBudgetError};
use crate::proto::native::frame::{DATA_END, DATA_REQUEST, DATA_START, DataFrame, Frame};
use crate::proto::native::{Mux, MuxError, MuxEvent, NativeChannelConfig, NativeConfig, ResetCode};

const ONE: u8 = DATA_START | DATA_END;

fn config() -> NativeConfig {
    let channels = [0x20, 0x21]
        .into_iter()
        .map(|id| {
            let mut c = NativeChannelConfig::new(id, 1, 1 << 20);
            c.initial_window = 64 * 1024;
            c
        })
        .collect();
    NativeConfig::with_channels(channels)
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

/// A multiplexer that has our HELLO out and the scripted peer's HELLO in.
fn scripted(config: NativeConfig, now: Instant) -> Mux {
    let mut m = Mux::new(config, now).unwrap();
    outgoing_frames(&mut m, now);
    let h = hello(&[(0x20, 64 * 1024, 1 << 20), (0x21, 64 * 1024, 1 << 20)]);
    m.handle_record(now, &record(&[Frame::Hello(h)])).unwrap();
    assert!(matches!(m.poll_event(), Some(MuxEvent::Hello { .. })));
    m
}

/// Asserts that the only frame `m` writes now is a RESET with `code`.
fn assert_reset(m: &mut Mux, now: Instant, code: ResetCode) {
    let frames = outgoing_frames(m, now);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        frames[0].starts_with(&format!("Reset {{ code: {}, ", code.0)),
        "{frames:?}"
    );
}

#[test]
fn a_ping_flood_over_the_budget_resets_the_connection() {
    let t0 = Instant::now();
    let mut c = config();
    c.max_control_frames_per_second = 10;
    // Ten control frames a second, sustained, are fine (the HELLO was the first).
    let mut m = scripted(c.clone(), t0);
    for i in 1..=50u64 {
        let now = t0 + Duration::from_millis(100 * i);
        m.handle_record(now, &record(&[Frame::Ping(i)])).unwrap();
    }
    // A burst beyond one second's worth is not.
    let mut m = scripted(c, t0);
    let pings: Vec<Frame<'_>> = (0..9).map(Frame::Ping).collect();
    m.handle_record(t0, &record(&pings)).unwrap();
    let err = m.handle_record(t0, &record(&[Frame::Ping(9)]));
    assert_eq!(err, Err(MuxError::ControlFlood { limit: 10 }));
    assert_eq!(
        err.unwrap_err().to_string(),
        "control frame flood: more than 10 control frames per second"
    );
    assert_reset(&mut m, t0, ResetCode::PROTOCOL_ERROR);
    assert!(m.is_finished());
}

#[test]
fn window_updates_and_cancels_count_unless_the_peer_owes_them() {
    let now = Instant::now();
    let mut c = config();
    c.max_control_frames_per_second = 10;
    // Unearned window updates are control frames like any other.
    let mut m = scripted(c.clone(), now);
    let update = Frame::WindowUpdate {
        channel: 0x20,
        increment: 1,
    };
    let updates: Vec<Frame<'_>> = std::iter::repeat_n(update, 9).collect();
    m.handle_record(now, &record(&updates)).unwrap();
    assert_eq!(
        m.handle_record(now, &record(&[Frame::Cancel(77)])),
        Err(MuxError::ControlFlood { limit: 10 })
    );

    // Two peers exchanging 2000 messages over small windows trade hundreds of window updates
    // within the same instant, all backed by data: nothing is refused.
    let mut small = config();
    small.max_control_frames_per_second = 10;
    small.channels[0].initial_window = 1024;
    small.channels[0].send_queue_capacity = 4096;
    let mut p = Pair::new(small.clone(), small);
    p.drive();
    for i in 0..2000u32 {
        p.a.mux.send(0x20, Bytes::from(vec![i as u8; 100])).unwrap();
    }
    p.drive();
    assert_eq!(p.b.messages().len(), 2000);
    assert!(p.b.mux.stats().window_updates_out > 100);
    assert_eq!((p.a.error.clone(), p.b.error.clone()), (None, None));
}

#[test]
fn partial_messages_over_the_per_peer_budget_reset_the_connection() {
    let now = Instant::now();
    let mut c = config();
    c.partial_budget = PartialBudget::new(1000, 1 << 20);
    let pool = c.partial_budget.pool.clone().unwrap();
    let mut m = scripted(c, now);
    // Whole messages in one chunk are never buffered, whatever their size.
    m.handle_record(now, &record(&[data(0x20, ONE, &[1; 5000])]))
        .unwrap();
    m.handle_record(now, &record(&[data(0x20, DATA_START, &[2; 600])]))
        .unwrap();
    assert_eq!((m.partial_bytes(), pool.used()), (600, 600));
    let err = m.handle_record(now, &record(&[data(0x21, DATA_START, &[3; 600])]));
    let want = MuxError::PartialBudget(PartialBudgetError::Peer {
        wanted: 1200,
        limit: 1000,
    });
    assert_eq!(err, Err(want.clone()));
    assert_eq!(
        want.to_string(),
        "partly received messages would hold 1200 bytes, over the per-peer budget of 1000"
    );
    assert_reset(&mut m, now, ResetCode::MESSAGE_TOO_LARGE);
    drop(m);
    assert_eq!(pool.used(), 0, "a dropped connection returns its bytes");
}

#[test]
fn the_node_wide_budget_is_shared_and_returned_when_messages_complete() {
    let now = Instant::now();
    let mut c = config();
    c.partial_budget = PartialBudget::new(1000, 1000);
    let pool = c.partial_budget.pool.clone().unwrap();
    let mut a = scripted(c.clone(), now);
    let mut b = scripted(c.clone(), now);
    a.handle_record(now, &record(&[data(0x20, DATA_START, &[1; 800])]))
        .unwrap();
    let err = b.handle_record(now, &record(&[data(0x20, DATA_START, &[2; 300])]));
    assert_eq!(
        err,
        Err(MuxError::PartialBudget(PartialBudgetError::Node {
            limit: 1000
        }))
    );
    assert_reset(&mut b, now, ResetCode::INTERNAL_ERROR);
    // Completing a's message returns its bytes: a third peer may now start one.
    a.handle_record(now, &record(&[data(0x20, DATA_END, &[1; 100])]))
        .unwrap();
    assert_eq!(pool.used(), 0);
    match a.poll_event() {
        Some(MuxEvent::Message { payload, .. }) => assert_eq!(payload.len(), 900),
        other => panic!("{other:?}"),
    }
    let mut d = scripted(c, now);
    d.handle_record(now, &record(&[data(0x20, DATA_START, &[4; 300])]))
        .unwrap();
    assert_eq!(pool.used(), 300);
}

#[test]
fn at_most_recv_queue_capacity_messages_wait_and_keepalive_is_answered() {
    let now = Instant::now();
    let mut c = config();
    c.recv_queue_capacity = 2;
    let mut m = scripted(c, now);
    let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
    let mut frames: Vec<Frame<'_>> = payloads.iter().map(|p| data(0x20, ONE, p)).collect();
    frames.insert(4, Frame::Ping(42));
    frames.push(Frame::Close { reason: "done" });
    m.handle_record(now, &record(&frames)).unwrap();
    assert_eq!(m.queued_messages(), 2);
    assert_eq!(m.stats().data_frames_held, 4);
    assert!(m.held_bytes() > 0);
    // The PING behind held data is answered at once.
    assert_eq!(outgoing_frames(&mut m, now), ["Pong(42)"]);
    let mut got = Vec::new();
    while let Some(e) = m.poll_event() {
        assert!(m.queued_messages() <= 2);
        got.push(e);
    }
    let mut want: Vec<MuxEvent> = payloads
        .iter()
        .map(|p| MuxEvent::Message {
            channel: 0x20,
            payload: Bytes::from(p.clone()),
            kind: crate::proto::native::MessageKind::Plain,
            deliver_by: None,
        })
        .collect();
    // The CLOSE held behind the data comes after it.
    want.push(MuxEvent::Closed {
        reason: "done".into(),
    });
    assert_eq!(got, want);
    assert_eq!(m.held_bytes(), 0);
}

#[test]
fn held_messages_of_a_shared_record_are_slices_of_it_and_others_are_copies() {
    let now = Instant::now();
    let mut c = config();
    c.recv_queue_capacity = 1;
    let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 100]).collect();
    let frames: Vec<Frame<'_>> = payloads.iter().map(|p| data(0x20, ONE, p)).collect();
    let shared = Bytes::from(record(&frames));
    let within = |b: &Bytes| {
        let (start, end) = (
            shared.as_ptr() as usize,
            shared.as_ptr() as usize + shared.len(),
        );
        (start..end).contains(&(b.as_ptr() as usize))
    };
    // Shared: the first is delivered, the other two are held; all three are slices of it.
    let mut m = scripted(c.clone(), now);
    m.handle_record_bytes(now, shared.clone()).unwrap();
    assert_eq!(m.stats().data_frames_held, 2);
    assert_eq!(m.held_bytes(), shared.len() / 3 * 2);
    let mut got = Vec::new();
    while let Some(MuxEvent::Message { payload, .. }) = m.poll_event() {
        assert!(within(&payload), "a held message was copied");
        got.push(payload.to_vec());
    }
    assert_eq!(got, payloads);
    assert_eq!(m.held_bytes(), 0);
    // Not shared: each held frame is its own copy, and so is what it becomes.
    let mut m = scripted(c, now);
    m.handle_record(now, &shared).unwrap();
    assert_eq!(m.stats().data_frames_held, 2);
    let mut got = Vec::new();
    while let Some(MuxEvent::Message { payload, .. }) = m.poll_event() {
        assert!(!within(&payload));
        got.push(payload.to_vec());
    }
    assert_eq!(got, payloads);
}

#[test]
fn held_data_that_breaks_the_protocol_fails_when_taken_up() {
    let now = Instant::now();
    let mut c = config();
    c.recv_queue_capacity = 1;
    let mut m = scripted(c, now);
    // The second frame continues a message that never started: found when it is taken up.
    m.handle_record(
        now,
        &record(&[data(0x20, ONE, b"first"), data(0x20, DATA_END, b"bad")]),
    )
    .unwrap();
    assert!(matches!(m.poll_event(), Some(MuxEvent::Message { .. })));
    assert_eq!(
        m.poll_event(),
        Some(MuxEvent::Failed(MuxError::UnexpectedContinuation(0x20)))
    );
    assert_reset(&mut m, now, ResetCode::PROTOCOL_ERROR);
    // Held data still counts against the window: a flood beyond it fails at once.
    let mut c = config();
    c.recv_queue_capacity = 1;
    let mut m = scripted(c, now);
    let chunk = [0u8; 16 * 1024];
    let four: Vec<Frame<'_>> = (0..4).map(|_| data(0x20, ONE, &chunk)).collect();
    let err = m.handle_record(now, &record(&four));
    assert!(
        matches!(err, Err(MuxError::FlowControl { channel: 0x20, .. })),
        "{err:?}"
    );
}

#[test]
fn only_the_first_cancel_of_a_held_request_is_free() {
    let now = Instant::now();
    let mut c = config();
    c.max_control_frames_per_second = 10;
    let mut m = scripted(c, now);
    let request = Frame::Data(DataFrame {
        ttl_ms: None,
        channel: 0x20,
        flags: ONE | DATA_REQUEST,
        request_id: Some(5),
        chunk: b"work",
    });
    m.handle_record(now, &record(&[request])).unwrap();
    assert!(matches!(m.poll_event(), Some(MuxEvent::Message { .. })));
    // The application holds request 5. Its first CANCEL is owed; the request stays held
    // (cancelled) and every repeat spends the budget: nine fit after the HELLO, the next
    // does not.
    let cancels: Vec<Frame<'_>> = std::iter::repeat_n(Frame::Cancel(5), 10).collect();
    m.handle_record(now, &record(&cancels)).unwrap();
    assert_eq!(
        m.handle_record(now, &record(&[Frame::Cancel(5)])),
        Err(MuxError::ControlFlood { limit: 10 })
    );
}

/// A message's first chunk buys room for as much again, never more: tiny first chunks on every
/// channel cannot make the receiver hold large buffers, and a large one gets room for its
/// second chunk at once (no regrowth when it comes).
#[test]
fn a_first_chunk_reserves_at_most_twice_its_length() {
    let t0 = Instant::now();
    let mut m = scripted(config(), t0);
    m.handle_record(
        t0,
        &record(&[
            data(0x20, DATA_START, &[1u8; 3]),
            data(0x21, DATA_START, &[2u8; 5]),
        ]),
    )
    .unwrap();
    let tiny = m.partial_capacity();
    assert!((8..=16).contains(&tiny), "{tiny} bytes held for 8 received");

    let mut m = scripted(config(), t0);
    let half = vec![3u8; 30_000];
    m.handle_record(t0, &record(&[data(0x20, DATA_START, &half)]))
        .unwrap();
    let room = m.partial_capacity();
    assert!(
        (60_000..=60_064).contains(&room),
        "{room} bytes held for a 30,000-byte first chunk"
    );
    m.handle_record(t0, &record(&[data(0x20, DATA_END, &half)]))
        .unwrap();
    match m.poll_event() {
        Some(MuxEvent::Message { payload, .. }) => assert_eq!(payload.len(), 60_000),
        other => panic!("{other:?}"),
    }
}

/// Receive windows large enough that several 100 KB reassembly buffers may be kept.
fn wide_window() -> NativeConfig {
    let mut c = config();
    for ch in &mut c.channels {
        ch.initial_window = 1 << 20;
    }
    c
}

/// Sends one message on channel 0x20 in two chunks, `first` then `rest`, takes it, and lets
/// the credit go back.
fn two_chunk_message(m: &mut Mux, now: Instant, first: &[u8], rest: &[u8]) -> Bytes {
    m.handle_record(now, &record(&[data(0x20, DATA_START, first)]))
        .unwrap();
    m.handle_record(now, &record(&[data(0x20, DATA_END, rest)]))
        .unwrap();
    let message = match m.poll_event() {
        Some(MuxEvent::Message { payload, .. }) => payload,
        other => panic!("{other:?}"),
    };
    outgoing_frames(m, now);
    message
}

/// A reassembled message's buffer goes back to its connection when the application drops the
/// message, on whatever thread, and the next large message is reassembled in it: a fresh
/// buffer's pages would be faulted in by the copy (`spares.rs`).
#[test]
fn a_reassembly_buffer_is_reused_once_the_application_drops_its_message() {
    let t0 = Instant::now();
    let mut m = scripted(wide_window(), t0);
    let half = vec![3u8; 30_000];
    let next_message = |m: &mut Mux| two_chunk_message(m, t0, &half, &half);
    let first = next_message(&mut m);
    let second = next_message(&mut m);
    assert_ne!(first.as_ptr(), second.as_ptr(), "the first is still held");
    let first_at = first.as_ptr();
    std::thread::spawn(move || drop(first)).join().unwrap();
    assert_eq!(m.spares().kept(), 1);
    let third = next_message(&mut m);
    assert_eq!(
        third.as_ptr(),
        first_at,
        "reassembled in the first one's buffer"
    );
    assert_eq!(third.len(), 60_000);
    assert!(third.iter().all(|&b| b == 3));
    assert_eq!(m.spares().kept(), 0);
}

/// A message whose first chunk is small grows into a kept buffer when its large second chunk
/// comes, instead of regrowing a fresh one.
#[test]
fn a_small_first_chunk_grows_into_a_kept_buffer() {
    let t0 = Instant::now();
    let mut m = scripted(wide_window(), t0);
    let big = vec![5u8; 50_000];
    let kept_at = two_chunk_message(&mut m, t0, &big, &big).as_ptr();
    let payload = two_chunk_message(&mut m, t0, &[6u8; 10], &big);
    assert_eq!(payload.as_ptr(), kept_at);
    assert_eq!(payload.len(), 50_010);
    assert_eq!(&payload[..10], &[6u8; 10]);
}

/// The kept buffers add up to at most one receive window (`native_window` on a connection).
#[test]
fn kept_reassembly_buffers_are_bounded_by_the_receive_window() {
    let t0 = Instant::now();
    for (config, kept) in [(config(), 1), (wide_window(), 2)] {
        let mut m = scripted(config, t0);
        let half = vec![3u8; 30_000];
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(two_chunk_message(&mut m, t0, &half, &half));
        }
        drop(held);
        assert_eq!(m.spares().kept(), kept);
    }
}
