//! Importing a CometBFT home directory: `config/config.toml`, `config/genesis.json` and the node
//! key, so an operator points ringwire at the directory a stock node already uses.
//!
//! Policy:
//! - From `config.toml`, only the `[p2p]` keys ringwire shares with stock are read (listed in
//!   [`P2P_KEYS`]), plus the top-level `moniker`, `node_key_file` and `genesis_file`. Every other
//!   key and section of a real CometBFT file (v0.34 through v0.40) is ignored without error.
//! - Values are read with stock's rules: comma-separated peer lists with blanks, Go durations
//!   (`"100ms"`, `"1m0s"`), an optional `tcp://` prefix. A negative number, a malformed address
//!   or duration is an error naming the key, e.g. `config/config.toml: p2p.dial_timeout: …`.
//! - The network (chain ID) comes from the genesis file when it exists; the genesis file is
//!   read once, and everything in it but `chain_id` is skipped.
//! - Relative paths stay relative to the home directory, as stock resolves them.
//! - Everything else keeps ringwire's defaults, and the result is validated like any
//!   configuration.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::address::{HostPort, PeerAddress, parse_socket_addr, split_list};
use super::error::ConfigError;
use super::{Config, duration, parse_error};
use crate::proto::secret::NodeId;

/// The `[p2p]` keys of a CometBFT `config.toml` that ringwire reads.
pub const P2P_KEYS: [&str; 19] = [
    "laddr",
    "external_address",
    "seeds",
    "persistent_peers",
    "unconditional_peer_ids",
    "private_peer_ids",
    "max_num_inbound_peers",
    "max_num_outbound_peers",
    "send_rate",
    "recv_rate",
    "flush_throttle_timeout",
    "max_packet_msg_payload_size",
    "pex",
    "seed_mode",
    "allow_duplicate_ip",
    "handshake_timeout",
    "dial_timeout",
    "addr_book_file",
    "addr_book_strict",
];

/// The parts of a stock `config.toml` ringwire reads; everything else is ignored.
#[derive(Deserialize, Default)]
struct StockToml {
    moniker: Option<String>,
    node_key_file: Option<PathBuf>,
    genesis_file: Option<PathBuf>,
    #[serde(default)]
    p2p: StockP2p,
}

/// Stock `[p2p]`, in stock's own types (numbers are Go `int`/`int64`, so a negative value parses
/// and is refused afterwards with the key named).
#[derive(Deserialize, Default)]
struct StockP2p {
    laddr: Option<String>,
    external_address: Option<String>,
    seeds: Option<String>,
    persistent_peers: Option<String>,
    unconditional_peer_ids: Option<String>,
    private_peer_ids: Option<String>,
    max_num_inbound_peers: Option<i64>,
    max_num_outbound_peers: Option<i64>,
    send_rate: Option<i64>,
    recv_rate: Option<i64>,
    flush_throttle_timeout: Option<String>,
    max_packet_msg_payload_size: Option<i64>,
    pex: Option<bool>,
    seed_mode: Option<bool>,
    allow_duplicate_ip: Option<bool>,
    handshake_timeout: Option<String>,
    dial_timeout: Option<String>,
    addr_book_file: Option<PathBuf>,
    addr_book_strict: Option<bool>,
}

#[derive(Deserialize)]
struct Genesis {
    chain_id: String,
}

/// Where CometBFT keeps its configuration inside a home directory.
pub const CONFIG_FILE: &str = "config/config.toml";
/// Stock's default genesis file, relative to the home directory.
const GENESIS_FILE: &str = "config/genesis.json";

/// Where a CometBFT home keeps its node key: `node_key_file` of `config/config.toml` when the
/// file sets it, else stock's default; relative to the home directory. Reads nothing else, so
/// an unrelated problem in the file does not hide the key.
pub(crate) fn node_key_path(home: &Path) -> Result<PathBuf, ConfigError> {
    let config_path = home.join(CONFIG_FILE);
    let configured = match std::fs::read_to_string(&config_path) {
        Ok(text) => {
            #[derive(Deserialize)]
            struct KeyOnly {
                node_key_file: Option<PathBuf>,
            }
            let de = toml::Deserializer::parse(&text)
                .map_err(|e| parse_error(&text, None, &e).in_file(&config_path))?;
            serde_path_to_error::deserialize::<_, KeyOnly>(de)
                .map_err(|e| {
                    parse_error(&text, Some(e.path().to_string()), e.inner()).in_file(&config_path)
                })?
                .node_key_file
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ConfigError::Read {
                path: config_path,
                source,
            });
        }
    };
    let file = configured
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_NODE_KEY_FILE));
    Ok(home.join(file))
}

