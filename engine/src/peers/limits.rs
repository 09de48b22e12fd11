//! Admission control: who may start a handshake, who may become a peer.
//!
//! The policy is documented on [`Admission`].

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::proto::secret::NodeId;

use super::ban::{BanList, DEFAULT_MAX_BANS};
use super::rate::{HandshakeRate, RateBuckets};
use super::refusal::{RefusalCounts, Refused};
use super::tiebreak::{Keep, resolve};
use super::{ConfigError, Direction};

/// Connection limits (TOML section `[p2p]`; names follow stock keys where stock has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Most inbound peers (`max_num_inbound_peers`). Default 40, as stock.
    pub max_inbound: usize,
    /// Most outbound peers, dials in progress included (`max_num_outbound_peers`).
    /// Default 10, as stock.
    pub max_outbound: usize,
    /// Most inbound handshakes in progress at once, all addresses together. Default 64.
    pub max_pending_inbound: usize,
    /// Most inbound handshakes in progress at once from one address (or IPv6 prefix).
    /// Default 4.
    pub max_pending_inbound_per_ip: usize,
    /// Most connections from one address (or IPv6 prefix), established and in handshake
    /// together. Default 8.
    pub max_connections_per_ip: usize,
    /// Whether two different peers may connect from the same IP address
    /// (`allow_duplicate_ip`). Default false, as stock.
    pub allow_duplicate_ip: bool,
    /// Length in bits of the IPv6 prefix that counts as one address for the per-address
    /// limits, from 32 to 128. Default 64.
    pub ipv6_prefix_len: u8,
    /// Peers exempt from the inbound and outbound limits (`unconditional_peer_ids`).
    pub unconditional_peer_ids: Vec<NodeId>,
    /// Most banned peers remembered; when full, the ban that ends first is dropped.
    /// Default 1024.
    pub max_bans: usize,
    /// Handshakes one address (or IPv6 prefix) may start (`handshake_rate_per_ip`,
    /// `handshake_burst_per_ip`): over it a socket is refused at accept, before any key
    /// exchange ([`Refused::HandshakeRate`]). `None`: no limit. Default none; a node built
    /// from a configuration file gets the file's (2 per second, 10 at once by default).
    pub handshake_rate: Option<HandshakeRate>,
    /// Most addresses (or IPv6 prefixes) whose handshake rate is remembered at once; when
    /// full, the address that has been quiet longest is forgotten (see
    /// [`Admission`]'s bounds). At least 1. Default 4096.
    pub max_rate_addresses: usize,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            max_inbound: 40,
            max_outbound: 10,
            max_pending_inbound: 64,
            max_pending_inbound_per_ip: 4,
            max_connections_per_ip: 8,
            allow_duplicate_ip: false,
            ipv6_prefix_len: 64,
            unconditional_peer_ids: Vec::new(),
            max_bans: DEFAULT_MAX_BANS,
            handshake_rate: None,
            max_rate_addresses: DEFAULT_MAX_RATE_ADDRESSES,
        }
    }
}

/// Default of [`AdmissionLimits::max_rate_addresses`].
const DEFAULT_MAX_RATE_ADDRESSES: usize = 4096;

impl AdmissionLimits {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_pending_inbound_per_ip == 0 && self.max_pending_inbound > 0 {
            return Err(ConfigError::Invalid(
                "max_pending_inbound_per_ip must be at least 1 when inbound handshakes are allowed",
            ));
        }
        if self.max_connections_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "max_connections_per_ip must be at least 1",
            ));
        }
        if !(32..=128).contains(&self.ipv6_prefix_len) {
            return Err(ConfigError::Invalid(
                "ipv6_prefix_len must be between 32 and 128",
            ));
        }
        if let Some(rate) = &self.handshake_rate {
            rate.validate()?;
            if self.max_rate_addresses == 0 {
                return Err(ConfigError::Invalid(
                    "max_rate_addresses must be at least 1 when the handshake rate is limited",
                ));
            }
        }
        Ok(())
    }
}

/// Identifies one connection within one [`Admission`]; unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Current counts, for metrics and operator views.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    /// Connected peers that count toward the inbound limit.
    pub inbound: usize,
    /// Connected peers that count toward the outbound limit (an inbound connection from a
    /// peer we were dialing counts here).
    pub outbound: usize,
    /// All connected peers, unconditional ones included.
    pub peers: usize,
    /// Inbound handshakes in progress.
    pub pending_inbound: usize,
    /// Dials in progress.
    pub dialing: usize,
    /// Bans remembered.
    pub bans: usize,
    /// Addresses (or IPv6 prefixes) whose handshake rate is remembered (their bucket is not
    /// full).
    pub rate_addresses: usize,
}

