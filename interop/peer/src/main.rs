//! `ringwire-interop-peer`: one ringwire node, started from flags and driven by a line protocol
//! on stdin/stdout, so that the Go tests in `interop/` can run stock CometBFT code against a real
//! ringwire node in a separate process. With `--home` the node is built from the home's
//! `config.toml` by `NodeBuilder::from_config`, as `ringwire node` builds one.
//!
//! Output lines (stdout, one event each):
//! - `ready <node_id> <listen_addr>` once the node listens;
//! - `peer-up <id> <compat|native> <inbound|outbound>` and `peer-down <id> <reason>`;
//! - `recv <peer> <ch> <len> <sha256>` for every message received (hex channel id);
//! - `dialed <id> <mode>` / `dial-err <target> <error>`; `send-err <peer> <ch> <error>`;
//! - `peers <id>:<mode>:<direction> ...`, `pex-addrs <id@ip:port> ...`, `ok <token>`, `err <text>`.
//!
//! Commands (stdin, one per line):
//! - `dial <id@ip:port>`;
//! - `send <peer> <ch> <len> <seed>`: one message of `len` bytes, [`payload`]`(len, seed)`;
//! - `peers`, `pex-addrs`, `disconnect <peer>`;
//! - `sync <token>`: answers `ok <token>` after every earlier command is done;
//! - `quit` (or end of input): shut down and exit.

mod payload;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use ringwire::config::Config;
use ringwire::node::{Node, NodeBuilder};
use ringwire::pex::PexConfig;
use ringwire::proto::conn::{ChannelDescriptor, Compression, Mode};
use ringwire::proto::secret::{NodeId, NodeKey};
use ringwire::router::{ChannelSender, Direction, Envelope, Origin, PeerEvent};

use payload::payload;

/// Flags.
#[derive(Debug, Parser)]
#[command(name = "ringwire-interop-peer")]
struct Args {
    /// Listen address (port 0 picks one). Ignored with --home, which uses `[p2p] laddr`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// A CometBFT node_key.json.
    #[arg(long)]
    node_key: Option<PathBuf>,
    /// A CometBFT home directory (config/config.toml and config/node_key.json).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Key from a seed: 32 copies of this byte (when neither --node-key nor --home is given).
    #[arg(long, default_value_t = 1)]
    seed: u8,
    /// Network (chain id), also with --home.
    #[arg(long, default_value = "interop-chain")]
    network: String,
    /// A channel as `ID` (hex) or `ID:CAP`: stock priority and queue for stock ids, CAP
    /// overrides the receive capacity. Repeatable.
    #[arg(long = "channel", value_parser = parse_channel)]
    channels: Vec<ChannelDescriptor>,
    /// Speak stock MConnection to every peer (do not offer the native protocol).
    #[arg(long)]
    compat: bool,
    /// Run PEX on channel 0x00 (with --home: with the home's settings, also when its `[p2p]
    /// pex` is off; without, a lax address book for loopback).
    #[arg(long)]
    pex: bool,
    /// Shortest interval between two PEX requests of one peer, in milliseconds (default: the
    /// home's `pex_request_interval`, else stock's 10 s).
    #[arg(long)]
    pex_min_interval_ms: Option<u64>,
    /// Dial these `id@ip:port` targets after start. Repeatable.
    #[arg(long = "dial")]
    dials: Vec<String>,
    /// Keepalive ping interval in milliseconds (compat and native).
    #[arg(long)]
    ping_ms: Option<u64>,
    /// Pong timeout in milliseconds (compat and native).
    #[arg(long)]
    pong_ms: Option<u64>,
}

fn parse_channel(s: &str) -> Result<ChannelDescriptor, String> {
    let (id, cap) = match s.split_once(':') {
        Some((id, cap)) => (id, Some(cap)),
        None => (s, None),
    };
    let id = u8::from_str_radix(id.trim_start_matches("0x"), 16).map_err(|e| e.to_string())?;
    let mut desc = ChannelDescriptor::stock()
        .into_iter()
        .find(|d| d.id == id)
        .unwrap_or(ChannelDescriptor {
            id,
            priority: 1,
            send_queue_capacity: 16,
            recv_message_capacity: 1 << 20,
            compression: Compression::Off,
        });
    if let Some(cap) = cap {
        desc.recv_message_capacity = cap.parse().map_err(|e| format!("{e}"))?;
    }
    Ok(desc)
}

