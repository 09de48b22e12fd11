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
//! - A message from a peer no longer registered is fed to [`Pex::receive_late`], which takes
//!   only an answer to a request still outstanding (a stock seed closes right after its
//!   answer) and leaves no state behind for the gone peer.
//! - The state's periodic work ([`Pex::tick`]: promotions, ended bans) runs once a second.
//! - With a [`super::PexConfig::book_file`], the book is written there every
//!   [`super::PexConfig::save_interval`] while it changed, and once more when the thread ends
//!   (the node stops), outside the state's lock; a write that fails is logged and tried again
//!   at the next interval.
//! - The state's counts ([`super::PexStats`]) are published in the node's stats.
//! - With a [`Dialer`] (the node's peer manager), it dials from the book: a round every
//!   [`super::PexConfig::ensure_peers_period`] — the first at once for a node without peers,
//!   else after a random part of the period — and at once when a seed answers or a seed dial
//!   fails ([`Pex::ensure_peers`], or [`Pex::crawl`] in seed mode; see `discover`).
//! - A peer the state lets go ([`Action::Release`]) is disconnected once nothing waits for it
//!   on the PEX channel (an answer must leave first; the connection drops what is queued
//!   when it closes), [`RELEASE_LINGER`] at the earliest and [`RELEASE_WAIT`] at the latest.

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

use super::{Action, Outbound, PEX_CHANNEL, Pex, PexAddr, PexPeer};

/// How long one wait for a PEX message lasts before peer events and the stop flag are
/// checked again.
const POLL: Duration = Duration::from_millis(20);

/// How long an answer may wait for room in the peer's PEX queue before it is dropped.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// How often [`Pex::tick`] runs.
const TICK: Duration = Duration::from_secs(1);

/// How long a released peer stays connected at least, so that what its connection took is
/// written before it closes.
const RELEASE_LINGER: Duration = Duration::from_millis(100);

/// How long a released peer stays connected at most, waiting for its PEX queue to drain.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// What the service needs from the node's peer manager to dial from the book. The node
/// implements it; PEX does not know the peer manager.
pub(crate) trait Dialer: Send + Sync {
    /// Starts a round: gives up the previous round's dials that never started, and counts
    /// the outbound peers, the dials in progress or queued, and the outbound target.
    fn begin_round(&self) -> Outbound;
    /// The connected peers that hold the node's outbound places, as the peer manager counts
    /// them (a peer whose connection came in while this node was dialing it holds one).
    fn outbound_places(&self) -> Vec<NodeId>;
    /// Dials up to `want` of `addrs`, in order, once each through the peer manager, skipping
    /// those it cannot dial (connected, being dialed, banned, a target already, or at a
    /// connected peer's IP without `allow_duplicate_ip`). Returns how many it started.
    fn dial(&self, addrs: &[PexAddr], want: usize) -> usize;
    /// Dials the first of `seeds` it can, once; returns it.
    fn dial_seed(&self, seeds: &[NodeId]) -> Option<NodeId>;
}

/// Bans a peer until the given time (neither dialed nor admitted meanwhile). The node sets it
/// when it runs a peer manager; PEX does not know the node.
pub(crate) type BanFn = Box<dyn Fn(NodeId, Instant) + Send + Sync>;

/// The running service: its state (for [`crate::Node::pex_addresses`]) and its thread.
pub(crate) struct PexRuntime {
    pub(crate) state: Arc<Mutex<Pex>>,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
}

