//! The peer manager: which peers to dial and when.
//!
//! The policy is documented on [`PeerManager`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::proto::secret::NodeId;

use super::addr::PeerAddr;
use super::backoff::{BackoffConfig, Retry, seed_for};
use super::limits::{Admission, AdmissionLimits, ConnectionId, PendingPermit};
use super::refusal::Refused;
use super::{ConfigError, Direction};

/// Peer-manager settings (TOML section `[p2p]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// Peers dialed at start and redialled forever (`persistent_peers`). The node's own ID and
    /// repeated IDs are skipped, so one list can serve every node of a network.
    pub persistent_peers: Vec<PeerAddr>,
    /// Seed nodes (`seeds`): dialed once at a time ([`PeerManager::dial_seed`]) when peer
    /// exchange needs addresses, asked for them and dropped once they answer. Never redialled
    /// by the manager on its own.
    pub seeds: Vec<PeerAddr>,
    /// Connection limits.
    pub limits: AdmissionLimits,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// How long a TCP connect may take before the dial fails (`dial_timeout`). Default 3 s,
    /// as stock. The runtime enforces it; see [`Dial::deadline`].
    pub dial_timeout: Duration,
    /// How long the handshake (SecretConnection and NodeInfo) may take after the TCP
    /// connection is up, inbound or outbound (`handshake_timeout`). Default 20 s, as stock.
    /// The runtime enforces it.
    pub handshake_timeout: Duration,
    /// Most dial targets besides the configured persistent peers (operator dials, and later
    /// the address book). Default 256.
    pub max_dial_targets: usize,
    /// Most dials in progress at once (`max_concurrent_dials`), operator dials included:
    /// [`PeerManager::poll_dial`] starts no more while this many hold an outbound permit.
    /// At least 1. Default 16.
    pub max_concurrent_dials: usize,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            persistent_peers: Vec::new(),
            seeds: Vec::new(),
            limits: AdmissionLimits::default(),
            backoff: BackoffConfig::default(),
            dial_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(20),
            max_dial_targets: 256,
            max_concurrent_dials: 16,
        }
    }
}

impl ManagerConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate()?;
        self.backoff.validate()?;
        if self.dial_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "dial_timeout must be greater than zero",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "handshake_timeout must be greater than zero",
            ));
        }
        if self.max_concurrent_dials == 0 {
            return Err(ConfigError::Invalid(
                "max_concurrent_dials must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A dial to perform: connect to `addr` by `deadline`, handshake, then
/// [`PendingPermit::promote`] the permit (or drop it and call
/// [`PeerManager::on_dial_failed`]).
#[derive(Debug)]
#[must_use = "dropping the dial frees its place; report it with on_dial_failed"]
pub struct Dial {
    /// Whom to dial.
    pub addr: PeerAddr,
    /// The outbound place reserved for this dial.
    pub permit: PendingPermit,
    /// When the TCP connect must have completed (now + `dial_timeout`).
    pub deadline: Instant,
}

/// Why a connection ended, as far as reconnecting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The peer closed the connection, or the socket failed.
    Closed,
    /// The peer stopped answering (keepalive or I/O timeout).
    Timeout,
    /// The peer broke the protocol.
    ProtocolError,
    /// This node closed it (an operator request).
    Local,
}

/// Why [`PeerManager::add_peer`] refused a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddPeerError {
    /// The address is this node's own.
    #[error("the address is this node's own ID")]
    SelfAddress,
    /// The bound on dial targets is reached.
    #[error("too many dial targets (max_dial_targets)")]
    TooManyTargets,
}

/// What the manager knows about one dial target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetView {
    /// The address dialed.
    pub addr: PeerAddr,
    /// Whether it is retried forever.
    pub persistent: bool,
    /// Consecutive failures since the last stable connection.
    pub failures: u32,
    /// Earliest time of the next dial (ignoring bans and limits).
    pub next_dial: Instant,
    /// Whether a dial is in progress.
    pub dialing: bool,
}

