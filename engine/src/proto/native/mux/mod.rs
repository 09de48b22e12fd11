//! The native multiplexer: channels, flow control, scheduling, requests and keepalive over
//! record plaintexts.
//!
//! A [`Mux`] is sans-IO. A driver feeds it the plaintext of each record the record layer
//! opens and polls it for record plaintexts to seal and for application events. The driver's
//! loop, in order:
//!
//! 1. for each opened record, [`Mux::handle_record`] (or [`Mux::handle_record_bytes`]);
//!    [`Mux::wants_input`] turning false is a hint to read less from this peer for a while —
//!    flow control bounds the multiplexer's memory either way, and reading on keeps PINGs
//!    answered while the application is slow;
//! 2. [`Mux::handle_timeout`] when [`Mux::poll_timeout`] has passed;
//! 3. drain [`Mux::poll_event`] (taking messages returns credit to the peer);
//! 4. while [`Mux::poll_record`] writes a record, seal and send it; after
//!    [`Mux::is_finished`], flush and close the transport.
//!
//! On an error from `handle_record` or `handle_timeout` the multiplexer has queued a RESET;
//! step 4 sends it.
//!
//! A request the peer sent holds one of its `max_inflight_requests` places until the
//! application is done with it: it answers ([`Mux::respond`]) or gives it up
//! ([`Mux::finish_request`]). The peer's CANCEL only marks the request: an application still
//! working on it keeps the place taken, so request-and-CANCEL pairs cannot pile up unbounded
//! work ("rapid reset"). Peers that set [`FEATURE_CANCEL_ACK`](super::frame::FEATURE_CANCEL_ACK)
//! get an empty RESPONSE when a cancelled request's place frees, and count it until then.
//! Budgets (`proto::budget`): every frame but DATA spends the peer's control-frame budget
//! (except a WINDOW_UPDATE backed by a DATA frame we sent and a CANCEL of a request we hold);
//! reassembly buffers grow only within the partial-message budget. At most
//! `recv_queue_capacity` messages wait for the application: DATA arriving beyond that is held
//! as received (its credit charged, so the peer's windows bound it) and taken up as the
//! application takes messages, while PING, PONG and WINDOW_UPDATE are handled at once.

mod held;
mod recv;
mod send;
mod timers;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::codec::{NoCodec, PayloadCodec};
use super::config::NativeConfig;
use super::error::{ConfigError, MuxError, MuxQueueError};
use super::event::{DropReason, MessageKind, MuxEvent, RequestId, ResetCode};
use super::flow::{RecvWindow, SendWindow};
use super::frame::{Hello, HelloChannel, truncate_reason};
use super::scheduler::Scheduler;
use super::spares::SpareBuffers;
use super::stats::MuxStats;
use crate::proto::budget::{ControlRate, PartialBytes};
use crate::proto::by_channel::ByChannel;

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Smallest record budget `poll_record` works with; smaller budgets are raised to it so that a
/// HELLO always fits.
pub const MIN_RECORD_BUDGET: usize = 4096;

const NO_CHANNEL: u8 = u8::MAX;

/// An outgoing message in a channel's send queue.
#[derive(Debug)]
struct OutMessage {
    payload: Bytes,
    kind: MessageKind,
    /// Bytes of `payload` already sent.
    offset: usize,
    /// The first chunk is out (the codec has run).
    started: bool,
    compressed: bool,
    /// Deliver by then or not at all: dropped if it passes before the first chunk is
    /// written; sent to a peer with `FEATURE_DEADLINE` as the remaining time-to-live.
    deliver_by: Option<Instant>,
}

/// A message being reassembled.
#[derive(Debug)]
struct Partial {
    /// COMPRESSED, REQUEST and RESPONSE bits of the first chunk.
    msg_flags: u8,
    request_id: Option<u64>,
    /// Taken from the connection's spares when one fits (`spares.rs`).
    buf: Vec<u8>,
    len: usize,
    /// Credit held for chunks of this message.
    uncredited: u32,
    /// Received only to be dropped (a response nobody waits for).
    discard: bool,
    /// Arrival of the first chunk plus the time-to-live it carried.
    deliver_by: Option<Instant>,
}

