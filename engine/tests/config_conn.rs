//! The keys that land in `Config::connection_config` (keepalive, packet size, receive queues,
//! windows, chunks, requests, write budget, compression), each set in TOML and shown on whole
//! connections in the deterministic in-memory network: side A runs the configuration under
//! test, side B the default one, and each test shows A behaving differently than with the
//! defaults. Time is simulated, so keepalive timeouts cost nothing. Nodes use the same
//! `connection_config` (`NodeBuilder::from_config`); the table in `config_keys.rs` names these
//! tests next to their keys.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::config::Config;
use ringwire::proto::conn::{
    Compression, ConnError, Connection, ConnectionConfig, Event, QueueError,
};
use ringwire::proto::mconn::MConnError;
use ringwire::proto::native::{MessageKind, MuxError};
use ringwire::proto::nodeinfo::{NodeInfo, NodeInfoOther, ProtocolVersion};
use ringwire::proto::secret::NodeKey;
use ringwire::proto::sim::{LinkConfig, LinkId, Sim};

const A: usize = 0;
const B: usize = 1;
/// Stock mempool: compressed in these tests (stock channels do not compress by default).
const COMPRESSED: u8 = 0x30;
/// Stock blocksync: room for large messages.
const BULK: u8 = 0x40;

fn config(text: &str) -> Config {
    Config::from_toml_str(text).expect("valid configuration")
}

/// The connection settings of `config` for node `seed`, with channel 0x30 compressed.
fn conn_config(config: &Config, seed: u8) -> ConnectionConfig {
    let info = NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        node_id: String::new(),
        listen_addr: "tcp://127.0.0.1:26656".into(),
        network: config.node.network.clone(),
        version: "0.1.0".into(),
        channels: Vec::new(),
        moniker: config.node.moniker.clone(),
        other: NodeInfoOther {
            tx_index: "on".into(),
            rpc_address: String::new(),
        },
    };
    let mut c = config.connection_config(NodeKey::from_seed([seed; 32]), info);
    for ch in &mut c.channels {
        if ch.id == COMPRESSED {
            ch.compression = Compression::Auto;
        }
    }
    c
}

struct Pair {
    sim: Sim<Connection>,
    ab: LinkId,
    ba: LinkId,
}

/// A (configured by `a`) and B (by `b`; "" is the default configuration), connected.
fn pair(a: &str, b: &str) -> Pair {
    pair_over(a, b, LinkConfig::default())
}

/// [`pair`] over links configured by `link`.
fn pair_over(a: &str, b: &str, link: LinkConfig) -> Pair {
    let now = Instant::now();
    let mut sim = Sim::new(now);
    sim.add(Connection::new(conn_config(&config(a), 1), [0xA1; 32], now).expect("config a"));
    sim.add(Connection::new(conn_config(&config(b), 2), [0xB2; 32], now).expect("config b"));
    let (ab, ba) = sim.connect(A, B, link);
    let mut p = Pair { sim, ab, ba };
    let mut up = [false, false];
    let ok = p.sim.run_until(now + Duration::from_secs(5), |sim| {
        for (i, u) in up.iter_mut().enumerate() {
            while !*u {
                match sim.endpoint_mut(i).poll_event() {
                    Some(Event::Connected(_)) => *u = true,
                    Some(other) => panic!("endpoint {i} before connect: {other:?}"),
                    None => break,
                }
            }
        }
        up == [true, true]
    });
    assert!(ok, "the connection did not come up");
    p
}

/// Runs until `who` closes (or `limit` of simulated time passes); the reason and when.
fn closed(p: &mut Pair, who: usize, limit: Duration) -> Option<(ConnError, Duration)> {
    let start = p.sim.now();
    let mut reason = None;
    p.sim.run_until(start + limit, |sim| {
        while let Some(ev) = sim.endpoint_mut(who).poll_event() {
            if let Event::Closed(e) = ev {
                reason = Some(e);
            }
        }
        reason.is_some()
    });
    reason.map(|r| (r, p.sim.now() - start))
}

/// Lets the network move for a simulated second without `to` taking any message.
fn settle(p: &mut Pair) {
    let deadline = p.sim.now() + Duration::from_secs(1);
    p.sim.run_until(deadline, |_| false);
}

/// The messages (plain or requests) `who` has waiting, taken without moving the network.
fn waiting(p: &mut Pair, who: usize) -> Vec<(MessageKind, usize)> {
    let mut out = Vec::new();
    while let Some(ev) = p.sim.endpoint_mut(who).poll_event() {
        match ev {
            Event::Message(m) => out.push((m.kind, m.payload.len())),
            other => panic!("unexpected event: {other:?}"),
        }
    }
    out
}

