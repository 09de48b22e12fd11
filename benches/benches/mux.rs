//! Multiplexer costs without encryption: the native framing against stock MConnection.
//!
//! - `native_frame_encode` / `native_frame_decode`: one DATA frame (a whole one-chunk message)
//!   with a 256 B and a 16 KiB chunk. Throughput counts chunk bytes.
//! - `mux_native`: a sending and a receiving native [`Mux`], HELLOs exchanged, with one channel
//!   and the default configuration (16 KiB chunks, 1 MiB window). Each iteration queues N
//!   messages and moves record plaintexts in lockstep, one record each way per step: the
//!   sender's records into the receiver's `handle_record`, the receiver's events drained (which
//!   returns credit), the receiver's WINDOW_UPDATE records back into the sender, until all N
//!   messages have arrived. Records are at most 64 KiB.
//! - `mux_mconn`: the same traffic over two stock-configured [`MConnection`]s (1024-byte packet
//!   payloads), the sender's `poll_transmit` output (at most about 64 KiB per call) fed to the
//!   receiver's `handle_plaintext`, messages drained with `poll_message`.
//!
//! The end-to-end groups report messages per second; bytes per second is that times the
//! message size. Time never advances, so no keepalive traffic is generated.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use ringwire::proto::mconn::{ChannelConfig, MConnConfig, MConnection};
use ringwire::proto::native::frame::{DATA_END, DATA_START, DataFrame, Frame, decode_frame};
use ringwire::proto::native::{
    MAX_RECORD_PLAINTEXT, Mux, MuxEvent, NativeChannelConfig, NativeConfig,
};

/// The channel every benchmark message travels on.
const CH: u8 = 0x20;

/// Largest message either side accepts.
const RECV_CAPACITY: usize = 1 << 20;

/// Message sizes of the end-to-end benchmarks and the messages moved per iteration.
const E2E: [(usize, usize); 2] = [(256, 1024), (64 * 1024, 64)];

/// Chunk sizes of the frame benchmarks.
const FRAME_SIZES: [usize; 2] = [256, 16 * 1024];

/// Human-readable size label for benchmark ids.
fn label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

/// A deterministic, non-constant payload.
fn payload(size: usize) -> Bytes {
    (0..size).map(|i| (i * 31 + 7) as u8).collect()
}

fn frames(c: &mut Criterion) {
    let mut enc = c.benchmark_group("native_frame_encode");
    for size in FRAME_SIZES {
        let chunk = payload(size);
        let frame = Frame::Data(DataFrame {
            ttl_ms: None,
            channel: CH,
            flags: DATA_START | DATA_END,
            request_id: None,
            chunk: &chunk,
        });
        let mut out = Vec::with_capacity(size + 16);
        enc.throughput(Throughput::Bytes(size as u64));
        enc.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| {
                out.clear();
                black_box(&frame)
                    .encode(&mut out)
                    .expect("a valid DATA frame encodes");
                black_box(out.len())
            })
        });
    }
    enc.finish();

    let mut dec = c.benchmark_group("native_frame_decode");
    for size in FRAME_SIZES {
        let chunk = payload(size);
        let mut wire = Vec::new();
        Frame::Data(DataFrame {
            ttl_ms: None,
            channel: CH,
            flags: DATA_START | DATA_END,
            request_id: None,
            chunk: &chunk,
        })
        .encode(&mut wire)
        .expect("a valid DATA frame encodes");
        dec.throughput(Throughput::Bytes(size as u64));
        dec.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| {
                let (frame, end) = decode_frame(black_box(&wire), 0).expect("valid frame");
                black_box(end);
                match frame {
                    Frame::Data(d) => black_box(d.chunk.len()),
                    _ => unreachable!("a DATA frame was encoded"),
                }
            })
        });
    }
    dec.finish();
}

/// Two native multiplexers wired back to back, HELLOs exchanged.
struct NativePair {
    tx: Mux,
    rx: Mux,
    now: Instant,
    buf: Vec<u8>,
}

