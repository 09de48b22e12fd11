//! Timers: keepalive PING/PONG and request deadlines.
//!
//! The first PING goes out at once (its round trip sizes the credit caps, see `flow`), then one
//! every `ping_interval` whatever the traffic, carrying a counter; at most one is outstanding. If its PONG has not arrived `pong_timeout` after it was queued, the
//! connection fails with [`MuxError::PongTimeout`]. Requests past their deadline are withdrawn
//! (CANCEL is sent if the peer holds them) and reported as [`MuxEvent::RequestTimedOut`].

use std::time::Instant;

use super::{Mux, Pending};
use crate::proto::native::codec::PayloadCodec;
use crate::proto::native::error::MuxError;
use crate::proto::native::event::{MuxEvent, RequestId};

impl<C: PayloadCodec> Mux<C> {
    /// The next instant [`handle_timeout`](Self::handle_timeout) has work to do, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.reset || self.output_done {
            return None;
        }
        let mut t = self.keepalive.next_ping;
        if let Some((_, _, deadline)) = self.keepalive.outstanding {
            t = t.min(deadline);
        }
        if let Some(&(d, _)) = self.deadlines.first() {
            t = t.min(d);
        }
        Some(t)
    }

    /// Runs the timers due at `now`. On `Err` (no PONG in time) a RESET is queued.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), MuxError> {
        self.set_now(now);
        if self.reset || self.output_done {
            return Ok(());
        }
        if let Some((_, _, deadline)) = self.keepalive.outstanding
            && now >= deadline
        {
            let e = MuxError::PongTimeout;
            self.fail(&e);
            return Err(e);
        }
        if now >= self.keepalive.next_ping {
            if self.keepalive.outstanding.is_none() {
                let v = self.keepalive.counter;
                self.keepalive.counter = v.wrapping_add(1);
                self.keepalive.ping_pending = Some(v);
                self.keepalive.outstanding = Some((v, None, now + self.config.pong_timeout));
            }
            self.keepalive.next_ping = now + self.config.ping_interval;
        }
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if self.withdraw(id) {
                self.stats.requests_timed_out += 1;
                self.events
                    .push_back(Pending::Event(MuxEvent::RequestTimedOut(RequestId(id))));
            }
        }
        Ok(())
    }
}
