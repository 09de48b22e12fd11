//! Backpressure: a peer whose application stopped reading makes `try_send` report `Full` after
//! a bounded number of messages and `send` return `Timeout` at its deadline, while the node's
//! other peers keep flowing.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::node::Limits;
use ringwire::router::{Envelope, SendError};
use ringwire_test_support::node::*;

fn stalled_peer_times_out(native: bool) {
    let desc = chan(0x20, 1, 1 << 20);
    let a = queue_node(1, native, 4);
    let b = queue_node(2, native, 4);
    let c = queue_node(3, native, 4);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    a.dial_blocking(c.listen_addr().unwrap(), Some(c.node_id()))
        .unwrap();
    let ca = a.open_channel(desc.clone()).unwrap();
    // b opens its channel but never reads it.
    let _cb = b.open_channel(desc.clone()).unwrap();
    let mut cc = c.open_channel(desc).unwrap();

    let msg = Bytes::from(vec![0x5A; 16 * 1024]);
    let give_up = secs(60);
    let mut accepted = 0usize;
    // Once `try_send` says Full, a send with a deadline must return Timeout: not before its
    // deadline, and within the deadline plus 10% (the bound). The wait is a second long
    // so that 10% is well above scheduler noise; the time is taken just before the call and
    // just after it. Full may be momentary (the shard drains, and the kernel may grow a
    // socket buffer while the sender waits), so a send that succeeds in the wait is counted and
    // the sender goes on until one does time out.
    let wait = Duration::from_secs(1);
    let took = loop {
        match ca.try_send(Envelope::peer(b.node_id(), msg.clone())) {
            Ok(_) => accepted += 1,
            Err(SendError::Full) => {
                let start = Instant::now();
                let result =
                    ca.send_blocking(Envelope::peer(b.node_id(), msg.clone()), start + wait);
                let took = start.elapsed();
                match result {
                    Ok(_) => accepted += 1,
                    Err(SendError::Timeout) => break took,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(
            Instant::now() < give_up,
            "the stalled peer never pushed back"
        );
    };
    eprintln!("native={native}: {accepted} messages of 16 KiB accepted before Timeout");
    eprintln!("native={native}: Timeout after {took:?} for a {wait:?} deadline");
    // Bounded: queues, flow-control windows and socket buffers hold a finite amount.
    assert!(
        accepted < 4096,
        "{accepted} messages of 16 KiB were accepted"
    );
    assert!(took >= wait, "returned early, after {took:?}");
    assert!(
        took <= wait + wait / 10,
        "Timeout came {took:?} after the call, more than the deadline + 10%"
    );

    // The other peer still flows.
    for i in 0..50u8 {
        ca.send_blocking(
            Envelope::peer(c.node_id(), Bytes::from(vec![i; 1000])),
            secs(10),
        )
        .unwrap();
    }
    for i in 0..50u8 {
        let m = cc.recv_blocking(secs(10)).expect("c receives");
        assert_eq!(m.payload, vec![i; 1000]);
    }
    // And b is still connected: it was slow, not broken.
    assert!(a.peers().iter().any(|p| p.info.node_id == b.node_id()));
    for n in [&a, &b, &c] {
        n.shutdown_blocking(secs(5));
    }
}

#[test]
fn native_stalled_peer_times_out_while_others_flow() {
    stalled_peer_times_out(true);
}

#[test]
fn compat_stalled_peer_times_out_while_others_flow() {
    stalled_peer_times_out(false);
}

#[test]
fn keepalive_is_answered_while_the_application_does_not_drain() {
    let desc = chan(0x20, 1, 1 << 20);
    let quick = |seed| {
        builder(seed)
            .listen("127.0.0.1:0".parse().unwrap())
            .limits(Limits {
                recv_queue_capacity: 2,
                ..Default::default()
            })
            .channel(desc.clone())
            .connection_config(|c| {
                c.native_ping_interval = Duration::from_millis(50);
                c.native_pong_timeout = Duration::from_millis(200);
            })
            .start()
            .unwrap()
    };
    let a = quick(1);
    let b = quick(2);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    for i in 0..20u8 {
        ca.send_blocking(
            Envelope::peer(b.node_id(), Bytes::from(vec![i; 100])),
            secs(5),
        )
        .unwrap();
    }
    // b's application sleeps through many ping intervals and pong timeouts.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(a.peers().len(), 1, "a dropped the slow peer");
    assert_eq!(b.peers().len(), 1, "b dropped its peer");
    for i in 0..20u8 {
        let m = cb.recv_blocking(secs(5)).expect("queued messages arrive");
        assert_eq!(m.payload, vec![i; 100]);
    }
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}
