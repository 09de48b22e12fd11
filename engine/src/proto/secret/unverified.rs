//! The peer's signature of the handshake challenge, parsed but not yet checked.
//!
//! A connection that switches to ringwire's native protocol sends its HELLO as soon as the
//! peer's NodeInfo shows that the peer speaks it, and the peer waits for that HELLO before it
//! reports the connection up. Checking the peer's signature first (a ZIP-215 verification, the
//! dearest step of a handshake) would put that check on the peer's critical path for no
//! gain: the HELLO says nothing a peer that completes a handshake with its own key would not
//! learn anyway. [`Handshake::defer_signature_check`](super::Handshake::defer_signature_check)
//! therefore hands the signature over as an [`UnverifiedSignature`], and the caller checks it
//! before it trusts the peer's identity for anything (reports the peer, delivers a message).

use bytes::Bytes;

use super::SecretError;
use super::identity::PublicKey;

/// A peer's claimed key and its signature of the challenge, to be checked with
/// [`check`](Self::check) before the key is trusted.
pub struct UnverifiedSignature {
    pub(crate) key: PublicKey,
    pub(crate) signature: Bytes,
    pub(crate) challenge: [u8; 32],
}

impl UnverifiedSignature {
    /// Verifies the signature (ZIP-215 rules, as stock CometBFT).
    pub fn check(self) -> Result<PublicKey, SecretError> {
        if self.key.verify(&self.challenge, &self.signature) {
            Ok(self.key)
        } else {
            Err(SecretError::BadSignature)
        }
    }

    /// The key the peer claims (not authenticated until [`check`](Self::check) succeeds).
    pub fn claimed_key(&self) -> PublicKey {
        self.key
    }
}

impl std::fmt::Debug for UnverifiedSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedSignature")
            .field("claimed", &self.key.node_id())
            .finish_non_exhaustive()
    }
}
