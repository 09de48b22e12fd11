//! `[p2p] send_rate`, `recv_rate` and `flush_throttle_timeout` on nodes built from a
//! configuration: the rates cap bytes per second to and from a peer on both protocols; the
//! flush throttle holds a partial batch of stock packets back as stock does. The bounds only
//! ever assert "slower than the cap allows" against "well within that when unlimited", so a
//! busy machine cannot make them flake.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::config::Config;
use ringwire::node::{Node, NodeBuilder};
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::proto::secret::NodeKey;
use ringwire::router::Envelope;
use ringwire_test_support::node::driver;

const MIB: usize = 1 << 20;

fn blocksync() -> ChannelDescriptor {
    ChannelDescriptor::stock()
        .into_iter()
        .find(|d| d.id == 0x40)
        .expect("the stock blocksync channel")
}

/// A node from a configuration with `tune` applied, on loopback, with the blocksync channel.
fn node(seed: u8, native: bool, tune: impl FnOnce(&mut Config)) -> Node {
    let mut c = Config::default();
    c.p2p.laddr = "127.0.0.1:0".parse().unwrap();
    c.p2p.pex = false;
    c.p2p.allow_duplicate_ip = true;
    c.engine.shards = 1;
    c.engine.native = native;
    c.engine.driver = driver();
    tune(&mut c);
    NodeBuilder::from_config(&c, NodeKey::from_seed([seed; 32]))
        .unwrap()
        .channel(blocksync())
        .start()
        .unwrap()
}

/// Sends `total` bytes in 64 KiB messages from `a` to `b`; returns how long until `b` had
/// them all.
fn transfer(a: &Node, b: &Node, total: usize) -> Duration {
    let tx = a.open_channel(blocksync()).unwrap();
    let mut rx = b.open_channel(blocksync()).unwrap();
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    let start = Instant::now();
    let payload = Bytes::from(vec![7u8; 64 * 1024]);
    let to = b.node_id();
    let sender = std::thread::spawn(move || {
        for _ in 0..total / payload.len() {
            tx.send_blocking(
                Envelope::peer(to, payload.clone()),
                Instant::now() + Duration::from_secs(60),
            )
            .unwrap();
        }
    });
    let mut got = 0;
    while got < total {
        let m = rx
            .recv_blocking(Instant::now() + Duration::from_secs(60))
            .expect("the transfer goes on");
        got += m.payload.len();
    }
    let took = start.elapsed();
    sender.join().unwrap();
    took
}

fn stop(nodes: [Node; 2]) {
    for n in nodes {
        n.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    }
}

#[test]
fn send_rate_caps_bytes_per_second_to_a_peer_on_both_protocols() {
    for native in [true, false] {
        // 4 MiB at 2 MB/s: at least 1.9 s (less the first burst: the larger of a write batch,
        // 256 KiB, and a tenth of a second of the rate).
        let a = node(1, native, |c| c.p2p.send_rate = 2_000_000);
        let b = node(2, native, |_| {});
        let took = transfer(&a, &b, 4 * MIB);
        assert!(
            took >= Duration::from_millis(1500),
            "native={native}: {took:?}"
        );
        stop([a, b]);

        let a = node(3, native, |_| {});
        let b = node(4, native, |_| {});
        let took = transfer(&a, &b, 4 * MIB);
        assert!(
            took < Duration::from_millis(1500),
            "unlimited, native={native}: {took:?}"
        );
        stop([a, b]);
    }
}

#[test]
fn recv_rate_caps_bytes_per_second_from_a_peer_on_both_protocols() {
    for native in [true, false] {
        let a = node(5, native, |_| {});
        let b = node(6, native, |c| c.p2p.recv_rate = 2_000_000);
        let took = transfer(&a, &b, 4 * MIB);
        assert!(
            took >= Duration::from_millis(1500),
            "native={native}: {took:?}"
        );
        stop([a, b]);
    }
}

/// One small message's trip from `a` to `b`, stock framing on both ends.
fn small_message_trip(throttle: Duration) -> Duration {
    let a = node(7, false, |c| c.p2p.flush_throttle_timeout = throttle);
    let b = node(8, false, |_| {});
    let tx = a.open_channel(blocksync()).unwrap();
    let mut rx = b.open_channel(blocksync()).unwrap();
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    // Let the connection settle (the first packets after the handshake and their throttled
    // flush), then time one.
    std::thread::sleep(throttle + Duration::from_millis(300));
    let start = Instant::now();
    tx.send_blocking(
        Envelope::peer(b.node_id(), Bytes::from_static(b"vote")),
        Instant::now() + Duration::from_secs(10),
    )
    .unwrap();
    rx.recv_blocking(Instant::now() + Duration::from_secs(10))
        .expect("the message arrives");
    let took = start.elapsed();
    stop([a, b]);
    took
}

#[test]
fn flush_throttle_holds_a_partial_batch_of_stock_packets() {
    let throttled = small_message_trip(Duration::from_millis(400));
    assert!(throttled >= Duration::from_millis(350), "{throttled:?}");
    let at_once = small_message_trip(Duration::ZERO);
    assert!(at_once < Duration::from_millis(350), "{at_once:?}");
}

#[test]
fn flush_throttle_delays_bytes_but_never_caps_messages() {
    // Stock's mempool channel: a send queue of one message, each send waiting for room. A
    // throttled batch takes in every send that comes while it waits (as stock's send routine
    // packs its write buffer), so 300 transactions pass in one or two throttle periods (about
    // 0.1 s); packing only when the throttle ended let about two per period through (15 s
    // here), and packing without taking the next held send once a packet was taken out, a
    // few dozen (3.5 to 6 s).
    let mempool = ChannelDescriptor::stock()
        .into_iter()
        .find(|d| d.id == 0x30)
        .expect("the stock mempool channel");
    assert_eq!(mempool.send_queue_capacity, 1);
    let throttle = Duration::from_millis(100);
    let a = node(9, false, |c| c.p2p.flush_throttle_timeout = throttle);
    let b = node(10, false, |_| {});
    let tx = a.open_channel(mempool.clone()).unwrap();
    let mut rx = b.open_channel(mempool).unwrap();
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    let to = b.node_id();
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        for i in 0..300u32 {
            tx.send_blocking(
                Envelope::peer(to, Bytes::from(i.to_be_bytes().repeat(64))),
                Instant::now() + Duration::from_secs(60),
            )
            .unwrap();
        }
    });
    for i in 0..300u32 {
        let m = rx
            .recv_blocking(Instant::now() + Duration::from_secs(60))
            .expect("the transactions arrive");
        assert_eq!(&m.payload[..4], i.to_be_bytes(), "in order");
    }
    let took = start.elapsed();
    sender.join().unwrap();
    stop([a, b]);
    assert!(took < Duration::from_secs(2), "{took:?}");
}
