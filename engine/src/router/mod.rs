//! The router: channels, envelopes, local delivery, request/response, broadcast and role
//! addressing, and the registry of connected peers.
//!
//! The router is shared by every thread. The application calls it from its own threads (any
//! executor, or none: blocking variants exist); shards call it when peers come and go and to
//! deliver received messages. It never blocks a shard: everything a shard does here is a map
//! lookup or a non-blocking queue operation.
//!
//! Delivery policy:
//! - `To::Peer`: one credit per message (see `peer`), then the owning shard's bounded inbox.
//!   `send` waits for both up to its deadline (`Timeout`); `try_send` reports `Full` at once.
//! - `To::Local`: the payload goes straight into the channel's bounded receive queue; the
//!   receiver gets the very buffer that was sent.
//! - `To::Broadcast` and `To::Role`: one command per shard carrying one refcounted buffer; the
//!   shard fans out. Best effort per peer: a peer whose queue is far behind misses the message
//!   (counted in `NodeStats::fanout_dropped`).
//! - Requests wait for the response until the deadline; compat peers answer `Unsupported`.

mod channel;
mod envelope;
mod error;
mod gate;
mod peer;
mod received;
mod select;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::proto::conn::{ChannelDescriptor, PeerInfo};
use crate::proto::nodeinfo::{MAX_NUM_CHANNELS, RINGWIRE_CAPABILITY_CHANNEL};
use crate::proto::secret::NodeId;
use crate::rt::clock;
use crate::shard::Command;

pub use channel::{Channel, ChannelReceiver, ChannelSender, PeerEvents};
pub use envelope::{Envelope, Fanout, To};
pub use error::{DialError, DownReason, SendError};
pub use gate::{Admission, DefaultGate, PeerGate, Pending};
pub(crate) use peer::PeerEntry;
pub use peer::{ChannelTraffic, Direction, PeerEvent, PeerSummary, PeerTraffic};
pub(crate) use received::CancelFlag;
pub use received::{Origin, PendingRequest, Received};

/// Identifies one connection for its whole life (never reused within a process).
pub(crate) type ConnId = u64;

/// Counters of things the router and shards dropped or refused.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) fanout_dropped: AtomicU64,
    pub(crate) late_responses: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) io_errors: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) accept_refused: AtomicU64,
    pub(crate) events_lagged: AtomicU64,
    pub(crate) read_buffers_exhausted: AtomicU64,
    pub(crate) multishot_arms: AtomicU64,
    pub(crate) multishot_receives: AtomicU64,
    pub(crate) zero_copy_writes: AtomicU64,
}

/// A snapshot of the node's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Peers currently connected.
    pub peers: usize,
    /// Broadcast or role deliveries skipped because the peer's queue was far behind.
    pub fanout_dropped: u64,
    /// Responses that arrived after their request was given up (or were unroutable).
    pub late_responses: u64,
    /// Authenticated connections refused by the admission gate (duplicates, policy).
    pub refused: u64,
    /// Connections closed because the peer broke the protocol (bad bytes, bad handshake, ...).
    pub protocol_errors: u64,
    /// Connections closed by a socket error or end of stream.
    pub io_errors: u64,
    /// Inbound TCP connections accepted.
    pub accepted: u64,
    /// Inbound TCP connections refused at once (connection limit).
    pub accept_refused: u64,
    /// Peer events lost by subscribers that fell behind.
    pub events_lagged: u64,
    /// Reads that found every lent read buffer of their shard in use (retried).
    pub read_buffers_exhausted: u64,
    /// Multishot receives armed (io_uring), re-arms included.
    pub multishot_arms: u64,
    /// Buffers of received bytes those multishot receives delivered.
    pub multishot_receives: u64,
    /// Writes sent with zero-copy sends (io_uring, at least `Limits::send_zc_threshold`).
    pub zero_copy_writes: u64,
}

