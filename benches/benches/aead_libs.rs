//! ring 0.17 (the engine's AEAD library) against aws-lc-rs on ringwire's two record ciphers,
//! timing only the AEAD calls, used the way the engine uses them (`LessSafeKey`, in place,
//! detached tag):
//!
//! - AES-256-GCM, native records (`proto::native::record`): 16 KiB and 64 KiB plaintexts (64 KiB
//!   is `MAX_RECORD_PLAINTEXT`); the nonce is four zero bytes and a big-endian `u64` counter, the
//!   associated data the 4-byte big-endian header (ciphertext plus tag length).
//! - ChaCha20-Poly1305, stock SecretConnection frames (`proto::secret::frame`): one frame and a
//!   batch of 64 frames, each 1028 plaintext bytes (length prefix and 1024 data bytes) sealed
//!   with no associated data into 1044 bytes; the nonce is four zero bytes and a little-endian
//!   `u64` counter.
//!
//! Each group holds both libraries, so criterion's report compares them side by side.
//! Throughput counts the bytes the AEAD encrypts or decrypts (tags excluded). Sealing
//! re-encrypts one warm buffer with a fresh nonce per call. Opening consumes its ciphertext, so
//! each open gets a copy of a pre-sealed buffer, made outside the timed region in small batches
//! that stay in cache.
//!
//! Run: `cargo bench -p ringwire-benches --bench aead_libs`.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput};

/// A fixed key; the benchmarks measure cost, not secrecy.
const KEY: [u8; 32] = [0x42; 32];
/// Length of both ciphers' tags.
const TAG: usize = 16;
/// Native record plaintext sizes: 16 KiB and `MAX_RECORD_PLAINTEXT`.
const RECORD_SIZES: [usize; 2] = [16 * 1024, 64 * 1024];
/// Plaintext of one SecretConnection frame (`FRAME_PLAIN_SIZE`).
const FRAME_PLAIN: usize = 4 + 1024;
/// Sealed SecretConnection frame (`FRAME_SEALED_SIZE`).
const FRAME_SEALED: usize = FRAME_PLAIN + TAG;
/// Frame counts of the ChaCha20-Poly1305 benchmarks.
const FRAME_COUNTS: [usize; 2] = [1, 64];

/// The two libraries behind one interface; both expose ring's `aead` API.
trait Lib {
    /// Name in benchmark ids.
    const NAME: &'static str;
    /// The library's `LessSafeKey`.
    type Key;
    /// The AES-256-GCM key of [`KEY`].
    fn aes_256_gcm() -> Self::Key;
    /// The ChaCha20-Poly1305 key of [`KEY`].
    fn chacha20_poly1305() -> Self::Key;
    /// Encrypts `buf` in place and writes its tag to `tag`.
    fn seal(key: &Self::Key, nonce: [u8; 12], aad: &[u8], buf: &mut [u8], tag: &mut [u8]);
    /// Decrypts `buf` (ciphertext then tag) in place and returns the plaintext length.
    fn open(key: &Self::Key, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> usize;
}

/// Implements [`Lib`] for `$ty` with the `aead` module of crate `$krate`.
macro_rules! lib {
    ($ty:ident, $name:literal, $krate:ident) => {
        struct $ty;

        impl Lib for $ty {
            const NAME: &'static str = $name;
            type Key = $krate::aead::LessSafeKey;
            fn aes_256_gcm() -> Self::Key {
                use $krate::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
                LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).expect("32-byte key"))
            }
            fn chacha20_poly1305() -> Self::Key {
                use $krate::aead::{CHACHA20_POLY1305, LessSafeKey, UnboundKey};
                LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &KEY).expect("32-byte key"))
            }
            fn seal(key: &Self::Key, nonce: [u8; 12], aad: &[u8], buf: &mut [u8], tag: &mut [u8]) {
                use $krate::aead::{Aad, Nonce};
                let nonce = Nonce::assume_unique_for_key(nonce);
                let t = key
                    .seal_in_place_separate_tag(nonce, Aad::from(aad), buf)
                    .expect("sealing never fails here");
                tag.copy_from_slice(t.as_ref());
            }
            fn open(key: &Self::Key, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> usize {
                use $krate::aead::{Aad, Nonce};
                let nonce = Nonce::assume_unique_for_key(nonce);
                key.open_in_place(nonce, Aad::from(aad), buf)
                    .expect("buffers sealed with the same key open")
                    .len()
            }
        }
    };
}

lib!(Ring, "ring", ring);
lib!(AwsLc, "aws-lc-rs", aws_lc_rs);

/// A benchmark group of this file.
type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Native record nonce: four zero bytes, big-endian counter.
fn record_nonce(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_be_bytes());
    nonce
}

/// SecretConnection nonce: four zero bytes, little-endian counter.
fn frame_nonce(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    nonce
}

/// Native record header, the associated data: the big-endian body length.
fn record_aad(plain: usize) -> [u8; 4] {
    u32::try_from(plain + TAG)
        .expect("record fits")
        .to_be_bytes()
}

/// A deterministic, non-constant plaintext.
fn plaintext(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 + 7) as u8).collect()
}

/// Opens per timed batch so that a batch of copies stays near 256 KiB, in cache.
fn open_batch(bytes: usize) -> BatchSize {
    BatchSize::NumIterations((256 * 1024 / bytes).max(1) as u64)
}

