//! The book's behaviour: bucketing by source group, bounds and eviction, promotion, bans,
//! picks, and the file.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use super::*;

/// Node `n` (its ID starts with `n`).
fn id(n: u32) -> NodeId {
    let mut raw = [0x11; 20];
    raw[..4].copy_from_slice(&n.to_be_bytes());
    NodeId(raw)
}

fn at(n: u32, ip: [u8; 4]) -> PexAddr {
    PexAddr {
        id: id(n),
        ip: IpAddr::V4(Ipv4Addr::from(ip)),
        port: 26656,
    }
}

/// Node `n` in a /16 of its own (for `n` below 65,536).
fn spread(n: u32) -> PexAddr {
    let [_, _, hi, lo] = n.to_be_bytes();
    at(n, [hi.wrapping_add(1), lo, 7, 7])
}

/// The `n` of [`id`].
fn num(a: &PexAddr) -> u32 {
    u32::from_be_bytes(a.id.0[..4].try_into().unwrap())
}

/// A peer at `ip` telling of others.
fn teller(n: u32, ip: [u8; 4]) -> PexAddr {
    at(1_000_000 + n, ip)
}

fn book(capacity: usize) -> AddrBook {
    AddrBook::new(capacity, true, 0x5eed)
}

/// The index and the tables agree with the entries.
fn consistent(b: &AddrBook) {
    assert_eq!(b.index.len(), b.entries.len());
    for (i, k) in b.entries.iter().enumerate() {
        assert_eq!(b.index.get(&k.addr.id), Some(&i));
        assert!(!k.buckets.is_empty(), "{} in no bucket", k.addr);
        let table = if k.tried { &b.tried } else { &b.new };
        for &bucket in &k.buckets {
            assert!(table.bucket(bucket).contains(&k.addr.id));
        }
    }
    assert_eq!(b.tried.refs(), b.entries.iter().filter(|k| k.tried).count());
    let new_refs: usize = b
        .entries
        .iter()
        .filter(|k| !k.tried)
        .map(|k| k.buckets.len())
        .sum();
    assert_eq!(b.new.refs(), new_refs);
    for t in [&b.new, &b.tried] {
        for bucket in 0..t.count() {
            assert!(t.bucket(bucket).len() <= 64);
        }
    }
    assert!(b.len() <= b.capacity);
}

#[test]
fn one_source_group_fills_at_most_its_share_of_the_new_table() {
    let t = Instant::now();
    let mut b = book(20_000);
    // 10,000 addresses, each in a /16 of its own, all told by peers of one /16.
    for n in 0..10_000 {
        let src = teller(n % 7, [5, 5, 1, n as u8]);
        b.learn(spread(n), src, t);
    }
    consistent(&b);
    let buckets = b.new.non_empty();
    assert!(buckets.len() <= 32, "{} buckets", buckets.len());
    assert!(
        b.len() <= 32 * 64,
        "{} addresses from one source group",
        b.len()
    );
    // Stock's share is reached, not just stayed under: the flood filled its buckets.
    assert!(b.len() >= 20 * 64, "{}", b.len());
    // Another source group still gets its addresses in.
    let honest: Vec<PexAddr> = (20_000..20_100).map(spread).collect();
    for (i, a) in honest.iter().enumerate() {
        assert_eq!(
            b.learn(*a, teller(99, [9, i as u8, 9, 9]), t),
            Inserted::Added
        );
    }
    assert!(honest.iter().all(|a| b.get(&a.id) == Some(*a)));
    consistent(&b);
}

