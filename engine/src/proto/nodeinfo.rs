//! NodeInfo: what two nodes tell each other right after the SecretConnection handshake.
//!
//! [`NodeInfo`] mirrors stock CometBFT's `DefaultNodeInfo` (`p2p/node_info.go`). On the wire it is
//! a uvarint length followed by the `DefaultNodeInfo` proto, at most [`MAX_NODE_INFO_SIZE`]
//! bytes, written exactly as stock writes it (the `protocol_version` and `other` sub-messages are
//! always present, even when empty).
//!
//! Policy:
//! - [`NodeInfo::validate`] applies every rule of stock `Validate()` in stock's order, and
//!   [`NodeInfo::compatible_with`] every rule of stock `CompatibleWith()`; a stock node and
//!   ringwire reach the same verdict on the same NodeInfo. The one place stock does I/O — it
//!   resolves a listen-address host that is not an IP literal — is a caller-supplied lookup
//!   ([`NodeInfo::validate_with_lookup`]); [`NodeInfo::validate`] assumes a syntactically valid
//!   host name resolves.
//! - Strings are decoded as UTF-8. Stock accepts any bytes in a proto string, but every string
//!   stock validates must be printable ASCII and the network must equal ours, so a peer whose
//!   NodeInfo is not UTF-8 is rejected by both (here at decode time).
//! - ringwire advertises [`RINGWIRE_CAPABILITY_CHANNEL`] among its channels. Stock peers ignore a
//!   channel they do not run; two ringwire peers that both advertise it switch to the native
//!   protocol after the NodeInfo exchange.

mod addr;

use prost::Message;

use crate::proto::by_channel::ByChannel;
use crate::proto::mconn::varint::{Uvarint, read_uvarint};
use crate::proto::wire;

/// The largest NodeInfo message (without its length prefix) stock reads: 10 KiB.
pub const MAX_NODE_INFO_SIZE: usize = 10240;

/// The most channels a NodeInfo may list (stock `maxNumChannels`).
pub const MAX_NUM_CHANNELS: usize = 16;

/// A channel id no stock reactor uses. Its presence in [`NodeInfo::channels`] says "this node
/// speaks the ringwire native protocol, version 1". Nothing is ever sent on it.
pub const RINGWIRE_CAPABILITY_CHANNEL: u8 = 0xF0;

/// The p2p protocol version stock CometBFT v0.38–v0.40 advertises.
pub const STOCK_P2P_PROTOCOL: u64 = 8;

/// The block protocol version stock CometBFT advertises; peers must agree on it.
pub const STOCK_BLOCK_PROTOCOL: u64 = 11;

/// The channel ids a stock node advertises, in stock's order: blocksync, consensus state, data,
/// vote, vote-set bits, mempool, evidence, statesync snapshots and chunks, then PEX.
pub const STOCK_CHANNELS: [u8; 10] = [0x40, 0x20, 0x21, 0x22, 0x23, 0x30, 0x38, 0x60, 0x61, 0x00];

/// The ten stock channel ids in stock order (see [`STOCK_CHANNELS`]).
pub fn stock_channels() -> Vec<u8> {
    STOCK_CHANNELS.to_vec()
}

/// The stock channel ids followed by [`RINGWIRE_CAPABILITY_CHANNEL`]: what a ringwire node that
/// runs the stock reactors advertises.
pub fn ringwire_channels() -> Vec<u8> {
    let mut v = stock_channels();
    v.push(RINGWIRE_CAPABILITY_CHANNEL);
    v
}

/// Protocol versions of the software (stock `ProtocolVersion`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProtocolVersion {
    /// P2P protocol version (not compared between peers).
    pub p2p: u64,
    /// Block protocol version; peers must match.
    pub block: u64,
    /// Application version (not compared between peers).
    pub app: u64,
}

/// Application-specific extras (stock `DefaultNodeInfoOther`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeInfoOther {
    /// `"on"`, `"off"` or empty.
    pub tx_index: String,
    /// The node's RPC listen address, free-form ASCII.
    pub rpc_address: String,
}

