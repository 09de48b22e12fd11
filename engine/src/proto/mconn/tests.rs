//! MConnection behaviour on simulated time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use super::packet::{PacketDecoder, STOCK_MAX_PACKET_SIZE, encode_msg, parse_packet};
use super::*;

fn cfg(id: u8, priority: u32, send_queue_capacity: usize, cap: usize) -> ChannelConfig {
    ChannelConfig {
        id,
        priority,
        send_queue_capacity,
        recv_message_capacity: cap,
    }
}

fn pair_channels() -> Vec<ChannelConfig> {
    vec![
        cfg(0x20, 6, 4, 1 << 20),
        cfg(0x21, 10, 4, 1 << 20),
        cfg(0x30, 1, 4, 1 << 20),
    ]
}

fn conn(now: Instant) -> MConnection {
    MConnection::new(MConnConfig::default(), &pair_channels(), now).unwrap()
}

/// Writes everything pending.
fn drain(c: &mut MConnection, now: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while c.poll_transmit(now, &mut out, 4096) > 0 {}
    out
}

/// Decodes a plaintext stream into owned packets.
fn packets(stream: &[u8]) -> Vec<Packet> {
    let mut d = PacketDecoder::new(STOCK_MAX_PACKET_SIZE);
    let mut rest = stream;
    let mut v = Vec::new();
    while !rest.is_empty() {
        let (p, n) = d.decode(rest).unwrap();
        if let Some(p) = p {
            v.push(p.to_packet());
        }
        rest = &rest[n..];
    }
    assert!(!d.is_mid_packet());
    v
}

