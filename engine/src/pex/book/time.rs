//! Times in the address book file. The book keeps monotonic [`Instant`]s; the file, as stock's,
//! keeps wall-clock times in RFC 3339 (Go's `time.Time` in JSON), with Go's zero time
//! `0001-01-01T00:00:00Z` for "never". [`Clocks`] pairs the two clocks read at one moment, so
//! a time moves between them as "this long before (or after) now" and a clock step between
//! runs shifts the file's times, never the book's timeouts.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i128 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// A wall-clock time: nanoseconds since the Unix epoch (negative before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Wall(i128);

impl Wall {
    /// Go's zero `time.Time`, `0001-01-01T00:00:00Z`: "never" in the file.
    pub(super) const ZERO: Wall = Wall(-62_135_596_800 * NANOS_PER_SEC);
    /// The latest time written: `9999-12-31T23:59:59.999999999Z`.
    const MAX: Wall = Wall(253_402_300_800 * NANOS_PER_SEC - 1);

    /// The wall-clock time `t`.
    pub(super) fn from_system(t: SystemTime) -> Wall {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Wall(d.as_nanos() as i128),
            Err(e) => Wall(-(e.duration().as_nanos() as i128)),
        }
    }

    /// RFC 3339 in UTC as Go writes it: `2006-01-02T15:04:05.999999999Z`, trailing zeros of the
    /// fraction left out (and the fraction, when zero). Times outside years 1 to 9999 are
    /// written as the nearest of them.
    pub(super) fn format(self) -> String {
        let ns = self.0.clamp(Self::ZERO.0, Self::MAX.0);
        let secs = ns.div_euclid(NANOS_PER_SEC) as i64;
        let frac = ns.rem_euclid(NANOS_PER_SEC) as u32;
        let (days, rem) = (secs.div_euclid(SECS_PER_DAY), secs.rem_euclid(SECS_PER_DAY));
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
        let mut out = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
        if frac > 0 {
            let digits = format!("{frac:09}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        out.push('Z');
        out
    }

    /// Parses RFC 3339 — `YYYY-MM-DDTHH:MM:SS`, an optional fraction (digits beyond the ninth
    /// are ignored), then `Z` or an offset `±HH:MM` — as Go's `time.Time` reads JSON.
    pub(super) fn parse(text: &str) -> Option<Wall> {
        let b = text.as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let digits = b.get(from..from + len)?;
            digits.iter().try_fold(0i64, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
            })
        };
        let sep = |at: usize, want: u8| b.get(at).is_some_and(|&c| c == want);
        if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
            return None;
        }
        let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
        let (hh, mi, ss) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
            return None;
        }
        if hh > 23 || mi > 59 || ss > 59 {
            return None;
        }
        let mut at = 19;
        let mut frac: i128 = 0;
        if sep(at, b'.') {
            at += 1;
            let start = at;
            let mut scale = NANOS_PER_SEC;
            while let Some(&c) = b.get(at).filter(|c| c.is_ascii_digit()) {
                if scale > 1 {
                    scale /= 10;
                    frac += i128::from(c - b'0') * scale;
                }
                at += 1;
            }
            if at == start {
                return None;
            }
        }
        let offset = match b.get(at..)? {
            b"Z" => 0,
            [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest.get(2) == Some(&b':') => {
                let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let off = oh * 3600 + om * 60;
                if *sign == b'-' { -off } else { off }
            }
            _ => return None,
        };
        let secs = days_from_civil(y, mo, d) * SECS_PER_DAY + hh * 3600 + mi * 60 + ss - offset;
        Some(Wall(i128::from(secs) * NANOS_PER_SEC + frac))
    }
}

/// The monotonic clock and the wall clock read at one moment.
#[derive(Clone, Copy, Debug)]
pub(in crate::pex) struct Clocks {
    /// The monotonic time.
    pub(super) now: Instant,
    /// The wall-clock time at `now`.
    pub(super) wall: Wall,
}

impl Clocks {
    /// `now` and the wall-clock time `wall` read with it.
    pub(in crate::pex) fn new(now: Instant, wall: SystemTime) -> Self {
        Clocks {
            now,
            wall: Wall::from_system(wall),
        }
    }