#[derive(Debug)]
struct Target {
    addr: PeerAddr,
    retry: Retry,
    next_at: Instant,
    dialing: bool,
    /// Insertion order, to break ties between equally due targets.
    seq: u64,
    /// Whether it came from the configuration (and does not count toward `max_dial_targets`).
    configured: bool,
    /// Dialed once and given up after its first failure ([`PeerManager::dial_once`]).
    once: bool,
}

#[derive(Debug, Clone, Copy)]
struct Connected {
    conn: ConnectionId,
    since: Instant,
}

/// Decides whom to dial and when.
///
/// It keeps a bounded set of *dial targets* — the persistent peers from the
/// configuration, plus peers added at run time ([`PeerManager::add_peer`]: an operator's dial
/// now, the address book later) — and a view of who is connected. The node drives it:
///
/// 1. [`PeerManager::poll_dial`] until it returns `None`; each [`Dial`] carries the address
///    and an outbound [`PendingPermit`] already taken from the shared [`Admission`].
/// 2. Report outcomes: [`PeerManager::on_dial_failed`] when a dial or its handshake fails
///    (and drop the permit), [`PeerManager::on_connected`] for every connection promoted to a
///    peer (inbound ones too), [`PeerManager::on_disconnected`] when one closes.
/// 3. Sleep until [`PeerManager::poll_timeout`] or the next event, then go to 1.
///
/// # Policy
///
/// - A target is dialed when it is not connected, not being dialed, not banned, its backoff has
///   elapsed and an outbound place is free (unconditional peers need none). Among several,
///   the one waiting longest goes first, then the one added first.
/// - A failed dial waits [`BackoffConfig::delay`]; persistent peers are retried forever, other
///   targets are dropped after [`BackoffConfig::max_attempts`] failures.
/// - A non-persistent target is dropped once connected: its job is done. A once-dialed
///   target ([`PeerManager::dial_once`]) is also dropped at its first failure, or when it is
///   refused before its dial starts (connected, dialing or banned meanwhile).
/// - When a persistent peer disconnects, it is redialled after a backoff delay. The failure
///   count restarts only if the connection had lasted [`BackoffConfig::stable_after`] and did
///   not end in a protocol error, so a peer that accepts and drops us keeps backing off.
/// - While no outbound place is free, [`PeerManager::poll_timeout`] does not report targets
///   that need one, so a full node does not spin; a failed dial or a disconnect wakes them.
/// - At most [`ManagerConfig::max_concurrent_dials`] dials are in progress at once (every
///   outbound permit counts, an operator's dial too): at the cap `poll_dial` returns `None`
///   and `poll_timeout` reports nothing, and the end of a dial makes room.
///
/// # Seams
///
/// The address book's dialer (`pex`, through the node) hands its picks and the seeds to
/// [`PeerManager::dial_once`] and [`PeerManager::dial_seed`]: dialed once, under the same
/// admission limits, bans, dial cap and tie-break, with the backoff kept by the book; scoring
/// calls [`PeerManager::ban`]; capability targets (a share of outbound peers with a given
/// capability) will order the candidates in the one place that chooses among them
/// (`PeerManager::candidates`).
#[derive(Debug)]
pub struct PeerManager {
    local: NodeId,
    config: ManagerConfig,
    seed: u64,
    admission: Admission,
    targets: HashMap<NodeId, Target>,
    next_seq: u64,
    added: usize,
    connected: HashMap<NodeId, Connected>,
}

impl PeerManager {
    /// A manager for the node `local`, with the configured persistent peers due at `now`.
    /// `seed` drives the backoff jitter (use a random value; a fixed one in tests).
    pub fn new(
        local: NodeId,
        config: ManagerConfig,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let admission = Admission::new(local, config.limits.clone())?;
        let mut manager = Self {
            local,
            seed,
            admission,
            targets: HashMap::new(),
            next_seq: 0,
            added: 0,
            connected: HashMap::new(),
            config,
        };
        let persistent = manager.config.persistent_peers.clone();
        for addr in persistent {
            if addr.id != local && !manager.targets.contains_key(&addr.id) {
                manager.insert(addr, true, true, now);
            }
        }
        Ok(manager)
    }