#[test]
fn chunking_sizes() {
    let now = Instant::now();
    for (len, chunks) in [
        (0usize, vec![(0usize, true)]),
        (1, vec![(1, true)]),
        (1024, vec![(1024, true)]),
        (1025, vec![(1024, false), (1, true)]),
        (
            5000,
            vec![
                (1024, false),
                (1024, false),
                (1024, false),
                (1024, false),
                (904, true),
            ],
        ),
    ] {
        let mut a = conn(now);
        let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        a.send(0x21, Bytes::from(msg.clone())).unwrap();
        let stream = drain(&mut a, now);
        let got: Vec<(usize, bool)> = packets(&stream)
            .into_iter()
            .map(|p| match p {
                Packet::Msg {
                    channel_id: 0x21,
                    eof,
                    data,
                } => (data.len(), eof),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(got, chunks, "len {len}");
        let mut b = conn(now);
        b.handle_plaintext(now, &stream).unwrap();
        assert_eq!(b.poll_message(), Some((0x21, Bytes::from(msg))));
        assert_eq!(b.poll_message(), None);
    }
}

#[test]
fn every_packet_fits_the_stock_limit_even_on_high_channel_ids() {
    let now = Instant::now();
    let chans = [cfg(0x7f, 1, 1, 1 << 20), cfg(0xF0, 1, 1, 1 << 20)];
    let mut a = MConnection::new(MConnConfig::default(), &chans, now).unwrap();
    let mut b = MConnection::new(MConnConfig::default(), &chans, now).unwrap();
    a.send(0x7f, Bytes::from(vec![1; 3000])).unwrap();
    a.send(0xF0, Bytes::from(vec![2; 3000])).unwrap();
    let stream = drain(&mut a, now);
    for p in packets(&stream) {
        if let Packet::Msg {
            channel_id, data, ..
        } = p
        {
            let expect = if channel_id == 0x7f { 1024 } else { 1023 };
            assert!(data.len() <= expect);
        }
    }
    b.handle_plaintext(now, &stream).unwrap();
    assert_eq!(b.poll_message().unwrap().1.len(), 3000);
    assert_eq!(b.poll_message().unwrap().1.len(), 3000);
}

#[test]
fn interleaved_reassembly_across_channels() {
    let now = Instant::now();
    let mut stream = Vec::new();
    encode_msg(0x20, false, b"a1", &mut stream);
    encode_msg(0x21, false, b"b1", &mut stream);
    encode_msg(0x20, false, b"a2", &mut stream);
    encode_msg(0x30, true, b"c", &mut stream);
    encode_msg(0x21, true, b"b2", &mut stream);
    encode_msg(0x20, true, b"a3", &mut stream);
    let mut b = conn(now);
    b.handle_plaintext(now, &stream).unwrap();
    assert_eq!(b.poll_message(), Some((0x30, Bytes::from_static(b"c"))));
    assert_eq!(b.poll_message(), Some((0x21, Bytes::from_static(b"b1b2"))));
    assert_eq!(
        b.poll_message(),
        Some((0x20, Bytes::from_static(b"a1a2a3")))
    );
    assert_eq!(b.recv_buffered(), 0);
}

#[test]
fn sender_interleaves_by_priority() {
    let now = Instant::now();
    let mut a = conn(now);
    a.send(0x30, Bytes::from(vec![0; 3000])).unwrap(); // priority 1
    a.send(0x21, Bytes::from(vec![1; 3000])).unwrap(); // priority 10
    let order: Vec<u8> = packets(&drain(&mut a, now))
        .into_iter()
        .map(|p| match p {
            Packet::Msg { channel_id, .. } => channel_id,
            _ => 0,
        })
        .collect();
    // 0x21 is listed before 0x30 and wins the first tie (0/10 vs 0/1); then 0x30 (ratio 0)
    // beats 0x21 (~1033/10); then 0x21 (~103, ~206) beats 0x30 (~1033/1) until it is done.
    assert_eq!(order, [0x21, 0x30, 0x21, 0x21, 0x30, 0x30]);
}

#[test]
fn over_capacity_fails() {
    let now = Instant::now();
    let chans = [cfg(0x20, 1, 1, 2000)];
    let mut a = MConnection::new(MConnConfig::default(), &chans, now).unwrap();
    let mut b = MConnection::new(MConnConfig::default(), &chans, now).unwrap();
    a.send(0x20, Bytes::from(vec![0; 2000])).unwrap();
    b.handle_plaintext(now, &drain(&mut a, now)).unwrap();
    assert_eq!(b.poll_message().unwrap().1.len(), 2000);
    a.send(0x20, Bytes::from(vec![0; 2001])).unwrap();
    assert_eq!(
        b.handle_plaintext(now, &drain(&mut a, now)),
        Err(MConnError::MessageOverCapacity {
            channel: 0x20,
            capacity: 2000,
            received: 2001
        })
    );
    assert!(b.is_closed());
    assert_eq!(b.handle_plaintext(now, &[]), Err(MConnError::Closed));
    assert_eq!(b.send(0x20, Bytes::new()), Err(MConnQueueError::Closed));
}

#[test]
fn unknown_channel_fails() {
    let now = Instant::now();
    let mut b = conn(now);
    let mut stream = Vec::new();
    encode_msg(0x99, true, b"x", &mut stream);
    assert_eq!(
        b.handle_plaintext(now, &stream),
        Err(MConnError::UnknownChannel(0x99))
    );
    let mut a = conn(now);
    assert_eq!(
        a.send(0x99, Bytes::new()),
        Err(MConnQueueError::UnknownChannel(0x99))
    );
}

#[test]
fn oversize_and_kindless_packets_fail() {
    let now = Instant::now();
    let mut b = conn(now);
    let mut stream = Vec::new();
    encode_msg(0x20, true, &[0; 1025], &mut stream);
    assert!(matches!(
        b.handle_plaintext(now, &stream[..3]),
        Err(MConnError::Packet(PacketError::TooLarge {
            declared: 1035,
            max: 1034
        }))
    ));
    let mut b = conn(now);
    assert_eq!(
        b.handle_plaintext(now, &[0x00]),
        Err(MConnError::Packet(PacketError::UnknownPacketType))
    );
}

#[test]
fn send_queue_full() {
    let now = Instant::now();
    let mut a = conn(now);
    for _ in 0..4 {
        a.send(0x20, Bytes::from_static(b"x")).unwrap();
    }
    assert!(!a.can_send(0x20));
    assert_eq!(
        a.send(0x20, Bytes::from_static(b"x")),
        Err(MConnQueueError::Full(0x20))
    );
    assert!(a.can_send(0x21));
    drain(&mut a, now);
    assert!(a.can_send(0x20));
    assert!(!a.has_pending_send());
}

#[test]
fn ping_pong_and_timeout() {
    let t0 = Instant::now();
    let mut a = conn(t0);
    let mut b = conn(t0);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    assert!(!a.has_pending_send());
    a.handle_timeout(t0 + Duration::from_secs(30)).unwrap();
    assert!(!a.has_pending_send());

    // At 60 s a ping goes out and the pong deadline starts.
    let t1 = t0 + Duration::from_secs(60);
    a.handle_timeout(t1).unwrap();
    let ping = drain(&mut a, t1);
    assert_eq!(ping, PING_ENCODED);
    assert_eq!(a.poll_timeout(), Some(t1 + Duration::from_secs(45)));

    // B answers; several pings are answered with one pong.
    b.handle_plaintext(t1, &[ping.clone(), ping].concat())
        .unwrap();
    let pong = drain(&mut b, t1);
    assert_eq!(pong, PONG_ENCODED);
    assert_eq!(a.rtt(), None, "no pong read yet");
    a.handle_plaintext(t1 + Duration::from_millis(7), &pong)
        .unwrap();
    assert_eq!(
        a.rtt(),
        Some(Duration::from_millis(7)),
        "ping written to pong read"
    );
    // A pong nobody asked for measures nothing.
    b.handle_plaintext(t1, &pong).unwrap();
    assert_eq!(b.rtt(), None);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    a.handle_timeout(t1 + Duration::from_secs(50)).unwrap();

    // Next ping at 120 s goes unanswered: at 165 s the connection fails.
    let t2 = t0 + Duration::from_secs(120);
    a.handle_timeout(t2).unwrap();
    assert_eq!(drain(&mut a, t2), PING_ENCODED);
    a.handle_timeout(t2 + Duration::from_millis(44_999))
        .unwrap();
    assert_eq!(
        a.handle_timeout(t2 + Duration::from_secs(45)),
        Err(MConnError::PongTimeout)
    );
    assert!(a.is_closed());
    assert_eq!(a.poll_timeout(), None);
}

/// A peer that stopped reading (a black hole: our socket's send buffer is full, so nothing
/// more is written) must still be dropped: the pong deadline runs from when the ping fell due,
/// not from when it could be written (docs/RELIABILITY.md row 12).
#[test]
fn a_ping_that_cannot_be_written_still_times_out() {
    let t0 = Instant::now();
    let mut a = conn(t0);
    a.send(0x20, Bytes::from(vec![1; 64 * 1024])).unwrap();
    let t1 = t0 + Duration::from_secs(60);
    a.handle_timeout(t1).unwrap();
    assert!(a.has_pending_send());
    assert_eq!(a.poll_timeout(), Some(t1 + Duration::from_secs(45)));
    // Nothing is written meanwhile.
    a.handle_timeout(t1 + Duration::from_millis(44_999))
        .unwrap();
    assert_eq!(
        a.handle_timeout(t1 + Duration::from_secs(45)),
        Err(MConnError::PongTimeout)
    );

    // Written late, the ping keeps the deadline it fell due with.
    let mut b = conn(t0);
    b.handle_timeout(t1).unwrap();
    assert_eq!(drain(&mut b, t1 + Duration::from_secs(40)), PING_ENCODED);
    assert_eq!(b.poll_timeout(), Some(t1 + Duration::from_secs(45)));
}

#[test]
fn pong_comes_before_queued_messages() {
    let now = Instant::now();
    let mut b = conn(now);
    b.send(0x20, Bytes::from(vec![5; 2000])).unwrap();
    b.handle_plaintext(now, &PING_ENCODED).unwrap();
    let out = drain(&mut b, now);
    assert_eq!(&out[..3], &PONG_ENCODED);
}

#[test]
fn backpressure_stops_input_and_never_drops() {
    let now = Instant::now();
    let config = MConnConfig {
        recv_queue_capacity: 2,
        ..MConnConfig::default()
    };
    let mut b = MConnection::new(config, &pair_channels(), now).unwrap();
    let mut one = Vec::new();
    encode_msg(0x20, true, b"m", &mut one);
    b.handle_plaintext(now, &one).unwrap();
    assert!(b.wants_input());
    b.handle_plaintext(now, &one).unwrap();
    assert!(!b.wants_input());
    assert_eq!(b.poll_message(), Some((0x20, Bytes::from_static(b"m"))));
    assert!(b.wants_input());
    b.handle_plaintext(now, &one).unwrap();
    assert!(!b.wants_input());
    // A driver that ignores the signal is stopped, not silently dropped.
    assert_eq!(
        b.handle_plaintext(now, &one),
        Err(MConnError::InputWhileBackpressured)
    );

    // The byte bound works the same way.
    let config = MConnConfig {
        recv_queue_max_bytes: 100,
        ..MConnConfig::default()
    };
    let mut b = MConnection::new(config, &pair_channels(), now).unwrap();
    let mut big = Vec::new();
    encode_msg(0x20, true, &[0; 100], &mut big);
    b.handle_plaintext(now, &big).unwrap();
    assert!(!b.wants_input());
    b.poll_message().unwrap();
    assert!(b.wants_input());
}

#[test]
fn config_is_checked() {
    let now = Instant::now();
    let bad = |c: MConnConfig, ch: &[ChannelConfig]| MConnection::new(c, ch, now).err();
    let d = MConnConfig::default;
    assert_eq!(
        bad(
            MConnConfig {
                pong_timeout: Duration::from_secs(60),
                ..d()
            },
            &[]
        ),
        Some(ConfigError::PongTimeoutNotBelowPingInterval)
    );
    assert_eq!(
        bad(
            MConnConfig {
                max_packet_msg_payload_size: 0,
                ..d()
            },
            &[]
        ),
        Some(ConfigError::PayloadSize(0))
    );
    assert_eq!(
        bad(d(), &[cfg(1, 0, 1, 1)]),
        Some(ConfigError::ZeroPriority(1))
    );
    assert_eq!(
        bad(d(), &[cfg(1, 1, 0, 1)]),
        Some(ConfigError::ZeroSendQueue(1))
    );
    assert_eq!(
        bad(d(), &[cfg(1, 1, 1, 1), cfg(1, 2, 2, 2)]),
        Some(ConfigError::DuplicateChannel(1))
    );
    assert_eq!(
        bad(
            MConnConfig {
                max_control_packets_per_second: 0,
                ..d()
            },
            &[]
        ),
        Some(ConfigError::ZeroControlRate)
    );
    assert!(MConnection::new(d(), &stock_channels(), now).is_ok());
}

#[test]
fn small_payload_size_chunks_accordingly() {
    let now = Instant::now();
    let config = MConnConfig {
        max_packet_msg_payload_size: 10,
        ..MConnConfig::default()
    };
    let mut a = MConnection::new(config.clone(), &pair_channels(), now).unwrap();
    let mut b = MConnection::new(config, &pair_channels(), now).unwrap();
    a.send(0x20, Bytes::from(vec![3; 25])).unwrap();
    let stream = drain(&mut a, now);
    assert_eq!(packets(&stream).len(), 3);
    b.handle_plaintext(now, &stream).unwrap();
    assert_eq!(b.poll_message().unwrap().1.len(), 25);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random messages on random channels reach the other side intact and in per-channel order,
    /// whatever the slicing of the stream and the transmit budget.
    #[test]
    fn two_connections_round_trip(
        msgs in prop::collection::vec((0usize..3, prop::collection::vec(any::<u8>(), 0..3000)), 0..24),
        cuts in prop::collection::vec(1usize..2000, 1..16),
        budget in 1usize..5000,
    ) {
        let now = Instant::now();
        let ids = [0x20u8, 0x21, 0x30];
        let mut a = conn(now);
        let mut b = conn(now);
        let mut pending: VecDeque<(u8, Bytes)> = msgs
            .into_iter()
            .map(|(i, m)| (ids[i], Bytes::from(m)))
            .collect();
        let expected: Vec<(u8, Bytes)> = pending.iter().cloned().collect();
        let mut got: Vec<(u8, Bytes)> = Vec::new();
        let mut cut = cuts.iter().cycle();
        let mut stream = Vec::new();
        let mut turns = 0;
        while !pending.is_empty() || a.has_pending_send() || !stream.is_empty() {
            turns += 1;
            prop_assert!(turns < 10_000);
            while let Some((ch, m)) = pending.front().cloned() {
                match a.send(ch, m) {
                    Ok(()) => { pending.pop_front(); }
                    Err(MConnQueueError::Full(_)) => break,
                    Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
                }
            }
            a.poll_transmit(now, &mut stream, budget);
            let n = (*cut.next().unwrap()).min(stream.len());
            let piece: Vec<u8> = stream.drain(..n).collect();
            prop_assert!(b.wants_input());
            b.handle_plaintext(now, &piece).unwrap();
            while let Some(m) = b.poll_message() {
                got.push(m);
            }
        }
        for id in ids {
            let e: Vec<&Bytes> = expected.iter().filter(|m| m.0 == id).map(|m| &m.1).collect();
            let g: Vec<&Bytes> = got.iter().filter(|m| m.0 == id).map(|m| &m.1).collect();
            prop_assert_eq!(e, g);
        }
    }

    /// No byte sequence makes the decoders panic.
    #[test]
    fn decoders_never_panic(data in prop::collection::vec(any::<u8>(), 0..2100), step in 1usize..64) {
        let _ = parse_packet(&data);
        let _ = crate::proto::nodeinfo::NodeInfo::decode_delimited(&data);
        let mut d = PacketDecoder::new(STOCK_MAX_PACKET_SIZE);
        'outer: for chunk in data.chunks(step) {
            let mut rest = chunk;
            while !rest.is_empty() {
                match d.decode(rest) {
                    Ok((_, n)) => rest = &rest[n..],
                    Err(_) => break 'outer,
                }
            }
        }
        let now = Instant::now();
        let mut c = MConnection::new(MConnConfig::default(), &stock_channels(), now).unwrap();
        for chunk in data.chunks(step) {
            if !c.wants_input() {
                while c.poll_message().is_some() {}
            }
            if c.handle_plaintext(now, chunk).is_err() {
                break;
            }
        }
    }

    /// Packets that start like real ones (valid prefix, mutated body) never panic either.
    #[test]
    fn mutated_packets_never_panic(
        ch in any::<u8>(),
        eof in any::<bool>(),
        data in prop::collection::vec(any::<u8>(), 0..64),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut buf = Vec::new();
        encode_msg(ch, eof, &data, &mut buf);
        for (pos, val) in flips {
            let i = pos % buf.len();
            buf[i] = val;
        }
        let _ = parse_packet(buf.get(1..).unwrap_or(&[]));
        let mut d = PacketDecoder::new(STOCK_MAX_PACKET_SIZE);
        let _ = d.decode(&buf);
    }
}

#[test]
fn a_ping_flood_over_the_budget_closes_the_connection() {
    let t0 = Instant::now();
    let config = MConnConfig {
        max_control_packets_per_second: 10,
        ..MConnConfig::default()
    };
    // Ten pings or pongs a second, sustained, are fine.
    let mut b = MConnection::new(config.clone(), &pair_channels(), t0).unwrap();
    for i in 1..=50u64 {
        let now = t0 + Duration::from_millis(100 * i);
        b.handle_plaintext(now, &PING_ENCODED).unwrap();
    }
    // A burst beyond one second's worth, pings and pongs together, is not.
    let mut b = MConnection::new(config, &pair_channels(), t0).unwrap();
    let mut burst: Vec<u8> = PING_ENCODED.repeat(5);
    burst.extend_from_slice(&PONG_ENCODED.repeat(5));
    b.handle_plaintext(t0, &burst).unwrap();
    let err = b.handle_plaintext(t0, &PONG_ENCODED);
    assert_eq!(err, Err(MConnError::ControlFlood { limit: 10 }));
    assert_eq!(
        err.unwrap_err().to_string(),
        "control packet flood: more than 10 ping/pong packets per second"
    );
    assert!(b.is_closed());
    // Message packets are not control packets.
    let config = MConnConfig {
        max_control_packets_per_second: 1,
        ..MConnConfig::default()
    };
    let mut b = MConnection::new(config, &pair_channels(), t0).unwrap();
    let mut msgs = Vec::new();
    for _ in 0..50 {
        encode_msg(0x20, true, b"m", &mut msgs);
    }
    b.handle_plaintext(t0, &msgs).unwrap();
}

#[test]
fn partial_messages_are_bounded_per_peer_and_node_wide() {
    use crate::proto::budget::{PartialBudget, PartialBudgetError};
    let now = Instant::now();
    let budget = PartialBudget::new(3000, 4000);
    let pool = budget.pool.clone().unwrap();
    let config = MConnConfig {
        partial_budget: budget,
        ..MConnConfig::default()
    };
    let chunks = |channel: u8, n: usize, eof: bool| {
        let mut out = Vec::new();
        for i in 0..n {
            encode_msg(channel, eof && i + 1 == n, &[7; 1000], &mut out);
        }
        out
    };
    let mut a = MConnection::new(config.clone(), &pair_channels(), now).unwrap();
    let mut b = MConnection::new(config.clone(), &pair_channels(), now).unwrap();
    // Two channels of one peer: 3000 bytes are held, the next chunk is over its budget.
    a.handle_plaintext(now, &chunks(0x20, 2, false)).unwrap();
    a.handle_plaintext(now, &chunks(0x21, 1, false)).unwrap();
    assert_eq!((a.recv_buffered(), pool.used()), (3000, 3000));
    let err = a.handle_plaintext(now, &chunks(0x30, 1, false));
    assert_eq!(
        err,
        Err(MConnError::PartialBudget(PartialBudgetError::Peer {
            wanted: 4000,
            limit: 3000
        }))
    );
    // Another peer gets what the node has left: 1000 bytes.
    b.handle_plaintext(now, &chunks(0x20, 1, false)).unwrap();
    assert_eq!(
        b.handle_plaintext(now, &chunks(0x21, 1, false)),
        Err(MConnError::PartialBudget(PartialBudgetError::Node {
            limit: 4000
        }))
    );
    // Closed connections return their bytes once dropped; completed messages at once.
    drop(a);
    drop(b);
    assert_eq!(pool.used(), 0);
    let mut c = MConnection::new(config, &pair_channels(), now).unwrap();
    c.handle_plaintext(now, &chunks(0x20, 3, true)).unwrap();
    assert_eq!(c.poll_message().unwrap().1.len(), 3000);
    assert_eq!(pool.used(), 0);
}
