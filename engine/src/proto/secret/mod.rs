//! CometBFT's SecretConnection, byte-exact and sans-IO.
//!
//! A station-to-station handshake authenticates both nodes' ed25519 identities over an
//! ephemeral X25519 exchange ([`Handshake`]), then every byte travels in fixed-size
//! ChaCha20-Poly1305 frames ([`FrameSealer`], [`FrameOpener`]). The bytes on the wire are
//! exactly those stock CometBFT (v0.34 through v0.40 and v1.x) writes and expects; golden
//! vectors from stock code prove it.
//!
//! This module performs no I/O and draws no randomness: the caller passes in the ephemeral
//! secret and moves bytes between the state machine and the socket. Every length a peer
//! declares is checked against a fixed limit before anything is stored, every buffer is a
//! fixed array, and every failure is a distinct [`SecretError`] after which the failing
//! object refuses further work.
//!
//! Once the handshake completes, [`SecretSession`] also derives independent record keys for
//! ringwire's native protocol ([`SecretSession::native_keys`]).

mod delimited;
mod error;
mod frame;
mod handshake;
mod identity;
mod keys;
mod nonce;
mod session;
mod unverified;
mod x25519;

#[cfg(test)]
mod tests;

pub use error::SecretError;
pub use frame::{
    DATA_LEN_SIZE, DATA_MAX_SIZE, FRAME_PLAIN_SIZE, FRAME_SEALED_SIZE, FrameOpener, FrameSealer,
    TAG_SIZE, frames_for,
};
pub use handshake::{AUTH_MESSAGE_MAX, EPHEMERAL_MESSAGE_MAX, Handshake};
pub use identity::{
    IdentityError, KEYPAIR_SIZE, NODE_ID_SIZE, NodeId, NodeKey, PUBLIC_KEY_SIZE, PublicKey,
    SIGNATURE_SIZE,
};
pub use keys::{DerivedSecrets, NativeKeys};
pub use session::SecretSession;
pub use unverified::UnverifiedSignature;
