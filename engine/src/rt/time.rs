//! Timers on a shard: the runtime's own timer wheel. Only callable from a shard thread.

use std::future::Future;
use std::time::Instant;

/// Sleeps until `deadline` on the current shard.
pub(crate) async fn sleep_until(deadline: Instant) {
    compio::time::sleep_until(deadline).await;
}

/// Runs `future` until `deadline`; `None` when the deadline came first.
pub(crate) async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Option<F::Output> {
    compio::time::timeout_at(deadline, future).await.ok()
}