#[test]
fn tried_addresses_are_not_evicted_by_hearsay() {
    let t = Instant::now();
    let mut b = book(150);
    let good: Vec<PexAddr> = (0..100).map(spread).collect();
    for (i, a) in good.iter().enumerate() {
        b.learn(*a, teller(1, [3, i as u8, 3, 3]), t);
        assert!(b.mark_good(&a.id, t));
    }
    assert_eq!(b.tried_len(), 100);
    // A flood from one source: the new part fills and churns, the tried part stays.
    let src = teller(2, [6, 6, 6, 6]);
    for n in 1000..6000 {
        b.learn(spread(n), src, t + Duration::from_secs(1));
    }
    consistent(&b);
    assert_eq!(b.len(), 150);
    assert_eq!(b.tried_len(), 100);
    assert!(good.iter().all(|a| b.is_tried(&a.id)));
    // A book full of tried addresses refuses hearsay and announcements alike.
    let mut full = book(3);
    for n in 0..3 {
        full.learn(spread(n), src, t);
        full.mark_good(&id(n), t);
    }
    assert_eq!(full.learn(spread(10), src, t), Inserted::Full);
    let me = spread(11);
    assert_eq!(full.announce(me, me, t), Inserted::Full);
    assert_eq!(full.len(), 3);
}

#[test]
fn a_full_bucket_evicts_a_bad_address_first_then_the_oldest() {
    let t = Instant::now();
    let src = teller(1, [5, 5, 5, 5]);
    let mut b = book(1000);
    // One group from one source: one bucket, 64 places.
    let one = |n: u32| at(n, [8, 8, (n >> 8) as u8, n as u8]);
    for n in 0..100 {
        b.learn(one(n), src, t + Duration::from_millis(u64::from(n)));
    }
    consistent(&b);
    assert_eq!(b.len(), 64);
    assert_eq!(b.evicted(), 36);
    assert!(
        (36..100).all(|n| b.get(&id(n)).is_some()),
        "the newest 64 stay"
    );
    // Address 50 failed three times and never succeeded: bad once its last attempt is a
    // minute old, so it goes before the oldest (36).
    for _ in 0..3 {
        b.mark_attempt(&id(50), t + Duration::from_secs(1));
    }
    let later = t + Duration::from_secs(120);
    assert_eq!(b.learn(one(200), src, later), Inserted::Added);
    assert_eq!(b.get(&id(50)), None, "the bad one went");
    assert!(b.get(&id(36)).is_some());
    // Then the oldest.
    assert_eq!(b.learn(one(201), src, later), Inserted::Added);
    assert_eq!(b.get(&id(36)), None);
    consistent(&b);
}

#[test]
fn a_full_book_evicts_from_its_most_crowded_bucket() {
    let t = Instant::now();
    let mut b = book(10);
    let crowd = teller(1, [5, 5, 5, 5]);
    let quiet = teller(2, [6, 6, 6, 6]);
    // Eight addresses of one group from one source share a bucket; two others sit elsewhere.
    for n in 0..8 {
        b.learn(at(n, [8, 8, 0, n as u8]), crowd, t);
    }
    b.learn(at(8, [9, 9, 0, 1]), quiet, t);
    b.learn(at(9, [10, 10, 0, 1]), quiet, t);
    let crowded = b.new_bucket(&at(0, [8, 8, 0, 0]), &crowd);
    assert_eq!(b.new.bucket(crowded).len(), 8, "one bucket");
    assert!(b.is_full());
    // Newcomers from anywhere push out the crowd's oldest, never the quiet ones.
    for n in 10..15 {
        let src = teller(n, [20 + n as u8, 1, 1, 1]);
        assert_eq!(b.learn(spread(n), src, t), Inserted::Added);
        assert_eq!(b.len(), 10);
    }
    assert!(b.get(&id(8)).is_some() && b.get(&id(9)).is_some());
    assert!((0..5).all(|n| b.get(&id(n)).is_none()));
    assert!((5..8).all(|n| b.get(&id(n)).is_some()));
    assert_eq!(b.evicted(), 5);
    consistent(&b);
    // No places at all: everything is refused.
    let mut none = book(0);
    assert_eq!(none.learn(spread(1), crowd, t), Inserted::Full);
    assert_eq!(none.announce(spread(1), spread(1), t), Inserted::Full);
}

