//! Dialing: wrong identity, unreachable address, self-dial, other network, duplicates,
//! disconnect.

use std::time::{Duration, Instant};

use ringwire::proto::conn::ConnError;
use ringwire::proto::secret::NodeKey;
use ringwire::router::{DialError, DownReason, PeerEvent};
use ringwire_test_support::node::*;

#[test]
fn dial_checks_identity_network_and_self() {
    let a = tcp_node(1, true, &[chan(0x20, 1, 1024)]);
    let b = tcp_node(2, true, &[chan(0x20, 1, 1024)]);
    let addr = b.listen_addr().unwrap();

    let wrong = NodeKey::from_seed([9; 32]).node_id();
    match a.dial_blocking(addr, Some(wrong)) {
        Err(DialError::Handshake(ConnError::WrongPeer { expected, actual })) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, b.node_id());
        }
        other => panic!("unexpected {other:?}"),
    }
    match a.dial_blocking(a.listen_addr().unwrap(), None) {
        Err(DialError::Handshake(ConnError::SelfConnection)) => {}
        other => panic!("unexpected {other:?}"),
    }
    let other_chain = ringwire::node::Node::builder(NodeKey::from_seed([5; 32]), "other-chain")
        .driver(driver())
        .shards(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .channel(chan(0x20, 1, 1024))
        .start()
        .unwrap();
    match a.dial_blocking(other_chain.listen_addr().unwrap(), None) {
        Err(DialError::Handshake(ConnError::NodeInfo(_))) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(a.peers().is_empty());
    for n in [&a, &b, &other_chain] {
        n.shutdown_blocking(secs(5));
    }
}

#[test]
fn dial_to_a_closed_port_fails_to_connect() {
    let a = builder(1).start().unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    match a.dial_blocking(closed, None) {
        Err(DialError::Connect(_)) => {}
        other => panic!("unexpected {other:?}"),
    }
    a.shutdown_blocking(secs(5));
}

#[test]
fn a_second_connection_to_the_same_peer_is_refused() {
    let a = tcp_node(1, true, &[chan(0x20, 1, 1024)]);
    let b = tcp_node(2, true, &[chan(0x20, 1, 1024)]);
    let addr = b.listen_addr().unwrap();
    a.dial_blocking(addr, Some(b.node_id())).unwrap();
    assert!(a.dial_blocking(addr, Some(b.node_id())).is_err());
    // Both sides settle on exactly one connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if a.peers().len() == 1 && b.peers().len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a={} b={}",
            a.peers().len(),
            b.peers().len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!((a.peers().len(), b.peers().len()), (1, 1));
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

#[test]
fn disconnect_reports_down_on_both_sides() {
    let a = tcp_node(1, true, &[chan(0x20, 1, 1024)]);
    let b = tcp_node(2, true, &[chan(0x20, 1, 1024)]);
    let mut ea = a.peer_events();
    let mut eb = b.peer_events();
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    match eb.recv_blocking(secs(5)) {
        Some(PeerEvent::Up { peer, .. }) => assert_eq!(peer.node_id, a.node_id()),
        other => panic!("unexpected {other:?}"),
    }
    assert!(a.disconnect(&b.node_id(), "testing"));
    match wait_down(&mut ea) {
        PeerEvent::Down { node_id, reason } => {
            assert_eq!(node_id, b.node_id());
            assert_eq!(reason, DownReason::Local("testing".into()));
        }
        PeerEvent::Up { .. } => unreachable!(),
    }
    match wait_down(&mut eb) {
        PeerEvent::Down { node_id, reason } => {
            assert_eq!(node_id, a.node_id());
            assert_eq!(
                reason,
                DownReason::Protocol(ConnError::PeerClosed("testing".into()))
            );
        }
        PeerEvent::Up { .. } => unreachable!(),
    }
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}
