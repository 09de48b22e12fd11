//! Reconnect backoff: jittered exponential delays with a hard cap.
//!
//! The policy is documented on [`BackoffConfig`].

use std::time::Duration;

use super::ConfigError;

/// Backoff settings (TOML section `[p2p.backoff]`).
///
/// The delay before retry number `attempt` (counting from 0) is
/// `min(base · factor^attempt, max_delay)`, then shortened by a random fraction of at most
/// `jitter`: it is drawn from `[d · (1 − jitter), d]`. Jitter only ever shortens a delay, so
/// `max_delay` is a hard bound on how long a reachable persistent peer stays disconnected,
/// and peers that lost each other at the same moment (a partition healing) spread their
/// reconnects over the jitter window instead of arriving as one storm.
///
/// The jitter is a pure function of a seed and the attempt number: the same seed gives the
/// same schedule, which makes tests and simulations reproducible. Give each peer its own seed
/// ([`seed_for`]) so that peers do not retry in lockstep.
///
/// [`Retry`] is the per-peer state: it counts consecutive failures, returns the next delay, is
/// reset by a success, and gives up after [`BackoffConfig::max_attempts`] unless the peer is
/// persistent (persistent peers are retried forever, at most `max_delay` apart).
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first retry. Default 1 s.
    pub base: Duration,
    /// Growth of the delay per consecutive failure; at least 1. Default 2.
    pub factor: f64,
    /// Upper bound on any delay, jitter included. Default 30 s.
    pub max_delay: Duration,
    /// Fraction of each delay that is random, from 0 (none) to 1: the delay is drawn from
    /// `[d · (1 − jitter), d]`. Default 0.2.
    pub jitter: f64,
    /// Consecutive failures after which a peer that is not persistent is given up.
    /// Persistent peers are retried forever. Default 5.
    pub max_attempts: u32,
    /// How long a connection must stay up before its end resets the failure count. A peer that
    /// accepts and then drops us at once keeps backing off instead of being redialled at `base`
    /// every time. Default 10 s.
    pub stable_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: 0.2,
            max_attempts: 5,
            stable_after: Duration::from_secs(10),
        }
    }
}

impl BackoffConfig {
    /// Checks the settings; [`BackoffConfig::delay`] also clamps bad values, so this exists to
    /// report them to the operator.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.base.is_zero() {
            return Err(ConfigError::Invalid(
                "backoff.base must be greater than zero",
            ));
        }
        if !self.factor.is_finite() || self.factor < 1.0 {
            return Err(ConfigError::Invalid(
                "backoff.factor must be a finite number of at least 1",
            ));
        }
        if self.max_delay < self.base {
            return Err(ConfigError::Invalid(
                "backoff.max_delay must be at least backoff.base",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::Invalid(
                "backoff.jitter must be between 0 and 1",
            ));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "backoff.max_attempts must be at least 1",
            ));
        }
        Ok(())
    }

    /// The delay before retry number `attempt` (0 for the first retry) for a peer with jitter
    /// seed `seed`. Never more than `max_delay`; never panics, whatever the settings.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let max = self.max_delay.as_secs_f64();
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        // Past 2^10 attempts the exponent changes nothing but the risk of overflow.
        let exponent = i32::try_from(attempt.min(1024)).unwrap_or(1024);
        let grown = self.base.as_secs_f64() * factor.powi(exponent);
        let capped = if grown.is_finite() {
            grown.min(max)
        } else {
            max
        };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let secs = capped * (1.0 - jitter * unit(mix(seed, u64::from(attempt))));
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// A per-peer jitter seed derived from a node-wide seed and the peer's identity bytes.
pub fn seed_for(node_seed: u64, peer: &[u8]) -> u64 {
    peer.chunks(8)
        .fold(mix(node_seed, 0x7065_6572), |acc, chunk| {
            let mut word = [0u8; 8];
            for (dst, src) in word.iter_mut().zip(chunk) {
                *dst = *src;
            }
            mix(acc, u64::from_le_bytes(word))
        })
}

