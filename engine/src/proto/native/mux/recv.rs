//! Handling incoming record plaintexts: frame by frame, with every check a receiver makes.

use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{InRequest, InState, Mux, OutState, PROTOCOL_VERSION, Partial, PeerInfo, Pending};
use crate::proto::native::codec::PayloadCodec;
use crate::proto::native::error::MuxError;
use crate::proto::native::event::{MessageKind, MuxEvent, RequestId, ResetCode};
use crate::proto::native::flow::chunk_cost;
use crate::proto::native::frame::{
    DATA_COMPRESSED, DATA_REQUEST, DATA_RESPONSE, DataFrame, FEATURE_CANCEL_ACK,
    FEATURE_COMPRESSION, FEATURE_DEADLINE, Frame, Hello, decode_frame, frame_type,
};
use crate::proto::native::spares::SpareBuffers;

/// Bits of a DATA frame that describe the whole message and repeat on every chunk.
const MESSAGE_FLAGS: u8 = DATA_COMPRESSED | DATA_REQUEST | DATA_RESPONSE;

impl<C: PayloadCodec> Mux<C> {
    /// Handles the plaintext of one record. Payloads are copied out of `plaintext`.
    ///
    /// On `Err` the connection is dead: a RESET is queued for [`poll_record`](Self::poll_record).
    /// After a RESET (sent or received) input is ignored.
    pub fn handle_record(&mut self, now: Instant, plaintext: &[u8]) -> Result<(), MuxError> {
        self.handle(now, plaintext, None)
    }

    /// Like [`handle_record`](Self::handle_record), but a message that arrives in one chunk is
    /// delivered as a slice of `plaintext`, without copying.
    pub fn handle_record_bytes(&mut self, now: Instant, plaintext: Bytes) -> Result<(), MuxError> {
        self.handle(now, &plaintext, Some(&plaintext))
    }

