//! `ringwire_channel`: sending, receiving, requests and responses on one channel, and
//! `ringwire_batch`, the owner of received messages.
//!
//! Receiving: `ringwire_channel_recv` drains the engine's receive queue of the channel
//! directly, and the channel's eventfd (`Readiness`) is woken by the thread that delivers a
//! message, so a caller can wait in its own poller (`poll`, `epoll`, Go's netpoller) and then
//! drain. The eventfd may be readable when nothing waits (a spurious wakeup returns 0
//! messages); it is never left unreadable while messages wait.
//!
//! Thread safety: every channel function may be called from any thread at the same time
//! (receives are serialised inside). After `ringwire_channel_free` the handle is rejected with
//! `RINGWIRE_RESULT_INVALID_HANDLE`. A batch belongs to one thread at a time; its views stay valid until
//! `ringwire_batch_release`, even after the channel or node is freed.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::proto::secret::NodeId;
use ringwire::router::{
    Channel, ChannelReceiver, ChannelSender, Envelope, Fanout, Origin, PendingRequest, Received,
};

use crate::buffer::{BUFFERS, ringwire_buffer};
use crate::cancel::{ringwire_cancel, token_of};
use crate::node::ringwire_node_id;
use crate::payloads::{CHUNK, Payloads};
use crate::readiness::Readiness;
use crate::registry::Registry;
use crate::result::fail;
use crate::{bytes, deadline, guard, guard_free, non_null, read, ringwire_result, text};

/// Requests received and not yet answered that a channel remembers; beyond this the oldest is
/// forgotten (its asker times out).
const MAX_PENDING_REQUESTS: usize = 4096;

/// The most messages one receive moves at a time, whatever the caller's array holds (bounds
/// the library's own allocation per call).
const MAX_BATCH: usize = 4096;

/// Destinations of a `ringwire_envelope`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringwire_to {
    /// One connected peer (`peer`).
    Peer = 0,
    /// Every connected peer that shares the channel.
    Broadcast = 1,
    /// This node's own receiver of the channel.
    Local = 2,
    /// Native peers that announced the capability `role`, as many as `fanout` says.
    Role = 3,
}

/// How many of the peers with a role a role-addressed envelope reaches.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringwire_fanout {
    /// Every such peer.
    All = 0,
    /// At most `fanout_count` of them, chosen at random.
    Count = 1,
    /// The fraction `fanout_fraction` (0.0 to 1.0) of them, rounded up, chosen at random.
    Fraction = 2,
}

/// A message to send and its destination. The payload is copied during the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringwire_envelope {
    /// A `ringwire_to` value.
    pub to: u32,
    /// The peer, for `RINGWIRE_TO_PEER`.
    pub peer: ringwire_node_id,
    /// The capability (NUL-terminated), for `RINGWIRE_TO_ROLE`; otherwise ignored.
    pub role: *const c_char,
    /// A `ringwire_fanout` value, for `RINGWIRE_TO_ROLE`.
    pub fanout: u32,
    /// For `RINGWIRE_FANOUT_COUNT`.
    pub fanout_count: usize,
    /// For `RINGWIRE_FANOUT_FRACTION`.
    pub fanout_fraction: f64,
    /// The bytes (may be NULL when `payload_len` is 0).
    pub payload: *const u8,
    /// Their length.
    pub payload_len: usize,
    /// Delivery deadline in milliseconds from the call (0: none): a message not written to
    /// the peer by then is dropped, and a native peer drops it if its remaining time-to-live
    /// runs out before its application takes it (both counted in the node's stats,
    /// `expired_before_send` and `expired_before_delivery`).
    pub deliver_within_ms: u64,
}

/// A view of one received message, valid until its batch is released.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringwire_message {
    /// The sender (all zero for a local message).
    pub peer: ringwire_node_id,
    /// The message came from this node (`RINGWIRE_TO_LOCAL`).
    pub local: bool,
    /// The channel it arrived on.
    pub channel: u8,
    /// The bytes, exactly as sent; owned by the batch.
    pub payload: *const u8,
    /// Their length.
    pub payload_len: usize,
    /// Non-zero when the message is a request: pass it to `ringwire_channel_respond`.
    pub request_id: u64,
}

