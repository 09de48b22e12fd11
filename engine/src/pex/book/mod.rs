//! The address book, as stock CometBFT keeps it (`p2p/pex/addrbook.go`), sans-IO: every time
//! is an argument, every random choice comes from a seeded generator, and the file is bytes in
//! and out (`pex::store` reads and writes it).
//!
//! **Tables.** Addresses live in one of two tables of buckets (`place`):
//! - the *new* table, 256 buckets of 64, holds addresses not yet proven. An address goes to a
//!   bucket chosen by its source's group and its own group under the book's random key, so one
//!   source group (a /16, see `group`) reaches at most 32 buckets — an eighth of the table —
//!   however many addresses it tells of. A known address told of again by another source may
//!   join up to four buckets (stock's `maxNewBucketsPerAddress`, with stock's falling odds).
//! - the *tried* table, 64 buckets of 64, holds addresses that proved good (`mark_good`, or a
//!   connection that stayed up, which the PEX state reports). An address goes to a bucket
//!   chosen by its own group and itself, one of four per group. A full tried bucket moves its
//!   least recently attempted address back to the new table (stock's `moveToOld`).
//!
//! **Bounds and eviction.** Each bucket holds at most its size and the whole book at most
//! `capacity` addresses (`max_address_book_size`). A full new bucket gives up an address of its
//! own — a bad one first (stock's `isBad`: by age and failed attempts), else the least recently
//! attempted or added (stock's `expireNew`); a full book gives up one of its most crowded new
//! bucket the same way, so the sources that crowd a bucket pay for what they add. Tried
//! addresses are never evicted for a new one.
//!
//! **Announced addresses.** An address the node at it announced itself (its NodeInfo listen
//! address, when it connected: the source is the node) replaces what the book held for that
//! node. Hearsay — another peer's list — never changes a known node's address (as stock: a
//! conflicting address is refused), and when a bucket must give up an address, hearsay goes
//! before announcements: a hearsay address never evicts an announced one.
//!
//! **Bans.** An address marked bad (`mark_bad`) leaves the tables and is refused until its ban
//! ends; then it returns to the new table when there is room (stock's `ReinstateBadPeers`).
//!
//! **Choices.** Answers to address requests are uniform random selections (`sample`); the
//! addresses to dial are picked with stock's bias between the tables (`pick_address`).

mod bans;
mod file;
mod known;
mod persist;
mod place;
mod rng;
mod table;
mod time;
mod view;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::proto::secret::NodeId;

use super::{BookCapabilities, PexAddr};
use bans::Bans;
use known::Known;
use place::{
    BookKey, MAX_NEW_BUCKETS_PER_ADDRESS, NEW_BUCKET_COUNT, NEW_BUCKET_SIZE, TRIED_BUCKET_COUNT,
    TRIED_BUCKET_SIZE,
};
use table::Table;

pub use file::{AddrBookFile, BookFormatError};
pub(super) use persist::LoadReport;
pub(super) use rng::SplitMix;
pub(super) use time::Clocks;
pub use view::BookEntry;

/// What [`AddrBook::learn`] or [`AddrBook::announce`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inserted {
    /// A new address (another may have been evicted for it: see [`AddrBook::evicted`]).
    Added,
    /// An announcement for a known node: its address now reads as announced.
    Updated,
    /// Hearsay repeating the address the book holds (it may have joined one more bucket).
    Known,
    /// Hearsay giving a known node another address: refused.
    Conflict,
    /// The node is banned: refused.
    Banned,
    /// No place: every address that could make room is tried, or announced (for hearsay).
    Full,
}

/// The address book.
#[derive(Clone, Debug)]
pub(super) struct AddrBook {
    capacity: usize,
    strict: bool,
    key: BookKey,
    /// Every address, in no order; `index` says where each node's is.
    entries: Vec<Known>,
    index: HashMap<NodeId, usize>,
    new: Table,
    tried: Table,
    bans: Bans,
    rng: SplitMix,
    /// Arrivals so far (each address's `seq`).
    seq: u64,
    /// Addresses that left the book to make room.
    evicted: u64,
    /// Changes so far (to know whether the file is behind).
    changes: u64,
}

