//! Tests of the sans-IO PEX state: the stock rules (`rules.rs`), the address book as the
//! state uses it (`book.rs`), its tables, bans and file (`tables.rs`), and the per-peer
//! budgets and state (`peers.rs`), dialing from the book (`discover.rs`). The book's own tests
//! are in `book/tests.rs`.

use std::net::{IpAddr, Ipv4Addr};

use prost::Message as _;

use crate::proto::secret::NodeId;
use crate::proto::wire::{self, pex_message::Sum};

use super::{Action, LATE_ANSWER_GRACE, Pex, PexAddr, PexConfig, PexPeer};

mod book;
mod caps;
mod discover;
mod peers;
mod rules;
mod tables;

fn id(n: u8) -> NodeId {
    NodeId([n; 20])
}

/// Peer `n` as PEX sees it, without a remote address (no sockets here).
fn peer(n: u8, outbound: bool, listen: Option<PexAddr>) -> PexPeer {
    PexPeer {
        id: id(n),
        outbound,
        listen,
        remote: None,
        native: false,
        capabilities: Vec::new(),
    }
}

/// A routable address for node `n`.
fn addr(n: u8) -> PexAddr {
    PexAddr {
        id: id(n),
        ip: IpAddr::V4(Ipv4Addr::new(1, 2, 3, n)),
        port: 26656,
    }
}

/// Node `n` at a private (non-routable) address.
fn private_addr(n: u8) -> PexAddr {
    PexAddr {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
        ..addr(n)
    }
}

/// A state for node 0 with `config` and a fixed seed.
fn pex(config: PexConfig) -> Pex {
    Pex::new(id(0), config, 0x5eed)
}

fn encode(sum: Sum) -> Vec<u8> {
    wire::PexMessage { sum: Some(sum) }.encode_to_vec()
}

fn request() -> Vec<u8> {
    encode(Sum::PexRequest(wire::PexRequest::default()))
}

fn addrs_bytes(list: &[PexAddr]) -> Vec<u8> {
    encode(Sum::PexAddrs(wire::PexAddrs {
        addrs: list.iter().map(PexAddr::to_wire).collect(),
    }))
}

/// The addresses of an answer.
fn decode_addrs(action: Option<Action>) -> Vec<PexAddr> {
    let Some(Action::Send { payload, .. }) = action else {
        panic!("expected a send, got {action:?}");
    };
    match wire::PexMessage::decode(payload).unwrap().sum {
        Some(Sum::PexAddrs(l)) => l
            .addrs
            .iter()
            .map(|a| PexAddr::from_wire(a).unwrap())
            .collect(),
        other => panic!("not an address list: {other:?}"),
    }
}

/// Asks `p` for addresses as peer `from` (first requests are free).
fn answer(p: &mut Pex, from: u8) -> Vec<PexAddr> {
    decode_addrs(p.receive(id(from), &request(), std::time::Instant::now()))
}
