//! A [`Connection`] that offers the native protocol, facing a hand-driven peer that claims one
//! key and signs with another: the connection sends its HELLO before it checks the signature
//! (the check is off the peer's critical path) but reports nothing about the peer and closes
//! with `BadSignature` at the check; a compat connection checks before it reports anything.

use std::time::Instant;

use bytes::Bytes;
use prost::Message;

use super::super::keys::{self, DerivedSecrets};
use super::super::{FRAME_SEALED_SIZE, FrameSealer, SecretError};
use super::{eph_secret, node_key};
use crate::proto::conn::{ConnError, Connection, ConnectionConfig, Event};
use crate::proto::nodeinfo::{
    NodeInfo, NodeInfoOther, ProtocolVersion, RINGWIRE_CAPABILITY_CHANNEL,
};
use crate::proto::wire::{AuthSigMessage, PublicKey as WirePublicKey, public_key::Sum};

fn node_info(id: String, channels: Vec<u8>) -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        node_id: id,
        listen_addr: "tcp://127.0.0.1:26656".into(),
        network: "test-chain".into(),
        version: "0.1.0".into(),
        channels,
        moniker: "peer".into(),
        other: NodeInfoOther {
            tx_index: "on".into(),
            rpc_address: String::new(),
        },
    }
}

/// Everything peer 9 writes up to and including its NodeInfo, against `victim`'s ephemeral
/// key: its signature is peer 8's when `forged`, and its NodeInfo lists the capability
/// channel when `native`.
fn peer_bytes(victim_eph: &[u8; 32], forged: bool, native: bool) -> Vec<u8> {
    let secret = eph_secret(9);
    let public = x25519_dalek::x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES);
    let dh = x25519_dalek::x25519(secret, *victim_eph);
    let derived: DerivedSecrets = keys::derive_stock(&public, victim_eph, &dh);
    let mut sealer = FrameSealer::new(&derived.send_key);
    let signer = if forged { node_key(8) } else { node_key(9) };
    let auth = AuthSigMessage {
        pub_key: Some(WirePublicKey {
            sum: Some(Sum::Ed25519(Bytes::copy_from_slice(
                &node_key(9).public_key().0,
            ))),
        }),
        sig: Bytes::copy_from_slice(&signer.sign(&derived.challenge)),
    };
    let mut wire = vec![0x22, 0x0a, 0x20];
    wire.extend_from_slice(&public);
    sealer
        .seal(&auth.encode_length_delimited_to_vec(), &mut wire)
        .unwrap();
    let mut channels = vec![0x20];
    if native {
        channels.push(RINGWIRE_CAPABILITY_CHANNEL);
    }
    let mut info = Vec::new();
    node_info(node_key(9).node_id().to_string(), channels).encode_delimited(&mut info);
    sealer.seal(&info, &mut wire).unwrap();
    wire
}

/// A native-offering connection for peer 1 and the ephemeral key it sent first.
fn victim() -> (Connection, [u8; 32], Instant) {
    let now = Instant::now();
    let config = ConnectionConfig::new(node_key(1), node_info(String::new(), Vec::new()));
    assert!(config.offer_native);
    let mut conn = Connection::new(config, eph_secret(1), now).unwrap();
    let mut out = Vec::new();
    conn.poll_transmit(now, &mut out);
    let eph: [u8; 32] = out[3..35].try_into().unwrap();
    (conn, eph, now)
}

/// Fails unless `conn`'s next event is its close for the peer's bad signature.
fn expect_closed_for_bad_signature(conn: &mut Connection) {
    match conn.poll_event() {
        Some(Event::Closed(ConnError::Secret(SecretError::BadSignature))) => {}
        other => panic!("expected a close for the bad signature, got {other:?}"),
    }
}

/// Our authentication frame plus our NodeInfo frame: what a connection writes before native
/// bytes.
const AUTH_AND_NODE_INFO: usize = 2 * FRAME_SEALED_SIZE;

#[test]
fn a_native_connection_sends_its_hello_then_refuses_a_forged_signature() {
    let (mut conn, eph, now) = victim();
    conn.handle_input(now, &peer_bytes(&eph, true, true))
        .expect("the signature is not checked on input");
    // Nothing about the peer before the check, and the check waits for our HELLO to leave.
    assert!(conn.poll_event().is_none());
    assert!(!conn.is_closed());
    let mut out = Vec::new();
    conn.poll_transmit(now, &mut out);
    assert!(
        out.len() > AUTH_AND_NODE_INFO,
        "native bytes (the HELLO) follow our NodeInfo: {} bytes",
        out.len()
    );
    expect_closed_for_bad_signature(&mut conn);
    assert!(conn.is_closed());
    assert!(conn.peer().is_none());
}

#[test]
fn a_native_connection_keeps_an_honest_peer_after_the_check() {
    let (mut conn, eph, now) = victim();
    conn.handle_input(now, &peer_bytes(&eph, false, true))
        .unwrap();
    let mut out = Vec::new();
    conn.poll_transmit(now, &mut out);
    assert!(out.len() > AUTH_AND_NODE_INFO);
    // Checked and kept; `Connected` waits for the peer's HELLO, which this peer never sends.
    assert!(conn.poll_event().is_none());
    assert!(!conn.is_closed());
}

#[test]
fn a_compat_connection_checks_the_signature_before_reporting_the_peer() {
    let (mut conn, eph, now) = victim();
    let e = conn
        .handle_input(now, &peer_bytes(&eph, true, false))
        .unwrap_err();
    assert_eq!(e, ConnError::Secret(SecretError::BadSignature));
    expect_closed_for_bad_signature(&mut conn);
    assert!(conn.peer().is_none());
}

#[test]
fn a_compat_connection_reports_an_honest_peer() {
    let (mut conn, eph, now) = victim();
    conn.handle_input(now, &peer_bytes(&eph, false, false))
        .unwrap();
    match conn.poll_event() {
        Some(Event::Connected(peer)) => assert_eq!(peer.node_id, node_key(9).node_id()),
        other => panic!("expected the peer, got {other:?}"),
    }
}
