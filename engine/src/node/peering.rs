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

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Notify;

use crate::peers::{
    Admission, AdmissionStats, Dial, DisconnectReason, Host, PeerAddr, PeerManager, PeerSlot,
    PendingPermit, Promoted, RefusalCounts,
};
use crate::proto::conn::{ConnError, PeerInfo};
use crate::proto::secret::NodeId;
use crate::registry::{DialError, Direction, DownReason, PeerGate, PeerSummary, Pending, Verdict};
use crate::router::Router;
use crate::rt::clock;
use crate::shard::DialTarget;

/// Longest the dialer sleeps without a reason to wake (it re-checks limits and bans).
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// The peer manager's state shared by the gate and the dialer thread.
pub(crate) struct Peering {
    manager: Mutex<PeerManager>,
    admission: Admission,
    slots: Mutex<HashMap<NodeId, PeerSlot>>,
    stop: AtomicBool,
    /// Wakes the dialer (a peer went down, a ban, stop); remembers one wake while it works.
    wake: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
        })
    }

    /// Current admission counts.
    pub(crate) fn stats(&self) -> AdmissionStats {
        self.admission.stats()
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

    /// Bans `id` until `until` (neither dialed nor admitted meanwhile).
    pub(crate) fn ban(&self, id: NodeId, until: Instant) {
        lock(&self.manager).ban(id, until);
        self.notify();
    }

    /// Tells the dialer thread to stop (its dials in flight are dropped; they fail anyway
    /// once the shards stop).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn notify(&self) {
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
            lock(&self.manager).on_dial_failed(&id, Instant::now());
        }
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
        verdict
    }

    fn on_down(&self, peer: NodeId, reason: &DownReason) {
        let Some(slot) = lock(&self.slots).remove(&peer) else {
            return;
        };
        let conn = slot.conn_id();
        drop(slot);
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
