//! The peer manager wired into a running node: an admission gate and a dialer thread.
//!
//! [`Peering`] is the node's [`PeerGate`] when a peer manager is configured:
//!
//! - **At accept** (before the connection allocates anything) it takes a
//!   [`PendingPermit`] from [`Admission::try_accept`]: the global and per-address caps on
//!   handshakes in progress, the per-address connection cap and the per-address handshake
//!   rate refuse the socket there, before any key exchange.
//! - **Before a dial** it takes an outbound permit from [`Admission::try_dial`].
//! - **After the handshake** it promotes the connection's permit: limits, bans and the
//!   simultaneous-dial [tie-break](crate::peers::resolve) decide, and a replacement is reported
//!   as [`Verdict::ReplaceExisting`] so the other one is closed.
//!   The peer's [`PeerSlot`] is held until its connection goes down.
//!
//! The dialer thread asks [`PeerManager::poll_dial`] for due dials, runs them through the
//! router's dial path, reports failures with [`PeerManager::on_dial_failed`], and sleeps until
//! [`PeerManager::poll_timeout`], until a dial ends or until a peer goes down. Connections and
//! disconnections reach the manager from the gate ([`PeerManager::on_connected`],
//! [`PeerManager::on_disconnected`]), with the connection identity the tie-break needs.
//!
//! The dials run together, at most [`ManagerConfig::max_concurrent_dials`] at once (the
//! manager stops handing out dials at that many); when one ends the thread polls again, so
//! the next due dial takes its place at once. Each is bounded by the dial and handshake
//! timeouts.
//!
//! [`ManagerConfig::max_concurrent_dials`]: crate::peers::ManagerConfig::max_concurrent_dials
//!
//! Connections without a permit (in-memory pipes, which skip `accept`) take one at admission,
//! counted under 127.0.0.1.
//!
//! With PEX, [`BookDialer`] is PEX's [`Dialer`]: the address book's picks and the seeds become
//! once-dialed targets of the manager ([`PeerManager::dial_once`], [`PeerManager::dial_seed`]),
//! so they pass the same admission, bans, dial cap and tie-break; the outcome of every failed
//! dial is reported back to the book through [`Peering::on_dial_failed`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Notify;

use crate::peers::{
    AddPeerError, Admission, AdmissionStats, Dial, DisconnectReason, Host, PeerAddr, PeerManager,
    PeerSlot, PendingPermit, Promoted, RefusalCounts,
};
use crate::pex::service::Dialer;
use crate::pex::{Outbound, PexAddr};
use crate::proto::conn::{ConnError, PeerInfo};
use crate::proto::secret::NodeId;
use crate::registry::{DialError, Direction, DownReason, PeerGate, PeerSummary, Pending, Verdict};
use crate::router::Router;
use crate::rt::clock;
use crate::shard::DialTarget;

use super::scoring::Scoring;

/// Longest the dialer sleeps without a reason to wake (it re-checks limits and bans).
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Told of each dial that failed at the address (connect, socket, handshake): the peer, and
/// whether it authenticated as another node.
pub(crate) type DialFailedFn = Box<dyn Fn(NodeId, bool) + Send + Sync>;

/// The peer manager's state shared by the gate and the dialer thread.
pub(crate) struct Peering {
    pub(super) manager: Mutex<PeerManager>,
    pub(super) admission: Admission,
    slots: Mutex<HashMap<NodeId, PeerSlot>>,
    stop: AtomicBool,
    /// Wakes the dialer (a peer went down, a ban, stop); remembers one wake while it works.
    wake: Notify,
    /// Reports failed dials to the address book, once PEX runs.
    dial_failed: OnceLock<DialFailedFn>,
    /// Peer scores, bans by score and the bans file (see [`super::scoring`]).
    pub(super) scoring: Scoring,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Peering {
    pub(crate) fn new(manager: PeerManager) -> Arc<Self> {
        Arc::new(Peering {
            admission: manager.admission().clone(),
            manager: Mutex::new(manager),
            slots: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            wake: Notify::new(),
            dial_failed: OnceLock::new(),
            scoring: Scoring::default(),
        })
    }

    /// Sets who hears of failed dials (PEX's book); once.
    pub(crate) fn on_dial_failed(&self, f: DialFailedFn) {
        let _ = self.dial_failed.set(f);
    }

    /// The IDs of the configured persistent peers and seeds.
    pub(crate) fn configured(&self) -> (Vec<NodeId>, Vec<NodeId>) {
        let m = lock(&self.manager);
        let ids = |list: &[PeerAddr]| list.iter().map(|a| a.id).collect();
        (ids(&m.config().persistent_peers), ids(&m.config().seeds))
    }

    /// Current admission counts.
    pub(crate) fn stats(&self) -> AdmissionStats {
        self.admission.stats()
    }

    /// The connected peers holding outbound places.
    pub(crate) fn outbound_places(&self) -> Vec<NodeId> {
        self.admission.outbound_places()
    }

    /// Refusals so far, by reason.
    pub(crate) fn refusals(&self) -> RefusalCounts {
        self.admission.refusals()
    }

    /// Starts the dialer thread.
    pub(crate) fn spawn_dialer(
        self: &Arc<Self>,
        router: Arc<Router>,
    ) -> std::io::Result<JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("ringwire-dialer".into())
            .spawn(move || me.run_dialer(&router))
    }

