//! Whole connections on the deterministic in-memory network: handshake → NodeInfo → compat or
//! native, messages on every stock channel, priority, keepalive, request/response and the
//! failure paths. Time is simulated, so keepalive timeouts of tens of seconds take microseconds.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::proto::conn::{
    ChannelDescriptor, Compression, ConnError, Connection, ConnectionConfig, Event, Mode,
    QueueError,
};
use ringwire::proto::mconn::MConnError;
use ringwire::proto::native::{MessageKind, MuxError};
use ringwire::proto::nodeinfo::{
    NodeInfo, NodeInfoError, NodeInfoOther, ProtocolVersion, RINGWIRE_CAPABILITY_CHANNEL,
};
use ringwire::proto::secret::NodeKey;
use ringwire::proto::sim::{LinkConfig, LinkId, Sim};

const A: usize = 0;
const B: usize = 1;

fn node_info(network: &str) -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        node_id: String::new(), // filled in by Connection from the key
        listen_addr: "tcp://127.0.0.1:26656".into(),
        network: network.into(),
        version: "0.1.0".into(),
        channels: Vec::new(), // filled in by Connection from the channel list
        moniker: "ringwire".into(),
        other: NodeInfoOther {
            tx_index: "on".into(),
            rpc_address: String::new(),
        },
    }
}

fn config(seed: u8, native: bool) -> ConnectionConfig {
    let mut c = ConnectionConfig::new(NodeKey::from_seed([seed; 32]), node_info("test-chain"));
    c.offer_native = native;
    c
}

struct Pair {
    sim: Sim<Connection>,
    ab: LinkId,
    ba: LinkId,
}

fn pair_with(a: ConnectionConfig, b: ConnectionConfig, link: LinkConfig) -> Pair {
    let now = Instant::now();
    let mut sim = Sim::new(now);
    sim.add(Connection::new(a, [0xA1; 32], now).expect("config a"));
    sim.add(Connection::new(b, [0xB2; 32], now).expect("config b"));
    let (ab, ba) = sim.connect(A, B, link);
    Pair { sim, ab, ba }
}

fn pair(native_a: bool, native_b: bool) -> Pair {
    pair_with(
        config(1, native_a),
        config(2, native_b),
        LinkConfig::default(),
    )
}

/// Drives until both sides report `Connected`; returns the modes they report.
fn connect(p: &mut Pair) -> (Mode, Mode) {
    let mut modes = [None, None];
    let deadline = p.sim.now() + Duration::from_secs(5);
    let ok = p.sim.run_until(deadline, |sim| {
        for (i, m) in modes.iter_mut().enumerate() {
            while m.is_none() {
                match sim.endpoint_mut(i).poll_event() {
                    Some(Event::Connected(peer)) => *m = Some(peer.mode),
                    Some(Event::Closed(e)) => panic!("endpoint {i} closed while connecting: {e}"),
                    Some(other) => panic!("unexpected event before connect: {other:?}"),
                    None => break,
                }
            }
        }
        modes.iter().all(Option::is_some)
    });
    assert!(ok, "connection did not come up");
    (modes[0].unwrap(), modes[1].unwrap())
}

/// Deterministic content for a message of `len` bytes.
fn payload(len: usize, tag: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ tag)
            .collect::<Vec<u8>>(),
    )
}

