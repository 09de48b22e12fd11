//! Byte streams for shards: TCP (accepted or dialed) and the in-memory pipe, behind one type.
//!
//! Reads and writes pass buffers by ownership and get them back with the result, the way
//! completion-based I/O needs: the kernel may write into a read buffer until the operation
//! completes, so the buffer must not be borrowed from the caller's stack. A [`Stream`] is a
//! cheap handle: clones refer to the same socket, so one task can read while another writes.
//!
//! Inbound TCP is spread over shards with `SO_REUSEPORT`: [`bind_group`] binds one listening
//! socket per shard on the same address and the kernel balances new connections between them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use compio::io::AsyncWriteExt;

use super::memory::MemoryEnd;

#[derive(Clone)]
enum Inner {
    Tcp(compio::net::TcpStream),
    Memory(MemoryEnd),
}

/// A connected byte stream owned by one shard.
#[derive(Clone)]
pub(crate) struct Stream {
    inner: Inner,
}

impl Stream {
    /// Wraps one end of an in-memory pipe.
    pub(crate) fn memory(end: MemoryEnd) -> Self {
        Stream {
            inner: Inner::Memory(end),
        }
    }

    /// Sets `TCP_NOTSENT_LOWAT` on a TCP stream: the kernel then takes new bytes only while
    /// fewer than `bytes` of those already written are still unsent, so a write waits in the
    /// shard (where priorities still apply) instead of in the socket buffer. No effect on
    /// in-memory streams.
    pub(crate) fn set_notsent_lowat(&self, bytes: u32) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => socket2::SockRef::from(s).set_tcp_notsent_lowat(bytes),
            Inner::Memory(_) => Ok(()),
        }
    }

    /// Resets a TCP stream at once, dropping what it still holds to send: a `connect` to an
    /// `AF_UNSPEC` address disconnects a TCP socket (Linux's `tcp_disconnect`: an RST to the
    /// peer, the send and retransmit queues freed). For a closing connection whose peer has
    /// not taken its last bytes within the close grace (a black hole, a stopped process):
    /// otherwise the kernel keeps those bytes until TCP gives up retransmitting (about 15
    /// minutes by default), and on io_uring a zero-copy send's buffer release, which comes
    /// only when the kernel frees them, keeps the descriptor open as long. No effect on
    /// in-memory streams.
    pub(crate) fn reset(&self) {
        if let Inner::Tcp(s) = &self.inner {
            use std::os::fd::{AsFd, AsRawFd};
            let fd = s.as_fd().as_raw_fd();
            let unspec = libc::sockaddr {
                sa_family: libc::AF_UNSPEC as libc::sa_family_t,
                sa_data: [0; 14],
            };
            // SAFETY: `fd` is this stream's socket, open for the duration of the call (`s`
            // holds it), and `unspec` is a valid `sockaddr` of the length passed; `connect`
            // keeps neither. A failure leaves the socket as it was, which is all we can do.
            let _ = unsafe {
                libc::connect(fd, &unspec, size_of::<libc::sockaddr>() as libc::socklen_t)
            };
        }
    }

    /// Whether a TCP stream's peer is on this host: a loopback address, or the stream's own
    /// local address. The kernel delivers such a stream's bytes to a local socket, where a
    /// zero-copy send's pages are copied anyway (Linux's deferred copy), after being pinned
    /// and before their release is signalled: zero-copy only costs there. False for the
    /// in-memory pipe, and where an address cannot be read.
    pub(crate) fn is_local_tcp(&self) -> bool {
        let Inner::Tcp(s) = &self.inner else {
            return false;
        };
        let (Ok(local), Ok(peer)) = (s.local_addr(), s.peer_addr()) else {
            return false;
        };
        let peer = peer.ip().to_canonical();
        peer.is_loopback() || peer == local.ip().to_canonical()
    }

    /// Sets `SO_RCVBUF` on a TCP stream (which also turns off the kernel's receive-buffer
    /// autotuning for it): bounds the bytes the peer can have in flight to us. No effect on
    /// in-memory streams.
    pub(crate) fn set_recv_buffer(&self, bytes: usize) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => socket2::SockRef::from(s).set_recv_buffer_size(bytes),
            Inner::Memory(_) => Ok(()),
        }
    }

    /// Reads into the spare capacity of `buf` (appending after its length). `Ok(0)` is end of
    /// stream.
    pub(crate) async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match &self.inner {
            Inner::Tcp(s) => {
                let mut r = s;
                let compio::BufResult(res, buf) = compio::io::AsyncRead::read(&mut r, buf).await;
                (res, buf)
            }
            Inner::Memory(m) => m.read(buf).await,
        }
    }

    /// Reads into a buffer the runtime lends (on io_uring, from the shard's provided-buffer
    /// ring, so an idle connection holds no read buffer) and hands the bytes to `f`; the buffer
    /// goes back to the pool when `f` returns. `Ok(None)` is end of stream. An error of kind
    /// `ResourceBusy` means every pooled buffer is in use: try again shortly.
    pub(crate) async fn read_lent<R>(
        &self,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> io::Result<Option<R>> {
        match &self.inner {
            Inner::Tcp(s) => {
                let mut r = s;
                match compio::io::AsyncReadManaged::read_managed(&mut r, len).await? {
                    Some(buf) if !buf.is_empty() => Ok(Some(f(&buf))),
                    _ => Ok(None),
                }
            }
            Inner::Memory(m) => {
                let (res, buf) = m.read(Vec::with_capacity(len.max(1))).await;
                match res? {
                    0 => Ok(None),
                    _ => Ok(Some(f(&buf))),
                }
            }
        }
    }

    /// Starts a multishot receive into the shard's provided-buffer ring (io_uring): one
    /// submission keeps delivering received bytes until it is stopped, the stream ends or the
    /// ring runs dry. `on_arm` runs each time a receive is submitted. `None` for streams
    /// without one (the in-memory pipe).
    pub(crate) fn recv_multi(
        &self,
        len: usize,
        on_arm: impl Fn() + Unpin + 'static,
    ) -> Option<MultiRecv> {
        use compio::driver::ToSharedFd as _;
        use compio::driver::op::{RecvFlags, RecvMulti};
        match &self.inner {
            Inner::Tcp(s) => {
                let fd = s.to_shared_fd();
                let rt = compio::runtime::Runtime::current();
                // Re-created (re-armed) by the stream itself whenever the kernel ends one.
                let stream = compio::runtime::SubmitMultiStream::new(move || {
                    let pool = rt.buffer_pool()?;
                    let op = RecvMulti::new(fd.clone(), &pool, len, RecvFlags::empty())?;
                    on_arm();
                    Ok(rt.submit_multi(op).into_managed(pool))
                });
                Some(MultiRecv {
                    stream: Box::pin(stream),
                })
            }
            Inner::Memory(_) => None,
        }
    }

    /// Writes all of `buf`.
    pub(crate) async fn write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match &self.inner {
            Inner::Tcp(s) => {
                let mut w = s;
                let compio::BufResult(res, buf) =
                    super::submit::submitted_at_once(w.write_all(buf)).await;
                (res, buf)
            }
            Inner::Memory(m) => m.write_all(buf).await,
        }
    }

    /// Writes all of `buf` with zero-copy sends (`IORING_OP_SEND_ZC` on io_uring: the kernel
    /// sends from `buf` itself and later says it is done with it). A send returns once its
    /// bytes are queued on the socket, so order is kept; the kernel's release of the buffer is
    /// awaited later through `in_flight`, which holds at most its depth of them (on a real
    /// network the release comes only with the peer's ACK, so waiting for each one before the
    /// next send would cost a round trip per write). The in-memory pipe copies.
    pub(crate) async fn write_all_zc(
        &self,
        buf: bytes::Bytes,
        in_flight: &mut ZcInFlight,
    ) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => {
                let mut w = s;
                let mut pos = 0;
                while pos < buf.len() {
                    let compio::BufResult(res, ready) =
                        compio::io::AsyncWriteZerocopy::write_zerocopy(&mut w, buf.slice(pos..))
                            .await;
                    in_flight.push(ready).await;
                    match res {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => pos = pos.saturating_add(n),
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Inner::Memory(m) => m.write_all(buf.to_vec()).await.0,
        }
    }

    /// Closes the sending direction (TCP FIN); reading continues until the peer closes.
    pub(crate) async fn shutdown_write(&self) {
        match &self.inner {
            // A direct `shutdown(2)`: it never blocks on TCP (it queues the FIN), whereas
            // io_uring's shutdown operation is always handed to a kernel worker thread, a
            // wake-up and two context switches per closing connection. The peer may already
            // be gone; there is nothing to do about a failed FIN.
            Inner::Tcp(s) => {
                let _ = socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write);
            }
            Inner::Memory(m) => m.shutdown_write(),
        }
    }
}

