//! The one error type of the SecretConnection layer.
//!
//! Every variant names a distinct way a peer (or a caller) can break the protocol, so a driver
//! can log and count the exact reason before it closes the connection. Every error is final:
//! a [`Handshake`](super::Handshake), [`FrameSealer`](super::FrameSealer) or
//! [`FrameOpener`](super::FrameOpener) that returned one refuses all further work.

/// Why a SecretConnection handshake or frame operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The peer's plaintext ephemeral-key message is malformed (bad length prefix, too long, not
    /// a protobuf `BytesValue`, or a value that is not exactly 32 bytes).
    #[error("bad ephemeral key message: {0}")]
    BadEphemeralMessage(&'static str),
    /// The X25519 shared secret is all zeros: the peer sent a low-order point.
    #[error("peer's ephemeral key is a low-order point")]
    LowOrderPoint,
    /// The peer's encrypted authentication message is malformed (bad length prefix, too long, or
    /// not a protobuf `AuthSigMessage`).
    #[error("bad authentication message: {0}")]
    BadAuthMessage(&'static str),
    /// The peer authenticated with a key type other than ed25519.
    #[error("unsupported identity key type (only ed25519 is accepted)")]
    UnsupportedKeyType,
    /// The peer's ed25519 public key is not 32 bytes long.
    #[error("ed25519 public key has {0} bytes, expected 32")]
    BadPublicKeyLength(usize),
    /// The peer's signature over the handshake challenge does not verify (ZIP-215 rules).
    #[error("challenge signature verification failed")]
    BadSignature,
    /// A decrypted frame declares more data bytes than a frame can carry.
    #[error("frame declares {0} data bytes, more than the maximum of 1024")]
    FrameTooLong(u32),
    /// A sealed frame failed ChaCha20-Poly1305 authentication.
    #[error("frame authentication failed")]
    Authentication,
    /// The 64-bit nonce counter of one direction is used up; the session must end.
    #[error("nonce counter exhausted")]
    NonceExhausted,
    /// A frame stream was used again after it had already failed.
    #[error("frame stream already failed")]
    StreamFailed,
    /// The handshake was used again after it had already failed.
    #[error("handshake already failed")]
    HandshakeFailed,
    /// [`Handshake::into_session`](super::Handshake::into_session) was called before the handshake
    /// completed (or before all of its output was polled).
    #[error("handshake is not complete")]
    HandshakeIncomplete,
}
