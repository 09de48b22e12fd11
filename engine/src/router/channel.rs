//! The application's handles: [`Channel`] (send and receive on one channel),
//! [`ChannelSender`] (cloneable sending side) and [`ChannelReceiver`].
//!
//! Every method works from any thread and any executor: waits use bounded `tokio::sync`
//! queues and deadlines from [`crate::rt::clock`], never a particular runtime. The `_blocking`
//! variants are for callers outside any executor (never call them on a shard thread).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use crate::proto::secret::NodeId;
use crate::registry::{DeliveryRx, Registry};
use crate::rt::clock;

use super::{CancelToken, Envelope, PendingRequest, Received, Router, SendError};

/// The sending side of a channel. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct ChannelSender {
    pub(crate) id: u8,
    pub(crate) router: Arc<Router>,
}

impl std::fmt::Debug for ChannelSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSender")
            .field("id", &self.id)
            .finish()
    }
}

impl ChannelSender {
    /// The channel id.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Queues `envelope`, waiting for queue space until `deadline`. Returns how many recipients
    /// it was queued for (broadcast and role sends may reach none). Broadcast and role sends
    /// are best effort per peer; one that fails with `Timeout` may have reached some shards.
    pub async fn send(&self, envelope: Envelope, deadline: Instant) -> Result<usize, SendError> {
        self.router.send(self.id, envelope, Some(deadline)).await
    }

    /// Queues `envelope` if there is room now; `Full` otherwise.
    pub fn try_send(&self, envelope: Envelope) -> Result<usize, SendError> {
        self.router.try_send(self.id, envelope)
    }

    /// [`ChannelSender::send`] for callers outside any executor.
    pub fn send_blocking(&self, envelope: Envelope, deadline: Instant) -> Result<usize, SendError> {
        clock::block_on(self.send(envelope, deadline))
    }

    /// Queues `payloads` for `peer` in order, waiting for queue space until `deadline`; hands
    /// them to the shard in as few steps as the queue's free space allows (one, when it has
    /// room for all), which costs less per message than [`ChannelSender::send`] one by one.
    /// Returns how many were queued before the first failure, and that failure (the rest
    /// were not queued).
    pub async fn send_many(
        &self,
        peer: NodeId,
        payloads: Vec<Bytes>,
        deadline: Instant,
    ) -> (usize, Result<(), SendError>) {
        self.router
            .send_many(self.id, peer, payloads, Some(deadline))
            .await
    }

    /// [`ChannelSender::send_many`] without waiting: queues as many as fit now (`Full` when
    /// none does).
    pub fn try_send_many(
        &self,
        peer: NodeId,
        payloads: Vec<Bytes>,
    ) -> (usize, Result<(), SendError>) {
        clock::block_on(self.router.send_many(self.id, peer, payloads, None))
    }

    /// [`ChannelSender::send_many`] for callers outside any executor.
    pub fn send_many_blocking(
        &self,
        peer: NodeId,
        payloads: Vec<Bytes>,
        deadline: Instant,
    ) -> (usize, Result<(), SendError>) {
        clock::block_on(self.send_many(peer, payloads, deadline))
    }

    /// Sends a request to a native peer and waits for its response until `deadline`. Dropping
    /// the future gives the request up (a late response is dropped and counted).
    pub async fn request(
        &self,
        peer: NodeId,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, SendError> {
        self.router.request(self.id, peer, payload, deadline).await
    }

    /// [`ChannelSender::request`] for callers outside any executor.
    pub fn request_blocking(
        &self,
        peer: NodeId,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, SendError> {
        clock::block_on(self.request(peer, payload, deadline))
    }

    /// [`ChannelSender::request_blocking`] that also gives up when `cancel` fires, with
    /// [`SendError::Abandoned`] (the request is withdrawn as if its future were dropped).
    pub fn request_blocking_cancellable(
        &self,
        peer: NodeId,
        payload: Bytes,
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<Bytes, SendError> {
        clock::block_on(cancel.run(self.request(peer, payload, deadline)))
            .unwrap_or(Err(SendError::Abandoned))
    }

    /// Answers a request received on this channel.
    pub fn respond(&self, request: PendingRequest, payload: Bytes) -> Result<(), SendError> {
        self.router.respond(request, payload)
    }
}

/// One channel of a node: send, request, respond, and receive.
pub struct Channel {
    sender: ChannelSender,
    receiver: ChannelReceiver,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.sender.id)
            .finish()
    }
}

impl Channel {
    pub(crate) fn new(sender: ChannelSender, rx: DeliveryRx) -> Self {
        let registry = sender.router.registry().clone();
        Channel {
            sender,
            receiver: ChannelReceiver { registry, rx },
        }
    }

    /// The channel id.
    pub fn id(&self) -> u8 {
        self.sender.id
    }

    /// A cloneable sending handle for other threads.
    pub fn sender(&self) -> ChannelSender {
        self.sender.clone()
    }

    /// Splits into the sending handle and this receiver.
    pub fn split(self) -> (ChannelSender, ChannelReceiver) {
        (self.sender, self.receiver)
    }

    /// See [`ChannelSender::send`].
    pub async fn send(&self, envelope: Envelope, deadline: Instant) -> Result<usize, SendError> {
        self.sender.send(envelope, deadline).await
    }

    /// See [`ChannelSender::try_send`].
    pub fn try_send(&self, envelope: Envelope) -> Result<usize, SendError> {
        self.sender.try_send(envelope)
    }

    /// See [`ChannelSender::send_blocking`].
    pub fn send_blocking(&self, envelope: Envelope, deadline: Instant) -> Result<usize, SendError> {
        self.sender.send_blocking(envelope, deadline)
    }

