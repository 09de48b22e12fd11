//! `ringwire_node`: a running node, its peers and its peer events.
//!
//! Thread safety: every node function may be called from any thread at the same time.
//! `ringwire_node_stop` may race with other calls; they then return `RINGWIRE_RESULT_STOPPED`.
//! `ringwire_node_free` may race too: calls in progress keep the node's memory alive; later
//! calls with the freed handle return `RINGWIRE_RESULT_INVALID_HANDLE`. Channels opened from
//! the node stay valid (and report `STOPPED`) until freed.

use std::ffi::c_char;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use ringwire::node::{Node, NodeBuilder};
use ringwire::proto::conn::{ChannelDescriptor, Compression, Mode};
use ringwire::proto::secret::NodeId;
use ringwire::router::{Direction, PeerEvent, PeerEvents};

use crate::cancel::{ringwire_cancel, token_of};
use crate::channel::{CHANNELS, ringwire_channel};
use crate::config::{CONFIGS, ringwire_config};
use crate::readiness::Readiness;
use crate::registry::Registry;
use crate::result::{fail, write_text};
use crate::{deadline, guard, guard_free, non_null, read, ringwire_result, text};

/// A node ID: 20 bytes (SHA-256 of the ed25519 public key, truncated), shown as 40 hex
/// characters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ringwire_node_id {
    /// The raw bytes.
    pub bytes: [u8; 20],
}

impl From<NodeId> for ringwire_node_id {
    fn from(id: NodeId) -> Self {
        ringwire_node_id { bytes: id.0 }
    }
}

impl From<ringwire_node_id> for NodeId {
    fn from(id: ringwire_node_id) -> Self {
        NodeId(id.bytes)
    }
}

/// Kinds of `ringwire_peer_event`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringwire_peer_event_kind {
    /// A peer connected and passed every check.
    Up = 1,
    /// A peer that was up is gone.
    Down = 2,
}

/// A peer up/down event.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringwire_peer_event {
    /// A `ringwire_peer_event_kind` value.
    pub kind: u32,
    /// The peer.
    pub peer: ringwire_node_id,
    /// Up events: this node dialed the peer.
    pub outbound: bool,
    /// Up events: the connection speaks ringwire's native protocol (else stock MConnection).
    pub native: bool,
    /// Down events: why the connection ended (NUL-terminated, cut at 127 bytes); empty for up
    /// events.
    pub reason: [c_char; 128],
}

/// A node. Create with `ringwire_node_start`; free with `ringwire_node_free`.
pub struct ringwire_node {
    node: RwLock<Option<Node>>,
    events: Mutex<PeerEvents>,
    /// Readable while peer events may wait (`ringwire_node_events_fd`).
    ready: Arc<Readiness>,
    /// `ready` as a waker (made once).
    waker: Waker,
}

/// The live nodes.
pub(crate) static NODES: Registry<ringwire_node> = Registry::new();

impl ringwire_node {
    /// The running node, or `Stopped`.
    pub(crate) fn live(&self) -> Result<Node, ringwire_result> {
        self.node
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(ringwire_result::Stopped)
    }
}

/// Starts a node with the settings of `config` (which is not consumed) and writes its handle to
/// `*out_node`. The config must have a node key. Channels are opened afterwards with
/// `ringwire_node_open_channel`; those added to the config (`ringwire_config_add_channel`) are
/// registered before the node accepts or dials anyone, so every connection carries them.
///
/// # Safety
/// `config` is a live config not in use by another thread; `out_node` is valid for one pointer
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_start(
    config: *const ringwire_config,
    out_node: *mut *mut ringwire_node,
) -> ringwire_result {
    guard(|| {
        non_null(out_node)?;
        let cfg = CONFIGS
            .get(config)?
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let key = cfg
            .key
            .clone()
            .ok_or_else(|| fail(ringwire_result::NodeKey, "the config has no node key"))?;
        let b = NodeBuilder::from_config(&cfg.config, key)
            .map_err(|e| fail(ringwire_result::Config, e))?;
        let b = cfg.node_info.apply(b);
        let b = cfg.channels.iter().cloned().fold(b, NodeBuilder::channel);
        let b = match cfg.listen {
            Some(addr) => b.listen(addr),
            None => b.no_listen(),
        };
        // Subscribed before the node accepts or dials: the events of peers that come up while
        // it starts are kept for the first poll.
        let (node, events) = b
            .start_with_events()
            .map_err(|e| fail(ringwire_result::Start, e))?;
        let events = Mutex::new(events);
        let ready = Readiness::new()?;
        let waker = ready.waker();
        // Readable from the start: the first poll drains what waits and arms the waker.
        ready.signal();
        let h = NODES.insert(ringwire_node {
            node: RwLock::new(Some(node)),
            events,
            ready,
            waker,
        });
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_node = h };
        Ok(())
    })
}

