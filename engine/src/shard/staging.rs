//! Messages a shard holds for one connection until the connection's own queue has room.
//!
//! One lane per channel, in arrival order. Application sends hold a credit (so a lane holds at
//! most the channel's `send_queue_capacity` of them); responses are bounded by the requests the
//! peer may have in flight; broadcast and role copies are added only while the lane is shorter
//! than twice the capacity, and skipped (counted) beyond that.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::proto::conn::{Connection, QueueError};
use crate::proto::mconn;
use crate::proto::native::{MuxQueueError, RequestId};
use crate::registry::{PeerEntry, SendError};

use super::inbox::RequestReply;

/// One held item.
pub(crate) enum Staged {
    /// A plain message; `credit` when an application send holds a credit for it; dropped
    /// unsent once `deliver_by` passes.
    Send {
        payload: Bytes,
        credit: bool,
        deliver_by: Option<Instant>,
    },
    /// A request (holds a credit).
    Request {
        payload: Bytes,
        deadline: Instant,
        reply: RequestReply,
    },
    /// A response to a request the peer sent.
    Response { id: RequestId, payload: Bytes },
}

impl Staged {
    /// Payload bytes of the item.
    fn len(&self) -> usize {
        match self {
            Staged::Send { payload, .. }
            | Staged::Request { payload, .. }
            | Staged::Response { payload, .. } => payload.len(),
        }
    }

    fn holds_credit(&self) -> bool {
        match self {
            Staged::Send { credit, .. } => *credit,
            Staged::Request { .. } => true,
            Staged::Response { .. } => false,
        }
    }
}

struct Lane {
    channel: u8,
    items: VecDeque<Staged>,
}

/// What the pump moved into the connection.
#[derive(Default)]
pub(crate) struct Pumped {
    /// Items accepted by the connection.
    pub(crate) moved: usize,
    /// Requests accepted, with the ids to route their responses.
    pub(crate) requests: Vec<(RequestId, RequestReply)>,
    /// Messages the connection refused for good (larger than the peer's cap for the channel,
    /// a channel the peer does not run, the connection closing): dropped, and counted.
    pub(crate) dropped: u64,
    /// Messages whose delivery deadline passed while they were held: dropped, and counted.
    pub(crate) expired: u64,
}

/// Payload bytes moved into the connection on one channel and not yet added to the peer's
/// traffic counters. Adding them per message would touch the peer's registry entry (two cache
/// misses) for every copy of a broadcast; the tally adds them when the channel changes and
/// when the connection's writer takes what was moved ([`Staging::flush_sent`]).
#[derive(Default)]
struct SentTally {
    channel: u8,
    bytes: usize,
}

impl SentTally {
    fn add(&mut self, entry: Option<&PeerEntry>, channel: u8, bytes: usize) {
        if self.channel != channel {
            self.flush(entry);
            self.channel = channel;
        }
        self.bytes = self.bytes.saturating_add(bytes);
    }

    fn flush(&mut self, entry: Option<&PeerEntry>) {
        if self.bytes > 0 {
            if let Some(e) = entry {
                e.record_sent(self.channel, self.bytes);
            }
            self.bytes = 0;
        }
    }
}

/// The held items of one connection.
#[derive(Default)]
pub(crate) struct Staging {
    lanes: Vec<Lane>,
    sent: SentTally,
}

impl Staging {
    fn lane(&mut self, channel: u8) -> &mut VecDeque<Staged> {
        let i = match self.lanes.iter().position(|l| l.channel == channel) {
            Some(i) => i,
            None => {
                self.lanes.push(Lane {
                    channel,
                    items: VecDeque::new(),
                });
                self.lanes.len() - 1
            }
        };
        // `i` is in range: found above or just pushed.
        &mut self.lanes[i].items
    }

    /// Items held on `channel`.
    pub(crate) fn len(&self, channel: u8) -> usize {
        self.lanes
            .iter()
            .find(|l| l.channel == channel)
            .map_or(0, |l| l.items.len())
    }