#[derive(Debug)]
struct Channel {
    id: u8,
    send_queue_capacity: usize,
    max_message: usize,
    queue: VecDeque<OutMessage>,
    /// Credit granted by the peer; meaningful once the peer's HELLO lists the channel.
    tx_window: SendWindow,
    /// The peer's maximum message size, once its HELLO lists the channel.
    peer_max_message: Option<usize>,
    rx_window: RecvWindow,
    partial: Option<Partial>,
    /// Complete messages of this channel waiting for the application.
    queued: usize,
    /// Scheduling weight, as configured: a channel yields credit to busier higher ones.
    priority: u32,
    /// When DATA last went out or came in on this channel.
    last_data: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    Queued,
    Sending,
    Sent,
}

#[derive(Debug)]
struct OutRequest {
    idx: usize,
    deadline: Instant,
    state: OutState,
    /// Cancelled while its chunks were going out: send CANCEL after the last one.
    cancel_after_send: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InState {
    Receiving,
    Queued,
    Delivered,
    /// The peer cancelled it after the application took it; the application still holds it.
    Cancelled,
    /// The application is done with it without an answer; the peer has not cancelled it yet
    /// (it still waits for an answer until its deadline, and counts the request until then).
    Abandoned,
}

#[derive(Debug)]
struct InRequest {
    idx: usize,
    state: InState,
}

#[derive(Debug)]
enum Pending {
    Message {
        idx: usize,
        payload: Bytes,
        kind: MessageKind,
        uncredited: u32,
        deliver_by: Option<Instant>,
    },
    Event(MuxEvent),
}

#[derive(Debug)]
struct Keepalive {
    next_ping: Instant,
    /// A PING to write.
    ping_pending: Option<u64>,
    /// The PING we wait on: value, time written (once written), PONG deadline.
    outstanding: Option<(u64, Option<Instant>, Instant)>,
    counter: u64,
    /// The latest PING value to answer.
    pong_pending: Option<u64>,
    rtt: Option<std::time::Duration>,
    /// The smallest round trip measured so far (the path's delay without queueing).
    min_rtt: Option<std::time::Duration>,
}

/// What the peer told us in its HELLO, once agreed.
#[derive(Debug)]
struct PeerInfo {
    version: u16,
    compression: bool,
    /// The peer acknowledges our CANCELs and wants its own acknowledged
    /// ([`FEATURE_CANCEL_ACK`](super::frame::FEATURE_CANCEL_ACK)).
    cancel_ack: bool,
    /// The peer accepts DATA with a time-to-live
    /// ([`FEATURE_DEADLINE`](super::frame::FEATURE_DEADLINE)).
    deadline: bool,
    max_inflight_requests: u32,
    hello: Hello,
}

/// The native stream multiplexer of one connection.
///
/// Generic over the [`PayloadCodec`] that compresses payloads; [`Mux::new`] uses [`NoCodec`].
/// See the module documentation for the order a driver calls it in.
#[derive(Debug)]
pub struct Mux<C: PayloadCodec = NoCodec> {
    config: NativeConfig,
    codec: C,
    channels: Vec<Channel>,
    index: ByChannel<u8>,
    scheduler: Scheduler,
    peer: Option<PeerInfo>,
    hello_pending: bool,
    keepalive: Keepalive,
    cancels: VecDeque<u64>,
    next_request_id: u64,
    outbound: BTreeMap<u64, OutRequest>,
    deadlines: BTreeSet<(Instant, u64)>,
    /// Requests whose first chunk is out and that still count against the peer's limit.
    started_requests: usize,
    /// Our requests cancelled at a peer that acknowledges CANCELs, with their channel index:
    /// they count in `started_requests` until their (empty or late) response arrives.
    awaiting_ack: BTreeMap<u64, usize>,
    inbound: BTreeMap<u64, InRequest>,
    events: VecDeque<Pending>,
    queued_messages: usize,
    close_pending: Option<String>,
    reset_pending: Option<(ResetCode, String)>,
    /// CLOSE or RESET written: nothing more goes out.
    output_done: bool,
    close_sent: bool,
    peer_closed: bool,
    /// RESET sent, received or queued, or a fatal error: input is ignored.
    reset: bool,
    stats: MuxStats,
    /// The peer's control-frame budget.
    control: ControlRate,
    /// WINDOW_UPDATEs the peer may send without spending that budget: one per DATA frame we
    /// sent (a receiver returns the credit of a chunk at most once).
    earned_updates: u64,
    /// Bytes held in reassembly buffers, reserved from the partial-message budget.
    partial_bytes: PartialBytes,
    /// Reassembly buffers back from the application, for the next large message.
    spares: Arc<SpareBuffers>,
    /// Whole frames received while `recv_queue_capacity` messages waited: DATA (credit already
    /// charged) and the CANCEL and CLOSE frames behind it, taken up in order by `poll_event`.
    /// Each is a slice of its shared record, or its own copy (held.rs).
    held: VecDeque<Bytes>,
    /// Bytes of the frames in `held`.
    held_len: usize,
    /// CANCEL frames in `held`.
    held_cancels: usize,
    /// Request ids with chunks in `held`, and how many chunks each.
    held_requests: BTreeMap<u64, u32>,
    /// A CLOSE is in `held`: the peer's input has ended.
    held_close: bool,
    /// The latest time the driver passed in: what `poll_event` checks deadlines against.
    now: Instant,
    /// The earliest delivery deadline among queued unstarted messages (or earlier): when it
    /// passes, the send queues are swept for expired messages.
    next_expiry: Option<Instant>,
}

impl Mux<NoCodec> {
    /// A multiplexer without compression. Queues our HELLO.
    pub fn new(config: NativeConfig, now: Instant) -> Result<Self, ConfigError> {
        Self::with_codec(config, NoCodec, now)
    }
}

impl<C: PayloadCodec> Mux<C> {
    /// Where this connection's reassembly buffers come back to when the application drops the
    /// messages handed out of them; the record opener can share it (`spares.rs`).
    pub fn spares(&self) -> &Arc<SpareBuffers> {
        &self.spares
    }

