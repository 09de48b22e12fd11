//! The PEX protocol state: which peers were asked, when each peer last asked us, each peer's
//! address budget, and the address book. No I/O, no clock: `now` is an argument.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use bytes::Bytes;
use prost::Message as _;

use crate::proto::conn::{ChannelDescriptor, Compression};
use crate::proto::secret::NodeId;
use crate::proto::wire::{self, pex_message::Sum};

use super::book::{AddrBook, Inserted, Source};
use super::bucket::TokenBucket;
use super::routable::is_routable;
use super::{PexAddr, PexConfig, PexError};

/// The channel stock PEX runs on.
pub const PEX_CHANNEL: u8 = 0x00;

/// Stock's PEX channel: priority 1, send queue 10, receive cap 256 × 250 = 64,000 bytes.
pub fn channel_descriptor() -> ChannelDescriptor {
    ChannelDescriptor {
        id: PEX_CHANNEL,
        priority: 1,
        send_queue_capacity: 10,
        recv_message_capacity: 64_000,
        compression: Compression::Off,
    }
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `payload` to `peer` on [`PEX_CHANNEL`].
    Send {
        /// The recipient.
        peer: NodeId,
        /// A marshaled PEX `Message`.
        payload: Bytes,
    },
    /// Disconnect `peer` for `reason`, and ban it for [`PexConfig::ban_duration`]: it broke
    /// the PEX rules.
    Disconnect {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: PexError,
    },
}

/// Addresses PEX did not keep, by reason (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PexStats {
    /// Addresses a peer sent beyond its token bucket ([`PexConfig::address_rate`],
    /// [`PexConfig::address_burst`]); dropped unread.
    pub addresses_rate_limited: u64,
    /// Addresses refused by policy: this node's own, unusable (unspecified IP, port 0),
    /// non-routable under [`PexConfig::addr_book_strict`], a private node's from hearsay,
    /// hearsay about a node that announced its own address, or a book full of announced
    /// addresses.
    pub addresses_refused: u64,
    /// Hearsay addresses evicted from a full book to make room for a new one.
    pub addresses_evicted: u64,
}

/// When a peer last asked us.
#[derive(Clone, Copy, Debug)]
enum LastRequest {
    /// One request seen; the next one is free too (stock stores the zero time).
    First,
    /// The clock runs from this request.
    At(Instant),
}

/// What PEX keeps about one connected peer; dropped when it goes.
#[derive(Clone, Debug, Default)]
struct PeerState {
    /// A request to it awaits its answer.
    requested: bool,
    /// Its last request to us.
    last_request: Option<LastRequest>,
    /// Its address budget, started full at its first list.
    bucket: Option<TokenBucket>,
}

/// The PEX state machine for one node.
#[derive(Debug)]
pub struct Pex {
    config: PexConfig,
    local: NodeId,
    private: HashSet<NodeId>,
    book: AddrBook,
    peers: HashMap<NodeId, PeerState>,
    stats: PexStats,
}

/// Marshals a PEX `Message`.
fn encode(sum: Sum) -> Bytes {
    Bytes::from(wire::PexMessage { sum: Some(sum) }.encode_to_vec())
}

/// A marshaled `PexRequest`.
pub(crate) fn request_bytes() -> Bytes {
    encode(Sum::PexRequest(wire::PexRequest {}))
}

impl Pex {
    /// A fresh state for the node `local`; `seed` drives the book's random choices (which
    /// addresses an answer carries, which one a full book evicts): use a random value.
    pub fn new(local: NodeId, config: PexConfig, seed: u64) -> Self {
        Pex {
            private: config.private_peer_ids.iter().copied().collect(),
            book: AddrBook::new(config.max_addresses, seed),
            config,
            local,
            peers: HashMap::new(),
            stats: PexStats::default(),
        }
    }

    /// The settings this state runs with.
    pub fn config(&self) -> &PexConfig {
        &self.config
    }

    /// The learned addresses, ordered by node ID.
    pub fn addresses(&self) -> Vec<PexAddr> {
        self.book.addresses()
    }

    /// Addresses dropped, refused and evicted so far.
    pub fn stats(&self) -> PexStats {
        self.stats
    }

    /// Adds an address heard from elsewhere (as from a peer's list): refused when it is ours,
    /// unusable, non-routable under [`PexConfig::addr_book_strict`], a private node's, or
    /// about a node that announced its own address; a full book evicts a random hearsay
    /// address for it. Returns whether it is now known as given.
    pub fn learn(&mut self, addr: PexAddr) -> bool {
        if self.private.contains(&addr.id) {
            self.stats.addresses_refused += 1;
            return false;
        }
        self.insert(addr, Source::Hearsay)
    }

    /// Adds `addr` from `source` if it is usable; counts what was refused or evicted.
    fn insert(&mut self, addr: PexAddr, source: Source) -> bool {
        let usable = addr.id != self.local
            && !addr.ip.is_unspecified()
            && addr.port != 0
            && (!self.config.addr_book_strict || is_routable(addr.ip));
        if !usable {
            self.stats.addresses_refused += 1;
            return false;
        }
        match self.book.insert(addr, source) {
            Inserted::Added | Inserted::Updated => true,
            Inserted::Evicted => {
                self.stats.addresses_evicted += 1;
                true
            }
            Inserted::KeptAnnounced | Inserted::Full => {
                self.stats.addresses_refused += 1;
                false
            }
        }
    }

