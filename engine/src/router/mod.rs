//! The router: the application's sending side. Channels, envelopes, local delivery,
//! request/response, broadcast and role addressing.
//!
//! The router sits above the shards: it looks peers up in the registry they share and hands
//! work to the owning shard through its bounded inbox (`Inboxes`). The application calls it
//! from its own threads (any executor, or none: blocking variants exist); it never blocks a
//! shard.
//!
//! Delivery policy:
//! - `To::Peer`: one credit per message (see `PeerEntry`), then the owning shard's bounded
//!   inbox. A send with a deadline waits for both until then (`Timeout`); one without reports
//!   `Full` at once.
//! - `To::Local`: the payload goes straight into the channel's bounded receive queue; the
//!   receiver gets the very buffer that was sent.
//! - `To::Broadcast` and `To::Role`: one command per shard carrying one refcounted buffer; the
//!   shard fans out. Best effort per peer: a peer whose queue is far behind misses the message
//!   (counted in `NodeStats::fanout_dropped`).
//! - Requests wait for the response until the deadline; compat peers answer `Unsupported`.
#![forbid(unsafe_code)]

mod cancel;
mod channel;
mod envelope;
mod select;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::proto::conn::{ChannelDescriptor, PeerInfo};
use crate::proto::secret::NodeId;
use crate::registry::{Closed, PeerEntry, Registry};
use crate::rt::clock;
use crate::rt::memory::MemoryEnd;
use crate::shard::{Command, DialTarget, Inboxes};

pub use crate::registry::{
    ChannelError, ChannelTraffic, DefaultGate, DialError, Direction, DownReason, NodeStats, Origin,
    PeerEvent, PeerEvents, PeerGate, PeerSummary, PeerTraffic, Pending, PendingRequest, Received,
    SendError, Verdict,
};
pub use cancel::CancelToken;
pub use channel::{Channel, ChannelReceiver, ChannelSender};
pub use envelope::{Envelope, Fanout, To};

/// The sending side of one node, shared by every application thread.
pub(crate) struct Router {
    registry: Arc<Registry>,
    inboxes: Arc<Inboxes>,
    picker: select::Picker,
}

impl Router {
    pub(crate) fn new(registry: Arc<Registry>, inboxes: Arc<Inboxes>) -> Self {
        Router {
            registry,
            inboxes,
            picker: select::Picker::new(),
        }
    }

    /// The registry this router addresses.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The shards' inboxes.
    pub(crate) fn inboxes(&self) -> &Arc<Inboxes> {
        &self.inboxes
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.registry.is_stopped()
    }

    /// Registers the channel if needed and hands out its receiver (once).
    pub(crate) fn open_channel(
        self: &Arc<Self>,
        desc: ChannelDescriptor,
    ) -> Result<Channel, ChannelError> {
        let id = desc.id;
        self.registry.register_channel(desc)?;
        let rx = self.registry.take_receiver(id)?;
        Ok(Channel::new(
            ChannelSender {
                id,
                router: self.clone(),
            },
            rx,
        ))
    }

    fn check_size(&self, channel: u8, payload: &Bytes) -> Result<(), SendError> {
        fits(self.registry.max_message(channel), payload)
    }

    fn connected_peer(&self, id: &NodeId) -> Result<Arc<PeerEntry>, SendError> {
        if self.is_stopped() {
            return Err(SendError::Stopped);
        }
        self.registry.peer(id).ok_or(SendError::PeerGone)
    }

    // ---- sending --------------------------------------------------------------------------