/// Stops the node: closes every connection (native peers are told why), waits for them for at
/// most `timeout_ms`, and stops the shard threads. Later calls on the node and its channels
/// return `RINGWIRE_RESULT_STOPPED`; stopping twice returns `STOPPED` the second time.
///
/// # Safety
/// `node` is a live node handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_stop(
    node: *const ringwire_node,
    timeout_ms: u64,
) -> ringwire_result {
    guard(|| {
        let h = NODES.get(node)?;
        let taken = h.node.write().unwrap_or_else(|e| e.into_inner()).take();
        let n = taken.ok_or(ringwire_result::Stopped)?;
        n.shutdown_blocking(deadline(timeout_ms));
        Ok(())
    })
}

/// Stops the node if it runs (waiting at most five seconds) and frees the handle. NULL is
/// accepted and ignored.
///
/// # Safety
/// None: any pointer is accepted; only live nodes are freed. Calls in progress on other
/// threads finish first (they see the node stopped).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_free(node: *mut ringwire_node) {
    guard_free(|| {
        let Some(h) = NODES.remove(node) else {
            return;
        };
        if let Some(n) = h.node.write().unwrap_or_else(|e| e.into_inner()).take() {
            n.shutdown_blocking(deadline(5000));
        }
    })
}

/// Writes the node's ID to `*out_id`.
///
/// # Safety
/// `node` is a live node handle; `out_id` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_get_id(
    node: *const ringwire_node,
    out_id: *mut ringwire_node_id,
) -> ringwire_result {
    guard(|| {
        non_null(out_id)?;
        let id = NODES.get(node)?.live()?.node_id();
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_id = id.into() };
        Ok(())
    })
}

/// Writes the node's ID as 40 lowercase hex characters and a NUL into `buf` (41 bytes
/// suffice); `*out_written` receives 40.
///
/// # Safety
/// `node` is a live node handle; `buf` is valid for `len` bytes; `out_written` for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_get_id_hex(
    node: *const ringwire_node,
    buf: *mut c_char,
    len: usize,
    out_written: *mut usize,
) -> ringwire_result {
    guard(|| {
        let id = NODES.get(node)?.live()?.node_id();
        // SAFETY: forwarded from this function's contract.
        unsafe { write_text(&id.to_string(), buf, len, out_written) }
    })
}

/// Writes the bound listen address (such as `"127.0.0.1:40123"`) and a NUL into `buf` (64 bytes
/// suffice). Fails with `RINGWIRE_RESULT_INVALID_ARGUMENT` when the node does not listen.
///
/// # Safety
/// `node` is a live node handle; `buf` is valid for `len` bytes; `out_written` for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_listen_addr(
    node: *const ringwire_node,
    buf: *mut c_char,
    len: usize,
    out_written: *mut usize,
) -> ringwire_result {
    guard(|| {
        let n = NODES.get(node)?.live()?;
        let addr = n
            .listen_addr()
            .ok_or_else(|| fail(ringwire_result::InvalidArgument, "the node does not listen"))?;
        // SAFETY: forwarded from this function's contract.
        unsafe { write_text(&addr.to_string(), buf, len, out_written) }
    })
}

