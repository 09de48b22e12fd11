//! Nodes built by `NodeBuilder::from_config` from TOML text: each test sets a key and shows what
//! it changes in a running node — identity and network (`[node]`), where it listens, whom it
//! dials and admits (`[p2p]` peers and caps, the `[limits]` per-address and handshake caps),
//! deadlines, the driver, shards, protocol and capabilities (`[engine]`). The table in
//! `config_keys.rs` names these tests next to their keys.

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringwire::config::{Config, NodeKeyFile};
use ringwire::node::{Node, NodeBuilder};
use ringwire::proto::conn::{ChannelDescriptor, ConnError, Mode};
use ringwire::proto::nodeinfo::NodeInfoError;
use ringwire::proto::secret::NodeKey;
use ringwire::router::{DialError, Direction, Envelope, PeerEvent};
use ringwire::rt::{Driver, DriverKind};
use ringwire_test_support::node::*;

/// TOML for a node listening on a free loopback port, on the test network and without PEX
/// unless `node` and `p2p` (added to those sections) say otherwise; `rest` holds further
/// `[engine]` keys and whole further sections.
fn toml(node: &str, p2p: &str, rest: &str) -> String {
    let network = if node.contains("network =") {
        ""
    } else {
        "network = \"test-chain\"\n"
    };
    let pex = if p2p.contains("pex =") {
        ""
    } else {
        "pex = false\n"
    };
    let shards = if rest.contains("shards =") {
        ""
    } else {
        "shards = 1\n"
    };
    format!(
        "[node]\n{network}{node}\n[p2p]\nladdr = \"tcp://127.0.0.1:0\"\n{pex}{p2p}\n\
         [engine]\n{shards}{rest}\n"
    )
}

/// A node started from `text` (`NodeBuilder::from_config`), with key `seed` and the driver
/// under test, carrying channel 0x20.
fn from_text(seed: u8, text: &str) -> Node {
    let config = Config::from_toml_str(text).expect("valid configuration");
    NodeBuilder::from_config(&config, NodeKey::from_seed([seed; 32]))
        .expect("builder")
        .driver(driver())
        .channel(chan(0x20, 1, 1 << 20))
        .start()
        .expect("node starts")
}