    fn handle(&mut self, now: Instant, buf: &[u8], owned: Option<&Bytes>) -> Result<(), MuxError> {
        if self.reset {
            return Ok(());
        }
        self.set_now(now);
        match self.process(now, buf, owned) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    fn process(&mut self, now: Instant, buf: &[u8], owned: Option<&Bytes>) -> Result<(), MuxError> {
        if self.peer_closed {
            return Err(MuxError::AfterClose);
        }
        if buf.is_empty() {
            return Err(MuxError::EmptyRecord);
        }
        self.stats.records_in += 1;
        let mut pos = 0;
        while pos < buf.len() {
            let (frame, next) = decode_frame(buf, pos)?;
            self.stats.frames_in += 1;
            if self.peer_closed || self.held_close {
                return Err(MuxError::AfterClose);
            }
            if self.peer.is_none() && !matches!(frame, Frame::Hello(_)) {
                return Err(MuxError::HelloExpected(frame_code(&frame)));
            }
            self.charge_control(now, &frame)?;
            if self.should_hold(&frame) {
                let raw = buf.get(pos..next).unwrap_or_default();
                self.hold(&frame, raw, owned.map(|record| (record, pos..next)))?;
                pos = next;
                continue;
            }
            match frame {
                Frame::Hello(h) => self.on_hello(h)?,
                Frame::Data(d) => {
                    let range = next.saturating_sub(d.chunk.len())..next;
                    self.on_data(d, owned.map(|b| (b, range)), false)?;
                }
                Frame::WindowUpdate { channel, increment } => {
                    let idx = self.usable_channel(channel)?;
                    self.stats.window_updates_in += 1;
                    if let Some(ch) = self.channels.get_mut(idx) {
                        ch.tx_window
                            .grant(increment)
                            .map_err(|_| MuxError::WindowOverflow(channel))?;
                    }
                }
                Frame::Ping(v) => {
                    if self.keepalive.pong_pending.replace(v).is_some() {
                        self.stats.pings_coalesced += 1;
                    }
                }
                Frame::Pong(v) => match self.keepalive.outstanding {
                    Some((want, sent, _)) if want == v => {
                        self.keepalive.outstanding = None;
                        let rtt = sent.map(|s| now.saturating_duration_since(s));
                        self.keepalive.rtt = rtt;
                        self.keepalive.min_rtt = match (self.keepalive.min_rtt, rtt) {
                            (Some(m), Some(r)) => Some(m.min(r)),
                            (m, r) => m.or(r),
                        };
                    }
                    _ => self.stats.unexpected_pongs += 1,
                },
                Frame::Cancel(id) => self.on_cancel(id),
                Frame::Close { reason } => self.on_close(reason),
                Frame::Reset { code, reason } => {
                    self.on_reset(ResetCode(code), reason);
                    return Ok(());
                }
            }
            pos = next;
        }
        Ok(())
    }

    /// Spends the peer's control-frame budget on every frame but DATA, except a WINDOW_UPDATE
    /// backed by a DATA frame we sent and a CANCEL of a request we hold (both owed by a
    /// well-behaved peer however fast it runs).
    fn charge_control(&mut self, now: Instant, frame: &Frame<'_>) -> Result<(), MuxError> {
        let owed = match frame {
            Frame::Data(_) => return Ok(()),
            Frame::WindowUpdate { .. } if self.earned_updates > 0 => {
                self.earned_updates -= 1;
                true
            }
            // Only the first CANCEL of a request is owed: a cancelled one stays held until the
            // application is done with it, and repeating the CANCEL must not be free.
            Frame::Cancel(id) => self.inbound.get(id).is_some_and(|r| {
                matches!(
                    r.state,
                    InState::Queued | InState::Delivered | InState::Abandoned
                )
            }),
            _ => false,
        };
        if owed || self.control.charge(now) {
            return Ok(());
        }
        Err(MuxError::ControlFlood {
            limit: self.control.per_second(),
        })
    }

    /// Charges a DATA chunk's cost to channel `idx`'s receive window.
    pub(super) fn charge_credit(
        &mut self,
        idx: usize,
        channel: u8,
        len: usize,
    ) -> Result<(), MuxError> {
        let cost = chunk_cost(len);
        let Some(ch) = self.channels.get_mut(idx) else {
            return Err(MuxError::UnknownChannel(channel));
        };
        ch.rx_window
            .on_receive(cost)
            .map_err(|window| MuxError::FlowControl {
                channel,
                len: cost,
                window,
            })
    }

    fn on_hello(&mut self, h: Hello) -> Result<(), MuxError> {
        if self.peer.is_some() {
            return Err(MuxError::DuplicateHello);
        }
        let version = PROTOCOL_VERSION.min(h.max_version);
        if version < h.min_version.max(PROTOCOL_VERSION) {
            return Err(MuxError::UnsupportedVersion {
                min: h.min_version,
                max: h.max_version,
            });
        }
        let capabilities = h.capabilities.clone();
        self.peer = Some(PeerInfo {
            version,
            compression: h.features & FEATURE_COMPRESSION != 0,
            cancel_ack: h.features & FEATURE_CANCEL_ACK != 0,
            deadline: h.features & FEATURE_DEADLINE != 0,
            max_inflight_requests: h.max_inflight_requests,
            hello: h,
        });
        self.events.push_back(Pending::Event(MuxEvent::Hello {
            version,
            capabilities,
        }));
        self.apply_peer_channels();
        Ok(())
    }

    /// The index of a channel listed in both HELLOs.
    pub(super) fn usable_channel(&self, id: u8) -> Result<usize, MuxError> {
        self.channel_index(id)
            .filter(|&i| {
                self.channels
                    .get(i)
                    .is_some_and(|c| c.peer_max_message.is_some())
            })
            .ok_or(MuxError::UnknownChannel(id))
    }

    /// Handles a DATA frame; `owned` is the record and the chunk's range in it, when the record
    /// is owned and single-chunk messages can be delivered as slices of it. `charged`: the
    /// chunk's credit was taken when it was held.
    pub(super) fn on_data(
        &mut self,
        d: DataFrame<'_>,
        owned: Option<(&Bytes, Range<usize>)>,
        charged: bool,
    ) -> Result<(), MuxError> {
        let idx = self.usable_channel(d.channel)?;
        let compressed = d.flags & DATA_COMPRESSED != 0;
        if compressed && !self.codec.enabled() {
            return Err(MuxError::CompressionNotNegotiated(d.channel));
        }
        let cost = chunk_cost(d.chunk.len());
        if !charged {
            self.charge_credit(idx, d.channel, d.chunk.len())?;
        }
        let Some(ch) = self.channels.get_mut(idx) else {
            return Err(MuxError::UnknownChannel(d.channel));
        };
        self.stats.data_bytes_in += d.chunk.len() as u64;
        ch.last_data = Some(self.now);
        let max = ch.max_message;
        if d.is_start() {
            if ch.partial.is_some() {
                return Err(MuxError::MessageInterrupted(d.channel));
            }
            if d.chunk.len() > max {
                return Err(MuxError::MessageTooLarge {
                    channel: d.channel,
                    max,
                });
            }
            let discard = self.admit(idx, d.channel, d.flags, d.request_id)?;
            // The deadline runs from the first chunk's arrival: time in flight is not known
            // (clocks are not shared) and not counted.
            // Requests and responses: accepted and ignored (their deadline is the requester's
            // timeout and CANCEL; receiver-side expiry of requests is not in this version).
            let deliver_by = d
                .ttl_ms
                .filter(|_| d.request_id.is_none())
                .map(|t| self.now + Duration::from_millis(u64::from(t)));
            let Some(ch) = self.channels.get_mut(idx) else {
                return Err(MuxError::UnknownChannel(d.channel));
            };
            if d.is_end() && !discard && !compressed {
                // Whole message in one chunk: no reassembly; zero-copy when the record is owned.
                let payload = match owned {
                    Some((record, range)) => record.slice(range),
                    None => Bytes::copy_from_slice(d.chunk),
                };
                self.deliver(idx, payload, d.flags, d.request_id, cost, deliver_by);
                return Ok(());
            }
            let mut partial = Partial {
                msg_flags: d.flags & MESSAGE_FLAGS,
                request_id: d.request_id,
                buf: Vec::new(),
                len: 0,
                uncredited: 0,
                discard,
                deliver_by,
            };
            if !discard {
                self.partial_bytes.reserve(d.chunk.len())?;
                // A message that does not end with its first chunk has at least one more: room
                // for as much again (within the channel's limit, which this side set) saves
                // regrowing and copying a large first chunk when the next arrives. Twice what
                // the peer sent, never more: a tiny first chunk cannot make us hold a large
                // buffer (and regrowing after a small one copies little).
                // A buffer an earlier message gave back is reused: a fresh one's pages are
                // faulted in by this copy (spares.rs).
                let room = d.chunk.len().saturating_mul(2).min(max);
                partial.buf = self
                    .spares
                    .take(room)
                    .unwrap_or_else(|| Vec::with_capacity(room));
                partial.buf.extend_from_slice(d.chunk);
            }
            partial.len = d.chunk.len();
            ch.partial = Some(partial);
        } else {
            let Some(p) = ch.partial.as_mut() else {
                return Err(MuxError::UnexpectedContinuation(d.channel));
            };
            if p.msg_flags != d.flags & MESSAGE_FLAGS || p.request_id != d.request_id {
                return Err(MuxError::ChunkMismatch(d.channel));
            }
            let len = p.len.checked_add(d.chunk.len()).filter(|&l| l <= max);
            p.len = len.ok_or(MuxError::MessageTooLarge {
                channel: d.channel,
                max,
            })?;
            if !p.discard {
                self.partial_bytes.reserve(d.chunk.len())?;
                self.spares.grow(&mut p.buf, d.chunk.len(), max);
                p.buf.extend_from_slice(d.chunk);
            }
        }
        // Credit: see flow.rs for the policy.
        let Some(ch) = self.channels.get_mut(idx) else {
            return Err(MuxError::UnknownChannel(d.channel));
        };
        let Some(p) = ch.partial.as_mut() else {
            return Ok(());
        };
        if p.discard || (!d.is_end() && ch.queued == 0) {
            ch.rx_window.credit(cost, self.now);
        } else {
            p.uncredited = p.uncredited.saturating_add(cost);
        }
        if !d.is_end() {
            return Ok(());
        }
        let Some(p) = ch.partial.take() else {
            return Ok(());
        };
        if p.discard {
            self.stats.messages_in += 1;
            self.stats.dropped_incoming += 1;
            return Ok(());
        }
        self.partial_bytes.release(p.buf.len());
        let mut payload = SpareBuffers::share(&self.spares, p.buf);
        if compressed {
            payload = self
                .codec
                .decode(d.channel, &payload, max)
                .map_err(|reason| MuxError::Decompress {
                    channel: d.channel,
                    reason,
                })?;
            if payload.len() > max {
                return Err(MuxError::MessageTooLarge {
                    channel: d.channel,
                    max,
                });
            }
            self.stats.compressed_in += 1;
        }
        self.deliver(
            idx,
            payload,
            p.msg_flags,
            p.request_id,
            p.uncredited,
            p.deliver_by,
        );
        Ok(())
    }

    /// Request bookkeeping for a message's first chunk. Returns whether to discard it.
    fn admit(
        &mut self,
        idx: usize,
        channel: u8,
        flags: u8,
        request_id: Option<u64>,
    ) -> Result<bool, MuxError> {
        let Some(id) = request_id else {
            return Ok(false);
        };
        if flags & DATA_REQUEST != 0 {
            if self.inbound.contains_key(&id) {
                return Err(MuxError::DuplicateRequestId(id));
            }
            if self.inbound.len() >= self.config.max_inflight_requests as usize {
                return Err(MuxError::RequestLimit(self.config.max_inflight_requests));
            }
            self.inbound.insert(
                id,
                InRequest {
                    idx,
                    state: InState::Receiving,
                },
            );
            return Ok(false);
        }
        if let Some(&expected) = self.awaiting_ack.get(&id) {
            // The answer to a request we cancelled (an acknowledgement, or a response that
            // crossed the CANCEL): the peer has freed its place; the payload is dropped.
            if expected != idx {
                let expected = self.channels.get(expected).map_or(0, |c| c.id);
                return Err(MuxError::ResponseChannelMismatch {
                    id,
                    got: channel,
                    expected,
                });
            }
            self.awaiting_ack.remove(&id);
            self.started_requests = self.started_requests.saturating_sub(1);
            // Its CANCEL, if not yet written, is moot.
            self.cancels.retain(|&c| c != id);
            self.stats.cancel_acks_in += 1;
            return Ok(true);
        }
        match self.outbound.get(&id) {
            Some(r) if r.state == OutState::Sent && !r.cancel_after_send => {
                if r.idx != idx {
                    let expected = self.channels.get(r.idx).map_or(0, |c| c.id);
                    return Err(MuxError::ResponseChannelMismatch {
                        id,
                        got: channel,
                        expected,
                    });
                }
                self.deadlines.remove(&(r.deadline, id));
                self.outbound.remove(&id);
                self.started_requests = self.started_requests.saturating_sub(1);
                Ok(false)
            }
            _ => {
                self.stats.unknown_responses += 1;
                Ok(true)
            }
        }
    }

    /// Queues a complete message for the application.
    fn deliver(
        &mut self,
        idx: usize,
        payload: Bytes,
        flags: u8,
        request_id: Option<u64>,
        uncredited: u32,
        deliver_by: Option<Instant>,
    ) {
        let kind = match request_id {
            Some(id) if flags & DATA_REQUEST != 0 => {
                if let Some(r) = self.inbound.get_mut(&id) {
                    r.state = InState::Queued;
                }
                MessageKind::Request(RequestId(id))
            }
            Some(id) => MessageKind::Response(RequestId(id)),
            None => MessageKind::Plain,
        };
        if let Some(ch) = self.channels.get_mut(idx) {
            ch.queued += 1;
        }
        self.queued_messages += 1;
        self.stats.messages_in += 1;
        self.events.push_back(Pending::Message {
            idx,
            payload,
            kind,
            uncredited,
            deliver_by,
        });
    }

    /// The peer cancels request `id`. A request the application holds keeps its place until
    /// the application is done with it (answers or finishes it): the CANCEL only marks it.
    pub(super) fn on_cancel(&mut self, id: u64) {
        let Some(r) = self.inbound.get_mut(&id) else {
            self.stats.unknown_cancels += 1;
            return;
        };
        let idx = r.idx;
        match r.state {
            InState::Queued | InState::Abandoned => {
                // Not taken by the application yet (poll_event skips it), or given up by it
                // already: the place frees now.
                self.inbound.remove(&id);
                self.stats.requests_cancelled_by_peer += 1;
                self.ack_cancel(idx, id);
            }
            InState::Delivered => {
                r.state = InState::Cancelled;
                self.stats.requests_cancelled_by_peer += 1;
                self.events
                    .push_back(Pending::Event(MuxEvent::Cancelled(RequestId(id))));
            }
            InState::Receiving | InState::Cancelled => self.stats.unknown_cancels += 1,
        }
    }

    pub(super) fn on_close(&mut self, reason: &str) {
        self.peer_closed = true;
        self.events.push_back(Pending::Event(MuxEvent::Closed {
            reason: reason.to_owned(),
        }));
        if !self.close_sent && self.close_pending.is_none() && !self.reset {
            self.close_pending = Some(String::new());
        }
        self.drop_outgoing();
    }

    fn on_reset(&mut self, code: ResetCode, reason: &str) {
        self.drop_outgoing();
        self.drop_incoming();
        self.reset = true;
        self.reset_pending = None;
        self.close_pending = None;
        self.events.push_back(Pending::Event(MuxEvent::Reset {
            code,
            reason: reason.to_owned(),
        }));
    }
}

fn frame_code(f: &Frame<'_>) -> u8 {
    match f {
        Frame::Hello(_) => frame_type::HELLO,
        Frame::Data(_) => frame_type::DATA,
        Frame::WindowUpdate { .. } => frame_type::WINDOW_UPDATE,
        Frame::Ping(_) => frame_type::PING,
        Frame::Pong(_) => frame_type::PONG,
        Frame::Cancel(_) => frame_type::CANCEL,
        Frame::Close { .. } => frame_type::CLOSE,
        Frame::Reset { .. } => frame_type::RESET,
    }
}
