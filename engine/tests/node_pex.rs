//! PEX inside nodes: addresses travel over native and compat connections alike, and a node
//! without PEX neither receives nor sends anything on channel 0x00. Nodes built from a
//! configuration honour the PEX keys (`[limits] pex_*`, `max_address_book_size`, `[p2p]
//! addr_book_strict`, `private_peer_ids`, `external_address`, `addr_book_file`); the address
//! book file survives restarts and a writer killed at any moment.

use ringwire_test_support::book::addr_of;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use prost::Message as _;
use ringwire::config::Config;
use ringwire::node::{Node, NodeBuilder, StartError};
use ringwire::pex::{self, AddrBookFile, Pex, PexAddr, PexConfig};
use ringwire::proto::secret::{NodeId, NodeKey};
use ringwire::proto::wire::{self, pex_message::Sum};
use ringwire::router::{Channel, Envelope, Origin, PeerEvent, PeerEvents};
use ringwire_test_support::child::spawn_ready;
use ringwire_test_support::node::*;

fn pex_node(seed: u8, native: bool) -> Node {
    builder(seed)
        .listen("127.0.0.1:0".parse().unwrap())
        .offer_native(native)
        .channel(chan(0x20, 1, 1024))
        .pex(PexConfig {
            // Loopback addresses are not routable: a strict book would learn none.
            addr_book_strict: false,
            ..PexConfig::default()
        })
        .start()
        .expect("node starts")
}

