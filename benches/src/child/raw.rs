//! Raw TCP: the physical limit of this machine's loopback, with the same message sizes.
//!
//! Plain `std::net` sockets, no encryption, no multiplexing. Framing:
//!
//! - `bulk` and `fanout`: each message is a little-endian `u32` length and the payload. The
//!   batching sender writes as many whole frames as fit in 64 KiB with one `write`; with
//!   `--per-message-write` it issues one `write` per message. The receiver reads into a 256 KiB
//!   buffer and walks the frames without copying the payload.
//! - `latency`: frames carry a channel byte before the length (0 = request/response, 1 = load).
//!   By default the requests and the load each get their own connection (the first byte of a
//!   connection says which: `P` or `B`), so a request never waits behind load bytes in a socket
//!   buffer: that is the best a transport can do. With `--interleaved` both share one connection
//!   (first byte `I`): a request waits for the load frame being written and then for every byte
//!   already queued in the kernel, which is what a single connection without priorities costs.
//! - `handshake`: connect; the receiver accepts and closes first; the sender reads the end of
//!   stream and closes (so `TIME_WAIT` stays on the receiver's side and the sender's ports are
//!   free again at once). The TCP handshake and teardown are all there is.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    ChildArgs, ChildReport, Load, Window, announce, fill_payload, measure_handshakes,
    measure_latency, print_result, rss_kib,
};

/// Largest frame a raw receiver accepts; anything larger is a framing error.
const MAX_FRAME: usize = 16 << 20;
/// Receive buffer size.
const READ_BUF: usize = 256 << 10;
/// The batching sender fills this many bytes per `write`.
const BATCH_BYTES: usize = 64 << 10;
/// Channel byte of latency frames.
const CH_REQUEST: u8 = 0;
const CH_LOAD: u8 = 1;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn listen(args: &ChildArgs) -> io::Result<TcpListener> {
    let l = TcpListener::bind(&args.listen)?;
    // std listens with a backlog of 128; a second listen(2) raises it (Linux allows that).
    let backlog = nix::sys::socket::Backlog::new(4096).map_err(io::Error::from)?;
    nix::sys::socket::listen(&l, backlog).map_err(io::Error::from)?;
    announce(&l.local_addr()?.to_string());
    Ok(l)
}

fn dial(args: &ChildArgs) -> io::Result<TcpStream> {
    let addr = args
        .addr
        .as_deref()
        .ok_or_else(|| bad("send needs --addr"))?;
    TcpStream::connect(addr)
}

/// Runs the receiving side.
pub fn recv(args: &ChildArgs) -> io::Result<()> {
    match args.scenario {
        super::Workload::Bulk => bulk_recv(args),
        super::Workload::Latency => latency_recv(args),
        super::Workload::Handshake => handshake_recv(args),
        super::Workload::Fanout => fanout_recv(args),
        super::Workload::S9 => Err(super::not_a_pair()),
    }
}

/// Runs the sending side.
pub fn send(args: &ChildArgs) -> io::Result<()> {
    match args.scenario {
        super::Workload::Bulk => bulk_send(args),
        super::Workload::Latency => latency_send(args),
        super::Workload::Handshake => handshake_send(args),
        super::Workload::Fanout => fanout_send(args),
        super::Workload::S9 => Err(super::not_a_pair()),
    }
}

/// Counts length-prefixed frames in a byte stream without copying payloads.
#[derive(Debug, Default)]
pub struct FrameCounter {
    header: [u8; 4],
    header_len: usize,
    current: usize,
    remaining: usize,
    /// Complete messages seen.
    pub messages: u64,
    /// Payload bytes of the complete messages.
    pub bytes: u64,
}

impl FrameCounter {
    /// Consumes `data`; fails on a frame longer than the limit.
    pub fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                if self.remaining == 0 {
                    self.complete();
                }
                continue;
            }
            let n = (4 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 4 {
                self.header_len = 0;
                let len = u32::from_le_bytes(self.header) as usize;
                if len > MAX_FRAME {
                    return Err(bad(format!("frame of {len} bytes exceeds {MAX_FRAME}")));
                }
                self.current = len;
                self.remaining = len;
                if len == 0 {
                    self.complete();
                }
            }
        }
        Ok(())
    }

    fn complete(&mut self) {
        self.messages += 1;
        self.bytes += self.current as u64;
    }
}

/// `batch` whole frames of `size` bytes back to back.
fn frames(args: &ChildArgs, size: usize, batch: usize) -> io::Result<Vec<u8>> {
    let len = u32::try_from(size).map_err(|_| bad("message too large"))?;
    let mut payload = vec![0u8; size];
    let mut out = Vec::with_capacity(batch * (size + 4));
    for i in 0..batch {
        fill_payload(&mut payload, args.payload, i as u64);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&payload);
    }
    Ok(out)
}

