//! The channels a connection's peer shares, kept inline in the connection's state.
//!
//! A broadcast asks every connection of the shard whether its peer shares the channel; read
//! from the peer's registry entry, that answer costs two cache misses per peer (the entry and
//! its channel list), which at a thousand peers is a large part of a broadcast's cost.

/// A set of channel ids (all 256 fit).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelSet([u64; 4]);

impl ChannelSet {
    /// The set of `channels`.
    pub(crate) fn of(channels: impl IntoIterator<Item = u8>) -> Self {
        let mut set = ChannelSet::default();
        for c in channels {
            set.0[usize::from(c >> 6)] |= 1 << (c & 63);
        }
        set
    }

    /// Whether `channel` is in the set.
    pub(crate) fn contains(&self, channel: u8) -> bool {
        self.0[usize::from(channel >> 6)] & (1 << (channel & 63)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::ChannelSet;

    #[test]
    fn holds_exactly_the_channels_it_was_made_of() {
        let set = ChannelSet::of([0, 63, 64, 0x40, 200, 255]);
        for c in 0..=255u8 {
            assert_eq!(
                set.contains(c),
                [0, 63, 64, 200, 255].contains(&c),
                "channel {c}"
            );
        }
        assert!(!ChannelSet::default().contains(0));
    }
}
