//! ringwire: a peer-to-peer networking engine for CometBFT-style blockchain nodes.
//!
//! The crate is layered bottom-up (see `docs/ARCHITECTURE.md`):
//!
//! - [`proto`] — the sans-IO protocol core. Bytes in, bytes and events out. It opens no socket,
//!   starts no thread and never reads a clock: time is always an argument. It speaks the stock
//!   CometBFT wire protocol (SecretConnection, NodeInfo, MConnection) byte for byte, and
//!   ringwire's own native record layer and multiplexer between two ringwire peers.
//!
//! - [`peers`] — the peer manager's decisions (addresses, backoff, admission limits, the
//!   simultaneous-dial tie-break, bans), also I/O-free.
//! - [`config`] — the TOML configuration and the import of a CometBFT home directory.
//!
//! The runtime, shards and router build on these next.

pub mod config;
pub mod peers;
pub mod proto;
