//! Which channel sends the next DATA chunk.
//!
//! The stock MConnection rule: among channels with something sendable, pick the one with the
//! lowest `recently_sent / priority`; `recently_sent` grows by the bytes of each chunk sent on
//! the channel and decays by ×0.8 every 2 seconds. Ties go to the channel configured first.
//! Since every pick sends one chunk of at most `max_chunk` bytes, a message queued on a
//! high-priority channel waits behind at most the chunk being written, however large the
//! messages of other channels are. Within a channel, messages go in order, one at a time.
//! Ratios are compared by cross-multiplication in `u128`, so no floating point is involved.

use std::time::{Duration, Instant};

/// How often `recently_sent` decays.
pub(crate) const DECAY_PERIOD: Duration = Duration::from_secs(2);
/// Decay factor numerator (×4/5 = ×0.8).
pub(crate) const DECAY_NUM: u64 = 4;
/// Decay factor denominator.
pub(crate) const DECAY_DEN: u64 = 5;
/// After this many periods without sending any count is zero anyway.
const MAX_DECAY_STEPS: u32 = 200;

#[derive(Debug, Clone, Copy)]
struct Entry {
    priority: u32,
    recently_sent: u64,
}

/// Priority scheduler state, one entry per channel in configuration order.
#[derive(Debug, Clone)]
pub(crate) struct Scheduler {
    entries: Vec<Entry>,
    last_decay: Instant,
}

impl Scheduler {
    /// A scheduler for channels with these priorities (each ≥ 1).
    pub(crate) fn new(priorities: impl Iterator<Item = u32>, now: Instant) -> Self {
        Self {
            entries: priorities
                .map(|p| Entry {
                    priority: p.max(1),
                    recently_sent: 0,
                })
                .collect(),
            last_decay: now,
        }
    }

    /// Applies the decays due by `now`.
    pub(crate) fn decay(&mut self, now: Instant) {
        let mut steps = 0u32;
        while now.saturating_duration_since(self.last_decay) >= DECAY_PERIOD {
            self.last_decay += DECAY_PERIOD;
            steps += 1;
            if steps >= MAX_DECAY_STEPS {
                self.last_decay = now;
                for e in &mut self.entries {
                    e.recently_sent = 0;
                }
                return;
            }
        }
        for _ in 0..steps {
            for e in &mut self.entries {
                e.recently_sent = e.recently_sent / DECAY_DEN * DECAY_NUM
                    + e.recently_sent % DECAY_DEN * DECAY_NUM / DECAY_DEN;
            }
        }
    }

    /// The eligible channel with the lowest `recently_sent / priority`.
    pub(crate) fn pick(&self, mut eligible: impl FnMut(usize) -> bool) -> Option<usize> {
        let mut best: Option<(usize, Entry)> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if !eligible(i) {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, b)) => {
                    u128::from(e.recently_sent) * u128::from(b.priority)
                        < u128::from(b.recently_sent) * u128::from(e.priority)
                }
            };
            if better {
                best = Some((i, *e));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Records `bytes` sent on channel `idx`.
    pub(crate) fn on_sent(&mut self, idx: usize, bytes: usize) {
        if let Some(e) = self.entries.get_mut(idx) {
            e.recently_sent = e.recently_sent.saturating_add(bytes as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_stock() {
        assert_eq!(DECAY_PERIOD, Duration::from_secs(2));
        assert_eq!(DECAY_NUM * 10 / DECAY_DEN, 8);
    }

    #[test]
    fn picks_lowest_ratio_with_ties_to_first() {
        let now = Instant::now();
        let mut s = Scheduler::new([1, 10].into_iter(), now);
        assert_eq!(s.pick(|_| true), Some(0));
        s.on_sent(0, 100);
        assert_eq!(s.pick(|_| true), Some(1));
        s.on_sent(1, 900);
        // 100/1 > 900/10: channel 1 still wins.
        assert_eq!(s.pick(|_| true), Some(1));
        s.on_sent(1, 200);
        assert_eq!(s.pick(|_| true), Some(0));
        assert_eq!(s.pick(|i| i == 1), Some(1));
        assert_eq!(s.pick(|_| false), None);
    }

    #[test]
    fn decays_every_two_seconds() {
        let now = Instant::now();
        let mut s = Scheduler::new([1].into_iter(), now);
        s.on_sent(0, 1000);
        s.decay(now + Duration::from_millis(1999));
        assert_eq!(s.entries[0].recently_sent, 1000);
        s.decay(now + Duration::from_secs(4));
        assert_eq!(s.entries[0].recently_sent, 640);
        s.decay(now + Duration::from_secs(10_000));
        assert_eq!(s.entries[0].recently_sent, 0);
    }
}