/// Zero-copy sends whose buffers the kernel still holds (see [`Stream::write_all_zc`]).
pub(crate) struct ZcInFlight {
    pending: std::collections::VecDeque<std::pin::Pin<Box<dyn Future<Output = ()>>>>,
    depth: usize,
}

impl ZcInFlight {
    /// Holds at most `depth` (at least 1) unreleased sends.
    pub(crate) fn new(depth: usize) -> Self {
        ZcInFlight {
            pending: std::collections::VecDeque::new(),
            depth: depth.max(1),
        }
    }

    async fn push<F: Future + 'static>(&mut self, released: F) {
        self.pending.push_back(Box::pin(async move {
            let _ = released.await;
        }));
        while self.pending.len() > self.depth {
            self.release_oldest().await;
        }
    }

    /// Waits until the kernel has released every buffer.
    ///
    /// Cancel-safe: a send leaves `self` only once its release has come, so dropping this
    /// future (the writer does, when new work arrives while it waits) loses none. A release
    /// lost here would leave its send to the runtime, holding the socket's descriptor until
    /// the kernel frees the bytes, while the connection believed nothing was in flight.
    pub(crate) async fn drain(&mut self) {
        while !self.pending.is_empty() {
            self.release_oldest().await;
        }
    }

    /// Waits for the oldest send's release, then forgets it; the send stays held until then.
    async fn release_oldest(&mut self) {
        if let Some(oldest) = self.pending.front_mut() {
            oldest.as_mut().await;
            self.pending.pop_front();
        }
    }

    /// How many sends still await their release.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.len()
    }
}