/// Sends every `(channel, payload)` from `from` to `to`, respecting backpressure, and checks
/// each arrives intact and in per-channel order.
fn exchange(p: &mut Pair, from: usize, to: usize, messages: &[(u8, Bytes)]) {
    let mut pending = messages.iter().peekable();
    let mut received: Vec<(u8, Bytes)> = Vec::new();
    let deadline = p.sim.now() + Duration::from_secs(600);
    while received.len() < messages.len() {
        while let Some((ch, msg)) = pending.peek() {
            match p.sim.endpoint_mut(from).send(*ch, msg.clone()) {
                Ok(()) => {
                    pending.next();
                }
                Err(QueueError::Full(_)) => break,
                Err(QueueError::Native(ringwire::proto::native::MuxQueueError::Full)) => break,
                Err(QueueError::Compat(ringwire::proto::mconn::MConnQueueError::Full(_))) => break,
                Err(e) => panic!("send on {ch:#04x} failed: {e}"),
            }
        }
        p.sim.step();
        while let Some(ev) = p.sim.endpoint_mut(to).poll_event() {
            match ev {
                Event::Message(m) => {
                    assert_eq!(m.kind, MessageKind::Plain);
                    received.push((m.channel, m.payload));
                }
                other => panic!("unexpected event: {other:?}"),
            }
        }
        assert!(
            !p.sim.endpoint(from).is_closed(),
            "sender closed: {:?}",
            p.sim.endpoint(from).close_reason()
        );
        if let Some(next) = p.sim.next_event() {
            assert!(next <= deadline, "exchange stalled");
            if next > p.sim.now() {
                p.sim.advance_to(next);
            }
        }
    }
    for ch in messages.iter().map(|(c, _)| *c) {
        let sent: Vec<&Bytes> = messages
            .iter()
            .filter(|(c, _)| *c == ch)
            .map(|(_, m)| m)
            .collect();
        let got: Vec<&Bytes> = received
            .iter()
            .filter(|(c, _)| *c == ch)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(sent.len(), got.len(), "channel {ch:#04x}: count");
        for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
            assert!(
                s == g,
                "channel {ch:#04x}: message {i} ({} bytes) differs",
                s.len()
            );
        }
    }
}

/// Messages of 1 byte, one chunk, one chunk + 1, and exactly the channel's cap, on every stock
/// channel.
fn ten_channel_messages() -> Vec<(u8, Bytes)> {
    let mut out = Vec::new();
    for c in ChannelDescriptor::stock() {
        for (k, len) in [1, 1024, 1025, c.recv_message_capacity]
            .into_iter()
            .enumerate()
        {
            out.push((c.id, payload(len, c.id ^ k as u8)));
        }
    }
    out
}

#[test]
fn compat_pair_carries_every_stock_channel_up_to_its_cap() {
    let mut p = pair(false, false);
    assert_eq!(connect(&mut p), (Mode::Compat, Mode::Compat));
    let msgs = ten_channel_messages();
    exchange(&mut p, A, B, &msgs);
    exchange(&mut p, B, A, &msgs);
}

#[test]
fn native_pair_carries_every_stock_channel_up_to_its_cap() {
    let mut p = pair(true, true);
    assert_eq!(connect(&mut p), (Mode::Native, Mode::Native));
    let msgs = ten_channel_messages();
    exchange(&mut p, A, B, &msgs);
    exchange(&mut p, B, A, &msgs);
}

/// Small native messages that travel in one record reach the application as slices of that
/// record, not as copies: each message's bytes start a fixed few header bytes after the end of
/// the previous one's. (Separate allocations of 203 bytes would lie at least 224 bytes apart.)
#[test]
fn native_messages_of_one_record_are_slices_of_it() {
    const LEN: usize = 203;
    const N: usize = 40;
    let mut p = pair(true, true);
    assert_eq!(connect(&mut p), (Mode::Native, Mode::Native));
    let ch = ChannelDescriptor::stock()[0].id;
    for i in 0..N {
        p.sim
            .endpoint_mut(A)
            .send(ch, payload(LEN, i as u8))
            .unwrap();
    }
    let mut got = Vec::new();
    let deadline = p.sim.now() + Duration::from_secs(5);
    let ok = p.sim.run_until(deadline, |sim| {
        while let Some(ev) = sim.endpoint_mut(B).poll_event() {
            if let Event::Message(m) = ev {
                got.push(m.payload);
            }
        }
        got.len() == N
    });
    assert!(ok, "{} of {N} messages arrived", got.len());
    for (i, m) in got.iter().enumerate() {
        assert_eq!(*m, payload(LEN, i as u8), "message {i}");
    }
    let strides: Vec<usize> = got
        .windows(2)
        .map(|w| (w[1].as_ptr() as usize).wrapping_sub(w[0].as_ptr() as usize))
        .collect();
    let in_one_record = strides
        .iter()
        .filter(|&&d| d > LEN && d <= LEN + 16)
        .count();
    assert!(
        in_one_record >= N / 2,
        "messages are not slices of their record: strides {strides:?}"
    );
}

