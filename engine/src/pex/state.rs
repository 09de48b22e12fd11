//! The PEX protocol state: which peers were asked, when each peer last asked us, each peer's
//! address budget, and the address book. No I/O, no clock: `now` (and, for the book's file,
//! the wall-clock time read with it) is an argument.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use prost::Message as _;

use crate::proto::conn::{ChannelDescriptor, Compression};
use crate::proto::secret::NodeId;
use crate::proto::wire::{self, pex_message::Sum};

use super::book::{AddrBook, AddrBookFile, Clocks, Inserted, LoadReport};
use super::bucket::TokenBucket;
use super::caps::{PEX_CAPS_VERSION, check_capabilities};
use super::discover::Discovery;
use super::{PexAddr, PexConfig, PexError};
use crate::proto::netgroup::is_routable;

/// The channel stock PEX runs on.
pub const PEX_CHANNEL: u8 = 0x00;

/// Stock's PEX channel: priority 1, send queue 10, receive cap 256 × 250 = 64,000 bytes.
pub fn channel_descriptor() -> ChannelDescriptor {
    ChannelDescriptor {
        id: PEX_CHANNEL,
        priority: 1,
        send_queue_capacity: 10,
        recv_message_capacity: 64_000,
        compression: Compression::Off,
    }
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `payload` to `peer` on [`PEX_CHANNEL`].
    Send {
        /// The recipient.
        peer: NodeId,
        /// A marshaled PEX `Message`.
        payload: Bytes,
    },
    /// Disconnect `peer` for `reason`, and ban it for [`PexConfig::ban_duration`]: it broke
    /// the PEX rules.
    Disconnect {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: PexError,
    },
    /// Disconnect `peer` without blame once what was sent to it on [`PEX_CHANNEL`] has left:
    /// a seed that answered, or, in seed mode, a peer whose exchange is done (stock's seed
    /// flushes, then stops the peer).
    Release {
        /// The peer.
        peer: NodeId,
        /// Why, for the log and the peer.
        reason: &'static str,
    },
}

/// Addresses PEX did not keep, by reason (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PexStats {
    /// Addresses a peer sent beyond its token bucket ([`PexConfig::address_rate`],
    /// [`PexConfig::address_burst`]); dropped unread.
    pub addresses_rate_limited: u64,
    /// Addresses refused: this node's own, unusable (unspecified IP, port 0), non-routable
    /// under [`PexConfig::addr_book_strict`], a private node's from hearsay, a banned node's,
    /// hearsay giving a known node another address, or no place for them (their bucket and
    /// the book hold only tried addresses, or only announced ones for hearsay).
    pub addresses_refused: u64,
    /// Addresses that left the book to make room for another (a full bucket or a full book).
    pub addresses_evicted: u64,
    /// Outbound peers let go to make room for a peer with a capability below its target
    /// ([`PexConfig::capability_targets`]).
    pub capability_replacements: u64,
}

/// A connected peer as PEX sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PexPeer {
    /// Its node ID.
    pub id: NodeId,
    /// This node dialed it.
    pub outbound: bool,
    /// The address its NodeInfo announces (`listen_addr`), if dialable.
    pub listen: Option<PexAddr>,
    /// The connection's remote address (TCP only): the source of what the peer tells, for the
    /// book's buckets (a peer cannot choose it as it chooses its listen address).
    pub remote: Option<SocketAddr>,
    /// The connection runs ringwire's native protocol: PEX answers may carry capabilities.
    pub native: bool,
    /// The capabilities its HELLO listed (empty on a compat connection).
    pub capabilities: Vec<String>,
}

impl PexPeer {
    /// Where what this peer tells comes from: its remote address, else its listen address.
    fn source(&self) -> PexAddr {
        match (self.remote, self.listen) {
            (Some(r), _) => PexAddr {
                id: self.id,
                ip: r.ip(),
                port: r.port(),
            },
            (None, Some(l)) => PexAddr { id: self.id, ..l },
            (None, None) => unknown_source(self.id),
        }
    }

