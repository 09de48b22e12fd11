//! Addresses in configuration files: peers (`<id>@host:port`), advertised `host:port`, listen
//! sockets (`tcp://0.0.0.0:26656`) and the admin endpoint (`unix://path` or a loopback socket).
//!
//! Parsing follows what CometBFT accepts in `config.toml`: an optional `tcp://` prefix, a host that
//! is an IP literal (IPv6 in brackets) or a DNS name, and comma-separated lists with blanks
//! around the commas. Host names are checked for syntax only; they are resolved when dialed.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::proto::secret::NodeId;

/// Why an address was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// A peer address lacks the `<node id>@` part.
    #[error("{0:?} has no node ID (write <40 hex characters>@host:port)")]
    NoId(String),
    /// The node ID part is not 40 hex characters.
    #[error("{text:?}: {reason}")]
    BadId {
        /// The address as written.
        text: String,
        /// Why the ID was refused.
        reason: String,
    },
    /// No `:port`, an empty host, or an unclosed `[`.
    #[error("{0:?} is not host:port")]
    NotHostPort(String),
    /// The host is neither an IP literal nor a valid DNS name.
    #[error("{0:?}: host is neither an IP address nor a valid DNS name")]
    BadHost(String),
    /// The port is not a number in 0..=65535.
    #[error("{0:?}: port must be a number from 0 to 65535")]
    BadPort(String),
    /// A listen address whose host is not an IP literal.
    #[error("{0:?} is not an IP:port socket address")]
    NotSocket(String),
    /// An admin address that is neither `unix://PATH` nor a socket address.
    #[error("{0:?} is neither unix://PATH nor IP:port")]
    BadAdmin(String),
}

/// Strips an optional `tcp://` prefix.
fn strip_tcp(s: &str) -> &str {
    s.strip_prefix("tcp://").unwrap_or(s)
}

/// A `host:port` pair; the host is an IP literal or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// IP literal (IPv6 without brackets) or DNS name.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl HostPort {
    /// The IP address when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl FromStr for HostPort {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = strip_tcp(text.trim());
        let bad = || AddressError::NotHostPort(text.to_owned());
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = after.strip_prefix(':').ok_or_else(bad)?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(AddressError::BadHost(text.to_owned()));
            }
            (host, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
            if host.contains(':') {
                // An IPv6 literal must be bracketed to carry a port.
                return Err(bad());
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(bad());
        }
        if host.parse::<IpAddr>().is_err() && !is_domain_name(host) {
            return Err(AddressError::BadHost(text.to_owned()));
        }
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddressError::BadPort(text.to_owned()));
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| AddressError::BadPort(text.to_owned()))?;
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// DNS name syntax: dot-separated labels of letters, digits, `-` and `_` (as Go's resolver
/// allows), no label empty, starting or ending with `-`, or over 63 bytes; 253 bytes at most.
fn is_domain_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A peer to dial: `<node id>@host:port`, the form of CometBFT's `seeds` and `persistent_peers`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddress {
    /// The ID the peer must authenticate as.
    pub id: NodeId,
    /// Where to dial it.
    pub addr: HostPort,
}

impl FromStr for PeerAddress {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = strip_tcp(text.trim());
        let (id, addr) = s
            .split_once('@')
            .ok_or_else(|| AddressError::NoId(text.to_owned()))?;
        let id = id.parse::<NodeId>().map_err(|e| AddressError::BadId {
            text: text.to_owned(),
            reason: e.to_string(),
        })?;
        let addr = addr.parse::<HostPort>()?;
        Ok(PeerAddress { id, addr })
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.addr)
    }
}

/// Parses a socket address with an optional `tcp://` prefix; `":26656"` (Go's shorthand)
/// means all interfaces.
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, AddressError> {
    let s = strip_tcp(text.trim());
    let s = match s.strip_prefix(':') {
        Some(port) if !port.contains(':') => format!("0.0.0.0:{port}"),
        _ => s.to_owned(),
    };
    s.parse()
        .map_err(|_| AddressError::NotSocket(text.to_owned()))
}