/// Takes messages at `who` until `n` have arrived, moving the network as needed.
fn receive_all(p: &mut Pair, who: usize, mut n: usize) {
    let deadline = p.sim.now() + Duration::from_secs(600);
    let ok = p.sim.run_until(deadline, |sim| {
        while let Some(ev) = sim.endpoint_mut(who).poll_event() {
            match ev {
                Event::Message(_) => n -= 1,
                other => panic!("unexpected event: {other:?}"),
            }
        }
        n == 0
    });
    assert!(ok, "{n} messages never arrived");
}

fn send(p: &mut Pair, from: usize, channel: u8, payload: Bytes) {
    match p.sim.endpoint_mut(from).send(channel, payload) {
        Ok(()) => {}
        Err(e @ QueueError::Closed) => panic!("{e}"),
        Err(e) => panic!("send on {channel:#04x}: {e}"),
    }
}

/// Compressible text: JSON-like records with varying numbers, `len` bytes.
fn json(len: usize) -> Bytes {
    let mut s = String::with_capacity(len + 128);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!(
            r#"{{"type":"tx","from":"cosmos1{:x}","to":"cosmos1{:x}","amount":"{}"}},"#,
            x % 4096,
            (x >> 12) % 4096,
            (x >> 24) % 1_000_000
        ));
    }
    s.truncate(len);
    Bytes::from(s)
}

// ---- keepalive -------------------------------------------------------------------------------

/// How long until A drops B after B goes silent, and why.
fn silence(a: &str) -> (ConnError, Duration) {
    let mut p = pair(a, "");
    // The native keepalive's first ping goes out at once; it is answered before the silence.
    let settle = p.sim.now() + Duration::from_millis(10);
    p.sim.run_until(settle, |_| false);
    p.sim.set_blackhole(p.ba, true);
    closed(&mut p, A, Duration::from_secs(600)).expect("the silent peer is dropped")
}

/// `limits.ping_interval` and `limits.pong_timeout` (stock connections): a silent peer is
/// dropped one ping interval plus the pong timeout after it went quiet (stock: 60s + 45s).
#[test]
fn compat_keepalive_follows_ping_interval_and_pong_timeout() {
    for (ping, pong) in [(4, 1), (4, 3), (10, 2)] {
        let (reason, took) = silence(&format!(
            "[engine]\nnative = false\n[limits]\nping_interval = \"{ping}s\"\npong_timeout = \
             \"{pong}s\"\n"
        ));
        assert!(
            matches!(reason, ConnError::MConn(MConnError::PongTimeout)),
            "{reason:?}"
        );
        let expected = Duration::from_secs(ping + pong);
        assert!(
            took + Duration::from_secs(1) >= expected && took <= expected + Duration::from_secs(1),
            "ping {ping}s, pong {pong}s: dropped after {took:?}"
        );
    }
}

/// `limits.native_ping_interval` and `limits.native_pong_timeout`: the same on native
/// connections (defaults 5s and 5s).
#[test]
fn native_keepalive_follows_native_ping_interval_and_pong_timeout() {
    for (ping, pong) in [(2, 1), (2, 3), (20, 10)] {
        let (reason, took) = silence(&format!(
            "[limits]\nnative_ping_interval = \"{ping}s\"\nnative_pong_timeout = \"{pong}s\"\n"
        ));
        assert!(
            matches!(reason, ConnError::Mux(MuxError::PongTimeout)),
            "{reason:?}"
        );
        let expected = Duration::from_secs(ping + pong);
        assert!(
            took + Duration::from_secs(1) >= expected && took <= expected + Duration::from_secs(1),
            "ping {ping}s, pong {pong}s: dropped after {took:?}"
        );
    }
}

// ---- stock connections: packets and receive queues -------------------------------------------

