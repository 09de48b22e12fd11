//! ringwire's native protocol, spoken only between two ringwire peers.
//!
//! After the stock SecretConnection handshake and NodeInfo exchange, if both NodeInfos list the
//! capability channel [`RINGWIRE_CAPABILITY_CHANNEL`], both sides stop writing SecretConnection
//! frames and switch to this protocol (specified in `docs/PROTOCOL.md`, version 1):
//!
//! - [`record`]: AES-256-GCM records of at most 64 KiB plaintext, keyed from the same handshake
//!   with a distinct HKDF label;
//! - [`frame`]: the frames a record carries (HELLO, DATA, WINDOW_UPDATE, PING, PONG, CANCEL,
//!   CLOSE, RESET), pure encode and decode;
//! - [`Mux`]: channels with per-channel credit windows, chunking with priority scheduling,
//!   request/response with deadlines and cancellation, keepalive, close and reset;
//! - [`PayloadCodec`]: the hook through which compression plugs in.
//!
//! Like the rest of `proto`, nothing here performs I/O or reads a clock.

pub mod codec;
pub mod config;
pub mod error;
pub mod event;
mod flow;
pub mod frame;
pub mod mux;
pub mod pinned;
pub mod record;
mod scheduler;
pub mod spares;
pub mod stats;

#[cfg(test)]
mod tests;

pub use codec::{NoCodec, PayloadCodec};
pub use config::{NativeChannelConfig, NativeConfig};
pub use error::{ConfigError, MuxError, MuxQueueError};
pub use event::{DropReason, MessageKind, MuxEvent, RequestId, ResetCode};
pub use mux::{MIN_RECORD_BUDGET, Mux, PROTOCOL_VERSION};
pub use pinned::PinBudget;
pub use record::{
    InPlaceRecord, MAX_RECORD_PLAINTEXT, Opened, RecordError, RecordOpener, RecordSealer,
};
pub use spares::SpareBuffers;
pub use stats::MuxStats;

pub use super::nodeinfo::RINGWIRE_CAPABILITY_CHANNEL;
