//! [`CancelToken`]: gives up a blocking dial or request from another thread.
//!
//! An async caller cancels by dropping the future; a caller blocked in `dial_blocking` or
//! `request_blocking` cannot, so the `_cancellable` forms of those calls also wait on a token
//! that any thread may fire (the C ABI's `ringwire_cancel`, a Go `context.Context`).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// A one-shot cancellation signal shared by clones: once [`CancelToken::cancel`] is called,
/// every call waiting on the token (now or later) gives up.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fired: AtomicBool,
    /// The waiting calls' wakers (one per call waiting now; a token is rarely shared).
    waiters: Mutex<Vec<Waker>>,
}

impl CancelToken {
    /// A token not yet fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the token: the calls waiting on it return at once. Idempotent.
    pub fn cancel(&self) {
        self.inner.fired.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut *lock(&self.inner.waiters));
        for w in waiters {
            w.wake();
        }
    }

    /// Whether the token was fired.
    pub fn is_cancelled(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// Completes once the token is fired.
    pub async fn cancelled(&self) {
        std::future::poll_fn(|cx| {
            if self.is_cancelled() {
                return Poll::Ready(());
            }
            let mut waiters = lock(&self.inner.waiters);
            // Checked again under the lock: `cancel` takes the list after setting the flag.
            if self.is_cancelled() {
                return Poll::Ready(());
            }
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Runs `work` until it completes or the token fires (then `work` is dropped, which gives
    /// it up, and the result is `None`).
    pub(crate) async fn run<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = pin!(work);
        let mut fired = pin!(self.cancelled());
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            if fired.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }
}

fn lock(m: &Mutex<Vec<Waker>>) -> std::sync::MutexGuard<'_, Vec<Waker>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::clock;
    use std::time::{Duration, Instant};

    #[test]
    fn a_fired_token_ends_the_wait_of_another_thread() {
        let token = CancelToken::new();
        let t2 = token.clone();
        let firing = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.cancel();
        });
        let start = Instant::now();
        let out = clock::block_on(token.run(std::future::pending::<()>()));
        assert_eq!(out, None);
        assert!(start.elapsed() >= Duration::from_millis(40));
        firing.join().unwrap();
        // Already fired: a later call gives up at once, and work that is ready still wins.
        assert_eq!(
            clock::block_on(token.run(std::future::pending::<()>())),
            None
        );
        assert_eq!(clock::block_on(token.run(async { 7 })), Some(7));
    }

    #[test]
    fn an_unfired_token_lets_the_work_finish() {
        let token = CancelToken::new();
        assert_eq!(clock::block_on(token.run(async { 3 })), Some(3));
        assert!(!token.is_cancelled());
        token.cancel();
        token.cancel();
        assert!(token.is_cancelled());
    }
}
