//! Two `ringwire node` processes (B keeps A as a persistent peer) and an in-process node that
//! sends requests to A: A's metrics endpoint shows the stock names with non-zero values, and
//! the admin commands list, disconnect, dial and ban peers of A; A logs each peer up and down.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::node::Node;
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::proto::secret::{NodeId, NodeKey};
use ringwire_test_support::process::{NodeProcess, eventually, free_port, http_get_metrics};
use serde_json::Value;

fn write_config(dir: &Path, moniker: &str, metrics_port: u16, extra_p2p: &str) {
    let text = format!(
        "[node]\nmoniker = \"{moniker}\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\nallow_duplicate_ip = \
         true\npex = false\n{extra_p2p}\n\n[metrics]\nenabled = true\nlisten = \
         \"127.0.0.1:{metrics_port}\"\n\n[admin]\nenabled = true\nlisten = \"unix://admin.sock\"\n"
    );
    std::fs::write(dir.join("ringwire.toml"), text).unwrap();
}

/// Starts node A in `dir` with metrics on `port` and `keys` (TOML lines) in its `[metrics]`.
fn start_with_metrics_keys(dir: &Path, port: u16, keys: &str) -> NodeProcess {
    write_config(dir, "node-a", port, "");
    let path = dir.join("ringwire.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[metrics]\nenabled = true\n",
        &format!("[metrics]\nenabled = true\n{keys}"),
    );
    std::fs::write(&path, text).unwrap();
    NodeProcess::start(
        env!("CARGO_BIN_EXE_ringwire"),
        &["--config", "ringwire.toml"],
        dir,
    )
}

/// Runs an admin command against the node configured in `dir`; returns its JSON answer.
fn admin(dir: &Path, args: &[&str]) -> Value {
    ringwire_test_support::process::admin(env!("CARGO_BIN_EXE_ringwire"), dir, args)
}

