//! The operator's view of a running `ringwire node` through its admin endpoint:
//! `ringwire dial-seeds` dials the configured seed (which the node, without PEX, never dials on
//! its own); `ringwire peers` shows the seed with its direction, protocol, capabilities, score,
//! uptime, keepalive RTT, bytes per channel and queue depth; `ringwire book` lists the address
//! book read from `addrbook.json` (table, buckets, attempts) and the bans in force.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::node::Node;
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::proto::secret::{NodeId, NodeKey};
use ringwire_test_support::process::{NodeProcess, eventually};
use serde_json::Value;

const NETWORK: &str = "ringwire-devnet";

fn write_config(dir: &Path, p2p: &str) {
    let text = format!(
        "[node]\nmoniker = \"node-a\"\nhome = \"{}\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\n\
         allow_duplicate_ip = true\n{p2p}\n\n[limits]\nnative_ping_interval = \"200ms\"\n\
         ping_interval = \"1s\"\npong_timeout = \"900ms\"\n\n\
         [admin]\nenabled = true\nlisten = \"unix://admin.sock\"\n",
        dir.display()
    );
    std::fs::write(dir.join("ringwire.toml"), text).unwrap();
}

/// Starts the node configured in `dir` and waits for its admin endpoint, which it opens
/// after printing its listening line.
fn start(dir: &Path) -> NodeProcess {
    let node = NodeProcess::start(
        env!("CARGO_BIN_EXE_ringwire"),
        &["--config", "ringwire.toml"],
        dir,
    );
    eventually(Duration::from_secs(15), || {
        Command::new(env!("CARGO_BIN_EXE_ringwire"))
            .args(["peers", "--config", "ringwire.toml"])
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
    })
    .expect("the admin endpoint answers");
    node
}

/// Runs an admin command against the node configured in `dir`; returns its JSON answer.
fn admin(dir: &Path, args: &[&str]) -> Value {
    ringwire_test_support::process::admin(env!("CARGO_BIN_EXE_ringwire"), dir, args)
}