fn learns(n: &Node, want: PexAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !n.pex_addresses().contains(&want) {
        assert!(
            Instant::now() < deadline,
            "{:?} lacks {want}",
            n.pex_addresses()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn relay(native: bool) {
    let a = pex_node(1, native);
    let b = pex_node(2, native);
    let c = pex_node(3, native);
    // B dials C: B learns C's address from C's NodeInfo; C learns B's (inbound).
    b.dial_blocking(c.listen_addr().unwrap(), Some(c.node_id()))
        .unwrap();
    learns(&b, addr_of(&c));
    learns(&c, addr_of(&b));
    // A dials B, asks it, and learns C through B.
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    learns(&a, addr_of(&c));
    // Nobody was disconnected for it.
    assert_eq!(a.peers().len(), 1);
    assert_eq!(b.peers().len(), 2);
    for n in [a, b, c] {
        n.shutdown_blocking(secs(5));
    }
}

#[test]
fn addresses_travel_over_native_connections() {
    relay(true);
}

#[test]
fn addresses_travel_over_compat_connections() {
    relay(false);
}

#[test]
fn pex_off_learns_nothing() {
    let a = tcp_node(4, true, &[chan(0x20, 1, 1024)]);
    let b = pex_node(5, true);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(a.pex_addresses().is_empty());
    assert_eq!(a.peers().len(), 1, "the PEX node did not drop the other");
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

// ---- nodes built from a configuration: the PEX keys ------------------------------------------

/// A node built by `NodeBuilder::from_config` from TOML: listening on loopback (several test
/// peers share 127.0.0.1), with `p2p` and `limits` keys added.
fn config_node(seed: u8, p2p: &str, limits: &str) -> Node {
    let text = format!(
        "[node]\nnetwork = \"test-chain\"\n[p2p]\nladdr = \"tcp://127.0.0.1:0\"\n\
         allow_duplicate_ip = true\n{p2p}\n[limits]\n{limits}\n"
    );
    let config = Config::from_toml_str(&text).expect("valid configuration");
    NodeBuilder::from_config(&config, NodeKey::from_seed([seed; 32]))
        .expect("builder")
        .driver(driver())
        .shards(1)
        .channel(chan(0x20, 1, 1024))
        .start()
        .expect("node starts")
}

/// A stock-style peer: compat only, no PEX service, channel 0x00 in the test's hands.
fn raw_peer(seed: u8) -> (Node, Channel) {
    let node = builder(seed)
        .listen("127.0.0.1:0".parse().unwrap())
        .offer_native(false)
        .shards(1)
        .channel(pex::channel_descriptor())
        .start()
        .expect("node starts");
    let channel = node.open_channel(pex::channel_descriptor()).unwrap();
    (node, channel)
}

fn pex_bytes(sum: Sum) -> Bytes {
    Bytes::from(wire::PexMessage { sum: Some(sum) }.encode_to_vec())
}

fn request() -> Bytes {
    pex_bytes(Sum::PexRequest(wire::PexRequest::default()))
}

fn addrs_msg(list: &[PexAddr]) -> Bytes {
    pex_bytes(Sum::PexAddrs(wire::PexAddrs {
        addrs: list.iter().map(PexAddr::to_wire).collect(),
    }))
}

/// Node `n` of the addresses the raw peers hand out, at a routable address.
fn far(n: u8) -> PexAddr {
    PexAddr {
        id: NodeId([n; 20]),
        ip: IpAddr::V4(Ipv4Addr::new(1, 2, 3, n)),
        port: 26656,
    }
}

/// The next PEX message on `channel`, from `from`.
fn next_from(channel: &mut Channel, from: NodeId) -> Bytes {
    loop {
        let m = channel.recv_blocking(secs(10)).expect("a PEX message");
        if m.origin == Origin::Peer(from) {
            return m.payload;
        }
    }
}

/// `node` dials the raw peer, which waits for its request and answers with `list`.
fn dial_and_answer(node: &Node, raw: &Node, channel: &mut Channel, list: &[PexAddr]) {
    node.dial_blocking(raw.listen_addr().unwrap(), Some(raw.node_id()))
        .expect("dial");
    assert_eq!(next_from(channel, node.node_id()), request(), "asked");
    channel
        .send_blocking(Envelope::peer(node.node_id(), addrs_msg(list)), secs(5))
        .unwrap();
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The reason of the next Down event at `node`. Without one within 10 s the test fails with
/// what the node saw (its peers and counters), so that a rare failure can be read from the
/// log alone.
fn down_reason(node: &Node, events: &mut PeerEvents) -> String {
    let deadline = secs(10);
    loop {
        match events.recv_blocking(deadline) {
            Some(PeerEvent::Down { reason, .. }) => return reason.to_string(),
            Some(PeerEvent::Up { .. }) => continue,
            None => panic!(
                "no down event within 10 s; the node's peers: {:?}; admission: {:?}; counters: {:?}",
                node.peers()
                    .iter()
                    .map(|p| p.info.node_id.to_string())
                    .collect::<Vec<_>>(),
                node.admission_stats(),
                node.stats()
            ),
        }
    }
}

#[test]
fn pex_request_interval_paces_requests() {
    // No pacing: five requests at once are all answered.
    let lax = config_node(10, "", "pex_request_interval = \"0s\"");
    // An hour: the third request is too soon, however the test is scheduled.
    let strict = config_node(11, "", "pex_request_interval = \"1h\"");
    let (raw, mut channel) = raw_peer(12);
    for node in [&lax, &strict] {
        raw.dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()))
            .unwrap();
    }
    let mut events = strict.peer_events();
    for _ in 0..5 {
        channel
            .send_blocking(Envelope::peer(lax.node_id(), request()), secs(5))
            .unwrap();
        next_from(&mut channel, lax.node_id());
    }
    assert_eq!(lax.peers().len(), 1, "the 0s node kept the peer");
    for _ in 0..3 {
        let _ = channel.send_blocking(Envelope::peer(strict.node_id(), request()), secs(5));
    }
    let reason = down_reason(&strict, &mut events);
    assert!(
        reason.contains("too soon") && reason.contains("3600s"),
        "{reason}"
    );
    for n in [lax, strict, raw] {
        n.shutdown_blocking(secs(5));
    }
}

#[test]
fn rule_breakers_are_banned_for_pex_ban_duration() {
    // No outbound slots: the nodes never ask a peer for addresses on their own. A dial round
    // that asked the raw peer between its arrival and its list would make the list an answer,
    // not unsolicited (this happened in CI: the list was taken and refused, nobody was
    // disconnected).
    let banning = config_node(13, "max_num_outbound_peers = 0", "");
    let forgiving = config_node(
        14,
        "max_num_outbound_peers = 0",
        "pex_ban_duration = \"0s\"",
    );
    for (node, banned) in [(banning, true), (forgiving, false)] {
        let (raw, channel) = raw_peer(15);
        let mut events = node.peer_events();
        raw.dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()))
            .unwrap();
        // Unsolicited addresses break the rules.
        channel
            .send_blocking(
                Envelope::peer(node.node_id(), addrs_msg(&[far(1)])),
                secs(5),
            )
            .unwrap();
        let reason = down_reason(&node, &mut events);
        assert!(reason.contains("unsolicited"), "{reason}");
        let stats = node.admission_stats().unwrap();
        assert_eq!(stats.bans, usize::from(banned));
        // Counted by reason with the other bans by score.
        let counts = node.stats();
        assert_eq!(counts.offences_pex_abuse, u64::from(banned));
        assert_eq!(counts.bans_pex_abuse, u64::from(banned));
        // The peer comes back.
        wait_until("the raw peer sees the disconnect", || {
            raw.peers().is_empty()
        });
        let refused = node.stats().refused;
        let _ = raw.dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()));
        if banned {
            wait_until("the redial is refused", || node.stats().refused > refused);
            assert!(node.peers().is_empty(), "a banned peer is not admitted");
        } else {
            wait_peers(&node, 1);
        }
        drop(channel);
        raw.shutdown_blocking(secs(5));
        node.shutdown_blocking(secs(5));
    }
}

