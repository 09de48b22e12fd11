//! Peer scores wired into the running node: what each way a connection ends costs
//! ([`offence`]), bans by score through the peer manager, the periodic credit for useful and
//! long-lived connections, and the bans file that makes bans outlive a restart.
//!
//! - Offences come from two places: a connection that goes down for the peer's fault (a
//!   protocol violation, a control flood, its partial-message budget, a keepalive timeout; see
//!   [`offence`]) and PEX, whose rule breakers are reported as [`Offence::PexAbuse`] and banned
//!   for PEX's `ban_duration`. A ban by score closes nothing itself (the connection is already
//!   down or being closed by PEX); a ban of an address closes every peer connected from it, on
//!   the dialer thread, as the gate's callbacks run under the registry's lock.
//! - Every [`CREDIT_PERIOD`] the dialer thread credits each connected peer with its payload
//!   received and its time connected ([`Scores::credit`]).
//! - Every ban (by score, by PEX, by the operator) marks the bans as changed; the dialer thread
//!   then writes the bans in force to the bans file ([`BANS_FILE_NAME`] beside the address
//!   book) atomically, and the node writes it once more when it stops. At start the node reads
//!   it back; bans that ended meanwhile are dropped.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::peers::{BANS_FILE_NAME, Bans, Now, Offence, ScoreCounts, Scores};
use crate::proto::budget::Exceeded;
use crate::proto::conn::ConnError;
use crate::proto::secret::NodeId;
use crate::registry::DownReason;
use crate::router::Router;
use crate::rt::fs;

use super::StartError;
use super::peering::{Peering, lock};

/// How often connected peers are credited for their traffic and uptime.
pub(crate) const CREDIT_PERIOD: Duration = Duration::from_secs(10);

/// The scoring state a [`Peering`] holds.
#[derive(Default)]
pub(crate) struct Scoring {
    scores: Mutex<Scores>,
    /// Peers to close because their address was banned.
    to_close: Mutex<Vec<NodeId>>,
    /// Where the bans are kept, when the node keeps an address book file.
    file: OnceLock<PathBuf>,
    dirty: AtomicBool,
    next_credit: Mutex<Option<Instant>>,
}

impl Scoring {
    /// Marks the bans as changed: the file is rewritten at the next chance.
    pub(crate) fn bans_changed(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// A new connection of `id` starts.
    pub(crate) fn connected(&self, id: &NodeId) {
        lock(&self.scores).connected(id);
    }
}

/// The bans file for the address book file `book`.
pub(crate) fn bans_file_for(book: &Path) -> PathBuf {
    book.with_file_name(BANS_FILE_NAME)
}

/// What a peer's connection going down for `reason` costs it, if anything. A clean close, a
/// close by this node and a node-wide budget (no single peer's fault) cost nothing.
pub(crate) fn offence(reason: &DownReason) -> Option<Offence> {
    let DownReason::Protocol(e) = reason else {
        return None;
    };
    match e.exceeded_budget() {
        Some(Exceeded::ControlFrames) => return Some(Offence::ControlFlood),
        Some(Exceeded::PeerPartialBytes) => return Some(Offence::BudgetExceeded),
        Some(Exceeded::NodePartialBytes) => return None,
        None => {}
    }
    match e {
        ConnError::PeerClosed(_)
        | ConnError::PeerReset { .. }
        | ConnError::LocalClose(_)
        | ConnError::Config(_) => None,
        ConnError::HandshakeTimeout | ConnError::HelloTimeout => Some(Offence::Timeout),
        other => {
            let text = other.to_string();
            if text.contains("timed out") || text.contains("timeout") {
                Some(Offence::Timeout)
            } else {
                Some(Offence::ProtocolViolation)
            }
        }
    }
}

impl Peering {
    /// `id` (connected from `ip`, if known) committed `offence`. When its score reaches the
    /// ban threshold it is banned (until `until` when given, else for the score's ban time)
    /// and, if its address is a repeat offender, the address too. Returns whether it was
    /// banned.
    pub(crate) fn offend(
        &self,
        id: NodeId,
        ip: Option<IpAddr>,
        offence: Offence,
        until: Option<Instant>,
    ) -> bool {
        let now = Instant::now();
        let Some(ban) = lock(&self.scoring.scores).offend(id, ip, offence, now) else {
            tracing::debug!(peer = %id, offence = offence.as_str(), "peer misbehaved");
            return false;
        };
        let until = until.unwrap_or(ban.until);
        lock(&self.manager).ban(id, until);
        tracing::info!(peer = %id, offence = offence.as_str(), "peer banned by score");
        if let Some(ip) = ban.ip {
            let victims = self.admission.ban_ip(ip, ban.until);
            tracing::info!(%ip, peers = victims.len(), "address banned: repeat offender");
            lock(&self.scoring.to_close).extend(victims.into_iter().map(|(id, _)| id));
        }
        self.scoring.bans_changed();
        self.notify();
        true
    }

