//! Peer bytes into the native protocol above the record layer.
//!
//! - Frames: arbitrary record plaintexts through `FrameDecoder` (and so `decode_frame`). Nothing
//!   panics; every accepted frame re-encodes to the same bytes (a HELLO to the same fields,
//!   without the extension bytes a receiver ignores) and decodes back to itself.
//! - Mux: an operation sequence against a `Mux` with a few channels (small windows and chunks,
//!   so flow control, chunking and scheduling all run), next to a second, honest `Mux` as its
//!   peer. Operations feed arbitrary record plaintexts to the mux under test, exchange the two
//!   sides' real records, send, request, respond, cancel, poll events, close, reset, and advance
//!   a fuzzer-driven clock. A toy run-length codec lets the COMPRESSED path run too.
//!   Always: nothing panics, each record written fits its budget and decodes frame by frame,
//!   each delivered message fits its channel. While no arbitrary record was fed: neither side
//!   ever rejects the other's records, and each channel delivers exactly the messages the peer
//!   sent on it, in order (a prefix of them, as the connection may end first).

#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringwire::proto::native::frame::{FRAME_HEADER_LEN, Frame, FrameDecoder};
use ringwire::proto::native::record::MAX_RECORD_PLAINTEXT;
use ringwire::proto::native::{
    MIN_RECORD_BUDGET, MessageKind, Mux, MuxEvent, NativeChannelConfig, NativeConfig, PayloadCodec,
    RequestId, ResetCode,
};

#[derive(Arbitrary, Debug)]
enum Input {
    Frames(Vec<u8>),
    Mux { compression: bool, ops: Vec<Op> },
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// An arbitrary record plaintext into the mux under test.
    Record(Vec<u8>),
    /// The mux under test sends a message on a channel (by index).
    Send {
        channel: u8,
        len: u16,
    },
    /// The mux under test sends a request.
    Request {
        channel: u8,
        len: u16,
        deadline_ms: u16,
    },
    /// The mux under test answers the oldest request it received.
    Respond {
        len: u16,
    },
    /// The mux under test cancels one of its requests.
    Cancel(u8),
    /// The peer sends a message or a request on a channel (by index).
    PeerSend {
        channel: u8,
        len: u16,
        request: bool,
    },
    /// The peer answers the oldest request it received.
    PeerRespond {
        len: u16,
    },
    /// The mux under test writes a record with this budget; the peer reads it.
    PollRecord(u16),
    /// The peer writes a record with this budget; the mux under test reads it.
    PeerRecord(u16),
    PollEvent,
    PeerPollEvent,
    /// Time passes (in units of 16 ms); both sides fire their timers.
    Advance(u16),
    Close,
    Reset,
    PeerClose,
}

/// Channel ids: the mux under test runs the first three, the peer all four.
const CHANNELS: [u8; 4] = [0x20, 0x30, 0x38, 0x40];
const MAX_MESSAGE: usize = 6000;

fn config(channels: usize) -> NativeConfig {
    let mut cs = Vec::new();
    for (i, &id) in CHANNELS.iter().take(channels).enumerate() {
        let mut c = NativeChannelConfig::new(id, 1 + 3 * i as u32, MAX_MESSAGE);
        c.initial_window = 1024 + 1024 * i as u32;
        c.send_queue_capacity = 4;
        cs.push(c);
    }
    NativeConfig {
        max_chunk: 700,
        max_inflight_requests: 4,
        recv_queue_capacity: 8,
        capabilities: vec!["fuzz".to_owned()],
        ..NativeConfig::with_channels(cs)
    }
}

/// Compresses payloads made of one repeated byte into five bytes; leaves the rest alone.
struct RunLength {
    enabled: bool,
}

impl PayloadCodec for RunLength {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn encode(&mut self, _channel: u8, payload: &Bytes) -> Option<Bytes> {
        let (&first, _) = payload.split_first()?;
        if !payload.iter().all(|&b| b == first) {
            return None;
        }
        let mut out = vec![first];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        Some(Bytes::from(out))
    }