/// A plain listening peer on the test network.
fn peer(seed: u8) -> Node {
    builder(seed)
        .shards(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .channel(chan(0x20, 1, 1 << 20))
        .start()
        .expect("peer starts")
}

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stop(nodes: impl IntoIterator<Item = Node>) {
    for n in nodes {
        n.shutdown_blocking(secs(5));
    }
}

/// `from` dials `to`; the peer is admitted on `to`'s side (true) or refused (false). A refused
/// dial may come up on the dialer's side before `to` closes it, so `to` decides.
fn admitted(from: &Node, to: &Node) -> bool {
    let before = to.peers().len();
    let refused = to.stats().refused + to.stats().accept_refused;
    let _ = from.dial_blocking(to.listen_addr().unwrap(), Some(to.node_id()));
    let settled = eventually(Duration::from_secs(10), || {
        to.peers().iter().any(|p| p.info.node_id == from.node_id())
            || to.stats().refused + to.stats().accept_refused > refused
    });
    assert!(settled, "neither admitted nor refused");
    // A refused connection is gone from `to` at once; an admitted one stays.
    std::thread::sleep(Duration::from_millis(100));
    let up = to.peers().iter().any(|p| p.info.node_id == from.node_id());
    assert!(!up || to.peers().len() == before + 1);
    up
}

// ---- [node] ----------------------------------------------------------------------------------

/// `node.moniker` is the name peers see in NodeInfo; `node.network` is the chain a peer must
/// be on: a peer on another network is refused at the NodeInfo exchange.
#[test]
fn moniker_and_network_are_what_peers_see_and_must_match() {
    let a = from_text(
        1,
        &toml("moniker = \"alpha-7\"\nnetwork = \"chain-x\"", "", ""),
    );
    let same = Node::builder(NodeKey::from_seed([2; 32]), "chain-x")
        .driver(driver())
        .shards(1)
        .start()
        .unwrap();
    let info = same
        .dial_blocking(a.listen_addr().unwrap(), Some(a.node_id()))
        .expect("a peer on chain-x connects");
    assert_eq!(info.node_info.moniker, "alpha-7");
    assert_eq!(info.node_info.network, "chain-x");
    // The test network's default peer is on another chain.
    let other = builder(3).shards(1).start().unwrap();
    match other.dial_blocking(a.listen_addr().unwrap(), Some(a.node_id())) {
        Err(DialError::Handshake(ConnError::NodeInfo(NodeInfoError::NetworkMismatch {
            ..
        }))) => {}
        r => panic!("a peer on test-chain must be refused: {r:?}"),
    }
    stop([a, same, other]);
}

/// `node.home` and a relative `node.node_key_file`: the key is read from that file under the
/// home directory, and the node runs with that identity.
#[test]
fn node_key_file_under_home_is_the_node_identity() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let key = NodeKeyFile::new(NodeKey::from_seed([0x5e; 32]));
    std::fs::create_dir_all(home.path().join("keys")).unwrap();
    key.write(home.path().join("keys/id.json")).unwrap();
    // The file lives elsewhere; `home` points at the key's directory.
    let file = elsewhere.path().join("ringwire.toml");
    std::fs::write(
        &file,
        toml(
            &format!(
                "home = {:?}\nnode_key_file = \"keys/id.json\"",
                home.path().display().to_string()
            ),
            "",
            "",
        ),
    )
    .unwrap();
    let config = Config::load(&file).unwrap();
    let (loaded, generated) = config.load_or_generate_node_key().unwrap();
    assert!(!generated, "the key under home was found");
    assert!(!elsewhere.path().join("keys").exists());
    let node = NodeBuilder::from_config(&config, loaded)
        .unwrap()
        .driver(driver())
        .start()
        .unwrap();
    assert_eq!(node.node_id(), key.node_id());
    stop([node]);
}

// ---- [p2p] -----------------------------------------------------------------------------------

/// `p2p.laddr`: the node listens on the configured address and peers reach it there.
#[test]
fn laddr_is_where_the_node_listens() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let text = toml("", "", "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let a = from_text(4, &text);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(a.listen_addr(), Some(addr));
    let b = peer(5);
    b.dial_blocking(addr, Some(a.node_id()))
        .expect("reachable at the configured port");
    stop([a, b]);
}

/// `p2p.persistent_peers`: dialed at start without anyone asking.
#[test]
fn persistent_peers_are_dialed_at_start() {
    let b = peer(6);
    let target = format!("{}@{}", b.node_id(), b.listen_addr().unwrap());
    let a = from_text(
        7,
        &toml("", &format!("persistent_peers = [{target:?}]"), ""),
    );
    assert!(
        eventually(Duration::from_secs(10), || a.peers().iter().any(|p| {
            p.info.node_id == b.node_id() && p.direction == Direction::Outbound
        })),
        "the persistent peer was dialed"
    );
    stop([a, b]);
}

/// `p2p.max_num_inbound_peers` refuses inbound peers past the cap; `p2p.unconditional_peer_ids`
/// are admitted past it.
#[test]
fn inbound_cap_refuses_all_but_unconditional_peers() {
    let (first, second, vip) = (peer(8), peer(9), peer(10));
    let a = from_text(
        11,
        &toml(
            "",
            &format!(
                "allow_duplicate_ip = true\nmax_num_inbound_peers = 1\nunconditional_peer_ids = \
                 [\"{}\"]",
                vip.node_id()
            ),
            "",
        ),
    );
    assert!(admitted(&first, &a), "the first inbound peer");
    assert!(!admitted(&second, &a), "past max_num_inbound_peers = 1");
    assert!(admitted(&vip, &a), "an unconditional peer passes the cap");
    assert_eq!(a.peers().len(), 2);
    stop([a, first, second, vip]);
}

