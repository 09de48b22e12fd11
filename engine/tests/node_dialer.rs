//! The peer manager's dialer on a node built from its configuration: `[limits]
//! max_concurrent_dials` caps the dials in progress, `dial_backoff_min` and `dial_backoff_max`
//! pace the redials of a persistent peer (`docs/RELIABILITY.md` row 14).
//!
//! The "peers" are plain listeners: one that never answers holds a dial in its handshake, one
//! that closes each connection at once fails every dial. Counts are bounded generously
//! against a loaded machine; the upper bounds follow from the backoff arithmetic alone.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use ringwire::node::Node;
use ringwire::proto::secret::NodeId;
use ringwire_test_support::node::*;

/// A node built from `[limits]` lines `limits`, dialing `peers` as persistent peers.
fn dialer(seed: u8, peers: &[(NodeId, SocketAddr)], limits: &str) -> Node {
    let list: Vec<String> = peers.iter().map(|(id, a)| format!("{id}@{a}")).collect();
    let toml = format!(
        "[node]\nnetwork = \"dialer-chain\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\npex = false\n\
         handshake_timeout = \"60s\"\npersistent_peers = \"{}\"\n\n[engine]\nshards = 1\n\n\
         [limits]\n{limits}\n",
        list.join(",")
    );
    builder_from_toml(seed, &toml).start().expect("node starts")
}

fn fake_id(n: u8) -> NodeId {
    NodeId([n; 20])
}

/// Listeners that take connections into their backlog and never answer: a dial to one
/// connects and then waits in its handshake (60 s here).
fn silent_peers(n: u8) -> Vec<(TcpListener, NodeId)> {
    (1..=n)
        .map(|i| (TcpListener::bind("127.0.0.1:0").unwrap(), fake_id(i)))
        .collect()
}

/// How many of `listeners` have had a connection by now.
fn dialed(listeners: &[(TcpListener, NodeId)]) -> usize {
    listeners
        .iter()
        .filter(|(l, _)| {
            l.set_nonblocking(true).unwrap();
            l.accept().is_ok()
        })
        .count()
}

fn dials_in_flight(peers: u8, max_concurrent_dials: u32) -> (usize, usize) {
    let listeners = silent_peers(peers);
    let targets: Vec<_> = listeners
        .iter()
        .map(|(l, id)| (*id, l.local_addr().unwrap()))
        .collect();
    let node = dialer(
        1,
        &targets,
        &format!("max_concurrent_dials = {max_concurrent_dials}"),
    );
    // Every due dial starts within this window; none can end in it (60 s handshake).
    let end = Instant::now() + Duration::from_secs(2);
    let mut most = 0;
    while Instant::now() < end {
        most = most.max(node.admission_stats().unwrap().dialing);
        if most >= usize::from(peers) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let in_flight = node.admission_stats().unwrap().dialing;
    let connected = dialed(&listeners);
    node.shutdown_blocking(secs(5));
    (most.max(in_flight), connected)
}

#[test]
fn max_concurrent_dials_caps_the_dials_in_progress() {
    // Three due persistent peers, one dial at a time: only one listener is ever connected.
    assert_eq!(dials_in_flight(3, 1), (1, 1));
    // With room for all three, all three are dialed at once.
    assert_eq!(dials_in_flight(3, 3), (3, 3));
}

/// Accepts and at once closes every connection to a listener for `window` after `start`;
/// returns how many came.
fn count_redials(listener: &TcpListener, start: Instant, window: Duration) -> usize {
    listener.set_nonblocking(true).unwrap();
    let mut count = 0;
    while Instant::now() < start + window {
        match listener.accept() {
            Ok((s, _)) => {
                drop(s);
                count += 1;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    count
}

/// Dials within two seconds of the node's start to a persistent peer that fails every dial.
fn redials_in_two_seconds(seed: u8, limits: &str) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = (fake_id(9), listener.local_addr().unwrap());
    let start = Instant::now();
    let node = dialer(seed, &[peer], limits);
    let count = count_redials(&listener, start, Duration::from_secs(2));
    node.shutdown_blocking(secs(5));
    println!("{limits:?}: {count} dials in two seconds");
    count
}

#[test]
fn dial_backoff_min_sets_the_first_redial_pause() {
    // 50 ms doubling, each pause at least 80 % of that: dials at 0 and after at least
    // 40, 120, 280, 600, 1240 and 2520 ms, so at most six within two seconds; the default
    // (1 s) would allow two.
    let n = redials_in_two_seconds(
        10,
        "dial_backoff_min = \"50ms\"\ndial_backoff_max = \"300s\"",
    );
    assert!((4..=6).contains(&n), "{n} dials");
}

#[test]
fn dial_backoff_max_caps_the_redial_pause() {
    // The same first pause capped at 50 ms: every pause 40–50 ms, so far more dials than the
    // six that doubling allows.
    let n = redials_in_two_seconds(
        11,
        "dial_backoff_min = \"50ms\"\ndial_backoff_max = \"50ms\"",
    );
    assert!(n >= 10, "{n} dials");
}
