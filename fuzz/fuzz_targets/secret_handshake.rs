//! Peer bytes into the SecretConnection handshake: whatever arrives, in whatever slicing,
//! nothing panics, no call reports more bytes consumed than it was given, bytes are left
//! unconsumed only once the handshake is done, and a failed handshake stays failed.
//!
//! Three modes, chosen by the input:
//! - raw: the bytes are the peer's wire bytes from the first byte on;
//! - sealed: a real peer's ephemeral key, then fuzzer plaintext (optionally after the peer's
//!   genuine authentication message) sealed into frames with the peer's real send key, so the
//!   authentication-message reader and decoder see well-formed frames; when the genuine message
//!   leads, the handshake must complete and every byte after it must come out of the session;
//! - damaged: the peer's genuine transcript followed by sealed application data, with
//!   fuzzer-chosen bytes flipped; an intact transcript must authenticate the peer and hand the
//!   data to the session, a damaged one must never authenticate.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringwire::proto::secret::{FrameOpener, FrameSealer, Handshake, NodeId, NodeKey};
use ringwire_fuzz::{chunks, flip};

const LOCAL_SEED: [u8; 32] = [0x11; 32];
const LOCAL_EPHEMERAL: [u8; 32] = [0x22; 32];
const PEER_SEED: [u8; 32] = [0x33; 32];
const PEER_EPHEMERAL: [u8; 32] = [0x44; 32];

