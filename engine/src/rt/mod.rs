//! The runtime layer: the only code that knows which async runtime and which kernel interface
//! drive the sockets.
//!
//! Today that is compio (pinned exactly in `Cargo.toml`) on io_uring, or on epoll when io_uring
//! is unavailable (see `driver` for the probe and the fallback policy). Everything above this
//! module sees small types only:
//!
//! - shard threads, each with its own runtime (`thread`), and local tasks on them;
//! - `net::Stream`: a connected byte stream (TCP or the in-memory pipe of `memory`) with
//!   owned-buffer reads and writes, reads into buffers lent from the shard's io_uring
//!   provided-buffer ring, and a multishot receive on that ring (`net::MultiRecv`, re-armed
//!   when the ring runs dry); `net::Listener`: one `SO_REUSEPORT` listener per shard;
//! - timers on a shard (`time`) and deadlines usable from any thread or executor (`clock`);
//! - files replaced whole or not at all (`fs`), for the node key and the address book.
//!
//! Moving to raw `io-uring` later changes this folder only. A new kernel feature that the layers
//! above must choose or configure reaches beyond it: zero-copy send (`net::Stream::write_all_zc`,
//! probed in `driver`) also needed the shard's writer to pick it by write size
//! (`shard/conn.rs`), its threshold in `Limits` (`node.rs`) and a counter in the router's
//! statistics.

pub(crate) mod clock;
pub mod driver;
pub(crate) mod fs;
pub(crate) mod memory;
pub(crate) mod net;
pub mod seccomp;
pub(crate) mod submit;
pub(crate) mod thread;
pub(crate) mod time;
pub(crate) mod wake_relay;

pub use driver::{Driver, DriverError, DriverKind, ProbeFailure, UnknownDriver};