    /// Whether no lane holds anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.lanes.iter().all(|l| l.items.is_empty())
    }

    /// Holds `item` at the back of its lane.
    pub(crate) fn push(&mut self, channel: u8, item: Staged) {
        self.lane(channel).push_back(item);
    }

    /// Moves held items into `conn` until each lane is empty or its queue is full. Credits go
    /// back to `entry` as items leave.
    pub(crate) fn pump(
        &mut self,
        conn: &mut Connection,
        entry: Option<&PeerEntry>,
        now: Instant,
    ) -> Pumped {
        let mut out = Pumped::default();
        for lane in &mut self.lanes {
            while let Some(item) = lane.items.pop_front() {
                let held = move_one(
                    lane.channel,
                    item,
                    conn,
                    entry,
                    now,
                    &mut out,
                    &mut self.sent,
                );
                if let Some(back) = held {
                    lane.items.push_front(back);
                    break;
                }
            }
        }
        out
    }

    /// Holds `item` for `channel` and moves what fits into `conn`. While nothing is held, the
    /// item goes straight into the connection and is held only if its queue is full: a
    /// broadcast to a thousand peers then touches no lane of theirs.
    pub(crate) fn offer(
        &mut self,
        conn: &mut Connection,
        entry: Option<&PeerEntry>,
        channel: u8,
        item: Staged,
        now: Instant,
    ) -> Pumped {
        if !self.is_empty() {
            self.push(channel, item);
            return self.pump(conn, entry, now);
        }
        let mut out = Pumped::default();
        if let Some(back) = move_one(channel, item, conn, entry, now, &mut out, &mut self.sent) {
            self.push(channel, back);
        }
        out
    }

    /// Adds the payload bytes moved into the connection so far to the peer's traffic counters.
    pub(crate) fn flush_sent(&mut self, entry: Option<&PeerEntry>) {
        self.sent.flush(entry);
    }

    /// Drops held requests whose caller stopped waiting, returning their credits.
    pub(crate) fn drop_abandoned(&mut self, entry: Option<&PeerEntry>) {
        for lane in &mut self.lanes {
            let channel = lane.channel;
            lane.items.retain(|item| {
                let abandoned = matches!(item, Staged::Request { reply, .. } if reply.is_closed());
                if abandoned && let Some(entry) = entry {
                    entry.release(channel, item.len());
                }
                !abandoned
            });
        }
    }

    /// Empties every lane (the connection is gone): requests learn `PeerGone`.
    pub(crate) fn clear(&mut self, entry: Option<&PeerEntry>) {
        self.sent.flush(entry);
        for lane in &mut self.lanes {
            for item in lane.items.drain(..) {
                if item.holds_credit()
                    && let Some(entry) = entry
                {
                    entry.release(lane.channel, item.len());
                }
                if let Staged::Request { reply, .. } = item {
                    let _ = reply.send(Err(SendError::PeerGone));
                }
            }
        }
        self.lanes.clear();
    }
}

/// Moves one item into `conn`, or hands it back when the connection's queue for `channel` is
/// full. What happened is added to `out`; a credit goes back to `entry` as the item leaves.
fn move_one(
    channel: u8,
    item: Staged,
    conn: &mut Connection,
    entry: Option<&PeerEntry>,
    now: Instant,
    out: &mut Pumped,
    sent: &mut SentTally,
) -> Option<Staged> {
    let credit = item.holds_credit();
    let len = item.len();
    let result = match item {
        Staged::Send {
            deliver_by: Some(d),
            ..
        } if d <= now => {
            // Too late to be worth sending (a documented drop, counted).
            out.expired += 1;
            Ok(())
        }
        Staged::Send {
            payload,
            credit,
            deliver_by,
        } => match conn.send_by(channel, payload.clone(), deliver_by) {
            Err(e) if is_full(&e) => {
                return Some(Staged::Send {
                    payload,
                    credit,
                    deliver_by,
                });
            }
            r => {
                if r.is_ok() {
                    sent.add(entry, channel, len);
                }
                r.map_err(map_error)
            }
        },
        Staged::Request {
            payload,
            deadline,
            reply,
        } => {
            if reply.is_closed() {
                // The caller stopped waiting before the request left: drop it.
                Ok(())
            } else if deadline <= now {
                let _ = reply.send(Err(SendError::Timeout));
                Ok(())
            } else {
                match conn.request(channel, payload.clone(), deadline) {
                    Err(e) if is_full(&e) => {
                        return Some(Staged::Request {
                            payload,
                            deadline,
                            reply,
                        });
                    }
                    Ok(id) => {
                        sent.add(entry, channel, len);
                        out.requests.push((id, reply));
                        Ok(())
                    }
                    Err(e) => {
                        let _ = reply.send(Err(map_error(e)));
                        Ok(())
                    }
                }
            }
        }
        Staged::Response { id, payload } => match conn.respond(channel, id, payload.clone()) {
            Err(e) if is_full(&e) => return Some(Staged::Response { id, payload }),
            r => {
                if r.is_ok() {
                    sent.add(entry, channel, len);
                }
                r.map_err(map_error)
            }
        },
    };
    if let Err(e) = result {
        tracing::debug!(channel, error = %e, "dropped a queued message");
        out.dropped += 1;
    }
    out.moved += 1;
    if credit && let Some(entry) = entry {
        entry.release(channel, len);
    }
    None
}

