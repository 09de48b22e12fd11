//! ringwire's configuration: one TOML schema with a safe default for every key, read from
//! ringwire's own file or imported from a CometBFT home directory.
//!
//! The schema has six sections — `[node]` (identity and files), `[p2p]` (the keys of
//! CometBFT's `[p2p]`, same names and defaults), `[engine]` (I/O driver, shards, native protocol,
//! compression), `[limits]` (every bound that protects the node from its peers), `[metrics]`
//! and `[admin]`. `ringwire config default` prints every key with its documentation
//! ([`Config::default_toml_with_comments`]).
//!
//! Policy:
//! - Every key is optional; a missing key takes its default. An unknown key is an error, never
//!   silently ignored, so a typo cannot leave a limit at a value the operator did not mean.
//! - Every error names the key and the reason (`p2p.max_num_inbound_peers: must be at most
//!   10000, got 20000`), with the file and line when known. Validation reports every problem
//!   at once, not just the first.
//! - Durations are text (`"10s"`, `"100ms"`, `"1m30s"`; Go's syntax, see [`duration`]); sizes
//!   are bytes; relative paths are resolved against `node.home`.
//! - The node key is CometBFT's `node_key.json` ([`NodeKeyFile`]): the same file gives the same
//!   node ID under stock CometBFT and ringwire.
//!
//! This module reads and writes files; it never opens sockets.

#![forbid(unsafe_code)]

#[macro_use]
mod macros;

mod address;
mod admin;
mod cometbft;
pub mod duration;
mod engine;
mod error;
mod limits;
mod metrics;
mod node;
mod node_key;
mod p2p;
mod render;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use address::{AddressError, AdminAddress, HostPort, PeerAddress, parse_socket_addr};
pub use admin::AdminConfig;
pub use cometbft::{CONFIG_FILE as COMETBFT_CONFIG_FILE, P2P_KEYS as COMETBFT_P2P_KEYS};
pub use engine::{EngineConfig, MAX_SHARDS};
pub use error::{ConfigError, Problem};
pub use limits::{LimitsConfig, MAX_MESSAGE_SIZE_LIMIT, MIN_NODE_INFO_SIZE};
pub use metrics::MetricsConfig;
pub use node::NodeConfig;
pub use node_key::{ED25519_KEY_TYPE, NodeKeyError, NodeKeyFile, NodeKeyFormatError};
pub use p2p::{MAX_PEERS_LIMIT, P2pConfig};

use crate::pex::PexConfig;
use crate::proto::budget::PartialBudget;
use crate::proto::compress::CompressionConfig;
use crate::proto::conn::{ChannelDescriptor, ConnectionConfig};
use crate::proto::mconn::MConnConfig;
use crate::proto::nodeinfo::NodeInfo;
use crate::proto::secret::NodeKey;

/// Largest configuration file read.
const MAX_FILE_SIZE: u64 = 1 << 20;

/// A whole ringwire configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Identity and files.
    pub node: NodeConfig,
    /// Listening, peers and the stock connection settings.
    pub p2p: P2pConfig,
    /// Runtime and protocol choices.
    pub engine: EngineConfig,
    /// Bounds on what peers may cost this node.
    pub limits: LimitsConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Operator control of a running node.
    pub admin: AdminConfig,
}

