//! The child protocol: how one side of one measurement talks to the harness.
//!
//! Every measurement runs two processes over loopback TCP (or a shaped veth for S6): a
//! **receiver** that listens and a **sender** that dials it. Any program can be a child as long
//! as it follows this protocol, which is why the stock CometBFT anchor is a plain Go program
//! (`interop/cmd/mconnbench`) and why the engine's rows can be added without touching the
//! orchestration:
//!
//! - The receiver is started with `recv` and the flags of [`ChildArgs`]; once it listens it
//!   prints `LISTEN <addr>` on its own line of standard output.
//! - The sender is started with `send`, the same flags and `--addr <addr>`.
//! - Each prints exactly one `RESULT <json>` line ([`ChildReport`]) before it exits with status 0.
//! - Which side ends the measurement depends on the workload: the receiver for `bulk` and
//!   `fanout` (it closes after its window; the sender stops when the connection drops), the
//!   sender for `latency` (the receiver stops on end of stream) and `handshake` (the harness
//!   kills the receiver once the sender has reported; its `RESULT` line is optional).
//! - Round-trip samples (`latency`) go to the file named by `--samples`, as little-endian `u64`
//!   nanoseconds.
//!
//! Flag names are the same for every child, so that the Go flag parser accepts them too.
//!
//! S9 ([`Workload::S9`]) is the exception: its mesh of N nodes is **one** process, started
//! with `run` (the stock anchor: `mconnbench run --scenario=s9 --nodes=N …`; the engine's rows
//! run `ringwire testnet --s9 --json`), which prints no `LISTEN` line and one summary, as a
//! `RESULT <json>` line or as the JSON line `ringwire testnet --json` prints ([`crate::s9`]).

pub mod raw;
pub mod ringwire;

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What the two processes do; the same names are used by every child program.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Messages of `--size` bytes flat out on one connection; the receiver measures.
    Bulk,
    /// Request/response round trips, optionally beside a saturating load.
    Latency,
    /// Connect, complete the handshake, close; the sender counts.
    Handshake,
    /// One sender broadcasting to `--peers` connections; the receiver plays all the peers.
    Fanout,
    /// S9's consensus-like mix on `--nodes` nodes in one process (role `run`, no pair).
    S9,
}

impl Workload {
    /// The name children receive after `--scenario`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bulk => "bulk",
            Self::Latency => "latency",
            Self::Handshake => "handshake",
            Self::Fanout => "fanout",
            Self::S9 => "s9",
        }
    }
}

/// What a recv/send child answers when asked for [`Workload::S9`], which is one process.
pub fn not_a_pair() -> io::Error {
    io::Error::other(
        "the s9 workload runs as one process (`ringwire testnet --s9`, `mconnbench run`), \
         not as a recv/send pair",
    )
}

/// The load beside latency requests.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Load {
    /// Nothing else on the connection.
    None,
    /// A low-priority channel saturated with `--bulk-size` messages, same direction as requests.
    Bulk,
}

/// Payload contents (S6 compares compressible and random data).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// A fixed repeating byte pattern.
    Pattern,
    /// Transaction-like records (JSON-ish text with repeated keys): compresses well.
    Compressible,
    /// Bytes from a fast pseudo-random generator: does not compress.
    Random,
}

/// Flags every child accepts (the Go anchor takes the same names).
#[derive(clap::Args, Clone, Debug)]
pub struct ChildArgs {
    /// What to run.
    #[arg(long, value_enum, default_value = "bulk")]
    pub scenario: Workload,
    /// Message size in bytes (requests for `latency`).
    #[arg(long, default_value_t = 65536)]
    pub size: usize,
    /// Size of the load messages for `latency --load bulk`.
    #[arg(long = "bulk-size", default_value_t = 65536)]
    pub bulk_size: usize,
    /// Load beside latency requests.
    #[arg(long, value_enum, default_value = "none")]
    pub load: Load,
    /// Number of connections for `fanout`.
    #[arg(long, default_value_t = 100)]
    pub peers: usize,
    /// Warm-up before the measured window, in milliseconds.
    #[arg(long = "warmup-ms", default_value_t = 500)]
    pub warmup_ms: u64,
    /// Length of the measured window, in milliseconds.
    #[arg(long = "duration-ms", default_value_t = 2000)]
    pub duration_ms: u64,
    /// Receiver: address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Sender: address to dial.
    #[arg(long)]
    pub addr: Option<String>,
    /// Latency sender: file for the round-trip samples.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Payload contents.
    #[arg(long, value_enum, default_value = "pattern")]
    pub payload: Payload,
    /// Raw TCP only: write one message per system call instead of batching.
    #[arg(long = "per-message-write")]
    pub per_message_write: bool,
    /// Raw TCP only, latency: requests and load share one connection (interleaved frames)
    /// instead of using a connection each.
    #[arg(long)]
    pub interleaved: bool,
}

