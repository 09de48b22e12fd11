//! ringwire: a peer-to-peer networking engine for CometBFT-style blockchain nodes.
//!
//! The crate is layered bottom-up (see `docs/ARCHITECTURE.md`):
//!
//! - [`proto`] — the sans-IO protocol core. Bytes in, bytes and events out. It opens no socket,
//!   starts no thread and never reads a clock: time is always an argument. It speaks the stock
//!   CometBFT wire protocol (SecretConnection, NodeInfo, MConnection) byte for byte, and
//!   ringwire's own native record layer and multiplexer between two ringwire peers.
//! - [`rt`] — the runtime: shard threads on io_uring (or epoll when io_uring is unavailable),
//!   sockets, timers. The only module that knows the async runtime.
//! - `registry` — the connected peers (identity, owning shard, send credit, traffic), the
//!   channel table, the admission gate, peer events and counters: what the shards and the
//!   router share.
//! - `shard` — one thread's connections: it drives each [`proto::conn::Connection`] over its
//!   socket, registering its peers in the registry.
//! - [`router`] — the sending side above the shards: channels, envelopes, local delivery,
//!   request/response, broadcast and role addressing.
//! - [`node`] — [`Node`]: configuration → shards + router; start and stop.
//! - [`peers`] — the peer manager's decisions (addresses, backoff, admission limits, the
//!   simultaneous-dial tie-break, bans), also I/O-free.
//! - [`pex`] — peer exchange on channel 0x00 as stock CometBFT does it (sans-IO state plus a
//!   small service thread the node runs when asked).
//! - [`config`] — the TOML configuration and the import of a CometBFT home directory.

pub mod config;
pub mod metrics;
pub mod node;
pub mod peers;
pub mod pex;
pub mod proto;
mod registry;
pub mod router;
pub mod rt;
mod shard;

pub use node::{Limits, Node, NodeBuilder, StartError};
pub use router::{
    CancelToken, Channel, ChannelSender, DialError, Envelope, Fanout, Origin, PeerEvent, Received,
    SendError, To,
};
pub use rt::{Driver, DriverKind};
