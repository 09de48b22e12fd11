//! Banned addresses (stock's `badPeers`): an address marked bad leaves the tables and is
//! remembered here until its ban ends, so hearsay cannot bring it back meanwhile. The list is
//! bounded; when full, the ban that ends first gives way.

use std::collections::HashMap;
use std::time::Instant;

use crate::proto::secret::NodeId;

use super::known::Known;

/// One banned address and when its ban ends.
#[derive(Clone, Debug)]
pub(super) struct Banned {
    /// The address as the book knew it.
    pub(super) known: Known,
    /// The end of the ban.
    pub(super) until: Instant,
}

/// The banned addresses.
#[derive(Clone, Debug)]
pub(super) struct Bans {
    entries: HashMap<NodeId, Banned>,
    capacity: usize,
}

impl Bans {
    /// An empty list of at most `capacity` bans (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Bans {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Bans `known` until `until`; an existing ban is only ever lengthened (as stock).
    pub(super) fn ban(&mut self, known: Known, until: Instant) {
        let id = known.addr.id;
        if let Some(b) = self.entries.get_mut(&id) {
            b.until = b.until.max(until);
            return;
        }
        if self.entries.len() >= self.capacity {
            let first = self
                .entries
                .iter()
                .min_by_key(|(id, b)| (b.until, **id))
                .map(|(id, _)| *id);
            if let Some(first) = first {
                self.entries.remove(&first);
            }
        }
        self.entries.insert(id, Banned { known, until });
    }

    /// Whether `id` is banned at `now`.
    pub(super) fn is_banned(&self, id: &NodeId, now: Instant) -> bool {
        self.entries.get(id).is_some_and(|b| b.until > now)
    }

    /// Removes and returns the bans that ended by `now`, in the order they ended.
    pub(super) fn take_ended(&mut self, now: Instant) -> Vec<Known> {
        let mut ended: Vec<Banned> = Vec::new();
        self.entries.retain(|_, b| {
            if b.until <= now {
                ended.push(b.clone());
                false
            } else {
                true
            }
        });
        ended.sort_by_key(|b| (b.until, b.known.addr.id));
        ended.into_iter().map(|b| b.known).collect()
    }

    /// The bans, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Banned> {
        self.entries.values()
    }

    /// Bans held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::pex::PexAddr;

    fn known(n: u8, now: Instant) -> Known {
        let a = PexAddr {
            id: NodeId([n; 20]),
            ip: IpAddr::V4(Ipv4Addr::new(1, 2, 3, n)),
            port: 26656,
        };
        Known::new(a, a, now, u64::from(n))
    }

    #[test]
    fn bans_end_lengthen_and_stay_bounded() {
        let t = Instant::now();
        let s = Duration::from_secs;
        let mut bans = Bans::new(2);
        bans.ban(known(1, t), t + s(10));
        assert!(bans.is_banned(&NodeId([1; 20]), t + s(9)));
        assert!(!bans.is_banned(&NodeId([1; 20]), t + s(10)));
        // A shorter ban does not shorten it, a longer one lengthens it.
        bans.ban(known(1, t), t + s(5));
        assert!(bans.is_banned(&NodeId([1; 20]), t + s(9)));
        bans.ban(known(1, t), t + s(20));
        assert!(bans.is_banned(&NodeId([1; 20]), t + s(19)));
        // Full: the ban ending first gives way.
        bans.ban(known(2, t), t + s(30));
        bans.ban(known(3, t), t + s(40));
        assert_eq!(bans.len(), 2);
        assert!(!bans.is_banned(&NodeId([1; 20]), t));
        assert!(bans.is_banned(&NodeId([2; 20]), t));
        let ended = bans.take_ended(t + s(35));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].addr.id, NodeId([2; 20]));
        assert_eq!(bans.len(), 1);
        assert_eq!(bans.iter().count(), 1);
    }
}
