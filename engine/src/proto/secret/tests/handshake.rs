//! Two honest handshakes against each other.

use super::super::{FRAME_SEALED_SIZE, Handshake, SecretError};
use super::{drive, eph_secret, node_key, pair};

#[test]
fn completes_and_authenticates_both_sides() {
    let (a, b) = pair();
    let (a_eph, b_eph) = (a.local_ephemeral_public(), b.local_ephemeral_public());
    let (sa, sb, a_out, b_out) = drive(a, b, usize::MAX);
    assert_eq!(sa.remote_node_id(), node_key(2).node_id());
    assert_eq!(sb.remote_node_id(), node_key(1).node_id());
    assert_eq!(sa.remote_public_key(), node_key(2).public_key());
    assert_eq!(sb.remote_public_key(), node_key(1).public_key());

    // 35-byte ephemeral message, then exactly one sealed frame.
    for (out, eph) in [(&a_out, a_eph), (&b_out, b_eph)] {
        assert_eq!(out.len(), 35 + FRAME_SEALED_SIZE);
        assert_eq!(out[..3], [0x22, 0x0a, 0x20]);
        assert_eq!(out[3..35], eph);
    }

    let (da, db) = (sa.derived(), sb.derived());
    assert_ne!(da.loc_is_least, db.loc_is_least);
    assert_eq!(da.send_key, db.recv_key);
    assert_eq!(da.recv_key, db.send_key);
    assert_eq!(da.challenge, db.challenge);

    let (na, nb) = (sa.native_keys(), sb.native_keys());
    assert_eq!(na.send, nb.recv);
    assert_eq!(na.recv, nb.send);
    assert_ne!(na.send, na.recv);
    for k in [na.send, na.recv] {
        assert_ne!(k, da.send_key);
        assert_ne!(k, da.recv_key);
        assert_ne!(k, da.challenge);
    }
}

#[test]
fn auth_frame_holds_the_stock_103_byte_message() {
    let (a, b) = pair();
    let (_, mut sb, a_out, _) = drive(a, b, usize::MAX);
    // B's opener already used nonce 0 on A's auth frame; reopen it with a fresh opener.
    let mut opener = super::super::FrameOpener::new(&sb.derived().recv_key);
    let mut frame = [0u8; FRAME_SEALED_SIZE];
    frame.copy_from_slice(&a_out[35..]);
    let data = opener.open_frame(&mut frame).unwrap();
    assert_eq!(data.len(), 103);
    assert_eq!(data[..5], [0x66, 0x0a, 0x22, 0x0a, 0x20]);
    assert_eq!(data[5..37], node_key(1).public_key().0);
    assert_eq!(data[37..39], [0x12, 0x40]);
    let sig = &data[39..];
    assert!(
        node_key(1)
            .public_key()
            .verify(&sb.derived().challenge, sig)
    );
    assert!(sb.take_early_data().is_empty());
}

#[test]
fn one_byte_at_a_time() {
    let (a, b) = pair();
    let (mut sa, mut sb, _, _) = drive(a, b, 1);
    let mut wire = Vec::new();
    sa.sealer_mut().seal(b"ping", &mut wire).unwrap();
    let mut got = Vec::new();
    sb.opener_mut().open(&wire, &mut got).unwrap();
    assert_eq!(got, b"ping");
}

/// `docs/RELIABILITY.md` row 4: a socket that has not sent its whole ephemeral key costs no key
/// agreement and no signature. Both happen in one step that also queues our authentication
/// frame (sealed with the agreed keys, holding the signature), so that frame's absence shows
/// neither ran; it appears the moment the key's last byte arrives.
#[test]
fn key_agreement_and_signature_wait_for_the_whole_ephemeral_key() {
    let (mut a, mut b) = pair();
    let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
    a.poll_transmit(&mut a_out);
    b.poll_transmit(&mut b_out);
    assert_eq!(
        (a_out.len(), b_out.len()),
        (35, 35),
        "only the ephemeral messages"
    );
    for byte in &b_out[..34] {
        assert_eq!(a.handle_input(std::slice::from_ref(byte)).unwrap(), 1);
        let mut more = Vec::new();
        a.poll_transmit(&mut more);
        assert!(more.is_empty(), "nothing agreed or signed yet");
        assert!(format!("{a:?}").contains("\"ephemeral\""));
    }
    assert_eq!(a.handle_input(&b_out[34..]).unwrap(), 1);
    let mut auth = Vec::new();
    a.poll_transmit(&mut auth);
    assert_eq!(
        auth.len(),
        FRAME_SEALED_SIZE,
        "keys agreed, our signature sealed"
    );
    assert!(format!("{a:?}").contains("\"auth\""));
}

