//! Bans: the admission gate of nodes started through the C ABI. A banned peer is refused on
//! every new connection, inbound or outbound, until its ban ends; otherwise the gate behaves as
//! the engine's default (one connection per peer).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use ringwire::proto::conn::PeerInfo;
use ringwire::proto::secret::NodeId;
use ringwire::router::{DefaultGate, Direction, PeerGate, PeerSummary, Pending, Verdict};

/// Most bans remembered at once; beyond it, ended bans are dropped first, then the one that
/// ends soonest.
const MAX_BANS: usize = 4096;

/// The admission gate with a ban list.
#[derive(Default)]
pub(crate) struct BanGate {
    bans: Mutex<BTreeMap<NodeId, Instant>>,
}

impl BanGate {
    /// Bans `peer` until `until` (extending, never shortening, an existing ban).
    pub(crate) fn ban(&self, peer: NodeId, until: Instant) {
        let mut bans = self.bans.lock().unwrap_or_else(|e| e.into_inner());
        if bans.len() >= MAX_BANS && !bans.contains_key(&peer) {
            let now = Instant::now();
            bans.retain(|_, end| *end > now);
            if bans.len() >= MAX_BANS {
                let soonest = bans.iter().min_by_key(|(_, end)| **end).map(|(id, _)| *id);
                if let Some(id) = soonest {
                    bans.remove(&id);
                }
            }
        }
        let end = bans.entry(peer).or_insert(until);
        *end = (*end).max(until);
    }

    fn banned(&self, peer: &NodeId) -> bool {
        let mut bans = self.bans.lock().unwrap_or_else(|e| e.into_inner());
        match bans.get(peer) {
            Some(end) if *end > Instant::now() => true,
            Some(_) => {
                bans.remove(peer);
                false
            }
            None => false,
        }
    }
}

impl PeerGate for BanGate {
    fn admit(
        &self,
        peer: &PeerInfo,
        direction: Direction,
        addr: Option<SocketAddr>,
        existing: Option<&PeerSummary>,
        pending: Option<Pending>,
    ) -> Verdict {
        if self.banned(&peer.node_id) {
            return Verdict::Reject("peer is banned".into());
        }
        DefaultGate.admit(peer, direction, addr, existing, pending)
    }
}
