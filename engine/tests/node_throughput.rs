//! Measurements, not checks: run with
//! `cargo test --release -p ringwire --test node_throughput -- --ignored --nocapture`
//! (set `RINGWIRE_DRIVER` to pick the driver). They print numbers and assert only that every
//! message arrived.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::router::Envelope;
use ringwire_test_support::node::*;

fn one_connection(native: bool, size: usize, count: usize, lent: u16) {
    let desc = ringwire::proto::conn::ChannelDescriptor {
        send_queue_capacity: 1024,
        ..chan(0x20, 1, 1 << 20)
    };
    let mk = |seed| {
        builder(seed)
            .shards(1)
            .listen("127.0.0.1:0".parse().unwrap())
            .offer_native(native)
            .limits(ringwire::node::Limits {
                shard_read_buffers: lent,
                ..Default::default()
            })
            .channel(desc.clone())
            .start()
            .unwrap()
    };
    let a = mk(1);
    let b = mk(2);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    let msg = Bytes::from(vec![0xAB; size]);
    let to = b.node_id();
    let start = Instant::now();
    let sender = ca.sender();
    let t = std::thread::spawn(move || {
        for _ in 0..count {
            sender
                .send_blocking(Envelope::peer(to, msg.clone()), secs(60))
                .unwrap();
        }
    });
    for _ in 0..count {
        cb.recv_blocking(secs(60)).expect("message");
    }
    let elapsed = start.elapsed().as_secs_f64();
    t.join().unwrap();
    let stats = b.stats();
    println!(
        "driver={} mode={} lent={lent} size={size}: {:.0} msg/s, {:.1} MB/s \
         (receiver: {} multishot arms, {} reads found the ring dry)",
        a.driver(),
        if native { "native" } else { "compat" },
        count as f64 / elapsed,
        (count * size) as f64 / elapsed / 1e6,
        stats.multishot_arms,
        stats.read_buffers_exhausted
    );
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

#[test]
#[ignore]
fn throughput_small_and_large_messages() {
    // RINGWIRE_TEST_CASES=native,compat,lent,lent-compat picks cases (default: all). `native`
    // and `compat` give every connection its own read buffer; `lent` and `lent-compat` repeat
    // them with 256 lent read buffers per shard (on io_uring: multishot receive for native,
    // single-shot reads from the ring for compat).
    // RINGWIRE_TEST_LENT_BUFFERS=n lends n buffers instead.
    let cases = std::env::var("RINGWIRE_TEST_CASES")
        .unwrap_or_else(|_| "native,compat,lent,lent-compat".into());
    let lent: u16 = std::env::var("RINGWIRE_TEST_LENT_BUFFERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    for (name, native, lent) in [
        ("native", true, 0),
        ("compat", false, 0),
        ("lent", true, lent),
        ("lent-compat", false, lent),
    ] {
        if !cases.split(',').any(|c| c == name) {
            continue;
        }
        one_connection(native, 256, 200_000, lent);
        one_connection(native, 64 * 1024, 4_000, lent);
    }
}

/// The workload of bindings-go's `BenchmarkGoToGo` (4 KiB and 256-byte messages, native, one
/// connection): `make go-bench` runs this and the Go benchmark one after the other and reports
/// Go/Rust ratios.
#[test]
#[ignore]
fn go_binding_workload() {
    let count = std::env::var("RINGWIRE_BENCH_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let lent = ringwire::node::Limits::default().shard_read_buffers;
    one_connection(true, 4096, count, lent);
    one_connection(true, 256, count, lent);
}

const CHILD_ENV: &str = "RINGWIRE_TEST_IDLE_PEERS";

/// Child side of the idle-peer measurement: many peer nodes that dial the hub and stay idle.
#[test]
#[ignore]
fn idle_peers_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let addr: std::net::SocketAddr = parts.next().unwrap().parse().unwrap();
    let n: u32 = parts.next().unwrap().parse().unwrap();
    let mut nodes = Vec::new();
    for i in 0..n {
        let node = builder_n(10_000 + i)
            .driver(ringwire::rt::Driver::Epoll)
            .limits(ringwire::node::Limits {
                read_buffer: 4096,
                ..Default::default()
            })
            .channel(chan(0x20, 1, 1024))
            .start()
            .unwrap();
        node.dial_blocking(addr, None).unwrap();
        nodes.push(node);
    }
    println!("CONNECTED");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    std::process::exit(0);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
#[ignore]
fn rss_per_idle_peer() {
    let peers: usize = 1000;
    // RINGWIRE_TEST_LENT_BUFFERS=n: the hub's shards lend n read buffers instead.
    let lent: u16 = std::env::var("RINGWIRE_TEST_LENT_BUFFERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let hub = builder(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .limits(ringwire::node::Limits {
            shard_read_buffers: lent,
            ..Default::default()
        })
        .channel(chan(0x20, 1, 1024))
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "idle_peers_child", "--nocapture", "--ignored"])
        .env(CHILD_ENV, format!("{} {peers}", hub.listen_addr().unwrap()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ok = child.stdout.take().is_some_and(|out| {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("CONNECTED"))
    });
    if ok {
        wait_peers(&hub, peers);
        std::thread::sleep(Duration::from_secs(2));
        let after = rss_kib();
        println!(
            "driver={} lent={lent} hub RSS: {before} KiB before, {after} KiB with {peers} idle peers: {:.1} KiB per peer",
            hub.driver(),
            (after.saturating_sub(before)) as f64 / peers as f64
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "the child did not connect its peers");
    hub.shutdown_blocking(secs(10));
}
