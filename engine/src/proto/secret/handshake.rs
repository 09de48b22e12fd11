//! The SecretConnection handshake as a sans-IO state machine.
//!
//! Both sides speak first, as stock CometBFT does: the ephemeral-key message is ready to send
//! the moment a [`Handshake`] is created, and our authentication frame is ready the moment the
//! peer's ephemeral key arrives — never after waiting for the peer's authentication.
//!
//! Wire sequence, per side:
//! 1. plaintext `uvarint(34) ‖ BytesValue{value = ephemeral X25519 public key}` (35 bytes);
//! 2. one sealed frame holding `uvarint(len) ‖ AuthSigMessage{PublicKey{ed25519}, signature}`
//!    (103 bytes of data for an ed25519 key), the signature being over the 32-byte challenge.
//!
//! Bounds: the peer's ephemeral message may declare at most [`EPHEMERAL_MESSAGE_MAX`] body
//! bytes and must carry exactly a 32-byte key; its authentication message at most
//! [`AUTH_MESSAGE_MAX`] body bytes (stock allows up to 1 MiB, but a stock message is 101
//! bytes). Both limits are checked before any body byte is stored, into fixed buffers.
//! The authentication message may span several frames, as stock's byte-wise reader allows;
//! input is consumed only up to the end of the frame that completes it.
//!
//! What the caller will send first over the session (the NodeInfo, for a connection) can be
//! handed over at the start ([`Handshake::send_after_auth`]): it is sealed right behind our
//! authentication frame, in frames of its own, so it travels in the same write instead of a
//! round trip later. It leaves before the peer's signature is checked; a connection sends
//! only its NodeInfo this way, which it gives any peer that completes a handshake anyway.
//!
//! A caller that has something to send before it needs the peer's identity can
//! [`defer_signature_check`](Handshake::defer_signature_check): the handshake then completes
//! once the peer's authentication message is parsed, and the session carries the signature as
//! an [`UnverifiedSignature`] for the caller to check (see `unverified.rs` for why a connection
//! does this).
//!
//! Driver loop: [`poll_transmit`](Handshake::poll_transmit) and send; feed received bytes to
//! [`handle_input`](Handshake::handle_input) (keep what it did not consume); repeat until
//! [`is_complete`](Handshake::is_complete), then [`into_session`](Handshake::into_session).

use prost::Message;
use zeroize::Zeroizing;

use super::SecretError;
use super::delimited::{DelimitError, DelimitedReader};
use super::frame::{FrameOpener, FrameSealer};
use super::identity::{NodeKey, PUBLIC_KEY_SIZE, PublicKey};
use super::keys::{self, DerivedSecrets};
use super::session::SecretSession;
use super::unverified::UnverifiedSignature;
use super::x25519;
use crate::proto::wire::{self, AuthSigMessage, BytesValue, public_key};

/// Most body bytes accepted for the peer's plaintext ephemeral-key message (a stock one has 34).
pub const EPHEMERAL_MESSAGE_MAX: usize = 64;
/// Most body bytes accepted for the peer's authentication message (a stock one has 101).
pub const AUTH_MESSAGE_MAX: usize = 1024;

/// A SecretConnection handshake in progress. See the module docs for the driver loop.
pub struct Handshake {
    local: NodeKey,
    eph_secret: Zeroizing<[u8; 32]>,
    eph_public: [u8; 32],
    /// Bytes to send; bounded by one ephemeral message plus the sealed frames of the
    /// authentication message and of `after_auth`.
    transmit: Vec<u8>,
    /// Plaintext sealed right after our authentication message ([`Handshake::send_after_auth`]).
    after_auth: Vec<u8>,
    /// Whether the peer's signature is left for the session's owner to check.
    defer_check: bool,
    state: State,
}

enum State {
    /// Waiting for the peer's ephemeral key.
    Ephemeral(DelimitedReader<EPHEMERAL_MESSAGE_MAX>),
    /// Keys derived, our authentication queued; waiting for the peer's.
    Auth(Box<AuthStage>),
    /// The peer is authenticated (or its signature is left to check).
    Done(Box<SecretSession>),
    /// A step failed; the handshake is dead.
    Failed,
}

struct AuthStage {
    derived: DerivedSecrets,
    dh: Zeroizing<[u8; 32]>,
    sealer: FrameSealer,
    opener: FrameOpener,
    reader: DelimitedReader<AUTH_MESSAGE_MAX>,
}

