//! `ringwire_config`: what a node is started with.
//!
//! A config is a plain value owned by the caller (a `Box`); it is not thread-safe: use one
//! config from one thread at a time. Starting a node copies what it needs, so the config may be
//! freed or reused right after `ringwire_node_start`.

use std::ffi::c_char;
use std::net::SocketAddr;
use std::sync::Mutex;

use ringwire::config::{Config, NodeKeyFile};
use ringwire::node::NodeBuilder;
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::proto::nodeinfo::{
    NodeInfoOther, ProtocolVersion, STOCK_BLOCK_PROTOCOL, STOCK_P2P_PROTOCOL,
};
use ringwire::proto::secret::NodeKey;
use ringwire::rt::Driver;

use crate::node::ringwire_node_id;
use crate::node::{channel_descriptor, ringwire_channel_options};
use crate::registry::Registry;
use crate::result::fail;
use crate::{bytes, guard, guard_free, non_null, read, ringwire_result, text};
use ringwire::proto::secret::NodeId;

/// I/O driver choices for `ringwire_config_set_driver`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringwire_driver {
    /// io_uring when the kernel allows it, epoll otherwise.
    Auto = 0,
    /// io_uring only: the node does not start without it.
    IoUring = 1,
    /// epoll only.
    Epoll = 2,
}

/// Settings for a node. Create with `ringwire_config_new`, free with `ringwire_config_free`.
pub struct ringwire_config {
    pub(crate) settings: Mutex<Settings>,
}

/// The live configs.
pub(crate) static CONFIGS: Registry<ringwire_config> = Registry::new();

/// What a config holds: a whole configuration (the TOML schema, every section) and the node
/// key. A node starts from it through the engine's `NodeBuilder::from_config`, as
/// `ringwire node` does, so the peer manager, admission limits, PEX and every `[limits]` key
/// apply alike.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) key: Option<NodeKey>,
    pub(crate) config: Config,
    /// Where to listen (`None`: not at all); `p2p.laddr` of a loaded file.
    pub(crate) listen: Option<SocketAddr>,
    /// NodeInfo fields the application set (`ringwire_config_set_node_info`).
    pub(crate) node_info: NodeInfoFields,
    /// Channels registered when the node starts (`ringwire_config_add_channel`).
    pub(crate) channels: Vec<ChannelDescriptor>,
}

/// NodeInfo fields an application owns; `None` keeps the engine's default.
#[derive(Clone, Default)]
pub(crate) struct NodeInfoFields {
    pub(crate) version: Option<String>,
    pub(crate) protocol: Option<ProtocolVersion>,
    pub(crate) other: Option<NodeInfoOther>,
}

impl NodeInfoFields {
    /// Applies the fields set to `b`.
    pub(crate) fn apply(&self, mut b: NodeBuilder) -> NodeBuilder {
        if let Some(v) = &self.version {
            b = b.software_version(v.clone());
        }
        if let Some(p) = &self.protocol {
            b = b.protocol_version(p.clone());
        }
        if let Some(o) = &self.other {
            b = b.node_info_other(o.clone());
        }
        b
    }
}

/// NodeInfo settings for `ringwire_config_set_node_info`: what a CometBFT node announces about
/// itself. The caller sets `size` to `sizeof(ringwire_node_info_settings)`. A NULL string or a
/// zero version keeps the default: moniker `"ringwire"` (or the loaded file's), the library's
/// version, p2p protocol 8, block protocol 11, app protocol 0, tx_index `"off"`, no RPC address.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringwire_node_info_settings {
    /// `sizeof(ringwire_node_info_settings)`, set by the caller.
    pub size: usize,
    /// Human-readable node name: printable ASCII, at most 128 bytes.
    pub moniker: *const c_char,
    /// Software version (CometBFT puts its own version here): printable ASCII.
    pub version: *const c_char,
    /// P2P protocol version.
    pub p2p_protocol: u64,
    /// Block protocol version.
    pub block_protocol: u64,
    /// Application protocol version (a CometBFT node takes it from its ABCI application).
    pub app_protocol: u64,
    /// `"on"` or `"off"`: whether the node indexes transactions.
    pub tx_index: *const c_char,
    /// The node's RPC address (such as `"tcp://0.0.0.0:26657"`): printable ASCII.
    pub rpc_address: *const c_char,
}

