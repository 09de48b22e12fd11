//! Peer addresses: `<node id>@<host>:<port>`, the syntax of `persistent_peers`, `seeds` and
//! `unconditional`-style lists in CometBFT's `config.toml`.
//!
//! The policy is documented on [`PeerAddr`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::proto::secret::{IdentityError, NodeId};

/// Longest address accepted, in bytes (a 253-byte hostname, the ID, scheme and port fit).
pub const MAX_ADDR_LEN: usize = 320;
/// Longest hostname accepted, in bytes (the DNS limit, without a trailing dot).
pub const MAX_HOSTNAME_LEN: usize = 253;
/// Longest hostname label accepted, in bytes (the DNS limit).
pub const MAX_LABEL_LEN: usize = 63;

/// Where a peer listens: an IP address or a hostname still to be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS hostname, lowercased; the dialer resolves it.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// A peer's identity and listening address: `<node id>@<host>:<port>`.
///
/// Parsing follows stock CometBFT (`NewNetAddressString` and the node's list splitting):
///
/// - an optional `scheme://` prefix (`tcp://`, as CometBFT writes it) is stripped;
/// - exactly one `@` separates a node ID of 40 hex characters (either case) from `host:port`;
/// - the host is an IPv4 address, an IPv6 address in brackets (`[::1]:26656`) or a hostname;
/// - the port is decimal digits (leading zeros allowed, no sign) in `1..=65535`;
/// - a list is comma-separated; whitespace around entries is trimmed and empty entries are
///   skipped, so `"a, b,"` is two addresses and `""` is none.
///
/// Where ringwire is stricter than stock, it is on input stock could not have used either:
///
/// - Stock resolves hostnames while parsing. This module performs no I/O: a hostname is kept as
///   [`Host::Name`] (lowercased, checked against DNS syntax) and resolved by whoever dials.
/// - Port 0 is refused (stock parses it, then fails to dial it).
/// - Brackets must hold an IP address (stock would try to resolve anything in brackets), and a
///   hostname whose last label is all digits is refused (it is a mistyped IPv4 address such as
///   `127.0.0:26656`, which stock fails to resolve).
/// - An IPv4-mapped IPv6 address (`[::ffff:1.2.3.4]`) is stored as the IPv4 address it maps,
///   as Go's `net.IP` prints it.
///
/// [`PeerAddr`]'s `Display` writes the canonical form, and parsing that form gives back the
/// same value. Inputs longer than [`MAX_ADDR_LEN`] are refused before any other work, and
/// error messages quote at most that much input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The node ID the dialer must find at the other end (checked after the handshake).
    pub id: NodeId,
    /// The host to dial.
    pub host: Host,
    /// The TCP port to dial (never 0).
    pub port: u16,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.id, self.host, self.port)
    }
}

/// Why an address could not be parsed. Each variant quotes the (bounded) input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The input is longer than [`MAX_ADDR_LEN`].
    #[error("peer address is {0} bytes long, at most {MAX_ADDR_LEN} are allowed")]
    TooLong(usize),
    /// The input is empty (after trimming whitespace).
    #[error("peer address is empty: expected <node id>@host:port")]
    Empty,
    /// There is no `@` separating the node ID from `host:port`.
    #[error("peer address {0:?} has no node ID: expected <40 hex characters>@host:port")]
    MissingId(String),
    /// There is more than one `@`.
    #[error("peer address {0:?} has more than one '@': expected <node id>@host:port")]
    ExtraAt(String),
    /// The part before `@` is not a node ID.
    #[error("peer address {addr:?} has an invalid node ID: {source}")]
    InvalidId {
        /// The whole address.
        addr: String,
        /// What is wrong with the ID.
        source: IdentityError,
    },
    /// The part after `@` has no `:port`.
    #[error("peer address {0:?} has no port: expected <node id>@host:port")]
    MissingPort(String),
    /// The port is not decimal digits in `1..=65535`.
    #[error(
        "peer address {addr:?} has an invalid port {port:?}: expected a number from 1 to 65535"
    )]
    InvalidPort {
        /// The whole address.
        addr: String,
        /// The port text.
        port: String,
    },
    /// The host is empty.
    #[error("peer address {0:?} has an empty host")]
    EmptyHost(String),
    /// The host contains ':' but is not in brackets.
    #[error("peer address {0:?}: an IPv6 host must be in brackets, as in id@[::1]:26656")]
    UnbracketedIpv6(String),
    /// A `[` has no matching `]`, or the `]` is not followed by `:port`.
    #[error("peer address {0:?} has malformed brackets: expected id@[ipv6]:port")]
    BadBrackets(String),
    /// Brackets hold something that is not an IP address.
    #[error("peer address {addr:?}: {host:?} in brackets is not an IP address")]
    BracketedNotIp {
        /// The whole address.
        addr: String,
        /// The text between the brackets.
        host: String,
    },
    /// The host is neither an IP address nor a valid hostname.
    #[error(
        "peer address {addr:?}: host {host:?} is not an IP address or a valid hostname ({reason})"
    )]
    InvalidHost {
        /// The whole address.
        addr: String,
        /// The host text.
        host: String,
        /// Which rule the hostname breaks.
        reason: &'static str,
    },
}

