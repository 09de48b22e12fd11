//! Dialing from the address book, as stock's PEX reactor does (`p2p/pex/pex_reactor.go`:
//! `ensurePeers`, `dialPeer`, `dialSeeds`, `crawlPeers`, `attemptDisconnects`), sans-IO: each
//! round the service asks the state for a [`DialPlan`] and carries it out through the node's
//! peer manager, which applies admission, bans, the dial cap and the tie-break; the outcome of
//! each dial comes back through [`Pex::dial_failed`] (a connection that stays up is promoted
//! by [`Pex::tick`], as the book defines).
//!
//! **Filling the outbound peers** ([`Pex::ensure_peers`], every
//! [`PexConfig::ensure_peers_period`]): with `missing` = target − (connected + dialing), it
//! picks `3 × missing` times from the book with stock's bias `min(outbound, 8) × 10 + 10`
//! towards the new table (few peers: mostly tried addresses), skipping connected peers, seeds,
//! persistent peers (the peer manager's) and addresses still in their backoff; the node dials
//! the first `missing` it can. An address
//! that failed `n` times in a row waits `dial_backoff_min × 2^(n−1)` (at most
//! `dial_backoff_max`, up to a fifth shorter at random) after its last attempt; after
//! [`MAX_DIAL_ATTEMPTS`] failures it is banned from the book for [`PexConfig::ban_duration`]
//! (stock: `maxAttemptsToDial`). While the book holds fewer than [`NEED_ADDRESS_THRESHOLD`]
//! addresses, a random connected peer not asked for [`PexConfig::min_request_interval`] is
//! asked for more, and when the round starts no dial the node dials a seed.
//!
//! **Capability targets** (`targets`): while outbound peers with a capability of
//! [`PexConfig::capability_targets`] are below target, addresses known to carry it come first
//! among the candidates, and with the outbound slots full one peer without it is let go;
//! when the book knows no such address to dial, a peer is asked for addresses even with the
//! outbound slots full.
//!
//! **Seeds**: one per round, in random order, each at most once per period; asked for
//! addresses when connected, and let go ([`Action::Release`]) once they answer or after
//! [`PexConfig::seed_disconnect_wait`]. A seed's answer, and a seed dial that fails, start
//! the next round at once (stock wakes `ensurePeers` on a seed's answer).
//!
//! **Seed mode** ([`Pex::crawl`]): every period the node dials up to
//! [`PexConfig::max_addrs_per_response`] random addresses of its book not crawled for
//! [`MIN_TIME_BETWEEN_CRAWLS`] (stock's `crawlPeers(GetSelection())`), asks each for
//! addresses and lets it go once it answered; an inbound peer's first request is answered and
//! the peer let go; a peer connected for [`PexConfig::seed_disconnect_wait`] is let go.
//! Persistent peers are never let go.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::proto::secret::NodeId;

use super::book::SplitMix;
use super::{Action, Pex, PexAddr};

/// Stock's `needAddressThreshold`: below this many addresses the book asks for more.
pub const NEED_ADDRESS_THRESHOLD: usize = 1000;

/// Stock's `maxAttemptsToDial`: failures in a row after which an address is banned from the
/// book.
pub const MAX_DIAL_ATTEMPTS: u32 = 16;

/// Stock's `minTimeBetweenCrawls`: in seed mode, an address is crawled at most this often.
pub const MIN_TIME_BETWEEN_CRAWLS: Duration = Duration::from_secs(120);

/// The most a backoff is shortened at random, as a fraction (as the peer manager's).
const JITTER: f64 = 0.2;

/// The node's outbound peers as the peer manager counts them when a round starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outbound {
    /// Outbound peers connected (those counted against the target).
    pub connected: usize,
    /// Dials in progress, and dials handed to the peer manager that have not started.
    pub dialing: usize,
    /// The target: `max_num_outbound_peers`.
    pub target: usize,
}

impl Outbound {
    /// Dials needed to reach the target.
    pub fn missing(&self) -> usize {
        self.target
            .saturating_sub(self.connected.saturating_add(self.dialing))
    }
}

/// What one round decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DialPlan {
    /// Addresses to dial, in the order picked. The node dials up to [`DialPlan::want`] of
    /// them, skipping those it cannot (connected, being dialed, banned, a dial target already,
    /// or, without `allow_duplicate_ip`, at the IP of a connected peer).
    pub candidates: Vec<PexAddr>,
    /// How many dials the round wants started.
    pub want: usize,
    /// Address requests to send.
    pub requests: Vec<Action>,
    /// When the node starts none of the candidates: the seeds to dial, in this order, the
    /// first that can be dialed (one seed per round).
    pub seeds: Vec<NodeId>,
}

