//! Byte streams for shards: TCP (accepted or dialed) and the in-memory pipe, behind one type.
//!
//! Reads and writes pass buffers by ownership and get them back with the result, the way
//! completion-based I/O needs: the kernel may write into a read buffer until the operation
//! completes, so the buffer must not be borrowed from the caller's stack. A [`Stream`] is a
//! cheap handle: clones refer to the same socket, so one task can read while another writes.
//!
//! Inbound TCP is spread over shards with `SO_REUSEPORT`: [`bind_group`] binds one listening
//! socket per shard on the same address and the kernel balances new connections between them.

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
                let compio::BufResult(res, buf) = w.write_all(buf).await;
                (res, buf)
            }
            Inner::Memory(m) => m.write_all(buf).await,
        }
    }

    /// Closes the sending direction (TCP FIN); reading continues until the peer closes.
    pub(crate) async fn shutdown_write(&self) {
        match &self.inner {
            Inner::Tcp(s) => {
                let mut w = s;
                // The peer may already be gone; there is nothing to do about a failed FIN.
                let _ = compio::io::AsyncWrite::shutdown(&mut w).await;
            }
            Inner::Memory(m) => m.shutdown_write(),
        }
    }
}

/// A listening socket registered with the current shard's runtime.
pub(crate) struct Listener(compio::net::TcpListener);

impl Listener {
    /// Registers a listening socket from [`bind_group`] with the current shard.
    pub(crate) fn from_std(l: std::net::TcpListener) -> io::Result<Self> {
        compio::net::TcpListener::from_std(l).map(Listener)
    }

    /// Accepts one connection (with `TCP_NODELAY` set).
    pub(crate) async fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        let (s, addr) = self.0.accept().await?;
        // Latency matters more than packet count: records are already coalesced.
        let _ = s.set_nodelay(true);
        Ok((
            Stream {
                inner: Inner::Tcp(s),
            },
            addr,
        ))
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
#[cfg(target_os = "linux")]
pub(crate) fn multishot_recv_native() -> bool {
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
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    major >= 6
}

/// Whether the kernel delivers a multishot receive natively (never off Linux).
#[cfg(not(target_os = "linux"))]
pub(crate) fn multishot_recv_native() -> bool {
    false
}
