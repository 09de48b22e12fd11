//! The peer manager's dial schedule: persistent peers, backoff, limits, bans, reconnects.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::peers::{
    AddPeerError, AdmissionLimits, BackoffConfig, ConnectionId, Dial, Direction, DisconnectReason,
    Host, ManagerConfig, PeerAddr, PeerManager, PeerSlot, Refused,
};
use crate::proto::secret::NodeId;

const LOCAL: NodeId = NodeId([0x50; 20]);

fn id(n: u8) -> NodeId {
    NodeId([n; 20])
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn addr(n: u8) -> PeerAddr {
    PeerAddr {
        id: id(n),
        host: Host::Ip(ip(n)),
        port: 26656,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Backoff without jitter, so delays are exact.
fn exact_backoff() -> BackoffConfig {
    BackoffConfig {
        jitter: 0.0,
        ..BackoffConfig::default()
    }
}

fn manager(peers: &[u8], f: impl FnOnce(&mut ManagerConfig)) -> (PeerManager, Instant) {
    let mut config = ManagerConfig {
        persistent_peers: peers.iter().map(|n| addr(*n)).collect(),
        backoff: exact_backoff(),
        ..ManagerConfig::default()
    };
    f(&mut config);
    let now = Instant::now();
    (PeerManager::new(LOCAL, config, 7, now).unwrap(), now)
}

fn dial_ids(m: &mut PeerManager, now: Instant) -> Vec<(NodeId, Dial)> {
    std::iter::from_fn(|| m.poll_dial(now))
        .map(|d| (d.addr.id, d))
        .collect()
}

/// Completes a dial: promote and report it.
fn complete(m: &mut PeerManager, dial: Dial, now: Instant) -> PeerSlot {
    let peer = dial.addr.id;
    let Host::Ip(remote) = dial.addr.host else {
        panic!("test addresses are IPs")
    };
    let slot = dial.permit.promote(peer, remote, now).unwrap().slot;
    m.on_connected(peer, slot.conn_id(), Direction::Outbound, now);
    slot
}

#[test]
fn defaults_are_stocks() {
    let c = ManagerConfig::default();
    assert_eq!(c.dial_timeout, secs(3));
    assert_eq!(c.handshake_timeout, secs(20));
    c.validate().unwrap();
    let bad = ManagerConfig {
        dial_timeout: Duration::ZERO,
        ..ManagerConfig::default()
    };
    assert!(
        bad.validate()
            .unwrap_err()
            .to_string()
            .contains("dial_timeout")
    );
}

#[test]
fn persistent_peers_are_dialed_at_start_in_order_once() {
    let (mut m, now) = manager(&[3, 1, 2], |_| {});
    let dials = dial_ids(&mut m, now);
    let ids: Vec<_> = dials.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [id(3), id(1), id(2)]);
    assert_eq!(dials[0].1.deadline, now + secs(3));
    assert!(
        m.poll_dial(now + secs(100)).is_none(),
        "no second dial while dialing"
    );
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.admission().stats().dialing, 3);
}

#[test]
fn own_id_and_repeats_in_the_list_are_skipped() {
    let mut config = ManagerConfig {
        persistent_peers: vec![addr(1), addr(1), addr(2)],
        ..ManagerConfig::default()
    };
    config.persistent_peers.push(PeerAddr {
        id: LOCAL,
        ..addr(9)
    });
    let now = Instant::now();
    let mut m = PeerManager::new(LOCAL, config, 0, now).unwrap();
    assert_eq!(m.target_count(), 2);
    assert_eq!(dial_ids(&mut m, now).len(), 2);
}

#[test]
fn failures_back_off_exponentially_up_to_the_cap() {
    let (mut m, start) = manager(&[1], |_| {});
    let mut now = start;
    let mut waits = Vec::new();
    for _ in 0..8 {
        let dial = m.poll_dial(now).expect("due");
        drop(dial.permit);
        m.on_dial_failed(&id(1), now);
        let next = m.poll_timeout().unwrap();
        assert!(m.poll_dial(next - Duration::from_millis(1)).is_none());
        waits.push((next - now).as_secs());
        now = next;
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(m.target(&id(1)).unwrap().failures, 8);
}

#[test]
fn persistent_peers_are_retried_forever() {
    let (mut m, start) = manager(&[1], |c| c.backoff = BackoffConfig::default());
    let mut now = start;
    for _ in 0..1000 {
        let dial = m
            .poll_dial(now)
            .expect("a persistent peer is never given up");
        drop(dial);
        m.on_dial_failed(&id(1), now);
        let next = m.poll_timeout().unwrap();
        assert!(next - now <= secs(30));
        now = next;
    }
}

#[test]
fn other_targets_are_given_up_after_max_attempts() {
    let (mut m, start) = manager(&[], |_| {});
    m.add_peer(addr(1), false, start).unwrap();
    let mut now = start;
    for attempt in 1..=5 {
        let dial = m.poll_dial(now).expect("due");
        drop(dial);
        m.on_dial_failed(&id(1), now);
        if attempt < 5 {
            now = m.poll_timeout().unwrap();
        }
    }
    assert_eq!(m.target(&id(1)), None);
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.target_count(), 0);
}

#[test]
fn a_connected_transient_target_is_done() {
    let (mut m, now) = manager(&[], |_| {});
    m.add_peer(addr(1), false, now).unwrap();
    let (_, dial) = dial_ids(&mut m, now).pop().unwrap();
    let slot = complete(&mut m, dial, now);
    assert_eq!(m.target(&id(1)), None);
    m.on_disconnected(&id(1), slot.conn_id(), DisconnectReason::Closed, now);
    assert_eq!(m.poll_timeout(), None, "not redialled");
}

#[test]
fn outbound_limit_holds_dials_back_without_spinning() {
    let (mut m, now) = manager(&[1, 2, 3], |c| c.limits.max_outbound = 1);
    let mut dials = dial_ids(&mut m, now);
    assert_eq!(dials.len(), 1);
    // Targets 2 and 3 are due but there is no place: no timeout to spin on.
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(
        m.admission().refusals().outbound_full,
        0,
        "no refusal counted"
    );
    let (_, dial) = dials.pop().unwrap();
    let slot = complete(&mut m, dial, now);
    assert!(m.poll_dial(now).is_none());
    // The peer drops: its place frees and the next target goes.
    let later = now + secs(60);
    m.on_disconnected(&id(1), slot.conn_id(), DisconnectReason::Closed, later);
    drop(slot);
    assert_eq!(m.poll_timeout(), Some(now));
    assert_eq!(m.poll_dial(later).unwrap().addr.id, id(2));
}

#[test]
fn unconditional_peers_are_dialed_past_the_limit() {
    let (mut m, now) = manager(&[1, 2], |c| {
        c.limits.max_outbound = 1;
        c.limits.unconditional_peer_ids = vec![id(2)];
    });
    assert_eq!(dial_ids(&mut m, now).len(), 2);
}

#[test]
fn at_most_max_concurrent_dials_run_at_once() {
    let (mut m, now) = manager(&[1, 2, 3, 4], |c| c.max_concurrent_dials = 2);
    let mut dials = dial_ids(&mut m, now);
    let ids: Vec<NodeId> = dials.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [id(1), id(2)]);
    // Targets 3 and 4 are due, but two dials run: nothing to wake for until one ends.
    assert_eq!(m.poll_timeout(), None);
    assert!(m.poll_dial(now).is_none());
    // A failed dial makes room for the next target at once.
    let (failed, dial) = dials.remove(0);
    drop(dial);
    m.on_dial_failed(&failed, now);
    assert_eq!(m.poll_timeout(), Some(now));
    let third = dial_ids(&mut m, now);
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].0, id(3));
    // A completed one too; an operator's dial (a permit taken outside the manager) counts.
    let (_, dial) = dials.remove(0);
    let _slot = complete(&mut m, dial, now);
    let operator = m.admission().try_dial(id(9), now).unwrap();
    assert_eq!(m.admission().stats().dialing, 2);
    assert!(m.poll_dial(now).is_none());
    drop(operator);
    assert_eq!(m.poll_dial(now).unwrap().addr.id, id(4));
}