#[test]
fn pex_max_addresses_per_message_drops_longer_lists() {
    let node = config_node(16, "", "pex_max_addresses_per_message = 5");
    let mut events = node.peer_events();
    let five: Vec<PexAddr> = (1..=5).map(far).collect();
    let six: Vec<PexAddr> = (11..=16).map(far).collect();
    let (ok, mut ok_channel) = raw_peer(17);
    dial_and_answer(&node, &ok, &mut ok_channel, &five);
    wait_until("five addresses learned", || node.pex_addresses() == five);
    let (bad, mut bad_channel) = raw_peer(18);
    dial_and_answer(&node, &bad, &mut bad_channel, &six);
    let reason = loop {
        if let PeerEvent::Down { node_id, reason } = wait_down(&mut events)
            && node_id == bad.node_id()
        {
            break reason.to_string();
        }
    };
    assert!(
        reason.contains("6 addresses, more than the 5 allowed"),
        "{reason}"
    );
    assert_eq!(node.pex_addresses(), five, "nothing of the long list");
    assert_eq!(node.admission_stats().unwrap().bans, 1);
    assert_eq!(node.peers().len(), 1, "the other peer stays");
    for n in [node, ok, bad] {
        n.shutdown_blocking(secs(5));
    }
}

#[test]
fn an_address_flood_is_capped_by_pex_address_rate_and_burst() {
    let node = config_node(19, "", "pex_address_burst = 3\npex_address_rate = 0.001");
    let (raw, mut channel) = raw_peer(20);
    let flood: Vec<PexAddr> = (1..=200).map(far).collect();
    dial_and_answer(&node, &raw, &mut channel, &flood);
    wait_until("the flood is counted", || {
        node.stats().pex_addresses_rate_limited == 197
    });
    assert_eq!(node.pex_addresses(), flood[..3].to_vec());
    assert_eq!(
        node.peers().len(),
        1,
        "a flood within the message cap is no violation"
    );
    node.shutdown_blocking(secs(5));
    raw.shutdown_blocking(secs(5));
}