impl ChildArgs {
    /// The warm-up as a duration.
    pub fn warmup(&self) -> Duration {
        Duration::from_millis(self.warmup_ms)
    }

    /// The measured window as a duration.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }
}

/// The one `RESULT` line of a child. Fields a child has nothing to say about stay zero.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct ChildReport {
    /// Messages (or handshakes, or round trips) inside the measured window.
    pub window_messages: u64,
    /// Payload bytes inside the measured window.
    pub window_bytes: u64,
    /// Length of the measured window as the child timed it, seconds.
    pub window_secs: f64,
    /// Messages over the whole life of the process.
    pub total_messages: u64,
    /// Payload bytes over the whole life of the process.
    pub total_bytes: u64,
    /// Number of latency samples written.
    pub samples: u64,
    /// Connections accepted or made.
    pub connections: u64,
    /// Resident memory before any connection was made, KiB.
    pub rss_base_kib: u64,
    /// Resident memory with all connections made, KiB.
    pub rss_kib: u64,
}

/// Prints the `LISTEN` line and flushes it, so the harness can start the sender.
pub fn announce(addr: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "LISTEN {addr}");
    let _ = out.flush();
}

/// Prints the `RESULT` line and flushes it.
pub fn print_result(report: &ChildReport) {
    let json = serde_json::to_string(report).unwrap_or_else(|_| "{}".to_owned());
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "RESULT {json}");
    let _ = out.flush();
}

/// Resident set size of this process, KiB, from `/proc/self/status` (0 when unreadable).
pub fn rss_kib() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The latency sender's measurement, the same for every engine: `round_trip` sends a request
/// (its first 8 bytes a sequence number, the rest `args.payload`) and returns once the reply
/// carrying that number is back. Round trips run through the warm-up, then the window; then
/// `stop` is raised (it ends the load), the samples go to `args.samples`, and the report,
/// with the load's bytes from `load_sent`, is printed.
pub fn measure_latency(
    args: &ChildArgs,
    stop: &AtomicBool,
    load_sent: &AtomicU64,
    mut round_trip: impl FnMut(&[u8]) -> io::Result<Duration>,
) -> io::Result<()> {
    let mut req = vec![0u8; args.size.max(8)];
    fill_payload(&mut req, args.payload, 1);
    let mut seq = 0u64;
    let mut next = || {
        seq += 1;
        req[..8].copy_from_slice(&seq.to_le_bytes());
        round_trip(&req)
    };
    let (samples, window) = warm_then_measure(args, || Ok(next()?.as_nanos() as u64))?;
    stop.store(true, Ordering::Relaxed);
    if let Some(path) = &args.samples {
        write_samples(path, &samples)?;
    }
    print_result(&ChildReport {
        window_messages: samples.len() as u64,
        window_secs: window.as_secs_f64(),
        samples: samples.len() as u64,
        total_bytes: load_sent.load(Ordering::Relaxed),
        ..ChildReport::default()
    });
    Ok(())
}

/// The handshake sender's measurement, the same for every engine: `once` makes one
/// connection and returns when its handshake is done; connections are made through the
/// warm-up, then counted through the window, and the report is printed.
pub fn measure_handshakes(
    args: &ChildArgs,
    once: impl FnMut() -> io::Result<()>,
) -> io::Result<()> {
    let (done, window) = warm_then_measure(args, once)?;
    print_result(&ChildReport {
        window_messages: done.len() as u64,
        window_secs: window.as_secs_f64(),
        ..ChildReport::default()
    });
    Ok(())
}

/// Calls `f` until the warm-up of `args` is over, then until its window is; returns what the
/// window's calls returned and how long the window lasted.
fn warm_then_measure<T>(
    args: &ChildArgs,
    mut f: impl FnMut() -> io::Result<T>,
) -> io::Result<(Vec<T>, Duration)> {
    let warm_end = Instant::now() + args.warmup();
    while Instant::now() < warm_end {
        f()?;
    }
    let mut got = Vec::with_capacity(1 << 16);
    let start = Instant::now();
    let end = start + args.duration();
    while Instant::now() < end {
        got.push(f()?);
    }
    Ok((got, start.elapsed()))
}