/// Stock's default node key file, relative to the home directory.
const DEFAULT_NODE_KEY_FILE: &str = "config/node_key.json";

/// Reads a CometBFT home directory into a ringwire configuration.
pub(crate) fn import_home(home: &Path) -> Result<Config, ConfigError> {
    let config_path = home.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path).map_err(|source| ConfigError::Read {
        path: config_path.clone(),
        source,
    })?;
    let (mut config, genesis) = parse_stock(&text)
        .and_then(convert)
        .map_err(|e| e.in_file(&config_path))?;
    config.node.home = home.to_owned();
    let genesis = config.resolve_path(&genesis.unwrap_or_else(|| PathBuf::from(GENESIS_FILE)));
    if let Some(chain_id) = read_chain_id(&genesis)? {
        config.node.network = chain_id;
    }
    config.validate().map_err(|e| e.in_file(&config_path))?;
    Ok(config)
}

fn parse_stock(text: &str) -> Result<StockToml, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| parse_error(text, None, &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        parse_error(text, Some(key), e.inner())
    })
}

/// Reads the `[p2p]` keys (and moniker and node key path) of a stock `config.toml` onto
/// ringwire's defaults. Does not validate.
pub(crate) fn from_stock_toml(text: &str) -> Result<Config, ConfigError> {
    parse_stock(text).and_then(convert).map(|(c, _)| c)
}

/// Applies a parsed stock file to ringwire's defaults; also returns the genesis file path.
fn convert(stock: StockToml) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let genesis = stock.genesis_file.filter(|p| !p.as_os_str().is_empty());
    let mut c = Config::default();
    let mut errors = Vec::new();
    let mut fail = |key: &str, reason: String| {
        errors.push(super::Problem {
            key: key.to_owned(),
            reason,
        });
    };
    if let Some(m) = stock.moniker.filter(|m| !m.trim().is_empty()) {
        c.node.moniker = m;
    }
    if let Some(path) = stock.node_key_file.filter(|p| !p.as_os_str().is_empty()) {
        c.node.node_key_file = path;
    }
    let p = stock.p2p;
    if let Some(v) = p.laddr {
        match parse_socket_addr(&v) {
            Ok(a) => c.p2p.laddr = a,
            Err(e) => fail("p2p.laddr", e.to_string()),
        }
    }
    if let Some(v) = p.external_address.filter(|v| !v.trim().is_empty()) {
        match v.parse::<HostPort>() {
            Ok(a) => c.p2p.external_address = Some(a),
            Err(e) => fail("p2p.external_address", e.to_string()),
        }
    }
    for (key, text, out) in [
        ("p2p.seeds", p.seeds, &mut c.p2p.seeds),
        (
            "p2p.persistent_peers",
            p.persistent_peers,
            &mut c.p2p.persistent_peers,
        ),
    ] {
        if let Some(text) = text {
            match split_list(&text).map(str::parse::<PeerAddress>).collect() {
                Ok(list) => *out = list,
                Err(e) => fail(key, e.to_string()),
            }
        }
    }
    for (key, text, out) in [
        (
            "p2p.unconditional_peer_ids",
            p.unconditional_peer_ids,
            &mut c.p2p.unconditional_peer_ids,
        ),
        (
            "p2p.private_peer_ids",
            p.private_peer_ids,
            &mut c.p2p.private_peer_ids,
        ),
    ] {
        if let Some(text) = text {
            let parsed: Result<Vec<NodeId>, _> = split_list(&text)
                .map(|id| id.parse::<NodeId>().map_err(|e| format!("{id:?}: {e}")))
                .collect();
            match parsed {
                Ok(list) => *out = list,
                Err(e) => fail(key, e),
            }
        }
    }
    let mut int = |key: &str, v: Option<i64>| -> Option<u64> {
        let v = v?;
        match u64::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                fail(key, format!("must not be negative, got {v}"));
                None
            }
        }
    };
    let inbound = int("p2p.max_num_inbound_peers", p.max_num_inbound_peers);
    let outbound = int("p2p.max_num_outbound_peers", p.max_num_outbound_peers);
    let send_rate = int("p2p.send_rate", p.send_rate);
    let recv_rate = int("p2p.recv_rate", p.recv_rate);
    let payload = int(
        "p2p.max_packet_msg_payload_size",
        p.max_packet_msg_payload_size,
    );
    // Values too large for the field saturate; validation then reports them against the limit.
    if let Some(v) = inbound {
        c.p2p.max_num_inbound_peers = u32::try_from(v).unwrap_or(u32::MAX);
    }
    if let Some(v) = outbound {
        c.p2p.max_num_outbound_peers = u32::try_from(v).unwrap_or(u32::MAX);
    }
    if let Some(v) = send_rate {
        c.p2p.send_rate = v;
    }
    if let Some(v) = recv_rate {
        c.p2p.recv_rate = v;
    }
    if let Some(v) = payload {
        c.p2p.max_packet_msg_payload_size = usize::try_from(v).unwrap_or(usize::MAX);
    }
    let mut dur = |key: &str, v: Option<String>, out: &mut Duration| {
        if let Some(v) = v {
            match duration::parse(&v) {
                Ok(d) => *out = d,
                Err(e) => fail(key, e.to_string()),
            }
        }
    };
    dur(
        "p2p.flush_throttle_timeout",
        p.flush_throttle_timeout,
        &mut c.p2p.flush_throttle_timeout,
    );
    dur(
        "p2p.handshake_timeout",
        p.handshake_timeout,
        &mut c.p2p.handshake_timeout,
    );
    dur("p2p.dial_timeout", p.dial_timeout, &mut c.p2p.dial_timeout);
    if let Some(v) = p.pex {
        c.p2p.pex = v;
    }
    if let Some(v) = p.seed_mode {
        c.p2p.seed_mode = v;
    }
    if let Some(v) = p.allow_duplicate_ip {
        c.p2p.allow_duplicate_ip = v;
    }
    if let Some(v) = p.addr_book_file.filter(|p| !p.as_os_str().is_empty()) {
        c.p2p.addr_book_file = v;
    }
    if let Some(v) = p.addr_book_strict {
        c.p2p.addr_book_strict = v;
    }
    if errors.is_empty() {
        Ok((c, genesis))
    } else {
        Err(ConfigError::Invalid {
            file: None,
            problems: errors,
        })
    }
}

