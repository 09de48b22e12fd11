//! `ringwire testnet`: N nodes in this process on loopback, fully meshed, exchanging
//! consensus-like traffic, with a live status line and a final summary.
//!
//! Traffic per node (each node sends to every other):
//! - votes: [`VOTES_PER_SEC`] broadcasts of [`VOTE_SIZE`] bytes on the consensus vote
//!   channel (0x22);
//! - block parts: [`PARTS_PER_SEC`] broadcasts of [`PART_SIZE`] bytes (incompressible) on the
//!   consensus data channel (0x21);
//! - requests: [`REQUESTS_PER_SEC`] requests of [`REQUEST_SIZE`] bytes on the block-sync
//!   channel (0x40), each to the next peer in turn, answered with a
//!   [`RESPONSE_SIZE`]-byte response.
//!
//! Latency: every payload starts with the send time (nanoseconds since the testnet started,
//! one clock for all nodes since they share the process); the receiver records the one-way
//! latency into an hdrhistogram (microseconds). Requests also record their round trip.
//! Statistics go to stdout: a status line per second (rewritten in place on a terminal, one
//! line each otherwise; on stderr with `--json`), then the summary (JSON with `--json`).
//!
//! `--s9` runs the overload scenario S9 (`docs/PERFORMANCE.md`): votes on the highest-priority
//! channel with a short delivery deadline (`--vote-ttl-ms`), block parts on the lowest with a
//! longer one (`--part-ttl-ms`), requests in between (they carry their own deadline). The
//! summary then adds the delivered age per kind, requests answered within their deadline and
//! the drops by reason. `--compat` runs the same over stock MConnection framing.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use ringwire::node::Node;
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::proto::secret::NodeKey;
use ringwire::router::{Channel, Envelope};
use ringwire::rt::driver::Driver;
use serde_json::json;

use crate::{Failure, run};

/// Vote broadcasts per node per second.
pub(crate) const VOTES_PER_SEC: u32 = 1000;
/// Bytes per vote.
pub(crate) const VOTE_SIZE: usize = 200;
/// Block-part broadcasts per node per second.
pub(crate) const PARTS_PER_SEC: u32 = 20;
/// Bytes per block part.
pub(crate) const PART_SIZE: usize = 64 * 1024;
/// Requests per node per second.
pub(crate) const REQUESTS_PER_SEC: u32 = 100;
/// Bytes per request.
pub(crate) const REQUEST_SIZE: usize = 64;
/// Bytes per response.
pub(crate) const RESPONSE_SIZE: usize = 1024;

const VOTE_CH: u8 = 0x22;
const PART_CH: u8 = 0x21;
const REQ_CH: u8 = 0x40;
/// Sends run in ticks of this length.
const TICK: Duration = Duration::from_millis(10);
/// Most messages a receiver takes per call.
const RECV_BATCH: usize = 256;
/// How long a request waits for its response.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Most nodes a testnet runs.
const MAX_NODES: usize = 64;

/// Which I/O driver the nodes use.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum DriverArg {
    /// io_uring when available, epoll otherwise.
    Auto,
    /// io_uring only.
    #[value(name = "io_uring", alias = "io-uring")]
    IoUring,
    /// epoll only.
    Epoll,
}