impl AddrBook {
    /// An empty book of at most `capacity` addresses with a fresh key; `strict` is
    /// `addr_book_strict` (it names the local and non-routable groups); `seed` drives every
    /// random choice, the key included.
    pub(super) fn new(capacity: usize, strict: bool, seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        let key = BookKey::random(&mut rng);
        Self::with_key(capacity, strict, key, rng)
    }

    fn with_key(capacity: usize, strict: bool, key: BookKey, rng: SplitMix) -> Self {
        AddrBook {
            capacity,
            strict,
            key,
            entries: Vec::new(),
            index: HashMap::new(),
            new: Table::new(NEW_BUCKET_COUNT, NEW_BUCKET_SIZE),
            tried: Table::new(TRIED_BUCKET_COUNT, TRIED_BUCKET_SIZE),
            bans: Bans::new(capacity),
            rng,
            seq: 0,
            evicted: 0,
            changes: 0,
        }
    }

    /// Addresses held (banned ones not counted).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the book holds `capacity` addresses.
    pub(super) fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Addresses in the tried table.
    pub(super) fn tried_len(&self) -> usize {
        self.tried.refs()
    }

    /// Addresses in the new table.
    pub(super) fn new_len(&self) -> usize {
        self.len() - self.tried_len()
    }

    /// Addresses that left the book to make room for others, so far.
    pub(super) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Changes so far: grows with every change to what the file would hold.
    pub(super) fn changes(&self) -> u64 {
        self.changes
    }

    /// The address held for `id`.
    pub(super) fn get(&self, id: &NodeId) -> Option<PexAddr> {
        self.known(id).map(|k| k.addr)
    }

    /// How dialing `id` went: failed attempts since its last success, and the last attempt
    /// (or when the address was added, as stock); `None` for an unknown node.
    pub(super) fn dial_record(&self, id: &NodeId) -> Option<(u32, Option<Instant>)> {
        self.known(id).map(|k| (k.attempts, k.last_attempt))
    }

    /// What the book knows of `id`'s capabilities.
    pub(super) fn capabilities(&self, id: &NodeId) -> Option<&BookCapabilities> {
        self.known(id)?.caps.as_ref()
    }

    /// Records `id`'s capabilities: `confirmed` ones (from this node's own handshake with it)
    /// replace any record; hearsay replaces hearsay only, never a confirmed record. Returns
    /// whether the record changed (false too for a node the book does not hold).
    pub(super) fn set_capabilities(
        &mut self,
        id: &NodeId,
        capabilities: Vec<String>,
        confirmed: bool,
    ) -> bool {
        let Some(k) = self.known_mut(id) else {
            return false;
        };
        if !confirmed && k.caps.as_ref().is_some_and(|c| c.confirmed) {
            return false;
        }
        let record = BookCapabilities {
            capabilities,
            confirmed,
        };
        if k.caps.as_ref() == Some(&record) {
            return false;
        }
        k.caps = Some(record);
        self.changes += 1;
        true
    }

    /// The addresses whose record lists `capability`, each with whether the record is
    /// confirmed, ordered by node ID. Costs one step per address held.
    pub(super) fn with_capability(&self, capability: &str) -> Vec<(PexAddr, bool)> {
        let mut found: Vec<(PexAddr, bool)> = self
            .entries
            .iter()
            .filter_map(|k| {
                let c = k.caps.as_ref()?;
                c.has(capability).then_some((k.addr, c.confirmed))
            })
            .collect();
        found.sort_unstable();
        found
    }

    /// Whether `id`'s address is in the tried table.
    pub(super) fn is_tried(&self, id: &NodeId) -> bool {
        self.known(id).is_some_and(|k| k.tried)
    }

    /// Whether `id`'s address was announced by the node itself.
    #[cfg(test)]
    pub(super) fn is_announced(&self, id: &NodeId) -> bool {
        self.known(id).is_some_and(Known::announced)
    }

    /// Whether `id` is banned at `now`.
    #[cfg(test)]
    pub(super) fn is_banned(&self, id: &NodeId, now: Instant) -> bool {
        self.bans.is_banned(id, now)
    }

    /// Every address, ordered by node ID.
    pub(super) fn addresses(&self) -> Vec<PexAddr> {
        let mut all: Vec<PexAddr> = self.entries.iter().map(|k| k.addr).collect();
        all.sort_unstable();
        all
    }