/// A node's self-description, exchanged during the handshake (stock `DefaultNodeInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// Software protocol versions.
    pub protocol_version: ProtocolVersion,
    /// The node ID as the peer sent it (stock `default_node_id`): normally 40 lowercase hex
    /// characters; checked against the authenticated key by the caller.
    pub node_id: String,
    /// Where the node accepts connections, e.g. `tcp://0.0.0.0:26656`.
    pub listen_addr: String,
    /// The chain id; peers must match.
    pub network: String,
    /// Software version, free-form ASCII.
    pub version: String,
    /// Channel ids the node runs reactors on.
    pub channels: Vec<u8>,
    /// Human-readable node name, non-empty ASCII.
    pub moniker: String,
    /// Application-specific extras.
    pub other: NodeInfoOther,
}

/// Why a NodeInfo was not decoded, not valid, or not compatible. Each variant corresponds to one
/// stock rejection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeInfoError {
    /// The length prefix is not a valid uvarint.
    #[error("node info length prefix is not a valid uvarint")]
    BadLengthPrefix,
    /// The declared length is larger than stock reads.
    #[error("node info exceeds max size ({declared} > {max})")]
    TooLarge {
        /// Declared length in bytes.
        declared: u64,
        /// The limit ([`MAX_NODE_INFO_SIZE`] unless configured lower).
        max: usize,
    },
    /// The body is not a `DefaultNodeInfo` proto.
    #[error("malformed node info: {0}")]
    Decode(String),
    /// `id@listen_addr` does not parse as a stock network address.
    #[error("invalid node address {addr:?}: {reason}")]
    InvalidAddress {
        /// `id@host:port` as stock assembles it.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The version is set but is not printable ASCII with something besides spaces.
    #[error("info.Version must be valid ASCII text without tabs, but got {0:?}")]
    InvalidVersion(String),
    /// More than [`MAX_NUM_CHANNELS`] channels.
    #[error("info.Channels is too long ({count}). Max is {max}")]
    TooManyChannels {
        /// Number of channels listed.
        count: usize,
        /// The limit, [`MAX_NUM_CHANNELS`].
        max: usize,
    },
    /// A channel id appears twice.
    #[error("info.Channels contains duplicate channel id {0}")]
    DuplicateChannel(u8),
    /// The moniker is empty, all spaces, or not printable ASCII.
    #[error("info.Moniker must be valid non-empty ASCII text without tabs, but got {0:?}")]
    InvalidMoniker(String),
    /// `tx_index` is not `""`, `"on"` or `"off"`.
    #[error("info.Other.TxIndex should be either 'on', 'off', or empty string, got {0:?}")]
    InvalidTxIndex(String),
    /// The RPC address is set but is not printable ASCII with something besides spaces.
    #[error("info.Other.RPCAddress={0:?} must be valid ASCII text without tabs")]
    InvalidRpcAddress(String),
    /// The peer runs another block protocol version.
    #[error("peer is on a different Block version. Got {theirs}, expected {ours}")]
    BlockVersionMismatch {
        /// Our block version.
        ours: u64,
        /// The peer's block version.
        theirs: u64,
    },
    /// The peer is on another chain.
    #[error("peer is on a different network. Got {theirs:?}, expected {ours:?}")]
    NetworkMismatch {
        /// Our network.
        ours: String,
        /// The peer's network.
        theirs: String,
    },
    /// We listed channels and the peer shares none of them.
    #[error("peer has no common channels. Our channels: {} ; Peer channels: {}", hex::encode_upper(.ours), hex::encode_upper(.theirs))]
    NoCommonChannels {
        /// Our channels.
        ours: Vec<u8>,
        /// The peer's channels.
        theirs: Vec<u8>,
    },
}

impl NodeInfo {
    /// True when the node advertises [`RINGWIRE_CAPABILITY_CHANNEL`].
    pub fn advertises_native(&self) -> bool {
        self.has_channel(RINGWIRE_CAPABILITY_CHANNEL)
    }

    /// True when `channel` is among the advertised channels.
    pub fn has_channel(&self, channel: u8) -> bool {
        self.channels.contains(&channel)
    }

    /// The proto message stock marshals for this NodeInfo.
    pub fn to_wire(&self) -> wire::DefaultNodeInfo {
        wire::DefaultNodeInfo {
            protocol_version: Some(wire::ProtocolVersion {
                p2p: self.protocol_version.p2p,
                block: self.protocol_version.block,
                app: self.protocol_version.app,
            }),
            default_node_id: self.node_id.clone(),
            listen_addr: self.listen_addr.clone(),
            network: self.network.clone(),
            version: self.version.clone(),
            channels: self.channels.clone().into(),
            moniker: self.moniker.clone(),
            other: Some(wire::DefaultNodeInfoOther {
                tx_index: self.other.tx_index.clone(),
                rpc_address: self.other.rpc_address.clone(),
            }),
        }
    }

