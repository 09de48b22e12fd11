//! The address book as the state runs it: bounded and evicting, random answers, announced
//! addresses kept, private nodes and non-routable addresses kept out.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use super::*;

/// `from` answers a request of ours with `list`.
fn hear(p: &mut Pex, from: u8, list: &[PexAddr]) {
    p.request(id(from));
    assert_eq!(
        p.receive(id(from), &addrs_bytes(list), Instant::now()),
        None
    );
}

#[test]
fn a_full_book_evicts_hearsay_and_keeps_announced_addresses() {
    let mut p = pex(PexConfig {
        max_addresses: 5,
        ..PexConfig::default()
    });
    // Two peers announce themselves; a third tells of three others: the book is full.
    p.peer_up(id(1), false, Some(addr(1)));
    p.peer_up(id(2), true, Some(addr(2)));
    hear(&mut p, 2, &[addr(10), addr(11), addr(12)]);
    assert_eq!(p.addresses().len(), 5);
    // Twenty more: each one takes a random hearsay place instead of being refused.
    for n in 20..40 {
        hear(&mut p, 2, &[addr(n)]);
        let book = p.addresses();
        assert_eq!(book.len(), 5, "bounded");
        assert!(book.contains(&addr(n)), "the newcomer is in");
        assert!(
            book.contains(&addr(1)) && book.contains(&addr(2)),
            "announced kept"
        );
    }
    assert_eq!(p.stats().addresses_evicted, 20);
    assert_eq!(p.stats().addresses_refused, 0);
    // A full book asks new outbound peers nothing.
    assert_eq!(p.peer_up(id(50), true, None), None);
}

#[test]
fn answers_are_random_selections() {
    let mut p = pex(PexConfig {
        max_addrs_per_response: 10,
        ..PexConfig::default()
    });
    for n in 100..200 {
        p.learn(addr(n));
    }
    let lowest: Vec<PexAddr> = (100..110).map(addr).collect();
    let mut seen = HashSet::new();
    let mut answers = HashSet::new();
    for from in 1..=20 {
        let got = answer(&mut p, from);
        assert_eq!(got.len(), 10);
        assert_eq!(
            got.iter().collect::<HashSet<_>>().len(),
            10,
            "no duplicates"
        );
        let mut sorted = got.clone();
        sorted.sort();
        assert_ne!(sorted, lowest, "not the lowest node IDs first");
        answers.insert(sorted);
        seen.extend(got);
    }
    assert_eq!(answers.len(), 20, "every answer differs");
    assert!(
        seen.len() > 60,
        "20 answers of 10 cover {} of 100",
        seen.len()
    );
}

#[test]
fn hearsay_never_overwrites_an_announced_address() {
    let mut p = pex(PexConfig::default());
    p.peer_up(id(3), false, Some(addr(3)));
    let mut lie = addr(3);
    lie.ip = IpAddr::V4(Ipv4Addr::new(6, 6, 6, 6));
    hear(&mut p, 1, &[lie]);
    assert_eq!(p.addresses(), vec![addr(3)]);
    assert_eq!(p.stats().addresses_refused, 1);
    // Hearsay first, then the node announces itself: the announcement wins and stays.
    hear(&mut p, 1, &[addr(4)]);
    let mut moved = addr(4);
    moved.port = 4444;
    p.peer_up(id(4), true, Some(moved));
    hear(&mut p, 1, &[addr(4)]);
    assert_eq!(p.addresses(), vec![addr(3), moved]);
    // Its own list saying otherwise is hearsay too.
    hear(&mut p, 4, &[addr(4)]);
    assert_eq!(p.addresses(), vec![addr(3), moved]);
}

#[test]
fn private_nodes_are_never_sent_nor_learned_from_hearsay() {
    let mut p = pex(PexConfig {
        private_peer_ids: vec![id(5), id(7)],
        ..PexConfig::default()
    });
    // Node 5 connects and announces itself: kept (this node may dial it) ...
    p.peer_up(id(5), false, Some(addr(5)));
    p.learn(addr(6));
    assert_eq!(p.addresses(), vec![addr(5), addr(6)]);
    // ... but no answer, to anyone, carries it.
    for from in 1..=4 {
        assert_eq!(answer(&mut p, from), vec![addr(6)]);
    }
    // Hearsay about a private node is not learned.
    hear(&mut p, 1, &[addr(7), addr(8)]);
    assert_eq!(p.addresses(), vec![addr(5), addr(6), addr(8)]);
    assert!(!p.learn(addr(7)));
    assert_eq!(p.stats().addresses_refused, 2);
}

#[test]
fn strict_books_refuse_non_routable_addresses() {
    let loopback = PexAddr {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ..addr(12)
    };
    let link_local = PexAddr {
        ip: IpAddr::V6("fe80::1".parse::<Ipv6Addr>().unwrap()),
        ..addr(13)
    };
    let run = |strict: bool| {
        let mut p = pex(PexConfig {
            addr_book_strict: strict,
            ..PexConfig::default()
        });
        p.peer_up(id(1), true, Some(private_addr(1)));
        hear(
            &mut p,
            1,
            &[private_addr(11), loopback, link_local, addr(14)],
        );
        p
    };
    let strict = run(true);
    assert_eq!(strict.addresses(), vec![addr(14)]);
    assert_eq!(strict.stats().addresses_refused, 4);
    let lax = run(false);
    assert_eq!(
        lax.addresses(),
        vec![
            private_addr(1),
            private_addr(11),
            loopback,
            link_local,
            addr(14)
        ]
    );
    assert_eq!(lax.stats().addresses_refused, 0);
}
