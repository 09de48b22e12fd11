//! [`NodeBuilder::from_config`]: the one mapping from a [`Config`] (ringwire's TOML, or an
//! imported CometBFT home) to a node. The `ringwire` command, the C ABI and through it the Go
//! binding all build their nodes here, so every key means the same on every path.

use crate::config::Config;
use crate::peers::{AdmissionLimits, BackoffConfig, HandshakeRate, ManagerConfig, PeerAddr};
use crate::proto::secret::NodeKey;

use super::{Limits, Node, NodeBuilder, StartError};

impl NodeBuilder {
    /// A builder with every setting of `config`: identity (`key`), network and moniker, the
    /// listen address, driver and shards (0: one per core), the connection settings (timeouts,
    /// keepalive, native protocol, windows, compression), the engine's queue bounds, the peer
    /// manager with the `[p2p]` and `[limits]` admission limits, the persistent peers and the
    /// seeds, and peer exchange when `p2p.pex` is on (dialing from the address book, or
    /// crawling with `p2p.seed_mode`). Channels are the caller's to add.
    pub fn from_config(config: &Config, key: NodeKey) -> Result<NodeBuilder, StartError> {
        let persistent = config
            .p2p
            .persistent_peers
            .iter()
            .map(|p| {
                p.to_string()
                    .parse::<PeerAddr>()
                    .map_err(|e| StartError::Config(format!("p2p.persistent_peers: {p}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let seeds = config
            .p2p
            .seeds
            .iter()
            .map(|p| {
                p.to_string()
                    .parse::<PeerAddr>()
                    .map_err(|e| StartError::Config(format!("p2p.seeds: {p}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let handshake_rate = HandshakeRate::per_second(
            config.limits.handshake_rate_per_ip,
            config.limits.handshake_burst_per_ip,
        )
        .map_err(|e| StartError::Config(format!("limits.handshake_rate_per_ip: {e}")))?;
        let manager = ManagerConfig {
            persistent_peers: persistent,
            seeds,
            limits: AdmissionLimits {
                max_inbound: config.p2p.max_num_inbound_peers as usize,
                max_outbound: config.p2p.max_num_outbound_peers as usize,
                max_pending_inbound: config.limits.max_pending_handshakes as usize,
                max_pending_inbound_per_ip: config.limits.max_pending_handshakes_per_ip as usize,
                max_connections_per_ip: config.limits.max_connections_per_ip as usize,
                allow_duplicate_ip: config.p2p.allow_duplicate_ip,
                unconditional_peer_ids: config.p2p.unconditional_peer_ids.clone(),
                handshake_rate: Some(handshake_rate),
                ..AdmissionLimits::default()
            },
            backoff: BackoffConfig {
                base: config.limits.dial_backoff_min,
                max_delay: config.limits.dial_backoff_max,
                ..BackoffConfig::default()
            },
            max_concurrent_dials: config.limits.max_concurrent_dials as usize,
            dial_timeout: config.p2p.dial_timeout,
            handshake_timeout: config.p2p.handshake_timeout,
            ..ManagerConfig::default()
        };
        let limits = Limits {
            dial_timeout: config.p2p.dial_timeout,
            recv_queue_capacity: config.limits.recv_queue_capacity.max(1),
            send_rate: config.p2p.send_rate,
            recv_rate: config.p2p.recv_rate,
            flush_throttle: config.p2p.flush_throttle_timeout,
            accept_backoff: config.limits.accept_backoff,
            max_accepts_per_second: config.limits.max_accepts_per_second,
            max_peer_send_bytes: config.limits.max_peer_send_bytes,
            channel_send_queue_capacity: config.limits.channel_send_queue_capacity,
            max_message_size: config.limits.max_message_size,
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
        if let Some(pex) = config.pex_config() {
            b = b.pex(pex);
        }
        // The address sent to peers as this node's NodeInfo listen address.
        if let Some(external) = &config.p2p.external_address {
            b = b.external_address(format!("tcp://{external}"));
        }
        Ok(b)
    }
}