    /// Bytes allocated for partly received messages, all channels together (tests of how
    /// much a first chunk makes the receiver hold).
    #[cfg(test)]
    pub(crate) fn partial_capacity(&self) -> usize {
        self.channels
            .iter()
            .filter_map(|c| c.partial.as_ref())
            .map(|p| p.buf.capacity())
            .sum()
    }

    /// Messages in `channel`'s send queue (tests of credit policy).
    #[cfg(test)]
    pub(crate) fn queued_messages_out(&self, channel: u8) -> usize {
        self.channel_index(channel)
            .and_then(|i| self.channels.get(i))
            .map_or(0, |c| c.queue.len())
    }

    /// Credit the peer granted us on `channel` (tests of credit policy).
    #[cfg(test)]
    pub(crate) fn send_credit(&self, channel: u8) -> Option<u32> {
        let idx = self.channel_index(channel)?;
        self.channels.get(idx).map(|c| c.tx_window.available())
    }

    /// A multiplexer that compresses with `codec` where both sides offer it. Queues our HELLO.
    pub fn with_codec(config: NativeConfig, codec: C, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut index = ByChannel::new(NO_CHANNEL);
        let mut channels = Vec::with_capacity(config.channels.len());
        for (i, c) in config.channels.iter().enumerate() {
            // At most 64 channels: the index fits a u8 below NO_CHANNEL.
            index[c.id] = i as u8;
            channels.push(Channel {
                id: c.id,
                send_queue_capacity: c.send_queue_capacity,
                max_message: c.recv_message_capacity,
                queue: VecDeque::new(),
                tx_window: SendWindow::new(0),
                peer_max_message: None,
                rx_window: RecvWindow::new(c.initial_window, now),
                partial: None,
                queued: 0,
                priority: c.priority,
                last_data: None,
            });
        }
        let scheduler = Scheduler::new(config.channels.iter().map(|c| c.priority), now);
        let control = ControlRate::new(config.max_control_frames_per_second, now);
        let partial_bytes = PartialBytes::new(config.partial_budget.clone());
        // One receive window's worth: about what the application can hold of this
        // connection's messages at once, so what comes back fits.
        let spares = SpareBuffers::new(
            config
                .channels
                .iter()
                .map(|c| c.initial_window as usize)
                .max()
                .unwrap_or(0),
        );
        let keepalive = Keepalive {
            // The first PING goes out at once: its round trip sizes the credit caps (flow.rs).
            next_ping: now,
            ping_pending: None,
            outstanding: None,
            counter: 0,
            pong_pending: None,
            rtt: None,
            min_rtt: None,
        };
        Ok(Self {
            config,
            codec,
            channels,
            index,
            scheduler,
            peer: None,
            hello_pending: true,
            keepalive,
            cancels: VecDeque::new(),
            next_request_id: 1,
            outbound: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            started_requests: 0,
            awaiting_ack: BTreeMap::new(),
            inbound: BTreeMap::new(),
            events: VecDeque::new(),
            queued_messages: 0,
            close_pending: None,
            reset_pending: None,
            output_done: false,
            close_sent: false,
            peer_closed: false,
            reset: false,
            stats: MuxStats::default(),
            control,
            earned_updates: 0,
            partial_bytes,
            spares,
            held: VecDeque::new(),
            held_len: 0,
            held_cancels: 0,
            held_requests: BTreeMap::new(),
            held_close: false,
            now,
            next_expiry: None,
        })
    }