/// Whether a connection refused a message only because its queue is full.
fn is_full(e: &QueueError) -> bool {
    matches!(
        e,
        QueueError::Full(_)
            | QueueError::Native(MuxQueueError::Full)
            | QueueError::Compat(mconn::MConnQueueError::Full(_))
    )
}

/// The application's view of a connection's refusal.
pub(crate) fn map_error(e: QueueError) -> SendError {
    match e {
        QueueError::Full(_) => SendError::Full,
        QueueError::UnknownChannel(c) | QueueError::ChannelNotShared(c) => {
            SendError::ChannelNotShared(c)
        }
        QueueError::Unsupported => SendError::Unsupported,
        QueueError::NotReady | QueueError::Closed => SendError::PeerGone,
        QueueError::Native(e) => match e {
            MuxQueueError::Full => SendError::Full,
            MuxQueueError::UnknownChannel(c) => SendError::ChannelNotShared(c),
            MuxQueueError::TooLarge { len, max } => SendError::TooLarge { len, max },
            MuxQueueError::Closed => SendError::PeerGone,
            MuxQueueError::TooManyRequests => SendError::TooManyRequests,
            MuxQueueError::UnknownRequest(_) => SendError::PeerGone,
        },
        QueueError::Compat(e) => match e {
            mconn::MConnQueueError::Full(_) => SendError::Full,
            mconn::MConnQueueError::UnknownChannel(c) => SendError::ChannelNotShared(c),
            mconn::MConnQueueError::Closed => SendError::PeerGone,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::SentTally;
    use crate::proto::conn::{Mode, PeerInfo};
    use crate::proto::nodeinfo::NodeInfo;
    use crate::proto::secret::NodeKey;
    use crate::registry::{Direction, PeerEntry};

    fn sent(entry: &PeerEntry, channel: u8) -> u64 {
        entry
            .traffic()
            .channels
            .iter()
            .find(|c| c.channel == channel)
            .map_or(0, |c| c.sent_bytes)
    }

    #[test]
    fn the_tally_reaches_the_peer_when_flushed_or_when_the_channel_changes() {
        let info = Arc::new(PeerInfo {
            node_id: NodeKey::from_seed([4; 32]).node_id(),
            node_info: NodeInfo::default(),
            mode: Mode::Native,
            capabilities: Vec::new(),
        });
        let entry = PeerEntry::new(
            info,
            1,
            0,
            Direction::Outbound,
            None,
            [(0x20, 4), (0x40, 4)],
        );
        let mut tally = SentTally::default();
        tally.add(Some(&entry), 0x20, 100);
        tally.add(Some(&entry), 0x20, 50);
        assert_eq!(sent(&entry, 0x20), 0, "held until flushed");
        tally.add(Some(&entry), 0x40, 7);
        assert_eq!(sent(&entry, 0x20), 150, "a new channel adds the old tally");
        tally.flush(Some(&entry));
        assert_eq!(sent(&entry, 0x40), 7);
        tally.flush(Some(&entry));
        assert_eq!((sent(&entry, 0x20), sent(&entry, 0x40)), (150, 7));
    }
}
