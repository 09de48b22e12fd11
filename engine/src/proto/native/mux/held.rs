//! Input held while the receive queue is full.
//!
//! Policy: at most `recv_queue_capacity` received messages wait for the application. A DATA
//! frame that arrives while that many wait is not reassembled: its credit is charged at once
//! (so a peer can never push more than its windows allow) and the whole frame is kept as
//! received. A CANCEL of a request with chunks among the held frames (not yet taken up, or
//! still being received) and a CLOSE that arrive behind held DATA are kept behind it, so their
//! order is unchanged (a CANCEL of a request that already ended here is stale and is taken up
//! at once); PING, PONG
//! and WINDOW_UPDATE are handled at once, so keepalive is answered however slowly the application drains. Each time the
//! application takes an event, held frames are taken up in order until the queue is full
//! again. A held frame that turns out to break the protocol fails the connection then
//! ([`MuxEvent::Failed`]).
//!
//! Bounds: held DATA costs at least 64 bytes of credit per frame, so it is bounded by the
//! windows the peer holds; held CANCELs by `max_inflight_requests` (more are unknown ids:
//! ignored and counted, as any CANCEL for an unknown id); one CLOSE, after which input ends.
//!
//! A frame is held as a slice of its record when the record is shared with the application
//! (so the record's memory is already charged to the connection's pin budget, pinned.rs), and
//! as a copy of its own bytes otherwise. Taken up, a message that arrived whole is handed out
//! as a slice of what was held, without a second copy; a copy pins nothing but itself.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::Bytes;

use super::{Mux, Pending};
use crate::proto::native::codec::PayloadCodec;
use crate::proto::native::error::MuxError;
use crate::proto::native::event::MuxEvent;
use crate::proto::native::frame::{DATA_REQUEST, DataFrame, Frame, decode_frame};

impl<C: PayloadCodec> Mux<C> {
    /// Whether `frame` waits behind the full queue or behind frames already held.
    pub(super) fn should_hold(&self, frame: &Frame<'_>) -> bool {
        let full = self.queued_messages >= self.config.recv_queue_capacity;
        match frame {
            Frame::Data(_) => full || !self.held.is_empty(),
            // A request with chunks among the held frames (its first, so it is not known yet,
            // or its last, so it is still being received: the peer writes a CANCEL after the
            // request's last chunk) has its CANCEL wait behind them, or the CANCEL would find
            // the request unknown or incomplete, be ignored, and leave both ends' request
            // places taken for good. Any other CANCEL is taken up at once; one of a request
            // we do not know is stale (the request ended here before it came: its answer
            // crossed the CANCEL), and held, such CANCELs could outnumber the requests the
            // peer may have in flight, the bound on held CANCELs.
            Frame::Cancel(id) => !self.held.is_empty() && self.held_requests.contains_key(id),
            Frame::Close { .. } => !self.held.is_empty(),
            _ => false,
        }
    }

    /// Keeps the bytes of `frame` (`raw`, at `at` in `record` when the record is shared) for
    /// later; DATA is charged to its window now.
    pub(super) fn hold(
        &mut self,
        frame: &Frame<'_>,
        raw: &[u8],
        record: Option<(&Bytes, Range<usize>)>,
    ) -> Result<(), MuxError> {
        match frame {
            Frame::Data(d) => {
                let idx = self.usable_channel(d.channel)?;
                self.charge_credit(idx, d.channel, d.chunk.len())?;
                self.stats.data_frames_held += 1;
                if let Some(id) = request_of(d) {
                    *self.held_requests.entry(id).or_default() += 1;
                }
            }
            Frame::Cancel(_) if self.held_cancels >= self.config.max_inflight_requests as usize => {
                // More than the requests the peer may have in flight: ids we cannot hold.
                self.stats.unknown_cancels += 1;
                return Ok(());
            }
            Frame::Cancel(_) => self.held_cancels += 1,
            Frame::Close { .. } => self.held_close = true,
            _ => {}
        }
        let kept = match record {
            // The frame's range lies within its record (the decoder checked it); a copy
            // otherwise, never a panic on what a peer sent.
            Some((record, at)) if at.start <= at.end && at.end <= record.len() => record.slice(at),
            _ => Bytes::copy_from_slice(raw),
        };
        self.held_len += kept.len();
        self.held.push_back(kept);
        Ok(())
    }

    /// Forgets every held frame.
    pub(super) fn drop_held(&mut self) {
        self.held = VecDeque::new();
        self.held_len = 0;
    }

    /// Takes up held frames while the queue has room. A protocol error found here fails the
    /// connection and is reported as [`MuxEvent::Failed`] after the events before it.
    pub(super) fn resume_held(&mut self) {
        if self.held.is_empty() || self.reset {
            return;
        }
        if let Err(e) = self.take_up_held() {
            self.fail(&e);
            self.drop_held();
            self.held_requests.clear();
            self.events.push_back(Pending::Event(MuxEvent::Failed(e)));
        }
        if self.held.is_empty() && self.held.capacity() > HELD_KEPT_CAPACITY {
            // Free the queue, which may have grown to a window's worth of frames.
            self.held = VecDeque::new();
        }
    }

    fn take_up_held(&mut self) -> Result<(), MuxError> {
        while let Some(raw) = self.held.front().cloned() {
            let (frame, next) = decode_frame(&raw, 0)?;
            if matches!(frame, Frame::Data(_))
                && self.queued_messages >= self.config.recv_queue_capacity
            {
                return Ok(());
            }
            self.held.pop_front();
            self.held_len = self.held_len.saturating_sub(raw.len());
            match frame {
                // A whole message is a slice of `raw`: of its shared record, or of its copy.
                Frame::Data(d) => {
                    if let Some(id) = request_of(&d)
                        && let Some(n) = self.held_requests.get_mut(&id)
                    {
                        *n -= 1;
                        if *n == 0 {
                            self.held_requests.remove(&id);
                        }
                    }
                    let chunk = next.saturating_sub(d.chunk.len())..next;
                    self.on_data(d, Some((&raw, chunk)), true)?
                }
                Frame::Cancel(id) => {
                    self.held_cancels = self.held_cancels.saturating_sub(1);
                    self.on_cancel(id);
                }
                Frame::Close { reason } => {
                    self.held_close = false;
                    self.on_close(reason);
                }
                // Only DATA, CANCEL and CLOSE are held.
                _ => {}
            }
        }
        Ok(())
    }
}

/// Entries the held-frame queue keeps room for once empty; a larger one is freed.
const HELD_KEPT_CAPACITY: usize = 64;

/// The id of the request a DATA frame carries a chunk of (not of a response).
fn request_of(d: &DataFrame<'_>) -> Option<u64> {
    d.request_id.filter(|_| d.flags & DATA_REQUEST != 0)
}