fn peer(dir: &Path, id: &str) -> Option<Value> {
    admin(dir, &["peers"])["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
}

fn blocksync() -> ChannelDescriptor {
    ChannelDescriptor::stock()
        .into_iter()
        .find(|d| d.id == 0x40)
        .unwrap()
}

#[test]
fn dial_seeds_then_peers_show_each_peers_state() {
    let seed = Node::builder(NodeKey::from_seed([7; 32]), NETWORK)
        .listen("127.0.0.1:0".parse().unwrap())
        .shards(1)
        .offer_native(true)
        .capabilities(["archive"])
        .channel(blocksync())
        .start()
        .unwrap();
    let seed_id = seed.node_id().to_string();
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!(
            "pex = false\nseeds = [\"{seed_id}@{}\"]",
            seed.listen_addr().unwrap()
        ),
    );
    let a = start(dir.path());
    // Without PEX nothing dials the seed on its own.
    std::thread::sleep(Duration::from_millis(500));
    assert!(seed.peers().is_empty());

    let answer = admin(dir.path(), &["dial-seeds"]);
    assert_eq!(answer["dialed"], serde_json::json!([seed_id]), "{answer}");
    let a_id: NodeId = a.id.parse().unwrap();
    eventually(Duration::from_secs(15), || {
        seed.peers()
            .iter()
            .any(|p| p.info.node_id == a_id)
            .then_some(())
    })
    .expect("the seed sees A");

    // Traffic on 0x40 from the seed: A answers each request with its payload.
    let ch = seed.open_channel(blocksync()).unwrap();
    for i in 0..10u8 {
        let payload = Bytes::from(vec![i; 10_000]);
        let answer = ch
            .request_blocking(
                a_id,
                payload.clone(),
                Instant::now() + Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(answer, payload);
    }

    // The keepalive runs every 200 ms: the RTT shows up soon.
    let p = eventually(Duration::from_secs(15), || {
        peer(dir.path(), &seed_id).filter(|p| p["rtt_ms"].is_number())
    })
    .expect("the seed listed with a measured RTT");
    assert_eq!(p["direction"], "outbound", "{p}");
    assert_eq!(p["protocol"], "native", "{p}");
    assert_eq!(p["capabilities"], serde_json::json!(["archive"]), "{p}");
    assert_eq!(p["score"], 0, "a well-behaved peer: {p}");
    let rtt = p["rtt_ms"].as_f64().unwrap();
    assert!((0.0..5_000.0).contains(&rtt), "loopback RTT {rtt} ms");
    let uptime = p["uptime_s"].as_f64().unwrap();
    assert!(uptime > 0.0 && uptime < 120.0, "{p}");
    assert!(p["queue_depth"].as_u64().is_some(), "{p}");
    let ch40 = p["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "0x40")
        .cloned()
        .unwrap_or_else(|| panic!("channel 0x40 listed: {p}"));
    assert!(
        ch40["received_bytes"].as_u64().unwrap() >= 100_000,
        "{ch40}"
    );
    assert!(ch40["sent_bytes"].as_u64().unwrap() >= 100_000, "{ch40}");
    // Uptime grows.
    std::thread::sleep(Duration::from_millis(1100));
    let later = peer(dir.path(), &seed_id).unwrap();
    assert!(
        later["uptime_s"].as_f64().unwrap() >= uptime + 1.0,
        "{later}"
    );

    // A seed already connected is not dialed again.
    let answer = admin(dir.path(), &["dial-seeds"]);
    assert_eq!(answer["dialed"], serde_json::json!([]), "{answer}");

    // Without PEX the book is empty; a ban shows in its bans.
    let book = admin(dir.path(), &["book"]);
    assert_eq!(book["book"], serde_json::json!([]), "{book}");
    admin(dir.path(), &["ban", &seed_id, "--for", "1h"]);
    let book = admin(dir.path(), &["book"]);
    let ban = &book["bans"]["ids"][0];
    assert_eq!(ban["id"], seed_id.as_str(), "{book}");
    let left = ban["for_s"].as_f64().unwrap();
    assert!(left > 3500.0 && left <= 3600.0, "{book}");

    seed.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    let (code, log) = a.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// Stock's `addrbook.json` entry for `id@127.0.0.1:port`, new table.
fn entry(id: &NodeId, port: u16, src: &NodeId, attempts: u32) -> Value {
    serde_json::json!({
        "addr": {"id": id.to_string(), "ip": "127.0.0.1", "port": port},
        "src": {"id": src.to_string(), "ip": "127.0.0.1", "port": 26656},
        "buckets": [3],
        "attempts": attempts,
        "bucket_type": 1,
        "last_attempt": "2020-01-01T00:00:00Z",
        "last_success": "0001-01-01T00:00:00Z",
        "last_ban_time": "0001-01-01T00:00:00Z"
    })
}

#[test]
fn book_lists_the_address_book() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let ids: Vec<NodeId> = (30..33u8)
        .map(|n| NodeKey::from_seed([n; 32]).node_id())
        .collect();
    // Closed ports: the node dials them and fails.
    // The first address comes with capabilities a peer told of (ringwire's extra field).
    let mut told = entry(&ids[0], 9, &ids[2], 1);
    told["ringwire"] = serde_json::json!({"capabilities": ["archive"], "confirmed": false});
    let book = serde_json::json!({
        "key": "0123456789abcdef01234567",
        "addrs": [told, entry(&ids[1], 7, &ids[2], 0)],
    });
    std::fs::write(config.join("addrbook.json"), book.to_string()).unwrap();
    write_config(dir.path(), "pex = true\naddr_book_strict = false");
    let a = start(dir.path());
    let row = |answer: &Value, id: &NodeId| -> Value {
        answer["book"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.to_string().as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{id} listed: {answer}"))
    };
    let answer = admin(dir.path(), &["book"]);
    assert_eq!(answer["book"].as_array().unwrap().len(), 2, "{answer}");
    for id in &ids[..2] {
        let row = row(&answer, id);
        assert_eq!(row["table"], "new", "{row}");
        assert_eq!(row["buckets"], 1, "{row}");
        assert_eq!(row["source"], ids[2].to_string().as_str(), "{row}");
        assert!(
            row["addr"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{id}@127.0.0.1:"))
        );
        assert!(row["last_success_s_ago"].is_null(), "{row}");
        assert!(row["banned_for_s"].is_null(), "{row}");
    }
    let told = row(&answer, &ids[0]);
    assert_eq!(
        told["capabilities"],
        serde_json::json!(["archive"]),
        "{told}"
    );
    assert_eq!(told["capabilities_confirmed"], false, "{told}");
    let plain = row(&answer, &ids[1]);
    assert!(plain["capabilities"].is_null(), "{plain}");
    // The node dials its book at once (it has no peer): each failed dial counts an attempt.
    let answer = eventually(Duration::from_secs(30), || {
        let answer = admin(dir.path(), &["book"]);
        (row(&answer, &ids[0])["attempts"].as_u64() >= Some(2)
            && row(&answer, &ids[1])["attempts"].as_u64() >= Some(1))
        .then_some(answer)
    })
    .expect("attempts counted for both addresses");
    assert!(
        row(&answer, &ids[1])["last_attempt_s_ago"]
            .as_f64()
            .unwrap()
            < 60.0
    );
    assert_eq!(answer["bans"]["ids"], serde_json::json!([]));
    let (code, log) = a.terminate();
    assert_eq!(code, Some(0), "{log}");
}
