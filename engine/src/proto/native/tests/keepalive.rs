//! PING/PONG keepalive.

use std::time::Duration;

use super::pair::{Pair, config, hello, outgoing_frames, record};
use crate::proto::native::frame::Frame;
use crate::proto::native::{Mux, MuxError, ResetCode};

#[test]
fn pings_are_answered_and_measure_rtt() {
    let mut p = Pair::new(config(&[(1, 1)]), config(&[(1, 1)]));
    p.drive();
    for _ in 0..5 {
        p.advance(Duration::from_secs(5));
    }
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
    assert_eq!(p.a.mux.stats().pings_sent, 5);
    assert_eq!(p.b.mux.stats().pings_sent, 5);
    assert_eq!(p.a.mux.rtt(), Some(Duration::ZERO));
    assert_eq!(p.a.mux.poll_timeout(), Some(p.now + Duration::from_secs(5)));
}

#[test]
fn a_silent_peer_fails_the_keepalive() {
    let now = std::time::Instant::now();
    let mut m = Mux::new(config(&[(1, 1)]), now).unwrap();
    outgoing_frames(&mut m, now);
    // The first PING goes out at once (its round trip sizes the credit caps), the next ones
    // every ping interval.
    let t1 = now;
    assert_eq!(m.poll_timeout(), Some(t1));
    m.handle_timeout(t1).unwrap();
    let frames = outgoing_frames(&mut m, t1);
    assert_eq!(frames, vec!["Ping(0)".to_owned()]);
    assert_eq!(m.poll_timeout(), Some(t1 + Duration::from_secs(5)));
    // Not yet.
    m.handle_timeout(t1 + Duration::from_millis(4999)).unwrap();
    let t2 = t1 + Duration::from_secs(5);
    assert_eq!(m.handle_timeout(t2), Err(MuxError::PongTimeout));
    let frames = outgoing_frames(&mut m, t2);
    assert_eq!(
        frames,
        vec![format!(
            "Reset {{ code: {}, reason: \"no PONG within the keepalive timeout\" }}",
            ResetCode::KEEPALIVE_TIMEOUT.0
        )]
    );
    assert!(m.is_finished());
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn pings_are_coalesced_and_stray_pongs_counted() {
    let now = std::time::Instant::now();
    let mut m = Mux::new(config(&[(1, 1)]), now).unwrap();
    outgoing_frames(&mut m, now);
    let h = Frame::Hello(hello(&[(1, 1024, 100)]));
    m.handle_record(
        now,
        &record(&[
            h,
            Frame::Ping(1),
            Frame::Ping(2),
            Frame::Ping(3),
            Frame::Pong(9),
        ]),
    )
    .unwrap();
    assert_eq!(outgoing_frames(&mut m, now), vec!["Pong(3)".to_owned()]);
    assert_eq!(m.stats().pings_coalesced, 2);
    assert_eq!(m.stats().unexpected_pongs, 1);
}