#[test]
fn max_concurrent_dials_defaults_to_16_and_must_be_positive() {
    assert_eq!(ManagerConfig::default().max_concurrent_dials, 16);
    let zero = ManagerConfig {
        max_concurrent_dials: 0,
        ..ManagerConfig::default()
    };
    assert!(zero.validate().is_err());
}

#[test]
fn an_inbound_peer_is_not_dialed_and_reconnects_after_it_drops() {
    let (mut m, now) = manager(&[1], |_| {});
    let slot = m
        .admission()
        .try_accept(ip(1), now)
        .unwrap()
        .promote(id(1), ip(1), now)
        .unwrap()
        .slot;
    m.on_connected(id(1), slot.conn_id(), Direction::Inbound, now);
    assert!(m.is_connected(&id(1)));
    assert!(m.poll_dial(now).is_none());
    assert_eq!(m.poll_timeout(), None);

    // A long-lived connection ends: first retry after `base`.
    let later = now + secs(3600);
    m.on_disconnected(&id(1), slot.conn_id(), DisconnectReason::Timeout, later);
    drop(slot);
    assert_eq!(m.poll_timeout(), Some(later + secs(1)));
    assert!(m.poll_dial(later).is_none());
    assert!(m.poll_dial(later + secs(1)).is_some());
}

