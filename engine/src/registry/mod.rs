//! The registry of connected peers: the state every shard and the router share.
//!
//! It holds who is connected ([`PeerEntry`]: identity, owning shard, per-channel send credit
//! and traffic counters), the channel table new connections start with, the admission gate,
//! the peer events the application subscribes to, and the node's counters. Shards register and
//! remove peers here and deliver into the channel table; the router (above the shards) looks
//! peers up here to address its commands. The registry itself never talks to a shard.
#![forbid(unsafe_code)]

mod delivery;
mod error;
mod events;
mod finished;
mod gate;
mod peer;
mod received;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use futures_util::task::AtomicWaker;

use tokio::sync::broadcast;

use crate::proto::conn::ChannelDescriptor;
use crate::proto::nodeinfo::{MAX_NUM_CHANNELS, RINGWIRE_CAPABILITY_CHANNEL};
use crate::proto::secret::NodeId;

#[cfg(test)]
pub(crate) use delivery::test_message;
pub(crate) use delivery::{Closed, DeliveryRx, DeliveryTx, delivery_queue};
pub use error::{DialError, DownReason, SendError};
pub use events::PeerEvents;
pub(crate) use finished::{FinishedRequests, RequestTicket};
pub use gate::{DefaultGate, PeerGate, Pending, Verdict};
pub(crate) use peer::PeerEntry;
pub use peer::{ChannelTraffic, PeerEvent, PeerSummary, PeerTraffic};
pub(crate) use received::{CancelFlag, RequestHandle};
pub use received::{Origin, PendingRequest, Received};

/// Which end opened a connection (one type for the whole crate).
pub use crate::peers::Direction;

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
    pub(crate) accept_errors: AtomicU64,
    pub(crate) events_lagged: AtomicU64,
    pub(crate) read_buffers_exhausted: AtomicU64,
    pub(crate) multishot_arms: AtomicU64,
    pub(crate) multishot_receives: AtomicU64,
    pub(crate) zero_copy_writes: AtomicU64,
    // PEX's address counts (`pex::PexStats`), published by its service.
    pub(crate) pex_addresses_rate_limited: AtomicU64,
    pub(crate) pex_addresses_refused: AtomicU64,
    pub(crate) pex_addresses_evicted: AtomicU64,
    pub(crate) pex_capability_replacements: AtomicU64,
    pub(crate) control_floods: AtomicU64,
    pub(crate) queued_dropped: AtomicU64,
    pub(crate) expired_before_send: AtomicU64,
    pub(crate) expired_before_delivery: AtomicU64,
    pub(crate) partial_budget_exceeded: AtomicU64,
}