/// `p2p.max_packet_msg_payload_size`: A cuts its messages into packets of that size, which a
/// stock-sized peer reads, and refuses a peer's larger packets.
#[test]
fn max_packet_msg_payload_size_is_the_largest_packet_sent_and_accepted() {
    let small = "[engine]\nnative = false\n[p2p]\nmax_packet_msg_payload_size = 100\n";
    let mut p = pair(small, "");
    send(&mut p, A, BULK, Bytes::from(vec![7u8; 1000]));
    receive_all(&mut p, B, 1);
    // A 100-byte packet reads fine; B's 1024-byte packets do not.
    send(&mut p, B, BULK, Bytes::from(vec![1u8; 100]));
    receive_all(&mut p, A, 1);
    send(&mut p, B, BULK, Bytes::from(vec![2u8; 1000]));
    let (reason, _) = closed(&mut p, A, Duration::from_secs(5)).expect("A refuses the packet");
    assert!(matches!(reason, ConnError::MConn(_)), "{reason:?}");
    // The default accepts the same packet.
    let mut p = pair("[engine]\nnative = false\n", "");
    send(&mut p, B, BULK, Bytes::from(vec![2u8; 1000]));
    receive_all(&mut p, A, 1);
}

/// How many of B's `count` messages of `len` bytes wait at A when A's application takes none.
fn waiting_at_a(a: &str, count: usize, len: usize) -> usize {
    // Reads of about one SecretConnection frame, as a socket read would hand them over.
    let link = LinkConfig {
        max_chunk: Some(1024),
        ..LinkConfig::default()
    };
    let mut p = pair_over(a, "", link);
    for i in 0..count {
        send(&mut p, B, BULK, Bytes::from(vec![i as u8; len]));
    }
    settle(&mut p);
    let queued = waiting(&mut p, A).len();
    // Nothing is lost: the rest arrives once A takes what waits.
    receive_all(&mut p, A, count - queued);
    queued
}

/// `limits.recv_queue_capacity`: on a stock connection, reading stops while that many received
/// messages wait for the application.
#[test]
fn recv_queue_capacity_bounds_messages_waiting_from_a_stock_peer() {
    let stock = "[engine]\nnative = false\n";
    let bounded = waiting_at_a(
        &format!("{stock}[limits]\nrecv_queue_capacity = 2\n"),
        20,
        2000,
    );
    assert!((2..=3).contains(&bounded), "{bounded} waiting");
    assert_eq!(waiting_at_a(stock, 20, 2000), 20);
}

/// `limits.max_peer_inflight_bytes`: the same bound in bytes.
#[test]
fn max_peer_inflight_bytes_bounds_bytes_waiting_from_a_stock_peer() {
    let stock = "[engine]\nnative = false\n";
    let bounded = waiting_at_a(
        &format!("{stock}[limits]\nrecv_queue_capacity = 1000\nmax_peer_inflight_bytes = 65536\n"),
        20,
        16 * 1024,
    );
    assert!((4..=5).contains(&bounded), "{bounded} waiting");
    assert_eq!(
        waiting_at_a(
            &format!("{stock}[limits]\nrecv_queue_capacity = 1000\n"),
            20,
            16 * 1024
        ),
        20
    );
}

/// `limits.max_message_size` on a connection's own settings: the stock channels' receive caps
/// are lowered to it. A stock peer's larger message closes the connection; a native peer learns
/// the cap from A's HELLO and refuses to send it. (A node does not apply the key yet: see
/// PENDING in `config_keys.rs`.)
#[test]
fn max_message_size_lowers_the_stock_channel_caps_of_a_connection() {
    let capped = "[limits]\nmax_message_size = 2048\n";
    let mut p = pair(&format!("{capped}[engine]\nnative = false\n"), "");
    send(&mut p, B, BULK, Bytes::from(vec![1u8; 2048]));
    receive_all(&mut p, A, 1);
    send(&mut p, B, BULK, Bytes::from(vec![2u8; 4096]));
    let (reason, _) = closed(&mut p, A, Duration::from_secs(5)).expect("A refuses it");
    assert!(matches!(reason, ConnError::MConn(_)), "{reason:?}");
    let mut p = pair(capped, "");
    let refused = p
        .sim
        .endpoint_mut(B)
        .send(BULK, Bytes::from(vec![2u8; 4096]));
    assert!(refused.is_err(), "{refused:?}");
    // The default cap (the stock one, about 100 MiB) takes it.
    let mut p = pair("[engine]\nnative = false\n", "");
    send(&mut p, B, BULK, Bytes::from(vec![2u8; 4096]));
    receive_all(&mut p, A, 1);
}

// ---- native connections ----------------------------------------------------------------------