    /// The HELLO this side sends.
    pub fn local_hello(&self) -> Hello {
        let mut channels: Vec<HelloChannel> = self
            .config
            .channels
            .iter()
            .map(|c| HelloChannel {
                id: c.id,
                initial_window: c.initial_window,
                max_message: u32::try_from(c.recv_message_capacity).unwrap_or(u32::MAX),
            })
            .collect();
        channels.sort_by_key(|c| c.id);
        Hello {
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            features: super::frame::FEATURE_CANCEL_ACK
                | super::frame::FEATURE_DEADLINE
                | if self.codec.enabled() {
                    super::frame::FEATURE_COMPRESSION
                } else {
                    0
                },
            max_inflight_requests: self.config.max_inflight_requests,
            capabilities: self.config.capabilities.clone(),
            channels,
        }
    }

    /// Whether our HELLO has been written out by [`poll_record`](Self::poll_record).
    pub fn hello_sent(&self) -> bool {
        !self.hello_pending
    }

    /// The peer's HELLO, once received.
    pub fn peer_hello(&self) -> Option<&Hello> {
        self.peer.as_ref().map(|p| &p.hello)
    }

    /// The negotiated protocol version, once the peer's HELLO is in.
    pub fn version(&self) -> Option<u16> {
        self.peer.as_ref().map(|p| p.version)
    }

    /// Counters.
    pub fn stats(&self) -> &MuxStats {
        &self.stats
    }

    /// The codec.
    pub fn codec_mut(&mut self) -> &mut C {
        &mut self.codec
    }

    /// The round-trip time of the latest answered PING.
    pub fn rtt(&self) -> Option<std::time::Duration> {
        self.keepalive.rtt
    }

    /// Whether the driver should keep reading records from this peer: false while as many
    /// received messages wait for the application as `recv_queue_capacity`, or once the peer's
    /// input has ended. A pacing hint only: a driver that reads on gets its PINGs answered,
    /// and DATA beyond the bound is held within the peer's credit.
    pub fn wants_input(&self) -> bool {
        !self.reset
            && !self.peer_closed
            && !self.held_close
            && self.queued_messages < self.config.recv_queue_capacity
    }

