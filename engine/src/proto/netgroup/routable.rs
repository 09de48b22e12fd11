//! Whether an address is routable on the public internet: stock's `NetAddress.Routable`
//! (`p2p/netaddress.go`), which `addr_book_strict` applies, plus multicast.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is worth gossiping to strangers: not unspecified, loopback, private
/// (RFC 1918, RFC 4193), link-local (RFC 3927, RFC 4862), 0.0.0.0/8, broadcast, benchmark
/// (RFC 2544), documentation (RFC 3849), ORCHID (RFC 4843) or multicast. An IPv4-mapped IPv6
/// address is judged as its IPv4 address.
pub(crate) fn is_routable(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => routable_v4(v4),
        IpAddr::V6(v6) => routable_v6(v6),
    }
}

fn routable_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // RFC 2544: 198.18.0.0/15.
        || (a == 198 && (b & 0xfe) == 18))
}

fn routable_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // RFC 4193: fc00::/7.
        || (s[0] & 0xfe00) == 0xfc00
        // RFC 4862: fe80::/64.
        || (s[0] == 0xfe80 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        // RFC 4843: 2001:10::/28.
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010)
        // RFC 3849: 2001:db8::/32.
        || (s[0] == 0x2001 && s[1] == 0x0db8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> bool {
        is_routable(text.parse().unwrap())
    }

    #[test]
    fn stock_non_routable_ranges_are_refused() {
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "2001:10::1",
            "2001:db8::1",
            "ff02::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(!ok(bad), "{bad} counted as routable");
        }
        for good in [
            "1.2.3.4",
            "8.8.8.8",
            "172.32.0.1",
            "198.20.0.1",
            "203.0.113.7",
            "2606:4700::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(ok(good), "{good} counted as non-routable");
        }
    }
}
