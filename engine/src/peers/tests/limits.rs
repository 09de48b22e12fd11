//! Admission control: every gate, every refusal, and no leaked place.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::peers::{
    Admission, AdmissionLimits, AdmissionStats, Direction, PeerSlot, PendingPermit, Refused,
};
use crate::proto::secret::NodeId;

const LOCAL: NodeId = NodeId([0x50; 20]);
const LOW: NodeId = NodeId([0x10; 20]);
const HIGH: NodeId = NodeId([0x90; 20]);

fn id(n: u8) -> NodeId {
    NodeId([n; 20])
}

fn v4(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn admission(f: impl FnOnce(&mut AdmissionLimits)) -> Admission {
    let mut config = AdmissionLimits::default();
    f(&mut config);
    Admission::new(LOCAL, config).unwrap()
}

fn connect_in(a: &Admission, peer: NodeId, ip: IpAddr) -> PeerSlot {
    let now = Instant::now();
    let promoted = a
        .try_accept(ip, now)
        .unwrap()
        .promote(peer, ip, now)
        .unwrap();
    assert_eq!(promoted.displaced, None);
    promoted.slot
}

fn connect_out(a: &Admission, peer: NodeId, ip: IpAddr) -> PeerSlot {
    let now = Instant::now();
    let promoted = a
        .try_dial(peer, now)
        .unwrap()
        .promote(peer, ip, now)
        .unwrap();
    assert_eq!(promoted.displaced, None);
    promoted.slot
}

fn is_empty(stats: AdmissionStats) -> bool {
    AdmissionStats { bans: 0, ..stats } == AdmissionStats::default()
}

#[test]
fn defaults_are_stocks() {
    let c = AdmissionLimits::default();
    assert_eq!((c.max_inbound, c.max_outbound), (40, 10));
    assert!(!c.allow_duplicate_ip);
    c.validate().unwrap();
}

#[test]
fn bad_settings_are_refused_at_start() {
    let bad = |f: fn(&mut AdmissionLimits)| {
        let mut c = AdmissionLimits::default();
        f(&mut c);
        Admission::new(LOCAL, c).unwrap_err().to_string()
    };
    assert!(bad(|c| c.max_pending_inbound_per_ip = 0).contains("max_pending_inbound_per_ip"));
    assert!(bad(|c| c.max_connections_per_ip = 0).contains("max_connections_per_ip"));
    assert!(bad(|c| c.ipv6_prefix_len = 129).contains("ipv6_prefix_len"));
    assert!(bad(|c| c.ipv6_prefix_len = 8).contains("ipv6_prefix_len"));
}

#[test]
fn global_pending_cap() {
    let a = admission(|c| c.max_pending_inbound = 3);
    let permits: Vec<_> = (1..=3)
        .map(|n| a.try_accept(v4(n), Instant::now()).unwrap())
        .collect();
    assert_eq!(
        a.try_accept(v4(9), Instant::now()).unwrap_err(),
        Refused::PendingFull
    );
    assert_eq!(a.stats().pending_inbound, 3);
    drop(permits);
    assert_eq!(a.stats().pending_inbound, 0);
    assert!(a.try_accept(v4(9), Instant::now()).is_ok());
    assert_eq!(a.refusals().pending_full, 1);
}

#[test]
fn per_address_pending_cap() {
    let a = admission(|c| c.max_pending_inbound_per_ip = 2);
    let first = a.try_accept(v4(1), Instant::now()).unwrap();
    let _second = a.try_accept(v4(1), Instant::now()).unwrap();
    assert_eq!(
        a.try_accept(v4(1), Instant::now()).unwrap_err(),
        Refused::PendingPerIpFull
    );
    let _other = a.try_accept(v4(2), Instant::now()).unwrap();
    first.release();
    let _third = a.try_accept(v4(1), Instant::now()).unwrap();
    assert_eq!(a.refusals().pending_per_ip_full, 1);
}

#[test]
fn per_address_connection_cap_counts_pending_and_connected() {
    let a = admission(|c| {
        c.allow_duplicate_ip = true;
        c.max_connections_per_ip = 3;
    });
    let _p1 = connect_in(&a, id(1), v4(1));
    let _p2 = connect_in(&a, id(2), v4(1));
    let pending = a.try_accept(v4(1), Instant::now()).unwrap();
    assert_eq!(
        a.try_accept(v4(1), Instant::now()).unwrap_err(),
        Refused::PerIpFull
    );
    drop(pending);
    // Promotion checks the cap too: an outbound connection to a crowded address.
    let _p3 = connect_in(&a, id(3), v4(1));
    let dial = a.try_dial(id(4), Instant::now()).unwrap();
    let err = dial.promote(id(4), v4(1), Instant::now()).unwrap_err();
    assert_eq!(err, Refused::PerIpFull);
}

#[test]
fn ipv6_counts_per_prefix_and_mapped_ipv4_as_ipv4() {
    let a = admission(|c| c.max_pending_inbound_per_ip = 1);
    let base: u128 = 0x2001_0db8_0001_0002_0000_0000_0000_0000;
    let ip6 = |low: u128| IpAddr::V6(Ipv6Addr::from(base | low));
    let _p = a.try_accept(ip6(1), Instant::now()).unwrap();
    assert_eq!(
        a.try_accept(ip6(0xffff), Instant::now()).unwrap_err(),
        Refused::PendingPerIpFull
    );
    let other_prefix = IpAddr::V6(Ipv6Addr::from(base + (1u128 << 64)));
    let _q = a.try_accept(other_prefix, Instant::now()).unwrap();

    let _r = a.try_accept(v4(7), Instant::now()).unwrap();
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped());
    assert_eq!(
        a.try_accept(mapped, Instant::now()).unwrap_err(),
        Refused::PendingPerIpFull
    );
}