fn bulk_recv(args: &ChildArgs) -> io::Result<()> {
    let (mut s, _) = listen(args)?.accept()?;
    let mut buf = vec![0u8; READ_BUF];
    let mut counter = FrameCounter::default();
    let mut window = Window::new(args.warmup(), args.duration());
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(bad("sender closed before the window ended"));
        }
        counter.feed(&buf[..n])?;
        if let Some(r) = window.observe(Instant::now(), counter.messages, counter.bytes) {
            print_result(&r);
            return Ok(());
        }
    }
}

fn bulk_send(args: &ChildArgs) -> io::Result<()> {
    let mut s = dial(args)?;
    let per_write = if args.per_message_write {
        1
    } else {
        (BATCH_BYTES / (args.size + 4)).max(1)
    };
    let buf = frames(args, args.size, per_write)?;
    let mut sent = 0u64;
    // The receiver hangs up when its window is over; that ends the run.
    while s.write_all(&buf).is_ok() {
        sent += per_write as u64;
    }
    print_result(&ChildReport {
        total_messages: sent,
        total_bytes: sent * args.size as u64,
        ..ChildReport::default()
    });
    Ok(())
}

/// A latency frame: channel byte, length, payload.
fn latency_frame(ch: u8, payload: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).map_err(|_| bad("message too large"))?;
    let mut f = Vec::with_capacity(payload.len() + 5);
    f.push(ch);
    f.extend_from_slice(&len.to_le_bytes());
    f.extend_from_slice(payload);
    Ok(f)
}

/// Reads one latency frame into `buf` (resized to fit); returns its channel.
fn read_latency_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<u8> {
    let mut h = [0u8; 5];
    r.read_exact(&mut h)?;
    let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
    if len > MAX_FRAME {
        return Err(bad(format!("frame of {len} bytes exceeds {MAX_FRAME}")));
    }
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(h[0])
}

fn latency_recv(args: &ChildArgs) -> io::Result<()> {
    let l = listen(args)?;
    let load_bytes = Arc::new(AtomicU64::new(0));
    loop {
        let (mut s, _) = l.accept()?;
        s.set_nodelay(true)?;
        let mut tag = [0u8; 1];
        s.read_exact(&mut tag)?;
        match tag[0] {
            b'B' => {
                let load_bytes = Arc::clone(&load_bytes);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; READ_BUF];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        load_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
            b'P' | b'I' => {
                let pings = echo(s, &load_bytes);
                print_result(&ChildReport {
                    total_messages: pings,
                    total_bytes: load_bytes.load(Ordering::Relaxed),
                    ..ChildReport::default()
                });
                // The requester has finished; the load connection may still be open.
                std::process::exit(0);
            }
            other => return Err(bad(format!("unknown connection tag {other}"))),
        }
    }
}

/// Echoes request frames until end of stream; load frames on the same connection are dropped.
fn echo(s: TcpStream, load_bytes: &AtomicU64) -> u64 {
    let Ok(mut w) = s.try_clone() else { return 0 };
    let mut r = BufReader::with_capacity(READ_BUF, s);
    let mut buf = Vec::new();
    let mut pings = 0;
    while let Ok(ch) = read_latency_frame(&mut r, &mut buf) {
        if ch == CH_REQUEST {
            let Ok(f) = latency_frame(CH_REQUEST, &buf) else {
                break;
            };
            if w.write_all(&f).is_err() {
                break;
            }
            pings += 1;
        } else {
            load_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
    }
    pings
}

fn latency_send(args: &ChildArgs) -> io::Result<()> {
    let mut ping = dial(args)?;
    ping.set_nodelay(true)?;
    ping.write_all(if args.interleaved { b"I" } else { b"P" })?;
    let writer = Arc::new(Mutex::new(ping.try_clone()?));
    let ping_waiting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let load_sent = Arc::new(AtomicU64::new(0));
    if args.load == Load::Bulk {
        let mut payload = vec![0u8; args.bulk_size];
        fill_payload(&mut payload, args.payload, 0);
        let frame = latency_frame(CH_LOAD, &payload)?;
        let (stop, load_sent) = (Arc::clone(&stop), Arc::clone(&load_sent));
        if args.interleaved {
            let (writer, ping_waiting) = (Arc::clone(&writer), Arc::clone(&ping_waiting));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Step aside while a request waits, so the lock is not starved.
                    while ping_waiting.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    let Ok(mut w) = writer.lock() else { break };
                    if w.write_all(&frame).is_err() {
                        break;
                    }
                    load_sent.fetch_add(load_payload_len(&frame), Ordering::Relaxed);
                }
            });
        } else {
            let mut bulk = dial(args)?;
            bulk.write_all(b"B")?;
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if bulk.write_all(&frame).is_err() {
                        break;
                    }
                    load_sent.fetch_add(load_payload_len(&frame), Ordering::Relaxed);
                }
            });
        }
    }
    let mut reader = BufReader::new(ping);
    let mut reply = Vec::new();
    let round_trip = |req: &[u8]| -> io::Result<Duration> {
        let frame = latency_frame(CH_REQUEST, req)?;
        let t0 = Instant::now();
        ping_waiting.store(true, Ordering::Release);
        {
            let mut w = writer.lock().map_err(|_| bad("writer lock poisoned"))?;
            ping_waiting.store(false, Ordering::Release);
            w.write_all(&frame)?;
        }
        loop {
            let ch = read_latency_frame(&mut reader, &mut reply)?;
            if ch == CH_REQUEST && reply.len() >= 8 && reply[..8] == req[..8] {
                return Ok(t0.elapsed());
            }
        }
    };
    measure_latency(args, &stop, &load_sent, round_trip)?;
    std::process::exit(0);
}