impl Config {
    /// Parses and validates ringwire's TOML.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config = Self::parse(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a ringwire TOML file. When `node.home` is empty it becomes the
    /// file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let mut config = Self::parse(&text).map_err(|e| e.in_file(path))?;
        config.validate().map_err(|e| e.in_file(path))?;
        if config.node.home.as_os_str().is_empty() {
            config.node.home = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                _ => PathBuf::from("."),
            };
        }
        Ok(config)
    }

    /// Imports a CometBFT home directory: the `[p2p]` keys (see [`COMETBFT_P2P_KEYS`]),
    /// `moniker` and `node_key_file` of `config/config.toml`, and the chain ID of the genesis
    /// file when present; everything else keeps ringwire's defaults. Other sections and keys
    /// of the stock file are ignored. `node.home` becomes `dir`.
    pub fn from_cometbft_home(dir: impl AsRef<Path>) -> Result<Self, ConfigError> {
        cometbft::import_home(dir.as_ref())
    }

    /// Where the node key of a CometBFT home directory lives: the `node_key_file` of its
    /// `config/config.toml` (stock's `config/node_key.json` when unset or when there is no
    /// config file), under `dir`. Nothing else in the file is read or checked.
    pub fn cometbft_node_key_path(dir: impl AsRef<Path>) -> Result<PathBuf, ConfigError> {
        cometbft::node_key_path(dir.as_ref())
    }

    /// Reads the text of a CometBFT `config.toml` like [`Config::from_cometbft_home`] does,
    /// without a home directory (so without the genesis file), and validates the result.
    pub fn from_cometbft_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config = cometbft::from_stock_toml(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule of the schema and reports every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = error::Problems::default();
        self.node.check(&mut problems);
        self.p2p.check(&mut problems);
        self.engine.check(&mut problems);
        self.limits.check(&mut problems);
        self.metrics.check(&mut problems);
        self.admin.check(&mut problems);
        problems.finish()
    }

    /// The default configuration as TOML: every key, under its documentation. Parsing it
    /// gives [`Config::default`].
    pub fn default_toml_with_comments() -> String {
        Self::default().to_toml_with_comments()
    }

    /// This configuration as TOML, every key under its documentation.
    pub fn to_toml_with_comments(&self) -> String {
        let mut out = String::new();
        render::header(&mut out);
        render::section(&mut out, &self.node);
        render::section(&mut out, &self.p2p);
        render::section(&mut out, &self.engine);
        render::section(&mut out, &self.limits);
        render::section(&mut out, &self.metrics);
        render::section(&mut out, &self.admin);
        out
    }

    /// The directory relative paths are resolved against (`node.home`, or `.` when empty).
    pub fn home_dir(&self) -> PathBuf {
        if self.node.home.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            self.node.home.clone()
        }
    }

    /// `path` when absolute, otherwise `path` under [`Config::home_dir`].
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.home_dir().join(path)
        }
    }

    /// Where the node key lives.
    pub fn node_key_path(&self) -> PathBuf {
        self.resolve_path(&self.node.node_key_file)
    }

    /// Where the address book is kept: `p2p.addr_book_file` under [`Config::home_dir`], or as
    /// given when absolute. `None` when the path is relative and `node.home` is empty — a
    /// configuration made in memory (the defaults, a TOML string, the C ABI's new config)
    /// keeps its book in memory rather than in the working directory; [`Config::load`] and
    /// [`Config::from_cometbft_home`] always set a home.
    pub fn addr_book_path(&self) -> Option<PathBuf> {
        let path = &self.p2p.addr_book_file;
        (path.is_absolute() || !self.node.home.as_os_str().is_empty())
            .then(|| self.resolve_path(path))
    }

    /// Reads the node key.
    pub fn load_node_key(&self) -> Result<NodeKey, ConfigError> {
        Ok(NodeKeyFile::load(self.node_key_path())?.into_key())
    }

    /// Reads the node key, generating and writing one when the file does not exist (as stock
    /// CometBFT does). Returns whether it was generated.
    pub fn load_or_generate_node_key(&self) -> Result<(NodeKey, bool), ConfigError> {
        let (file, generated) = NodeKeyFile::load_or_generate(self.node_key_path())?;
        Ok((file.into_key(), generated))
    }

    /// The MConnection settings for stock (compat) connections.
    pub fn mconn_config(&self) -> MConnConfig {
        MConnConfig {
            ping_interval: self.limits.ping_interval,
            pong_timeout: self.limits.pong_timeout,
            max_packet_msg_payload_size: self.p2p.max_packet_msg_payload_size,
            recv_queue_capacity: self.limits.recv_queue_capacity,
            recv_queue_max_bytes: self.limits.max_peer_inflight_bytes,
            max_control_packets_per_second: self.limits.max_control_frames_per_second,
            partial_budget: self.partial_budget(),
        }
    }

    /// The budget for partly received messages: `limits.max_partial_bytes_per_peer` per
    /// connection and a new node-wide pool of `limits.max_partial_bytes`. Each call makes a new
    /// pool; [`Config::connection_config`] makes one for all of a node's connections.
    pub fn partial_budget(&self) -> PartialBudget {
        PartialBudget::new(
            self.limits.max_partial_bytes_per_peer,
            self.limits.max_partial_bytes,
        )
    }

    /// The PEX settings when `p2p.pex` is on (the default, as in CometBFT), for
    /// [`crate::NodeBuilder::pex`]; `None` when it is off. They come from `limits.pex_*`,
    /// `limits.max_address_book_size`, `p2p.addr_book_strict`, `p2p.private_peer_ids` and
    /// `p2p.addr_book_file` (see [`Config::addr_book_path`]), the book's dial backoff from
    /// `limits.dial_backoff_min` and `dial_backoff_max`, `p2p.seed_mode` and
    /// `p2p.capability_targets`. The seeds
    /// (`p2p.seeds`) are the peer manager's ([`crate::peers::ManagerConfig::seeds`]).
    pub fn pex_config(&self) -> Option<PexConfig> {
        self.p2p.pex.then(|| PexConfig {
            book_file: self.addr_book_path(),
            min_request_interval: self.limits.pex_request_interval,
            max_addresses: self.limits.max_address_book_size,
            max_addrs_per_message: self.limits.pex_max_addresses_per_message as usize,
            address_rate: self.limits.pex_address_rate,
            address_burst: self.limits.pex_address_burst,
            ban_duration: self.limits.pex_ban_duration,
            addr_book_strict: self.p2p.addr_book_strict,
            private_peer_ids: self.p2p.private_peer_ids.clone(),
            dial_backoff_min: self.limits.dial_backoff_min,
            dial_backoff_max: self.limits.dial_backoff_max,
            seed_mode: self.p2p.seed_mode,
            capability_targets: self
                .p2p
                .capability_targets
                .iter()
                .map(|(cap, t)| (cap.clone(), *t))
                .collect(),
            ..PexConfig::default()
        })
    }

    /// The zstd settings for native connections, `None` when compression is off.
    pub fn compression_config(&self) -> Option<CompressionConfig> {
        self.engine
            .compression_config(self.limits.zstd_window_log_max)
    }

    /// The settings of one connection: the stock channels (receive caps lowered to
    /// `limits.max_message_size`), the handshake deadline, keepalive, native and compression
    /// settings of this configuration. `node_info` is sent to the peer as given, except for
    /// the ID and channels the connection fills in. Compat and native connections share one
    /// new node-wide pool for partly received messages.
    pub fn connection_config(&self, node_key: NodeKey, node_info: NodeInfo) -> ConnectionConfig {
        let partial_budget = self.partial_budget();
        let mut channels = ChannelDescriptor::stock();
        for channel in &mut channels {
            channel.recv_message_capacity = channel
                .recv_message_capacity
                .min(self.limits.max_message_size);
        }
        ConnectionConfig {
            channels,
            offer_native: self.engine.native,
            capabilities: self.engine.capabilities.clone(),
            handshake_timeout: self.p2p.handshake_timeout,
            mconn: MConnConfig {
                partial_budget: partial_budget.clone(),
                ..self.mconn_config()
            },
            native_window: self.limits.native_window,
            native_busy_window: self.limits.native_busy_window,
            native_max_chunk: self.limits.native_max_chunk,
            native_ping_interval: self.limits.native_ping_interval,
            native_pong_timeout: self.limits.native_pong_timeout,
            max_inflight_requests: self.limits.max_inflight_requests,
            native_recv_queue_capacity: self.limits.native_recv_queue_capacity,
            compression: self.compression_config(),
            transmit_budget: self.limits.write_budget,
            max_node_info_size: self.limits.max_node_info_size,
            max_control_frames_per_second: self.limits.max_control_frames_per_second,
            partial_budget,
            ..ConnectionConfig::new(node_key, node_info)
        }
    }

    /// Parses without validating.
    fn parse(text: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| parse_error(text, None, &e))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            parse_error(text, Some(key), e.inner())
        })
    }
}

/// Reads a configuration file of at most [`MAX_FILE_SIZE`] bytes.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_SIZE + 1).read_to_string(&mut text))
        .map_err(read_err)?;
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(read_err(std::io::Error::other(format!(
            "file exceeds {MAX_FILE_SIZE} bytes"
        ))));
    }
    Ok(text)
}

/// Turns a TOML error into a [`ConfigError::Parse`] naming the key and the line.
fn parse_error(text: &str, key: Option<String>, e: &toml::de::Error) -> ConfigError {
    let line = e.span().map(|span| {
        let end = span.start.min(text.len());
        text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    });
    let key = key.filter(|k| !k.is_empty() && k != ".");
    let mut message = e.message().trim().to_owned();
    if message.starts_with("unknown field `") {
        // serde lists every expected field here; the key is already in the path.
        message = "unknown key (`ringwire config default` lists every key)".to_owned();
    } else if let Some(rest) = message.strip_prefix("invalid value: integer `-")
        && let Some((digits, _)) = rest.split_once('`')
    {
        message = format!("must not be negative, got -{digits}");
    }
    ConfigError::Parse {
        file: None,
        line,
        key,
        message,
    }
}