/// Opens channel `id` and writes its handle to `*out_channel`. `priority` (at least 1) sets the
/// channel's share of each link; `send_queue_capacity` bounds the messages waiting to be sent
/// to one peer on this channel, 0 taking the node's default (the configuration's
/// `limits.channel_send_queue_capacity`, 64 unless set); `recv_message_capacity` is the largest
/// message accepted, in bytes. Each channel id is opened once per node.
///
/// # Safety
/// `node` is a live node handle; `out_channel` is valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_open_channel(
    node: *const ringwire_node,
    id: u8,
    priority: u32,
    send_queue_capacity: usize,
    recv_message_capacity: usize,
    out_channel: *mut *mut ringwire_channel,
) -> ringwire_result {
    guard(|| {
        non_null(out_channel)?;
        let desc = ChannelDescriptor {
            id,
            priority,
            send_queue_capacity,
            recv_message_capacity,
            compression: Compression::Off,
        };
        open(node, desc, out_channel)
    })
}

/// Compression choices for `ringwire_channel_options.compression`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringwire_compression {
    /// Never compress (the default).
    Off = 0,
    /// zstd for messages large and compressible enough to gain, towards native peers that
    /// accept it (stock peers always get plain bytes).
    Auto = 1,
}

/// A channel's settings for `ringwire_node_open_channel_with`. The caller sets `size` to
/// `sizeof(ringwire_channel_options)`; fields a shorter (older) struct lacks take their
/// defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringwire_channel_options {
    /// `sizeof(ringwire_channel_options)`, set by the caller.
    pub size: usize,
    /// The channel's share of each link, at least 1 (default 1).
    pub priority: u32,
    /// Messages waiting to be sent to one peer on this channel; 0 takes the node's default
    /// (`limits.channel_send_queue_capacity`).
    pub send_queue_capacity: usize,
    /// The largest message accepted, in bytes, at least 1 (default 1 MiB); lowered to
    /// `limits.max_message_size`.
    pub recv_message_capacity: usize,
    /// A `ringwire_compression` value (default off).
    pub compression: u32,
}

impl Default for ringwire_channel_options {
    fn default() -> Self {
        ringwire_channel_options {
            size: size_of::<Self>(),
            priority: 1,
            send_queue_capacity: 0,
            recv_message_capacity: 1 << 20,
            compression: ringwire_compression::Off as u32,
        }
    }
}

/// Opens channel `id` with `options` and writes its handle to `*out_channel`; as
/// `ringwire_node_open_channel`, plus compression and room to grow.
///
/// # Safety
/// `node` is a live node handle; `options` is valid for reads of its `size` bytes;
/// `out_channel` is valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_open_channel_with(
    node: *const ringwire_node,
    id: u8,
    options: *const ringwire_channel_options,
    out_channel: *mut *mut ringwire_channel,
) -> ringwire_result {
    guard(|| {
        non_null(out_channel)?;
        // SAFETY: forwarded from this function's contract.
        let desc = unsafe { channel_descriptor(id, options) }?;
        open(node, desc, out_channel)
    })
}

/// The descriptor of channel `id` with `options` (a sized struct), checked: a known
/// compression value, a priority and a message capacity of at least 1.
///
/// # Safety
/// `options` is NULL or valid for reads of its `size` bytes.
pub(crate) unsafe fn channel_descriptor(
    id: u8,
    options: *const ringwire_channel_options,
) -> Result<ChannelDescriptor, ringwire_result> {
    // SAFETY: forwarded from this function's contract.
    let o = unsafe { crate::sized::read_sized(options) }?;
    let compression = match o.compression {
        0 => Compression::Off,
        1 => Compression::Auto,
        _ => {
            return Err(fail(
                ringwire_result::InvalidArgument,
                "unknown compression value",
            ));
        }
    };
    if o.priority == 0 || o.recv_message_capacity == 0 {
        return Err(fail(
            ringwire_result::InvalidArgument,
            "priority and message capacity must be at least 1",
        ));
    }
    Ok(ChannelDescriptor {
        id,
        priority: o.priority,
        send_queue_capacity: o.send_queue_capacity,
        recv_message_capacity: o.recv_message_capacity,
        compression,
    })
}