/// Options of `ringwire testnet`.
#[derive(Debug, Args)]
pub(crate) struct TestnetArgs {
    /// Number of nodes (2 to 64).
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// How long traffic runs (10s, 1m, 500ms).
    #[arg(long, default_value = "10s", value_parser = run::parse_duration)]
    duration: Duration,
    /// The I/O driver.
    #[arg(long, value_enum, default_value_t = DriverArg::Auto)]
    driver: DriverArg,
    /// Print the final summary as JSON (status lines go to stderr).
    #[arg(long)]
    json: bool,
    /// Shard threads per node.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Scenario S9's mix: votes on the highest-priority channel, block parts on the lowest,
    /// requests in between, with delivery deadlines (`--vote-ttl-ms`, `--part-ttl-ms`).
    #[arg(long)]
    s9: bool,
    /// With `--s9`: votes' delivery deadline in ms (0: none).
    #[arg(long, default_value_t = 300)]
    vote_ttl_ms: u64,
    /// With `--s9`: block parts' delivery deadline in ms (0: none).
    #[arg(long, default_value_t = 1000)]
    part_ttl_ms: u64,
    /// Stock MConnection framing only (no native protocol, so no time-to-live on the wire).
    #[arg(long)]
    compat: bool,
    /// `SO_RCVBUF` of every connection in bytes (`limits.tcp_recv_buffer`; 0: the kernel's
    /// autotuning).
    #[arg(long, default_value_t = 0)]
    tcp_recv_buffer: usize,
    /// Received messages per connection that wait for the application
    /// (`limits.recv_queue_capacity`; 0: the default).
    #[arg(long, default_value_t = 0)]
    recv_queue: usize,
    /// Bytes of sealed records a connection writes at once (`limits.write_batch`; 0: the
    /// default).
    #[arg(long, default_value_t = 0)]
    write_batch: usize,
    /// Per-channel credit window of native connections in bytes (`limits.native_window`;
    /// 0: the default).
    #[arg(long, default_value_t = 0)]
    native_window: u32,
    /// Credit a lower native channel keeps while a higher one is busy, in bytes per
    /// millisecond of round trip (`limits.native_busy_window`; absent: the default; 0: off).
    #[arg(long)]
    native_busy_window: Option<u32>,
}

/// Counters and histograms of one node's receivers.
#[derive(Default)]
struct Stats {
    messages: AtomicU64,
    bytes: AtomicU64,
    votes: AtomicU64,
    parts: AtomicU64,
    requests: AtomicU64,
    responses: AtomicU64,
    send_errors: AtomicU64,
    /// Requests issued, and those answered within their deadline.
    requests_issued: AtomicU64,
    requests_answered: AtomicU64,
    /// Delivered age in µs per kind (vote, block part, request at the server).
    ages: Mutex<Option<[Histogram<u64>; 3]>>,
    /// One-way latency in µs: (since the last status line, whole run).
    latency: Mutex<Option<(Histogram<u64>, Histogram<u64>)>>,
    /// Request round trips in µs.
    rtt: Mutex<Option<Histogram<u64>>>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 100 s with 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

impl Stats {
    /// Records each of `ages` (µs) as a latency and as an age of `kind`: one lock of each
    /// histogram for the lot.
    fn record_ages(&self, kind: usize, ages: &[u64]) {
        if ages.is_empty() {
            return;
        }
        {
            let mut g = self.latency.lock().unwrap_or_else(|e| e.into_inner());
            let (a, b) = g.get_or_insert_with(|| (histogram(), histogram()));
            for &us in ages {
                a.saturating_record(us.max(1));
                b.saturating_record(us.max(1));
            }
        }
        let mut g = self.ages.lock().unwrap_or_else(|e| e.into_inner());
        let h = g.get_or_insert_with(|| [histogram(), histogram(), histogram()]);
        if let Some(h) = h.get_mut(kind) {
            for &us in ages {
                h.saturating_record(us.max(1));
            }
        }
    }