#[test]
fn hearsay_never_evicts_nor_overwrites_an_announced_address() {
    let t = Instant::now();
    let mut b = book(3);
    for n in 0..3 {
        let me = at(n, [8, 8, 0, n as u8]);
        assert_eq!(b.announce(me, me, t), Inserted::Added);
        assert!(b.is_announced(&id(n)));
    }
    let src = teller(1, [8, 8, 0, 200]);
    assert_eq!(b.learn(at(10, [8, 8, 0, 10]), src, t), Inserted::Full);
    // A lie about a known node is refused; the same address again is fine.
    assert_eq!(b.learn(at(0, [6, 6, 6, 6]), src, t), Inserted::Conflict);
    assert_eq!(b.learn(at(0, [8, 8, 0, 0]), src, t), Inserted::Known);
    assert_eq!(b.get(&id(0)), Some(at(0, [8, 8, 0, 0])));
    // An announcement may replace the oldest announcement.
    let late = at(4, [8, 8, 0, 4]);
    assert_eq!(b.announce(late, late, t), Inserted::Added);
    assert_eq!(b.get(&id(0)), None);
    // Hearsay first, then the node announces another address: it moves there.
    let mut b = book(10);
    let heard = at(5, [1, 2, 3, 5]);
    assert_eq!(b.learn(heard, src, t), Inserted::Added);
    assert!(!b.is_announced(&id(5)));
    let moved = at(5, [4, 4, 4, 4]);
    assert_eq!(b.announce(moved, moved, t), Inserted::Updated);
    assert_eq!(b.get(&id(5)), Some(moved));
    assert!(b.is_announced(&id(5)));
    assert_eq!(b.learn(heard, src, t), Inserted::Conflict);
    assert_eq!(b.get(&id(5)), Some(moved));
    // A tried node that moves stays tried, at its new address.
    b.mark_good(&id(5), t);
    let again = at(5, [7, 7, 7, 7]);
    assert_eq!(b.announce(again, again, t), Inserted::Updated);
    assert!(b.is_tried(&id(5)));
    assert_eq!(b.get(&id(5)), Some(again));
    consistent(&b);
}

#[test]
fn an_address_told_by_many_sources_joins_at_most_four_buckets() {
    let t = Instant::now();
    let mut b = book(1000);
    let a = spread(1);
    for n in 0..200 {
        b.learn(a, teller(n, [10 + (n % 200) as u8, 1, 1, 1]), t);
    }
    let held = b.known(&a.id).unwrap().buckets.len();
    assert!((2..=4).contains(&held), "{held} buckets");
    assert_eq!(b.len(), 1);
    consistent(&b);
    // Promotion takes it out of all of them.
    b.mark_good(&a.id, t);
    assert_eq!(b.new.refs(), 0);
    assert_eq!(b.tried_len(), 1);
    consistent(&b);
}

#[test]
fn mark_good_promotes_and_a_full_tried_bucket_demotes_its_oldest() {
    let t = Instant::now();
    let mut b = book(2000);
    let src = teller(1, [5, 5, 5, 5]);
    // 600 addresses of one group: a group has four tried buckets of 64, 256 places.
    let one = |n: u32| at(n, [8, 8, (n >> 8) as u8, n as u8]);
    for n in 0..600 {
        b.learn(one(n), teller(n, [(n % 200) as u8 + 10, 2, 2, 2]), t);
    }
    let known: Vec<u32> = (0..600).filter(|&n| b.get(&id(n)).is_some()).collect();
    assert!(known.len() > 300, "{}", known.len());
    for (i, &n) in known.iter().enumerate() {
        assert!(b.mark_good(&id(n), t + Duration::from_millis(i as u64)));
    }
    consistent(&b);
    let tried_buckets = b.tried.non_empty();
    assert!(tried_buckets.len() <= 4, "{tried_buckets:?}");
    assert!(b.tried_len() <= 256);
    assert!(b.tried_len() >= 128, "{}", b.tried_len());
    // The last promoted are all tried; the demoted went back to the new table, not away.
    let last = known.last().copied().unwrap();
    assert!(b.is_tried(&id(last)));
    assert_eq!(b.len(), known.len(), "demotion loses nothing here");
    assert!(b.new_len() > 0);
    // Marking an unknown node does nothing.
    assert!(!b.mark_good(&id(9999), t));
    assert!(!b.mark_attempt(&id(9999), t));
    let _ = src;
}