/// A listening socket registered with the current shard's runtime.
pub(crate) struct Listener(compio::net::TcpListener);

impl Listener {
    /// Registers a listening socket from [`bind_group`] with the current shard.
    pub(crate) fn from_std(l: std::net::TcpListener) -> io::Result<Self> {
        compio::net::TcpListener::from_std(l).map(Listener)
    }

    /// Accepts one connection, to be admitted or refused.
    pub(crate) async fn accept(&self) -> io::Result<(Accepted, SocketAddr)> {
        let (s, addr) = self.0.accept().await?;
        Ok((Accepted(s), addr))
    }
}

/// A connection just accepted, before the node decides about it.
pub(crate) struct Accepted(compio::net::TcpStream);

impl Accepted {
    /// Admits it: a [`Stream`] with `TCP_NODELAY` set (latency matters more than packet
    /// count: records are already coalesced).
    pub(crate) fn admit(self) -> Stream {
        let _ = self.0.set_nodelay(true);
        Stream {
            inner: Inner::Tcp(self.0),
        }
    }

    /// Refuses it: closes with a reset (`SO_LINGER` 0), so neither side runs the FIN exchange
    /// or keeps a closing socket for a connection the node never wanted, which halves what a
    /// flood of refused connections costs the node.
    pub(crate) fn refuse(self) {
        let _ = socket2::SockRef::from(&self.0).set_linger(Some(std::time::Duration::ZERO));
    }
}

/// Binds `count` listening sockets on `addr` with `SO_REUSEPORT`, one per shard. Port 0 picks
/// a free port once; every socket then binds that port.
pub(crate) fn bind_group(
    addr: SocketAddr,
    count: usize,
    backlog: i32,
) -> io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let l = bind_one(addr, backlog)?;
        addr = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