/// The live channels.
pub(crate) static CHANNELS: Registry<ringwire_channel> = Registry::new();

/// The batches not yet released.
static BATCHES: Registry<ringwire_batch> = Registry::new();

/// Received messages owned by the library until `ringwire_batch_release`.
pub struct ringwire_batch {
    _messages: Vec<Received>,
}

/// The receive side of a channel handle.
struct Inbox {
    /// The engine's queue; `None` once the handle is freed.
    rx: Option<ChannelReceiver>,
    /// Messages taken from the queue when the channel was opened (to register the waker),
    /// handed out first.
    early: Vec<Received>,
}

impl Inbox {
    /// Moves waiting messages into `got` until it holds `cap` or the queue is empty; when it
    /// is empty, `waker` is registered and wakes at the next message. Returns whether the
    /// engine closed the queue (the node stopped) and it is drained.
    fn pull(&mut self, waker: &Waker, got: &mut Vec<Received>, cap: usize) -> bool {
        if !self.early.is_empty() {
            let n = self.early.len().min(cap - got.len());
            got.extend(self.early.drain(..n));
        }
        let Some(rx) = self.rx.as_mut() else {
            return true;
        };
        let mut cx = Context::from_waker(waker);
        while got.len() < cap {
            match rx.poll_recv_many(&mut cx, got, cap - got.len()) {
                Poll::Ready(0) => return true,
                Poll::Ready(_) => {}
                Poll::Pending => break,
            }
        }
        false
    }
}

/// Requests received and not yet answered, by the id handed to C. Apart from the inbox, so a
/// response never waits for a receive blocked on another thread.
struct Pending {
    requests: BTreeMap<u64, PendingRequest>,
    next_id: u64,
}

/// An open channel. Create with `ringwire_node_open_channel`; free with
/// `ringwire_channel_free`.
pub struct ringwire_channel {
    id: u8,
    sender: ChannelSender,
    inbox: Mutex<Inbox>,
    pending: Mutex<Pending>,
    /// The eventfd; also the waker a receive leaves with the engine's queue.
    ready: Arc<Readiness>,
    /// `ready` as a waker (made once).
    waker: Waker,
    /// Set by `ringwire_channel_free`: a receive blocked on another thread returns `Stopped`.
    stop: AtomicBool,
    /// Recycled chunks for copies of small payloads.
    payloads: Arc<Payloads>,
}

impl ringwire_channel {
    /// Up to `cap` messages, waiting up to `timeout_ms` for the first (0: do not wait).
    /// `Stopped` once the handle was freed, or the node stopped and every message was taken.
    /// Leaves the eventfd readable if messages may still wait, or the waker registered.
    fn receive(&self, cap: usize, timeout_ms: u64) -> Result<Vec<Received>, ringwire_result> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        let mut got = Vec::with_capacity(cap);
        if cap == 0 {
            return Ok(got);
        }
        // The hot path: a pending signal is cleared (one read) only when the flag says one
        // was written; then the queue is drained.
        self.ready.clear_signalled();
        let mut closed = inbox.pull(&self.waker, &mut got, cap);
        let until = (timeout_ms > 0).then(|| deadline(timeout_ms));
        while got.is_empty() && !closed {
            if self.stop.load(Ordering::Acquire) {
                return Err(ringwire_result::Stopped);
            }
            // Nothing waits: clear the eventfd for real (a stray readable state would make a
            // poller spin) and look again, so a message that arrived before the clear is not
            // missed; the waker is registered by that look.
            self.ready.clear();
            closed = inbox.pull(&self.waker, &mut got, cap);
            match until {
                Some(until) if got.is_empty() && !closed && Instant::now() < until => {
                    self.ready.wait(until);
                }
                _ => break,
            }
        }
        if got.len() == cap {
            // More may wait and the waker is not registered: keep the eventfd readable (at
            // worst one spurious wakeup).
            self.ready.signal();
        }
        if got.is_empty() && (closed || self.stop.load(Ordering::Acquire)) {
            return Err(ringwire_result::Stopped);
        }
        Ok(got)
    }

    /// Wraps an engine channel and arms its eventfd.
    pub(crate) fn new(ch: Channel) -> Result<Self, ringwire_result> {
        let id = ch.id();
        let (sender, receiver) = ch.split();
        let ready = Readiness::new()?;
        let waker = ready.waker();
        let mut inbox = Inbox {
            rx: Some(receiver),
            early: Vec::new(),
        };
        // Register the waker now, so that a message arriving before the first receive makes
        // the eventfd readable. Registering means polling, which takes what already waits:
        // those messages are kept for the first receive, and signalled.
        let mut got = Vec::new();
        let closed = inbox.pull(&waker, &mut got, MAX_BATCH);
        if !got.is_empty() || closed {
            ready.signal();
        }
        inbox.early = got;
        Ok(ringwire_channel {
            id,
            sender,
            inbox: Mutex::new(inbox),
            pending: Mutex::new(Pending {
                requests: BTreeMap::new(),
                next_id: 1,
            }),
            ready,
            waker,
            stop: AtomicBool::new(false),
            payloads: Payloads::new(),
        })
    }
}