/// A snapshot of the node's counters. Serialises as an object with one field per counter
/// (what `ringwire stats` prints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
    /// Accepts that failed (out of file descriptors or memory); after each the listener
    /// pauses for `Limits::accept_backoff`.
    pub accept_errors: u64,
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
    /// PEX addresses dropped because their peer sent more than its token bucket allows
    /// (`limits.pex_address_rate`, `limits.pex_address_burst`).
    pub pex_addresses_rate_limited: u64,
    /// PEX addresses refused by policy (ours, unusable, non-routable under
    /// `p2p.addr_book_strict`, a private node's from hearsay, hearsay about a node that
    /// announced its own address, or a book full of announced addresses).
    pub pex_addresses_refused: u64,
    /// PEX addresses evicted from a full address book for a new one.
    pub pex_addresses_evicted: u64,
    /// Misbehaviour recorded against peers' scores: protocol violations (filled by the node
    /// when it runs a peer manager, as are the other score counters).
    pub offences_protocol_violation: u64,
    /// Misbehaviour: PEX rule breaks.
    pub offences_pex_abuse: u64,
    /// Misbehaviour: a peer's partial-message budget exceeded.
    pub offences_budget_exceeded: u64,
    /// Misbehaviour: control-frame floods.
    pub offences_control_flood: u64,
    /// Misbehaviour: keepalive or handshake timeouts.
    pub offences_timeout: u64,
    /// Node IDs banned by score, whose last offence was a protocol violation.
    pub bans_protocol_violation: u64,
    /// Node IDs banned by score for PEX rule breaks.
    pub bans_pex_abuse: u64,
    /// Node IDs banned by score, last offence a partial-message budget exceeded.
    pub bans_budget_exceeded: u64,
    /// Node IDs banned by score, last offence a control-frame flood.
    pub bans_control_flood: u64,
    /// Node IDs banned by score, last offence a timeout.
    pub bans_timeout: u64,
    /// Addresses banned as repeat offenders (several of their IDs banned within an hour).
    pub address_bans: u64,
    /// Outbound peers let go to make room for a peer with a capability below its target
    /// (`p2p.capability_targets`).
    pub pex_capability_replacements: u64,
    /// Connections closed because the peer sent more control frames per second than allowed
    /// (`limits.max_control_frames_per_second`; also counted in `protocol_errors`).
    pub control_floods: u64,
    /// Messages accepted for a peer that its connection then refused for good — larger than
    /// the peer's own cap for the channel (a native peer's, known from its HELLO), or the
    /// connection closing — and dropped.
    pub queued_dropped: u64,
    /// Messages sent with a delivery deadline (`Envelope::deliver_by`) that passed before they
    /// were written to the peer, dropped (held by the shard or queued in the connection).
    pub expired_before_send: u64,
    /// Messages received with a time-to-live (native peers) that ran out before the
    /// application took them, dropped.
    pub expired_before_delivery: u64,
    /// Connections closed because a reassembly buffer would have grown past the per-peer or
    /// the node-wide budget for partly received messages (`limits.max_partial_bytes_per_peer`,
    /// `limits.max_partial_bytes`; also counted in `protocol_errors`).
    pub partial_budget_exceeded: u64,
}

/// A channel this node runs: its descriptor and the sending side of its receive queue.
pub(crate) struct ChannelSlot {
    pub(crate) desc: ChannelDescriptor,
    pub(crate) tx: DeliveryTx,
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

/// Settings the registry needs.
#[derive(Clone, Debug)]
pub(crate) struct RegistryConfig {
    pub(crate) local_id: NodeId,
    pub(crate) recv_queue_capacity: usize,
    pub(crate) peer_event_capacity: usize,
    /// Payload bytes waiting to be sent to one peer, all channels together.
    pub(crate) max_peer_send_bytes: usize,
    /// Send queue capacity of channels registered with 0.
    pub(crate) channel_send_queue_capacity: usize,
    /// Largest message any channel carries: a larger receive cap is lowered to it.
    pub(crate) max_message_size: usize,
}

/// What a successful admission leaves: the registered peer, and the connection it replaced
/// (already invisible to senders; its owning shard must be told to close it).
pub(crate) struct Admitted {
    pub(crate) entry: Arc<PeerEntry>,
    pub(crate) replaced: Option<Arc<PeerEntry>>,
}

/// The shared peer and channel state of one node.
pub(crate) struct Registry {
    pub(crate) local_id: NodeId,
    table: RwLock<Arc<ChannelTable>>,
    receivers: Mutex<HashMap<u8, DeliveryRx>>,
    recv_queue_capacity: usize,
    /// Each peer's byte budget for sending ([`PeerEntry::with_send_budget`]).
    pub(crate) max_peer_send_bytes: usize,
    channel_send_queue_capacity: usize,
    max_message_size: usize,
    peers: RwLock<HashMap<NodeId, Arc<PeerEntry>>>,
    events: broadcast::Sender<PeerEvent>,
    /// The wakers of subscribers waiting for an event ([`PeerEvents::poll_recv`]); one per
    /// live subscription, pruned as subscriptions go.
    event_wakers: Mutex<Vec<Weak<AtomicWaker>>>,
    stopped: AtomicBool,
    next_conn: AtomicU64,
    gate: Arc<dyn PeerGate>,
    pub(crate) stats: Stats,
}

impl Registry {
    pub(crate) fn new(config: RegistryConfig, gate: Arc<dyn PeerGate>) -> Self {
        let (events, _) = broadcast::channel(config.peer_event_capacity.max(1));
        Registry {
            local_id: config.local_id,
            table: RwLock::new(Arc::new(ChannelTable::default())),
            receivers: Mutex::new(HashMap::new()),
            recv_queue_capacity: config.recv_queue_capacity.max(1),
            max_peer_send_bytes: config.max_peer_send_bytes,
            channel_send_queue_capacity: config.channel_send_queue_capacity.max(1),
            max_message_size: config.max_message_size.max(1),
            peers: RwLock::new(HashMap::new()),
            events,
            event_wakers: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            gate,
            stats: Stats::default(),
        }
    }