fn bind_one(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Connects to `addr` from the current shard, failing with `TimedOut` at `deadline`.
pub(crate) async fn connect(addr: SocketAddr, deadline: Instant) -> io::Result<Stream> {
    match super::time::timeout_at(deadline, compio::net::TcpStream::connect(addr)).await {
        Some(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(Stream {
                inner: Inner::Tcp(s),
            })
        }
        Some(Err(e)) => Err(e),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect to {addr} timed out"),
        )),
    }
}

type BufStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<BufferRef>>>>;

use compio::driver::BufferRef;

/// A multishot receive in progress (see [`Stream::recv_multi`]).
///
/// The kernel keeps delivering into the shard's provided-buffer ring while the receive is
/// armed. When the ring runs dry it ends the receive with `ENOBUFS`
/// ([`io::ErrorKind::ResourceBusy`] here) and the next call to [`MultiRecv::next`] re-arms it.
/// There is no stop: the runtime drops what a cancelled operation had delivered, so dropping
/// a `MultiRecv` loses bytes. Drop it only when the connection is finished, and use it only
/// for connections that always take their input.
pub(crate) struct MultiRecv {
    stream: BufStream,
}

impl MultiRecv {
    /// Waits for received bytes and hands them to `f` (the buffer goes back to the ring when
    /// `f` returns). `Ok(None)` is end of stream.
    pub(crate) async fn next<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> io::Result<Option<R>> {
        match futures_util::StreamExt::next(&mut self.stream).await {
            Some(Ok(buf)) => Ok(Some(f(&buf))),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }
}

/// Whether the kernel delivers a multishot receive natively (Linux 6.0 or newer); older
/// kernels run each receive as a single shot, which works but saves nothing.
pub(crate) fn multishot_recv_native() -> bool {
    kernel_at_least(6, 0)
}

/// Whether the running kernel is at least `major.minor` (false when that cannot be told).
#[cfg(target_os = "linux")]
pub(crate) fn kernel_at_least(major: u32, minor: u32) -> bool {
    // SAFETY: `uname` only writes into the zeroed struct we pass; `release` is NUL-terminated
    // by the kernel.
    let release = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return false;
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    have >= (major, minor)
}

/// Whether the running kernel is at least `major.minor` (never off Linux).
#[cfg(not(target_os = "linux"))]
pub(crate) fn kernel_at_least(_major: u32, _minor: u32) -> bool {
    false
}

/// Zero-copy sends a connection keeps unreleased at most.
pub(crate) const ZC_DEPTH: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::driver::DriverKind;
    use crate::rt::thread::{ThreadSpec, spawn_shard_thread};
    use std::time::{Duration, Instant};

    use futures_util::FutureExt;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Queues a send whose release comes once `done` is set; returns whether `push` finished
    /// at once (false: it waits for an older release, and is dropped here).
    fn push_released_when(in_flight: &mut ZcInFlight, done: &Rc<Cell<bool>>) -> bool {
        let done = done.clone();
        let released = std::future::poll_fn(move |_| {
            if done.get() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        });
        in_flight.push(released).now_or_never().is_some()
    }

    /// The writer drops `drain` whenever new work comes while it waits for releases: the send
    /// being waited for must stay held, or the connection would finish believing the kernel
    /// holds nothing of it (a black-holed peer's descriptor then outlived its connection).
    #[test]
    fn dropping_a_drain_keeps_the_send_it_was_waiting_for() {
        let (first, second) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let mut in_flight = ZcInFlight::new(4);
        assert!(push_released_when(&mut in_flight, &first));
        assert!(push_released_when(&mut in_flight, &second));
        assert!(
            in_flight.drain().now_or_never().is_none(),
            "nothing released"
        );
        assert_eq!(in_flight.len(), 2, "a dropped drain keeps both sends");
        first.set(true);
        assert!(in_flight.drain().now_or_never().is_none(), "one released");
        assert_eq!(in_flight.len(), 1, "only the released send is forgotten");
        second.set(true);
        assert!(in_flight.drain().now_or_never().is_some());
        assert_eq!(in_flight.len(), 0);
    }