/// `p2p.max_num_outbound_peers`: a dial past the cap is refused before it starts.
#[test]
fn outbound_cap_refuses_a_dial_past_it() {
    let (b, c) = (peer(12), peer(13));
    let a = from_text(
        14,
        &toml(
            "",
            "allow_duplicate_ip = true\nmax_num_outbound_peers = 1",
            "",
        ),
    );
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .expect("the first outbound peer");
    match a.dial_blocking(c.listen_addr().unwrap(), Some(c.node_id())) {
        Err(DialError::Refused(why)) if why.contains("outbound") => {}
        r => panic!("past max_num_outbound_peers = 1: {r:?}"),
    }
    assert_eq!(a.peers().len(), 1);
    stop([a, b, c]);
}

/// `p2p.allow_duplicate_ip = false` (stock's default) admits one peer per IP address; `true`
/// admits several, up to `limits.max_connections_per_ip`.
#[test]
fn peers_from_one_address_follow_allow_duplicate_ip_and_max_connections_per_ip() {
    let peers: Vec<Node> = (20..23).map(peer).collect();
    let strict = from_text(15, &toml("", "allow_duplicate_ip = false", ""));
    assert!(admitted(&peers[0], &strict));
    assert!(!admitted(&peers[1], &strict), "one peer per address");
    let open = from_text(
        16,
        &toml(
            "",
            "allow_duplicate_ip = true",
            "[limits]\nmax_connections_per_ip = 2\n",
        ),
    );
    assert!(admitted(&peers[0], &open));
    assert!(admitted(&peers[1], &open), "a second peer from 127.0.0.1");
    assert!(
        !admitted(&peers[2], &open),
        "past max_connections_per_ip = 2"
    );
    stop(peers.into_iter().chain([strict, open]));
}

/// `p2p.pex`: on, a node learns the addresses of the peers it dials; off, it runs no peer
/// exchange and learns nothing.
#[test]
fn pex_off_learns_no_addresses() {
    // Both dialers reach it from 127.0.0.1.
    let b = from_text(
        17,
        &toml(
            "",
            "pex = true\naddr_book_strict = false\nallow_duplicate_ip = true",
            "",
        ),
    );
    let learner = |seed, pex: bool| {
        let n = from_text(
            seed,
            &toml("", &format!("pex = {pex}\naddr_book_strict = false"), ""),
        );
        n.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
            .unwrap();
        n
    };
    let on = learner(18, true);
    assert!(
        eventually(Duration::from_secs(10), || on
            .pex_addresses()
            .iter()
            .any(|a| a.id == b.node_id())),
        "with pex = true the dialer learns the peer's address"
    );
    let off = learner(19, false);
    std::thread::sleep(Duration::from_millis(300));
    assert!(off.pex_addresses().is_empty());
    assert_eq!(off.peers().len(), 1, "the PEX peer keeps the connection");
    stop([b, on, off]);
}