    /// The shared admission state: hand clones to whatever accepts connections.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The settings in force.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    fn insert(&mut self, addr: PeerAddr, persistent: bool, configured: bool, now: Instant) {
        let seed = seed_for(self.seed, addr.id.as_bytes());
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        if !configured {
            self.added = self.added.saturating_add(1);
        }
        self.targets.insert(
            addr.id,
            Target {
                addr,
                retry: Retry::new(seed, persistent),
                next_at: now,
                dialing: false,
                seq,
                configured,
                once: false,
            },
        );
    }

    fn remove(&mut self, id: &NodeId) {
        if let Some(target) = self.targets.remove(id)
            && !target.configured
        {
            self.added = self.added.saturating_sub(1);
        }
    }

    /// Adds a dial target (or updates a known one), due at `now`. A `persistent` target is
    /// retried forever; another is dropped once connected or after `max_attempts` failures.
    /// A known target keeps its failure count and becomes persistent if asked to.
    pub fn add_peer(
        &mut self,
        addr: PeerAddr,
        persistent: bool,
        now: Instant,
    ) -> Result<(), AddPeerError> {
        if addr.id == self.local {
            return Err(AddPeerError::SelfAddress);
        }
        if let Some(target) = self.targets.get_mut(&addr.id) {
            target.addr = addr;
            if persistent {
                target.retry.set_persistent(true);
            }
            target.next_at = target.next_at.min(now);
            return Ok(());
        }
        if self.added >= self.config.max_dial_targets {
            return Err(AddPeerError::TooManyTargets);
        }
        self.insert(addr, persistent, false, now);
        Ok(())
    }

    /// Stops dialing `id` (its connection, if any, stays). Returns whether it was a target.
    pub fn remove_peer(&mut self, id: &NodeId) -> bool {
        let known = self.targets.contains_key(id);
        self.remove(id);
        known
    }

    /// Adds a target dialed once, due at `now`: the address book's picks and the seeds. Unlike
    /// [`PeerManager::add_peer`] targets it is given up after its first failure (the book
    /// keeps the address's attempts and backoff), and like them it is dropped once connected.
    /// Returns `Ok(false)`, and changes nothing, for a peer that is connected, being dialed,
    /// banned or a target already.
    pub fn dial_once(&mut self, addr: PeerAddr, now: Instant) -> Result<bool, AddPeerError> {
        if addr.id == self.local {
            return Err(AddPeerError::SelfAddress);
        }
        let id = addr.id;
        if self.targets.contains_key(&id)
            || self.connected.contains_key(&id)
            || self.admission.is_dialing(&id)
            || self.admission.is_banned(&id, now)
        {
            return Ok(false);
        }
        if self.added >= self.config.max_dial_targets {
            return Err(AddPeerError::TooManyTargets);
        }
        self.insert(addr, false, false, now);
        if let Some(t) = self.targets.get_mut(&id) {
            t.once = true;
        }
        Ok(true)
    }

    /// Gives up the once-dialed targets ([`PeerManager::dial_once`]) whose dial has not started
    /// (no outbound place or dial slot came free for them); returns how many. The address
    /// book's dialer does this before each round, so its picks do not pile up.
    pub fn cancel_queued_once(&mut self) -> usize {
        let stale: Vec<NodeId> = self
            .targets
            .iter()
            .filter(|(_, t)| t.once && !t.dialing)
            .map(|(id, _)| *id)
            .collect();
        for id in &stale {
            self.remove(id);
        }
        stale.len()
    }

    /// Once-dialed targets whose dial has not started yet.
    pub fn queued_once(&self) -> usize {
        self.targets
            .values()
            .filter(|t| t.once && !t.dialing)
            .count()
    }

    /// Dials the first seed of `order` (indices into [`ManagerConfig::seeds`]) that is not
    /// connected, being dialed, banned or a target already, once; returns its ID.
    pub fn dial_seed(
        &mut self,
        order: impl IntoIterator<Item = usize>,
        now: Instant,
    ) -> Option<NodeId> {
        for i in order {
            let Some(addr) = self.config.seeds.get(i).cloned() else {
                continue;
            };
            let id = addr.id;
            if let Ok(true) = self.dial_once(addr, now) {
                return Some(id);
            }
        }
        None
    }

    /// Whether `id` is a dial target (persistent, added, or dialed once and not done yet).
    pub fn is_target(&self, id: &NodeId) -> bool {
        self.targets.contains_key(id)
    }

    /// The next dial to perform at `now`, if any. Call until it returns `None`.
    pub fn poll_dial(&mut self, now: Instant) -> Option<Dial> {
        self.drop_refused_once(now);
        if !self.has_dial_room() {
            return None;
        }
        for id in self.candidates(now) {
            match self.admission.try_dial(id, now) {
                Ok(permit) => {
                    let target = self.targets.get_mut(&id)?;
                    target.dialing = true;
                    return Some(Dial {
                        addr: target.addr.clone(),
                        permit,
                        deadline: now + self.config.dial_timeout,
                    });
                }
                Err(Refused::SelfConnection) => self.remove(&id),
                // A once-dialed target is not kept waiting: the book picks again next round.
                Err(_) if self.targets.get(&id).is_some_and(|t| t.once) => self.remove(&id),
                Err(Refused::Banned) => {
                    let until = self.admission.banned_until(&id, now).unwrap_or(now);
                    if let Some(target) = self.targets.get_mut(&id) {
                        target.next_at = until;
                    }
                }
                Err(_) => {
                    // Connected or dialed by another path, or out of places: look again
                    // after the base delay rather than spin.
                    if let Some(target) = self.targets.get_mut(&id) {
                        target.next_at = now + self.config.backoff.base;
                    }
                }
            }
        }
        None
    }

    /// The targets ready to dial at `now`, best first. Scoring and capability targets will
    /// reorder this list.
    fn candidates(&self, now: Instant) -> Vec<NodeId> {
        let room = self.admission.has_outbound_room();
        let mut ready: Vec<(Instant, u64, NodeId)> = self
            .targets
            .iter()
            .filter(|(id, t)| {
                !t.dialing
                    && t.next_at <= now
                    && !self.connected.contains_key(id)
                    && (room || self.admission.is_unconditional(id))
                    && !self.admission.is_banned(id, now)
            })
            .map(|(id, t)| (t.next_at, t.seq, *id))
            .collect();
        ready.sort_unstable();
        ready.into_iter().map(|(_, _, id)| id).collect()
    }

    /// Gives up the once-dialed targets waiting for a peer that got connected or banned
    /// meanwhile: the book picks again at its next round.
    fn drop_refused_once(&mut self, now: Instant) {
        let refused: Vec<NodeId> = self
            .targets
            .iter()
            .filter(|(id, t)| {
                t.once
                    && !t.dialing
                    && (self.connected.contains_key(id) || self.admission.is_banned(id, now))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &refused {
            self.remove(id);
        }
    }

    /// Whether a dial may start without passing [`ManagerConfig::max_concurrent_dials`].
    fn has_dial_room(&self) -> bool {
        self.admission.stats().dialing < self.config.max_concurrent_dials
    }

    /// The earliest instant at which [`PeerManager::poll_dial`] may have work, if any target
    /// is waiting. Targets that need an outbound place are left out while none is free, and
    /// all of them while [`ManagerConfig::max_concurrent_dials`] dials are in progress (the end
    /// of one is the next event).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.has_dial_room() {
            return None;
        }
        let room = self.admission.has_outbound_room();
        self.targets
            .iter()
            .filter(|(id, t)| {
                !t.dialing
                    && !self.connected.contains_key(id)
                    && (room || self.admission.is_unconditional(id))
            })
            .map(|(id, t)| {
                self.admission
                    .banned_until(id, t.next_at)
                    .map_or(t.next_at, |until| until.max(t.next_at))
            })
            .min()
    }

    /// A dial to `id` failed (connect error or timeout, handshake failure, or refused at
    /// promotion). Drop its permit as well. Schedules the retry or gives the target up.
    pub fn on_dial_failed(&mut self, id: &NodeId, now: Instant) {
        let Some(target) = self.targets.get_mut(id) else {
            return;
        };
        target.dialing = false;
        if target.once {
            self.remove(id);
            return;
        }
        if !target.retry.is_persistent() && self.connected.contains_key(id) {
            // It connected to us meanwhile: the target's job is done.
            self.remove(id);
            return;
        }
        match target.retry.next_delay(&self.config.backoff) {
            Some(delay) => target.next_at = now + delay,
            None => self.remove(id),
        }
    }

    /// A connection to `id` (inbound or outbound) became a peer, with connection id `conn`
    /// from its [`PeerSlot`](super::PeerSlot).
    pub fn on_connected(
        &mut self,
        id: NodeId,
        conn: ConnectionId,
        direction: Direction,
        now: Instant,
    ) {
        let since = match self.connected.get(&id) {
            // A replacement (tie-break) keeps the peer's original start.
            Some(existing) => existing.since,
            None => now,
        };
        self.connected.insert(id, Connected { conn, since });
        let Some(target) = self.targets.get_mut(&id) else {
            return;
        };
        if direction == Direction::Outbound {
            target.dialing = false;
        }
        if !target.retry.is_persistent() && !target.dialing {
            self.remove(&id);
        }
    }

    /// The connection `conn` to `id` closed. Ignored unless it is the peer's current
    /// connection (a connection displaced by the tie-break is not a disconnect).
    pub fn on_disconnected(
        &mut self,
        id: &NodeId,
        conn: ConnectionId,
        reason: DisconnectReason,
        now: Instant,
    ) {
        let Some(current) = self.connected.get(id).copied() else {
            return;
        };
        if current.conn != conn {
            return;
        }
        self.connected.remove(id);
        let Some(target) = self.targets.get_mut(id) else {
            return;
        };
        let lasted = now.saturating_duration_since(current.since);
        if lasted >= self.config.backoff.stable_after && reason != DisconnectReason::ProtocolError {
            target.retry.reset();
        }
        match target.retry.next_delay(&self.config.backoff) {
            Some(delay) => target.next_at = target.next_at.max(now + delay),
            None => self.remove(id),
        }
    }

    /// Bans `id` until `until`: it is neither dialed nor admitted meanwhile. Returns its
    /// current connection, which the caller should close.
    pub fn ban(&mut self, id: NodeId, until: Instant) -> Option<ConnectionId> {
        self.admission.ban(id, until)
    }

    /// Lifts a ban; returns whether `id` was banned.
    pub fn unban(&mut self, id: &NodeId) -> bool {
        self.admission.unban(id)
    }

    /// Whether `id` is banned at `now`.
    pub fn is_banned(&self, id: &NodeId, now: Instant) -> bool {
        self.admission.is_banned(id, now)
    }

    /// Whether `id` is connected, as reported through the `on_*` events.
    pub fn is_connected(&self, id: &NodeId) -> bool {
        self.connected.contains_key(id)
    }

    /// Number of connected peers, as reported through the `on_*` events.
    pub fn connected_count(&self) -> usize {
        self.connected.len()
    }

    /// What the manager knows about target `id`.
    pub fn target(&self, id: &NodeId) -> Option<TargetView> {
        self.targets.get(id).map(|t| TargetView {
            addr: t.addr.clone(),
            persistent: t.retry.is_persistent(),
            failures: t.retry.failures(),
            next_dial: t.next_at,
            dialing: t.dialing,
        })
    }

    /// Number of dial targets.
    pub fn target_count(&self) -> usize {
        self.targets.len()
    }
}