#[test]
fn banned_addresses_are_refused_until_the_ban_ends() {
    let t = Instant::now();
    let s = Duration::from_secs;
    let mut b = book(10);
    let src = teller(1, [5, 5, 5, 5]);
    let bad = spread(1);
    b.learn(bad, src, t);
    assert!(b.mark_bad(&bad.id, t + s(60)));
    assert_eq!(b.len(), 0);
    assert!(b.is_banned(&bad.id, t + s(59)));
    assert_eq!(b.learn(bad, src, t + s(10)), Inserted::Banned);
    assert_eq!(b.announce(bad, bad, t + s(10)), Inserted::Banned);
    assert_eq!(b.end_bans(t + s(30)), 0, "not over yet");
    // Over: it returns to the new table.
    assert!(!b.is_banned(&bad.id, t + s(60)));
    assert_eq!(b.end_bans(t + s(60)), 1);
    assert_eq!(b.get(&bad.id), Some(bad));
    assert!(!b.is_tried(&bad.id));
    // An unknown node cannot be banned (as stock).
    assert!(!b.mark_bad(&id(77), t + s(60)));
    consistent(&b);
}

#[test]
fn picks_follow_the_bias_and_weigh_buckets_not_addresses() {
    let t = Instant::now();
    let mut b = book(1000);
    for n in 0..100 {
        b.learn(spread(n), teller(n, [(n as u8) + 10, 1, 1, 1]), t);
        if n < 50 {
            b.mark_good(&id(n), t);
        }
    }
    let tried = |a: &PexAddr| num(a) < 50;
    let mut count = |bias: u8| {
        (0..1000)
            .filter(|_| tried(&b.pick_address(bias).unwrap()))
            .count()
    };
    assert_eq!(count(100), 0, "bias 100: new only");
    assert_eq!(count(0), 1000, "bias 0: tried only");
    let half = count(50);
    assert!(
        (350..650).contains(&half),
        "{half} of 1000 tried at bias 50"
    );
    // An empty table gives way to the other; an empty book gives nothing.
    let mut only_new = book(10);
    only_new.learn(spread(1), teller(1, [5, 5, 5, 5]), t);
    assert_eq!(only_new.pick_address(0), Some(spread(1)));
    assert_eq!(book(10).pick_address(50), None);

    // A flood of 2,000 addresses from one source group against 50 honest addresses from 50
    // sources: picks go by bucket, so the honest ones are picked far above their 2.4 %.
    let mut b = book(20_000);
    for n in 0..2000 {
        b.learn(spread(n), teller(1, [5, 5, 5, 5]), t);
    }
    for n in 5000..5050 {
        b.learn(spread(n), teller(n, [(n % 200) as u8 + 20, 9, 9, 9]), t);
    }
    let honest = (0..2000)
        .filter(|_| b.pick_address(100).is_some_and(|a| num(&a) >= 5000))
        .count();
    assert!(honest > 600, "{honest} of 2000 picks honest");
}

#[test]
fn samples_are_random_distinct_and_filtered() {
    let t = Instant::now();
    let mut b = book(1000);
    for n in 0..100 {
        b.learn(spread(n), teller(n, [(n as u8) + 10, 1, 1, 1]), t);
    }
    let skip = spread(0);
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let s = b.sample(10, |a| *a != skip);
        assert_eq!(s.len(), 10);
        assert!(!s.contains(&skip));
        assert_eq!(
            s.iter().collect::<HashSet<_>>().len(),
            10,
            "no address twice"
        );
        seen.extend(s);
    }
    assert!(
        seen.len() > 60,
        "20 samples of 10 cover {} of 99",
        seen.len()
    );
    let all = b.sample(1000, |a| *a != skip);
    assert_eq!(all.len(), 99);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 99);
}

