//! `id@host:port` address checks with the exact acceptance rules of stock CometBFT's
//! `NewNetAddressString` (`p2p/netaddress.go`), which in turn relies on Go's `net.SplitHostPort`,
//! `netip.ParseAddr` and `strconv.ParseUint(s, 10, 16)`.
//!
//! Stock resolves a host that is not an IP literal with a DNS lookup. This core does no I/O, so a
//! host name is checked for the syntax Go's resolver demands (`isDomainName`) and then handed to a
//! caller-supplied lookup that says whether it resolves.

/// Why an address was rejected. The text follows the stock error it corresponds to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddrError {
    /// The address does not split into exactly `id` and `host:port` on `@`.
    NoId,
    /// The ID is empty, not hex, or not 20 bytes long.
    InvalidId(&'static str),
    /// `net.SplitHostPort` rejects the `host:port` part.
    InvalidHostPort(&'static str),
    /// The host part is empty.
    EmptyHost,
    /// The host is neither an IP literal nor a name the lookup resolves.
    Lookup,
    /// The port is not a decimal number in `0..=65535`.
    InvalidPort,
}

impl AddrError {
    /// A short explanation, in the words of the stock error.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::NoId => "address does not contain ID",
            Self::InvalidId(why) | Self::InvalidHostPort(why) => why,
            Self::EmptyHost => "host is empty",
            Self::Lookup => "host is not an IP address and does not resolve",
            Self::InvalidPort => "invalid port",
        }
    }
}

/// Stock `removeProtocolIfDefined`: when the text contains `://`, keep what lies between the
/// first and the second `://` (Go's `strings.Split(addr, "://")[1]`).
pub(crate) fn remove_protocol(addr: &str) -> &str {
    addr.split("://").nth(1).unwrap_or(addr)
}

/// Stock `IDAddressString(id, listenAddr)` followed by `NewNetAddressString`: does the node's
/// ID together with its listen address form an address stock accepts?
pub(crate) fn check_id_listen_addr(
    id: &str,
    listen_addr: &str,
    lookup: &mut dyn FnMut(&str) -> bool,
) -> Result<(), AddrError> {
    let joined = format!("{id}@{}", remove_protocol(listen_addr));
    check_id_address(&joined, lookup)
}

/// Stock `NewNetAddressString`: `[proto://]id@host:port`.
pub(crate) fn check_id_address(
    addr: &str,
    lookup: &mut dyn FnMut(&str) -> bool,
) -> Result<(), AddrError> {
    let addr = remove_protocol(addr);
    let mut parts = addr.split('@');
    let (Some(id), Some(host_port), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AddrError::NoId);
    };
    validate_id(id).map_err(AddrError::InvalidId)?;
    let (host, port) = split_host_port(host_port).map_err(AddrError::InvalidHostPort)?;
    if host.is_empty() {
        return Err(AddrError::EmptyHost);
    }
    // Stock tries net.ParseIP and then net.LookupIP; LookupIP accepts any netip.ParseAddr literal
    // (an IPv6 zone included) without a query, and asks DNS only for a valid domain name.
    let resolves = is_ip_literal(host) || (is_domain_name(host) && lookup(host));
    if !resolves {
        return Err(AddrError::Lookup);
    }
    parse_port(port).ok_or(AddrError::InvalidPort)?;
    Ok(())
}

/// Stock `validateID`: non-empty, hex (either case), exactly 20 bytes.
pub(crate) fn validate_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("no ID");
    }
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) || !id.len().is_multiple_of(2) {
        return Err("ID is not valid hex");
    }
    if id.len() != 40 {
        return Err("invalid hex length, expected 20 bytes");
    }
    Ok(())
}

/// Go's `net.SplitHostPort`, rule for rule.
pub(crate) fn split_host_port(hostport: &str) -> Result<(&str, &str), &'static str> {
    const MISSING_PORT: &str = "missing port in address";
    const TOO_MANY_COLONS: &str = "too many colons in address";
    let b = hostport.as_bytes();
    let Some(i) = hostport.rfind(':') else {
        return Err(MISSING_PORT);
    };
    let (host, j, k) = if b.first() == Some(&b'[') {
        let Some(end) = hostport.find(']') else {
            return Err("missing ']' in address");
        };
        let after = end + 1;
        if after == b.len() {
            return Err(MISSING_PORT);
        }
        if after != i {
            return Err(if b.get(after) == Some(&b':') {
                TOO_MANY_COLONS
            } else {
                MISSING_PORT
            });
        }
        (hostport.get(1..end).unwrap_or(""), 1, after)
    } else {
        let host = hostport.get(..i).unwrap_or("");
        if host.contains(':') {
            return Err(TOO_MANY_COLONS);
        }
        (host, 0, 0)
    };
    if hostport.get(j..).is_some_and(|s| s.contains('[')) {
        return Err("unexpected '[' in address");
    }
    if hostport.get(k..).is_some_and(|s| s.contains(']')) {
        return Err("unexpected ']' in address");
    }
    Ok((host, hostport.get(i + 1..).unwrap_or("")))
}

