//! An established SecretConnection: the two frame directions, the authenticated peer, and the
//! secrets later layers derive from.

use zeroize::Zeroizing;

use super::frame::{FrameOpener, FrameSealer};
use super::identity::{NodeId, PublicKey};
use super::keys::{self, DerivedSecrets, NativeKeys};
use super::unverified::UnverifiedSignature;

/// The result of a completed [`Handshake`](super::Handshake).
///
/// Holds the sealer (our direction, next nonce 1 because the authentication frame used 0), the
/// opener (the peer's direction, likewise), the peer's authenticated ed25519 key and node ID,
/// and the X25519 shared secret (zeroed on drop) from which [`native_keys`](Self::native_keys)
/// are derived.
pub struct SecretSession {
    pub(crate) sealer: FrameSealer,
    pub(crate) opener: FrameOpener,
    pub(crate) remote_key: PublicKey,
    pub(crate) remote_id: NodeId,
    /// The peer's signature, when the handshake left it to check.
    pub(crate) unverified: Option<UnverifiedSignature>,
    pub(crate) derived: DerivedSecrets,
    pub(crate) dh: Zeroizing<[u8; 32]>,
    pub(crate) early_data: Vec<u8>,
}

impl SecretSession {
    /// The sealer for data we send.
    pub fn sealer_mut(&mut self) -> &mut FrameSealer {
        &mut self.sealer
    }

    /// The opener for data we receive.
    pub fn opener_mut(&mut self) -> &mut FrameOpener {
        &mut self.opener
    }

    /// Both directions at once.
    pub fn split(&mut self) -> (&mut FrameSealer, &mut FrameOpener) {
        (&mut self.sealer, &mut self.opener)
    }

    /// The peer's ed25519 public key: authenticated, unless the handshake deferred the check
    /// and [`take_unverified_signature`](Self::take_unverified_signature) has not been checked.
    pub fn remote_public_key(&self) -> PublicKey {
        self.remote_key
    }

    /// The peer's node ID (authenticated as [`remote_public_key`](Self::remote_public_key) is).
    /// A dialer must check it equals the ID it dialed.
    pub fn remote_node_id(&self) -> NodeId {
        self.remote_id
    }

    /// The peer's signature of the challenge, if the handshake deferred its check
    /// ([`Handshake::defer_signature_check`](super::Handshake::defer_signature_check)). The
    /// caller must [`check`](UnverifiedSignature::check) it before trusting the peer's key.
    pub fn take_unverified_signature(&mut self) -> Option<UnverifiedSignature> {
        self.unverified.take()
    }

    /// Application data the peer sent in the same frame as its authentication message.
    ///
    /// Stock peers send the authentication message in a frame of its own, so this is normally
    /// empty; stock readers would nevertheless deliver such bytes as the start of the stream,
    /// and so must the caller (before anything the opener yields). Taking it leaves it empty.
    pub fn take_early_data(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.early_data)
    }

    /// The stock keys and challenge this handshake derived. Exposed for golden tests and
    /// diagnostics; the frame directions already hold the keys.
    pub fn derived(&self) -> &DerivedSecrets {
        &self.derived
    }

    /// Record keys for ringwire's native protocol: HKDF-SHA256 over the DH secret, salted with
    /// the challenge, info `RINGWIRE_NATIVE_V1_RECORD_KEYS`. Our `send` is the peer's `recv`.
    pub fn native_keys(&self) -> NativeKeys {
        keys::derive_native(&self.dh, &self.derived.challenge, self.derived.loc_is_least)
    }
}

impl std::fmt::Debug for SecretSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSession")
            .field("remote_id", &self.remote_id)
            .field("sealer", &self.sealer)
            .field("opener", &self.opener)
            .finish_non_exhaustive()
    }
}
