//! The address book as the operator sees it (`ringwire book`): one row per address, banned
//! ones included, with times as ages rather than instants.

use std::time::{Duration, Instant};

use super::super::caps::BookCapabilities;
use super::super::{Pex, PexAddr};
use super::AddrBook;
use super::known::Known;

/// One address of the book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookEntry {
    /// The address.
    pub addr: PexAddr,
    /// Who told this node of it (the node itself when the address was announced by it).
    pub source: PexAddr,
    /// In the tried table (else in the new table).
    pub tried: bool,
    /// How many buckets hold it (one to four new buckets, or its one tried bucket; none while
    /// banned).
    pub buckets: usize,
    /// Dial attempts since its last success.
    pub attempts: u32,
    /// How long ago it was last attempted (or added), if ever.
    pub last_attempt: Option<Duration>,
    /// How long ago it last proved itself by a connection, if ever.
    pub last_success: Option<Duration>,
    /// How long its ban still lasts, if it is banned.
    pub banned_for: Option<Duration>,
    /// What the book knows of the node's capabilities (native PEX answers, or this node's own
    /// handshake with it), if anything.
    pub capabilities: Option<BookCapabilities>,
}

fn row(k: &Known, now: Instant, banned_for: Option<Duration>) -> BookEntry {
    let ago = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
    BookEntry {
        addr: k.addr,
        source: k.src,
        tried: k.tried,
        buckets: if banned_for.is_some() {
            0
        } else {
            k.buckets.len()
        },
        attempts: k.attempts,
        last_attempt: ago(k.last_attempt),
        last_success: ago(k.last_success),
        banned_for,
        capabilities: k.caps.clone(),
    }
}

impl AddrBook {
    /// Every address, tried ones first, then by node ID; the banned ones last.
    fn view(&self, now: Instant) -> Vec<BookEntry> {
        let mut rows: Vec<BookEntry> = self.entries.iter().map(|k| row(k, now, None)).collect();
        rows.sort_unstable_by_key(|r| (!r.tried, r.addr.id));
        let mut banned: Vec<BookEntry> = self
            .bans
            .iter()
            .filter(|b| b.until > now)
            .map(|b| row(&b.known, now, Some(b.until.saturating_duration_since(now))))
            .collect();
        banned.sort_unstable_by_key(|r| r.addr.id);
        rows.extend(banned);
        rows
    }
}

impl Pex {
    /// The address book, row by row, at `now` (see [`BookEntry`]).
    pub fn book_view(&self, now: Instant) -> Vec<BookEntry> {
        self.book.view(now)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::proto::secret::NodeId;

    #[test]
    fn rows_show_tables_attempts_and_bans() {
        let t = Instant::now();
        let mut book = AddrBook::new(100, false, 7);
        let a = |n: u8| PexAddr {
            id: NodeId([n; 20]),
            ip: IpAddr::V4(Ipv4Addr::new(8, 8, n, 1)),
            port: 26656,
        };
        let mut k = Known::new(a(1), a(9), t, 0);
        k.buckets = vec![3, 4];
        k.attempts = 2;
        book.entries.push(k.clone());
        let mut tried = Known::new(a(2), a(2), t, 1);
        tried.tried = true;
        tried.buckets = vec![5];
        tried.last_success = Some(t);
        book.entries.push(tried);
        book.bans
            .ban(Known::new(a(3), a(9), t, 2), t + Duration::from_secs(60));
        let later = t + Duration::from_secs(10);
        let rows = book.view(later);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].addr, a(2), "tried first");
        assert!(rows[0].tried && rows[0].buckets == 1);
        assert_eq!(rows[0].last_success, Some(Duration::from_secs(10)));
        assert_eq!(rows[1].addr, a(1));
        assert_eq!((rows[1].buckets, rows[1].attempts), (2, 2));
        assert_eq!(rows[1].source, a(9));
        assert_eq!(rows[1].last_success, None);
        assert_eq!(rows[2].banned_for, Some(Duration::from_secs(50)));
        assert_eq!(rows[2].buckets, 0);
        // An ended ban is not shown.
        assert_eq!(book.view(t + Duration::from_secs(60)).len(), 2);
    }
}