/// Why a comma-separated list of addresses could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index} of the peer list: {source}")]
pub struct AddrListError {
    /// Zero-based position of the bad entry among the non-empty entries.
    pub index: usize,
    /// What is wrong with it.
    pub source: AddrError,
}

impl FromStr for PeerAddr {
    type Err = AddrError;

    fn from_str(input: &str) -> Result<Self, AddrError> {
        if input.len() > MAX_ADDR_LEN {
            return Err(AddrError::TooLong(input.len()));
        }
        if input.is_empty() {
            return Err(AddrError::Empty);
        }
        let owned = || input.to_owned();
        // Stock strips whatever precedes the first "://".
        let rest = match input.find("://") {
            Some(at) => input.get(at + 3..).unwrap_or_default(),
            None => input,
        };
        let mut parts = rest.split('@');
        let (id_text, host_port) = match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(hp), None) => (id, hp),
            (_, None, _) => return Err(AddrError::MissingId(owned())),
            _ => return Err(AddrError::ExtraAt(owned())),
        };
        let id = id_text
            .parse::<NodeId>()
            .map_err(|source| AddrError::InvalidId {
                addr: owned(),
                source,
            })?;
        let (host, port_text) = split_host_port(input, host_port)?;
        let port = parse_port(input, port_text)?;
        Ok(PeerAddr { id, host, port })
    }
}

/// Splits `host:port` the way Go's `net.SplitHostPort` does and parses the host.
fn split_host_port<'a>(addr: &str, host_port: &'a str) -> Result<(Host, &'a str), AddrError> {
    if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(AddrError::BadBrackets(addr.to_owned()));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(if after.is_empty() {
                AddrError::MissingPort(addr.to_owned())
            } else {
                AddrError::BadBrackets(addr.to_owned())
            });
        };
        if inside.is_empty() {
            return Err(AddrError::EmptyHost(addr.to_owned()));
        }
        let ip = inside
            .parse::<IpAddr>()
            .map_err(|_| AddrError::BracketedNotIp {
                addr: addr.to_owned(),
                host: inside.to_owned(),
            })?;
        return Ok((Host::Ip(canonical_ip(ip)), port));
    }
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return Err(AddrError::MissingPort(addr.to_owned()));
    };
    if host.contains(':') {
        return Err(AddrError::UnbracketedIpv6(addr.to_owned()));
    }
    if host.contains('[') || host.contains(']') || port.contains('[') || port.contains(']') {
        return Err(AddrError::BadBrackets(addr.to_owned()));
    }
    if host.is_empty() {
        return Err(AddrError::EmptyHost(addr.to_owned()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((Host::Ip(canonical_ip(ip)), port));
    }
    check_hostname(host).map_err(|reason| AddrError::InvalidHost {
        addr: addr.to_owned(),
        host: host.to_owned(),
        reason,
    })?;
    Ok((Host::Name(host.to_ascii_lowercase()), port))
}

/// An IPv4-mapped IPv6 address becomes the IPv4 address it maps.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn parse_port(addr: &str, text: &str) -> Result<u16, AddrError> {
    let bad = || AddrError::InvalidPort {
        addr: addr.to_owned(),
        port: text.to_owned(),
    };
    if text.is_empty() {
        return Err(AddrError::MissingPort(addr.to_owned()));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(port) => Ok(port),
    }
}

/// Checks DNS hostname syntax: labels of letters, digits, '-' and '_' (as container
/// orchestrators use), no label empty or longer than 63 bytes or starting or ending with '-',
/// at most 253 bytes, an optional trailing dot, and a last label that is not all digits.
fn check_hostname(host: &str) -> Result<(), &'static str> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > MAX_HOSTNAME_LEN {
        return Err("longer than 253 bytes");
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("label longer than 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("only letters, digits, '-', '_' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err("looks like a malformed IPv4 address");
    }
    Ok(())
}

