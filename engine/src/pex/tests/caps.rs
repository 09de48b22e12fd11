//! Native PEX with capabilities: the wire form between ringwire peers (round trip, bounds,
//! malformed answers break the rules; stock peers see stock's bytes), the book's capability
//! records (hearsay, then confirmed by the own handshake; kept in the file), and the dialer's
//! capability targets.

use std::time::{Duration, Instant};

use super::*;
use crate::pex::{
    BookCapabilities, CapabilityTarget, DialPlan, Outbound, PEX_CAPS_VERSION, PexError,
};
use crate::proto::native::frame::hello::MAX_CAPABILITIES;

fn caps(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Peer `n` on a native connection whose HELLO listed `capabilities`.
fn native(n: u8, outbound: bool, capabilities: &[&str]) -> PexPeer {
    PexPeer {
        native: true,
        capabilities: caps(capabilities),
        ..peer(n, outbound, Some(addr(n)))
    }
}

fn decode(action: &Option<Action>) -> wire::PexMessage {
    let Some(Action::Send { payload, .. }) = action else {
        panic!("expected a send, got {action:?}");
    };
    wire::PexMessage::decode(payload.clone()).unwrap()
}

fn cap_request() -> Vec<u8> {
    encode(Sum::PexRequest(wire::PexRequest {
        caps_version: PEX_CAPS_VERSION,
    }))
}

fn cap_entry(a: &PexAddr, list: &[&str], seen: bool) -> wire::CapAddress {
    wire::CapAddress {
        addr: Some(a.to_wire()),
        capabilities: caps(list),
        seen,
    }
}

fn cap_answer(version: u32, addrs: Vec<wire::CapAddress>) -> Vec<u8> {
    encode(Sum::PexCapAddrs(wire::PexCapAddrs { version, addrs }))
}

/// A state that asked native peer 9 (outbound) for addresses.
fn asking(t: Instant) -> Pex {
    let mut p = pex(PexConfig::default());
    let ask = p.peer_up(native(9, true, &[]), t);
    match decode(&ask).sum {
        Some(Sum::PexRequest(r)) => assert_eq!(r.caps_version, PEX_CAPS_VERSION),
        other => panic!("{other:?}"),
    }
    p
}

fn record(p: &Pex, n: u8) -> Option<BookCapabilities> {
    p.capabilities(&id(n))
}

#[test]
fn native_peers_exchange_confirmed_capabilities_and_stock_peers_see_stock_bytes() {
    let t = Instant::now();
    let mut teller = pex(PexConfig::default());
    // The teller saw the HELLO of nodes 1 (archive) and 2 (none); it heard of 3 only.
    teller.peer_up(native(1, false, &["archive", "light"]), t);
    teller.peer_up(native(2, false, &[]), t);
    assert!(teller.learn(addr(3), t));
    assert_eq!(
        record(&teller, 1),
        Some(BookCapabilities {
            capabilities: caps(&["archive", "light"]),
            confirmed: true
        })
    );
    // A native requester that asks for the capability answer gets it.
    teller.peer_up(native(8, false, &[]), t);
    let answer = teller.receive(id(8), &cap_request(), t);
    let Some(Sum::PexCapAddrs(list)) = decode(&answer).sum else {
        panic!("not a capability answer: {answer:?}");
    };
    assert_eq!(list.version, PEX_CAPS_VERSION);
    let mut got: Vec<(PexAddr, Vec<String>, bool)> = list
        .addrs
        .iter()
        .map(|e| {
            let a = PexAddr::from_wire(e.addr.as_ref().unwrap()).unwrap();
            (a, e.capabilities.clone(), e.seen)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(1), caps(&["archive", "light"]), true),
            (addr(2), vec![], true),
            (addr(3), vec![], false),
        ]
    );
    // A stock request from a native peer, and any request from a compat peer: stock's answer.
    teller.peer_up(native(7, false, &[]), t);
    let stock = teller.receive(id(7), &request(), t);
    assert!(matches!(decode(&stock).sum, Some(Sum::PexAddrs(_))));
    teller.peer_up(peer(6, false, Some(addr(6))), t);
    let stock = teller.receive(id(6), &cap_request(), t);
    assert!(matches!(decode(&stock).sum, Some(Sum::PexAddrs(_))));
    // A compat peer is asked with stock's bytes exactly.
    let ask = teller.peer_up(peer(5, true, Some(addr(5))), t);
    let Some(Action::Send { payload, .. }) = ask else {
        panic!("{ask:?}");
    };
    assert_eq!(&payload[..], &request()[..]);

    // The receiver takes the answer as hearsay, keeping the capabilities it has targets for
    // (archive, not light); hearsay is not passed on.
    let mut p = asking(t);
    p.config.capability_targets = vec![("archive".into(), CapabilityTarget::Percent(30))];
    assert_eq!(p.receive(id(9), &encode(Sum::PexCapAddrs(list)), t), None);
    assert_eq!(
        record(&p, 1),
        Some(BookCapabilities {
            capabilities: caps(&["archive"]),
            confirmed: false
        })
    );
    assert_eq!(record(&p, 2).map(|r| r.confirmed), Some(false));
    assert_eq!(record(&p, 3), None, "the teller had not seen node 3");
    p.peer_up(native(4, false, &[]), t);
    let again = p.receive(id(4), &cap_request(), t);
    let Some(Sum::PexCapAddrs(passed)) = decode(&again).sum else {
        panic!("{again:?}");
    };
    // Nodes 1 to 3 are hearsay here (9, the teller, is confirmed: this node saw its HELLO).
    let heard = [addr(1), addr(2), addr(3)].map(|a| a.to_wire());
    let of_heard: Vec<&wire::CapAddress> = passed
        .addrs
        .iter()
        .filter(|e| e.addr.as_ref().is_some_and(|a| heard.contains(a)))
        .collect();
    assert_eq!(of_heard.len(), 3);
    assert!(
        of_heard
            .iter()
            .all(|e| !e.seen && e.capabilities.is_empty())
    );
}

