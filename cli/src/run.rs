//! A [`Config`] turned into a node builder, and the command line's duration arguments.

use std::time::Duration;

use ringwire::config::Config;
use ringwire::node::NodeBuilder;
use ringwire::proto::secret::NodeKey;

use crate::Failure;

/// A builder with every setting of `config` ([`NodeBuilder::from_config`], the construction
/// every way of making a node shares).
pub(crate) fn builder(config: &Config, key: NodeKey) -> Result<NodeBuilder, Failure> {
    NodeBuilder::from_config(config, key).map_err(|e| Failure(e.to_string()))
}

/// Parses a duration argument (`10s`, `1m30s`, `500ms`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    ringwire::config::duration::parse(text).map_err(|e| e.to_string())
}
