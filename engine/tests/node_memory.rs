//! Whole nodes over the in-memory transport (no sockets): message exchange in both modes,
//! local delivery, request/response.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::node::Node;
use ringwire::proto::conn::{ChannelDescriptor, Mode};
use ringwire::router::{Envelope, Origin, PeerEvent, SendError};
use ringwire_test_support::node::*;

const SIZES: [usize; 6] = [
    1,
    1000,
    65 * 1024,
    1024 * 1024,
    5 * 1024 * 1024 + 3,
    16 * 1024 * 1024,
];

fn memory_pair(native: bool, channels: &[ChannelDescriptor]) -> (Node, Node) {
    let mut ba = builder(1).offer_native(native);
    let mut bb = builder(2).offer_native(native);
    for c in channels {
        ba = ba.channel(c.clone());
        bb = bb.channel(c.clone());
    }
    let a = ba.start().expect("a starts");
    let b = bb.start().expect("b starts");
    let info = a.connect_memory_blocking(&b).expect("connect");
    assert_eq!(info.node_id, b.node_id());
    assert_eq!(info.mode, if native { Mode::Native } else { Mode::Compat });
    wait_peers(&b, 1);
    (a, b)
}

fn exchange(native: bool) {
    let channels = [chan(0x20, 8, 17 << 20), chan(0x38, 1, 17 << 20)];
    let (a, b) = memory_pair(native, &channels);
    let ca: Vec<_> = channels
        .iter()
        .map(|c| a.open_channel(c.clone()).unwrap())
        .collect();
    let mut cb: Vec<_> = channels
        .iter()
        .map(|c| b.open_channel(c.clone()).unwrap())
        .collect();
    let to = b.node_id();
    std::thread::scope(|s| {
        for (ci, ch) in ca.iter().enumerate() {
            let sender = ch.sender();
            s.spawn(move || {
                for (k, &len) in SIZES.iter().enumerate() {
                    sender
                        .send_blocking(
                            Envelope::peer(to, payload(len, (ci * 8 + k) as u8)),
                            secs(30),
                        )
                        .unwrap_or_else(|e| panic!("send {len}: {e}"));
                }
            });
        }
        for (ci, ch) in cb.iter_mut().enumerate() {
            for (k, &len) in SIZES.iter().enumerate() {
                let m = ch.recv_blocking(secs(30)).expect("message arrives");
                assert_eq!(m.origin, Origin::Peer(a.node_id()));
                assert!(
                    m.payload == payload(len, (ci * 8 + k) as u8),
                    "{len} bytes differ"
                );
            }
        }
    });
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

#[test]
fn native_memory_pair_exchanges_every_size() {
    exchange(true);
}

#[test]
fn compat_memory_pair_exchanges_every_size() {
    exchange(false);
}

#[test]
fn local_delivery_hands_over_the_same_buffer() {
    let node = builder(1).channel(chan(0x20, 1, 1024)).start().unwrap();
    let mut ch = node.open_channel(chan(0x20, 1, 1024)).unwrap();
    let sent = Bytes::from(vec![7u8; 512]);
    let ptr = sent.as_ptr();
    assert_eq!(ch.try_send(Envelope::local(sent.clone())), Ok(1));
    let got = ch.recv_blocking(secs(5)).expect("local message");
    assert_eq!(got.origin, Origin::Local);
    assert_eq!(
        got.payload.as_ptr(),
        ptr,
        "the receiver must get the very same buffer"
    );
    assert_eq!(got.payload, sent);
    // Same from another thread through a cloned sender, with the async send.
    let sender = ch.sender();
    let sent2 = Bytes::from_static(b"static bytes");
    let ptr2 = sent2.as_ptr();
    std::thread::spawn(move || {
        sender
            .send_blocking(Envelope::local(sent2), secs(5))
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(ch.recv_blocking(secs(5)).unwrap().payload.as_ptr(), ptr2);
    node.shutdown_blocking(secs(5));
}

#[test]
fn local_queue_full_then_timeout() {
    let limits = ringwire::node::Limits {
        recv_queue_capacity: 2,
        ..Default::default()
    };
    let node = builder(1).limits(limits).start().unwrap();
    let ch = node.open_channel(chan(0x20, 1, 1024)).unwrap();
    ch.try_send(Envelope::local(Bytes::from_static(b"1")))
        .unwrap();
    ch.try_send(Envelope::local(Bytes::from_static(b"2")))
        .unwrap();
    assert_eq!(
        ch.try_send(Envelope::local(Bytes::from_static(b"3"))),
        Err(SendError::Full)
    );
    let start = Instant::now();
    let deadline = start + Duration::from_millis(100);
    assert_eq!(
        ch.send_blocking(Envelope::local(Bytes::from_static(b"3")), deadline),
        Err(SendError::Timeout)
    );
    assert!(Instant::now() >= deadline);
    node.shutdown_blocking(secs(5));
}

#[test]
fn request_response_round_trip_and_deadline() {
    let desc = chan(0x60, 1, 1 << 20);
    let (a, b) = memory_pair(true, std::slice::from_ref(&desc));
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    let responder = std::thread::spawn(move || {
        // Answer the first two requests, ignore the third.
        for i in 0..3 {
            let m = cb.recv_blocking(secs(10)).expect("request");
            let req = m.request.clone().expect("a request");
            assert_eq!(req.channel(), 0x60);
            if i < 2 {
                let mut answer = m.payload.to_vec();
                answer.reverse();
                cb.respond(req, Bytes::from(answer)).unwrap();
            }
        }
        cb
    });
    let peer = b.node_id();
    let r = ca
        .request_blocking(peer, Bytes::from_static(b"abc"), secs(10))
        .unwrap();
    assert_eq!(r, &b"cba"[..]);
    let big = payload(300_000, 9);
    let r = ca.request_blocking(peer, big.clone(), secs(10)).unwrap();
    let mut expect = big.to_vec();
    expect.reverse();
    assert!(r == expect);
    let start = Instant::now();
    let deadline = start + Duration::from_millis(200);
    assert_eq!(
        ca.request_blocking(peer, Bytes::from_static(b"nobody answers"), deadline),
        Err(SendError::Timeout)
    );
    assert!(Instant::now() >= deadline);
    responder.join().unwrap();
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

/// Waits until the peer's CANCEL has marked `req`.
fn wait_cancelled(req: &ringwire::router::PendingRequest) {
    let deadline = secs(10);
    while !req.is_cancelled() {
        assert!(
            Instant::now() < deadline,
            "the cancel never reached the responder"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_dropped_request_is_cancelled_at_the_peer() {
    let desc = chan(0x60, 1, 1 << 20);
    let (a, b) = memory_pair(true, std::slice::from_ref(&desc));
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    let m = {
        let mut fut = pin!(ca.request(b.node_id(), Bytes::from_static(b"q"), secs(10)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(fut.as_mut().poll(&mut cx), Poll::Pending));
        let m = cb.recv_blocking(secs(10)).expect("request arrives");
        assert!(!m.request.as_ref().unwrap().is_cancelled());
        m
        // Dropping the future here gives the request up: a CANCEL goes to the peer.
    };
    let req = m.request.unwrap();
    wait_cancelled(&req);
    assert_eq!(
        cb.respond(req, Bytes::from_static(b"late")),
        Err(SendError::Cancelled)
    );
    // The connection is still fine, and nothing late came back.
    let responder = std::thread::spawn(move || {
        let m = cb.recv_blocking(secs(10)).unwrap();
        let req = m.request.unwrap();
        assert!(!req.is_cancelled());
        cb.respond(req, Bytes::from_static(b"ok")).unwrap();
    });
    assert_eq!(
        ca.request_blocking(b.node_id(), Bytes::from_static(b"q2"), secs(10))
            .unwrap(),
        &b"ok"[..]
    );
    responder.join().unwrap();
    assert_eq!(a.stats().late_responses, 0);
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

#[test]
fn a_request_past_its_deadline_is_cancelled_at_the_peer() {
    let desc = chan(0x60, 1, 1 << 20);
    let (a, b) = memory_pair(true, std::slice::from_ref(&desc));
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    let peer = b.node_id();
    let asker = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_millis(300);
        let r = ca.request_blocking(peer, Bytes::from_static(b"slow"), deadline);
        (r, ca)
    });
    let m = cb.recv_blocking(secs(10)).expect("request arrives");
    let req = m.request.unwrap();
    wait_cancelled(&req);
    let (r, _ca) = asker.join().unwrap();
    assert_eq!(r, Err(SendError::Timeout));
    assert_eq!(
        cb.respond(req, Bytes::from_static(b"too late")),
        Err(SendError::Cancelled)
    );
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

#[test]
fn requests_to_compat_peers_are_unsupported() {
    let desc = chan(0x60, 1, 1 << 20);
    let (a, b) = memory_pair(false, std::slice::from_ref(&desc));
    let ca = a.open_channel(desc).unwrap();
    assert_eq!(
        ca.request_blocking(b.node_id(), Bytes::from_static(b"q"), secs(5)),
        Err(SendError::Unsupported)
    );
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

#[test]
fn shutdown_tells_the_peer_and_events_report_it() {
    let desc = chan(0x20, 1, 1024);
    let (a, b) = memory_pair(true, std::slice::from_ref(&desc));
    let mut events = b.peer_events();
    let ca = a.open_channel(desc).unwrap();
    a.shutdown_blocking(secs(5));
    match wait_down(&mut events) {
        PeerEvent::Down { node_id, reason } => {
            assert_eq!(node_id, a.node_id());
            assert!(
                reason.to_string().contains("node shutting down"),
                "{reason}"
            );
        }
        PeerEvent::Up { .. } => unreachable!(),
    }
    assert_eq!(
        ca.try_send(Envelope::peer(b.node_id(), Bytes::from_static(b"x"))),
        Err(SendError::Stopped)
    );
    assert!(b.peers().is_empty());
    b.shutdown_blocking(secs(5));
}

#[test]
fn unknown_peers_and_oversize_payloads_are_refused() {
    let desc = chan(0x20, 1, 100);
    let (a, b) = memory_pair(true, std::slice::from_ref(&desc));
    let ca = a.open_channel(desc).unwrap();
    let stranger = ringwire::proto::secret::NodeKey::from_seed([99; 32]).node_id();
    assert_eq!(
        ca.try_send(Envelope::peer(stranger, Bytes::from_static(b"x"))),
        Err(SendError::PeerGone)
    );
    assert_eq!(
        ca.try_send(Envelope::peer(b.node_id(), Bytes::from(vec![0; 101]))),
        Err(SendError::TooLarge { len: 101, max: 100 })
    );
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
}

/// `send_many`: a run of payloads for one peer goes to the shard in as few steps as the
/// credits allow, arrives whole and in order; without waiting it queues what fits; a payload
/// over the channel's limit stops the run at its index.
#[test]
fn send_many_queues_in_order_and_reports_how_far_it_got() {
    let desc = ChannelDescriptor {
        send_queue_capacity: 8,
        ..chan(0x20, 1, 4096)
    };
    let (a, b) = memory_pair(true, std::slice::from_ref(&desc));
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    let to = b.node_id();
    let msg = |i: usize| payload(1 + i % 4000, i as u8);

    // 100 payloads through a queue of 8: the call waits for credits as the receiver drains.
    let sender = ca.sender();
    let t = std::thread::spawn(move || {
        sender.send_many_blocking(to, (0..100).map(msg).collect(), secs(10))
    });
    for i in 0..100 {
        let m = cb.recv_blocking(secs(10)).expect("message");
        assert_eq!(m.payload, msg(i), "message {i}");
    }
    let (n, result) = t.join().unwrap();
    assert_eq!((n, result), (100, Ok(())));

    // Without waiting: at least the 8 free credits are used (the shard may return some while
    // the call goes on); what does not fit is Full.
    let (n, result) = ca.sender().try_send_many(to, (0..20).map(msg).collect());
    assert!(n >= 8, "{n}");
    assert_eq!(
        result,
        if n == 20 {
            Ok(())
        } else {
            Err(SendError::Full)
        }
    );
    for i in 0..n {
        assert_eq!(cb.recv_blocking(secs(10)).expect("message").payload, msg(i));
    }

    // A payload over the channel's 4096-byte limit stops the run at its index.
    let mut run: Vec<Bytes> = (0..5).map(msg).collect();
    run[3] = payload(5000, 3);
    let (n, result) = ca.sender().send_many_blocking(to, run, secs(10));
    assert_eq!(n, 3);
    assert!(
        matches!(result, Err(SendError::TooLarge { len: 5000, .. })),
        "{result:?}"
    );
    for i in 0..3 {
        assert_eq!(cb.recv_blocking(secs(10)).expect("message").payload, msg(i));
    }
    assert!(
        cb.recv_blocking(Instant::now() + Duration::from_millis(200))
            .is_none()
    );

    // An unknown peer: nothing queued. As with `send`, a payload's size is checked first.
    let stranger = ringwire::proto::secret::NodeId([9u8; 20]);
    let (n, result) = ca.sender().try_send_many(stranger, vec![msg(0)]);
    assert_eq!((n, result), (0, Err(SendError::PeerGone)));
    let (n, result) = ca.sender().try_send_many(stranger, vec![payload(5000, 0)]);
    assert_eq!(n, 0);
    assert!(
        matches!(result, Err(SendError::TooLarge { .. })),
        "{result:?}"
    );
}
