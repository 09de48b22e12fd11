//! Seal and open throughput of the two record layers.
//!
//! - `secret_seal` / `secret_open`: SecretConnection frames (ChaCha20-Poly1305, 1024 data bytes
//!   per 1044-byte frame) for one write of 1 B to 64 KiB.
//! - `native_seal` / `native_open_feed` / `native_open_in_place`: native AES-256-GCM records of
//!   256 B to 64 KiB of plaintext, opened either through the opener's own buffer
//!   (`feed` + `next_record`) or where they lie in the caller's buffer (`open_in_place`).
//!
//! Sealers keep their state across iterations (the nonce counter never runs out in a
//! benchmark). An opener must see the nonces from 0 upwards, so each open iteration builds a
//! fresh opener outside the timed region and opens one pre-sealed batch: as many writes as make
//! up about 64 KiB (at most 256, at least one). Throughput counts plaintext bytes.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use ringwire::proto::native::{RecordOpener, RecordSealer};
use ringwire::proto::secret::{FRAME_SEALED_SIZE, FrameOpener, FrameSealer, frames_for};

/// A fixed key; the benchmarks measure cost, not secrecy.
const KEY: [u8; 32] = [0x42; 32];

/// Write sizes of the SecretConnection benchmarks.
const SECRET_SIZES: [usize; 5] = [1, 256, 1024, 16 * 1024, 64 * 1024];

/// Plaintext sizes of the native record benchmarks.
const NATIVE_SIZES: [usize; 4] = [256, 1024, 16 * 1024, 64 * 1024];

/// Writes per open batch: about 64 KiB of plaintext, between 1 and 256 writes.
fn batch_writes(size: usize) -> usize {
    (64 * 1024 / size).clamp(1, 256)
}

/// A deterministic, non-constant plaintext.
fn plaintext(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 + 7) as u8).collect()
}

/// Human-readable size label for benchmark ids.
fn label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

fn secret(c: &mut Criterion) {
    let mut seal = c.benchmark_group("secret_seal");
    for size in SECRET_SIZES {
        let data = plaintext(size);
        let mut sealer = FrameSealer::new(&KEY);
        let mut out = Vec::with_capacity(frames_for(size) * FRAME_SEALED_SIZE);
        seal.throughput(Throughput::Bytes(size as u64));
        seal.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| {
                out.clear();
                sealer
                    .seal(black_box(&data), &mut out)
                    .expect("sealing never fails here");
                black_box(out.len())
            })
        });
    }
    seal.finish();

    let mut open = c.benchmark_group("secret_open");
    for size in SECRET_SIZES {
        let data = plaintext(size);
        let writes = batch_writes(size);
        let mut sealer = FrameSealer::new(&KEY);
        let mut sealed = Vec::new();
        for _ in 0..writes {
            sealer
                .seal(&data, &mut sealed)
                .expect("sealing never fails here");
        }
        let mut out = Vec::with_capacity(size * writes);
        open.throughput(Throughput::Bytes((size * writes) as u64));
        open.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter_batched(
                || FrameOpener::new(&KEY),
                |mut opener| {
                    out.clear();
                    opener
                        .open(black_box(&sealed), &mut out)
                        .expect("frames sealed with the same key open");
                    debug_assert_eq!(out.len(), size * writes);
                    black_box(out.len())
                },
                BatchSize::SmallInput,
            )
        });
    }
    open.finish();
}

/// Seals `writes` records of `data` with a fresh sealer.
fn native_batch(data: &[u8], writes: usize) -> Vec<u8> {
    let mut sealer = RecordSealer::new(&KEY);
    let mut sealed = Vec::new();
    for _ in 0..writes {
        sealer
            .seal(data, &mut sealed)
            .expect("sealing never fails here");
    }
    sealed
}

fn native(c: &mut Criterion) {
    let mut seal = c.benchmark_group("native_seal");
    for size in NATIVE_SIZES {
        let data = plaintext(size);
        let mut sealer = RecordSealer::new(&KEY);
        let mut out = Vec::with_capacity(size + 20);
        seal.throughput(Throughput::Bytes(size as u64));
        seal.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| {
                out.clear();
                sealer
                    .seal(black_box(&data), &mut out)
                    .expect("sealing never fails here");
                black_box(out.len())
            })
        });
    }
    seal.finish();

    let mut feed = c.benchmark_group("native_open_feed");
    for size in NATIVE_SIZES {
        let writes = batch_writes(size);
        let sealed = native_batch(&plaintext(size), writes);
        feed.throughput(Throughput::Bytes((size * writes) as u64));
        feed.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter_batched(
                || RecordOpener::new(&KEY),
                |mut opener| {
                    let mut input = black_box(&sealed[..]);
                    let mut total = 0;
                    while !input.is_empty() {
                        let n = opener.feed(input).expect("valid records");
                        input = &input[n..];
                        while let Some(p) = opener.next_record().expect("valid records") {
                            total += black_box(p).len();
                        }
                    }
                    debug_assert_eq!(total, size * writes);
                    total
                },
                BatchSize::SmallInput,
            )
        });
    }
    feed.finish();

    let mut in_place = c.benchmark_group("native_open_in_place");
    for size in NATIVE_SIZES {
        let writes = batch_writes(size);
        let sealed = native_batch(&plaintext(size), writes);
        in_place.throughput(Throughput::Bytes((size * writes) as u64));
        in_place.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter_batched(
                || (RecordOpener::new(&KEY), sealed.clone()),
                |(mut opener, mut buf)| {
                    let mut pos = 0;
                    let mut total = 0;
                    while pos < buf.len() {
                        let rec = opener
                            .open_in_place(&mut buf[pos..])
                            .expect("valid records")
                            .expect("whole records");
                        total += black_box(rec.plaintext.len());
                        pos += rec.consumed;
                    }
                    debug_assert_eq!(total, size * writes);
                    // Hand the buffer back so that freeing it is not timed.
                    (total, buf)
                },
                BatchSize::LargeInput,
            )
        });
    }
    in_place.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    secret(&mut c);
    native(&mut c);
    c.final_summary();
}