    /// Received messages waiting for the application (at most `recv_queue_capacity`).
    pub fn queued_messages(&self) -> usize {
        self.queued_messages
    }

    /// Bytes of received frames held until the application takes messages.
    pub fn held_bytes(&self) -> usize {
        self.held_len
    }

    /// Bytes held in partly received messages (reserved from the partial-message budget).
    pub fn partial_bytes(&self) -> usize {
        self.partial_bytes.held()
    }

    /// Whether nothing more will be written: CLOSE sent and received, or RESET sent or received.
    /// The driver flushes what it has and closes the transport.
    pub fn is_finished(&self) -> bool {
        (self.close_sent && self.peer_closed) || (self.reset && self.reset_pending.is_none())
    }

    fn channel_index(&self, id: u8) -> Option<usize> {
        match self.index[id] {
            NO_CHANNEL => None,
            i => Some(usize::from(i)),
        }
    }

    fn accepting(&self) -> bool {
        !self.reset && !self.peer_closed && self.close_pending.is_none() && !self.close_sent
    }

    /// Common checks of send, request and respond; returns the channel index.
    fn check_send(&self, channel: u8, len: usize) -> Result<usize, MuxQueueError> {
        if !self.accepting() {
            return Err(MuxQueueError::Closed);
        }
        let idx = self
            .channel_index(channel)
            .ok_or(MuxQueueError::UnknownChannel(channel))?;
        let ch = self
            .channels
            .get(idx)
            .ok_or(MuxQueueError::UnknownChannel(channel))?;
        let max = match (&self.peer, ch.peer_max_message) {
            (Some(_), None) => return Err(MuxQueueError::UnknownChannel(channel)),
            (Some(_), Some(m)) => m,
            (None, _) => ch.max_message,
        };
        if len > max {
            return Err(MuxQueueError::TooLarge { len, max });
        }
        if ch.queue.len() >= ch.send_queue_capacity {
            return Err(MuxQueueError::Full);
        }
        Ok(idx)
    }

    fn enqueue(&mut self, idx: usize, payload: Bytes, kind: MessageKind) {
        self.enqueue_by(idx, payload, kind, None);
    }

    fn enqueue_by(
        &mut self,
        idx: usize,
        payload: Bytes,
        kind: MessageKind,
        deliver_by: Option<Instant>,
    ) {
        if let Some(ch) = self.channels.get_mut(idx) {
            ch.queue.push_back(OutMessage {
                payload,
                kind,
                offset: 0,
                started: false,
                compressed: false,
                deliver_by,
            });
            if let (Some(d), MessageKind::Plain) = (deliver_by, kind) {
                self.next_expiry = Some(self.next_expiry.map_or(d, |n| n.min(d)));
            }
        }
    }

    /// Queues a message on `channel`.
    pub fn send(&mut self, channel: u8, payload: Bytes) -> Result<(), MuxQueueError> {
        self.send_by(channel, payload, None)
    }

    /// Queues a message on `channel` that is worth delivering only until `deliver_by`
    /// (`None`: no deadline). It is dropped (counted in `expired_before_send`) if the deadline
    /// passes before its first chunk is written; a peer that announced `FEATURE_DEADLINE`
    /// receives its remaining time-to-live and drops it if that runs out before its
    /// application takes it. A full queue is first swept of expired messages.
    pub fn send_by(
        &mut self,
        channel: u8,
        payload: Bytes,
        deliver_by: Option<Instant>,
    ) -> Result<(), MuxQueueError> {
        let idx = match self.check_send(channel, payload.len()) {
            Err(MuxQueueError::Full) if self.expire_queued(self.now) > 0 => {
                self.check_send(channel, payload.len())?
            }
            r => r?,
        };
        self.enqueue_by(idx, payload, MessageKind::Plain, deliver_by);
        Ok(())
    }

