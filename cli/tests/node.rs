//! `ringwire node`: bad configurations are refused with the key named; a CometBFT home without
//! a node key gets one; SIGTERM and SIGINT stop the node cleanly.

use std::path::Path;
use std::process::Command;

use ringwire_test_support::process::{NodeProcess, signal};

fn node_with(config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ringwire.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringwire"))
        .args(["node", "--config", "ringwire.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ringwire node` refuses `config`, and its error names every one of `words`.
fn assert_refused(config: &str, words: &[&str]) {
    let (code, err) = node_with(config);
    assert_ne!(code, 0);
    assert!(words.iter().all(|w| err.contains(w)), "{err}");
}

#[test]
fn an_unknown_key_is_refused_with_its_name() {
    assert_refused(
        "[p2p]\nladdr = \"127.0.0.1:0\"\nmax_peers = 3\n",
        &["p2p.max_peers", "unknown key"],
    );
}

#[test]
fn a_negative_limit_is_refused_with_its_name() {
    assert_refused(
        "[limits]\nrecv_queue_capacity = -5\n",
        &["limits.recv_queue_capacity", "negative"],
    );
}

#[test]
fn a_malformed_peer_address_is_refused_with_its_key() {
    assert_refused(
        "[p2p]\npersistent_peers = [\"not-an-id@127.0.0.1:26656\"]\n",
        &["p2p.persistent_peers"],
    );
}

fn cometbft_home(dir: &Path) {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/config.toml"),
        "moniker = \"validator-1\"\n\n[p2p]\nladdr = \"tcp://127.0.0.1:0\"\npex = false\n",
    )
    .unwrap();
}

#[test]
fn a_cometbft_home_without_a_node_key_gets_one_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    cometbft_home(dir.path());
    let key = dir.path().join("config/node_key.json");
    assert!(!key.exists());
    let home = dir.path().to_str().unwrap();
    let node = NodeProcess::start(
        env!("CARGO_BIN_EXE_ringwire"),
        &["--home", home],
        dir.path(),
    );
    assert!(key.exists(), "node_key.json was not generated");
    let shown = Command::new(env!("CARGO_BIN_EXE_ringwire"))
        .args(["show-node-id", "--home", home])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), node.id);
    let (code, err) = node.terminate();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("stopped"), "{err}");

    // The second start keeps the key (same ID); SIGINT stops it too.
    let again = NodeProcess::start(
        env!("CARGO_BIN_EXE_ringwire"),
        &["--home", home],
        dir.path(),
    );
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout).trim(),
        again.id,
        "the key changed"
    );
    signal(&again.child, "INT");
    let mut again = again;
    let status = again.child.wait().unwrap();
    assert!(status.success(), "{status}");
}