/// Serialised stdout lines.
#[derive(Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn line(&self, text: impl AsRef<str>) {
        let out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut lock = out.lock();
        let _ = writeln!(lock, "{}", text.as_ref());
        let _ = lock.flush();
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Compat => "compat",
        Mode::Native => "native",
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn parse_target(s: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = s.split_once('@').ok_or("want id@ip:port")?;
    let id: NodeId = id.parse().map_err(|e| format!("{e}"))?;
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
    Ok((id, addr))
}

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("ringwire-interop-peer: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let ping = args.ping_ms.map(Duration::from_millis);
    let pong = args.pong_ms.map(Duration::from_millis);
    let mut builder = match &args.home {
        // A home is a node as `ringwire node` makes it: every key of `config.toml` (seeds,
        // seed_mode, private_peer_ids, the address book, the peer manager's limits) through
        // NodeBuilder::from_config. --pex turns PEX on with the home's settings.
        Some(home) => {
            let mut config = Config::from_cometbft_home(home).map_err(|e| e.to_string())?;
            // The tests' chain: stock's homes here have no genesis file to name it.
            config.node.network = args.network.clone();
            config.p2p.pex |= args.pex;
            let key = config.load_node_key().map_err(|e| e.to_string())?;
            let mut b = NodeBuilder::from_config(&config, key).map_err(|e| e.to_string())?;
            if let (Some(pex), Some(ms)) = (config.pex_config(), args.pex_min_interval_ms) {
                b = b.pex(PexConfig {
                    min_request_interval: Duration::from_millis(ms),
                    ..pex
                });
            }
            b
        }
        None => {
            let key = match &args.node_key {
                Some(path) => ringwire::config::NodeKeyFile::load(path)
                    .map_err(|e| e.to_string())?
                    .into_key(),
                None => NodeKey::from_seed([args.seed; 32]),
            };
            let mut b = Node::builder(key, &args.network)
                .listen(args.listen)
                .moniker("ringwire-interop");
            if args.pex {
                b = b.pex(PexConfig {
                    // The tests run on loopback, which a strict address book refuses.
                    addr_book_strict: false,
                    min_request_interval: Duration::from_millis(
                        args.pex_min_interval_ms.unwrap_or(10_000),
                    ),
                    ..PexConfig::default()
                });
            }
            b
        }
    };
    builder = builder.shards(1).connection_config(move |c| {
        if let Some(p) = ping {
            c.mconn.ping_interval = p;
            c.native_ping_interval = p;
        }
        if let Some(p) = pong {
            c.mconn.pong_timeout = p;
            c.native_pong_timeout = p;
        }
    });
    if args.compat {
        builder = builder.offer_native(false);
    }
    for desc in &args.channels {
        builder = builder.channel(desc.clone());
    }
    let node = builder.start().map_err(|e| e.to_string())?;
    let out = Out(Arc::new(Mutex::new(std::io::stdout())));

    let mut events = node.peer_events();
    let out2 = out.clone();
    std::thread::spawn(move || {
        while let Some(ev) = events.recv_blocking(deadline(1_000_000)) {
            match ev {
                PeerEvent::Up {
                    peer, direction, ..
                } => out2.line(format!(
                    "peer-up {} {} {}",
                    peer.node_id,
                    mode_name(peer.mode),
                    dir_name(direction)
                )),
                PeerEvent::Down { node_id, reason } => {
                    out2.line(format!("peer-down {node_id} {reason}"))
                }
            }
        }
    });

    let mut senders: HashMap<u8, ChannelSender> = HashMap::new();
    for desc in &args.channels {
        let (sender, mut receiver) = node
            .open_channel(desc.clone())
            .map_err(|e| e.to_string())?
            .split();
        senders.insert(desc.id, sender);
        let out2 = out.clone();
        std::thread::spawn(move || {
            while let Some(m) = receiver.recv_blocking(deadline(1_000_000)) {
                let from = match m.origin {
                    Origin::Peer(id) => id.to_string(),
                    Origin::Local => "local".to_owned(),
                };
                let digest = ring::digest::digest(&ring::digest::SHA256, &m.payload);
                out2.line(format!(
                    "recv {from} {:02x} {} {}",
                    m.channel,
                    m.payload.len(),
                    hex::encode(digest.as_ref())
                ));
            }
        });
    }

    let listen_addr = node
        .listen_addr()
        .map_or_else(|| "none".to_owned(), |a| a.to_string());
    out.line(format!("ready {} {listen_addr}", node.node_id()));

    for target in &args.dials {
        dial(&node, &out, target);
    }

    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["dial", target] => dial(&node, &out, target),
            ["send", peer, ch, len, seed] => send(&senders, &out, peer, ch, len, seed),
            ["peers"] => {
                let list: Vec<String> = node
                    .peers()
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}:{}",
                            p.info.node_id,
                            mode_name(p.info.mode),
                            dir_name(p.direction)
                        )
                    })
                    .collect();
                out.line(format!("peers {}", list.join(" ")));
            }
            ["pex-addrs"] => {
                let list: Vec<String> = node
                    .pex_addresses()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                out.line(format!("pex-addrs {}", list.join(" ")));
            }
            ["disconnect", peer] => match peer.parse::<NodeId>() {
                Ok(id) => {
                    node.disconnect(&id, "asked by the test");
                }
                Err(e) => out.line(format!("err {e}")),
            },
            ["sync", token] => out.line(format!("ok {token}")),
            ["quit"] => break,
            [] => {}
            _ => out.line(format!("err unknown command: {line}")),
        }
    }
    node.shutdown_blocking(deadline(5));
    Ok(())
}

fn dial(node: &Node, out: &Out, target: &str) {
    match parse_target(target) {
        Ok((id, addr)) => match node.dial_blocking(addr, Some(id)) {
            Ok(info) => out.line(format!("dialed {} {}", info.node_id, mode_name(info.mode))),
            Err(e) => out.line(format!("dial-err {target} {e}")),
        },
        Err(e) => out.line(format!("dial-err {target} {e}")),
    }
}

fn send(
    senders: &HashMap<u8, ChannelSender>,
    out: &Out,
    peer: &str,
    ch: &str,
    len: &str,
    seed: &str,
) {
    let parsed = (
        peer.parse::<NodeId>(),
        u8::from_str_radix(ch.trim_start_matches("0x"), 16),
        len.parse::<usize>(),
        seed.parse::<u32>(),
    );
    let (Ok(id), Ok(ch), Ok(len), Ok(seed)) = parsed else {
        out.line(format!("err bad send: {peer} {ch} {len} {seed}"));
        return;
    };
    let Some(sender) = senders.get(&ch) else {
        out.line(format!("send-err {peer} {ch:02x} channel not open here"));
        return;
    };
    if let Err(e) = sender.send_blocking(Envelope::peer(id, payload(len, seed)), deadline(60)) {
        out.line(format!("send-err {peer} {ch:02x} {e}"));
    }
}
