//! `node_key.json`: the node's identity key in CometBFT's file format.
//!
//! ```json
//! {"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"<base64 of seed ‖ public key>"}}
//! ```
//!
//! The same file gives the same node ID under stock CometBFT and ringwire. Files are written
//! the way stock writes them (compact JSON, mode 0600), but atomically: the bytes go to a
//! temporary file in the same directory, are synced, and are then renamed (or hard-linked, when
//! an existing file must not be replaced) into place, so a crash never leaves a half-written key.
//! Secret bytes and text are wiped from memory after use.

use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::proto::secret::{IdentityError, NodeId, NodeKey};
use crate::rt::fs;

/// The key type tag CometBFT writes for an ed25519 node key.
pub const ED25519_KEY_TYPE: &str = "tendermint/PrivKeyEd25519";
/// Largest `node_key.json` read (a valid one is under 200 bytes).
const MAX_FILE_SIZE: u64 = 64 * 1024;

/// Why the contents of a node key file were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeKeyFormatError {
    /// Not JSON, or not the `{"priv_key":{"type":…,"value":…}}` shape.
    #[error("not a node key file: {0}")]
    Json(String),
    /// A key type other than ed25519.
    #[error("key type {0:?} is not supported (expected \"tendermint/PrivKeyEd25519\")")]
    KeyType(String),
    /// The value is not standard base64.
    #[error("priv_key.value is not base64")]
    Base64,
    /// The decoded key is not a valid ed25519 seed ‖ public key pair.
    #[error("priv_key.value: {0}")]
    Key(#[from] IdentityError),
}

/// Why a node key file could not be read, written or generated.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// Reading the file failed.
    #[error("{}: cannot read node key: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system reported.
        source: io::Error,
    },
    /// Writing the file failed.
    #[error("{}: cannot write node key: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system reported.
        source: io::Error,
    },
    /// The file exists and was not to be replaced.
    #[error("{}: a node key already exists (refusing to overwrite it)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file's contents are not a node key.
    #[error("{}: {source}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: NodeKeyFormatError,
    },
    /// The operating system's random number generator failed.
    #[error("cannot generate a node key: the system random number generator failed")]
    Random,
}

#[derive(Deserialize)]
struct FileJson {
    priv_key: KeyJson,
}