impl Handshake {
    /// Starts a handshake for `local`, with ephemeral X25519 secret `ephemeral_secret` (32
    /// random bytes from the caller; clamped as X25519 prescribes). The ephemeral message is
    /// ready for [`poll_transmit`](Self::poll_transmit) at once.
    pub fn new(local: NodeKey, ephemeral_secret: [u8; 32]) -> Self {
        let eph_secret = Zeroizing::new(ephemeral_secret);
        let eph_public = x25519::public_key(&eph_secret);
        let msg = BytesValue {
            value: bytes::Bytes::copy_from_slice(&eph_public),
        };
        let mut transmit = Vec::with_capacity(64 + super::frame::FRAME_SEALED_SIZE);
        // Encoding into a Vec cannot run out of space.
        let _ = msg.encode_length_delimited(&mut transmit);
        Self {
            local,
            eph_secret,
            eph_public,
            transmit,
            after_auth: Vec::new(),
            defer_check: false,
            state: State::Ephemeral(DelimitedReader::new()),
        }
    }

    /// Queues `plain` to be sealed in SecretConnection frames of its own right after our
    /// authentication message, so that it leaves in the same write (see the module
    /// documentation). Takes effect only before the peer's ephemeral key arrives.
    pub fn send_after_auth(&mut self, plain: Vec<u8>) {
        self.after_auth = plain;
    }

    /// Leaves the check of the peer's signature to the session's owner: the handshake
    /// completes once the peer's authentication message is parsed, and
    /// [`SecretSession::take_unverified_signature`] hands the signature over. Until it is
    /// checked, the session's remote key and node ID are only claimed.
    pub fn defer_signature_check(&mut self) {
        self.defer_check = true;
    }

    /// Our ephemeral X25519 public key.
    pub fn local_ephemeral_public(&self) -> [u8; 32] {
        self.eph_public
    }

    /// Appends the bytes to send now to `out` (nothing when there are none).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.transmit);
    }

    /// Whether the peer is authenticated (its authentication parsed, when the check is
    /// deferred) and all our handshake bytes were polled.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done(_)) && self.transmit.is_empty()
    }

    /// Whether a step failed.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// Feeds bytes received from the peer; returns how many were consumed.
    ///
    /// Bytes after the end of the handshake are not consumed: they are the peer's first
    /// post-handshake frames and belong to the session's opener. After an error the handshake
    /// is dead and every later call fails with [`SecretError::HandshakeFailed`].
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, SecretError> {
        let result = self.step(input);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Turns a complete handshake into the session.
    pub fn into_session(self) -> Result<SecretSession, SecretError> {
        match self.state {
            State::Done(_) if !self.transmit.is_empty() => Err(SecretError::HandshakeIncomplete),
            State::Done(session) => Ok(*session),
            State::Failed => Err(SecretError::HandshakeFailed),
            _ => Err(SecretError::HandshakeIncomplete),
        }
    }

    fn step(&mut self, input: &[u8]) -> Result<usize, SecretError> {
        let mut used = 0;
        if let State::Ephemeral(reader) = &mut self.state {
            let (n, done) = reader.push(input).map_err(ephemeral_error)?;
            used = n;
            if !done {
                return Ok(used);
            }
            let remote = decode_ephemeral(reader.body())?;
            self.state = State::Auth(Box::new(self.start_auth(&remote)?));
        }
        let rest = input.get(used..).unwrap_or_default();
        // Take the state out; an early return on error leaves it `Failed`.
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Auth(mut stage) => {
                let (n, authenticated) = read_auth(&mut stage, rest, self.defer_check)?;
                used += n;
                self.state = match authenticated {
                    Some(peer) => State::Done(Box::new(stage.into_session(peer))),
                    None => State::Auth(stage),
                };
                Ok(used)
            }
            State::Failed => Err(SecretError::HandshakeFailed),
            // `Done` consumes nothing more; `Ephemeral` only remains when it returned above.
            other => {
                self.state = other;
                Ok(used)
            }
        }
    }

    /// Derives the keys from the peer's ephemeral key and queues our authentication frame.
    fn start_auth(&mut self, remote_eph: &[u8; 32]) -> Result<AuthStage, SecretError> {
        // A low-order point yields the all-zero secret, which `shared_secret` refuses.
        let dh = x25519::shared_secret(&self.eph_secret, remote_eph)
            .ok_or(SecretError::LowOrderPoint)?;
        let derived = keys::derive_stock(&self.eph_public, remote_eph, &dh);
        let mut sealer = FrameSealer::new(&derived.send_key);
        let opener = FrameOpener::new(&derived.recv_key);

        let signature = self.local.sign(&derived.challenge);
        let auth = AuthSigMessage {
            pub_key: Some(wire::PublicKey {
                sum: Some(public_key::Sum::Ed25519(bytes::Bytes::copy_from_slice(
                    self.local.public_key().as_bytes(),
                ))),
            }),
            sig: bytes::Bytes::copy_from_slice(&signature),
        };
        let plain = auth.encode_length_delimited_to_vec();
        sealer.seal(&plain, &mut self.transmit)?;
        if !self.after_auth.is_empty() {
            sealer.seal(&std::mem::take(&mut self.after_auth), &mut self.transmit)?;
        }
        Ok(AuthStage {
            derived,
            dh,
            sealer,
            opener,
            reader: DelimitedReader::new(),
        })
    }
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Ephemeral(_) => "ephemeral",
            State::Auth(_) => "auth",
            State::Done(_) => "done",
            State::Failed => "failed",
        };
        f.debug_struct("Handshake")
            .field("local", &self.local.node_id())
            .field("state", &state)
            .field("pending_transmit", &self.transmit.len())
            .finish_non_exhaustive()
    }
}

