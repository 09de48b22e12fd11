//! Peer bytes into `Pex::receive` on channel 0x00, from a native peer that was asked for the
//! capability answer, a native peer that was not, and a compat peer that was asked: nothing
//! panics; bytes either break the rules (a disconnect naming the peer), are answered, or are
//! taken; capability records the book takes keep HELLO's bounds.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use ringwire::pex::{Action, Pex, PexAddr, PexConfig, PexPeer};
use ringwire::proto::secret::NodeId;

fn peer(n: u8, outbound: bool, native: bool) -> PexPeer {
    let id = NodeId([n; 20]);
    PexPeer {
        id,
        outbound,
        listen: Some(PexAddr {
            id,
            ip: IpAddr::V4(Ipv4Addr::new(1, 2, 3, n)),
            port: 26656,
        }),
        remote: None,
        native,
        capabilities: vec!["archive".to_owned()],
    }
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    // Peer 1: native, asked (outbound); peer 2: native, not asked (inbound); peer 3: compat,
    // asked.
    for (n, outbound, native) in [(1u8, true, true), (2, false, true), (3, true, false)] {
        let mut p = Pex::new(NodeId([0; 20]), PexConfig::default(), 7);
        let _ = p.peer_up(peer(n, outbound, native), now);
        let from = NodeId([n; 20]);
        match p.receive(from, data, now) {
            Some(Action::Disconnect { peer, .. }) => assert_eq!(peer, from),
            Some(Action::Send { peer, .. }) => assert_eq!(peer, from),
            Some(Action::Release { .. }) | None => {}
        }
        for a in p.addresses() {
            if let Some(c) = p.capabilities(&a.id) {
                assert!(c.capabilities.len() <= 32);
                assert!(
                    c.capabilities
                        .iter()
                        .all(|s| !s.is_empty() && s.len() <= 64)
                );
            }
        }
    }
});