/// Frees a channel and closes its eventfd. Messages not yet received are dropped; batches
/// already returned stay valid. NULL is accepted and ignored.
///
/// # Safety
/// None: any pointer is accepted; only live channels are freed. A receive in progress on
/// another thread returns `RINGWIRE_RESULT_STOPPED` before the free completes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_channel_free(channel: *mut ringwire_channel) {
    guard_free(|| {
        let Some(h) = CHANNELS.remove(channel) else {
            return;
        };
        h.stop.store(true, Ordering::Release);
        // Wakes a receive blocked on the eventfd; it sees `stop` and returns, releasing the
        // inbox. Dropping the engine's receiver then closes the channel's queue.
        h.ready.signal();
        let mut inbox = h.inbox.lock().unwrap_or_else(|e| e.into_inner());
        inbox.rx = None;
        inbox.early.clear();
    })
}

/// Writes the channel's eventfd to `*out_fd`: it is readable while messages wait (and may be
/// spuriously readable). The descriptor belongs to the channel: do not close it; it is closed
/// by `ringwire_channel_free`.
///
/// # Safety
/// `channel` is a live channel handle; `out_fd` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_channel_fd(
    channel: *const ringwire_channel,
    out_fd: *mut std::ffi::c_int,
) -> ringwire_result {
    guard(|| {
        non_null(out_fd)?;
        let h = CHANNELS.get(channel)?;
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_fd = h.ready.raw_fd() };
        Ok(())
    })
}

/// Converts one C envelope whose payload was already copied into `payload`.
///
/// # Safety
/// The envelope's pointers are valid as its documentation says.
unsafe fn envelope(e: &ringwire_envelope, payload: Bytes) -> Result<Envelope, ringwire_result> {
    // SAFETY: forwarded from this function's contract.
    let env = unsafe { destination(e, payload) }?;
    Ok(if e.deliver_within_ms > 0 {
        env.deliver_within(Duration::from_millis(e.deliver_within_ms))
    } else {
        env
    })
}

/// The destination part of [`envelope`].
///
/// # Safety
/// As [`envelope`].
unsafe fn destination(e: &ringwire_envelope, payload: Bytes) -> Result<Envelope, ringwire_result> {
    Ok(match e.to {
        t if t == ringwire_to::Peer as u32 => Envelope::peer(e.peer.into(), payload),
        t if t == ringwire_to::Broadcast as u32 => Envelope::broadcast(payload),
        t if t == ringwire_to::Local as u32 => Envelope::local(payload),
        t if t == ringwire_to::Role as u32 => {
            // SAFETY: forwarded from this function's contract.
            let role = unsafe { text(e.role) }?;
            let fanout = match e.fanout {
                f if f == ringwire_fanout::All as u32 => Fanout::All,
                f if f == ringwire_fanout::Count as u32 => Fanout::Count(e.fanout_count),
                f if f == ringwire_fanout::Fraction as u32 && e.fanout_fraction.is_finite() => {
                    Fanout::Fraction(e.fanout_fraction.clamp(0.0, 1.0))
                }
                _ => return Err(fail(ringwire_result::InvalidArgument, "unknown fanout")),
            };
            Envelope::role(role, fanout, payload)
        }
        _ => {
            return Err(fail(
                ringwire_result::InvalidArgument,
                "unknown destination",
            ));
        }
    })
}