#[test]
fn native_pair_over_a_slow_fragmenting_link() {
    let link = LinkConfig {
        latency: Duration::from_millis(40),
        max_chunk: Some(1500),
        ..LinkConfig::default()
    };
    let mut p = pair_with(config(1, true), config(2, true), link);
    assert_eq!(connect(&mut p), (Mode::Native, Mode::Native));
    let msgs: Vec<(u8, Bytes)> = (0..200).map(|i| (0x22, payload(i * 37, i as u8))).collect();
    exchange(&mut p, A, B, &msgs);
}

#[test]
fn ringwire_facing_a_peer_without_the_capability_stays_compat() {
    // B plays a stock peer: it does not advertise the capability channel, and its stock frame
    // parser would fail on the first native byte.
    let mut p = pair(true, false);
    assert_eq!(connect(&mut p), (Mode::Compat, Mode::Compat));
    assert!(p.sim.endpoint(A).local_node_info().advertises_native());
    assert!(!p.sim.endpoint(B).local_node_info().advertises_native());
    let msgs: Vec<(u8, Bytes)> = ChannelDescriptor::stock()
        .iter()
        .map(|c| (c.id, payload(3000, c.id)))
        .collect();
    exchange(&mut p, A, B, &msgs);
    exchange(&mut p, B, A, &msgs);
    // Nothing can be sent on the capability channel, and request/response needs native.
    let a = p.sim.endpoint_mut(A);
    assert_eq!(
        a.send(RINGWIRE_CAPABILITY_CHANNEL, Bytes::from_static(b"x")),
        Err(QueueError::ChannelNotShared(RINGWIRE_CAPABILITY_CHANNEL))
    );
    let later = Instant::now() + Duration::from_secs(1);
    assert_eq!(
        a.request(0x20, Bytes::from_static(b"q"), later),
        Err(QueueError::Unsupported)
    );
    assert!(!p.sim.endpoint(A).is_closed() && !p.sim.endpoint(B).is_closed());
}

#[test]
fn high_priority_message_overtakes_a_16_mib_low_priority_one() {
    let link = LinkConfig {
        latency: Duration::from_millis(5),
        max_chunk: Some(16 * 1024),
        ..LinkConfig::default()
    };
    let mut a = config(1, true);
    let mut b = config(2, true);
    for c in [&mut a, &mut b] {
        c.native_window = 8 * 1024 * 1024;
    }
    let mut p = pair_with(a, b, link);
    assert_eq!(connect(&mut p), (Mode::Native, Mode::Native));
    let big = payload(16 * 1024 * 1024, 7);
    let vote = payload(256, 9);
    // Blocksync (0x40, priority 5) first, then a vote (0x22, priority 7).
    p.sim.endpoint_mut(A).send(0x40, big.clone()).unwrap();
    p.sim.step(); // the big message is on the wire
    p.sim.endpoint_mut(A).send(0x22, vote.clone()).unwrap();
    let mut order = Vec::new();
    let deadline = p.sim.now() + Duration::from_secs(60);
    let done = p.sim.run_until(deadline, |sim| {
        while let Some(ev) = sim.endpoint_mut(B).poll_event() {
            if let Event::Message(m) = ev {
                order.push((m.channel, m.payload));
            }
        }
        order.len() == 2
    });
    assert!(done, "messages did not arrive");
    assert_eq!(order[0].0, 0x22, "the vote must arrive first");
    assert_eq!(order[0].1, vote);
    assert_eq!(order[1].0, 0x40);
    assert!(order[1].1 == big);
}