/// Go's `strconv.ParseUint(s, 10, 16)`: one or more ASCII digits (leading zeros allowed), at
/// most 65535.
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u32 = 0;
    for d in s.bytes() {
        v = v.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
        if v > u32::from(u16::MAX) {
            return None;
        }
    }
    u16::try_from(v).ok()
}

/// Go's `netip.ParseAddr` succeeds: dotted-quad IPv4 without leading zeros, or IPv6 (with an
/// optional trailing IPv4 and an optional non-empty `%zone`).
pub(crate) fn is_ip_literal(s: &str) -> bool {
    for c in s.bytes() {
        match c {
            b'.' => return parse_ipv4(s.as_bytes()),
            b':' => return parse_ipv6(s),
            b'%' => return false,
            _ => {}
        }
    }
    false
}

/// Go's `parseIPv4Fields` over a whole string: four decimal fields, each 0..=255, no leading
/// zero, no empty field.
fn parse_ipv4(s: &[u8]) -> bool {
    let (mut val, mut fields, mut digits) = (0u32, 0usize, 0usize);
    for (i, &c) in s.iter().enumerate() {
        if c.is_ascii_digit() {
            if digits == 1 && val == 0 {
                return false;
            }
            val = val * 10 + u32::from(c - b'0');
            digits += 1;
            if val > 255 {
                return false;
            }
        } else if c == b'.' {
            if i == 0 || i + 1 == s.len() || s.get(i - 1) == Some(&b'.') || fields == 3 {
                return false;
            }
            fields += 1;
            val = 0;
            digits = 0;
        } else {
            return false;
        }
    }
    fields == 3
}