fn ephemeral_error(e: DelimitError) -> SecretError {
    SecretError::BadEphemeralMessage(match e {
        DelimitError::LengthOverflow => "length prefix overflows",
        DelimitError::TooLong => "declared length over the limit",
    })
}

fn auth_error(e: DelimitError) -> SecretError {
    SecretError::BadAuthMessage(match e {
        DelimitError::LengthOverflow => "length prefix overflows",
        DelimitError::TooLong => "declared length over the limit",
    })
}

/// Parses the body of the peer's ephemeral message into a 32-byte public key.
fn decode_ephemeral(body: &[u8]) -> Result<[u8; 32], SecretError> {
    let msg = BytesValue::decode(body)
        .map_err(|_| SecretError::BadEphemeralMessage("not a BytesValue"))?;
    <[u8; 32]>::try_from(msg.value.as_ref())
        .map_err(|_| SecretError::BadEphemeralMessage("key is not 32 bytes"))
}

/// The peer's key (verified, or claimed with its signature left to check) and any data that
/// followed its authentication message in the same frame.
struct Authenticated {
    key: PublicKey,
    unverified: Option<UnverifiedSignature>,
    early_data: Vec<u8>,
}

/// Reads frames until the peer's authentication message is complete; returns the bytes
/// consumed and, once complete, the peer's key (its signature checked unless `defer_check`)
/// and any data after the message.
fn read_auth(
    stage: &mut AuthStage,
    mut input: &[u8],
    defer_check: bool,
) -> Result<(usize, Option<Authenticated>), SecretError> {
    let mut used = 0;
    while !input.is_empty() {
        let (n, data) = stage.opener.open_one(input)?;
        used += n;
        input = input.get(n..).unwrap_or_default();
        let Some(data) = data else { continue };
        let (m, done) = stage.reader.push(data).map_err(auth_error)?;
        if done {
            let early_data = data.get(m..).unwrap_or_default().to_vec();
            let signed = parse_auth(stage.reader.body(), &stage.derived.challenge)?;
            let (key, unverified) = if defer_check {
                (signed.claimed_key(), Some(signed))
            } else {
                (signed.check()?, None)
            };
            return Ok((
                used,
                Some(Authenticated {
                    key,
                    unverified,
                    early_data,
                }),
            ));
        }
    }
    Ok((used, None))
}

/// Parses the peer's authentication message: an ed25519 key and its signature of the
/// challenge, left to check.
fn parse_auth(body: &[u8], challenge: &[u8; 32]) -> Result<UnverifiedSignature, SecretError> {
    let msg = AuthSigMessage::decode(body)
        .map_err(|_| SecretError::BadAuthMessage("not an AuthSigMessage"))?;
    let key = match msg.pub_key.and_then(|k| k.sum) {
        Some(public_key::Sum::Ed25519(k)) => k,
        Some(public_key::Sum::Secp256k1(_)) | None => return Err(SecretError::UnsupportedKeyType),
    };
    let key = <[u8; PUBLIC_KEY_SIZE]>::try_from(key.as_ref())
        .map_err(|_| SecretError::BadPublicKeyLength(key.len()))?;
    Ok(UnverifiedSignature {
        key: PublicKey(key),
        signature: msg.sig,
        challenge: *challenge,
    })
}

impl AuthStage {
    /// The session this stage becomes once the peer's authentication is in.
    fn into_session(self, peer: Authenticated) -> SecretSession {
        SecretSession {
            sealer: self.sealer,
            opener: self.opener,
            remote_key: peer.key,
            remote_id: peer.key.node_id(),
            unverified: peer.unverified,
            derived: self.derived,
            dh: self.dh,
            early_data: peer.early_data,
        }
    }
}