    /// Bans `id` until `until` (neither dialed nor admitted meanwhile); the bans file is
    /// rewritten soon after.
    pub(crate) fn ban(&self, id: NodeId, until: Instant) {
        lock(&self.manager).ban(id, until);
        self.scoring.bans_changed();
        self.notify();
    }

    /// Dials every configured seed now, once (those connected, being dialed or banned are
    /// left alone); returns the seeds dialed.
    pub(crate) fn dial_seeds(&self) -> Vec<NodeId> {
        let now = Instant::now();
        let dialed: Vec<NodeId> = {
            let mut m = lock(&self.manager);
            let seeds = m.config().seeds.clone();
            seeds
                .into_iter()
                .filter_map(|s| {
                    let id = s.id;
                    matches!(m.dial_once(s, now), Ok(true)).then_some(id)
                })
                .collect()
        };
        if !dialed.is_empty() {
            self.notify();
        }
        dialed
    }

    /// Tells the dialer thread to stop (its dials in flight are dropped; they fail anyway
    /// once the shards stop).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub(super) fn notify(&self) {
        self.wake.notify_one();
    }

    fn run_dialer(&self, router: &Router) {
        clock::block_on(self.dial_loop(router));
    }

    /// Starts the due dials (the manager caps how many run at once), then waits for a dial to
    /// end, a wake or the next due time, and again until stopped.
    async fn dial_loop(&self, router: &Router) {
        let mut running = FuturesUnordered::new();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let next = {
                let mut manager = lock(&self.manager);
                let now = Instant::now();
                while let Some(dial) = manager.poll_dial(now) {
                    running.push(self.dial(router, dial));
                }
                manager.poll_timeout()
            };
            self.maintain(router);
            let now = Instant::now();
            let until = next.map_or(now + IDLE_WAIT, |t| t.min(now + IDLE_WAIT));
            // A deadline already past still polls the dials once before the next round.
            let mut woken = std::pin::pin!(self.wake.notified());
            let event = std::future::poll_fn(|cx| {
                if woken.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                // A finished dial has already reported its outcome to the manager.
                if !running.is_empty() && running.poll_next_unpin(cx).is_ready() {
                    return Poll::Ready(());
                }
                Poll::Pending
            });
            let _ = clock::timeout_at(until, event).await;
        }
    }

    /// Runs one dial and reports a failure to the manager.
    async fn dial(&self, router: &Router, dial: Dial) {
        let id = dial.addr.id;
        let result = match resolve(&dial.addr) {
            Some(addr) => router
                .dial_with(
                    DialTarget::Tcp(addr),
                    Some(id),
                    dial.deadline,
                    Some(Box::new(dial.permit)),
                )
                .await
                .map(|_| ()),
            None => Err(DialError::Connect(format!("cannot resolve {}", dial.addr))),
        };
        if let Err(e) = result {
            tracing::debug!(peer = %id, error = %e, "dial failed");
            // The address failed, not this node's policy (a refusal) nor its shutdown.
            let wrong_peer = matches!(e, DialError::Handshake(ConnError::WrongPeer { .. }));
            let at_address = matches!(
                e,
                DialError::Connect(_) | DialError::Io(_) | DialError::Handshake(_)
            );
            // The address book learns of the failure (its attempt and backoff) before the
            // manager lets the target go: until then the target keeps a book round from
            // picking the address again with its backoff counted from the attempt before.
            if at_address && let Some(f) = self.dial_failed.get() {
                f(id, wrong_peer);
            }
            lock(&self.manager).on_dial_failed(&id, Instant::now());
        }
    }
}

/// PEX's [`Dialer`]: dials the address book's picks and the seeds through the peer manager.
pub(crate) struct BookDialer {
    pub(crate) peering: Arc<Peering>,
    pub(crate) router: Arc<Router>,
}

impl Dialer for BookDialer {
    fn begin_round(&self) -> Outbound {
        let mut m = lock(&self.peering.manager);
        m.cancel_queued_once();
        let stats = self.peering.admission.stats();
        Outbound {
            connected: stats.outbound,
            dialing: stats.dialing + m.queued_once(),
            target: m.config().limits.max_outbound,
        }
    }

    fn outbound_places(&self) -> Vec<NodeId> {
        self.peering.outbound_places()
    }

