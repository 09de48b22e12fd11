//! Durations as text: `"10s"`, `"100ms"`, `"1m30s"`, `"1.5s"`.
//!
//! The syntax is Go's `time.ParseDuration`, which CometBFT's `config.toml` uses: one or more
//! `<decimal><unit>` parts with units `ns`, `us` (or `µs`/`μs`), `ms`, `s`, `m`, `h`, and a bare
//! `"0"`. Spaces between parts are allowed (`"1m 30s"`). Negative durations are refused, and
//! values beyond Go's range (about 292 years) are refused rather than wrapped.
//!
//! [`format()`] writes the shortest exact form (`"1m30s"`, `"1.5s"`, `"250ms"`), which both this
//! parser and Go's accept.

use std::fmt::Write as _;
use std::time::Duration;

/// Why a duration string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration (write e.g. \"10s\" or \"100ms\")")]
    Empty,
    /// A leading minus sign.
    #[error("duration must not be negative")]
    Negative,
    /// A part has no number, or the number is malformed.
    #[error("invalid duration {0:?} (write e.g. \"10s\", \"1m30s\" or \"100ms\")")]
    Syntax(String),
    /// A part has a unit other than ns, us, µs, ms, s, m, h.
    #[error("unknown unit {unit:?} in duration {text:?} (use ns, us, ms, s, m or h)")]
    Unit {
        /// The unit as written.
        unit: String,
        /// The whole duration as written.
        text: String,
    },
    /// The value exceeds Go's duration range.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Go's largest duration, in nanoseconds (`math.MaxInt64`).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Go-style duration string.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let s = match s.strip_prefix('+') {
        Some(rest) => rest,
        None if s.starts_with('-') => {
            // Go accepts "-0"; a negative zero is still zero.
            return match parse(&s[1..]) {
                Ok(d) if d.is_zero() => Ok(d),
                _ => Err(DurationError::Negative),
            };
        }
        None => s,
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let syntax = || DurationError::Syntax(text.to_owned());
    let overflow = || DurationError::Overflow(text.to_owned());
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(syntax());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.' || c.is_whitespace())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(syntax()),
            other => {
                return Err(DurationError::Unit {
                    unit: other.to_owned(),
                    text: text.to_owned(),
                });
            }
        };
        let mut whole: u128 = 0;
        for b in int_part.bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u128::from(b - b'0')))
                .filter(|w| *w <= MAX_NANOS)
                .ok_or_else(overflow)?;
        }
        // Digits past the 20th cannot change the result by a nanosecond (an hour is 3.6e12 ns).
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        for b in frac_part.bytes().take(20) {
            frac = frac * 10 + u128::from(b - b'0');
            scale *= 10;
        }
        let part = whole
            .checked_mul(nanos_per_unit)
            .and_then(|p| p.checked_add(frac * nanos_per_unit / scale))
            .ok_or_else(overflow)?;
        total = total
            .checked_add(part)
            .filter(|t| *t <= MAX_NANOS)
            .ok_or_else(overflow)?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| overflow())?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| overflow())?;
    Ok(Duration::new(secs, nanos))
}

/// Writes `d` in the shortest exact form [`parse`] reads back: `"0s"`, `"250ms"`, `"1.5s"`,
/// `"1m30s"`, `"2h"`.
pub fn format(d: Duration) -> String {
    let mut out = String::new();
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 {
        let (value, unit) = match nanos {
            0 => return "0s".to_owned(),
            n if n < 1_000 => (u64::from(n), "ns"),
            n if n < 1_000_000 => (u64::from(n), "us"),
            n => (u64::from(n), "ms"),
        };
        let divisor = match unit {
            "ns" => 1,
            "us" => 1_000,
            _ => 1_000_000,
        };
        write_decimal(&mut out, value / divisor, value % divisor, divisor);
        out.push_str(unit);
        return out;
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || nanos > 0 {
        write_decimal(&mut out, s, u64::from(nanos), 1_000_000_000);
        out.push('s');
    }
    out
}

/// Writes `whole.fraction` where `fraction < divisor` and `divisor` is a power of ten, without
/// trailing zeros.
fn write_decimal(out: &mut String, whole: u64, fraction: u64, divisor: u64) {
    let _ = write!(out, "{whole}");
    if fraction > 0 {
        let width = divisor.ilog10() as usize;
        let digits = format!("{fraction:0width$}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Serde support for a [`Duration`] field written as text.
pub(crate) mod serde_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as text.
    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Reads a duration from text.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("-0"), Ok(Duration::ZERO));
        assert_eq!(parse("100ms"), Ok(ms(100)));
        assert_eq!(parse("3s"), Ok(ms(3000)));
        assert_eq!(parse("1m0s"), Ok(ms(60_000)));
        assert_eq!(parse("1h0m0s"), Ok(ms(3_600_000)));
        assert_eq!(parse("1.5s"), Ok(ms(1500)));
        assert_eq!(parse(".5s"), Ok(ms(500)));
        assert_eq!(parse("1.s"), Ok(ms(1000)));
        assert_eq!(parse("1m 30s"), Ok(ms(90_000)));
        assert_eq!(parse("+2h"), Ok(ms(7_200_000)));
        assert_eq!(parse("300us"), Ok(Duration::from_micros(300)));
        assert_eq!(parse("300µs"), Ok(Duration::from_micros(300)));
        assert_eq!(parse("300μs"), Ok(Duration::from_micros(300)));
        assert_eq!(parse("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse("1.000000001s"), Ok(Duration::new(1, 1)));
        assert_eq!(
            parse("0.3333333333333333333333h"),
            Ok(Duration::new(1199, 999_999_999))
        );
    }

    #[test]
    fn refuses_bad_forms() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("  "), Err(DurationError::Empty));
        assert_eq!(parse("-1s"), Err(DurationError::Negative));
        for bad in ["10", "s", ".s", "1..5s", "1s2", "abc", "1 s", "--1s"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(parse("10d"), Err(DurationError::Unit { .. })));
        assert!(matches!(parse("10sec"), Err(DurationError::Unit { .. })));
        assert!(matches!(parse("2562048h"), Err(DurationError::Overflow(_))));
        assert!(matches!(
            parse("99999999999999999999999999999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
        assert_eq!(parse("2562047h"), Ok(Duration::from_secs(2_562_047 * 3600)));
    }

    #[test]
    fn formats_shortest_exact_form() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(ms(10)), "10ms");
        assert_eq!(format(ms(1500)), "1.5s");
        assert_eq!(format(ms(90_000)), "1m30s");
        assert_eq!(format(ms(3_600_000)), "1h");
        assert_eq!(format(ms(3_605_000)), "1h5s");
        assert_eq!(format(Duration::from_secs(86_400)), "24h");
        assert_eq!(format(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format(Duration::from_nanos(1500)), "1.5us");
        assert_eq!(format(Duration::from_nanos(7)), "7ns");
        assert_eq!(format(Duration::new(1, 1)), "1.000000001s");
    }

    #[test]
    fn format_then_parse_is_identity() {
        let samples = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999_999_999),
            Duration::new(59, 123_456_789),
            Duration::new(3661, 5),
            Duration::from_secs(2_562_047 * 3600),
        ];
        for d in samples {
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
    }
}
