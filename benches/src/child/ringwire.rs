//! ringwire: a real [`Node`] on each side, driven through the public node API the way an
//! application drives it.
//!
//! - Each process runs one node (`--shards` shard threads, 1 by default: the two processes
//!   share the machine's cores) with the driver under test; `--compat` turns the native
//!   protocol off on both sides, so the connection speaks stock MConnection framing.
//! - `bulk` (S1, S2, S6): one channel; the sender keeps the channel's send queue full with
//!   runs of about 256 KiB (`send_many`, waiting when the queue is full), the receiver takes
//!   what is waiting in one step (`recv_many`, up to 256 messages) and only blocks when its
//!   queue is empty. S6 turns zstd compression on for the channel (`Compression::Auto`).
//! - `latency` (S3): requests and replies on a high-priority channel, the load on a
//!   low-priority channel of the same connection: the engine's channel priorities decide
//!   who goes first.
//! - `fanout` (S4): the sender is the hub: its node listens, it tells the receiver its address
//!   over the receiver's plain TCP rendezvous socket (the one named by `LISTEN`), and the
//!   receiver starts `--peers` small nodes (epoll, one shard each, distinct identities) that
//!   dial the hub. The hub measures its own resident memory before and with the peers
//!   connected, then broadcasts until the receiver hangs up.
//! - `handshake` (S7): the sender dials the receiver's node until the peer is up (TCP,
//!   SecretConnection handshake, NodeInfo exchange, admission), disconnects, and dials again.
//!   A few local identities take turns so that a reconnect never races the receiver's cleanup
//!   of the previous connection from the same identity.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::node::{Limits, Node};
use ringwire::proto::conn::{ChannelDescriptor, Compression};
use ringwire::proto::secret::{NodeId, NodeKey};
use ringwire::router::{Channel, ChannelSender, DialError, Envelope, Origin, SendError};
use ringwire::rt::Driver;

use super::{
    ChildArgs, ChildReport, Load, Payload, Window, Workload, announce, fill_payload,
    measure_handshakes, measure_latency, print_result, rss_kib,
};

/// Network name both sides use.
const NETWORK: &str = "ringwire-bench";
/// Channel of `bulk` and `fanout`.
const CH_DATA: u8 = 0x40;
/// High-priority channel of `latency` (requests and replies).
const CH_HIGH: u8 = 0x41;
/// Low-priority channel of `latency` (the load).
const CH_LOW: u8 = 0x42;
/// Bytes the sender keeps queued per channel (at least 64 messages).
const IN_FLIGHT_BYTES: usize = 4 << 20;
/// Per-peer send queue of the fan-out channel, in messages.
const FANOUT_QUEUE: usize = 64;
/// Local identities the handshake sender rotates through.
const HANDSHAKE_IDENTITIES: u32 = 8;

/// Which I/O driver the node runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineDriver {
    /// Completion-based I/O (fails when io_uring is unusable here).
    IoUring,
    /// Readiness-based I/O.
    Epoll,
}

impl EngineDriver {
    fn engine(self) -> Driver {
        match self {
            Self::IoUring => Driver::IoUring,
            Self::Epoll => Driver::Epoll,
        }
    }
}

/// How the ringwire node of a child is set up (flags after `child ringwire`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct EngineArgs {
    /// The I/O driver.
    #[arg(long, value_enum, default_value = "io-uring")]
    pub driver: EngineDriver,
    /// Speak stock MConnection framing (the native protocol is not offered).
    #[arg(long)]
    pub compat: bool,
    /// Shard threads per node.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn key(n: u32) -> NodeKey {
    let mut seed = [0x5Au8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    NodeKey::from_seed(seed)
}

/// Identity numbers: the receiver's node, the sender's node, fan-out peers, handshake dialers.
const KEY_RECEIVER: u32 = 1;
const KEY_SENDER: u32 = 2;
const KEY_HANDSHAKE: u32 = 100;
const KEY_FANOUT: u32 = 10_000;

/// A channel of `size`-byte messages with enough queue for [`IN_FLIGHT_BYTES`].
fn channel(id: u8, priority: u32, size: usize, compression: Compression) -> ChannelDescriptor {
    ChannelDescriptor {
        id,
        priority,
        send_queue_capacity: (IN_FLIGHT_BYTES / size.max(1)).clamp(64, 16_384),
        recv_message_capacity: size.max(1024),
        compression,
    }
}

