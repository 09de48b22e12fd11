//! Golden vectors for the SecretConnection, produced by stock CometBFT
//! (`testdata/secret_handshake.json`, written by `interop/cmd/golden`).
//!
//! ringwire plays each side with that side's identity and ephemeral secret, is fed the other
//! side's stock bytes, and must write exactly the bytes stock wrote, derive the same keys and
//! challenge, and seal and open every recorded frame identically.

use hkdf::Hkdf;
use ringwire::proto::secret::{Handshake, NodeId, NodeKey, SecretSession};
use ringwire_test_support::golden::golden_json;
use serde::Deserialize;
use sha2::Sha256;

#[derive(Deserialize)]
struct Golden {
    cometbft_version: String,
    peers: Sides<Peer>,
    a_to_b_handshake: String,
    b_to_a_handshake: String,
    derived: Sides<Derived>,
    frames: Vec<Frame>,
}

#[derive(Deserialize)]
struct Sides<T> {
    a: T,
    b: T,
}

#[derive(Deserialize)]
struct Peer {
    priv_key: String,
    pub_key: String,
    node_id: String,
    eph_secret: String,
    eph_public: String,
}

#[derive(Deserialize)]
struct Derived {
    loc_is_least: bool,
    recv_key: String,
    send_key: String,
    challenge: String,
    dh_secret: String,
}

#[derive(Deserialize)]
struct Frame {
    writer: String,
    plaintext: String,
    sealed: String,
}

fn load() -> Golden {
    golden_json("secret_handshake.json")
}

fn bytes(h: &str) -> Vec<u8> {
    hex::decode(h).expect("hex in golden file")
}

fn arr32(h: &str) -> [u8; 32] {
    bytes(h).try_into().expect("32 bytes in golden file")
}

/// Plays one side against the other side's recorded bytes; returns the session.
fn play(me: &Peer, my_bytes: &str, their_bytes: &str, feed_chunk: usize) -> SecretSession {
    let key = NodeKey::from_keypair_bytes(&bytes(&me.priv_key)).expect("node key");
    assert_eq!(hex::encode(key.public_key().0), me.pub_key);
    assert_eq!(key.node_id().to_string(), me.node_id);

    let mut hs = Handshake::new(key, arr32(&me.eph_secret));
    assert_eq!(hex::encode(hs.local_ephemeral_public()), me.eph_public);

    let input = bytes(their_bytes);
    let mut out = Vec::new();
    hs.poll_transmit(&mut out);
    let mut consumed = 0;
    for chunk in input.chunks(feed_chunk) {
        let n = hs
            .handle_input(chunk)
            .expect("stock handshake bytes accepted");
        assert_eq!(n, chunk.len(), "every stock handshake byte is consumed");
        consumed += n;
        hs.poll_transmit(&mut out);
    }
    assert_eq!(consumed, input.len());
    assert!(hs.is_complete());
    assert_eq!(
        hex::encode(&out),
        my_bytes,
        "handshake bytes differ from stock"
    );
    hs.into_session().expect("session")
}

fn check_derived(session: &SecretSession, want: &Derived, peer: &Peer) {
    let got = session.derived();
    assert_eq!(got.loc_is_least, want.loc_is_least, "loc_is_least");
    assert_eq!(hex::encode(got.recv_key), want.recv_key, "recv_key");
    assert_eq!(hex::encode(got.send_key), want.send_key, "send_key");
    assert_eq!(hex::encode(got.challenge), want.challenge, "challenge");
    assert_eq!(session.remote_node_id().to_string(), peer.node_id);
    assert_eq!(hex::encode(session.remote_public_key().0), peer.pub_key);
    assert_eq!(
        peer.node_id.parse::<NodeId>().unwrap(),
        session.remote_node_id()
    );

    // The native keys are HKDF-SHA256(dh, salt = challenge, "RINGWIRE_NATIVE_V1_RECORD_KEYS"),
    // split like the stock keys.
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(&arr32(&want.challenge)), &arr32(&want.dh_secret))
        .expand(b"RINGWIRE_NATIVE_V1_RECORD_KEYS", &mut okm)
        .unwrap();
    let (first, second) = okm.split_at(32);
    let (recv, send) = if want.loc_is_least {
        (first, second)
    } else {
        (second, first)
    };
    let native = session.native_keys();
    assert_eq!(native.recv, recv);
    assert_eq!(native.send, send);
}

#[test]
fn golden_handshake_and_frames() {
    let g = load();
    assert_eq!(g.cometbft_version, "v0.40.0");

    // The file is self-consistent: each DH secret is X25519(own secret, peer's public).
    for (me, peer, d) in [
        (&g.peers.a, &g.peers.b, &g.derived.a),
        (&g.peers.b, &g.peers.a, &g.derived.b),
    ] {
        let dh = x25519_dalek::x25519(arr32(&me.eph_secret), arr32(&peer.eph_public));
        assert_eq!(hex::encode(dh), d.dh_secret, "dh_secret");
    }

    let mut a = play(
        &g.peers.a,
        &g.a_to_b_handshake,
        &g.b_to_a_handshake,
        usize::MAX,
    );
    let mut b = play(
        &g.peers.b,
        &g.b_to_a_handshake,
        &g.a_to_b_handshake,
        usize::MAX,
    );
    check_derived(&a, &g.derived.a, &g.peers.b);
    check_derived(&b, &g.derived.b, &g.peers.a);
    assert_eq!(a.native_keys().send, b.native_keys().recv);

    assert!(!g.frames.is_empty());
    for (i, f) in g.frames.iter().enumerate() {
        let (writer, reader) = match f.writer.as_str() {
            "a" => (&mut a, &mut b),
            "b" => (&mut b, &mut a),
            other => panic!("frame {i}: unknown writer {other:?}"),
        };
        let plain = bytes(&f.plaintext);
        let mut sealed = Vec::new();
        writer.sealer_mut().seal(&plain, &mut sealed).unwrap();
        assert_eq!(hex::encode(&sealed), f.sealed, "frame {i}: sealed bytes");
        let mut opened = Vec::new();
        reader
            .opener_mut()
            .open(&bytes(&f.sealed), &mut opened)
            .unwrap();
        assert_eq!(opened, plain, "frame {i}: opened bytes");
    }
}

#[test]
fn golden_handshake_fed_one_byte_at_a_time() {
    let g = load();
    play(&g.peers.a, &g.a_to_b_handshake, &g.b_to_a_handshake, 1);
    play(&g.peers.b, &g.b_to_a_handshake, &g.a_to_b_handshake, 1);
}