/// The run of sends to one peer at the start of `envs` that is copied and queued in one go,
/// and whether its copies share a chunk; `None` when the first envelope is not such a send
/// (another destination, a payload over [`CHUNK`] or a NULL payload pointer: it goes on its
/// own). A run takes consecutive sends to the same peer with valid payload pointers,
/// [`CHUNK`] bytes at most in all; its copies share a chunk only when they fill at least a
/// quarter of it (so a chunk's memory is at most four times the payload it holds). (A
/// broadcast's one copy already serves every peer; and a peer that falls behind skips
/// broadcasts, so a chunk of broadcasts could be held by one message each.)
///
/// # Safety
/// The envelopes' pointers are valid as their documentation says.
unsafe fn copy_run(envs: &[ringwire_envelope]) -> Option<(usize, bool)> {
    // Envelopes with a delivery deadline go one by one, each as an `Envelope` carrying it.
    let packable = |e: &ringwire_envelope| {
        e.to == ringwire_to::Peer as u32
            && e.deliver_within_ms == 0
            && e.payload_len <= CHUNK
            && (e.payload_len == 0 || !e.payload.is_null())
    };
    let first = envs.first().filter(|e| packable(e))?;
    let mut total = 0;
    let run = envs
        .iter()
        .take_while(|e| {
            let fits =
                packable(e) && e.peer.bytes == first.peer.bytes && total + e.payload_len <= CHUNK;
            if fits {
                total += e.payload_len;
            }
            fits
        })
        .count();
    Some((run, total >= CHUNK / 4))
}

/// Sends `count` envelopes in order, waiting up to `timeout_ms` in all for queue space
/// (0: do not wait; a full queue fails with `RINGWIRE_RESULT_FULL`). Payloads are copied; the
/// caller may reuse its buffers when the call returns.
///
/// `*out_queued` receives how many envelopes were queued — also on failure, when it is the
/// index of the envelope that failed (the one output this library writes on failure, so the
/// caller knows where to resume).
///
/// # Safety
/// `channel` is a live channel handle; `envelopes` is valid for reads of `count` elements, each
/// with its pointers valid; `out_queued` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_channel_send(
    channel: *const ringwire_channel,
    envelopes: *const ringwire_envelope,
    count: usize,
    timeout_ms: u64,
    out_queued: *mut usize,
) -> ringwire_result {
    guard(|| {
        non_null(out_queued)?;
        let h = CHANNELS.get(channel)?;
        let envs: &[ringwire_envelope] = if count == 0 {
            &[]
        } else {
            non_null(envelopes)?;
            // SAFETY: non-NULL and valid for `count` elements by contract.
            unsafe { std::slice::from_raw_parts(envelopes, count) }
        };
        let until = deadline(timeout_ms);
        let mut queued = 0;
        let mut outcome = Ok(());
        while queued < envs.len() {
            let rest = &envs[queued..];
            // SAFETY: forwarded from this function's contract.
            let sent = match unsafe { copy_run(rest) } {
                // A run to one peer: copied, then handed over in as few steps as the queue's
                // room allows.
                Some((run, shared)) => {
                    let parts = rest[..run].iter().map(|e| {
                        // SAFETY: valid by this function's contract; `copy_run` checked that
                        // the pointer is not NULL, so this never fails.
                        unsafe { bytes(e.payload, e.payload_len) }.unwrap_or_default()
                    });
                    let mut copies = Vec::with_capacity(run);
                    if shared {
                        h.payloads.pack(parts, &mut copies);
                    } else {
                        copies.extend(parts.map(Bytes::copy_from_slice));
                    }
                    let peer = NodeId::from(rest[0].peer);
                    let (n, result) = if timeout_ms == 0 {
                        h.sender.try_send_many(peer, copies)
                    } else {
                        h.sender.send_many_blocking(peer, copies, until)
                    };
                    queued += n;
                    result.map_err(ringwire_result::from)
                }
                None => {
                    let e = &rest[0];
                    // SAFETY: forwarded from this function's contract.
                    unsafe { bytes(e.payload, e.payload_len) }
                        .map(Bytes::copy_from_slice)
                        // SAFETY: forwarded from this function's contract.
                        .and_then(|payload| unsafe { envelope(e, payload) })
                        .and_then(|env| {
                            if timeout_ms == 0 {
                                h.sender.try_send(env).map_err(ringwire_result::from)
                            } else {
                                h.sender
                                    .send_blocking(env, until)
                                    .map_err(ringwire_result::from)
                            }
                        })
                        .map(|_| queued += 1)
                }
            };
            if let Err(code) = sent {
                outcome = Err(code);
                break;
            }
        }
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_queued = queued };
        outcome
    })
}