    /// Queues `payloads` for `peer` in order, handing the shard as many per command as there
    /// are credits free; waits for credits and inbox space until `deadline` (`None`: does not
    /// wait, and no free credit is `Full`). Returns how many were queued before the first
    /// failure, and that failure.
    pub(crate) async fn send_many(
        &self,
        channel: u8,
        peer: NodeId,
        payloads: Vec<Bytes>,
        deadline: Option<Instant>,
    ) -> (usize, Result<(), SendError>) {
        if self.is_stopped() {
            return (0, Err(SendError::Stopped));
        }
        // Those before the first that is too large are queued; then the size error. The
        // channel's limit is looked up once per run (a lookup reads the channel table's lock).
        let max = self.registry.max_message(channel);
        let mut lens = Vec::with_capacity(payloads.len());
        let mut last = Ok(());
        for p in &payloads {
            if let Err(e) = fits(max, p) {
                last = Err(e);
                break;
            }
            lens.push(p.len());
        }
        if lens.is_empty() {
            // Nothing to queue (an empty run, or its first payload is too large).
            return (0, last);
        }
        let entry = match self.connected_peer(&peer) {
            Ok(e) => e,
            Err(e) => return (0, Err(e)),
        };
        let mut rest = payloads;
        rest.truncate(lens.len());
        let mut queued = 0;
        while queued < lens.len() {
            let wanted = &lens[queued..];
            let took = match deadline {
                None => entry.try_acquire_many(channel, wanted),
                Some(d) => entry.acquire_many(channel, wanted, d).await,
            };
            let took = match took {
                Ok(n) => n,
                Err(e) => return (queued, Err(e)),
            };
            // When every credit was free (the usual case) the whole vector moves on as is.
            let later = rest.split_off(took);
            let cmd = Command::SendMany {
                conn: entry.conn,
                channel,
                payloads: std::mem::replace(&mut rest, later),
            };
            if let Err(e) = self.inboxes.send(entry.shard, cmd, deadline).await {
                for &len in &wanted[..took] {
                    entry.release(channel, len);
                }
                return (queued, Err(e));
            }
            queued += took;
        }
        (queued, last)
    }

    /// Sends without waiting; returns how many recipients the message was queued for.
    pub(crate) fn try_send(&self, channel: u8, env: Envelope) -> Result<usize, SendError> {
        match env.to {
            // The hot path of an application that keeps a peer's queue full: plain calls, no
            // future to build and poll for every message (`send` takes the same step).
            To::Peer(id) => {
                if self.is_stopped() {
                    return Err(SendError::Stopped);
                }
                self.check_size(channel, &env.payload)?;
                self.try_send_peer(channel, &id, env.payload, env.deliver_by)
            }
            // With no deadline nothing on the send path waits: one poll completes it.
            _ => clock::poll_once(self.send(channel, env, None)).unwrap_or(Err(SendError::Full)),
        }
    }

    /// Queues `payload` for the peer `id` if a credit and inbox space are free now (`Full`
    /// otherwise); the size is checked already.
    fn try_send_peer(
        &self,
        channel: u8,
        id: &NodeId,
        payload: Bytes,
        deliver_by: Option<Instant>,
    ) -> Result<usize, SendError> {
        let entry = self.connected_peer(id)?;
        let len = payload.len();
        entry.try_acquire(channel, len)?;
        let cmd = Command::Send {
            conn: entry.conn,
            channel,
            payload,
            deliver_by,
        };
        if let Err(e) = self.inboxes.try_send(entry.shard, cmd) {
            entry.release(channel, len);
            return Err(e);
        }
        Ok(1)
    }

    /// Sends, waiting for queue space until `deadline` (`None`: not at all, and a full queue
    /// is `Full`); returns how many recipients the message was queued for.
    pub(crate) async fn send(
        &self,
        channel: u8,
        env: Envelope,
        deadline: Option<Instant>,
    ) -> Result<usize, SendError> {
        if self.is_stopped() {
            return Err(SendError::Stopped);
        }
        self.check_size(channel, &env.payload)?;
        match env.to {
            To::Peer(id) => {
                let Some(deadline) = deadline else {
                    return self.try_send_peer(channel, &id, env.payload, env.deliver_by);
                };
                let entry = self.connected_peer(&id)?;
                let len = env.payload.len();
                entry.acquire(channel, len, deadline).await?;
                let cmd = Command::Send {
                    conn: entry.conn,
                    channel,
                    payload: env.payload,
                    deliver_by: env.deliver_by,
                };
                if let Err(e) = self.inboxes.send(entry.shard, cmd, Some(deadline)).await {
                    entry.release(channel, len);
                    return Err(e);
                }
                Ok(1)
            }
            To::Local => {
                self.deliver_local(channel, env.payload, deadline).await?;
                Ok(1)
            }
            To::Broadcast => {
                let n = self.registry.sharing(channel);
                for shard in 0..self.inboxes.len() {
                    let cmd = Command::Fanout {
                        targets: None,
                        channel,
                        payload: env.payload.clone(),
                        deliver_by: env.deliver_by,
                    };
                    self.inboxes.send(shard, cmd, deadline).await?;
                }
                Ok(n)
            }
            To::Role { capability, fanout } => {
                let mut n = 0;
                for (shard, targets) in self.role_targets(channel, &capability, fanout) {
                    let k = targets.len();
                    let cmd = Command::Fanout {
                        targets: Some(targets),
                        channel,
                        payload: env.payload.clone(),
                        deliver_by: env.deliver_by,
                    };
                    self.inboxes.send(shard, cmd, deadline).await?;
                    n += k;
                }
                Ok(n)
            }
        }
    }

