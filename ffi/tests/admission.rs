//! A node made through the C ABI runs the same peer manager as `ringwire node`: the inbound
//! cap (40 by default), the per-IP caps and the simultaneous-dial tie-break hold for it, and
//! `ringwire_config_load_toml` applies the file's `[p2p]` and `[limits]` sections.

use std::ffi::{CString, c_char};
use std::path::{Path, PathBuf};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use ringwire::Driver;
use ringwire::config::NodeKeyFile;
use ringwire::node::Node;
use ringwire::proto::secret::NodeKey;
use ringwire_ffi::config::*;
use ringwire_ffi::node::*;
use ringwire_ffi::result::*;

const OK: ringwire_result = ringwire_result::Ok;
const NETWORK: &str = "ffi-admission";

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringwire-ffi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A C ABI node started from a TOML file holding `extra` plus a node key, listening on a
/// free loopback port.
fn node_from_toml(dir: &Path, extra: &str) -> *mut ringwire_node {
    node_from_toml_tuned(dir, extra, |_| {})
}

/// Loads a TOML file holding `extra` (as [`node_from_toml`]), lets `tune` adjust the config,
/// then starts the node.
fn node_from_toml_tuned(
    dir: &Path,
    extra: &str,
    tune: impl FnOnce(*mut ringwire_config),
) -> *mut ringwire_node {
    let key = dir.join("node_key.json");
    NodeKeyFile::load_or_generate(&key).expect("node key");
    let toml = format!(
        "[node]\nnetwork = \"{NETWORK}\"\nnode_key_file = \"{}\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\npex = false\n{extra}\n[engine]\ndriver = \"epoll\"\nshards = 1\n",
        key.display()
    );
    let path = dir.join("ringwire.toml");
    std::fs::write(&path, toml).expect("write config");
    let path = CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
    let mut cfg = null_mut();
    let mut node = null_mut();
    // SAFETY: NUL-terminated path, valid out-pointers, the config freed once.
    unsafe {
        assert_eq!(ringwire_config_load_toml(path.as_ptr(), &mut cfg), OK);
        tune(cfg);
        assert_eq!(ringwire_node_start(cfg, &mut node), OK);
        ringwire_config_free(cfg);
    }
    node
}

/// A C ABI node with `ringwire_config_new`'s defaults, listening on loopback.
fn default_node(seed: u8) -> *mut ringwire_node {
    let mut cfg = null_mut();
    let mut node = null_mut();
    // SAFETY: valid out-pointers and NUL-terminated strings; the config freed once.
    unsafe {
        assert_eq!(ringwire_config_new(&mut cfg), OK);
        assert_eq!(ringwire_config_set_key_seed(cfg, [seed; 32].as_ptr()), OK);
        let network = CString::new(NETWORK).expect("no NUL");
        assert_eq!(ringwire_config_set_network(cfg, network.as_ptr()), OK);
        assert_eq!(ringwire_config_set_listen(cfg, c"127.0.0.1:0".as_ptr()), OK);
        assert_eq!(
            ringwire_config_set_driver(cfg, ringwire_driver::Epoll as u32),
            OK
        );
        assert_eq!(ringwire_node_start(cfg, &mut node), OK);
        ringwire_config_free(cfg);
    }
    node
}

fn listen_addr(n: *const ringwire_node) -> std::net::SocketAddr {
    let mut buf = [0 as c_char; 64];
    let mut w = 0;
    // SAFETY: a live node and a 64-byte buffer.
    let r = unsafe { ringwire_node_listen_addr(n, buf.as_mut_ptr(), 64, &mut w) };
    assert_eq!(r, OK);
    // SAFETY: the call wrote a NUL-terminated string into `buf`.
    let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    text.to_str()
        .expect("utf-8")
        .parse()
        .expect("socket address")
}

fn peer_count(n: *const ringwire_node) -> usize {
    let mut count = 0;
    // SAFETY: a live node and a valid out-pointer.
    let r = unsafe { ringwire_node_peer_count(n, &mut count) };
    assert_eq!(r, OK);
    count
}

fn stats(n: *const ringwire_node) -> ringwire_node_stats {
    // SAFETY: all-zero is a valid value of this plain struct of integers.
    let mut s: ringwire_node_stats = unsafe { std::mem::zeroed() };
    // SAFETY: a live node and a valid out-pointer.
    let r = unsafe { ringwire_node_get_stats(n, &mut s) };
    assert_eq!(r, OK);
    s
}

