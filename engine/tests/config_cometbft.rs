//! Importing a CometBFT home directory (files written by stock CometBFT v0.38 and v0.40) and
//! reading and writing `node_key.json`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringwire::config::{Config, ConfigError, NodeKeyError, NodeKeyFile, P2pConfig};
use ringwire::proto::secret::NodeKey;

/// Stock `nodeKey.ID()` of the fixtures' node_key.json.
const STOCK_ID: &str = "65b60673d6ed884bf01c2c222d82ada0740f29ac";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn check_fixture_p2p(c: &Config) {
    let p = &c.p2p;
    assert_eq!(p.laddr, "0.0.0.0:26656".parse().unwrap());
    assert_eq!(
        p.external_address.as_ref().unwrap().to_string(),
        "203.0.113.7:26656"
    );
    let seeds: Vec<String> = p.seeds.iter().map(ToString::to_string).collect();
    assert_eq!(
        seeds,
        [
            "9c8f4bc2e1a0d7b6c5a4e3f2d1c0b9a8f7e6d5c4@seed-1.example.net:26656",
            "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567@198.51.100.20:26656",
        ]
    );
    let persistent: Vec<String> = p.persistent_peers.iter().map(ToString::to_string).collect();
    assert_eq!(
        persistent,
        [
            "1f2e3d4c5b6a79880716253443526170a9b8c7d6@10.0.0.2:26656",
            "2a3b4c5d6e7f80918273645546372819a0b1c2d3@[2001:db8::1]:26656",
        ]
    );
    assert_eq!(p.unconditional_peer_ids.len(), 1);
    assert_eq!(p.private_peer_ids.len(), 2);
    assert_eq!(p.max_num_inbound_peers, 120);
    assert_eq!(p.max_num_outbound_peers, 30);
    assert_eq!(p.send_rate, 20_480_000);
    assert_eq!(p.recv_rate, 20_480_000);
    assert_eq!(p.flush_throttle_timeout, Duration::from_millis(100));
    assert_eq!(p.max_packet_msg_payload_size, 1024);
    assert!(p.pex);
    assert!(!p.seed_mode);
    assert!(p.allow_duplicate_ip);
    assert_eq!(p.handshake_timeout, Duration::from_secs(20));
    assert_eq!(p.dial_timeout, Duration::from_secs(3));
    assert_eq!(p.addr_book_file, Path::new("config/addrbook.json"));
    assert!(!p.addr_book_strict);
    assert_eq!(c.node.moniker, "validator-eu-1");
    // Sections ringwire has and stock does not keep their defaults.
    let d = Config::default();
    assert_eq!(
        (&c.engine, &c.limits, &c.metrics, &c.admin),
        (&d.engine, &d.limits, &d.metrics, &d.admin)
    );
}

#[test]
fn v0_40_home_imports_p2p_network_and_key() {
    let home = fixture("cometbft-v0.40");
    let c = Config::from_cometbft_home(&home).unwrap();
    check_fixture_p2p(&c);
    assert_eq!(c.node.network, "fixture-chain-7");
    assert_eq!(c.node.home, home);
    assert_eq!(c.node_key_path(), home.join("config/node_key.json"));
    assert_eq!(c.load_node_key().unwrap().node_id().to_string(), STOCK_ID);
}

#[test]
fn the_node_key_path_of_a_home_needs_only_that_key() {
    let home = copy_home("cometbft-v0.40");
    let config = home.path().join("config/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    // An unrelated value ringwire would refuse does not hide the key.
    let text = text.replace("max_num_inbound_peers = 120", "max_num_inbound_peers = -3");
    std::fs::write(&config, &text).unwrap();
    assert_eq!(
        Config::cometbft_node_key_path(home.path()).unwrap(),
        home.path().join("config/node_key.json")
    );
    let moved = text.replace(
        "node_key_file = \"config/node_key.json\"",
        "node_key_file = \"/etc/keys/nk.json\"",
    );
    std::fs::write(&config, moved).unwrap();
    assert_eq!(
        Config::cometbft_node_key_path(home.path()).unwrap(),
        Path::new("/etc/keys/nk.json")
    );
    std::fs::remove_file(&config).unwrap();
    assert_eq!(
        Config::cometbft_node_key_path(home.path()).unwrap(),
        home.path().join("config/node_key.json")
    );
}

#[test]
fn v0_38_home_imports_without_genesis() {
    let c = Config::from_cometbft_home(fixture("cometbft-v0.38")).unwrap();
    check_fixture_p2p(&c);
    assert_eq!(c.node.network, Config::default().node.network);
    assert_eq!(c.load_node_key().unwrap().node_id().to_string(), STOCK_ID);
}

/// Stock's defaults are ringwire's, but for the rates and the flush throttle (ringwire's
/// default is none; a stock home keeps stock's values, 5 MB/s each way and a 10ms flush).
#[test]
fn stock_defaults_are_ringwire_defaults_but_rates_and_flush() {
    let stock = P2pConfig {
        send_rate: 5_120_000,
        recv_rate: 5_120_000,
        flush_throttle_timeout: Duration::from_millis(10),
        ..P2pConfig::default()
    };
    let text = std::fs::read_to_string(fixture("cometbft-v0.40-default-config.toml")).unwrap();
    let c = Config::from_cometbft_toml_str(&text).unwrap();
    assert_eq!(c.p2p, stock);
    assert_eq!(c.node.moniker, "node0");
    assert_eq!(c.node.node_key_file, Path::new("config/node_key.json"));

    // v0.38 flushed every 100ms; everything else is the same.
    let text = std::fs::read_to_string(fixture("cometbft-v0.38-default-config.toml")).unwrap();
    let c = Config::from_cometbft_toml_str(&text).unwrap();
    let expected = P2pConfig {
        flush_throttle_timeout: Duration::from_millis(100),
        ..stock
    };
    assert_eq!(c.p2p, expected);
}

/// Copies a fixture home into a temporary directory.
fn copy_home(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture(name).join("config");
    std::fs::create_dir(dir.path().join("config")).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("config").join(entry.file_name()),
        )
        .unwrap();
    }
    dir
}