#[test]
fn malformed_or_unasked_native_answers_break_the_rules() {
    let t = Instant::now();
    let max = PexConfig::default().max_addrs_per_message;
    let too_many: Vec<String> = (0..=MAX_CAPABILITIES).map(|i| format!("c{i}")).collect();
    let long = "x".repeat(65);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            cap_answer(2, vec![cap_entry(&addr(1), &[], true)]),
            "native",
        ),
        (cap_answer(0, vec![]), "native"),
        (
            cap_answer(
                1,
                vec![wire::CapAddress {
                    addr: None,
                    capabilities: vec![],
                    seen: false,
                }],
            ),
            "address missing",
        ),
        (
            cap_answer(
                1,
                vec![wire::CapAddress {
                    addr: Some(addr(1).to_wire()),
                    capabilities: too_many,
                    seen: true,
                }],
            ),
            "capabilities",
        ),
        (
            cap_answer(1, vec![cap_entry(&addr(1), &["archive", "archive"], true)]),
            "twice",
        ),
        (
            cap_answer(1, vec![cap_entry(&addr(1), &[""], true)]),
            "capabilit",
        ),
        (
            cap_answer(1, vec![cap_entry(&addr(1), &[long.as_str()], true)]),
            "capabilit",
        ),
        (
            cap_answer(1, vec![cap_entry(&addr(1), &["archive"], false)]),
            "not seen",
        ),
        (
            cap_answer(
                1,
                (0..=max)
                    .map(|i| cap_entry(&addr(i as u8), &[], true))
                    .collect(),
            ),
            "more than",
        ),
        // Bytes that are not a message at all.
        (vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1], "unmarshaling"),
    ];
    for (bytes, says) in cases {
        let mut p = asking(t);
        match p.receive(id(9), &bytes, t) {
            Some(Action::Disconnect { peer, reason }) => {
                assert_eq!(peer, id(9));
                assert!(reason.to_string().contains(says), "{reason} lacks {says:?}");
            }
            other => panic!("{says}: {other:?}"),
        }
    }
    // Unsolicited: nothing asked.
    let mut p = pex(PexConfig::default());
    p.peer_up(native(9, false, &[]), t);
    let r = p.receive(
        id(9),
        &cap_answer(1, vec![cap_entry(&addr(1), &[], true)]),
        t,
    );
    assert!(
        matches!(
            r,
            Some(Action::Disconnect {
                reason: PexError::Unsolicited,
                ..
            })
        ),
        "{r:?}"
    );
    // From a compat connection, asked or not.
    let mut p = pex(PexConfig::default());
    assert!(p.peer_up(peer(9, true, Some(addr(9))), t).is_some());
    let r = p.receive(
        id(9),
        &cap_answer(1, vec![cap_entry(&addr(1), &[], true)]),
        t,
    );
    assert!(
        matches!(
            r,
            Some(Action::Disconnect {
                reason: PexError::NativeAnswer(_),
                ..
            })
        ),
        "{r:?}"
    );
    // The largest valid answer is taken.
    let mut p = asking(t);
    let full: Vec<String> = (0..MAX_CAPABILITIES).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    let bytes = cap_answer(1, vec![cap_entry(&addr(1), &refs, true)]);
    // Targets for all of them: the record keeps all of them.
    p.config.capability_targets = full
        .iter()
        .map(|c| (c.clone(), CapabilityTarget::AtLeast(1)))
        .collect();
    assert_eq!(p.receive(id(9), &bytes, t), None);
    assert_eq!(record(&p, 1).unwrap().capabilities.len(), MAX_CAPABILITIES);
    // Without targets, hearsay keeps none of them (it serves only targets).
    let mut q = asking(t);
    assert_eq!(q.receive(id(9), &bytes, t), None);
    assert_eq!(
        record(&q, 1),
        Some(BookCapabilities {
            capabilities: vec![],
            confirmed: false
        })
    );
}