/// Seals a `size`-byte native record (body then tag, one buffer), as `RecordSealer::finish`.
fn aes_seal<L: Lib>(group: &mut Group<'_>, size: usize) {
    let key = L::aes_256_gcm();
    let aad = record_aad(size);
    let mut buf = plaintext(size + TAG);
    let mut counter = 0u64;
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function(BenchmarkId::new(L::NAME, label(size)), |b| {
        b.iter(|| {
            counter += 1;
            let (body, tag) = buf.split_at_mut(size);
            L::seal(&key, record_nonce(counter), &aad, black_box(body), tag);
        })
    });
}

/// Opens a pre-sealed `size`-byte native record in place, as `RecordOpener::open_in_place`.
fn aes_open<L: Lib>(group: &mut Group<'_>, size: usize) {
    let key = L::aes_256_gcm();
    let aad = record_aad(size);
    let mut sealed = plaintext(size + TAG);
    let (body, tag) = sealed.split_at_mut(size);
    L::seal(&key, record_nonce(0), &aad, body, tag);
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function(BenchmarkId::new(L::NAME, label(size)), |b| {
        b.iter_batched_ref(
            || sealed.clone(),
            |buf| L::open(&key, record_nonce(0), &aad, black_box(buf)),
            open_batch(size),
        )
    });
}

/// Seals `frames` consecutive frames, each in its own 1044-byte slot, as `FrameSealer::seal`.
fn chacha_seal<L: Lib>(group: &mut Group<'_>, frames: usize) {
    let key = L::chacha20_poly1305();
    let mut buf = plaintext(frames * FRAME_SEALED);
    let mut counter = 0u64;
    group.throughput(Throughput::Bytes((frames * FRAME_PLAIN) as u64));
    group.bench_function(BenchmarkId::new(L::NAME, frames_label(frames)), |b| {
        b.iter(|| {
            for slot in black_box(&mut buf[..]).chunks_exact_mut(FRAME_SEALED) {
                counter += 1;
                let (plain, tag) = slot.split_at_mut(FRAME_PLAIN);
                L::seal(&key, frame_nonce(counter), &[], plain, tag);
            }
        })
    });
}

/// Opens `frames` pre-sealed consecutive frames in place, as `FrameOpener::open_frame`.
fn chacha_open<L: Lib>(group: &mut Group<'_>, frames: usize) {
    let key = L::chacha20_poly1305();
    let mut sealed = plaintext(frames * FRAME_SEALED);
    for (n, slot) in (0u64..).zip(sealed.chunks_exact_mut(FRAME_SEALED)) {
        let (plain, tag) = slot.split_at_mut(FRAME_PLAIN);
        L::seal(&key, frame_nonce(n), &[], plain, tag);
    }
    group.throughput(Throughput::Bytes((frames * FRAME_PLAIN) as u64));
    group.bench_function(BenchmarkId::new(L::NAME, frames_label(frames)), |b| {
        b.iter_batched_ref(
            || sealed.clone(),
            |buf| {
                let mut total = 0;
                for (n, slot) in (0u64..).zip(black_box(buf).chunks_exact_mut(FRAME_SEALED)) {
                    total += L::open(&key, frame_nonce(n), &[], slot);
                }
                total
            },
            open_batch(frames * FRAME_SEALED),
        )
    });
}

/// Runs `$bench` in group `$name` for both libraries at each size of `$sizes`, one library
/// right after the other.
macro_rules! compare {
    ($c:expr, $name:literal, $sizes:expr, $bench:ident) => {{
        let mut group = $c.benchmark_group($name);
        for size in $sizes {
            $bench::<Ring>(&mut group, size);
            $bench::<AwsLc>(&mut group, size);
        }
        group.finish();
    }};
}

/// Seals with `S` and opens with `O` under both ciphers, so that both libraries are known to
/// compute the same thing before their timings are compared.
fn cross_check<S: Lib, O: Lib>() {
    let want = plaintext(FRAME_PLAIN);
    let aad = record_aad(FRAME_PLAIN);
    let mut buf = plaintext(FRAME_SEALED);
    let (plain, tag) = buf.split_at_mut(FRAME_PLAIN);
    S::seal(&S::aes_256_gcm(), record_nonce(7), &aad, plain, tag);
    let n = O::open(&O::aes_256_gcm(), record_nonce(7), &aad, &mut buf);
    assert_eq!(buf[..n], want);
    let (plain, tag) = buf.split_at_mut(FRAME_PLAIN);
    S::seal(&S::chacha20_poly1305(), frame_nonce(7), &[], plain, tag);
    let n = O::open(&O::chacha20_poly1305(), frame_nonce(7), &[], &mut buf);
    assert_eq!(buf[..n], want);
}

/// Benchmark id parameter of a native record size.
fn label(size: usize) -> String {
    format!("{}KiB", size / 1024)
}

/// Benchmark id parameter of a frame count.
fn frames_label(frames: usize) -> String {
    if frames == 1 {
        "1frame".to_owned()
    } else {
        format!("{frames}frames")
    }
}

fn main() {
    cross_check::<Ring, AwsLc>();
    cross_check::<AwsLc, Ring>();
    let mut c = Criterion::default().configure_from_args();
    compare!(c, "aes256gcm_seal", RECORD_SIZES, aes_seal);
    compare!(c, "aes256gcm_open", RECORD_SIZES, aes_open);
    compare!(c, "chacha20poly1305_seal", FRAME_COUNTS, chacha_seal);
    compare!(c, "chacha20poly1305_open", FRAME_COUNTS, chacha_open);
    c.final_summary();
}