/// What a genuine handshake between the two fixed identities looks like.
struct Fixture {
    /// The peer's plaintext ephemeral-key message.
    peer_ephemeral: Vec<u8>,
    /// The peer's whole handshake transcript: ephemeral message and authentication frame.
    peer_transcript: Vec<u8>,
    /// The delimited authentication message inside the peer's authentication frame.
    peer_auth_plain: Vec<u8>,
    /// The peer's send key (our receive key).
    peer_send_key: [u8; 32],
    peer_id: NodeId,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut local = Handshake::new(NodeKey::from_seed(LOCAL_SEED), LOCAL_EPHEMERAL);
        let mut peer = Handshake::new(NodeKey::from_seed(PEER_SEED), PEER_EPHEMERAL);
        let peer_ephemeral = {
            let mut out = Vec::new();
            peer.poll_transmit(&mut out);
            out
        };
        let mut local_out = Vec::new();
        local.poll_transmit(&mut local_out);
        let used = peer
            .handle_input(&local_out)
            .expect("peer takes our ephemeral");
        assert_eq!(used, local_out.len());
        let mut peer_auth = Vec::new();
        peer.poll_transmit(&mut peer_auth);
        let peer_transcript = [peer_ephemeral.clone(), peer_auth.clone()].concat();
        let used = local
            .handle_input(&peer_transcript)
            .expect("we take the peer's");
        assert_eq!(used, peer_transcript.len());
        local_out.clear();
        local.poll_transmit(&mut local_out);
        peer.handle_input(&local_out).expect("peer takes our auth");
        assert!(local.is_complete() && peer.is_complete());
        let session = local.into_session().expect("complete");
        let peer_send_key = session.derived().recv_key;
        let mut frame: [u8; ringwire::proto::secret::FRAME_SEALED_SIZE] =
            peer_auth.as_slice().try_into().expect("one frame");
        let peer_auth_plain = FrameOpener::new(&peer_send_key)
            .open_frame(&mut frame)
            .expect("the peer's auth frame opens")
            .to_vec();
        Fixture {
            peer_ephemeral,
            peer_transcript,
            peer_auth_plain,
            peer_send_key,
            peer_id: session.remote_node_id(),
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw {
        sizes: Vec<u16>,
        wire: Vec<u8>,
    },
    Sealed {
        genuine_auth_first: bool,
        /// Splits the plaintext into separately sealed writes (frame boundaries).
        writes: Vec<u16>,
        sizes: Vec<u16>,
        plain: Vec<u8>,
    },
    Damaged {
        edits: Vec<(u32, u8)>,
        sizes: Vec<u16>,
        data: Vec<u8>,
    },
}

/// How a fed stream ended.
struct Fed {
    /// The handshake, polled dry.
    handshake: Handshake,
    /// Stream bytes the handshake did not consume, in order.
    leftover: Vec<u8>,
    failed: bool,
}

/// Feeds `stream` in the given slicing as a driver would, checking every consumed count.
fn feed(stream: &[u8], sizes: &[u16]) -> Fed {
    let mut handshake = Handshake::new(NodeKey::from_seed(LOCAL_SEED), LOCAL_EPHEMERAL);
    let mut sink = Vec::new();
    handshake.poll_transmit(&mut sink);
    let mut leftover = Vec::new();
    let mut failed = false;
    for chunk in chunks(stream, sizes, 2048) {
        if failed || !leftover.is_empty() {
            leftover.extend_from_slice(chunk);
            continue;
        }
        match handshake.handle_input(chunk) {
            Ok(used) => {
                assert!(used <= chunk.len(), "consumed {used} of {}", chunk.len());
                sink.clear();
                handshake.poll_transmit(&mut sink);
                assert!(sink.len() <= 64 + ringwire::proto::secret::FRAME_SEALED_SIZE);
                if used < chunk.len() {
                    assert!(
                        handshake.is_complete(),
                        "bytes left unconsumed before the handshake completed"
                    );
                    leftover.extend_from_slice(&chunk[used..]);
                }
            }
            Err(_) => {
                assert!(handshake.is_failed());
                assert!(handshake.handle_input(b"more").is_err(), "failure is final");
                failed = true;
            }
        }
    }
    Fed {
        handshake,
        leftover,
        failed,
    }
}

fuzz_target!(|input: Input| {
    let fx = fixture();
    match input {
        Input::Raw { sizes, wire } => {
            let fed = feed(&wire, &sizes);
            if fed.handshake.is_complete() {
                assert!(fed.handshake.into_session().is_ok());
            }
        }
        Input::Sealed {
            genuine_auth_first,
            writes,
            sizes,
            plain,
        } => {
            let mut stream = fx.peer_ephemeral.clone();
            let mut sealer = FrameSealer::new(&fx.peer_send_key);
            let body = if genuine_auth_first {
                [fx.peer_auth_plain.as_slice(), &plain].concat()
            } else {
                plain.clone()
            };
            for write in chunks(&body, &writes, 4096) {
                sealer.seal(write, &mut stream).expect("nonces remain");
            }
            let fed = feed(&stream, &sizes);
            if genuine_auth_first {
                assert!(
                    !fed.failed,
                    "the genuine authentication message was rejected"
                );
                let mut session = fed.handshake.into_session().expect("authenticated");
                assert_eq!(session.remote_node_id(), fx.peer_id);
                let mut after = session.take_early_data();
                session
                    .opener_mut()
                    .open(&fed.leftover, &mut after)
                    .expect("the peer's later frames open");
                assert_eq!(
                    after, plain,
                    "data after the authentication message changed"
                );
            }
        }
        Input::Damaged { edits, sizes, data } => {
            let mut stream = fx.peer_transcript.clone();
            let mut sealer = FrameSealer::new(&fx.peer_send_key);
            // Nonce 0 went to the authentication frame.
            sealer.seal(&[0], &mut Vec::new()).expect("nonces remain");
            sealer.seal(&data, &mut stream).expect("nonces remain");
            let first = flip(&mut stream, &edits);
            let fed = feed(&stream, &sizes);
            let transcript = fx.peer_transcript.len();
            match first {
                Some(at) if at < transcript => {
                    assert!(
                        !fed.handshake.is_complete(),
                        "a damaged transcript (byte {at}) authenticated the peer"
                    );
                }
                _ => {
                    assert!(!fed.failed, "an intact transcript was rejected");
                    let mut session = fed.handshake.into_session().expect("authenticated");
                    assert_eq!(session.remote_node_id(), fx.peer_id);
                    assert!(session.take_early_data().is_empty());
                    assert_eq!(fed.leftover.len(), stream.len() - transcript);
                    let mut after = Vec::new();
                    let opened = session.opener_mut().open(&fed.leftover, &mut after);
                    if first.is_none() {
                        opened.expect("intact frames open");
                        assert_eq!(after, data);
                    } else {
                        assert!(opened.is_err(), "a damaged frame opened");
                    }
                }
            }
        }
    }
});