    /// Whether this node dialed the peer at the IP it announces: a connection that proves
    /// the announced address, so one that stays up marks it good.
    fn proves_its_address(&self) -> bool {
        self.outbound && matches!((self.remote, self.listen), (Some(r), Some(l)) if r.ip() == l.ip)
    }
}

/// An address a peer told of, with the capabilities it saw in that node's HELLO (`None`: it
/// says nothing of them).
type Told = (PexAddr, Option<Vec<String>>);

/// The source of hearsay whose teller's address is unknown.
fn unknown_source(id: NodeId) -> PexAddr {
    PexAddr {
        id,
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
    }
}

/// When a peer last asked us.
#[derive(Clone, Copy, Debug)]
enum LastRequest {
    /// One request seen; the next one is free too (stock stores the zero time).
    First,
    /// The clock runs from this request.
    At(Instant),
}

/// What PEX keeps about one connected peer; dropped when it goes.
#[derive(Clone, Debug, Default)]
pub(super) struct PeerState {
    /// A request to it awaits its answer.
    pub(super) requested: bool,
    /// Its last request to us.
    last_request: Option<LastRequest>,
    /// Its address budget, started full at its first list.
    bucket: Option<TokenBucket>,
    /// Where what it tells comes from (see [`PexPeer::source`]).
    source: Option<PexAddr>,
    /// Since when a connection proving its announced address has been up.
    proving_since: Option<Instant>,
    /// Its address was marked good for this connection.
    marked_good: bool,
    /// When it came up (its `peer_up`).
    pub(super) since: Option<Instant>,
    /// This node dialed it.
    pub(super) outbound: bool,
    /// It holds one of this node's outbound places, as the peer manager counts them
    /// ([`Pex::set_outbound_places`]); until the first count, whether this node dialed it.
    /// Capability targets count these peers, and replace among them.
    pub(super) outbound_place: bool,
    /// When this node last asked it for addresses.
    pub(super) asked_at: Option<Instant>,
    /// Seed mode: its request was answered (later ones are ignored, as stock's seed does).
    pub(super) answered: bool,
    /// A [`Action::Release`] was issued for it.
    pub(super) released: bool,
    /// The connection is native (see [`PexPeer::native`]).
    pub(super) native: bool,
    /// Its HELLO's capabilities.
    pub(super) capabilities: Vec<String>,
    /// Its outstanding request from this node asked for the native answer.
    pub(super) asked_caps: bool,
    /// It is let go to make room for a capable peer (`targets`).
    pub(super) replaced: bool,
    /// This connection replaced one on which a request to the peer was outstanding: that
    /// request's answer may still come (the engine delivers a peer's messages by node ID, and
    /// the old connection's last bytes can arrive after the new one's Up). One answer beyond
    /// this connection's own requests is taken as an answer, not a rule break.
    pub(super) stale_answer: bool,
}

/// How long the answer of a peer that went away while asked is still taken: a seed answers,
/// flushes and closes at once (stock's seed mode), so its answer may be handled after its
/// `Down`.
pub const LATE_ANSWER_GRACE: Duration = Duration::from_secs(10);

/// The most peers whose late answer is awaited at once (the oldest is forgotten first).
pub const MAX_LATE_ANSWERS: usize = 64;

/// The PEX state machine for one node.
#[derive(Debug)]
pub struct Pex {
    pub(super) config: PexConfig,
    pub(super) local: NodeId,
    private: HashSet<NodeId>,
    pub(super) book: AddrBook,
    pub(super) seed: u64,
    pub(super) peers: HashMap<NodeId, PeerState>,
    pub(super) stats: PexStats,
    /// Dialing from the book, seeds and seed mode (`discover`).
    pub(super) discovery: Discovery,
    /// Peers that went away with a request to them outstanding, and when: their answer may
    /// still arrive ([`Pex::receive_late`]); at most [`MAX_LATE_ANSWERS`], for
    /// [`LATE_ANSWER_GRACE`].
    gone_asked: VecDeque<(NodeId, PeerState, Instant)>,
}