#[test]
fn a_flapping_peer_keeps_backing_off() {
    let (mut m, start) = manager(&[1], |_| {});
    let mut now = start;
    let mut waits = Vec::new();
    for _ in 0..5 {
        let dial = m.poll_dial(now).unwrap();
        let slot = complete(&mut m, dial, now);
        // Accepted, then dropped a moment later.
        now += Duration::from_millis(10);
        m.on_disconnected(&id(1), slot.conn_id(), DisconnectReason::Closed, now);
        drop(slot);
        let next = m.poll_timeout().unwrap();
        waits.push((next - now).as_secs());
        now = next;
    }
    assert_eq!(waits, [1, 2, 4, 8, 16]);
}

#[test]
fn a_protocol_error_does_not_reset_the_backoff() {
    for (reason, wait) in [
        (DisconnectReason::Closed, secs(1)),
        (DisconnectReason::ProtocolError, secs(2)),
    ] {
        let (mut m, start) = manager(&[1], |_| {});
        drop(m.poll_dial(start).unwrap());
        m.on_dial_failed(&id(1), start);
        let at = m.poll_timeout().unwrap();
        let dial = m.poll_dial(at).unwrap();
        let slot = complete(&mut m, dial, at);
        let end = at + secs(3600);
        m.on_disconnected(&id(1), slot.conn_id(), reason, end);
        assert_eq!(m.poll_timeout().unwrap() - end, wait, "{reason:?}");
    }
}

#[test]
fn a_displaced_connection_closing_is_not_a_disconnect() {
    let (mut m, now) = manager(&[1], |_| {});
    let (_, dial) = dial_ids(&mut m, now).pop().unwrap();
    let first = complete(&mut m, dial, now);
    // id(1) < LOCAL, so id(1)'s own dial (inbound here) replaces ours.
    let second = m
        .admission()
        .try_accept(ip(1), now)
        .unwrap()
        .promote(id(1), ip(1), now)
        .unwrap();
    assert_eq!(second.displaced, Some(first.conn_id()));
    m.on_connected(id(1), second.slot.conn_id(), Direction::Inbound, now);
    m.on_disconnected(&id(1), first.conn_id(), DisconnectReason::Local, now);
    drop(first);
    assert!(m.is_connected(&id(1)));
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.connected_count(), 1);
}

