//! The peer manager wired into a running node: an admission gate and a dialer thread.
//!
//! [`Peering`] is the node's [`PeerGate`] when a peer manager is configured:
//!
//! - **At accept** (before the connection allocates anything) it takes a
//!   [`PendingPermit`] from [`Admission::try_accept`]: the global and per-address caps on
//!   handshakes in progress and the per-address connection cap refuse the socket there.
//! - **Before a dial** it takes an outbound permit from [`Admission::try_dial`].
//! - **After the handshake** it promotes the connection's permit: limits, bans and the
//!   simultaneous-dial [tie-break](crate::peers::resolve) decide, and a replacement is reported
//!   as [`Verdict::ReplaceExisting`] so the other one is closed.
//!   The peer's [`PeerSlot`] is held until its connection goes down.
//!
//! The dialer thread asks [`PeerManager::poll_dial`] for due dials, runs them through the
//! router's dial path, reports failures with [`PeerManager::on_dial_failed`], and sleeps until
//! [`PeerManager::poll_timeout`] or until a peer goes down. Connections and disconnections
//! reach the manager from the gate ([`PeerManager::on_connected`],
//! [`PeerManager::on_disconnected`]), with the connection identity the tie-break needs.
//!
//! The dials due at one moment run together; the thread polls again once they have all
//! finished (each is bounded by the dial and handshake timeouts).
//!
//! Connections without a permit (in-memory pipes, which skip `accept`) take one at admission,
//! counted under 127.0.0.1.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::peers::{
    Admission, AdmissionStats, DisconnectReason, Host, PeerAddr, PeerManager, PeerSlot,
    PendingPermit, Promoted,
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
    stop: Mutex<bool>,
    wake: Condvar,
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
            stop: Mutex::new(false),
            wake: Condvar::new(),
        })
    }

    /// Current admission counts.
    pub(crate) fn stats(&self) -> AdmissionStats {
        self.admission.stats()
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

    /// Tells the dialer thread to stop (its dial in flight fails once the shards stop).
    pub(crate) fn stop(&self) {
        *lock(&self.stop) = true;
        self.wake.notify_all();
    }

    fn notify(&self) {
        let _guard = lock(&self.stop);
        self.wake.notify_all();
    }

    fn run_dialer(&self, router: &Router) {
        loop {
            if *lock(&self.stop) {
                return;
            }
            let dials = {
                let mut manager = lock(&self.manager);
                let now = Instant::now();
                std::iter::from_fn(|| manager.poll_dial(now)).collect::<Vec<_>>()
            };
            let runs = dials.into_iter().map(|dial| async move {
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
            });
            clock::block_on(futures_util::future::join_all(runs));
            let next = lock(&self.manager).poll_timeout();
            let now = Instant::now();
            let wait = next
                .map_or(IDLE_WAIT, |t| t.saturating_duration_since(now))
                .min(IDLE_WAIT);
            let stop = lock(&self.stop);
            if *stop {
                return;
            }
            if !wait.is_zero() {
                let _ = self.wake.wait_timeout(stop, wait);
            }
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
        match self.admission.try_accept(addr.ip()) {
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
                Direction::Inbound => self.admission.try_accept(ip),
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
