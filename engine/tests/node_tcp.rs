//! Two nodes over loopback TCP: every channel, sizes from 1 byte to 16 MiB, native and forced
//! compat, every byte checked.

use ringwire::node::Limits;
use ringwire::proto::conn::Mode;
use ringwire::proto::secret::NodeId;
use ringwire::router::{Channel, Envelope, Origin};
use ringwire_test_support::node::*;

const SIZES: [usize; 7] = [
    1,
    100,
    1024,
    64 * 1024,
    1024 * 1024 + 7,
    4 * 1024 * 1024,
    16 * 1024 * 1024,
];

fn exchange(native: bool, lent_buffers: u16) {
    exchange_with(native, lent_buffers, 0);
}

fn exchange_with(native: bool, lent_buffers: u16, send_zc_threshold: usize) {
    let channels = [
        chan(0x20, 10, 17 << 20),
        chan(0x30, 5, 17 << 20),
        chan(0x40, 1, 17 << 20),
    ];
    let node = |seed| {
        let mut b = builder(seed)
            .listen("127.0.0.1:0".parse().unwrap())
            .offer_native(native)
            .limits(Limits {
                shard_read_buffers: lent_buffers,
                send_zc_threshold,
                ..Default::default()
            });
        for c in &channels {
            b = b.channel(c.clone());
        }
        b.start().expect("node starts")
    };
    let a = node(1);
    let b = node(2);
    let info = a
        .dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .expect("dial");
    assert_eq!(info.node_id, b.node_id());
    assert_eq!(info.mode, if native { Mode::Native } else { Mode::Compat });
    wait_peers(&b, 1);

    let mut a_ch: Vec<_> = channels
        .iter()
        .map(|c| a.open_channel(c.clone()).unwrap())
        .collect();
    let mut b_ch: Vec<_> = channels
        .iter()
        .map(|c| b.open_channel(c.clone()).unwrap())
        .collect();

    // a → b on every channel, then b → a, all sizes; senders on their own threads.
    one_way(&a_ch, &mut b_ch, a.node_id(), b.node_id());
    one_way(&b_ch, &mut a_ch, b.node_id(), a.node_id());
    // Both ends are on loopback, where the kernel copies a zero-copy send's pages anyway:
    // writes stay plain whatever the threshold (zero-copy sends over a link between network
    // namespaces: cli/tests/faults.rs, the black-hole test; the send path itself:
    // rt::net::tests::zero_copy_writes_deliver_every_byte).
    let zc = a.stats().zero_copy_writes + b.stats().zero_copy_writes;
    assert_eq!(zc, 0, "threshold {send_zc_threshold}");
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

fn one_way(from: &[Channel], to: &mut [Channel], from_id: NodeId, to_id: NodeId) {
    std::thread::scope(|s| {
        for (ci, ch) in from.iter().enumerate() {
            let sender = ch.sender();
            s.spawn(move || {
                for (k, &len) in SIZES.iter().enumerate() {
                    let p = payload(len, (ci * 16 + k) as u8);
                    sender
                        .send_blocking(Envelope::peer(to_id, p), secs(30))
                        .unwrap_or_else(|e| panic!("send {len} on {ci}: {e}"));
                }
            });
        }
        for (ci, ch) in to.iter_mut().enumerate() {
            for (k, &len) in SIZES.iter().enumerate() {
                let m = ch.recv_blocking(secs(30)).expect("message arrives");
                assert_eq!(m.origin, Origin::Peer(from_id));
                assert_eq!(m.channel, ch.id());
                assert_eq!(m.payload.len(), len);
                assert!(
                    m.payload == payload(len, (ci * 16 + k) as u8),
                    "bytes differ"
                );
            }
        }
    });
}

#[test]
fn native_pair_exchanges_every_size_on_every_channel() {
    exchange(true, 0);
}

#[test]
fn compat_pair_exchanges_every_size_on_every_channel() {
    exchange(false, 0);
}

#[test]
fn native_pair_with_lent_read_buffers() {
    exchange(true, 8);
}

#[test]
fn compat_pair_with_lent_read_buffers() {
    exchange(false, 8);
}

/// A low zero-copy threshold on loopback: the peer is on this host, so writes stay plain
/// copies (the kernel would copy a zero-copy send's pages there anyway); every byte still
/// arrives in order, in both modes.
#[test]
fn pairs_with_zero_copy_sends() {
    exchange_with(true, 0, 4096);
    exchange_with(false, 0, 4096);
}

/// io_uring: a native connection keeps one multishot receive armed on the shard's
/// provided-buffer ring; a ring far smaller than the traffic runs dry (ENOBUFS) again and again
/// and the receive is re-armed each time, while a slow application holds messages back.
/// Every byte still arrives in order. Compat connections (which must be able to stop reading)
/// keep single-shot reads. On epoll the same traffic runs on plain reads.
fn lent_buffers_under_pressure(native: bool) {
    let desc = chan(0x20, 1, 1 << 20);
    let node = |seed| {
        builder(seed)
            .listen("127.0.0.1:0".parse().unwrap())
            .offer_native(native)
            .limits(Limits {
                shard_read_buffers: 8,
                read_buffer: 4096,
                recv_queue_capacity: 2,
                ..Default::default()
            })
            .channel(desc.clone())
            .start()
            .expect("node starts")
    };
    let a = node(1);
    let b = node(2);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .expect("dial");
    wait_peers(&b, 1);
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    const COUNT: usize = 400;
    let to = b.node_id();
    std::thread::scope(|s| {
        let sender = ca.sender();
        s.spawn(move || {
            for k in 0..COUNT {
                let p = payload(1000 + (k * 37) % 20_000, k as u8);
                sender
                    .send_blocking(Envelope::peer(to, p), secs(30))
                    .unwrap_or_else(|e| panic!("send {k}: {e}"));
            }
        });
        for k in 0..COUNT {
            if k % 50 == 0 {
                // Let the queues fill so the receiver holds back.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let m = cb.recv_blocking(secs(30)).expect("message arrives");
            assert!(
                m.payload == payload(1000 + (k * 37) % 20_000, k as u8),
                "message {k} differs"
            );
        }
    });
    let stats = b.stats();
    eprintln!(
        "driver={} native={native}: {} multishot receives armed, {} buffers delivered, \
         {} ring exhaustions",
        b.driver(),
        stats.multishot_arms,
        stats.multishot_receives,
        stats.read_buffers_exhausted
    );
    if native && b.driver() == ringwire::rt::DriverKind::IoUring && stats.multishot_arms > 0 {
        // One arm delivers many buffers.
        assert!(stats.multishot_receives > stats.multishot_arms);
    } else {
        assert_eq!(stats.multishot_arms, 0);
        assert_eq!(stats.multishot_receives, 0);
    }
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

#[test]
fn native_multishot_receive_on_a_small_ring() {
    lent_buffers_under_pressure(true);
}

#[test]
fn compat_single_shot_receive_on_a_small_ring() {
    lent_buffers_under_pressure(false);
}