/// Payload bytes of a latency frame.
fn load_payload_len(frame: &[u8]) -> u64 {
    frame.len().saturating_sub(5) as u64
}

fn handshake_recv(args: &ChildArgs) -> io::Result<()> {
    // Runs until the harness ends it once the sender has reported.
    let l = listen(args)?;
    loop {
        // A connection the peer already dropped is no error here.
        if let Ok((s, _)) = l.accept() {
            drop(s);
        }
    }
}

fn handshake_send(args: &ChildArgs) -> io::Result<()> {
    let once = || -> io::Result<()> {
        let mut s = dial(args)?;
        // The receiver closes first, so TIME_WAIT stays on its side and this side's local
        // ports are free again at once.
        let mut b = [0u8; 1];
        while s.read(&mut b)? > 0 {}
        Ok(())
    };
    let mut done = 0u64;
    let once = || {
        once().map_err(|e| io::Error::new(e.kind(), format!("after {done} connections: {e}")))?;
        done += 1;
        Ok::<(), io::Error>(())
    };
    measure_handshakes(args, once)
}

fn fanout_recv(args: &ChildArgs) -> io::Result<()> {
    let l = listen(args)?;
    let messages = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    for _ in 0..args.peers {
        let (mut s, _) = l.accept()?;
        let (messages, bytes) = (Arc::clone(&messages), Arc::clone(&bytes));
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                let mut buf = vec![0u8; 16 << 10];
                let mut counter = FrameCounter::default();
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let (m0, b0) = (counter.messages, counter.bytes);
                    if counter.feed(&buf[..n]).is_err() {
                        break;
                    }
                    messages.fetch_add(counter.messages - m0, Ordering::Relaxed);
                    bytes.fetch_add(counter.bytes - b0, Ordering::Relaxed);
                }
            })?;
    }
    let mut window = Window::new(args.warmup(), args.duration());
    loop {
        std::thread::sleep(Duration::from_millis(1));
        let (m, b) = (
            messages.load(Ordering::Relaxed),
            bytes.load(Ordering::Relaxed),
        );
        if let Some(mut r) = window.observe(Instant::now(), m, b) {
            r.connections = args.peers as u64;
            print_result(&r);
            std::process::exit(0);
        }
    }
}

fn fanout_send(args: &ChildArgs) -> io::Result<()> {
    let base = rss_kib();
    let mut conns = Vec::with_capacity(args.peers);
    for _ in 0..args.peers {
        conns.push(dial(args)?);
    }
    let connected = rss_kib();
    let frame = frames(args, args.size, 1)?;
    let mut sent = 0u64;
    'broadcast: loop {
        for s in &mut conns {
            if s.write_all(&frame).is_err() {
                break 'broadcast;
            }
        }
        sent += conns.len() as u64;
    }
    print_result(&ChildReport {
        total_messages: sent,
        connections: conns.len() as u64,
        rss_base_kib: base,
        rss_kib: connected,
        ..ChildReport::default()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counter_handles_split_headers_and_payloads() {
        let args = crate::child::tests_support::args();
        let stream = frames(&args, 10, 3).expect("frames");
        for split in 1..stream.len() {
            let mut c = FrameCounter::default();
            for chunk in stream.chunks(split) {
                c.feed(chunk).expect("valid stream");
            }
            assert_eq!((c.messages, c.bytes), (3, 30), "chunk size {split}");
        }
    }

    #[test]
    fn frame_counter_rejects_oversized_frames() {
        let mut c = FrameCounter::default();
        let len = (MAX_FRAME as u32 + 1).to_le_bytes();
        assert!(c.feed(&len).is_err());
    }

    #[test]
    fn latency_frames_round_trip() {
        let f = latency_frame(CH_LOAD, b"hello").expect("frame");
        let mut buf = Vec::new();
        let ch = read_latency_frame(&mut &f[..], &mut buf).expect("read");
        assert_eq!((ch, &buf[..]), (CH_LOAD, &b"hello"[..]));
    }
}
