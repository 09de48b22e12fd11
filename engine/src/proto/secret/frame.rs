//! SecretConnection frames: fixed-size ChaCha20-Poly1305 records.
//!
//! Every frame carries at most [`DATA_MAX_SIZE`] data bytes. Its plaintext is always
//! [`FRAME_PLAIN_SIZE`] bytes — a little-endian `u32` data length, the data, padding — and it is
//! sealed (no associated data) into exactly [`FRAME_SEALED_SIZE`] bytes, even for a one-byte
//! write. Each direction has its own key and its own nonce sequence (see the nonce module).
//!
//! Padding: stock CometBFT builds every plaintext in one reused 1028-byte buffer, so a short
//! frame's padding is whatever the previous frames of that direction left there (zeros only
//! until the first write; the authentication message's tail right after the handshake).
//! Receivers ignore padding, but the sealed bytes depend on it, so the sealer keeps the same
//! buffer and produces frames byte-identical to stock's. The padding is only ever our own
//! earlier plaintext of the same direction, under the same key.
//!
//! Policy: the sealer writes straight into the caller's buffer and seals in place; the opener
//! keeps at most one partial sealed frame in a fixed buffer and decrypts in place. Neither
//! allocates per frame. The first failure (bad tag, declared length over the maximum, nonce
//! exhaustion) is final: every later call fails with [`SecretError::StreamFailed`], because a
//! stream that has lost its place in the nonce sequence can never recover.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, UnboundKey};
use zeroize::Zeroize;

use super::SecretError;
use super::nonce::NonceCounter;

/// Most data bytes one frame carries.
pub const DATA_MAX_SIZE: usize = 1024;
/// Size of the little-endian data-length prefix inside a frame.
pub const DATA_LEN_SIZE: usize = 4;
/// Plaintext size of every frame: length prefix plus padded data.
pub const FRAME_PLAIN_SIZE: usize = DATA_LEN_SIZE + DATA_MAX_SIZE;
/// Size of the Poly1305 tag appended to every sealed frame.
pub const TAG_SIZE: usize = 16;
/// Size of every frame on the wire.
pub const FRAME_SEALED_SIZE: usize = FRAME_PLAIN_SIZE + TAG_SIZE;

/// Builds the ChaCha20-Poly1305 key for one direction.
fn aead_key(key: &[u8; 32]) -> LessSafeKey {
    match UnboundKey::new(&CHACHA20_POLY1305, key) {
        Ok(k) => LessSafeKey::new(k),
        // ring only rejects keys of the wrong length; ours is a 32-byte array.
        Err(_) => unreachable!("ChaCha20-Poly1305 takes a 32-byte key"),
    }
}

/// Number of frames a write of `len` bytes becomes.
pub fn frames_for(len: usize) -> usize {
    len.div_ceil(DATA_MAX_SIZE)
}

/// Seals outgoing data into frames, one direction of a session.
pub struct FrameSealer {
    key: LessSafeKey,
    nonce: NonceCounter,
    failed: bool,
    /// The plaintext of the last frame sealed (all zeros before the first): stock's reused
    /// frame buffer, whose stale tail pads the next short frame.
    plain: [u8; FRAME_PLAIN_SIZE],
}

impl FrameSealer {
    /// A sealer with the given send key, starting at nonce 0.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: aead_key(key),
            nonce: NonceCounter::new(),
            failed: false,
            plain: [0u8; FRAME_PLAIN_SIZE],
        }
    }

    /// Appends the sealed frames for `data` to `out`: `ceil(len / 1024)` frames of
    /// [`FRAME_SEALED_SIZE`] bytes each (nothing for empty data, as stock does). Short frames are
    /// padded as stock pads them (see the module docs).
    ///
    /// Either every frame is written or none is: if the nonce sequence cannot cover the whole
    /// write, `out` is left unchanged and the sealer fails for good.
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), SecretError> {
        if self.failed {
            return Err(SecretError::StreamFailed);
        }
        let frames = frames_for(data.len());
        if (self.nonce.remaining() as u128) < frames as u128 {
            self.failed = true;
            return Err(SecretError::NonceExhausted);
        }
        out.reserve(frames.saturating_mul(FRAME_SEALED_SIZE));
        for chunk in data.chunks(DATA_MAX_SIZE) {
            // A chunk is at most 1024 bytes, so its length always fits the u32 prefix and the
            // prefix plus chunk always fit the frame.
            let (len, rest) = self.plain.split_at_mut(DATA_LEN_SIZE);
            len.copy_from_slice(&(chunk.len() as u32).to_le_bytes());
            if let Some(dst) = rest.get_mut(..chunk.len()) {
                dst.copy_from_slice(chunk);
            }
            let start = out.len();
            out.extend_from_slice(&self.plain);
            let nonce = self.nonce.take()?;
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    nonce,
                    Aad::empty(),
                    out.get_mut(start..).ok_or(SecretError::StreamFailed)?,
                )
                // ring refuses only inputs of many gigabytes; a frame is 1028 bytes.
                .map_err(|_| SecretError::StreamFailed)?;
            out.extend_from_slice(tag.as_ref());
        }
        Ok(())
    }

    /// The counter value the next frame will be sealed with (`None` once exhausted).
    pub fn next_nonce(&self) -> Option<u64> {
        self.nonce.peek()
    }

    /// Sets the next nonce counter value (tests only).
    #[cfg(test)]
    pub(crate) fn set_nonce(&mut self, next: u64) {
        self.nonce.set(next);
    }
}

