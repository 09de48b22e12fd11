//! Errors in the peer manager's settings.

/// A peer-manager setting is out of range. The message names the TOML key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value it cannot take; the message says which and why.
    #[error("invalid peer settings: {0}")]
    Invalid(&'static str),
}
