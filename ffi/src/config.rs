//! `ringwire_config`: what a node is started with.
//!
//! A config is a plain value owned by the caller (a `Box`); it is not thread-safe: use one
//! config from one thread at a time. Starting a node copies what it needs, so the config may be
//! freed or reused right after `ringwire_node_start`.

use std::ffi::c_char;
use std::net::SocketAddr;
use std::sync::Mutex;

use ringwire::config::{Config, NodeKeyFile};
use ringwire::proto::secret::NodeKey;
use ringwire::rt::Driver;

use crate::registry::Registry;
use crate::result::fail;
use crate::{bytes, guard, guard_free, non_null, ringwire_result, text};

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
