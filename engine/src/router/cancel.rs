//! [`CancelToken`]: gives up a blocking dial or request from another thread.
//!
//! An async caller cancels by dropping the future; a caller blocked in `dial_blocking` or
//! `request_blocking` cannot, so the `_cancellable` forms of those calls also wait on a token
//! that any thread may fire (the C ABI's `ringwire_cancel`, a Go `context.Context`).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::{Either, select};
use tokio::sync::Notify;

/// A one-shot cancellation signal shared by clones: once [`CancelToken::cancel`] is called,
/// every call waiting on the token (now or later) gives up.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fired: AtomicBool,
    /// Wakes the calls waiting now.
    waiters: Notify,
}

impl CancelToken {
    /// A token not yet fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the token: the calls waiting on it return at once. Idempotent.
    pub fn cancel(&self) {
        self.inner.fired.store(true, Ordering::Release);
        self.inner.waiters.notify_waiters();
    }

    /// Whether the token was fired.
    pub fn is_cancelled(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// Completes once the token is fired.
    pub async fn cancelled(&self) {
        let mut notified = pin!(self.inner.waiters.notified());
        // Registered before the flag is read, so a `cancel` between the two still wakes it.
        notified.as_mut().enable();
        if !self.is_cancelled() {
            notified.await;
        }
    }

    /// Runs `work` until it completes or the token fires (then `work` is dropped, which gives
    /// it up, and the result is `None`). Work that is ready wins over a fired token.
    pub(crate) async fn run<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        match select(pin!(work), pin!(self.cancelled())).await {
            Either::Left((v, _)) => Some(v),
            Either::Right(_) => None,
        }
    }
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