/// Sends a buffer's bytes to the destination `envelope` names, without copying them: the
/// queued message refers to the buffer. The envelope's `payload` and `payload_len` are ignored.
/// The first send freezes the buffer (its bytes must not change from then on); it can be sent
/// again, to the same or other peers, and stays the caller's to free whatever the result.
/// Waits up to `timeout_ms` for queue space (0: do not wait; a full queue fails with
/// `RINGWIRE_RESULT_FULL`).
///
/// # Safety
/// `channel` is a live channel handle, `buffer` a live buffer handle; `envelope` is valid for
/// one read, with its pointers (the role) valid as its documentation says.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_channel_send_buffer(
    channel: *const ringwire_channel,
    envelope: *const ringwire_envelope,
    buffer: *const ringwire_buffer,
    timeout_ms: u64,
) -> ringwire_result {
    guard(|| {
        let h = CHANNELS.get(channel)?;
        let b = BUFFERS.get(buffer)?;
        // SAFETY: valid for one read by this function's contract.
        let e = unsafe { read(envelope) }?;
        // SAFETY: the role pointer is valid by this function's contract.
        let env = unsafe { self::envelope(&e, b.share()) }?;
        if timeout_ms == 0 {
            h.sender.try_send(env).map_err(ringwire_result::from)?;
        } else {
            h.sender
                .send_blocking(env, deadline(timeout_ms))
                .map_err(ringwire_result::from)?;
        }
        Ok(())
    })
}

/// Fills `messages` with up to `cap` received messages and writes their count to `*out_count`
/// and the batch that owns their bytes to `*out_batch` (NULL when the count is 0). Waits up to
/// `timeout_ms` for the first message (0: do not wait). Release the batch with
/// `ringwire_batch_release`; the views are valid until then. Once the node has stopped and
/// every message was taken, fails with `RINGWIRE_RESULT_STOPPED`.
///
/// # Safety
/// `channel` is a live channel handle; `messages` is valid for writes of `cap` elements;
/// `out_batch` and `out_count` for one write each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_channel_recv(
    channel: *const ringwire_channel,
    messages: *mut ringwire_message,
    cap: usize,
    timeout_ms: u64,
    out_batch: *mut *mut ringwire_batch,
    out_count: *mut usize,
) -> ringwire_result {
    guard(|| {
        non_null(messages)?;
        non_null(out_batch)?;
        non_null(out_count)?;
        let h = CHANNELS.get(channel)?;
        let mut got = h.receive(cap.min(MAX_BATCH), timeout_ms)?;
        for (i, m) in got.iter_mut().enumerate() {
            let request_id = match m.request.take() {
                Some(req) => {
                    let mut p = h.pending.lock().unwrap_or_else(|e| e.into_inner());
                    let rid = p.next_id;
                    p.next_id += 1;
                    if p.requests.len() >= MAX_PENDING_REQUESTS {
                        p.requests.pop_first();
                    }
                    p.requests.insert(rid, req);
                    rid
                }
                None => 0,
            };
            let view = view(m.origin, m.channel, &m.payload, request_id);
            // SAFETY: i < cap and `messages` is valid for `cap` elements by contract.
            unsafe { messages.add(i).write(view) };
        }
        let n = got.len();
        // The batch keeps the received messages themselves (their requests moved out above):
        // no second vector of payloads.
        let batch = if n == 0 {
            std::ptr::null_mut()
        } else {
            BATCHES.insert(ringwire_batch { _messages: got })
        };
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe {
            *out_batch = batch;
            *out_count = n;
        }
        Ok(())
    })
}