    fn dial(&self, addrs: &[PexAddr], want: usize) -> usize {
        if want == 0 || addrs.is_empty() {
            return 0;
        }
        // Stock dials no address at the IP of a connected peer unless allow_duplicate_ip.
        let busy: HashSet<IpAddr> = if self.peering.admission.allows_duplicate_ip() {
            HashSet::new()
        } else {
            self.router
                .registry()
                .peer_list()
                .iter()
                .filter_map(|p| p.addr.map(|a| a.ip()))
                .collect()
        };
        let now = Instant::now();
        let mut started = 0;
        {
            let mut m = lock(&self.peering.manager);
            for a in addrs {
                if started >= want {
                    break;
                }
                // An address banned as a repeat offender would be refused at admission anyway.
                if busy.contains(&a.ip) || self.peering.admission.is_ip_banned(a.ip, now) {
                    continue;
                }
                let addr = PeerAddr {
                    id: a.id,
                    host: Host::Ip(a.ip),
                    port: a.port,
                };
                match m.dial_once(addr, now) {
                    Ok(true) => started += 1,
                    Ok(false) | Err(AddPeerError::SelfAddress) => {}
                    Err(AddPeerError::TooManyTargets) => break,
                }
            }
        }
        if started > 0 {
            self.peering.notify();
        }
        started
    }

    fn dial_seed(&self, seeds: &[NodeId]) -> Option<NodeId> {
        let dialed = {
            let mut m = lock(&self.peering.manager);
            let config = &m.config().seeds;
            let order: Vec<usize> = seeds
                .iter()
                .filter_map(|id| config.iter().position(|s| s.id == *id))
                .collect();
            m.dial_seed(order, Instant::now())
        };
        if dialed.is_some() {
            self.peering.notify();
        }
        dialed
    }
}

/// The socket address to dial for `addr` (the first one a hostname resolves to).
fn resolve(addr: &PeerAddr) -> Option<SocketAddr> {
    match &addr.host {
        Host::Ip(ip) => Some(SocketAddr::new(*ip, addr.port)),
        Host::Name(name) => (name.as_str(), addr.port).to_socket_addrs().ok()?.next(),
    }
}

impl PeerGate for Peering {
    fn on_accept(&self, addr: SocketAddr) -> Result<Option<Pending>, String> {
        match self.admission.try_accept(addr.ip(), Instant::now()) {
            Ok(permit) => Ok(Some(Box::new(permit))),
            Err(refused) => Err(refused.to_string()),
        }
    }

    fn on_dial(&self, expected: Option<NodeId>) -> Result<Option<Pending>, String> {
        let Some(id) = expected else {
            return Ok(None);
        };
        match self.admission.try_dial(id, Instant::now()) {
            Ok(permit) => Ok(Some(Box::new(permit))),
            Err(refused) => Err(refused.to_string()),
        }
    }

    fn admit(
        &self,
        peer: &PeerInfo,
        direction: Direction,
        addr: Option<SocketAddr>,
        existing: Option<&PeerSummary>,
        pending: Option<Pending>,
    ) -> Verdict {
        let now = Instant::now();
        let id = peer.node_id;
        let ip = addr.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
        let permit = match pending.and_then(|p| p.downcast::<PendingPermit>().ok()) {
            Some(permit) => Ok(*permit),
            None => match direction {
                Direction::Inbound => self.admission.try_accept(ip, now),
                Direction::Outbound => self.admission.try_dial(id, now),
            },
        };
        let Promoted { slot, displaced } = match permit.and_then(|p| p.promote(id, ip, now)) {
            Ok(promoted) => promoted,
            Err(refused) => return Verdict::Reject(refused.to_string()),
        };
        let verdict = match (existing.is_some(), displaced.is_some()) {
            (true, true) => Verdict::ReplaceExisting,
            (false, _) => Verdict::Accept,
            // The router holds a connection the admission state does not know: keep it.
            (true, false) => {
                return Verdict::Reject("already connected to this peer".into());
            }
        };
        let conn = slot.conn_id();
        lock(&self.slots).insert(id, slot);
        lock(&self.manager).on_connected(id, conn, direction, now);
        if existing.is_none() {
            self.scoring.connected(&id);
        }
        verdict
    }

    fn on_down(&self, peer: NodeId, reason: &DownReason) {
        let Some(slot) = lock(&self.slots).remove(&peer) else {
            return;
        };
        let conn = slot.conn_id();
        let ip = self.admission.peer_ip(&peer);
        drop(slot);
        if let Some(offence) = super::scoring::offence(reason) {
            self.offend(peer, ip, offence, None);
        }
        let why = match reason {
            DownReason::Local(_) => DisconnectReason::Local,
            DownReason::Io(_) => DisconnectReason::Closed,
            DownReason::Protocol(ConnError::PeerClosed(_) | ConnError::PeerReset { .. }) => {
                DisconnectReason::Closed
            }
            DownReason::Protocol(e) => {
                let text = e.to_string();
                if text.contains("timed out") || text.contains("timeout") {
                    DisconnectReason::Timeout
                } else {
                    DisconnectReason::ProtocolError
                }
            }
        };
        lock(&self.manager).on_disconnected(&peer, conn, why, Instant::now());
        self.notify();
    }
}