#[test]
fn full_prefix_length_counts_each_ipv6_address() {
    let a = admission(|c| {
        c.max_pending_inbound_per_ip = 1;
        c.ipv6_prefix_len = 128;
    });
    let _p = a
        .try_accept("2001:db8::1".parse().unwrap(), Instant::now())
        .unwrap();
    let _q = a
        .try_accept("2001:db8::2".parse().unwrap(), Instant::now())
        .unwrap();
}

#[test]
fn inbound_limit_refuses_before_the_handshake_when_no_one_is_exempt() {
    let a = admission(|c| c.max_inbound = 2);
    let _p1 = connect_in(&a, id(1), v4(1));
    let _p2 = connect_in(&a, id(2), v4(2));
    assert_eq!(
        a.try_accept(v4(3), Instant::now()).unwrap_err(),
        Refused::InboundFull
    );
    assert_eq!(a.stats().inbound, 2);
}

#[test]
fn unconditional_peers_pass_a_full_inbound_set() {
    let a = admission(|c| {
        c.max_inbound = 1;
        c.unconditional_peer_ids = vec![id(9)];
    });
    let _p1 = connect_in(&a, id(1), v4(1));
    // The ID is unknown before the handshake, so the socket is admitted...
    let permit = a.try_accept(v4(2), Instant::now()).unwrap();
    // ...and refused once it turns out to be an ordinary peer.
    let err = permit.promote(id(2), v4(2), Instant::now()).unwrap_err();
    assert_eq!(err, Refused::InboundFull);
    let _vip = connect_in(&a, id(9), v4(3));
    let stats = a.stats();
    assert_eq!((stats.inbound, stats.peers), (1, 2));
    assert!(a.is_unconditional(&id(9)));
}

#[test]
fn outbound_limit_counts_dials_in_progress() {
    let a = admission(|c| {
        c.max_outbound = 2;
        c.unconditional_peer_ids = vec![id(9)];
    });
    let now = Instant::now();
    let d1 = a.try_dial(id(1), now).unwrap();
    let _d2 = a.try_dial(id(2), now).unwrap();
    assert!(!a.has_outbound_room());
    assert_eq!(a.try_dial(id(3), now).unwrap_err(), Refused::OutboundFull);
    let _vip = a.try_dial(id(9), now).unwrap();
    let slot = d1.promote(id(1), v4(1), now).unwrap().slot;
    assert_eq!(a.try_dial(id(3), now).unwrap_err(), Refused::OutboundFull);
    assert_eq!(a.stats().outbound, 1);
    drop(slot);
    assert!(a.has_outbound_room());
    let _d3 = a.try_dial(id(3), now).unwrap();
    assert_eq!(a.refusals().outbound_full, 2);
}

