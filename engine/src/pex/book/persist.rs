//! The book to and from its file ([`AddrBookFile`], stock's `addrbook.json`).
//!
//! Writing: every address with its buckets, attempts and times (monotonic times become
//! wall-clock ones through [`Clocks`]); a banned address is written as a new address with its
//! ban's end as `last_ban_time` (stock forgets bans at a restart and would read it as a plain
//! new address; ringwire reads the ban back).
//!
//! ringwire's `ringwire` field keeps each node's capabilities; read back, a list HELLO would
//! refuse is forgotten (the address stays).
//!
//! Reading, as stock's `loadFromFile` but bounded and checked: the key is kept (a key that is
//! not 1 to 128 printable characters is replaced); tried addresses come first, then new ones in
//! file order, up to the book's capacity; an address goes to the buckets the file lists when
//! they exist and have room (stock's, whose placement ringwire cannot recompute), else to the
//! bucket ringwire computes; a tried address without room in the tried table is read as new.
//! An entry whose address or source does not parse, whose bucket type is neither 1 nor 2, whose
//! times are not RFC 3339, or whose node came earlier in the file is left out; so is one that
//! `accept` refuses (this node's own address, a private node's hearsay, a non-routable address
//! in a strict book).

use std::collections::HashSet;
use std::time::Instant;

use super::super::BookCapabilities;
use super::super::PexAddr;
use super::super::caps::check_capabilities;
use super::AddrBook;
use super::file::{
    AddrBookFile, BUCKET_TYPE_NEW, BUCKET_TYPE_TRIED, FileAddr, FileEntry, FileRingwire,
};
use super::known::Known;
use super::place::{BookKey, MAX_NEW_BUCKETS_PER_ADDRESS};
use super::rng::SplitMix;
use super::time::{Clocks, Wall};

/// What reading a file did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LoadReport {
    /// Addresses now in the book.
    pub(crate) loaded: usize,
    /// Of those, in the tried table.
    pub(crate) tried: usize,
    /// Addresses whose ban has not ended: refused until it does.
    pub(crate) banned: usize,
    /// Entries that do not parse, or repeat a node.
    pub(crate) invalid: usize,
    /// Entries refused by the node's policy (`accept`).
    pub(crate) refused: usize,
    /// Entries beyond the capacity of the book or of their buckets.
    pub(crate) dropped: usize,
}

/// An entry read from the file, before it has a place.
struct Candidate {
    known: Known,
    listed: Vec<i64>,
    ban: Option<Instant>,
}

impl AddrBook {
    /// The book as a file, its times read against `clocks`; addresses by node ID, then the
    /// banned ones.
    pub(in crate::pex) fn to_file(&self, clocks: &Clocks) -> AddrBookFile {
        let mut held: Vec<&Known> = self.entries.iter().collect();
        held.sort_unstable_by_key(|k| k.addr.id);
        let mut addrs: Vec<FileEntry> = held
            .into_iter()
            .map(|k| entry(k, k.buckets.clone(), None, clocks))
            .collect();
        let mut banned: Vec<_> = self.bans.iter().collect();
        banned.sort_unstable_by_key(|b| b.known.addr.id);
        for b in banned {
            let bucket = self.new_bucket(&b.known.addr, &b.known.src);
            let mut k = b.known.clone();
            k.tried = false;
            addrs.push(entry(&k, vec![bucket], Some(b.until), clocks));
        }
        AddrBookFile {
            key: self.key.as_str().to_owned(),
            addrs,
        }
    }

    /// A book of at most `capacity` addresses from `file` (the rules are in the module
    /// documentation); `accept` is given each address and whether it was announced.
    pub(in crate::pex) fn from_file(
        file: &AddrBookFile,
        capacity: usize,
        strict: bool,
        seed: u64,
        clocks: &Clocks,
        accept: impl Fn(&PexAddr, bool) -> bool,
    ) -> (AddrBook, LoadReport) {
        let mut rng = SplitMix::new(seed);
        let key = BookKey::parse(&file.key).unwrap_or_else(|| BookKey::random(&mut rng));
        let mut book = AddrBook::with_key(capacity, strict, key, rng);
        let mut report = LoadReport::default();
        let mut seen = HashSet::new();
        let mut candidates = Vec::new();
        for e in &file.addrs {
            let Some(c) = candidate(e, clocks) else {
                report.invalid += 1;
                continue;
            };
            if !seen.insert(c.known.addr.id) {
                report.invalid += 1;
            } else if !accept(&c.known.addr, c.known.announced()) {
                report.refused += 1;
            } else {
                candidates.push(c);
            }
        }
        // Tried first; the sort is stable, so file order otherwise.
        candidates.sort_by_key(|c| !c.known.tried);
        for c in candidates {
            if let Some(until) = c.ban.filter(|&u| u > clocks.now) {
                book.bans.ban(c.known, until);
                report.banned += 1;
            } else if book.is_full() {
                report.dropped += 1;
            } else if book.restore(c.known, &c.listed) {
                report.loaded += 1;
            } else {
                report.dropped += 1;
            }
        }
        report.tried = book.tried_len();
        (book, report)
    }

