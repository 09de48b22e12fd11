//! The native record layer: AES-256-GCM records of at most 64 KiB of plaintext.
//!
//! Wire format of one record (see `docs/PROTOCOL.md`, "Record layer"):
//!
//! ```text
//! +--------------------+----------------------------+----------------+
//! | length: u32 BE     | ciphertext (length-16 B)   | tag (16 B)     |
//! +--------------------+----------------------------+----------------+
//! ```
//!
//! `length` counts the ciphertext and the tag, so it lies in `17 ..= 65552`: a record always
//! carries at least one plaintext byte and at most [`MAX_RECORD_PLAINTEXT`]. The four header
//! bytes are the AEAD's associated data. The nonce is four zero bytes followed by a big-endian
//! `u64` record counter that starts at 0 in each direction and grows by one per record; a
//! direction whose counter is spent refuses to seal or open another record.
//!
//! Policy:
//! - A header that declares a length outside the valid range is rejected as soon as its four
//!   bytes are known, before anything else is buffered.
//! - The opener's buffer never grows past one maximal record.
//! - After any error an opener is dead: every later call fails with [`RecordError::Dead`].
//! - Sealing writes straight into the caller's output buffer; opening decrypts in place, either
//!   in the opener's buffer ([`RecordOpener::feed`] + [`RecordOpener::next_record`]) or in the
//!   caller's own buffer ([`RecordOpener::open_in_place`]) when a whole record is already there.

use std::ops::Range;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::pinned::{PinBudget, share};

/// Length of the record header (the big-endian `u32` length field).
pub const RECORD_HEADER_LEN: usize = 4;
/// Length of the AES-256-GCM authentication tag that ends every record.
pub const RECORD_TAG_LEN: usize = 16;
/// Largest plaintext one record carries.
pub const MAX_RECORD_PLAINTEXT: usize = 65536;
/// Smallest value of the header's length field (one plaintext byte plus the tag).
pub const MIN_RECORD_BODY: usize = RECORD_TAG_LEN + 1;
/// Largest value of the header's length field (maximal plaintext plus the tag).
pub const MAX_RECORD_BODY: usize = MAX_RECORD_PLAINTEXT + RECORD_TAG_LEN;
/// Largest record on the wire, header included.
pub const MAX_RECORD_LEN: usize = RECORD_HEADER_LEN + MAX_RECORD_BODY;
/// Length of a record key (AES-256).
pub const RECORD_KEY_LEN: usize = 32;

/// Errors of the record layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A record header declared a length outside `17 ..= 65552`.
    #[error("record header declares {0} bytes of ciphertext, outside 17..=65552")]
    BadLength(u32),
    /// The authentication tag did not verify: the record was altered, reordered or forged.
    #[error("record authentication failed")]
    BadTag,
    /// The 64-bit record counter of this direction is spent.
    #[error("record counter exhausted; the connection must be closed")]
    CounterExhausted,
    /// A record plaintext to seal was empty.
    #[error("record plaintext is empty")]
    EmptyPlaintext,
    /// A record plaintext to seal was larger than [`MAX_RECORD_PLAINTEXT`].
    #[error("record plaintext of {0} bytes exceeds the 65536-byte maximum")]
    PlaintextTooLarge(usize),
    /// `finish` was given a start offset that does not point at a reserved header.
    #[error("record start offset does not point at a reserved header")]
    BadStart,
    /// The opener failed earlier and accepts no more input.
    #[error("record opener is dead after an earlier error")]
    Dead,
}

fn nonce_for(counter: u64) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(nonce)
}

fn make_key(key: &[u8; RECORD_KEY_LEN]) -> LessSafeKey {
    // AES-256-GCM accepts every 32-byte key; `UnboundKey::new` only fails on a wrong length,
    // which the array type rules out.
    match UnboundKey::new(&AES_256_GCM, key) {
        Ok(k) => LessSafeKey::new(k),
        Err(_) => unreachable!("AES-256-GCM takes any 32-byte key"),
    }
}