    fn record_rtt(&self, us: u64) {
        let mut g = self.rtt.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(histogram).saturating_record(us.max(1));
    }
}

/// The time stamp at the start of each payload.
fn stamp(epoch: Instant, size: usize, filler: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(size.max(8));
    let ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    v.extend_from_slice(&ns.to_le_bytes());
    let rest = size.saturating_sub(8);
    v.extend_from_slice(&filler[..rest.min(filler.len())]);
    v.resize(size.max(8), 0);
    Bytes::from(v)
}

/// Microseconds since the stamp of `payload`, if it has one.
fn age_us(epoch: Instant, payload: &[u8]) -> Option<u64> {
    let sent = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let now = u64::try_from(epoch.elapsed().as_nanos()).ok()?;
    Some(now.saturating_sub(sent) / 1000)
}

/// Incompressible filler (xorshift), so block parts cost what real ones do.
fn filler(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn descriptor(id: u8) -> Result<ChannelDescriptor, Failure> {
    ChannelDescriptor::stock()
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| Failure(format!("no stock channel {id:#x}")))
}

/// The channel as the run uses it: stock, or with S9's priorities (votes first, requests,
/// block parts last).
fn channel_for(id: u8, s9: bool) -> Result<ChannelDescriptor, Failure> {
    let mut d = descriptor(id)?;
    if s9 {
        d.priority = match id {
            VOTE_CH => 10,
            REQ_CH => 5,
            _ => 1,
        };
    }
    Ok(d)
}

/// The nodes' limits: the defaults with `--tcp-recv-buffer` and `--recv-queue` applied.
fn limits(args: &TestnetArgs) -> ringwire::Limits {
    let mut l = ringwire::Limits {
        tcp_recv_buffer: args.tcp_recv_buffer,
        ..Default::default()
    };
    if args.recv_queue > 0 {
        l.recv_queue_capacity = args.recv_queue;
    }
    if args.write_batch > 0 {
        l.write_batch = args.write_batch;
    }
    l
}

/// A delivery deadline of `ms` from now (0: none).
fn ttl(ms: u64) -> Option<Instant> {
    (ms > 0).then(|| Instant::now() + Duration::from_millis(ms))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, Failure> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| Failure(format!("cannot start a thread: {e}")))
}

