//! Stock's PEX rules: pacing of requests, solicited lists, bad messages.

use std::time::{Duration, Instant};

use super::*;
use crate::pex::PexError;
use crate::pex::state::request_bytes;

#[test]
fn request_bytes_are_stock() {
    // Message{pex_request: {}}: field 1, length 0.
    assert_eq!(&request_bytes()[..], &[0x0a, 0x00]);
}

#[test]
fn outbound_peer_is_asked_once_inbound_is_learned() {
    let mut p = pex(PexConfig::default());
    let a = p.peer_up(peer(1, true, Some(addr(1))), Instant::now());
    assert_eq!(
        a,
        Some(Action::Send {
            peer: id(1),
            payload: request_bytes()
        })
    );
    assert_eq!(p.request(id(1)), None, "one request outstanding at a time");
    assert_eq!(
        p.peer_up(peer(2, false, Some(addr(2))), Instant::now()),
        None
    );
    assert_eq!(p.addresses(), vec![addr(1), addr(2)]);
}

#[test]
fn solicited_addresses_are_learned_unsolicited_rejected() {
    let t = Instant::now();
    let mut p = pex(PexConfig::default());
    p.peer_up(peer(1, true, None), Instant::now());
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
    let mut p = pex(PexConfig::default());
    p.learn(addr(7), Instant::now());
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
    let mut p = pex(PexConfig::default());
    p.learn(addr(1), Instant::now());
    p.learn(addr(2), Instant::now());
    assert_eq!(
        decode_addrs(p.receive(id(1), &request_bytes(), Instant::now())),
        vec![addr(2)]
    );
}

#[test]
fn bad_messages_disconnect() {
    let t = Instant::now();
    let mut p = pex(PexConfig::default());
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
fn listen_addresses() {
    assert_eq!(
        PexAddr::from_listen_addr(id(1), "tcp://1.2.3.1:26656"),
        Some(addr(1))
    );
    assert_eq!(
        PexAddr::from_listen_addr(id(1), "tcp://0.0.0.0:26656"),
        None
    );
    assert_eq!(PexAddr::from_listen_addr(id(1), "garbage"), None);
}

#[test]
fn the_request_interval_is_configurable() {
    let t = Instant::now();
    let mut p = pex(PexConfig {
        min_request_interval: Duration::from_secs(2),
        ..PexConfig::default()
    });
    let req = request_bytes();
    assert!(matches!(
        p.receive(id(1), &req, t),
        Some(Action::Send { .. })
    ));
    assert!(matches!(
        p.receive(id(1), &req, t),
        Some(Action::Send { .. })
    ));
    // 2 s later is soon enough (the default 10 s would refuse it) ...
    let t3 = t + Duration::from_secs(2);
    assert!(matches!(
        p.receive(id(1), &req, t3),
        Some(Action::Send { .. })
    ));
    // ... 1.9 s later is not.
    match p.receive(id(1), &req, t3 + Duration::from_millis(1900)) {
        Some(Action::Disconnect {
            reason: PexError::TooSoon { min, .. },
            ..
        }) => assert_eq!(min, Duration::from_secs(2)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_list_longer_than_allowed_disconnects() {
    let t = Instant::now();
    let mut p = pex(PexConfig {
        max_addrs_per_message: 3,
        ..PexConfig::default()
    });
    // Three addresses are fine.
    p.peer_up(peer(1, true, None), Instant::now());
    let three: Vec<PexAddr> = (10..13).map(addr).collect();
    assert_eq!(p.receive(id(1), &addrs_bytes(&three), t), None);
    assert_eq!(p.addresses(), three);
    // Four break the rules, even when asked for, and teach nothing.
    p.request(id(1));
    let four: Vec<PexAddr> = (20..24).map(addr).collect();
    let action = p.receive(id(1), &addrs_bytes(&four), t);
    assert_eq!(
        action,
        Some(Action::Disconnect {
            peer: id(1),
            reason: PexError::TooManyAddresses { count: 4, max: 3 }
        })
    );
    assert_eq!(p.addresses(), three);
    assert!(!p.knows_peer(&id(1)), "its state is dropped with it");
    // This node's own answers keep to the same bound.
    for n in 30..40 {
        p.learn(addr(n), Instant::now());
    }
    assert_eq!(answer(&mut p, 2).len(), 3);
}