/// `p2p.max_packet_msg_payload_size` in a node: its connections get the settings of
/// `Config::connection_config` (the keys `config_conn.rs` shows on single connections), so a
/// stock peer's 1024-byte packets close the connection of a node set to 100, and a 100-byte
/// message still arrives.
#[test]
fn max_packet_msg_payload_size_reaches_the_connections_of_a_node() {
    let a = from_text(
        33,
        &toml("", "max_packet_msg_payload_size = 100", "native = false"),
    );
    let b = peer(34);
    let mut events = a.peer_events();
    let mut rx = a.open_channel(chan(0x20, 1, 1 << 20)).unwrap();
    let tx = b.open_channel(chan(0x20, 1, 1 << 20)).unwrap();
    b.dial_blocking(a.listen_addr().unwrap(), Some(a.node_id()))
        .unwrap();
    // One at a time: messages completed in the read that fails are not delivered.
    tx.send_blocking(Envelope::peer(a.node_id(), payload(100, 1)), secs(5))
        .unwrap();
    assert_eq!(rx.recv_blocking(secs(5)).unwrap().payload.len(), 100);
    tx.send_blocking(Envelope::peer(a.node_id(), payload(1000, 2)), secs(5))
        .unwrap();
    match wait_down(&mut events) {
        PeerEvent::Down { node_id, reason } => {
            assert_eq!(node_id, b.node_id());
            assert!(reason.to_string().contains("mconnection"), "{reason}");
        }
        PeerEvent::Up { .. } => unreachable!(),
    }
    stop([a, b]);
}

/// `p2p.handshake_timeout`: a socket that never answers the handshake is closed at the deadline
/// (stock's default: 20s).
#[test]
fn handshake_timeout_closes_a_silent_socket() {
    let a = from_text(24, &toml("", "handshake_timeout = \"500ms\"", ""));
    let start = Instant::now();
    let mut silent = TcpStream::connect(a.listen_addr().unwrap()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut sink = Vec::new();
    // The node's first handshake bytes, then the end of the stream.
    let ended = match silent.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    let took = start.elapsed();
    assert!(ended, "the silent socket was not closed");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );
    stop([a]);
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect to it
/// gets no answer.
fn unanswered_listener() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    // Fill the queue (never accepted) until a connect goes unanswered.
    while held.len() < 16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(c) => held.push(c),
            Err(_) => return (s, held, addr),
        }
    }
    panic!("the accept queue never filled");
}

/// `p2p.dial_timeout`: a dial that gets no answer fails at the deadline (default 3s).
#[test]
fn dial_timeout_bounds_an_unanswered_dial() {
    let (_listener, _held, addr) = unanswered_listener();
    let a = from_text(25, &toml("", "dial_timeout = \"300ms\"", ""));
    let start = Instant::now();
    let r = a.dial_blocking(addr, None);
    let took = start.elapsed();
    assert!(matches!(r, Err(DialError::Connect(_))), "{r:?}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(2500),
        "failed after {took:?}"
    );
    stop([a]);
}

// ---- [engine] --------------------------------------------------------------------------------

/// `engine.driver` and `engine.shards`: the configured driver runs (io_uring where the kernel
/// allows it), with the configured number of shard threads.
#[test]
fn the_configured_driver_and_shard_count_run() {
    for (name, kind) in [
        ("epoll", DriverKind::Epoll),
        ("io_uring", DriverKind::IoUring),
    ] {
        let text = toml("", "", &format!("shards = 3\ndriver = \"{name}\""));
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.engine.driver, name.parse::<Driver>().unwrap());
        match NodeBuilder::from_config(&config, NodeKey::from_seed([26; 32]))
            .unwrap()
            .start()
        {
            Ok(node) => {
                assert_eq!(node.driver(), kind);
                assert_eq!(node.shards(), 3);
                stop([node]);
            }
            // A kernel or sandbox without io_uring: the configured driver fails fast.
            Err(e) if kind == DriverKind::IoUring => println!("io_uring unavailable: {e}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

/// `engine.native = false` speaks the stock protocol even to a ringwire peer;
/// `engine.capabilities` are announced to native peers.
#[test]
fn native_and_capabilities_are_what_peers_get() {
    let b = peer(27);
    let stock = from_text(28, &toml("", "", "native = false"));
    let info = stock
        .dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    assert_eq!(info.mode, Mode::Compat);
    let archive = from_text(29, &toml("", "", "capabilities = [\"archive\"]"));
    archive
        .dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    let find = || {
        b.peers()
            .into_iter()
            .find(|p| p.info.node_id == archive.node_id())
    };
    assert!(eventually(Duration::from_secs(10), || find().is_some()));
    let seen = find().unwrap();
    assert_eq!(seen.info.mode, Mode::Native);
    assert_eq!(seen.info.capabilities, ["archive"]);
    stop([b, stock, archive]);
}

// ---- [limits] --------------------------------------------------------------------------------

/// A socket connected to `to` from loopback address 127.0.0.`last`.
fn connect_from(last: u8, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, last], 0)).into())
        .unwrap();
    s.connect(&to.into()).unwrap();
    s.into()
}