/// Checks a header's length field and returns it as the body length.
fn check_header(header: [u8; RECORD_HEADER_LEN]) -> Result<usize, RecordError> {
    let declared = u32::from_be_bytes(header);
    let len = usize::try_from(declared).map_err(|_| RecordError::BadLength(declared))?;
    if (MIN_RECORD_BODY..=MAX_RECORD_BODY).contains(&len) {
        Ok(len)
    } else {
        Err(RecordError::BadLength(declared))
    }
}

/// Seals record plaintexts for one direction.
pub struct RecordSealer {
    key: LessSafeKey,
    /// Counter of the next record; `None` once the last counter value has been used.
    counter: Option<u64>,
}

impl std::fmt::Debug for RecordSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSealer")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl RecordSealer {
    /// A sealer for the sending direction with its 32-byte key (`NativeKeys::send`).
    pub fn new(key: &[u8; RECORD_KEY_LEN]) -> Self {
        Self {
            key: make_key(key),
            counter: Some(0),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_counter(key: &[u8; RECORD_KEY_LEN], counter: u64) -> Self {
        Self {
            key: make_key(key),
            counter: Some(counter),
        }
    }

    /// Appends one sealed record carrying `plaintext` to `out`.
    ///
    /// The plaintext is copied once, into `out`, and encrypted there; `out` grows by
    /// `plaintext.len() + 20` bytes and nothing else is allocated.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        check_plaintext_len(plaintext.len())?;
        let start = self.begin(out);
        out.extend_from_slice(plaintext);
        self.finish(out, start)
    }

    /// Reserves a record header at the end of `out` and returns its offset.
    ///
    /// The caller then appends the plaintext directly after it (for example with
    /// `Mux::poll_record`) and calls [`finish`](Self::finish), which seals it in place: the
    /// frames are written once and never copied again. To abandon the record, truncate `out`
    /// back to the returned offset.
    pub fn begin(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
        start
    }

    /// Seals the plaintext that follows the header reserved at `start` and appends the tag.
    pub fn finish(&mut self, out: &mut Vec<u8>, start: usize) -> Result<(), RecordError> {
        let body_start = start
            .checked_add(RECORD_HEADER_LEN)
            .ok_or(RecordError::BadStart)?;
        let plain_len = out
            .len()
            .checked_sub(body_start)
            .ok_or(RecordError::BadStart)?;
        check_plaintext_len(plain_len)?;
        let counter = self.counter.ok_or(RecordError::CounterExhausted)?;
        let body_len = plain_len + RECORD_TAG_LEN;
        let header = u32::try_from(body_len)
            .map_err(|_| RecordError::PlaintextTooLarge(plain_len))?
            .to_be_bytes();
        let Some(region) = out.get_mut(start..) else {
            return Err(RecordError::BadStart);
        };
        let (head, body) = region.split_at_mut(RECORD_HEADER_LEN);
        head.copy_from_slice(&header);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce_for(counter), Aad::from(header), body)
            .map_err(|_| RecordError::PlaintextTooLarge(plain_len))?;
        out.extend_from_slice(tag.as_ref());
        self.counter = counter.checked_add(1);
        Ok(())
    }
}

fn check_plaintext_len(len: usize) -> Result<(), RecordError> {
    if len == 0 {
        Err(RecordError::EmptyPlaintext)
    } else if len > MAX_RECORD_PLAINTEXT {
        Err(RecordError::PlaintextTooLarge(len))
    } else {
        Ok(())
    }
}

/// A whole record opened in the caller's buffer by [`RecordOpener::open_in_place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPlaceRecord {
    /// Bytes of the caller's buffer the record occupied (header, ciphertext and tag).
    pub consumed: usize,
    /// Where the decrypted plaintext lies in the caller's buffer.
    pub plaintext: Range<usize>,
}

/// A record's plaintext from [`RecordOpener::next_record_shared`].
#[derive(Debug)]
pub enum Opened<'a> {
    /// The record buffer itself, shared: slices of it may outlive the opener's next call.
    Shared(bytes::Bytes),
    /// Lent from the opener's buffer until its next call (the pin budget was spent).
    Lent(&'a [u8]),
}

