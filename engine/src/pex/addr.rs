//! A learned peer address: stock's `NetAddress{id, ip, port}`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::proto::secret::NodeId;
use crate::proto::wire;

use super::PexError;

/// A peer address as PEX carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PexAddr {
    /// The node ID expected at the address.
    pub id: NodeId,
    /// The IP address.
    pub ip: IpAddr,
    /// The TCP port.
    pub port: u16,
}

impl PexAddr {
    /// The socket address to dial.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// Stock's `NetAddressFromProto`: the IP must parse and the port fit in 16 bits. Stock
    /// does not check the ID there; an ID that is not 40 hex characters is refused here as
    /// invalid too, since no node could ever authenticate as it.
    pub fn from_wire(w: &wire::NetAddress) -> Result<Self, PexError> {
        let ip: IpAddr =
            w.ip.parse()
                .map_err(|_| PexError::InvalidAddress(format!("invalid IP address {}", w.ip)))?;
        let port = u16::try_from(w.port)
            .map_err(|_| PexError::InvalidAddress(format!("invalid port number {}", w.port)))?;
        let id: NodeId =
            w.id.parse()
                .map_err(|_| PexError::InvalidAddress(format!("invalid node ID {:?}", w.id)))?;
        Ok(PexAddr { id, ip, port })
    }

    /// The wire form.
    pub fn to_wire(&self) -> wire::NetAddress {
        wire::NetAddress {
            id: self.id.to_string(),
            ip: self.ip.to_string(),
            port: u32::from(self.port),
        }
    }

    /// The address a peer's NodeInfo `listen_addr` (`tcp://ip:port` or `ip:port`) gives, if it
    /// is dialable (an IP, not the unspecified address, a non-zero port).
    pub fn from_listen_addr(id: NodeId, listen_addr: &str) -> Option<Self> {
        let text = listen_addr
            .split_once("://")
            .map_or(listen_addr, |(_, rest)| rest);
        let sa: SocketAddr = text.parse().ok()?;
        if sa.ip().is_unspecified() || sa.port() == 0 {
            return None;
        }
        Some(PexAddr {
            id,
            ip: sa.ip(),
            port: sa.port(),
        })
    }
}

impl fmt::Display for PexAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.socket_addr())
    }
}
