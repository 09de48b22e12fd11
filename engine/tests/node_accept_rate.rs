//! `[limits] max_accepts_per_second` (`docs/RELIABILITY.md` rows 2 and 4): a shard's listener
//! accepts at most that many connections a second (bursts of one second's worth); the rest
//! wait in the kernel's listen queue, so a connection flood costs the node bounded work.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringwire::node::Node;
use ringwire_test_support::node::*;

/// Connections the node has taken from its listen queue (admitted or refused).
fn taken(node: &Node) -> u64 {
    let s = node.stats();
    s.accepted + s.accept_refused
}

/// Opens 100 connections from 100 loopback addresses at once and returns how many the node
/// took within one second.
fn taken_in_a_second(limits: &str) -> u64 {
    let toml = format!(
        "[p2p]\nladdr = \"127.0.0.1:0\"\npex = false\n\n[engine]\nshards = 1\n\n[limits]\n{limits}\n"
    );
    let node = builder_from_toml(1, &toml).start().expect("node starts");
    let addr = node.listen_addr().unwrap();
    let start = Instant::now();
    let crowd: Vec<TcpStream> = (0..100u8)
        .map(|i| connect_from([127, 0, 1, 1 + i], addr).expect("queued by the kernel"))
        .collect();
    std::thread::sleep(Duration::from_secs(1).saturating_sub(start.elapsed()));
    let n = taken(&node);
    drop(crowd);
    node.shutdown_blocking(secs(5));
    n
}

#[test]
fn max_accepts_per_second_paces_the_listener() {
    // 20 a second: the burst of 20, then about 20 more in the second.
    let paced = taken_in_a_second("max_accepts_per_second = 20");
    assert!((20..=45).contains(&paced), "{paced} taken at 20 a second");
    // 0: no limit, all of them at once.
    let unpaced = taken_in_a_second("max_accepts_per_second = 0");
    assert_eq!(unpaced, 100);
}
