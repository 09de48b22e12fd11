//! A channel's receive queue: the hand-off of received messages from the shards (and from
//! local sends) to the application's [`ChannelReceiver`](crate::router::ChannelReceiver).
//!
//! Messages travel in batches: a shard gathers what one connection's turn delivers to a channel
//! and pushes it as one item, so the queue's synchronisation and the wake-up of a waiting
//! application are paid once per batch on both sides rather than once per message
//! (`docs/PERFORMANCE.md`, "Batched delivery"). The bound stays in messages: a semaphore holds
//! one permit per free place, a producer takes permits for the messages it pushes, and the
//! receiver gives them back as the application takes messages out. A producer that finds no
//! room keeps the rest of its batch and waits for [`DeliveryTx::room`]. The batches travel in
//! a bounded channel of as many places as the queue holds messages: every batch holds at
//! least one message that holds a permit, so that channel never fills.
//!
//! The receiver hands the vectors of batches it has emptied back to the producers (at most
//! [`SPARES`] wait, per queue), which gather their next batches in them. A batch's vector was
//! otherwise allocated on a shard thread, grown message by message, and freed on the
//! application's thread, where glibc's allocator takes the shard's arena lock for it: in S2
//! that lock's futex wake-ups were 5 % of the receiving shard's time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::{Semaphore, TryAcquireError, mpsc};

use super::Received;

/// The receiver is gone: nobody will take these messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// A new queue holding at most `capacity` messages (at least one).
pub(crate) fn delivery_queue(capacity: usize) -> (DeliveryTx, DeliveryRx) {
    let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
    let room = Arc::new(Semaphore::new(capacity));
    let (tx, rx) = mpsc::channel(capacity);
    let spares = Arc::new(Spares::default());
    (
        DeliveryTx {
            tx,
            room: Arc::clone(&room),
            spares: Arc::clone(&spares),
        },
        DeliveryRx {
            rx,
            room,
            ready: VecDeque::new(),
            spares,
        },
    )
}

/// Most emptied batch vectors kept for reuse, per queue.
pub(crate) const SPARES: usize = 2;

/// The least capacity an emptied vector needs to be kept: a one-message vector (a local
/// send) is not worth a place.
const SPARE_MIN_CAPACITY: usize = 16;

/// Emptied batch vectors on their way back from the receiver to the producers.
#[derive(Default)]
struct Spares(Mutex<Vec<Vec<Received>>>);

impl Spares {
    /// Keeps `v` (empty) for reuse if there is a place and it is worth keeping.
    fn give(&self, mut v: Vec<Received>) {
        if v.capacity() < SPARE_MIN_CAPACITY {
            return;
        }
        v.clear();
        let mut spares = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if spares.len() < SPARES {
            spares.push(v);
        }
    }

    fn take(&self) -> Option<Vec<Received>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }
}

/// The producing side; cloned by every shard and by the router for local sends.
#[derive(Clone)]
pub(crate) struct DeliveryTx {
    tx: mpsc::Sender<Vec<Received>>,
    room: Arc<Semaphore>,
    spares: Arc<Spares>,
}

impl DeliveryTx {
    /// An empty vector to gather a batch in: one the receiver has emptied, if one waits.
    pub(crate) fn batch_vec(&self) -> Vec<Received> {
        self.spares.take().unwrap_or_default()
    }

