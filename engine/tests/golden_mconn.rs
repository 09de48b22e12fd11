//! MConnection against vectors produced by stock CometBFT code (`testdata/mconn_packets.json`
//! and `testdata/mconn_stream.json`, made by `make golden`), and the packet decoder fed every
//! split of a stream.

use std::time::Instant;

use bytes::Bytes;
use ringwire::proto::mconn::packet::{self, STOCK_MAX_PACKET_SIZE};
use ringwire::proto::mconn::{ChannelConfig, MConnConfig, MConnection, Packet, PacketDecoder};
use ringwire_test_support::golden::{assert_stock_bytes, golden_json};
use serde::Deserialize;

#[derive(Deserialize)]
struct PacketCase {
    name: String,
    kind: String,
    channel_id: i64,
    eof: bool,
    data: String,
    encoded: String,
}

#[derive(Deserialize)]
struct PacketsFile {
    cometbft_version: String,
    packets: Vec<PacketCase>,
}

#[derive(Deserialize)]
struct ChannelJson {
    id: u8,
    priority: u32,
    send_queue_capacity: usize,
    recv_message_capacity: usize,
}

impl ChannelJson {
    /// The file lists exactly `ChannelConfig`'s fields.
    fn config(&self) -> ChannelConfig {
        let &ChannelJson {
            id,
            priority,
            send_queue_capacity,
            recv_message_capacity,
        } = self;
        ChannelConfig {
            id,
            priority,
            send_queue_capacity,
            recv_message_capacity,
        }
    }
}

#[derive(Deserialize)]
struct SendJson {
    channel: u8,
    data: String,
}

#[derive(Deserialize)]
struct StreamFile {
    cometbft_version: String,
    channels: Vec<ChannelJson>,
    sends: Vec<SendJson>,
    stream: String,
    max_packet_msg_payload_size: usize,
}

fn case_packet(c: &PacketCase) -> Packet {
    match c.kind.as_str() {
        "ping" => Packet::Ping,
        "pong" => Packet::Pong,
        "msg" => Packet::Msg {
            channel_id: u8::try_from(c.channel_id).expect("channel id is a byte"),
            eof: c.eof,
            data: Bytes::from(hex::decode(&c.data).unwrap()),
        },
        other => panic!("{}: unknown kind {other}", c.name),
    }
}

/// Decodes a whole stream, feeding it `step` bytes at a time.
fn decode_all(stream: &[u8], step: usize) -> Vec<Packet> {
    let mut d = PacketDecoder::new(STOCK_MAX_PACKET_SIZE);
    let mut got = Vec::new();
    for chunk in stream.chunks(step) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let (p, n) = d.decode(rest).unwrap();
            if let Some(p) = p {
                got.push(p.to_packet());
            }
            rest = &rest[n..];
        }
    }
    assert!(!d.is_mid_packet(), "stream ends inside a packet");
    got
}

/// ringwire's own stream of every packet kind decodes to the same packets however it is split.
#[test]
fn decoder_every_split() {
    let mut stream = Vec::new();
    packet::encode(&Packet::Ping, &mut stream);
    packet::encode_msg(0x21, false, &[7; 300], &mut stream);
    packet::encode_msg(0x21, true, &[8; 5], &mut stream);
    packet::encode(&Packet::Pong, &mut stream);
    let expect = vec![
        Packet::Ping,
        Packet::Msg {
            channel_id: 0x21,
            eof: false,
            data: Bytes::from(vec![7; 300]),
        },
        Packet::Msg {
            channel_id: 0x21,
            eof: true,
            data: Bytes::from(vec![8; 5]),
        },
        Packet::Pong,
    ];
    for step in 1..=stream.len() {
        assert_eq!(decode_all(&stream, step), expect, "step {step}");
    }
}

#[test]
fn packets_match_stock_bytes() {
    let file: PacketsFile = golden_json("mconn_packets.json");
    assert!(!file.cometbft_version.is_empty());
    assert!(!file.packets.is_empty());
    for c in &file.packets {
        let p = case_packet(c);
        let mut out = Vec::new();
        let n = packet::encode(&p, &mut out);
        assert_eq!(n, out.len());
        let raw = assert_stock_bytes(&c.name, &out, &c.encoded);
        for step in [1, 2, 7, raw.len()] {
            let got = decode_all(&raw, step);
            assert_eq!(got.len(), 1, "{} (step {step})", c.name);
            assert_eq!(got[0], p, "{} (step {step})", c.name);
        }
    }
}

fn load_stream() -> StreamFile {
    let file: StreamFile = golden_json("mconn_stream.json");
    assert!(!file.cometbft_version.is_empty());
    file
}

fn setup(file: &StreamFile, now: Instant) -> MConnection {
    let channels: Vec<ChannelConfig> = file.channels.iter().map(ChannelJson::config).collect();
    let config = MConnConfig {
        max_packet_msg_payload_size: file.max_packet_msg_payload_size,
        ..MConnConfig::default()
    };
    MConnection::new(config, &channels, now).unwrap()
}

fn sends(file: &StreamFile) -> Vec<(u8, Bytes)> {
    file.sends
        .iter()
        .map(|s| (s.channel, Bytes::from(hex::decode(&s.data).unwrap())))
        .collect()
}

#[test]
fn sender_writes_the_stock_stream() {
    let file = load_stream();
    let now = Instant::now();
    let mut a = setup(&file, now);
    let mut out = Vec::new();
    for (ch, msg) in sends(&file) {
        a.send(ch, msg).unwrap();
        while a.poll_transmit(now, &mut out, 1024) > 0 {}
        assert!(!a.has_pending_send());
    }
    let stock = hex::decode(&file.stream).unwrap();
    if out != stock {
        let ours = decode_all(&out, out.len().max(1));
        let theirs = decode_all(&stock, stock.len().max(1));
        panic!(
            "stream differs from stock: {} vs {} bytes, {} vs {} packets",
            out.len(),
            stock.len(),
            ours.len(),
            theirs.len()
        );
    }
}

#[test]
fn receiver_reassembles_the_stock_stream() {
    let file = load_stream();
    let stream = hex::decode(&file.stream).unwrap();
    let expect = sends(&file);
    // Whole, in SecretConnection-sized frames, and byte by byte.
    for step in [stream.len().max(1), 1024, 1] {
        let now = Instant::now();
        let mut b = setup(&file, now);
        let mut got = Vec::new();
        for chunk in stream.chunks(step) {
            assert!(b.wants_input());
            b.handle_plaintext(now, chunk).unwrap();
            while let Some(m) = b.poll_message() {
                got.push(m);
            }
        }
        assert_eq!(got, expect, "step {step}");
        assert_eq!(b.recv_buffered(), 0);
    }
}
