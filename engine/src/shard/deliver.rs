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
    /// A queue a push found full since the driver last asked what to wait for.
    stalled_on: Option<DeliveryTx>,
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
        if let Some(lane) = self.lanes.first()
            && self.stalled_on.is_none()
        {
            self.stalled_on = Some(lane.tx.clone());
        }
        self.lanes.is_empty()
    }

    /// What the driver waits for room on before its next pass: a queue that is full while
    /// messages wait for it, or else one that a push found full since the last call.
    ///
    /// The second case matters when the application makes room between a push that stops
    /// the pass at a full queue and the pass's last push, which then takes everything: the
    /// connection still holds events the pass did not take, and nothing else may wake the
    /// driver for them (a peer out of credit sends nothing; the next keepalive is seconds
    /// away). Waiting for room on that queue, which has room, starts the next pass at once.
    pub(super) fn take_blocked(&mut self) -> Option<DeliveryTx> {
        let stalled = self.stalled_on.take();
        self.lanes.first().map(|l| l.tx.clone()).or(stalled)
    }

    /// Drops everything gathered (the connection is gone).
    pub(super) fn clear(&mut self) {
        self.lanes.clear();
        self.count = 0;
        self.due = false;
        self.stalled_on = None;
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::registry::{delivery_queue, test_message as msg};

    #[test]
    fn a_queue_found_full_is_waited_on_even_once_the_last_push_took_everything() {
        let (tx, mut rx) = delivery_queue(2);
        let mut gathered = Gathered::default();
        for n in 0..3 {
            gathered.push(1, &tx, msg(n));
        }
        assert!(gathered.is_due());
        // The pass stops here: one message does not fit.
        assert!(!gathered.flush());
        // The application takes what waits before the pass's last push...
        let mut cx = Context::from_waker(Waker::noop());
        let mut got = Vec::new();
        assert_eq!(rx.poll_recv_many(&mut cx, &mut got, 8), Poll::Ready(2));
        // ...which then takes the rest: nothing is left gathered,
        assert!(gathered.flush());
        assert!(gathered.is_empty());
        // but the driver still looks at the queue before it sleeps, for the events the pass
        // left in the connection.
        assert!(gathered.take_blocked().is_some());
        // Once: a pass whose pushes all went through waits on nothing.
        assert!(gathered.take_blocked().is_none());
        gathered.push(1, &tx, msg(3));
        gathered.push(1, &tx, msg(4));
        assert!(!gathered.flush(), "one place left, for two messages");
        assert!(gathered.take_blocked().is_some(), "a batch waits for room");
    }
}