    fn decode(&mut self, _channel: u8, data: &[u8], cap: usize) -> Result<Bytes, String> {
        let [byte, a, b, c, d] = *data else {
            return Err("not five bytes".to_owned());
        };
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if len > cap {
            return Err("over the cap".to_owned());
        }
        Ok(Bytes::from(vec![byte; len]))
    }
}

/// Checks every frame of an arbitrary record plaintext.
fn frames(data: &[u8]) {
    let mut decoder = FrameDecoder::new(data);
    let mut start = 0;
    while let Some(item) = decoder.next() {
        let Ok(frame) = item else {
            assert!(
                decoder.next().is_none(),
                "the decoder goes on after an error"
            );
            return;
        };
        let end = decoder.position();
        assert!(start < end && end <= data.len());
        let original = &data[start..end];
        let mut encoded = Vec::new();
        frame
            .encode(&mut encoded)
            .expect("an accepted frame encodes");
        let (again, used) =
            ringwire::proto::native::frame::decode_frame(&encoded, 0).expect("ours decodes");
        assert_eq!(used, encoded.len());
        assert_eq!(again, frame, "the round trip changed the frame");
        match frame {
            // Extension bytes after the fields are ignored, so only the fields must match.
            Frame::Hello(_) => {
                assert!(original[FRAME_HEADER_LEN..].starts_with(&encoded[FRAME_HEADER_LEN..]));
            }
            _ => assert_eq!(encoded, original, "the frame re-encodes differently"),
        }
        start = end;
    }
}

struct Side {
    mux: Mux<RunLength>,
    /// Requests received and not yet answered: (channel, id).
    requests: VecDeque<(u8, RequestId)>,
    /// Requests sent and not yet answered or timed out.
    sent_requests: Vec<RequestId>,
    /// Per channel, the messages this side's peer sent on it, not yet delivered here.
    expected: [VecDeque<Bytes>; 4],
}

impl Side {
    fn new(channels: usize, compression: bool, now: Instant) -> Self {
        let codec = RunLength {
            enabled: compression,
        };
        Self {
            mux: Mux::with_codec(config(channels), codec, now).expect("valid config"),
            requests: VecDeque::new(),
            sent_requests: Vec::new(),
            expected: Default::default(),
        }
    }

    /// Writes one record; checks its bound and its frames.
    fn poll_record(&mut self, now: Instant, budget: u16) -> Option<Vec<u8>> {
        let mut out = vec![0xEE; 3];
        let budget = usize::from(budget);
        if !self.mux.poll_record(now, &mut out, budget) {
            assert_eq!(out, [0xEE; 3], "nothing written, yet the output changed");
            return None;
        }
        let record = out.split_off(3);
        assert!(!record.is_empty());
        let limit = budget.clamp(MIN_RECORD_BUDGET, MAX_RECORD_PLAINTEXT);
        assert!(
            record.len() <= limit,
            "{} bytes for a budget of {limit}",
            record.len()
        );
        for frame in FrameDecoder::new(&record) {
            frame.expect("our own frames decode");
        }
        Some(record)
    }

    fn poll_event(&mut self, honest: bool) {
        let Some(event) = self.mux.poll_event() else {
            return;
        };
        match event {
            MuxEvent::Message {
                channel,
                payload,
                kind,
                ..
            } => {
                assert!(payload.len() <= MAX_MESSAGE);
                let slot = CHANNELS.iter().position(|&c| c == channel).expect("ours");
                match kind {
                    MessageKind::Plain => {
                        if honest {
                            let want = self.expected[slot].pop_front();
                            assert_eq!(Some(payload), want, "wrong message on {channel:#x}");
                        }
                    }
                    MessageKind::Request(id) => self.requests.push_back((channel, id)),
                    MessageKind::Response(id) => self.sent_requests.retain(|&r| r != id),
                }
            }
            MuxEvent::RequestTimedOut(id) | MuxEvent::RequestFailed { id, .. } => {
                self.sent_requests.retain(|&r| r != id);
            }
            MuxEvent::Hello { .. }
            | MuxEvent::Cancelled(_)
            | MuxEvent::Closed { .. }
            | MuxEvent::Reset { .. }
            | MuxEvent::Failed(_) => {}
        }
    }

