//! The address book: a bounded set of learned addresses, one per node ID, that evicts instead
//! of refusing and answers with random selections.
//!
//! Each address is either *announced* (the node's own NodeInfo listen address, learned when it
//! connected) or *hearsay* (from another peer's `PexAddrs`). Hearsay never overwrites an
//! announced address; an announcement overwrites anything. When the book is full a new address
//! replaces a random hearsay one, so a full book keeps taking news instead of freezing on the
//! first comers, while the addresses nodes vouched for themselves stay. A book full of
//! announced addresses refuses hearsay, and a new announcement replaces a random announced
//! one there (so connections from fresh identities cannot freeze it either).

use std::collections::HashMap;

use crate::proto::secret::NodeId;

use super::PexAddr;

/// Where an address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// The node's own NodeInfo, when it connected to this node.
    Announced,
    /// Another peer's address list.
    Hearsay,
}

/// What [`AddrBook::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inserted {
    /// A new address, in a free place.
    Added,
    /// A new address in place of a random other one (hearsay first).
    Evicted,
    /// The node's address was known and now reads as given.
    Updated,
    /// Hearsay about a node that announced its own address: the announcement stays.
    KeptAnnounced,
    /// Hearsay, and the book is full of announced addresses (or holds none at all).
    Full,
}

/// A small deterministic generator (SplitMix64): the book's choices need to be unpredictable
/// to peers, not cryptographic; the seed comes from the operating system in a node.
#[derive(Clone, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// The bounded address book.
#[derive(Clone, Debug)]
pub(super) struct AddrBook {
    capacity: usize,
    announced: Vec<PexAddr>,
    hearsay: Vec<PexAddr>,
    /// Where each node's address is: its source and its place in that list.
    index: HashMap<NodeId, (Source, usize)>,
    rng: SplitMix,
}

impl AddrBook {
    /// An empty book of at most `capacity` addresses; `seed` drives its random choices.
    pub(super) fn new(capacity: usize, seed: u64) -> Self {
        AddrBook {
            capacity,
            announced: Vec::new(),
            hearsay: Vec::new(),
            index: HashMap::new(),
            rng: SplitMix(seed),
        }
    }

    /// Addresses held.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the book holds `capacity` addresses.
    pub(super) fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// The address held for `id` and where it came from.
    #[cfg(test)]
    pub(super) fn get(&self, id: &NodeId) -> Option<(PexAddr, Source)> {
        let (source, pos) = *self.index.get(id)?;
        Some((self.list(source)[pos], source))
    }

    /// Every address, ordered by node ID.
    pub(super) fn addresses(&self) -> Vec<PexAddr> {
        let mut all: Vec<PexAddr> = self
            .announced
            .iter()
            .chain(&self.hearsay)
            .copied()
            .collect();
        all.sort_unstable();
        all
    }

    /// Records `addr` as learned from `source` (the rules are in the module documentation).
    pub(super) fn insert(&mut self, addr: PexAddr, source: Source) -> Inserted {
        match self.index.get(&addr.id).copied() {
            Some((Source::Announced, _)) if source == Source::Hearsay => Inserted::KeptAnnounced,
            Some((held, pos)) if held == source => {
                if let Some(slot) = self.list_mut(held).get_mut(pos) {
                    *slot = addr;
                }
                Inserted::Updated
            }
            Some((held, pos)) => {
                // Hearsay becomes an announcement.
                self.swap_remove(held, pos);
                self.push(addr, source);
                Inserted::Updated
            }
            None if !self.is_full() => {
                self.push(addr, source);
                Inserted::Added
            }
            None => {
                // Hearsay goes first; an announcement replaces an announcement only in a
                // book that holds nothing else (so fresh identities cannot freeze it).
                let from = if !self.hearsay.is_empty() {
                    Source::Hearsay
                } else if source == Source::Announced && !self.announced.is_empty() {
                    Source::Announced
                } else {
                    return Inserted::Full;
                };
                let victim = self.rng.below(self.list(from).len());
                self.swap_remove(from, victim);
                self.push(addr, source);
                Inserted::Evicted
            }
        }
    }

    /// Up to `k` addresses chosen uniformly at random among those `keep` accepts, in random
    /// order. Costs one step per address looked at (a partial Fisher–Yates shuffle over the
    /// book's indices that records only the swaps it makes), not one per address held.
    pub(super) fn sample(&mut self, k: usize, keep: impl Fn(&PexAddr) -> bool) -> Vec<PexAddr> {
        let n = self.len();
        let mut swapped: HashMap<usize, usize> = HashMap::new();
        let mut out = Vec::with_capacity(k.min(n));
        let mut i = 0;
        while out.len() < k && i < n {
            let j = i + self.rng.below(n - i);
            let at_j = swapped.get(&j).copied().unwrap_or(j);
            let at_i = swapped.get(&i).copied().unwrap_or(i);
            swapped.insert(j, at_i);
            if let Some(addr) = self.nth(at_j)
                && keep(&addr)
            {
                out.push(addr);
            }
            i += 1;
        }
        out
    }

    /// The address at `i` of the announced list followed by the hearsay list.
    fn nth(&self, i: usize) -> Option<PexAddr> {
        match i.checked_sub(self.announced.len()) {
            None => self.announced.get(i).copied(),
            Some(h) => self.hearsay.get(h).copied(),
        }
    }

    fn list(&self, source: Source) -> &Vec<PexAddr> {
        match source {
            Source::Announced => &self.announced,
            Source::Hearsay => &self.hearsay,
        }
    }

    fn list_mut(&mut self, source: Source) -> &mut Vec<PexAddr> {
        match source {
            Source::Announced => &mut self.announced,
            Source::Hearsay => &mut self.hearsay,
        }
    }

