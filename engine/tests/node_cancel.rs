//! Giving up a blocking dial or request from another thread with a [`CancelToken`] (what the
//! C ABI's `ringwire_cancel` and a Go `context.Context` come down to): the call returns at
//! once, a connect in progress is dropped and frees its dialing place, a connection still in
//! its handshake is closed instead of admitted, and a request is withdrawn at the peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::CancelToken;
use ringwire::router::{DialError, PeerEvent, SendError};
use ringwire_test_support::configured::{configured_node, connected_pair, test_config};
use ringwire_test_support::node::*;

/// A listening socket whose accept queue is full, so a connect to it waits (its SYNs are
/// dropped) until it gives up; the clients that fill it are returned to keep it full.
fn full_listener() -> (socket2::Socket, SocketAddr, Vec<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    while let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        fillers.push(s);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    (l, addr, fillers)
}

/// Waits until `f` holds, for at most `within`.
fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_dial_waiting_on_its_connect_gives_up_when_cancelled_and_frees_its_place() {
    let a = configured_node(1, &test_config(), &[chan(0x20, 1, 1024)]);
    let (_listener, addr, _fillers) = full_listener();
    let token = CancelToken::new();
    // A dial to a known ID holds one of the node's dialing places while it runs.
    let id = ringwire::proto::secret::NodeKey::from_seed([9; 32]).node_id();
    let dialer = {
        let (a, token) = (a.clone(), token.clone());
        std::thread::spawn(move || {
            let r = a.dial_blocking_cancellable(addr, Some(id), &token);
            (r, Instant::now())
        })
    };
    eventually(
        Duration::from_secs(5),
        "the dial holds a dialing place",
        || a.admission_stats().is_some_and(|s| s.dialing == 1),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dialer.is_finished(), "the connect did not wait");
    let fired = Instant::now();
    token.cancel();
    let (result, returned) = dialer.join().unwrap();
    assert_eq!(result.unwrap_err(), DialError::Abandoned);
    assert!(
        returned - fired < Duration::from_millis(500),
        "returned {:?} after the cancel",
        returned - fired
    );
    // At once, not at the dial's own timeout (3 s).
    eventually(
        Duration::from_millis(500),
        "the dialing place is freed",
        || a.admission_stats().is_some_and(|s| s.dialing == 0),
    );
    a.shutdown_blocking(secs(5));
}

/// A relay to `to` that holds every byte, both ways, until `release` is set.
fn held_relay(to: SocketAddr, release: Arc<AtomicBool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (inbound, _) = l.accept().unwrap();
        let outbound = TcpStream::connect(to).unwrap();
        while !release.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let pipe = |mut from: TcpStream, mut to: TcpStream| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 << 10];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(std::net::Shutdown::Write);
            });
        };
        pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
        pipe(outbound, inbound);
    });
    addr
}

#[test]
fn a_dial_cancelled_during_its_handshake_leaves_no_peer() {
    let desc = chan(0x20, 1, 1024);
    let a = configured_node(1, &test_config(), std::slice::from_ref(&desc));
    let b = configured_node(2, &test_config(), std::slice::from_ref(&desc));
    let mut b_events = b.peer_events();
    let mut a_events = a.peer_events();
    let release = Arc::new(AtomicBool::new(false));
    let relay = held_relay(b.listen_addr().unwrap(), release.clone());
    let token = CancelToken::new();
    let dialer = {
        let (a, token, id) = (a.clone(), token.clone(), b.node_id());
        std::thread::spawn(move || a.dial_blocking_cancellable(relay, Some(id), &token))
    };
    std::thread::sleep(Duration::from_millis(200));
    token.cancel();
    assert_eq!(dialer.join().unwrap().unwrap_err(), DialError::Abandoned);
    // The handshake now completes: b admits a, and a closes the connection it no longer wants.
    release.store(true, Ordering::Release);
    match b_events.recv_blocking(secs(5)) {
        Some(PeerEvent::Up { peer, .. }) => assert_eq!(peer.node_id, a.node_id()),
        other => panic!("b never saw the handshake complete: {other:?}"),
    }
    match b_events.recv_blocking(secs(5)) {
        Some(PeerEvent::Down { node_id, .. }) => assert_eq!(node_id, a.node_id()),
        other => panic!("a kept the connection: {other:?}"),
    }
    assert!(
        a_events
            .recv_blocking(Instant::now() + Duration::from_millis(300))
            .is_none(),
        "a reported a peer it gave up"
    );
    assert!(a.peers().is_empty());
    eventually(Duration::from_secs(5), "the dialing place is freed", || {
        a.admission_stats().is_some_and(|s| s.dialing == 0)
    });
    for n in [&a, &b] {
        n.shutdown_blocking(secs(5));
    }
}

#[test]
fn a_cancelled_request_returns_at_once_and_is_withdrawn_at_the_peer() {
    let desc = chan(0x60, 1, 1 << 20);
    let (a, b) = connected_pair(&test_config(), std::slice::from_ref(&desc));
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    let token = CancelToken::new();
    let asker = {
        let (sender, token, peer) = (ca.sender(), token.clone(), b.node_id());
        std::thread::spawn(move || {
            let r = sender.request_blocking_cancellable(
                peer,
                Bytes::from_static(b"question"),
                secs(30),
                &token,
            );
            (r, Instant::now())
        })
    };
    let held = cb
        .recv_blocking(secs(10))
        .expect("the request arrives")
        .request
        .expect("it is a request");
    assert!(!held.is_cancelled());
    let fired = Instant::now();
    token.cancel();
    let (result, returned) = asker.join().unwrap();
    assert_eq!(result, Err(SendError::Abandoned));
    assert!(returned - fired < Duration::from_millis(500));
    eventually(
        Duration::from_secs(5),
        "the peer learns the request was withdrawn",
        || held.is_cancelled(),
    );
    assert_eq!(
        cb.respond(held, Bytes::from_static(b"late")),
        Err(SendError::Cancelled)
    );
    for n in [&a, &b] {
        n.shutdown_blocking(secs(5));
    }
}