// ---- the file ------------------------------------------------------------------------------

fn clocks(now: Instant) -> Clocks {
    Clocks::new(
        now,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
}

/// Every address is accepted.
fn any(_: &PexAddr, _: bool) -> bool {
    true
}

#[test]
fn the_file_round_trips_the_book() {
    let t = Instant::now();
    let s = Duration::from_secs;
    let mut b = book(100);
    for n in 0..20 {
        b.learn(
            spread(n),
            teller(n % 3, [5, 5, 5, n as u8]),
            t + s(u64::from(n)),
        );
    }
    let me = at(50, [4, 4, 4, 4]);
    b.announce(me, me, t);
    b.mark_good(&id(3), t + s(30));
    b.mark_attempt(&id(4), t + s(31));
    b.mark_attempt(&id(4), t + s(32));
    b.mark_bad(&id(5), t + s(3600));
    let now = t + s(40);
    let file = b.to_file(&clocks(now));
    let bytes = file.to_json();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("{\n\t\"key\": \""), "{text}");
    assert!(text.contains("\"bucket_type\": 2"));
    assert!(text.contains("\"last_success\": \"0001-01-01T00:00:00Z\""));
    let back = AddrBookFile::from_json(&bytes).unwrap();
    assert_eq!(back, file);
    // The 19 unbanned and the announced address, then the banned one.
    assert_eq!(back.len(), 21);
    // Read an hour later by both clocks: the same book, and the ban has ended.
    let later = Clocks::new(
        now + s(3600),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 3600),
    );
    let (r, report) = AddrBook::from_file(&back, 100, true, 9, &later, any);
    assert_eq!(report.loaded, 21);
    assert_eq!(report.tried, 1);
    assert_eq!(report.banned, 0, "the ban ended meanwhile");
    assert_eq!(r.key, b.key);
    let mut want = b.addresses();
    want.push(spread(5));
    want.sort();
    assert_eq!(r.addresses(), want);
    for k in &b.entries {
        let got = r.known(&k.addr.id).unwrap();
        assert_eq!(got.src, k.src);
        assert_eq!(got.tried, k.tried);
        assert_eq!(got.buckets, k.buckets, "same buckets under the same key");
        assert_eq!(got.attempts, k.attempts);
        assert_eq!(got.last_attempt, k.last_attempt);
        assert_eq!(got.last_success, k.last_success);
    }
    assert!(r.is_announced(&me.id));
    // Read before the ban ends, it is still banned.
    let (r, report) = AddrBook::from_file(&back, 100, true, 9, &clocks(now + s(60)), any);
    assert_eq!(report.banned, 1);
    assert!(r.is_banned(&id(5), now + s(60)));
    assert_eq!(r.get(&id(5)), None);
    consistent(&r);
}