    /// Pushes as many messages from the front of `batch` as there is room for, as one item;
    /// what does not fit stays in `batch`, in order. `Err(Closed)` when the receiver is gone
    /// (`batch` is left as it was).
    pub(crate) fn try_push(&self, batch: &mut Vec<Received>) -> Result<(), Closed> {
        if batch.is_empty() {
            return Ok(());
        }
        loop {
            let n = batch
                .len()
                .min(self.room.available_permits())
                .min(u32::MAX as usize);
            if n == 0 {
                return if self.room.is_closed() {
                    Err(Closed)
                } else {
                    Ok(())
                };
            }
            match self.room.try_acquire_many(n as u32) {
                Ok(permits) => {
                    let item = if n == batch.len() {
                        std::mem::take(batch)
                    } else {
                        batch.drain(..n).collect()
                    };
                    return match self.tx.try_send(item) {
                        Ok(()) => {
                            // The receiver gives the places back as the application takes
                            // the messages.
                            permits.forget();
                            Ok(())
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => Err(Closed),
                        // Cannot happen (see the module's comment); were it to, the messages
                        // go back to the front of the batch and wait for room.
                        Err(mpsc::error::TrySendError::Full(mut item)) => {
                            item.append(batch);
                            *batch = item;
                            Ok(())
                        }
                    };
                }
                Err(TryAcquireError::Closed) => return Err(Closed),
                // Another producer took places in between: look again.
                Err(TryAcquireError::NoPermits) => continue,
            }
        }
    }

    /// How many more messages the queue has room for now.
    pub(crate) fn room_now(&self) -> usize {
        self.room.available_permits()
    }

    /// Waits until the queue has room for at least one message (`Err(Closed)`: the receiver
    /// is gone). Another producer may take that room first; callers push and wait again.
    pub(crate) async fn room(&self) -> Result<(), Closed> {
        self.room.acquire().await.map(drop).map_err(|_| Closed)
    }
}

/// The consuming side, owned by the channel's receiver.
pub(crate) struct DeliveryRx {
    rx: mpsc::Receiver<Vec<Received>>,
    room: Arc<Semaphore>,
    /// The rest of the batch being taken from.
    ready: VecDeque<Received>,
    spares: Arc<Spares>,
}

impl Drop for DeliveryRx {
    fn drop(&mut self) {
        // Producers waiting for room learn that nobody will take their messages.
        self.room.close();
    }
}

impl DeliveryRx {
    /// Makes `batch` the one being taken from; the emptied one goes back to the producers.
    fn refill(&mut self, batch: Vec<Received>) {
        let emptied = std::mem::replace(&mut self.ready, VecDeque::from(batch));
        self.spares.give(Vec::from(emptied));
    }

    /// Takes the next batch into `ready` if none is there; `Ready(false)` when every producer
    /// is gone and the queue is drained.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        while self.ready.is_empty() {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.refill(batch),
                Poll::Ready(None) => return Poll::Ready(false),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(true)
    }

    /// A waiting message, if any, without registering for a wake-up.
    pub(crate) fn try_recv(&mut self) -> Option<Received> {
        if self.ready.is_empty() {
            let batch = self.rx.try_recv().ok()?;
            self.refill(batch);
        }
        let m = self.ready.pop_front()?;
        self.room.add_permits(1);
        Some(m)
    }

    /// The next message; `Pending` (with `cx` registered) while none waits, `Ready(None)` once
    /// every producer is gone and the queue is drained.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Received>> {
        match self.poll_fill(cx) {
            Poll::Ready(true) => {}
            Poll::Ready(false) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        }
        let m = self.ready.pop_front();
        if m.is_some() {
            self.room.add_permits(1);
        }
        Poll::Ready(m)
    }

    /// Appends up to `limit` waiting messages to `into` (from as many batches as wait) and
    /// returns how many; `Pending` while none waits, `Ready(0)` once every producer is gone
    /// and the queue is drained (or `limit` is 0).
    pub(crate) fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        into: &mut Vec<Received>,
        limit: usize,
    ) -> Poll<usize> {
        let mut taken = 0;
        while taken < limit {
            if self.ready.is_empty() {
                let next = if taken == 0 {
                    match self.poll_fill(cx) {
                        Poll::Ready(true) => continue,
                        Poll::Ready(false) => break,
                        Poll::Pending => return Poll::Pending,
                    }
                } else {
                    self.rx.try_recv().ok()
                };
                match next {
                    Some(batch) => self.refill(batch),
                    None => break,
                }
            }
            let n = (limit - taken).min(self.ready.len());
            into.extend(self.ready.drain(..n));
            taken += n;
        }
        if taken > 0 {
            self.room.add_permits(taken);
        }
        Poll::Ready(taken)
    }
}