    /// A peer came up. `listen` is the address its NodeInfo advertises, learned as the
    /// address it announced (it replaces hearsay about it and is never overwritten by
    /// hearsay); an outbound peer is asked for addresses while the book has room. A peer
    /// already known (a connection that replaced another) keeps its state.
    pub fn peer_up(
        &mut self,
        peer: NodeId,
        outbound: bool,
        listen: Option<PexAddr>,
    ) -> Option<Action> {
        self.peers.entry(peer).or_default();
        if let Some(a) = listen {
            self.insert(a, Source::Announced);
        }
        if outbound && self.config.request_outbound && !self.book.is_full() {
            self.request(peer)
        } else {
            None
        }
    }

    /// A peer went away: forget its request state and budget (as stock's `RemovePeer`).
    pub fn peer_down(&mut self, peer: &NodeId) {
        self.peers.remove(peer);
    }

    /// Brings the per-peer state in line with the peers actually connected — `(peer,
    /// outbound, listen address)` each — after peer events were lost: the state of peers not
    /// listed is dropped, and a listed peer not known yet comes up as in
    /// [`Pex::peer_up`]. Returns the requests to send.
    pub fn sync(
        &mut self,
        connected: impl IntoIterator<Item = (NodeId, bool, Option<PexAddr>)>,
    ) -> Vec<Action> {
        let connected: Vec<_> = connected.into_iter().collect();
        let live: HashSet<NodeId> = connected.iter().map(|(id, ..)| *id).collect();
        self.peers.retain(|id, _| live.contains(id));
        let mut actions = Vec::new();
        for (id, outbound, listen) in connected {
            if !self.peers.contains_key(&id) {
                actions.extend(self.peer_up(id, outbound, listen));
            }
        }
        actions
    }

    /// Whether PEX holds state for `peer` (it is connected, as far as PEX knows).
    pub fn knows_peer(&self, peer: &NodeId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Asks `peer` for addresses unless a request to it is outstanding.
    pub fn request(&mut self, peer: NodeId) -> Option<Action> {
        let state = self.peers.entry(peer).or_default();
        if state.requested {
            return None;
        }
        state.requested = true;
        Some(Action::Send {
            peer,
            payload: request_bytes(),
        })
    }

    /// Whether a request to `peer` awaits its answer.
    pub fn is_requested(&self, peer: &NodeId) -> bool {
        self.peers.get(peer).is_some_and(|s| s.requested)
    }

    /// Handles one message from `peer` on the PEX channel. A message may come before its
    /// peer's [`Pex::peer_up`]; its state starts then.
    pub fn receive(&mut self, peer: NodeId, bytes: &[u8], now: Instant) -> Option<Action> {
        match self.handle(peer, bytes, now) {
            Ok(action) => action,
            Err(reason) => {
                self.peer_down(&peer);
                Some(Action::Disconnect { peer, reason })
            }
        }
    }

    fn handle(
        &mut self,
        peer: NodeId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<Action>, PexError> {
        let msg = wire::PexMessage::decode(bytes).map_err(|e| PexError::Decode(e.to_string()))?;
        match msg.sum {
            None => Err(PexError::Empty),
            Some(Sum::PexRequest(_)) => {
                self.check_request_rate(peer, now)?;
                let k = self
                    .config
                    .max_addrs_per_response
                    .min(self.config.max_addrs_per_message);
                let private = &self.private;
                let addrs: Vec<wire::NetAddress> = self
                    .book
                    .sample(k, |a| a.id != peer && !private.contains(&a.id))
                    .iter()
                    .map(PexAddr::to_wire)
                    .collect();
                Ok(Some(Action::Send {
                    peer,
                    payload: encode(Sum::PexAddrs(wire::PexAddrs { addrs })),
                }))
            }
            Some(Sum::PexAddrs(list)) => {
                let max = self.config.max_addrs_per_message;
                if list.addrs.len() > max {
                    return Err(PexError::TooManyAddresses {
                        count: list.addrs.len(),
                        max,
                    });
                }
                // Stock converts every address first (any bad one drops the peer), then
                // checks that it asked.
                let addrs = list
                    .addrs
                    .iter()
                    .map(PexAddr::from_wire)
                    .collect::<Result<Vec<_>, _>>()?;
                let state = self.peers.entry(peer).or_default();
                if !state.requested {
                    return Err(PexError::Unsolicited);
                }
                state.requested = false;
                let burst = self.config.address_burst;
                let taken = state
                    .bucket
                    .get_or_insert_with(|| TokenBucket::full(burst, now))
                    .take(addrs.len(), self.config.address_rate, burst, now);
                self.stats.addresses_rate_limited += (addrs.len() - taken) as u64;
                for a in addrs.into_iter().take(taken) {
                    self.learn(a);
                }
                Ok(None)
            }
        }
    }

    /// Stock's `receiveRequest`: first request free, second free and starts the clock, later
    /// ones at least `min_request_interval` apart.
    fn check_request_rate(&mut self, peer: NodeId, now: Instant) -> Result<(), PexError> {
        let min = self.config.min_request_interval;
        let state = self.peers.entry(peer).or_default();
        match state.last_request {
            None => state.last_request = Some(LastRequest::First),
            Some(LastRequest::First) => state.last_request = Some(LastRequest::At(now)),
            Some(LastRequest::At(last)) => {
                let since = now.saturating_duration_since(last);
                if since < min {
                    return Err(PexError::TooSoon { peer, since, min });
                }
                state.last_request = Some(LastRequest::At(now));
            }
        }
        Ok(())
    }
}