    /// The wall-clock time of `t` (`None`: [`Wall::ZERO`]).
    pub(super) fn wall_of(&self, t: Option<Instant>) -> Wall {
        let Some(t) = t else {
            return Wall::ZERO;
        };
        let ns = match t.checked_duration_since(self.now) {
            Some(after) => self.wall.0 + after.as_nanos() as i128,
            None => self.wall.0 - self.now.duration_since(t).as_nanos() as i128,
        };
        Wall(ns)
    }

    /// The monotonic time of `w`: `None` for [`Wall::ZERO`] or a time so long ago the
    /// monotonic clock cannot express it. A time after now stays in the future (a ban's end);
    /// `past_only` moves it to now instead (an attempt cannot lie ahead).
    pub(super) fn instant_of(&self, w: Wall, past_only: bool) -> Option<Instant> {
        if w == Wall::ZERO {
            return None;
        }
        let delta = self.wall.0 - w.0;
        if delta >= 0 {
            self.now.checked_sub(nanos(delta))
        } else if past_only {
            Some(self.now)
        } else {
            self.now.checked_add(nanos(-delta))
        }
    }
}

/// A non-negative count of nanoseconds as a duration (saturating).
fn nanos(ns: i128) -> Duration {
    let secs = u64::try_from(ns / NANOS_PER_SEC).unwrap_or(u64::MAX);
    Duration::new(secs, (ns % NANOS_PER_SEC) as u32)
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (eras of 400 years,
/// years counted from March so the leap day comes last).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Wall {
        Wall::parse(text).unwrap_or_else(|| panic!("{text} did not parse"))
    }

    #[test]
    fn go_times_parse_and_format() {
        assert_eq!(w("1970-01-01T00:00:00Z"), Wall(0));
        assert_eq!(w("0001-01-01T00:00:00Z"), Wall::ZERO);
        assert_eq!(Wall::ZERO.format(), "0001-01-01T00:00:00Z");
        // Go's time.Now() in a local zone, with nanoseconds.
        let t = w("2024-02-29T13:45:06.123456789+02:00");
        assert_eq!(t.format(), "2024-02-29T11:45:06.123456789Z");
        assert_eq!(w("2024-02-29T11:45:06.123456789Z"), t);
        assert_eq!(
            w("2024-03-01T00:15:06.5-05:30").format(),
            "2024-03-01T05:45:06.5Z"
        );
        assert_eq!(
            w("2000-12-31T23:59:59.1000Z").format(),
            "2000-12-31T23:59:59.1Z"
        );
        // Digits beyond nanoseconds are ignored.
        assert_eq!(
            w("2024-01-01T00:00:00.1234567891Z").format(),
            "2024-01-01T00:00:00.123456789Z"
        );
        // A known instant: 2009-11-10T23:00:00Z is 1257894000.
        assert_eq!(
            w("2009-11-10T23:00:00Z"),
            Wall(1_257_894_000 * NANOS_PER_SEC)
        );
        for bad in [
            "",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00Zjunk",
            "24-01-01T00:00:00Z",
            "2024-01-01T00:00:00\u{e9}",
        ] {
            assert_eq!(Wall::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_day_round_trips() {
        // Day by day over 1969–2401 (leap centuries included), and the extremes.
        for days in -400..157_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert!(d <= days_in_month(y, m));
        }
        assert_eq!(civil_from_days(days_from_civil(1, 1, 1)), (1, 1, 1));
        assert_eq!(
            civil_from_days(days_from_civil(9999, 12, 31)),
            (9999, 12, 31)
        );
        let far = Wall(i128::MAX / 2);
        assert_eq!(far.format(), "9999-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn clocks_move_times_between_monotonic_and_wall() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = Clocks::new(now, wall);
        let hour = Duration::from_secs(3600);
        let past = c.wall_of(Some(now - hour));
        assert_eq!(past.format(), "2023-11-14T21:13:20Z");
        assert_eq!(c.instant_of(past, true), Some(now - hour));
        let future = c.wall_of(Some(now + hour));
        assert_eq!(c.instant_of(future, false), Some(now + hour));
        assert_eq!(
            c.instant_of(future, true),
            Some(now),
            "attempts cannot lie ahead"
        );
        assert_eq!(c.wall_of(None), Wall::ZERO);
        assert_eq!(c.instant_of(Wall::ZERO, true), None);
        // Read again an hour later (by both clocks): the same instant.
        let later = Clocks::new(now + hour, wall + hour);
        assert_eq!(later.instant_of(past, true), Some(now - hour));
    }
}
