//! Addressing: where a message goes.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::proto::secret::NodeId;

/// How many of the peers with a capability a role-addressed message reaches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fanout {
    /// Every connected peer that announced the capability.
    All,
    /// At most this many of them, chosen at random.
    Count(usize),
    /// This fraction of them (0.0 ..= 1.0), rounded up, chosen at random.
    Fraction(f64),
}

impl Fanout {
    /// How many of `n` candidates to choose.
    pub(crate) fn choose_count(self, n: usize) -> usize {
        match self {
            Fanout::All => n,
            Fanout::Count(k) => k.min(n),
            Fanout::Fraction(f) => {
                if f.is_nan() || f <= 0.0 {
                    0
                } else if f >= 1.0 {
                    n
                } else {
                    // n is a peer count, far below 2^52: the product is exact enough.
                    let k = (f * n as f64).ceil();
                    (k as usize).min(n)
                }
            }
        }
    }
}

/// The destination of an [`Envelope`].
#[derive(Clone, Debug, PartialEq)]
pub enum To {
    /// One connected peer.
    Peer(NodeId),
    /// Every connected peer that shares the channel.
    Broadcast,
    /// This node's own receiver of the channel: no encoding, no encryption, no copy.
    Local,
    /// Peers that announced `capability` (native peers only), as many as `fanout` says.
    Role {
        /// The service capability, such as `"archive"`.
        capability: String,
        /// How many of the matching peers.
        fanout: Fanout,
    },
}

/// A message and its destination.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Where it goes.
    pub to: To,
    /// The message. Peers receive exactly these bytes; a local receiver receives this very
    /// buffer.
    pub payload: Bytes,
    /// Deliver by then or not at all (`None`: no deadline). The sending shard drops the
    /// message if the deadline passes before it is written; a native peer receives the
    /// remaining time-to-live and drops it if that runs out before its application takes it.
    /// Both drops are counted (`NodeStats::expired_before_send`, `expired_before_delivery`).
    pub deliver_by: Option<Instant>,
}

impl Envelope {
    /// A message for one peer.
    pub fn peer(id: NodeId, payload: Bytes) -> Self {
        Envelope {
            to: To::Peer(id),
            payload,
            deliver_by: None,
        }
    }

    /// A message for every peer.
    pub fn broadcast(payload: Bytes) -> Self {
        Envelope {
            to: To::Broadcast,
            payload,
            deliver_by: None,
        }
    }

    /// A message for this node's own receiver.
    pub fn local(payload: Bytes) -> Self {
        Envelope {
            to: To::Local,
            payload,
            deliver_by: None,
        }
    }

    /// A message for peers with a capability.
    pub fn role(capability: impl Into<String>, fanout: Fanout, payload: Bytes) -> Self {
        Envelope {
            to: To::Role {
                capability: capability.into(),
                fanout,
            },
            payload,
            deliver_by: None,
        }
    }

    /// The same message, worth delivering only within `within` from now (see
    /// [`deliver_by`](Self::deliver_by)); a duration too large for the clock means no deadline.
    pub fn deliver_within(self, within: Duration) -> Self {
        let by = Instant::now().checked_add(within);
        self.deliver_by(by)
    }

    /// The same message with delivery deadline `by` (`None`: none).
    pub fn deliver_by(mut self, by: Option<Instant>) -> Self {
        self.deliver_by = by;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_counts() {
        assert_eq!(Fanout::All.choose_count(7), 7);
        assert_eq!(Fanout::Count(3).choose_count(7), 3);
        assert_eq!(Fanout::Count(30).choose_count(7), 7);
        assert_eq!(Fanout::Fraction(0.3).choose_count(10), 3);
        assert_eq!(Fanout::Fraction(0.31).choose_count(10), 4);
        assert_eq!(Fanout::Fraction(0.0).choose_count(10), 0);
        assert_eq!(Fanout::Fraction(f64::NAN).choose_count(10), 0);
        assert_eq!(Fanout::Fraction(2.0).choose_count(10), 10);
        assert_eq!(Fanout::Fraction(0.5).choose_count(0), 0);
    }
}
