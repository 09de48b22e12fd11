//! Bad input at the socket closes only that connection, with a counted reason, and file
//! descriptors return to their baseline. One test in this binary, so the descriptor count is not
//! disturbed by other tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::router::Envelope;
use ringwire_test_support::node::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Reads until the node closes the socket; panics if it stays open past `within`.
fn expect_closed(mut s: TcpStream, within: Duration) {
    s.set_read_timeout(Some(within)).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("socket still open after {:?}: {e}", start.elapsed()),
        }
    }
}

#[test]
fn bad_input_closes_only_that_connection() {
    let desc = chan(0x20, 1, 1024);
    let a = builder(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .channel(desc.clone())
        .connection_config(|c| c.handshake_timeout = Duration::from_millis(500))
        .start()
        .unwrap();
    let c = tcp_node(3, true, std::slice::from_ref(&desc));
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cc = c.open_channel(desc).unwrap();
    a.dial_blocking(c.listen_addr().unwrap(), Some(c.node_id()))
        .unwrap();
    let addr = a.listen_addr().unwrap();
    // Let every thread and runtime settle before taking the baseline.
    std::thread::sleep(Duration::from_millis(100));
    let baseline = open_fds();

    // 1. Garbage instead of a handshake.
    let mut s = TcpStream::connect(addr).unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&garbage);
    expect_closed(s, Duration::from_secs(10));

    // 2. A length prefix far beyond any limit.
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0]);
    expect_closed(s, Duration::from_secs(10));

    // 3. Slowloris: one byte and then silence; closed at the handshake deadline.
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(&[0x22]);
    expect_closed(s, Duration::from_secs(10));

    // 4. Connect and say nothing at all.
    let s = TcpStream::connect(addr).unwrap();
    expect_closed(s, Duration::from_secs(10));

    let deadline = secs(10);
    while a.stats().protocol_errors < 4 {
        assert!(Instant::now() < deadline, "{:?}", a.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    // The honest peer was not disturbed.
    assert_eq!(a.peers().len(), 1);
    ca.send_blocking(
        Envelope::peer(c.node_id(), Bytes::from_static(b"still here")),
        secs(5),
    )
    .unwrap();
    assert_eq!(
        cc.recv_blocking(secs(5)).unwrap().payload,
        &b"still here"[..]
    );

    while open_fds() > baseline {
        assert!(
            Instant::now() < deadline,
            "fds: {} > baseline {baseline}",
            open_fds()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    a.shutdown_blocking(secs(5));
    c.shutdown_blocking(secs(5));
}
