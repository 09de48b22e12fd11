//! Per-peer, per-channel byte counters (`Node::peer_traffic`), the source of the Prometheus
//! byte metrics: both modes, sends, requests and responses; and `Node::ban` under the peer
//! manager.

use std::time::{Duration, Instant};

use ringwire::node::Node;
use ringwire::peers::ManagerConfig;
use ringwire::router::Envelope;
use ringwire_test_support::node::*;

fn counts(node: &Node, channel: u8) -> (u64, u64) {
    node.peer_traffic()
        .iter()
        .flat_map(|p| p.channels.iter())
        .filter(|c| c.channel == channel)
        .fold((0, 0), |(s, r), c| (s + c.sent_bytes, r + c.received_bytes))
}

fn traffic(native: bool) {
    let channels = [chan(0x20, 4, 1 << 20), chan(0x40, 4, 1 << 20)];
    let mut ba = builder(1).offer_native(native);
    let mut bb = builder(2).offer_native(native);
    for c in &channels {
        ba = ba.channel(c.clone());
        bb = bb.channel(c.clone());
    }
    let a = ba.start().unwrap();
    let b = bb.start().unwrap();
    a.connect_memory_blocking(&b).unwrap();
    wait_peers(&b, 1);
    let ca = a.open_channel(channels[0].clone()).unwrap();
    let mut cb = b.open_channel(channels[0].clone()).unwrap();
    for i in 0..10u8 {
        ca.send_blocking(Envelope::peer(b.node_id(), payload(1000, i)), secs(5))
            .unwrap();
    }
    for _ in 0..10 {
        assert!(cb.recv_blocking(secs(5)).is_some());
    }
    assert_eq!(counts(&a, 0x20), (10_000, 0));
    assert_eq!(counts(&b, 0x20), (0, 10_000));

    if native {
        let ra = a.open_channel(channels[1].clone()).unwrap();
        let mut rb = b.open_channel(channels[1].clone()).unwrap();
        let responder = std::thread::spawn(move || {
            let mut m = rb.recv_blocking(secs(5)).unwrap();
            let req = m.request.take().unwrap();
            rb.respond(req, payload(300, 1)).unwrap();
        });
        let answer = ra
            .request_blocking(b.node_id(), payload(100, 2), secs(5))
            .unwrap();
        assert_eq!(answer.len(), 300);
        responder.join().unwrap();
        assert_eq!(counts(&a, 0x40), (100, 300));
        assert_eq!(counts(&b, 0x40), (300, 100));
    }
    let depths = a.inbox_depths();
    assert_eq!(depths.len(), a.shards());
    a.shutdown_blocking(secs(2));
    b.shutdown_blocking(secs(2));
}

#[test]
fn traffic_counts_payload_bytes_per_peer_and_channel_native() {
    traffic(true);
}

#[test]
fn traffic_counts_payload_bytes_per_peer_and_channel_compat() {
    traffic(false);
}

#[test]
fn ban_needs_the_peer_manager_and_closes_the_peer() {
    let plain = builder(3).start().unwrap();
    assert!(!plain.ban(&plain.node_id(), Instant::now() + Duration::from_secs(60)));
    plain.shutdown_blocking(secs(2));

    let a = builder(4)
        .peer_manager(ManagerConfig::default())
        .start()
        .unwrap();
    let b = builder(5).start().unwrap();
    a.connect_memory_blocking(&b).unwrap();
    wait_peers(&b, 1);
    assert!(a.ban(&b.node_id(), Instant::now() + Duration::from_secs(60)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a.peers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the banned peer is still connected"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        a.connect_memory_blocking(&b).is_err(),
        "a banned peer was admitted"
    );
    a.shutdown_blocking(secs(2));
    b.shutdown_blocking(secs(2));
}
