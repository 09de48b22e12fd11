//! A deterministic in-memory connection between two multiplexers.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::proto::native::frame::{Frame, Hello, HelloChannel};
use crate::proto::native::{
    MAX_RECORD_PLAINTEXT, Mux, MuxError, MuxEvent, NativeChannelConfig, NativeConfig, NoCodec,
    PayloadCodec, RecordOpener, RecordSealer,
};

pub(crate) struct Side<C: PayloadCodec> {
    pub(crate) mux: Mux<C>,
    pub(crate) events: Vec<MuxEvent>,
    /// Take events (and so return credit) after every step.
    pub(crate) drain: bool,
    pub(crate) error: Option<MuxError>,
    sealer: RecordSealer,
    opener: RecordOpener,
}

impl<C: PayloadCodec> Side<C> {
    pub(crate) fn drain_events(&mut self) {
        while let Some(e) = self.mux.poll_event() {
            self.events.push(e);
        }
    }

    /// Messages received so far as (channel, payload).
    pub(crate) fn messages(&self) -> Vec<(u8, Bytes)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                MuxEvent::Message {
                    channel, payload, ..
                } => Some((*channel, payload.clone())),
                _ => None,
            })
            .collect()
    }
}

pub(crate) struct Pair<C: PayloadCodec = NoCodec> {
    pub(crate) a: Side<C>,
    pub(crate) b: Side<C>,
    pub(crate) now: Instant,
    pub(crate) max_record: usize,
    /// Records that went a → b.
    pub(crate) records_ab: usize,
    /// Alternate between the copying and the zero-copy input paths.
    flip: bool,
}

const KEY_AB: [u8; 32] = [0xAB; 32];
const KEY_BA: [u8; 32] = [0xBA; 32];

impl Pair<NoCodec> {
    pub(crate) fn new(a: NativeConfig, b: NativeConfig) -> Self {
        Self::with_codecs(a, NoCodec, b, NoCodec)
    }
}

impl<C: PayloadCodec> Pair<C> {
    pub(crate) fn with_codecs(a: NativeConfig, ca: C, b: NativeConfig, cb: C) -> Self {
        let now = Instant::now();
        let side = |cfg, codec, send: &[u8; 32], recv: &[u8; 32]| Side {
            mux: Mux::with_codec(cfg, codec, now).unwrap(),
            events: Vec::new(),
            drain: true,
            error: None,
            sealer: RecordSealer::new(send),
            opener: RecordOpener::new(recv),
        };
        Self {
            a: side(a, ca, &KEY_AB, &KEY_BA),
            b: side(b, cb, &KEY_BA, &KEY_AB),
            now,
            max_record: MAX_RECORD_PLAINTEXT,
            records_ab: 0,
            flip: false,
        }
    }

    /// Moves at most one record each way. Returns whether anything moved.
    pub(crate) fn step(&mut self) -> bool {
        let ab = transfer(
            &mut self.a,
            &mut self.b,
            self.now,
            self.max_record,
            self.flip,
        );
        if ab {
            self.records_ab += 1;
        }
        let ba = transfer(
            &mut self.b,
            &mut self.a,
            self.now,
            self.max_record,
            self.flip,
        );
        self.flip = !self.flip;
        for s in [&mut self.a, &mut self.b] {
            if s.drain {
                s.drain_events();
            }
        }
        ab || ba
    }

    /// Steps until nothing moves.
    pub(crate) fn drive(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("pair never settled");
    }

    /// Advances simulated time, running both sides' timers, then drives.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        for s in [&mut self.a, &mut self.b] {
            if let Err(e) = s.mux.handle_timeout(self.now) {
                s.error.get_or_insert(e);
            }
        }
        self.drive();
    }
}

/// Seals one record from `from`, opens it at `to` and hands it in.
fn transfer<C: PayloadCodec>(
    from: &mut Side<C>,
    to: &mut Side<C>,
    now: Instant,
    max_record: usize,
    zero_copy: bool,
) -> bool {
    if !to.mux.wants_input() {
        // A driver stops reading while the receiver does not want input; the pipe stays full.
        return false;
    }
    let mut wire = Vec::new();
    let start = from.sealer.begin(&mut wire);
    if !from.mux.poll_record(now, &mut wire, max_record) {
        return false;
    }
    assert!(wire.len() - start - 4 <= max_record.max(crate::proto::native::MIN_RECORD_BUDGET));
    from.sealer.finish(&mut wire, start).unwrap();
    let r = if zero_copy {
        let rec = to.opener.open_in_place(&mut wire).unwrap().unwrap();
        let bytes = Bytes::from(wire).slice(rec.plaintext);
        to.mux.handle_record_bytes(now, bytes)
    } else {
        assert_eq!(to.opener.feed(&wire).unwrap(), wire.len());
        let p = to.opener.next_record().unwrap().unwrap();
        to.mux.handle_record(now, p)
    };
    if let Err(e) = r {
        to.error.get_or_insert(e);
    }
    true
}

/// A channel config with a generous receive cap.
pub(crate) fn chan(id: u8, priority: u32) -> NativeChannelConfig {
    NativeChannelConfig::new(id, priority, 64 << 20)
}

pub(crate) fn config(channels: &[(u8, u32)]) -> NativeConfig {
    NativeConfig::with_channels(channels.iter().map(|&(id, p)| chan(id, p)).collect())
}

/// A HELLO a scripted peer sends.
pub(crate) fn hello(channels: &[(u8, u32, u32)]) -> Hello {
    Hello {
        min_version: 1,
        max_version: 1,
        features: 0,
        max_inflight_requests: 4,
        capabilities: vec![],
        channels: channels
            .iter()
            .map(|&(id, w, m)| HelloChannel {
                id,
                initial_window: w,
                max_message: m,
            })
            .collect(),
    }
}

/// Encodes frames into one record plaintext.
pub(crate) fn record(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(&mut out).unwrap();
    }
    out
}

/// Decodes every frame of every record `mux` writes now (owned copies for assertions).
pub(crate) fn outgoing<C: PayloadCodec>(mux: &mut Mux<C>, now: Instant) -> Vec<Vec<u8>> {
    let mut recs = Vec::new();
    loop {
        let mut out = Vec::new();
        if !mux.poll_record(now, &mut out, MAX_RECORD_PLAINTEXT) {
            return recs;
        }
        recs.push(out);
    }
}

/// Every frame `mux` writes now, decoded, with borrowed parts copied to strings for matching.
pub(crate) fn outgoing_frames<C: PayloadCodec>(mux: &mut Mux<C>, now: Instant) -> Vec<String> {
    let mut v = Vec::new();
    for r in outgoing(mux, now) {
        for f in crate::proto::native::frame::FrameDecoder::new(&r) {
            v.push(format!("{:?}", f.unwrap()));
        }
    }
    v
}