/// A book as stock CometBFT writes it (`p2p/pex/file.go`: tab-indented, times in the local
/// zone with nanoseconds), written by hand from its format: two new addresses, one in two
/// buckets, a tried one, an IPv6 one, and entries stock would never write.
const STOCK_BOOK: &str = r#"{
	"key": "0f1e2d3c4b5a69788796a5b4",
	"addrs": [
		{
			"addr": {
				"id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				"ip": "1.2.3.4",
				"port": 26656
			},
			"src": {
				"id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
				"ip": "5.6.7.8",
				"port": 26656
			},
			"buckets": [
				17,
				201
			],
			"attempts": 2,
			"bucket_type": 1,
			"last_attempt": "2023-11-14T23:13:20.123456789+01:00",
			"last_success": "0001-01-01T00:00:00Z",
			"last_ban_time": "0001-01-01T00:00:00Z"
		},
		{
			"addr": {
				"id": "cccccccccccccccccccccccccccccccccccccccc",
				"ip": "9.9.9.9",
				"port": 26656
			},
			"src": {
				"id": "cccccccccccccccccccccccccccccccccccccccc",
				"ip": "9.9.9.9",
				"port": 26656
			},
			"buckets": [
				5
			],
			"attempts": 0,
			"bucket_type": 2,
			"last_attempt": "2023-11-14T22:00:00Z",
			"last_success": "2023-11-14T22:00:00Z",
			"last_ban_time": "0001-01-01T00:00:00Z"
		},
		{
			"addr": {
				"id": "dddddddddddddddddddddddddddddddddddddddd",
				"ip": "2a01:4f8::1",
				"port": 26656
			},
			"src": {
				"id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
				"ip": "5.6.7.8",
				"port": 26656
			},
			"buckets": [
				900
			],
			"attempts": 0,
			"bucket_type": 1,
			"last_attempt": "2023-11-14T22:10:00Z",
			"last_success": "0001-01-01T00:00:00Z",
			"last_ban_time": "0001-01-01T00:00:00Z"
		},
		{
			"addr": {"id": "eeee", "ip": "1.1.1.1", "port": 26656},
			"src": {"id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ip": "5.6.7.8", "port": 26656},
			"buckets": [1], "attempts": 0, "bucket_type": 1,
			"last_attempt": "2023-11-14T22:00:00Z", "last_success": "0001-01-01T00:00:00Z",
			"last_ban_time": "0001-01-01T00:00:00Z"
		},
		{
			"addr": {"id": "ffffffffffffffffffffffffffffffffffffffff", "ip": "1.1.1.1", "port": 26656},
			"src": {"id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ip": "5.6.7.8", "port": 26656},
			"buckets": [1], "attempts": 0, "bucket_type": 3,
			"last_attempt": "2023-11-14T22:00:00Z", "last_success": "0001-01-01T00:00:00Z",
			"last_ban_time": "0001-01-01T00:00:00Z"
		},
		{
			"addr": {"id": "1111111111111111111111111111111111111111", "ip": "1.1.1.1", "port": 26656},
			"src": {"id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ip": "5.6.7.8", "port": 26656},
			"buckets": [1], "attempts": 0, "bucket_type": 1,
			"last_attempt": "yesterday", "last_success": "0001-01-01T00:00:00Z",
			"last_ban_time": "0001-01-01T00:00:00Z"
		},
		{
			"addr": {"id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ip": "6.6.6.6", "port": 26656},
			"src": {"id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ip": "5.6.7.8", "port": 26656},
			"buckets": [1], "attempts": 0, "bucket_type": 1,
			"last_attempt": "2023-11-14T22:00:00Z", "last_success": "0001-01-01T00:00:00Z",
			"last_ban_time": "0001-01-01T00:00:00Z"
		}
	]
}"#;

