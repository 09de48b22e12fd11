//! [`ByChannel`]: one value per channel id, indexed by the `u8` id itself. It has 256 entries,
//! so an id a peer sends can never index out of bounds, and the code that looks channels up
//! needs no fallible lookup.

use std::ops::{Index, IndexMut};

/// A table with one `T` for each of the 256 channel ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ByChannel<T>([T; 256]);

impl<T: Copy> ByChannel<T> {
    /// Every entry set to `value`.
    pub(crate) fn new(value: T) -> Self {
        ByChannel([value; 256])
    }
}

impl<T> Index<u8> for ByChannel<T> {
    type Output = T;

    fn index(&self, id: u8) -> &T {
        #[allow(clippy::indexing_slicing, reason = "256 entries, indexed by a u8")]
        &self.0[usize::from(id)]
    }
}

impl<T> IndexMut<u8> for ByChannel<T> {
    fn index_mut(&mut self, id: u8) -> &mut T {
        #[allow(clippy::indexing_slicing, reason = "256 entries, indexed by a u8")]
        &mut self.0[usize::from(id)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_has_its_own_entry() {
        let mut t = ByChannel::new(0u16);
        for id in 0..=u8::MAX {
            t[id] = u16::from(id) + 1;
        }
        assert!((0..=u8::MAX).all(|id| t[id] == u16::from(id) + 1));
    }
}
