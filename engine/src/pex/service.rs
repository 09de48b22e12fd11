//! Runs [`Pex`] inside a node: one thread reads peer events and the PEX channel, feeds the
//! state machine and carries out its actions. It holds no [`crate::Node`] (so dropping the node
//! still stops it) and ends once the router stops or the channel closes.
//!
//! - A peer that breaks the PEX rules is banned through the node's ban hook ([`BanFn`], the
//!   peer manager's ban list, when the node runs one) for [`super::PexConfig::ban_duration`], then
//!   disconnected with the rule it broke as the reason.
//! - When the thread falls behind on peer events and some are lost, it resynchronises the
//!   state with the peers the registry lists, so the state of peers that went away is dropped
//!   and peers that came are known (the loss is counted in `NodeStats::events_lagged`).
//! - A message from a peer no longer registered is ignored: its `Down` event is already
//!   handled, and feeding it would leave state behind for a gone peer.
//! - The state's periodic work ([`Pex::tick`]: promotions, ended bans) runs once a second.
//! - With a [`super::PexConfig::book_file`], the book is written there every
//!   [`super::PexConfig::save_interval`] while it changed, and once more when the thread ends
//!   (the node stops), outside the state's lock; a write that fails is logged and tried again
//!   at the next interval.
//! - The state's counts ([`super::PexStats`]) are published in the node's stats.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast::{self, error::TryRecvError};

use crate::proto::secret::NodeId;
use crate::registry::Registry;
use crate::router::{
    Channel, Direction, Envelope, Origin, PeerEvent, PeerEvents, PeerSummary, Router,
};

use super::{Action, Pex, PexAddr, PexPeer};

/// How long one wait for a PEX message lasts before peer events and the stop flag are
/// checked again.
const POLL: Duration = Duration::from_millis(20);

/// How long an answer may wait for room in the peer's PEX queue before it is dropped.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// How often [`Pex::tick`] runs.
const TICK: Duration = Duration::from_secs(1);

/// Bans a peer until the given time (neither dialed nor admitted meanwhile). The node sets it
/// when it runs a peer manager; PEX does not know the node.
pub(crate) type BanFn = Box<dyn Fn(NodeId, Instant) + Send + Sync>;

/// The running service: its state (for [`crate::Node::pex_addresses`]) and its thread.
pub(crate) struct PexRuntime {
    pub(crate) state: Arc<Mutex<Pex>>,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
}

