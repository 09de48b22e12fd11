//! Address-book helpers for the PEX and discovery tests: a node's announced address, and a
//! book file written ahead of a node's start.

use std::path::Path;
use std::time::{Instant, SystemTime};

use ringwire::node::Node;
use ringwire::pex::{Pex, PexAddr, PexConfig};
use ringwire::proto::secret::NodeId;

/// The address `n` listens on, as PEX carries it.
pub fn addr_of(n: &Node) -> PexAddr {
    let sa = n.listen_addr().expect("the node listens");
    PexAddr {
        id: n.node_id(),
        ip: sa.ip(),
        port: sa.port(),
    }
}

/// Writes a book holding `addrs` (stock's `addrbook.json`) at `path`; `seed` is the book's
/// random key.
pub fn write_book(path: &Path, addrs: &[PexAddr], seed: u64) {
    let config = PexConfig {
        // Loopback addresses are not routable: a strict book would learn none.
        addr_book_strict: false,
        ..PexConfig::default()
    };
    let mut book = Pex::new(NodeId([0xee; 20]), config, seed);
    let now = Instant::now();
    for a in addrs {
        assert!(book.learn(*a, now), "the book takes {a:?}");
    }
    std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("book folder");
    book.to_book_file(now, SystemTime::now())
        .save(path)
        .expect("book written");
}