#[test]
fn max_address_book_size_bounds_the_book_by_eviction() {
    let node = config_node(21, "", "max_address_book_size = 4");
    let (raw, mut channel) = raw_peer(22);
    let list: Vec<PexAddr> = (1..=10).map(far).collect();
    dial_and_answer(&node, &raw, &mut channel, &list);
    wait_until("six evictions", || node.stats().pex_addresses_evicted == 6);
    let book = node.pex_addresses();
    assert_eq!(book.len(), 4);
    assert!(book.contains(&far(10)), "the last one in is kept: {book:?}");
    node.shutdown_blocking(secs(5));
    raw.shutdown_blocking(secs(5));
}

#[test]
fn addr_book_strict_refuses_non_routable_addresses() {
    let private = PexAddr {
        ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)),
        ..far(2)
    };
    let loopback = PexAddr {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ..far(3)
    };
    let list = [far(1), private, loopback];
    // The default (strict, as stock) keeps only the routable one; the raw peer's own
    // loopback listen address is refused too.
    let strict = config_node(23, "", "");
    let (raw, mut channel) = raw_peer(24);
    dial_and_answer(&strict, &raw, &mut channel, &list);
    wait_until("three refused", || {
        strict.stats().pex_addresses_refused == 3
    });
    assert_eq!(strict.pex_addresses(), vec![far(1)]);
    // Off: every one of them, and the raw peer's own.
    let lax = config_node(25, "addr_book_strict = false", "");
    dial_and_answer(&lax, &raw, &mut channel, &list);
    wait_until("all learned", || lax.pex_addresses().len() == 4);
    assert_eq!(lax.stats().pex_addresses_refused, 0);
    for n in [strict, lax, raw] {
        n.shutdown_blocking(secs(5));
    }
}

#[test]
fn private_peer_ids_are_never_sent_nor_learned_from_hearsay() {
    let secret = pex_node(27, true);
    let public = pex_node(28, true);
    let hidden = far(9);
    let node = config_node(
        26,
        &format!(
            "addr_book_strict = false\nprivate_peer_ids = \"{},{}\"",
            secret.node_id(),
            hidden.id
        ),
        "",
    );
    // Both connect and announce themselves; the node keeps both (it may dial the private one).
    for n in [&secret, &public] {
        n.dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()))
            .unwrap();
        learns(&node, addr_of(n));
    }
    // A stock-style peer asks: it hears of the public node, not the private one.
    let (raw, mut channel) = raw_peer(29);
    raw.dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()))
        .unwrap();
    channel
        .send_blocking(Envelope::peer(node.node_id(), request()), secs(5))
        .unwrap();
    let answer = next_from(&mut channel, node.node_id());
    let Some(Sum::PexAddrs(list)) = wire::PexMessage::decode(answer).unwrap().sum else {
        panic!("not an address list");
    };
    let ids: Vec<String> = list.addrs.iter().map(|a| a.id.clone()).collect();
    assert!(ids.contains(&public.node_id().to_string()), "{ids:?}");
    assert!(!ids.contains(&secret.node_id().to_string()), "{ids:?}");
    // Hearsay about a private node is not learned.
    let (teller, mut teller_channel) = raw_peer(30);
    dial_and_answer(&node, &teller, &mut teller_channel, &[hidden, far(10)]);
    learns(&node, far(10));
    assert!(!node.pex_addresses().contains(&hidden));
    for n in [node, secret, public, raw, teller] {
        n.shutdown_blocking(secs(5));
    }
}