#[test]
fn hearsay_is_confirmed_by_the_own_handshake_and_never_overrides_it() {
    let t = Instant::now();
    let mut p = asking(t);
    let bytes = cap_answer(1, vec![cap_entry(&addr(1), &["archive"], true)]);
    p.receive(id(9), &bytes, t);
    assert_eq!(record(&p, 1).map(|r| r.confirmed), Some(false));
    // The node's own HELLO says otherwise: the record is what it said, confirmed.
    p.peer_up(native(1, true, &["light"]), t);
    let confirmed = BookCapabilities {
        capabilities: caps(&["light"]),
        confirmed: true,
    };
    assert_eq!(record(&p, 1), Some(confirmed.clone()));
    // Later hearsay does not change it.
    p.peer_down(&id(1));
    p.peer_down(&id(9));
    p.peer_up(native(9, true, &[]), t + Duration::from_secs(20));
    p.receive(id(9), &bytes, t + Duration::from_secs(20));
    assert_eq!(record(&p, 1), Some(confirmed));
    // A compat connection confirms that the node offers nothing; it adds no record of its
    // own.
    p.peer_up(peer(5, true, Some(addr(5))), t);
    assert_eq!(record(&p, 5), None);
    p.peer_up(peer(1, true, Some(addr(1))), t);
    assert_eq!(
        record(&p, 1),
        Some(BookCapabilities {
            capabilities: vec![],
            confirmed: true
        })
    );
}

#[test]
fn capability_records_are_kept_in_the_file_and_bad_ones_forgotten() {
    let t = Instant::now();
    let wall = std::time::SystemTime::now();
    let mut p = pex(PexConfig::default());
    p.peer_up(native(1, false, &["archive"]), t);
    p.peer_up(native(2, false, &[]), t);
    p.learn(addr(3), t);
    let json = p.to_book_file(t, wall).to_json();
    let text = String::from_utf8(json.clone()).unwrap();
    assert!(text.contains("\"ringwire\""), "{text}");
    assert_eq!(
        text.matches("\"ringwire\"").count(),
        2,
        "only known records: {text}"
    );
    let mut q = pex(PexConfig::default());
    q.load_book_file(
        &crate::pex::AddrBookFile::from_json(&json).unwrap(),
        t,
        wall,
    );
    assert_eq!(record(&q, 1), record(&p, 1));
    assert_eq!(record(&q, 2), record(&p, 2));
    assert_eq!(record(&q, 3), None);
    // A list HELLO would refuse is forgotten; the address stays.
    let bad = text.replace("\"archive\"", "\"not valid\"");
    let mut r = pex(PexConfig::default());
    r.load_book_file(
        &crate::pex::AddrBookFile::from_json(bad.as_bytes()).unwrap(),
        t,
        wall,
    );
    assert_eq!(r.addresses().len(), 3);
    assert_eq!(record(&r, 1), None);
}

