//! X25519 for the handshake's ephemeral keys, by aws-lc-rs.
//!
//! aws-lc's X25519 (s2n-bignum's assembly) computes a public key in about half the time of
//! x25519-dalek's fixed-base table and a shared secret in two thirds of the time of its
//! ladder on the measured CPUs; docs/PERFORMANCE.md, "S7", has the figures. The results are
//! the same function (RFC 7748, the scalar clamped): the tests check both against
//! x25519-dalek, and the golden transcripts of stock's handshake are unchanged.

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use zeroize::Zeroizing;

/// `x25519(secret, 9)`: the public key of an ephemeral secret.
pub(super) fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // A 32-byte X25519 secret is always accepted (it is clamped), and its public key always
    // computed; the fallback keeps peer-independent input from reaching a panic anyway.
    if let Some(public) = PrivateKey::from_private_key(&X25519, secret)
        .ok()
        .and_then(|k| k.compute_public_key().ok())
    {
        out.copy_from_slice(public.as_ref());
    }
    out
}

/// `x25519(secret, remote)`, or `None` when it is all zeros (`remote` is a point of low
/// order, which aws-lc refuses).
pub(super) fn shared_secret(secret: &[u8; 32], remote: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    let key = PrivateKey::from_private_key(&X25519, secret).ok()?;
    agreement::agree(
        &key,
        UnparsedPublicKey::new(&X25519, remote),
        (),
        |shared| {
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(shared);
            Ok(out)
        },
    )
    .ok()
    .filter(|s| s.iter().fold(0u8, |acc, b| acc | b) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn public_keys_and_shared_secrets_match_x25519_dalek() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(25519);
        for _ in 0..256 {
            let a: [u8; 32] = rng.random();
            let b: [u8; 32] = rng.random();
            let pa = public_key(&a);
            assert_eq!(
                pa,
                x25519_dalek::x25519(a, x25519_dalek::X25519_BASEPOINT_BYTES)
            );
            let pb = public_key(&b);
            let s = shared_secret(&a, &pb).expect("a shared secret");
            assert_eq!(*s, x25519_dalek::x25519(a, pb));
            assert_eq!(*s, *shared_secret(&b, &pa).unwrap());
            // Any 32 bytes are a u-coordinate, as the peer may send them.
            let any: [u8; 32] = rng.random();
            let theirs = x25519_dalek::x25519(a, any);
            match shared_secret(&a, &any) {
                Some(s) => assert_eq!(*s, theirs),
                None => assert_eq!(theirs, [0u8; 32]),
            }
        }
    }

    #[test]
    fn a_low_order_point_gives_no_secret() {
        let secret = [0x42u8; 32];
        // 0 and 1 are points of low order on curve25519.
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(shared_secret(&secret, &[0u8; 32]).is_none());
        assert!(shared_secret(&secret, &one).is_none());
    }
}
