//! Capabilities in PEX: what the book knows of the services of the node at an address, and
//! the checks a capability list from a peer or a file must pass.
//!
//! A record is *hearsay* when another ringwire peer told of it in a native PEX answer (the
//! capabilities that peer saw in the HELLO of the node at the address), and *confirmed* once
//! this node's own handshake with that node gave its HELLO. Hearsay never replaces a confirmed
//! record; a handshake always does (a node may change its services between restarts).

use std::collections::HashSet;

use crate::proto::native::frame::hello::{MAX_CAPABILITIES, valid_capability};

use super::PexError;

/// The version of the native PEX answer ([`crate::proto::wire::PexCapAddrs`]) this node
/// writes and reads.
pub const PEX_CAPS_VERSION: u32 = 1;

/// What the book knows of the capabilities of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BookCapabilities {
    /// The capabilities, as the node's HELLO listed them.
    pub capabilities: Vec<String>,
    /// Seen in this node's own handshake with it; else hearsay from a peer's PEX answer.
    pub confirmed: bool,
}

impl BookCapabilities {
    /// Whether the record lists `capability`.
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// Checks a capability list as HELLO does: at most [`MAX_CAPABILITIES`] entries, each 1 to 64
/// printable ASCII bytes, none twice.
pub(super) fn check_capabilities(list: &[String]) -> Result<(), PexError> {
    if list.len() > MAX_CAPABILITIES {
        return Err(PexError::InvalidCapabilities(format!(
            "{} capabilities exceed {MAX_CAPABILITIES}",
            list.len()
        )));
    }
    let mut seen = HashSet::with_capacity(list.len());
    for c in list {
        if !valid_capability(c.as_bytes()) {
            return Err(PexError::InvalidCapabilities(format!(
                "capability {c:?} is empty, too long or not printable ASCII"
            )));
        }
        if !seen.insert(c.as_str()) {
            return Err(PexError::InvalidCapabilities(format!(
                "capability {c:?} listed twice"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::native::frame::hello::MAX_CAPABILITY_LEN;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_are_checked_as_hello_checks_them() {
        assert!(check_capabilities(&[]).is_ok());
        assert!(check_capabilities(&list(&["archive", "light"])).is_ok());
        let max: Vec<String> = (0..MAX_CAPABILITIES).map(|i| format!("c{i}")).collect();
        assert!(check_capabilities(&max).is_ok());
        let over: Vec<String> = (0..=MAX_CAPABILITIES).map(|i| format!("c{i}")).collect();
        assert!(check_capabilities(&over).is_err());
        assert!(check_capabilities(&list(&["archive", "archive"])).is_err());
        assert!(check_capabilities(&list(&[""])).is_err());
        assert!(check_capabilities(&list(&["with space"])).is_err());
        assert!(check_capabilities(&["x".repeat(MAX_CAPABILITY_LEN)]).is_ok());
        assert!(check_capabilities(&["x".repeat(MAX_CAPABILITY_LEN + 1)]).is_err());
        let r = BookCapabilities {
            capabilities: list(&["archive"]),
            confirmed: false,
        };
        assert!(r.has("archive") && !r.has("light"));
    }
}