#[derive(Deserialize)]
struct KeyJson {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// A node identity key as stored in `node_key.json`.
#[derive(Clone, Debug)]
pub struct NodeKeyFile {
    key: NodeKey,
}

impl NodeKeyFile {
    /// Wraps a key.
    pub fn new(key: NodeKey) -> Self {
        Self { key }
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, NodeKeyError> {
        use ring::rand::SecureRandom as _;
        let mut seed = Zeroizing::new([0u8; 32]);
        ring::rand::SystemRandom::new()
            .fill(seed.as_mut())
            .map_err(|_| NodeKeyError::Random)?;
        Ok(Self::new(NodeKey::from_seed(*seed)))
    }

    /// The key.
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// The key, by value.
    pub fn into_key(self) -> NodeKey {
        self.key
    }

    /// The node ID of the key.
    pub fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    /// Parses the file's contents. Unknown JSON fields are ignored, as stock does.
    pub fn from_json(text: &str) -> Result<Self, NodeKeyFormatError> {
        let file: FileJson =
            serde_json::from_str(text).map_err(|e| NodeKeyFormatError::Json(e.to_string()))?;
        let KeyJson { kind, value } = file.priv_key;
        let value = Zeroizing::new(value);
        if kind != ED25519_KEY_TYPE {
            return Err(NodeKeyFormatError::KeyType(kind));
        }
        let bytes = Zeroizing::new(
            STANDARD
                .decode(value.as_bytes())
                .map_err(|_| NodeKeyFormatError::Base64)?,
        );
        Ok(Self::new(NodeKey::from_keypair_bytes(&bytes)?))
    }

    /// The file's contents, byte for byte what stock CometBFT writes. This is secret material.
    pub fn to_json(&self) -> Zeroizing<String> {
        let pair = Zeroizing::new(self.key.to_keypair_bytes());
        let value = Zeroizing::new(STANDARD.encode(pair.as_slice()));
        Zeroizing::new(format!(
            "{{\"priv_key\":{{\"type\":\"{ED25519_KEY_TYPE}\",\"value\":\"{}\"}}}}",
            value.as_str()
        ))
    }

    /// Reads a key file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, NodeKeyError> {
        let path = path.as_ref();
        let read_err = |source| NodeKeyError::Read {
            path: path.to_owned(),
            source,
        };
        let mut text = Zeroizing::new(String::new());
        File::open(path)
            .and_then(|f| f.take(MAX_FILE_SIZE + 1).read_to_string(&mut text))
            .map_err(read_err)?;
        if text.len() as u64 > MAX_FILE_SIZE {
            return Err(NodeKeyError::Format {
                path: path.to_owned(),
                source: NodeKeyFormatError::Json(format!("file exceeds {MAX_FILE_SIZE} bytes")),
            });
        }
        Self::from_json(&text).map_err(|source| NodeKeyError::Format {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the key file atomically with mode 0600, replacing any file at `path`. Missing
    /// parent directories are created with mode 0700.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), NodeKeyError> {
        write_atomic(path.as_ref(), self.to_json().as_bytes(), Replace::Yes)
    }

    /// Like [`NodeKeyFile::write`], but fails with [`NodeKeyError::Exists`] when a file is
    /// already at `path` (checked atomically).
    pub fn write_new(&self, path: impl AsRef<Path>) -> Result<(), NodeKeyError> {
        write_atomic(path.as_ref(), self.to_json().as_bytes(), Replace::No)
    }

    /// Reads the key file, or generates and writes a new key when there is none (as stock
    /// CometBFT's `LoadOrGenNodeKey`). Returns whether the key was generated.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<(Self, bool), NodeKeyError> {
        let path = path.as_ref();
        match Self::load(path) {
            Ok(key) => return Ok((key, false)),
            Err(NodeKeyError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = Self::generate()?;
        match key.write_new(path) {
            Ok(()) => Ok((key, true)),
            // Another process wrote one first: use it.
            Err(NodeKeyError::Exists { .. }) => Ok((Self::load(path)?, false)),
            Err(e) => Err(e),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Replace {
    Yes,
    No,
}

/// Writes `bytes` atomically with mode 0600 (`rt::fs::write_atomic`): `rename` when
/// replacing, `hard_link` (which fails if `path` exists) otherwise.
fn write_atomic(path: &Path, bytes: &[u8], replace: Replace) -> Result<(), NodeKeyError> {
    if replace == Replace::No && std::fs::symlink_metadata(path).is_ok() {
        return Err(NodeKeyError::Exists {
            path: path.to_owned(),
        });
    }
    match fs::write_atomic(path, bytes, 0o600, replace == Replace::Yes) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(NodeKeyError::Exists {
            path: path.to_owned(),
        }),
        Err(source) => Err(NodeKeyError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by stock CometBFT v0.40.0 (`NodeKey.SaveAs`) for the seed 01 02 … 20; stock's
    // `nodeKey.ID()` is 65b60673d6ed884bf01c2c222d82ada0740f29ac.
    const STOCK_FILE: &str = r#"{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB5tVYuj+ZU+UB4sRLoqYunkB+FOuaVvtfg45ELrQSWZA=="}}"#;
    const STOCK_ID: &str = "65b60673d6ed884bf01c2c222d82ada0740f29ac";

    #[test]
    fn stock_file_gives_stock_id_and_writes_back_identically() {
        let key = NodeKeyFile::from_json(STOCK_FILE).unwrap();
        assert_eq!(key.node_id().to_string(), STOCK_ID);
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        assert_eq!(key.key().node_id(), NodeKey::from_seed(seed).node_id());
        assert_eq!(key.to_json().as_str(), STOCK_FILE);
    }

    #[test]
    fn bad_contents_are_refused() {
        assert!(matches!(
            NodeKeyFile::from_json("{"),
            Err(NodeKeyFormatError::Json(_))
        ));
        assert!(matches!(
            NodeKeyFile::from_json(r#"{"priv_key":{"type":"x"}}"#),
            Err(NodeKeyFormatError::Json(_))
        ));
        assert_eq!(
            NodeKeyFile::from_json(
                r#"{"priv_key":{"type":"tendermint/PrivKeySecp256k1","value":"AA=="}}"#
            )
            .unwrap_err(),
            NodeKeyFormatError::KeyType("tendermint/PrivKeySecp256k1".into())
        );
        assert_eq!(
            NodeKeyFile::from_json(
                r#"{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"!!"}}"#
            )
            .unwrap_err(),
            NodeKeyFormatError::Base64
        );
        assert_eq!(
            NodeKeyFile::from_json(
                r#"{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"AAAA"}}"#
            )
            .unwrap_err(),
            NodeKeyFormatError::Key(IdentityError::KeypairLength(3))
        );
        // Seed and public key that do not belong together.
        let tampered = STOCK_FILE.replace("ZA==", "ZQ==");
        assert_eq!(
            NodeKeyFile::from_json(&tampered).unwrap_err(),
            NodeKeyFormatError::Key(IdentityError::KeypairMismatch)
        );
        // Unknown fields are ignored, as Go's encoding/json does.
        let extra = STOCK_FILE.replace("{\"priv_key\"", "{\"note\":1,\"priv_key\"");
        assert_eq!(
            NodeKeyFile::from_json(&extra)
                .unwrap()
                .node_id()
                .to_string(),
            STOCK_ID
        );
    }

    #[test]
    fn generated_keys_differ() {
        let a = NodeKeyFile::generate().unwrap();
        let b = NodeKeyFile::generate().unwrap();
        assert_ne!(a.node_id(), b.node_id());
        let back = NodeKeyFile::from_json(&a.to_json()).unwrap();
        assert_eq!(back.node_id(), a.node_id());
    }
}