/// The shared admission state: the gates every connection passes.
///
/// Every connection passes through two gates, and the cheap one comes first:
///
/// 1. **Pending** — right after `accept` (or before `connect`), before any buffer is allocated
///    or any key exchanged: [`Admission::try_accept`] checks the global and per-address caps on
///    handshakes in progress, the per-address connection cap, (when no peer is exempt) the
///    inbound limit, and last the per-address handshake rate, whose token it then takes. [`Admission::try_dial`] checks self, bans, duplicates and the outbound
///    limit. Each returns a [`PendingPermit`] that holds the slot until it is promoted or
///    dropped; a slowloris socket holds one slot until the handshake deadline and no more.
/// 2. **Connected** — after the handshake, when the peer's ID is known:
///    [`PendingPermit::promote`] refuses self-connections, banned peers, over-limit peers and a
///    second IP when duplicates are not allowed, and applies the [tie-break](super::resolve)
///    when the peer already has a connection. It returns a [`PeerSlot`] that holds the peer's
///    place until dropped.
///
/// # Limits
///
/// - Inbound and outbound peers are capped separately (stock defaults: 40 and 10). Outbound
///   dials in progress count toward the outbound cap. Peers in
///   [`AdmissionLimits::unconditional_peer_ids`] count toward neither, as in stock CometBFT.
/// - A connection that replaces another one to the same peer (the tie-break keeps the new one)
///   is exempt from the count and address limits and keeps the place of the one it replaces:
///   it does not add a peer, and refusing it would break the tie-break's promise that both
///   ends keep the same connection. Likewise an inbound connection from a peer we are dialing
///   at that moment takes an outbound place (our dial reserved one) instead of an inbound one.
/// - Per-address limits group IPv6 addresses by their [`AdmissionLimits::ipv6_prefix_len`]-bit
///   prefix (an IPv6 user holds a whole /64); the duplicate-IP rule compares exact addresses, as
///   stock does. IPv4-mapped IPv6 addresses count as the IPv4 address.
/// - The handshake rate ([`AdmissionLimits::handshake_rate`]) is a token bucket per address
///   (or prefix): each admitted socket takes a token, a socket refused for another reason
///   takes none, and an address that has used its burst is refused until it earns a token
///   back.
///
/// # Bounds
///
/// Every map is bounded by the caps: pending-per-address entries by
/// [`AdmissionLimits::max_pending_inbound`], dials by the outbound cap plus the unconditional
/// peers, peers and their addresses by the inbound and outbound caps plus the unconditional
/// peers, bans by [`AdmissionLimits::max_bans`], handshake-rate buckets by
/// [`AdmissionLimits::max_rate_addresses`]: a full bucket is forgotten at once (it means
/// nothing), and when every place holds one that is not, a new address takes the place of the
/// address quiet longest, which starts again with a full bucket.
///
/// # Sharing
///
/// An [`Admission`] is a cheap handle (`Clone`, `Send`, `Sync`) on one shared state behind a
/// mutex, so that shards accepting on their own threads and the peer manager see the same
/// counts. Permits and slots release their place when dropped, on whatever thread. No lock is
/// held across a call into the caller, and nothing under the lock can panic.
#[derive(Debug, Clone)]
pub struct Admission {
    shared: Arc<Mutex<State>>,
}

/// What a successful promotion gives back.
#[derive(Debug)]
#[must_use = "dropping the slot frees the peer's place at once"]
pub struct Promoted {
    /// The peer's place; hold it for as long as the connection lives.
    pub slot: PeerSlot,
    /// A connection to the same peer that the tie-break replaced: the caller must close it.
    /// Its slot no longer counts and releasing it is harmless.
    pub displaced: Option<ConnectionId>,
}

/// A place for one handshake in progress, inbound or outbound. Dropping it frees the place.
#[must_use = "dropping the permit frees its place at once"]
pub struct PendingPermit {
    shared: Arc<Mutex<State>>,
    conn: ConnectionId,
    kind: PendingKind,
    released: bool,
}

/// A connected peer's place. Dropping it (when the connection closes) frees the place.
#[must_use = "dropping the slot frees the peer's place at once"]
pub struct PeerSlot {
    shared: Arc<Mutex<State>>,
    conn: ConnectionId,
    peer: NodeId,
    direction: Direction,
}