/// A channel this node runs: its descriptor and the sending side of its receive queue.
pub(crate) struct ChannelSlot {
    pub(crate) desc: ChannelDescriptor,
    pub(crate) tx: mpsc::Sender<Received>,
}

/// The channels, as a connection sees them when it starts.
#[derive(Default)]
pub(crate) struct ChannelTable {
    slots: Vec<ChannelSlot>,
}

impl ChannelTable {
    pub(crate) fn get(&self, id: u8) -> Option<&ChannelSlot> {
        self.slots.iter().find(|s| s.desc.id == id)
    }

    pub(crate) fn descriptors(&self) -> Vec<ChannelDescriptor> {
        self.slots.iter().map(|s| s.desc.clone()).collect()
    }
}

/// Why a channel cannot be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The channel's receiver was already handed out.
    #[error("channel {0:#04x} is already open")]
    AlreadyOpen(u8),
    /// A channel with this id exists with different settings.
    #[error("channel {0:#04x} is registered with different settings")]
    Mismatch(u8),
    /// The id is reserved for the ringwire capability.
    #[error("channel {0:#04x} is reserved")]
    Reserved(u8),
    /// A NodeInfo lists at most 16 channels, the capability channel included.
    #[error("too many channels (at most {0})")]
    TooMany(usize),
    /// The node is stopped.
    #[error("node is stopped")]
    Stopped,
}

/// Settings the router needs.
#[derive(Clone, Debug)]
pub(crate) struct RouterConfig {
    pub(crate) local_id: NodeId,
    pub(crate) recv_queue_capacity: usize,
    pub(crate) peer_event_capacity: usize,
}

/// The shared routing state of one node.
pub(crate) struct Router {
    pub(crate) local_id: NodeId,
    table: RwLock<Arc<ChannelTable>>,
    receivers: Mutex<HashMap<u8, mpsc::Receiver<Received>>>,
    recv_queue_capacity: usize,
    peers: RwLock<HashMap<NodeId, Arc<PeerEntry>>>,
    inboxes: Vec<mpsc::Sender<Command>>,
    events: broadcast::Sender<PeerEvent>,
    stopped: AtomicBool,
    next_conn: AtomicU64,
    next_shard: AtomicUsize,
    picker: select::Picker,
    gate: Arc<dyn PeerGate>,
    pub(crate) stats: Stats,
}

impl Router {
    pub(crate) fn new(
        config: RouterConfig,
        inboxes: Vec<mpsc::Sender<Command>>,
        gate: Arc<dyn PeerGate>,
    ) -> Self {
        let (events, _) = broadcast::channel(config.peer_event_capacity.max(1));
        Router {
            local_id: config.local_id,
            table: RwLock::new(Arc::new(ChannelTable::default())),
            receivers: Mutex::new(HashMap::new()),
            recv_queue_capacity: config.recv_queue_capacity.max(1),
            peers: RwLock::new(HashMap::new()),
            inboxes,
            events,
            stopped: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            next_shard: AtomicUsize::new(0),
            picker: select::Picker::new(),
            gate,
            stats: Stats::default(),
        }
    }

    // ---- channels -------------------------------------------------------------------------

