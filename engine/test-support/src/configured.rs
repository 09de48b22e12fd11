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
