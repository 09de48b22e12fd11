//! A [`Config`] turned into a started [`Node`]: the mapping from configuration keys to the
//! node builder, shared by `ringwire node` and `ringwire testnet`.

use std::time::Duration;

use ringwire::config::Config;
use ringwire::node::{Limits, Node, NodeBuilder};
use ringwire::peers::{AdmissionLimits, ManagerConfig, PeerAddr};
use ringwire::proto::secret::NodeKey;

use crate::Failure;

/// A builder with every setting of `config`: identity, listen address, driver, shards,
/// connection settings, and the peer manager with the `[p2p]` limits and persistent peers.
pub(crate) fn builder(config: &Config, key: NodeKey) -> Result<NodeBuilder, Failure> {
    let persistent = config
        .p2p
        .persistent_peers
        .iter()
        .map(|p| {
            p.to_string()
                .parse::<PeerAddr>()
                .map_err(|e| Failure(format!("p2p.persistent_peers: {p}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let manager = ManagerConfig {
        persistent_peers: persistent,
        limits: AdmissionLimits {
            max_inbound: config.p2p.max_num_inbound_peers as usize,
            max_outbound: config.p2p.max_num_outbound_peers as usize,
            max_pending_inbound: config.limits.max_pending_handshakes as usize,
            max_pending_inbound_per_ip: config.limits.max_pending_handshakes_per_ip as usize,
            max_connections_per_ip: config.limits.max_connections_per_ip as usize,
            allow_duplicate_ip: config.p2p.allow_duplicate_ip,
            unconditional_peer_ids: config.p2p.unconditional_peer_ids.clone(),
            ..AdmissionLimits::default()
        },
        dial_timeout: config.p2p.dial_timeout,
        handshake_timeout: config.p2p.handshake_timeout,
        ..ManagerConfig::default()
    };
    let limits = Limits {
        dial_timeout: config.p2p.dial_timeout,
        recv_queue_capacity: config.limits.recv_queue_capacity.max(1),
        ..Limits::default()
    };
    let settings = config.clone();
    let mut b = Node::builder(key, &config.node.network)
        .moniker(config.node.moniker.clone())
        .listen(config.p2p.laddr)
        .driver(config.engine.driver)
        .offer_native(config.engine.native)
        .capabilities(config.engine.capabilities.iter().cloned())
        .limits(limits)
        .peer_manager(manager)
        .connection_config(move |c| {
            let mut full = settings.connection_config(c.node_key.clone(), c.node_info.clone());
            full.channels = std::mem::take(&mut c.channels);
            *c = full;
        });
    if config.engine.shards > 0 {
        b = b.shards(config.engine.shards);
    }
    Ok(b)
}

/// Parses a duration argument (`10s`, `1m30s`, `500ms`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    ringwire::config::duration::parse(text).map_err(|e| e.to_string())
}