impl Drop for FrameSealer {
    fn drop(&mut self) {
        self.plain.zeroize();
    }
}

impl std::fmt::Debug for FrameSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSealer")
            .field("next_nonce", &self.nonce.peek())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The decrypting half of a direction: key, nonce sequence and failure flag.
struct OpenCipher {
    key: LessSafeKey,
    nonce: NonceCounter,
    failed: bool,
}

impl OpenCipher {
    /// Opens one sealed frame in place and returns its data bytes.
    fn open<'a>(
        &mut self,
        frame: &'a mut [u8; FRAME_SEALED_SIZE],
    ) -> Result<&'a [u8], SecretError> {
        if self.failed {
            return Err(SecretError::StreamFailed);
        }
        let result = self.open_inner(frame);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn open_inner<'a>(
        &mut self,
        frame: &'a mut [u8; FRAME_SEALED_SIZE],
    ) -> Result<&'a [u8], SecretError> {
        let nonce = self.nonce.take()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), frame)
            .map_err(|_| SecretError::Authentication)?;
        let (len, rest) = plain
            .split_first_chunk::<DATA_LEN_SIZE>()
            .ok_or(SecretError::Authentication)?;
        let len = u32::from_le_bytes(*len);
        if len as usize > DATA_MAX_SIZE {
            return Err(SecretError::FrameTooLong(len));
        }
        rest.get(..len as usize)
            .ok_or(SecretError::FrameTooLong(len))
    }
}

/// Opens incoming frames, the other direction of a session.
///
/// [`open`](Self::open) is streaming: feed it bytes as they arrive, in any chunking; it keeps at
/// most one partial frame in a fixed [`FRAME_SEALED_SIZE`]-byte buffer.
/// [`open_frame`](Self::open_frame) opens one whole frame in the caller's buffer.
pub struct FrameOpener {
    cipher: OpenCipher,
    buf: [u8; FRAME_SEALED_SIZE],
    fill: usize,
}

impl FrameOpener {
    /// An opener with the given receive key, starting at nonce 0.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: OpenCipher {
                key: aead_key(key),
                nonce: NonceCounter::new(),
                failed: false,
            },
            buf: [0u8; FRAME_SEALED_SIZE],
            fill: 0,
        }
    }

    /// Opens one complete sealed frame in place and returns its data bytes (a slice of
    /// `frame`). Must not be mixed with a partial frame buffered by [`open`](Self::open)
    /// (see [`buffered`](Self::buffered)).
    pub fn open_frame<'a>(
        &mut self,
        frame: &'a mut [u8; FRAME_SEALED_SIZE],
    ) -> Result<&'a [u8], SecretError> {
        self.cipher.open(frame)
    }

    /// Feeds `input` and appends the data bytes of every frame it completes to `out`.
    ///
    /// On success all of `input` is consumed (a trailing partial frame is buffered) and its
    /// length is returned. On error the stream is dead; `out` may hold data of frames that
    /// opened before the failing one.
    pub fn open(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<usize, SecretError> {
        if self.cipher.failed {
            return Err(SecretError::StreamFailed);
        }
        let total = input.len();
        while !input.is_empty() {
            let (used, data) = self.open_one(input)?;
            if let Some(data) = data {
                out.extend_from_slice(data);
            }
            input = input.get(used..).unwrap_or_default();
        }
        Ok(total)
    }

    /// Feeds `input` up to the end of the next frame at most. Returns how many bytes were
    /// consumed and, when a frame completed, its data bytes.
    pub fn open_one(&mut self, input: &[u8]) -> Result<(usize, Option<&[u8]>), SecretError> {
        if self.cipher.failed {
            return Err(SecretError::StreamFailed);
        }
        let want = FRAME_SEALED_SIZE.saturating_sub(self.fill);
        let take = want.min(input.len());
        let (src, _) = input.split_at(take);
        let dst = self
            .buf
            .get_mut(self.fill..self.fill + take)
            .ok_or(SecretError::StreamFailed)?;
        dst.copy_from_slice(src);
        self.fill += take;
        if self.fill < FRAME_SEALED_SIZE {
            return Ok((take, None));
        }
        self.fill = 0;
        let data = self.cipher.open(&mut self.buf)?;
        Ok((take, Some(data)))
    }

    /// Number of bytes of a partial sealed frame currently buffered.
    pub fn buffered(&self) -> usize {
        self.fill
    }

    /// The counter value the next frame will be opened with (`None` once exhausted).
    pub fn next_nonce(&self) -> Option<u64> {
        self.cipher.nonce.peek()
    }

    /// Sets the next nonce counter value (tests only).
    #[cfg(test)]
    pub(crate) fn set_nonce(&mut self, next: u64) {
        self.cipher.nonce.set(next);
    }
}

impl std::fmt::Debug for FrameOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameOpener")
            .field("next_nonce", &self.cipher.nonce.peek())
            .field("buffered", &self.fill)
            .field("failed", &self.cipher.failed)
            .finish_non_exhaustive()
    }
}
