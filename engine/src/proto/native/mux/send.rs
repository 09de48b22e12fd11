//! Building outgoing record plaintexts: control frames first, then DATA chunks picked by the
//! scheduler.

use std::time::Instant;

use super::{MIN_RECORD_BUDGET, Mux, OutState};
use crate::proto::native::codec::PayloadCodec;
use crate::proto::native::event::MessageKind;
use crate::proto::native::flow::{BUSY_HORIZON, busy_cap, chunk_allowance, chunk_cost, drain_cap};
use crate::proto::native::frame::{
    DATA_COMPRESSED, DATA_END, DATA_REQUEST, DATA_RESPONSE, DATA_START, DATA_TTL, Frame,
    MAX_TTL_LEN, MAX_TTL_MS, data_header_len, encode_data_header_ttl, ttl_len,
};
use crate::proto::native::record::MAX_RECORD_PLAINTEXT;

/// A chunk is split off to fill the end of a record only if it carries at least this many
/// bytes (or the rest of its message); otherwise the record ends there.
const MIN_SPLIT: usize = 512;

/// Encoded sizes of the fixed control frames.
const WINDOW_UPDATE_LEN: usize = 9;
const U64_FRAME_LEN: usize = 12;

impl<C: PayloadCodec> Mux<C> {
    /// Appends the plaintext of one record to `out`: pending control frames (HELLO, RESET or
    /// CLOSE, PONG, PING, WINDOW_UPDATE, CANCEL), then DATA chunks chosen by the scheduler,
    /// at most `max_plaintext` bytes (raised to [`MIN_RECORD_BUDGET`], capped at 65536).
    ///
    /// Returns whether anything was written; when it returns false, `out` is unchanged.
    pub fn poll_record(&mut self, now: Instant, out: &mut Vec<u8>, max_plaintext: usize) -> bool {
        if self.output_done || (self.reset && self.reset_pending.is_none()) {
            // Finished, or reset by the peer: nothing more goes out, not even our HELLO.
            return false;
        }
        self.set_now(now);
        let budget = max_plaintext.clamp(MIN_RECORD_BUDGET, MAX_RECORD_PLAINTEXT);
        let start = out.len();
        let limit = start + budget;
        if self.hello_pending {
            // Our configuration was validated, so our HELLO encodes and fits the budget.
            if self.local_hello().encode(out).is_ok() {
                self.hello_pending = false;
            } else {
                out.truncate(start);
                return false;
            }
        }
        if let Some((code, reason)) = self.reset_pending.take() {
            let _ = Frame::Reset {
                code: code.0,
                reason: &reason,
            }
            .encode(out);
            self.output_done = true;
            return self.finish_record(out, start);
        }
        if self.reset {
            return self.finish_record(out, start);
        }
        self.write_control(now, out, limit);
        if let Some(reason) = self.close_pending.take() {
            if limit.saturating_sub(out.len()) >= 4 + reason.len() {
                let _ = Frame::Close { reason: &reason }.encode(out);
                self.output_done = true;
                self.close_sent = true;
            } else {
                self.close_pending = Some(reason);
            }
            return self.finish_record(out, start);
        }
        self.write_data(now, out, limit);
        self.finish_record(out, start)
    }

    fn finish_record(&mut self, out: &[u8], start: usize) -> bool {
        let wrote = out.len() > start;
        if wrote {
            self.stats.records_out += 1;
        }
        wrote
    }