/// Releases `release` (a batch of an earlier receive; NULL for none), then receives exactly as
/// `ringwire_channel_recv` does: a receive loop's release and next receive in one call. The
/// batch is released whatever the receive's outcome.
///
/// # Safety
/// As `ringwire_channel_recv`; `release` may be any pointer (only live batches are freed) and
/// its views must not be read afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_channel_recv_next(
    channel: *const ringwire_channel,
    release: *mut ringwire_batch,
    messages: *mut ringwire_message,
    cap: usize,
    timeout_ms: u64,
    out_batch: *mut *mut ringwire_batch,
    out_count: *mut usize,
) -> ringwire_result {
    // SAFETY: any pointer is accepted; forwarded from this function's contract.
    unsafe { ringwire_batch_release(release) };
    // SAFETY: forwarded from this function's contract.
    unsafe { ringwire_channel_recv(channel, messages, cap, timeout_ms, out_batch, out_count) }
}

fn view(origin: Origin, channel: u8, payload: &Bytes, request_id: u64) -> ringwire_message {
    let (peer, local) = match origin {
        Origin::Local => (ringwire_node_id::default(), true),
        Origin::Peer(id) => (id.into(), false),
    };
    ringwire_message {
        peer,
        local,
        channel,
        payload: payload.as_ptr(),
        payload_len: payload.len(),
        request_id,
    }
}

/// Frees a batch and the message bytes its views point to. NULL is accepted and ignored.
///
/// # Safety
/// None for the call: any pointer is accepted; only live batches are freed. The caller must
/// not read the batch's views afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_batch_release(batch: *mut ringwire_batch) {
    guard_free(|| {
        drop(BATCHES.remove(batch));
    })
}

/// Sends a request to `peer` (a native ringwire peer) and waits up to `timeout_ms` for its
/// response; writes the response's view to `*out_response` and the batch that owns it to
/// `*out_batch`.
///
/// # Safety
/// `channel` is a live channel handle; `peer` is valid for one read; `payload` for
/// `payload_len` bytes; `out_response` and `out_batch` for one write each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_channel_request(
    channel: *const ringwire_channel,
    peer: *const ringwire_node_id,
    payload: *const u8,
    payload_len: usize,
    timeout_ms: u64,
    out_response: *mut ringwire_message,
    out_batch: *mut *mut ringwire_batch,
) -> ringwire_result {
    // SAFETY: forwarded from this function's contract; no token.
    unsafe {
        ringwire_channel_request_cancellable(
            channel,
            peer,
            payload,
            payload_len,
            timeout_ms,
            std::ptr::null(),
            out_response,
            out_batch,
        )
    }
}

/// `ringwire_channel_request` that also gives up, with `RINGWIRE_RESULT_CANCELLED`, when
/// `cancel` (NULL: none) is fired: the request is withdrawn (the peer is told if it has it) and
/// a late response is dropped.
///
/// # Safety
/// As `ringwire_channel_request`; `cancel` is NULL or any pointer (a handle not live is
/// `RINGWIRE_RESULT_INVALID_HANDLE`).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // C has no tuples: each argument is one value.
pub unsafe extern "C" fn ringwire_channel_request_cancellable(
    channel: *const ringwire_channel,
    peer: *const ringwire_node_id,
    payload: *const u8,
    payload_len: usize,
    timeout_ms: u64,
    cancel: *const ringwire_cancel,
    out_response: *mut ringwire_message,
    out_batch: *mut *mut ringwire_batch,
) -> ringwire_result {
    guard(|| {
        non_null(out_response)?;
        non_null(out_batch)?;
        let h = CHANNELS.get(channel)?;
        let token = token_of(cancel)?;
        // SAFETY: NULL or valid for a read, by this function's contract.
        let peer = NodeId::from(unsafe { read(peer) }?);
        // SAFETY: forwarded from this function's contract.
        let body = Bytes::copy_from_slice(unsafe { bytes(payload, payload_len) }?);
        let response = match token {
            Some(t) => {
                h.sender
                    .request_blocking_cancellable(peer, body, deadline(timeout_ms), &t)?
            }
            None => h
                .sender
                .request_blocking(peer, body, deadline(timeout_ms))?,
        };
        let v = view(Origin::Peer(peer), h.id, &response, 0);
        let batch = BATCHES.insert(ringwire_batch {
            _messages: vec![Received {
                origin: Origin::Peer(peer),
                channel: h.id,
                payload: response,
                request: None,
                deliver_by: None,
            }],
        });
        // SAFETY: checked non-NULL; valid for writes by the caller's contract.
        unsafe {
            *out_response = v;
            *out_batch = batch;
        }
        Ok(())
    })
}

