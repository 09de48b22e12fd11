//! Per-peer state: the address budget, and resynchronising with the connected peers.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn addresses_beyond_a_peers_budget_are_dropped_and_counted() {
    let t = Instant::now();
    let mut p = pex(PexConfig {
        address_burst: 4,
        address_rate: 0.5,
        ..PexConfig::default()
    });
    let list = |from: u8| -> Vec<PexAddr> { (from..from + 10).map(addr).collect() };
    // A burst of 4 out of 10; the other 6 are dropped.
    p.peer_up(peer(1, true, None), Instant::now());
    assert_eq!(p.receive(id(1), &addrs_bytes(&list(10)), t), None);
    assert_eq!(p.addresses(), list(10)[..4].to_vec());
    assert_eq!(p.stats().addresses_rate_limited, 6);
    // 4 s later, 0.5 per second has refilled 2.
    p.request(id(1));
    let later = t + Duration::from_secs(4);
    assert_eq!(p.receive(id(1), &addrs_bytes(&list(30)), later), None);
    assert_eq!(p.addresses().len(), 6);
    assert_eq!(p.stats().addresses_rate_limited, 14);
    // Another peer has its own budget.
    p.peer_up(peer(2, true, None), Instant::now());
    assert_eq!(p.receive(id(2), &addrs_bytes(&list(50)), later), None);
    assert_eq!(p.addresses().len(), 10);
    assert_eq!(p.stats().addresses_rate_limited, 20);
    // The peer was not dropped for it: it may be asked again.
    assert!(p.knows_peer(&id(1)) && p.knows_peer(&id(2)));
}

#[test]
fn sync_drops_gone_peers_and_takes_up_new_ones() {
    let t = Instant::now();
    let mut p = pex(PexConfig::default());
    p.peer_up(peer(1, true, Some(addr(1))), Instant::now());
    p.peer_up(peer(2, false, Some(addr(2))), Instant::now());
    // Peer 2 asked twice: its next request would start the clock check.
    let req = request();
    p.receive(id(2), &req, t);
    p.receive(id(2), &req, t);
    // Events were lost: 1 went away, 3 (outbound) and 4 (inbound) came, 2 stayed.
    let actions = p.sync(
        [
            peer(2, false, Some(addr(2))),
            peer(3, true, Some(addr(3))),
            peer(4, false, Some(addr(4))),
        ],
        t,
    );
    assert_eq!(
        actions,
        vec![Action::Send {
            peer: id(3),
            payload: crate::pex::state::request_bytes()
        }],
        "the new outbound peer is asked"
    );
    assert!(!p.knows_peer(&id(1)), "the gone peer's state is dropped");
    assert!(!p.is_requested(&id(1)));
    assert!(p.knows_peer(&id(3)) && p.knows_peer(&id(4)));
    assert_eq!(p.addresses(), (1..=4).map(addr).collect::<Vec<_>>());
    // Peer 2 kept its state: a third request 1 s later is still too soon.
    assert!(matches!(
        p.receive(id(2), &req, t + Duration::from_secs(1)),
        Some(Action::Disconnect { .. })
    ));
    // Syncing again with nobody drops everyone.
    assert!(p.sync([], t).is_empty());
    for n in 1..=4 {
        assert!(!p.knows_peer(&id(n)));
    }
}

#[test]
fn a_peer_that_goes_down_is_forgotten() {
    let t = Instant::now();
    let mut p = pex(PexConfig {
        address_burst: 1,
        ..PexConfig::default()
    });
    p.peer_up(peer(1, true, None), Instant::now());
    p.receive(id(1), &addrs_bytes(&[addr(10), addr(11)]), t);
    assert_eq!(p.stats().addresses_rate_limited, 1);
    p.peer_down(&id(1));
    assert!(!p.knows_peer(&id(1)));
    // Back again: a fresh request and a fresh budget.
    assert!(p.peer_up(peer(1, true, None), Instant::now()).is_some());
    p.receive(id(1), &addrs_bytes(&[addr(12)]), t);
    assert_eq!(p.addresses(), vec![addr(10), addr(12)]);
}

#[test]
fn a_replacing_connection_starts_its_request_budget_over() {
    let t = Instant::now();
    let mut p = pex(PexConfig::default());
    p.peer_up(peer(5, false, Some(addr(5))), t);
    let req = request();
    p.receive(id(5), &req, t);
    p.receive(id(5), &req, t);
    // The connection is replaced (an Up with no Down between): the new one's requests are
    // its first two, free.
    p.peer_up(peer(5, false, Some(addr(5))), t + Duration::from_millis(10));
    for _ in 0..2 {
        assert!(matches!(
            p.receive(id(5), &req, t + Duration::from_millis(20)),
            Some(Action::Send { .. })
        ));
    }
    // Its third, at once, is too soon as ever.
    assert!(matches!(
        p.receive(id(5), &req, t + Duration::from_millis(30)),
        Some(Action::Disconnect { .. })
    ));
}