impl PexRuntime {
    /// Starts the service thread on an opened PEX channel with `state`, which the caller may
    /// share (the node reports dial outcomes to it); `ban` carries out bans (without it, a
    /// peer that breaks the rules is only disconnected); `dialer` dials from the book
    /// (without it, the node does not).
    pub(crate) fn spawn(
        router: Arc<Router>,
        state: Arc<Mutex<Pex>>,
        channel: Channel,
        events: PeerEvents,
        ban: Option<BanFn>,
        dialer: Option<Box<dyn Dialer>>,
    ) -> std::io::Result<Self> {
        let book = BookWriter::new(&lock(&state));
        let state2 = state.clone();
        let thread = std::thread::Builder::new()
            .name("ringwire-pex".into())
            .spawn(move || {
                let mut book = book;
                let parts = Parts {
                    ban: ban.as_deref(),
                    dialer: dialer.as_deref(),
                };
                run(&router, &state2, channel, events, &parts, &mut book);
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

/// The node's hooks the service uses.
struct Parts<'a> {
    ban: Option<&'a (dyn Fn(NodeId, Instant) + Send + Sync)>,
    dialer: Option<&'a dyn Dialer>,
}

/// Peers to disconnect once their PEX queue has drained: (peer, reason, since).
type Releases = std::cell::RefCell<Vec<(NodeId, &'static str, Instant)>>;

/// Disconnects the released peers whose PEX queue is empty (after [`RELEASE_LINGER`]) or who
/// waited [`RELEASE_WAIT`]; forgets those gone.
fn release_due(router: &Router, releases: &Releases, now: Instant) {
    let registry = router.registry();
    releases.borrow_mut().retain(|(peer, reason, since)| {
        let Some(entry) = registry.peer(peer) else {
            return false;
        };
        let waited = now.saturating_duration_since(*since);
        let drained = entry
            .traffic()
            .channels
            .iter()
            .filter(|c| c.channel == PEX_CHANNEL)
            .all(|c| c.queued_messages == 0);
        if waited >= RELEASE_WAIT || (waited >= RELEASE_LINGER && drained) {
            tracing::debug!(%peer, reason, "pex: letting peer go");
            router.disconnect(peer, reason);
            return false;
        }
        true
    });
}

/// One round of dialing from the book (see `discover`).
fn dial_round(state: &Mutex<Pex>, dialer: &dyn Dialer, act: &dyn Fn(Action), now: Instant) {
    let out = dialer.begin_round();
    let places = dialer.outbound_places();
    let plan = {
        let mut p = lock(state);
        p.set_outbound_places(places);
        if p.config().seed_mode {
            p.crawl(now)
        } else {
            p.ensure_peers(out, now)
        }
    };
    let started = dialer.dial(&plan.candidates, plan.want);
    tracing::debug!(
        outbound = out.connected,
        dialing = out.dialing,
        target = out.target,
        candidates = plan.candidates.len(),
        started,
        "pex: dial round"
    );
    plan.requests.into_iter().for_each(act);
    if started == 0
        && !plan.seeds.is_empty()
        && let Some(seed) = dialer.dial_seed(&plan.seeds)
    {
        tracing::info!(%seed, "pex: dialing a seed for addresses");
        lock(state).seed_dialed(seed, now);
    }
}

fn run(
    router: &Router,
    state: &Mutex<Pex>,
    mut channel: Channel,
    mut events: PeerEvents,
    parts: &Parts<'_>,
    book: &mut Option<BookWriter>,
) {
    let sender = channel.sender();
    let registry = router.registry();
    let ban = parts.ban;
    let ban_duration = lock(state).config().ban_duration;
    let releases: Releases = std::cell::RefCell::new(Vec::new());
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
        Action::Release { peer, reason } => {
            releases.borrow_mut().push((peer, reason, Instant::now()));
        }
    };
    // The actions the state produced besides its calls' results.
    let follow_up = || loop {
        let next = lock(state).poll_action();
        match next {
            Some(a) => act(a),
            None => break,
        }
    };
    let period = lock(state)
        .config()
        .ensure_peers_period
        .max(Duration::from_millis(10));
    let first = lock(state).first_round_delay(!registry.peer_list().is_empty());
    let mut next_round = Instant::now() + first;
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
                if let Origin::Peer(peer) = m.origin {
                    let now = Instant::now();
                    let action = if registry.peer(&peer).is_some() {
                        lock(state).receive(peer, &m.payload, now)
                    } else {
                        lock(state).receive_late(peer, &m.payload, now)
                    };
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
        if let Some(dialer) = parts.dialer {
            let woken = lock(state).take_wake();
            if woken || now >= next_round {
                if now >= next_round {
                    next_round = now + period;
                }
                dial_round(state, dialer, &act, now);
            }
        }
        follow_up();
        release_due(router, &releases, now);
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
        native: info.mode == crate::proto::conn::Mode::Native,
        capabilities: info.capabilities.clone(),
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
            Ok(PeerEvent::Down { node_id, .. }) => {
                lock(state).peer_down_at(&node_id, Some(Instant::now()))
            }
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
    stats
        .pex_capability_replacements
        .store(s.capability_replacements, Ordering::Relaxed);
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
            connected_at: Instant::now(),
            rtt: None,
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