#[derive(Debug, Clone, Copy)]
enum PendingKind {
    Inbound { key: IpAddr },
    Outbound { peer: NodeId, counted: bool },
}

#[derive(Debug)]
struct Peer {
    conn: ConnectionId,
    direction: Direction,
    ip: IpAddr,
    /// Which limit the peer counts toward; `None` for an unconditional peer.
    place: Option<Direction>,
}

#[derive(Debug)]
struct State {
    config: AdmissionLimits,
    unconditional: HashSet<NodeId>,
    local: NodeId,
    next_conn: u64,
    pending_inbound: usize,
    pending_by_key: HashMap<IpAddr, usize>,
    dialing: HashMap<NodeId, ConnectionId>,
    dialing_counted: usize,
    peers: HashMap<NodeId, Peer>,
    inbound: usize,
    outbound: usize,
    peers_by_key: HashMap<IpAddr, usize>,
    peers_by_ip: HashMap<IpAddr, usize>,
    bans: BanList,
    ip_bans: BanList<IpAddr>,
    refusals: RefusalCounts,
    rate: RateBuckets,
}

impl Admission {
    /// Admission state for the node `local` under `config`.
    pub fn new(local: NodeId, config: AdmissionLimits) -> Result<Self, ConfigError> {
        config.validate()?;
        let unconditional = config.unconditional_peer_ids.iter().copied().collect();
        let bans = BanList::new(config.max_bans);
        let ip_bans = BanList::new(config.max_bans);
        let rate = RateBuckets::new(config.handshake_rate, config.max_rate_addresses);
        Ok(Self {
            shared: Arc::new(Mutex::new(State {
                config,
                unconditional,
                local,
                next_conn: 0,
                pending_inbound: 0,
                pending_by_key: HashMap::new(),
                dialing: HashMap::new(),
                dialing_counted: 0,
                peers: HashMap::new(),
                inbound: 0,
                outbound: 0,
                peers_by_key: HashMap::new(),
                peers_by_ip: HashMap::new(),
                bans,
                ip_bans,
                refusals: RefusalCounts::default(),
                rate,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// Admits an accepted socket from `ip` to its handshake at `now`, or refuses it. Call this
    /// before allocating anything for the connection.
    pub fn try_accept(&self, ip: IpAddr, now: Instant) -> Result<PendingPermit, Refused> {
        let mut state = self.lock();
        let key = state.key(ip);
        let result = if state.ip_bans.is_banned(&ip.to_canonical(), now) {
            Err(Refused::Banned)
        } else {
            state.check_accept(key)
        };
        let result = result.and_then(|()| {
            if state.rate.try_take(key, now) {
                Ok(())
            } else {
                Err(Refused::HandshakeRate)
            }
        });
        match result {
            Ok(()) => {
                state.pending_inbound = state.pending_inbound.saturating_add(1);
                let count = state.pending_by_key.entry(key).or_insert(0);
                *count = count.saturating_add(1);
                let conn = state.next_conn();
                drop(state);
                Ok(self.permit(conn, PendingKind::Inbound { key }))
            }
            Err(reason) => {
                state.refusals.record(reason);
                Err(reason)
            }
        }
    }

    /// Reserves an outbound place to dial `peer`, or refuses it.
    pub fn try_dial(&self, peer: NodeId, now: Instant) -> Result<PendingPermit, Refused> {
        let mut state = self.lock();
        match state.check_dial(peer, now) {
            Ok(counted) => {
                let conn = state.next_conn();
                state.dialing.insert(peer, conn);
                if counted {
                    state.dialing_counted = state.dialing_counted.saturating_add(1);
                }
                drop(state);
                Ok(self.permit(conn, PendingKind::Outbound { peer, counted }))
            }
            Err(reason) => {
                state.refusals.record(reason);
                Err(reason)
            }
        }
    }

    fn permit(&self, conn: ConnectionId, kind: PendingKind) -> PendingPermit {
        PendingPermit {
            shared: Arc::clone(&self.shared),
            conn,
            kind,
            released: false,
        }
    }

    /// Bans `peer` until `until`. Returns its current connection, which the caller should
    /// close; the ban refuses its new dials and handshakes meanwhile.
    pub fn ban(&self, peer: NodeId, until: Instant) -> Option<ConnectionId> {
        let mut state = self.lock();
        state.bans.ban(peer, until);
        state.peers.get(&peer).map(|p| p.conn)
    }

    /// Lifts a ban; returns whether `peer` was banned.
    pub fn unban(&self, peer: &NodeId) -> bool {
        self.lock().bans.unban(peer)
    }

    /// Bans the address `ip` until `until`: no connection from it is accepted or admitted
    /// meanwhile, whatever ID it claims. Returns the connections of the peers connected from
    /// it, which the caller should close.
    pub fn ban_ip(&self, ip: IpAddr, until: Instant) -> Vec<(NodeId, ConnectionId)> {
        let ip = ip.to_canonical();
        let mut state = self.lock();
        state.ip_bans.ban(ip, until);
        state
            .peers
            .iter()
            .filter(|(_, p)| p.ip == ip)
            .map(|(id, p)| (*id, p.conn))
            .collect()
    }

    /// The address `peer` is connected from, if connected.
    pub fn peer_ip(&self, peer: &NodeId) -> Option<IpAddr> {
        self.lock().peers.get(peer).map(|p| p.ip)
    }

    /// Whether the address `ip` is banned at `now`.
    pub fn is_ip_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.lock().ip_bans.is_banned(&ip.to_canonical(), now)
    }

    /// The bans in force at `now`, by node ID and by address, each with its end, sorted.
    pub fn active_bans(&self, now: Instant) -> super::Bans {
        let state = self.lock();
        let mut ids: Vec<_> = state.bans.active(now).collect();
        let mut ips: Vec<_> = state.ip_bans.active(now).collect();
        ids.sort_unstable();
        ips.sort_unstable();
        super::Bans { ids, ips }
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &NodeId, now: Instant) -> bool {
        self.lock().bans.is_banned(peer, now)
    }

    /// When `peer`'s ban ends, if it is banned at `now`.
    pub fn banned_until(&self, peer: &NodeId, now: Instant) -> Option<Instant> {
        self.lock().bans.banned_until(peer, now)
    }

    /// Drops bans that have ended by `now`.
    pub fn expire_bans(&self, now: Instant) {
        let mut state = self.lock();
        state.bans.expire(now);
        state.ip_bans.expire(now);
    }

    /// `peer`'s current connection and its direction, if connected.
    pub fn connection(&self, peer: &NodeId) -> Option<(ConnectionId, Direction)> {
        self.lock().peers.get(peer).map(|p| (p.conn, p.direction))
    }

    /// Whether a dial to `peer` is in progress.
    pub fn is_dialing(&self, peer: &NodeId) -> bool {
        self.lock().dialing.contains_key(peer)
    }

    /// Whether several peers may share an IP address (`allow_duplicate_ip`).
    pub fn allows_duplicate_ip(&self) -> bool {
        self.lock().config.allow_duplicate_ip
    }

    /// Whether `peer` is exempt from the inbound and outbound limits.
    pub fn is_unconditional(&self, peer: &NodeId) -> bool {
        self.lock().unconditional.contains(peer)
    }

    /// Current counts.
    pub fn stats(&self) -> AdmissionStats {
        let state = self.lock();
        AdmissionStats {
            inbound: state.inbound,
            outbound: state.outbound,
            peers: state.peers.len(),
            pending_inbound: state.pending_inbound,
            dialing: state.dialing.len(),
            bans: state.bans.len(),
            rate_addresses: state.rate.len(),
        }
    }

    /// The connected peers that hold outbound places: those this node dialed, and those
    /// whose inbound connection took the place this node's dial to them had reserved (the
    /// simultaneous-dial tie-break can keep the peer's connection), or inherited it from the
    /// connection it replaced. Unconditional peers hold no place. In no particular order.
    pub fn outbound_places(&self) -> Vec<NodeId> {
        self.lock()
            .peers
            .iter()
            .filter(|(_, p)| p.place == Some(Direction::Outbound))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Refusals so far, by reason.
    pub fn refusals(&self) -> RefusalCounts {
        self.lock().refusals
    }

    /// Whether an outbound place is free now (a dial to a non-exempt peer would not be refused
    /// for the outbound limit).
    pub fn has_outbound_room(&self) -> bool {
        let state = self.lock();
        state.outbound.saturating_add(state.dialing_counted) < state.config.max_outbound
    }
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing under the lock panics; should a caller's panic ever poison it, the counts are
    // still consistent, so carry on.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn next_conn(&mut self) -> ConnectionId {
        let conn = ConnectionId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1);
        conn
    }

    /// The address a per-address limit counts under.
    fn key(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u32::from(self.config.ipv6_prefix_len.clamp(32, 128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 => v4,
        }
    }

    fn check_accept(&self, key: IpAddr) -> Result<(), Refused> {
        let c = &self.config;
        if self.pending_inbound >= c.max_pending_inbound {
            return Err(Refused::PendingFull);
        }
        let pending_here = self.pending_by_key.get(&key).copied().unwrap_or(0);
        if pending_here >= c.max_pending_inbound_per_ip {
            return Err(Refused::PendingPerIpFull);
        }
        let connected_here = self.peers_by_key.get(&key).copied().unwrap_or(0);
        if pending_here.saturating_add(connected_here) >= c.max_connections_per_ip {
            return Err(Refused::PerIpFull);
        }
        // With no exempt peer, a full inbound set refuses before any handshake work; else the
        // peer's ID, known only after the handshake, decides.
        if self.unconditional.is_empty() && self.inbound >= c.max_inbound {
            return Err(Refused::InboundFull);
        }
        Ok(())
    }

    /// Returns whether the dial counts toward the outbound limit.
    fn check_dial(&self, peer: NodeId, now: Instant) -> Result<bool, Refused> {
        if peer == self.local {
            return Err(Refused::SelfConnection);
        }
        if self.bans.is_banned(&peer, now) {
            return Err(Refused::Banned);
        }
        if self.peers.contains_key(&peer) {
            return Err(Refused::AlreadyConnected);
        }
        if self.dialing.contains_key(&peer) {
            return Err(Refused::AlreadyDialing);
        }
        let counted = !self.unconditional.contains(&peer);
        if counted && self.outbound.saturating_add(self.dialing_counted) >= self.config.max_outbound
        {
            return Err(Refused::OutboundFull);
        }
        Ok(counted)
    }

    fn release_pending(&mut self, conn: ConnectionId, kind: PendingKind) {
        match kind {
            PendingKind::Inbound { key } => {
                self.pending_inbound = self.pending_inbound.saturating_sub(1);
                decrement(&mut self.pending_by_key, key);
            }
            PendingKind::Outbound { peer, counted } => {
                if self.dialing.get(&peer) == Some(&conn) {
                    self.dialing.remove(&peer);
                    if counted {
                        self.dialing_counted = self.dialing_counted.saturating_sub(1);
                    }
                }
            }
        }
    }

    fn promote(
        &mut self,
        conn: ConnectionId,
        kind: PendingKind,
        peer: NodeId,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Option<ConnectionId>, Refused> {
        let direction = match kind {
            PendingKind::Inbound { .. } => Direction::Inbound,
            PendingKind::Outbound { .. } => Direction::Outbound,
        };
        if peer == self.local {
            return Err(Refused::SelfConnection);
        }
        if let PendingKind::Outbound { peer: dialed, .. } = kind
            && dialed != peer
        {
            return Err(Refused::IdMismatch);
        }
        let ip = ip.to_canonical();
        if self.bans.is_banned(&peer, now) || self.ip_bans.is_banned(&ip, now) {
            return Err(Refused::Banned);
        }
        let (place, displaced) = match self.peers.get(&peer) {
            Some(existing) => match resolve(self.local, peer, existing.direction, direction) {
                Keep::Existing => return Err(Refused::Duplicate),
                Keep::New => (existing.place, Some(existing.conn)),
            },
            None => {
                let place = if self.unconditional.contains(&peer) {
                    None
                } else if self.dialing.contains_key(&peer) {
                    // Our dial to this peer reserved an outbound place; this connection uses it.
                    Some(Direction::Outbound)
                } else {
                    Some(direction)
                };
                self.check_new_peer(direction, ip, place)?;
                (place, None)
            }
        };
        if displaced.is_some() {
            self.remove_peer(&peer);
        }
        self.add_peer(
            peer,
            Peer {
                conn,
                direction,
                ip,
                place,
            },
        );
        Ok(displaced)
    }

    fn check_new_peer(
        &self,
        direction: Direction,
        ip: IpAddr,
        place: Option<Direction>,
    ) -> Result<(), Refused> {
        let c = &self.config;
        if !c.allow_duplicate_ip && self.peers_by_ip.contains_key(&ip) {
            return Err(Refused::DuplicateIp);
        }
        // Unconditional peers and connections holding a dial's reservation pass the limits.
        if place != Some(direction) {
            return Ok(());
        }
        if direction == Direction::Inbound && self.inbound >= c.max_inbound {
            return Err(Refused::InboundFull);
        }
        // An outbound peer's place was reserved by its dial.
        let key = self.key(ip);
        if self.peers_by_key.get(&key).copied().unwrap_or(0) >= c.max_connections_per_ip {
            return Err(Refused::PerIpFull);
        }
        Ok(())
    }

    fn add_peer(&mut self, id: NodeId, peer: Peer) {
        match peer.place {
            Some(Direction::Inbound) => self.inbound = self.inbound.saturating_add(1),
            Some(Direction::Outbound) => self.outbound = self.outbound.saturating_add(1),
            None => {}
        }
        let key = self.key(peer.ip);
        increment(&mut self.peers_by_key, key);
        increment(&mut self.peers_by_ip, peer.ip);
        self.peers.insert(id, peer);
    }

    fn remove_peer(&mut self, id: &NodeId) {
        let Some(peer) = self.peers.remove(id) else {
            return;
        };
        match peer.place {
            Some(Direction::Inbound) => self.inbound = self.inbound.saturating_sub(1),
            Some(Direction::Outbound) => self.outbound = self.outbound.saturating_sub(1),
            None => {}
        }
        let key = self.key(peer.ip);
        decrement(&mut self.peers_by_key, key);
        decrement(&mut self.peers_by_ip, peer.ip);
    }

    fn release_peer(&mut self, id: &NodeId, conn: ConnectionId) {
        if self.peers.get(id).is_some_and(|p| p.conn == conn) {
            self.remove_peer(id);
        }
    }
}

fn increment(map: &mut HashMap<IpAddr, usize>, key: IpAddr) {
    let count = map.entry(key).or_insert(0);
    *count = count.saturating_add(1);
}

fn decrement(map: &mut HashMap<IpAddr, usize>, key: IpAddr) {
    if let Some(count) = map.get_mut(&key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            map.remove(&key);
        }
    }
}

impl PendingPermit {
    /// This connection's identifier.
    pub fn conn_id(&self) -> ConnectionId {
        self.conn
    }

    /// Which end opened the connection.
    pub fn direction(&self) -> Direction {
        match self.kind {
            PendingKind::Inbound { .. } => Direction::Inbound,
            PendingKind::Outbound { .. } => Direction::Outbound,
        }
    }

    /// The peer dialed, for an outbound permit.
    pub fn dialed(&self) -> Option<NodeId> {
        match self.kind {
            PendingKind::Inbound { .. } => None,
            PendingKind::Outbound { peer, .. } => Some(peer),
        }
    }

    /// The handshake finished: `peer` authenticated, and the socket's remote address is `ip`.
    /// Frees the pending place and takes a peer place, or refuses (and frees the pending place
    /// all the same). On success, close [`Promoted::displaced`] if it is set.
    pub fn promote(mut self, peer: NodeId, ip: IpAddr, now: Instant) -> Result<Promoted, Refused> {
        self.released = true;
        let mut state = lock(&self.shared);
        state.release_pending(self.conn, self.kind);
        match state.promote(self.conn, self.kind, peer, ip, now) {
            Ok(displaced) => {
                drop(state);
                let direction = self.direction();
                Ok(Promoted {
                    slot: PeerSlot {
                        shared: Arc::clone(&self.shared),
                        conn: self.conn,
                        peer,
                        direction,
                    },
                    displaced,
                })
            }
            Err(reason) => {
                state.refusals.record(reason);
                Err(reason)
            }
        }
    }

    /// Frees the pending place now (the handshake failed or timed out). Same as dropping.
    pub fn release(self) {}
}

impl Drop for PendingPermit {
    fn drop(&mut self) {
        if !self.released {
            self.released = true;
            lock(&self.shared).release_pending(self.conn, self.kind);
        }
    }
}

impl std::fmt::Debug for PendingPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPermit")
            .field("conn", &self.conn)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl PeerSlot {
    /// This connection's identifier.
    pub fn conn_id(&self) -> ConnectionId {
        self.conn
    }

    /// The connected peer.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// Which end opened the connection.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Frees the peer's place now (the connection closed). Same as dropping.
    pub fn release(self) {}
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        lock(&self.shared).release_peer(&self.peer, self.conn);
    }
}

impl std::fmt::Debug for PeerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSlot")
            .field("conn", &self.conn)
            .field("peer", &self.peer)
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}
