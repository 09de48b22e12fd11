//! The sans-IO protocol core.
//!
//! Nothing in this module performs I/O, spawns threads, or reads a clock. Every input is a byte
//! slice or an explicit `now: Instant`; every output is polled. A runtime drives it; tests drive
//! it deterministically through [`sim`].

#![forbid(unsafe_code)]
// Peer bytes flow through here: no panicking lookups (tests may; see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod budget;
mod by_channel;
pub mod compress;
pub mod conn;
pub mod mconn;
pub mod native;
pub(crate) mod netgroup;
pub mod nodeinfo;
pub mod secret;
pub mod sim;
pub mod wire;