/// Go's `parseIPv6`.
fn parse_ipv6(input: &str) -> bool {
    let mut s = input.as_bytes();
    if let Some(p) = input.find('%') {
        if p + 1 == input.len() {
            return false; // an explicit zone must not be empty
        }
        s = s.get(..p).unwrap_or(&[]);
    }
    let mut ellipsis: Option<usize> = None;
    if s.starts_with(b"::") {
        ellipsis = Some(0);
        s = s.get(2..).unwrap_or(&[]);
        if s.is_empty() {
            return true;
        }
    }
    let mut i = 0usize; // bytes of the address filled so far
    while i < 16 {
        let mut off = 0usize;
        let mut acc = 0u32;
        while let Some(&c) = s.get(off) {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            acc = (acc << 4) + u32::from(d);
            if off > 3 || acc > 0xffff {
                return false;
            }
            off += 1;
        }
        if off == 0 {
            return false;
        }
        if s.get(off) == Some(&b'.') {
            // Trailing IPv4: only in the last four bytes, or anywhere after an ellipsis.
            if (ellipsis.is_none() && i != 12) || i + 4 > 16 {
                return false;
            }
            if !parse_ipv4(s) {
                return false;
            }
            s = &[];
            i += 4;
            break;
        }
        i += 2;
        s = s.get(off..).unwrap_or(&[]);
        if s.is_empty() {
            break;
        }
        if s.first() != Some(&b':') || s.len() == 1 {
            return false;
        }
        s = s.get(1..).unwrap_or(&[]);
        if s.first() == Some(&b':') {
            if ellipsis.is_some() {
                return false;
            }
            ellipsis = Some(i);
            s = s.get(1..).unwrap_or(&[]);
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return false;
    }
    match ellipsis {
        None => i == 16,
        Some(_) => i < 16, // the ellipsis must stand for at least one zero group
    }
}

/// Go's `isDomainName` (`net/dnsclient.go`): the syntax Go's resolver requires before it asks
/// DNS for a name.
pub(crate) fn is_domain_name(s: &str) -> bool {
    if s == "." {
        return true;
    }
    let b = s.as_bytes();
    let l = b.len();
    if l == 0 || l > 254 || (l == 254 && b.last() != Some(&b'.')) {
        return false;
    }
    let mut last = b'.';
    let mut non_numeric = false;
    let mut part_len = 0usize;
    for &c in b {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                non_numeric = true;
                part_len += 1;
            }
            b'0'..=b'9' => part_len += 1,
            b'-' => {
                if last == b'.' {
                    return false;
                }
                part_len += 1;
                non_numeric = true;
            }
            b'.' => {
                if last == b'.' || last == b'-' || part_len > 63 || part_len == 0 {
                    return false;
                }
                part_len = 0;
            }
            _ => return false,
        }
        last = c;
    }
    if last == b'-' || part_len > 63 {
        return false;
    }
    non_numeric
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_prefix_is_removed_like_stock() {
        assert_eq!(remove_protocol("tcp://1.2.3.4:5"), "1.2.3.4:5");
        assert_eq!(remove_protocol("1.2.3.4:5"), "1.2.3.4:5");
        assert_eq!(remove_protocol("a://b://c"), "b");
        assert_eq!(remove_protocol("://"), "");
    }

    #[test]
    fn split_host_port_matches_go() {
        assert_eq!(split_host_port("1.2.3.4:80"), Ok(("1.2.3.4", "80")));
        assert_eq!(split_host_port("[::1]:80"), Ok(("::1", "80")));
        assert_eq!(split_host_port(":80"), Ok(("", "80")));
        assert_eq!(split_host_port("host:"), Ok(("host", "")));
        assert_eq!(split_host_port("[]:1"), Ok(("", "1")));
        assert!(split_host_port("host").is_err());
        assert!(split_host_port("::1:80").is_err());
        assert!(split_host_port("[::1]").is_err());
        assert!(split_host_port("[::1]x:80").is_err());
        assert!(split_host_port("[::1]:80:90").is_err());
        assert!(split_host_port("[::1:80").is_err());
        assert!(split_host_port("a[b:80").is_err());
        assert!(split_host_port("a]b:80").is_err());
        assert!(split_host_port("[a]]:80").is_err());
    }

    #[test]
    fn ip_literals_match_netip() {
        for ok in [
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "1::",
            "fe80::1%eth0",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:8",
            "1::2:3:4:5:6:7",
            "0001:2::",
            "::1.2.3.4",
        ] {
            assert!(is_ip_literal(ok), "{ok} must parse");
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "256.1.1.1",
            "1..2.3",
            "1.2.3.4.",
            ".1.2.3",
            "1.2.3.4%eth0",
            "fe80::1%",
            "%eth0",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7:8::",
            "1:2:3:4::5:6:7:8",
            "12345::",
            "1::2::3",
            "1:2:3:4:5:6:7",
            "1.2.3.4::",
            "1:2:3:4:5:1.2.3.4",
            "::1.2.3",
            "1:",
            "localhost",
        ] {
            assert!(!is_ip_literal(bad), "{bad} must not parse");
        }
    }

    #[test]
    fn domain_names_match_go() {
        for ok in ["localhost", "a.b", "a-b.c", "x_y", "a.", ".", "1a"] {
            assert!(is_domain_name(ok), "{ok}");
        }
        for bad in ["", "1.2.3", "-a", "a-", "a..b", "a.-b", "a b", "a%b", ".a"] {
            assert!(!is_domain_name(bad), "{bad}");
        }
        assert!(is_domain_name(&"a".repeat(63)));
        assert!(!is_domain_name(&"a".repeat(64)));
    }

    #[test]
    fn ports_match_parse_uint() {
        assert_eq!(parse_port("0"), Some(0));
        assert_eq!(parse_port("00080"), Some(80));
        assert_eq!(parse_port("65535"), Some(65535));
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port(""), None);
        assert_eq!(parse_port("+1"), None);
        assert_eq!(parse_port("1_0"), None);
        assert_eq!(parse_port("99999999999999999999999"), None);
    }

    #[test]
    fn ids_match_validate_id() {
        assert!(validate_id(&"ab".repeat(20)).is_ok());
        assert!(validate_id(&"AB".repeat(20)).is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id(&"ab".repeat(19)).is_err());
        assert!(validate_id(&"zz".repeat(20)).is_err());
        assert!(validate_id(&"a".repeat(41)).is_err());
    }
}
