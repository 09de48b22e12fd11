//! Handing a write to the kernel as soon as it is queued, not at the end of the shard's turn.
//!
//! On io_uring an operation is only queued in the ring when its future is first polled; the
//! runtime submits the queue when the shard's turn ends (one `io_uring_enter` for the lot).
//! A shard whose turn is long (a hub handling broadcasts to a thousand peers) then holds its
//! connections' writes for the whole turn, and the peers' receivers, fed in one burst per
//! turn, sit idle in between: in the fan-out benchmark an epoll hub, whose writes are system
//! calls made as each writer runs, kept its receivers busier (docs/PERFORMANCE.md, "Writes
//! submitted at once"). [`submitted_at_once`] submits the ring's queue as soon as a write is
//! queued: one `io_uring_enter` per write, as epoll pays one `sendto`.
//!
//! Submitting outside the runtime's own loop resets its "a wake-up from another thread came"
//! flag. When the submission reports that one came, it is handed back through the runtime's
//! waker, so the shard does not go to sleep on a task another thread scheduled.

use std::future::{Future, poll_fn};
use std::pin::pin;

/// Runs `fut`, submitting the ring's queue the first time it is pending (io_uring; on epoll
/// the operation already ran as a system call, and nothing more is done).
pub(crate) async fn submitted_at_once<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut first = true;
    poll_fn(|cx| {
        let polled = fut.as_mut().poll(cx);
        if first && polled.is_pending() {
            submit_queued();
        }
        first = false;
        polled
    })
    .await
}

/// Submits what the current shard's ring holds queued (io_uring only).
fn submit_queued() {
    let _ = compio::runtime::Runtime::try_with_current(|rt| {
        if rt.driver_type().is_iouring() && rt.flush() {
            // The flush consumed a wake-up from another thread: hand it back, so the runtime
            // sees it before it waits.
            rt.waker().wake();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::task::Poll;

    use compio::io::AsyncWriteExt;

    use super::*;

    /// On io_uring the bytes of a write submitted at once are in the peer's socket before the
    /// writing task yields (loopback delivers within the send); queued for the end of the turn,
    /// they would not be.
    #[test]
    fn a_write_reaches_the_peer_before_the_task_yields() {
        let rt = compio::runtime::RuntimeBuilder::new()
            .build()
            .expect("runtime");
        if !rt.driver_type().is_iouring() {
            return; // epoll writes are system calls already.
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        rt.block_on(async {
            let client = compio::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let (mut peer, _) = listener.accept().expect("accept");
            peer.set_nonblocking(true).expect("nonblocking");
            let mut w = &client;
            let mut write = pin!(submitted_at_once(w.write_all(vec![7u8; 100])));
            let arrived = poll_fn(|cx| {
                let _ = write.as_mut().poll(cx);
                let mut buf = [0u8; 128];
                Poll::Ready(peer.read(&mut buf).unwrap_or(0))
            })
            .await;
            assert_eq!(arrived, 100, "the write was still queued in the ring");
            let compio::BufResult(done, _) = write.await;
            done.expect("write");
        });
    }
}