/// Marshals a PEX `Message`.
fn encode(sum: Sum) -> Bytes {
    Bytes::from(wire::PexMessage { sum: Some(sum) }.encode_to_vec())
}

/// A marshaled `PexRequest`.
pub(crate) fn request_bytes() -> Bytes {
    encode(Sum::PexRequest(wire::PexRequest::default()))
}

impl Pex {
    /// A fresh state for the node `local`, with an empty book under a fresh key; `seed` drives
    /// the book's random choices (its key, which addresses an answer carries, which one to
    /// dial): use a random value.
    pub fn new(local: NodeId, config: PexConfig, seed: u64) -> Self {
        Pex {
            private: config.private_peer_ids.iter().copied().collect(),
            book: AddrBook::new(config.max_addresses, config.addr_book_strict, seed),
            seed,
            config,
            local,
            peers: HashMap::new(),
            stats: PexStats::default(),
            discovery: Discovery::new(seed),
            gone_asked: VecDeque::new(),
        }
    }

    /// The settings this state runs with.
    pub fn config(&self) -> &PexConfig {
        &self.config
    }

    /// The learned addresses, ordered by node ID.
    pub fn addresses(&self) -> Vec<PexAddr> {
        self.book.addresses()
    }

    /// The addresses in the book's tried table (proven good), ordered by node ID.
    pub fn tried_addresses(&self) -> Vec<PexAddr> {
        let mut tried: Vec<PexAddr> = self
            .book
            .addresses()
            .into_iter()
            .filter(|a| self.book.is_tried(&a.id))
            .collect();
        tried.sort_unstable();
        tried
    }

    /// What the book knows of `peer`'s capabilities: confirmed by this node's handshake with
    /// it, or hearsay from a ringwire peer's PEX answer.
    pub fn capabilities(&self, peer: &NodeId) -> Option<super::BookCapabilities> {
        self.book.capabilities(peer).cloned()
    }

    /// Addresses dropped, refused and evicted so far.
    pub fn stats(&self) -> PexStats {
        PexStats {
            addresses_evicted: self.book.evicted(),
            ..self.stats
        }
    }

    /// Grows with every change to the book: the file is behind while this differs from its
    /// value when the book was last written.
    pub fn book_changes(&self) -> u64 {
        self.book.changes()
    }

    /// The book as its file (stock's `addrbook.json`); `wall` is the wall-clock time read
    /// with `now`, for the file's times.
    pub fn to_book_file(&self, now: Instant, wall: SystemTime) -> AddrBookFile {
        self.book.to_file(&Clocks::new(now, wall))
    }

    /// Replaces the book with the one `file` holds (`wall` read with `now`). Addresses this
    /// state would refuse are left out — this node's own, unusable ones, non-routable ones
    /// under [`PexConfig::addr_book_strict`], a private node's unless it announced itself —
    /// and the book keeps to [`PexConfig::max_addresses`], tried addresses first.
    pub(crate) fn load_book_file(
        &mut self,
        file: &AddrBookFile,
        now: Instant,
        wall: SystemTime,
    ) -> LoadReport {
        let (local, strict, private) = (self.local, self.config.addr_book_strict, &self.private);
        let accept = |a: &PexAddr, announced: bool| {
            usable(a, local, strict) && (announced || !private.contains(&a.id))
        };
        let (book, report) = AddrBook::from_file(
            file,
            self.config.max_addresses,
            strict,
            self.seed.rotate_left(17) ^ 0xb00c,
            &Clocks::new(now, wall),
            accept,
        );
        self.book = book;
        report
    }