/// A ringwire PEX node (native) asks a node whose `private_peer_ids` name two peers, both
/// connected (one dialed it, it dialed the other) and both in its book: its answer carries the
/// public peer and neither private one, in seed mode too.
#[test]
fn private_peer_ids_never_reach_ringwire_peers() {
    for (seed_mode, base) in [(false, 40u8), (true, 50u8)] {
        let inbound = pex_node(base + 1, true);
        let outbound = pex_node(base + 2, true);
        let public = pex_node(base + 3, true);
        let node = config_node(
            base,
            &format!(
                "addr_book_strict = false\nseed_mode = {seed_mode}\nprivate_peer_ids = \"{},{}\"",
                inbound.node_id(),
                outbound.node_id()
            ),
            "",
        );
        for n in [&inbound, &public] {
            n.dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()))
                .unwrap();
        }
        node.dial_blocking(outbound.listen_addr().unwrap(), Some(outbound.node_id()))
            .unwrap();
        for n in [&inbound, &outbound, &public] {
            learns(&node, addr_of(n));
        }
        // The asker dials the node and asks it (a new outbound peer is asked).
        let asker = pex_node(base + 4, true);
        asker
            .dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()))
            .unwrap();
        learns(&asker, addr_of(&public));
        let heard = asker.pex_addresses();
        for n in [&inbound, &outbound] {
            assert!(
                !heard.iter().any(|a| a.id == n.node_id()),
                "seed_mode = {seed_mode}: a private peer reached a ringwire peer: {heard:?}"
            );
        }
        for n in [node, inbound, outbound, public, asker] {
            n.shutdown_blocking(secs(5));
        }
    }
}

#[test]
fn external_address_is_what_peers_see_and_learn() {
    let node = config_node(31, "external_address = \"203.0.113.7:26656\"", "");
    let peer = config_node(32, "", "");
    peer.dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()))
        .unwrap();
    let seen = peer.peers()[0].info.node_info.listen_addr.clone();
    assert_eq!(seen, "tcp://203.0.113.7:26656");
    // The peer's PEX learns it as the address the node announced (routable: kept strictly).
    learns(
        &peer,
        PexAddr {
            id: node.node_id(),
            ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            port: 26656,
        },
    );
    node.shutdown_blocking(secs(5));
    peer.shutdown_blocking(secs(5));
    // An address peers could not parse fails start.
    let err = builder(33)
        .external_address("no port here")
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("external address"), "{err}");
}

// ---- the address book file: p2p.addr_book_file ----------------------------------------------

/// A node built from TOML whose `node.home` is `home`, with `p2p` keys added.
fn home_node(seed: u8, home: &Path, p2p: &str) -> Result<Node, StartError> {
    let text = format!(
        "[node]\nnetwork = \"test-chain\"\nhome = \"{}\"\n[p2p]\n\
         laddr = \"tcp://127.0.0.1:0\"\nallow_duplicate_ip = true\n{p2p}\n",
        home.display()
    );
    let config = Config::from_toml_str(&text).expect("valid configuration");
    NodeBuilder::from_config(&config, NodeKey::from_seed([seed; 32]))
        .expect("builder")
        .driver(driver())
        .shards(1)
        .channel(chan(0x20, 1, 1024))
        .start()
}

/// The file's JSON without its `last_attempt` times.
fn without_times(f: &AddrBookFile) -> serde_json::Value {
    let mut json: serde_json::Value = serde_json::from_slice(&f.to_json()).unwrap();
    for e in json["addrs"].as_array_mut().unwrap() {
        e["last_attempt"] = serde_json::Value::Null;
    }
    json
}

/// The temporary files writers left beside `path`.
fn unfinished_writes(path: &Path) -> usize {
    std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".addrbook.json.tmp-")
        })
        .count()
}