    /// Advances the multiplexer's clock (deadlines of received messages are checked against
    /// it in [`poll_event`](Self::poll_event)); `handle_record`, `handle_timeout` and
    /// `poll_record` advance it too. Never moves it back.
    pub fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Drops the unstarted plain messages whose delivery deadline is at or before `now` from
    /// every send queue (requests have their own deadline and time out through
    /// `handle_timeout`). Returns how many were dropped. Runs only once the earliest known
    /// deadline has passed, so it costs nothing while no deadline is due.
    pub(super) fn expire_queued(&mut self, now: Instant) -> usize {
        match self.next_expiry {
            Some(n) if n <= now => {}
            _ => return 0,
        }
        let mut dropped = 0;
        let mut next: Option<Instant> = None;
        for ch in &mut self.channels {
            ch.queue.retain(|m| {
                let Some(d) = m
                    .deliver_by
                    .filter(|_| !m.started && m.kind == MessageKind::Plain)
                else {
                    return true;
                };
                if d <= now {
                    dropped += 1;
                    false
                } else {
                    next = Some(next.map_or(d, |n| n.min(d)));
                    true
                }
            });
        }
        self.next_expiry = next;
        self.stats.expired_before_send += dropped as u64;
        dropped
    }

    /// Queues a request on `channel`; its response arrives as a [`MuxEvent::Message`] of kind
    /// [`MessageKind::Response`] with the returned id, or [`MuxEvent::RequestTimedOut`] after
    /// `deadline`.
    pub fn request(
        &mut self,
        channel: u8,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<RequestId, MuxQueueError> {
        let idx = self.check_send(channel, payload.len())?;
        if self.outbound.len() + self.awaiting_ack.len()
            >= self.config.max_inflight_requests as usize
        {
            return Err(MuxQueueError::TooManyRequests);
        }
        let id = self.next_request_id;
        self.next_request_id = id.checked_add(1).ok_or(MuxQueueError::TooManyRequests)?;
        self.outbound.insert(
            id,
            OutRequest {
                idx,
                deadline,
                state: OutState::Queued,
                cancel_after_send: false,
            },
        );
        self.deadlines.insert((deadline, id));
        // A request carries no time-to-live: its deadline is enforced by its timeout here and
        // the CANCEL that follows (a receiver-side expiry of requests is not in yet).
        self.enqueue(idx, payload, MessageKind::Request(RequestId(id)));
        Ok(RequestId(id))
    }

    /// Queues the response to a request received on `channel`, which frees the request's
    /// place among those the peer may have in flight. A request the peer has cancelled is
    /// finished without sending `payload` (the peer gets an empty response instead when it
    /// asked for CANCEL acknowledgements).
    pub fn respond(
        &mut self,
        channel: u8,
        request: RequestId,
        payload: Bytes,
    ) -> Result<(), MuxQueueError> {
        if !self.accepting() {
            return Err(MuxQueueError::Closed);
        }
        let state = match (self.inbound.get(&request.0), self.channel_index(channel)) {
            (Some(r), Some(idx)) if r.idx == idx => r.state,
            _ => return Err(MuxQueueError::UnknownRequest(request)),
        };
        match state {
            InState::Cancelled => {
                self.finish_request(request);
                Ok(())
            }
            InState::Delivered | InState::Abandoned => {
                let idx = self.check_send(channel, payload.len())?;
                self.inbound.remove(&request.0);
                self.enqueue(idx, payload, MessageKind::Response(request));
                Ok(())
            }
            InState::Receiving | InState::Queued => Err(MuxQueueError::UnknownRequest(request)),
        }
    }

    /// The application is done with request `id` the peer sent, without answering it (it
    /// dropped the request). A request the peer cancelled frees its place now (acknowledged
    /// to a peer that asks for that); one the peer still waits on keeps its place until the
    /// peer's CANCEL, as the peer counts it until then. Returns whether `id` was a request the
    /// application held.
    pub fn finish_request(&mut self, id: RequestId) -> bool {
        let Some(r) = self.inbound.get_mut(&id.0) else {
            return false;
        };
        match r.state {
            InState::Delivered => {
                r.state = InState::Abandoned;
                true
            }
            InState::Cancelled => {
                let idx = r.idx;
                self.inbound.remove(&id.0);
                self.ack_cancel(idx, id.0);
                true
            }
            InState::Receiving | InState::Queued | InState::Abandoned => false,
        }
    }

    /// A request the peer sent expired before the application took it: as if the application
    /// had given it up unanswered (the peer, past its deadline too, cancels it, which frees
    /// its place).
    pub(super) fn expire_inbound(&mut self, id: u64) {
        if let Some(r) = self.inbound.get_mut(&id) {
            r.state = InState::Abandoned;
        }
    }

    /// Acknowledges the peer's CANCEL of request `id` on channel `idx` with an empty response,
    /// if the peer asked for acknowledgements. Not limited by the send queue's capacity: there
    /// is at most one per request the peer may have in flight.
    fn ack_cancel(&mut self, idx: usize, id: u64) {
        if self.accepting() && self.peer.as_ref().is_some_and(|p| p.cancel_ack) {
            self.enqueue(idx, Bytes::new(), MessageKind::Response(RequestId(id)));
            self.stats.cancel_acks_out += 1;
        }
    }

    /// Whether the peer acknowledges our CANCELs (so a cancelled request counts against its
    /// limit until the acknowledgement arrives).
    fn peer_acks_cancels(&self) -> bool {
        self.peer.as_ref().is_some_and(|p| p.cancel_ack)
    }

    /// Cancels a request we sent. Returns whether it was still pending. A request not yet on
    /// the wire is simply dropped; otherwise the peer gets a CANCEL (after the request's last
    /// chunk) and a late response is dropped.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        self.withdraw(id.0)
    }

