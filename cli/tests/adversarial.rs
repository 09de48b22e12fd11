//! Strangers against a `ringwire node` process, on real sockets (docs/RELIABILITY.md rows 1, 2
//! and 19): a slowloris crowd and an accept flood from many loopback addresses, with the
//! node's descriptors capped by `prlimit`. The node stays up, refuses what it cannot hold,
//! admits an honest peer once the crowd is gone, and its descriptors and memory return to
//! their baseline. One test per binary, so nothing else shares the measurements.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ringwire::node::Node;
use ringwire::proto::secret::{NodeId, NodeKey};
use ringwire_test_support::node::connect_from;
use ringwire_test_support::process::NodeProcess;

/// Descriptors the node may hold (set with `prlimit` once it runs).
const NOFILE: usize = 128;
/// Silent sockets the crowd opens, from 60 loopback addresses.
const CROWD: usize = 600;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn node_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn write_config(dir: &Path, driver: &str) {
    let text = format!(
        "[node]\nmoniker = \"target\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\npex = false\n\
         handshake_timeout = \"1s\"\n\n[engine]\ndriver = \"{driver}\"\nshards = 1\n"
    );
    std::fs::write(dir.join("ringwire.toml"), text).unwrap();
}

#[test]
fn a_slowloris_crowd_and_an_accept_flood_leave_descriptors_and_memory_at_baseline() {
    for driver in ["io_uring", "epoll"] {
        run(driver);
    }
}

fn run(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), driver);
    let node = NodeProcess::start(
        env!("CARGO_BIN_EXE_ringwire"),
        &["--config", "ringwire.toml"],
        dir.path(),
    );
    let pid = node.child.id();
    let ok = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={NOFILE}:{NOFILE}"),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "prlimit");
    let addr: SocketAddr = node.addr.parse().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (base_fds, base_rss) = (fds(pid), rss_kib(pid));

    let start = Instant::now();
    let crowd: Vec<TcpStream> = (0..CROWD)
        .filter_map(|i| connect_from([127, 0, 0, 2 + (i % 60) as u8], addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (peak_fds, peak_rss) = (fds(pid), rss_kib(pid));
    // Descriptors opened before the limit was set may sit above it; new ones may not.
    assert!(
        peak_fds <= NOFILE + base_fds,
        "{peak_fds} descriptors under a limit of {NOFILE}"
    );
    assert!(node_alive(pid), "the node survived the crowd");
    drop(crowd);

    // The crowd is gone: an honest peer gets in.
    let target: NodeId = node.id.parse().unwrap();
    let honest = Node::builder(NodeKey::from_seed([9; 32]), "ringwire-devnet")
        .shards(1)
        .start()
        .unwrap();
    let admitted_after = loop {
        if honest.dial_blocking(addr, Some(target)).is_ok() {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the honest peer never got in"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    honest.shutdown_blocking(Instant::now() + Duration::from_secs(2));

    // Back to baseline: every descriptor of the crowd closed, memory within 16 MiB.
    let end = Instant::now() + Duration::from_secs(10);
    while fds(pid) > base_fds && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (after_fds, after_rss) = (fds(pid), rss_kib(pid));
    eprintln!(
        "{driver}: baseline {base_fds} fds {base_rss} KiB; crowd of {CROWD}: peak {peak_fds} fds \
         {peak_rss} KiB; honest peer admitted {admitted_after:?} after the crowd began; after: \
         {after_fds} fds {after_rss} KiB"
    );
    assert!(
        after_fds <= base_fds,
        "{after_fds} descriptors, baseline {base_fds}"
    );
    assert!(
        after_rss <= base_rss + 16 * 1024,
        "{after_rss} KiB resident, baseline {base_rss} KiB"
    );
    let (code, log) = node.terminate();
    assert_eq!(code, Some(0), "{log}");
}