/// The dialer's own state inside [`Pex`].
#[derive(Debug)]
pub(super) struct Discovery {
    /// The seeds' IDs (`p2p.seeds`).
    seeds: Vec<NodeId>,
    /// Persistent peers: never let go.
    persistent: HashSet<NodeId>,
    /// When each seed was last dialed.
    seed_dialed: HashMap<NodeId, Instant>,
    /// Seed mode: when each address was last crawled (entries older than
    /// [`MIN_TIME_BETWEEN_CRAWLS`] are dropped at each crawl, so it holds at most a few
    /// rounds' worth).
    crawled: HashMap<NodeId, Instant>,
    /// Actions produced outside a call's own result ([`Pex::poll_action`]): at most one
    /// [`Action::Release`] per connected peer.
    queue: VecDeque<Action>,
    /// A seed answered or a seed dial failed: the next round is due now.
    wake: bool,
    rng: SplitMix,
}

impl Discovery {
    pub(super) fn new(seed: u64) -> Self {
        Discovery {
            seeds: Vec::new(),
            persistent: HashSet::new(),
            seed_dialed: HashMap::new(),
            crawled: HashMap::new(),
            queue: VecDeque::new(),
            wake: false,
            rng: SplitMix::new(seed.rotate_left(29) ^ 0xd1a1),
        }
    }

    /// Whether `id` is one of the seeds.
    pub(super) fn is_seed(&self, id: &NodeId) -> bool {
        self.seeds.contains(id)
    }

    /// Whether `id` is a persistent peer.
    pub(super) fn is_persistent(&self, id: &NodeId) -> bool {
        self.persistent.contains(id)
    }

    /// A random index below `n` (0 when `n` is 0).
    pub(super) fn rng_below(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }

    /// Puts `items` in random order (Fisher–Yates).
    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.rng.below(i + 1);
            items.swap(i, j);
        }
    }

    /// The next round is due now.
    pub(super) fn wake(&mut self) {
        self.wake = true;
    }
}

/// SplitMix64's finaliser: a well-mixed hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The pause after the `attempts`-th failure in a row (`attempts ≥ 1`): `min × 2^(attempts−1)`
/// capped at `max`, shortened by up to [`JITTER`] as `salt` says.
pub(super) fn backoff(min: Duration, max: Duration, attempts: u32, salt: u64) -> Duration {
    let exp = attempts.saturating_sub(1).min(40);
    let grown = min.as_secs_f64() * f64::from(2u32).powi(exp as i32);
    let capped = grown.min(max.as_secs_f64()).max(0.0);
    let unit = (mix(salt) >> 11) as f64 / (1u64 << 53) as f64;
    Duration::try_from_secs_f64(capped * (1.0 - JITTER * unit))
        .unwrap_or(max)
        .min(max)
}

impl Pex {
    /// The seeds (`p2p.seeds`; the node passes its peer manager's): they are dialed when the
    /// book is low, always asked for addresses, and let go once they answer.
    pub fn set_seeds(&mut self, seeds: impl IntoIterator<Item = NodeId>) {
        self.discovery.seeds = seeds.into_iter().filter(|s| *s != self.local).collect();
        self.discovery.seeds.sort_unstable();
        self.discovery.seeds.dedup();
    }

    /// The persistent peers: seed mode never lets them go, and the book's dialer leaves them
    /// to the peer manager.
    pub fn set_persistent(&mut self, peers: impl IntoIterator<Item = NodeId>) {
        self.discovery.persistent = peers.into_iter().collect();
    }

    /// Whether the book wants more addresses: it holds fewer than
    /// [`NEED_ADDRESS_THRESHOLD`] (stock's `NeedMoreAddrs`) and is not full.
    pub fn needs_addresses(&self) -> bool {
        self.book.len() < NEED_ADDRESS_THRESHOLD && !self.book.is_full()
    }

    /// When the first round runs, after start: at once for a node without peers (it needs
    /// them, from its book or its seeds), else after a random part of the period, so nodes
    /// started together do not dial together (stock).
    pub fn first_round_delay(&mut self, has_peers: bool) -> Duration {
        let period = self.config.ensure_peers_period;
        if !has_peers || self.config.seed_mode {
            return Duration::ZERO;
        }
        period.mul_f64(self.discovery.rng.unit())
    }

