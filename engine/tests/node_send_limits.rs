//! The `[limits]` keys that bound what waits to be sent, set in a `Config` and mapped by
//! `NodeBuilder::from_config`: `max_peer_send_bytes` (payload bytes waiting for one peer, all
//! its channels together) and `channel_send_queue_capacity` (the send queue of channels opened
//! without one). `docs/RELIABILITY.md` row 10.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::config::Config;
use ringwire::node::Node;
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::proto::secret::NodeId;
use ringwire::router::{Channel, ChannelTraffic, Envelope, SendError};
use ringwire_test_support::configured::{configured_node, test_config};
use ringwire_test_support::node::*;

/// A receiver that stalls quickly: small windows and receive queues, and (in the tests) an
/// application that does not read.
fn stalling_config() -> Config {
    let mut config = test_config();
    config.limits.native_window = 16 * 1024;
    config.limits.recv_queue_capacity = 1;
    config
}

/// `a` dialed `b` (both started from their configurations, with `channels`).
fn pair(a: &Config, b: &Config, channels: &[ChannelDescriptor]) -> (Node, Node) {
    let b = configured_node(2, b, channels);
    let a = configured_node(1, a, channels);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    wait_peers(&b, 1);
    (a, b)
}

/// Sends `msg` to `peer` until the channel stays full: `Full` from `try_send`, confirmed by a
/// short `send` that times out (a `Full` may be momentary while the shard drains). Returns how
/// many were accepted.
fn fill(ch: &Channel, peer: NodeId, msg: &Bytes) -> usize {
    let give_up = secs(60);
    let mut accepted = 0;
    loop {
        assert!(
            Instant::now() < give_up,
            "the stalled peer never pushed back"
        );
        match ch.try_send(Envelope::peer(peer, msg.clone())) {
            Ok(_) => accepted += 1,
            Err(SendError::Full) => {
                let d = Instant::now() + Duration::from_millis(300);
                match ch.send_blocking(Envelope::peer(peer, msg.clone()), d) {
                    Ok(_) => accepted += 1,
                    Err(SendError::Timeout) => return accepted,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

/// What waits for `peer` at `node`, per channel.
fn waiting(node: &Node, peer: NodeId) -> Vec<ChannelTraffic> {
    node.peer_traffic()
        .into_iter()
        .find(|t| t.node_id == peer)
        .expect("peer connected")
        .channels
}

fn on(traffic: &[ChannelTraffic], channel: u8) -> ChannelTraffic {
    *traffic
        .iter()
        .find(|c| c.channel == channel)
        .expect("shared channel")
}

#[test]
fn max_peer_send_bytes_bounds_what_waits_for_a_peer_over_all_its_channels() {
    let channels = [chan(0x50, 1, 1 << 20), chan(0x51, 1, 1 << 20)];
    let mut config = test_config();
    config.limits.max_peer_send_bytes = 64 * 1024;
    let (a, b) = pair(&config, &stalling_config(), &channels);
    let ca: Vec<Channel> = channels
        .iter()
        .map(|c| a.open_channel(c.clone()).unwrap())
        .collect();
    let mut cb: Vec<Channel> = channels
        .iter()
        .map(|c| b.open_channel(c.clone()).unwrap())
        .collect();
    let peer = b.node_id();

    // b does not read: 16 KiB messages on 0x50 pile up until 64 KiB wait at a (four of
    // them; 0x50's sixteen credits are not what stops it).
    let big = Bytes::from(vec![0x5A; 16 * 1024]);
    let accepted = fill(&ca[0], peer, &big);
    let w = waiting(&a, peer);
    assert_eq!(on(&w, 0x50).pending_bytes, 64 * 1024, "{w:?}");
    assert_eq!(on(&w, 0x50).queued_messages, 4);

    // The budget is the peer's, not the channel's: 0x51, with every credit free, is full too.
    let small = Bytes::from(vec![0xA5; 1024]);
    assert_eq!(
        ca[1].try_send(Envelope::peer(peer, small.clone())),
        Err(SendError::Full)
    );
    let d = Instant::now() + Duration::from_millis(300);
    assert_eq!(
        ca[1].send_blocking(Envelope::peer(peer, small.clone()), d),
        Err(SendError::Timeout)
    );
    assert_eq!(on(&waiting(&a, peer), 0x51).queued_messages, 0);

    // Once b reads 0x50, a sender waiting on 0x51 gets through.
    let mut r50 = cb.remove(0);
    let reader = std::thread::spawn(move || {
        for _ in 0..accepted {
            r50.recv_blocking(secs(30)).expect("b reads 0x50");
        }
    });
    ca[1]
        .send_blocking(Envelope::peer(peer, small.clone()), secs(30))
        .unwrap();
    assert_eq!(cb[0].recv_blocking(secs(30)).unwrap().payload, small);
    reader.join().unwrap();
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

#[test]
fn channel_send_queue_capacity_is_the_queue_of_channels_opened_without_one() {
    // 0x50 sets no capacity (0): it gets the key's 3; 0x51 keeps its own 5.
    let channels = [
        ChannelDescriptor::new(0x50, 1, 1 << 20),
        ChannelDescriptor {
            send_queue_capacity: 5,
            ..ChannelDescriptor::new(0x51, 1, 1 << 20)
        },
    ];
    let mut config = test_config();
    config.limits.channel_send_queue_capacity = 3;
    let (a, b) = pair(&config, &stalling_config(), &channels);
    let ca: Vec<Channel> = channels
        .iter()
        .map(|c| a.open_channel(c.clone()).unwrap())
        .collect();
    let _cb: Vec<Channel> = channels
        .iter()
        .map(|c| b.open_channel(c.clone()).unwrap())
        .collect();
    let peer = b.node_id();
    let msg = Bytes::from(vec![0x5A; 1024]);
    for (ch, capacity) in ca.iter().zip([3, 5]) {
        fill(ch, peer, &msg);
        // Full because every credit of the channel is taken: as many as its capacity.
        let w = on(&waiting(&a, peer), ch.id());
        assert_eq!(w.queued_messages, capacity, "{w:?}");
    }
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}
