//! `[limits]` budgets on a node built by `NodeBuilder::from_config` from TOML, probed over real
//! TCP by a raw stock-protocol peer (`ringwire_test_support::raw_stock`) that sends exactly the
//! MConnection packets a test wants (ping floods, messages left unfinished).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringwire::config::Config;
use ringwire::node::{Node, NodeBuilder};
use ringwire::proto::secret::NodeKey;
use ringwire::router::NodeStats;
use ringwire_test_support::node::*;
use ringwire_test_support::raw_stock::{Identity, RawStockPeer};

/// A node from `limits` (a `[limits]` body) on loopback, with channels 0x20 and 0x21.
fn node(seed: u8, limits: &str) -> Node {
    let toml = format!(
        "[node]\nnetwork = \"test-chain\"\n\
         [p2p]\nladdr = \"tcp://127.0.0.1:0\"\npex = false\nallow_duplicate_ip = true\n\
         [engine]\nshards = 1\n[limits]\n{limits}"
    );
    let config = Config::from_toml_str(&toml).expect("valid configuration");
    NodeBuilder::from_config(&config, NodeKey::from_seed([seed; 32]))
        .expect("builder")
        .driver(driver())
        .channel(chan(0x20, 1, 1 << 20))
        .channel(chan(0x21, 1, 1 << 20))
        .start()
        .expect("node starts")
}

/// A raw stock peer: node `seed` with `moniker`, channels 0x20 and 0x21.
fn raw(addr: SocketAddr, seed: u8, moniker: &str) -> RawStockPeer {
    let mut who = Identity::new(seed, "test-chain", &[0x20, 0x21]);
    who.moniker = moniker.into();
    RawStockPeer::connect(addr, &who).expect("handshake")
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

#[test]
fn a_ping_flood_beyond_max_control_frames_per_second_is_disconnected_and_counted() {
    let n = node(1, "max_control_frames_per_second = 50\n");
    let mut peer = raw(n.listen_addr().unwrap(), 2, "flooder");
    peer.send_pings(500);
    peer.expect_closed();
    let s = wait_stats(&n, |s| s.control_floods == 1);
    assert!(s.protocol_errors >= 1, "{s:?}");
    assert_eq!(s.partial_budget_exceeded, 0);
    n.shutdown_blocking(secs(5));
}

#[test]
fn a_node_info_beyond_max_node_info_size_fails_the_handshake() {
    let moniker = "m".repeat(2000);
    // The default limit (stock's 10240) takes it...
    let n = node(1, "");
    let _peer = raw(n.listen_addr().unwrap(), 2, &moniker);
    wait_peers(&n, 1);
    n.shutdown_blocking(secs(5));
    // ...a node configured for 1024 bytes does not.
    let n = node(1, "max_node_info_size = 1024\n");
    raw(n.listen_addr().unwrap(), 2, &moniker).expect_closed();
    let s = wait_stats(&n, |s| s.protocol_errors == 1);
    assert_eq!(s.peers, 0);
    n.shutdown_blocking(secs(5));
}

#[test]
fn partial_message_budgets_per_peer_and_node_wide_disconnect_and_are_counted() {
    let n = node(
        1,
        "max_message_size = 65536\nmax_partial_bytes_per_peer = 65536\n\
         max_partial_bytes = 100000\n",
    );
    let addr = n.listen_addr().unwrap();
    let mut c20 = n.open_channel(chan(0x20, 1, 1 << 20)).unwrap();
    let mut c21 = n.open_channel(chan(0x21, 1, 1 << 20)).unwrap();

    // One peer alone: 70 KiB left unfinished over two channels (each within the channel's
    // 64 KiB message cap) is over its own 64 KiB.
    let mut greedy = raw(addr, 2, "greedy");
    greedy.send_kib(0x20, 40, false);
    greedy.send_kib(0x21, 30, false);
    greedy.expect_closed();
    wait_stats(&n, |s| s.partial_budget_exceeded == 1);

    // A peer holds 40 KiB; a message on another channel shows the node has read them.
    let mut holder = raw(addr, 3, "holder");
    holder.send_kib(0x20, 40, false);
    holder.send_kib(0x21, 1, true);
    assert_eq!(c21.recv_blocking(secs(10)).unwrap().payload.len(), 1024);
    // A second peer within its own budget (62 KiB) runs out of the node's 100000 bytes.
    let mut second = raw(addr, 4, "second");
    second.send_kib(0x20, 62, false);
    second.expect_closed();
    let s = wait_stats(&n, |s| s.partial_budget_exceeded == 2);
    assert_eq!(s.control_floods, 0);

    // The holder is unharmed: its message completes.
    holder.send_kib(0x20, 1, true);
    assert_eq!(
        c20.recv_blocking(secs(10)).unwrap().payload.len(),
        41 * 1024
    );
    // Completed and closed connections gave their bytes back: 60 KiB fit again.
    let mut later = raw(addr, 5, "later");
    later.send_kib(0x20, 60, true);
    assert_eq!(
        c20.recv_blocking(secs(10)).unwrap().payload.len(),
        60 * 1024
    );
    drop(holder);
    n.shutdown_blocking(secs(5));
}