    fn write_control(&mut self, now: Instant, out: &mut Vec<u8>, limit: usize) {
        let fits = |out: &Vec<u8>, n: usize| limit.saturating_sub(out.len()) >= n;
        if let Some(v) = self.keepalive.pong_pending
            && fits(out, U64_FRAME_LEN)
        {
            let _ = Frame::Pong(v).encode(out);
            self.keepalive.pong_pending = None;
        }
        if let Some(v) = self.keepalive.ping_pending
            && fits(out, U64_FRAME_LEN)
        {
            let _ = Frame::Ping(v).encode(out);
            self.keepalive.ping_pending = None;
            if let Some(o) = self.keepalive.outstanding.as_mut() {
                o.1 = Some(now);
            }
            self.stats.pings_sent += 1;
        }
        if !self.peer_closed && self.close_pending.is_none() {
            let busiest = self.busiest_priority(now);
            let busy_window = self.config.busy_window;
            let min_rtt = self.keepalive.min_rtt;
            for ch in &mut self.channels {
                if !fits(out, WINDOW_UPDATE_LEN) {
                    break;
                }
                if ch.peer_max_message.is_none() {
                    continue;
                }
                let initial = ch.rx_window.initial();
                let cap = if busy_window == 0 {
                    initial
                } else {
                    let floor = busy_cap(busy_window, min_rtt, initial);
                    if busiest.is_some_and(|p| p > ch.priority) {
                        floor
                    } else {
                        drain_cap(ch.rx_window.drain_rate(), min_rtt, floor, initial)
                    }
                };
                if let Some(inc) = ch.rx_window.take_update(cap) {
                    let _ = Frame::WindowUpdate {
                        channel: ch.id,
                        increment: inc,
                    }
                    .encode(out);
                    self.stats.window_updates_out += 1;
                }
            }
        }
        let acked = self.peer_acks_cancels();
        while let Some(&id) = self.cancels.front() {
            if !fits(out, U64_FRAME_LEN) {
                break;
            }
            let _ = Frame::Cancel(id).encode(out);
            self.cancels.pop_front();
            // A peer without CANCEL acknowledgements frees the request's slot when it reads
            // this CANCEL, which precedes any DATA written from now on; one with them frees it
            // when its application is done, and says so (see `awaiting_ack`).
            if !acked {
                self.started_requests = self.started_requests.saturating_sub(1);
            }
        }
    }

    /// The highest priority among channels that carried DATA within [`BUSY_HORIZON`] of `now`.
    fn busiest_priority(&self, now: Instant) -> Option<u32> {
        self.channels
            .iter()
            .filter(|c| {
                c.last_data
                    .is_some_and(|t| now.saturating_duration_since(t) < BUSY_HORIZON)
            })
            .map(|c| c.priority)
            .max()
    }

    /// Whether channel `idx` can put a chunk into `space` bytes now.
    fn sendable(&self, idx: usize, space: usize) -> bool {
        let Some(ch) = self.channels.get(idx) else {
            return false;
        };
        let Some(msg) = ch.queue.front() else {
            return false;
        };
        if ch.peer_max_message.is_none() {
            return false;
        }
        let credit = ch.tx_window.available();
        if credit < chunk_cost(0) {
            return false;
        }
        let allowance = chunk_allowance(credit);
        if !msg.started && matches!(msg.kind, MessageKind::Request(_)) {
            let peer_max = self.peer.as_ref().map_or(0, |p| p.max_inflight_requests) as usize;
            if self.started_requests >= peer_max {
                return false;
            }
        }
        let has_id = !matches!(msg.kind, MessageKind::Plain);
        let remaining = msg.payload.len().saturating_sub(msg.offset);
        if remaining > 0 && allowance == 0 {
            return false;
        }
        let ttl = if msg.started || msg.deliver_by.is_none() {
            0
        } else {
            MAX_TTL_LEN
        };
        let need = data_header_len(has_id) + ttl + remaining.min(MIN_SPLIT).min(allowance);
        space >= need
    }

    fn write_data(&mut self, now: Instant, out: &mut Vec<u8>, limit: usize) {
        if self.peer.is_none() || self.peer_closed {
            return;
        }
        self.scheduler.decay(now);
        self.expire_queued(now);
        loop {
            let space = limit.saturating_sub(out.len());
            let Some(idx) = self.scheduler.pick(|i| self.sendable(i, space)) else {
                break;
            };
            if !self.write_chunk(now, idx, out, space) {
                break;
            }
        }
    }

    /// The time-to-live to write for a message starting now, in whole milliseconds: `None`
    /// when it has no deadline or the peer does not take TTLs. Plain messages whose deadline
    /// has passed are expired (`Err`); a request whose deadline has just passed goes with TTL
    /// 0 (its timeout withdraws it next).
    fn ttl_for(
        &self,
        now: Instant,
        msg_kind: MessageKind,
        deliver_by: Option<Instant>,
    ) -> Result<Option<u32>, ()> {
        let Some(d) = deliver_by else {
            return Ok(None);
        };
        let left = d.saturating_duration_since(now);
        if left.is_zero() && msg_kind == MessageKind::Plain {
            return Err(());
        }
        // Rounded up: the receiver's deadline (arrival + TTL) is then never before ours.
        let ms = left.as_nanos().div_ceil(1_000_000);
        if !self.peer.as_ref().is_some_and(|p| p.deadline) {
            return Ok(None);
        }
        Ok(Some(u32::try_from(ms).unwrap_or(u32::MAX).min(MAX_TTL_MS)))
    }