    fn push(&mut self, addr: PexAddr, source: Source) {
        let list = self.list_mut(source);
        list.push(addr);
        let pos = list.len() - 1;
        self.index.insert(addr.id, (source, pos));
    }

    /// Removes the address at `pos` of `source`'s list; the last one takes its place.
    fn swap_remove(&mut self, source: Source, pos: usize) {
        let list = self.list_mut(source);
        let gone = list.swap_remove(pos);
        let moved = list.get(pos).map(|a| a.id);
        self.index.remove(&gone.id);
        if let Some(id) = moved {
            self.index.insert(id, (source, pos));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn addr(n: u16) -> PexAddr {
        let [hi, lo] = n.to_be_bytes();
        let mut id = [0u8; 20];
        id[..2].copy_from_slice(&n.to_be_bytes());
        PexAddr {
            id: NodeId(id),
            ip: IpAddr::V4(Ipv4Addr::new(1, 2, hi, lo)),
            port: 26656,
        }
    }

    /// The index agrees with the lists.
    fn consistent(b: &AddrBook) {
        assert_eq!(b.index.len(), b.announced.len() + b.hearsay.len());
        for (source, list) in [
            (Source::Announced, &b.announced),
            (Source::Hearsay, &b.hearsay),
        ] {
            for (pos, a) in list.iter().enumerate() {
                assert_eq!(b.index.get(&a.id), Some(&(source, pos)));
            }
        }
    }

    #[test]
    fn a_full_book_evicts_hearsay_and_keeps_announcements() {
        let mut b = AddrBook::new(4, 7);
        assert_eq!(b.insert(addr(1), Source::Announced), Inserted::Added);
        assert_eq!(b.insert(addr(2), Source::Announced), Inserted::Added);
        assert_eq!(b.insert(addr(3), Source::Hearsay), Inserted::Added);
        assert_eq!(b.insert(addr(4), Source::Hearsay), Inserted::Added);
        for n in 10..60 {
            assert_eq!(b.insert(addr(n), Source::Hearsay), Inserted::Evicted);
            assert_eq!(b.len(), 4);
            consistent(&b);
        }
        assert_eq!(b.get(&addr(1).id), Some((addr(1), Source::Announced)));
        assert_eq!(b.get(&addr(2).id), Some((addr(2), Source::Announced)));
        // An announcement takes a hearsay place too.
        assert_eq!(b.insert(addr(5), Source::Announced), Inserted::Evicted);
        assert_eq!(b.insert(addr(6), Source::Announced), Inserted::Evicted);
        consistent(&b);
        // Only announcements left: hearsay is refused, an announcement replaces one.
        assert_eq!(b.insert(addr(7), Source::Hearsay), Inserted::Full);
        assert_eq!(b.get(&addr(7).id), None);
        assert_eq!(b.insert(addr(8), Source::Announced), Inserted::Evicted);
        assert_eq!(b.get(&addr(8).id), Some((addr(8), Source::Announced)));
        assert_eq!(b.len(), 4);
        consistent(&b);
        // A book of no places refuses everything.
        let mut none = AddrBook::new(0, 1);
        assert_eq!(none.insert(addr(1), Source::Announced), Inserted::Full);
        assert_eq!(none.insert(addr(1), Source::Hearsay), Inserted::Full);
        assert_eq!(none.len(), 0);
    }

    #[test]
    fn hearsay_never_overwrites_an_announcement() {
        let mut b = AddrBook::new(10, 1);
        let mine = addr(1);
        let mut lie = mine;
        lie.ip = IpAddr::V4(Ipv4Addr::new(6, 6, 6, 6));
        assert_eq!(b.insert(mine, Source::Announced), Inserted::Added);
        assert_eq!(b.insert(lie, Source::Hearsay), Inserted::KeptAnnounced);
        assert_eq!(b.get(&mine.id), Some((mine, Source::Announced)));
        // Hearsay updates hearsay; an announcement replaces it and is then kept.
        assert_eq!(b.insert(addr(2), Source::Hearsay), Inserted::Added);
        let mut moved = addr(2);
        moved.port = 1;
        assert_eq!(b.insert(moved, Source::Hearsay), Inserted::Updated);
        assert_eq!(b.insert(addr(2), Source::Announced), Inserted::Updated);
        assert_eq!(b.insert(moved, Source::Hearsay), Inserted::KeptAnnounced);
        assert_eq!(b.get(&addr(2).id), Some((addr(2), Source::Announced)));
        consistent(&b);
    }

    #[test]
    fn samples_are_random_distinct_and_filtered() {
        let mut b = AddrBook::new(1000, 42);
        for n in 0..100 {
            b.insert(addr(n), Source::Hearsay);
        }
        let skip = addr(0);
        let mut seen = HashSet::new();
        let mut first = None;
        for _ in 0..20 {
            let s = b.sample(10, |a| *a != skip);
            assert_eq!(s.len(), 10);
            assert!(!s.contains(&skip));
            let distinct: HashSet<_> = s.iter().collect();
            assert_eq!(distinct.len(), 10, "no address twice");
            first.get_or_insert_with(|| s.clone());
            seen.extend(s);
        }
        let lowest: Vec<PexAddr> = (1..=10).map(addr).collect();
        assert_ne!(first.unwrap(), lowest, "not the lowest IDs first");
        assert!(
            seen.len() > 60,
            "20 samples of 10 cover {} of 99",
            seen.len()
        );
        // Asking for more than there is gives everything accepted, once.
        let all = b.sample(1000, |a| *a != skip);
        assert_eq!(all.len(), 99);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 99);
    }
}