impl Default for ringwire_node_info_settings {
    fn default() -> Self {
        ringwire_node_info_settings {
            size: size_of::<Self>(),
            moniker: std::ptr::null(),
            version: std::ptr::null(),
            p2p_protocol: 0,
            block_protocol: 0,
            app_protocol: 0,
            tx_index: std::ptr::null(),
            rpc_address: std::ptr::null(),
        }
    }
}

/// A NodeInfo text field: printable ASCII (spaces allowed), at most `max` bytes.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
unsafe fn info_text(
    p: *const c_char,
    field: &str,
    max: usize,
) -> Result<Option<String>, ringwire_result> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from this function's contract.
    let t = unsafe { text(p) }?;
    if t.len() > max || !t.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(fail(
            ringwire_result::InvalidArgument,
            format!("{field} must be printable ASCII of at most {max} bytes"),
        ));
    }
    Ok(Some(t.to_owned()))
}

impl Settings {
    /// `ringwire config default`, except: no node key, not listening, one shard.
    fn new() -> Self {
        let mut config = Config::default();
        config.engine.shards = 1;
        Settings {
            key: None,
            config,
            listen: None,
            node_info: NodeInfoFields::default(),
            channels: Vec::new(),
        }
    }

    fn from_file(config: Config) -> Result<Self, ringwire_result> {
        let key = config
            .load_node_key()
            .map_err(|e| fail(ringwire_result::NodeKey, e))?;
        Ok(Settings {
            key: Some(key),
            listen: Some(config.p2p.laddr),
            config,
            node_info: NodeInfoFields::default(),
            channels: Vec::new(),
        })
    }

    /// Registers these settings as a new config handle.
    fn into_handle(self) -> *mut ringwire_config {
        CONFIGS.insert(ringwire_config {
            settings: Mutex::new(self),
        })
    }
}

/// Writes a new config to `*out_config`: the defaults `ringwire config default` prints (network
/// `"ringwire-devnet"`, driver auto, native protocol offered, the peer manager's limits — 40
/// inbound and 10 outbound peers, one peer per IP address unless `allow_duplicate_ip` — and
/// peer exchange on channel 0x00), except: no node key (set one before starting), not
/// listening, one shard.
///
/// # Safety
/// `out_config` is valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_new(
    out_config: *mut *mut ringwire_config,
) -> ringwire_result {
    guard(|| {
        non_null(out_config)?;
        let cfg = Settings::new().into_handle();
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_config = cfg };
        Ok(())
    })
}

/// Reads ringwire's TOML configuration file at `path` (see `ringwire config default`) and the
/// node key file it names, and writes a new config to `*out_config`. Every section applies as
/// it does to `ringwire node`: `[node]`, `[p2p]` (listen address, peer limits, persistent
/// peers, PEX, timeouts), `[engine]`, `[limits]`; `[metrics]` and `[admin]` belong to the
/// `ringwire` command and are only checked. `ringwire_last_error` names the key at fault.
///
/// # Safety
/// `path` is a NUL-terminated string; `out_config` is valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_load_toml(
    path: *const c_char,
    out_config: *mut *mut ringwire_config,
) -> ringwire_result {
    guard(|| {
        non_null(out_config)?;
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { text(path) }?;
        let config = Config::load(path).map_err(|e| fail(ringwire_result::Config, e))?;
        let cfg = Settings::from_file(config)?.into_handle();
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_config = cfg };
        Ok(())
    })
}