/// Writes samples as little-endian `u64` nanoseconds.
pub fn write_samples(path: &Path, samples: &[u64]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(samples.len() * 8);
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes)
}

/// A measured window on a receiver: it opens `warmup` after the first message and closes
/// `duration` later. Feed it the running totals after every read.
#[derive(Debug)]
pub struct Window {
    warmup: Duration,
    duration: Duration,
    first: Option<Instant>,
    start: Option<(Instant, u64, u64)>,
}

impl Window {
    /// A window that has not seen its first message yet.
    pub fn new(warmup: Duration, duration: Duration) -> Self {
        Self {
            warmup,
            duration,
            first: None,
            start: None,
        }
    }

    /// Records the totals at `now`; returns the report once the window has closed.
    pub fn observe(&mut self, now: Instant, messages: u64, bytes: u64) -> Option<ChildReport> {
        if messages == 0 {
            return None;
        }
        let first = *self.first.get_or_insert(now);
        match self.start {
            None => {
                if now.duration_since(first) >= self.warmup {
                    self.start = Some((now, messages, bytes));
                }
                None
            }
            Some((t0, m0, b0)) => {
                let elapsed = now.duration_since(t0);
                (elapsed >= self.duration).then(|| ChildReport {
                    window_messages: messages.saturating_sub(m0),
                    window_bytes: bytes.saturating_sub(b0),
                    window_secs: elapsed.as_secs_f64(),
                    total_messages: messages,
                    total_bytes: bytes,
                    ..ChildReport::default()
                })
            }
        }
    }
}

/// Fills `buf` with the requested payload kind; `seed` varies random data between messages.
pub fn fill_payload(buf: &mut [u8], kind: Payload, seed: u64) {
    match kind {
        Payload::Pattern => {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
        }
        Payload::Random => {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for chunk in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let bytes = x.to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
        }
        Payload::Compressible => {
            let mut text = String::new();
            let mut n = seed;
            while text.len() < buf.len() {
                n = n.wrapping_add(1);
                text.push_str(&format!(
                    "{{\"type\":\"transfer\",\"from\":\"cosmos1{:016x}\",\"to\":\"cosmos1{:016x}\",\"amount\":{},\"denom\":\"uatom\",\"memo\":\"\"}}\n",
                    n.wrapping_mul(2_654_435_761),
                    n.wrapping_mul(40_503),
                    n % 100_000
                ));
            }
            buf.copy_from_slice(&text.as_bytes()[..buf.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_opens_after_warmup_and_closes_after_duration() {
        let mut w = Window::new(Duration::from_millis(10), Duration::from_millis(20));
        let t = Instant::now();
        assert_eq!(w.observe(t, 0, 0), None);
        assert_eq!(w.observe(t, 1, 100), None);
        assert_eq!(w.observe(t + Duration::from_millis(10), 5, 500), None);
        assert_eq!(w.observe(t + Duration::from_millis(20), 7, 700), None);
        let r = w
            .observe(t + Duration::from_millis(30), 9, 900)
            .expect("window closed");
        assert_eq!(r.window_messages, 4);
        assert_eq!(r.window_bytes, 400);
        assert_eq!(r.total_messages, 9);
        assert!((r.window_secs - 0.02).abs() < 1e-9);
    }

    #[test]
    fn report_round_trips_and_tolerates_missing_fields() {
        let r: ChildReport = serde_json::from_str(r#"{"window_messages":3}"#).expect("parse");
        assert_eq!(r.window_messages, 3);
        assert_eq!(r.total_bytes, 0);
        let back: ChildReport =
            serde_json::from_str(&serde_json::to_string(&r).expect("encode")).expect("parse");
        assert_eq!(back, r);
    }

    #[test]
    fn payload_kinds_fill_exactly() {
        for kind in [Payload::Pattern, Payload::Compressible, Payload::Random] {
            let mut buf = vec![0u8; 1001];
            fill_payload(&mut buf, kind, 3);
            assert!(buf.iter().any(|&b| b != 0));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: super::ChildArgs,
    }

    /// Child flags at their defaults.
    pub(crate) fn args() -> super::ChildArgs {
        Wrapper::parse_from(["child"]).args
    }
}