#[test]
fn banned_targets_wait_for_the_ban_to_end() {
    let (mut m, now) = manager(&[1, 2], |_| {});
    assert_eq!(m.ban(id(1), now + secs(600)), None);
    let dials = dial_ids(&mut m, now);
    assert_eq!(dials.len(), 1);
    assert_eq!(dials[0].0, id(2));
    assert!(m.is_banned(&id(1), now));
    assert_eq!(m.poll_timeout(), Some(now + secs(600)));
    assert!(m.poll_dial(now + secs(599)).is_none());
    assert_eq!(m.poll_dial(now + secs(600)).unwrap().addr.id, id(1));
    assert_eq!(m.admission().refusals().banned, 0, "skipped, not refused");
}

#[test]
fn banning_a_connected_peer_names_its_connection() {
    let (mut m, now) = manager(&[1], |_| {});
    let (_, dial) = dial_ids(&mut m, now).pop().unwrap();
    let slot = complete(&mut m, dial, now);
    assert_eq!(m.ban(id(1), now + secs(60)), Some(slot.conn_id()));
    m.on_disconnected(&id(1), slot.conn_id(), DisconnectReason::Local, now);
    drop(slot);
    assert_eq!(m.poll_timeout(), Some(now + secs(60)));
    assert!(m.unban(&id(1)));
    assert_eq!(m.poll_timeout(), Some(now + secs(1)));
}

#[test]
fn add_peer_rules() {
    let (mut m, now) = manager(&[1], |c| c.max_dial_targets = 2);
    assert_eq!(
        m.add_peer(
            PeerAddr {
                id: LOCAL,
                ..addr(1)
            },
            false,
            now
        ),
        Err(AddPeerError::SelfAddress)
    );
    m.add_peer(addr(2), false, now).unwrap();
    m.add_peer(addr(3), false, now).unwrap();
    assert_eq!(
        m.add_peer(addr(4), false, now),
        Err(AddPeerError::TooManyTargets)
    );
    // Configured persistent peers do not count toward the bound; updating a known one is fine.
    m.add_peer(addr(1), true, now).unwrap();
    m.add_peer(addr(2), true, now).unwrap();
    assert!(m.target(&id(2)).unwrap().persistent);
    assert!(m.remove_peer(&id(3)));
    assert!(!m.remove_peer(&id(3)));
    m.add_peer(addr(4), false, now).unwrap();
}

#[test]
fn an_operator_dial_makes_a_waiting_target_due_now() {
    let (mut m, now) = manager(&[1], |_| {});
    drop(m.poll_dial(now).unwrap());
    m.on_dial_failed(&id(1), now);
    let later = now + Duration::from_millis(100);
    assert!(m.poll_dial(later).is_none());
    let moved = PeerAddr {
        port: 1234,
        ..addr(1)
    };
    m.add_peer(moved.clone(), true, later).unwrap();
    assert_eq!(m.poll_dial(later).unwrap().addr, moved);
}

#[test]
fn an_inbound_connection_during_our_dial_settles_a_transient_target() {
    let (mut m, now) = manager(&[], |_| {});
    m.add_peer(addr(1), false, now).unwrap();
    let (_, dial) = dial_ids(&mut m, now).pop().unwrap();
    let inbound = m
        .admission()
        .try_accept(ip(1), now)
        .unwrap()
        .promote(id(1), ip(1), now)
        .unwrap()
        .slot;
    m.on_connected(id(1), inbound.conn_id(), Direction::Inbound, now);
    // Our dial loses the tie-break (id(1) < LOCAL keeps id(1)'s dial).
    let refused = dial.permit.promote(id(1), ip(1), now).unwrap_err();
    assert_eq!(refused, Refused::Duplicate);
    m.on_dial_failed(&id(1), now);
    assert_eq!(m.target(&id(1)), None);
    assert!(m.is_connected(&id(1)));
}