/// Opens the records of one direction from a byte stream.
///
/// Two ways in, which may be mixed between records:
/// - [`feed`](Self::feed) copies stream bytes into a bounded internal buffer (at most one
///   record), then [`next_record`](Self::next_record) decrypts it in place and lends out the
///   plaintext;
/// - [`open_in_place`](Self::open_in_place) decrypts a record that lies whole in the caller's
///   buffer without copying it, when nothing is buffered inside the opener.
pub struct RecordOpener {
    key: LessSafeKey,
    counter: Option<u64>,
    /// Bytes of the record being assembled: header first, then body.
    buf: Vec<u8>,
    /// Total length of the record being assembled once its header is known, else 0.
    need: usize,
    /// The buffered record was opened and lent out; the next call clears it.
    delivered: bool,
    dead: bool,
}

impl std::fmt::Debug for RecordOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordOpener")
            .field("counter", &self.counter)
            .field("buffered", &self.buf.len())
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl RecordOpener {
    /// An opener for the receiving direction with its 32-byte key (`NativeKeys::recv`).
    pub fn new(key: &[u8; RECORD_KEY_LEN]) -> Self {
        Self {
            key: make_key(key),
            counter: Some(0),
            buf: Vec::new(),
            need: 0,
            delivered: false,
            dead: false,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_counter(key: &[u8; RECORD_KEY_LEN], counter: u64) -> Self {
        let mut o = Self::new(key);
        o.counter = Some(counter);
        o
    }

    /// Whether an earlier error has killed this opener.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Whether part of a record is buffered inside the opener.
    pub fn has_partial(&self) -> bool {
        !self.delivered && !self.buf.is_empty()
    }

    fn fail(&mut self, e: RecordError) -> RecordError {
        self.dead = true;
        self.buf = Vec::new();
        self.need = 0;
        e
    }

    fn clear_delivered(&mut self) {
        if self.delivered {
            self.buf.clear();
            self.need = 0;
            self.delivered = false;
        }
    }

    /// Copies bytes of the stream into the opener, up to the end of the current record.
    ///
    /// Returns how many bytes of `input` were taken. It takes nothing while a complete record
    /// waits for [`next_record`](Self::next_record), so a caller loops: feed, drain records,
    /// feed the rest. A header with a bad length fails here, before its body is buffered.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, RecordError> {
        if self.dead {
            return Err(RecordError::Dead);
        }
        self.clear_delivered();
        let mut taken = 0;
        if self.need == 0 {
            // A fresh buffer (the last record was shared) whose header is here whole is sized
            // once, after the header's length is checked, rather than grown from the header.
            if self.buf.capacity() == 0
                && let Some(Ok(body)) = input
                    .get(..RECORD_HEADER_LEN)
                    .and_then(|h| <[u8; RECORD_HEADER_LEN]>::try_from(h).ok())
                    .map(check_header)
            {
                self.buf.reserve_exact(RECORD_HEADER_LEN + body);
            }
            let want = RECORD_HEADER_LEN.saturating_sub(self.buf.len());
            let n = want.min(input.len());
            self.buf
                .extend_from_slice(input.get(..n).unwrap_or_default());
            taken = n;
            if self.buf.len() < RECORD_HEADER_LEN {
                return Ok(taken);
            }
            let mut header = [0u8; RECORD_HEADER_LEN];
            header.copy_from_slice(self.buf.get(..RECORD_HEADER_LEN).unwrap_or(&[0; 4]));
            let body = match check_header(header) {
                Ok(b) => b,
                Err(e) => return Err(self.fail(e)),
            };
            self.need = RECORD_HEADER_LEN + body;
            self.buf
                .reserve_exact(self.need.saturating_sub(self.buf.len()));
        }
        let rest = input.get(taken..).unwrap_or_default();
        let n = self.need.saturating_sub(self.buf.len()).min(rest.len());
        self.buf
            .extend_from_slice(rest.get(..n).unwrap_or_default());
        Ok(taken + n)
    }

    /// Opens the buffered record once it is complete and lends out its plaintext.
    ///
    /// Returns `Ok(None)` while the record is incomplete. The plaintext stays valid until the
    /// next call on the opener.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, RecordError> {
        let Some(end) = self.open_buffered()? else {
            return Ok(None);
        };
        self.delivered = true;
        Ok(self.buf.get(RECORD_HEADER_LEN..end))
    }

    /// Opens the buffered record once it is complete, like [`next_record`](Self::next_record),
    /// and hands its plaintext out as shared bytes charged to `budget` when `worth_sharing`
    /// says the plaintext is worth it and the budget has room (the opener then starts its next
    /// record in a fresh buffer); otherwise it lends the plaintext as `next_record` does and
    /// keeps its buffer for the next record.
    pub fn next_record_shared(
        &mut self,
        budget: &Arc<PinBudget>,
        worth_sharing: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Option<Opened<'_>>, RecordError> {
        let Some(end) = self.open_buffered()? else {
            return Ok(None);
        };
        if !worth_sharing(self.buf.get(RECORD_HEADER_LEN..end).unwrap_or_default()) {
            self.delivered = true;
            return Ok(self.buf.get(RECORD_HEADER_LEN..end).map(Opened::Lent));
        }
        let buf = std::mem::take(&mut self.buf);
        match share(buf, budget) {
            Ok(record) => {
                self.need = 0;
                Ok(Some(Opened::Shared(record.slice(RECORD_HEADER_LEN..end))))
            }
            Err(buf) => {
                self.buf = buf;
                self.delivered = true;
                Ok(self.buf.get(RECORD_HEADER_LEN..end).map(Opened::Lent))
            }
        }
    }

    /// Decrypts the buffered record in place once it is complete; returns the end of its
    /// plaintext in `buf`.
    fn open_buffered(&mut self) -> Result<Option<usize>, RecordError> {
        if self.dead {
            return Err(RecordError::Dead);
        }
        self.clear_delivered();
        if self.need == 0 || self.buf.len() < self.need {
            return Ok(None);
        }
        let Some(counter) = self.counter else {
            return Err(self.fail(RecordError::CounterExhausted));
        };
        let mut header = [0u8; RECORD_HEADER_LEN];
        header.copy_from_slice(self.buf.get(..RECORD_HEADER_LEN).unwrap_or(&[0; 4]));
        let opened = match self.buf.get_mut(RECORD_HEADER_LEN..) {
            Some(body) => self
                .key
                .open_in_place(nonce_for(counter), Aad::from(header), body)
                .map(|p| p.len())
                .map_err(|_| RecordError::BadTag),
            None => Err(RecordError::BadTag),
        };
        let plain_len = match opened {
            Ok(n) => n,
            Err(e) => return Err(self.fail(e)),
        };
        self.counter = counter.checked_add(1);
        Ok(Some(RECORD_HEADER_LEN + plain_len))
    }

    /// Opens a record that lies whole at the start of `buf`, decrypting it where it lies.
    ///
    /// Returns `Ok(None)` when `buf` does not start with a complete record, or when part of a
    /// record is already buffered inside the opener (use [`feed`](Self::feed) then). With a
    /// `BytesMut` receive buffer this yields plaintexts that can be frozen and handed to
    /// `Mux::handle_record_bytes` without a copy.
    pub fn open_in_place(&mut self, buf: &mut [u8]) -> Result<Option<InPlaceRecord>, RecordError> {
        if self.dead {
            return Err(RecordError::Dead);
        }
        self.clear_delivered();
        if !self.buf.is_empty() {
            return Ok(None);
        }
        let Some(head) = buf.get(..RECORD_HEADER_LEN) else {
            return Ok(None);
        };
        let mut header = [0u8; RECORD_HEADER_LEN];
        header.copy_from_slice(head);
        let body_len = match check_header(header) {
            Ok(b) => b,
            Err(e) => return Err(self.fail(e)),
        };
        let total = RECORD_HEADER_LEN + body_len;
        let Some(body) = buf.get_mut(RECORD_HEADER_LEN..total) else {
            return Ok(None);
        };
        let Some(counter) = self.counter else {
            return Err(self.fail(RecordError::CounterExhausted));
        };
        let plain_len = match self
            .key
            .open_in_place(nonce_for(counter), Aad::from(header), body)
        {
            Ok(p) => p.len(),
            Err(_) => return Err(self.fail(RecordError::BadTag)),
        };
        self.counter = counter.checked_add(1);
        Ok(Some(InPlaceRecord {
            consumed: total,
            plaintext: RECORD_HEADER_LEN..RECORD_HEADER_LEN + plain_len,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];

    fn open_all(opener: &mut RecordOpener, mut input: &[u8]) -> Result<Vec<Vec<u8>>, RecordError> {
        let mut out = Vec::new();
        loop {
            let n = opener.feed(input)?;
            input = &input[n..];
            let mut got = false;
            while let Some(p) = opener.next_record()? {
                out.push(p.to_vec());
                got = true;
            }
            if n == 0 && !got {
                return Ok(out);
            }
        }
    }

    #[test]
    fn constants() {
        assert_eq!(MAX_RECORD_BODY, 65552);
        assert_eq!(MAX_RECORD_LEN, 65556);
        assert_eq!(MIN_RECORD_BODY, 17);
    }

    #[test]
    fn seal_open_round_trip_streamed_byte_by_byte() {
        let mut s = RecordSealer::new(&KEY);
        let mut wire = Vec::new();
        s.seal(b"hello", &mut wire).unwrap();
        s.seal(&[9u8; MAX_RECORD_PLAINTEXT], &mut wire).unwrap();
        assert_eq!(wire.len(), 5 + 20 + MAX_RECORD_LEN);
        assert_eq!(&wire[..4], &21u32.to_be_bytes());
        let mut o = RecordOpener::new(&KEY);
        let mut got = Vec::new();
        for b in &wire {
            assert_eq!(o.feed(std::slice::from_ref(b)).unwrap(), 1);
            if let Some(p) = o.next_record().unwrap() {
                got.push(p.to_vec());
            }
        }
        assert_eq!(
            got,
            vec![b"hello".to_vec(), vec![9u8; MAX_RECORD_PLAINTEXT]]
        );
    }

    #[test]
    fn golden_nonce_layout() {
        // The nonce is 4 zero bytes then the big-endian counter: record 1 opens only with a
        // key schedule that agrees on that layout.
        let mut s = RecordSealer::with_counter(&KEY, 0x0102_0304_0506_0708);
        let mut wire = Vec::new();
        s.seal(b"x", &mut wire).unwrap();
        let key = make_key(&KEY);
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut body = wire[4..].to_vec();
        let header: [u8; 4] = wire[..4].try_into().unwrap();
        let p = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut body,
            )
            .unwrap();
        assert_eq!(p, b"x");
    }

    #[test]
    fn in_place_open_and_mixing_with_feed() {
        let mut s = RecordSealer::new(&KEY);
        let mut wire = Vec::new();
        for i in 0..4u8 {
            s.seal(&[i; 100], &mut wire).unwrap();
        }
        let mut o = RecordOpener::new(&KEY);
        let rec = o.open_in_place(&mut wire[..]).unwrap().unwrap();
        assert_eq!(rec.consumed, 120);
        assert_eq!(&wire[rec.plaintext.clone()], &[0u8; 100]);
        // Feed half of record 1, then in-place refuses until the opener's record is done.
        let n = o.feed(&wire[120..120 + 50]).unwrap();
        assert_eq!(n, 50);
        assert_eq!(o.open_in_place(&mut wire[240..]).unwrap(), None);
        assert_eq!(o.feed(&wire[170..]).unwrap(), 70);
        assert_eq!(o.next_record().unwrap().unwrap(), &[1u8; 100]);
        let rec = o.open_in_place(&mut wire[240..]).unwrap().unwrap();
        assert_eq!(&wire[240..][rec.plaintext], &[2u8; 100]);
        // Incomplete record in the caller buffer: None, nothing consumed.
        assert_eq!(o.open_in_place(&mut wire[360..390]).unwrap(), None);
        let rec = o.open_in_place(&mut wire[360..]).unwrap().unwrap();
        assert_eq!(rec.consumed, 120);
    }

    #[test]
    fn begin_finish_seals_in_place() {
        let mut s = RecordSealer::new(&KEY);
        let mut out = vec![0xAA; 3];
        let start = s.begin(&mut out);
        out.extend_from_slice(b"frames");
        s.finish(&mut out, start).unwrap();
        let mut o = RecordOpener::new(&KEY);
        assert_eq!(
            open_all(&mut o, &out[3..]).unwrap(),
            vec![b"frames".to_vec()]
        );
        let start = s.begin(&mut out);
        assert_eq!(s.finish(&mut out, start), Err(RecordError::EmptyPlaintext));
        let past = out.len() + 1;
        assert_eq!(s.finish(&mut out, past), Err(RecordError::BadStart));
    }

    #[test]
    fn bad_lengths_rejected_before_buffering() {
        for declared in [0u32, 1, 16, 65553, u32::MAX] {
            let mut o = RecordOpener::new(&KEY);
            assert_eq!(
                o.feed(&declared.to_be_bytes()),
                Err(RecordError::BadLength(declared))
            );
            assert!(o.is_dead());
            assert_eq!(o.feed(&[0]), Err(RecordError::Dead));
            assert_eq!(o.next_record(), Err(RecordError::Dead));
            let mut o = RecordOpener::new(&KEY);
            let mut b = declared.to_be_bytes().to_vec();
            assert!(o.open_in_place(&mut b).is_err());
        }
    }

    #[test]
    fn oversize_and_empty_plaintext_refused() {
        let mut s = RecordSealer::new(&KEY);
        let mut out = Vec::new();
        assert_eq!(s.seal(&[], &mut out), Err(RecordError::EmptyPlaintext));
        assert_eq!(
            s.seal(&vec![0; MAX_RECORD_PLAINTEXT + 1], &mut out),
            Err(RecordError::PlaintextTooLarge(MAX_RECORD_PLAINTEXT + 1))
        );
    }

    #[test]
    fn every_flipped_bit_fails() {
        let mut s = RecordSealer::new(&KEY);
        let mut wire = Vec::new();
        s.seal(b"abcdefgh", &mut wire).unwrap();
        for bit in 0..wire.len() * 8 {
            let mut bad = wire.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            // Pad with zeros so a header flip that grows the length still completes a record.
            bad.extend_from_slice(&vec![0u8; MAX_RECORD_LEN]);
            let mut o = RecordOpener::new(&KEY);
            let r = open_all(&mut o, &bad);
            assert!(r.is_err(), "bit {bit} flipped still opened: {r:?}");
        }
    }

    #[test]
    fn replay_and_reorder_fail() {
        let mut s = RecordSealer::new(&KEY);
        let mut a = Vec::new();
        let mut b = Vec::new();
        s.seal(b"one", &mut a).unwrap();
        s.seal(b"two", &mut b).unwrap();
        let mut o = RecordOpener::new(&KEY);
        assert_eq!(open_all(&mut o, &b), Err(RecordError::BadTag));
        let mut o = RecordOpener::new(&KEY);
        assert_eq!(open_all(&mut o, &a).unwrap().len(), 1);
        assert_eq!(open_all(&mut o, &a), Err(RecordError::BadTag));
    }

    #[test]
    fn counter_exhaustion() {
        let mut s = RecordSealer::with_counter(&KEY, u64::MAX);
        let mut out = Vec::new();
        s.seal(b"last", &mut out).unwrap();
        assert_eq!(
            s.seal(b"more", &mut Vec::new()),
            Err(RecordError::CounterExhausted)
        );
        let mut o = RecordOpener::with_counter(&KEY, u64::MAX);
        assert_eq!(open_all(&mut o, &out).unwrap(), vec![b"last".to_vec()]);
        let mut s2 = RecordSealer::with_counter(&KEY, u64::MAX);
        let mut again = Vec::new();
        s2.seal(b"x", &mut again).unwrap();
        assert_eq!(open_all(&mut o, &again), Err(RecordError::CounterExhausted));
    }

    #[test]
    fn wrong_key_fails() {
        let mut s = RecordSealer::new(&[1u8; 32]);
        let mut out = Vec::new();
        s.seal(b"x", &mut out).unwrap();
        let mut o = RecordOpener::new(&[2u8; 32]);
        assert_eq!(open_all(&mut o, &out), Err(RecordError::BadTag));
    }

    proptest::proptest! {
        #[test]
        fn opener_never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..8)) {
            let mut o = RecordOpener::new(&KEY);
            for c in &chunks {
                let mut c = c.clone();
                let _ = o.open_in_place(&mut c);
                let _ = open_all(&mut o, &c);
            }
        }

        #[test]
        fn round_trip_any_split(
            msgs in proptest::collection::vec(
                proptest::collection::vec(proptest::num::u8::ANY, 1..2000), 1..6),
            split in 1usize..500,
        ) {
            let mut s = RecordSealer::new(&KEY);
            let mut wire = Vec::new();
            for m in &msgs {
                s.seal(m, &mut wire).unwrap();
            }
            let mut o = RecordOpener::new(&KEY);
            let mut got = Vec::new();
            for piece in wire.chunks(split) {
                got.extend(open_all(&mut o, piece).unwrap());
            }
            proptest::prop_assert_eq!(got, msgs);
        }
    }
}