    /// Whether an address of the book may be dialed at `now`: it has not failed, or its
    /// backoff since the last attempt is over.
    pub fn dial_due(&self, id: &NodeId, now: Instant) -> bool {
        match self.book.dial_record(id) {
            Some((attempts, Some(last))) if attempts > 0 => {
                let salt = self.seed ^ u64::from(attempts).rotate_left(40) ^ id_bits(id);
                let wait = backoff(
                    self.config.dial_backoff_min,
                    self.config.dial_backoff_max,
                    attempts,
                    salt,
                );
                now.saturating_duration_since(last) >= wait
            }
            _ => true,
        }
    }

    /// Whether `a` may be picked at `now`: not connected, and due. An address that failed
    /// more than [`MAX_DIAL_ATTEMPTS`] times is banned from the book here (not a persistent
    /// peer's: the peer manager redials those).
    pub(super) fn dialable(&mut self, a: &PexAddr, now: Instant) -> bool {
        if self.peers.contains_key(&a.id) || self.discovery.is_persistent(&a.id) {
            return false;
        }
        if let Some((attempts, _)) = self.book.dial_record(&a.id)
            && attempts > MAX_DIAL_ATTEMPTS
        {
            self.mark_bad(&a.id, now);
            return false;
        }
        self.dial_due(&a.id, now)
    }

    /// One round of stock's `ensurePeers` at `now`, for a node whose outbound peers are `out`:
    /// addresses to dial, requests to send while the book is low, and the seeds to try when
    /// no dial starts. Nothing when the target is met.
    pub fn ensure_peers(&mut self, out: Outbound, now: Instant) -> DialPlan {
        let missing = out.missing();
        let mut plan = DialPlan {
            want: missing,
            ..DialPlan::default()
        };
        let deficits = self.capability_deficits(out);
        let capable = if deficits.is_empty() {
            Vec::new()
        } else {
            self.capable_candidates(&deficits, now)
        };
        // Below a target with no capable address to dial: ask a peer for more (paced as the
        // low book's asks), even with the outbound slots full.
        let ask_for_capable = !deficits.is_empty() && capable.is_empty();
        if missing == 0 {
            if !capable.is_empty() && out.dialing == 0 {
                self.replace_one(&deficits, out);
            }
            if ask_for_capable {
                // Twice the interval peers hold this node to: never "too soon" on their side.
                let min = self.config.min_request_interval.saturating_mul(2);
                plan.requests.extend(self.ask_someone_after(now, min));
            }
            return plan;
        }
        let bias = (out.connected.min(8) * 10 + 10) as u8;
        let mut picked: HashSet<NodeId> = capable.iter().map(|a| a.id).collect();
        plan.candidates = capable;
        for _ in 0..missing.saturating_mul(3) {
            let Some(a) = self.book.pick_address(bias) else {
                break;
            };
            // Seeds are dialed as seeds only (asked, then let go), not to be kept.
            if picked.insert(a.id) && !self.discovery.is_seed(&a.id) && self.dialable(&a, now) {
                plan.candidates.push(a);
            }
        }
        if self.needs_addresses() {
            plan.requests.extend(self.ask_someone(now));
            plan.seeds = self.seeds_to_try(now);
        } else if ask_for_capable {
            plan.requests.extend(self.ask_someone(now));
        }
        plan
    }

    /// One round of stock's seed mode (`crawlPeers`) at `now`: up to
    /// [`max_addrs_per_response`](super::PexConfig::max_addrs_per_response) random addresses
    /// of the book that are not connected, not crawled within [`MIN_TIME_BETWEEN_CRAWLS`] and
    /// due, all to be dialed (the peer manager's outbound limit and dial cap pace them); the
    /// seeds while the book is low and nothing is dialed.
    pub fn crawl(&mut self, now: Instant) -> DialPlan {
        self.discovery
            .crawled
            .retain(|_, t| now.saturating_duration_since(*t) < MIN_TIME_BETWEEN_CRAWLS);
        let k = self
            .config
            .max_addrs_per_response
            .min(self.config.max_addrs_per_message);
        let crawled = &self.discovery.crawled;
        let sample = self.book.sample(k, |a| !crawled.contains_key(&a.id));
        let mut plan = DialPlan::default();
        for a in sample {
            if self.dialable(&a, now) {
                self.discovery.crawled.insert(a.id, now);
                plan.candidates.push(a);
            }
        }
        plan.want = plan.candidates.len();
        if self.needs_addresses() {
            plan.seeds = self.seeds_to_try(now);
        }
        plan
    }

    /// A request to a random connected peer that has no request outstanding and was not asked
    /// within [`PexConfig::min_request_interval`] (stock asks a random peer).
    fn ask_someone(&mut self, now: Instant) -> Option<Action> {
        self.ask_someone_after(now, self.config.min_request_interval)
    }