#[test]
fn addr_book_file_keeps_the_book_across_restarts() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config/addrbook.json");
    let node = home_node(40, home.path(), "").unwrap();
    let (raw, mut channel) = raw_peer(41);
    let list: Vec<PexAddr> = (1..=5).map(far).collect();
    dial_and_answer(&node, &raw, &mut channel, &list);
    wait_until("five addresses learned", || node.pex_addresses() == list);
    assert!(!path.exists(), "written every two minutes and at shutdown");
    node.shutdown_blocking(secs(5));
    raw.shutdown_blocking(secs(5));

    // Stock's addrbook.json: the key, and each address with its source (the raw peer, at the
    // loopback address it connected from), new bucket and times.
    let file = AddrBookFile::load(&path)
        .unwrap()
        .expect("written at shutdown");
    let mut held = file.addresses();
    held.sort();
    assert_eq!(held, list);
    let key = file.key().to_owned();
    assert_eq!(key.len(), 24);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for entry in json["addrs"].as_array().unwrap() {
        assert_eq!(entry["bucket_type"], 1);
        assert_eq!(entry["src"]["id"], raw.node_id().to_string());
        assert_eq!(entry["src"]["ip"], "127.0.0.1");
        assert_eq!(entry["buckets"].as_array().unwrap().len(), 1);
        assert_eq!(entry["attempts"], 0);
        assert_eq!(entry["last_success"], "0001-01-01T00:00:00Z");
        assert!(entry["last_attempt"].as_str().unwrap().ends_with('Z'));
    }

    // Restarted from the same home: the book is there before any peer connects, and the
    // key stays (so do the buckets). It dials none of them (no outbound places): the far
    // addresses are not there, and a failed dial would count an attempt in the book.
    let again = home_node(40, home.path(), "max_num_outbound_peers = 0").unwrap();
    assert_eq!(again.pex_addresses(), list);
    again.shutdown_blocking(secs(5));
    let rewritten = AddrBookFile::load(&path).unwrap().unwrap();
    assert_eq!(rewritten.key(), key);
    // Read and written back unchanged, but for the times: the two clocks are read a few
    // hundred nanoseconds apart at each conversion.
    assert_eq!(without_times(&rewritten), without_times(&file));
    let seconds = |f: &AddrBookFile| -> Vec<f64> {
        let json: serde_json::Value = serde_json::from_slice(&f.to_json()).unwrap();
        json["addrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let t = e["last_attempt"].as_str().unwrap();
                let clock = &t[t.find('T').unwrap() + 1..t.len() - 1];
                let mut parts = clock.split(':').map(|p| p.parse::<f64>().unwrap());
                let (h, m, s) = (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                );
                h * 3600.0 + m * 60.0 + s
            })
            .collect()
    };
    for (a, b) in seconds(&rewritten).into_iter().zip(seconds(&file)) {
        let drift = (a - b).abs().min(86_400.0 - (a - b).abs());
        assert!(drift < 0.01, "{a} against {b}");
    }

    // Another file, relative to the home: a book of its own.
    let other = home_node(40, home.path(), "addr_book_file = \"data/book.json\"").unwrap();
    assert!(other.pex_addresses().is_empty());
    other.shutdown_blocking(secs(5));
    assert!(home.path().join("data/book.json").exists());
    assert_eq!(AddrBookFile::load(&path).unwrap().unwrap(), rewritten);
}

#[test]
fn a_configuration_without_a_home_keeps_its_book_in_memory() {
    let book = |text: &str| {
        Config::from_toml_str(text)
            .unwrap()
            .pex_config()
            .unwrap()
            .book_file
    };
    // Not in the working directory: a configuration made in memory has nowhere to keep it.
    assert_eq!(book(""), None);
    assert_eq!(
        book("[node]\nhome = \"/srv/node\""),
        Some("/srv/node/config/addrbook.json".into())
    );
    assert_eq!(
        book("[p2p]\naddr_book_file = \"/var/lib/book.json\""),
        Some("/var/lib/book.json".into())
    );
}

#[test]
fn an_unreadable_addr_book_file_fails_start_and_names_the_file() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config/addrbook.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage = b"{\"key\": \"0f1e2d3c4b5a69788796a5b4\", \"addrs\": [{\"addr\"";
    std::fs::write(&path, garbage).unwrap();
    let err = home_node(42, home.path(), "").unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not an address book file"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is left alone"
    );
    // With PEX off the file is not read.
    home_node(42, home.path(), "pex = false")
        .unwrap()
        .shutdown_blocking(secs(5));
    // A whole book beside an unfinished write: the write is cleared, the book read.
    let one = r#"{"key": "0f1e2d3c4b5a69788796a5b4", "addrs": [{
        "addr": {"id": "0101010101010101010101010101010101010101", "ip": "1.2.3.1", "port": 26656},
        "src": {"id": "0202020202020202020202020202020202020202", "ip": "5.6.7.8", "port": 26656},
        "buckets": [3], "attempts": 1, "bucket_type": 1,
        "last_attempt": "2024-01-01T00:00:00+01:00", "last_success": "0001-01-01T00:00:00Z",
        "last_ban_time": "0001-01-01T00:00:00Z"}]}"#;
    std::fs::write(&path, one).unwrap();
    std::fs::write(path.with_file_name(".addrbook.json.tmp-1-0"), b"{\"key").unwrap();
    let node = home_node(42, home.path(), "").unwrap();
    assert_eq!(node.pex_addresses(), vec![far(1)]);
    assert_eq!(unfinished_writes(&path), 0);
    node.shutdown_blocking(secs(5));
}

