//! Tests of the SecretConnection layer that span several files: two handshakes against each
//! other, an adversarial peer at every stage, frame properties, and never-panic properties.

mod connection;
mod evil;
mod frames;
mod handshake;
mod props;

use super::{Handshake, NodeKey, SecretSession};

/// A deterministic key for test peer `n`.
pub(super) fn node_key(n: u8) -> NodeKey {
    NodeKey::from_seed([n; 32])
}

/// A deterministic ephemeral secret for test peer `n`.
pub(super) fn eph_secret(n: u8) -> [u8; 32] {
    let mut s = [n.wrapping_mul(37).wrapping_add(11); 32];
    s[0] = n;
    s
}

/// Handshakes for peers 1 (A) and 2 (B).
pub(super) fn pair() -> (Handshake, Handshake) {
    (
        Handshake::new(node_key(1), eph_secret(1)),
        Handshake::new(node_key(2), eph_secret(2)),
    )
}

/// Drives two handshakes against each other through in-memory buffers, feeding at most
/// `chunk` bytes per call. Returns the sessions and every byte each side wrote.
pub(super) fn drive(
    mut a: Handshake,
    mut b: Handshake,
    chunk: usize,
) -> (SecretSession, SecretSession, Vec<u8>, Vec<u8>) {
    let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
    let (mut a_read, mut b_read) = (0usize, 0usize);
    for _ in 0..100_000 {
        a.poll_transmit(&mut a_out);
        b.poll_transmit(&mut b_out);
        if a.is_complete() && b.is_complete() {
            break;
        }
        let a_in = &b_out[a_read..a_read.saturating_add(chunk).min(b_out.len())];
        a_read += a.handle_input(a_in).unwrap();
        let b_in = &a_out[b_read..b_read.saturating_add(chunk).min(a_out.len())];
        b_read += b.handle_input(b_in).unwrap();
    }
    assert!(
        a.is_complete() && b.is_complete(),
        "handshake did not settle"
    );
    assert_eq!(a_read, b_out.len(), "A left handshake bytes unread");
    assert_eq!(b_read, a_out.len(), "B left handshake bytes unread");
    (
        a.into_session().unwrap(),
        b.into_session().unwrap(),
        a_out,
        b_out,
    )
}
