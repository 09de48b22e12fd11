//! The handshake rate per address: a token bucket for each address (or IPv6 prefix) that
//! started handshakes lately, in a bounded map.
//!
//! Each bucket is kept as the instant it will be full again (the generic cell rate
//! algorithm): one `Instant` per address, exact integer arithmetic, and a bucket that is full
//! is the same as no bucket at all, so it is forgotten at no cost.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::ConfigError;

/// How many handshakes one address may start: a token bucket that holds `burst` tokens and
/// earns one back every `interval`. Starting a handshake takes a token; with none left the
/// socket is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeRate {
    /// Time to earn one token back (`1 / handshake_rate_per_ip` seconds). Greater than zero.
    pub interval: Duration,
    /// Tokens an address holds when it has been idle (`handshake_burst_per_ip`): how many
    /// handshakes it may start at once. At least 1.
    pub burst: u32,
}

impl HandshakeRate {
    /// `per_second` handshakes per second (a positive, finite number), at most `burst` at once.
    /// A rate too small to express (one in more than 2^64 seconds) becomes the smallest one
    /// that is.
    pub fn per_second(per_second: f64, burst: u32) -> Result<Self, ConfigError> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(ConfigError::Invalid(
                "the handshake rate must be a positive number per second",
            ));
        }
        let interval = Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(Duration::MAX);
        let rate = Self { interval, burst };
        rate.validate()?;
        Ok(rate)
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::Invalid(
                "the handshake rate's interval must be greater than zero",
            ));
        }
        if self.burst == 0 {
            return Err(ConfigError::Invalid(
                "the handshake burst must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The buckets of the addresses that started handshakes lately.
///
/// Bounded by `capacity`: a full bucket is dropped as soon as it is seen (it means nothing),
/// and when every place holds a bucket that is not full, a new address takes the place of the
/// fullest one (the address that has been quiet longest), which then starts again with a full
/// bucket. An attacker therefore needs more than `capacity` addresses (IPv6 prefixes) in
/// flight to win back a burst early, and one that has them gets a burst per fresh address
/// anyway.
#[derive(Debug)]
pub(super) struct RateBuckets {
    rate: Option<HandshakeRate>,
    capacity: usize,
    /// When each address's bucket is full again.
    full_at: HashMap<IpAddr, Instant>,
    /// The same, ordered by that instant: the first is the fullest bucket.
    by_full_at: BTreeSet<(Instant, IpAddr)>,
}

impl RateBuckets {
    /// Buckets for `rate` (`None`: no limit), for at most `capacity` addresses at once.
    pub(super) fn new(rate: Option<HandshakeRate>, capacity: usize) -> Self {
        Self {
            rate,
            capacity: capacity.max(1),
            full_at: HashMap::new(),
            by_full_at: BTreeSet::new(),
        }
    }

    /// Takes a token from `key`'s bucket at `now`; `false` (and no change) when it has none.
    pub(super) fn try_take(&mut self, key: IpAddr, now: Instant) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        self.forget_full(now);
        let full_at = self.full_at.get(&key).copied();
        // How far the bucket is from full, in time; a token costs one more interval, and the
        // bucket holds `burst` of them.
        let behind = full_at.map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let tolerance = rate.interval.saturating_mul(rate.burst);
        let Some(after) = behind.checked_add(rate.interval) else {
            return false;
        };
        if after > tolerance {
            return false;
        }
        let Some(new_full_at) = now.checked_add(after) else {
            return false;
        };
        match full_at {
            Some(old) => {
                self.by_full_at.remove(&(old, key));
            }
            None => {
                if self.full_at.len() >= self.capacity
                    && let Some((_, fullest)) = self.by_full_at.pop_first()
                {
                    self.full_at.remove(&fullest);
                }
            }
        }
        self.full_at.insert(key, new_full_at);
        self.by_full_at.insert((new_full_at, key));
        true
    }

    /// Drops the buckets that are full at `now`.
    fn forget_full(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.by_full_at.first() {
            if at > now {
                break;
            }
            self.by_full_at.remove(&(at, key));
            self.full_at.remove(&key);
        }
    }

    /// Addresses with a bucket that is not full.
    pub(super) fn len(&self) -> usize {
        self.full_at.len()
    }
}
