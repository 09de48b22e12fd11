//! One hub with 2 shards and 200 peers over loopback TCP: cross-shard sends, broadcast to all,
//! role-addressed sends reaching exactly the peers with the capability, and fan-out counts.

use std::collections::HashSet;

use bytes::Bytes;
use ringwire::node::Node;
use ringwire::router::{Channel, Envelope, Fanout};
use ringwire_test_support::node::*;

const PEERS: usize = 200;
const MARK: &[u8] = b"mark";

fn is_archive(i: usize) -> bool {
    i.is_multiple_of(4)
}

/// Drains `ch` up to the next marker broadcast; returns what came before it.
fn until_mark(ch: &mut Channel) -> Vec<Bytes> {
    let mut got = Vec::new();
    loop {
        let m = ch.recv_blocking(secs(30)).expect("marker arrives");
        if m.payload == MARK {
            return got;
        }
        got.push(m.payload);
    }
}

#[test]
fn two_hundred_peers_over_two_shards() {
    let desc = chan(0x30, 1, 1024);
    let hub = builder(200)
        .shards(2)
        .listen("127.0.0.1:0".parse().unwrap())
        .channel(desc.clone())
        .start()
        .expect("hub starts");
    let hub_ch = hub.open_channel(desc.clone()).unwrap();
    let addr = hub.listen_addr().unwrap();

    let mut peers: Vec<(Node, Channel)> = Vec::with_capacity(PEERS);
    for i in 0..PEERS {
        let caps: Vec<&str> = if is_archive(i) {
            vec!["archive"]
        } else {
            vec![]
        };
        let node = builder_n(1000 + i as u32)
            .capabilities(caps)
            .channel(desc.clone())
            .start()
            .expect("peer starts");
        let ch = node.open_channel(desc.clone()).unwrap();
        node.dial_blocking(addr, Some(hub.node_id()))
            .expect("dial the hub");
        peers.push((node, ch));
    }
    wait_peers(&hub, PEERS);
    let shards: HashSet<usize> = hub.peers().iter().map(|p| p.shard).collect();
    assert_eq!(shards.len(), 2, "inbound connections use both shards");

    // Cross-shard sends: the test thread sends to every peer; each gets exactly its own.
    for (i, (node, _)) in peers.iter().enumerate() {
        let p = Bytes::from(format!("to {i}"));
        hub_ch
            .send_blocking(Envelope::peer(node.node_id(), p), secs(10))
            .unwrap();
    }
    // Broadcast: everybody.
    let n = hub_ch
        .send_blocking(Envelope::broadcast(Bytes::from_static(b"all")), secs(10))
        .unwrap();
    assert_eq!(n, PEERS);
    // Role sends.
    let archive = (0..PEERS).filter(|&i| is_archive(i)).count();
    let send_role = |fanout, tag: &'static [u8]| {
        hub_ch
            .send_blocking(
                Envelope::role("archive", fanout, Bytes::from_static(tag)),
                secs(10),
            )
            .unwrap()
    };
    assert_eq!(send_role(Fanout::All, b"role-all"), archive);
    assert_eq!(send_role(Fanout::Count(7), b"role-7"), 7);
    assert_eq!(
        send_role(Fanout::Fraction(0.5), b"role-half"),
        archive.div_ceil(2)
    );
    assert_eq!(
        hub_ch
            .send_blocking(
                Envelope::role("nobody", Fanout::All, Bytes::from_static(b"x")),
                secs(10)
            )
            .unwrap(),
        0
    );
    hub_ch
        .send_blocking(Envelope::broadcast(Bytes::from_static(MARK)), secs(10))
        .unwrap();

    let (mut seven, mut half) = (0, 0);
    for (i, (_, ch)) in peers.iter_mut().enumerate() {
        let got = until_mark(ch);
        assert_eq!(got[0], format!("to {i}").as_bytes());
        assert_eq!(got[1], &b"all"[..]);
        let rest: Vec<&[u8]> = got[2..].iter().map(|b| b.as_ref()).collect();
        if is_archive(i) {
            assert_eq!(rest[0], b"role-all", "peer {i}");
        } else {
            assert!(
                rest.is_empty(),
                "peer {i} without the capability got {rest:?}"
            );
        }
        seven += rest.iter().filter(|r| **r == b"role-7").count();
        half += rest.iter().filter(|r| **r == b"role-half").count();
    }
    assert_eq!(seven, 7);
    assert_eq!(half, archive.div_ceil(2));
    assert_eq!(hub.stats().fanout_dropped, 0);

    for (node, _) in &peers {
        node.shutdown_blocking(secs(5));
    }
    hub.shutdown_blocking(secs(5));
}

/// Many peers sending at once to a hub whose shards lend only 4 read buffers each: reads wait
/// for a free buffer (ENOBUFS on io_uring is retried), nothing is lost or corrupted.
#[test]
fn many_senders_share_a_small_read_pool() {
    const N: usize = 60;
    const EACH: usize = 20;
    let desc = chan(0x30, 1, 64 * 1024);
    let hub = builder(201)
        .shards(2)
        .listen("127.0.0.1:0".parse().unwrap())
        .limits(ringwire::node::Limits {
            shard_read_buffers: 4,
            read_buffer: 4096,
            ..Default::default()
        })
        .channel(desc.clone())
        .start()
        .expect("hub starts");
    let mut hub_ch = hub.open_channel(desc.clone()).unwrap();
    let addr = hub.listen_addr().unwrap();
    let mut peers = Vec::new();
    for i in 0..N {
        let node = builder_n(5000 + i as u32)
            .channel(desc.clone())
            .start()
            .unwrap();
        let ch = node.open_channel(desc.clone()).unwrap();
        node.dial_blocking(addr, Some(hub.node_id())).unwrap();
        peers.push((node, ch));
    }
    wait_peers(&hub, N);
    let hub_id = hub.node_id();
    std::thread::scope(|s| {
        for (i, (_, ch)) in peers.iter().enumerate() {
            let sender = ch.sender();
            s.spawn(move || {
                for k in 0..EACH {
                    let p = payload(4000 + k, (i + k) as u8);
                    sender
                        .send_blocking(Envelope::peer(hub_id, p), secs(30))
                        .unwrap();
                }
            });
        }
    });
    let index: std::collections::HashMap<_, _> = peers
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.node_id(), i))
        .collect();
    let mut next = vec![0usize; N];
    for _ in 0..N * EACH {
        let m = hub_ch.recv_blocking(secs(30)).expect("message");
        let ringwire::router::Origin::Peer(from) = m.origin else {
            panic!("unexpected local message");
        };
        let i = index[&from];
        let k = next[i];
        assert!(
            m.payload == payload(4000 + k, (i + k) as u8),
            "peer {i} message {k}"
        );
        next[i] += 1;
    }
    eprintln!(
        "reads that waited for a pooled buffer: {}",
        hub.stats().read_buffers_exhausted
    );
    for (node, _) in &peers {
        node.shutdown_blocking(secs(5));
    }
    hub.shutdown_blocking(secs(5));
}
