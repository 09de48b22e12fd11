//! `PeerEvents::poll_recv`: a subscriber that waits in its own poller is woken by each peer
//! event and reads it without blocking.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ringwire::router::PeerEvent;
use ringwire_test_support::node::*;

/// Counts its wakes.
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn poll_recv_registers_the_waker_and_an_event_wakes_it() {
    let a = tcp_node(1, true, &[chan(0x20, 1, 1024)]);
    let b = tcp_node(2, true, &[chan(0x20, 1, 1024)]);
    let mut events = a.peer_events();
    let counter = Arc::new(Counter(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(events.poll_recv(&mut cx).is_pending(), "nothing yet");

    b.dial_blocking(a.listen_addr().unwrap(), Some(a.node_id()))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.0.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the waker was never woken");
        std::thread::sleep(Duration::from_millis(5));
    }
    match events.poll_recv(&mut cx) {
        Poll::Ready(Some(PeerEvent::Up { peer, .. })) => assert_eq!(peer.node_id, b.node_id()),
        other => panic!("want b's Up event, got {other:?}"),
    }
    assert!(events.poll_recv(&mut cx).is_pending(), "one event, taken");
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

/// A node's first peers can come up while it is still starting: a persistent peer is dialed,
/// and inbound connections accepted, before `start` returns. The subscription that
/// `start_with_events` hands out was made before any of that, so it reports them, and so does
/// peer exchange's own (here `pex` is on: the peer is known to PEX, which answers its
/// request).
#[test]
fn start_with_events_reports_a_peer_that_came_up_during_start() {
    for round in 0..3u8 {
        let b = tcp_node(2, true, &[chan(0x20, 1, 1024)]);
        let toml = format!(
            "[node]\nnetwork = \"test-chain\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\npex = true\n\
             persistent_peers = \"{}@{}\"\n\n[engine]\nshards = 1\n",
            b.node_id(),
            b.listen_addr().unwrap()
        );
        let (a, mut events) = builder_from_toml(10 + round, &toml)
            .channel(chan(0x20, 1, 1024))
            .start_with_events()
            .expect("node starts");
        // Connected before the first look at the events: a subscription made now would miss
        // the Up; the one made at start has it.
        let deadline = secs(10);
        while !a.peers().iter().any(|p| p.info.node_id == b.node_id()) {
            assert!(
                Instant::now() < deadline,
                "round {round}: b never connected"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        match events.recv_blocking(secs(10)) {
            Some(PeerEvent::Up { peer, .. }) => assert_eq!(peer.node_id, b.node_id()),
            other => panic!("round {round}: want b's Up event, got {other:?}"),
        }
        a.shutdown_blocking(secs(5));
        b.shutdown_blocking(secs(5));
    }
}