/// The `chain_id` of a genesis file, `None` when the file does not exist.
fn read_chain_id(path: &Path) -> Result<Option<String>, ConfigError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let genesis: Genesis =
        serde_json::from_reader(BufReader::new(file)).map_err(|e| ConfigError::Parse {
            file: Some(path.to_owned()),
            line: Some(e.line()).filter(|l| *l > 0),
            key: Some("chain_id".to_owned()),
            message: e.to_string(),
        })?;
    Ok(Some(genesis.chain_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2p_keys_are_all_in_the_schema() {
        let p2p = <super::super::P2pConfig as super::super::render::Section>::FIELDS;
        for key in P2P_KEYS {
            assert!(p2p.iter().any(|f| f.key == key), "{key} missing from [p2p]");
        }
    }

    #[test]
    fn other_sections_and_unknown_keys_are_ignored() {
        let c = from_stock_toml(
            "proxy_app = \"tcp://127.0.0.1:26658\"\nfuture_key = 1\n[p2p]\nupnp = false\n\
             persistent_peers_max_dial_period = \"0s\"\n[p2p.libp2p]\nenabled = true\n\
             [mempool]\nsize = 5000\n",
        )
        .unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = from_stock_toml("[p2p]\nmax_num_inbound_peers = -1\ndial_timeout = \"3\"\n")
            .unwrap_err();
        assert_eq!(
            err.keys(),
            ["p2p.max_num_inbound_peers", "p2p.dial_timeout"]
        );
        let err = from_stock_toml("[p2p]\npex = \"yes\"\n").unwrap_err();
        assert_eq!(err.keys(), ["p2p.pex"]);
        let err = from_stock_toml("[p2p]\nseeds = \"abc@1.2.3.4:5\"\n").unwrap_err();
        assert_eq!(err.keys(), ["p2p.seeds"]);
    }
}