/// The channels of a workload.
fn channels(args: &ChildArgs) -> Vec<ChannelDescriptor> {
    match args.scenario {
        Workload::Fanout => vec![ChannelDescriptor {
            // A short queue per peer: the hub holds one per connection.
            send_queue_capacity: FANOUT_QUEUE,
            ..channel(CH_DATA, 1, args.size, Compression::Off)
        }],
        Workload::Bulk => {
            let compression = if args.payload == Payload::Pattern {
                Compression::Off
            } else {
                Compression::Auto
            };
            vec![channel(CH_DATA, 1, args.size, compression)]
        }
        Workload::Latency => vec![
            channel(CH_HIGH, 10, args.size.max(8), Compression::Off),
            channel(CH_LOW, 1, args.bulk_size, Compression::Off),
        ],
        Workload::Handshake => vec![channel(CH_DATA, 1, 1024, Compression::Off)],
        // Never started as a recv/send child (see `super::not_a_pair`).
        Workload::S9 => Vec::new(),
    }
}

/// Starts a node with `key`, the workload's channels and the driver under test; listens on
/// `listen` when given. For tuning runs `RINGWIRE_BENCH_BUSY_WINDOW` (bytes) overrides
/// `ConnectionConfig::native_busy_window`.
fn start(
    engine: &EngineArgs,
    args: &ChildArgs,
    key_n: u32,
    listen: Option<SocketAddr>,
    limits: Limits,
) -> io::Result<(Node, Vec<Channel>)> {
    let descs = channels(args);
    let mut b = Node::builder(key(key_n), NETWORK)
        .moniker("ringwire-bench")
        .driver(engine.driver.engine())
        .shards(engine.shards)
        .offer_native(!engine.compat)
        .limits(limits);
    if let Some(addr) = listen {
        b = b.listen(addr);
    }
    if let Some(v) = env_number("RINGWIRE_BENCH_BUSY_WINDOW") {
        let v = u32::try_from(v).unwrap_or(u32::MAX);
        b = b.connection_config(move |c| c.native_busy_window = v);
    }
    for d in &descs {
        b = b.channel(d.clone());
    }
    let node = b.start().map_err(other)?;
    let chans = descs
        .into_iter()
        .map(|d| node.open_channel(d).map_err(other))
        .collect::<io::Result<Vec<_>>>()?;
    Ok((node, chans))
}

