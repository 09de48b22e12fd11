//! `[limits] max_message_size` holds for the application's own channels too: a channel opened
//! with a larger receive cap gets the configured one, so larger sends are refused at once and
//! the peer's connection carries the lower cap.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::config::Config;
use ringwire::node::NodeBuilder;
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::proto::secret::NodeKey;
use ringwire::router::{Envelope, SendError};
use ringwire_test_support::node::driver;

#[test]
fn max_message_size_lowers_the_cap_of_the_applications_channels() {
    let mut c = Config::default();
    c.p2p.pex = false;
    c.engine.shards = 1;
    c.engine.driver = driver();
    c.limits.max_message_size = 4096;
    let desc = ChannelDescriptor::new(0x70, 1, 1 << 20);
    let node = NodeBuilder::from_config(&c, NodeKey::from_seed([3; 32]))
        .unwrap()
        .no_listen()
        .channel(desc.clone())
        .start()
        .unwrap();
    let mut ch = node.open_channel(desc).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    assert_eq!(
        ch.send_blocking(Envelope::local(Bytes::from(vec![0; 5000])), deadline),
        Err(SendError::TooLarge {
            len: 5000,
            max: 4096
        })
    );
    assert_eq!(
        ch.send_blocking(Envelope::local(Bytes::from(vec![0; 4096])), deadline),
        Ok(1)
    );
    assert_eq!(ch.recv_blocking(deadline).unwrap().payload.len(), 4096);
    node.shutdown_blocking(Instant::now() + Duration::from_secs(2));
}

/// A native peer announces its caps in its HELLO: a message over the peer's cap (though within
/// this node's own) is refused by the connection, dropped and counted, never sent.
#[test]
fn a_message_over_the_native_peers_cap_is_dropped_and_counted() {
    use ringwire_test_support::node::{builder, secs};
    let small = ChannelDescriptor::new(0x70, 1, 1024);
    let large = ChannelDescriptor::new(0x70, 1, 1 << 20);
    let a = builder(5)
        .listen("127.0.0.1:0".parse().unwrap())
        .channel(small.clone())
        .start()
        .unwrap();
    let b = builder(6).channel(large.clone()).start().unwrap();
    let mut rx = a.open_channel(small).unwrap();
    let tx = b.open_channel(large).unwrap();
    b.dial_blocking(a.listen_addr().unwrap(), Some(a.node_id()))
        .unwrap();
    tx.send_blocking(
        Envelope::peer(a.node_id(), Bytes::from(vec![1; 4096])),
        secs(5),
    )
    .unwrap();
    tx.send_blocking(
        Envelope::peer(a.node_id(), Bytes::from(vec![2; 512])),
        secs(5),
    )
    .unwrap();
    // The small one arrives; the large one was dropped by b's connection, and counted.
    assert_eq!(rx.recv_blocking(secs(5)).unwrap().payload.len(), 512);
    assert_eq!(b.stats().queued_dropped, 1);
    assert!(rx.try_recv().is_none());
    for n in [a, b] {
        n.shutdown_blocking(secs(2));
    }
}