#[test]
fn sessions_exchange_data_both_ways_after_handshake() {
    let (a, b) = pair();
    let (mut sa, mut sb, _, _) = drive(a, b, 7);
    for round in 0..2 {
        let (from, to) = if round == 0 {
            (&mut sa, &mut sb)
        } else {
            (&mut sb, &mut sa)
        };
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        from.sealer_mut().seal(&data, &mut wire).unwrap();
        assert_eq!(wire.len(), 3 * FRAME_SEALED_SIZE);
        let mut got = Vec::new();
        to.opener_mut().open(&wire, &mut got).unwrap();
        assert_eq!(got, data);
    }
}

#[test]
fn bytes_after_the_handshake_are_left_to_the_caller() {
    let (mut a, mut b) = pair();
    let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
    a.poll_transmit(&mut a_out);
    b.poll_transmit(&mut b_out);
    // A sees B's ephemeral key and queues its auth frame; A's input is replayed below.
    let mut a_probe = Handshake::new(node_key(1), eph_secret(1));
    a_probe.handle_input(&b_out).unwrap();
    a_out.clear();
    a_probe.poll_transmit(&mut a_out);
    // B sees all of A's handshake and finishes; B then writes application data at once.
    assert_eq!(b.handle_input(&a_out).unwrap(), a_out.len());
    b.poll_transmit(&mut b_out);
    assert!(b.is_complete());
    let mut sb = b.into_session().unwrap();
    let handshake_len = b_out.len();
    sb.sealer_mut().seal(b"first words", &mut b_out).unwrap();

    // A gets B's handshake and B's first frame in one read, fed one byte at a time and whole.
    let mut a2 = Handshake::new(node_key(1), eph_secret(1));
    let mut consumed = 0;
    for byte in b_out.chunks(1) {
        consumed += a2.handle_input(byte).unwrap();
    }
    assert_eq!(consumed, handshake_len);
    assert_eq!(a.handle_input(&b_out).unwrap(), handshake_len);
    assert_eq!(a.handle_input(&b_out[handshake_len..]).unwrap(), 0);
    assert!(!a.is_complete(), "our auth frame is still unpolled");
    assert_eq!(
        a.handle_input(&[]).unwrap(),
        0,
        "done handshake consumes nothing"
    );
    let mut rest = Vec::new();
    a.poll_transmit(&mut rest);
    assert_eq!(rest.len(), FRAME_SEALED_SIZE);
    assert!(a.is_complete());
    let mut sa = a.into_session().unwrap();
    let mut got = Vec::new();
    sa.opener_mut()
        .open(&b_out[handshake_len..], &mut got)
        .unwrap();
    assert_eq!(got, b"first words");
}

#[test]
fn into_session_before_completion_is_an_error() {
    let (a, _) = pair();
    assert_eq!(
        a.into_session().unwrap_err(),
        SecretError::HandshakeIncomplete
    );
    // Authenticated but our frame not yet polled.
    let (mut a, mut b) = pair();
    let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
    a.poll_transmit(&mut a_out);
    b.poll_transmit(&mut b_out);
    b.handle_input(&a_out).unwrap();
    b.poll_transmit(&mut b_out);
    a.handle_input(&b_out).unwrap();
    assert!(!a.is_complete());
    assert_eq!(
        a.into_session().unwrap_err(),
        SecretError::HandshakeIncomplete
    );
}

#[test]
fn deterministic_for_fixed_inputs() {
    let (_, _, a1, b1) = {
        let (a, b) = pair();
        drive(a, b, usize::MAX)
    };
    let (_, _, a2, b2) = {
        let (a, b) = pair();
        drive(a, b, 3)
    };
    assert_eq!(a1, a2);
    assert_eq!(b1, b2);
}

#[test]
fn the_ephemeral_public_key_is_x25519_of_the_secret_and_the_basepoint() {
    // The key comes from the fixed-base table; it must equal RFC 7748's X25519(k, 9), which
    // is what a stock peer computes and what the golden transcripts hold.
    let mut basepoint = [0u8; 32];
    basepoint[0] = 9;
    for n in 0..=255u8 {
        let mut secret = eph_secret(n);
        secret[31] ^= n; // high bits set and cleared: clamping must agree too
        let hs = Handshake::new(node_key(1), secret);
        assert_eq!(
            hs.local_ephemeral_public(),
            x25519_dalek::x25519(secret, basepoint),
            "secret {n}"
        );
    }
}