/// Imports a CometBFT home directory `dir` (its `config/config.toml` and `config/node_key.json`)
/// and writes a new config to `*out_config`; the node keeps the same node ID it had under
/// CometBFT, and the `[p2p]` keys apply as they do to `ringwire node --home`.
///
/// # Safety
/// `dir` is a NUL-terminated string; `out_config` is valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_load_cometbft_home(
    dir: *const c_char,
    out_config: *mut *mut ringwire_config,
) -> ringwire_result {
    guard(|| {
        non_null(out_config)?;
        // SAFETY: forwarded from this function's contract.
        let dir = unsafe { text(dir) }?;
        let config =
            Config::from_cometbft_home(dir).map_err(|e| fail(ringwire_result::Config, e))?;
        let cfg = Settings::from_file(config)?.into_handle();
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_config = cfg };
        Ok(())
    })
}

/// Frees a config. NULL is accepted and ignored.
///
/// # Safety
/// None: any pointer is accepted; only live configs are freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_free(config: *mut ringwire_config) {
    guard_free(|| {
        drop(CONFIGS.remove(config));
    })
}

/// Runs `f` on the settings behind `config`.
fn with_config(
    config: *mut ringwire_config,
    f: impl FnOnce(&mut Settings) -> Result<(), ringwire_result>,
) -> ringwire_result {
    guard(|| {
        let cfg = CONFIGS.get(config)?;
        let mut settings = cfg.settings.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut settings)
    })
}

/// Sets the node key from a 32-byte ed25519 seed (`seed` points to exactly 32 bytes).
///
/// # Safety
/// `config` is a live config; `seed` is valid for reads of 32 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_set_key_seed(
    config: *mut ringwire_config,
    seed: *const u8,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: `seed` is valid for 32 bytes by this function's contract.
        let s: [u8; 32] = unsafe { bytes(seed, 32) }?
            .try_into()
            .map_err(|_| ringwire_result::InvalidArgument)?;
        cfg.key = Some(NodeKey::from_seed(s));
        Ok(())
    })
}

/// Sets the node key from a CometBFT `node_key.json` file.
///
/// # Safety
/// `config` is a live config; `path` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_set_key_file(
    config: *mut ringwire_config,
    path: *const c_char,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { text(path) }?;
        let file = NodeKeyFile::load(path).map_err(|e| fail(ringwire_result::NodeKey, e))?;
        cfg.key = Some(file.into_key());
        Ok(())
    })
}

/// Sets the network (chain ID); peers on another network are refused.
///
/// # Safety
/// `config` is a live config; `network` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_set_network(
    config: *mut ringwire_config,
    network: *const c_char,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: forwarded from this function's contract.
        let network = unsafe { text(network) }?;
        if network.is_empty() || network.contains(char::is_whitespace) {
            return Err(fail(
                ringwire_result::InvalidArgument,
                "network must be non-empty without spaces",
            ));
        }
        cfg.config.node.network = network.to_owned();
        Ok(())
    })
}

/// Sets the listen address, such as `"127.0.0.1:26656"` (port 0: any free port; read the bound
/// one with `ringwire_node_listen_addr`). NULL or `""`: do not listen.
///
/// # Safety
/// `config` is a live config; `addr` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_set_listen(
    config: *mut ringwire_config,
    addr: *const c_char,
) -> ringwire_result {
    with_config(config, |cfg| {
        if addr.is_null() {
            cfg.listen = None;
            return Ok(());
        }
        // SAFETY: non-NULL, NUL-terminated by this function's contract.
        let addr = unsafe { text(addr) }?;
        cfg.listen = if addr.is_empty() {
            None
        } else {
            Some(
                ringwire::config::parse_socket_addr(addr)
                    .map_err(|e| fail(ringwire_result::InvalidArgument, e))?,
            )
        };
        Ok(())
    })
}

/// Sets the number of shard threads (1 to 1024; 0: one per CPU core).
///
/// # Safety
/// `config` is a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_set_shards(
    config: *mut ringwire_config,
    shards: u32,
) -> ringwire_result {
    with_config(config, |cfg| {
        let n = usize::try_from(shards).map_err(|_| ringwire_result::InvalidArgument)?;
        if n > ringwire::config::MAX_SHARDS {
            return Err(fail(
                ringwire_result::InvalidArgument,
                "at most 1024 shards",
            ));
        }
        cfg.config.engine.shards = n;
        Ok(())
    })
}

