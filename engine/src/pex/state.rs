//! The PEX protocol state: which peers were asked, when each peer last asked us, and the
//! bounded set of learned addresses. No I/O, no clock: `now` is an argument.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;

use crate::proto::conn::{ChannelDescriptor, Compression};
use crate::proto::secret::NodeId;
use crate::proto::wire::{self, pex_message::Sum};

use super::{PexAddr, PexError};

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

/// PEX settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PexConfig {
    /// Shortest time between two requests of one peer (after its two free ones). Stock:
    /// `ensurePeersPeriod / 3` = 10 s.
    pub min_request_interval: Duration,
    /// Most learned addresses kept; new ones are ignored beyond it.
    pub max_addresses: usize,
    /// Most addresses in one answer (stock: 250).
    pub max_addrs_per_response: usize,
    /// Ask every new outbound peer for addresses (stock does while its book needs more).
    pub request_outbound: bool,
}

impl Default for PexConfig {
    fn default() -> Self {
        PexConfig {
            min_request_interval: Duration::from_secs(10),
            max_addresses: 1000,
            max_addrs_per_response: 250,
            request_outbound: true,
        }
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
    /// Disconnect `peer` for `reason`.
    Disconnect {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: PexError,
    },
}

/// When a peer last asked us.
#[derive(Clone, Copy, Debug)]
enum LastRequest {
    /// One request seen; the next one is free too (stock stores the zero time).
    First,
    /// The clock runs from this request.
    At(Instant),
}

/// The PEX state machine for one node.
#[derive(Debug)]
pub struct Pex {
    config: PexConfig,
    local: NodeId,
    book: BTreeMap<NodeId, PexAddr>,
    requested: HashSet<NodeId>,
    last_request: HashMap<NodeId, LastRequest>,
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
    /// A fresh state for the node `local`.
    pub fn new(local: NodeId, config: PexConfig) -> Self {
        Pex {
            config,
            local,
            book: BTreeMap::new(),
            requested: HashSet::new(),
            last_request: HashMap::new(),
        }
    }

    /// The learned addresses, ordered by node ID.
    pub fn addresses(&self) -> Vec<PexAddr> {
        self.book.values().copied().collect()
    }

    /// Adds an address unless it is ours or the set is full; returns whether it is now known.
    pub fn learn(&mut self, addr: PexAddr) -> bool {
        if addr.id == self.local || addr.ip.is_unspecified() || addr.port == 0 {
            return false;
        }
        if !self.book.contains_key(&addr.id) && self.book.len() >= self.config.max_addresses {
            return false;
        }
        self.book.insert(addr.id, addr);
        true
    }

    /// A peer came up. `listen` is the address its NodeInfo advertises (learned for inbound
    /// peers, as stock does); an outbound peer is asked for addresses.
    pub fn peer_up(
        &mut self,
        peer: NodeId,
        outbound: bool,
        listen: Option<PexAddr>,
    ) -> Option<Action> {
        if let Some(a) = listen {
            self.learn(a);
        }
        let needs_more = self.book.len() < self.config.max_addresses;
        if outbound && self.config.request_outbound && needs_more {
            self.request(peer)
        } else {
            None
        }
    }

    /// A peer went away: forget its request state (as stock's `RemovePeer`).
    pub fn peer_down(&mut self, peer: &NodeId) {
        self.requested.remove(peer);
        self.last_request.remove(peer);
    }

    /// Asks `peer` for addresses unless a request to it is outstanding.
    pub fn request(&mut self, peer: NodeId) -> Option<Action> {
        if !self.requested.insert(peer) {
            return None;
        }
        Some(Action::Send {
            peer,
            payload: request_bytes(),
        })
    }

    /// Whether a request to `peer` awaits its answer.
    pub fn is_requested(&self, peer: &NodeId) -> bool {
        self.requested.contains(peer)
    }

