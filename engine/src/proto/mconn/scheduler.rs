//! Which channel sends the next chunk: stock MConnection's selection rule.
//!
//! Policy, as in stock `selectChannelToGossipOn` and `Channel.updateStats`:
//! - Among channels with something to send, pick the one with the lowest
//!   `recently_sent / priority`, computed in `f32` as stock does; on a tie the channel listed
//!   first wins.
//! - Every packet written adds its full encoded size (length prefix included) to the channel's
//!   `recently_sent`.
//! - Every [`DECAY_PERIOD`] each channel's `recently_sent` is multiplied by [`DECAY_FACTOR`] and
//!   truncated. Time comes from the caller; when several periods passed between calls, each one
//!   is applied.

use std::time::{Duration, Instant};

use super::channel::Channel;

/// How often `recently_sent` decays (stock `updateStats`).
pub const DECAY_PERIOD: Duration = Duration::from_secs(2);

/// The decay factor applied every [`DECAY_PERIOD`].
pub const DECAY_FACTOR: f64 = 0.8;

/// After this many decays any `u64` has reached zero, so longer gaps apply no more.
const MAX_DECAY_STEPS: u128 = 256;

/// One decay step: stock's `int64(float64(recentlySent) * 0.8)`.
pub fn decay(recently_sent: u64) -> u64 {
    (recently_sent as f64 * DECAY_FACTOR) as u64
}

/// Drives the decay clock and picks channels.
#[derive(Debug)]
pub(crate) struct Scheduler {
    next_decay: Instant,
}

impl Scheduler {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            next_decay: now.checked_add(DECAY_PERIOD).unwrap_or(now),
        }
    }

    /// Applies every decay that fell due up to `now`.
    pub(crate) fn advance(&mut self, now: Instant, channels: &mut [Channel]) {
        if now < self.next_decay {
            return;
        }
        let elapsed = now.duration_since(self.next_decay).as_nanos();
        let period = DECAY_PERIOD.as_nanos();
        let steps = (elapsed / period + 1).min(MAX_DECAY_STEPS);
        for ch in channels.iter_mut() {
            for _ in 0..steps {
                if ch.recently_sent == 0 {
                    break;
                }
                ch.recently_sent = decay(ch.recently_sent);
            }
        }
        // The next tick stays on the original two-second grid.
        let into_period = Duration::from_nanos((elapsed % period) as u64);
        self.next_decay = now
            .checked_add(DECAY_PERIOD.saturating_sub(into_period))
            .unwrap_or(now);
    }

    /// Stock `selectChannelToGossipOn`: the index of the pending channel with the lowest
    /// `recently_sent / priority`, or `None` when nothing is pending.
    pub(crate) fn select(channels: &mut [Channel]) -> Option<usize> {
        let mut least_ratio = f32::MAX;
        let mut least = None;
        for (i, ch) in channels.iter_mut().enumerate() {
            if !ch.is_send_pending() {
                continue;
            }
            let ratio = ch.recently_sent as f32 / ch.config.priority as f32;
            if ratio < least_ratio {
                least_ratio = ratio;
                least = Some(i);
            }
        }
        least
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::channel::ChannelConfig;
    use super::*;

    fn chans(priorities: &[u32]) -> Vec<Channel> {
        priorities
            .iter()
            .enumerate()
            .map(|(i, &priority)| {
                Channel::new(
                    ChannelConfig {
                        id: i as u8,
                        priority,
                        send_queue_capacity: 100,
                        recv_message_capacity: 1 << 20,
                    },
                    1024,
                )
            })
            .collect()
    }

    #[test]
    fn constants_match_stock() {
        assert_eq!(DECAY_PERIOD, Duration::from_secs(2));
        assert_eq!(DECAY_FACTOR, 0.8);
        assert_eq!(decay(1000), 800);
        assert_eq!(decay(1), 0);
        assert_eq!(decay(7), 5);
    }

    #[test]
    fn lowest_ratio_wins_and_ties_go_to_the_first() {
        let mut c = chans(&[1, 10, 5]);
        assert_eq!(Scheduler::select(&mut c), None);
        for ch in c.iter_mut() {
            ch.push(Bytes::from_static(b"x")).unwrap();
        }
        // All zero: the first listed wins.
        assert_eq!(Scheduler::select(&mut c), Some(0));
        c[0].recently_sent = 10; // ratio 10
        c[1].recently_sent = 50; // ratio 5
        c[2].recently_sent = 30; // ratio 6
        assert_eq!(Scheduler::select(&mut c), Some(1));
        c[1].recently_sent = 60; // ratio 6, tie with channel 2: channel 1 is listed first
        assert_eq!(Scheduler::select(&mut c), Some(1));
        // A channel with nothing pending is never picked.
        let mut idle = chans(&[1, 1]);
        idle[1].push(Bytes::from_static(b"x")).unwrap();
        idle[1].recently_sent = 1_000_000;
        assert_eq!(Scheduler::select(&mut idle), Some(1));
    }

    #[test]
    fn priorities_share_bandwidth() {
        // Two channels always pending, each packet 100 bytes: priority 3 gets three times the
        // packets of priority 1.
        let mut c = chans(&[1, 3]);
        let mut counts = [0u32; 2];
        for _ in 0..400 {
            for ch in c.iter_mut() {
                if ch.can_send() {
                    ch.push(Bytes::from_static(b"x")).unwrap();
                }
            }
            let i = Scheduler::select(&mut c).unwrap();
            c[i].next_chunk().unwrap();
            c[i].recently_sent += 100;
            counts[i] += 1;
        }
        assert_eq!(counts, [100, 300]);
    }

    #[test]
    fn decay_runs_every_two_seconds_on_a_fixed_grid() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0);
        let mut c = chans(&[1]);
        c[0].recently_sent = 1000;
        s.advance(t0 + Duration::from_millis(1999), &mut c);
        assert_eq!(c[0].recently_sent, 1000);
        s.advance(t0 + Duration::from_secs(2), &mut c);
        assert_eq!(c[0].recently_sent, 800);
        s.advance(t0 + Duration::from_millis(3500), &mut c);
        assert_eq!(c[0].recently_sent, 800);
        // Ticks at 4 s and 6 s have both passed.
        s.advance(t0 + Duration::from_millis(6100), &mut c);
        assert_eq!(c[0].recently_sent, 512);
        s.advance(t0 + Duration::from_millis(7999), &mut c);
        assert_eq!(c[0].recently_sent, 512);
        s.advance(t0 + Duration::from_secs(8), &mut c);
        assert_eq!(c[0].recently_sent, 409);
        // A very long gap terminates quickly and zeroes everything.
        c[0].recently_sent = u64::MAX;
        s.advance(t0 + Duration::from_secs(1_000_000), &mut c);
        assert_eq!(c[0].recently_sent, 0);
    }
}