/// Receive queues deep enough for a full send queue of small messages. For tuning runs,
/// `RINGWIRE_BENCH_NOTSENT_LOWAT`, `RINGWIRE_BENCH_WRITE_BATCH` and
/// `RINGWIRE_BENCH_RECV_BUFFER` (bytes) override `Limits::tcp_notsent_lowat`,
/// `Limits::write_batch` and `Limits::tcp_recv_buffer`.
fn limits(args: &ChildArgs) -> Limits {
    let depth = (IN_FLIGHT_BYTES / args.size.max(1)).clamp(1024, 16_384);
    let mut lim = Limits {
        recv_queue_capacity: depth,
        ..Limits::default()
    };
    if let Some(v) = env_number("RINGWIRE_BENCH_NOTSENT_LOWAT") {
        lim.tcp_notsent_lowat = u32::try_from(v).unwrap_or(u32::MAX);
    }
    if let Some(v) = env_number("RINGWIRE_BENCH_WRITE_BATCH") {
        lim.write_batch = v;
    }
    if let Some(v) = env_number("RINGWIRE_BENCH_RECV_BUFFER") {
        lim.tcp_recv_buffer = v;
    }
    lim
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn listen_addr(args: &ChildArgs) -> io::Result<SocketAddr> {
    args.listen
        .parse()
        .map_err(|e| bad(format!("--listen {}: {e}", args.listen)))
}

fn dial_addr(args: &ChildArgs) -> io::Result<SocketAddr> {
    let a = args
        .addr
        .as_deref()
        .ok_or_else(|| bad("send needs --addr"))?;
    a.parse().map_err(|e| bad(format!("--addr {a}: {e}")))
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// Runs the receiving side.
pub fn recv(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    match args.scenario {
        Workload::Bulk => bulk_recv(engine, args),
        Workload::Latency => latency_recv(engine, args),
        Workload::Handshake => handshake_recv(engine, args),
        Workload::Fanout => fanout_recv(args),
        Workload::S9 => Err(super::not_a_pair()),
    }
}

/// Runs the sending side.
pub fn send(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    match args.scenario {
        Workload::Bulk => bulk_send(engine, args),
        Workload::Latency => latency_send(engine, args),
        Workload::Handshake => handshake_send(engine, args),
        Workload::Fanout => fanout_send(engine, args),
        Workload::S9 => Err(super::not_a_pair()),
    }
}

/// Keeps a channel's send queue full: `try_send` while the queue has room (no waiting, no
/// executor), one waiting `send` when it is full.
#[derive(Debug)]
pub struct SendPump {
    tx: ChannelSender,
    /// Messages queued so far.
    pub sent: u64,
}

impl SendPump {
    /// A pump on `tx`.
    pub fn new(tx: ChannelSender) -> Self {
        Self { tx, sent: 0 }
    }

    /// Queues the envelope `make` builds (called once per attempt, so nothing is cloned
    /// when the first attempt succeeds); `Ok(false)` when the peer (or node) is gone.
    pub fn push(&mut self, make: impl Fn() -> Envelope) -> Result<bool, SendError> {
        match self.tx.try_send(make()) {
            Ok(_) => {
                self.sent += 1;
                return Ok(true);
            }
            Err(SendError::Full) => {}
            Err(SendError::PeerGone | SendError::Stopped) => return Ok(false),
            Err(e) => return Err(e),
        }
        loop {
            let deadline = Instant::now() + Duration::from_millis(200);
            match self.tx.send_blocking(make(), deadline) {
                Ok(_) => {
                    self.sent += 1;
                    return Ok(true);
                }
                Err(SendError::Timeout | SendError::Full) => continue,
                Err(SendError::PeerGone | SendError::Stopped) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

/// `count` distinct payloads of `size` bytes. They live as long as the process (a few MiB at
/// most), so cloning one for each message costs no reference count: the sender thread and the
/// shard thread do not bounce a shared counter between cores for every message, just as raw
/// TCP's sender reuses one buffer.
fn payloads(args: &ChildArgs, size: usize, count: usize) -> Vec<Bytes> {
    (0..count)
        .map(|i| {
            let mut b = vec![0u8; size];
            fill_payload(&mut b, args.payload, i as u64);
            Bytes::from_static(Box::leak(b.into_boxed_slice()))
        })
        .collect()
}

fn bulk_recv(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    let (node, mut chans) = start(
        engine,
        args,
        KEY_RECEIVER,
        Some(listen_addr(args)?),
        limits(args),
    )?;
    let addr = node
        .listen_addr()
        .ok_or_else(|| bad("node did not listen"))?;
    announce(&addr.to_string());
    let ch = &mut chans[0];
    let mut window = Window::new(args.warmup(), args.duration());
    let (mut messages, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + args.warmup() + args.duration() + Duration::from_secs(60);
    // What is waiting is taken in one step (`recv_many`), then the clock is read once.
    let mut batch = Vec::with_capacity(RECV_BATCH);
    loop {
        batch.clear();
        if ch.recv_many_blocking(&mut batch, RECV_BATCH, deadline) == 0 {
            return Err(bad("no message before the deadline"));
        }
        messages += batch.len() as u64;
        bytes += batch.iter().map(|m| m.payload.len() as u64).sum::<u64>();
        if let Some(r) = window.observe(Instant::now(), messages, bytes) {
            print_result(&r);
            // Exiting closes the connection; the sender stops when its peer is gone.
            std::process::exit(0);
        }
    }
}

fn bulk_send(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    let (node, chans) = start(engine, args, KEY_SENDER, None, limits(args))?;
    let peer = node
        .dial_blocking(dial_addr(args)?, None)
        .map_err(other)?
        .node_id;
    // Random payloads differ per message (S6); others repeat one buffer.
    let n = if args.payload == Payload::Random {
        64
    } else {
        1
    };
    let msgs = payloads(args, args.size, n);
    // Messages go in runs of about 256 KiB (`send_many`: one hand-off to the shard per run
    // while the queue has room), as an application with many messages for one peer would
    // send them.
    let run = (SEND_RUN_BYTES / args.size.max(1)).clamp(1, RECV_BATCH);
    let tx = chans[0].sender();
    let (mut sent, mut i) = (0u64, 0usize);
    loop {
        let payloads = (0..run).map(|k| msgs[(i + k) % n].clone()).collect();
        let (queued, r) =
            tx.send_many_blocking(peer, payloads, Instant::now() + Duration::from_millis(200));
        sent += queued as u64;
        i += queued;
        match r {
            Ok(()) | Err(SendError::Timeout | SendError::Full) => {}
            Err(SendError::PeerGone | SendError::Stopped) => break,
            Err(e) => return Err(other(e)),
        }
    }
    print_result(&ChildReport {
        total_messages: sent,
        total_bytes: sent * args.size as u64,
        ..ChildReport::default()
    });
    std::process::exit(0);
}

/// The most messages the bulk receiver takes in one step.
const RECV_BATCH: usize = 256;
/// About how many bytes the bulk sender hands over in one `send_many`.
const SEND_RUN_BYTES: usize = 256 * 1024;

fn latency_recv(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    let mut lim = limits(args);
    lim.recv_queue_capacity = 1024;
    let (node, chans) = start(engine, args, KEY_RECEIVER, Some(listen_addr(args)?), lim)?;
    let mut events = node.peer_events();
    let addr = node
        .listen_addr()
        .ok_or_else(|| bad("node did not listen"))?;
    announce(&addr.to_string());
    let mut chans = chans.into_iter();
    let (high, low) = match (chans.next(), chans.next()) {
        (Some(h), Some(l)) => (h, l),
        _ => return Err(bad("latency needs two channels")),
    };
    let load_bytes = Arc::new(AtomicU64::new(0));
    {
        let load_bytes = Arc::clone(&load_bytes);
        let (_, mut rx) = low.split();
        std::thread::spawn(move || {
            while let Some(m) = rx.recv_blocking(far()) {
                load_bytes.fetch_add(m.payload.len() as u64, Ordering::Relaxed);
            }
        });
    }
    let pings = Arc::new(AtomicU64::new(0));
    {
        let pings = Arc::clone(&pings);
        let (tx, mut rx) = high.split();
        std::thread::spawn(move || {
            while let Some(m) = rx.recv_blocking(far()) {
                if let Origin::Peer(id) = m.origin {
                    if tx
                        .send_blocking(Envelope::peer(id, m.payload), far())
                        .is_err()
                    {
                        continue;
                    }
                    pings.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    // The measurement ends when the requester goes away.
    let mut seen = false;
    while let Some(ev) = events.recv_blocking(far()) {
        match ev {
            ringwire::router::PeerEvent::Up { .. } => seen = true,
            ringwire::router::PeerEvent::Down { .. } if seen => break,
            ringwire::router::PeerEvent::Down { .. } => {}
        }
    }
    print_result(&ChildReport {
        total_messages: pings.load(Ordering::Relaxed),
        total_bytes: load_bytes.load(Ordering::Relaxed),
        ..ChildReport::default()
    });
    std::process::exit(0);
}

fn latency_send(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    let mut lim = limits(args);
    lim.recv_queue_capacity = 1024;
    let (node, chans) = start(engine, args, KEY_SENDER, None, lim)?;
    let peer = node
        .dial_blocking(dial_addr(args)?, None)
        .map_err(other)?
        .node_id;
    let mut chans = chans.into_iter();
    let (mut high, low) = match (chans.next(), chans.next()) {
        (Some(h), Some(l)) => (h, l),
        _ => return Err(bad("latency needs two channels")),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let load_sent = Arc::new(AtomicU64::new(0));
    if args.load == Load::Bulk {
        let load = payloads(args, args.bulk_size, 1).remove(0);
        let mut pump = SendPump::new(low.sender());
        let (stop, load_sent) = (Arc::clone(&stop), Arc::clone(&load_sent));
        let size = args.bulk_size as u64;
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match pump.push(|| Envelope::peer(peer, load.clone())) {
                    Ok(true) => load_sent.fetch_add(size, Ordering::Relaxed),
                    _ => break,
                };
            }
        });
    }
    let round_trip = |req: &[u8]| -> io::Result<Duration> {
        let payload = Bytes::copy_from_slice(req);
        let deadline = Instant::now() + Duration::from_secs(10);
        let t0 = Instant::now();
        high.send_blocking(Envelope::peer(peer, payload), deadline)
            .map_err(other)?;
        loop {
            let m = high
                .recv_blocking(deadline)
                .ok_or_else(|| bad("no reply within 10 s"))?;
            if m.payload.len() >= 8 && m.payload[..8] == req[..8] {
                return Ok(t0.elapsed());
            }
        }
    };
    measure_latency(args, &stop, &load_sent, round_trip)?;
    std::process::exit(0);
}

fn handshake_recv(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    let (node, _chans) = start(
        engine,
        args,
        KEY_RECEIVER,
        Some(listen_addr(args)?),
        Limits {
            // The accept-rate limit (500 a second by default) is a defence against connect
            // floods, measured by the adversarial tests; here it would cap the handshakes.
            max_accepts_per_second: 0,
            ..Limits::default()
        },
    )?;
    let addr = node
        .listen_addr()
        .ok_or_else(|| bad("node did not listen"))?;
    announce(&addr.to_string());
    // Runs until the harness ends it once the sender has reported.
    loop {
        std::thread::park();
    }
}

fn handshake_send(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    let addr = dial_addr(args)?;
    let nodes = (0..HANDSHAKE_IDENTITIES)
        .map(|i| start(engine, args, KEY_HANDSHAKE + i, None, Limits::default()))
        .collect::<io::Result<Vec<_>>>()?;
    let mut expected: Option<NodeId> = None;
    let mut turn = 0usize;
    let mut done = 0u64;
    let once = || -> io::Result<()> {
        let mut refused = 0;
        loop {
            let node = &nodes[turn % nodes.len()].0;
            turn += 1;
            match node.dial_blocking(addr, expected) {
                Ok(info) => {
                    expected = Some(info.node_id);
                    node.disconnect(&info.node_id, "benchmark handshake done");
                    done += 1;
                    return Ok(());
                }
                // The receiver still holds this identity's previous connection: next one.
                Err(DialError::Refused(_)) if refused < 100 => refused += 1,
                Err(e) => return Err(other(format!("after {done} handshakes: {e}"))),
            }
        }
    };
    measure_handshakes(args, once)?;
    std::process::exit(0);
}

/// Paces a broadcasting hub the way an application would: broadcasts are best effort per
/// peer (a peer whose queue is full misses the message and the node counts a fan-out drop),
/// so when drops appear the hub waits a little before the next broadcast, and speeds up again
/// while none do. Without it the hub would spend its time queueing messages to be dropped.
#[derive(Debug)]
pub struct FanoutPacer {
    dropped: u64,
    pause: Duration,
    count: u32,
}

impl FanoutPacer {
    const CHECK_EVERY: u32 = 8;
    const MIN: Duration = Duration::from_micros(20);
    const MAX: Duration = Duration::from_millis(2);

    /// A pacer that starts from the node's current drop count.
    pub fn new(dropped: u64) -> Self {
        Self {
            dropped,
            pause: Self::MIN,
            count: 0,
        }
    }

    /// Call after each broadcast; `dropped` reads the node's fan-out drop counter.
    pub fn after_broadcast(&mut self, dropped: impl FnOnce() -> u64) {
        self.count += 1;
        if self.count < Self::CHECK_EVERY {
            return;
        }
        self.count = 0;
        let now = dropped();
        if now > self.dropped {
            std::thread::sleep(self.pause);
            self.pause = (self.pause * 2).min(Self::MAX);
        } else {
            self.pause = (self.pause / 2).max(Self::MIN);
        }
        self.dropped = now;
    }
}

/// Raises the open-file limit to its hard maximum (fan-out holds a socket per peer, and the
/// receiver a node per peer).
pub fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The peers' side of fan-out: `--peers` nodes that dial the hub and count what arrives.
fn fanout_recv(args: &ChildArgs) -> io::Result<()> {
    raise_nofile();
    let l = TcpListener::bind(&args.listen)?;
    announce(&l.local_addr()?.to_string());
    let (rendezvous, _) = l.accept()?;
    let mut line = String::new();
    BufReader::new(rendezvous.try_clone()?).read_line(&mut line)?;
    let hub: SocketAddr = line
        .trim()
        .parse()
        .map_err(|e| bad(format!("hub address {line:?}: {e}")))?;
    // The peers are not what is measured: small epoll nodes, one shard each.
    let peer_engine = EngineArgs {
        driver: EngineDriver::Epoll,
        compat: false,
        shards: 1,
    };
    let lim = Limits {
        read_buffer: 4096,
        recv_queue_capacity: 256,
        ..Limits::default()
    };
    let mut peers = Vec::with_capacity(args.peers);
    for i in 0..args.peers {
        peers.push(start(
            &peer_engine,
            args,
            KEY_FANOUT + i as u32,
            None,
            lim.clone(),
        )?);
    }
    // Dial from a few threads at once: the hub accepts them in any order.
    let dialers = 4;
    std::thread::scope(|s| -> io::Result<()> {
        let handles: Vec<_> = (0..dialers)
            .map(|t| {
                let peers = &peers;
                s.spawn(move || -> io::Result<()> {
                    for (node, _) in peers.iter().skip(t).step_by(dialers) {
                        node.dial_blocking(hub, None).map_err(other)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| bad("dialer panicked"))??;
        }
        Ok(())
    })?;
    (&rendezvous).write_all(b"CONNECTED\n")?;
    let mut rxs: Vec<Channel> = peers
        .iter_mut()
        .filter_map(|(_, chans)| chans.pop())
        .collect();
    let mut window = Window::new(args.warmup(), args.duration());
    let (mut messages, mut bytes) = (0u64, 0u64);
    loop {
        let mut got = 0u64;
        for rx in &mut rxs {
            while let Some(m) = rx.try_recv() {
                got += 1;
                bytes += m.payload.len() as u64;
            }
        }
        messages += got;
        if got == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        if let Some(mut r) = window.observe(Instant::now(), messages, bytes) {
            r.connections = args.peers as u64;
            print_result(&r);
            std::process::exit(0);
        }
    }
}

/// The hub of fan-out: listens, has the receiver's peers dial it, broadcasts.
fn fanout_send(engine: &EngineArgs, args: &ChildArgs) -> io::Result<()> {
    raise_nofile();
    let mut rendezvous = TcpStream::connect(dial_addr(args)?)?;
    let listen = SocketAddr::new(rendezvous.local_addr()?.ip(), 0);
    let mut lim = limits(args);
    if engine.driver == EngineDriver::IoUring {
        // Reads use a shard-wide pool of provided buffers: idle peers hold none.
        lim.shard_read_buffers = 256;
    }
    let (node, chans) = start(engine, args, KEY_SENDER, Some(listen), lim)?;
    let base = rss_kib();
    let addr = node
        .listen_addr()
        .ok_or_else(|| bad("node did not listen"))?;
    writeln!(rendezvous, "{addr}")?;
    let mut line = String::new();
    let mut reader = BufReader::new(rendezvous.try_clone()?);
    reader.read_line(&mut line)?;
    if line.trim() != "CONNECTED" {
        return Err(bad(format!("peers did not connect: {line:?}")));
    }
    let wait_until = Instant::now() + Duration::from_secs(30);
    while node.peers().len() < args.peers {
        if Instant::now() > wait_until {
            return Err(bad(format!(
                "{} of {} peers up",
                node.peers().len(),
                args.peers
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the connections settle (handshake buffers returned) before reading RSS.
    std::thread::sleep(Duration::from_millis(300));
    let connected = rss_kib();
    // The receiver hangs up when its window is over.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let _ = reader.read_to_end(&mut Vec::new());
            stop.store(true, Ordering::Relaxed);
        });
    }
    let payload = payloads(args, args.size, 1).remove(0);
    let tx = chans[0].sender();
    let mut sent = 0u64;
    let mut pacer = FanoutPacer::new(node.stats().fanout_dropped);
    while !stop.load(Ordering::Relaxed) {
        let n = match tx.try_send(Envelope::broadcast(payload.clone())) {
            Ok(n) => n,
            Err(SendError::Full) => {
                let deadline = Instant::now() + Duration::from_millis(100);
                match tx.send_blocking(Envelope::broadcast(payload.clone()), deadline) {
                    Ok(n) => n,
                    Err(SendError::Timeout | SendError::Full) => continue,
                    Err(_) => break,
                }
            }
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        sent += n as u64;
        pacer.after_broadcast(|| node.stats().fanout_dropped);
    }
    let dropped = node.stats().fanout_dropped;
    print_result(&ChildReport {
        total_messages: sent.saturating_sub(dropped),
        connections: args.peers as u64,
        rss_base_kib: base,
        rss_kib: connected,
        ..ChildReport::default()
    });
    std::process::exit(0);
}
