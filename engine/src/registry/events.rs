//! The application's subscription to peer up/down events.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::task::AtomicWaker;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::TryRecvError;

use crate::rt::clock;

use super::{PeerEvent, Registry};

/// Peer up/down events. Bounded: a subscriber that falls more than the configured capacity
/// behind loses the oldest events (counted in the node's stats as lagged).
pub struct PeerEvents {
    pub(crate) rx: broadcast::Receiver<PeerEvent>,
    registry: Arc<Registry>,
    /// Woken by each published event ([`PeerEvents::poll_recv`]).
    waker: Arc<AtomicWaker>,
}

impl PeerEvents {
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        let waker = Arc::new(AtomicWaker::new());
        registry.add_event_waker(&waker);
        PeerEvents {
            rx: registry.raw_events(),
            registry,
            waker,
        }
    }

    /// The next event if one waits: `Ready(Some)`; `Ready(None)` once the node is gone;
    /// otherwise `Pending`, and `cx`'s waker is woken when the next event is published. For
    /// callers that wait in their own poller (the C ABI's event descriptor).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<PeerEvent>> {
        if let Some(ready) = self.try_next() {
            return Poll::Ready(ready);
        }
        self.waker.register(cx.waker());
        // An event published between the first look and the registration woke nobody: look
        // again now that the waker is in place.
        match self.try_next() {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    /// `Some(Some(event))`, `Some(None)` when closed, `None` when nothing waits; lagged events
    /// are counted and skipped.
    fn try_next(&mut self) -> Option<Option<PeerEvent>> {
        loop {
            match self.rx.try_recv() {
                Ok(e) => return Some(Some(e)),
                Err(TryRecvError::Lagged(n)) => {
                    self.registry
                        .stats
                        .events_lagged
                        .fetch_add(n, Ordering::Relaxed);
                }
                Err(TryRecvError::Closed) => return Some(None),
                Err(TryRecvError::Empty) => return None,
            }
        }
    }

    /// The next event; `None` once the node is gone.
    pub async fn recv(&mut self) -> Option<PeerEvent> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.registry
                        .stats
                        .events_lagged
                        .fetch_add(n, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event, or `None` when `deadline` passes first.
    pub async fn recv_until(&mut self, deadline: Instant) -> Option<PeerEvent> {
        clock::timeout_at(deadline, self.recv()).await.flatten()
    }

    /// [`PeerEvents::recv_until`] for callers outside any executor.
    pub fn recv_blocking(&mut self, deadline: Instant) -> Option<PeerEvent> {
        clock::block_on(self.recv_until(deadline))
    }
}