#[test]
fn a_stock_book_is_read() {
    let now = Instant::now();
    // 2023-11-14T22:13:20Z by the wall clock.
    let c = clocks(now);
    let file = AddrBookFile::from_json(STOCK_BOOK.as_bytes()).unwrap();
    assert_eq!(file.key(), "0f1e2d3c4b5a69788796a5b4");
    assert_eq!(file.len(), 7);
    let (b, report) = AddrBook::from_file(&file, 100, true, 1, &c, any);
    assert_eq!(report.loaded, 3);
    assert_eq!(report.tried, 1);
    // A short ID, bucket type 3, a time that is not RFC 3339, a node twice.
    assert_eq!(report.invalid, 4);
    assert_eq!(b.key.as_str(), "0f1e2d3c4b5a69788796a5b4");
    let a: NodeId = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
    let c_id: NodeId = "cccccccccccccccccccccccccccccccccccccccc".parse().unwrap();
    let d: NodeId = "dddddddddddddddddddddddddddddddddddddddd".parse().unwrap();
    let ka = b.known(&a).unwrap();
    assert_eq!(ka.addr.ip, "1.2.3.4".parse::<IpAddr>().unwrap());
    assert_eq!(ka.buckets, vec![17, 201], "stock's buckets are kept");
    assert_eq!(ka.attempts, 2);
    assert!(!ka.announced());
    // 23:13:20.123456789+01:00 is 22:13:20.123456789Z: 0.123456789 s ahead of the wall clock,
    // and an attempt cannot lie ahead.
    assert_eq!(ka.last_attempt, Some(now));
    assert_eq!(ka.last_success, None);
    let kc = b.known(&c_id).unwrap();
    assert!(kc.tried && kc.announced());
    assert_eq!(kc.buckets, vec![5]);
    assert_eq!(kc.last_success, Some(now - Duration::from_secs(800)));
    // Bucket 900 does not exist: the address goes where ringwire computes.
    let kd = b.known(&d).unwrap();
    assert_eq!(kd.buckets, vec![b.new_bucket(&kd.addr, &kd.src)]);
    consistent(&b);
    // Written back and read again: the same three.
    let again = AddrBookFile::from_json(&b.to_file(&c).to_json()).unwrap();
    let (b2, _) = AddrBook::from_file(&again, 100, true, 2, &c, any);
    assert_eq!(b2.addresses(), b.addresses());
    assert!(b2.is_tried(&c_id));
}

#[test]
fn reading_a_file_keeps_to_the_bounds_and_the_policy() {
    let t = Instant::now();
    let c = clocks(t);
    // A file with 300 addresses of one group from one source in one listed bucket, and 10
    // tried ones elsewhere, read into a book of 50.
    let mut big = book(10_000);
    for n in 0..10 {
        big.learn(spread(n), teller(n, [(n as u8) + 10, 1, 1, 1]), t);
        big.mark_good(&id(n), t);
    }
    let mut file = big.to_file(&c);
    let src = teller(1, [5, 5, 5, 5]);
    for n in 100..400 {
        let one = at(n, [8, 8, (n >> 8) as u8, n as u8]);
        let mut e = file.addrs[0].clone();
        e.addr = Some(file::FileAddr::from_addr(&one));
        e.src = Some(file::FileAddr::from_addr(&src));
        e.bucket_type = 1;
        e.buckets = Some(vec![3]);
        file.addrs.push(e);
    }
    let (b, report) = AddrBook::from_file(&file, 50, true, 1, &c, any);
    consistent(&b);
    assert_eq!(b.len(), 50);
    assert_eq!(report.tried, 10, "tried addresses come first");
    assert_eq!(report.loaded, 50);
    assert_eq!(report.dropped, 300 - 40);
    // Bucket 3 takes 64, then the computed bucket of the rest is used.
    let (b, report) = AddrBook::from_file(&file, 1000, true, 1, &c, any);
    consistent(&b);
    assert_eq!(b.new.bucket(3).len(), 64);
    assert_eq!(report.loaded, b.len());
    assert!(b.len() < 310);
    // The policy refuses what it refuses.
    let (b, report) = AddrBook::from_file(&file, 1000, true, 1, &c, |a, _| {
        a.ip.to_string().starts_with("8.8.")
    });
    assert_eq!(report.refused, 10);
    assert!(
        b.addresses()
            .iter()
            .all(|a| a.ip.to_string().starts_with("8.8."))
    );
    // A key that is not printable is replaced.
    let mut odd = file.clone();
    odd.key = "bad key\n".into();
    let (b, _) = AddrBook::from_file(&odd, 10, true, 1, &c, any);
    assert_eq!(b.key.as_str().len(), 24);
}

#[test]
fn attempts_are_written_within_gos_int32() {
    let t = Instant::now();
    let mut b = book(10);
    b.learn(spread(1), teller(1, [5, 5, 5, 5]), t);
    b.known_mut(&id(1)).unwrap().attempts = u32::MAX;
    let text = String::from_utf8(b.to_file(&clocks(t)).to_json()).unwrap();
    assert!(text.contains("\"attempts\": 2147483647"), "{text}");
}