// ---- capability targets ------------------------------------------------------------------

fn out(connected: usize, dialing: usize, target: usize) -> Outbound {
    Outbound {
        connected,
        dialing,
        target,
    }
}

fn targeted(t: Instant) -> Pex {
    let mut p = pex(PexConfig {
        capability_targets: vec![("archive".into(), CapabilityTarget::Percent(30))],
        ..PexConfig::default()
    });
    // Nodes 1..=40 known; 31..=33 archive, confirmed; 34..=36 archive, hearsay.
    for i in 1..=40 {
        assert!(p.learn(addr(i), t));
    }
    for i in 31..=33 {
        p.book.set_capabilities(&id(i), caps(&["archive"]), true);
    }
    for i in 34..=36 {
        p.book.set_capabilities(&id(i), caps(&["archive"]), false);
    }
    p
}

fn first(plan: &DialPlan, n: usize) -> Vec<u8> {
    plan.candidates.iter().take(n).map(|a| a.id.0[0]).collect()
}

#[test]
fn below_target_the_dialer_prefers_confirmed_then_hearsay_capable_addresses() {
    let t = Instant::now();
    let mut p = targeted(t);
    assert_eq!(
        p.capability_deficits(out(0, 0, 10)),
        vec![("archive".into(), 3)]
    );
    let plan = p.ensure_peers(out(0, 0, 10), t);
    assert_eq!(plan.want, 10);
    let mut head = first(&plan, 3);
    head.sort();
    assert_eq!(head, vec![31, 32, 33], "confirmed first: {plan:?}");
    let mut next = first(&plan, 6)[3..].to_vec();
    next.sort();
    assert_eq!(next, vec![34, 35, 36], "then hearsay: {plan:?}");
    let mut unique: Vec<u8> = plan.candidates.iter().map(|a| a.id.0[0]).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), plan.candidates.len(), "each address once");
    // Two archive peers connected: one missing, still the capable ones first.
    p.peer_up(native(31, true, &["archive"]), t);
    p.peer_up(native(32, true, &["archive"]), t);
    assert_eq!(
        p.capability_deficits(out(2, 0, 10)),
        vec![("archive".into(), 1)]
    );
    let plan = p.ensure_peers(out(2, 0, 10), t);
    assert!(first(&plan, 1)[0] == 33, "{plan:?}");
    // At target: plain stock picks, capable addresses not favoured.
    p.peer_up(native(33, true, &["archive"]), t);
    assert!(p.capability_deficits(out(3, 0, 10)).is_empty());
    let hits = (0..50)
        .filter(|_| {
            let plan = p.ensure_peers(out(3, 0, 10), t);
            plan.candidates
                .first()
                .is_some_and(|a| (34..=36).contains(&a.id.0[0]))
        })
        .count();
    assert!(
        hits < 25,
        "hearsay archive addresses first {hits} times in 50"
    );
    // A count target.
    let mut c = targeted(t);
    c.config.capability_targets = vec![("archive".into(), CapabilityTarget::AtLeast(5))];
    assert_eq!(
        c.capability_deficits(out(0, 0, 10)),
        vec![("archive".into(), 5)]
    );
}