/// `limits.max_pending_handshakes` caps connections in the handshake over all addresses, and
/// `limits.max_pending_handshakes_per_ip` those from one address: past either, a connection is
/// closed at accept.
#[test]
fn pending_handshakes_are_capped_in_all_and_per_address() {
    let a = from_text(
        30,
        &toml(
            "",
            "allow_duplicate_ip = true",
            "[limits]\nmax_pending_handshakes = 2\nmax_pending_handshakes_per_ip = 1\n",
        ),
    );
    let to = a.listen_addr().unwrap();
    let pending = |n| {
        eventually(Duration::from_secs(5), || {
            a.admission_stats().unwrap().pending_inbound == n
        })
    };
    let mut held = connect_from(2, to);
    assert!(pending(1));
    let mut same_ip = connect_from(2, to);
    assert!(
        refused_at_accept(&mut same_ip, Duration::from_secs(10)),
        "a second one from 127.0.0.2"
    );
    let mut other_ip = connect_from(3, to);
    assert!(pending(2));
    let mut third_ip = connect_from(4, to);
    assert!(
        refused_at_accept(&mut third_ip, Duration::from_secs(10)),
        "a third pending handshake"
    );
    assert!(
        !refused_at_accept(&mut held, Duration::from_secs(3))
            && !refused_at_accept(&mut other_ip, Duration::from_secs(3))
    );
    stop([a]);
}

/// The stock blocksync channel (0x40), as `ringwire node` carries it.
fn blocksync() -> ChannelDescriptor {
    ChannelDescriptor::stock()
        .into_iter()
        .find(|d| d.id == 0x40)
        .expect("the stock blocksync channel")
}

/// `limits.max_message_size` lowers every channel's receive cap (the stock blocksync channel's
/// is about 100 MiB): a larger message from a stock peer closes the connection.
#[test]
fn max_message_size_caps_what_a_channel_accepts() {
    let config =
        Config::from_toml_str(&toml("", "", "[limits]\nmax_message_size = 2048\n")).unwrap();
    let a = NodeBuilder::from_config(&config, NodeKey::from_seed([31; 32]))
        .unwrap()
        .driver(driver())
        .channel(blocksync())
        .start()
        .unwrap();
    // Stock framing: the receiver enforces its cap (a native sender learns it from the HELLO
    // and never sends more).
    let b = builder(32)
        .shards(1)
        .offer_native(false)
        .channel(blocksync())
        .start()
        .unwrap();
    let mut events = a.peer_events();
    let mut rx = a.open_channel(blocksync()).unwrap();
    let tx = b.open_channel(blocksync()).unwrap();
    b.dial_blocking(a.listen_addr().unwrap(), Some(a.node_id()))
        .unwrap();
    tx.send_blocking(Envelope::peer(a.node_id(), payload(2048, 1)), secs(5))
        .unwrap();
    assert_eq!(rx.recv_blocking(secs(5)).unwrap().payload.len(), 2048);
    tx.send_blocking(Envelope::peer(a.node_id(), payload(4096, 2)), secs(5))
        .unwrap();
    match wait_down(&mut events) {
        PeerEvent::Down { node_id, .. } => assert_eq!(node_id, b.node_id()),
        PeerEvent::Up { .. } => unreachable!(),
    }
    assert!(
        rx.try_recv().is_none(),
        "the 4096-byte message was not delivered"
    );
    stop([a, b]);
}
