//! Role-addressed sends share their picks out fairly by network group: a sybil set of twenty
//! peers in one group claiming `archive`, next to three honest archive peers in three other
//! groups, gets its group's share of the picks, not twenty in twenty-three.
//!
//! Groups are stock's (the /16 of the peer's address). On loopback every address of
//! 127.0.0.0/8 reaches this host, so the sybils listen on 127.0.0.1 and the honest peers on
//! 127.1.0.1, 127.2.0.1 and 127.3.0.1; the sender dials each, so the address it sees for a peer
//! is the one the peer listens on. Nothing in the engine is replaced for the test.

use bytes::Bytes;
use ringwire::node::Node;
use ringwire::router::{Channel, Envelope, Fanout};
use ringwire_test_support::node::*;

const SYBILS: usize = 20;
const HONEST: usize = 3;
const MARK: &[u8] = b"mark";

/// Counts the messages `ch` receives before the marker.
fn count_until_mark(ch: &mut Channel) -> (usize, usize) {
    let (mut one, mut three) = (0, 0);
    loop {
        let Some(m) = ch.recv_blocking(secs(60)) else {
            panic!("no marker after {one} and {three} messages");
        };
        match &m.payload[..] {
            MARK => return (one, three),
            b"one" => one += 1,
            b"three" => three += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_sybil_group_gets_at_most_its_groups_share_of_role_sends() {
    // Room for every send in each peer's queue: fan-out drops what finds a queue full.
    let desc = ringwire::proto::conn::ChannelDescriptor {
        send_queue_capacity: 1024,
        ..chan(0x30, 1, 1024)
    };
    let sender = builder(201)
        .shards(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .channel(desc.clone())
        .start()
        .expect("sender starts");
    let out = sender.open_channel(desc.clone()).unwrap();
    let mut nodes: Vec<Node> = Vec::new();
    let mut readers = Vec::new();
    for i in 0..SYBILS + HONEST {
        let ip = if i < SYBILS {
            "127.0.0.1".to_string()
        } else {
            format!("127.{}.0.1", i - SYBILS + 1)
        };
        let node = builder_n(3000 + i as u32)
            .listen(format!("{ip}:0").parse().unwrap())
            .capabilities(["archive"])
            .channel(desc.clone())
            .start()
            .expect("peer starts");
        let mut ch = node.open_channel(desc.clone()).unwrap();
        // Each peer reads as the messages come, so no queue fills and nothing is dropped.
        readers.push(std::thread::spawn(move || count_until_mark(&mut ch)));
        sender
            .dial_blocking(node.listen_addr().unwrap(), Some(node.node_id()))
            .expect("dial the peer");
        nodes.push(node);
    }
    wait_peers(&sender, SYBILS + HONEST);

    // One pick per send, many sends: each of the four groups is picked a quarter of the time.
    let sends = 400;
    for _ in 0..sends {
        let n = out
            .send_blocking(
                Envelope::role("archive", Fanout::Count(1), Bytes::from_static(b"one")),
                secs(10),
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    // Three picks per send, fewer than the groups: never two from one group.
    let triples = 100;
    for _ in 0..triples {
        let n = out
            .send_blocking(
                Envelope::role("archive", Fanout::Count(3), Bytes::from_static(b"three")),
                secs(10),
            )
            .unwrap();
        assert_eq!(n, 3);
    }
    out.send_blocking(Envelope::broadcast(Bytes::from_static(MARK)), secs(10))
        .unwrap();

    let counts: Vec<(usize, usize)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(sender.stats().fanout_dropped, 0);
    let sybil_one: usize = counts[..SYBILS].iter().map(|c| c.0).sum();
    let sybil_three: usize = counts[..SYBILS].iter().map(|c| c.1).sum();
    let honest: Vec<(usize, usize)> = counts[SYBILS..].to_vec();
    eprintln!("single picks: sybil group {sybil_one} of {sends}, honest {honest:?}");
    // A quarter is 100 (one standard deviation is about 9); by peers, uniform picks would
    // have given the sybils about 348.
    assert!(
        sybil_one <= 150,
        "the sybil group got {sybil_one} of {sends} single picks"
    );
    for (one, _) in &honest {
        assert!(
            *one >= 50,
            "an honest group got {one} of {sends} single picks"
        );
    }
    assert_eq!(sybil_one + honest.iter().map(|c| c.0).sum::<usize>(), sends);
    // At most one of three picks went to the sybil group in each send.
    assert!(
        sybil_three <= triples,
        "the sybil group got {sybil_three} picks in {triples} sends of three"
    );
    assert_eq!(
        sybil_three + honest.iter().map(|c| c.1).sum::<usize>(),
        3 * triples
    );
    // No one sybil got more than its share of its group's.
    let most = counts[..SYBILS].iter().map(|c| c.0).max().unwrap();
    assert!(most <= 30, "one sybil got {most} single picks");

    for node in &nodes {
        node.shutdown_blocking(secs(5));
    }
    sender.shutdown_blocking(secs(5));
}
