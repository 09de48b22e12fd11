//! Credit windows: a receiver that does not drain stops the sender; draining resumes it.

use bytes::Bytes;

use super::pair::{Pair, chan, hello, record};
use crate::proto::native::frame::{DATA_END, DATA_START, DataFrame, Frame, MAX_WINDOW};
use crate::proto::native::{Mux, MuxError, NativeConfig};

fn cfg(window: u32, cap: usize) -> NativeConfig {
    let mut c = chan(0x20, 1);
    c.initial_window = window;
    c.recv_message_capacity = cap;
    c.send_queue_capacity = 1000;
    let mut n = NativeConfig::with_channels(vec![c]);
    n.recv_queue_capacity = 100_000;
    n
}

#[test]
fn a_receiver_that_never_drains_stops_the_sender_and_draining_resumes_it() {
    let mut p = Pair::new(cfg(64 * 1024, 1 << 20), cfg(64 * 1024, 1 << 20));
    p.drive();
    p.b.drain = false;
    let msgs: Vec<Bytes> = (0..500u32)
        .map(|i| Bytes::from(vec![i as u8; 1024]))
        .collect();
    for m in &msgs {
        p.a.mux.send(0x20, m.clone()).unwrap();
    }
    p.drive();
    // Exactly one window crossed, no more: each 1 KiB message costs 1024 + 64 bytes of credit,
    // so 60 messages and a 192-byte first chunk of the 61st use all 65536.
    assert_eq!(p.a.mux.stats().messages_out, 60);
    assert_eq!(p.b.mux.stats().data_bytes_in, 60 * 1024 + 192);
    // Nothing moves however long we wait (keepalive aside).
    for _ in 0..3 {
        p.advance(std::time::Duration::from_secs(1));
    }
    assert_eq!(p.b.mux.stats().data_bytes_in, 60 * 1024 + 192);
    p.b.drain = true;
    p.b.drain_events();
    p.drive();
    let got: Vec<Bytes> = p.b.messages().into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, msgs);
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
}

#[test]
fn a_message_larger_than_the_window_completes_and_memory_stays_bounded() {
    let window = 16 * 1024;
    let mut p = Pair::new(cfg(window, 4 << 20), cfg(window, 4 << 20));
    p.drive();
    p.b.drain = false;
    let big = Bytes::from(vec![7u8; 1 << 20]);
    for _ in 0..3 {
        p.a.mux.send(0x20, big.clone()).unwrap();
    }
    p.drive();
    // The first message completed; the second is held to one window; the third never started.
    let held = p.b.mux.stats().data_bytes_in;
    assert!(
        held >= 1 << 20 && held <= (1 << 20) + u64::from(window),
        "{held}"
    );
    assert_eq!(p.b.mux.stats().messages_in, 1);
    p.b.drain = true;
    p.b.drain_events();
    p.drive();
    assert_eq!(p.b.messages().len(), 3);
    assert!(p.b.messages().iter().all(|(_, m)| *m == big));
}

#[test]
fn wants_input_bounds_undelivered_messages() {
    let mut ca = cfg(1 << 20, 1 << 20);
    ca.recv_queue_capacity = 4;
    let mut cb = ca.clone();
    cb.recv_queue_capacity = 4;
    let mut p = Pair::new(ca, cb);
    p.drive();
    p.b.drain = false;
    for i in 0..100u8 {
        p.a.mux.send(0x20, Bytes::from(vec![i; 1000])).unwrap();
    }
    p.drive();
    assert!(!p.b.mux.wants_input());
    // One record's worth went in before the driver stopped reading.
    assert_eq!(p.b.mux.stats().records_in, 2);
    p.b.drain = true;
    p.b.drain_events();
    p.drive();
    assert_eq!(p.b.messages().len(), 100);
}

fn scripted(window: u32, cap: usize) -> (Mux, std::time::Instant) {
    let now = std::time::Instant::now();
    let mut m = Mux::new(cfg(window, cap), now).unwrap();
    m.handle_record(now, &record(&[Frame::Hello(hello(&[(0x20, 1024, 1000)]))]))
        .unwrap();
    (m, now)
}

fn data(flags: u8, chunk: &[u8]) -> Frame<'_> {
    Frame::Data(DataFrame {
        ttl_ms: None,
        channel: 0x20,
        flags,
        request_id: None,
        chunk,
    })
}

#[test]
fn data_beyond_the_window_is_a_flow_control_error() {
    let (mut m, now) = scripted(1024, 2000);
    let chunk = [0u8; 600];
    m.handle_record(now, &record(&[data(DATA_START, &chunk)]))
        .unwrap();
    // 600 + 64 spent; another 664 exceeds the 360 left.
    assert_eq!(
        m.handle_record(now, &record(&[data(DATA_END, &chunk)])),
        Err(MuxError::FlowControl {
            channel: 0x20,
            len: 664,
            window: 360
        })
    );
    // Empty messages cost 64 bytes of credit each.
    let (mut m, now) = scripted(1024, 1000);
    let empty = data(DATA_START | DATA_END, &[]);
    let sixteen: Vec<Frame<'_>> = std::iter::repeat_n(empty.clone(), 16).collect();
    m.handle_record(now, &record(&sixteen)).unwrap();
    assert_eq!(
        m.handle_record(now, &record(&[empty])),
        Err(MuxError::FlowControl {
            channel: 0x20,
            len: 64,
            window: 0
        })
    );
}

#[test]
fn window_overflow_is_an_error() {
    let (mut m, now) = scripted(1024, 1000);
    // The peer granted 1024; 1024 + (2^31 - 1 - 1024) is the maximum, one more overflows.
    let up = |increment| {
        record(&[Frame::WindowUpdate {
            channel: 0x20,
            increment,
        }])
    };
    m.handle_record(now, &up(MAX_WINDOW - 1024)).unwrap();
    assert_eq!(
        m.handle_record(now, &up(1)),
        Err(MuxError::WindowOverflow(0x20))
    );
    let (mut m, now) = scripted(1024, 1000);
    assert_eq!(
        m.handle_record(now, &up(u32::MAX)),
        Err(MuxError::WindowOverflow(0x20))
    );
}

#[test]
fn credit_is_returned_in_quarter_window_batches() {
    let (mut m, now) = scripted(4000, 1000);
    let chunk = [0u8; 100];
    let one = record(&[data(DATA_START | DATA_END, &chunk)]);
    // Six messages of 100 bytes return 6 x 164 = 984 bytes: below 1000, nothing announced yet.
    for _ in 0..6 {
        m.handle_record(now, &one).unwrap();
    }
    while m.poll_event().is_some() {}
    let frames = super::pair::outgoing_frames(&mut m, now);
    assert!(
        !frames.iter().any(|f| f.contains("WindowUpdate")),
        "{frames:?}"
    );
    m.handle_record(now, &one).unwrap();
    while m.poll_event().is_some() {}
    let frames = super::pair::outgoing_frames(&mut m, now);
    let want = "WindowUpdate { channel: 32, increment: 1148 }";
    assert!(frames.iter().any(|f| f.contains(want)), "{frames:?}");
}