/// Opens `desc` on `node` and writes the handle to `*out_channel` (checked non-NULL).
fn open(
    node: *const ringwire_node,
    desc: ChannelDescriptor,
    out_channel: *mut *mut ringwire_channel,
) -> Result<(), ringwire_result> {
    let n = NODES.get(node)?.live()?;
    if desc.priority == 0 || desc.recv_message_capacity == 0 {
        return Err(fail(
            ringwire_result::InvalidArgument,
            "priority and message capacity must be at least 1",
        ));
    }
    let ch = n
        .open_channel(desc)
        .map_err(|e| fail(ringwire_result::Channel, e))?;
    let h = CHANNELS.insert(ringwire_channel::new(ch)?);
    // SAFETY: checked non-NULL by the callers; valid for a write by their contracts.
    unsafe { *out_channel = h };
    Ok(())
}

/// Dials `addr` (such as `"127.0.0.1:26656"`) and waits until the peer is up (handshake,
/// NodeInfo, admission). With `expected` non-NULL the peer must prove that ID. The peer's ID is
/// written to `*out_peer` when `out_peer` is non-NULL.
///
/// # Safety
/// `node` is a live node handle; `addr` is a NUL-terminated string; `expected` is NULL or valid
/// for one read; `out_peer` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_dial(
    node: *const ringwire_node,
    addr: *const c_char,
    expected: *const ringwire_node_id,
    out_peer: *mut ringwire_node_id,
) -> ringwire_result {
    // SAFETY: forwarded from this function's contract; no token.
    unsafe { ringwire_node_dial_cancellable(node, addr, expected, std::ptr::null(), out_peer) }
}

/// `ringwire_node_dial` that also gives up, with `RINGWIRE_RESULT_CANCELLED`, when `cancel`
/// (NULL: none) is fired: a TCP connect in progress is dropped, and a connection still in its
/// handshake is closed instead of admitted. A peer that came up before the token fired stays
/// connected.
///
/// # Safety
/// As `ringwire_node_dial`; `cancel` is NULL or any pointer (a handle not live is
/// `RINGWIRE_RESULT_INVALID_HANDLE`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_dial_cancellable(
    node: *const ringwire_node,
    addr: *const c_char,
    expected: *const ringwire_node_id,
    cancel: *const ringwire_cancel,
    out_peer: *mut ringwire_node_id,
) -> ringwire_result {
    guard(|| {
        let n = NODES.get(node)?.live()?;
        let token = token_of(cancel)?;
        // SAFETY: forwarded from this function's contract.
        let addr = unsafe { text(addr) }?;
        let addr = ringwire::config::parse_socket_addr(addr)
            .map_err(|e| fail(ringwire_result::InvalidArgument, e))?;
        let expected = if expected.is_null() {
            None
        } else {
            // SAFETY: non-NULL, so valid for a read by this function's contract.
            Some(NodeId::from(unsafe { read(expected) }?))
        };
        let info = match token {
            Some(t) => n.dial_blocking_cancellable(addr, expected, &t)?,
            None => n.dial_blocking(addr, expected)?,
        };
        if !out_peer.is_null() {
            // SAFETY: non-NULL; valid for a write by the caller's contract.
            unsafe { *out_peer = info.node_id.into() };
        }
        Ok(())
    })
}

/// Closes the connection to `peer`. Fails with `RINGWIRE_RESULT_PEER_GONE` when it was not
/// connected.
///
/// # Safety
/// `node` is a live node handle; `peer` is valid for one read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_disconnect(
    node: *const ringwire_node,
    peer: *const ringwire_node_id,
) -> ringwire_result {
    guard(|| {
        let n = NODES.get(node)?.live()?;
        // SAFETY: NULL or valid for a read, by this function's contract.
        let peer = NodeId::from(unsafe { read(peer) }?);
        if n.disconnect(&peer, "disconnected by the application") {
            Ok(())
        } else {
            Err(ringwire_result::PeerGone)
        }
    })
}

/// Bans `peer` for `duration_ms` milliseconds: closes its connection if it has one and refuses
/// every new connection with it, inbound or outbound, until the ban ends. A longer existing ban
/// is kept.
///
/// # Safety
/// `peer` is valid for one read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_ban(
    node: *const ringwire_node,
    peer: *const ringwire_node_id,
    duration_ms: u64,
) -> ringwire_result {
    guard(|| {
        let h = NODES.get(node)?;
        let n = h.live()?;
        // SAFETY: NULL or valid for a read, by this function's contract.
        let peer = NodeId::from(unsafe { read(peer) }?);
        // Nodes of the C ABI always run the peer manager, which keeps the ban list.
        n.ban(&peer, deadline(duration_ms));
        Ok(())
    })
}

