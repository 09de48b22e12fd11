//! Control-frame floods on native connections (`docs/RELIABILITY.md` row 6): a node built the
//! way `ringwire node` builds one, from TOML with `[limits] max_control_frames_per_second =
//! 50`, meets a raw native peer (`ringwire_test_support::raw_native`) that floods PINGs,
//! WINDOW_UPDATEs or CANCELs over real TCP. The node resets it with PROTOCOL_ERROR naming the
//! control-frame budget and counts it in `NodeStats::control_floods`; the frames a
//! well-behaved peer owes (window updates returning credit for data the node sent, the first
//! cancel of a request the node holds) and traffic under the rate are not charged or not
//! disconnected.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::node::Node;
use ringwire::proto::native::ResetCode;
use ringwire::proto::native::frame::{Frame, FrameDecoder};
use ringwire::proto::secret::NodeKey;
use ringwire::router::{Envelope, NodeStats};
use ringwire_test_support::node::*;
use ringwire_test_support::raw_native::{Closed, RawNativePeer, request_frame};

const LIMIT: u32 = 50;
const FLOOD: usize = 500;
const NETWORK: &str = "test-chain";
const CHANNELS: [u8; 2] = [0x20, 0x21];

/// A native-offering node from `ringwire node`'s configuration path, on loopback, with
/// channels 0x20 and 0x21 and a budget of [`LIMIT`] control frames per second.
fn node(seed: u8) -> Node {
    let toml = format!(
        "[node]\nnetwork = \"{NETWORK}\"\n\
         [p2p]\nladdr = \"tcp://127.0.0.1:0\"\npex = false\nallow_duplicate_ip = true\n\
         [engine]\nshards = 1\nnative = true\n\
         [limits]\nmax_control_frames_per_second = {LIMIT}\n"
    );
    builder_from_toml(seed, &toml)
        .channel(chan(0x20, 1, 1 << 20))
        .channel(chan(0x21, 1, 1 << 20))
        .start()
        .expect("node starts")
}

fn connect(n: &Node, seed: u8) -> RawNativePeer {
    let peer = RawNativePeer::connect(n.listen_addr().unwrap(), seed, NETWORK, &CHANNELS);
    assert!(peer.node_hello().channel(0x20).is_some());
    wait_peers(n, 1);
    peer
}