/// `docs/RELIABILITY.md` row 14: after a partition heals, reconnects spread over the jitter window and
/// all land within the cap.
#[test]
fn a_healed_partition_reconnects_without_a_storm() {
    let peers: Vec<u8> = (1..=40).collect();
    let (mut m, start) = manager(&peers, |c| {
        c.backoff = BackoffConfig::default();
        c.limits.max_outbound = 40;
        c.limits.allow_duplicate_ip = true;
        c.max_concurrent_dials = 40;
    });
    let mut slots: Vec<PeerSlot> = dial_ids(&mut m, start)
        .into_iter()
        .map(|(_, d)| complete(&mut m, d, start))
        .collect();
    assert_eq!(slots.len(), 40);
    // All 40 drop at the same instant, after a long time, and fail twice while partitioned.
    let mut now = start + secs(3600);
    for slot in slots.drain(..) {
        m.on_disconnected(&slot.peer(), slot.conn_id(), DisconnectReason::Timeout, now);
    }
    let mut retry_times: Vec<Instant> = Vec::new();
    for round in 0..3 {
        let mut times = Vec::new();
        while let Some(at) = m.poll_timeout() {
            let dials = dial_ids(&mut m, at);
            assert!(!dials.is_empty());
            for (peer, dial) in dials {
                times.push(at);
                if round < 2 {
                    drop(dial);
                    m.on_dial_failed(&peer, at);
                } else {
                    slots.push(complete(&mut m, dial, at));
                }
            }
            if times.len() == 40 {
                break;
            }
        }
        assert_eq!(times.len(), 40);
        let first = *times.iter().min().unwrap();
        let last = *times.iter().max().unwrap();
        assert!(last - now <= secs(30), "bounded by the cap");
        assert!(last - first > Duration::ZERO, "spread by jitter");
        now = last;
        retry_times.extend(times);
    }
    retry_times.sort();
    retry_times.dedup();
    assert!(
        retry_times.len() > 100,
        "{} distinct dial instants",
        retry_times.len()
    );
    assert_eq!(m.connected_count(), 40);
}

#[test]
fn connection_ids_from_events_are_opaque() {
    // Unknown peers and connections are ignored.
    let (mut m, now) = manager(&[], |_| {});
    m.on_disconnected(&id(9), ConnectionId(5), DisconnectReason::Closed, now);
    m.on_dial_failed(&id(9), now);
    m.on_connected(id(9), ConnectionId(5), Direction::Inbound, now);
    assert!(m.is_connected(&id(9)));
}

#[test]
fn limits_flow_into_admission() {
    let (m, now) = manager(&[], |c| {
        c.limits = AdmissionLimits {
            max_inbound: 0,
            ..AdmissionLimits::default()
        }
    });
    assert_eq!(
        m.admission().try_accept(ip(1), now).unwrap_err(),
        Refused::InboundFull
    );
}

#[test]
fn a_peer_admitted_behind_the_managers_back_is_not_redialled_in_a_loop() {
    let (mut m, now) = manager(&[1], |_| {});
    // Connected through the admission, not yet reported to the manager.
    let _slot = m
        .admission()
        .try_accept(ip(1), now)
        .unwrap()
        .promote(id(1), ip(1), now)
        .unwrap()
        .slot;
    assert!(m.poll_dial(now).is_none());
    assert!(m.poll_timeout().unwrap() > now, "no spin");
}

#[test]
fn once_dialed_targets_are_given_up_at_their_first_failure() {
    let (mut m, now) = manager(&[], |c| c.limits.max_outbound = 2);
    assert_eq!(m.dial_once(addr(1), now), Ok(true));
    assert_eq!(m.dial_once(addr(2), now), Ok(true));
    assert_eq!(m.dial_once(addr(3), now), Ok(true));
    // A target already, or this node: not added again.
    assert_eq!(m.dial_once(addr(1), now), Ok(false));
    let own = PeerAddr {
        id: LOCAL,
        ..addr(9)
    };
    assert_eq!(m.dial_once(own, now), Err(AddPeerError::SelfAddress));
    assert_eq!(m.queued_once(), 3);
    // Two outbound places: two dials start, the third waits for a place.
    let mut dials = dial_ids(&mut m, now);
    assert_eq!(dials.len(), 2);
    assert_eq!(m.queued_once(), 1);
    // A failure gives the target up: no retry, whatever the backoff.
    let (failed, dial) = dials.remove(0);
    drop(dial);
    m.on_dial_failed(&failed, now);
    assert!(!m.is_target(&failed));
    // A success drops it too (its job is done).
    let (won, dial) = dials.remove(0);
    let _slot = complete(&mut m, dial, now);
    assert!(!m.is_target(&won));
    // The one still waiting is given up at the next round; none is redialled.
    assert_eq!(m.cancel_queued_once(), 1);
    assert_eq!(m.target_count(), 0);
    assert!(dial_ids(&mut m, now + secs(3600)).is_empty());
    // Connected, dialing or banned peers are not added.
    assert_eq!(m.dial_once(addr(won.0[0]), now), Ok(false));
    m.ban(id(7), now + secs(60));
    assert_eq!(m.dial_once(addr(7), now), Ok(false));
}