/// SplitMix64's finaliser over `seed` and `value`: a well-mixed 64-bit hash.
pub(crate) fn mix(seed: u64, value: u64) -> u64 {
    let mut z = seed ^ value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 64 random bits to `[0, 1)`.
fn unit(bits: u64) -> f64 {
    // 53 bits fit an f64 mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// One peer's retry state: consecutive failures and whether it is ever given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    seed: u64,
    failures: u32,
    persistent: bool,
}

impl Retry {
    /// Fresh state for a peer with jitter seed `seed` (see [`seed_for`]).
    pub fn new(seed: u64, persistent: bool) -> Self {
        Self {
            seed,
            failures: 0,
            persistent,
        }
    }

    /// Records a failure and returns how long to wait before the next try, or `None` when a
    /// non-persistent peer has used up its `max_attempts`.
    pub fn next_delay(&mut self, config: &BackoffConfig) -> Option<Duration> {
        let attempt = self.failures;
        self.failures = self.failures.saturating_add(1);
        if !self.persistent && self.failures >= config.max_attempts.max(1) {
            return None;
        }
        Some(config.delay(attempt, self.seed))
    }

    /// Records a success: the next failure waits `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether this peer is retried forever.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Makes the peer persistent (retried forever) or not.
    pub fn set_persistent(&mut self, persistent: bool) {
        self.persistent = persistent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        }
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = BackoffConfig::default();
        c.validate().unwrap();
        assert_eq!(c.base, Duration::from_secs(1));
        assert_eq!(c.max_delay, Duration::from_secs(30));
    }

    #[test]
    fn grows_exponentially_then_caps() {
        let c = no_jitter();
        let secs: Vec<u64> = (0..8).map(|a| c.delay(a, 7).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(c.delay(u32::MAX, 7), c.max_delay);
    }

    #[test]
    fn jitter_shortens_within_the_fraction_and_is_seeded() {
        let c = BackoffConfig::default();
        for attempt in 0..40 {
            let full = no_jitter().delay(attempt, 0);
            let d = c.delay(attempt, 99);
            assert!(d <= full && d >= full.mul_f64(0.8) - Duration::from_nanos(1));
            assert_eq!(d, c.delay(attempt, 99), "same seed, same delay");
        }
        let a: Vec<_> = (0..10).map(|n| c.delay(n, 1)).collect();
        let b: Vec<_> = (0..10).map(|n| c.delay(n, 2)).collect();
        assert_ne!(a, b, "different seeds spread retries");
    }

    #[test]
    fn jitter_spreads_a_herd() {
        // 1000 peers that failed at once: their first retries cover most of the window.
        let c = BackoffConfig::default();
        let delays: Vec<Duration> = (0..1000u64)
            .map(|p| c.delay(5, seed_for(42, &p.to_le_bytes())))
            .collect();
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(*max - *min > Duration::from_secs(5), "{min:?}..{max:?}");
    }

    #[test]
    fn validate_names_the_bad_field() {
        let bad = |f: fn(&mut BackoffConfig)| {
            let mut c = BackoffConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.base = Duration::ZERO).contains("backoff.base"));
        assert!(bad(|c| c.factor = 0.5).contains("backoff.factor"));
        assert!(bad(|c| c.factor = f64::NAN).contains("backoff.factor"));
        assert!(bad(|c| c.max_delay = Duration::from_millis(1)).contains("backoff.max_delay"));
        assert!(bad(|c| c.jitter = 1.5).contains("backoff.jitter"));
        assert!(bad(|c| c.max_attempts = 0).contains("backoff.max_attempts"));
    }

    #[test]
    fn retry_gives_up_unless_persistent() {
        let c = BackoffConfig::default();
        let mut transient = Retry::new(1, false);
        let delays: Vec<_> = (0..6).map(|_| transient.next_delay(&c)).collect();
        assert!(delays[..4].iter().all(Option::is_some));
        assert_eq!(delays[4], None, "fifth failure gives up");

        let mut persistent = Retry::new(1, true);
        for _ in 0..10_000 {
            let d = persistent.next_delay(&c).unwrap();
            assert!(d <= c.max_delay);
        }
        assert_eq!(persistent.failures(), 10_000);
    }

    #[test]
    fn reset_starts_over() {
        let c = no_jitter();
        let mut r = Retry::new(3, true);
        assert_eq!(r.next_delay(&c), Some(Duration::from_secs(1)));
        assert_eq!(r.next_delay(&c), Some(Duration::from_secs(2)));
        r.reset();
        assert_eq!(r.failures(), 0);
        assert_eq!(r.next_delay(&c), Some(Duration::from_secs(1)));
    }

    proptest! {
        #[test]
        fn delay_never_panics_and_respects_the_cap(
            base_ms in 0u64..10_000_000,
            factor in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -10.0f64..1e6],
            max_ms in 0u64..10_000_000,
            jitter in prop_oneof![Just(f64::NAN), -2.0f64..3.0],
            attempt in any::<u32>(),
            seed in any::<u64>(),
        ) {
            let c = BackoffConfig {
                base: Duration::from_millis(base_ms),
                factor,
                max_delay: Duration::from_millis(max_ms),
                jitter,
                ..BackoffConfig::default()
            };
            prop_assert!(c.delay(attempt, seed) <= c.max_delay);
        }

        #[test]
        fn delays_never_shrink_without_jitter(seed in any::<u64>(), attempt in 0u32..200) {
            let c = no_jitter();
            prop_assert!(c.delay(attempt, seed) <= c.delay(attempt + 1, seed));
        }
    }
}