/// Answers the request `request_id` (from a received message's `request_id`) with `payload`.
/// Each request is answered at most once; an unknown or answered id fails with
/// `RINGWIRE_RESULT_UNKNOWN_REQUEST`.
///
/// # Safety
/// `channel` is a live channel handle; `payload` is valid for `payload_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_channel_respond(
    channel: *const ringwire_channel,
    request_id: u64,
    payload: *const u8,
    payload_len: usize,
) -> ringwire_result {
    guard(|| {
        let h = CHANNELS.get(channel)?;
        // SAFETY: forwarded from this function's contract.
        let body = Bytes::copy_from_slice(unsafe { bytes(payload, payload_len) }?);
        let req = h
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .remove(&request_id)
            .ok_or(ringwire_result::UnknownRequest)?;
        h.sender.respond(req, body)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_peer(peer: u8, payload: &[u8]) -> ringwire_envelope {
        ringwire_envelope {
            to: ringwire_to::Peer as u32,
            peer: ringwire_node_id { bytes: [peer; 20] },
            role: std::ptr::null(),
            fanout: 0,
            fanout_count: 0,
            fanout_fraction: 0.0,
            payload: payload.as_ptr(),
            payload_len: payload.len(),
            deliver_within_ms: 0,
        }
    }

    fn run(envs: &[ringwire_envelope]) -> Option<(usize, bool)> {
        // SAFETY: every envelope points at a live slice of its length.
        unsafe { copy_run(envs) }
    }

    #[test]
    fn runs_share_a_chunk_only_when_they_fill_a_quarter_of_it() {
        let small = [0u8; 100];
        let four = [0u8; 4096];
        let whole = vec![0u8; CHUNK];
        let over = vec![0u8; CHUNK + 1];
        assert_eq!(
            run(&[to_peer(1, &small)]),
            Some((1, false)),
            "one small message"
        );
        assert_eq!(
            run(&[to_peer(1, &small), to_peer(1, &small)]),
            Some((2, false)),
            "200 bytes: copied one by one"
        );
        let many = vec![to_peer(1, &four); 20];
        assert_eq!(run(&many), Some((16, true)), "16 of 4 KiB fill a chunk");
        assert_eq!(
            run(&many[16..]),
            Some((4, true)),
            "the last four fill a quarter"
        );
        assert_eq!(run(&[to_peer(1, &whole)]), Some((1, true)), "64 KiB alone");
        assert_eq!(run(&[to_peer(1, &over)]), None, "over a chunk: on its own");
        let mixed = [
            to_peer(1, &four),
            to_peer(1, &four),
            to_peer(1, &four),
            to_peer(1, &four),
            to_peer(2, &four),
        ];
        assert_eq!(run(&mixed), Some((4, true)), "another peer ends the run");
        let broadcast = ringwire_envelope {
            to: ringwire_to::Broadcast as u32,
            ..to_peer(1, &whole)
        };
        assert_eq!(run(&[broadcast]), None, "broadcasts go on their own");
        let null = ringwire_envelope {
            payload: std::ptr::null(),
            ..to_peer(1, &four)
        };
        assert_eq!(
            run(&[to_peer(1, &whole[..20_000]), null]),
            Some((1, true)),
            "a NULL payload ends the run (and fails on its own)"
        );
    }
}
