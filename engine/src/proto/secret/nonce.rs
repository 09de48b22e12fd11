//! The per-direction nonce sequence of SecretConnection frames.
//!
//! A nonce is 12 bytes: four zero bytes, then a little-endian `u64` counter that starts at 0 and
//! grows by one per frame. Stock CometBFT uses every counter value up to and including
//! `u64::MAX` and ends the session when it would have to wrap; so does this counter — it never
//! wraps, it reports exhaustion instead.

use ring::aead::Nonce;

use super::SecretError;

/// Counter for one direction's nonces.
#[derive(Debug, Clone)]
pub(crate) struct NonceCounter {
    /// The next counter value to use; `None` once `u64::MAX` has been used.
    next: Option<u64>,
}

impl NonceCounter {
    /// A counter starting at 0.
    pub(crate) fn new() -> Self {
        Self { next: Some(0) }
    }

    /// How many more nonces can be handed out, saturating at `u64::MAX`.
    pub(crate) fn remaining(&self) -> u64 {
        match self.next {
            // `u64::MAX - n + 1` values remain; saturate the single case that does not fit.
            Some(n) => (u64::MAX - n).saturating_add(1),
            None => 0,
        }
    }

    /// Takes the next nonce, or fails when the counter is used up.
    pub(crate) fn take(&mut self) -> Result<Nonce, SecretError> {
        let n = self.next.ok_or(SecretError::NonceExhausted)?;
        self.next = n.checked_add(1);
        Ok(nonce_bytes(n))
    }

    /// The next counter value that [`take`](Self::take) will use.
    pub(crate) fn peek(&self) -> Option<u64> {
        self.next
    }

    /// Sets the next counter value (tests only, to reach the end of the sequence).
    #[cfg(test)]
    pub(crate) fn set(&mut self, next: u64) {
        self.next = Some(next);
    }
}

/// The 12-byte nonce for counter value `n`.
fn nonce_bytes(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    let (_, counter) = bytes.split_at_mut(4);
    counter.copy_from_slice(&n.to_le_bytes());
    Nonce::assume_unique_for_key(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_zero_prefix_then_le_counter() {
        let n = nonce_bytes(0x0102_0304_0506_0708);
        assert_eq!(
            n.as_ref(),
            &[0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1],
            "nonce layout"
        );
    }

    #[test]
    fn counts_up_and_ends_after_max() {
        let mut c = NonceCounter::new();
        assert_eq!(c.remaining(), u64::MAX);
        assert_eq!(c.take().unwrap().as_ref()[4..], 0u64.to_le_bytes());
        assert_eq!(c.take().unwrap().as_ref()[4..], 1u64.to_le_bytes());
        assert_eq!(c.peek(), Some(2));
        c.set(u64::MAX - 1);
        assert_eq!(c.remaining(), 2);
        c.take().unwrap();
        let last = c.take().unwrap();
        assert_eq!(last.as_ref()[4..], u64::MAX.to_le_bytes());
        assert_eq!(c.remaining(), 0);
        assert!(matches!(c.take(), Err(SecretError::NonceExhausted)));
        assert!(matches!(c.take(), Err(SecretError::NonceExhausted)));
    }
}
