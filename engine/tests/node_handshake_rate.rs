//! `[limits] handshake_rate_per_ip` and `handshake_burst_per_ip` on a node built from its
//! configuration (`docs/RELIABILITY.md` row 4): a flood of handshake starts from one address past
//! the burst is closed at accept, before the node sends a handshake byte, while a peer from
//! another address still gets in.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringwire::node::Node;
use ringwire::proto::conn::{Connection, ConnectionConfig, Event};
use ringwire::proto::nodeinfo::{NodeInfo, NodeInfoOther, ProtocolVersion};
use ringwire::proto::secret::{NodeId, NodeKey};
use ringwire_test_support::node::*;

const NETWORK: &str = "rate-chain";

/// A hub whose only tight per-address limit is the handshake rate: three at once, then one
/// per 100 s.
fn hub() -> Node {
    let toml = format!(
        "[node]\nnetwork = \"{NETWORK}\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\npex = false\n\
         allow_duplicate_ip = true\n\n[engine]\nshards = 1\n\n[limits]\n\
         handshake_rate_per_ip = 0.01\nhandshake_burst_per_ip = 3\n\
         max_pending_handshakes_per_ip = 64\nmax_connections_per_ip = 64\n"
    );
    builder_from_toml(1, &toml).start().expect("hub starts")
}

fn node_info() -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        node_id: String::new(),
        listen_addr: "tcp://127.0.0.2:26656".into(),
        network: NETWORK.into(),
        version: "0.1.0".into(),
        channels: Vec::new(),
        moniker: "other-address".into(),
        other: NodeInfoOther {
            tx_index: "on".into(),
            rpc_address: String::new(),
        },
    }
}

/// Runs a whole connection (handshake, NodeInfo, HELLO) over `s` as node `key`; returns the
/// ID the other end proved, and the socket (the connection lives while it is open).
fn handshake(mut s: TcpStream, key: NodeKey) -> (NodeId, TcpStream) {
    let start = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::new(key, node_info()), [0x77; 32], start)
        .expect("connection config");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        let mut out = Vec::new();
        conn.poll_transmit(now, &mut out);
        s.write_all(&out).unwrap();
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Connected(peer) => {
                    let mut last = Vec::new();
                    conn.poll_transmit(now, &mut last);
                    s.write_all(&last).unwrap();
                    return (peer.node_id, s);
                }
                Event::Closed(e) => panic!("the connection failed: {e}"),
                _ => {}
            }
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no handshake");
        let n = s.read(&mut buf).expect("the hub answers");
        assert!(n > 0, "the hub closed the connection");
        conn.handle_input(now, &buf[..n]).unwrap();
    }
}

#[test]
fn a_handshake_flood_from_one_address_is_refused_at_accept_and_others_get_in() {
    let hub = hub();
    let target = hub.listen_addr().unwrap();
    // Ten handshake starts from 127.0.0.1, one after the other: the burst (three) gets the
    // hub's ephemeral key, the rest are closed at accept.
    let mut flood: Vec<TcpStream> = Vec::new();
    let mut verdicts = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(target).unwrap();
        verdicts.push(refused_at_accept(&mut s, Duration::from_secs(5)));
        flood.push(s);
    }
    assert_eq!(
        verdicts,
        [
            false, false, false, true, true, true, true, true, true, true
        ],
        "three admitted to the handshake, seven refused"
    );
    let refusals = hub.admission_refusals().unwrap();
    assert_eq!(refusals.handshake_rate, 7, "{refusals:?}");
    assert_eq!(refusals.total(), 7, "no other reason: {refusals:?}");
    assert!(hub.stats().accept_refused >= 7);
    assert_eq!(hub.admission_stats().unwrap().pending_inbound, 3);

    // A peer from 127.0.0.2 still completes its handshake and becomes a peer.
    let key = NodeKey::from_seed([2; 32]);
    let (hub_id, _held) = handshake(connect_from([127, 0, 0, 2], target).unwrap(), key.clone());
    assert_eq!(hub_id, hub.node_id());
    let end = Instant::now() + Duration::from_secs(10);
    while !hub.peers().iter().any(|p| p.info.node_id == key.node_id()) {
        assert!(
            Instant::now() < end,
            "the peer from 127.0.0.2 was not admitted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // 127.0.0.1 is still over its rate: a handshake start from it is refused.
    let mut again = TcpStream::connect(target).unwrap();
    assert!(refused_at_accept(&mut again, Duration::from_secs(5)));
    assert_eq!(hub.admission_refusals().unwrap().handshake_rate, 8);
    drop(flood);
    hub.shutdown_blocking(secs(5));
}