    /// Writes one chunk of channel `idx`'s first message. Returns false if nothing was written
    /// (an expired message dropped instead counts as progress: true).
    fn write_chunk(&mut self, now: Instant, idx: usize, out: &mut Vec<u8>, space: usize) -> bool {
        let compress = self.peer.as_ref().is_some_and(|p| p.compression) && self.codec.enabled();
        let max_chunk = self.config.max_chunk;
        let ttl_ms = match self.channels.get(idx).and_then(|c| c.queue.front()) {
            Some(m) if !m.started => self.ttl_for(now, m.kind, m.deliver_by),
            _ => Ok(None),
        };
        let Some(ch) = self.channels.get_mut(idx) else {
            return false;
        };
        let Ok(ttl_ms) = ttl_ms else {
            // Its deadline passed while it waited for credit or its turn: not worth sending.
            ch.queue.pop_front();
            self.stats.expired_before_send += 1;
            return true;
        };
        let peer_max = ch.peer_max_message.unwrap_or(0);
        let Some(msg) = ch.queue.front_mut() else {
            return false;
        };
        if !msg.started {
            if compress
                && let Some(c) = self.codec.encode(ch.id, &msg.payload)
                && c.len() < msg.payload.len()
                && c.len() <= peer_max
            {
                msg.payload = c;
                msg.compressed = true;
            }
            if let MessageKind::Request(id) = msg.kind {
                if let Some(r) = self.outbound.get_mut(&id.0) {
                    r.state = OutState::Sending;
                }
                self.started_requests += 1;
            }
        }
        let (kind_flag, request_id) = match msg.kind {
            MessageKind::Plain => (0, None),
            MessageKind::Request(id) => (DATA_REQUEST, Some(id.0)),
            MessageKind::Response(id) => (DATA_RESPONSE, Some(id.0)),
        };
        let header = data_header_len(request_id.is_some()) + ttl_ms.map_or(0, ttl_len);
        let remaining = msg.payload.len().saturating_sub(msg.offset);
        let allowance = chunk_allowance(ch.tx_window.available());
        let chunk_len = remaining
            .min(max_chunk)
            .min(allowance)
            .min(space.saturating_sub(header));
        let end = msg.offset + chunk_len;
        let mut flags = kind_flag;
        if !msg.started {
            flags |= DATA_START;
        }
        if end == msg.payload.len() {
            flags |= DATA_END;
        }
        if msg.compressed {
            flags |= DATA_COMPRESSED;
        }
        if ttl_ms.is_some() {
            flags |= DATA_TTL;
        }
        let Some(chunk) = msg.payload.get(msg.offset..end) else {
            return false;
        };
        if encode_data_header_ttl(out, ch.id, flags, request_id, ttl_ms, chunk_len).is_err() {
            return false;
        }
        out.extend_from_slice(chunk);
        msg.offset = end;
        msg.started = true;
        ch.tx_window.consume(chunk_cost(chunk_len));
        ch.last_data = Some(now);
        self.earned_updates = self.earned_updates.saturating_add(1);
        self.scheduler.on_sent(idx, header + chunk_len);
        self.stats.data_bytes_out += chunk_len as u64;
        if flags & DATA_END != 0 {
            let done = ch.queue.pop_front();
            self.stats.messages_out += 1;
            if done.as_ref().is_some_and(|m| m.compressed) {
                self.stats.compressed_out += 1;
            }
            if let Some(MessageKind::Request(id)) = done.map(|m| m.kind) {
                self.request_sent(id.0);
            }
        }
        true
    }

    /// The last chunk of request `id` is out.
    fn request_sent(&mut self, id: u64) {
        let Some(r) = self.outbound.get_mut(&id) else {
            return;
        };
        r.state = OutState::Sent;
        if r.cancel_after_send {
            let idx = r.idx;
            self.outbound.remove(&id);
            self.cancels.push_back(id);
            if self.peer_acks_cancels() {
                self.awaiting_ack.insert(id, idx);
            }
        }
    }
}