    /// Stops tracking outbound request `id`, sending CANCEL when the peer holds it.
    fn withdraw(&mut self, id: u64) -> bool {
        let Some(r) = self.outbound.get_mut(&id) else {
            return false;
        };
        if r.cancel_after_send {
            return false;
        }
        self.deadlines.remove(&(r.deadline, id));
        match r.state {
            OutState::Queued => {
                let idx = r.idx;
                self.outbound.remove(&id);
                if let Some(ch) = self.channels.get_mut(idx) {
                    ch.queue
                        .retain(|m| m.kind != MessageKind::Request(RequestId(id)));
                }
            }
            OutState::Sending => r.cancel_after_send = true,
            OutState::Sent => {
                // Still counted against the peer's limit until the CANCEL is written, or, at
                // a peer that acknowledges CANCELs, until its acknowledgement arrives.
                let idx = r.idx;
                self.outbound.remove(&id);
                self.cancels.push_back(id);
                if self.peer_acks_cancels() {
                    self.awaiting_ack.insert(id, idx);
                }
            }
        }
        true
    }

    /// Takes the next event. Taking a message returns its credit to the peer, so call
    /// [`poll_record`](Self::poll_record) afterwards.
    pub fn poll_event(&mut self) -> Option<MuxEvent> {
        loop {
            self.resume_held();
            match self.events.pop_front()? {
                Pending::Event(e) => return Some(e),
                Pending::Message {
                    idx,
                    payload,
                    kind,
                    uncredited,
                    deliver_by,
                } => {
                    self.queued_messages = self.queued_messages.saturating_sub(1);
                    let expired = deliver_by.is_some_and(|d| d <= self.now);
                    let Some(ch) = self.channels.get_mut(idx) else {
                        continue;
                    };
                    ch.queued = ch.queued.saturating_sub(1);
                    ch.rx_window.credit(uncredited, self.now);
                    if ch.queued == 0
                        && let Some(p) = ch.partial.as_mut()
                    {
                        ch.rx_window.credit(p.uncredited, self.now);
                        p.uncredited = 0;
                    }
                    if expired {
                        self.stats.expired_before_delivery += 1;
                        if let MessageKind::Request(id) = kind {
                            self.expire_inbound(id.0);
                        }
                        continue;
                    }
                    if let MessageKind::Request(id) = kind {
                        match self.inbound.get_mut(&id.0) {
                            Some(r) if r.state == InState::Queued => r.state = InState::Delivered,
                            _ => {
                                // Cancelled by the peer before the application saw it.
                                self.stats.dropped_incoming += 1;
                                continue;
                            }
                        }
                    }
                    return Some(MuxEvent::Message {
                        channel: ch.id,
                        payload,
                        kind,
                        deliver_by,
                    });
                }
            }
        }
    }