    /// Handles one message from `peer` on the PEX channel.
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
                let addrs: Vec<wire::NetAddress> = self
                    .book
                    .values()
                    .filter(|a| a.id != peer)
                    .take(self.config.max_addrs_per_response)
                    .map(PexAddr::to_wire)
                    .collect();
                Ok(Some(Action::Send {
                    peer,
                    payload: encode(Sum::PexAddrs(wire::PexAddrs { addrs })),
                }))
            }
            Some(Sum::PexAddrs(list)) => {
                // Stock converts every address first (any bad one drops the peer), then
                // checks that it asked.
                let addrs = list
                    .addrs
                    .iter()
                    .map(PexAddr::from_wire)
                    .collect::<Result<Vec<_>, _>>()?;
                if !self.requested.remove(&peer) {
                    return Err(PexError::Unsolicited);
                }
                for a in addrs {
                    self.learn(a);
                }
                Ok(None)
            }
        }
    }

    /// Stock's `receiveRequest`: first request free, second free and starts the clock, later
    /// ones at least `min_request_interval` apart.
    fn check_request_rate(&mut self, peer: NodeId, now: Instant) -> Result<(), PexError> {
        match self.last_request.get(&peer).copied() {
            None => {
                self.last_request.insert(peer, LastRequest::First);
                Ok(())
            }
            Some(LastRequest::First) => {
                self.last_request.insert(peer, LastRequest::At(now));
                Ok(())
            }
            Some(LastRequest::At(last)) => {
                let since = now.saturating_duration_since(last);
                if since < self.config.min_request_interval {
                    return Err(PexError::TooSoon {
                        peer,
                        since,
                        min: self.config.min_request_interval,
                    });
                }
                self.last_request.insert(peer, LastRequest::At(now));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    fn addr(n: u8) -> PexAddr {
        PexAddr {
            id: id(n),
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
            port: 26656,
        }
    }

    fn addrs_bytes(list: &[PexAddr]) -> Vec<u8> {
        encode(Sum::PexAddrs(wire::PexAddrs {
            addrs: list.iter().map(PexAddr::to_wire).collect(),
        }))
        .to_vec()
    }

    fn decode_addrs(action: Option<Action>) -> Vec<PexAddr> {
        let Some(Action::Send { payload, .. }) = action else {
            panic!("expected a send, got {action:?}");
        };
        match wire::PexMessage::decode(payload).unwrap().sum {
            Some(Sum::PexAddrs(l)) => l
                .addrs
                .iter()
                .map(|a| PexAddr::from_wire(a).unwrap())
                .collect(),
            other => panic!("not an address list: {other:?}"),
        }
    }

    #[test]
    fn request_bytes_are_stock() {
        // Message{pex_request: {}}: field 1, length 0.
        assert_eq!(&request_bytes()[..], &[0x0a, 0x00]);
    }

    #[test]
    fn outbound_peer_is_asked_once_inbound_is_learned() {
        let mut p = Pex::new(id(0), PexConfig::default());
        let a = p.peer_up(id(1), true, Some(addr(1)));
        assert_eq!(
            a,
            Some(Action::Send {
                peer: id(1),
                payload: request_bytes()
            })
        );
        assert_eq!(p.request(id(1)), None, "one request outstanding at a time");
        assert_eq!(p.peer_up(id(2), false, Some(addr(2))), None);
        assert_eq!(p.addresses(), vec![addr(1), addr(2)]);
    }

    #[test]
    fn solicited_addresses_are_learned_unsolicited_rejected() {
        let t = Instant::now();
        let mut p = Pex::new(id(0), PexConfig::default());
        p.peer_up(id(1), true, None);
        assert_eq!(p.receive(id(1), &addrs_bytes(&[addr(5), addr(0)]), t), None);
        assert_eq!(
            p.addresses(),
            vec![addr(5)],
            "our own address is not learned"
        );
        // A second list without a new request.
        assert_eq!(
            p.receive(id(1), &addrs_bytes(&[addr(6)]), t),
            Some(Action::Disconnect {
                peer: id(1),
                reason: PexError::Unsolicited
            })
        );
        assert_eq!(p.addresses(), vec![addr(5)]);
        assert_eq!(
            PexError::Unsolicited.to_string(),
            "unsolicited pexAddrsMessage"
        );
    }

    #[test]
    fn request_rate_follows_stock() {
        let t = Instant::now();
        let min = Duration::from_secs(10);
        let mut p = Pex::new(id(0), PexConfig::default());
        p.learn(addr(7));
        let req = request_bytes();
        // First and second are free, whatever the spacing.
        assert_eq!(decode_addrs(p.receive(id(1), &req, t)), vec![addr(7)]);
        assert_eq!(decode_addrs(p.receive(id(1), &req, t)), vec![addr(7)]);
        // The third, 10 s after the second, is fine.
        let t3 = t + min;
        assert_eq!(decode_addrs(p.receive(id(1), &req, t3)), vec![addr(7)]);
        // The fourth, 1 s later, is too soon.
        match p.receive(id(1), &req, t3 + Duration::from_secs(1)) {
            Some(Action::Disconnect {
                peer,
                reason: PexError::TooSoon { .. },
            }) => assert_eq!(peer, id(1)),
            other => panic!("{other:?}"),
        }
        // After a reconnect the peer starts over.
        assert!(matches!(
            p.receive(id(1), &req, t3 + Duration::from_secs(2)),
            Some(Action::Send { .. })
        ));
    }

    #[test]
    fn the_requester_is_not_sent_its_own_address() {
        let mut p = Pex::new(id(0), PexConfig::default());
        p.learn(addr(1));
        p.learn(addr(2));
        assert_eq!(
            decode_addrs(p.receive(id(1), &request_bytes(), Instant::now())),
            vec![addr(2)]
        );
    }

    #[test]
    fn bad_messages_disconnect() {
        let t = Instant::now();
        let mut p = Pex::new(id(0), PexConfig::default());
        for (bytes, want) in [
            (&[0xff, 0xff][..], "unmarshaling"),
            (&[][..], "unknown pex message"),
        ] {
            match p.receive(id(1), bytes, t) {
                Some(Action::Disconnect { reason, .. }) => {
                    assert!(reason.to_string().contains(want), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        }
        p.request(id(1));
        let bad_ip = encode(Sum::PexAddrs(wire::PexAddrs {
            addrs: vec![wire::NetAddress {
                id: id(3).to_string(),
                ip: "not-an-ip".into(),
                port: 1,
            }],
        }));
        assert!(matches!(
            p.receive(id(1), &bad_ip, t),
            Some(Action::Disconnect {
                reason: PexError::InvalidAddress(_),
                ..
            })
        ));
        p.request(id(1));
        let bad_port = encode(Sum::PexAddrs(wire::PexAddrs {
            addrs: vec![wire::NetAddress {
                id: id(3).to_string(),
                ip: "1.2.3.4".into(),
                port: 70_000,
            }],
        }));
        assert!(matches!(
            p.receive(id(1), &bad_port, t),
            Some(Action::Disconnect {
                reason: PexError::InvalidAddress(_),
                ..
            })
        ));
    }

    #[test]
    fn the_set_is_bounded() {
        let mut p = Pex::new(
            id(0),
            PexConfig {
                max_addresses: 3,
                ..PexConfig::default()
            },
        );
        for n in 1..=10 {
            p.learn(addr(n));
        }
        assert_eq!(p.addresses().len(), 3);
        // A full set asks nobody.
        assert_eq!(p.peer_up(id(20), true, None), None);
        // A known address may still be updated.
        let mut moved = addr(1);
        moved.port = 1;
        assert!(p.learn(moved));
        assert_eq!(p.addresses()[0].port, 1);
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            PexAddr::from_listen_addr(id(1), "tcp://10.0.0.1:26656"),
            Some(addr(1))
        );
        assert_eq!(
            PexAddr::from_listen_addr(id(1), "tcp://0.0.0.0:26656"),
            None
        );
        assert_eq!(PexAddr::from_listen_addr(id(1), "garbage"), None);
    }
}