    fn timers(&mut self, now: Instant) {
        if self.mux.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.mux.handle_timeout(now);
        }
    }
}

/// A payload no other message in this run has (as long as fewer than 256 are sent).
fn payload(counter: &mut u8, len: u16) -> Bytes {
    *counter = counter.wrapping_add(1);
    Bytes::from(vec![*counter; usize::from(len) % (MAX_MESSAGE + 1)])
}

fn run(compression: bool, ops: &[Op]) {
    let mut now = Instant::now();
    let mut ours = Side::new(3, compression, now);
    let mut peer = Side::new(4, compression, now);
    let mut honest = true;
    let mut counter = 0u8;
    for op in ops {
        match op {
            Op::Record(plain) => {
                honest = false;
                let _ = ours.mux.handle_record(now, plain);
            }
            Op::Send { channel, len } => {
                let slot = usize::from(*channel) % 3;
                let msg = payload(&mut counter, *len);
                if ours.mux.send(CHANNELS[slot], msg.clone()).is_ok() {
                    peer.expected[slot].push_back(msg);
                }
            }
            Op::Request {
                channel,
                len,
                deadline_ms,
            } => {
                let id = CHANNELS[usize::from(*channel) % 3];
                let deadline = now + Duration::from_millis(u64::from(*deadline_ms));
                if let Ok(r) = ours.mux.request(id, payload(&mut counter, *len), deadline) {
                    ours.sent_requests.push(r);
                }
            }
            Op::Respond { len } => {
                if let Some((channel, id)) = ours.requests.pop_front() {
                    let _ = ours.mux.respond(channel, id, payload(&mut counter, *len));
                }
            }
            Op::Cancel(i) => {
                if !ours.sent_requests.is_empty() {
                    let id = ours
                        .sent_requests
                        .remove(usize::from(*i) % ours.sent_requests.len());
                    ours.mux.cancel(id);
                }
            }
            Op::PeerSend {
                channel,
                len,
                request,
            } => {
                let slot = usize::from(*channel) % CHANNELS.len();
                let id = CHANNELS[slot];
                let msg = payload(&mut counter, *len);
                if *request {
                    if let Ok(r) = peer.mux.request(id, msg, now + Duration::from_secs(30)) {
                        peer.sent_requests.push(r);
                    }
                } else if peer.mux.send(id, msg.clone()).is_ok() && slot < 3 {
                    ours.expected[slot].push_back(msg);
                }
            }
            Op::PeerRespond { len } => {
                if let Some((channel, id)) = peer.requests.pop_front() {
                    let _ = peer.mux.respond(channel, id, payload(&mut counter, *len));
                }
            }
            Op::PollRecord(budget) => {
                if let Some(record) = ours.poll_record(now, *budget) {
                    let result = peer.mux.handle_record(now, &record);
                    if honest {
                        result.expect("the peer rejected an honest record");
                    }
                }
            }
            Op::PeerRecord(budget) => {
                if let Some(record) = peer.poll_record(now, *budget) {
                    let result = ours.mux.handle_record(now, &record);
                    if honest {
                        result.expect("an honest record was rejected");
                    }
                }
            }
            Op::PollEvent => ours.poll_event(honest),
            Op::PeerPollEvent => peer.poll_event(honest),
            Op::Advance(units) => {
                now += Duration::from_millis(u64::from(*units) * 16);
                ours.timers(now);
                peer.timers(now);
            }
            Op::Close => ours.mux.close("fuzz"),
            Op::Reset => ours.mux.reset(ResetCode::APPLICATION, "fuzz"),
            Op::PeerClose => peer.mux.close("fuzz"),
        }
    }
    // Drain both sides: nothing panics on the way out.
    for _ in 0..4 {
        while ours.mux.poll_event().is_some() {}
        if let Some(record) = ours.poll_record(now, u16::MAX) {
            let _ = peer.mux.handle_record(now, &record);
        }
    }
}

fuzz_target!(|input: Input| match input {
    Input::Frames(data) => frames(&data),
    Input::Mux { compression, ops } => run(compression, &ops),
});