/// `limits.native_window`: a native peer may send at most one window of data per channel ahead
/// of A's application.
#[test]
fn native_window_bounds_data_ahead_of_the_application() {
    let held = |a: &str| {
        let mut p = pair(a, "");
        for i in 0..64u8 {
            send(&mut p, B, BULK, Bytes::from(vec![i; 1024]));
        }
        settle(&mut p);
        let held = p.sim.endpoint(A).native_stats().unwrap().data_bytes_in;
        // Taking the messages returns the credit: the rest follows.
        let first = waiting(&mut p, A).len();
        receive_all(&mut p, A, 64 - first);
        held
    };
    let small = held("[limits]\nnative_window = 4096\n");
    assert!(small <= 4096, "{small} bytes ahead of the application");
    assert_eq!(held(""), 64 * 1024);
}

/// `limits.native_busy_window`: while a higher-priority channel (votes) carries data, A tops a
/// native peer's bulk credit up only to the busy window, so little bulk is in flight ahead of
/// the next vote; with the key at 0 the peer keeps its full window in flight.
#[test]
fn native_busy_window_bounds_bulk_in_flight_while_votes_flow() {
    const VOTE: u8 = 0x22;
    let in_flight = |a: &str| {
        let link = LinkConfig {
            latency: Duration::from_millis(1),
            ..LinkConfig::default()
        };
        let mut p = pair_over(a, "", link);
        send(&mut p, B, VOTE, Bytes::from_static(b"vote"));
        receive_all(&mut p, A, 1);
        // 8 MiB of block sync data, read by A as it comes; a vote every 100 ms beside it.
        let (parts, part) = (128usize, 64 * 1024);
        for i in 0..parts {
            send(&mut p, B, BULK, Bytes::from(vec![i as u8; part]));
        }
        let mut most = 0;
        let mut got = 0;
        let mut next_vote = p.sim.now();
        let deadline = p.sim.now() + Duration::from_secs(60);
        while got < parts && p.sim.now() < deadline {
            if p.sim.now() >= next_vote {
                send(&mut p, B, VOTE, Bytes::from_static(b"vote"));
                next_vote += Duration::from_millis(100);
            }
            p.sim.advance(Duration::from_micros(200));
            // The initial window was granted before any vote: count from the third MiB on.
            if got >= 32 {
                most = most.max(p.sim.link_stats(p.ba).bytes_in_flight);
            }
            while let Some(ev) = p.sim.endpoint_mut(A).poll_event() {
                match ev {
                    Event::Message(m) if m.channel == BULK => got += 1,
                    Event::Message(_) => {}
                    other => panic!("unexpected event: {other:?}"),
                }
            }
        }
        assert_eq!(got, parts);
        most
    };
    let capped = in_flight("[limits]\nnative_busy_window = 16384\n");
    // 16 KiB per started millisecond of round trip (2 ms and a little here), plus one record.
    assert!(
        capped <= 3 * 16 * 1024 + 65 * 1024,
        "{capped} bytes in flight"
    );
    let off = in_flight("[limits]\nnative_busy_window = 0\n");
    assert!(off >= 512 * 1024, "{off} bytes in flight");
}

/// `limits.native_max_chunk`: A cuts a message into DATA frames of at most that size.
#[test]
fn native_max_chunk_is_the_largest_data_frame_sent() {
    let frames = |a: &str| {
        let mut p = pair(a, "");
        let before = p.sim.endpoint(B).native_stats().unwrap().frames_in;
        send(&mut p, A, BULK, Bytes::from(vec![3u8; 64 * 1024]));
        receive_all(&mut p, B, 1);
        p.sim.endpoint(B).native_stats().unwrap().frames_in - before
    };
    let small = frames("[limits]\nnative_max_chunk = 1024\n");
    assert!(small >= 64, "{small} frames");
    let default = frames("");
    assert!(default <= 8, "{default} frames at the default 16 KiB");
}

/// `limits.max_inflight_requests`: a native peer is told the limit and keeps at most that many
/// requests outstanding at A.
#[test]
fn max_inflight_requests_bounds_requests_outstanding_from_a_peer() {
    let outstanding = |a: &str| {
        let mut p = pair(a, "");
        let deadline = p.sim.now() + Duration::from_secs(60);
        for i in 0..5u8 {
            p.sim
                .endpoint_mut(B)
                .request(BULK, Bytes::from(vec![i; 10]), deadline)
                .unwrap();
        }
        settle(&mut p);
        waiting(&mut p, A)
            .iter()
            .filter(|(k, _)| matches!(k, MessageKind::Request(_)))
            .count()
    };
    assert_eq!(outstanding("[limits]\nmax_inflight_requests = 2\n"), 2);
    assert_eq!(outstanding(""), 5);
}

