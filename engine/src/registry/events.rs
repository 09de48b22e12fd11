//! The application's subscription to peer up/down events.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::broadcast;

use crate::rt::clock;

use super::{PeerEvent, Registry};

/// Peer up/down events. Bounded: a subscriber that falls more than the configured capacity
/// behind loses the oldest events (counted in the node's stats as lagged).
pub struct PeerEvents {
    pub(crate) rx: broadcast::Receiver<PeerEvent>,
    registry: Arc<Registry>,
}

impl PeerEvents {
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        PeerEvents {
            rx: registry.raw_events(),
            registry,
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