/// Runs the testnet.
pub(crate) fn run(args: TestnetArgs) -> Result<(), Failure> {
    crate::logging::init("warn");
    if !(2..=MAX_NODES).contains(&args.nodes) {
        return Err(Failure(format!(
            "--nodes: must be 2 to {MAX_NODES}, got {}",
            args.nodes
        )));
    }
    let driver = match args.driver {
        DriverArg::Auto => Driver::Auto,
        DriverArg::IoUring => Driver::IoUring,
        DriverArg::Epoll => Driver::Epoll,
    };
    let mut nodes = Vec::with_capacity(args.nodes);
    for i in 0..args.nodes {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        seed[8] = 0x7e;
        let (window, busy) = (args.native_window, args.native_busy_window);
        let node = Node::builder(NodeKey::from_seed(seed), "ringwire-testnet")
            .connection_config(move |c| {
                if window > 0 {
                    c.native_window = window;
                }
                if let Some(b) = busy {
                    c.native_busy_window = b;
                }
            })
            .moniker(format!("testnet-{i}"))
            .listen(([127, 0, 0, 1], 0).into())
            .driver(driver)
            .shards(args.shards.max(1))
            .offer_native(!args.compat)
            .limits(limits(&args))
            .channel(channel_for(VOTE_CH, args.s9)?)
            .channel(channel_for(PART_CH, args.s9)?)
            .channel(channel_for(REQ_CH, args.s9)?)
            .start()
            .map_err(|e| Failure(format!("node {i}: {e}")))?;
        nodes.push(node);
    }
    let driver_name = nodes[0].driver().to_string();
    // Full mesh: each node dials the ones started before it.
    for i in 0..nodes.len() {
        for j in 0..i {
            let addr = nodes[j]
                .listen_addr()
                .ok_or_else(|| Failure("a node has no listen address".into()))?;
            nodes[i]
                .dial_blocking(addr, Some(nodes[j].node_id()))
                .map_err(|e| Failure(format!("node {i} dialing node {j}: {e}")))?;
        }
    }
    let want = nodes.len() - 1;
    let meshed = Instant::now() + Duration::from_secs(10);
    while nodes.iter().any(|n| n.peers().len() < want) {
        if Instant::now() > meshed {
            return Err(Failure("the nodes did not all connect within 10s".into()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let stats: Vec<Arc<Stats>> = nodes.iter().map(|_| Arc::default()).collect();
    let fill: Arc<[u8]> = filler(PART_SIZE).into();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for (node, st) in nodes.iter().zip(&stats) {
        let votes = node.open_channel(channel_for(VOTE_CH, args.s9)?)?;
        let parts = node.open_channel(channel_for(PART_CH, args.s9)?)?;
        let reqs = node.open_channel(channel_for(REQ_CH, args.s9)?)?;
        let (vote_tx, vote_rx) = votes.split();
        let (part_tx, part_rx) = parts.split();
        let req_tx = reqs.sender();
        for (rx, kind) in [(vote_rx, 0u8), (part_rx, 1u8)] {
            let (st, stop) = (st.clone(), stop.clone());
            let mut rx = rx;
            receivers.push(spawn("testnet-recv", move || {
                // Batches, as an application that keeps up would take them: one wake-up, one
                // lock of the histograms and one add per counter per batch, not per message.
                let mut batch = Vec::with_capacity(RECV_BATCH);
                let mut ages = Vec::with_capacity(RECV_BATCH);
                while !stop.load(Ordering::Acquire) {
                    batch.clear();
                    let deadline = Instant::now() + Duration::from_millis(100);
                    let n = rx.recv_many_blocking(&mut batch, RECV_BATCH, deadline);
                    if n == 0 {
                        if Instant::now() < deadline {
                            // The node stopped.
                            break;
                        }
                        continue;
                    }
                    ages.clear();
                    ages.extend(batch.iter().filter_map(|m| age_us(epoch, &m.payload)));
                    let bytes: usize = batch.iter().map(|m| m.payload.len()).sum();
                    st.messages.fetch_add(n as u64, Ordering::Relaxed);
                    st.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                    let c = if kind == 0 { &st.votes } else { &st.parts };
                    c.fetch_add(n as u64, Ordering::Relaxed);
                    st.record_ages(usize::from(kind), &ages);
                }
            })?);
        }
        {
            let (st, stop, fill) = (st.clone(), stop.clone(), fill.clone());
            receivers.push(spawn("testnet-serve", move || {
                serve(reqs, &st, &stop, epoch, &fill)
            })?);
        }
        {
            let (st, stop, fill) = (st.clone(), stop.clone(), fill.clone());
            let (vote_ms, part_ms) = if args.s9 {
                (args.vote_ttl_ms, args.part_ttl_ms)
            } else {
                (0, 0)
            };
            senders.push(spawn("testnet-send", move || {
                let mut tick = 0u64;
                let mut next = Instant::now();
                while !stop.load(Ordering::Acquire) {
                    let deadline = Instant::now() + Duration::from_millis(100);
                    let votes = u64::from(VOTES_PER_SEC) / 100;
                    for _ in 0..votes {
                        let env = Envelope::broadcast(stamp(epoch, VOTE_SIZE, &fill))
                            .deliver_by(ttl(vote_ms));
                        if vote_tx.send_blocking(env, deadline).is_err() {
                            st.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if tick.is_multiple_of(u64::from(100 / PARTS_PER_SEC)) {
                        let env = Envelope::broadcast(stamp(epoch, PART_SIZE, &fill))
                            .deliver_by(ttl(part_ms));
                        if part_tx.send_blocking(env, deadline).is_err() {
                            st.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tick += 1;
                    pace(&mut next, TICK);
                }
            })?);
        }
        {
            let (st, stop, node) = (st.clone(), stop.clone(), node.clone());
            senders.push(spawn("testnet-request", move || {
                let mut turn = 0usize;
                let period = Duration::from_secs(1) / REQUESTS_PER_SEC;
                let mut next = Instant::now();
                while !stop.load(Ordering::Acquire) {
                    let peers = node.peers();
                    if !peers.is_empty() {
                        let peer = peers[turn % peers.len()].info.node_id;
                        turn = turn.wrapping_add(1);
                        let start = Instant::now();
                        let payload = stamp(epoch, REQUEST_SIZE, &[]);
                        st.requests_issued.fetch_add(1, Ordering::Relaxed);
                        match req_tx.request_blocking(peer, payload, start + REQUEST_DEADLINE) {
                            Ok(resp) => {
                                if start.elapsed() <= REQUEST_DEADLINE {
                                    st.requests_answered.fetch_add(1, Ordering::Relaxed);
                                }
                                st.responses.fetch_add(1, Ordering::Relaxed);
                                st.messages.fetch_add(1, Ordering::Relaxed);
                                st.bytes.fetch_add(resp.len() as u64, Ordering::Relaxed);
                                st.record_rtt(
                                    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
                                );
                            }
                            Err(_) => {
                                st.send_errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    pace(&mut next, period);
                }
            })?);
        }
    }

    let live_to_stderr = args.json;
    let terminal = if live_to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let mut out: Box<dyn Write> = if live_to_stderr {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let _ = writeln!(
        out,
        "testnet: {} nodes, driver {driver_name}, {} s of votes ({VOTE_SIZE} B, {VOTES_PER_SEC}/s), block parts ({} KiB, {PARTS_PER_SEC}/s) and requests ({REQUESTS_PER_SEC}/s) per node",
        nodes.len(),
        args.duration.as_secs_f64(),
        PART_SIZE / 1024
    );
    let _ = writeln!(
        out,
        "{:>6} {:>9} {:>11} {:>9} {:>10} {:>10} {:>8}",
        "time", "peers", "msgs/s", "MB/s", "p50 µs", "p99 µs", "driver"
    );
    let end = epoch + args.duration;
    let (mut last_msgs, mut last_bytes, mut last_at) = (0u64, 0u64, Instant::now());
    while Instant::now() < end {
        std::thread::sleep(
            Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())),
        );
        let now = Instant::now();
        let msgs: u64 = stats
            .iter()
            .map(|s| s.messages.load(Ordering::Relaxed))
            .sum();
        let bytes: u64 = stats.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
        let mut window = histogram();
        for s in &stats {
            let mut g = s.latency.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((w, _)) = g.as_mut() {
                let _ = window.add(&*w);
                w.reset();
            }
        }
        let secs = now.duration_since(last_at).as_secs_f64().max(1e-3);
        let peers: usize = nodes.iter().map(|n| n.peers().len()).sum();
        let line = format!(
            "{:>5.1}s {:>9} {:>11.0} {:>9.2} {:>10} {:>10} {:>8}",
            now.duration_since(epoch).as_secs_f64(),
            format!("{peers}/{}", nodes.len() * want),
            (msgs - last_msgs) as f64 / secs,
            (bytes - last_bytes) as f64 / secs / 1e6,
            window.value_at_quantile(0.5),
            window.value_at_quantile(0.99),
            driver_name
        );
        if terminal {
            let _ = write!(out, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        (last_msgs, last_bytes, last_at) = (msgs, bytes, now);
    }
    if terminal {
        let _ = writeln!(out);
    }
    let elapsed = epoch.elapsed();
    let per_node_peers: Vec<usize> = nodes.iter().map(|n| n.peers().len()).collect();
    stop.store(true, Ordering::Release);
    for t in senders {
        let _ = t.join();
    }
    for t in receivers {
        let _ = t.join();
    }
    let node_stats: Vec<_> = nodes.iter().map(|n| n.stats()).collect();
    for n in &nodes {
        n.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    }
    let drop_sum =
        |f: fn(&ringwire::router::NodeStats) -> u64| -> u64 { node_stats.iter().map(f).sum() };
    let mut ages = [histogram(), histogram(), histogram()];
    for s in &stats {
        if let Some(h) = s.ages.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            for (a, b) in ages.iter_mut().zip(h) {
                let _ = a.add(b);
            }
        }
    }
    let age = |h: &Histogram<u64>| {
        json!({
            "p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0,
            "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
            "delivered": h.len(),
        })
    };

    let mut total = histogram();
    let mut rtt = histogram();
    for s in &stats {
        if let Some((_, all)) = s.latency.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = total.add(all);
        }
        if let Some(h) = s.rtt.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = rtt.add(h);
        }
    }
    let sum = |f: fn(&Stats) -> &AtomicU64| -> u64 {
        stats.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
    };
    let messages = sum(|s| &s.messages);
    let bytes = sum(|s| &s.bytes);
    let secs = elapsed.as_secs_f64().max(1e-3);
    let summary = json!({
        "nodes": nodes.len(),
        "driver": driver_name,
        "duration_s": secs,
        "messages": messages,
        "bytes": bytes,
        "messages_per_s": messages as f64 / secs,
        "mb_per_s": bytes as f64 / secs / 1e6,
        "latency_us": {
            "p50": total.value_at_quantile(0.5),
            "p99": total.value_at_quantile(0.99),
            "max": total.max(),
            "samples": total.len(),
        },
        "request_rtt_us": {
            "p50": rtt.value_at_quantile(0.5),
            "p99": rtt.value_at_quantile(0.99),
            "samples": rtt.len(),
        },
        "by_kind": {
            "vote": sum(|s| &s.votes),
            "block_part": sum(|s| &s.parts),
            "request": sum(|s| &s.requests),
            "response": sum(|s| &s.responses),
        },
        "send_errors": sum(|s| &s.send_errors),
        "s9": args.s9,
        "compat": args.compat,
        "tcp_recv_buffer": args.tcp_recv_buffer,
        "recv_queue": args.recv_queue,
        "write_batch": args.write_batch,
        "native_window": args.native_window,
        "native_busy_window": args.native_busy_window,
        "vote_ttl_ms": if args.s9 { args.vote_ttl_ms } else { 0 },
        "part_ttl_ms": if args.s9 { args.part_ttl_ms } else { 0 },
        "age": {
            "vote": age(&ages[0]),
            "block_part": age(&ages[1]),
            "request": age(&ages[2]),
        },
        "requests_issued": sum(|s| &s.requests_issued),
        "requests_answered_in_deadline": sum(|s| &s.requests_answered),
        "drops": {
            "expired_before_send": drop_sum(|s| s.expired_before_send),
            "expired_before_delivery": drop_sum(|s| s.expired_before_delivery),
            "fanout_lagging": drop_sum(|s| s.fanout_dropped),
            "refused_by_connection": drop_sum(|s| s.queued_dropped),
        },
        "per_node": nodes.iter().zip(&per_node_peers).zip(&stats).map(|((n, p), s)| json!({
            "id": n.node_id().to_string(),
            "peers": p,
            "received_messages": s.messages.load(Ordering::Relaxed),
            "received_bytes": s.bytes.load(Ordering::Relaxed),
        })).collect::<Vec<_>>(),
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "summary: {messages} messages, {:.1} MB in {secs:.1} s ({:.0} msgs/s, {:.2} MB/s); one-way latency p50 {} µs, p99 {} µs; request round trip p50 {} µs, p99 {} µs; driver {driver_name}; peers per node {:?}",
            bytes as f64 / 1e6,
            messages as f64 / secs,
            bytes as f64 / secs / 1e6,
            total.value_at_quantile(0.5),
            total.value_at_quantile(0.99),
            rtt.value_at_quantile(0.5),
            rtt.value_at_quantile(0.99),
            per_node_peers
        );
    }
    Ok(())
}

/// Answers requests on the request channel with a stamped response.
fn serve(mut ch: Channel, st: &Stats, stop: &AtomicBool, epoch: Instant, fill: &[u8]) {
    while !stop.load(Ordering::Acquire) {
        if let Some(mut m) = ch.recv_blocking(Instant::now() + Duration::from_millis(100)) {
            st.messages.fetch_add(1, Ordering::Relaxed);
            st.bytes
                .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
            st.requests.fetch_add(1, Ordering::Relaxed);
            if let Some(us) = age_us(epoch, &m.payload) {
                st.record_ages(2, &[us]);
            }
            if let Some(req) = m.request.take() {
                let _ = ch.respond(req, stamp(epoch, RESPONSE_SIZE, fill));
            }
        }
    }
}

/// Sleeps until `*next + period` and makes that the new `*next`; a loop that fell behind
/// starts again from now instead of catching up in a burst.
fn pace(next: &mut Instant, period: Duration) {
    *next += period;
    let now = Instant::now();
    if *next > now {
        std::thread::sleep(*next - now);
    } else {
        *next = now;
    }
}