    /// Records hearsay: `addr` as `src` (another peer, or this node) told of it. A known node
    /// keeps its address (a different one is a [`Inserted::Conflict`]); its address may join
    /// the new bucket of this source, with stock's odds of one in twice the buckets it is in
    /// already. A new address takes a place in its new bucket, evicting another hearsay
    /// address when the bucket or the book is full.
    pub(super) fn learn(&mut self, addr: PexAddr, src: PexAddr, now: Instant) -> Inserted {
        if self.bans.is_banned(&addr.id, now) {
            return Inserted::Banned;
        }
        let Some(k) = self.known(&addr.id) else {
            return self.add(Known::new(addr, src, now, self.seq), false, now);
        };
        let (conflict, tried, held) = (k.addr != addr, k.tried, k.buckets.len());
        if conflict {
            return Inserted::Conflict;
        }
        if tried || held >= MAX_NEW_BUCKETS_PER_ADDRESS || self.rng.below(2 * held) != 0 {
            return Inserted::Known;
        }
        let b = self.new_bucket(&addr, &src);
        if self.known(&addr.id).is_some_and(|k| k.buckets.contains(&b)) {
            return Inserted::Known;
        }
        if self.make_room(b, false, false, now) && self.new.insert(b, addr.id) {
            if let Some(k) = self.known_mut(&addr.id) {
                k.buckets.push(b);
            }
            self.changes += 1;
        }
        Inserted::Known
    }

    /// Records an announcement: the node at `addr` told this node its address itself; `src` is
    /// where it spoke from (its node ID, and the connection's remote address when known). It
    /// replaces the address held for the node (which moves to the buckets of its new address)
    /// or takes a new place, evicting hearsay first.
    pub(super) fn announce(&mut self, addr: PexAddr, src: PexAddr, now: Instant) -> Inserted {
        if self.bans.is_banned(&addr.id, now) {
            return Inserted::Banned;
        }
        let Some(k) = self.known_mut(&addr.id) else {
            return self.add(Known::new(addr, src, now, self.seq), true, now);
        };
        let moved = k.addr != addr;
        k.addr = addr;
        k.src = src;
        self.changes += 1;
        if moved {
            self.relocate(addr.id, now);
        }
        Inserted::Updated
    }

    /// Stock's `MarkGood`: `id` proved good (a connection to it that stayed up, or the
    /// application's word). Its attempts start over and its address moves to the tried table.
    /// Returns whether the book knows `id`.
    pub(super) fn mark_good(&mut self, id: &NodeId, now: Instant) -> bool {
        let Some(k) = self.known_mut(id) else {
            return false;
        };
        k.attempts = 0;
        k.last_attempt = Some(now);
        k.last_success = Some(now);
        if !k.tried {
            let buckets = std::mem::take(&mut k.buckets);
            for b in buckets {
                self.new.remove(b, id);
            }
            self.place_tried(*id, now);
        }
        self.changes += 1;
        true
    }

    /// Stock's `MarkAttempt`: a dial of `id` was attempted at `now` (it failed, or its outcome
    /// is not known yet). Returns whether the book knows `id`.
    pub(super) fn mark_attempt(&mut self, id: &NodeId, now: Instant) -> bool {
        let Some(k) = self.known_mut(id) else {
            return false;
        };
        k.attempts = k.attempts.saturating_add(1);
        k.last_attempt = Some(now);
        self.changes += 1;
        true
    }

    /// Stock's `MarkBad`: `id`'s address leaves the book and is refused until `until` (a
    /// later ban lengthens an earlier one). Returns whether the book knew `id`.
    pub(super) fn mark_bad(&mut self, id: &NodeId, until: Instant) -> bool {
        match self.remove(id) {
            Some(k) => {
                self.bans.ban(k, until);
                true
            }
            None => false,
        }
    }

    /// Ends the bans that are over at `now`: each address returns to the new table while the
    /// book has room (stock's `ReinstateBadPeers`). Returns how many returned.
    pub(super) fn end_bans(&mut self, now: Instant) -> usize {
        let mut back = 0;
        for mut k in self.bans.take_ended(now) {
            self.changes += 1;
            if self.index.contains_key(&k.addr.id) || self.is_full() {
                continue;
            }
            k.tried = false;
            k.buckets.clear();
            k.seq = self.seq;
            let announced = k.announced();
            if self.add(k, announced, now) == Inserted::Added {
                back += 1;
            }
        }
        back
    }