fn peer_ids(dir: &Path) -> Vec<String> {
    admin(dir, &["peers"])["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The value of the first sample of `name` whose labels contain `label`.
fn sample(body: &str, name: &str, label: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_and_admin_commands_on_running_nodes() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    write_config(dir_a.path(), "node-a", port_a, "");
    let a = NodeProcess::start(
        env!("CARGO_BIN_EXE_ringwire"),
        &["--config", "ringwire.toml"],
        dir_a.path(),
    );
    write_config(
        dir_b.path(),
        "node-b",
        port_b,
        &format!("persistent_peers = [\"{}@{}\"]", a.id, a.addr),
    );
    let b = NodeProcess::start(
        env!("CARGO_BIN_EXE_ringwire"),
        &["--config", "ringwire.toml"],
        dir_b.path(),
    );

    // An in-process node sends requests to A, which answers each with its payload.
    let blocksync = ChannelDescriptor::stock()
        .into_iter()
        .find(|d| d.id == 0x40)
        .unwrap();
    let t = Node::builder(NodeKey::from_seed([9; 32]), "ringwire-devnet")
        .listen("127.0.0.1:0".parse().unwrap())
        .shards(1)
        .channel(blocksync.clone())
        .start()
        .unwrap();
    let ch = t.open_channel(blocksync).unwrap();
    let a_id: NodeId = a.id.parse().unwrap();
    t.dial_blocking(a.addr.parse().unwrap(), Some(a_id))
        .unwrap();
    for i in 0..20u8 {
        let payload = Bytes::from(vec![i; 4096]);
        let answer = ch
            .request_blocking(
                a_id,
                payload.clone(),
                Instant::now() + Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(answer, payload);
    }
    let t_id = t.node_id().to_string();

    // Both peers show in A's metrics, with bytes both ways for T.
    let body = eventually(Duration::from_secs(15), || {
        let body = http_get_metrics(&format!("127.0.0.1:{port_a}"));
        (sample(&body, "cometbft_p2p_peers", "") == Some(2.0)
            && sample(&body, "cometbft_p2p_peer_send_bytes_total", &t_id).is_some())
        .then_some(body)
    })
    .expect("metrics with two peers and T's traffic");
    let peer_ch = format!("peer_id=\"{t_id}\"");
    for name in [
        "cometbft_p2p_peer_receive_bytes_total",
        "cometbft_p2p_peer_send_bytes_total",
    ] {
        let v = sample(&body, name, &peer_ch).unwrap_or(0.0);
        assert!(v >= 20.0 * 4096.0, "{name} = {v}\n{body}");
        assert!(body.contains(&format!("{name}{{")) && body.contains("chID=\"0x40\""));
    }
    for name in [
        "cometbft_p2p_message_receive_bytes_total",
        "cometbft_p2p_message_send_bytes_total",
    ] {
        let v = sample(&body, name, "message_type=\"blocksync_Message\"").unwrap_or(0.0);
        assert!(v > 0.0, "{name} = {v}\n{body}");
    }
    assert!(sample(&body, "cometbft_p2p_peer_send_queue_size", &peer_ch).is_some());
    assert!(sample(&body, "cometbft_p2p_peer_pending_send_bytes", &peer_ch).is_some());
    assert_eq!(sample(&body, "ringwire_driver", "driver="), Some(1.0));
    assert!(sample(&body, "ringwire_shard_inbox_depth", "shard=\"0\"").is_some());
    // Score counters by reason, zero on well-behaved peers.
    for (name, label) in [
        (
            "ringwire_peer_offences_total",
            "reason=\"protocol_violation\"",
        ),
        ("ringwire_peer_bans_total", "reason=\"pex_abuse\""),
        ("ringwire_address_bans_total", ""),
    ] {
        assert_eq!(sample(&body, name, label), Some(0.0), "{name}\n{body}");
    }
    // B counts its connection to A (and may have dialed T from the addresses A gave it).
    eventually(Duration::from_secs(15), || {
        let b_body = http_get_metrics(&format!("127.0.0.1:{port_b}"));
        sample(&b_body, "cometbft_p2p_peers", "")
            .is_some_and(|n| n >= 1.0)
            .then_some(())
    })
    .expect("B's metrics count its peer A");

    // Admin: list, counters, disconnect, dial, ban.
    let peers = peer_ids(dir_a.path());
    let stats = &admin(dir_a.path(), &["stats"])["stats"];
    assert_eq!(stats["peers"], 2, "{stats}");
    assert!(stats["accepted"].as_u64() >= Some(2), "{stats}");
    assert_eq!(stats["control_floods"], 0, "{stats}");
    assert!(peers.contains(&b.id) && peers.contains(&t_id), "{peers:?}");
    let answer = admin(dir_a.path(), &["disconnect", &t_id]);
    assert_eq!(answer["disconnected"], true);
    eventually(Duration::from_secs(10), || {
        (!peer_ids(dir_a.path()).contains(&t_id)).then_some(())
    })
    .expect("T disconnected");
    let t_addr = format!("{t_id}@{}", t.listen_addr().unwrap());
    let answer = admin(dir_a.path(), &["dial", &t_addr]);
    assert_eq!(answer["connected"], t_id.as_str());
    assert!(peer_ids(dir_a.path()).contains(&t_id));
    let answer = admin(dir_a.path(), &["ban", &b.id, "--for", "1h"]);
    assert_eq!(answer["banned"], b.id.as_str());
    eventually(Duration::from_secs(10), || {
        (!peer_ids(dir_a.path()).contains(&b.id)).then_some(())
    })
    .expect("B gone after the ban");
    // B keeps redialling A; the ban refuses it.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!peer_ids(dir_a.path()).contains(&b.id));

    // A bad request is answered with an error, not a crash.
    let out = Command::new(env!("CARGO_BIN_EXE_ringwire"))
        .args(["disconnect", "zz", "--config", "ringwire.toml"])
        .current_dir(dir_a.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad node ID"));

    t.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    drop(b);
    let (code, log) = a.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("peer up") && log.contains(&t_id), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("peer down") && l.contains("banned")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("peer down") && l.contains("disconnected by the operator")),
        "{log}"
    );
}

/// `[metrics] idle_series_timeout`: a gone peer's series leave /metrics after the timeout,
/// while a connected peer's series and the node's own stay, idle or not.
#[test]
fn metrics_series_of_a_gone_peer_leave_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let a = start_with_metrics_keys(dir.path(), port, "idle_series_timeout = \"2s\"\n");
    let a_id: NodeId = a.id.parse().unwrap();
    let peer = |seed: u8| {
        let n = Node::builder(NodeKey::from_seed([seed; 32]), "ringwire-devnet")
            .shards(1)
            .start()
            .unwrap();
        n.dial_blocking(a.addr.parse().unwrap(), Some(a_id))
            .unwrap();
        n
    };
    let (gone, stays) = (peer(21), peer(22));
    let (gone_id, stays_id) = (
        format!("peer_id=\"{}\"", gone.node_id()),
        format!("peer_id=\"{}\"", stays.node_id()),
    );
    let metrics = || http_get_metrics(&format!("127.0.0.1:{port}"));
    eventually(Duration::from_secs(15), || {
        let body = metrics();
        (body.contains(&gone_id) && body.contains(&stays_id)).then_some(())
    })
    .expect("both peers' series appear");
    gone.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    // Scrapes prune; keep scraping until the gone peer's series have left.
    let body = eventually(Duration::from_secs(15), || {
        let body = metrics();
        (!body.contains(&gone_id)).then_some(body)
    })
    .expect("the gone peer's series leave");
    // Longer than the timeout since the connected peer last moved a byte: its series stay.
    assert!(body.contains(&stays_id), "{body}");
    assert_eq!(sample(&body, "cometbft_p2p_peers", ""), Some(1.0), "{body}");
    assert!(body.contains("ringwire_disconnects_total"), "{body}");
    stays.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    let (code, log) = a.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// `[metrics] namespace`: the stock metric names carry it as their prefix, in place of
/// `cometbft`.
#[test]
fn metrics_namespace_prefixes_the_stock_names() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let a = start_with_metrics_keys(dir.path(), port, "namespace = \"chain7\"\n");
    let a_id: NodeId = a.id.parse().unwrap();
    let peer = Node::builder(NodeKey::from_seed([23; 32]), "ringwire-devnet")
        .shards(1)
        .start()
        .unwrap();
    peer.dial_blocking(a.addr.parse().unwrap(), Some(a_id))
        .unwrap();
    let peer_id = format!("peer_id=\"{}\"", peer.node_id());
    let body = eventually(Duration::from_secs(15), || {
        let body = http_get_metrics(&format!("127.0.0.1:{port}"));
        (sample(&body, "chain7_p2p_peers", "") == Some(1.0)
            && sample(&body, "chain7_p2p_peer_send_queue_size", &peer_id).is_some())
        .then_some(body)
    })
    .expect("the stock names under the namespace chain7");
    assert!(!body.contains("cometbft_"), "{body}");
    peer.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    let (code, log) = a.terminate();
    assert_eq!(code, Some(0), "{log}");
}