    /// [`Pex::ask_someone`] among peers not asked within `min`.
    fn ask_someone_after(&mut self, now: Instant, min: Duration) -> Option<Action> {
        let mut ready: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, s)| {
                !s.requested
                    && !s.released
                    && s.since.is_some()
                    && s.asked_at
                        .is_none_or(|t| now.saturating_duration_since(t) >= min)
            })
            .map(|(id, _)| *id)
            .collect();
        ready.sort_unstable();
        let i = self.discovery.rng.below(ready.len());
        let peer = *ready.get(i)?;
        self.request_at(peer, now)
    }

    /// The seeds that are not connected and were not dialed within the period, in random
    /// order.
    fn seeds_to_try(&mut self, now: Instant) -> Vec<NodeId> {
        let period = self.config.ensure_peers_period;
        let d = &self.discovery;
        let mut seeds: Vec<NodeId> = d
            .seeds
            .iter()
            .filter(|s| {
                !self.peers.contains_key(s)
                    && d.seed_dialed
                        .get(s)
                        .is_none_or(|t| now.saturating_duration_since(*t) >= period)
            })
            .copied()
            .collect();
        // Fisher–Yates.
        for i in (1..seeds.len()).rev() {
            let j = self.discovery.rng.below(i + 1);
            seeds.swap(i, j);
        }
        seeds
    }

    /// The node started a dial of seed `id` at `now`.
    pub fn seed_dialed(&mut self, id: NodeId, now: Instant) {
        self.discovery.seed_dialed.insert(id, now);
    }

    /// A dial of `peer` failed at `now` (connect, socket or handshake): the book records an
    /// attempt (stock's `MarkAttempt`), or, when the peer authenticated as another node
    /// (`wrong_peer`, stock's `ErrSwitchAuthenticationFailure`), bans the address
    /// (`MarkBad`). A failed seed starts the next round at once, to try another.
    pub fn dial_failed(&mut self, peer: &NodeId, wrong_peer: bool, now: Instant) {
        if wrong_peer {
            self.mark_bad(peer, now);
        } else {
            self.book.mark_attempt(peer, now);
        }
        if self.discovery.is_seed(peer) {
            self.discovery.wake = true;
        }
    }

    /// Whether a round is due now (a seed answered, or a seed dial failed); clears it.
    pub fn take_wake(&mut self) -> bool {
        std::mem::take(&mut self.discovery.wake)
    }

    /// The next action produced besides a call's own result (an [`Action::Release`]).
    pub fn poll_action(&mut self) -> Option<Action> {
        self.discovery.queue.pop_front()
    }

    /// Queues the release of `peer`, once per connection and never of a persistent peer.
    pub(super) fn release(&mut self, peer: NodeId, reason: &'static str) {
        if self.discovery.is_persistent(&peer) {
            return;
        }
        let Some(s) = self.peers.get_mut(&peer) else {
            return;
        };
        if std::mem::replace(&mut s.released, true) {
            return;
        }
        self.discovery
            .queue
            .push_back(Action::Release { peer, reason });
    }

    /// `peer` answered this node's request: a seed this node dialed (or, in seed mode, any
    /// peer it dialed) is let go; a seed's answer starts the next round at once.
    pub(super) fn answered_by(&mut self, peer: NodeId) {
        let seed = self.discovery.is_seed(&peer);
        if seed {
            self.discovery.wake = true;
        }
        let outbound = self.peers.get(&peer).is_some_and(|s| s.outbound);
        if outbound && self.config.seed_mode {
            self.release(peer, "seed mode: crawled peer answered");
        } else if outbound && seed {
            self.release(peer, "seed answered");
        }
    }

    /// Lets go of the peers connected for [`PexConfig::seed_disconnect_wait`]: in seed mode
    /// all of them, else the seeds this node dialed (stock's `attemptDisconnects`).
    pub(super) fn release_lingering(&mut self, now: Instant) {
        let wait = self.config.seed_disconnect_wait;
        let seed_mode = self.config.seed_mode;
        let due: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(id, s)| {
                !s.released
                    && (seed_mode || (s.outbound && self.discovery.is_seed(id)))
                    && s.since
                        .is_some_and(|t| now.saturating_duration_since(t) >= wait)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.release(id, "connected long enough");
        }
    }
}

/// The first eight bytes of a node ID, as a number (a salt).
fn id_bits(id: &NodeId) -> u64 {
    let mut word = [0u8; 8];
    for (d, s) in word.iter_mut().zip(id.as_bytes()) {
        *d = *s;
    }
    u64::from_le_bytes(word)
}
