//! Node identities: the long-term ed25519 key, its public half, and the node ID derived from it.
//!
//! A node ID is the first 20 bytes of SHA-256 over the 32-byte ed25519 public key, written as 40
//! lowercase hex characters — the same ID stock CometBFT derives from the same `node_key.json`.
//! Signatures are verified with ZIP-215 rules (as CometBFT does), so ringwire accepts exactly
//! the signatures a stock node accepts.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use ed25519_consensus::{Signature, SigningKey, VerificationKey};
use sha2::{Digest, Sha256};

/// Length of an ed25519 public key in bytes.
pub const PUBLIC_KEY_SIZE: usize = 32;
/// Length of an ed25519 signature in bytes.
pub const SIGNATURE_SIZE: usize = 64;
/// Length of a node ID in bytes (40 hex characters).
pub const NODE_ID_SIZE: usize = 20;
/// Length of the `node_key.json` key material: 32-byte seed followed by the 32-byte public key.
pub const KEYPAIR_SIZE: usize = 64;

/// Why a node ID or key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A node ID string is not exactly 40 characters long.
    #[error("node ID has {0} characters, expected 40 hex characters")]
    NodeIdLength(usize),
    /// A node ID string contains a character that is not a hex digit.
    #[error("node ID is not hex")]
    NodeIdNotHex,
    /// Key material is not 64 bytes (seed followed by public key).
    #[error("key pair has {0} bytes, expected 64 (seed followed by public key)")]
    KeypairLength(usize),
    /// The public key stored with a seed is not the one the seed derives.
    #[error("key pair's public key does not match its seed")]
    KeypairMismatch,
}

/// A node's long-term ed25519 identity key.
///
/// `Debug` prints only the node ID; the secret never appears in logs.
///
/// Signatures are made by aws-lc-rs, which signs in about half the time of ed25519-consensus
/// on the measured CPUs (docs/PERFORMANCE.md, "S7"). Ed25519 signing is deterministic (RFC
/// 8032), so both give the same bytes; the tests check that they do.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
    /// The same key in aws-lc; `None` only if aws-lc refused the seed, which it does not for
    /// 32 bytes (then ed25519-consensus signs).
    signer: Option<Arc<Ed25519KeyPair>>,
    public: PublicKey,
}

impl NodeKey {
    /// Builds the key from its 32-byte ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from(seed);
        let public = PublicKey(signing.verification_key().to_bytes());
        let signer = Ed25519KeyPair::from_seed_unchecked(&seed)
            .ok()
            .filter(|k| k.public_key().as_ref() == public.0.as_slice())
            .map(Arc::new);
        Self {
            signing,
            signer,
            public,
        }
    }

    /// Builds the key from the 64-byte `seed ‖ public key` form stored (base64) in
    /// `node_key.json`, checking that the stored public key belongs to the seed.
    pub fn from_keypair_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let (seed, public) = bytes
            .split_first_chunk::<32>()
            .filter(|(_, rest)| rest.len() == PUBLIC_KEY_SIZE)
            .ok_or(IdentityError::KeypairLength(bytes.len()))?;
        let key = Self::from_seed(*seed);
        if key.public.0.as_slice() != public {
            return Err(IdentityError::KeypairMismatch);
        }
        Ok(key)
    }

    /// The 64-byte `seed ‖ public key` form written to `node_key.json`. This is secret material.
    pub fn to_keypair_bytes(&self) -> [u8; KEYPAIR_SIZE] {
        let mut out = [0u8; KEYPAIR_SIZE];
        let (seed, public) = out.split_at_mut(32);
        seed.copy_from_slice(self.signing.as_bytes());
        public.copy_from_slice(&self.public.0);
        out
    }

    /// The public half of the key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs `msg` (RFC 8032 ed25519, deterministic).
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_SIZE] {
        if let Some(signature) = self
            .signer
            .as_ref()
            .and_then(|k| <[u8; SIGNATURE_SIZE]>::try_from(k.sign(msg).as_ref()).ok())
        {
            return signature;
        }
        self.signing.sign(msg).to_bytes()
    }

    /// This node's ID.
    pub fn node_id(&self) -> NodeId {
        self.public.node_id()
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("node_id", &self.node_id())
            .finish_non_exhaustive()
    }
}