/// `limits.write_budget`: one transmit call hands the socket about that many bytes, so a large
/// send to one peer leaves the event loop to the others.
#[test]
fn write_budget_bounds_the_bytes_of_one_transmit_call() {
    let one_call = |a: &str| {
        let mut p = pair(a, "");
        send(&mut p, A, BULK, Bytes::from(vec![5u8; 1 << 20]));
        let now = p.sim.now();
        let mut out = Vec::new();
        p.sim.endpoint_mut(A).poll_transmit(now, &mut out);
        out.len()
    };
    // One native record (64 KiB and its framing) may overshoot the budget.
    let small = one_call("[limits]\nwrite_budget = 1024\n");
    assert!(small <= 1024 + 70 * 1024, "{small} bytes");
    let default = one_call("");
    assert!(
        default >= 200 * 1024,
        "{default} bytes at the default 256 KiB"
    );
}

// ---- compression -----------------------------------------------------------------------------

/// A sends `msg` to B on the compressed channel; whether A sent it compressed, and the bytes
/// on the wire.
fn compressed(a: &str, msg: Bytes) -> (bool, u64) {
    let mut p = pair(a, "");
    let before = p.sim.link_stats(p.ab).delivered_bytes;
    send(&mut p, A, COMPRESSED, msg);
    receive_all(&mut p, B, 1);
    (
        p.sim.endpoint(A).native_stats().unwrap().compressed_out == 1,
        p.sim.link_stats(p.ab).delivered_bytes - before,
    )
}

/// `engine.compression`: off, compressible messages travel raw.
#[test]
fn compression_off_sends_messages_raw() {
    let msg = json(64 * 1024);
    let (on, on_bytes) = compressed("", msg.clone());
    assert!(on && on_bytes < 32 * 1024, "{on_bytes}");
    let (off, off_bytes) = compressed("[engine]\ncompression = false\n", msg);
    assert!(!off && off_bytes > 64 * 1024, "{off_bytes}");
}

/// `engine.compression_level`: a higher level sends fewer bytes for the same message.
#[test]
fn compression_level_trades_speed_for_size() {
    let msg = json(256 * 1024);
    let (_, fast) = compressed("[engine]\ncompression_level = 1\n", msg.clone());
    let (_, small) = compressed("[engine]\ncompression_level = 19\n", msg);
    assert!(small < fast, "level 19: {small} bytes, level 1: {fast}");
}

/// `engine.compression_min_size`: shorter messages travel raw.
#[test]
fn compression_min_size_sends_shorter_messages_raw() {
    let msg = json(64 * 1024);
    assert!(compressed("", msg.clone()).0);
    assert!(!compressed("[engine]\ncompression_min_size = 100000\n", msg.clone()).0);
    assert!(compressed("[engine]\ncompression_min_size = 65536\n", msg).0);
}

/// `engine.compression_max_ratio`: a message that compresses only to about half its size is
/// sent raw under a ratio of 0.3, compressed under the default 0.9.
#[test]
fn compression_max_ratio_decides_what_is_worth_compressing() {
    let mut half = vec![0u8; 64 * 1024];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in half.iter_mut().step_by(2) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let msg = Bytes::from(half);
    assert!(compressed("", msg.clone()).0);
    assert!(!compressed("[engine]\ncompression_max_ratio = 0.3\n", msg).0);
}

/// `limits.zstd_window_log_max`: a compressed message whose frame needs a larger window than A
/// allows closes the connection (B compresses with a 64 KiB window: a 128 KiB message needs
/// all of it); with the default (8 MiB) it arrives. A's own frames stay within its limit, so
/// its peer reads them.
#[test]
fn zstd_window_log_max_refuses_frames_needing_a_larger_window() {
    let b = "[limits]\nzstd_window_log_max = 16\n";
    let mut p = pair("", b);
    send(&mut p, B, COMPRESSED, json(128 * 1024));
    receive_all(&mut p, A, 1);
    assert_eq!(p.sim.endpoint(B).native_stats().unwrap().compressed_out, 1);

    let mut p = pair("[limits]\nzstd_window_log_max = 10\n", b);
    send(&mut p, A, COMPRESSED, json(128 * 1024));
    receive_all(&mut p, B, 1);
    assert_eq!(p.sim.endpoint(A).native_stats().unwrap().compressed_out, 1);
    send(&mut p, B, COMPRESSED, json(128 * 1024));
    let (reason, _) = closed(&mut p, A, Duration::from_secs(5)).expect("A refuses the frame");
    assert!(
        matches!(reason, ConnError::Mux(MuxError::Decompress { .. })),
        "{reason:?}"
    );
}