fn silent_peer_is_detected(native: bool, expected_max: Duration) {
    let mut p = pair(native, native);
    connect(&mut p);
    let start = p.sim.now();
    // B falls silent: nothing it writes reaches A any more.
    p.sim.set_blackhole(p.ba, true);
    let deadline = start + Duration::from_secs(600);
    let mut reason = None;
    let ok = p.sim.run_until(deadline, |sim| {
        while let Some(ev) = sim.endpoint_mut(A).poll_event() {
            if let Event::Closed(e) = ev {
                reason = Some(e);
            }
        }
        reason.is_some()
    });
    assert!(ok, "silent peer never detected");
    let took = p.sim.now() - start;
    assert!(took <= expected_max, "detected after {took:?}");
    match reason.unwrap() {
        ConnError::MConn(MConnError::PongTimeout) if !native => {}
        ConnError::Mux(MuxError::PongTimeout) if native => {}
        other => panic!("wrong reason: {other:?}"),
    }
    let _ = p.ab;
}

#[test]
fn silent_compat_peer_is_dropped_by_pong_timeout() {
    // Stock timers: ping every 60 s, pong within 45 s.
    silent_peer_is_detected(false, Duration::from_secs(60 + 45 + 1));
}

#[test]
fn silent_native_peer_is_dropped_by_pong_timeout() {
    silent_peer_is_detected(true, Duration::from_secs(5 + 5 + 1));
}

#[test]
fn idle_connections_stay_up_across_many_keepalive_rounds() {
    for native in [false, true] {
        let mut p = pair(native, native);
        connect(&mut p);
        p.sim.advance(Duration::from_secs(600));
        assert!(!p.sim.endpoint(A).is_closed() && !p.sim.endpoint(B).is_closed());
    }
}

#[test]
fn request_response_round_trip_and_timeout() {
    let mut p = pair(true, true);
    connect(&mut p);
    let deadline = p.sim.now() + Duration::from_secs(2);
    let id = p
        .sim
        .endpoint_mut(A)
        .request(0x20, Bytes::from_static(b"ping?"), deadline)
        .unwrap();
    let mut answered = false;
    let until = p.sim.now() + Duration::from_secs(1);
    p.sim.run_until(until, |sim| {
        while let Some(ev) = sim.endpoint_mut(B).poll_event() {
            if let Event::Message(m) = ev {
                assert_eq!(&m.payload[..], b"ping?");
                let MessageKind::Request(rid) = m.kind else {
                    panic!("expected a request, got {:?}", m.kind)
                };
                sim.endpoint_mut(B)
                    .respond(m.channel, rid, Bytes::from_static(b"pong!"))
                    .unwrap();
            }
        }
        while let Some(ev) = sim.endpoint_mut(A).poll_event() {
            if let Event::Message(m) = ev {
                assert_eq!(m.kind, MessageKind::Response(id));
                assert_eq!(&m.payload[..], b"pong!");
                answered = true;
            }
        }
        answered
    });
    assert!(answered);

    // A request B never answers times out at its deadline.
    let deadline = p.sim.now() + Duration::from_millis(500);
    let id2 = p
        .sim
        .endpoint_mut(A)
        .request(0x20, Bytes::from_static(b"ignored"), deadline)
        .unwrap();
    let mut timed_out = false;
    let until = p.sim.now() + Duration::from_secs(2);
    p.sim.run_until(until, |sim| {
        while sim.endpoint_mut(B).poll_event().is_some() {}
        while let Some(ev) = sim.endpoint_mut(A).poll_event() {
            if let Event::RequestTimedOut(t) = ev {
                assert_eq!(t, id2);
                timed_out = true;
            }
        }
        timed_out
    });
    assert!(timed_out);
}

