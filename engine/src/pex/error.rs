//! Why PEX disconnects a peer. The texts follow stock's where stock has one.

use std::time::Duration;

use crate::proto::secret::NodeId;

/// A PEX protocol violation; the peer is disconnected with this as the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PexError {
    /// The bytes are not a PEX `Message`.
    #[error("unmarshaling pex message: {0}")]
    Decode(String),
    /// A `Message` with neither a request nor an address list (stock fails to unwrap it).
    #[error("unknown pex message: <nil>")]
    Empty,
    /// An address whose IP or port does not parse.
    #[error("{0}")]
    InvalidAddress(String),
    /// A request sooner than the minimum interval after the previous one.
    #[error(
        "peer ({peer}) sent next PEX request too soon. since last: {since:?}, minInterval: {min:?}. Disconnecting"
    )]
    TooSoon {
        /// The peer.
        peer: NodeId,
        /// Time since its previous request.
        since: Duration,
        /// The configured minimum.
        min: Duration,
    },
    /// An address list this node did not ask for.
    #[error("unsolicited pexAddrsMessage")]
    Unsolicited,
    /// An address list longer than [`crate::pex::PexConfig::max_addrs_per_message`].
    #[error("pexAddrsMessage carries {count} addresses, more than the {max} allowed")]
    TooManyAddresses {
        /// Addresses in the list.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A capability list in a native PEX answer that HELLO's rules refuse (too many, a bad
    /// string, a repeat).
    #[error("invalid capabilities in pex answer: {0}")]
    InvalidCapabilities(String),
    /// A native PEX answer from a peer on a compat connection, or of a version this node did
    /// not ask for.
    #[error("native pex answer not allowed here: {0}")]
    NativeAnswer(String),
}