#[test]
fn dial_refusals() {
    let a = admission(|_| {});
    let now = Instant::now();
    assert_eq!(a.try_dial(LOCAL, now).unwrap_err(), Refused::SelfConnection);
    let _slot = connect_in(&a, id(1), v4(1));
    assert_eq!(
        a.try_dial(id(1), now).unwrap_err(),
        Refused::AlreadyConnected
    );
    let _dial = a.try_dial(id(2), now).unwrap();
    assert!(a.is_dialing(&id(2)));
    assert_eq!(a.try_dial(id(2), now).unwrap_err(), Refused::AlreadyDialing);
    a.ban(id(3), now + Duration::from_secs(60));
    assert_eq!(a.try_dial(id(3), now).unwrap_err(), Refused::Banned);
    assert!(a.try_dial(id(3), now + Duration::from_secs(60)).is_ok());
    let r = a.refusals();
    assert_eq!(
        (
            r.self_connection,
            r.already_connected,
            r.already_dialing,
            r.banned
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn promotion_refusals() {
    let a = admission(|_| {});
    let now = Instant::now();
    let err = a.try_accept(v4(1), now).unwrap().promote(LOCAL, v4(1), now);
    assert_eq!(err.unwrap_err(), Refused::SelfConnection);
    let dial = a.try_dial(id(1), now).unwrap();
    assert_eq!(dial.dialed(), Some(id(1)));
    assert_eq!(
        dial.promote(id(2), v4(1), now).unwrap_err(),
        Refused::IdMismatch
    );
    a.ban(id(3), now + Duration::from_secs(1));
    let err = a.try_accept(v4(3), now).unwrap().promote(id(3), v4(3), now);
    assert_eq!(err.unwrap_err(), Refused::Banned);
    assert!(a.is_banned(&id(3), now));
    assert!(a.unban(&id(3)));
    let _ok = connect_in(&a, id(3), v4(3));
    // Every refused permit gave its place back.
    let stats = a.stats();
    assert_eq!(
        (stats.pending_inbound, stats.dialing, stats.peers),
        (0, 0, 1)
    );
}

#[test]
fn an_address_ban_refuses_every_id_from_it_until_it_ends() {
    let a = admission(|c| c.allow_duplicate_ip = true);
    let now = Instant::now();
    let _s1 = connect_in(&a, id(1), v4(1));
    let _s2 = connect_out(&a, id(2), v4(1));
    let _s3 = connect_in(&a, id(3), v4(3));
    let until = now + Duration::from_secs(60);
    let mut victims: Vec<NodeId> = a.ban_ip(v4(1), until).into_iter().map(|(p, _)| p).collect();
    victims.sort_unstable();
    assert_eq!(
        victims,
        vec![id(1), id(2)],
        "the peers connected from it, only"
    );
    assert_eq!(a.peer_ip(&id(3)), Some(v4(3)));
    assert_eq!(a.try_accept(v4(1), now).err(), Some(Refused::Banned));
    // An outbound connection that turns out to come from the address is refused at promotion.
    let dial = a.try_dial(id(4), now).unwrap();
    assert_eq!(dial.promote(id(4), v4(1), now).err(), Some(Refused::Banned));
    // A mapped IPv4 address is the same address.
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
    assert!(a.is_ip_banned(mapped, now));
    assert!(a.try_accept(v4(2), now).is_ok());
    let bans = a.active_bans(now);
    assert_eq!((bans.ids, bans.ips), (vec![], vec![(v4(1), until)]));
    assert!(a.try_accept(v4(1), until).is_ok(), "the ban ended");
    a.expire_bans(until);
    assert_eq!(a.active_bans(now).ips, vec![]);
}

#[test]
fn duplicate_ip_rule() {
    let strict = admission(|_| {});
    let _p1 = connect_in(&strict, id(1), v4(1));
    let err =
        strict
            .try_accept(v4(1), Instant::now())
            .unwrap()
            .promote(id(2), v4(1), Instant::now());
    assert_eq!(err.unwrap_err(), Refused::DuplicateIp);
    let dial = strict.try_dial(id(3), Instant::now()).unwrap();
    let err = dial.promote(id(3), v4(1), Instant::now());
    assert_eq!(err.unwrap_err(), Refused::DuplicateIp);
    assert_eq!(strict.refusals().duplicate_ip, 2);

    let relaxed = admission(|c| c.allow_duplicate_ip = true);
    let _q1 = connect_out(&relaxed, id(1), v4(1));
    let _q2 = connect_in(&relaxed, id(2), v4(1));
    assert_eq!(relaxed.stats().peers, 2);
}

#[test]
fn simultaneous_dial_keeps_the_lower_ids_dial_on_both_sides() {
    let now = Instant::now();
    // LOW's view: its own dial wins.
    let low = Admission::new(LOW, AdmissionLimits::default()).unwrap();
    let out = low.try_dial(HIGH, now).unwrap();
    let inn = low.try_accept(v4(2), now).unwrap();
    let kept = out.promote(HIGH, v4(2), now).unwrap().slot;
    assert_eq!(
        inn.promote(HIGH, v4(2), now).unwrap_err(),
        Refused::Duplicate
    );
    assert_eq!(
        low.connection(&HIGH),
        Some((kept.conn_id(), Direction::Outbound))
    );

    // HIGH's view, the other order of completion: LOW's dial (inbound here) wins.
    let high = Admission::new(HIGH, AdmissionLimits::default()).unwrap();
    let out = high.try_dial(LOW, now).unwrap();
    let inn = high.try_accept(v4(1), now).unwrap();
    let first = out.promote(LOW, v4(1), now).unwrap();
    let second = inn.promote(LOW, v4(1), now).unwrap();
    assert_eq!(second.displaced, Some(first.slot.conn_id()));
    drop(first.slot); // closing the displaced connection must not drop the new one
    assert_eq!(
        high.connection(&LOW),
        Some((second.slot.conn_id(), Direction::Inbound))
    );
    // The kept connection takes over the place of the one it replaced.
    let stats = high.stats();
    assert_eq!((stats.inbound, stats.outbound, stats.peers), (0, 1, 1));
    drop(second.slot);
    assert!(is_empty(high.stats()));
}

#[test]
fn a_reconnecting_peer_replaces_its_stale_connection_even_when_full() {
    // The inbound set is full; an exempt peer list lets sockets reach the handshake. The same
    // peer reconnects from a new address after a restart: its new connection replaces the
    // stale one and keeps its place.
    let a = admission(|c| {
        c.max_inbound = 1;
        c.unconditional_peer_ids = vec![id(99)];
    });
    let now = Instant::now();
    let stale = connect_in(&a, id(1), v4(1));
    let fresh = a
        .try_accept(v4(2), now)
        .unwrap()
        .promote(id(1), v4(2), now)
        .unwrap();
    assert_eq!(fresh.displaced, Some(stale.conn_id()));
    assert_eq!(a.stats().inbound, 1);
    drop(stale);
    assert_eq!(a.stats().peers, 1);
    drop(fresh);
    assert!(is_empty(a.stats()));
}

#[test]
fn a_peer_being_dialed_connects_inbound_on_the_dials_place() {
    let a = admission(|c| {
        c.max_inbound = 1;
        c.unconditional_peer_ids = vec![id(99)];
    });
    let now = Instant::now();
    let _other = connect_in(&a, id(1), v4(1));
    let dial = a.try_dial(id(2), now).unwrap();
    let inbound = a
        .try_accept(v4(2), now)
        .unwrap()
        .promote(id(2), v4(2), now)
        .unwrap();
    let stats = a.stats();
    assert_eq!((stats.inbound, stats.outbound), (1, 1));
    // Our dial completes too; id(2) < LOCAL, so id(2)'s dial (the inbound one) is kept.
    assert_eq!(
        dial.promote(id(2), v4(2), now).unwrap_err(),
        Refused::Duplicate
    );
    assert_eq!(a.stats().outbound, 1);
    drop(inbound);
    assert_eq!(a.stats().outbound, 0);
}

#[test]
fn ban_reports_the_connection_to_close() {
    let a = admission(|c| c.max_bans = 2);
    let now = Instant::now();
    let slot = connect_in(&a, id(1), v4(1));
    assert_eq!(
        a.ban(id(1), now + Duration::from_secs(5)),
        Some(slot.conn_id())
    );
    assert_eq!(a.ban(id(2), now + Duration::from_secs(5)), None);
    assert_eq!(
        a.banned_until(&id(1), now),
        Some(now + Duration::from_secs(5))
    );
    a.expire_bans(now + Duration::from_secs(5));
    assert_eq!(a.stats().bans, 0);
}

#[test]
fn handles_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Admission>();
    assert_send::<PendingPermit>();
    assert_send::<PeerSlot>();

    let a = admission(|c| {
        c.allow_duplicate_ip = true;
        c.max_connections_per_ip = 1000;
        c.max_pending_inbound_per_ip = 1000;
        c.max_inbound = 1000;
    });
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let a = a.clone();
            s.spawn(move || {
                for n in 0..50u8 {
                    let peer = NodeId([t, n, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
                    let slot = connect_in(&a, peer, v4(1));
                    drop(slot);
                }
            });
        }
    });
    assert!(is_empty(a.stats()));
}

#[derive(Debug, Clone)]
enum Op {
    Accept(u8),
    Dial(u8),
    Promote { permit: usize, peer: u8, ip: u8 },
    DropPermit(usize),
    DropSlot(usize),
    Ban(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6).prop_map(Op::Accept),
        (0u8..8).prop_map(Op::Dial),
        (any::<usize>(), 0u8..8, 0u8..6).prop_map(|(permit, peer, ip)| Op::Promote {
            permit,
            peer,
            ip
        }),
        any::<usize>().prop_map(Op::DropPermit),
        any::<usize>().prop_map(Op::DropSlot),
        (0u8..8).prop_map(Op::Ban),
    ]
}

