//! Network groups, as stock computes them (`groupKey` in `p2p/pex/addrbook.go`): addresses in
//! one group are assumed to be under one operator's control, so the book spreads what one group
//! tells it, and what it says about one group, over a bounded number of buckets.
//!
//! - IPv4 (and IPv4-mapped IPv6): the /16, as `a.b.0.0`.
//! - IPv6 carrying an IPv4 address — IPv4-translated (RFC 6145, `::ffff:0:a.b.c.d`), the
//!   well-known NAT64 prefix (RFC 6052, `64:ff9b::/96`), 6to4 (RFC 3964, `2002::/16`) and Teredo
//!   (RFC 4380, `2001::/32`, the address inverted) — the /16 of that IPv4 address.
//! - OnionCat Tor addresses (`fd87:d87e:eb43::/48`): `tor:N`, N the low four bits of byte 6.
//! - Other IPv6: the /32, the /36 inside Hurricane Electric's `2001:470::/32`.
//! - With `strict` (the book's `addr_book_strict`), loopback and `0.0.0.0/8` are the group
//!   `local` and other non-routable addresses the group `unroutable`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::routable::is_routable;

/// The group of `ip`.
pub(crate) fn group_key(ip: IpAddr, strict: bool) -> String {
    let ip = ip.to_canonical();
    if strict && is_local(ip) {
        return "local".to_owned();
    }
    if strict && !is_routable(ip) {
        return "unroutable".to_owned();
    }
    let v6 = match ip {
        IpAddr::V4(v4) => return slash16(v4.octets()),
        IpAddr::V6(v6) => v6,
    };
    let o = v6.octets();
    let [s0, s1, s2, s3, s4, s5, ..] = v6.segments();
    let tail = [o[12], o[13], o[14], o[15]];
    // RFC 6145 (::ffff:0:0:0/96) and RFC 6052 (64:ff9b::/96): the last four bytes.
    if (s0, s1, s2, s3, s4, s5) == (0, 0, 0, 0, 0xffff, 0)
        || (s0, s1, s2, s3, s4, s5) == (0x64, 0xff9b, 0, 0, 0, 0)
    {
        return slash16(tail);
    }
    // RFC 3964 (2002::/16): bytes 2 to 5.
    if s0 == 0x2002 {
        return slash16([o[2], o[3], o[4], o[5]]);
    }
    // RFC 4380 (2001::/32): the last four bytes, inverted.
    if s0 == 0x2001 && s1 == 0 {
        return slash16(tail.map(|b| b ^ 0xff));
    }
    // OnionCat (fd87:d87e:eb43::/48).
    if (s0, s1, s2) == (0xfd87, 0xd87e, 0xeb43) {
        return format!("tor:{}", o[6] & 0x0f);
    }
    let bits = if s0 == 0x2001 && s1 == 0x0470 { 36 } else { 32 };
    let masked = u128::from(v6) & (u128::MAX << (128 - bits));
    Ipv6Addr::from(masked).to_string()
}

/// Stock's `Local`: loopback, or IPv4 `0.0.0.0/8`.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.octets()[0] == 0,
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// `a.b.0.0` of an IPv4 address.
fn slash16([a, b, ..]: [u8; 4]) -> String {
    Ipv4Addr::new(a, b, 0, 0).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(ip: &str, strict: bool) -> String {
        group_key(ip.parse().unwrap(), strict)
    }

    #[test]
    fn groups_follow_stock() {
        for (ip, want) in [
            ("1.2.3.4", "1.2.0.0"),
            ("1.2.200.9", "1.2.0.0"),
            ("1.3.3.4", "1.3.0.0"),
            ("::ffff:1.2.3.4", "1.2.0.0"),
            ("::ffff:0:1.2.3.4", "1.2.0.0"),
            ("64:ff9b::1.2.3.4", "1.2.0.0"),
            ("2002:102:304::1", "1.2.0.0"),
            ("2001:0:4136:e378:8000:63bf:fefd:fcfb", "1.2.0.0"),
            ("2a01:4f8:1:2::3", "2a01:4f8::"),
            ("2a01:4f8:ffff::3", "2a01:4f8::"),
            ("2001:470:1234::1", "2001:470:1000::"),
            ("2001:470:2234::1", "2001:470:2000::"),
        ] {
            assert_eq!(g(ip, true), want, "{ip}");
            assert_eq!(g(ip, false), want, "{ip} (lax)");
        }
        // Strict books name local and non-routable groups; lax ones group them like others.
        assert_eq!(g("127.0.0.1", true), "local");
        assert_eq!(g("0.1.2.3", true), "local");
        assert_eq!(g("::1", true), "local");
        assert_eq!(g("10.1.2.3", true), "unroutable");
        assert_eq!(g("fe80::1", true), "unroutable");
        assert_eq!(g("127.0.0.1", false), "127.0.0.0");
        assert_eq!(g("10.1.2.3", false), "10.1.0.0");
        // OnionCat lies in RFC 4193's range: a strict book calls it non-routable first.
        assert_eq!(g("fd87:d87e:eb43:1234:5678::", false), "tor:2");
        assert_eq!(g("fd87:d87e:eb43:1234:5678::", true), "unroutable");
    }
}