    /// Adds an address heard from elsewhere, as hearsay whose source is this node (as stock
    /// adds the addresses its switch finds): refused when it is ours, unusable, non-routable
    /// under [`PexConfig::addr_book_strict`], a private node's, a banned node's, or another
    /// address for a known node. Returns whether the book now holds it.
    pub fn learn(&mut self, addr: PexAddr, now: Instant) -> bool {
        self.hearsay(addr, unknown_source(self.local), now)
    }

    /// Adds `addr` told of by `src`, if the policy takes it; counts what was refused.
    fn hearsay(&mut self, addr: PexAddr, src: PexAddr, now: Instant) -> bool {
        if self.private.contains(&addr.id)
            || !usable(&addr, self.local, self.config.addr_book_strict)
        {
            self.stats.addresses_refused += 1;
            return false;
        }
        match self.book.learn(addr, src, now) {
            Inserted::Added | Inserted::Updated | Inserted::Known => true,
            Inserted::Conflict | Inserted::Banned | Inserted::Full => {
                self.stats.addresses_refused += 1;
                false
            }
        }
    }

    /// Records the address `peer` announced (`src`: where it spoke from); counts a refusal.
    fn announced(&mut self, addr: PexAddr, src: PexAddr, now: Instant) -> bool {
        if !usable(&addr, self.local, self.config.addr_book_strict) {
            self.stats.addresses_refused += 1;
            return false;
        }
        let src = PexAddr { id: addr.id, ..src };
        match self.book.announce(addr, src, now) {
            Inserted::Added | Inserted::Updated | Inserted::Known => true,
            Inserted::Conflict | Inserted::Banned | Inserted::Full => {
                self.stats.addresses_refused += 1;
                false
            }
        }
    }

    /// A peer came up at `now`. The address its NodeInfo advertises is learned as the
    /// address it announced (it replaces what the book held for it and is never overwritten
    /// by hearsay); an outbound peer is asked for addresses while the book has room. A peer
    /// already known (a connection that replaced another) keeps its state.
    pub fn peer_up(&mut self, peer: PexPeer, now: Instant) -> Option<Action> {
        // An Up for a peer already known is a new connection that replaced the old one (the
        // tie-break, a redial over a half-open connection): its state starts over, as stock's
        // per-connection state does, so the new connection's first requests are not counted
        // against the old one's (which got stock peers disconnected as "too soon" and banned).
        // The same holds when the old connection's Down came first (the other end closed it
        // as the tie-break's loser before this one's handshake finished): its outstanding
        // request, kept for a late answer, is carried over, since the answer now comes over
        // this connection (a peer answers by ID, on whichever connection it holds).
        let asked_before = self.take_gone_request(&peer.id, now);
        let state = self.peers.entry(peer.id).or_default();
        let stale_answer = state.requested || asked_before;
        *state = PeerState {
            stale_answer,
            ..Default::default()
        };
        let source = peer.source();
        state.source = Some(source);
        state.since.get_or_insert(now);
        state.outbound = peer.outbound;
        state.outbound_place = peer.outbound;
        state.native = peer.native;
        state.capabilities = peer.capabilities.clone();
        if peer.proves_its_address() {
            state.proving_since.get_or_insert(now);
        } else {
            state.proving_since = None;
        }
        if let Some(a) = peer.listen {
            self.announced(a, source, now);
        }
        // This node's own handshake: the HELLO's capabilities are confirmed. A compat
        // connection has none to offer: it corrects a record the book holds, and adds none
        // (a stock home's book stays free of ringwire's field).
        if peer.native || self.book.capabilities(&peer.id).is_some() {
            self.book
                .set_capabilities(&peer.id, peer.capabilities, true);
        }
        let seed = self.discovery.is_seed(&peer.id);
        if peer.outbound && (self.config.request_outbound || seed) && !self.book.is_full() {
            self.request_at(peer.id, now)
        } else {
            None
        }
    }