    /// The channel table new connections use.
    pub(crate) fn table(&self) -> Arc<ChannelTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Registers a channel (new connections carry it) without handing out its receiver.
    pub(crate) fn register_channel(&self, desc: ChannelDescriptor) -> Result<(), ChannelError> {
        if self.is_stopped() {
            return Err(ChannelError::Stopped);
        }
        if desc.id == RINGWIRE_CAPABILITY_CHANNEL {
            return Err(ChannelError::Reserved(desc.id));
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = table.get(desc.id) {
            return if slot.desc == desc {
                Ok(())
            } else {
                Err(ChannelError::Mismatch(desc.id))
            };
        }
        // The capability channel takes one of the NodeInfo's 16 places.
        if table.slots.len() + 1 >= MAX_NUM_CHANNELS {
            return Err(ChannelError::TooMany(MAX_NUM_CHANNELS - 1));
        }
        let (tx, rx) = mpsc::channel(self.recv_queue_capacity);
        let mut slots: Vec<ChannelSlot> = table
            .slots
            .iter()
            .map(|s| ChannelSlot {
                desc: s.desc.clone(),
                tx: s.tx.clone(),
            })
            .collect();
        slots.push(ChannelSlot {
            desc: desc.clone(),
            tx,
        });
        *table = Arc::new(ChannelTable { slots });
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(desc.id, rx);
        Ok(())
    }

    /// Registers the channel if needed and hands out its receiver (once).
    pub(crate) fn open_channel(
        self: &Arc<Self>,
        desc: ChannelDescriptor,
    ) -> Result<Channel, ChannelError> {
        let id = desc.id;
        self.register_channel(desc)?;
        let rx = self
            .receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .ok_or(ChannelError::AlreadyOpen(id))?;
        Ok(Channel::new(
            ChannelSender {
                id,
                router: self.clone(),
            },
            rx,
        ))
    }

    fn max_message(&self, channel: u8) -> Option<usize> {
        self.table()
            .get(channel)
            .map(|s| s.desc.recv_message_capacity)
    }

    fn check_size(&self, channel: u8, payload: &Bytes) -> Result<(), SendError> {
        match self.max_message(channel) {
            Some(max) if payload.len() > max => Err(SendError::TooLarge {
                len: payload.len(),
                max,
            }),
            _ => Ok(()),
        }
    }

    // ---- peers ----------------------------------------------------------------------------

    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The shard a new outbound connection should live on (round robin).
    pub(crate) fn pick_shard(&self) -> usize {
        let n = self.inboxes.len().max(1);
        self.next_shard.fetch_add(1, Ordering::Relaxed) % n
    }

    /// The admission gate.
    pub(crate) fn gate(&self) -> &dyn PeerGate {
        &*self.gate
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.inboxes.len()
    }

    pub(crate) fn peer(&self, id: &NodeId) -> Option<Arc<PeerEntry>> {
        self.peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub(crate) fn peer_list(&self) -> Vec<PeerSummary> {
        self.each_peer(PeerEntry::summary)
    }

    pub(crate) fn peer_traffic(&self) -> Vec<PeerTraffic> {
        self.each_peer(PeerEntry::traffic)
    }

    /// `f` of every connected peer.
    fn each_peer<T>(&self, f: impl Fn(&PeerEntry) -> T) -> Vec<T> {
        self.peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|e| f(e))
            .collect()
    }

    /// Commands waiting in each shard's inbox.
    pub(crate) fn inbox_depths(&self) -> Vec<usize> {
        self.inboxes
            .iter()
            .map(|tx| tx.max_capacity().saturating_sub(tx.capacity()))
            .collect()
    }

    pub(crate) fn peer_count(&self) -> usize {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Admits an authenticated peer through the gate and registers it. On success the caller
    /// owns announcing it ([`Router::announce_up`]).
    pub(crate) fn admit(
        &self,
        entry: PeerEntry,
        pending: Option<Pending>,
    ) -> Result<Arc<PeerEntry>, String> {
        if self.is_stopped() {
            return Err("node is shutting down".into());
        }
        let id = entry.node_id();
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        let existing = peers.get(&id).map(|e| e.summary());
        match self.gate.admit(
            &entry.info,
            entry.direction,
            entry.addr,
            existing.as_ref(),
            pending,
        ) {
            Admission::Accept if existing.is_none() => {}
            Admission::Accept => return Err("already connected to this peer".into()),
            Admission::Reject(reason) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(reason);
            }
            Admission::ReplaceExisting => {
                if let Some(old) = peers.remove(&id) {
                    old.mark_gone();
                    let cmd = Command::Disconnect {
                        conn: old.conn,
                        reason: "replaced by a newer connection to the same peer".into(),
                    };
                    if let Some(inbox) = self.inboxes.get(old.shard) {
                        // If the inbox is full the old connection stays open until it fails on
                        // its own; it is already invisible to senders.
                        let _ = inbox.try_send(cmd);
                    }
                }
            }
        }
        let entry = Arc::new(entry);
        peers.insert(id, entry.clone());
        Ok(entry)
    }

    /// Announces a registered peer.
    pub(crate) fn announce_up(&self, entry: &PeerEntry) {
        let _ = self.events.send(PeerEvent::Up {
            peer: entry.info.clone(),
            direction: entry.direction,
            addr: entry.addr,
        });
    }

    /// Removes a peer's registration (if it is still this connection's) and announces it down.
    pub(crate) fn peer_down(&self, entry: &PeerEntry, reason: DownReason) {
        entry.mark_gone();
        let id = entry.node_id();
        {
            let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
            if peers.get(&id).is_some_and(|e| e.conn == entry.conn) {
                peers.remove(&id);
                // Under the lock, like `admit`: the gate sees registrations and removals in
                // the order they happen.
                self.gate.on_down(id, &reason);
            }
        }
        let _ = self.events.send(PeerEvent::Down {
            node_id: id,
            reason,
        });
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<PeerEvent> {
        self.events.subscribe()
    }

    // ---- lifecycle ------------------------------------------------------------------------

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Drops the channel table so receivers see the end once drained (after shutdown).
    pub(crate) fn close_channels(&self) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ChannelTable::default());
    }