impl PexRuntime {
    /// Starts the service thread on an opened PEX channel; `ban` carries out bans (without
    /// it, a peer that breaks the rules is only disconnected).
    pub(crate) fn spawn(
        router: Arc<Router>,
        pex: Pex,
        channel: Channel,
        events: PeerEvents,
        ban: Option<BanFn>,
    ) -> std::io::Result<Self> {
        let book = BookWriter::new(&pex);
        let state = Arc::new(Mutex::new(pex));
        let state2 = state.clone();
        let thread = std::thread::Builder::new()
            .name("ringwire-pex".into())
            .spawn(move || {
                let mut book = book;
                run(&router, &state2, channel, events, ban.as_deref(), &mut book);
                // The node stops: the book is written once more, as stock does.
                if let Some(w) = &mut book {
                    w.write(&state2, true);
                }
            })?;
        Ok(PexRuntime {
            state,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Waits for the thread (after the router has stopped).
    pub(crate) fn join(&self) {
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

fn lock(state: &Mutex<Pex>) -> std::sync::MutexGuard<'_, Pex> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes the book to its file.
struct BookWriter {
    path: PathBuf,
    interval: Duration,
    next: Instant,
    /// [`Pex::book_changes`] when the file was last written (or read).
    written: u64,
}

impl BookWriter {
    /// The writer of `pex`'s book file, if it has one.
    fn new(pex: &Pex) -> Option<Self> {
        let config = pex.config();
        let path = config.book_file.clone()?;
        let interval = config.save_interval.max(Duration::from_millis(10));
        Some(BookWriter {
            path,
            interval,
            next: Instant::now() + interval,
            written: pex.book_changes(),
        })
    }

    /// Writes the book when its interval has passed and it changed, or when `now_anyway`.
    fn write(&mut self, state: &Mutex<Pex>, now_anyway: bool) {
        let now = Instant::now();
        if !now_anyway && now < self.next {
            return;
        }
        self.next = now + self.interval;
        let (file, changes) = {
            let p = lock(state);
            if !now_anyway && p.book_changes() == self.written {
                return;
            }
            (p.to_book_file(now, SystemTime::now()), p.book_changes())
        };
        match file.save(&self.path) {
            Ok(()) => {
                self.written = changes;
                tracing::debug!(path = %self.path.display(), addresses = file.len(), "pex: address book written");
            }
            Err(e) => tracing::warn!(error = %e, "pex: address book not written"),
        }
    }
}

fn run(
    router: &Router,
    state: &Mutex<Pex>,
    mut channel: Channel,
    mut events: PeerEvents,
    ban: Option<&(dyn Fn(NodeId, Instant) + Send + Sync)>,
    book: &mut Option<BookWriter>,
) {
    let sender = channel.sender();
    let registry = router.registry();
    let ban_duration = lock(state).config().ban_duration;
    let act = |action: Action| match action {
        Action::Send { peer, payload } => {
            if let Err(e) =
                sender.send_blocking(Envelope::peer(peer, payload), Instant::now() + SEND_WAIT)
            {
                tracing::debug!(%peer, error = %e, "pex message not sent");
            }
        }
        Action::Disconnect { peer, reason } => {
            let banned = match ban {
                Some(ban) if !ban_duration.is_zero() => {
                    ban(peer, Instant::now() + ban_duration);
                    true
                }
                _ => false,
            };
            tracing::info!(%peer, %reason, banned, "pex: disconnecting peer");
            router.disconnect(&peer, &reason.to_string());
        }
    };
    let drain = |events: &mut PeerEvents| {
        drain_events(
            &mut events.rx,
            state,
            || registry.peer_list(),
            &registry.stats.events_lagged,
        )
        .map(|actions| actions.into_iter().for_each(act))
    };
    let mut next_tick = Instant::now() + TICK;
    loop {
        if router.is_stopped() || drain(&mut events).is_none() {
            return;
        }
        let received = channel.recv_blocking(Instant::now() + POLL);
        // The events that came while this thread waited go first: a peer that came up before
        // the message arrived is known when it is handled (an address request must see it).
        if drain(&mut events).is_none() {
            return;
        }
        match received {
            Some(m) => {
                if let Origin::Peer(peer) = m.origin
                    && registry.peer(&peer).is_some()
                {
                    let action = lock(state).receive(peer, &m.payload, Instant::now());
                    action.into_iter().for_each(act);
                }
            }
            None => {
                if router.is_stopped() {
                    return;
                }
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TICK;
            lock(state).tick(now);
        }
        if let Some(w) = book.as_mut() {
            w.write(state, false);
        }
        publish(state, registry);
    }
}

/// A peer as PEX sees it, from what the registry says of it.
fn pex_peer(
    info: &crate::proto::conn::PeerInfo,
    direction: Direction,
    remote: Option<std::net::SocketAddr>,
) -> PexPeer {
    PexPeer {
        id: info.node_id,
        outbound: direction == Direction::Outbound,
        listen: PexAddr::from_listen_addr(info.node_id, &info.node_info.listen_addr),
        remote,
    }
}

/// Feeds the pending peer events to `state`. When some were lost (`lagged` counts them), it
/// then resynchronises the state with `connected()`, the peers registered now. Returns the
/// actions to carry out, or `None` once the events end (the node is gone).
fn drain_events(
    rx: &mut broadcast::Receiver<PeerEvent>,
    state: &Mutex<Pex>,
    connected: impl Fn() -> Vec<PeerSummary>,
    lagged: &AtomicU64,
) -> Option<Vec<Action>> {
    let mut actions = Vec::new();
    let mut lost = false;
    loop {
        match rx.try_recv() {
            Ok(PeerEvent::Up {
                peer,
                direction,
                addr,
            }) => {
                let p = pex_peer(&peer, direction, addr);
                actions.extend(lock(state).peer_up(p, Instant::now()));
            }
            Ok(PeerEvent::Down { node_id, .. }) => lock(state).peer_down(&node_id),
            Err(TryRecvError::Lagged(n)) => {
                lagged.fetch_add(n, Ordering::Relaxed);
                lost = true;
            }
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Closed) => return None,
        }
    }
    if lost {
        let peers = connected();
        tracing::debug!(
            peers = peers.len(),
            "pex: peer events lost, resynchronising"
        );
        let live = peers.iter().map(|p| pex_peer(&p.info, p.direction, p.addr));
        actions.extend(lock(state).sync(live, Instant::now()));
    }
    Some(actions)
}

/// Copies the state's counts into the node's stats (PEX is their only writer).
fn publish(state: &Mutex<Pex>, registry: &Registry) {
    let s = lock(state).stats();
    let stats = &registry.stats;
    stats
        .pex_addresses_rate_limited
        .store(s.addresses_rate_limited, Ordering::Relaxed);
    stats
        .pex_addresses_refused
        .store(s.addresses_refused, Ordering::Relaxed);
    stats
        .pex_addresses_evicted
        .store(s.addresses_evicted, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pex::PexConfig;
    use crate::proto::conn::{Mode, PeerInfo};
    use crate::proto::nodeinfo::NodeInfo;

    fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    fn info(n: u8) -> Arc<PeerInfo> {
        Arc::new(PeerInfo {
            node_id: id(n),
            node_info: NodeInfo {
                listen_addr: format!("tcp://1.2.3.{n}:26656"),
                ..NodeInfo::default()
            },
            mode: Mode::Compat,
            capabilities: Vec::new(),
        })
    }

    fn up(n: u8) -> PeerEvent {
        PeerEvent::Up {
            peer: info(n),
            direction: Direction::Outbound,
            addr: None,
        }
    }

    fn summary(n: u8) -> PeerSummary {
        PeerSummary {
            info: info(n),
            direction: Direction::Outbound,
            addr: None,
            shard: 0,
        }
    }

    #[test]
    fn lost_events_resynchronise_with_the_connected_peers() {
        let state = Mutex::new(Pex::new(
            id(0),
            PexConfig {
                addr_book_strict: false,
                ..PexConfig::default()
            },
            1,
        ));
        let (tx, mut rx) = broadcast::channel(2);
        let lagged = AtomicU64::new(0);
        // Peer 9 is known, then goes away; peers 1 to 4 come up. The queue holds two events,
        // so 9's Down and the Ups of 1 and 2 are lost.
        tx.send(up(9)).unwrap();
        assert!(drain_events(&mut rx, &state, Vec::new, &lagged).is_some());
        assert!(lock(&state).knows_peer(&id(9)));
        tx.send(PeerEvent::Down {
            node_id: id(9),
            reason: crate::registry::DownReason::Local("gone".into()),
        })
        .unwrap();
        for n in 1..=4 {
            tx.send(up(n)).unwrap();
        }
        let connected = || (1..=4).map(summary).collect::<Vec<_>>();
        let actions = drain_events(&mut rx, &state, connected, &lagged).unwrap();
        assert_eq!(lagged.load(Ordering::Relaxed), 3);
        let p = lock(&state);
        assert!(!p.knows_peer(&id(9)), "the gone peer's state is dropped");
        for n in 1..=4 {
            assert!(p.knows_peer(&id(n)), "peer {n} is known");
            assert!(p.is_requested(&id(n)), "outbound peer {n} was asked");
        }
        // One request each, the lost ones included, none twice.
        let mut asked: Vec<NodeId> = actions
            .iter()
            .map(|a| match a {
                Action::Send { peer, .. } => *peer,
                other => panic!("{other:?}"),
            })
            .collect();
        asked.sort();
        assert_eq!(asked, (1..=4).map(id).collect::<Vec<_>>());
        drop(p);
        // The end of the events ends the service.
        drop(tx);
        assert!(drain_events(&mut rx, &state, Vec::new, &lagged).is_none());
    }
}
