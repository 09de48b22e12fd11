//! CLOSE and RESET.

use bytes::Bytes;

use super::pair::{Pair, config, hello, record};
use crate::proto::native::frame::Frame;
use crate::proto::native::{Mux, MuxError, MuxEvent, ResetCode};

#[test]
fn close_delivers_the_reason_after_earlier_messages() {
    let mut p = Pair::new(config(&[(1, 1)]), config(&[(1, 1)]));
    p.drive();
    p.b.drain = false;
    p.a.mux.send(1, Bytes::from_static(b"last words")).unwrap();
    p.drive();
    p.a.mux.close("shutting down");
    p.drive();
    p.b.drain_events();
    let tail: Vec<_> = p.b.events.iter().skip(1).cloned().collect();
    assert_eq!(
        tail,
        vec![
            MuxEvent::Message {
                channel: 1,
                payload: Bytes::from_static(b"last words"),
                kind: crate::proto::native::MessageKind::Plain,
                deliver_by: None,
            },
            MuxEvent::Closed {
                reason: "shutting down".into()
            },
        ]
    );
    // b answered with its own CLOSE; both are done.
    assert_eq!(
        p.a.events.last(),
        Some(&MuxEvent::Closed {
            reason: String::new()
        })
    );
    assert!(p.a.mux.is_finished());
    assert!(p.b.mux.is_finished());
    assert!(!p.b.mux.wants_input());
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
}

#[test]
fn close_drops_queued_messages_and_is_idempotent() {
    let mut p = Pair::new(config(&[(1, 1)]), config(&[(1, 1)]));
    p.drive();
    p.a.mux.send(1, Bytes::from_static(b"never sent")).unwrap();
    p.a.mux.close("bye");
    p.a.mux.close("again");
    p.drive();
    assert!(p.b.messages().is_empty());
    assert_eq!(p.a.mux.stats().dropped_outgoing, 1);
    assert!(p.b.events.contains(&MuxEvent::Closed {
        reason: "bye".into()
    }));
}

#[test]
fn reset_delivers_code_and_reason_and_drops_undelivered() {
    let mut p = Pair::new(config(&[(1, 1)]), config(&[(1, 1)]));
    p.drive();
    p.b.drain = false;
    p.a.mux.send(1, Bytes::from_static(b"unseen")).unwrap();
    p.drive();
    p.a.mux.reset(ResetCode::APPLICATION, "banned");
    p.drive();
    p.b.drain_events();
    assert_eq!(
        p.b.events.last(),
        Some(&MuxEvent::Reset {
            code: ResetCode::APPLICATION,
            reason: "banned".into()
        })
    );
    assert!(p.b.messages().is_empty());
    assert_eq!(p.b.mux.stats().dropped_incoming, 1);
    assert!(p.a.mux.is_finished());
    assert!(p.b.mux.is_finished());
    assert!(p.a.mux.send(1, Bytes::new()).is_err());
}

#[test]
fn reset_before_anything_was_sent_still_sends_hello_first() {
    let now = std::time::Instant::now();
    let mut m = Mux::new(config(&[(1, 1)]), now).unwrap();
    m.reset(ResetCode(77), &"x".repeat(1000));
    let frames = super::pair::outgoing_frames(&mut m, now);
    assert_eq!(frames.len(), 2);
    assert!(frames[0].starts_with("Hello"));
    assert!(frames[1].starts_with("Reset { code: 77"));
    assert!(m.is_finished());
    // Input after our RESET is ignored.
    assert_eq!(m.handle_record(now, b"garbage"), Ok(()));
}

#[test]
fn frames_after_close_are_an_error() {
    let now = std::time::Instant::now();
    let mut m = Mux::new(config(&[(1, 1)]), now).unwrap();
    let h = Frame::Hello(hello(&[(1, 1024, 100)]));
    assert_eq!(
        m.handle_record(
            now,
            &record(&[h.clone(), Frame::Close { reason: "" }, Frame::Ping(1)])
        ),
        Err(MuxError::AfterClose)
    );
    let mut m = Mux::new(config(&[(1, 1)]), now).unwrap();
    m.handle_record(now, &record(&[h, Frame::Close { reason: "done" }]))
        .unwrap();
    assert_eq!(
        m.handle_record(now, &record(&[Frame::Ping(1)])),
        Err(MuxError::AfterClose)
    );
}