/// Sets the I/O driver: a `ringwire_driver` value.
///
/// # Safety
/// `config` is a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_set_driver(
    config: *mut ringwire_config,
    driver: u32,
) -> ringwire_result {
    with_config(config, |cfg| {
        cfg.config.engine.driver = match driver {
            d if d == ringwire_driver::Auto as u32 => Driver::Auto,
            d if d == ringwire_driver::IoUring as u32 => Driver::IoUring,
            d if d == ringwire_driver::Epoll as u32 => Driver::Epoll,
            _ => return Err(fail(ringwire_result::InvalidArgument, "unknown driver")),
        };
        Ok(())
    })
}

/// Sets what the node announces about itself in NodeInfo (`settings`: moniker, software and
/// protocol versions, tx_index, RPC address); fields left NULL or zero keep their current
/// value. The network (chain ID), node ID, listen address and channels have their own settings.
///
/// # Safety
/// `config` is a live config; `settings` is valid for reads of its `size` bytes and its
/// strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_set_node_info(
    config: *mut ringwire_config,
    settings: *const ringwire_node_info_settings,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { crate::sized::read_sized(settings) }?;
        // SAFETY: the strings are NULL or NUL-terminated by this function's contract.
        let moniker = unsafe { info_text(s.moniker, "moniker", 128) }?;
        // SAFETY: as above.
        let version = unsafe { info_text(s.version, "version", 256) }?;
        // SAFETY: as above.
        let tx_index = unsafe { info_text(s.tx_index, "tx_index", 3) }?;
        // SAFETY: as above.
        let rpc = unsafe { info_text(s.rpc_address, "rpc_address", 256) }?;
        if let Some(t) = &tx_index
            && t != "on"
            && t != "off"
        {
            return Err(fail(
                ringwire_result::InvalidArgument,
                "tx_index must be \"on\" or \"off\"",
            ));
        }
        if let Some(m) = moniker {
            if m.trim().is_empty() {
                return Err(fail(
                    ringwire_result::InvalidArgument,
                    "moniker must not be blank",
                ));
            }
            cfg.config.node.moniker = m;
        }
        if version.is_some() {
            cfg.node_info.version = version;
        }
        if s.p2p_protocol != 0 || s.block_protocol != 0 || s.app_protocol != 0 {
            let mut p = cfg.node_info.protocol.clone().unwrap_or(ProtocolVersion {
                p2p: STOCK_P2P_PROTOCOL,
                block: STOCK_BLOCK_PROTOCOL,
                app: 0,
            });
            if s.p2p_protocol != 0 {
                p.p2p = s.p2p_protocol;
            }
            if s.block_protocol != 0 {
                p.block = s.block_protocol;
            }
            if s.app_protocol != 0 {
                p.app = s.app_protocol;
            }
            cfg.node_info.protocol = Some(p);
        }
        if tx_index.is_some() || rpc.is_some() {
            let mut o = cfg.node_info.other.clone().unwrap_or(NodeInfoOther {
                tx_index: "off".to_owned(),
                rpc_address: String::new(),
            });
            if let Some(t) = tx_index {
                o.tx_index = t;
            }
            if let Some(r) = rpc {
                o.rpc_address = r;
            }
            cfg.node_info.other = Some(o);
        }
        Ok(())
    })
}

/// Adds a persistent peer, `"ID@HOST:PORT"` (as in `[p2p] persistent_peers`): the node dials
/// it at start and redials it with backoff whenever the connection ends.
///
/// # Safety
/// `config` is a live config; `peer` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_add_persistent_peer(
    config: *mut ringwire_config,
    peer: *const c_char,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: forwarded from this function's contract.
        let text = unsafe { text(peer) }?;
        let addr = text.parse().map_err(|e| {
            fail(
                ringwire_result::InvalidArgument,
                format!("persistent peer {text:?}: {e}"),
            )
        })?;
        push_bounded(
            &mut cfg.config.p2p.persistent_peers,
            addr,
            "persistent peers",
        )
    })
}