/// Waits (generously) until `node`'s counters satisfy `f`.
fn wait_stats(node: &Node, f: impl Fn(&NodeStats) -> bool) -> NodeStats {
    let deadline = secs(20);
    loop {
        let s = node.stats();
        if f(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The peer is reset with PROTOCOL_ERROR for the control-frame budget, and the node counts one
/// flood more than `before`.
fn expect_flood_reset(n: &Node, peer: RawNativePeer, before: &NodeStats) {
    match peer.wait_closed(Duration::from_secs(10)) {
        Closed::Reset { code, reason } => {
            assert_eq!(code, ResetCode::PROTOCOL_ERROR, "{reason}");
            assert!(
                reason.contains("control frame") && reason.contains(&LIMIT.to_string()),
                "the reason names the control-frame budget: {reason}"
            );
        }
        other => panic!("expected a PROTOCOL_ERROR reset, got {other:?}"),
    }
    let s = wait_stats(n, |s| s.control_floods == before.control_floods + 1);
    assert!(s.protocol_errors > before.protocol_errors, "{s:?}");
    assert_eq!(s.partial_budget_exceeded, before.partial_budget_exceeded);
    // The counter settles at one more: nothing else was counted as a flood.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(n.stats().control_floods, before.control_floods + 1);
    wait_peers_gone(n);
}

fn wait_peers_gone(n: &Node) {
    let deadline = secs(10);
    while !n.peers().is_empty() {
        assert!(Instant::now() < deadline, "the flooder is still a peer");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_ping_flood_is_reset_and_counted_but_pings_under_the_rate_are_not() {
    let n = node(1);
    let mut peer = connect(&n, 2);
    let before = n.stats();

    // 80 PINGs, more than one second's burst of 50, spread over 2 s at 40 per second: under
    // the rate, so the connection stays.
    for _ in 0..20 {
        peer.ping_flood(4);
        std::thread::sleep(Duration::from_millis(100));
    }
    peer.roundtrip(Duration::from_secs(10));
    assert_eq!(n.peers().len(), 1);
    assert_eq!(n.stats().control_floods, before.control_floods);

    // The same connection flooding at once is reset.
    peer.ping_flood(FLOOD);
    expect_flood_reset(&n, peer, &before);
    n.shutdown_blocking(secs(5));
}

#[test]
fn a_window_update_flood_is_reset_and_counted_but_updates_returning_credit_are_free() {
    let n = node(3);
    let c20 = n.open_channel(chan(0x20, 1, 1 << 20)).unwrap();
    let mut peer = connect(&n, 4);
    let before = n.stats();

    // The node sends 100 messages (one DATA frame each); the peer returns the credit of each
    // with its own WINDOW_UPDATE, 100 at once: owed by a well-behaved peer, so not charged.
    let id = NodeKey::from_seed([4; 32]).node_id();
    const SENT: usize = 100;
    for i in 0..SENT {
        c20.send_blocking(Envelope::peer(id, Bytes::from(vec![i as u8; 10])), secs(10))
            .unwrap();
    }
    let mut updates = Vec::new();
    while updates.len() < SENT {
        let record = peer
            .recv_record(Duration::from_secs(10))
            .expect("the node's messages");
        for f in FrameDecoder::new(&record) {
            if let Frame::Data(d) = f.unwrap() {
                assert_eq!(d.channel, 0x20);
                updates.push(Frame::WindowUpdate {
                    channel: 0x20,
                    increment: d.chunk.len() as u32 + 64,
                });
            }
        }
    }
    assert_eq!(updates.len(), SENT);
    peer.send_frames(&updates);
    peer.roundtrip(Duration::from_secs(10));
    assert_eq!(n.peers().len(), 1);
    assert_eq!(n.stats().control_floods, before.control_floods);

    // Updates the node never earned are charged: a flood of them is reset.
    peer.window_update_flood(0x21, FLOOD);
    expect_flood_reset(&n, peer, &before);
    n.shutdown_blocking(secs(5));
}

#[test]
fn a_cancel_flood_is_reset_and_counted_but_first_cancels_of_held_requests_are_free() {
    let n = node(5);
    let mut c21 = n.open_channel(chan(0x21, 1, 1 << 20)).unwrap();
    let mut peer = connect(&n, 6);
    let before = n.stats();

    // 100 requests, which the application takes and holds, then one CANCEL of each at once:
    // owed by a well-behaved peer, so not charged.
    const HELD: u64 = 100;
    let requests: Vec<Frame<'_>> = (1..=HELD).map(|id| request_frame(0x21, id, b"q")).collect();
    peer.send_frames(&requests);
    let mut held = Vec::new();
    for _ in 0..HELD {
        let r = c21.recv_blocking(secs(10)).expect("a request");
        held.push(r);
    }
    let cancels: Vec<Frame<'_>> = (1..=HELD).map(Frame::Cancel).collect();
    peer.send_frames(&cancels);
    peer.roundtrip(Duration::from_secs(10));
    assert_eq!(n.peers().len(), 1);
    assert_eq!(n.stats().control_floods, before.control_floods);

    // A second CANCEL of a held request is not owed, nor is one of an id the node never saw:
    // a flood of those is reset.
    peer.send_frames(&[Frame::Cancel(1), Frame::Cancel(2)]);
    peer.cancel_flood(FLOOD);
    expect_flood_reset(&n, peer, &before);
    drop(held);
    n.shutdown_blocking(secs(5));
}
