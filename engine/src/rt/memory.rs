//! An in-memory duplex byte pipe: a whole node pair runs in tests without sockets.
//!
//! Each direction is a bounded byte queue guarded by a mutex, so the two ends may live on
//! different threads (and different runtimes). A writer waits while the queue is full, which
//! gives the same backpressure a TCP socket gives. Dropping every handle of one end closes it:
//! the other end reads end-of-stream and its writes fail with `BrokenPipe`.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

#[derive(Default)]
struct Direction {
    bytes: VecDeque<u8>,
    writer_closed: bool,
    reader_closed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

struct Queue {
    state: Mutex<Direction>,
    capacity: usize,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Direction> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct EndInner {
    rx: Arc<Queue>,
    tx: Arc<Queue>,
}

impl Drop for EndInner {
    fn drop(&mut self) {
        let w = {
            let mut tx = self.tx.lock();
            tx.writer_closed = true;
            tx.read_waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
        let w = {
            let mut rx = self.rx.lock();
            rx.reader_closed = true;
            rx.write_waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// One end of an in-memory duplex pipe. Clones share the end.
#[derive(Clone)]
pub(crate) struct MemoryEnd(Arc<EndInner>);

impl std::fmt::Debug for MemoryEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryEnd")
    }
}

/// Two connected ends; each direction buffers at most `capacity` bytes.
pub(crate) fn memory_pipe(capacity: usize) -> (MemoryEnd, MemoryEnd) {
    let capacity = capacity.max(1);
    let ab = Arc::new(Queue {
        state: Mutex::new(Direction::default()),
        capacity,
    });
    let ba = Arc::new(Queue {
        state: Mutex::new(Direction::default()),
        capacity,
    });
    (
        MemoryEnd(Arc::new(EndInner {
            rx: ba.clone(),
            tx: ab.clone(),
        })),
        MemoryEnd(Arc::new(EndInner { rx: ab, tx: ba })),
    )
}

impl MemoryEnd {
    /// Appends up to the spare capacity of `buf` from the pipe; `0` at end of stream.
    pub(crate) async fn read(&self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let want = buf.capacity().saturating_sub(buf.len()).max(1);
        let n = poll_fn(|cx| {
            let mut q = self.0.rx.lock();
            if q.bytes.is_empty() {
                if q.writer_closed {
                    return Poll::Ready(0);
                }
                q.read_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = want.min(q.bytes.len());
            buf.extend(q.bytes.drain(..n));
            let w = q.write_waker.take();
            drop(q);
            if let Some(w) = w {
                w.wake();
            }
            Poll::Ready(n)
        })
        .await;
        (Ok(n), buf)
    }

    /// Writes all of `buf`, waiting while the pipe is full.
    pub(crate) async fn write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut written = 0usize;
        let result = poll_fn(|cx| {
            loop {
                let mut q = self.0.tx.lock();
                if q.reader_closed || q.writer_closed {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::BrokenPipe)));
                }
                let rest = buf.get(written..).unwrap_or_default();
                if rest.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                let room = self.0.tx.capacity.saturating_sub(q.bytes.len());
                if room == 0 {
                    q.write_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                let n = room.min(rest.len());
                q.bytes.extend(rest.get(..n).unwrap_or_default());
                written += n;
                let w = q.read_waker.take();
                drop(q);
                if let Some(w) = w {
                    w.wake();
                }
            }
        })
        .await;
        (result, buf)
    }

    /// Closes the sending direction: the other end reads end-of-stream once it has read
    /// everything already written.
    pub(crate) fn shutdown_write(&self) {
        let w = {
            let mut q = self.0.tx.lock();
            q.writer_closed = true;
            q.read_waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::clock::block_on;

    #[test]
    fn bytes_cross_and_close_is_seen() {
        let (a, b) = memory_pipe(4);
        let writer = std::thread::spawn(move || {
            let (r, _) = block_on(a.write_all(b"hello world".to_vec()));
            r.unwrap();
            a.shutdown_write();
        });
        let mut got = Vec::new();
        loop {
            let (r, buf) = block_on(b.read(Vec::with_capacity(3)));
            let n = r.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf);
        }
        writer.join().unwrap();
        assert_eq!(got, b"hello world");
    }

    #[test]
    fn dropping_an_end_breaks_the_pipe() {
        let (a, b) = memory_pipe(16);
        drop(b);
        let (r, _) = block_on(a.write_all(vec![1, 2, 3]));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let (r, _) = block_on(a.read(Vec::with_capacity(8)));
        assert_eq!(r.unwrap(), 0);
    }
}
