//! A connection's received messages on their way to the channels' receive queues, gathered
//! over one turn of its driver and pushed as one batch per channel (`docs/PERFORMANCE.md`,
//! "Batched delivery").

use crate::registry::{Closed, DeliveryTx, Received};

/// Most messages gathered before they are pushed, so a batch stays small next to the
/// channels' queues and the application sees the first messages of a long turn early.
const MAX_GATHER: usize = 256;

/// Messages gathered for delivery, per channel, in arrival order.
///
/// A channel's batch is pushed as soon as it holds as many messages as its queue has room
/// for, so when the queue is full the driver holds one message beyond it, as a driver that
/// pushed message by message did, and what a peer can make us hold does not grow with the
/// batch size.
#[derive(Default)]
pub(super) struct Gathered {
    lanes: Vec<Lane>,
    count: usize,
    /// A lane's batch reached its queue's room: push before taking more.
    due: bool,
}

struct Lane {
    channel: u8,
    tx: DeliveryTx,
    batch: Vec<Received>,
}

impl Gathered {
    /// Adds `msg` for `channel`, whose queue `tx` is.
    pub(super) fn push(&mut self, channel: u8, tx: &DeliveryTx, msg: Received) {
        let gathered = match self.lanes.iter_mut().find(|l| l.channel == channel) {
            Some(lane) => {
                lane.batch.push(msg);
                lane.batch.len()
            }
            None => {
                let mut batch = tx.batch_vec();
                batch.push(msg);
                self.lanes.push(Lane {
                    channel,
                    tx: tx.clone(),
                    batch,
                });
                1
            }
        };
        self.count += 1;
        if gathered >= tx.room_now() {
            self.due = true;
        }
    }

    /// Whether to push before taking more: enough is gathered, or a channel's batch holds
    /// what its queue has room for.
    pub(super) fn is_due(&self) -> bool {
        self.due || self.count >= MAX_GATHER
    }

    /// Whether nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Pushes what each channel's queue has room for; returns whether everything went. What a
    /// full queue did not take stays, in order, for [`blocked`](Self::blocked) to wait on; a
    /// channel whose receiver is gone drops its messages (nobody will take them).
    pub(super) fn flush(&mut self) -> bool {
        self.due = false;
        if self.count == 0 {
            return true;
        }
        self.lanes
            .retain_mut(|lane| match lane.tx.try_push(&mut lane.batch) {
                Ok(()) => !lane.batch.is_empty(),
                Err(Closed) => false,
            });
        self.count = self.lanes.iter().map(|l| l.batch.len()).sum();
        self.lanes.is_empty()
    }

    /// A queue that is full while messages wait for it: what to wait for room on.
    pub(super) fn blocked(&self) -> Option<DeliveryTx> {
        self.lanes.first().map(|l| l.tx.clone())
    }

    /// Drops everything gathered (the connection is gone).
    pub(super) fn clear(&mut self) {
        self.lanes.clear();
        self.count = 0;
        self.due = false;
    }
}