#[test]
fn compression_is_transparent_on_native_channels() {
    let mut a = config(1, true);
    let mut b = config(2, true);
    for c in [&mut a, &mut b] {
        for ch in &mut c.channels {
            if ch.id == 0x30 {
                ch.compression = Compression::Auto;
            }
        }
    }
    let mut p = pair_with(a, b, LinkConfig::default());
    connect(&mut p);
    let tx: Vec<u8> = br#"{"type":"tx","from":"cosmos1abc","to":"cosmos1def","amount":"1000"}"#
        .iter()
        .copied()
        .cycle()
        .take(64 * 1024)
        .collect();
    let msgs = vec![(0x30, Bytes::from(tx)), (0x30, payload(10, 1))];
    exchange(&mut p, A, B, &msgs);
    let stats = p.sim.endpoint(A).native_stats().unwrap();
    assert_eq!(
        stats.compressed_out, 1,
        "the large JSON message is compressed, the tiny one not"
    );
    let delivered = p.sim.link_stats(p.ab).delivered_bytes;
    assert!(
        delivered < 32 * 1024,
        "compressed traffic was {delivered} bytes"
    );
}

fn expect_failure(p: &mut Pair, who: usize) -> ConnError {
    let deadline = p.sim.now() + Duration::from_secs(30);
    let mut reason = None;
    p.sim.run_until(deadline, |sim| {
        while let Some(ev) = sim.endpoint_mut(who).poll_event() {
            if let Event::Closed(e) = ev {
                reason = Some(e);
            }
        }
        reason.is_some()
    });
    reason.expect("connection did not fail")
}

#[test]
fn dialer_rejects_a_peer_with_another_identity() {
    let mut a = config(1, true);
    a.expected_peer = Some(NodeKey::from_seed([9; 32]).node_id());
    let mut p = pair_with(a, config(2, true), LinkConfig::default());
    match expect_failure(&mut p, A) {
        ConnError::WrongPeer { actual, .. } => {
            assert_eq!(actual, NodeKey::from_seed([2; 32]).node_id())
        }
        other => panic!("wrong reason: {other:?}"),
    }
}

#[test]
fn different_networks_are_incompatible() {
    let a = config(1, true);
    let mut b = config(2, true);
    b.node_info.network = "other-chain".into();
    let mut p = pair_with(a, b, LinkConfig::default());
    assert!(matches!(
        expect_failure(&mut p, A),
        ConnError::NodeInfo(NodeInfoError::NetworkMismatch { .. })
    ));
}

#[test]
fn connecting_to_self_is_rejected() {
    let mut p = pair_with(config(1, true), config(1, true), LinkConfig::default());
    assert_eq!(expect_failure(&mut p, A), ConnError::SelfConnection);
}

#[test]
fn a_peer_that_never_answers_the_handshake_times_out() {
    let mut p = pair(true, true);
    p.sim.set_blackhole(p.ba, true);
    assert_eq!(expect_failure(&mut p, A), ConnError::HandshakeTimeout);
}

#[test]
fn a_corrupting_link_closes_the_connection_with_an_error() {
    for native in [false, true] {
        let link = LinkConfig {
            max_chunk: Some(700),
            drop_probability: 0.2,
            seed: 99,
            ..LinkConfig::default()
        };
        let mut p = pair_with(config(1, native), config(2, native), link);
        // Keep traffic flowing until one side notices the damage.
        for i in 0..50 {
            let _ = p.sim.endpoint_mut(A).send(0x40, payload(5000, i));
            p.sim.advance(Duration::from_millis(10));
        }
        p.sim.advance(Duration::from_secs(300));
        assert!(
            p.sim.endpoint(A).is_closed() || p.sim.endpoint(B).is_closed(),
            "a damaged stream must not go unnoticed"
        );
    }
}

#[test]
fn configuration_errors_are_reported_before_any_byte() {
    let mut c = config(1, true);
    c.channels.push(ChannelDescriptor {
        id: RINGWIRE_CAPABILITY_CHANNEL,
        priority: 1,
        send_queue_capacity: 1,
        recv_message_capacity: 10,
        compression: Compression::Off,
    });
    assert!(Connection::new(c, [1; 32], Instant::now()).is_err());
    let mut c = config(1, true);
    c.mconn.pong_timeout = c.mconn.ping_interval;
    assert!(Connection::new(c, [1; 32], Instant::now()).is_err());
}
