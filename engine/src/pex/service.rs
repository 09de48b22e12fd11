//! Runs [`Pex`] inside a node: one thread reads peer events and the PEX channel, feeds the
//! state machine and carries out its actions. It holds no [`crate::Node`] (so dropping the node
//! still stops it) and ends once the router stops or the channel closes.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::TryRecvError;

use crate::router::{Channel, Direction, Envelope, Origin, PeerEvent, PeerEvents, Router};

use super::{Action, Pex, PexAddr};

/// How long one wait for a PEX message lasts before peer events and the stop flag are
/// checked again.
const POLL: Duration = Duration::from_millis(20);

/// How long an answer may wait for room in the peer's PEX queue before it is dropped.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// The running service: its state (for [`crate::Node::pex_addresses`]) and its thread.
pub(crate) struct PexRuntime {
    pub(crate) state: Arc<Mutex<Pex>>,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
}

impl PexRuntime {
    /// Starts the service thread on an opened PEX channel.
    pub(crate) fn spawn(
        router: Arc<Router>,
        pex: Pex,
        channel: Channel,
        events: PeerEvents,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(pex));
        let state2 = state.clone();
        let thread = std::thread::Builder::new()
            .name("ringwire-pex".into())
            .spawn(move || run(&router, &state2, channel, events))?;
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

fn run(router: &Router, state: &Mutex<Pex>, mut channel: Channel, mut events: PeerEvents) {
    let sender = channel.sender();
    let act = |action: Option<Action>| match action {
        Some(Action::Send { peer, payload }) => {
            if let Err(e) =
                sender.send_blocking(Envelope::peer(peer, payload), Instant::now() + SEND_WAIT)
            {
                tracing::debug!(%peer, error = %e, "pex message not sent");
            }
        }
        Some(Action::Disconnect { peer, reason }) => {
            tracing::info!(%peer, %reason, "pex: disconnecting peer");
            router.disconnect(&peer, &reason.to_string());
        }
        None => {}
    };
    loop {
        if router.is_stopped() {
            return;
        }
        loop {
            match events.rx.try_recv() {
                Ok(PeerEvent::Up {
                    peer, direction, ..
                }) => {
                    let listen =
                        PexAddr::from_listen_addr(peer.node_id, &peer.node_info.listen_addr);
                    let outbound = direction == Direction::Outbound;
                    let action = lock(state).peer_up(peer.node_id, outbound, listen);
                    act(action);
                }
                Ok(PeerEvent::Down { node_id, .. }) => lock(state).peer_down(&node_id),
                Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        match channel.recv_blocking(Instant::now() + POLL) {
            Some(m) => {
                if let Origin::Peer(peer) = m.origin {
                    let action = lock(state).receive(peer, &m.payload, Instant::now());
                    act(action);
                }
            }
            None => {
                if router.is_stopped() {
                    return;
                }
            }
        }
    }
}
