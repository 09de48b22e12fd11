//! Peer bytes into the MConnection layer: the streaming `PacketDecoder`, `parse_packet`, and a
//! whole `MConnection` running the stock channels.
//!
//! Nothing may panic. The decoder never reports more bytes consumed than it was given and
//! consumes everything when it asks for more; every packet it accepts re-encodes to bytes that
//! parse back to the same packet. The connection is driven as a runtime would drive it — input
//! only while it wants input, messages drained, packets transmitted, the clock advanced and
//! timers fired, messages of our own queued — and everything it transmits must decode cleanly,
//! every message it delivers must fit its channel, and once it fails it stays closed.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringwire::proto::mconn::packet::{self, max_packet_size, parse_packet};
use ringwire::proto::mconn::{
    ChannelConfig, MAX_PAYLOAD_SIZE_LIMIT, MConnConfig, MConnError, MConnection, PacketDecoder,
    PacketError, PacketRef, stock_channels,
};
use ringwire_fuzz::chunks;

#[derive(Arbitrary, Debug)]
enum Input {
    /// A stream through a decoder whose limit follows `payload`.
    Decoder {
        payload: u16,
        sizes: Vec<u16>,
        wire: Vec<u8>,
    },
    /// One packet body.
    Parse { body: Vec<u8> },
    /// A connection driven step by step.
    Connection {
        recv_queue_capacity: u8,
        recv_queue_max_bytes: u16,
        steps: Vec<Step>,
    },
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Plaintext from the peer.
    Input(Vec<u8>),
    /// Take every waiting message.
    Drain,
    /// Take one waiting message.
    PollMessage,
    /// Write at least this many bytes of packets, if there are any.
    Transmit(u16),
    /// Let time pass and fire the timers that are due.
    Advance(u16),
    /// Queue a message of ours on a stock channel (by index).
    Send { channel: u8, len: u16 },
}

/// Checks that re-encoding `packet` gives bytes that parse back to it.
fn round_trip(packet: PacketRef<'_>) {
    let owned = packet.to_packet();
    let mut encoded = Vec::new();
    let n = packet::encode(&owned, &mut encoded);
    assert_eq!(n, encoded.len());
    let mut decoder = PacketDecoder::new(max_packet_size(MAX_PAYLOAD_SIZE_LIMIT));
    let (again, used) = decoder.decode(&encoded).expect("our encoding decodes");
    assert_eq!(used, encoded.len());
    assert_eq!(again, Some(packet), "the round trip changed the packet");
}

/// Decodes a stream in the given slicing, checking every consumed count.
fn decode_stream(decoder: &mut PacketDecoder, stream: &[u8], sizes: &[u16]) {
    for chunk in chunks(stream, sizes, 4096) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let max = decoder.max_packet_size();
            match decoder.decode(rest) {
                Ok((packet, used)) => {
                    assert!(used <= rest.len(), "consumed {used} of {}", rest.len());
                    match packet {
                        None => assert_eq!(used, rest.len(), "asked for more, left input"),
                        Some(p) => {
                            if let PacketRef::Msg { data, .. } = p {
                                assert!(data.len() <= max);
                            }
                            round_trip(p);
                        }
                    }
                    assert!(used > 0, "no progress");
                    rest = &rest[used..];
                }
                Err(_) => {
                    assert_eq!(decoder.decode(b"\x02\x0a\x00"), Err(PacketError::Failed));
                    return;
                }
            }
        }
    }
}

/// Runs a connection over the stock channels through `steps`.
fn drive(config: MConnConfig, steps: &[Step]) {
    let channels: Vec<ChannelConfig> = stock_channels();
    let mut now = Instant::now();
    let mut conn = MConnection::new(config, &channels, now).expect("valid config");
    // What we transmit must be valid for a stock peer.
    let mut ours = PacketDecoder::new(max_packet_size(1024));
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Input(data) => {
                let wanted = conn.wants_input();
                let closed = conn.is_closed();
                match conn.handle_plaintext(now, data) {
                    Ok(()) => assert!(wanted && !closed),
                    Err(e) => {
                        assert!(conn.is_closed());
                        if closed {
                            assert_eq!(e, MConnError::Closed);
                        } else if !wanted {
                            assert_eq!(e, MConnError::InputWhileBackpressured);
                        }
                        assert_eq!(conn.handle_plaintext(now, b""), Err(MConnError::Closed));
                    }
                }
            }
            Step::Drain => while poll_message(&mut conn, &channels) {},
            Step::PollMessage => {
                poll_message(&mut conn, &channels);
            }
            Step::Transmit(max) => {
                out.clear();
                let max = usize::from(*max);
                let n = conn.poll_transmit(now, &mut out, max);
                assert_eq!(n, out.len());
                // At most one packet past the limit, plus a pong and a ping.
                assert!(
                    n <= max + max_packet_size(1024) + 2 + 6,
                    "wrote {n} for {max}"
                );
                let mut rest = out.as_slice();
                while !rest.is_empty() {
                    let (packet, used) = ours.decode(rest).expect("our own packets decode");
                    assert!(packet.is_some(), "we wrote a partial packet");
                    rest = &rest[used..];
                }
            }
            Step::Advance(ms) => {
                now += Duration::from_millis(u64::from(*ms) * 64);
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    let closed = conn.is_closed();
                    if conn.handle_timeout(now).is_err() {
                        assert!(conn.is_closed() || closed);
                    }
                }
            }
            Step::Send { channel, len } => {
                let id = channels[usize::from(*channel) % channels.len()].id;
                let can = conn.can_send(id);
                let msg = Bytes::from(vec![*channel; usize::from(*len)]);
                assert_eq!(conn.send(id, msg).is_ok(), can);
            }
        }
    }
}

/// Takes one message, checking it against its channel; returns whether there was one.
fn poll_message(conn: &mut MConnection, channels: &[ChannelConfig]) -> bool {
    let Some((id, msg)) = conn.poll_message() else {
        return false;
    };
    let channel = channels
        .iter()
        .find(|c| c.id == id)
        .expect("a message on a channel we run");
    assert!(msg.len() <= channel.recv_message_capacity);
    true
}

fuzz_target!(|input: Input| match input {
    Input::Decoder {
        payload,
        sizes,
        wire,
    } => {
        let limit = max_packet_size(usize::from(payload % 4096) + 1);
        decode_stream(&mut PacketDecoder::new(limit), &wire, &sizes);
    }
    Input::Parse { body } => {
        if let Ok(p) = parse_packet(&body) {
            round_trip(p);
        }
    }
    Input::Connection {
        recv_queue_capacity,
        recv_queue_max_bytes,
        steps,
    } => {
        let config = MConnConfig {
            recv_queue_capacity: usize::from(recv_queue_capacity % 8) + 1,
            recv_queue_max_bytes: usize::from(recv_queue_max_bytes) + 1,
            ..MConnConfig::default()
        };
        drive(config, &steps);
    }
});
