//! The address book as the state runs it: bounded and evicting, random answers, announced
//! addresses kept, private nodes and non-routable addresses kept out.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use super::*;
use crate::proto::secret::NodeId;

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
    p.peer_up(peer(1, false, Some(addr(1))), Instant::now());
    p.peer_up(peer(2, true, Some(addr(2))), Instant::now());
    hear(&mut p, 2, &[addr(10), addr(11), addr(12)]);
    assert_eq!(p.addresses().len(), 5);
    // Twenty more: each one takes a hearsay place (the oldest) instead of being refused.
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
    assert_eq!(p.peer_up(peer(50, true, None), Instant::now()), None);
}

#[test]
fn answers_are_random_selections() {
    let mut p = pex(PexConfig {
        max_addrs_per_response: 10,
        ..PexConfig::default()
    });
    // Each in a /16 of its own: one group told by one source fills one bucket of 64.
    let spread = |n: u8| PexAddr {
        ip: IpAddr::V4(Ipv4Addr::new(1, n, 3, n)),
        ..addr(n)
    };
    for n in 100..200 {
        assert!(p.learn(spread(n), Instant::now()));
    }
    assert_eq!(p.addresses().len(), 100);
    let lowest: Vec<PexAddr> = (100..110).map(spread).collect();
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
    p.peer_up(peer(3, false, Some(addr(3))), Instant::now());
    let mut lie = addr(3);
    lie.ip = IpAddr::V4(Ipv4Addr::new(6, 6, 6, 6));
    hear(&mut p, 1, &[lie]);
    assert_eq!(p.addresses(), vec![addr(3)]);
    assert_eq!(p.stats().addresses_refused, 1);
    // Hearsay first, then the node announces itself: the announcement wins and stays.
    hear(&mut p, 1, &[addr(4)]);
    let mut moved = addr(4);
    moved.port = 4444;
    p.peer_up(peer(4, true, Some(moved)), Instant::now());
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
    p.peer_up(peer(5, false, Some(addr(5))), Instant::now());
    p.learn(addr(6), Instant::now());
    assert_eq!(p.addresses(), vec![addr(5), addr(6)]);
    // ... but no answer, to anyone, carries it.
    for from in 1..=4 {
        assert_eq!(answer(&mut p, from), vec![addr(6)]);
    }
    // Hearsay about a private node is not learned.
    hear(&mut p, 1, &[addr(7), addr(8)]);
    assert_eq!(p.addresses(), vec![addr(5), addr(6), addr(8)]);
    assert!(!p.learn(addr(7), Instant::now()));
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
        p.peer_up(peer(1, true, Some(private_addr(1))), Instant::now());
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

#[test]
fn one_peers_list_of_one_group_fills_one_bucket_at_most() {
    let t = Instant::now();
    let mut p = pex(PexConfig {
        address_burst: 1000,
        max_addrs_per_message: 250,
        ..PexConfig::default()
    });
    p.peer_up(peer(1, true, None), t);
    // 200 addresses of 1.2.0.0/16 from one peer: one bucket of the new table, 64 places.
    let list: Vec<PexAddr> = (0..200u8)
        .map(|n| PexAddr {
            id: NodeId([n + 2; 20]),
            ip: IpAddr::V4(Ipv4Addr::new(1, 2, n, 9)),
            port: 26656,
        })
        .collect();
    assert_eq!(p.receive(id(1), &addrs_bytes(&list), t), None);
    assert_eq!(p.addresses().len(), 64);
    assert_eq!(p.stats().addresses_evicted, 200 - 64);
    // The last ones in stay (the oldest gave way).
    assert!(p.addresses().contains(&list[199]));
    assert!(!p.addresses().contains(&list[0]));
}