/// Writes the number of connected peers to `*out_count`.
///
/// # Safety
/// `node` is a live node handle; `out_count` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_peer_count(
    node: *const ringwire_node,
    out_count: *mut usize,
) -> ringwire_result {
    guard(|| {
        non_null(out_count)?;
        let n = NODES.get(node)?.live()?;
        let count = n.stats().peers;
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_count = count };
        Ok(())
    })
}

/// Moves up to `cap` peer events (those since the node started, oldest first) into `events`
/// and writes how many to `*out_count`. Waits up to `timeout_ms` for the first one (0: do not
/// wait); a count of 0 means none arrived in time. Events the caller does not poll are kept up
/// to the node's event capacity, then the oldest are dropped (counted in the stats'
/// `events_lagged`).
///
/// # Safety
/// `node` is a live node handle; `events` is valid for writes of `cap` elements; `out_count`
/// for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_poll_events(
    node: *const ringwire_node,
    events: *mut ringwire_peer_event,
    cap: usize,
    timeout_ms: u64,
    out_count: *mut usize,
) -> ringwire_result {
    guard(|| {
        non_null(events)?;
        non_null(out_count)?;
        let h = NODES.get(node)?;
        h.live()?;
        let mut rx = h.events.lock().unwrap_or_else(|e| e.into_inner());
        let mut got = Vec::new();
        if cap > 0 {
            // As a channel's receive: a pending signal is cleared only when one was written,
            // then the queue drained; the eventfd is cleared for real only when nothing waits,
            // and looked at again after, so an event that came in between is not missed.
            h.ready.clear_signalled();
            drain_events(&mut rx, &h.waker, &mut got, cap);
            let until = (timeout_ms > 0).then(|| deadline(timeout_ms));
            while got.is_empty() {
                h.ready.clear();
                drain_events(&mut rx, &h.waker, &mut got, cap);
                match until {
                    Some(until) if got.is_empty() && Instant::now() < until => h.ready.wait(until),
                    _ => break,
                }
            }
            if got.len() == cap {
                // More may wait and the waker is not registered: stay readable.
                h.ready.signal();
            }
        }
        let n = got.len();
        for (i, ev) in got.into_iter().enumerate() {
            // SAFETY: i < cap and `events` is valid for `cap` elements by contract.
            unsafe { events.add(i).write(view_event(ev)) };
        }
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_count = n };
        Ok(())
    })
}

/// Takes up to `cap` events from `rx` into `got`; when none is left, `waker` is registered.
fn drain_events(rx: &mut PeerEvents, waker: &Waker, got: &mut Vec<PeerEvent>, cap: usize) {
    let mut cx = Context::from_waker(waker);
    while got.len() < cap {
        match rx.poll_recv(&mut cx) {
            Poll::Ready(Some(ev)) => got.push(ev),
            Poll::Ready(None) | Poll::Pending => break,
        }
    }
}

/// The C view of an event.
fn view_event(ev: PeerEvent) -> ringwire_peer_event {
    let mut view = ringwire_peer_event {
        kind: ringwire_peer_event_kind::Up as u32,
        peer: ringwire_node_id::default(),
        outbound: false,
        native: false,
        reason: [0; 128],
    };
    match ev {
        PeerEvent::Up {
            peer, direction, ..
        } => {
            view.peer = peer.node_id.into();
            view.outbound = direction == Direction::Outbound;
            view.native = peer.mode == Mode::Native;
        }
        PeerEvent::Down { node_id, reason } => {
            view.kind = ringwire_peer_event_kind::Down as u32;
            view.peer = node_id.into();
            let text = reason.to_string();
            for (dst, b) in view.reason.iter_mut().zip(text.bytes().take(127)) {
                *dst = b as c_char;
            }
        }
    }
    view
}