    /// Stock's `PickAddress`: an address to dial, from the new table with odds of
    /// `√new × bias` against `√tried × (100 − bias)` (`bias` is capped at 100), then from a
    /// random non-empty bucket of that table, then at random within it — so a source that
    /// filled its buckets weighs no more than one bucket each. When the table picked is empty
    /// the other is used (stock gives none then). `None` for an empty book.
    pub(super) fn pick_address(&mut self, bias: u8) -> Option<PexAddr> {
        if self.entries.is_empty() {
            return None;
        }
        let bias = f64::from(bias.min(100));
        let (tried, new) = (self.tried_len(), self.new_len());
        let tried_weight = (tried as f64).sqrt() * (100.0 - bias);
        let new_weight = (new as f64).sqrt() * bias;
        let mut from_tried = (tried_weight + new_weight) * self.rng.unit() < tried_weight;
        if from_tried && tried == 0 {
            from_tried = false;
        } else if !from_tried && new == 0 {
            from_tried = true;
        }
        let table = if from_tried { &self.tried } else { &self.new };
        let buckets = table.non_empty();
        let b = *buckets.get(self.rng.below(buckets.len()))?;
        let ids = table.bucket(b);
        let id = *ids.get(self.rng.below(ids.len()))?;
        self.get(&id)
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
            if let Some(addr) = self.entries.get(at_j).map(|e| e.addr)
                && keep(&addr)
            {
                out.push(addr);
            }
            i += 1;
        }
        out
    }

    // ---- placement ------------------------------------------------------------------------

    /// The group of `ip` in this book.
    fn group(&self, ip: IpAddr) -> String {
        crate::proto::netgroup::group_key(ip, self.strict)
    }

    /// The new bucket of `addr` told of by `src`.
    fn new_bucket(&self, addr: &PexAddr, src: &PexAddr) -> usize {
        self.key
            .new_bucket(&self.group(addr.ip), &self.group(src.ip))
    }

    /// The tried bucket of `addr`.
    fn tried_bucket(&self, addr: &PexAddr) -> usize {
        self.key.tried_bucket(addr, &self.group(addr.ip))
    }

    /// Adds an unknown address to its new bucket, making room there and in the book;
    /// `announced` says whether it may evict announced addresses.
    fn add(&mut self, mut k: Known, announced: bool, now: Instant) -> Inserted {
        let id = k.addr.id;
        let b = self.new_bucket(&k.addr, &k.src);
        if !self.make_room(b, announced, true, now) {
            return Inserted::Full;
        }
        self.seq += 1;
        k.buckets = vec![b];
        k.tried = false;
        self.new.insert(b, id);
        self.index.insert(id, self.entries.len());
        self.entries.push(k);
        self.changes += 1;
        Inserted::Added
    }

    /// Moves `id`, whose address just changed, to the buckets of its new address.
    fn relocate(&mut self, id: NodeId, now: Instant) {
        let Some(k) = self.known_mut(&id) else {
            return;
        };
        let (tried, buckets) = (k.tried, std::mem::take(&mut k.buckets));
        for b in buckets {
            if tried {
                self.tried.remove(b, &id);
            } else {
                self.new.remove(b, &id);
            }
        }
        if tried {
            self.place_tried(id, now);
            return;
        }
        let Some(k) = self.known(&id) else {
            return;
        };
        let b = self.new_bucket(&k.addr, &k.src);
        if self.make_room(b, true, false, now) && self.new.insert(b, id) {
            if let Some(k) = self.known_mut(&id) {
                k.buckets = vec![b];
            }
        } else {
            self.remove(&id);
        }
    }

    /// Puts `id` (in no bucket now) into its tried bucket; a full bucket first moves its least
    /// recently attempted address back to the new table.
    fn place_tried(&mut self, id: NodeId, now: Instant) {
        let Some(addr) = self.get(&id) else {
            return;
        };
        let tb = self.tried_bucket(&addr);
        if self.tried.is_full(tb) {
            let oldest = self
                .tried
                .bucket(tb)
                .iter()
                .filter_map(|i| self.known(i))
                .min_by_key(|k| (k.last_attempt, k.seq))
                .map(|k| k.addr.id);
            if let Some(old) = oldest {
                self.demote(old, tb, now);
            }
        }
        self.tried.insert(tb, id);
        if let Some(k) = self.known_mut(&id) {
            k.tried = true;
            k.buckets = vec![tb];
        }
        self.changes += 1;
    }

    /// Moves `id` from tried bucket `tb` back to its new bucket (or out of the book, when that
    /// bucket has no room for it).
    fn demote(&mut self, id: NodeId, tb: usize, now: Instant) {
        self.tried.remove(tb, &id);
        let Some(k) = self.known_mut(&id) else {
            return;
        };
        k.tried = false;
        k.buckets.clear();
        let (addr, src, announced) = (k.addr, k.src, k.announced());
        let b = self.new_bucket(&addr, &src);
        if self.make_room(b, announced, false, now) && self.new.insert(b, id) {
            if let Some(k) = self.known_mut(&id) {
                k.buckets = vec![b];
            }
        } else {
            self.remove(&id);
            self.evicted += 1;
        }
    }

    /// Makes room in new bucket `b` for one more address, and, with `whole`, in the book for
    /// one more address too. A full bucket gives up one of its own; a full book one of its
    /// most crowded new bucket. Only hearsay is given up, or announced addresses too when
    /// `announced` and the bucket holds no hearsay. Returns false when no address may go.
    fn make_room(&mut self, b: usize, announced: bool, whole: bool, now: Instant) -> bool {
        if self.new.is_full(b) {
            let Some(victim) = self.victim(b, announced, now) else {
                return false;
            };
            if whole && self.is_full() {
                self.evict(&victim);
                return true;
            }
            self.new.remove(b, &victim);
            let left = self.known_mut(&victim).map(|k| {
                k.buckets.retain(|&x| x != b);
                k.buckets.len()
            });
            self.changes += 1;
            if left == Some(0) {
                self.evict(&victim);
            }
        }
        if whole && self.is_full() {
            let Some(victim) = self.crowded_victim(announced, now) else {
                return false;
            };
            self.evict(&victim);
        }
        true
    }

    /// The address new bucket `b` gives up: among its hearsay (or, with `announced` and no
    /// hearsay there, its announced addresses) a bad one first, else the least recently
    /// attempted.
    fn victim(&self, b: usize, announced: bool, now: Instant) -> Option<NodeId> {
        let held = self.new.bucket(b).iter().filter_map(|id| self.known(id));
        let hearsay = held
            .clone()
            .filter(|k| !k.announced())
            .min_by_key(|k| k.eviction_rank(now));
        let pick = match hearsay {
            Some(k) => Some(k),
            None if announced => held.min_by_key(|k| k.eviction_rank(now)),
            None => None,
        };
        pick.map(|k| k.addr.id)
    }

    /// The victim of the most crowded new bucket that has one (ties broken at random).
    fn crowded_victim(&mut self, announced: bool, now: Instant) -> Option<NodeId> {
        let count = self.new.count();
        let start = self.rng.below(count);
        let mut best: Option<(usize, NodeId)> = None;
        for i in 0..count {
            let b = (start + i) % count;
            let len = self.new.bucket(b).len();
            if len == 0 || best.is_some_and(|(l, _)| l >= len) {
                continue;
            }
            if let Some(v) = self.victim(b, announced, now) {
                best = Some((len, v));
            }
        }
        best.map(|(_, v)| v)
    }

    /// Removes `id` to make room, and counts it.
    fn evict(&mut self, id: &NodeId) {
        if self.remove(id).is_some() {
            self.evicted += 1;
        }
    }

    /// Removes `id`'s address from its buckets and the book.
    fn remove(&mut self, id: &NodeId) -> Option<Known> {
        let i = self.index.remove(id)?;
        let k = self.entries.swap_remove(i);
        if let Some(moved) = self.entries.get(i) {
            self.index.insert(moved.addr.id, i);
        }
        for &b in &k.buckets {
            if k.tried {
                self.tried.remove(b, id);
            } else {
                self.new.remove(b, id);
            }
        }
        self.changes += 1;
        Some(k)
    }

    fn known(&self, id: &NodeId) -> Option<&Known> {
        self.entries.get(*self.index.get(id)?)
    }

    fn known_mut(&mut self, id: &NodeId) -> Option<&mut Known> {
        self.entries.get_mut(*self.index.get(id)?)
    }
}