    /// A peer went away: forget its request state and budget (as stock's `RemovePeer`). When
    /// a request to it was outstanding, its answer is still taken for [`LATE_ANSWER_GRACE`]
    /// ([`Pex::receive_late`]): a stock seed closes the connection right after its answer,
    /// which the node may hand over after the `Down`.
    pub fn peer_down(&mut self, peer: &NodeId) {
        self.peer_down_at(peer, None);
    }

    /// [`Pex::peer_down`] at `now` (the grace runs from it).
    pub fn peer_down_at(&mut self, peer: &NodeId, now: Option<Instant>) {
        let Some(state) = self.peers.remove(peer) else {
            return;
        };
        // A peer let go for a capable one: fill its slot now.
        if state.replaced {
            self.discovery.wake();
        }
        if let (true, Some(now)) = (state.requested, now) {
            self.gone_asked.retain(|(id, _, _)| id != peer);
            if self.gone_asked.len() >= MAX_LATE_ANSWERS {
                self.gone_asked.pop_front();
            }
            self.gone_asked.push_back((*peer, state, now));
        }
    }

    /// Whether a request to `peer` was outstanding when its last connection went down, less
    /// than [`LATE_ANSWER_GRACE`] before `now`; the record is taken (the late answer belongs to
    /// the connection that comes up now).
    fn take_gone_request(&mut self, peer: &NodeId, now: Instant) -> bool {
        self.gone_asked
            .retain(|(_, _, t)| now.saturating_duration_since(*t) < LATE_ANSWER_GRACE);
        let Some(i) = self.gone_asked.iter().position(|(id, _, _)| id == peer) else {
            return false;
        };
        self.gone_asked.remove(i).is_some()
    }

    /// A PEX message from `peer` handled after it went away (or while it goes): only an
    /// address list answering a request still outstanding is taken, as when it was
    /// connected (its rules too; a list that breaks them marks the address bad). Anything
    /// else is ignored: there is nobody to answer.
    pub fn receive_late(&mut self, peer: NodeId, bytes: &[u8], now: Instant) -> Option<Action> {
        let is_list = matches!(
            wire::PexMessage::decode(bytes),
            Ok(wire::PexMessage {
                sum: Some(Sum::PexAddrs(_) | Sum::PexCapAddrs(_))
            })
        );
        if !is_list {
            return None;
        }
        if self.peers.contains_key(&peer) {
            // Its Down is not handled yet: as if connected.
            return self.receive(peer, bytes, now);
        }
        self.gone_asked
            .retain(|(_, _, t)| now.saturating_duration_since(*t) < LATE_ANSWER_GRACE);
        let i = self.gone_asked.iter().position(|(id, _, _)| *id == peer)?;
        let (_, state, _) = self.gone_asked.remove(i)?;
        self.peers.insert(peer, state);
        let action = self.receive(peer, bytes, now);
        self.peers.remove(&peer);
        // A rule breaker is marked bad; there is no connection left to drop.
        match action {
            Some(Action::Disconnect { .. }) | None => None,
            other => other,
        }
    }

    /// Brings the per-peer state in line with the peers actually connected after peer events
    /// were lost: the state of peers not listed is dropped, and a listed peer not known yet
    /// comes up as in [`Pex::peer_up`]. Returns the requests to send.
    pub fn sync(
        &mut self,
        connected: impl IntoIterator<Item = PexPeer>,
        now: Instant,
    ) -> Vec<Action> {
        let connected: Vec<PexPeer> = connected.into_iter().collect();
        let live: HashSet<NodeId> = connected.iter().map(|p| p.id).collect();
        self.peers.retain(|id, _| live.contains(id));
        let mut actions = Vec::new();
        for peer in connected {
            if !self.peers.contains_key(&peer.id) {
                actions.extend(self.peer_up(peer, now));
            }
        }
        actions
    }