#[cfg(test)]
mod shared {
    use super::*;

    const KEY: [u8; 32] = [9u8; 32];

    fn sealed(plaintexts: &[&[u8]]) -> Vec<u8> {
        let mut s = RecordSealer::new(&KEY);
        let mut out = Vec::new();
        for p in plaintexts {
            s.seal(p, &mut out).unwrap();
        }
        out
    }

    /// Feeds `wire` `step` bytes at a time; returns every record as (shared?, plaintext).
    fn open_shared(
        o: &mut RecordOpener,
        wire: &[u8],
        step: usize,
        budget: &Arc<PinBudget>,
    ) -> Vec<(bool, bytes::Bytes)> {
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            let mut rest = piece;
            loop {
                let used = o.feed(rest).unwrap();
                rest = &rest[used..];
                while let Some(r) = o.next_record_shared(budget, |_| true).unwrap() {
                    out.push(match r {
                        Opened::Shared(b) => (true, b),
                        Opened::Lent(p) => (false, bytes::Bytes::copy_from_slice(p)),
                    });
                }
                if rest.is_empty() {
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn shared_plaintexts_outlive_the_next_record_and_are_charged() {
        let a = vec![1u8; 3000];
        let b = vec![2u8; 5000];
        let wire = sealed(&[&a, &b, b"third"]);
        for step in [1, 3, 4, 7, 4096, wire.len()] {
            let budget = PinBudget::new(1 << 20);
            let mut o = RecordOpener::new(&KEY);
            let got = open_shared(&mut o, &wire, step, &budget);
            assert_eq!(got.len(), 3, "step {step}");
            assert!(got.iter().all(|(shared, _)| *shared), "step {step}");
            assert_eq!(&got[0].1[..], &a[..]);
            assert_eq!(&got[1].1[..], &b[..]);
            assert_eq!(&got[2].1[..], b"third");
            // Each record keeps its own buffer, sized to the record (header and tag included).
            let want = [a.len(), b.len(), 5]
                .iter()
                .map(|n| n + RECORD_HEADER_LEN + RECORD_TAG_LEN)
                .sum::<usize>();
            assert!(
                budget.held() >= want,
                "step {step}: {} < {want}",
                budget.held()
            );
            assert!(
                budget.held() <= want + 3 * 8,
                "step {step}: {} sized once",
                budget.held()
            );
            drop(got);
            assert_eq!(budget.held(), 0);
        }
    }

    #[test]
    fn a_spent_budget_lends_until_slices_are_dropped() {
        let wire = sealed(&[&[1u8; 1000], &[2u8; 1000], &[3u8; 1000]]);
        let budget = PinBudget::new(1500);
        let mut o = RecordOpener::new(&KEY);
        let got = open_shared(&mut o, &wire, wire.len(), &budget);
        let shared: Vec<bool> = got.iter().map(|(s, _)| *s).collect();
        // The first record fits; the second would pass 1,500 bytes while the first is held,
        // and the third is opened after the second was lent (the first still held).
        assert_eq!(shared, [true, false, false]);
        for (i, (_, p)) in got.iter().enumerate() {
            assert!(p.iter().all(|&x| usize::from(x) == i + 1) && p.len() == 1000);
        }
        drop(got);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_bad_header_in_a_fresh_buffer_fails_before_any_allocation_for_it() {
        let budget = PinBudget::new(1 << 20);
        let mut o = RecordOpener::new(&KEY);
        let got = open_shared(&mut o, &sealed(&[b"one"]), 64, &budget);
        assert_eq!(got.len(), 1);
        let bad = (MAX_RECORD_BODY as u32 + 1).to_be_bytes();
        assert_eq!(
            o.feed(&bad),
            Err(RecordError::BadLength(MAX_RECORD_BODY as u32 + 1))
        );
        assert!(o.is_dead());
    }

    #[test]
    fn a_record_not_worth_sharing_is_lent_and_its_buffer_kept_for_the_next() {
        let wire = sealed(&[&[1u8; 4000], &[2u8; 3000], b"shared"]);
        let budget = PinBudget::new(1 << 20);
        let mut o = RecordOpener::new(&KEY);
        let mut rest = &wire[..];
        let mut seen = Vec::new();
        let mut first_buffer = None;
        while seen.len() < 3 {
            let used = o.feed(rest).unwrap();
            rest = &rest[used..];
            let share = seen.len() == 2;
            while let Some(r) = o.next_record_shared(&budget, |_| share).unwrap() {
                match r {
                    Opened::Lent(p) => {
                        assert!(!share);
                        seen.push(p.to_vec());
                        // The one buffer serves both lent records.
                        let at = o.buf.as_ptr() as usize;
                        assert_eq!(*first_buffer.get_or_insert(at), at);
                        assert_eq!(budget.held(), 0);
                    }
                    Opened::Shared(b) => {
                        assert!(share);
                        assert!(budget.held() > 0);
                        seen.push(b.to_vec());
                    }
                }
            }
        }
        assert_eq!(seen, [vec![1u8; 4000], vec![2u8; 3000], b"shared".to_vec()]);
        assert_eq!(budget.held(), 0);
    }
}

#[cfg(test)]
mod vectors {
    //! Golden vectors published in docs/PROTOCOL.md (checked there against an independent
    //! AES-GCM and HKDF implementation).
    use super::*;

    /// Two records under key 00 01 .. 1f: a PING(1) frame (counter 0) and CLOSE("bye")
    /// (counter 1).
    const RECORDS_HEX: &str = "0000001c0abcb5d6b52c83bd08a8a9346acd0dfe0df545cc2f39a8279c28882400\
        00001712d6bfff268d55741a2f00d90fdc58d5eeb33e42da7544";

    /// HKDF-SHA256(ikm = 32 x 0x11, salt = 32 x 0x22, info = RINGWIRE_NATIVE_V1_RECORD_KEYS),
    /// 64 bytes.
    const OKM_HEX: &str = "f3de5eddb17593c3d6325bc242c57bde6c3db861b9b2d6947bd56611340dcb3a\
        86c251ffe0c413b652eff527b610f70714d11a5e80080f12b8afcb91fe6e4020";

    #[test]
    fn golden_records() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let mut s = RecordSealer::new(&key);
        let mut out = Vec::new();
        s.seal(&[4, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1], &mut out)
            .unwrap();
        s.seal(b"\x07\x00\x00\x03bye", &mut out).unwrap();
        assert_eq!(hex::encode(&out), RECORDS_HEX);
        let mut o = RecordOpener::new(&key);
        let mut wire = hex::decode(RECORDS_HEX).unwrap();
        let r = o.open_in_place(&mut wire).unwrap().unwrap();
        assert_eq!(&wire[r.plaintext], &[4, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn golden_key_derivation() {
        // The derivation SecretConnection performs for `native_keys()`.
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&[0x22u8; 32]), &[0x11u8; 32]);
        let mut okm = [0u8; 64];
        hk.expand(b"RINGWIRE_NATIVE_V1_RECORD_KEYS", &mut okm)
            .unwrap();
        assert_eq!(hex::encode(okm), OKM_HEX);
    }
}