/// Where the admin endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminAddress {
    /// A Unix socket at this path (relative paths are under the home directory); written
    /// `unix://PATH`.
    Unix(PathBuf),
    /// A TCP socket; must be a loopback address.
    Tcp(SocketAddr),
}

impl FromStr for AdminAddress {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if path.is_empty() {
                return Err(AddressError::BadAdmin(text.to_owned()));
            }
            return Ok(AdminAddress::Unix(PathBuf::from(path)));
        }
        parse_socket_addr(s)
            .map(AdminAddress::Tcp)
            .map_err(|_| AddressError::BadAdmin(text.to_owned()))
    }
}

impl fmt::Display for AdminAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminAddress::Unix(path) => write!(f, "unix://{}", path.display()),
            AdminAddress::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// Splits a CometBFT comma-separated list, trimming blanks and dropping empty entries (stock
/// `SplitAndTrimEmpty`).
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// Serde helpers: every address type is written as a string.
pub(crate) mod serde_text {
    use std::fmt::Display;
    use std::marker::PhantomData;
    use std::net::SocketAddr;
    use std::str::FromStr;

    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::{Deserialize, Serializer};

    /// A value written with `Display` and read with `FromStr`.
    pub(crate) mod display {
        use super::*;

        /// Writes the value as text.
        pub(crate) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(v)
        }