    /// Closes cleanly: queued outgoing messages are dropped, CLOSE with `reason` (cut to 256
    /// bytes) goes out next, and messages the peer sent before its own CLOSE are still
    /// delivered. Idempotent.
    pub fn close(&mut self, reason: &str) {
        if !self.accepting() {
            return;
        }
        self.close_pending = Some(truncate_reason(reason).to_owned());
        self.drop_outgoing();
    }

    /// Aborts: everything queued either way is dropped and RESET with `code` and `reason` goes
    /// out next. Idempotent.
    pub fn reset(&mut self, code: ResetCode, reason: &str) {
        if self.reset || self.output_done {
            return;
        }
        self.reset = true;
        self.reset_pending = Some((code, truncate_reason(reason).to_owned()));
        self.drop_outgoing();
        self.drop_incoming();
    }

    /// Turns a fatal error into a queued RESET.
    fn fail(&mut self, e: &MuxError) {
        if self.reset {
            return;
        }
        self.reset = true;
        if !self.output_done {
            self.reset_pending = Some((e.reset_code(), truncate_reason(&e.to_string()).to_owned()));
        }
        self.drop_outgoing();
    }

    fn drop_outgoing(&mut self) {
        for ch in &mut self.channels {
            self.stats.dropped_outgoing += ch.queue.len() as u64;
            ch.queue.clear();
        }
        self.outbound.clear();
        self.deadlines.clear();
        self.started_requests = 0;
        self.awaiting_ack.clear();
        self.cancels.clear();
    }

    fn drop_incoming(&mut self) {
        for p in self.events.drain(..) {
            if matches!(p, Pending::Message { .. }) {
                self.stats.dropped_incoming += 1;
            }
        }
        self.queued_messages = 0;
        for ch in &mut self.channels {
            ch.queued = 0;
            ch.partial = None;
        }
        self.partial_bytes.release(self.partial_bytes.held());
        self.drop_held();
        self.held_cancels = 0;
        self.held_requests.clear();
        self.inbound.clear();
    }

    /// Drops queued requests and messages the peer's HELLO rules out.
    fn apply_peer_channels(&mut self) {
        let Some(peer) = &self.peer else { return };
        for ch in &mut self.channels {
            match peer.hello.channel(ch.id) {
                Some(hc) => {
                    ch.tx_window = SendWindow::new(hc.initial_window);
                    ch.peer_max_message = Some(hc.max_message as usize);
                }
                None => ch.peer_max_message = None,
            }
        }
        for idx in 0..self.channels.len() {
            let Some(ch) = self.channels.get_mut(idx) else {
                continue;
            };
            let max = ch.peer_max_message;
            let mut i = 0;
            while let Some(m) = ch.queue.get(i) {
                let reason = match max {
                    None => DropReason::PeerLacksChannel,
                    Some(max) if m.payload.len() > max => DropReason::TooLarge {
                        len: m.payload.len(),
                        max,
                    },
                    Some(_) => {
                        i += 1;
                        continue;
                    }
                };
                let kind = m.kind;
                ch.queue.remove(i);
                self.stats.dropped_outgoing += 1;
                if let MessageKind::Request(id) = kind {
                    if let Some(r) = self.outbound.remove(&id.0) {
                        self.deadlines.remove(&(r.deadline, id.0));
                    }
                    self.events
                        .push_back(Pending::Event(MuxEvent::RequestFailed { id, reason }));
                }
            }
        }
    }
}