    /// Places an address read from a file in the buckets it lists (those that exist and have
    /// room), else in its computed bucket; returns false when neither has room.
    fn restore(&mut self, mut k: Known, listed: &[i64]) -> bool {
        let id = k.addr.id;
        let fits = |table: &super::table::Table, b: &i64| {
            usize::try_from(*b)
                .ok()
                .filter(|&b| b < table.count() && !table.is_full(b))
        };
        if k.tried {
            let tb = listed
                .iter()
                .find_map(|b| fits(&self.tried, b))
                .or_else(|| {
                    let b = self.tried_bucket(&k.addr);
                    (!self.tried.is_full(b)).then_some(b)
                });
            match tb {
                Some(tb) => {
                    self.tried.insert(tb, id);
                    k.buckets = vec![tb];
                }
                None => k.tried = false,
            }
        }
        if !k.tried {
            let mut buckets: Vec<usize> = Vec::new();
            for b in listed.iter().filter_map(|b| fits(&self.new, b)) {
                if !buckets.contains(&b) && buckets.len() < MAX_NEW_BUCKETS_PER_ADDRESS {
                    buckets.push(b);
                }
            }
            if buckets.is_empty() {
                let b = self.new_bucket(&k.addr, &k.src);
                if self.new.is_full(b) {
                    return false;
                }
                buckets.push(b);
            }
            for &b in &buckets {
                self.new.insert(b, id);
            }
            k.buckets = buckets;
        }
        k.seq = self.seq;
        self.seq += 1;
        self.index.insert(id, self.entries.len());
        self.entries.push(k);
        true
    }
}

/// The file entry of `k`, in `buckets`, banned until `ban`.
fn entry(k: &Known, buckets: Vec<usize>, ban: Option<Instant>, clocks: &Clocks) -> FileEntry {
    let time = |t: Option<Instant>| Some(clocks.wall_of(t).format());
    FileEntry {
        addr: Some(FileAddr::from_addr(&k.addr)),
        src: Some(FileAddr::from_addr(&k.src)),
        buckets: Some(buckets.into_iter().map(|b| b as i64).collect()),
        // Go reads an int32.
        attempts: i64::from(k.attempts.min(i32::MAX as u32)),
        bucket_type: if k.tried {
            BUCKET_TYPE_TRIED
        } else {
            BUCKET_TYPE_NEW
        },
        last_attempt: time(k.last_attempt),
        last_success: time(k.last_success),
        last_ban_time: time(ban),
        ringwire: k.caps.as_ref().map(|c| FileRingwire {
            capabilities: c.capabilities.clone(),
            confirmed: c.confirmed,
        }),
    }
}

/// The address an entry describes, if it is a usable one.
fn candidate(e: &FileEntry, clocks: &Clocks) -> Option<Candidate> {
    let addr = e.addr.as_ref()?.to_addr()?;
    let src = e.src.as_ref()?.to_src()?;
    let tried = match e.bucket_type {
        BUCKET_TYPE_NEW => false,
        BUCKET_TYPE_TRIED => true,
        _ => return None,
    };
    // A missing time is Go's zero time; one that does not parse spoils the entry.
    let wall = |t: &Option<String>| match t {
        None => Some(Wall::ZERO),
        Some(text) => Wall::parse(text),
    };
    let last_attempt = clocks.instant_of(wall(&e.last_attempt)?, true);
    let last_success = clocks.instant_of(wall(&e.last_success)?, true);
    let ban = clocks.instant_of(wall(&e.last_ban_time)?, false);
    let mut known = Known::new(addr, src, clocks.now, 0);
    known.tried = tried;
    known.attempts = u32::try_from(e.attempts.max(0)).unwrap_or(u32::MAX);
    known.last_attempt = last_attempt;
    known.last_success = last_success;
    // Capabilities HELLO would refuse are forgotten; the address stays.
    known.caps = e
        .ringwire
        .as_ref()
        .filter(|r| check_capabilities(&r.capabilities).is_ok())
        .map(|r| BookCapabilities {
            capabilities: r.capabilities.clone(),
            confirmed: r.confirmed,
        });
    Some(Candidate {
        known,
        listed: e.buckets.clone().unwrap_or_default(),
        ban,
    })
}
