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
