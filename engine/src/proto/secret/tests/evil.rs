//! An adversarial peer at every handshake stage: each bad input fails with its own error, never
//! panics, and leaves the handshake dead.

use bytes::Bytes;
use prost::Message;

use super::super::keys::{self, DerivedSecrets};
use super::super::{FrameSealer, Handshake, NodeKey, SecretError};
use super::{eph_secret, node_key};
use crate::proto::wire::{AuthSigMessage, PublicKey as WirePublicKey, public_key::Sum};

const X25519_BASEPOINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 9;
    b
};

/// A small-order point on Curve25519 (order 8), from the well-known blocklist.
const SMALL_ORDER: &str = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800";

/// The victim (peer 1) and a hand-driven attacker (peer 9) that has seen the victim's
/// ephemeral key.
struct Evil {
    victim: Handshake,
    key: NodeKey,
    derived: DerivedSecrets,
    sealer: FrameSealer,
    /// The attacker's plaintext ephemeral message.
    eph_msg: Vec<u8>,
}

impl Evil {
    fn new() -> Self {
        let victim = Handshake::new(node_key(1), eph_secret(1));
        let victim_eph = victim.local_ephemeral_public();
        let secret = eph_secret(9);
        let public = x25519_dalek::x25519(secret, X25519_BASEPOINT);
        let dh = x25519_dalek::x25519(secret, victim_eph);
        let derived = keys::derive_stock(&public, &victim_eph, &dh);
        let sealer = FrameSealer::new(&derived.send_key);
        Self {
            victim,
            key: node_key(9),
            derived,
            sealer,
            eph_msg: eph_message(&public),
        }
    }

    /// An honest authentication message, as a protobuf value.
    fn honest_auth(&self) -> AuthSigMessage {
        AuthSigMessage {
            pub_key: Some(WirePublicKey {
                sum: Some(Sum::Ed25519(Bytes::copy_from_slice(
                    &self.key.public_key().0,
                ))),
            }),
            sig: Bytes::copy_from_slice(&self.key.sign(&self.derived.challenge)),
        }
    }

    /// Seals `plain` (one write) after the ephemeral message and feeds it all to the victim.
    fn send_auth_bytes(&mut self, plain: &[u8]) -> Result<usize, SecretError> {
        let mut wire = self.eph_msg.clone();
        self.sealer.seal(plain, &mut wire).unwrap();
        self.victim.handle_input(&wire)
    }

    fn send_auth(&mut self, msg: &AuthSigMessage) -> Result<usize, SecretError> {
        self.send_auth_bytes(&msg.encode_length_delimited_to_vec())
    }
}

fn eph_message(key: &[u8]) -> Vec<u8> {
    let mut m = vec![0x22, 0x0a, 0x20];
    m.extend_from_slice(key);
    m
}

fn victim() -> Handshake {
    Handshake::new(node_key(1), eph_secret(1))
}

/// Feeds `input` to a fresh victim and returns the error, checking the handshake is then dead.
fn reject(input: &[u8]) -> SecretError {
    let mut h = victim();
    let err = h.handle_input(input).unwrap_err();
    assert!(h.is_failed());
    assert_eq!(
        h.handle_input(&[0]).unwrap_err(),
        SecretError::HandshakeFailed
    );
    assert_eq!(h.into_session().unwrap_err(), SecretError::HandshakeFailed);
    err
}

#[test]
fn honest_attacker_baseline_succeeds() {
    let mut e = Evil::new();
    let auth = e.honest_auth();
    let n = e.send_auth(&auth).unwrap();
    assert_eq!(n, 35 + super::super::FRAME_SEALED_SIZE);
    let mut out = Vec::new();
    e.victim.poll_transmit(&mut out);
    let s = e.victim.into_session().unwrap();
    assert_eq!(s.remote_node_id(), node_key(9).node_id());
}

