//! Median and spread of repeated measurements, and latency percentiles from hdrhistogram.

use hdrhistogram::Histogram;
use serde::Serialize;

/// A figure over the repetitions of one measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// Median of the repetitions.
    pub median: f64,
    /// Smallest repetition.
    pub min: f64,
    /// Largest repetition.
    pub max: f64,
    /// Every repetition, in the order measured.
    pub values: Vec<f64>,
}

impl Stat {
    /// Summarises `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            values: values.to_vec(),
        })
    }

    /// (max − min) / median, in percent (0 when the median is 0).
    pub fn spread_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median.abs() * 100.0
        }
    }
}

/// A histogram of round-trip times in nanoseconds, 3 significant digits, 1 ns to 100 s.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap_or_else(|_| {
        // The bounds above are valid; fall back to an auto-resizing histogram all the same.
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

/// Records samples (ns) into `h`, clamping to its range.
pub fn record_all(h: &mut Histogram<u64>, samples_ns: &[u64]) {
    for &s in samples_ns {
        let _ = h.record(s.clamp(1, h.high()));
    }
}

/// The value at `quantile` (0..=1) in microseconds.
pub fn quantile_us(h: &Histogram<u64>, quantile: f64) -> f64 {
    h.value_at_quantile(quantile) as f64 / 1000.0
}

/// Points for a percentile curve: (quantile, µs) at quantiles 0.5 … 1 − 10⁻⁵.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    let mut nines = 0.3;
    while nines <= 5.0 + 1e-9 {
        let q = 1.0 - 10f64.powf(-nines);
        points.push((q, quantile_us(h, q)));
        nines += 0.1;
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = Stat::of(&[3.0, 1.0, 2.0]).expect("stat");
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert!((s.spread_pct() - 100.0).abs() < 1e-9);
        let even = Stat::of(&[1.0, 2.0, 3.0, 4.0]).expect("stat");
        assert_eq!(even.median, 2.5);
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn percentiles_from_samples() {
        let mut h = latency_histogram();
        let samples: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        record_all(&mut h, &samples);
        let p50 = quantile_us(&h, 0.5);
        assert!((499.0..=501.0).contains(&p50), "p50 {p50}");
        let curve = percentile_curve(&h);
        assert!(
            curve
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
    }
}