proptest! {
    /// Any sequence of operations keeps the counts equal to the live permits and slots, keeps
    /// them within the caps, and returns every place once everything is dropped.
    #[test]
    fn counts_match_live_handles(ops in prop::collection::vec(op(), 0..80), dup in any::<bool>()) {
        let config = AdmissionLimits {
            max_inbound: 3,
            max_outbound: 2,
            max_pending_inbound: 4,
            max_pending_inbound_per_ip: 2,
            max_connections_per_ip: 3,
            allow_duplicate_ip: dup,
            unconditional_peer_ids: vec![NodeId([7; 20])],
            ..AdmissionLimits::default()
        };
        // Peer n is NodeId([n; 20]); peer 0x50 would be LOCAL, so indices stay below it.
        let a = Admission::new(LOCAL, config.clone()).unwrap();
        let now = Instant::now();
        let mut permits: Vec<PendingPermit> = Vec::new();
        let mut slots: Vec<PeerSlot> = Vec::new();
        for op in ops {
            match op {
                Op::Accept(ip) => permits.extend(a.try_accept(v4(ip), now).ok()),
                Op::Dial(peer) => permits.extend(a.try_dial(id(peer), now).ok()),
                Op::Promote { permit, peer, ip } => {
                    if !permits.is_empty() {
                        let p = permits.swap_remove(permit % permits.len());
                        if let Ok(promoted) = p.promote(id(peer), v4(ip), now) {
                            if let Some(old) = promoted.displaced {
                                slots.retain(|s| s.conn_id() != old);
                            }
                            slots.push(promoted.slot);
                        }
                    }
                }
                Op::DropPermit(i) => {
                    if !permits.is_empty() {
                        drop(permits.swap_remove(i % permits.len()));
                    }
                }
                Op::DropSlot(i) => {
                    if !slots.is_empty() {
                        drop(slots.swap_remove(i % slots.len()));
                    }
                }
                Op::Ban(peer) => {
                    if let Some(conn) = a.ban(id(peer), now + Duration::from_secs(1)) {
                        slots.retain(|s| s.conn_id() != conn);
                    }
                }
            }
            let stats = a.stats();
            let inbound_permits = permits.iter().filter(|p| p.direction() == Direction::Inbound).count();
            prop_assert_eq!(stats.pending_inbound, inbound_permits);
            prop_assert_eq!(stats.dialing, permits.len() - inbound_permits);
            prop_assert_eq!(stats.peers, slots.len());
            prop_assert!(stats.pending_inbound <= config.max_pending_inbound);
            prop_assert!(stats.inbound <= config.max_inbound);
            prop_assert!(stats.outbound <= config.max_outbound);
            prop_assert!(stats.dialing <= config.max_outbound + 1, "one unconditional dial");
            for slot in &slots {
                prop_assert_eq!(a.connection(&slot.peer()).map(|c| c.0), Some(slot.conn_id()));
            }
        }
        drop(permits);
        drop(slots);
        prop_assert!(is_empty(a.stats()));
    }
}