/// An engine node (one shard, epoll) that dials out.
fn dialer(seed: u16) -> Node {
    let mut s = [0u8; 32];
    s[..2].copy_from_slice(&seed.to_le_bytes());
    s[31] = 0xd1;
    Node::builder(NodeKey::from_seed(s), NETWORK)
        .shards(1)
        .driver(Driver::Epoll)
        .start()
        .expect("dialer starts")
}

/// Waits until `f` holds or `within` passes; returns whether it held.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

#[test]
fn the_41st_inbound_peer_is_refused_with_the_default_inbound_cap() {
    let dir = scratch("inbound-cap");
    // Forty-one peers share 127.0.0.1 here, so the per-IP rules (the handshake rate too) are
    // opened up; the inbound cap keeps its default (40).
    let hub = node_from_toml(
        &dir,
        "allow_duplicate_ip = true\n\n[limits]\nmax_connections_per_ip = 64\n\
         handshake_burst_per_ip = 64\n",
    );
    let addr = listen_addr(hub);
    let dialers: Vec<Node> = (0..41).map(dialer).collect();
    for d in &dialers[..40] {
        d.dial_blocking(addr, None).expect("one of the first 40");
    }
    assert!(
        eventually(Duration::from_secs(10), || peer_count(hub) == 40),
        "the hub holds 40 peers, has {}",
        peer_count(hub)
    );
    // The 41st may see its own side up before the hub refuses it; the hub never counts it.
    let _ = dialers[40].dial_blocking(addr, None);
    assert!(
        eventually(Duration::from_secs(5), || {
            let s = stats(hub);
            s.refused + s.accept_refused >= 1
        }),
        "the hub refused the 41st"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(peer_count(hub), 40);
    for d in dialers {
        d.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    }
    // SAFETY: a live node, freed once.
    unsafe { ringwire_node_free(hub) };
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_second_peer_from_one_address_is_refused_by_default() {
    let hub = default_node(0x41);
    let addr = listen_addr(hub);
    let (first, second) = (dialer(1), dialer(2));
    first.dial_blocking(addr, None).expect("the first peer");
    assert!(eventually(Duration::from_secs(5), || peer_count(hub) == 1));
    let _ = second.dial_blocking(addr, None);
    assert!(
        eventually(Duration::from_secs(5), || stats(hub).refused >= 1),
        "stock's allow_duplicate_ip = false refuses a second peer from 127.0.0.1"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(peer_count(hub), 1);
    first.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    second.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    // SAFETY: a live node, freed once.
    unsafe { ringwire_node_free(hub) };
}

#[test]
fn simultaneous_dials_between_two_c_abi_nodes_leave_one_connection() {
    // Both run PEX (the default): the connection the tie-break drops must not look like the
    // peer leaving, or PEX takes the answer to its request for unsolicited and disconnects.
    let (a, b) = (default_node(0x51), default_node(0x52));
    let (addr_a, addr_b) = (listen_addr(a), listen_addr(b));
    let id = |n: *mut ringwire_node| {
        let mut id = ringwire_node_id::default();
        // SAFETY: a live node and a valid out-pointer.
        let r = unsafe { ringwire_node_get_id(n, &mut id) };
        assert_eq!(r, OK);
        id
    };
    let (ida, idb) = (id(a), id(b));
    // Raw pointers are not Send; the handles are valid from any thread (the C ABI's contract).
    let (pa, pb) = (a as usize, b as usize);
    let dial = |from: usize, to: std::net::SocketAddr, expected: ringwire_node_id| {
        std::thread::spawn(move || {
            let to = CString::new(to.to_string()).expect("no NUL");
            // SAFETY: a live node, a NUL-terminated address, a valid expected id.
            unsafe {
                ringwire_node_dial(
                    from as *const ringwire_node,
                    to.as_ptr(),
                    &expected,
                    null_mut(),
                )
            }
        })
    };
    let ta = dial(pa, addr_b, idb);
    let tb = dial(pb, addr_a, ida);
    let (ra, rb) = (ta.join().expect("dial a"), tb.join().expect("dial b"));
    assert!(
        ra == OK || rb == OK,
        "at least one dial succeeds: {ra:?} {rb:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || peer_count(a) == 1
            && peer_count(b) == 1),
        "one connection on each side"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((peer_count(a), peer_count(b)), (1, 1));
    // SAFETY: live nodes, freed once.
    unsafe {
        ringwire_node_free(a);
        ringwire_node_free(b);
    }
}

#[test]
fn an_unconditional_peer_gets_in_past_the_inbound_cap_and_a_persistent_peer_is_dialled() {
    let dir = scratch("unconditional");
    let vip = dialer(900);
    let vip_id = ringwire_node_id::from(vip.node_id());
    // One inbound place; the VIP is unconditional.
    let hub = node_from_toml_tuned(
        &dir,
        "allow_duplicate_ip = true\nmax_num_inbound_peers = 1\n",
        // SAFETY: a live config and a valid ID.
        |cfg| unsafe {
            assert_eq!(ringwire_config_add_unconditional_peer_id(cfg, &vip_id), OK);
            // A bad persistent peer is refused with a clear error.
            assert_eq!(
                ringwire_config_add_persistent_peer(cfg, c"no-id@127.0.0.1:1".as_ptr()),
                ringwire_result::InvalidArgument
            );
        },
    );
    let addr = listen_addr(hub);
    let first = dialer(901);
    first
        .dial_blocking(addr, None)
        .expect("the first peer fills the place");
    let ordinary = dialer(902);
    let _ = ordinary.dial_blocking(addr, None);
    assert!(
        eventually(Duration::from_secs(5), || stats(hub).refused >= 1),
        "a second ordinary peer is refused"
    );
    assert_eq!(peer_count(hub), 1);
    vip.dial_blocking(addr, None)
        .expect("the unconditional peer gets in");
    assert!(eventually(Duration::from_secs(5), || peer_count(hub) == 2));

    // A node with a persistent peer dials it by itself.
    let target = default_node(77);
    let target_addr = listen_addr(target);
    let target_hex = {
        let mut buf = [0 as c_char; 41];
        let mut w = 0;
        // SAFETY: a live node and a 41-byte buffer.
        let r = unsafe { ringwire_node_get_id_hex(target, buf.as_mut_ptr(), 41, &mut w) };
        assert_eq!(r, OK);
        // SAFETY: NUL-terminated by the call.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    let peer = CString::new(format!("{target_hex}@{target_addr}")).expect("no NUL");
    let dir2 = scratch("persistent");
    let follower = node_from_toml_tuned(
        &dir2,
        "allow_duplicate_ip = true\n",
        // SAFETY: a live config and a NUL-terminated address.
        |cfg| unsafe {
            assert_eq!(ringwire_config_add_persistent_peer(cfg, peer.as_ptr()), OK);
        },
    );
    assert!(
        eventually(Duration::from_secs(10), || peer_count(follower) == 1),
        "the persistent peer is dialled without a dial call"
    );
    // SAFETY: each handle freed once.
    unsafe {
        ringwire_node_free(follower);
        ringwire_node_free(target);
        ringwire_node_free(hub);
    }
    for n in [first, vip, ordinary] {
        n.shutdown_blocking(Instant::now() + Duration::from_secs(2));
    }
}

#[test]
fn capability_targets_reach_the_c_abi_config_and_bad_ones_are_refused() {
    let dir = scratch("captargets");
    let key = dir.join("node_key.json");
    NodeKeyFile::load_or_generate(&key).expect("node key");
    let load = |targets: &str| -> (ringwire_result, *mut ringwire_config) {
        let toml = format!(
            "[node]\nnetwork = \"{NETWORK}\"\nnode_key_file = \"{}\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\npex = true\naddr_book_file = \"{}\"\ncapability_targets = {targets}\n\n[engine]\ndriver = \"epoll\"\nshards = 1\n",
            key.display(),
            dir.join("addrbook.json").display()
        );
        let path = dir.join("ringwire.toml");
        std::fs::write(&path, toml).expect("write config");
        let path = CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
        let mut cfg = null_mut();
        // SAFETY: NUL-terminated path, valid out-pointer.
        let r = unsafe { ringwire_config_load_toml(path.as_ptr(), &mut cfg) };
        (r, cfg)
    };
    // A valid target loads and the node starts with it.
    let (r, cfg) = load("{ archive = \"30%\" }");
    assert_eq!(r, OK);
    let mut node = null_mut();
    // SAFETY: a loaded config, a valid out-pointer; the config and node freed once.
    unsafe {
        assert_eq!(ringwire_node_start(cfg, &mut node), OK);
        ringwire_config_free(cfg);
        ringwire_node_free(node);
    }
    // A percentage over 100 is refused when the file loads, with no config made.
    let (r, cfg) = load("{ archive = \"130%\" }");
    assert_ne!(r, OK);
    assert!(cfg.is_null());
    let _ = std::fs::remove_dir_all(&dir);
}