    /// See [`ChannelSender::request`].
    pub async fn request(
        &self,
        peer: NodeId,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, SendError> {
        self.sender.request(peer, payload, deadline).await
    }

    /// See [`ChannelSender::request_blocking`].
    pub fn request_blocking(
        &self,
        peer: NodeId,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, SendError> {
        self.sender.request_blocking(peer, payload, deadline)
    }

    /// See [`ChannelSender::respond`].
    pub fn respond(&self, request: PendingRequest, payload: Bytes) -> Result<(), SendError> {
        self.sender.respond(request, payload)
    }

    /// See [`ChannelReceiver::recv`].
    pub async fn recv(&mut self) -> Option<Received> {
        self.receiver.recv().await
    }

    /// See [`ChannelReceiver::recv_until`].
    pub async fn recv_until(&mut self, deadline: Instant) -> Option<Received> {
        self.receiver.recv_until(deadline).await
    }

    /// See [`ChannelReceiver::try_recv`].
    pub fn try_recv(&mut self) -> Option<Received> {
        self.receiver.try_recv()
    }

    /// See [`ChannelReceiver::recv_blocking`].
    pub fn recv_blocking(&mut self, deadline: Instant) -> Option<Received> {
        self.receiver.recv_blocking(deadline)
    }

    /// See [`ChannelReceiver::recv_many`].
    pub async fn recv_many(
        &mut self,
        into: &mut Vec<Received>,
        limit: usize,
        deadline: Instant,
    ) -> usize {
        self.receiver.recv_many(into, limit, deadline).await
    }

    /// See [`ChannelReceiver::recv_many_blocking`].
    pub fn recv_many_blocking(
        &mut self,
        into: &mut Vec<Received>,
        limit: usize,
        deadline: Instant,
    ) -> usize {
        self.receiver.recv_many_blocking(into, limit, deadline)
    }
}

/// The receiving half of a [`Channel`] after [`Channel::split`].
pub struct ChannelReceiver {
    /// Where expired messages are counted.
    registry: Arc<Registry>,
    rx: DeliveryRx,
}

impl std::fmt::Debug for ChannelReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelReceiver").finish_non_exhaustive()
    }
}

impl ChannelReceiver {
    /// Whether `m`'s delivery deadline has passed (then it is counted and dropped).
    fn expired(&self, m: &Received) -> bool {
        let expired = m.deliver_by.is_some_and(|d| d <= Instant::now());
        if expired {
            self.registry
                .stats
                .expired_before_delivery
                .fetch_add(1, Ordering::Relaxed);
        }
        expired
    }

    /// The next message; `None` once the node has stopped and the queue is drained. Messages
    /// whose delivery deadline passed while they waited are dropped (counted).
    pub async fn recv(&mut self) -> Option<Received> {
        loop {
            let m = std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await?;
            if !self.expired(&m) {
                return Some(m);
            }
        }
    }

    /// The next message, or `None` when `deadline` passes first (or the node stopped).
    pub async fn recv_until(&mut self, deadline: Instant) -> Option<Received> {
        clock::timeout_at(deadline, self.recv()).await.flatten()
    }

    /// A message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Received> {
        loop {
            let m = self.rx.try_recv()?;
            if !self.expired(&m) {
                return Some(m);
            }
        }
    }

    /// [`ChannelReceiver::recv_until`] for callers outside any executor.
    pub fn recv_blocking(&mut self, deadline: Instant) -> Option<Received> {
        clock::block_on(self.recv_until(deadline))
    }

    /// Appends up to `limit` messages to `into`, waiting until `deadline` for the first, and
    /// returns how many: the batched [`recv_until`](Self::recv_until), which takes what is
    /// waiting in one step rather than one message per call. 0 means the deadline passed, or
    /// the node stopped and the queue is drained (or `limit` is 0).
    pub async fn recv_many(
        &mut self,
        into: &mut Vec<Received>,
        limit: usize,
        deadline: Instant,
    ) -> usize {
        if limit == 0 {
            return 0;
        }
        let take = std::future::poll_fn(|cx| self.poll_recv_many(cx, into, limit));
        clock::timeout_at(deadline, take).await.unwrap_or(0)
    }

    /// [`ChannelReceiver::recv_many`] for callers outside any executor.
    pub fn recv_many_blocking(
        &mut self,
        into: &mut Vec<Received>,
        limit: usize,
        deadline: Instant,
    ) -> usize {
        clock::block_on(self.recv_many(into, limit, deadline))
    }

    /// Moves up to `limit` waiting messages into `into` and returns how many. When none waits
    /// it returns `Pending` and `cx`'s waker is woken once the next message arrives or the node
    /// stops; `Ready(0)` (with `limit > 0`) means the node stopped and the queue is drained.
    /// The building block for callers with their own wake-up mechanism (the C ABI wakes an
    /// eventfd), with no thread in between.
    pub fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        into: &mut Vec<Received>,
        limit: usize,
    ) -> Poll<usize> {
        loop {
            let start = into.len();
            let n = match self.rx.poll_recv_many(cx, into, limit) {
                Poll::Ready(n) => n,
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(0);
            }
            // Expired messages are dropped (counted) and the rest keep their order, in one
            // pass; the clock is read only when a message carries a deadline.
            let mut now = None;
            let mut kept = start;
            for i in start..into.len() {
                let expired = into[i]
                    .deliver_by
                    .is_some_and(|d| d <= *now.get_or_insert_with(Instant::now));
                if expired {
                    self.registry
                        .stats
                        .expired_before_delivery
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    into.swap(kept, i);
                    kept += 1;
                }
            }
            into.truncate(kept);
            if into.len() > start {
                return Poll::Ready(into.len() - start);
            }
            // All had expired: poll again (registers the waker if none waits).
        }
    }
}