/// Parses a comma-separated list such as `persistent_peers` or `seeds`.
///
/// Whitespace around each entry is trimmed and empty entries are skipped; the first bad entry
/// fails the whole list (as a stock node refuses to start with a bad persistent peer).
pub fn parse_addr_list(list: &str) -> Result<Vec<PeerAddr>, AddrListError> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| {
            entry
                .parse::<PeerAddr>()
                .map_err(|source| AddrListError { index, source })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ID: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

    fn id() -> NodeId {
        ID.parse().unwrap()
    }

    fn parse(s: &str) -> Result<PeerAddr, AddrError> {
        s.parse()
    }

    #[test]
    fn ipv4_hostname_ipv6() {
        let a = parse(&format!("{ID}@127.0.0.1:8080")).unwrap();
        assert_eq!(a.id, id());
        assert_eq!(a.host, Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(a.port, 8080);

        let a = parse(&format!("{ID}@Node-1.Example.COM:26656")).unwrap();
        assert_eq!(a.host, Host::Name("node-1.example.com".into()));

        let a = parse(&format!("{ID}@[::1]:26656")).unwrap();
        assert_eq!(a.host, Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(a.to_string(), format!("{ID}@[::1]:26656"));

        let a = parse(&format!("{ID}@[2001:db8::1]:1")).unwrap();
        assert_eq!(a.to_string(), format!("{ID}@[2001:db8::1]:1"));

        let a = parse(&format!("{ID}@my_service:26656")).unwrap();
        assert_eq!(a.host, Host::Name("my_service".into()));
        let a = parse(&format!("{ID}@localhost.:26656")).unwrap();
        assert_eq!(a.host, Host::Name("localhost.".into()));
    }

    #[test]
    fn scheme_is_stripped_like_stock() {
        for scheme in ["tcp://", "udp://"] {
            let a = parse(&format!("{scheme}{ID}@127.0.0.1:8080")).unwrap();
            assert_eq!(a.to_string(), format!("{ID}@127.0.0.1:8080"));
        }
        // "tcp//" is not a scheme: the ID becomes "tcp//dead…", which is invalid.
        assert!(matches!(
            parse(&format!("tcp//{ID}@127.0.0.1:8080")),
            Err(AddrError::InvalidId { .. })
        ));
    }

    #[test]
    fn uppercase_id_and_leading_zero_port() {
        let a = parse(&format!("{}@1.2.3.4:026656", ID.to_uppercase())).unwrap();
        assert_eq!(a.id, id());
        assert_eq!(a.port, 26656);
        assert_eq!(a.to_string(), format!("{ID}@1.2.3.4:26656"));
    }

    #[test]
    fn ipv4_mapped_becomes_ipv4() {
        let a = parse(&format!("{ID}@[::ffff:10.0.0.1]:5")).unwrap();
        assert_eq!(a.host, Host::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        let a = parse(&format!("{ID}@[1.2.3.4]:5")).unwrap();
        assert_eq!(a.host, Host::Ip(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))));
    }

    /// The failing cases of CometBFT's `TestNewNetAddressString`, plus ringwire's own.
    #[test]
    fn stock_failures_fail() {
        let cases = [
            "127.0.0.1:8080",
            "tcp://127.0.0.1:8080",
            "udp://127.0.0.1:8080",
            "notahost",
            "127.0.0.1:notapath",
            "notahost:8080",
            "8082",
            "127.0.0:8080000",
            "deadbeef@127.0.0.1:8080",
            "this-isnot-hex@127.0.0.1:8080",
            "xxxxbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
            "tcp://deadbeef@127.0.0.1:8080",
            "tcp://this-isnot-hex@127.0.0.1:8080",
            "tcp://xxxxbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
            "tcp://@127.0.0.1:8080",
            "tcp://@",
            "tcp://:26656",
            "",
            "@",
            " @",
            " @ ",
        ];
        for case in cases {
            assert!(parse(case).is_err(), "{case:?} parsed");
        }
    }

    #[test]
    fn each_error_names_the_problem() {
        let e = |rest: &str| parse(&format!("{ID}@{rest}")).unwrap_err();
        assert_eq!(parse("").unwrap_err(), AddrError::Empty);
        assert!(matches!(parse("1.2.3.4:5"), Err(AddrError::MissingId(_))));
        assert!(matches!(
            parse(&format!("{ID}@a@b:1")),
            Err(AddrError::ExtraAt(_))
        ));
        assert!(matches!(
            parse("abc@1.2.3.4:5"),
            Err(AddrError::InvalidId {
                source: IdentityError::NodeIdLength(3),
                ..
            })
        ));
        assert!(matches!(e("1.2.3.4"), AddrError::MissingPort(_)));
        assert!(matches!(e("1.2.3.4:"), AddrError::MissingPort(_)));
        assert!(matches!(e("[::1]"), AddrError::MissingPort(_)));
        assert!(matches!(e("1.2.3.4:0"), AddrError::InvalidPort { .. }));
        assert!(matches!(e("1.2.3.4:65536"), AddrError::InvalidPort { .. }));
        assert!(matches!(e("1.2.3.4:+80"), AddrError::InvalidPort { .. }));
        assert!(matches!(e("1.2.3.4:-1"), AddrError::InvalidPort { .. }));
        assert!(matches!(e("1.2.3.4: 80"), AddrError::InvalidPort { .. }));
        assert!(matches!(e(":80"), AddrError::EmptyHost(_)));
        assert!(matches!(e("[]:80"), AddrError::EmptyHost(_)));
        assert!(matches!(e("::1:80"), AddrError::UnbracketedIpv6(_)));
        assert!(matches!(e("[::1:80"), AddrError::BadBrackets(_)));
        assert!(matches!(e("[::1]x:80"), AddrError::BadBrackets(_)));
        assert!(matches!(e("a]:80"), AddrError::BadBrackets(_)));
        assert!(matches!(e("[host]:80"), AddrError::BracketedNotIp { .. }));
        assert!(matches!(e("127.0.0:80"), AddrError::InvalidHost { .. }));
        assert!(matches!(e("010.0.0.1:80"), AddrError::InvalidHost { .. }));
        assert!(matches!(e("a..b:80"), AddrError::InvalidHost { .. }));
        assert!(matches!(e("-a.b:80"), AddrError::InvalidHost { .. }));
        assert!(matches!(e("a b:80"), AddrError::InvalidHost { .. }));
        assert!(matches!(e("é.com:80"), AddrError::InvalidHost { .. }));
        assert!(matches!(
            e(&format!("{}.com:80", "a".repeat(64))),
            AddrError::InvalidHost { .. }
        ));
        let long = ["a".repeat(63).as_str(); 4].join(".");
        assert!(matches!(
            e(&format!("{long}:80")),
            AddrError::InvalidHost { .. }
        ));
        assert_eq!(
            parse(&"a".repeat(MAX_ADDR_LEN + 1)).unwrap_err(),
            AddrError::TooLong(MAX_ADDR_LEN + 1)
        );
    }

    #[test]
    fn messages_are_readable() {
        let msg = parse(&format!("{ID}@1.2.3.4:99999"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("\"99999\"") && msg.contains("1 to 65535"),
            "{msg}"
        );
        let err = parse_addr_list(&format!("{ID}@a:1, bad")).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(
            err.to_string().starts_with("entry 1 of the peer list: "),
            "{err}"
        );
    }

    #[test]
    fn list_splitting_matches_stock() {
        let a = format!("{ID}@1.2.3.4:1");
        let b = format!("{ID}@[::1]:2");
        assert_eq!(parse_addr_list("").unwrap(), vec![]);
        assert_eq!(parse_addr_list("   ").unwrap(), vec![]);
        assert_eq!(parse_addr_list(" , ,").unwrap(), vec![]);
        let list = parse_addr_list(&format!(" {a} ,\t{b}\n, ")).unwrap();
        assert_eq!(list, vec![parse(&a).unwrap(), parse(&b).unwrap()]);
        assert_eq!(parse_addr_list(&format!("{a},{b}")).unwrap().len(), 2);
    }

    fn arb_host() -> impl Strategy<Value = Host> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| Host::Ip(IpAddr::from(b))),
            any::<[u8; 16]>().prop_map(|b| Host::Ip(canonical_ip(IpAddr::from(b)))),
            "([a-z0-9_]([a-z0-9-]{0,6}[a-z0-9])?\\.){0,3}[a-z]([a-z0-9-]{0,6}[a-z0-9])?"
                .prop_map(Host::Name),
        ]
    }

    proptest! {
        #[test]
        fn display_round_trips(id in any::<[u8; 20]>(), host in arb_host(), port in 1u16..) {
            let addr = PeerAddr { id: NodeId(id), host, port };
            let text = addr.to_string();
            prop_assert_eq!(text.parse::<PeerAddr>(), Ok(addr.clone()));
            let list = parse_addr_list(&format!(" {text} , {text},")).unwrap();
            prop_assert_eq!(list, vec![addr.clone(), addr]);
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,400}") {
            if let Ok(addr) = s.parse::<PeerAddr>() {
                prop_assert_eq!(addr.to_string().parse::<PeerAddr>(), Ok(addr));
            }
            let _ = parse_addr_list(&s);
        }

        #[test]
        fn near_miss_input_never_panics(s in "[0-9a-f@:\\[\\]./x ]{0,80}") {
            let _ = s.parse::<PeerAddr>();
            let with_id = format!("{ID}@{s}");
            if let Ok(addr) = with_id.parse::<PeerAddr>() {
                prop_assert_eq!(addr.to_string().parse::<PeerAddr>(), Ok(addr));
            }
        }
    }
}