    /// `id`'s score now (0 for a peer not seen).
    pub(crate) fn score(&self, id: &NodeId) -> i64 {
        lock(&self.scoring.scores).score(id, Instant::now())
    }

    /// Offences and bans by score so far, by reason.
    pub(crate) fn score_counts(&self) -> ScoreCounts {
        lock(&self.scoring.scores).counts()
    }

    /// The bans in force.
    pub(crate) fn bans(&self) -> Bans {
        self.admission.active_bans(Instant::now())
    }

    /// Reads the bans file `path` (when there is one) and applies the bans still in force;
    /// from now on the bans are kept there.
    pub(crate) fn load_bans(&self, path: PathBuf) -> Result<(), StartError> {
        fs::remove_stale_temps(&path);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let now = Now {
                    instant: Instant::now(),
                    wall: SystemTime::now(),
                };
                let (bans, left_out) = Bans::from_json(&bytes, now).map_err(|e| {
                    StartError::Config(format!("bans file {}: {e}", path.display()))
                })?;
                {
                    let mut m = lock(&self.manager);
                    for (id, until) in &bans.ids {
                        m.ban(*id, *until);
                    }
                }
                for (ip, until) in &bans.ips {
                    self.admission.ban_ip(*ip, *until);
                }
                tracing::info!(
                    ids = bans.ids.len(),
                    addresses = bans.ips.len(),
                    ended_or_invalid = left_out,
                    "bans read"
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StartError::Config(format!(
                    "bans file {}: {e}",
                    path.display()
                )));
            }
        }
        let _ = self.scoring.file.set(path);
        Ok(())
    }

    /// Writes the bans file if the bans changed since it was last written.
    pub(crate) fn save_bans(&self) {
        let Some(path) = self.scoring.file.get() else {
            return;
        };
        if !self.scoring.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let now = Now {
            instant: Instant::now(),
            wall: SystemTime::now(),
        };
        let bytes = self.bans().to_json(now);
        if let Err(e) = fs::write_atomic(path, &bytes, 0o600, true) {
            self.scoring.bans_changed();
            tracing::warn!(path = %path.display(), error = %e, "bans not written");
        }
    }

    /// The dialer thread's periodic work: closes the peers of banned addresses, credits the
    /// connected peers and writes the bans file when it changed.
    pub(crate) fn maintain(&self, router: &Router) {
        let close = std::mem::take(&mut *lock(&self.scoring.to_close));
        for id in close {
            router.disconnect(&id, "address banned");
        }
        let now = Instant::now();
        let due = {
            let mut next = lock(&self.scoring.next_credit);
            let due = next.is_none_or(|t| now >= t);
            if due {
                *next = Some(now + CREDIT_PERIOD);
            }
            due
        };
        if due {
            let registry = router.registry();
            let traffic = registry.peer_traffic();
            let peers = registry.peer_list();
            let mut scores = lock(&self.scoring.scores);
            for p in peers {
                let id = p.info.node_id;
                let received = traffic
                    .iter()
                    .find(|t| t.node_id == id)
                    .map_or(0, |t| t.channels.iter().map(|c| c.received_bytes).sum());
                let connected = now.saturating_duration_since(p.connected_at);
                scores.credit(id, received, connected, now);
            }
        }
        self.save_bans();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mconn::MConnError;

    #[test]
    fn down_reasons_map_to_offences() {
        let proto = |e| DownReason::Protocol(e);
        assert_eq!(offence(&DownReason::Io("reset".into())), None);
        assert_eq!(offence(&DownReason::Local("banned".into())), None);
        assert_eq!(offence(&proto(ConnError::PeerClosed("eof".into()))), None);
        assert_eq!(
            offence(&proto(ConnError::MConn(MConnError::PongTimeout))),
            Some(Offence::Timeout)
        );
        assert_eq!(
            offence(&proto(ConnError::MConn(MConnError::ControlFlood {
                limit: 10
            }))),
            Some(Offence::ControlFlood)
        );
        assert_eq!(
            offence(&proto(ConnError::TrailingNodeInfoBytes)),
            Some(Offence::ProtocolViolation)
        );
    }
}