        /// Reads the value from text.
        pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
        where
            T: FromStr,
            T::Err: Display,
            D: Deserializer<'de>,
        {
            let text = String::deserialize(d)?;
            text.parse().map_err(de::Error::custom)
        }
    }

    /// A listen socket, written `tcp://IP:PORT`.
    pub(crate) mod tcp_socket {
        use super::*;

        /// Writes `tcp://IP:PORT`.
        pub(crate) fn serialize<S: Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("tcp://{a}"))
        }

        /// Reads `[tcp://]IP:PORT` or `:PORT`.
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
            let text = String::deserialize(d)?;
            crate::config::address::parse_socket_addr(&text).map_err(de::Error::custom)
        }
    }

    /// A socket address, written `IP:PORT`.
    pub(crate) mod socket {
        use super::*;

        /// Writes `IP:PORT`.
        pub(crate) fn serialize<S: Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(a)
        }

        /// Reads `[tcp://]IP:PORT` or `:PORT`.
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
            let text = String::deserialize(d)?;
            crate::config::address::parse_socket_addr(&text).map_err(de::Error::custom)
        }
    }

    /// An optional value written as text, the empty string meaning none (as in stock
    /// `external_address = ""`).
    pub(crate) mod optional {
        use super::*;

        /// Writes the value, or `""` for none.
        pub(crate) fn serialize<T: Display, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.collect_str(v),
                None => s.serialize_str(""),
            }
        }

        /// Reads the value; blank text is none.
        pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
        where
            T: FromStr,
            T::Err: Display,
            D: Deserializer<'de>,
        {
            let text = String::deserialize(d)?;
            if text.trim().is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).map_err(de::Error::custom)
        }
    }

    /// A list written as an array of strings; a single comma-separated string (CometBFT's form)
    /// is accepted too.
    pub(crate) mod list {
        use super::*;

        /// Writes an array of strings.
        pub(crate) fn serialize<T: Display, S: Serializer>(
            v: &[T],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|item| item.to_string()))
        }

        /// Reads an array of strings or one comma-separated string.
        pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
        where
            T: FromStr,
            T::Err: Display,
            D: Deserializer<'de>,
        {
            d.deserialize_any(ListVisitor(PhantomData))
        }

        struct ListVisitor<T>(PhantomData<T>);

        impl<'de, T> Visitor<'de> for ListVisitor<T>
        where
            T: FromStr,
            T::Err: Display,
        {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of strings or a comma-separated string")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<T>, E> {
                crate::config::address::split_list(s)
                    .map(|item| item.parse().map_err(E::custom))
                    .collect()
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::new();
                let mut index = 0usize;
                while let Some(text) = seq.next_element::<String>()? {
                    let item = text
                        .parse()
                        .map_err(|e| de::Error::custom(format_args!("entry {index}: {e}")))?;
                    out.push(item);
                    index += 1;
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1f2e3d4c5b6a79880716253443526170a9b8c7d6";

    #[test]
    fn host_port_forms() {
        let hp: HostPort = "seed.example.net:26656".parse().unwrap();
        assert_eq!(hp.host, "seed.example.net");
        assert_eq!(hp.port, 26656);
        assert_eq!(hp.ip(), None);
        let hp: HostPort = "tcp://10.0.0.2:1".parse().unwrap();
        assert_eq!(hp.ip(), Some("10.0.0.2".parse().unwrap()));
        let hp: HostPort = "[2001:db8::1]:26656".parse().unwrap();
        assert_eq!(hp.host, "2001:db8::1");
        assert_eq!(hp.to_string(), "[2001:db8::1]:26656");
        for bad in [
            "",
            "host",
            ":26656",
            "host:",
            "host:65536",
            "host:-1",
            "host:+1",
            "2001:db8::1:26656",
            "[2001:db8::1:26656",
            "[nothex]:1",
            "bad host:1",
            "-a.example:1",
            "a..b:1",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad:?} accepted");
        }
        let long = format!("{}:1", "a".repeat(64));
        assert!(long.parse::<HostPort>().is_err());
    }

    #[test]
    fn peer_address_round_trip_and_errors() {
        let text = format!("{ID}@seed-1.example.net:26656");
        let p: PeerAddress = text.parse().unwrap();
        assert_eq!(p.id.to_string(), ID);
        assert_eq!(p.to_string(), text);
        let p: PeerAddress = format!("tcp://{ID}@[::1]:9").parse().unwrap();
        assert_eq!(p.to_string(), format!("{ID}@[::1]:9"));
        assert!(matches!(
            "10.0.0.1:26656".parse::<PeerAddress>(),
            Err(AddressError::NoId(_))
        ));
        assert!(matches!(
            "abc@10.0.0.1:26656".parse::<PeerAddress>(),
            Err(AddressError::BadId { .. })
        ));
        assert!(format!("{ID}@10.0.0.1").parse::<PeerAddress>().is_err());
    }

    #[test]
    fn socket_and_admin_addresses() {
        assert_eq!(
            parse_socket_addr("tcp://0.0.0.0:26656").unwrap(),
            "0.0.0.0:26656".parse().unwrap()
        );
        assert_eq!(
            parse_socket_addr(":26660").unwrap(),
            "0.0.0.0:26660".parse().unwrap()
        );
        assert!(parse_socket_addr("localhost:1").is_err());
        assert_eq!(
            "unix://data/admin.sock".parse::<AdminAddress>().unwrap(),
            AdminAddress::Unix("data/admin.sock".into())
        );
        assert_eq!(
            "unix:/run/rw.sock".parse::<AdminAddress>().unwrap(),
            AdminAddress::Unix("/run/rw.sock".into())
        );
        assert_eq!(
            "127.0.0.1:26670".parse::<AdminAddress>().unwrap(),
            AdminAddress::Tcp("127.0.0.1:26670".parse().unwrap())
        );
        assert!("unix://".parse::<AdminAddress>().is_err());
        assert!("nowhere".parse::<AdminAddress>().is_err());
    }

    #[test]
    fn lists_split_like_stock() {
        let items: Vec<_> = split_list(" a , ,b,, c ").collect();
        assert_eq!(items, ["a", "b", "c"]);
        assert_eq!(split_list("").count(), 0);
    }
}
