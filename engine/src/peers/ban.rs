//! Banned peers (by node ID, or by address), each until an instant.
//!
//! The list is bounded: when it is full, a new ban evicts the entry that expires first (an
//! expired entry if there is one). A ban that is already in the list is only ever extended.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use crate::proto::secret::NodeId;

/// Default bound on the number of banned peers kept.
pub const DEFAULT_MAX_BANS: usize = 1024;

/// A bounded set of banned node IDs (or addresses, with `K = IpAddr`) with expiry times.
#[derive(Debug, Clone)]
pub struct BanList<K = NodeId> {
    max: usize,
    until: HashMap<K, Instant>,
}

impl<K: Copy + Eq + Hash> BanList<K> {
    /// An empty list keeping at most `max` bans (0 disables banning).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            until: HashMap::new(),
        }
    }

    /// Bans `id` until `until` (or later, if it is already banned for longer).
    pub fn ban(&mut self, id: K, until: Instant) {
        if let Some(existing) = self.until.get_mut(&id) {
            *existing = (*existing).max(until);
            return;
        }
        if self.max == 0 {
            return;
        }
        if self.until.len() >= self.max {
            let soonest = self
                .until
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(id, _)| *id);
            if let Some(evict) = soonest {
                self.until.remove(&evict);
            }
        }
        self.until.insert(id, until);
    }

    /// Lifts a ban; returns whether `id` was banned.
    pub fn unban(&mut self, id: &K) -> bool {
        self.until.remove(id).is_some()
    }

    /// Whether `id` is banned at `now`.
    pub fn is_banned(&self, id: &K, now: Instant) -> bool {
        self.banned_until(id, now).is_some()
    }

    /// When `id`'s ban ends, if it is banned at `now`.
    pub fn banned_until(&self, id: &K, now: Instant) -> Option<Instant> {
        self.until.get(id).copied().filter(|until| *until > now)
    }

    /// Drops the bans that have ended by `now`.
    pub fn expire(&mut self, now: Instant) {
        self.until.retain(|_, until| *until > now);
    }

    /// The bans in force at `now`, in no particular order.
    pub fn active(&self, now: Instant) -> impl Iterator<Item = (K, Instant)> + '_ {
        self.until
            .iter()
            .filter(move |(_, until)| **until > now)
            .map(|(k, until)| (*k, *until))
    }

    /// Number of entries kept (expired ones included until [`BanList::expire`]).
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether no ban is kept.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    #[test]
    fn bans_expire() {
        let now = Instant::now();
        let mut bans = BanList::new(4);
        bans.ban(id(1), now + Duration::from_secs(10));
        assert!(bans.is_banned(&id(1), now));
        assert!(bans.is_banned(&id(1), now + Duration::from_secs(9)));
        assert!(!bans.is_banned(&id(1), now + Duration::from_secs(10)));
        assert!(!bans.is_banned(&id(2), now));
        bans.expire(now + Duration::from_secs(10));
        assert!(bans.is_empty());
    }

    #[test]
    fn bans_only_extend() {
        let now = Instant::now();
        let mut bans = BanList::new(4);
        bans.ban(id(1), now + Duration::from_secs(10));
        bans.ban(id(1), now + Duration::from_secs(5));
        assert_eq!(
            bans.banned_until(&id(1), now),
            Some(now + Duration::from_secs(10))
        );
        bans.ban(id(1), now + Duration::from_secs(20));
        assert_eq!(
            bans.banned_until(&id(1), now),
            Some(now + Duration::from_secs(20))
        );
        assert!(bans.unban(&id(1)));
        assert!(!bans.is_banned(&id(1), now));
        assert!(!bans.unban(&id(1)));
    }

    #[test]
    fn full_list_evicts_the_soonest_to_expire() {
        let now = Instant::now();
        let mut bans = BanList::new(3);
        for n in 1..=3u8 {
            bans.ban(id(n), now + Duration::from_secs(u64::from(n) * 10));
        }
        bans.ban(id(9), now + Duration::from_secs(100));
        assert_eq!(bans.len(), 3);
        assert!(!bans.is_banned(&id(1), now));
        assert!(bans.is_banned(&id(2), now) && bans.is_banned(&id(9), now));
        for n in 10..200u8 {
            bans.ban(id(n), now + Duration::from_secs(1000));
        }
        assert_eq!(bans.len(), 3);
    }

    #[test]
    fn zero_capacity_bans_nothing() {
        let now = Instant::now();
        let mut bans = BanList::new(0);
        bans.ban(id(1), now + Duration::from_secs(10));
        assert!(!bans.is_banned(&id(1), now));
    }
}
