//! Compression throughput: `Compressor::compress` and `Decompressor::decompress` at message sizes
//! from 256 B to 1 MiB, on transaction-like data (JSON and protobuf-shaped) and on random bytes.
//! The compressed/original ratio of each input is printed before the measurements.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use ringwire::proto::compress::{CompressionConfig, Compressor, Decompressor, Outcome};

const SIZES: [(usize, &str); 5] = [
    (256, "256B"),
    (1 << 10, "1KiB"),
    (16 << 10, "16KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
];

/// splitmix64: a deterministic generator, so every run measures the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// JSON-encoded transfers: repeated field names, addresses from 64 accounts, random signatures.
fn json_transactions(len: usize) -> Vec<u8> {
    const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = Rng(1);
    let accounts: Vec<String> = (0..64)
        .map(|_| {
            let tail: String = (0..38)
                .map(|_| char::from(BECH32[rng.below(32) as usize]))
                .collect();
            format!("cosmos1{tail}")
        })
        .collect();
    let mut out = Vec::with_capacity(len + 1024);
    while out.len() < len {
        let from = &accounts[rng.below(64) as usize];
        let to = &accounts[rng.below(64) as usize];
        let signature: String = (0..88)
            .map(|_| char::from(BASE64[rng.below(64) as usize]))
            .collect();
        let tx = format!(
            concat!(
                r#"{{"body":{{"messages":[{{"@type":"/cosmos.bank.v1beta1.MsgSend","from_address":"{}","#,
                r#""to_address":"{}","amount":[{{"denom":"uatom","amount":"{}"}}]}}],"memo":""}},"#,
                r#""auth_info":{{"fee":{{"amount":[{{"denom":"uatom","amount":"{}"}}],"gas_limit":"{}"}},"#,
                r#""sequence":"{}"}},"signatures":["{}"]}}"#,
                "\n"
            ),
            from,
            to,
            1 + rng.below(10_000_000),
            100 + rng.below(10_000),
            80_000 + rng.below(220_000),
            rng.below(5_000),
            signature
        );
        out.extend_from_slice(tx.as_bytes());
    }
    out.truncate(len);
    out
}

/// Protobuf-shaped transactions: tags and varints, 32-byte keys and hashes from small pools,
/// 64-byte random signatures.
fn protobuf_transactions(len: usize) -> Vec<u8> {
    let mut rng = Rng(2);
    let mut keys = vec![[0u8; 32]; 64];
    for key in &mut keys {
        rng.fill(key);
    }
    let mut out = Vec::with_capacity(len + 256);
    while out.len() < len {
        let mut tx = Vec::with_capacity(200);
        tx.extend_from_slice(b"\x0a\x2f/cosmos.bank.v1beta1.MsgSend\x12\x20");
        tx.extend_from_slice(&keys[rng.below(64) as usize]);
        tx.extend_from_slice(b"\x1a\x20");
        tx.extend_from_slice(&keys[rng.below(64) as usize]);
        tx.extend_from_slice(b"\x22\x05uatom\x28");
        let mut amount = rng.below(1 << 40);
        while amount >= 0x80 {
            tx.push((amount as u8) | 0x80);
            amount >>= 7;
        }
        tx.push(amount as u8);
        tx.extend_from_slice(b"\x32\x40");
        let mut signature = [0u8; 64];
        rng.fill(&mut signature);
        tx.extend_from_slice(&signature);
        out.push(0x0a);
        out.push(tx.len() as u8);
        out.extend_from_slice(&tx);
    }
    out.truncate(len);
    out
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    Rng(3).fill(&mut out);
    out
}

type Generator = fn(usize) -> Vec<u8>;

const DATA: [(&str, Generator); 3] = [
    ("json", json_transactions),
    ("protobuf", protobuf_transactions),
    ("random", random_bytes),
];

fn compress(c: &mut Criterion) {
    let config = CompressionConfig::default();
    let mut compressor = Compressor::new(config).expect("default config");
    for (kind, generate) in DATA {
        let mut group = c.benchmark_group(format!("compress/{kind}"));
        for (len, name) in SIZES {
            let input = generate(len);
            let mut frame = Vec::with_capacity(len);
            let outcome = compressor.compress(&input, &mut frame).expect("compress");
            let ratio = match outcome {
                Outcome::Compressed => frame.len() as f64 / len as f64,
                Outcome::Skipped(_) => 1.0,
            };
            eprintln!("ratio {kind} {name}: {ratio:.3} ({outcome:?})");
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_with_input(BenchmarkId::from_parameter(name), &input, |b, input| {
                b.iter(|| {
                    frame.clear();
                    black_box(compressor.compress(black_box(input), &mut frame))
                })
            });
        }
        group.finish();
    }
}

fn decompress(c: &mut Criterion) {
    let config = CompressionConfig::default();
    let mut decompressor = Decompressor::new(&config).expect("default config");
    for (kind, generate) in DATA {
        let mut group = c.benchmark_group(format!("decompress/{kind}"));
        for (len, name) in SIZES {
            let input = generate(len);
            // Random data is never sent compressed by ringwire; its frame (stored blocks) measures
            // what a peer that compresses it anyway costs the receiver.
            let frame = zstd::bulk::compress(&input, config.level).expect("zstd");
            let mut out = Vec::with_capacity(len);
            decompressor
                .decompress(&frame, len, &mut out)
                .expect("a frame of the input decompresses");
            assert_eq!(out, input);
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_with_input(BenchmarkId::from_parameter(name), &frame, |b, frame| {
                b.iter(|| {
                    out.clear();
                    black_box(decompressor.decompress(black_box(frame), len, &mut out))
                })
            });
        }
        group.finish();
    }
}

mod group {
    // `criterion_group!` defines an undocumented `pub fn`; a private module keeps it internal.
    criterion::criterion_group!(benches, super::compress, super::decompress);
}

criterion_main!(group::benches);
