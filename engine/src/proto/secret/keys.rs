//! Key schedule: from the X25519 shared secret to the frame keys, the authentication challenge
//! and the native record keys.
//!
//! Stock derivation (byte-exact with CometBFT):
//! - a merlin transcript `TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH` absorbs the lower and
//!   the upper ephemeral public key and the DH secret; the 32-byte challenge is squeezed from it
//!   with label `SECRET_CONNECTION_MAC`;
//! - HKDF-SHA256 (no salt, info `TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN`) expands the
//!   DH secret into 96 bytes; the side whose ephemeral key sorts lowest receives with bytes
//!   0..32 and sends with 32..64, the other side the reverse. Bytes 64..96 are derived but unused
//!   (a relic of an older challenge derivation).
//!
//! Native derivation (ringwire only): HKDF-SHA256 with the challenge as salt and info
//! `RINGWIRE_NATIVE_V1_RECORD_KEYS` expands the same DH secret into 64 bytes, split between the
//! sides exactly like the stock keys. The different info string keeps the native keys
//! independent of the stock frame keys, so no (key, nonce) pair is ever used twice.

use hkdf::Hkdf;
use merlin::Transcript;
use sha2::Sha256;
use zeroize::Zeroize;

const TRANSCRIPT_LABEL: &[u8] = b"TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH";
const LABEL_EPHEMERAL_LOWER: &[u8] = b"EPHEMERAL_LOWER_PUBLIC_KEY";
const LABEL_EPHEMERAL_UPPER: &[u8] = b"EPHEMERAL_UPPER_PUBLIC_KEY";
const LABEL_DH_SECRET: &[u8] = b"DH_SECRET";
const LABEL_MAC: &[u8] = b"SECRET_CONNECTION_MAC";
const STOCK_KEY_INFO: &[u8] = b"TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN";
const NATIVE_KEY_INFO: &[u8] = b"RINGWIRE_NATIVE_V1_RECORD_KEYS";

/// The stock secrets a handshake derives, exposed for golden tests and diagnostics.
///
/// `Debug` does not print the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct DerivedSecrets {
    /// Whether our ephemeral public key sorted lowest.
    pub loc_is_least: bool,
    /// ChaCha20-Poly1305 key for frames we receive.
    pub recv_key: [u8; 32],
    /// ChaCha20-Poly1305 key for frames we send.
    pub send_key: [u8; 32],
    /// The challenge both sides sign.
    pub challenge: [u8; 32],
}

impl std::fmt::Debug for DerivedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivedSecrets")
            .field("loc_is_least", &self.loc_is_least)
            .finish_non_exhaustive()
    }
}

impl Drop for DerivedSecrets {
    fn drop(&mut self) {
        self.recv_key.zeroize();
        self.send_key.zeroize();
        self.challenge.zeroize();
    }
}

/// Record keys for ringwire's native protocol, derived from the same handshake.
///
/// Each side's `send` key is the other side's `recv` key. `Debug` does not print the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct NativeKeys {
    /// Key for records we send.
    pub send: [u8; 32],
    /// Key for records we receive.
    pub recv: [u8; 32],
}

impl std::fmt::Debug for NativeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeKeys").finish_non_exhaustive()
    }
}

impl Drop for NativeKeys {
    fn drop(&mut self) {
        self.send.zeroize();
        self.recv.zeroize();
    }
}

/// Derives the stock secrets from both ephemeral public keys and the DH secret.
pub(crate) fn derive_stock(
    local_eph: &[u8; 32],
    remote_eph: &[u8; 32],
    dh: &[u8; 32],
) -> DerivedSecrets {
    // Ties (a peer echoing our key) count as "least", as in stock.
    let loc_is_least = local_eph <= remote_eph;
    let (lo, hi) = if loc_is_least {
        (local_eph, remote_eph)
    } else {
        (remote_eph, local_eph)
    };
    let mut transcript = Transcript::new(TRANSCRIPT_LABEL);
    transcript.append_message(LABEL_EPHEMERAL_LOWER, lo);
    transcript.append_message(LABEL_EPHEMERAL_UPPER, hi);
    transcript.append_message(LABEL_DH_SECRET, dh);

    let mut okm = [0u8; 96];
    expand(None, dh, STOCK_KEY_INFO, &mut okm);
    let (recv_key, send_key) = split_pair(&okm, loc_is_least);
    okm.zeroize();

    let mut challenge = [0u8; 32];
    transcript.challenge_bytes(LABEL_MAC, &mut challenge);
    DerivedSecrets {
        loc_is_least,
        recv_key,
        send_key,
        challenge,
    }
}

/// Derives the native record keys.
pub(crate) fn derive_native(dh: &[u8; 32], challenge: &[u8; 32], loc_is_least: bool) -> NativeKeys {
    let mut okm = [0u8; 64];
    expand(Some(challenge), dh, NATIVE_KEY_INFO, &mut okm);
    let (recv, send) = split_pair(&okm, loc_is_least);
    okm.zeroize();
    NativeKeys { send, recv }
}

/// HKDF-SHA256 extract-and-expand into `okm`.
fn expand(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], okm: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    // HKDF-SHA256 can expand up to 8160 bytes; callers ask for at most 96.
    if hk.expand(info, okm).is_err() {
        unreachable!("HKDF output length within limits");
    }
}

/// Splits the first 64 bytes of `okm` into `(recv, send)`: the side that sorted lowest receives
/// with the first 32 bytes.
fn split_pair(okm: &[u8], loc_is_least: bool) -> ([u8; 32], [u8; 32]) {
    let mut first = [0u8; 32];
    let mut second = [0u8; 32];
    if let (Some(a), Some(b)) = (okm.get(..32), okm.get(32..64)) {
        first.copy_from_slice(a);
        second.copy_from_slice(b);
    }
    if loc_is_least {
        (first, second)
    } else {
        (second, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_cross_match() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let dh = [7u8; 32];
        let sa = derive_stock(&a, &b, &dh);
        let sb = derive_stock(&b, &a, &dh);
        assert!(sa.loc_is_least && !sb.loc_is_least);
        assert_eq!(sa.send_key, sb.recv_key);
        assert_eq!(sa.recv_key, sb.send_key);
        assert_ne!(sa.send_key, sa.recv_key);
        assert_eq!(sa.challenge, sb.challenge);

        let na = derive_native(&dh, &sa.challenge, sa.loc_is_least);
        let nb = derive_native(&dh, &sb.challenge, sb.loc_is_least);
        assert_eq!(na.send, nb.recv);
        assert_eq!(na.recv, nb.send);
        for k in [na.send, na.recv] {
            assert_ne!(k, sa.send_key);
            assert_ne!(k, sa.recv_key);
        }
    }

    #[test]
    fn stock_keys_are_hkdf_without_salt() {
        let dh = [9u8; 32];
        let mut okm = [0u8; 96];
        Hkdf::<Sha256>::new(None, &dh)
            .expand(STOCK_KEY_INFO, &mut okm)
            .unwrap();
        let s = derive_stock(&[0u8; 32], &[1u8; 32], &dh);
        assert_eq!(s.recv_key[..], okm[..32]);
        assert_eq!(s.send_key[..], okm[32..64]);
    }
}