/// A one-byte local message on channel 1 whose payload is `n`, for tests of the queue and of
/// what feeds it.
#[cfg(test)]
pub(crate) fn test_message(n: u8) -> Received {
    Received {
        origin: super::Origin::Local,
        channel: 1,
        payload: bytes::Bytes::from(vec![n]),
        request: None,
        deliver_by: None,
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn payloads(v: &[Received]) -> Vec<u8> {
        v.iter().map(|m| m.payload[0]).collect()
    }

    #[test]
    fn an_emptied_batch_vector_goes_back_to_the_producers() {
        let (tx, mut rx) = delivery_queue(1024);
        let mut first = tx.batch_vec();
        assert_eq!(first.capacity(), 0, "nothing to reuse yet");
        first.extend((0..100).map(test_message));
        let kept = first.as_ptr();
        tx.try_push(&mut first).unwrap();
        let mut second: Vec<Received> = (100..110).map(test_message).collect();
        tx.try_push(&mut second).unwrap();
        let mut got = Vec::new();
        // Taking the second batch empties the first, whose vector comes back.
        while let Some(m) = rx.try_recv() {
            got.push(m);
        }
        assert_eq!(got.len(), 110);
        let reused = tx.batch_vec();
        assert_eq!(reused.as_ptr(), kept);
        assert!(reused.is_empty() && reused.capacity() >= 100);
        // A vector too small to be worth a place is not kept.
        let mut one = vec![test_message(1)];
        tx.try_push(&mut one).unwrap();
        let mut two = vec![test_message(2)];
        tx.try_push(&mut two).unwrap();
        while rx.try_recv().is_some() {}
        assert_eq!(tx.batch_vec().capacity(), 0);
    }

    #[test]
    fn batches_keep_their_order_and_the_bound_counts_messages() {
        let (tx, mut rx) = delivery_queue(5);
        let mut batch: Vec<Received> = (0..3).map(test_message).collect();
        tx.try_push(&mut batch).unwrap();
        assert!(batch.is_empty());
        let mut batch: Vec<Received> = (3..8).map(test_message).collect();
        tx.try_push(&mut batch).unwrap();
        // Two places were left: the rest stays with the producer, in order.
        assert_eq!(payloads(&batch), [5, 6, 7]);
        let mut one = vec![test_message(9)];
        tx.try_push(&mut one).unwrap();
        assert_eq!(one.len(), 1, "no room");

        let mut cx = Context::from_waker(Waker::noop());
        let mut got = Vec::new();
        assert_eq!(rx.poll_recv_many(&mut cx, &mut got, 4), Poll::Ready(4));
        assert_eq!(payloads(&got), [0, 1, 2, 3]);
        // Four places came back.
        tx.try_push(&mut batch).unwrap();
        assert!(batch.is_empty());
        assert_eq!(rx.try_recv().map(|m| m.payload[0]), Some(4));
        got.clear();
        assert_eq!(rx.poll_recv_many(&mut cx, &mut got, 10), Poll::Ready(3));
        assert_eq!(payloads(&got), [5, 6, 7]);
        assert!(rx.poll_recv(&mut cx).is_pending());
        drop(tx);
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn producers_learn_when_the_receiver_is_gone() {
        let (tx, rx) = delivery_queue(1);
        tx.try_push(&mut vec![test_message(1)]).unwrap();
        let waiter = tx.clone();
        let room = std::thread::spawn(move || crate::rt::clock::block_on(waiter.room()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(rx);
        assert_eq!(room.join().unwrap(), Err(Closed));
        let mut batch = vec![test_message(2)];
        assert_eq!(tx.try_push(&mut batch), Err(Closed));
        assert_eq!(batch.len(), 1);
    }
}