    /// The periodic work, about once a second: the announced address of a peer this node
    /// dialed there and stayed connected to for [`PexConfig::good_after`] is marked good
    /// (moved to the tried table), and bans that ended let their addresses back.
    pub fn tick(&mut self, now: Instant) {
        let after = self.config.good_after;
        let due: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, s)| {
                !s.marked_good
                    && s.proving_since
                        .is_some_and(|t| now.saturating_duration_since(t) >= after)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.book.mark_good(&id, now);
            if let Some(s) = self.peers.get_mut(&id) {
                s.marked_good = true;
            }
        }
        self.book.end_bans(now);
        self.gone_asked
            .retain(|(_, _, t)| now.saturating_duration_since(*t) < LATE_ANSWER_GRACE);
        self.release_lingering(now);
    }

    /// Stock's `MarkGood`: `peer` proved good (say, it helped consensus); its address moves
    /// to the tried table and its failed attempts are forgotten. Returns whether the book
    /// holds its address.
    pub fn mark_good(&mut self, peer: &NodeId, now: Instant) -> bool {
        self.book.mark_good(peer, now)
    }

    /// Stock's `MarkAttempt`: a dial of `peer` was attempted at `now`. Returns whether the book
    /// holds its address.
    pub fn mark_attempt(&mut self, peer: &NodeId, now: Instant) -> bool {
        self.book.mark_attempt(peer, now)
    }

    /// Stock's `MarkBad`: `peer`'s address leaves the book and is refused for
    /// [`PexConfig::ban_duration`] (nothing when that is zero). Returns whether the book held
    /// it.
    pub fn mark_bad(&mut self, peer: &NodeId, now: Instant) -> bool {
        let ban = self.config.ban_duration;
        if ban.is_zero() {
            return false;
        }
        match now.checked_add(ban) {
            Some(until) => self.book.mark_bad(peer, until),
            None => false,
        }
    }

    /// Stock's `PickAddress`: an address to dial, from the new table with odds `bias` in 100
    /// (weighed by the square roots of the tables' sizes) and from the tried table otherwise;
    /// within a table, from a random bucket, so addresses from one source group weigh as one
    /// bucket each. `None` when the book is empty.
    pub fn pick_address(&mut self, bias: u8) -> Option<PexAddr> {
        self.book.pick_address(bias)
    }

    /// Whether PEX holds state for `peer` (it is connected, as far as PEX knows).
    pub fn knows_peer(&self, peer: &NodeId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Asks `peer` for addresses unless a request to it is outstanding.
    pub fn request(&mut self, peer: NodeId) -> Option<Action> {
        let state = self.peers.entry(peer).or_default();
        if state.requested {
            return None;
        }
        state.requested = true;
        // A native peer is asked for the answer with capabilities; a stock peer gets stock's
        // request, byte for byte.
        state.asked_caps = state.native;
        let payload = if state.native {
            encode(Sum::PexRequest(wire::PexRequest {
                caps_version: PEX_CAPS_VERSION,
            }))
        } else {
            request_bytes()
        };
        Some(Action::Send { peer, payload })
    }

    /// [`Pex::request`] at `now`, remembered so that `peer` is not asked again sooner than
    /// [`PexConfig::min_request_interval`] (the pace every peer holds this node to).
    pub(super) fn request_at(&mut self, peer: NodeId, now: Instant) -> Option<Action> {
        let action = self.request(peer)?;
        if let Some(s) = self.peers.get_mut(&peer) {
            s.asked_at = Some(now);
        }
        Some(action)
    }

    /// Whether a request to `peer` awaits its answer.
    pub fn is_requested(&self, peer: &NodeId) -> bool {
        self.peers.get(peer).is_some_and(|s| s.requested)
    }

    /// Handles one message from `peer` on the PEX channel. A message may come before its
    /// peer's [`Pex::peer_up`]; its state starts then.
    pub fn receive(&mut self, peer: NodeId, bytes: &[u8], now: Instant) -> Option<Action> {
        match self.handle(peer, bytes, now) {
            Ok(action) => action,
            Err(reason) => {
                self.peer_down(&peer);
                self.mark_bad(&peer, now);
                Some(Action::Disconnect { peer, reason })
            }
        }
    }

    fn handle(
        &mut self,
        peer: NodeId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<Action>, PexError> {
        let msg = wire::PexMessage::decode(bytes).map_err(|e| PexError::Decode(e.to_string()))?;
        match msg.sum {
            None => Err(PexError::Empty),
            Some(Sum::PexRequest(req)) => {
                // A seed answers an inbound peer's first request, then lets it go; it ignores
                // any other (stock's seed mode).
                let seed_answer = self.config.seed_mode
                    && !self.discovery.is_persistent(&peer)
                    && !self.peers.get(&peer).is_some_and(|s| s.outbound);
                if seed_answer {
                    let state = self.peers.entry(peer).or_default();
                    if state.answered {
                        return Ok(None);
                    }
                    state.answered = true;
                    self.release(peer, "seed mode: address request answered");
                } else {
                    self.check_request_rate(peer, now)?;
                }
                let k = self
                    .config
                    .max_addrs_per_response
                    .min(self.config.max_addrs_per_message);
                let private = &self.private;
                let sample = self
                    .book
                    .sample(k, |a| a.id != peer && !private.contains(&a.id));
                let native = self.peers.get(&peer).is_some_and(|s| s.native);
                let payload = if native && req.caps_version >= PEX_CAPS_VERSION {
                    encode(Sum::PexCapAddrs(self.cap_addrs(&sample)))
                } else {
                    let addrs = sample.iter().map(PexAddr::to_wire).collect();
                    encode(Sum::PexAddrs(wire::PexAddrs { addrs }))
                };
                Ok(Some(Action::Send { peer, payload }))
            }
            Some(Sum::PexAddrs(list)) => {
                let max = self.config.max_addrs_per_message;
                if list.addrs.len() > max {
                    return Err(PexError::TooManyAddresses {
                        count: list.addrs.len(),
                        max,
                    });
                }
                // Stock converts every address first (any bad one drops the peer), then
                // checks that it asked.
                let addrs = list
                    .addrs
                    .iter()
                    .map(PexAddr::from_wire)
                    .collect::<Result<Vec<_>, _>>()?;
                let state = self.peers.entry(peer).or_default();
                if !state.requested {
                    if !state.stale_answer {
                        return Err(PexError::Unsolicited);
                    }
                    // The answer to the replaced connection's request.
                    state.stale_answer = false;
                }
                let tagged = addrs.into_iter().map(|a| (a, None)).collect();
                self.take_answer(peer, tagged, now);
                Ok(None)
            }
            Some(Sum::PexCapAddrs(list)) => {
                let addrs = self.check_cap_addrs(peer, list)?;
                if let Some(s) = self.peers.get_mut(&peer)
                    && !s.requested
                {
                    // The answer to the replaced connection's request.
                    s.stale_answer = false;
                }
                self.take_answer(peer, addrs, now);
                Ok(None)
            }
        }
    }

    /// Takes an answer `peer` sent to this node's request: the addresses its budget allows
    /// go to the book as hearsay, with the capabilities it saw (native answers).
    fn take_answer(&mut self, peer: NodeId, addrs: Vec<Told>, now: Instant) {
        let state = self.peers.entry(peer).or_default();
        state.requested = false;
        state.asked_caps = false;
        let src = state.source.unwrap_or_else(|| unknown_source(peer));
        let burst = self.config.address_burst;
        let taken = state
            .bucket
            .get_or_insert_with(|| TokenBucket::full(burst, now))
            .take(addrs.len(), self.config.address_rate, burst, now);
        self.stats.addresses_rate_limited += (addrs.len() - taken) as u64;
        for (a, caps) in addrs.into_iter().take(taken) {
            if self.hearsay(a, src, now)
                && let Some(mut caps) = caps
                && self.book.get(&a.id) == Some(a)
            {
                // Hearsay serves the targets only (it is never passed on): the book keeps
                // the capabilities this node has targets for, so what peers tell costs it
                // no more than its own configuration.
                caps.retain(|c| self.config.capability_targets.iter().any(|(t, _)| t == c));
                self.book.set_capabilities(&a.id, caps, false);
            }
        }
        self.answered_by(peer);
    }

    /// The native answer carrying `sample`, each address with the capabilities this node
    /// confirmed (hearsay is not passed on).
    fn cap_addrs(&self, sample: &[PexAddr]) -> wire::PexCapAddrs {
        let addrs = sample
            .iter()
            .map(|a| {
                let seen = self.book.capabilities(&a.id).filter(|c| c.confirmed);
                wire::CapAddress {
                    addr: Some(a.to_wire()),
                    capabilities: seen.map(|c| c.capabilities.clone()).unwrap_or_default(),
                    seen: seen.is_some(),
                }
            })
            .collect();
        wire::PexCapAddrs {
            version: PEX_CAPS_VERSION,
            addrs,
        }
    }

    /// Checks a native answer from `peer` whole, as stock checks its lists (any bad entry
    /// breaks the rules): a native connection that asked for it, this version, at most
    /// [`PexConfig::max_addrs_per_message`] addresses, each with an address and HELLO's
    /// bounds on its capabilities; and that it was asked for.
    fn check_cap_addrs(
        &mut self,
        peer: NodeId,
        list: wire::PexCapAddrs,
    ) -> Result<Vec<Told>, PexError> {
        let state = self.peers.get(&peer);
        if !state.is_some_and(|s| s.native) {
            return Err(PexError::NativeAnswer("not a native connection".into()));
        }
        if list.version != PEX_CAPS_VERSION {
            return Err(PexError::NativeAnswer(format!(
                "version {} (asked for {PEX_CAPS_VERSION})",
                list.version
            )));
        }
        let max = self.config.max_addrs_per_message;
        if list.addrs.len() > max {
            return Err(PexError::TooManyAddresses {
                count: list.addrs.len(),
                max,
            });
        }
        let mut out = Vec::with_capacity(list.addrs.len());
        for e in list.addrs {
            let a = e
                .addr
                .as_ref()
                .ok_or_else(|| PexError::InvalidAddress("address missing".into()))
                .and_then(PexAddr::from_wire)?;
            check_capabilities(&e.capabilities)?;
            if !e.seen && !e.capabilities.is_empty() {
                return Err(PexError::InvalidCapabilities(
                    "capabilities of a node not seen".into(),
                ));
            }
            out.push((a, e.seen.then_some(e.capabilities)));
        }
        match self.peers.get(&peer) {
            Some(s) if s.requested && s.asked_caps => Ok(out),
            Some(s) if !s.requested && s.stale_answer => Ok(out),
            Some(s) if s.requested => {
                Err(PexError::NativeAnswer("asked for stock's answer".into()))
            }
            _ => Err(PexError::Unsolicited),
        }
    }

    /// Stock's `receiveRequest`: first request free, second free and starts the clock, later
    /// ones at least `min_request_interval` apart.
    fn check_request_rate(&mut self, peer: NodeId, now: Instant) -> Result<(), PexError> {
        let min = self.config.min_request_interval;
        let state = self.peers.entry(peer).or_default();
        match state.last_request {
            None => state.last_request = Some(LastRequest::First),
            Some(LastRequest::First) => state.last_request = Some(LastRequest::At(now)),
            Some(LastRequest::At(last)) => {
                let since = now.saturating_duration_since(last);
                if since < min {
                    return Err(PexError::TooSoon { peer, since, min });
                }
                state.last_request = Some(LastRequest::At(now));
            }
        }
        Ok(())
    }
}

/// Whether `a` may be in the book at all: not this node's, a dialable IP and port, and
/// routable when the book is strict.
fn usable(a: &PexAddr, local: NodeId, strict: bool) -> bool {
    a.id != local && !a.ip.is_unspecified() && a.port != 0 && (!strict || is_routable(a.ip))
}