    // ---- channels -------------------------------------------------------------------------
    /// The channel table new connections use.
    pub(crate) fn table(&self) -> Arc<ChannelTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Registers a channel (new connections carry it) without handing out its receiver. A
    /// descriptor without a send queue capacity (0) takes the node's default; a receive cap
    /// above the node's largest message is lowered to it.
    pub(crate) fn register_channel(&self, mut desc: ChannelDescriptor) -> Result<(), ChannelError> {
        if desc.send_queue_capacity == 0 {
            desc.send_queue_capacity = self.channel_send_queue_capacity;
        }
        desc.recv_message_capacity = desc.recv_message_capacity.min(self.max_message_size);
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
        let (tx, rx) = delivery_queue(self.recv_queue_capacity);
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

    /// Hands out the receiving side of a registered channel (once).
    pub(crate) fn take_receiver(&self, id: u8) -> Result<DeliveryRx, ChannelError> {
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .ok_or(ChannelError::AlreadyOpen(id))
    }

    /// The largest message `channel` carries (`None`: no such channel).
    pub(crate) fn max_message(&self, channel: u8) -> Option<usize> {
        // Under the read lock, without cloning the table's `Arc` (two more atomic operations
        // on a line every sending thread shares).
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .map(|s| s.desc.recv_message_capacity)
    }

    // ---- peers ----------------------------------------------------------------------------

    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The admission gate.
    pub(crate) fn gate(&self) -> &dyn PeerGate {
        &*self.gate
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

    pub(crate) fn peer_count(&self) -> usize {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Admits an authenticated peer through the gate and registers it. On success the caller
    /// owns announcing it ([`Registry::announce_up`]) and closing the connection it replaced.
    pub(crate) fn admit(
        &self,
        entry: PeerEntry,
        pending: Option<Pending>,
    ) -> Result<Admitted, String> {
        if self.is_stopped() {
            return Err("node is shutting down".into());
        }
        let id = entry.node_id();
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        let existing = peers.get(&id).map(|e| e.summary());
        let mut replaced = None;
        match self.gate.admit(
            &entry.info,
            entry.direction,
            entry.addr,
            existing.as_ref(),
            pending,
        ) {
            Verdict::Accept if existing.is_none() => {}
            Verdict::Accept => return Err("already connected to this peer".into()),
            Verdict::Reject(reason) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(reason);
            }
            Verdict::ReplaceExisting => {
                if let Some(old) = peers.remove(&id) {
                    old.mark_gone();
                    replaced = Some(old);
                }
            }
        }
        let entry = Arc::new(entry);
        peers.insert(id, entry.clone());
        Ok(Admitted { entry, replaced })
    }

    /// Announces a registered peer.
    pub(crate) fn announce_up(&self, entry: &PeerEntry) {
        self.publish(PeerEvent::Up {
            peer: entry.info.clone(),
            direction: entry.direction,
            addr: entry.addr,
        });
    }

    /// Sends `event` to every subscription and wakes those waiting in `poll_recv`.
    fn publish(&self, event: PeerEvent) {
        let _ = self.events.send(event);
        let mut wakers = self.event_wakers.lock().unwrap_or_else(|e| e.into_inner());
        wakers.retain(|w| match w.upgrade() {
            Some(w) => {
                w.wake();
                true
            }
            None => false,
        });
    }

    /// Registers a subscription's waker (see [`PeerEvents::poll_recv`]).
    pub(crate) fn add_event_waker(&self, waker: &Arc<AtomicWaker>) {
        self.event_wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(waker));
    }

    /// Removes a peer's registration and announces it down, if the registration is still this
    /// connection's.
    pub(crate) fn peer_down(&self, entry: &PeerEntry, reason: DownReason) {
        entry.mark_gone();
        let id = entry.node_id();
        let registered = {
            let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
            let registered = peers.get(&id).is_some_and(|e| e.conn == entry.conn);
            if registered {
                peers.remove(&id);
                // Under the lock, like `admit`: the gate sees registrations and removals in
                // the order they happen.
                self.gate.on_down(id, &reason);
            }
            registered
        };
        // A connection that a newer one to the same peer replaced goes quietly: the peer is
        // still up, and a `Down` now would make subscribers (PEX among them) drop what they
        // keep about a connected peer.
        if registered {
            self.publish(PeerEvent::Down {
                node_id: id,
                reason,
            });
        }
    }

    /// Subscribes to peer events from now on.
    pub(crate) fn subscribe(self: &Arc<Self>) -> PeerEvents {
        PeerEvents::new(self.clone())
    }

    fn raw_events(&self) -> broadcast::Receiver<PeerEvent> {
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
            accept_errors: s.accept_errors.load(Ordering::Relaxed),
            events_lagged: s.events_lagged.load(Ordering::Relaxed),
            read_buffers_exhausted: s.read_buffers_exhausted.load(Ordering::Relaxed),
            multishot_arms: s.multishot_arms.load(Ordering::Relaxed),
            multishot_receives: s.multishot_receives.load(Ordering::Relaxed),
            zero_copy_writes: s.zero_copy_writes.load(Ordering::Relaxed),
            pex_addresses_rate_limited: s.pex_addresses_rate_limited.load(Ordering::Relaxed),
            pex_addresses_refused: s.pex_addresses_refused.load(Ordering::Relaxed),
            pex_addresses_evicted: s.pex_addresses_evicted.load(Ordering::Relaxed),
            // The peer manager's score counters: the node fills them.
            offences_protocol_violation: 0,
            offences_pex_abuse: 0,
            offences_budget_exceeded: 0,
            offences_control_flood: 0,
            offences_timeout: 0,
            bans_protocol_violation: 0,
            bans_pex_abuse: 0,
            bans_budget_exceeded: 0,
            bans_control_flood: 0,
            bans_timeout: 0,
            address_bans: 0,
            pex_capability_replacements: s.pex_capability_replacements.load(Ordering::Relaxed),
            control_floods: s.control_floods.load(Ordering::Relaxed),
            queued_dropped: s.queued_dropped.load(Ordering::Relaxed),
            expired_before_send: s.expired_before_send.load(Ordering::Relaxed),
            expired_before_delivery: s.expired_before_delivery.load(Ordering::Relaxed),
            partial_budget_exceeded: s.partial_budget_exceeded.load(Ordering::Relaxed),
        }
    }

    /// The live peers that share `channel` and pass `filter`, as `(shard, conn)`, each tagged
    /// with `tag` of its entry.
    pub(crate) fn targets_with<T>(
        &self,
        channel: u8,
        filter: impl Fn(&PeerEntry) -> bool,
        tag: impl Fn(&PeerEntry) -> T,
    ) -> Vec<(T, (usize, ConnId))> {
        self.peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.is_alive() && e.shares(channel) && filter(e))
            .map(|e| (tag(e), (e.shard, e.conn)))
            .collect()
    }

    /// How many live peers share `channel`.
    pub(crate) fn sharing(&self, channel: u8) -> usize {
        self.peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.is_alive() && e.shares(channel))
            .count()
    }
}