/// The environment variable that makes [`book_writer_child`] write.
const BOOK_WRITER: &str = "RINGWIRE_TEST_BOOK_WRITER";

/// In a child process only (with [`BOOK_WRITER`] set to a path): rewrites the address book
/// there in a loop as a node does (`Pex::to_book_file`, `AddrBookFile::save`), the book
/// growing by 100 addresses each time up to what one source group may fill (2,048), then
/// churning, until the parent kills it. Without the variable it returns at once.
#[test]
fn book_writer_child() {
    let Ok(path) = std::env::var(BOOK_WRITER) else {
        return;
    };
    let config = PexConfig {
        addr_book_strict: false,
        ..PexConfig::default()
    };
    let mut state = Pex::new(NodeId([0xee; 20]), config, 7);
    let start = Instant::now();
    for n in 1u32.. {
        let mut id = [0x33; 20];
        id[..4].copy_from_slice(&n.to_be_bytes());
        // Groups 1.0 to 200.255, in turn.
        let addr = PexAddr {
            id: NodeId(id),
            ip: IpAddr::V4(Ipv4Addr::new(
                (n % 200) as u8 + 1,
                (n / 200) as u8,
                (n / 51_200) as u8,
                1,
            )),
            port: 26656,
        };
        state.learn(addr, start);
        if n % 100 == 0 {
            state
                .to_book_file(Instant::now(), SystemTime::now())
                .save(&path)
                .expect("the book is written");
            if n == 100 {
                println!("READY {n}");
            }
        }
    }
}

#[test]
fn a_book_rewritten_in_a_loop_survives_kill_9() {
    use rand::Rng as _;
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config/addrbook.json");
    let mut rng = rand::rng();
    let mut sizes = Vec::new();
    // 60 kills: the even ones at a random moment, the odd ones as soon as a write is seen in
    // progress (its temporary file exists), so many land between the write and the rename.
    for round in 0..60 {
        let (mut child, _) = spawn_ready("book_writer_child", BOOK_WRITER, path.to_str().unwrap());
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        } else {
            let before = unfinished_writes(&path);
            let give_up = Instant::now() + Duration::from_secs(2);
            while unfinished_writes(&path) == before && Instant::now() < give_up {}
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let file = AddrBookFile::load(&path)
            .unwrap_or_else(|e| panic!("round {round}: {e}"))
            .expect("the book exists");
        assert!(!file.is_empty());
        assert_eq!(file.addresses().len(), file.len(), "every entry whole");
        sizes.push(file.len());
    }
    let unfinished = unfinished_writes(&path);
    eprintln!(
        "60 kills: books of {} to {} addresses read whole; {unfinished} writes killed before \
         their rename",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap()
    );
    assert!(
        unfinished > 0,
        "no kill landed during a write: the test proved nothing"
    );
    // A node starting from that home reads the last book and clears the unfinished writes.
    let last = AddrBookFile::load(&path).unwrap().unwrap();
    // Lax, as the writer: some of its addresses are private ones.
    let node = home_node(43, home.path(), "addr_book_strict = false").unwrap();
    assert_eq!(node.pex_addresses().len(), last.len());
    assert_eq!(unfinished_writes(&path), 0);
    node.shutdown_blocking(secs(5));
}