#[test]
fn garbage_ephemeral_message() {
    assert!(matches!(
        reject(&[0x05, 0xff, 0xff, 0xff, 0xff, 0xff]),
        SecretError::BadEphemeralMessage(_)
    ));
    // Declared length over the limit, rejected on the prefix alone.
    assert!(matches!(
        reject(&[0x41]),
        SecretError::BadEphemeralMessage(_)
    ));
    assert!(matches!(
        reject(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        SecretError::BadEphemeralMessage(_)
    ));
    // A length prefix that never ends.
    assert!(matches!(
        reject(&[0x80; 11]),
        SecretError::BadEphemeralMessage(_)
    ));
}

#[test]
fn ephemeral_key_of_wrong_length() {
    for len in [0usize, 1, 31, 33, 60] {
        let mut m = vec![(len + 2) as u8, 0x0a, len as u8];
        m.extend(std::iter::repeat_n(7u8, len));
        assert_eq!(
            reject(&m),
            SecretError::BadEphemeralMessage("key is not 32 bytes"),
            "len {len}"
        );
    }
    // An empty message decodes to an empty value.
    assert_eq!(
        reject(&[0x00]),
        SecretError::BadEphemeralMessage("key is not 32 bytes")
    );
}

#[test]
fn low_order_ephemeral_keys() {
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut small = [0u8; 32];
    hex::decode_to_slice(SMALL_ORDER, &mut small).unwrap();
    for key in [[0u8; 32], one, small] {
        assert_eq!(reject(&eph_message(&key)), SecretError::LowOrderPoint);
    }
}

#[test]
fn truncated_input_never_completes() {
    let mut e = Evil::new();
    let mut wire = e.eph_msg.clone();
    e.sealer
        .seal(&e.honest_auth().encode_length_delimited_to_vec(), &mut wire)
        .unwrap();
    for cut in [0, 1, 3, 20, 35, 36, 500, wire.len() - 1] {
        let mut h = victim();
        assert_eq!(h.handle_input(&wire[..cut]).unwrap(), cut);
        assert!(!h.is_complete() && !h.is_failed());
        assert_eq!(
            h.into_session().unwrap_err(),
            SecretError::HandshakeIncomplete
        );
    }
}

#[test]
fn bad_signature() {
    let mut e = Evil::new();
    let mut auth = e.honest_auth();
    let mut sig = auth.sig.to_vec();
    sig[10] ^= 0x01;
    auth.sig = sig.into();
    assert_eq!(e.send_auth(&auth).unwrap_err(), SecretError::BadSignature);
    assert!(e.victim.is_failed());
}

#[test]
fn a_deferred_check_completes_the_handshake_and_still_refuses_a_bad_signature() {
    let mut e = Evil::new();
    e.victim.defer_signature_check();
    let mut auth = e.honest_auth();
    let mut sig = auth.sig.to_vec();
    sig[10] ^= 0x01;
    auth.sig = sig.into();
    e.send_auth(&auth).unwrap();
    let mut out = Vec::new();
    e.victim.poll_transmit(&mut out);
    let mut s = e.victim.into_session().unwrap();
    // The key is only claimed until the signature is checked, and the check fails.
    assert_eq!(s.remote_node_id(), node_key(9).node_id());
    let unverified = s
        .take_unverified_signature()
        .expect("the check was left to us");
    assert_eq!(unverified.check().unwrap_err(), SecretError::BadSignature);
    assert!(s.take_unverified_signature().is_none());
}

#[test]
fn a_deferred_check_accepts_an_honest_signature() {
    let mut e = Evil::new();
    e.victim.defer_signature_check();
    let auth = e.honest_auth();
    e.send_auth(&auth).unwrap();
    let mut out = Vec::new();
    e.victim.poll_transmit(&mut out);
    let mut s = e.victim.into_session().unwrap();
    let unverified = s
        .take_unverified_signature()
        .expect("the check was left to us");
    assert_eq!(unverified.check().unwrap(), node_key(9).public_key());
}

#[test]
fn without_deferral_the_session_carries_no_signature_to_check() {
    let mut e = Evil::new();
    let auth = e.honest_auth();
    e.send_auth(&auth).unwrap();
    let mut out = Vec::new();
    e.victim.poll_transmit(&mut out);
    let mut s = e.victim.into_session().unwrap();
    assert!(s.take_unverified_signature().is_none());
}

#[test]
fn signature_over_another_message() {
    let mut e = Evil::new();
    let mut auth = e.honest_auth();
    auth.sig = Bytes::copy_from_slice(&e.key.sign(b"not the challenge"));
    assert_eq!(e.send_auth(&auth).unwrap_err(), SecretError::BadSignature);
}

#[test]
fn signature_of_wrong_length() {
    for len in [0usize, 63, 65] {
        let mut e = Evil::new();
        let mut auth = e.honest_auth();
        let mut sig = e.key.sign(&e.derived.challenge).to_vec();
        sig.resize(len, 0);
        auth.sig = sig.into();
        assert_eq!(e.send_auth(&auth).unwrap_err(), SecretError::BadSignature);
    }
}

#[test]
fn someone_elses_key() {
    let mut e = Evil::new();
    let mut auth = e.honest_auth();
    auth.pub_key = Some(WirePublicKey {
        sum: Some(Sum::Ed25519(Bytes::copy_from_slice(
            &node_key(2).public_key().0,
        ))),
    });
    assert_eq!(e.send_auth(&auth).unwrap_err(), SecretError::BadSignature);
}

#[test]
fn key_bytes_not_on_the_curve() {
    // Find 32 bytes that do not decode to a curve point.
    let bad = (0u8..=255)
        .map(|i| {
            let mut k = [0u8; 32];
            k[0] = i;
            k[31] = 0x7f;
            k
        })
        .find(|k| ed25519_consensus::VerificationKey::try_from(*k).is_err())
        .unwrap();
    let mut e = Evil::new();
    let mut auth = e.honest_auth();
    auth.pub_key = Some(WirePublicKey {
        sum: Some(Sum::Ed25519(Bytes::copy_from_slice(&bad))),
    });
    assert_eq!(e.send_auth(&auth).unwrap_err(), SecretError::BadSignature);
}

#[test]
fn secp256k1_key() {
    let mut e = Evil::new();
    let mut auth = e.honest_auth();
    auth.pub_key = Some(WirePublicKey {
        sum: Some(Sum::Secp256k1(Bytes::from(vec![2u8; 33]))),
    });
    assert_eq!(
        e.send_auth(&auth).unwrap_err(),
        SecretError::UnsupportedKeyType
    );
}

#[test]
fn missing_key() {
    for pub_key in [None, Some(WirePublicKey { sum: None })] {
        let mut e = Evil::new();
        let mut auth = e.honest_auth();
        auth.pub_key = pub_key;
        assert_eq!(
            e.send_auth(&auth).unwrap_err(),
            SecretError::UnsupportedKeyType
        );
    }
}

#[test]
fn ed25519_key_of_wrong_length() {
    for len in [0usize, 31, 33, 64] {
        let mut e = Evil::new();
        let mut auth = e.honest_auth();
        let mut key = e.key.public_key().0.to_vec();
        key.resize(len, 1);
        auth.pub_key = Some(WirePublicKey {
            sum: Some(Sum::Ed25519(key.into())),
        });
        assert_eq!(
            e.send_auth(&auth).unwrap_err(),
            SecretError::BadPublicKeyLength(len)
        );
    }
}

#[test]
fn garbage_auth_message() {
    let mut e = Evil::new();
    assert_eq!(
        e.send_auth_bytes(&[0x03, 0xff, 0xff, 0xff]).unwrap_err(),
        SecretError::BadAuthMessage("not an AuthSigMessage")
    );
    // Declared length over the limit: rejected on the prefix, before any body arrives.
    let mut e = Evil::new();
    assert_eq!(
        e.send_auth_bytes(&[0x81, 0x08]).unwrap_err(),
        SecretError::BadAuthMessage("declared length over the limit")
    );
}

#[test]
fn tampered_auth_frame() {
    let mut e = Evil::new();
    let mut wire = e.eph_msg.clone();
    e.sealer
        .seal(&e.honest_auth().encode_length_delimited_to_vec(), &mut wire)
        .unwrap();
    let last = wire.len() - 1;
    wire[last] ^= 0x80;
    assert_eq!(
        e.victim.handle_input(&wire).unwrap_err(),
        SecretError::Authentication
    );
}

#[test]
fn auth_message_spanning_frames_is_accepted() {
    let mut e = Evil::new();
    let plain = e.honest_auth().encode_length_delimited_to_vec();
    let mut wire = e.eph_msg.clone();
    // Three writes: one byte (the length prefix), an empty write (no frame), the rest.
    e.sealer.seal(&plain[..1], &mut wire).unwrap();
    e.sealer.seal(&[], &mut wire).unwrap();
    e.sealer.seal(&plain[1..50], &mut wire).unwrap();
    e.sealer.seal(&plain[50..], &mut wire).unwrap();
    assert_eq!(e.victim.handle_input(&wire).unwrap(), wire.len());
    let mut out = Vec::new();
    e.victim.poll_transmit(&mut out);
    let mut s = e.victim.into_session().unwrap();
    assert!(s.take_early_data().is_empty());
    assert_eq!(s.opener_mut().next_nonce(), Some(3));
}

#[test]
fn data_after_auth_in_the_same_frame_is_early_data() {
    let mut e = Evil::new();
    let mut plain = e.honest_auth().encode_length_delimited_to_vec();
    plain.extend_from_slice(b"node info starts here");
    e.send_auth_bytes(&plain).unwrap();
    let mut out = Vec::new();
    e.victim.poll_transmit(&mut out);
    let mut s = e.victim.into_session().unwrap();
    assert_eq!(s.take_early_data(), b"node info starts here");
    assert!(s.take_early_data().is_empty());
}
