//! The handshake rate per address: token buckets, their bound, and the refusal at accept.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::peers::rate::RateBuckets;
use crate::peers::{Admission, AdmissionLimits, HandshakeRate, Refused};
use crate::proto::secret::NodeId;

const LOCAL: NodeId = NodeId([0x50; 20]);

fn v4(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Three at once, then one every 500 ms.
fn rate() -> HandshakeRate {
    HandshakeRate {
        interval: ms(500),
        burst: 3,
    }
}

fn admission(f: impl FnOnce(&mut AdmissionLimits)) -> Admission {
    let mut limits = AdmissionLimits {
        handshake_rate: Some(rate()),
        max_pending_inbound_per_ip: 100,
        max_connections_per_ip: 100,
        allow_duplicate_ip: true,
        ..AdmissionLimits::default()
    };
    f(&mut limits);
    Admission::new(LOCAL, limits).unwrap()
}

#[test]
fn a_burst_then_one_token_per_interval() {
    let mut b = RateBuckets::new(Some(rate()), 16);
    let t0 = Instant::now();
    for _ in 0..3 {
        assert!(b.try_take(v4(1), t0));
    }
    assert!(!b.try_take(v4(1), t0), "the burst is spent");
    assert!(!b.try_take(v4(1), t0 + ms(499)));
    assert!(b.try_take(v4(1), t0 + ms(500)), "one token earned back");
    assert!(!b.try_take(v4(1), t0 + ms(500)));
    // Other addresses have buckets of their own.
    assert!(b.try_take(v4(2), t0));
    // Idle long enough, the bucket is full again: a whole burst, no more.
    let later = t0 + Duration::from_secs(10);
    for _ in 0..3 {
        assert!(b.try_take(v4(1), later));
    }
    assert!(!b.try_take(v4(1), later));
}

#[test]
fn no_rate_means_no_limit() {
    let mut b = RateBuckets::new(None, 16);
    let t0 = Instant::now();
    assert!((0..10_000).all(|_| b.try_take(v4(1), t0)));
    assert_eq!(b.len(), 0);
}

#[test]
fn full_buckets_are_forgotten() {
    let mut b = RateBuckets::new(Some(rate()), 16);
    let t0 = Instant::now();
    for n in 1..=10 {
        assert!(b.try_take(v4(n), t0));
    }
    assert_eq!(b.len(), 10);
    // One token spent: full again 500 ms later, and then dropped.
    assert!(b.try_take(v4(1), t0 + ms(500)));
    assert_eq!(b.len(), 1, "only the bucket just used is remembered");
}

#[test]
fn the_map_is_bounded_and_forgets_the_fullest_bucket() {
    let mut b = RateBuckets::new(Some(rate()), 4);
    let t0 = Instant::now();
    // Address 1 spends its whole burst first; the others one token each, a little later.
    for _ in 0..3 {
        assert!(b.try_take(v4(1), t0));
    }
    for n in 2..=200u8 {
        assert!(b.try_take(v4(n), t0 + ms(1)), "a fresh address has a burst");
        assert!(b.len() <= 4, "{} buckets", b.len());
    }
    // Address 1's empty bucket was never the fullest, so it is still remembered.
    assert!(!b.try_take(v4(1), t0 + ms(1)));
    // The evicted addresses start again with a full bucket.
    assert!(b.try_take(v4(2), t0 + ms(1)));
}

#[test]
fn settings_are_checked() {
    let ok = HandshakeRate::per_second(2.0, 10).unwrap();
    assert_eq!(ok.interval, ms(500));
    assert_eq!(ok.burst, 10);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(HandshakeRate::per_second(bad, 10).is_err(), "{bad}");
    }
    assert!(HandshakeRate::per_second(2.0, 0).is_err());
    let limits = AdmissionLimits {
        handshake_rate: Some(rate()),
        max_rate_addresses: 0,
        ..AdmissionLimits::default()
    };
    assert!(Admission::new(LOCAL, limits).is_err());
    assert_eq!(AdmissionLimits::default().handshake_rate, None);
}

#[test]
fn try_accept_refuses_over_the_rate_and_counts_it() {
    let a = admission(|_| {});
    let t0 = Instant::now();
    let held: Vec<_> = (0..3).map(|_| a.try_accept(v4(1), t0).unwrap()).collect();
    drop(held);
    // The handshakes ended; their places are free, but the address has no token left.
    assert_eq!(
        a.try_accept(v4(1), t0 + ms(10)).unwrap_err(),
        Refused::HandshakeRate
    );
    assert!(a.try_accept(v4(2), t0 + ms(10)).is_ok(), "another address");
    assert!(a.try_accept(v4(1), t0 + ms(500)).is_ok());
    assert_eq!(a.refusals().handshake_rate, 1);
    assert_eq!(a.refusals().total(), 1);
    assert_eq!(a.stats().rate_addresses, 2);
}

#[test]
fn a_socket_refused_for_another_reason_takes_no_token() {
    let a = admission(|c| c.max_pending_inbound_per_ip = 1);
    let t0 = Instant::now();
    let first = a.try_accept(v4(1), t0).unwrap();
    for _ in 0..10 {
        assert_eq!(
            a.try_accept(v4(1), t0).unwrap_err(),
            Refused::PendingPerIpFull
        );
    }
    drop(first);
    // Two tokens left of three.
    drop(a.try_accept(v4(1), t0).unwrap());
    drop(a.try_accept(v4(1), t0).unwrap());
    assert_eq!(a.try_accept(v4(1), t0).unwrap_err(), Refused::HandshakeRate);
}

#[test]
fn an_ipv6_prefix_shares_one_bucket_and_mapped_ipv4_is_ipv4() {
    let a = admission(|_| {});
    let t0 = Instant::now();
    for host in 1..=3u16 {
        let ip: IpAddr = format!("2001:db8:0:1::{host:x}").parse().unwrap();
        drop(a.try_accept(ip, t0).unwrap());
    }
    let same_prefix: IpAddr = "2001:db8:0:1:ffff::9".parse().unwrap();
    assert_eq!(
        a.try_accept(same_prefix, t0).unwrap_err(),
        Refused::HandshakeRate
    );
    let other_prefix: IpAddr = "2001:db8:0:2::1".parse().unwrap();
    assert!(a.try_accept(other_prefix, t0).is_ok());
    for _ in 0..3 {
        drop(a.try_accept(v4(7), t0).unwrap());
    }
    let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
    assert_eq!(
        a.try_accept(mapped, t0).unwrap_err(),
        Refused::HandshakeRate
    );
}
