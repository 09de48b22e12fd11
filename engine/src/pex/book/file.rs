//! The address book file: stock CometBFT's `addrbook.json` (`p2p/pex/file.go`,
//! `known_address.go`), read and written as bytes (the I/O is `pex::store`'s).
//!
//! ```json
//! {
//!     "key": "<24 hex characters>",
//!     "addrs": [
//!         {
//!             "addr": {"id": "<node ID>", "ip": "1.2.3.4", "port": 26656},
//!             "src": {"id": "<node ID>", "ip": "5.6.7.8", "port": 26656},
//!             "buckets": [17],
//!             "attempts": 0,
//!             "bucket_type": 1,
//!             "last_attempt": "2024-05-01T12:00:00.123456789Z",
//!             "last_success": "0001-01-01T00:00:00Z",
//!             "last_ban_time": "0001-01-01T00:00:00Z"
//!         }
//!     ]
//! }
//! ```
//!
//! A ringwire book adds `"ringwire": {"capabilities": ["archive"], "confirmed": true}` to an
//! entry whose node's capabilities it knows; stock ignores the field.
//!
//! `bucket_type` is 1 for the new table and 2 for the tried table; times are RFC 3339, Go's
//! zero time meaning never. Written as stock writes it (indented with tabs); read as Go reads
//! it: unknown fields are ignored and missing ones are zero. What does not parse as this shape is
//! refused whole; an entry whose address is unusable is left out when the book is built.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::proto::secret::NodeId;

use super::super::PexAddr;

/// Bucket type of the new table in the file.
pub(super) const BUCKET_TYPE_NEW: i64 = 1;
/// Bucket type of the tried table in the file.
pub(super) const BUCKET_TYPE_TRIED: i64 = 2;

/// The contents of an address book file (`[p2p] addr_book_file`, stock's `addrbook.json`):
/// the book's random key and every address with its buckets, attempts and times. A node
/// reads it at start and writes it every two minutes and at shutdown; see
/// [`crate::pex::PexConfig::book_file`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrBookFile {
    #[serde(default)]
    pub(super) key: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(super) addrs: Vec<FileEntry>,
}

/// Why bytes are not an address book file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BookFormatError(String);

/// One address as the file holds it (stock's `knownAddress`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FileEntry {
    #[serde(default)]
    pub(super) addr: Option<FileAddr>,
    #[serde(default)]
    pub(super) src: Option<FileAddr>,
    #[serde(default)]
    pub(super) buckets: Option<Vec<i64>>,
    #[serde(default)]
    pub(super) attempts: i64,
    #[serde(default)]
    pub(super) bucket_type: i64,
    #[serde(default)]
    pub(super) last_attempt: Option<String>,
    #[serde(default)]
    pub(super) last_success: Option<String>,
    #[serde(default)]
    pub(super) last_ban_time: Option<String>,
    /// ringwire's own: the node's capabilities. Stock's reader ignores the field (Go's
    /// `encoding/json` skips unknown fields) and drops it when it writes the book.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ringwire: Option<FileRingwire>,
}

/// ringwire's extra field of an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FileRingwire {
    /// The capabilities of the node at the address.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(super) capabilities: Vec<String>,
    /// Seen in this node's own handshake with it (else hearsay from a peer's PEX answer).
    #[serde(default)]
    pub(super) confirmed: bool,
}

/// Stock's `NetAddress` in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FileAddr {
    #[serde(default)]
    pub(super) id: String,
    #[serde(default)]
    pub(super) ip: String,
    #[serde(default)]
    pub(super) port: i64,
}

impl FileAddr {
    /// The file form of `a`.
    pub(super) fn from_addr(a: &PexAddr) -> Self {
        FileAddr {
            id: a.id.to_string(),
            ip: a.ip.to_string(),
            port: i64::from(a.port),
        }
    }

    /// The address, if the ID is 40 hex characters, the IP parses and the port is 1 to 65535.
    pub(super) fn to_addr(&self) -> Option<PexAddr> {
        self.to_src().filter(|a| a.port != 0)
    }

    /// The address as a source, which may have port 0 (a source whose address is unknown is
    /// written as `0.0.0.0:0`).
    pub(super) fn to_src(&self) -> Option<PexAddr> {
        let id: NodeId = self.id.parse().ok()?;
        let ip: IpAddr = self.ip.parse().ok()?;
        let port = u16::try_from(self.port).ok()?;
        Some(PexAddr { id, ip, port })
    }
}

/// `null` (Go's nil slice) reads as empty.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl AddrBookFile {
    /// Parses the bytes of an address book file (stock's or ringwire's).
    pub fn from_json(bytes: &[u8]) -> Result<Self, BookFormatError> {
        // An object, as Go reads it (serde would also take a list of the fields).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(BookFormatError("not a JSON object".to_owned()));
        }
        serde_json::from_slice(bytes).map_err(|e| BookFormatError(e.to_string()))
    }

    /// The file's bytes, tab-indented JSON as stock writes it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        // Strings, numbers and lists only: serialising cannot fail.
        if self.serialize(&mut ser).is_err() {
            out.clear();
        }
        out
    }

    /// The book's random key (it decides the buckets of every address).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Entries in the file.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether the file holds no entry.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The usable addresses of the file, in its order (entries whose ID, IP or port does not
    /// parse are left out).
    pub fn addresses(&self) -> Vec<PexAddr> {
        self.addrs
            .iter()
            .filter_map(|e| e.addr.as_ref()?.to_addr())
            .collect()
    }

    /// The usable addresses of the tried table (`bucket_type` 2).
    pub fn tried(&self) -> Vec<PexAddr> {
        self.addrs
            .iter()
            .filter(|e| e.bucket_type == BUCKET_TYPE_TRIED)
            .filter_map(|e| e.addr.as_ref()?.to_addr())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_errors_are_refused_and_go_leniencies_kept() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"key\": 5}",
            b"{\"addrs\": {}}",
            b"{\"addrs\": [{\"attempts\": \"x\"}]}",
            b"{\"key\": \"k\"} trailing",
        ] {
            assert!(
                AddrBookFile::from_json(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Missing fields are zero, unknown ones ignored, null lists empty.
        let f = AddrBookFile::from_json(br#"{"addrs": null, "extra": [1, 2]}"#).unwrap();
        assert_eq!(f.key(), "");
        assert!(f.is_empty());
        let f = AddrBookFile::from_json(
            br#"{"key": "k", "addrs": [{"addr": {"id": "x", "ip": "1.2.3.4", "port": 1}, "note": true}]}"#,
        )
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f.addresses(), vec![], "the ID does not parse");
    }
}
