//! Dialing from the address book, in-process nodes over loopback made from a configuration
//! (`NodeBuilder::from_config`): many nodes started from one seed reach their outbound targets;
//! a node restarted with its book file reconnects without the seed; a book of dead addresses is
//! dialed with backoff, not in a storm; `[p2p] seeds` are asked and dropped; `[p2p] seed_mode`
//! crawls, answers and disconnects.
//!
//! Several nodes share 127.0.0.1, so every node runs with `allow_duplicate_ip = true`,
//! `addr_book_strict = false` and per-address limits raised. The period of the dialer's rounds
//! (stock's 30 s `ensurePeersPeriod`, not a configuration key) is shortened through
//! `PexConfig::ensure_peers_period`, and the PEX request interval with it.

use ringwire_test_support::book::write_book;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringwire::config::Config;
use ringwire::node::{Node, NodeBuilder};
use ringwire::pex::{PexAddr, PexConfig};
use ringwire::proto::secret::{NodeId, NodeKey};
use ringwire::router::{Direction, PeerEvent, PeerEvents};
use ringwire_test_support::node::*;

/// The period of the dialer's rounds in these tests.
const ROUND: Duration = Duration::from_millis(500);

/// Node `n`'s key.
fn key(n: u32) -> NodeKey {
    let mut seed = [0x5Du8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    NodeKey::from_seed(seed)
}

/// The configuration text of a node on loopback with `p2p` keys (and `node` lines) added.
fn toml(p2p: &str, node: &str) -> String {
    format!(
        "[node]\nnetwork = \"test-chain\"\n{node}\n\
         [p2p]\nladdr = \"tcp://127.0.0.1:0\"\nallow_duplicate_ip = true\n\
         addr_book_strict = false\n{p2p}\n\
         [limits]\nmax_connections_per_ip = 200\nhandshake_rate_per_ip = 1000.0\n\
         handshake_burst_per_ip = 1000\nmax_pending_handshakes_per_ip = 200\n\
         pex_request_interval = \"{}ms\"\n",
        ROUND.as_millis()
    )
}

/// Node `n` made from `text` with the driver under test, one shard, and rounds every
/// [`ROUND`] (`period` overrides it).
fn start(n: u32, text: &str, period: Option<Duration>) -> Node {
    let mut config = Config::from_toml_str(text).expect("valid configuration");
    config.engine.driver = driver();
    config.engine.shards = 1;
    let pex = config.pex_config().expect("pex is on");
    NodeBuilder::from_config(&config, key(n))
        .expect("builder")
        .pex(PexConfig {
            ensure_peers_period: period.unwrap_or(ROUND),
            // A connection to a seed both ends dialed at once may lose the request it carried;
            // such a seed is let go after this (30 s by default).
            seed_disconnect_wait: Duration::from_secs(3),
            ..pex
        })
        .start()
        .expect("node starts")
}

/// `id@127.0.0.1:port` of a running node.
fn dial_string(n: &Node) -> String {
    format!("{}@{}", n.node_id(), n.listen_addr().unwrap())
}

fn outbound(n: &Node) -> usize {
    n.admission_stats().expect("peer manager").outbound
}

fn outbound_ids(n: &Node) -> Vec<NodeId> {
    n.peers()
        .into_iter()
        .filter(|p| p.direction == Direction::Outbound)
        .map(|p| p.info.node_id)
        .collect()
}

fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(nodes: impl IntoIterator<Item = Node>) {
    for n in nodes {
        n.shutdown_blocking(secs(5));
    }
}

/// The events of `events` until none arrives for `quiet` (or `within` passed).
fn drain(events: &mut PeerEvents, quiet: Duration, within: Duration) -> Vec<PeerEvent> {
    let end = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(e) = events.recv_blocking((Instant::now() + quiet).min(end)) {
        seen.push(e);
    }
    seen
}

// ---- many nodes from one seed ----------------------------------------------------------------

/// Starts a seed (seed mode) and `count` nodes whose only peer address is the seed, each with
/// an outbound target of `target`, and waits until every node reaches it. Returns the seed,
/// the nodes and the time it took from the last start.
fn network(count: u32, target: u32) -> (Node, Vec<Node>, Duration) {
    let seed = start(
        0,
        &toml("seed_mode = true\nmax_num_inbound_peers = 200", ""),
        None,
    );
    let seeds = format!("seeds = \"{}\"", dial_string(&seed));
    let p2p = format!("{seeds}\nmax_num_outbound_peers = {target}\nmax_num_inbound_peers = 40");
    let started = Instant::now();
    let nodes: Vec<Node> = (1..=count)
        .map(|n| start(n, &toml(&p2p, ""), None))
        .collect();
    let all_started = Instant::now();
    let target = target as usize;
    // At the target with other nodes: a seed counts while it is connected, until it answered.
    let seed_id = seed.node_id();
    let deadline = Instant::now() + Duration::from_secs(25);
    while !nodes
        .iter()
        .all(|n| outbound(n) >= target && !outbound_ids(n).contains(&seed_id))
    {
        if Instant::now() > deadline {
            for (i, n) in nodes.iter().enumerate() {
                eprintln!(
                    "node {i} ({}): outbound {} {:?}, peers {:?}, book {}",
                    n.node_id(),
                    outbound(n),
                    n.admission_stats(),
                    n.peers()
                        .iter()
                        .map(|p| (p.info.node_id, p.direction))
                        .collect::<Vec<_>>(),
                    n.pex_addresses().len()
                );
            }
            panic!("not every node reached its outbound target");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = all_started.elapsed();
    eprintln!(
        "{count} nodes: started in {:?}, all at their outbound target of {target} {:?} later",
        all_started - started,
        took
    );
    (seed, nodes, took)
}

#[test]
fn a_hundred_nodes_from_one_seed_reach_their_outbound_targets() {
    let target = 6;
    let (seed, nodes, took) = network(100, target);
    assert!(took < Duration::from_secs(25));
    for n in &nodes {
        // At the target and no further: the peer manager's cap holds for the book's dials.
        assert_eq!(outbound(n), target as usize);
        // Outbound peers are other nodes, not the seed (a seed is let go once it answered).
        assert!(!outbound_ids(n).contains(&seed.node_id()), "kept the seed");
        // Every node learned more than the seed knew of it when it started.
        assert!(n.pex_addresses().len() > target as usize);
    }
    // The seed keeps no peer for long: it answers, crawls and lets go.
    wait_until("the seed let its peers go", Duration::from_secs(10), || {
        seed.peers().len() <= 2
    });
    stop(nodes);
    stop([seed]);
}

// ---- capability targets --------------------------------------------------------------------

/// Outbound peers of `n` whose HELLO listed `archive`.
/// The archive peers holding `n`'s outbound places, as the outbound limit and the capability
/// target count them (a peer whose connection came in while `n` was dialing it holds one).
fn archive_outbound(n: &Node) -> usize {
    let places = n.outbound_places();
    n.peers()
        .into_iter()
        .filter(|p| places.contains(&p.info.node_id))
        .filter(|p| p.info.capabilities.iter().any(|c| c == "archive"))
        .count()
}

#[test]
fn with_archive_on_a_tenth_of_the_nodes_each_node_reaches_its_thirty_percent_archive_target() {
    // Six outbound peers, two of them archive (30 % of 6, rounded up): a node that six archive
    // nodes dialed could not have any archive outbound peer (a connected peer is not dialed
    // again), and with six archive nodes among sixty that stays unlikely at this target.
    let (count, target) = (60u32, 6usize);
    let is_archive = |i: u32| i.is_multiple_of(10);
    let seed = start(
        0,
        &toml("seed_mode = true\nmax_num_inbound_peers = 200", ""),
        None,
    );
    let p2p = format!(
        "seeds = \"{}\"\nmax_num_outbound_peers = {target}\nmax_num_inbound_peers = 80\n\
         capability_targets = {{ archive = \"30%\" }}",
        dial_string(&seed)
    );
    let nodes: Vec<(u32, Node)> = (1..=count)
        .map(|i| {
            let caps = if is_archive(i) {
                "\n[engine]\ncapabilities = [\"archive\"]"
            } else {
                ""
            };
            (i, start(i, &toml(&format!("{p2p}{caps}"), ""), None))
        })
        .collect();
    let started = Instant::now();
    let want = 2; // 30 % of 6, rounded up
    let plain: Vec<&Node> = nodes
        .iter()
        .filter(|(i, _)| !is_archive(*i))
        .map(|(_, n)| n)
        .collect();
    assert_eq!(plain.len(), 54);
    let deadline = started + Duration::from_secs(90);
    while !plain.iter().all(|n| archive_outbound(n) >= want) {
        if Instant::now() > deadline {
            for n in &plain {
                if archive_outbound(n) >= want {
                    continue;
                }
                let places = n.outbound_places();
                let archive_inbound = n
                    .peers()
                    .iter()
                    .filter(|p| !places.contains(&p.info.node_id))
                    .filter(|p| p.info.capabilities.iter().any(|c| c == "archive"))
                    .count();
                // What the book knows of archive nodes: a node stuck below its target either
                // knows no archive address it can dial, or does not dial the ones it knows.
                let known: Vec<String> = n
                    .address_book()
                    .iter()
                    .filter(|e| e.capabilities.as_ref().is_some_and(|c| c.has("archive")))
                    .map(|e| {
                        format!(
                            "{}(confirmed {}, attempts {}, banned {:?})",
                            &e.addr.id.to_string()[..8],
                            e.capabilities.as_ref().is_some_and(|c| c.confirmed),
                            e.attempts,
                            e.banned_for
                        )
                    })
                    .collect();
                eprintln!(
                    "{}: outbound {}, archive {} (inbound {archive_inbound}), book {}, \
                     replaced {}, admission {:?}, archive known {known:?}",
                    n.node_id(),
                    outbound(n),
                    archive_outbound(n),
                    n.pex_addresses().len(),
                    n.stats().pex_capability_replacements,
                    n.admission_stats(),
                );
            }
            panic!("not every node reached its archive target");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let replaced: u64 = plain
        .iter()
        .map(|n| n.stats().pex_capability_replacements)
        .sum();
    let at_target = plain.iter().filter(|n| outbound(n) >= target).count();
    // Outbound places held by connections the peer opened (it dialed while this node did).
    let places_in: usize = plain
        .iter()
        .map(|n| {
            let places = n.outbound_places();
            n.peers()
                .iter()
                .filter(|p| p.direction == Direction::Inbound)
                .filter(|p| places.contains(&p.info.node_id))
                .count()
        })
        .sum();
    let places: usize = plain.iter().map(|n| outbound(n)).sum();
    eprintln!(
        "{count} nodes, 6 archive: every other node at 2 archive outbound peers {took:?} after \
         the last start; {replaced} peers replaced; {at_target} of 54 at the outbound target; \
         {places_in} of {places} outbound places held by connections the peer opened"
    );
    for n in &plain {
        // The peer manager's cap holds for the target's dials and replacements.
        assert!(outbound(n) <= target);
    }
    stop(nodes.into_iter().map(|(_, n)| n));
    stop([seed]);
}

// ---- a restart from the book ---------------------------------------------------------------

#[test]
fn a_node_restarted_with_its_book_reconnects_without_the_seed() {
    let target = 3;
    let (seed, nodes, _) = network(16, target);
    // One more node, with a home: its book is written when it stops.
    let home = tempfile::tempdir().unwrap();
    let node_line = format!("home = \"{}\"", home.path().display());
    let seeds = format!("seeds = \"{}\"", dial_string(&seed));
    let p2p = format!("{seeds}\nmax_num_outbound_peers = {target}");
    let a = start(100, &toml(&p2p, &node_line), None);
    wait_until(
        "the node with a home at its target",
        Duration::from_secs(15),
        || outbound(&a) >= target as usize,
    );
    let learned = a.pex_addresses().len();
    a.shutdown_blocking(secs(5));
    assert!(home.path().join("config/addrbook.json").exists());
    // The seed is gone, and the restarted node is given none.
    seed.shutdown_blocking(secs(5));
    let again = start(
        100,
        &toml(&format!("max_num_outbound_peers = {target}"), &node_line),
        None,
    );
    assert_eq!(again.pex_addresses().len(), learned, "the book was read");
    let t = Instant::now();
    wait_until(
        "the restarted node at its target",
        Duration::from_secs(15),
        || outbound(&again) >= target as usize,
    );
    eprintln!(
        "restarted from a book of {learned} addresses: {target} outbound peers in {:?}",
        t.elapsed()
    );
    let ids: Vec<NodeId> = nodes.iter().map(Node::node_id).collect();
    for p in outbound_ids(&again) {
        assert!(ids.contains(&p), "an outbound peer from the book");
    }
    stop([again]);
    stop(nodes);
}

// ---- dead addresses: backoff, no storm ------------------------------------------------------

/// A listener that accepts connections and closes them at once (a dial fails in the
/// handshake), recording when each came.
struct Dead {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Instant>>>,
}

fn dead_listeners(count: usize, stop: &Arc<AtomicBool>) -> Vec<Dead> {
    (0..count)
        .map(|_| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let hits = Arc::new(Mutex::new(Vec::new()));
            let (h, stop) = (hits.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            h.lock().unwrap().push(Instant::now());
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
                            let _ = s.read(&mut [0u8; 64]);
                            drop(s);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            });
            Dead { addr, hits }
        })
        .collect()
}

#[test]
fn a_book_of_dead_addresses_is_dialed_with_backoff_not_in_a_storm() {
    let stop_flag = Arc::new(AtomicBool::new(false));
    let dead = dead_listeners(20, &stop_flag);
    let addrs: Vec<PexAddr> = dead
        .iter()
        .enumerate()
        .map(|(i, d)| PexAddr {
            id: NodeId([i as u8 + 1; 20]),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: d.addr.port(),
        })
        .collect();
    let home = tempfile::tempdir().unwrap();
    write_book(&home.path().join("config/addrbook.json"), &addrs, 11);
    // Rounds every 100 ms: without a backoff each address would be dialed about ten times a
    // second. With it (500 ms, doubling) each is dialed about five times in eight seconds.
    let period = Duration::from_millis(100);
    let text = toml(
        "max_num_outbound_peers = 10",
        &format!("home = \"{}\"", home.path().display()),
    )
    .replace(
        "[limits]\n",
        "[limits]\ndial_backoff_min = \"500ms\"\ndial_backoff_max = \"1m\"\n",
    );
    let node = start(200, &text, Some(period));
    let window = Duration::from_secs(8);
    std::thread::sleep(window);
    let t_end = Instant::now();
    stop([node]);
    stop_flag.store(true, Ordering::Relaxed);

    let per_address: Vec<Vec<Instant>> = dead
        .iter()
        .map(|d| {
            d.hits
                .lock()
                .unwrap()
                .iter()
                .copied()
                .filter(|t| *t <= t_end)
                .collect()
        })
        .collect();
    let total: usize = per_address.iter().map(Vec::len).sum();
    let rounds = (window.as_millis() / period.as_millis()) as usize;
    eprintln!(
        "{} dead addresses, {rounds} rounds in {window:?}: {total} dials ({:?} per address)",
        dead.len(),
        per_address.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // 0, 0.5, 1.5, 3.5, 7.5 s (each wait up to a fifth shorter): at most six dials each.
    assert!(total <= dead.len() * 6, "{total} dials: a storm");
    // Every address was tried, and retried as its backoff allowed.
    for (i, hits) in per_address.iter().enumerate() {
        assert!(hits.len() >= 3, "address {i}: {} dials", hits.len());
        let g: Vec<Duration> = hits.windows(2).map(|w| w[1] - w[0]).collect();
        // Each wait is at least the backoff (500 ms × 2^k, less a fifth), and they grow.
        for (k, gap) in g.iter().enumerate() {
            let floor = Duration::from_millis(500 << k).mul_f64(0.8);
            assert!(
                *gap >= floor - Duration::from_millis(20),
                "address {i}: gaps {g:?}"
            );
        }
    }
}

// ---- the keys: seeds and seed_mode -----------------------------------------------------------

#[test]
fn seeds_are_asked_for_addresses_then_dropped() {
    // S is an ordinary node (that dials nobody) which knows B (B dialed it); A's only lead is
    // `seeds = S`.
    let s = start(300, &toml("max_num_outbound_peers = 0", ""), None);
    // B's one outbound place goes to S: B dials nobody else (A included).
    let b = start(301, &toml("max_num_outbound_peers = 1", ""), None);
    b.dial_blocking(s.listen_addr().unwrap(), Some(s.node_id()))
        .unwrap();
    wait_until("S learned B", Duration::from_secs(5), || {
        s.pex_addresses().iter().any(|a| a.id == b.node_id())
    });
    let mut s_events = s.peer_events();
    // One outbound place: once B fills it, A needs nothing more (a node below its target
    // with nothing to dial goes back to its seeds every round, as stock).
    let seeds = format!(
        "seeds = \"{}\"\nmax_num_outbound_peers = 1",
        dial_string(&s)
    );
    let a = start(302, &toml(&seeds, ""), None);
    // A dials S, asks, learns B, lets S go and dials B.
    wait_until("A connected to B", Duration::from_secs(10), || {
        outbound_ids(&a).contains(&b.node_id())
    });
    wait_until("A let the seed go", Duration::from_secs(10), || {
        !a.peers().iter().any(|p| p.info.node_id == s.node_id())
    });
    let seen = drain(
        &mut s_events,
        Duration::from_millis(300),
        Duration::from_secs(3),
    );
    let a_at_s: Vec<&PeerEvent> = seen
        .iter()
        .filter(|e| match e {
            PeerEvent::Up { peer, .. } => peer.node_id == a.node_id(),
            PeerEvent::Down { node_id, .. } => *node_id == a.node_id(),
        })
        .collect();
    assert!(
        matches!(
            a_at_s.first(),
            Some(PeerEvent::Up {
                direction: Direction::Inbound,
                ..
            })
        ),
        "{a_at_s:?}"
    );
    assert!(
        matches!(a_at_s.last(), Some(PeerEvent::Down { .. })),
        "S saw A go: {a_at_s:?}"
    );
    assert!(a.pex_addresses().iter().any(|x| x.id == b.node_id()));
    // Without the key, the same node has nobody to ask and stays alone.
    let lone = start(303, &toml("", ""), None);
    std::thread::sleep(ROUND * 4);
    assert!(lone.peers().is_empty() && lone.pex_addresses().is_empty());
    stop([a, b, s, lone]);
}

#[test]
fn seed_mode_crawls_answers_and_disconnects() {
    // B knows C (B dialed C), X knows B (X dialed B). X dials the seed S: S answers it and
    // lets it go. S crawls what it knows: X (learns B), then B (learns C), letting each go.
    let s = start(400, &toml("seed_mode = true", ""), None);
    // B fills its one outbound place with C, so it dials nobody else (S included).
    let b = start(401, &toml("max_num_outbound_peers = 1", ""), None);
    let c = start(402, &toml("", ""), None);
    b.dial_blocking(c.listen_addr().unwrap(), Some(c.node_id()))
        .unwrap();
    let mut b_events = b.peer_events();
    // X is a bare node (PEX but no dialer of its own) that knows B and dials S.
    let x = builder(43)
        .listen("127.0.0.1:0".parse().unwrap())
        .pex(PexConfig {
            addr_book_strict: false,
            ..PexConfig::default()
        })
        .start()
        .unwrap();
    x.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    let mut x_events = x.peer_events();
    x.dial_blocking(s.listen_addr().unwrap(), Some(s.node_id()))
        .unwrap();
    // S answers X's request, then disconnects it.
    let deadline = secs(10);
    let down = loop {
        match x_events.recv_blocking(deadline).expect("S lets X go") {
            PeerEvent::Down { node_id, reason } if node_id == s.node_id() => break reason,
            _ => continue,
        }
    };
    assert!(
        down.to_string().contains("seed mode"),
        "X was dropped for: {down}"
    );
    // S crawls: it knows X's address (X announced it), dials X, asks it and learns B; then
    // dials B, asks it and learns C.
    wait_until("S learned C by crawling", Duration::from_secs(15), || {
        s.pex_addresses().iter().any(|a| a.id == c.node_id())
    });
    // B sees S dial it, then go.
    let mut crawled = false;
    let deadline = secs(15);
    loop {
        let e = b_events
            .recv_blocking(deadline)
            .unwrap_or_else(|| panic!("S crawled B and let it go: crawled {crawled}"));
        match e {
            PeerEvent::Up {
                peer, direction, ..
            } if peer.node_id == s.node_id() => crawled |= direction == Direction::Inbound,
            PeerEvent::Down { node_id, .. } if node_id == s.node_id() && crawled => break,
            _ => {}
        }
    }
    wait_until("S keeps no peer", Duration::from_secs(5), || {
        s.peers().is_empty()
    });
    // An ordinary node answers and keeps the peer (stock).
    let plain = start(404, &toml("", ""), None);
    let y = builder(44)
        .listen("127.0.0.1:0".parse().unwrap())
        .pex(PexConfig {
            addr_book_strict: false,
            ..PexConfig::default()
        })
        .start()
        .unwrap();
    y.dial_blocking(plain.listen_addr().unwrap(), Some(plain.node_id()))
        .unwrap();
    std::thread::sleep(ROUND * 4);
    assert_eq!(y.peers().len(), 1, "the ordinary node kept its peer");
    stop([s, b, c, x, y, plain]);
}
