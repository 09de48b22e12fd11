//! The `ringwire` binary, run as an operator would: keys, node IDs, configuration files.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ringwire::config::{Config, NodeKeyFile};

/// Stock CometBFT's `nodeKey.ID()` for the fixture homes' node_key.json.
const STOCK_ID: &str = "65b60673d6ed884bf01c2c222d82ada0740f29ac";

fn ringwire(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringwire"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ringwire")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn fixture_home(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/fixtures")
        .join(name)
}

#[test]
fn keygen_writes_a_stock_format_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = ringwire(&["keygen"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.path().join("node_key.json");
    let key = NodeKeyFile::load(&path).unwrap();
    assert_eq!(stdout(&out).trim(), key.node_id().to_string());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(r#"{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":""#));

    // A second run without --force fails and keeps the key.
    let again = ringwire(&["keygen"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // --force replaces it.
    let forced = ringwire(&["keygen", "--force"], dir.path());
    assert!(forced.status.success());
    let new_key = NodeKeyFile::load(&path).unwrap();
    assert_ne!(new_key.node_id(), key.node_id());
    assert_eq!(stdout(&forced).trim(), new_key.node_id().to_string());

    // --out into a directory that does not exist yet.
    let out = ringwire(
        &["keygen", "--out", "home/config/node_key.json"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = NodeKeyFile::load(dir.path().join("home/config/node_key.json"))
        .unwrap()
        .node_id();
    assert_eq!(stdout(&out).trim(), id.to_string());
}

#[test]
fn show_node_id_from_a_home_a_key_file_or_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let home = fixture_home("cometbft-v0.40");
    let out = ringwire(
        &["show-node-id", "--home", home.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{STOCK_ID}\n"));

    let key_file = home.join("config/node_key.json");
    let out = ringwire(
        &["show-node-id", "--node-key", key_file.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(stdout(&out), format!("{STOCK_ID}\n"));

    // A home without config.toml: stock's default key path.
    let bare = dir.path().join("bare");
    std::fs::create_dir_all(bare.join("config")).unwrap();
    std::fs::copy(&key_file, bare.join("config/node_key.json")).unwrap();
    let out = ringwire(&["show-node-id", "--home", "bare"], dir.path());
    assert_eq!(stdout(&out), format!("{STOCK_ID}\n"), "{}", stderr(&out));

    // A ringwire config whose node_key_file is relative to the file's directory.
    std::fs::write(
        bare.join("ringwire.toml"),
        "[node]\nnode_key_file = \"config/node_key.json\"\n",
    )
    .unwrap();
    let out = ringwire(
        &["show-node-id", "--config", "bare/ringwire.toml"],
        dir.path(),
    );
    assert_eq!(stdout(&out), format!("{STOCK_ID}\n"), "{}", stderr(&out));

    // No key: a clear error naming the file.
    let out = ringwire(&["show-node-id", "--home", "nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nowhere/config/node_key.json"),
        "{}",
        stderr(&out)
    );

    // Exactly one source.
    let out = ringwire(&["show-node-id"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let out = ringwire(
        &["show-node-id", "--home", "a", "--node-key", "b"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_default_prints_the_commented_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let out = ringwire(&["config", "default"], dir.path());
    assert!(out.status.success());
    let text = stdout(&out);
    assert_eq!(text, Config::default_toml_with_comments());
    assert_eq!(Config::from_toml_str(&text).unwrap(), Config::default());

    // What it prints is a valid file for `config check`.
    std::fs::write(dir.path().join("ringwire.toml"), &text).unwrap();
    let out = ringwire(&["config", "check", "ringwire.toml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ringwire.toml: ok"));
}

#[test]
fn config_check_names_the_key_of_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let id = "1f2e3d4c5b6a79880716253443526170a9b8c7d6";
    for (text, expected) in [
        (
            "[p2p]\nmax_num_inbound_peers = 40\nmax_inbound = 3\n".to_owned(),
            "bad.toml:3: p2p.max_inbound: unknown key".to_owned(),
        ),
        (
            "[limits]\nmax_pending_handshakes = -1\n".to_owned(),
            "bad.toml:2: limits.max_pending_handshakes: must not be negative, got -1".to_owned(),
        ),
        (
            format!("[p2p]\npersistent_peers = [\"{id}@10.0.0.1\"]\n"),
            "bad.toml:2: p2p.persistent_peers: entry 0:".to_owned(),
        ),
        (
            "[p2p]\nmax_num_inbound_peers = 20000\n[limits]\nmax_message_size = 0\n".to_owned(),
            "bad.toml: p2p.max_num_inbound_peers: must be at most 10000, got 20000".to_owned(),
        ),
    ] {
        std::fs::write(dir.path().join("bad.toml"), &text).unwrap();
        let out = ringwire(&["config", "check", "bad.toml"], dir.path());
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = stderr(&out);
        assert!(err.contains(&format!("error: {expected}")), "{text}\n{err}");
    }
    // Every problem is reported, one line each.
    let err = stderr(&ringwire(&["config", "check", "bad.toml"], dir.path()));
    assert!(
        err.contains("error: bad.toml: limits.max_message_size: must be from"),
        "{err}"
    );

    let out = ringwire(&["config", "check", "missing.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.toml: cannot read"));
}

#[test]
fn config_check_reads_a_cometbft_home() {
    let dir = tempfile::tempdir().unwrap();
    let home = fixture_home("cometbft-v0.38");
    let out = ringwire(
        &["config", "check", "--home", home.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(": ok"));
    let out = ringwire(&["config", "check", "--home", "nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nowhere/config/config.toml"));
}