    /// Puts `payload` into this node's own receive queue of `channel`.
    async fn deliver_local(
        &self,
        channel: u8,
        payload: Bytes,
        deadline: Option<Instant>,
    ) -> Result<(), SendError> {
        let tx = self
            .registry
            .table()
            .get(channel)
            .map(|s| s.tx.clone())
            .ok_or(SendError::NoReceiver)?;
        let msg = Received {
            origin: Origin::Local,
            channel,
            payload,
            request: None,
            deliver_by: None,
        };
        let mut batch = vec![msg];
        loop {
            tx.try_push(&mut batch)
                .map_err(|Closed| SendError::NoReceiver)?;
            if batch.is_empty() {
                return Ok(());
            }
            let Some(deadline) = deadline else {
                return Err(SendError::Full);
            };
            match clock::timeout_at(deadline, tx.room()).await {
                None => return Err(SendError::Timeout),
                Some(Err(Closed)) => return Err(SendError::NoReceiver),
                // Room for one: try again (another producer may have taken it).
                Some(Ok(())) => {}
            }
        }
    }

    /// The chosen peers for a role send, grouped by shard.
    fn role_targets(
        &self,
        channel: u8,
        capability: &str,
        fanout: Fanout,
    ) -> Vec<(usize, Vec<crate::registry::ConnId>)> {
        // Fair shares (docs/ARCHITECTURE.md, "Fair role-addressed sends"): network groups
        // first, then peers within a group, so a crowd of claimants in one group weighs as
        // one group. Groups as stock's book names them, loopback and private ranges told
        // apart by their /16 (`netgroup`).
        let tagged: Vec<(u64, (usize, crate::registry::ConnId))> =
            self.registry
                .targets_with(channel, |e| e.has_capability(capability), |e| e.net_group);
        let k = fanout.choose_count(tagged.len());
        let candidates = self.picker.choose_fair(tagged, k);
        let mut groups: Vec<(usize, Vec<crate::registry::ConnId>)> = Vec::new();
        for (shard, conn) in candidates {
            match groups.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, v)) => v.push(conn),
                None => groups.push((shard, vec![conn])),
            }
        }
        groups
    }

    /// Sends a request and waits for the response until `deadline`.
    pub(crate) async fn request(
        &self,
        channel: u8,
        peer: NodeId,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, SendError> {
        self.check_size(channel, &payload)?;
        let entry = self.connected_peer(&peer)?;
        if !entry.is_native() {
            return Err(SendError::Unsupported);
        }
        let len = payload.len();
        entry.acquire(channel, len, deadline).await?;
        let (reply, response) = oneshot::channel();
        let cmd = Command::Request {
            conn: entry.conn,
            channel,
            payload,
            deadline,
            reply,
        };
        if let Err(e) = self.inboxes.send(entry.shard, cmd, Some(deadline)).await {
            entry.release(channel, len);
            return Err(e);
        }
        // From here on, dropping this future gives the request up: the guard tells the shard,
        // which withdraws it (a CANCEL frame goes to the peer if the request is on the wire).
        let mut guard = AbandonGuard {
            inboxes: &self.inboxes,
            shard: entry.shard,
            conn: entry.conn,
            armed: true,
        };
        let result = match clock::timeout_at(deadline, response).await {
            // The connection's own timer fires at the same deadline and cancels at the peer.
            None => Err(SendError::Timeout),
            Some(Err(_)) => Err(SendError::PeerGone),
            Some(Ok(r)) => r,
        };
        guard.armed = false;
        result
    }

    /// Answers a request a peer sent.
    pub(crate) fn respond(&self, req: PendingRequest, payload: Bytes) -> Result<(), SendError> {
        if req.0.cancelled.is_set() {
            return Err(SendError::Cancelled);
        }
        self.check_size(req.0.channel, &payload)?;
        let entry = self.connected_peer(&req.0.peer)?;
        if entry.conn != req.0.conn {
            return Err(SendError::PeerGone);
        }
        // On failure the command, and with it `req`, is dropped: the request is finished
        // unanswered, which frees its place at the connection all the same.
        self.inboxes.try_send(
            req.0.shard,
            Command::Respond {
                request: req,
                payload,
            },
        )
    }

    // ---- connections ----------------------------------------------------------------------

    /// Asks a shard to open a connection and waits until the peer is up.
    pub(crate) async fn dial(
        &self,
        target: DialTarget,
        expected: Option<NodeId>,
        deadline: Instant,
    ) -> Result<Arc<PeerInfo>, DialError> {
        if self.is_stopped() {
            return Err(DialError::Stopped);
        }
        let pending = self
            .registry
            .gate()
            .on_dial(expected)
            .map_err(DialError::Refused)?;
        self.dial_with(target, expected, deadline, pending).await
    }

    /// Dials with a place the gate already holds for this dial (see [`PeerGate::on_dial`]).
    pub(crate) async fn dial_with(
        &self,
        target: DialTarget,
        expected: Option<NodeId>,
        deadline: Instant,
        pending: Option<Pending>,
    ) -> Result<Arc<PeerInfo>, DialError> {
        if self.is_stopped() {
            return Err(DialError::Stopped);
        }
        let shard = self.inboxes.pick();
        let (reply, answer) = oneshot::channel();
        let cmd = Command::Dial {
            target,
            expected,
            deadline,
            reply,
            pending,
        };
        self.inboxes
            .send(shard, cmd, Some(deadline))
            .await
            .map_err(|e| match e {
                SendError::Timeout => DialError::Connect("timed out".into()),
                _ => DialError::Stopped,
            })?;
        match answer.await {
            Ok(r) => r,
            Err(_) => Err(DialError::Stopped),
        }
    }

    /// Hands the inbound end of an in-memory pipe to a shard.
    pub(crate) async fn adopt(&self, end: MemoryEnd, deadline: Instant) -> Result<(), DialError> {
        if self.is_stopped() {
            return Err(DialError::Stopped);
        }
        let shard = self.inboxes.pick();
        self.inboxes
            .send(shard, Command::Adopt { end }, Some(deadline))
            .await
            .map_err(|_| DialError::Stopped)
    }

    /// Closes the connection to `peer`; returns whether it was connected.
    pub(crate) fn disconnect(&self, peer: &NodeId, reason: &str) -> bool {
        let Some(entry) = self.registry.peer(peer) else {
            return false;
        };
        self.inboxes
            .try_send(
                entry.shard,
                Command::Disconnect {
                    conn: entry.conn,
                    reason: reason.to_owned(),
                },
            )
            .is_ok()
    }
}

/// Withdraws a request whose caller stopped waiting (the `request` future was dropped).
struct AbandonGuard<'a> {
    inboxes: &'a Inboxes,
    shard: usize,
    conn: crate::registry::ConnId,
    armed: bool,
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: with the shard's inbox full the request still ends at its deadline,
            // when the connection's timer cancels it at the peer.
            let _ = self
                .inboxes
                .try_send(self.shard, Command::Cancel { conn: self.conn });
        }
    }
}

/// Whether `payload` fits a channel whose largest message is `max` (`None`: the channel is
/// not registered here, and the size is not what refuses it).
fn fits(max: Option<usize>, payload: &Bytes) -> Result<(), SendError> {
    match max {
        Some(max) if payload.len() > max => Err(SendError::TooLarge {
            len: payload.len(),
            max,
        }),
        _ => Ok(()),
    }
}