/// An ed25519 public key (32 bytes, as sent on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_SIZE]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_SIZE] {
        &self.0
    }

    /// Verifies an ed25519 signature with ZIP-215 rules (cofactored equation, non-canonical
    /// point encodings accepted), exactly like CometBFT. Returns `false` for a signature that is
    /// not 64 bytes, for key bytes that are not a curve point, and for a wrong signature.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = <[u8; SIGNATURE_SIZE]>::try_from(sig) else {
            return false;
        };
        let Ok(key) = VerificationKey::try_from(self.0) else {
            return false;
        };
        key.verify(&Signature::from(sig), msg).is_ok()
    }

    /// The node ID of this key: SHA-256 of the key, first 20 bytes.
    pub fn node_id(&self) -> NodeId {
        let digest = Sha256::digest(self.0);
        let mut id = [0u8; NODE_ID_SIZE];
        // The digest has 32 bytes; the ID is its first 20.
        for (to, from) in id.iter_mut().zip(digest.iter()) {
            *to = *from;
        }
        NodeId(id)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

/// A node ID: the first 20 bytes of SHA-256 over the node's ed25519 public key.
///
/// Displays as 40 lowercase hex characters; parses from 40 hex characters of either case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; NODE_ID_SIZE]);

impl NodeId {
    /// The raw 20 bytes.
    pub fn as_bytes(&self) -> &[u8; NODE_ID_SIZE] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 2 * NODE_ID_SIZE];
        // Cannot fail: the buffer is exactly twice the input length.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 2 * NODE_ID_SIZE {
            return Err(IdentityError::NodeIdLength(s.len()));
        }
        let mut id = [0u8; NODE_ID_SIZE];
        hex::decode_to_slice(s, &mut id).map_err(|_| IdentityError::NodeIdNotHex)?;
        Ok(NodeId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 test vector 1.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const SIG_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn seed() -> [u8; 32] {
        let mut s = [0u8; 32];
        hex::decode_to_slice(SEED, &mut s).unwrap();
        s
    }

    #[test]
    fn rfc8032_vector() {
        let key = NodeKey::from_seed(seed());
        assert_eq!(hex::encode(key.public_key().0), PUBLIC);
        assert_eq!(hex::encode(key.sign(b"")), SIG_EMPTY);
        assert!(key.public_key().verify(b"", &key.sign(b"")));
        assert!(!key.public_key().verify(b"x", &key.sign(b"")));
        assert!(!key.public_key().verify(b"", &key.sign(b"")[..63]));
    }

    #[test]
    fn aws_lc_signs_the_same_bytes_as_ed25519_consensus() {
        for i in 0..64u8 {
            let key = NodeKey::from_seed([i.wrapping_mul(37); 32]);
            assert!(key.signer.is_some(), "aws-lc took the seed");
            let msg = [i; 32];
            assert_eq!(key.sign(&msg), key.signing.sign(&msg).to_bytes());
            assert!(key.public_key().verify(&msg, &key.sign(&msg)));
        }
    }

    #[test]
    fn keypair_bytes_round_trip_and_mismatch() {
        let key = NodeKey::from_seed(seed());
        let bytes = key.to_keypair_bytes();
        let back = NodeKey::from_keypair_bytes(&bytes).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let mut bad = bytes;
        bad[40] ^= 1;
        assert_eq!(
            NodeKey::from_keypair_bytes(&bad).unwrap_err(),
            IdentityError::KeypairMismatch
        );
        assert_eq!(
            NodeKey::from_keypair_bytes(&bytes[..63]).unwrap_err(),
            IdentityError::KeypairLength(63)
        );
        assert_eq!(
            NodeKey::from_keypair_bytes(&[0u8; 65]).unwrap_err(),
            IdentityError::KeypairLength(65)
        );
    }

    #[test]
    fn node_id_is_truncated_sha256() {
        let key = NodeKey::from_seed(seed());
        let digest = Sha256::digest(key.public_key().0);
        let id = key.node_id();
        assert_eq!(id.as_bytes()[..], digest[..20]);
        let text = id.to_string();
        assert_eq!(text.len(), 40);
        assert_eq!(text, hex::encode(&digest[..20]));
        assert_eq!(text.parse::<NodeId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<NodeId>().unwrap(), id);
    }

    #[test]
    fn node_id_parse_errors() {
        assert_eq!(
            "abc".parse::<NodeId>().unwrap_err(),
            IdentityError::NodeIdLength(3)
        );
        assert_eq!(
            "0".repeat(41).parse::<NodeId>().unwrap_err(),
            IdentityError::NodeIdLength(41)
        );
        assert_eq!(
            format!("{}g", "0".repeat(39))
                .parse::<NodeId>()
                .unwrap_err(),
            IdentityError::NodeIdNotHex
        );
        // Multi-byte characters count as bytes, never panic.
        assert!("é".repeat(20).parse::<NodeId>().is_err());
    }

    #[test]
    fn debug_hides_secret() {
        let key = NodeKey::from_seed(seed());
        let dbg = format!("{key:?}");
        assert!(!dbg.contains(SEED));
        assert!(dbg.contains(&key.node_id().to_string()));
    }
}
