//! Dialing from the book, as the state decides it: stock's `ensurePeers` (how many, which
//! table, which addresses), the per-address backoff and the ban after too many failures,
//! asking peers and seeds when the book is low, letting seeds go, and seed mode.

use std::time::{Duration, Instant};

use super::*;
use crate::pex::discover::backoff;
use crate::pex::{
    DialPlan, LATE_ANSWER_GRACE, MAX_DIAL_ATTEMPTS, MAX_LATE_ANSWERS, MIN_TIME_BETWEEN_CRAWLS,
    Outbound,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn out(connected: usize, dialing: usize, target: usize) -> Outbound {
    Outbound {
        connected,
        dialing,
        target,
    }
}

/// A state for node 0 that knows nodes `1..=n`, learned as hearsay at `t`.
fn with_book(config: PexConfig, n: u8, t: Instant) -> Pex {
    let mut p = pex(config);
    for i in 1..=n {
        assert!(p.learn(addr(i), t));
    }
    p
}

fn ids(plan: &DialPlan) -> Vec<u8> {
    let mut v: Vec<u8> = plan.candidates.iter().map(|a| a.id.0[0]).collect();
    v.sort_unstable();
    v
}

fn released(p: &mut Pex) -> Vec<(NodeId, &'static str)> {
    std::iter::from_fn(|| p.poll_action())
        .map(|a| match a {
            Action::Release { peer, reason } => (peer, reason),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_round_picks_up_to_three_times_the_missing_dials_and_nothing_at_the_target() {
    let t = Instant::now();
    let mut p = with_book(PexConfig::default(), 40, t);
    // Target met (dials in progress count): nothing, not even a request.
    let plan = p.ensure_peers(out(6, 4, 10), t);
    assert_eq!(plan, DialPlan::default());
    // Three missing: nine picks, distinct, the node dials three of them.
    let plan = p.ensure_peers(out(5, 2, 10), t);
    assert_eq!(plan.want, 3);
    assert!((1..=9).contains(&plan.candidates.len()), "{plan:?}");
    let mut unique = ids(&plan);
    unique.dedup();
    assert_eq!(unique.len(), plan.candidates.len());
    // A small book: all of it, never a connected peer.
    let mut small = with_book(PexConfig::default(), 3, t);
    small.peer_up(peer(2, true, Some(addr(2))), t);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        seen.extend(ids(&small.ensure_peers(out(0, 0, 10), t)));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 3]);
}

#[test]
fn the_bias_follows_stock_few_peers_prefer_tried_addresses() {
    let t = Instant::now();
    let mut p = with_book(PexConfig::default(), 60, t);
    for i in 1..=30 {
        assert!(p.mark_good(&id(i), t));
    }
    let tried_share = |p: &mut Pex, connected: usize| {
        let (mut tried, mut all) = (0, 0);
        for _ in 0..300 {
            for a in p.ensure_peers(out(connected, 0, 20), t).candidates {
                all += 1;
                tried += usize::from(a.id.0[0] <= 30);
            }
        }
        tried as f64 / all as f64
    };
    // Stock: bias = min(outbound, 8) × 10 + 10 towards the new table.
    let none = tried_share(&mut p, 0);
    let many = tried_share(&mut p, 12);
    assert!(none > 0.8, "no peers: {none:.2} tried");
    assert!(many < 0.2, "twelve peers: {many:.2} tried");
}

#[test]
fn a_failed_address_waits_its_backoff_which_doubles() {
    let t = Instant::now();
    let config = PexConfig {
        dial_backoff_min: secs(1),
        dial_backoff_max: secs(60),
        ..PexConfig::default()
    };
    let mut p = with_book(config, 1, t);
    assert!(p.dial_due(&id(1), t));
    let mut last = t;
    let mut waits = Vec::new();
    for attempt in 1..=8u32 {
        p.dial_failed(&id(1), false, last);
        assert!(!p.dial_due(&id(1), last), "attempt {attempt}: due at once");
        assert!(p.ensure_peers(out(0, 0, 10), last).candidates.is_empty());
        // Find when it is due again, to the millisecond.
        let mut ms = 0u64;
        while !p.dial_due(&id(1), last + Duration::from_millis(ms)) {
            ms += 1;
        }
        waits.push(ms);
        let nominal = (1000u64 << (attempt - 1)).min(60_000);
        assert!(
            ms <= nominal && ms * 10 >= nominal * 8 - 10,
            "attempt {attempt}: {ms} ms, nominal {nominal}"
        );
        last += Duration::from_millis(ms);
        assert_eq!(ids(&p.ensure_peers(out(0, 0, 10), last)), vec![1]);
    }
    // Capped at dial_backoff_max.
    assert!(waits[7] <= 60_000, "{waits:?}");
    // The file keeps the attempts (stock's MarkAttempt).
    let file = p.to_book_file(last, std::time::SystemTime::now());
    let json: serde_json::Value = serde_json::from_slice(&file.to_json()).unwrap();
    assert_eq!(json["addrs"][0]["attempts"], 8);
}

#[test]
fn the_backoff_formula_is_capped_and_only_shortened_by_jitter() {
    let (min, max) = (secs(2), secs(100));
    for salt in 0..200u64 {
        for n in 1..=20u32 {
            let d = backoff(min, max, n, salt);
            let nominal = (2.0 * 2f64.powi(n as i32 - 1)).min(100.0);
            assert!(d.as_secs_f64() <= nominal + 1e-9, "{n}: {d:?}");
            assert!(d.as_secs_f64() >= nominal * 0.8 - 1e-9, "{n}: {d:?}");
        }
    }
    assert_eq!(
        backoff(min, max, u32::MAX, 1).min(max),
        backoff(min, max, u32::MAX, 1)
    );
}

#[test]
fn an_address_failing_more_than_stocks_max_attempts_is_banned_from_the_book() {
    let t = Instant::now();
    let config = PexConfig {
        dial_backoff_min: Duration::from_millis(1),
        dial_backoff_max: Duration::from_millis(1),
        ..PexConfig::default()
    };
    let mut p = with_book(config, 2, t);
    for _ in 0..=MAX_DIAL_ATTEMPTS {
        p.dial_failed(&id(1), false, t);
    }
    let later = t + secs(1);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        seen.extend(ids(&p.ensure_peers(out(0, 0, 10), later)));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![2]);
    assert_eq!(p.addresses(), vec![addr(2)]);
    assert!(!p.learn(addr(1), later), "banned for ban_duration");
    // A peer that proved another node at the address is banned at once (stock's
    // ErrSwitchAuthenticationFailure).
    p.dial_failed(&id(2), true, later);
    assert!(p.addresses().is_empty());
}

#[test]
fn a_low_book_asks_a_peer_not_asked_lately_and_offers_the_seeds() {
    let t = Instant::now();
    let interval = secs(10);
    let mut p = with_book(
        PexConfig {
            min_request_interval: interval,
            ..PexConfig::default()
        },
        2,
        t,
    );
    p.set_seeds([id(8), id(9), id(0)]);
    // Peer 3 is inbound (not asked when it came); peer 4 outbound, asked then.
    assert!(p.peer_up(peer(3, false, Some(addr(3))), t).is_none());
    assert!(p.peer_up(peer(4, true, Some(addr(4))), t).is_some());
    let plan = p.ensure_peers(out(1, 0, 10), t);
    // Only 3 may be asked: 4's request is outstanding.
    let asked: Vec<NodeId> = plan
        .requests
        .iter()
        .map(|a| match a {
            Action::Send { peer, .. } => *peer,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(asked, vec![id(3)]);
    // The seeds, this node excluded, in some order.
    let mut seeds = plan.seeds.clone();
    seeds.sort();
    assert_eq!(seeds, vec![id(8), id(9)]);
    // 3 answers; it is not asked again before the interval, 4 is not either (outstanding).
    assert_eq!(p.receive(id(3), &addrs_bytes(&[addr(5)]), t), None);
    assert!(
        p.ensure_peers(out(1, 0, 10), t + secs(5))
            .requests
            .is_empty()
    );
    assert_eq!(
        p.ensure_peers(out(1, 0, 10), t + interval).requests.len(),
        1
    );
    // A seed dialed is not offered again within the period.
    p.seed_dialed(id(8), t);
    let plan = p.ensure_peers(out(1, 0, 10), t + secs(1));
    assert_eq!(plan.seeds, vec![id(9)]);
    let plan = p.ensure_peers(out(1, 0, 10), t + p.config().ensure_peers_period);
    assert_eq!(plan.seeds.len(), 2);
}

#[test]
fn a_full_enough_book_asks_nobody() {
    let t = Instant::now();
    let mut p = with_book(
        PexConfig {
            max_addresses: 5,
            ..PexConfig::default()
        },
        5,
        t,
    );
    p.set_seeds([id(9)]);
    p.peer_up(peer(3, false, None), t);
    assert!(!p.needs_addresses());
    let plan = p.ensure_peers(out(0, 0, 10), t);
    assert!(plan.requests.is_empty() && plan.seeds.is_empty());
    assert!(!plan.candidates.is_empty());
}

#[test]
fn a_seed_is_asked_let_go_once_it_answers_and_wakes_the_next_round() {
    let t = Instant::now();
    let mut p = pex(PexConfig::default());
    p.set_seeds([id(9)]);
    assert!(!p.take_wake());
    // Dialed: asked at once.
    assert!(p.peer_up(peer(9, true, Some(addr(9))), t).is_some());
    assert!(released(&mut p).is_empty());
    assert_eq!(p.receive(id(9), &addrs_bytes(&[addr(1), addr(2)]), t), None);
    assert_eq!(released(&mut p), vec![(id(9), "seed answered")]);
    assert!(p.take_wake());
    assert!(!p.take_wake());
    assert_eq!(p.addresses(), vec![addr(1), addr(2), addr(9)]);
    // An ordinary peer's answer neither lets it go nor wakes the round (stock).
    assert!(p.peer_up(peer(4, true, Some(addr(4))), t).is_some());
    assert_eq!(p.receive(id(4), &addrs_bytes(&[addr(5)]), t), None);
    assert!(released(&mut p).is_empty());
    assert!(!p.take_wake());
    // A seed that never answers is let go after seed_disconnect_wait; a failed seed dial
    // wakes the next round.
    p.peer_up(peer(8, true, Some(addr(8))), t);
    p.set_seeds([id(8), id(9)]);
    p.tick(t + p.config().seed_disconnect_wait - secs(1));
    assert!(released(&mut p).is_empty());
    p.tick(t + p.config().seed_disconnect_wait);
    assert_eq!(released(&mut p), vec![(id(8), "connected long enough")]);
    p.tick(t + 2 * p.config().seed_disconnect_wait);
    assert!(released(&mut p).is_empty(), "released once");
    p.dial_failed(&id(9), false, t);
    assert!(p.take_wake());
}

#[test]
fn a_seeds_answer_handled_after_it_closed_is_still_taken_within_the_grace() {
    let t = Instant::now();
    let mut p = pex(PexConfig::default());
    p.set_seeds([id(9), id(8)]);
    // Asked, then gone (stock's seed answers, flushes and closes at once): the answer that
    // the node hands over after the Down is taken and wakes the next round.
    assert!(p.peer_up(peer(9, true, Some(addr(9))), t).is_some());
    p.peer_down_at(&id(9), Some(t));
    assert!(!p.knows_peer(&id(9)));
    assert_eq!(
        p.receive_late(id(9), &addrs_bytes(&[addr(1)]), t + secs(1)),
        None
    );
    assert!(p.addresses().contains(&addr(1)));
    assert!(p.take_wake());
    assert!(!p.knows_peer(&id(9)), "no state left for the gone peer");
    // Taken once: a second list is not an answer.
    p.receive_late(id(9), &addrs_bytes(&[addr(2)]), t + secs(1));
    assert!(!p.addresses().contains(&addr(2)));
    // Not after the grace, nor from a peer never asked, nor a request from a gone peer.
    assert!(p.peer_up(peer(8, true, Some(addr(8))), t).is_some());
    p.peer_down_at(&id(8), Some(t));
    p.receive_late(id(8), &addrs_bytes(&[addr(3)]), t + LATE_ANSWER_GRACE);
    assert!(!p.addresses().contains(&addr(3)));
    p.peer_up(peer(7, false, Some(addr(7))), t);
    p.peer_down_at(&id(7), Some(t));
    p.receive_late(id(7), &addrs_bytes(&[addr(4)]), t);
    assert!(!p.addresses().contains(&addr(4)));
    assert_eq!(p.receive_late(id(7), &request(), t), None);
    // A Down handled without a time (a peer dropped for breaking the rules) awaits nothing.
    assert!(p.peer_up(peer(6, true, Some(addr(6))), t).is_some());
    p.peer_down(&id(6));
    p.receive_late(id(6), &addrs_bytes(&[addr(5)]), t);
    assert!(!p.addresses().contains(&addr(5)));
    // Bounded: beyond MAX_LATE_ANSWERS the oldest is forgotten.
    for n in 0..=MAX_LATE_ANSWERS {
        let n = 100 + n as u8;
        p.peer_up(peer(n, true, Some(addr(n))), t);
        p.peer_down_at(&id(n), Some(t));
    }
    // (Told of addresses in another group: the bucket of 1.2.3.x is full of announced
    // addresses by now.)
    let other = |n: u8| PexAddr {
        ip: IpAddr::V4(Ipv4Addr::new(9, 9, 9, n)),
        ..addr(n)
    };
    p.receive_late(id(100), &addrs_bytes(&[other(20)]), t);
    assert!(
        !p.addresses().contains(&other(20)),
        "the oldest was forgotten"
    );
    p.receive_late(id(101), &addrs_bytes(&[other(21)]), t);
    assert!(p.addresses().contains(&other(21)));
}

#[test]
fn a_seed_answers_an_inbound_peers_first_request_and_lets_it_go() {
    let t = Instant::now();
    let mut p = with_book(
        PexConfig {
            seed_mode: true,
            ..PexConfig::default()
        },
        20,
        t,
    );
    p.set_persistent([id(40)]);
    p.peer_up(peer(30, false, Some(addr(30))), t);
    let answer = decode_addrs(p.receive(id(30), &request(), t));
    assert!(!answer.is_empty() && !answer.contains(&addr(30)));
    assert_eq!(
        released(&mut p),
        vec![(id(30), "seed mode: address request answered")]
    );
    // Another request from it (before it is gone) is ignored, not a rule broken.
    assert_eq!(p.receive(id(30), &request(), t), None);
    assert_eq!(p.receive(id(30), &request(), t), None);
    // A persistent peer is answered under the usual rules and kept.
    p.peer_up(peer(40, false, None), t);
    assert!(p.receive(id(40), &request(), t).is_some());
    assert!(released(&mut p).is_empty());
    // Every other peer goes after seed_disconnect_wait, answered or not; the persistent one
    // stays.
    p.peer_up(peer(31, false, None), t);
    p.tick(t + p.config().seed_disconnect_wait);
    assert_eq!(released(&mut p), vec![(id(31), "connected long enough")]);
}

#[test]
fn a_seed_crawls_addresses_not_crawled_lately_and_lets_them_go_once_they_answer() {
    let t = Instant::now();
    let mut p = with_book(
        PexConfig {
            seed_mode: true,
            max_addrs_per_response: 8,
            ..PexConfig::default()
        },
        20,
        t,
    );
    p.peer_up(peer(5, true, Some(addr(5))), t);
    let first = p.crawl(t);
    assert_eq!(first.want, first.candidates.len());
    assert!(first.candidates.len() <= 8 && !first.candidates.is_empty());
    assert!(!first.candidates.contains(&addr(5)), "connected");
    // Within two minutes the same addresses are not crawled again.
    let mut crawled: std::collections::BTreeSet<u8> = ids(&first).into_iter().collect();
    for k in 1..=6 {
        let plan = p.crawl(t + secs(10 * k));
        for i in ids(&plan) {
            assert!(crawled.insert(i), "{i} crawled twice within two minutes");
        }
    }
    // All 19 others were crawled; after the two minutes they may be again.
    assert_eq!(crawled.len(), 19);
    assert!(
        !p.crawl(t + MIN_TIME_BETWEEN_CRAWLS + secs(60))
            .candidates
            .is_empty()
    );
    // A crawled (outbound) peer is asked when it comes up and let go once it answers.
    assert!(p.peer_up(peer(7, true, Some(addr(7))), t).is_some());
    assert_eq!(p.receive(id(7), &addrs_bytes(&[addr(33)]), t), None);
    assert_eq!(
        released(&mut p),
        vec![(id(7), "seed mode: crawled peer answered")]
    );
    assert!(p.addresses().contains(&addr(33)));
}

#[test]
fn the_first_round_runs_at_once_without_peers_else_within_the_period() {
    let mut p = pex(PexConfig::default());
    assert_eq!(p.first_round_delay(false), Duration::ZERO);
    for _ in 0..20 {
        assert!(p.first_round_delay(true) < p.config().ensure_peers_period);
    }
    let mut seed = pex(PexConfig {
        seed_mode: true,
        ..PexConfig::default()
    });
    assert_eq!(seed.first_round_delay(true), Duration::ZERO);
}
