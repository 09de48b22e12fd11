//! The book's tables as the state runs them: connections that stay up promote, rule breakers
//! are banned from the book, what peers tell is bucketed by where they connect from, and a
//! book file is read under the node's policy.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::pex::AddrBookFile;

/// Peer `n` connected from `remote`.
fn from(n: u8, outbound: bool, listen: Option<PexAddr>, remote: &str) -> PexPeer {
    PexPeer {
        remote: Some(remote.parse::<SocketAddr>().unwrap()),
        ..peer(n, outbound, listen)
    }
}

#[test]
fn a_dialed_connection_that_stays_up_promotes_its_address() {
    let t = Instant::now();
    let after = Duration::from_secs(60);
    let mut p = pex(PexConfig {
        good_after: after,
        ..PexConfig::default()
    });
    // Dialed at the IP it announces: promoted after a minute up.
    p.peer_up(from(1, true, Some(addr(1)), "1.2.3.1:26656"), t);
    // Inbound: never (anyone can connect and announce anything).
    p.peer_up(from(2, false, Some(addr(2)), "1.2.3.2:40000"), t);
    // Dialed, but it announces another IP: never.
    p.peer_up(from(3, true, Some(addr(3)), "9.9.9.9:26656"), t);
    p.tick(t + after - Duration::from_secs(1));
    assert!(p.tried_addresses().is_empty());
    p.tick(t + after);
    assert_eq!(p.tried_addresses(), vec![addr(1)]);
    p.tick(t + 10 * after);
    assert_eq!(p.tried_addresses(), vec![addr(1)]);
    assert_eq!(p.addresses(), vec![addr(1), addr(2), addr(3)]);
    // A peer that goes before the minute is not promoted; back, its clock starts over.
    p.peer_up(from(4, true, Some(addr(4)), "1.2.3.4:26656"), t);
    p.peer_down(&id(4));
    p.peer_up(from(4, true, Some(addr(4)), "1.2.3.4:26656"), t + after);
    p.tick(t + after + Duration::from_secs(30));
    assert!(!p.tried_addresses().contains(&addr(4)));
    p.tick(t + 2 * after);
    assert!(p.tried_addresses().contains(&addr(4)));
    // The application's word promotes too (stock's MarkGood), an unknown node is ignored.
    assert!(p.mark_good(&id(2), t));
    assert!(p.tried_addresses().contains(&addr(2)));
    assert!(!p.mark_good(&id(77), t));
}

#[test]
fn a_rule_breaker_is_banned_from_the_book_until_its_ban_ends() {
    let t = Instant::now();
    let ban = Duration::from_secs(3600);
    let mut p = pex(PexConfig {
        ban_duration: ban,
        ..PexConfig::default()
    });
    p.peer_up(peer(1, false, Some(addr(1))), t);
    // An unsolicited list: disconnected, and its address leaves the book.
    assert!(matches!(
        p.receive(id(1), &addrs_bytes(&[addr(9)]), t),
        Some(Action::Disconnect { .. })
    ));
    assert_eq!(p.addresses(), vec![]);
    // Neither hearsay nor its own announcement brings it back during the ban.
    assert!(!p.learn(addr(1), t + Duration::from_secs(1)));
    p.peer_up(peer(1, false, Some(addr(1))), t + Duration::from_secs(2));
    assert_eq!(p.addresses(), vec![]);
    assert_eq!(p.stats().addresses_refused, 2);
    // After it, the address returns.
    p.tick(t + ban);
    assert_eq!(p.addresses(), vec![addr(1)]);
    // Without a ban duration, rule breakers keep their place in the book.
    let mut lenient = pex(PexConfig {
        ban_duration: Duration::ZERO,
        ..PexConfig::default()
    });
    lenient.peer_up(peer(1, false, Some(addr(1))), t);
    lenient.receive(id(1), &addrs_bytes(&[addr(9)]), t);
    assert_eq!(lenient.addresses(), vec![addr(1)]);
}

#[test]
fn what_a_peer_tells_is_bucketed_by_where_it_connected_from() {
    let t = Instant::now();
    let mut p = pex(PexConfig::default());
    // It announces 1.2.3.1, but connected from 5.6.7.8: that is the source of its list.
    p.peer_up(from(1, true, Some(addr(1)), "5.6.7.8:26656"), t);
    p.receive(id(1), &addrs_bytes(&[addr(20)]), t);
    let file = p.to_book_file(t, SystemTime::now());
    let text = String::from_utf8(file.to_json()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = json["addrs"].as_array().unwrap();
    let of = |n: u8| {
        entries
            .iter()
            .find(|e| e["addr"]["id"] == id(n).to_string())
            .unwrap()
    };
    assert_eq!(of(20)["src"]["ip"], "5.6.7.8");
    assert_eq!(of(20)["src"]["id"], id(1).to_string());
    // Its own address is announced: the node is its own source, at the connection's address.
    assert_eq!(of(1)["src"]["id"], id(1).to_string());
    assert_eq!(of(1)["src"]["ip"], "5.6.7.8");
}

#[test]
fn a_book_file_is_read_under_the_nodes_policy() {
    let t = Instant::now();
    let wall = SystemTime::now();
    // A lax node's book: its own-announced private node, hearsay about another private node,
    // a loopback address, and an ordinary one.
    let mut lax = pex(PexConfig {
        addr_book_strict: false,
        ..PexConfig::default()
    });
    lax.peer_up(peer(5, false, Some(addr(5))), t);
    let loopback = PexAddr {
        ip: "127.0.0.1".parse().unwrap(),
        ..addr(6)
    };
    for a in [addr(7), loopback, addr(8)] {
        assert!(lax.learn(a, t));
    }
    assert!(lax.mark_good(&id(8), t));
    let file = AddrBookFile::from_json(&lax.to_book_file(t, wall).to_json()).unwrap();
    // A strict node with 5 and 7 private, whose own ID is 8, reads it.
    let mut strict = Pex::new(
        id(8),
        PexConfig {
            private_peer_ids: vec![id(5), id(7)],
            ..PexConfig::default()
        },
        1,
    );
    let report = strict.load_book_file(&file, t, wall);
    assert_eq!(
        strict.addresses(),
        vec![addr(5)],
        "the announced private node stays"
    );
    assert_eq!(report.loaded, 1);
    assert_eq!(report.refused, 3);
    // The lax node reads its own book back whole, the tried address tried.
    let mut again = pex(PexConfig {
        addr_book_strict: false,
        ..PexConfig::default()
    });
    again.load_book_file(&file, t, wall);
    assert_eq!(again.addresses(), lax.addresses());
    assert_eq!(again.tried_addresses(), vec![addr(8)]);
    assert_eq!(again.book_changes(), 0, "nothing to write back yet");
    // Picks come from the book.
    let picked = again.pick_address(0).unwrap();
    assert_eq!(picked, addr(8), "bias 0 picks the tried table");
    assert!(
        again
            .addresses()
            .contains(&again.pick_address(100).unwrap())
    );
}