#[test]
fn bad_stock_values_name_the_file_and_key() {
    let home = copy_home("cometbft-v0.40");
    let config = home.path().join("config/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let bad = text
        .replace("max_num_inbound_peers = 120", "max_num_inbound_peers = -3")
        .replace("dial_timeout = \"3s\"", "dial_timeout = \"3 s\"");
    std::fs::write(&config, bad).unwrap();
    let e = Config::from_cometbft_home(home.path()).unwrap_err();
    assert_eq!(e.keys(), ["p2p.max_num_inbound_peers", "p2p.dial_timeout"]);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: p2p.max_num_inbound_peers: must not be negative, got -3",
            config.display()
        )),
        "{msg}"
    );

    let out_of_range = text.replace(
        "max_num_inbound_peers = 120",
        "max_num_inbound_peers = 99999",
    );
    std::fs::write(&config, out_of_range).unwrap();
    let e = Config::from_cometbft_home(home.path()).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("p2p.max_num_inbound_peers: must be at most 10000, got 99999"),
        "{e}"
    );

    let wrong_type = text.replace("pex = true", "pex = 1");
    std::fs::write(&config, wrong_type).unwrap();
    let e = Config::from_cometbft_home(home.path()).unwrap_err();
    assert!(
        matches!(&e, ConfigError::Parse { key: Some(k), .. } if k == "p2p.pex"),
        "{e}"
    );

    std::fs::remove_file(&config).unwrap();
    let e = Config::from_cometbft_home(home.path()).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e}");
}

#[test]
fn a_custom_node_key_and_genesis_path_are_followed() {
    let home = copy_home("cometbft-v0.40");
    let config = home.path().join("config/config.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "node_key_file = \"config/node_key.json\"",
            "node_key_file = \"keys/nk.json\"",
        )
        .replace(
            "genesis_file = \"config/genesis.json\"",
            "genesis_file = \"g.json\"",
        );
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        home.path().join("g.json"),
        r#"{"chain_id":"other-9","x":[1,2,3]}"#,
    )
    .unwrap();
    let c = Config::from_cometbft_home(home.path()).unwrap();
    assert_eq!(c.node.network, "other-9");
    assert_eq!(c.node_key_path(), home.path().join("keys/nk.json"));
    // A missing key is generated where stock would put it.
    let (key, generated) = c.load_or_generate_node_key().unwrap();
    assert!(generated);
    assert!(home.path().join("keys/nk.json").exists());
    assert_ne!(key.node_id().to_string(), STOCK_ID);
}

#[test]
fn node_key_files_are_written_atomically_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/node_key.json");
    let a = NodeKeyFile::new(NodeKey::from_seed([1; 32]));
    let b = NodeKeyFile::new(NodeKey::from_seed([2; 32]));

    a.write_new(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(NodeKeyFile::load(&path).unwrap().node_id(), a.node_id());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        a.to_json().as_str()
    );

    // write_new refuses to replace; the file is untouched.
    assert!(matches!(
        b.write_new(&path),
        Err(NodeKeyError::Exists { .. })
    ));
    assert_eq!(NodeKeyFile::load(&path).unwrap().node_id(), a.node_id());

    // write replaces.
    b.write(&path).unwrap();
    assert_eq!(NodeKeyFile::load(&path).unwrap().node_id(), b.node_id());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["node_key.json"]);
}

#[test]
fn bad_node_key_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node_key.json");
    std::fs::write(
        &path,
        "{\"priv_key\":{\"type\":\"tendermint/PrivKeyEd25519\",\"value\":\"AAAA\"}}",
    )
    .unwrap();
    let e = NodeKeyFile::load(&path).unwrap_err();
    assert!(matches!(e, NodeKeyError::Format { .. }));
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    std::fs::write(&path, vec![b' '; 100_000]).unwrap();
    assert!(matches!(
        NodeKeyFile::load(&path),
        Err(NodeKeyError::Format { .. })
    ));
    let e = NodeKeyFile::load(dir.path().join("none.json")).unwrap_err();
    assert!(matches!(e, NodeKeyError::Read { .. }));
}

#[test]
fn pex_follows_p2p_pex() {
    let mut c = Config::default();
    assert_eq!(
        c.pex_config(),
        Some(ringwire::pex::PexConfig::default()),
        "on by default, as in CometBFT"
    );
    c.p2p.pex = false;
    assert_eq!(c.pex_config(), None);
}
