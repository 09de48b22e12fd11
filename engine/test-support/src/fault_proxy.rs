//! A TCP forwarder that delays what it forwards, for tests of a node behind a slow, lossy path
//! on real sockets (`docs/RELIABILITY.md` row 15): the engine-level twin of the e2e suite's
//! `cometbft/cmd/faultproxy` (docs/E2E.md), with the same fault model.
//!
//! Every chunk one read returns is delivered no earlier than its read time plus `delay` ±
//! `jitter`, plus `rto` with probability `loss` (TCP hides a lost segment; the application sees
//! its stream stall for a retransmission timeout), plus `holdfor` with probability `hold` (a held
//! chunk delays its own connection only, so other connections overtake it), and never before
//! the chunk read before it in the same direction: each stream stays whole and in order.
//! Threads, blocking sockets, a bounded queue per direction; dropping the proxy stops it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the proxy does to each chunk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Added to every chunk.
    pub delay: Duration,
    /// Plus or minus up to this much, uniformly.
    pub jitter: Duration,
    /// Probability that a chunk stalls for `rto`.
    pub loss: f64,
    /// The stall of a "lost" chunk.
    pub rto: Duration,
    /// Probability that a chunk is held back for `holdfor`.
    pub hold: f64,
    /// How long a held chunk waits.
    pub holdfor: Duration,
}

/// What the proxy has done so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections forwarded.
    pub conns: AtomicU64,
    /// Chunks forwarded.
    pub chunks: AtomicU64,
    /// Chunks that stalled for an RTO.
    pub stalls: AtomicU64,
    /// Chunks held back.
    pub holds: AtomicU64,
}

/// A running proxy from [`FaultProxy::addr`] to one target.
pub struct FaultProxy {
    /// Where it listens (loopback, a free port).
    pub addr: SocketAddr,
    /// Its counters.
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts forwarding connections to `target` with `faults`; `seed` makes the draws
    /// repeatable.
    pub fn start(target: SocketAddr, faults: Faults, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy binds");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let addr = listener.local_addr().expect("the proxy's address");
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        let Ok(outbound) =
                            TcpStream::connect_timeout(&target, Duration::from_secs(2))
                        else {
                            continue;
                        };
                        c.conns.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                        forward(inbound, outbound, faults, seed.wrapping_add(n), &c, &s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy {
            addr,
            counters,
            stop,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn forward(
    a: TcpStream,
    b: TcpStream,
    f: Faults,
    seed: u64,
    c: &Arc<Counters>,
    stop: &Arc<AtomicBool>,
) {
    for (src, dst, s) in [(&a, &b, seed), (&b, &a, !seed)] {
        let (Ok(src), Ok(dst)) = (src.try_clone(), dst.try_clone()) else {
            return;
        };
        pump(src, dst, f, s, c.clone(), stop.clone());
    }
}

/// One direction: a reader thread stamps each chunk with its due time, a writer thread
/// delivers it then; a queue of 256 chunks between them pauses the reader when full.
fn pump(
    mut src: TcpStream,
    mut dst: TcpStream,
    f: Faults,
    seed: u64,
    c: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let (tx, rx) = sync_channel::<(Instant, Vec<u8>)>(256);
    std::thread::spawn(move || {
        for (at, data) in rx {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if dst.write_all(&data).is_err() {
                break;
            }
        }
        let _ = dst.shutdown(Shutdown::Both);
    });
    std::thread::spawn(move || {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut last = Instant::now();
        let _ = src.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = vec![0u8; 16 * 1024];
        while !stop.load(Ordering::Relaxed) {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(_) => break,
            };
            let mut d = f.delay;
            if !f.jitter.is_zero() {
                let j = rng.random_range(0..=2 * f.jitter.as_micros() as u64);
                d = (d + Duration::from_micros(j)).saturating_sub(f.jitter);
            }
            if f.loss > 0.0 && rng.random_bool(f.loss) {
                d += f.rto;
                c.stalls.fetch_add(1, Ordering::Relaxed);
            }
            if f.hold > 0.0 && rng.random_bool(f.hold) {
                d += f.holdfor;
                c.holds.fetch_add(1, Ordering::Relaxed);
            }
            let at = (Instant::now() + d).max(last);
            last = at;
            c.chunks.fetch_add(1, Ordering::Relaxed);
            if tx.send((at, buf[..n].to_vec())).is_err() {
                break;
            }
        }
        let _ = src.shutdown(Shutdown::Both);
    });
}
