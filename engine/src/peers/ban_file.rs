//! The bans file (`bans.json` beside the address book), sans-IO: the bans in force as JSON and
//! back. The node writes it atomically whenever its bans change and reads it at start, so a
//! ban outlives a restart.
//!
//! Format, a ringwire file that stock CometBFT never reads:
//!
//! ```json
//! {"ids":[{"id":"<40 hex digits>","until":1767225600}],
//!  "ips":[{"ip":"203.0.113.7","until":1767225600}]}
//! ```
//!
//! `until` is the end of the ban in seconds since the Unix epoch (wall-clock time, as
//! monotonic instants mean nothing to the next process). Reading drops bans that have ended,
//! entries that do not parse, and entries beyond [`MAX_FILE_BANS`] per list; a file that is
//! not this JSON at all is an error.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::proto::secret::NodeId;

/// Most entries read from each list of the file.
pub const MAX_FILE_BANS: usize = 16 * 1024;

/// The file's name, in the directory of the address book.
pub const BANS_FILE_NAME: &str = "bans.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileBans {
    #[serde(default)]
    ids: Vec<IdBan>,
    #[serde(default)]
    ips: Vec<IpBan>,
}

#[derive(Debug, Serialize, Deserialize)]
struct IdBan {
    id: String,
    until: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct IpBan {
    ip: String,
    until: u64,
}

/// Bans in force, by node ID and by address, each with its end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bans {
    /// Banned node IDs.
    pub ids: Vec<(NodeId, Instant)>,
    /// Banned addresses.
    pub ips: Vec<(IpAddr, Instant)>,
}

/// The clocks that relate monotonic instants to wall-clock time: the same moment read from
/// both.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// The monotonic clock.
    pub instant: Instant,
    /// The wall clock.
    pub wall: SystemTime,
}

impl Now {
    fn to_unix(self, t: Instant) -> u64 {
        let wall = self.wall + t.saturating_duration_since(self.instant);
        wall.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().saturating_add(1))
    }

    fn to_instant(self, unix: u64) -> Option<Instant> {
        let wall = UNIX_EPOCH.checked_add(Duration::from_secs(unix))?;
        let left = wall.duration_since(self.wall).ok()?;
        if left.is_zero() {
            return None;
        }
        self.instant.checked_add(left)
    }
}

impl Bans {
    /// The file's bytes for these bans.
    pub fn to_json(&self, now: Now) -> Vec<u8> {
        let file = FileBans {
            ids: self
                .ids
                .iter()
                .map(|(id, until)| IdBan {
                    id: id.to_string(),
                    until: now.to_unix(*until),
                })
                .collect(),
            ips: self
                .ips
                .iter()
                .map(|(ip, until)| IpBan {
                    ip: ip.to_string(),
                    until: now.to_unix(*until),
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&file).unwrap_or_default()
    }

    /// The bans in force at `now` read from the file's bytes, and how many entries were left
    /// out (ended, unparsable, or beyond [`MAX_FILE_BANS`]).
    pub fn from_json(bytes: &[u8], now: Now) -> Result<(Bans, usize), serde_json::Error> {
        let file: FileBans = serde_json::from_slice(bytes)?;
        let total = file.ids.len().saturating_add(file.ips.len());
        let ids: Vec<(NodeId, Instant)> = file
            .ids
            .iter()
            .take(MAX_FILE_BANS)
            .filter_map(|b| Some((b.id.parse().ok()?, now.to_instant(b.until)?)))
            .collect();
        let ips: Vec<(IpAddr, Instant)> = file
            .ips
            .iter()
            .take(MAX_FILE_BANS)
            .filter_map(|b| Some((b.ip.parse().ok()?, now.to_instant(b.until)?)))
            .collect();
        let kept = ids.len().saturating_add(ips.len());
        Ok((Bans { ids, ips }, total.saturating_sub(kept)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_drops_ended_and_bad_entries() {
        let now = Now {
            instant: Instant::now(),
            wall: SystemTime::now(),
        };
        let hour = Duration::from_secs(3600);
        let bans = Bans {
            ids: vec![(NodeId([7; 20]), now.instant + hour)],
            ips: vec![("203.0.113.7".parse().unwrap(), now.instant + 2 * hour)],
        };
        let bytes = bans.to_json(now);
        // Read back an hour and a half later by another process.
        let later = Now {
            instant: Instant::now(),
            wall: now.wall + hour / 2,
        };
        let (read, left_out) = Bans::from_json(&bytes, later).unwrap();
        assert_eq!(left_out, 0);
        assert_eq!(read.ids.len(), 1);
        assert_eq!(read.ids[0].0, NodeId([7; 20]));
        let left = read.ids[0].1.saturating_duration_since(later.instant);
        assert!(
            left > hour / 2 - Duration::from_secs(2) && left <= hour / 2 + Duration::from_secs(2)
        );
        assert_eq!(read.ips.len(), 1);
        // Once the ID's ban ended it is dropped; garbage entries are dropped too.
        let much_later = Now {
            instant: Instant::now(),
            wall: now.wall + hour + hour / 2,
        };
        let (read, left_out) = Bans::from_json(&bytes, much_later).unwrap();
        assert_eq!((read.ids.len(), read.ips.len(), left_out), (0, 1, 1));
        let junk = br#"{"ids":[{"id":"zz","until":99999999999}],"ips":[{"ip":"x","until":1}]}"#;
        let (read, left_out) = Bans::from_json(junk, now).unwrap();
        assert_eq!((read, left_out), (Bans::default(), 2));
        assert!(Bans::from_json(b"[1,2", now).is_err());
        assert_eq!(Bans::from_json(b"{}", now).unwrap().0, Bans::default());
    }
}
