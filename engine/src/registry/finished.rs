//! How a request the peer sent tells its connection that the application is done with it.
//!
//! Every copy of a [`PendingRequest`](super::PendingRequest) shares one [`RequestTicket`]; when
//! the last copy goes (answered, or dropped unanswered) the ticket's `Drop` appends the
//! request to its connection's [`FinishedRequests`] and wakes the connection's driver, which
//! frees the request's place among those the peer may have in flight (`docs/RELIABILITY.md`
//! row 6: request-and-CANCEL pairs must not outlive the limit).
//!
//! Why not a shard inbox command: the inbox is bounded, and a release lost to a full inbox
//! would hold one of the peer's places forever (and `Drop` cannot wait). The list is instead
//! owned by the connection, so appending never fails and never waits on the shard: it holds
//! at most one entry per request the peer may have in flight (`max_inflight_requests`), and a
//! `Notify` keeps one pending wake-up if the driver is busy, so none is lost either. The lock
//! is held only to push or to take the whole list.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::proto::native::RequestId;

/// Requests of one connection whose application side is done, for its driver to release.
#[derive(Debug, Default)]
pub(crate) struct FinishedRequests {
    /// `(id, seq)` of each finished request; `seq` tells a request apart from a later one
    /// that reuses its id.
    list: Mutex<Vec<(RequestId, u64)>>,
    /// Wakes the connection's driver.
    wake: Notify,
    /// The connection is gone: nothing to release any more.
    closed: AtomicBool,
}

impl FinishedRequests {
    /// Records that request `(id, seq)` is finished and wakes the driver.
    fn push(&self, id: RequestId, seq: u64) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, seq));
        self.wake.notify_one();
    }

    /// Takes every request finished since the last call.
    pub(crate) fn take(&self) -> Vec<(RequestId, u64)> {
        std::mem::take(&mut *self.list.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until a request finishes (at once if one finished since the last wait).
    pub(crate) async fn finished(&self) {
        self.wake.notified().await;
    }

    /// The connection is gone: later finishes are ignored and the list is emptied.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.take();
    }
}

/// Shared by every copy of one [`PendingRequest`](super::PendingRequest); dropping the last
/// copy finishes the request.
#[derive(Debug)]
pub(crate) struct RequestTicket {
    id: RequestId,
    seq: u64,
    finished: Arc<FinishedRequests>,
}

impl RequestTicket {
    /// The ticket of request `id`, the `seq`-th the connection tracked.
    pub(crate) fn new(id: RequestId, seq: u64, finished: Arc<FinishedRequests>) -> Self {
        RequestTicket { id, seq, finished }
    }

    /// Which request this is on its connection (unique, unlike the peer's id).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }
}

impl PartialEq for RequestTicket {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.seq == other.seq && Arc::ptr_eq(&self.finished, &other.finished)
    }
}

impl Eq for RequestTicket {}

impl Drop for RequestTicket {
    fn drop(&mut self) {
        self.finished.push(self.id, self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_copy_finishes_the_request_once() {
        let finished = Arc::new(FinishedRequests::default());
        let ticket = Arc::new(RequestTicket::new(RequestId(7), 1, finished.clone()));
        let copy = ticket.clone();
        drop(ticket);
        assert!(finished.take().is_empty(), "a copy is still held");
        drop(copy);
        assert_eq!(finished.take(), vec![(RequestId(7), 1)]);
        assert!(finished.take().is_empty());
        // The wake-up waits for the driver even though nobody listened when it was sent.
        crate::rt::clock::block_on(finished.finished());
    }

    #[test]
    fn nothing_is_kept_for_a_closed_connection() {
        let finished = Arc::new(FinishedRequests::default());
        let ticket = RequestTicket::new(RequestId(1), 1, finished.clone());
        finished.close();
        drop(ticket);
        assert!(finished.take().is_empty());
    }
}