#[test]
fn once_dialed_targets_refused_at_dial_time_are_dropped_not_retried() {
    let (mut m, now) = manager(&[], |_| {});
    assert_eq!(m.dial_once(addr(1), now), Ok(true));
    // Banned after it was queued: dropped at the dial, not kept until the ban ends.
    m.ban(id(1), now + secs(60));
    assert!(dial_ids(&mut m, now).is_empty());
    assert!(!m.is_target(&id(1)));
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn persistent_targets_stay_the_managers() {
    let (mut m, now) = manager(&[1], |_| {});
    // A persistent peer is a target already: the book's dialer cannot make it a once target.
    assert_eq!(m.dial_once(addr(1), now), Ok(false));
    assert!(m.target(&id(1)).unwrap().persistent);
    assert_eq!(m.queued_once(), 0);
    assert_eq!(m.cancel_queued_once(), 0);
    assert!(m.is_target(&id(1)));
}

#[test]
fn seeds_are_dialed_one_at_a_time_in_the_order_given() {
    let (mut m, now) = manager(&[], |c| c.seeds = vec![addr(1), addr(2), addr(3)]);
    // Seeds are not dialed on their own.
    assert!(dial_ids(&mut m, now).is_empty());
    assert_eq!(m.dial_seed([2, 0, 1], now), Some(id(3)));
    let dials = dial_ids(&mut m, now);
    assert_eq!(dials.len(), 1);
    assert_eq!(dials[0].0, id(3));
    // Being dialed: the next in the order is taken; a banned one is skipped.
    m.ban(id(1), now + secs(60));
    assert_eq!(m.dial_seed([2, 0, 1], now), Some(id(2)));
    assert_eq!(m.dial_seed([2, 0, 1, 7], now), None);
}

mod ops {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Add { peer: u8, persistent: bool },
        Advance { ms: u64 },
        FailDial { index: usize },
        CompleteDial { index: usize },
        Inbound { peer: u8 },
        Disconnect { index: usize, reason: u8 },
        Ban { peer: u8, secs: u64 },
        Unban { peer: u8 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u8..12, any::<bool>()).prop_map(|(peer, persistent)| Op::Add { peer, persistent }),
            (0u64..40_000).prop_map(|ms| Op::Advance { ms }),
            any::<usize>().prop_map(|index| Op::FailDial { index }),
            any::<usize>().prop_map(|index| Op::CompleteDial { index }),
            (1u8..12).prop_map(|peer| Op::Inbound { peer }),
            (any::<usize>(), 0u8..4).prop_map(|(index, reason)| Op::Disconnect { index, reason }),
            (1u8..12, 0u64..120).prop_map(|(peer, secs)| Op::Ban { peer, secs }),
            (1u8..12).prop_map(|peer| Op::Unban { peer }),
        ]
    }

    proptest! {
        /// Whatever happens, after draining `poll_dial` the manager never asks to be woken in
        /// the past (no busy loop), never dials a connected or banned peer, never exceeds the
        /// outbound limit, and its view matches the admission state.
        #[test]
        fn the_schedule_never_spins_and_respects_limits(
            ops in prop::collection::vec(op(), 0..120),
            seed in any::<u64>(),
        ) {
            let config = ManagerConfig {
                persistent_peers: vec![addr(1), addr(2), addr(3)],
                limits: AdmissionLimits {
                    max_outbound: 2,
                    max_inbound: 3,
                    allow_duplicate_ip: true,
                    unconditional_peer_ids: vec![id(3)],
                    ..AdmissionLimits::default()
                },
                ..ManagerConfig::default()
            };
            let start = Instant::now();
            let mut now = start;
            let mut m = PeerManager::new(LOCAL, config, seed, start).unwrap();
            let mut dials: Vec<Dial> = Vec::new();
            let mut slots: Vec<PeerSlot> = Vec::new();
            for op in ops {
                match op {
                    Op::Add { peer, persistent } => {
                        let _ = m.add_peer(addr(peer), persistent, now);
                    }
                    Op::Advance { ms } => now += Duration::from_millis(ms),
                    Op::FailDial { index } if !dials.is_empty() => {
                        let dial = dials.swap_remove(index % dials.len());
                        let peer = dial.addr.id;
                        drop(dial);
                        m.on_dial_failed(&peer, now);
                    }
                    Op::CompleteDial { index } if !dials.is_empty() => {
                        let dial = dials.swap_remove(index % dials.len());
                        let peer = dial.addr.id;
                        match dial.permit.promote(peer, ip(peer.0[0]), now) {
                            Ok(promoted) => {
                                if let Some(old) = promoted.displaced {
                                    slots.retain(|s| s.conn_id() != old);
                                }
                                m.on_connected(peer, promoted.slot.conn_id(), Direction::Outbound, now);
                                slots.push(promoted.slot);
                            }
                            Err(_) => m.on_dial_failed(&peer, now),
                        }
                    }
                    Op::Inbound { peer } => {
                        let promoted = m
                            .admission()
                            .try_accept(ip(peer), now)
                            .ok()
                            .and_then(|permit| permit.promote(id(peer), ip(peer), now).ok());
                        if let Some(promoted) = promoted {
                            if let Some(old) = promoted.displaced {
                                slots.retain(|s| s.conn_id() != old);
                            }
                            m.on_connected(id(peer), promoted.slot.conn_id(), Direction::Inbound, now);
                            slots.push(promoted.slot);
                        }
                    }
                    Op::Disconnect { index, reason } if !slots.is_empty() => {
                        let slot = slots.swap_remove(index % slots.len());
                        let reason = [
                            DisconnectReason::Closed,
                            DisconnectReason::Timeout,
                            DisconnectReason::ProtocolError,
                            DisconnectReason::Local,
                        ][usize::from(reason)];
                        m.on_disconnected(&slot.peer(), slot.conn_id(), reason, now);
                    }
                    Op::Ban { peer, secs } => {
                        let conn = m.ban(id(peer), now + Duration::from_secs(secs));
                        if let Some(i) = slots.iter().position(|s| Some(s.conn_id()) == conn) {
                            let slot = slots.swap_remove(i);
                            m.on_disconnected(&slot.peer(), slot.conn_id(), DisconnectReason::Local, now);
                        }
                    }
                    Op::Unban { peer } => {
                        m.unban(&id(peer));
                    }
                    _ => {}
                }
                while let Some(dial) = m.poll_dial(now) {
                    let peer = dial.addr.id;
                    prop_assert!(!m.is_banned(&peer, now));
                    prop_assert!(!slots.iter().any(|s| s.peer() == peer), "dialed a connected peer");
                    prop_assert!(!dials.iter().any(|d| d.addr.id == peer), "dialed twice");
                    dials.push(dial);
                }
                if let Some(wake) = m.poll_timeout() {
                    prop_assert!(wake > now, "asks to wake at {:?}, now is {:?}", wake - start, now - start);
                }
                let stats = m.admission().stats();
                prop_assert_eq!(stats.dialing, dials.len());
                prop_assert_eq!(stats.peers, slots.len());
                prop_assert!(stats.outbound <= 2);
                let counted_dials = dials.iter().filter(|d| d.addr.id != id(3)).count();
                prop_assert!(counted_dials <= 2);
                prop_assert_eq!(m.connected_count(), slots.len());
            }
        }
    }
}