    /// A full `push` waits for the oldest release without losing it when dropped.
    #[test]
    fn dropping_a_full_push_keeps_every_send() {
        let done = Rc::new(Cell::new(false));
        let mut in_flight = ZcInFlight::new(1);
        assert!(push_released_when(&mut in_flight, &done));
        assert!(
            !push_released_when(&mut in_flight, &done),
            "over its depth, push waits"
        );
        assert_eq!(in_flight.len(), 2);
        done.set(true);
        assert!(in_flight.drain().now_or_never().is_some());
        assert_eq!(in_flight.len(), 0);
    }

    /// Sends `total` bytes in writes of `size` over loopback on a fresh shard thread, with
    /// zero-copy sends or plain ones; returns MB/s.
    fn loopback_rate(kind: DriverKind, size: usize, total: usize, zc: bool) -> f64 {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spec = ThreadSpec {
            name: "zc-measure".into(),
            kind,
            cpu: None,
            ring_entries: 256,
            read_pool: None,
            refuse_read_pool: false,
        };
        let handle = spawn_shard_thread(spec, move || async move {
            let listener = bind_group("127.0.0.1:0".parse().unwrap(), 1, 16)
                .unwrap()
                .remove(0);
            let addr = listener.local_addr().unwrap();
            let reader = std::thread::spawn(move || {
                use std::io::Read;
                listener.set_nonblocking(false).unwrap();
                let (mut s, _) = listener.accept().unwrap();
                s.set_nonblocking(false).unwrap();
                let mut buf = vec![0u8; 1 << 20];
                let mut got = 0usize;
                while got < total {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                got
            });
            let stream = connect(addr, Instant::now() + Duration::from_secs(5))
                .await
                .unwrap();
            let mut buf = vec![0x5Au8; size];
            let shared = bytes::Bytes::from(buf.clone());
            let mut in_flight = ZcInFlight::new(ZC_DEPTH);
            let start = Instant::now();
            let mut sent = 0usize;
            while sent < total {
                if zc {
                    stream
                        .write_all_zc(shared.clone(), &mut in_flight)
                        .await
                        .unwrap();
                } else {
                    let (res, b) = stream.write_all(buf).await;
                    buf = b;
                    res.unwrap();
                }
                sent += size;
            }
            in_flight.drain().await;
            let got = reader.join().unwrap();
            let secs = start.elapsed().as_secs_f64();
            assert!(got >= total);
            let _ = tx.send(sent as f64 / secs / 1e6);
        })
        .unwrap();
        let rate = rx.recv().unwrap();
        handle.join().unwrap();
        rate
    }

    /// The zero-copy threshold measurement behind `Limits::send_zc_threshold`: plain sends
    /// against `SEND_ZC` per write size, on the io_uring driver, over loopback. Prints numbers,
    /// asserts nothing: `cargo test --release -p ringwire --lib send_zc_threshold -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn send_zc_threshold() {
        if super::super::driver::probe().is_err() || !super::super::driver::send_zc_supported() {
            eprintln!("io_uring or its zero-copy send unavailable: nothing to measure");
            return;
        }
        for size in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
            let total = (256 << 20).max(size * 64);
            let mut plain = Vec::new();
            let mut zc = Vec::new();
            for _ in 0..3 {
                plain.push(loopback_rate(DriverKind::IoUring, size, total, false));
                zc.push(loopback_rate(DriverKind::IoUring, size, total, true));
            }
            plain.sort_by(f64::total_cmp);
            zc.sort_by(f64::total_cmp);
            println!(
                "write size {:>7} B: plain send {:>7.0} MB/s, send_zc {:>7.0} MB/s (medians of 3)",
                size, plain[1], zc[1]
            );
        }
    }

    #[test]
    fn zero_copy_writes_deliver_every_byte() {
        for kind in [DriverKind::IoUring, DriverKind::Epoll] {
            if kind == DriverKind::IoUring
                && (super::super::driver::probe().is_err()
                    || !super::super::driver::send_zc_supported())
            {
                continue;
            }
            let rate = loopback_rate(kind, 100_003, 4 << 20, true);
            assert!(rate > 0.0);
        }
    }
}