    /// Builds a NodeInfo from the decoded proto; absent sub-messages read as zero values, as in
    /// stock.
    pub fn from_wire(w: wire::DefaultNodeInfo) -> Self {
        let pv = w.protocol_version.unwrap_or_default();
        let other = w.other.unwrap_or_default();
        Self {
            protocol_version: ProtocolVersion {
                p2p: pv.p2p,
                block: pv.block,
                app: pv.app,
            },
            node_id: w.default_node_id,
            listen_addr: w.listen_addr,
            network: w.network,
            version: w.version,
            channels: w.channels.to_vec(),
            moniker: w.moniker,
            other: NodeInfoOther {
                tx_index: other.tx_index,
                rpc_address: other.rpc_address,
            },
        }
    }

    /// Appends the proto without a length prefix: the bytes of stock's `DefaultNodeInfo`
    /// message, which stock's own types decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // prost reports an error only when the buffer cannot grow; a Vec always grows.
        let _ = self.to_wire().encode(out);
    }

    /// Appends the uvarint length and the proto, byte for byte as stock's delimited writer does.
    pub fn encode_delimited(&self, out: &mut Vec<u8>) {
        let msg = self.to_wire();
        // prost reports an error only when the buffer cannot grow; a Vec always grows.
        let _ = msg.encode_length_delimited(out);
    }

    /// Decodes one delimited NodeInfo from the front of `input`.
    ///
    /// Returns `Ok(None)` while more bytes are needed, or the NodeInfo and the number of bytes it
    /// took. A declared length above [`MAX_NODE_INFO_SIZE`] is rejected as soon as the prefix is
    /// read, before any body byte is buffered.
    pub fn decode_delimited(input: &[u8]) -> Result<Option<(NodeInfo, usize)>, NodeInfoError> {
        Self::decode_delimited_max(input, MAX_NODE_INFO_SIZE)
    }

    /// Like [`NodeInfo::decode_delimited`] with a limit of `max` bytes instead of
    /// [`MAX_NODE_INFO_SIZE`] (a larger `max` is lowered to it).
    pub fn decode_delimited_max(
        input: &[u8],
        max: usize,
    ) -> Result<Option<(NodeInfo, usize)>, NodeInfoError> {
        let max = max.min(MAX_NODE_INFO_SIZE);
        let (len, prefix) = match read_uvarint(input) {
            Uvarint::Done(len, prefix) => (len, prefix),
            Uvarint::Incomplete => return Ok(None),
            Uvarint::Overflow => return Err(NodeInfoError::BadLengthPrefix),
        };
        if len > max as u64 {
            return Err(NodeInfoError::TooLarge { declared: len, max });
        }
        let end = prefix + len as usize;
        let Some(body) = input.get(prefix..end) else {
            return Ok(None);
        };
        let msg = wire::DefaultNodeInfo::decode(body)
            .map_err(|e| NodeInfoError::Decode(e.to_string()))?;
        Ok(Some((Self::from_wire(msg), end)))
    }

    /// Stock `Validate()`, assuming a listen-address host name resolves (see
    /// [`NodeInfo::validate_with_lookup`]).
    pub fn validate(&self) -> Result<(), NodeInfoError> {
        self.validate_with_lookup(&mut |_| true)
    }

    /// Stock `Validate()`. `lookup` stands in for stock's DNS query: it is asked only about a
    /// listen-address host that is not an IP literal but is a valid domain name, and returns
    /// whether that name resolves.
    pub fn validate_with_lookup(
        &self,
        lookup: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), NodeInfoError> {
        addr::check_id_listen_addr(&self.node_id, &self.listen_addr, lookup).map_err(|e| {
            NodeInfoError::InvalidAddress {
                addr: format!(
                    "{}@{}",
                    self.node_id,
                    addr::remove_protocol(&self.listen_addr)
                ),
                reason: e.reason(),
            }
        })?;
        if !self.version.is_empty() && !is_non_blank_ascii_text(&self.version) {
            return Err(NodeInfoError::InvalidVersion(self.version.clone()));
        }
        if self.channels.len() > MAX_NUM_CHANNELS {
            return Err(NodeInfoError::TooManyChannels {
                count: self.channels.len(),
                max: MAX_NUM_CHANNELS,
            });
        }
        let mut seen = ByChannel::new(false);
        for &ch in &self.channels {
            let slot = &mut seen[ch];
            if *slot {
                return Err(NodeInfoError::DuplicateChannel(ch));
            }
            *slot = true;
        }
        if !is_non_blank_ascii_text(&self.moniker) {
            return Err(NodeInfoError::InvalidMoniker(self.moniker.clone()));
        }
        match self.other.tx_index.as_str() {
            "" | "on" | "off" => {}
            other => return Err(NodeInfoError::InvalidTxIndex(other.to_owned())),
        }
        let rpc = &self.other.rpc_address;
        if !rpc.is_empty() && !is_non_blank_ascii_text(rpc) {
            return Err(NodeInfoError::InvalidRpcAddress(rpc.clone()));
        }
        Ok(())
    }

    /// Stock `CompatibleWith()`: same block version, same network, and — when we list any
    /// channels — at least one channel in common. P2P and app versions are not compared.
    pub fn compatible_with(&self, other: &NodeInfo) -> Result<(), NodeInfoError> {
        if self.protocol_version.block != other.protocol_version.block {
            return Err(NodeInfoError::BlockVersionMismatch {
                ours: self.protocol_version.block,
                theirs: other.protocol_version.block,
            });
        }
        if self.network != other.network {
            return Err(NodeInfoError::NetworkMismatch {
                ours: self.network.clone(),
                theirs: other.network.clone(),
            });
        }
        if self.channels.is_empty() || self.channels.iter().any(|c| other.has_channel(*c)) {
            return Ok(());
        }
        Err(NodeInfoError::NoCommonChannels {
            ours: self.channels.clone(),
            theirs: other.channels.clone(),
        })
    }
}

