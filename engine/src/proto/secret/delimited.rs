//! Incremental reader for one uvarint-length-delimited protobuf message, bounded by a fixed
//! buffer.
//!
//! Stock CometBFT reads handshake messages with a delimited reader that accepts any uvarint
//! Go's `binary.ReadUvarint` accepts (up to 10 bytes, non-minimal encodings included) and a body
//! of up to 1 MiB. This reader accepts the same length encodings but a body of at most `N` bytes,
//! checked before a single body byte is stored; the buffer is a fixed array, so a declared
//! length never causes an allocation.

/// Why a length-delimited message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DelimitError {
    /// The uvarint length prefix is longer than 10 bytes or overflows 64 bits.
    LengthOverflow,
    /// The declared body length is over the reader's capacity.
    TooLong,
}

/// Reads one delimited message of at most `N` body bytes.
pub(crate) struct DelimitedReader<const N: usize> {
    /// Length decoded so far.
    len_acc: u64,
    /// Number of length-prefix bytes seen.
    len_bytes: u32,
    /// The body length, once the prefix is complete.
    body_len: Option<usize>,
    body: [u8; N],
    filled: usize,
}

/// Most bytes a uvarint for a `u64` may take.
const MAX_VARINT_LEN: u32 = 10;

impl<const N: usize> DelimitedReader<N> {
    /// An empty reader.
    pub(crate) fn new() -> Self {
        Self {
            len_acc: 0,
            len_bytes: 0,
            body_len: None,
            body: [0u8; N],
            filled: 0,
        }
    }

    /// Feeds `input`; returns how many bytes were consumed (never past the end of the message)
    /// and whether the message is complete.
    pub(crate) fn push(&mut self, input: &[u8]) -> Result<(usize, bool), DelimitError> {
        let mut used = 0;
        let body_len = loop {
            if let Some(len) = self.body_len {
                break len;
            }
            let Some(&b) = input.get(used) else {
                return Ok((used, false));
            };
            used += 1;
            self.push_len_byte(b)?;
        };
        let rest = input.get(used..).unwrap_or_default();
        let want = body_len.saturating_sub(self.filled);
        let take = want.min(rest.len());
        let (src, _) = rest.split_at(take);
        let dst = self
            .body
            .get_mut(self.filled..self.filled + take)
            .ok_or(DelimitError::TooLong)?;
        dst.copy_from_slice(src);
        self.filled += take;
        used += take;
        Ok((used, self.filled == body_len))
    }

    /// Consumes one byte of the uvarint prefix (Go `binary.ReadUvarint` rules).
    fn push_len_byte(&mut self, b: u8) -> Result<(), DelimitError> {
        let shift = 7 * self.len_bytes;
        if b < 0x80 {
            // The tenth byte may only carry the single top bit of a u64.
            if self.len_bytes == MAX_VARINT_LEN - 1 && b > 1 {
                return Err(DelimitError::LengthOverflow);
            }
            let len = self.len_acc | (u64::from(b) << shift);
            if len > N as u64 {
                return Err(DelimitError::TooLong);
            }
            self.body_len = Some(len as usize);
            return Ok(());
        }
        self.len_acc |= u64::from(b & 0x7f) << shift;
        self.len_bytes += 1;
        if self.len_bytes >= MAX_VARINT_LEN {
            return Err(DelimitError::LengthOverflow);
        }
        Ok(())
    }

    /// The message body, once [`push`](Self::push) reported completion.
    pub(crate) fn body(&self) -> &[u8] {
        self.body.get(..self.filled).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_minimal_prefix_in_pieces() {
        let mut r = DelimitedReader::<8>::new();
        assert_eq!(r.push(&[3, 1]).unwrap(), (2, false));
        assert_eq!(r.push(&[2, 3, 9, 9]).unwrap(), (2, true));
        assert_eq!(r.body(), &[1, 2, 3]);
    }

    #[test]
    fn accepts_non_minimal_prefix_and_empty_body() {
        let mut r = DelimitedReader::<8>::new();
        assert_eq!(r.push(&[0x82, 0x80, 0x00, 7, 8]).unwrap(), (5, true));
        assert_eq!(r.body(), &[7, 8]);
        let mut r = DelimitedReader::<8>::new();
        assert_eq!(r.push(&[0, 1]).unwrap(), (1, true));
        assert_eq!(r.body(), &[] as &[u8]);
    }

    #[test]
    fn rejects_long_declared_length_before_body() {
        let mut r = DelimitedReader::<8>::new();
        assert_eq!(r.push(&[9]).unwrap_err(), DelimitError::TooLong);
        let mut r = DelimitedReader::<8>::new();
        assert_eq!(r.push(&[0x80, 0x01]).unwrap_err(), DelimitError::TooLong);
        let mut r = DelimitedReader::<8>::new();
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(r.push(&huge).unwrap_err(), DelimitError::TooLong);
    }

    #[test]
    fn rejects_overflowing_prefix() {
        let mut r = DelimitedReader::<8>::new();
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(r.push(&over).unwrap_err(), DelimitError::LengthOverflow);
        let mut r = DelimitedReader::<8>::new();
        assert_eq!(
            r.push(&[0x80; 11]).unwrap_err(),
            DelimitError::LengthOverflow
        );
        // Ten zero-valued continuation groups then a terminator that fits are still 11 bytes.
        let mut r = DelimitedReader::<8>::new();
        let mut long = [0x80u8; 10].to_vec();
        long.push(0);
        assert_eq!(r.push(&long).unwrap_err(), DelimitError::LengthOverflow);
    }
}
