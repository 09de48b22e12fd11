//! PEX inside nodes: addresses travel over native and compat connections alike, and a node
//! without PEX neither receives nor sends anything on channel 0x00.

use std::time::{Duration, Instant};

use ringwire::node::Node;
use ringwire::pex::{PexAddr, PexConfig};
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

fn addr_of(n: &Node) -> PexAddr {
    let sa = n.listen_addr().unwrap();
    PexAddr {
        id: n.node_id(),
        ip: sa.ip(),
        port: sa.port(),
    }
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
