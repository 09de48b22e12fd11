//! An unpaced broadcast loop must not starve the hub's sockets: while the application keeps
//! the shard's inbox full of broadcasts, a peer's messages to the hub still arrive and every
//! peer keeps receiving broadcasts. (The shard handles a bounded number of inbox commands per
//! turn, then yields to I/O; broadcast copies beyond a peer's bounded queue are dropped.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use ringwire::node::{Limits, Node};
use ringwire::router::{Channel, Envelope};
use ringwire_test_support::node::*;

const PEERS: usize = 40;
const PEER_MESSAGES: usize = 50;
const BROADCASTS_PER_PEER: usize = 50;

#[test]
fn unpaced_broadcast_leaves_room_for_io() {
    let bcast = chan(0x30, 1, 4096);
    let inbound = chan(0x31, 1, 4096);
    let hub = builder(210)
        .shards(1)
        .limits(Limits {
            commands_per_turn: 16,
            ..Limits::default()
        })
        .listen("127.0.0.1:0".parse().unwrap())
        .channel(bcast.clone())
        .channel(inbound.clone())
        .start()
        .expect("hub starts");
    let hub_bcast = hub.open_channel(bcast.clone()).unwrap();
    let mut hub_in = hub.open_channel(inbound.clone()).unwrap();
    let addr = hub.listen_addr().unwrap();

    let mut peers: Vec<(Node, Channel, Channel)> = Vec::with_capacity(PEERS);
    for i in 0..PEERS {
        let node = builder_n(5000 + i as u32)
            .channel(bcast.clone())
            .channel(inbound.clone())
            .start()
            .expect("peer starts");
        let b = node.open_channel(bcast.clone()).unwrap();
        let s = node.open_channel(inbound.clone()).unwrap();
        node.dial_blocking(addr, Some(hub.node_id()))
            .expect("dial the hub");
        peers.push((node, b, s));
    }
    wait_peers(&hub, PEERS);

    // The loop: broadcast as fast as the inbox takes them, never pausing.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = hub_bcast.sender();
    let stop2 = stop.clone();
    let looper = std::thread::spawn(move || {
        let payload = Bytes::from(vec![7u8; 1024]);
        let mut queued = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            if sender
                .try_send(Envelope::broadcast(payload.clone()))
                .is_ok()
            {
                queued += 1;
            }
        }
        queued
    });

    // A peer's messages reach the hub while the loop runs.
    let hub_id = hub.node_id();
    let (_, _, to_hub) = &peers[0];
    for i in 0..PEER_MESSAGES {
        to_hub
            .send_blocking(
                Envelope::peer(hub_id, Bytes::from(format!("m{i}"))),
                secs(20),
            )
            .expect("the hub takes the peer's message");
    }
    for i in 0..PEER_MESSAGES {
        let m = hub_in
            .recv_blocking(secs(20))
            .expect("the peer's messages arrive while the hub broadcasts");
        assert_eq!(m.payload, Bytes::from(format!("m{i}")));
    }
    // Every peer keeps receiving broadcasts.
    for (i, (_, b, _)) in peers.iter_mut().enumerate() {
        for _ in 0..BROADCASTS_PER_PEER {
            let m = b
                .recv_blocking(secs(20))
                .unwrap_or_else(|| panic!("peer {i} receives broadcasts"));
            assert_eq!(m.payload.len(), 1024);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let queued = looper.join().unwrap();
    assert!(queued > 0);
    assert_eq!(hub.peers().len(), PEERS, "no peer was lost");
}