#[test]
fn the_answer_to_a_replaced_connections_request_is_not_unsolicited() {
    let t = Instant::now();
    let ms = |n| t + Duration::from_millis(n);
    let mut p = pex(PexConfig::default());
    // This node dialed peer 6 and asked it for addresses.
    assert!(p.peer_up(peer(6, true, Some(addr(6))), t).is_some());
    // The peer's simultaneous dial wins the tie-break: the new connection is inbound (no
    // request of its own), and the old connection's answer is handed over after its Up.
    p.peer_up(peer(6, false, Some(addr(6))), ms(5));
    assert_eq!(p.receive(id(6), &addrs_bytes(&[addr(20)]), ms(6)), None);
    assert!(p.addresses().contains(&addr(20)));
    // One answer only: a second list is unsolicited, as ever.
    assert!(matches!(
        p.receive(id(6), &addrs_bytes(&[addr(21)]), ms(7)),
        Some(Action::Disconnect { .. })
    ));

    // Replaced by an outbound connection that asks again: the old answer and the new one
    // are both taken, a third is not.
    let mut p = pex(PexConfig::default());
    assert!(p.peer_up(peer(7, true, Some(addr(7))), t).is_some());
    assert!(p.peer_up(peer(7, true, Some(addr(7))), ms(5)).is_some());
    assert_eq!(p.receive(id(7), &addrs_bytes(&[addr(30)]), ms(6)), None);
    assert_eq!(p.receive(id(7), &addrs_bytes(&[addr(31)]), ms(7)), None);
    assert!(matches!(
        p.receive(id(7), &addrs_bytes(&[addr(32)]), ms(8)),
        Some(Action::Disconnect { .. })
    ));

    // Without a request outstanding on the replaced connection, nothing is tolerated.
    let mut p = pex(PexConfig::default());
    p.peer_up(peer(8, false, Some(addr(8))), t);
    p.peer_up(peer(8, false, Some(addr(8))), ms(5));
    assert!(matches!(
        p.receive(id(8), &addrs_bytes(&[addr(40)]), ms(6)),
        Some(Action::Disconnect { .. })
    ));
}

#[test]
fn the_answer_to_a_request_of_a_connection_that_went_down_first_is_not_unsolicited() {
    let t = Instant::now();
    let ms = |n| t + Duration::from_millis(n);
    let mut p = pex(PexConfig::default());
    // This node dialed peer 6 and asked it for addresses; the peer closed that connection as
    // the tie-break's loser before its own dial finished here: Down, then the new Up.
    assert!(p.peer_up(peer(6, true, Some(addr(6))), t).is_some());
    p.peer_down_at(&id(6), Some(ms(3)));
    p.peer_up(peer(6, false, Some(addr(6))), ms(5));
    // Its answer to the old request comes over the new connection.
    assert_eq!(p.receive(id(6), &addrs_bytes(&[addr(20)]), ms(6)), None);
    assert!(p.addresses().contains(&addr(20)));
    // One answer only.
    assert!(matches!(
        p.receive(id(6), &addrs_bytes(&[addr(21)]), ms(7)),
        Some(Action::Disconnect { .. })
    ));

    // A request whose connection went down longer than the grace ago is not carried over.
    let mut p = pex(PexConfig::default());
    assert!(p.peer_up(peer(7, true, Some(addr(7))), t).is_some());
    p.peer_down_at(&id(7), Some(t));
    let late = t + LATE_ANSWER_GRACE + Duration::from_secs(1);
    p.peer_up(peer(7, false, Some(addr(7))), late);
    assert!(matches!(
        p.receive(id(7), &addrs_bytes(&[addr(30)]), late),
        Some(Action::Disconnect { .. })
    ));

    // Without a request outstanding when it went down, nothing is tolerated.
    let mut p = pex(PexConfig::default());
    p.peer_up(peer(8, false, Some(addr(8))), t);
    p.peer_down_at(&id(8), Some(ms(3)));
    p.peer_up(peer(8, false, Some(addr(8))), ms(5));
    assert!(matches!(
        p.receive(id(8), &addrs_bytes(&[addr(40)]), ms(6)),
        Some(Action::Disconnect { .. })
    ));
}
