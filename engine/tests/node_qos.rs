//! Priority on one connection: a small message on a high-priority channel, sent while a
//! 16 MiB message is being written on a low-priority channel, arrives before the large one
//! completes.
//!
//! The sender is paced (`[p2p] send_rate`, 32 MB/s: half a second for the large message), so
//! the large message is still being written when the small one is sent however fast the
//! machine is; unpaced, loopback can carry all 16 MiB before the small one is queued.

use std::time::Duration;

use ringwire::node::Node;
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::router::Envelope;
use ringwire_test_support::node::*;

fn small_overtakes_large(native: bool) {
    let high = chan(0x20, 10, 1024);
    let low = chan(0x40, 1, 17 << 20);
    let channels = [high.clone(), low.clone()];
    let a = paced_node(1, native, &channels);
    let b = tcp_node(2, native, &channels);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    wait_peers(&b, 1);
    let a_high = a.open_channel(high.clone()).unwrap();
    let a_low = a.open_channel(low.clone()).unwrap();
    let mut b_high = b.open_channel(high).unwrap();
    let mut b_low = b.open_channel(low).unwrap();

    let big = payload(16 << 20, 1);
    a_low
        .try_send(Envelope::peer(b.node_id(), big.clone()))
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        b_low.try_recv().is_none(),
        "the large message arrived before the small one was sent"
    );
    let small = payload(256, 2);
    a_high
        .try_send(Envelope::peer(b.node_id(), small.clone()))
        .unwrap();

    let deadline = secs(60);
    let mut order = Vec::new();
    while order.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "messages did not arrive"
        );
        if let Some(m) = b_high.try_recv() {
            assert!(m.payload == small);
            order.push("small");
        }
        if let Some(m) = b_low.try_recv() {
            assert!(m.payload == big);
            order.push("large");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(order, ["small", "large"]);
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

/// A listening node on loopback whose sends to a peer are paced at 32 MB/s.
fn paced_node(seed: u8, native: bool, channels: &[ChannelDescriptor]) -> Node {
    let toml = format!(
        "[node]\nnetwork = \"test-chain\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\npex = false\n\
         send_rate = 32000000\n\n[engine]\nshards = 2\nnative = {native}\n"
    );
    let mut b = builder_from_toml(seed, &toml);
    for c in channels {
        b = b.channel(c.clone());
    }
    b.start().expect("node starts")
}

#[test]
fn native_high_priority_overtakes_a_large_message() {
    small_overtakes_large(true);
}

#[test]
fn compat_high_priority_overtakes_a_large_message() {
    small_overtakes_large(false);
}