#[test]
fn with_full_slots_one_peer_without_the_capability_is_replaced_per_round() {
    let t = Instant::now();
    let mut p = targeted(t);
    // Ten outbound peers: 1..=9 without archive, 31 with it (one of three wanted).
    for i in 1..=9 {
        p.peer_up(native(i, true, &[]), t);
    }
    p.peer_up(native(31, true, &["archive"]), t);
    let _ = std::iter::from_fn(|| p.poll_action()).count();
    let plan = p.ensure_peers(out(10, 0, 10), t);
    assert_eq!(plan.want, 0);
    let gone: Vec<Action> = std::iter::from_fn(|| p.poll_action()).collect();
    assert_eq!(gone.len(), 1, "one per round: {gone:?}");
    let Action::Release {
        peer: victim,
        reason,
    } = gone[0].clone()
    else {
        panic!("{gone:?}");
    };
    assert!(reason.contains("capability"));
    assert!((1..=9).contains(&victim.0[0]), "never the archive peer");
    assert_eq!(p.stats().capability_replacements, 1);
    // While it is leaving, no other goes.
    p.ensure_peers(out(10, 0, 10), t);
    assert_eq!(p.poll_action(), None);
    // Gone: the next round is due at once and dials a capable address first.
    p.peer_down(&victim);
    assert!(p.take_wake());
    let plan = p.ensure_peers(out(9, 0, 10), t);
    assert_eq!(plan.want, 1);
    assert!([32, 33].contains(&first(&plan, 1)[0]), "{plan:?}");
    // Nothing capable to dial: nobody is let go.
    let mut none = pex(PexConfig {
        capability_targets: vec![("archive".into(), CapabilityTarget::Percent(30))],
        ..PexConfig::default()
    });
    for i in 1..=10 {
        none.peer_up(native(i, true, &[]), t);
    }
    // The outbound ones were asked when they came up; an inbound one was not.
    none.peer_up(native(11, false, &[]), t);
    let _ = std::iter::from_fn(|| none.poll_action()).count();
    // ... but a peer is asked for addresses, to learn of capable ones.
    let plan = none.ensure_peers(out(10, 0, 10), t);
    assert_eq!(none.poll_action(), None);
    assert_eq!(none.stats().capability_replacements, 0);
    assert!(
        matches!(&plan.requests[..], [Action::Send { peer, .. }] if *peer == id(11)),
        "{plan:?}"
    );
    // At target, nobody is asked with full slots (stock).
    let mut met = pex(PexConfig::default());
    for i in 1..=10 {
        met.peer_up(native(i, true, &[]), t);
    }
    met.peer_up(native(11, false, &[]), t);
    let _ = std::iter::from_fn(|| met.poll_action()).count();
    assert!(met.ensure_peers(out(10, 0, 10), t).requests.is_empty());
}

#[test]
fn peers_that_came_in_while_dialed_hold_outbound_places_and_count_as_outbound() {
    // The simultaneous-dial tie-break can keep the peer's own connection to a peer this node
    // was dialing: it came in, yet takes the outbound place the dial reserved. Ten such peers
    // fill the outbound slots (one carries archive); the target must count and replace them.
    let t = Instant::now();
    let mut p = targeted(t);
    for i in 1..=9 {
        p.peer_up(native(i, false, &[]), t);
    }
    p.peer_up(native(31, false, &["archive"]), t);
    // An inbound archive peer that holds an inbound place counts for nothing.
    p.peer_up(native(32, false, &["archive"]), t);
    let _ = std::iter::from_fn(|| p.poll_action()).count();
    let places: Vec<NodeId> = (1..=9).chain([31]).map(id).collect();
    p.set_outbound_places(places.clone());
    assert_eq!(
        p.capability_deficits(out(10, 0, 10)),
        vec![("archive".into(), 2)]
    );
    p.ensure_peers(out(10, 0, 10), t);
    let gone: Vec<Action> = std::iter::from_fn(|| p.poll_action()).collect();
    let [Action::Release { peer: victim, .. }] = gone[..] else {
        panic!("one peer let go: {gone:?}");
    };
    assert!((1..=9).contains(&victim.0[0]), "a plain peer: {gone:?}");
    // Without the places, by direction alone, nothing could be replaced: nobody was dialed.
    let mut q = targeted(t);
    for i in 1..=9 {
        q.peer_up(native(i, false, &[]), t);
    }
    q.peer_up(native(31, false, &["archive"]), t);
    let _ = std::iter::from_fn(|| q.poll_action()).count();
    q.ensure_peers(out(10, 0, 10), t);
    assert_eq!(q.poll_action(), None);
    assert_eq!(q.stats().capability_replacements, 0);
}

#[test]
fn a_replacement_never_takes_a_peer_another_target_needs() {
    let t = Instant::now();
    let mut p = targeted(t);
    p.config
        .capability_targets
        .push(("light".into(), CapabilityTarget::AtLeast(9)));
    // Nine light peers (exactly the light target) and one archive peer.
    for i in 1..=9 {
        p.peer_up(native(i, true, &["light"]), t);
    }
    p.peer_up(native(31, true, &["archive"]), t);
    let _ = std::iter::from_fn(|| p.poll_action()).count();
    p.ensure_peers(out(10, 0, 10), t);
    assert_eq!(p.poll_action(), None, "every peer counts towards a target");
}