impl From<&NodeInfo> for wire::DefaultNodeInfo {
    fn from(info: &NodeInfo) -> Self {
        info.to_wire()
    }
}

impl From<wire::DefaultNodeInfo> for NodeInfo {
    fn from(w: wire::DefaultNodeInfo) -> Self {
        Self::from_wire(w)
    }
}

/// Stock `IsASCIIText(s) && ASCIITrim(s) != ""`: non-empty, every byte printable ASCII
/// (0x20..=0x7E, so no tab), and not only spaces.
fn is_non_blank_ascii_text(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..=0x7e).contains(&b)) && s.bytes().any(|b| b != b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The representative NodeInfo a ringwire node sends, as committed in
    /// `testdata/ringwire_nodeinfo.hex` (written and checked by the `golden_nodeinfo` test).
    fn sample() -> NodeInfo {
        let vector = include_str!("../../../testdata/ringwire_nodeinfo.hex");
        decode_whole(&hex::decode(vector.trim_end()).unwrap())
    }

    /// Decodes one delimited NodeInfo that fills `raw`.
    fn decode_whole(raw: &[u8]) -> NodeInfo {
        let (info, used) = NodeInfo::decode_delimited(raw).unwrap().unwrap();
        assert_eq!(used, raw.len());
        info
    }

    fn round_trip(info: &NodeInfo) -> NodeInfo {
        let mut out = Vec::new();
        info.encode_delimited(&mut out);
        decode_whole(&out)
    }

    #[test]
    fn sample_is_valid_round_trips_and_advertises_native() {
        let info = sample();
        info.validate().unwrap();
        assert_eq!(round_trip(&info), info);
        assert!(info.advertises_native());
        let mut stock = info.clone();
        stock.channels = stock_channels();
        assert!(!stock.advertises_native());
        info.compatible_with(&stock).unwrap();
    }

    #[test]
    fn empty_sub_messages_are_always_written() {
        let mut out = Vec::new();
        NodeInfo::default().encode_delimited(&mut out);
        assert_eq!(out, [0x04, 0x0a, 0x00, 0x42, 0x00]);
    }

    #[test]
    fn partial_input_needs_more_and_oversize_is_rejected_early() {
        let mut out = Vec::new();
        sample().encode_delimited(&mut out);
        for cut in 0..out.len() {
            assert_eq!(NodeInfo::decode_delimited(&out[..cut]), Ok(None));
        }
        // 10241 declared: rejected on the two prefix bytes alone.
        assert!(matches!(
            NodeInfo::decode_delimited(&[0x81, 0x50]),
            Err(NodeInfoError::TooLarge {
                declared: 10241,
                ..
            })
        ));
        assert_eq!(NodeInfo::decode_delimited(&[0x80, 0x50]), Ok(None));
        // A lower configured limit is applied the same way; a higher one is lowered to stock's.
        assert_eq!(
            NodeInfo::decode_delimited_max(&[0x81, 0x08], 1024),
            Err(NodeInfoError::TooLarge {
                declared: 1025,
                max: 1024
            })
        );
        assert_eq!(
            NodeInfo::decode_delimited_max(&[0x80, 0x08], 1024),
            Ok(None)
        );
        assert!(matches!(
            NodeInfo::decode_delimited_max(&[0x81, 0x50], usize::MAX),
            Err(NodeInfoError::TooLarge { max: 10240, .. })
        ));
        assert_eq!(
            NodeInfo::decode_delimited(&[0xff; 10]),
            Err(NodeInfoError::BadLengthPrefix)
        );
        assert!(matches!(
            NodeInfo::decode_delimited(&[0x02, 0x0a, 0x05]),
            Err(NodeInfoError::Decode(_))
        ));
    }

    #[test]
    fn validate_rules() {
        let ok = sample();
        let check = |f: &dyn Fn(&mut NodeInfo)| {
            let mut i = ok.clone();
            f(&mut i);
            i.validate()
        };
        assert!(check(&|i| i.node_id = "zz".into()).is_err());
        assert!(check(&|i| i.listen_addr = "127.0.0.1".into()).is_err());
        assert!(check(&|i| i.listen_addr = "127.0.0.1:70000".into()).is_err());
        assert!(check(&|i| i.listen_addr = ":26656".into()).is_err());
        assert!(check(&|i| i.listen_addr = "[::1]:26656".into()).is_ok());
        assert!(check(&|i| i.listen_addr = "localhost:26656".into()).is_ok());
        assert!(check(&|i| i.listen_addr = "bad_host!:1".into()).is_err());
        assert!(check(&|i| i.version = String::new()).is_ok());
        assert!(check(&|i| i.version = "   ".into()).is_err());
        assert!(check(&|i| i.version = "v\t1".into()).is_err());
        assert!(check(&|i| i.channels = (0..16).collect()).is_ok());
        assert!(check(&|i| i.channels = (0..17).collect()).is_err());
        assert_eq!(
            check(&|i| i.channels = vec![1, 2, 1]),
            Err(NodeInfoError::DuplicateChannel(1))
        );
        assert!(check(&|i| i.moniker = String::new()).is_err());
        assert!(check(&|i| i.moniker = " ".into()).is_err());
        assert!(check(&|i| i.moniker = "caf\u{e9}".into()).is_err());
        assert!(check(&|i| i.moniker = " a ".into()).is_ok());
        assert!(check(&|i| i.other.tx_index = String::new()).is_ok());
        assert!(check(&|i| i.other.tx_index = "off".into()).is_ok());
        assert!(check(&|i| i.other.tx_index = "ON".into()).is_err());
        assert!(check(&|i| i.other.rpc_address = String::new()).is_ok());
        assert!(check(&|i| i.other.rpc_address = "\x7f".into()).is_err());
        // The lookup decides for host names, and is never asked about IP literals.
        let mut named = ok.clone();
        named.listen_addr = "tcp://node.example:26656".into();
        assert!(named.validate_with_lookup(&mut |_| false).is_err());
        assert!(
            named
                .validate_with_lookup(&mut |h| h == "node.example")
                .is_ok()
        );
        assert!(ok.validate_with_lookup(&mut |_| panic!("asked")).is_ok());
    }

    #[test]
    fn compatibility_rules() {
        let a = sample();
        let mut b = sample();
        b.protocol_version.p2p = 9;
        b.protocol_version.app = 7;
        assert!(a.compatible_with(&b).is_ok());
        b.protocol_version.block = 12;
        assert!(matches!(
            a.compatible_with(&b),
            Err(NodeInfoError::BlockVersionMismatch {
                ours: 11,
                theirs: 12
            })
        ));
        let mut c = sample();
        c.network = "other".into();
        assert!(matches!(
            a.compatible_with(&c),
            Err(NodeInfoError::NetworkMismatch { .. })
        ));
        let mut d = sample();
        d.channels = vec![0x99];
        assert!(matches!(
            a.compatible_with(&d),
            Err(NodeInfoError::NoCommonChannels { .. })
        ));
        // With no channels of our own, any peer on the same chain is compatible.
        assert!(d.compatible_with(&a).is_err());
        let mut e = sample();
        e.channels.clear();
        assert!(e.compatible_with(&d).is_ok());
    }
}