    pub(crate) fn stats(&self) -> NodeStats {
        let s = &self.stats;
        NodeStats {
            peers: self.peer_count(),
            fanout_dropped: s.fanout_dropped.load(Ordering::Relaxed),
            late_responses: s.late_responses.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            protocol_errors: s.protocol_errors.load(Ordering::Relaxed),
            io_errors: s.io_errors.load(Ordering::Relaxed),
            accepted: s.accepted.load(Ordering::Relaxed),
            accept_refused: s.accept_refused.load(Ordering::Relaxed),
            events_lagged: s.events_lagged.load(Ordering::Relaxed),
            read_buffers_exhausted: s.read_buffers_exhausted.load(Ordering::Relaxed),
            multishot_arms: s.multishot_arms.load(Ordering::Relaxed),
            multishot_receives: s.multishot_receives.load(Ordering::Relaxed),
            zero_copy_writes: s.zero_copy_writes.load(Ordering::Relaxed),
        }
    }

    // ---- shard inboxes --------------------------------------------------------------------

    fn inbox(&self, shard: usize) -> Result<&mpsc::Sender<Command>, SendError> {
        self.inboxes.get(shard).ok_or(SendError::Stopped)
    }

    /// Hands `cmd` to a shard without waiting.
    pub(crate) fn try_command(&self, shard: usize, cmd: Command) -> Result<(), SendError> {
        self.inbox(shard)?.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// Hands `cmd` to a shard, waiting for inbox space until `deadline`.
    pub(crate) async fn command(
        &self,
        shard: usize,
        cmd: Command,
        deadline: Instant,
    ) -> Result<(), SendError> {
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

    // ---- sending --------------------------------------------------------------------------

    fn connected_peer(&self, id: &NodeId) -> Result<Arc<PeerEntry>, SendError> {
        if self.is_stopped() {
            return Err(SendError::Stopped);
        }
        self.peer(id).ok_or(SendError::PeerGone)
    }

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
        // Those before the first that is too large are queued; then the size error.
        let mut lens = Vec::with_capacity(payloads.len());
        let mut last = Ok(());
        for p in &payloads {
            if let Err(e) = self.check_size(channel, p) {
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
            let handed = match deadline {
                None => self.try_command(entry.shard, cmd),
                Some(d) => self.command(entry.shard, cmd, d).await,
            };
            if let Err(e) = handed {
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
        if self.is_stopped() {
            return Err(SendError::Stopped);
        }
        self.check_size(channel, &env.payload)?;
        match env.to {
            To::Peer(id) => {
                let entry = self.connected_peer(&id)?;
                let len = env.payload.len();
                entry.try_acquire(channel, len)?;
                let cmd = Command::Send {
                    conn: entry.conn,
                    channel,
                    payload: env.payload,
                };
                self.try_command(entry.shard, cmd).inspect_err(|_| {
                    entry.release(channel, len);
                })?;
                Ok(1)
            }
            To::Local => {
                let slot_tx = self.local_sender(channel)?;
                slot_tx
                    .try_send(local(channel, env.payload))
                    .map_err(|e| match e {
                        mpsc::error::TrySendError::Full(_) => SendError::Full,
                        mpsc::error::TrySendError::Closed(_) => SendError::NoReceiver,
                    })?;
                Ok(1)
            }
            To::Broadcast => {
                let n = self.broadcast_count(channel);
                for shard in 0..self.inboxes.len() {
                    self.try_command(
                        shard,
                        Command::Fanout {
                            targets: None,
                            channel,
                            payload: env.payload.clone(),
                        },
                    )?;
                }
                Ok(n)
            }
            To::Role { capability, fanout } => {
                let groups = self.role_targets(channel, &capability, fanout);
                let mut n = 0;
                for (shard, targets) in groups {
                    let k = targets.len();
                    self.try_command(
                        shard,
                        Command::Fanout {
                            targets: Some(targets),
                            channel,
                            payload: env.payload.clone(),
                        },
                    )?;
                    n += k;
                }
                Ok(n)
            }
        }
    }

    /// Sends, waiting for queue space until `deadline`; returns how many recipients the
    /// message was queued for.
    pub(crate) async fn send(
        &self,
        channel: u8,
        env: Envelope,
        deadline: Instant,
    ) -> Result<usize, SendError> {
        if self.is_stopped() {
            return Err(SendError::Stopped);
        }
        self.check_size(channel, &env.payload)?;
        match env.to {
            To::Peer(id) => {
                let entry = self.connected_peer(&id)?;
                let len = env.payload.len();
                entry.acquire(channel, len, deadline).await?;
                let cmd = Command::Send {
                    conn: entry.conn,
                    channel,
                    payload: env.payload,
                };
                if let Err(e) = self.command(entry.shard, cmd, deadline).await {
                    entry.release(channel, len);
                    return Err(e);
                }
                Ok(1)
            }
            To::Local => {
                let tx = self.local_sender(channel)?;
                match tx.try_send(local(channel, env.payload)) {
                    Ok(()) => Ok(1),
                    Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::NoReceiver),
                    Err(mpsc::error::TrySendError::Full(msg)) => {
                        match clock::timeout_at(deadline, tx.reserve()).await {
                            None => Err(SendError::Timeout),
                            Some(Err(_)) => Err(SendError::NoReceiver),
                            Some(Ok(permit)) => {
                                permit.send(msg);
                                Ok(1)
                            }
                        }
                    }
                }
            }
            To::Broadcast => {
                let n = self.broadcast_count(channel);
                for shard in 0..self.inboxes.len() {
                    let cmd = Command::Fanout {
                        targets: None,
                        channel,
                        payload: env.payload.clone(),
                    };
                    self.command(shard, cmd, deadline).await?;
                }
                Ok(n)
            }
            To::Role { capability, fanout } => {
                let groups = self.role_targets(channel, &capability, fanout);
                let mut n = 0;
                for (shard, targets) in groups {
                    let k = targets.len();
                    let cmd = Command::Fanout {
                        targets: Some(targets),
                        channel,
                        payload: env.payload.clone(),
                    };
                    self.command(shard, cmd, deadline).await?;
                    n += k;
                }
                Ok(n)
            }
        }
    }

    fn local_sender(&self, channel: u8) -> Result<mpsc::Sender<Received>, SendError> {
        self.table()
            .get(channel)
            .map(|s| s.tx.clone())
            .ok_or(SendError::NoReceiver)
    }

    fn broadcast_count(&self, channel: u8) -> usize {
        self.peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.is_alive() && e.shares(channel))
            .count()
    }

    /// The chosen peers for a role send, grouped by shard.
    fn role_targets(
        &self,
        channel: u8,
        capability: &str,
        fanout: Fanout,
    ) -> Vec<(usize, Vec<ConnId>)> {
        let mut candidates: Vec<(usize, ConnId)> = self
            .peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.is_alive() && e.shares(channel) && e.has_capability(capability))
            .map(|e| (e.shard, e.conn))
            .collect();
        let k = fanout.choose_count(candidates.len());
        self.picker.choose(&mut candidates, k);
        let mut groups: Vec<(usize, Vec<ConnId>)> = Vec::new();
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
        if let Err(e) = self.command(entry.shard, cmd, deadline).await {
            entry.release(channel, len);
            return Err(e);
        }
        // From here on, dropping this future gives the request up: the guard tells the shard,
        // which withdraws it (a CANCEL frame goes to the peer if the request is on the wire).
        let mut guard = AbandonGuard {
            router: self,
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
        if req.cancelled.is_set() {
            return Err(SendError::Cancelled);
        }
        self.check_size(req.channel, &payload)?;
        let entry = self.connected_peer(&req.peer)?;
        if entry.conn != req.conn {
            return Err(SendError::PeerGone);
        }
        self.try_command(
            req.shard,
            Command::Respond {
                conn: req.conn,
                channel: req.channel,
                id: req.id,
                payload,
            },
        )
    }

    /// Asks a shard to open a connection and waits until the peer is up.
    pub(crate) async fn dial(
        &self,
        target: crate::shard::DialTarget,
        expected: Option<NodeId>,
        deadline: Instant,
    ) -> Result<Arc<PeerInfo>, DialError> {
        if self.is_stopped() {
            return Err(DialError::Stopped);
        }
        let pending = self.gate.on_dial(expected).map_err(DialError::Refused)?;
        self.dial_with(target, expected, deadline, pending).await
    }

    /// Dials with a place the gate already holds for this dial (see [`PeerGate::on_dial`]).
    pub(crate) async fn dial_with(
        &self,
        target: crate::shard::DialTarget,
        expected: Option<NodeId>,
        deadline: Instant,
        pending: Option<Pending>,
    ) -> Result<Arc<PeerInfo>, DialError> {
        if self.is_stopped() {
            return Err(DialError::Stopped);
        }
        let shard = self.pick_shard();
        let (reply, answer) = oneshot::channel();
        let cmd = Command::Dial {
            target,
            expected,
            deadline,
            reply,
            pending,
        };
        self.command(shard, cmd, deadline)
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
    pub(crate) async fn adopt(
        &self,
        end: crate::rt::memory::MemoryEnd,
        deadline: Instant,
    ) -> Result<(), DialError> {
        if self.is_stopped() {
            return Err(DialError::Stopped);
        }
        let shard = self.pick_shard();
        self.command(shard, Command::Adopt { end }, deadline)
            .await
            .map_err(|_| DialError::Stopped)
    }

    /// Closes the connection to `peer`; returns whether it was connected.
    pub(crate) fn disconnect(&self, peer: &NodeId, reason: &str) -> bool {
        let Some(entry) = self.peer(peer) else {
            return false;
        };
        self.try_command(
            entry.shard,
            Command::Disconnect {
                conn: entry.conn,
                reason: reason.to_owned(),
            },
        )
        .is_ok()
    }
}

fn local(channel: u8, payload: Bytes) -> Received {
    Received {
        origin: Origin::Local,
        channel,
        payload,
        request: None,
    }
}

/// Withdraws a request whose caller stopped waiting (the `request` future was dropped).
struct AbandonGuard<'a> {
    router: &'a Router,
    shard: usize,
    conn: ConnId,
    armed: bool,
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: with the shard's inbox full the request still ends at its deadline,
            // when the connection's timer cancels it at the peer.
            let _ = self
                .router
                .try_command(self.shard, Command::Cancel { conn: self.conn });
        }
    }
}
