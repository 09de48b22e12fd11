//! `[node]`: who this node is — its name, its network, where its files live.

use std::path::PathBuf;

use super::error::Problems;

section! {
    /// `[node]`: identity and files.
    pub struct NodeConfig in "node" {
        /// A human-readable name for this node, sent to peers in NodeInfo.
        /// Printable ASCII and not blank (stock CometBFT's rule).
        moniker: String = "ringwire".to_owned(),
        /// The chain ID (NodeInfo "network"). Peers on another network are refused.
        /// Imported from genesis.json when reading a CometBFT home.
        network: String = "ringwire-devnet".to_owned(),
        /// Directory that relative paths in this file are resolved against. Empty: the
        /// directory holding this file (the current directory for a configuration that
        /// does not come from a file).
        home: PathBuf = PathBuf::new(),
        /// The node's identity key, in CometBFT's node_key.json format (relative to home).
        /// A missing file is generated at start, as stock CometBFT does.
        node_key_file: PathBuf = PathBuf::from("config/node_key.json"),
    }
}

/// Longest moniker accepted, in bytes (it travels in the 10 KiB NodeInfo).
pub(crate) const MAX_MONIKER_LEN: usize = 256;
/// Longest network name accepted, in bytes.
pub(crate) const MAX_NETWORK_LEN: usize = 256;

/// Stock `IsASCIIText(s) && ASCIITrim(s) != ""`.
fn is_non_blank_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b)) && s.bytes().any(|b| b != b' ')
}

impl NodeConfig {
    pub(crate) fn check(&self, p: &mut Problems) {
        const S: &str = "node";
        if !is_non_blank_ascii(&self.moniker) {
            p.push(S, "moniker", "must be printable ASCII and not blank");
        } else if self.moniker.len() > MAX_MONIKER_LEN {
            p.push(
                S,
                "moniker",
                format!("must be at most {MAX_MONIKER_LEN} bytes"),
            );
        }
        if !is_non_blank_ascii(&self.network) || self.network.contains(' ') {
            p.push(
                S,
                "network",
                "must be printable ASCII without spaces and not empty",
            );
        } else if self.network.len() > MAX_NETWORK_LEN {
            p.push(
                S,
                "network",
                format!("must be at most {MAX_NETWORK_LEN} bytes"),
            );
        }
        if self.node_key_file.as_os_str().is_empty() {
            p.push(S, "node_key_file", "must not be empty");
        }
    }
}
