//! A request a peer sent holds one of the places the peer may have in flight
//! (`limits.max_inflight_requests`) until the application answers it or drops it, even once
//! the peer has cancelled it (`docs/RELIABILITY.md` row 6, "rapid reset"): a requester that
//! cancels at its deadline waits for the responder's application before it starts more.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::router::{PendingRequest, SendError};
use ringwire_test_support::configured::{connected_pair, test_config};
use ringwire_test_support::node::*;

/// Waits until the peer's CANCEL has marked `req`.
fn wait_cancelled(req: &PendingRequest) {
    let deadline = secs(10);
    while !req.is_cancelled() {
        assert!(Instant::now() < deadline, "the cancel never arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn cancelled_requests_hold_their_places_until_the_application_drops_or_answers_them() {
    let desc = chan(0x60, 1, 1 << 20);
    let mut config = test_config();
    config.limits.max_inflight_requests = 2;
    let (a, b) = connected_pair(&config, std::slice::from_ref(&desc));
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    let peer = b.node_id();

    // Two requests that a gives up on at their deadline while b's application holds them.
    let askers: Vec<_> = (0..2u8)
        .map(|i| {
            let ca = ca.sender();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_millis(300);
                ca.request_blocking(peer, Bytes::from(vec![i]), deadline)
            })
        })
        .collect();
    let held: Vec<PendingRequest> = (0..2)
        .map(|_| cb.recv_blocking(secs(10)).unwrap().request.unwrap())
        .collect();
    for t in askers {
        assert_eq!(t.join().unwrap(), Err(SendError::Timeout));
    }
    for r in &held {
        wait_cancelled(r);
    }

    // Both places are still taken: a third request waits at a instead of reaching b (and
    // instead of b closing the connection for going over its limit).
    let ca3 = ca.sender();
    let third = std::thread::spawn(move || {
        ca3.request_blocking(peer, Bytes::from_static(b"third"), secs(30))
    });
    assert!(
        cb.recv_blocking(Instant::now() + Duration::from_millis(500))
            .is_none(),
        "b got a request beyond its limit"
    );

    // b's application drops one request: its place frees, and the third request comes in.
    let mut held = held.into_iter();
    drop(held.next());
    let m = cb
        .recv_blocking(secs(10))
        .expect("the third request arrives");
    assert_eq!(m.payload, &b"third"[..]);
    cb.respond(m.request.unwrap(), Bytes::from_static(b"3"))
        .unwrap();
    assert_eq!(third.join().unwrap().unwrap(), &b"3"[..]);

    // Answering the other one frees its place too (the answer itself is not sent).
    assert_eq!(
        cb.respond(held.next().unwrap(), Bytes::from_static(b"late")),
        Err(SendError::Cancelled)
    );
    let responder = std::thread::spawn(move || {
        for _ in 0..2 {
            let m = cb.recv_blocking(secs(10)).unwrap();
            cb.respond(m.request.unwrap(), m.payload).unwrap();
        }
    });
    let pair: Vec<_> = (0..2u8)
        .map(|i| {
            let ca = ca.sender();
            std::thread::spawn(move || ca.request_blocking(peer, Bytes::from(vec![i]), secs(10)))
        })
        .collect();
    for (i, t) in pair.into_iter().enumerate() {
        assert_eq!(t.join().unwrap().unwrap(), &[i as u8][..]);
    }
    responder.join().unwrap();
    assert_eq!(a.peers().len(), 1, "no disconnect along the way");
    assert_eq!(b.stats().protocol_errors, 0);
    assert_eq!(a.stats().protocol_errors, 0);
    assert_eq!(a.stats().late_responses, 0);
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}
