//! Delivery deadlines end to end (`Envelope::deliver_within`): a message whose deadline passes
//! before it is written is dropped by the sender, one whose time-to-live runs out while it
//! waits for the receiving application is dropped by the receiver, both counted in
//! `NodeStats`; messages within their deadline and messages without one are delivered. Run
//! under both drivers (`RINGWIRE_DRIVER=io_uring`, `RINGWIRE_DRIVER=epoll`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::node::Node;
use ringwire::router::{Channel, Envelope};
use ringwire_test_support::node::*;

const CH: u8 = 0x20;

fn pair(native: bool) -> (Node, Node) {
    let a = tcp_node(1, native, &[chan(CH, 1, 1 << 20)]);
    let b = tcp_node(2, native, &[chan(CH, 1, 1 << 20)]);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    wait_peers(&b, 1);
    (a, b)
}

/// Everything `ch` receives until `quiet` passes without a message.
fn drain(ch: &mut Channel, quiet: Duration) -> Vec<Bytes> {
    let mut got = Vec::new();
    while let Some(m) = ch.recv_blocking(Instant::now() + quiet) {
        got.push(m.payload);
    }
    got
}

/// A message whose deadline has already passed when the shard takes it is not sent, on
/// native and compat connections alike; the ones around it are.
fn expired_before_send(native: bool) {
    let (a, b) = pair(native);
    let ca = a.open_channel(chan(CH, 1, 1 << 20)).unwrap();
    let mut cb = b.open_channel(chan(CH, 1, 1 << 20)).unwrap();
    let to = b.node_id();
    let past = Instant::now() - Duration::from_millis(1);
    ca.send_blocking(Envelope::peer(to, Bytes::from_static(b"first")), secs(30))
        .unwrap();
    for _ in 0..5 {
        let stale = Envelope::peer(to, Bytes::from_static(b"stale")).deliver_by(Some(past));
        ca.send_blocking(stale, secs(30)).unwrap();
    }
    let fresh = Envelope::peer(to, Bytes::from_static(b"fresh")).deliver_within(secs_dur(60));
    ca.send_blocking(fresh, secs(30)).unwrap();
    let mut got = Vec::new();
    let give_up = secs(60);
    while got.len() < 2 && Instant::now() < give_up {
        if let Some(m) = cb.recv_blocking(Instant::now() + Duration::from_millis(200)) {
            got.push(m.payload);
        }
    }
    got.extend(drain(&mut cb, Duration::from_millis(300)));
    assert_eq!(
        got,
        vec![Bytes::from_static(b"first"), Bytes::from_static(b"fresh")],
        "native={native}"
    );
    assert_eq!(a.stats().expired_before_send, 5, "native={native}");
    assert_eq!(b.stats().expired_before_delivery, 0, "native={native}");
}

fn secs_dur(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn expired_before_send_native() {
    expired_before_send(true);
}

#[test]
fn expired_before_send_compat() {
    expired_before_send(false);
}

/// A native receiver whose application is late drops what outlived its time-to-live and
/// counts it; messages without a deadline or with a long one still arrive.
#[test]
fn expired_before_delivery_native() {
    let (a, b) = pair(true);
    let ca = a.open_channel(chan(CH, 1, 1 << 20)).unwrap();
    // b's application does not read for a while.
    let mut cb = b.open_channel(chan(CH, 1, 1 << 20)).unwrap();
    let to = b.node_id();
    let ttl = Duration::from_secs(1);
    const SHORT: u64 = 8;
    for _ in 0..SHORT {
        let env = Envelope::peer(to, Bytes::from_static(b"short")).deliver_within(ttl);
        ca.send_blocking(env, secs(30)).unwrap();
    }
    let long = Envelope::peer(to, Bytes::from_static(b"long")).deliver_within(secs_dur(120));
    ca.send_blocking(long, secs(30)).unwrap();
    ca.send_blocking(Envelope::peer(to, Bytes::from_static(b"none")), secs(30))
        .unwrap();
    // Wait until the last one has reached b (its queue holds them all), then past the TTL.
    let give_up = secs(60);
    let want = SHORT * 5 + 4 + 4;
    let received = |n: &Node| -> u64 {
        n.peer_traffic()
            .iter()
            .flat_map(|p| &p.channels)
            .map(|c| c.received_bytes)
            .sum()
    };
    while received(&b) < want {
        assert!(Instant::now() < give_up, "messages never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(ttl + Duration::from_millis(200));
    let got = drain(&mut cb, Duration::from_millis(500));
    assert_eq!(
        got,
        vec![Bytes::from_static(b"long"), Bytes::from_static(b"none")]
    );
    let (sent_dropped, recv_dropped) = (
        a.stats().expired_before_send,
        b.stats().expired_before_delivery,
    );
    // Every short-lived message was dropped, by the sender if it was very late (a loaded
    // machine) and otherwise by the receiver; here they all reached b, so b dropped them.
    assert_eq!(sent_dropped, 0);
    assert_eq!(recv_dropped, SHORT);
}

/// `recv_many` takes what waits in one step, in order and at most `limit` at a time, drops
/// (and counts) messages whose time-to-live ran out while they waited, and returns 0 once its
/// deadline passes with nothing to take.
#[test]
fn recv_many_takes_what_waits_in_order_and_drops_the_expired() {
    let (a, b) = pair(true);
    let ca = a.open_channel(chan(CH, 1, 1 << 20)).unwrap();
    let mut cb = b.open_channel(chan(CH, 1, 1 << 20)).unwrap();
    let to = b.node_id();
    let msg = |i: u32| Bytes::from(i.to_be_bytes().to_vec());
    for i in 0..60u32 {
        let mut env = Envelope::peer(to, msg(i));
        if i % 10 == 5 {
            env = env.deliver_within(Duration::from_secs(1));
        }
        ca.send_blocking(env, secs(30)).unwrap();
    }
    // Wait until all 60 have reached b, then past the short time-to-live.
    let give_up = secs(60);
    while b
        .peer_traffic()
        .iter()
        .flat_map(|p| &p.channels)
        .map(|c| c.received_bytes)
        .sum::<u64>()
        < 60 * 4
    {
        assert!(Instant::now() < give_up, "messages never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1200));
    let mut got = Vec::new();
    let n = cb.recv_many_blocking(&mut got, 20, secs(10));
    assert!(n > 0 && n <= 20 && got.len() == n, "{n}");
    while got.len() < 54 {
        let before = got.len();
        let n = cb.recv_many_blocking(&mut got, 64, secs(10));
        assert!(n > 0 && got.len() == before + n);
    }
    let want: Vec<Bytes> = (0..60u32).filter(|i| i % 10 != 5).map(msg).collect();
    let payloads: Vec<Bytes> = got.into_iter().map(|m| m.payload).collect();
    assert_eq!(payloads, want);
    assert_eq!(b.stats().expired_before_delivery, 6);
    let started = Instant::now();
    let mut none = Vec::new();
    let n = cb.recv_many_blocking(&mut none, 8, Instant::now() + Duration::from_millis(150));
    assert_eq!((n, none.len()), (0, 0));
    assert!(started.elapsed() >= Duration::from_millis(140));
}
