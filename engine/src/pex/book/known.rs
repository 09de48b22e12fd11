//! What the book knows of one address: stock's `knownAddress` (`p2p/pex/known_address.go`) —
//! where it came from, which buckets hold it, and how dialing it went — on the monotonic clock.

use std::time::{Duration, Instant};

use super::super::{BookCapabilities, PexAddr};

/// A minute: an address attempted this recently is never bad.
const RECENTLY_TRIED: Duration = Duration::from_secs(60);
/// Stock's `numMissingDays`: an address not attempted (or added) for a week is bad.
const MISSING: Duration = Duration::from_secs(7 * 24 * 3600);
/// Stock's `numRetries`: attempts without any success after which an address is bad.
const RETRIES: u32 = 3;
/// Stock's `maxFailures`: attempts after which an address without a success in the last
/// [`MIN_BAD`] is bad.
const MAX_FAILURES: u32 = 10;
/// Stock's `minBadDays`.
const MIN_BAD: Duration = Duration::from_secs(7 * 24 * 3600);

/// One address of the book.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Known {
    /// The address.
    pub(super) addr: PexAddr,
    /// Who told this node of it: another peer (hearsay), this node itself (an address it added
    /// on its own), or the node at the address (an announcement: `src.id == addr.id`).
    pub(super) src: PexAddr,
    /// The new buckets holding it (one to four), or its one tried bucket.
    pub(super) buckets: Vec<usize>,
    /// In the tried table (stock's `bucket_type` 2), else in the new table (1).
    pub(super) tried: bool,
    /// Dial attempts since the last success.
    pub(super) attempts: u32,
    /// The last dial attempt, or when the address was added (as stock); `None`: never (the
    /// file's zero time).
    pub(super) last_attempt: Option<Instant>,
    /// The last success (a connection that proved the address); `None`: never.
    pub(super) last_success: Option<Instant>,
    /// Order of arrival in this book, to tell apart addresses of equal times.
    pub(super) seq: u64,
    /// What is known of the node's capabilities (ringwire only; the file keeps it in a field
    /// of its own).
    pub(super) caps: Option<BookCapabilities>,
}

impl Known {
    /// An address just learned from `src`, at `now`.
    pub(super) fn new(addr: PexAddr, src: PexAddr, now: Instant, seq: u64) -> Self {
        Known {
            addr,
            src,
            buckets: Vec::new(),
            tried: false,
            attempts: 0,
            last_attempt: Some(now),
            last_success: None,
            seq,
            caps: None,
        }
    }

    /// Whether the node at the address told this node of it itself — its NodeInfo listen
    /// address when it connected, or (once) its own entry in its list: the source is the node.
    /// The file keeps sources, so this survives a restart without a field of its own.
    pub(super) fn announced(&self) -> bool {
        self.src.id == self.addr.id
    }

    /// Stock's `isBad`: a new address is worthless, when it was not attempted in the last
    /// minute, if it was not attempted (or added) for a week, failed three times without ever
    /// succeeding, or failed ten times without a success in the last week. Tried addresses
    /// are never bad.
    pub(super) fn is_bad(&self, now: Instant) -> bool {
        if self.tried {
            return false;
        }
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        let attempted = since(self.last_attempt);
        if attempted.is_some_and(|d| d < RECENTLY_TRIED) {
            return false;
        }
        if attempted.is_none_or(|d| d > MISSING) {
            return true;
        }
        let succeeded = since(self.last_success);
        if succeeded.is_none() && self.attempts >= RETRIES {
            return true;
        }
        succeeded.is_none_or(|d| d > MIN_BAD) && self.attempts >= MAX_FAILURES
    }

    /// The eviction order within a bucket: bad addresses first, then the least recently
    /// attempted (or added), then the earliest arrived.
    pub(super) fn eviction_rank(&self, now: Instant) -> (bool, Option<Instant>, u64) {
        (!self.is_bad(now), self.last_attempt, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::proto::secret::NodeId;

    fn known(now: Instant) -> Known {
        let a = PexAddr {
            id: NodeId([1; 20]),
            ip: IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
            port: 26656,
        };
        let src = PexAddr {
            id: NodeId([2; 20]),
            ..a
        };
        Known::new(a, src, now, 0)
    }

    #[test]
    fn is_bad_follows_stock() {
        let t0 = Instant::now();
        let day = Duration::from_secs(24 * 3600);
        let k = known(t0);
        assert!(!k.announced());
        assert!(!k.is_bad(t0), "fresh");
        assert!(!k.is_bad(t0 + 6 * day), "six days unattempted");
        assert!(k.is_bad(t0 + 8 * day), "missing for over a week");
        // Three failures and never a success: bad once the last attempt is a minute old.
        let mut failed = known(t0);
        failed.attempts = 3;
        assert!(
            !failed.is_bad(t0 + Duration::from_secs(30)),
            "attempted in the last minute"
        );
        assert!(failed.is_bad(t0 + Duration::from_secs(61)));
        failed.attempts = 2;
        assert!(!failed.is_bad(t0 + Duration::from_secs(61)));
        // With an old success, ten failures make it bad, nine do not.
        let t = t0 + 10 * day;
        let mut flaky = known(t);
        flaky.last_success = Some(t0);
        flaky.attempts = 9;
        assert!(!flaky.is_bad(t + Duration::from_secs(120)));
        flaky.attempts = 10;
        assert!(flaky.is_bad(t + Duration::from_secs(120)));
        flaky.last_success = Some(t);
        assert!(
            !flaky.is_bad(t + Duration::from_secs(120)),
            "succeeded lately"
        );
        // Never attempted (a zero time in the file) is as old as can be.
        let mut never = known(t0);
        never.last_attempt = None;
        assert!(never.is_bad(t0));
        // Tried addresses are never bad.
        never.tried = true;
        assert!(!never.is_bad(t0 + 100 * day));
        // Bad ones rank first for eviction, then the least recently attempted.
        let now = t0 + 2 * day;
        let older = known(t0);
        let fresh = known(t0 + day);
        let mut bad = known(now - Duration::from_secs(120));
        bad.attempts = 3;
        assert!(bad.is_bad(now) && !older.is_bad(now));
        assert!(bad.eviction_rank(now) < older.eviction_rank(now));
        assert!(older.eviction_rank(now) < fresh.eviction_rank(now));
    }
}