/// Writes the node's peer-event descriptor to `*out_fd`: an eventfd readable while peer events
/// may wait (and sometimes when none does), so a program can wait in its own poller and then
/// call `ringwire_node_poll_events` with a timeout of 0. The descriptor belongs to the node: do
/// not close it; `ringwire_node_free` closes it.
///
/// # Safety
/// `node` is a live node handle; `out_fd` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_events_fd(
    node: *const ringwire_node,
    out_fd: *mut std::ffi::c_int,
) -> ringwire_result {
    guard(|| {
        non_null(out_fd)?;
        let h = NODES.get(node)?;
        h.live()?;
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_fd = h.ready.raw_fd() };
        Ok(())
    })
}

/// A snapshot of a node's counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ringwire_node_stats {
    /// Connected peers.
    pub peers: u64,
    /// Role-addressed sends skipped because a peer's queue was full.
    pub fanout_dropped: u64,
    /// Responses that arrived after their request gave up.
    pub late_responses: u64,
    /// Connections refused by admission (limits, duplicates, policy).
    pub refused: u64,
    /// Connections closed for a protocol error.
    pub protocol_errors: u64,
    /// Connections closed for a socket error.
    pub io_errors: u64,
    /// Inbound connections accepted.
    pub accepted: u64,
    /// Inbound connections refused at accept.
    pub accept_refused: u64,
    /// Peer events lost because a subscriber fell behind.
    pub events_lagged: u64,
    /// Reads that found no lent read buffer free.
    pub read_buffers_exhausted: u64,
    /// Accepts that failed (out of descriptors or memory); the listener paused after each.
    pub accept_errors: u64,
    /// Connections closed for sending more control frames per second than
    /// `limits.max_control_frames_per_second` (also in `protocol_errors`).
    pub control_floods: u64,
    /// Connections closed for holding more partly received bytes than
    /// `limits.max_partial_bytes_per_peer` or, with all peers, `limits.max_partial_bytes`
    /// (also in `protocol_errors`).
    pub partial_budget_exceeded: u64,
    /// Messages accepted for a peer that its connection then refused for good and dropped.
    pub queued_dropped: u64,
    /// PEX addresses dropped for exceeding their peer's rate (`limits.pex_address_rate`).
    pub pex_addresses_rate_limited: u64,
    /// PEX addresses refused by policy (own, unusable, non-routable, private, hearsay about a
    /// node's own announced address, a full book).
    pub pex_addresses_refused: u64,
    /// PEX addresses evicted from a full address book.
    pub pex_addresses_evicted: u64,
    /// Outbound peers let go to make room for a peer with a capability below its target
    /// (`p2p.capability_targets`).
    pub pex_capability_replacements: u64,
    /// Messages whose delivery deadline (`deliver_within_ms`) passed before they were written
    /// to the peer, dropped.
    pub expired_before_send: u64,
    /// Received messages whose time-to-live ran out before the application took them,
    /// dropped.
    pub expired_before_delivery: u64,
}

/// Writes a snapshot of the node's counters to `*out_stats`.
///
/// # Safety
/// `out_stats` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_get_stats(
    node: *const ringwire_node,
    out_stats: *mut ringwire_node_stats,
) -> ringwire_result {
    guard(|| {
        non_null(out_stats)?;
        let s = NODES.get(node)?.live()?.stats();
        let wide = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let snapshot = ringwire_node_stats {
            peers: wide(s.peers),
            fanout_dropped: s.fanout_dropped,
            late_responses: s.late_responses,
            refused: s.refused,
            protocol_errors: s.protocol_errors,
            io_errors: s.io_errors,
            accepted: s.accepted,
            accept_refused: s.accept_refused,
            events_lagged: s.events_lagged,
            read_buffers_exhausted: s.read_buffers_exhausted,
            accept_errors: s.accept_errors,
            control_floods: s.control_floods,
            partial_budget_exceeded: s.partial_budget_exceeded,
            queued_dropped: s.queued_dropped,
            pex_addresses_rate_limited: s.pex_addresses_rate_limited,
            pex_addresses_refused: s.pex_addresses_refused,
            pex_addresses_evicted: s.pex_addresses_evicted,
            pex_capability_replacements: s.pex_capability_replacements,
            expired_before_send: s.expired_before_send,
            expired_before_delivery: s.expired_before_delivery,
        };
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_stats = snapshot };
        Ok(())
    })
}
