//! A shard's inbox: the work other threads hand to a shard ([`Command`]) and the bounded queues
//! that carry it ([`Inboxes`], one per shard). The router sends through it; a shard also uses it
//! to reach another shard (closing a connection a newer one replaced).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::proto::conn::PeerInfo;
use crate::proto::secret::NodeId;
use crate::registry::{ConnId, DialError, Pending, PendingRequest, SendError};
use crate::rt::clock;
use crate::rt::memory::MemoryEnd;

/// Where a dial goes.
pub(crate) enum DialTarget {
    /// A TCP address.
    Tcp(SocketAddr),
    /// One end of an in-memory pipe whose other end another node adopts.
    Memory(MemoryEnd),
}

/// The answer to a dial: the peer once it is up.
pub(crate) type DialReply = oneshot::Sender<Result<Arc<PeerInfo>, DialError>>;

/// The answer to a request: the response payload.
pub(crate) type RequestReply = oneshot::Sender<Result<Bytes, SendError>>;

/// One unit of work for a shard.
pub(crate) enum Command {
    /// Queue `payload` on a connection. The sender holds one credit on the channel; the shard
    /// returns it.
    Send {
        conn: ConnId,
        channel: u8,
        payload: Bytes,
        /// Delivery deadline (`Envelope::deliver_by`).
        deliver_by: Option<Instant>,
    },
    /// Queue `payloads` in order on a connection; each holds one credit, as in `Send`.
    SendMany {
        conn: ConnId,
        channel: u8,
        payloads: Vec<Bytes>,
    },
    /// Queue `payload` on many connections of this shard (`None`: all that share the channel),
    /// best effort: a connection whose queue is far behind skips it (counted).
    Fanout {
        targets: Option<Vec<ConnId>>,
        channel: u8,
        payload: Bytes,
        /// Delivery deadline (`Envelope::deliver_by`).
        deliver_by: Option<Instant>,
    },
    /// Send a request (holds one credit, like `Send`).
    Request {
        conn: ConnId,
        channel: u8,
        payload: Bytes,
        deadline: Instant,
        reply: RequestReply,
    },
    /// Withdraw the requests on a connection whose callers stopped waiting (their reply
    /// channel is closed): held ones are dropped, sent ones cancelled at the peer.
    Cancel { conn: ConnId },
    /// Answer a request the peer sent. The command carries the application's handle, so the
    /// request's place is not released as finished before its answer is staged.
    Respond {
        request: PendingRequest,
        payload: Bytes,
    },
    /// Open a connection.
    Dial {
        target: DialTarget,
        expected: Option<NodeId>,
        deadline: Instant,
        reply: DialReply,
        /// The place the gate holds for this dial.
        pending: Option<Pending>,
    },
    /// Take over the inbound end of an in-memory pipe.
    Adopt { end: MemoryEnd },
    /// Close a connection.
    Disconnect { conn: ConnId, reason: String },
    /// Close every connection (waiting for them until `deadline`) and stop.
    Shutdown {
        deadline: Instant,
        done: oneshot::Sender<()>,
    },
}

/// The sending sides of every shard's inbox, in shard order.
pub(crate) struct Inboxes {
    senders: Vec<mpsc::Sender<Command>>,
    next: AtomicUsize,
}

impl Inboxes {
    /// `shards` inboxes of `capacity` commands each, and their receiving sides in shard order.
    pub(crate) fn new(shards: usize, capacity: usize) -> (Self, Vec<mpsc::Receiver<Command>>) {
        let (senders, receivers) = (0..shards).map(|_| mpsc::channel(capacity.max(1))).unzip();
        (
            Inboxes {
                senders,
                next: AtomicUsize::new(0),
            },
            receivers,
        )
    }

    /// How many shards there are.
    pub(crate) fn len(&self) -> usize {
        self.senders.len()
    }

    /// The shard a new outbound connection should live on (round robin).
    pub(crate) fn pick(&self) -> usize {
        let n = self.senders.len().max(1);
        self.next.fetch_add(1, Ordering::Relaxed) % n
    }

    /// Commands waiting in each shard's inbox.
    pub(crate) fn depths(&self) -> Vec<usize> {
        self.senders
            .iter()
            .map(|tx| tx.max_capacity().saturating_sub(tx.capacity()))
            .collect()
    }

    fn inbox(&self, shard: usize) -> Result<&mpsc::Sender<Command>, SendError> {
        self.senders.get(shard).ok_or(SendError::Stopped)
    }

    /// Hands `cmd` to a shard without waiting.
    pub(crate) fn try_send(&self, shard: usize, cmd: Command) -> Result<(), SendError> {
        self.inbox(shard)?.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// Hands `cmd` to a shard, waiting for inbox space until `deadline` (`None`: not at all,
    /// as [`Inboxes::try_send`]).
    pub(crate) async fn send(
        &self,
        shard: usize,
        cmd: Command,
        deadline: Option<Instant>,
    ) -> Result<(), SendError> {
        let Some(deadline) = deadline else {
            return self.try_send(shard, cmd);
        };
        let inbox = self.inbox(shard)?;
        match clock::timeout_at(deadline, inbox.reserve()).await {
            None => Err(SendError::Timeout),
            Some(Err(_)) => Err(SendError::Stopped),
            Some(Ok(permit)) => {
                permit.send(cmd);
                Ok(())
            }
        }
    }
}