/// Adds an unconditional peer ID (as in `[p2p] unconditional_peer_ids`): its connections are
/// admitted even when the inbound and outbound peer limits are reached.
///
/// # Safety
/// `config` is a live config; `id` is valid for one read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_add_unconditional_peer_id(
    config: *mut ringwire_config,
    id: *const ringwire_node_id,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: NULL or valid for a read, by this function's contract.
        let id = NodeId::from(unsafe { read(id) }?);
        push_bounded(
            &mut cfg.config.p2p.unconditional_peer_ids,
            id,
            "unconditional peer IDs",
        )
    })
}

/// Adds a private peer ID (as in `[p2p] private_peer_ids`): its address is never gossiped
/// through peer exchange, nor learned from hearsay.
///
/// # Safety
/// `config` is a live config; `id` is valid for one read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_add_private_peer_id(
    config: *mut ringwire_config,
    id: *const ringwire_node_id,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: NULL or valid for a read, by this function's contract.
        let id = NodeId::from(unsafe { read(id) }?);
        push_bounded(&mut cfg.config.p2p.private_peer_ids, id, "private peer IDs")
    })
}

/// Most entries in each peer list a config may hold.
const MAX_PEER_LIST: usize = 1024;

/// Appends `v` to a peer list unless it is there already; fails beyond [`MAX_PEER_LIST`].
fn push_bounded<T: PartialEq>(list: &mut Vec<T>, v: T, what: &str) -> Result<(), ringwire_result> {
    if list.contains(&v) {
        return Ok(());
    }
    if list.len() >= MAX_PEER_LIST {
        return Err(fail(
            ringwire_result::InvalidArgument,
            format!("at most {MAX_PEER_LIST} {what}"),
        ));
    }
    list.push(v);
    Ok(())
}

/// Whether to offer ringwire's native protocol to peers that advertise it (default true).
/// Stock CometBFT peers always get the stock protocol.
///
/// # Safety
/// `config` is a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_set_offer_native(
    config: *mut ringwire_config,
    offer: bool,
) -> ringwire_result {
    with_config(config, |cfg| {
        cfg.config.engine.native = offer;
        Ok(())
    })
}

/// Adds a service capability announced to native peers (such as `"archive"`); role-addressed
/// sends reach peers by capability.
///
/// # Safety
/// `config` is a live config; `capability` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_add_capability(
    config: *mut ringwire_config,
    capability: *const c_char,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: forwarded from this function's contract.
        let cap = unsafe { text(capability) }?;
        if cap.is_empty() || cap.len() > 64 || !cap.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(fail(
                ringwire_result::InvalidArgument,
                "a capability is 1 to 64 printable ASCII characters",
            ));
        }
        if cfg.config.engine.capabilities.len() >= 32 {
            return Err(fail(
                ringwire_result::InvalidArgument,
                "at most 32 capabilities",
            ));
        }
        cfg.config.engine.capabilities.push(cap.to_owned());
        Ok(())
    })
}

/// Adds channel `id` with `options` to the channels the node registers when it starts, before
/// it accepts or dials anyone, so that the NodeInfo of every connection lists it (a channel
/// first opened after start is missing from connections made before). Open it after start with
/// `ringwire_node_open_channel_with` and the same options to get its handle (other options fail
/// with `RINGWIRE_RESULT_CHANNEL`). Adding an ID twice is `RINGWIRE_RESULT_INVALID_ARGUMENT`.
///
/// # Safety
/// `config` is a live config; `options` is valid for reads of its `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_config_add_channel(
    config: *mut ringwire_config,
    id: u8,
    options: *const ringwire_channel_options,
) -> ringwire_result {
    with_config(config, |cfg| {
        // SAFETY: forwarded from this function's contract.
        let desc = unsafe { channel_descriptor(id, options) }?;
        if cfg.channels.iter().any(|c| c.id == id) {
            return Err(fail(
                ringwire_result::InvalidArgument,
                format!("channel {id:#04x} was already added"),
            ));
        }
        cfg.channels.push(desc);
        Ok(())
    })
}
