//! The requests a connection's peer sent that the application holds: each keeps its place
//! among those the peer may have in flight until the application answers it or drops it
//! (`registry/finished.rs` says how a drop on any thread reaches the connection). A CANCEL
//! from the peer only marks a request; the multiplexer frees the place when the application
//! is done (`docs/RELIABILITY.md` row 6).

use std::collections::HashMap;
use std::sync::Arc;

use crate::proto::conn::Connection;
use crate::proto::native::RequestId;
use crate::proto::secret::NodeId;
use crate::registry::{
    CancelFlag, ConnId, FinishedRequests, PendingRequest, RequestHandle, RequestTicket,
};

/// One request the application holds.
struct Held {
    /// Tells this request apart from a later one that reuses its id.
    seq: u64,
    cancelled: CancelFlag,
}

/// The requests of one connection the application holds (at most as many as the peer may
/// have in flight: the multiplexer refuses more).
#[derive(Default)]
pub(crate) struct InboundRequests {
    held: HashMap<RequestId, Held>,
    next_seq: u64,
    finished: Arc<FinishedRequests>,
}

impl InboundRequests {
    /// Tracks request `id` and makes the application's handle to it.
    pub(crate) fn track(
        &mut self,
        peer: NodeId,
        conn: ConnId,
        shard: usize,
        channel: u8,
        id: RequestId,
    ) -> PendingRequest {
        self.next_seq += 1;
        let seq = self.next_seq;
        let cancelled = CancelFlag::default();
        self.held.insert(
            id,
            Held {
                seq,
                cancelled: cancelled.clone(),
            },
        );
        PendingRequest(Arc::new(RequestHandle {
            peer,
            conn,
            shard,
            channel,
            id,
            cancelled,
            ticket: RequestTicket::new(id, seq, self.finished.clone()),
        }))
    }

    /// The peer cancelled request `id`: the application's handles learn it.
    pub(crate) fn cancel(&self, id: RequestId) {
        if let Some(h) = self.held.get(&id) {
            h.cancelled.set();
        }
    }

    /// The application answers `request`: whether it is still held here (answered once; an
    /// answer to a request already finished, or to an older one with a reused id, is
    /// ignored).
    pub(crate) fn answer(&mut self, request: &PendingRequest) -> bool {
        let current = self
            .held
            .get(&request.0.id)
            .is_some_and(|h| h.seq == request.0.ticket.seq());
        if current {
            self.held.remove(&request.0.id);
        }
        current
    }

    /// Frees in `conn` the place of every request the application dropped unanswered since
    /// the last call. Returns whether any was freed (the connection may have a CANCEL
    /// acknowledgement to write).
    pub(crate) fn release_finished(&mut self, conn: &mut Connection) -> bool {
        let mut any = false;
        for (id, seq) in self.finished.take() {
            if self.held.get(&id).is_some_and(|h| h.seq == seq) {
                self.held.remove(&id);
                conn.finish_request(id);
                any = true;
            }
        }
        any
    }

    /// Where the application's drops are reported.
    pub(crate) fn finished(&self) -> Arc<FinishedRequests> {
        self.finished.clone()
    }

    /// The connection is gone: forgets every request.
    pub(crate) fn clear(&mut self) {
        self.held.clear();
        self.finished.close();
    }
}
