//! Nodes built the way the `ringwire` command, the C ABI and Go build theirs: from a
//! [`Config`] through `NodeBuilder::from_config`, for tests that show what a key does.

use ringwire::config::Config;
use ringwire::node::{Node, NodeBuilder};
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::proto::secret::NodeKey;

use crate::node::driver;

/// The default configuration for a test node: listening on a loopback port of its own, the
/// driver under test, two shards, no PEX (the tests add their channels).
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.p2p.laddr = "127.0.0.1:0".parse().expect("loopback address");
    config.p2p.pex = false;
    config.engine.driver = driver();
    config.engine.shards = 2;
    config
}

/// Node `seed` started from `config` with `channels`.
pub fn configured_node(seed: u8, config: &Config, channels: &[ChannelDescriptor]) -> Node {
    let mut b = NodeBuilder::from_config(config, NodeKey::from_seed([seed; 32]))
        .expect("the configuration maps onto a node");
    for c in channels {
        b = b.channel(c.clone());
    }
    b.start().expect("node starts")
}

/// Node 1 (`test_config`) dialed to node 2 (`b_config`), both with `channels`, once both have
/// the peer up.
pub fn connected_pair(b_config: &Config, channels: &[ChannelDescriptor]) -> (Node, Node) {
    let b = configured_node(2, b_config, channels);
    let a = configured_node(1, &test_config(), channels);
    a.dial_blocking(b.listen_addr().expect("listening"), Some(b.node_id()))
        .expect("a dials b");
    crate::node::wait_peers(&b, 1);
    (a, b)
}
