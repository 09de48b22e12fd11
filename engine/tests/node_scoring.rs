//! Peer scoring on real sockets: a node built the way `ringwire node` builds one (TOML, peer
//! manager, PEX with an address book file under its home) meets a raw native peer that floods
//! control frames. One flood costs the peer half the ban threshold and it may come back; the
//! second bans its ID. The ban is counted by reason, written to `bans.json` beside the address
//! book, and survives a restart of the node: the restarted node refuses the same ID.

use std::path::Path;
use std::time::{Duration, Instant};

use ringwire::node::Node;
use ringwire::proto::secret::NodeKey;
use ringwire::router::NodeStats;
use ringwire_test_support::node::*;
use ringwire_test_support::raw_native::{Closed, RawNativePeer};

const NETWORK: &str = "test-chain";
const CHANNELS: [u8; 1] = [0x20];
const OFFENDER: u8 = 2;

fn toml(home: &Path, port: u16) -> String {
    format!(
        "[node]\nnetwork = \"{NETWORK}\"\nhome = \"{}\"\n\
         [p2p]\nladdr = \"tcp://127.0.0.1:{port}\"\npex = true\nallow_duplicate_ip = true\n\
         [engine]\nshards = 1\nnative = true\n\
         [limits]\nmax_control_frames_per_second = 50\n",
        home.display()
    )
}

fn node(home: &Path) -> Node {
    builder_from_toml(1, &toml(home, 0))
        .channel(chan(0x20, 1, 1 << 20))
        .start()
        .expect("node starts")
}

fn wait_stats(node: &Node, f: impl Fn(&NodeStats) -> bool) -> NodeStats {
    let deadline = secs(20);
    loop {
        let s = node.stats();
        if f(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The offender connects, floods PINGs and is reset.
fn flood_once(n: &Node) {
    let mut peer = RawNativePeer::connect(n.listen_addr().unwrap(), OFFENDER, NETWORK, &CHANNELS);
    wait_peers(n, 1);
    peer.ping_flood(500);
    match peer.wait_closed(Duration::from_secs(10)) {
        Closed::Reset { .. } => {}
        other => panic!("expected a reset, got {other:?}"),
    }
    let deadline = secs(10);
    while !n.peers().is_empty() {
        assert!(Instant::now() < deadline, "the flooder is still a peer");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A node with the offender's key dials `n`: `n` refuses it as banned (counted) and never
/// lists it as a peer.
fn assert_offender_refused(n: &Node, offender: &ringwire::proto::secret::NodeId) {
    let before = n.admission_refusals().unwrap().banned;
    let dir = tempfile::tempdir().unwrap();
    let o = builder_from_toml(OFFENDER, &toml(dir.path(), 0))
        .channel(chan(0x20, 1, 1 << 20))
        .start()
        .expect("offender starts");
    // The dial may succeed on the offender's side before `n` refuses it at admission.
    let _ = o.dial_blocking(n.listen_addr().unwrap(), Some(n.node_id()));
    let deadline = secs(20);
    while n.admission_refusals().unwrap().banned == before {
        assert!(Instant::now() < deadline, "the banned ID was not refused");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!n.peers().iter().any(|p| p.info.node_id == *offender));
    o.shutdown_blocking(secs(5));
}

#[test]
fn a_repeat_flooder_is_banned_and_the_ban_survives_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let offender = NodeKey::from_seed([OFFENDER; 32]).node_id();
    let n = node(home.path());

    flood_once(&n);
    let s = wait_stats(&n, |s| s.offences_control_flood == 1);
    assert_eq!(s.bans_control_flood, 0, "one flood does not ban");
    assert!(
        n.peer_score(&offender).unwrap() < 0,
        "the flood lowered the score"
    );
    assert!(!n.bans().unwrap().ids.iter().any(|(id, _)| *id == offender));

    flood_once(&n);
    let s = wait_stats(&n, |s| s.bans_control_flood == 1);
    assert_eq!(s.offences_control_flood, 2);
    let bans = n.bans().unwrap();
    let until = bans
        .ids
        .iter()
        .find(|(id, _)| *id == offender)
        .map(|(_, until)| *until)
        .expect("the offender is banned");
    let left = until.saturating_duration_since(Instant::now());
    assert!(
        left > Duration::from_secs(23 * 3600) && left <= Duration::from_secs(24 * 3600),
        "banned for a day: {left:?}"
    );
    assert!(bans.ips.is_empty(), "loopback is never banned");
    assert_offender_refused(&n, &offender);

    // The dialer thread writes the bans file soon after the ban.
    let file = home.path().join("config").join("bans.json");
    let deadline = secs(20);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains(&offender.to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "bans.json: {text:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    n.shutdown_blocking(secs(5));

    let n = node(home.path());
    let bans = n.bans().unwrap();
    let (_, until) = bans
        .ids
        .iter()
        .find(|(id, _)| *id == offender)
        .copied()
        .expect("the ban was read back");
    let left = until.saturating_duration_since(Instant::now());
    assert!(left > Duration::from_secs(23 * 3600), "{left:?}");
    // The restarted node refuses the banned ID.
    assert_offender_refused(&n, &offender);
    // Another ID from the same address is welcome.
    let mut other = RawNativePeer::connect(n.listen_addr().unwrap(), 3, NETWORK, &CHANNELS);
    wait_peers(&n, 1);
    other.roundtrip(Duration::from_secs(10));
    n.shutdown_blocking(secs(5));
}

#[test]
fn a_bans_file_that_is_not_json_fails_start_and_names_the_file() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bans.json"), b"not json").unwrap();
    let Err(e) = builder_from_toml(1, &toml(home.path(), 0)).start() else {
        panic!("start succeeded with a bad bans file");
    };
    assert!(e.to_string().contains("bans.json"), "{e}");
}