impl NativePair {
    fn new() -> Self {
        let now = Instant::now();
        let config =
            || NativeConfig::with_channels(vec![NativeChannelConfig::new(CH, 1, RECV_CAPACITY)]);
        let mut pair = Self {
            tx: Mux::new(config(), now).expect("valid config"),
            rx: Mux::new(config(), now).expect("valid config"),
            now,
            buf: Vec::with_capacity(MAX_RECORD_PLAINTEXT),
        };
        while pair.step().0 {}
        assert!(pair.tx.version().is_some() && pair.rx.version().is_some());
        pair
    }

    /// Moves at most one record each way and drains both sides' events. Returns whether a
    /// record moved and how many messages the receiver took.
    fn step(&mut self) -> (bool, usize) {
        let mut moved = false;
        let mut received = 0;
        self.buf.clear();
        if self
            .tx
            .poll_record(self.now, &mut self.buf, MAX_RECORD_PLAINTEXT)
        {
            moved = true;
            self.rx
                .handle_record(self.now, &self.buf)
                .expect("receiver accepts the sender's record");
        }
        while let Some(ev) = self.rx.poll_event() {
            if let MuxEvent::Message { payload, .. } = ev {
                black_box(payload);
                received += 1;
            }
        }
        self.buf.clear();
        if self
            .rx
            .poll_record(self.now, &mut self.buf, MAX_RECORD_PLAINTEXT)
        {
            moved = true;
            self.tx
                .handle_record(self.now, &self.buf)
                .expect("sender accepts the receiver's record");
        }
        while self.tx.poll_event().is_some() {}
        (moved, received)
    }

    /// Sends `n` copies of `msg` and moves records until all have arrived.
    fn run(&mut self, msg: &Bytes, n: usize) {
        let (mut sent, mut received) = (0, 0);
        while received < n {
            while sent < n && self.tx.send(CH, msg.clone()).is_ok() {
                sent += 1;
            }
            let (moved, got) = self.step();
            received += got;
            assert!(moved || got > 0, "native pair stalled at {received}/{n}");
        }
    }
}

/// Two MConnections wired back to back.
struct MConnPair {
    tx: MConnection,
    rx: MConnection,
    now: Instant,
    buf: Vec<u8>,
}

/// Bytes the sender writes per `poll_transmit`, matching the native record size.
const MCONN_BATCH: usize = MAX_RECORD_PLAINTEXT;

impl MConnPair {
    fn new() -> Self {
        let now = Instant::now();
        let channels = [ChannelConfig {
            id: CH,
            priority: 1,
            send_queue_capacity: 100,
            recv_message_capacity: RECV_CAPACITY,
        }];
        let conn = || MConnection::new(MConnConfig::default(), &channels, now).expect("valid");
        Self {
            tx: conn(),
            rx: conn(),
            now,
            buf: Vec::with_capacity(MCONN_BATCH + 2048),
        }
    }

    /// Sends `n` copies of `msg` and moves plaintext until all have arrived.
    fn run(&mut self, msg: &Bytes, n: usize) {
        let (mut sent, mut received) = (0, 0);
        while received < n {
            while sent < n && self.tx.send(CH, msg.clone()).is_ok() {
                sent += 1;
            }
            self.buf.clear();
            let wrote = self.tx.poll_transmit(self.now, &mut self.buf, MCONN_BATCH);
            assert!(wrote > 0, "mconn pair stalled at {received}/{n}");
            assert!(self.rx.wants_input());
            self.rx
                .handle_plaintext(self.now, &self.buf)
                .expect("receiver accepts the sender's packets");
            while let Some((_, m)) = self.rx.poll_message() {
                black_box(m);
                received += 1;
            }
        }
    }
}

fn end_to_end(c: &mut Criterion) {
    let mut native = c.benchmark_group("mux_native");
    for (size, n) in E2E {
        let msg = payload(size);
        let mut pair = NativePair::new();
        native.throughput(Throughput::Elements(n as u64));
        native.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| pair.run(&msg, n))
        });
    }
    native.finish();

    let mut mconn = c.benchmark_group("mux_mconn");
    for (size, n) in E2E {
        let msg = payload(size);
        let mut pair = MConnPair::new();
        mconn.throughput(Throughput::Elements(n as u64));
        mconn.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| pair.run(&msg, n))
        });
    }
    mconn.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    frames(&mut c);
    end_to_end(&mut c);
    c.final_summary();
}
