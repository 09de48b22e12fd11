//! An application thread that panics while it holds a node and its channels: the panic unwinds
//! like any other (the thread's `join` reports it, the process lives on), even though dropping
//! those handles wakes shard tasks from the unwinding thread.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::router::{Envelope, SendError};
use ringwire_test_support::node::*;

fn panic_with_a_stalled_receiver(native: bool) {
    let desc = chan(0x20, 1, 1 << 20);
    let a = queue_node(1, native, 2);
    let b = queue_node(2, native, 2);
    a.dial_blocking(b.listen_addr().unwrap(), Some(b.node_id()))
        .unwrap();
    let ca = a.open_channel(desc.clone()).unwrap();
    let cb = b.open_channel(desc).unwrap();
    // Fill b's receive queue, so that b's connection driver waits for room that only the
    // application can free by reading or by dropping its receiver.
    let mut accepted = 0;
    while accepted < 1000 {
        match ca.try_send(Envelope::peer(b.node_id(), Bytes::from(vec![7u8; 1024]))) {
            Ok(_) => accepted += 1,
            Err(SendError::Full) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let app = std::thread::spawn(move || {
        // Fields drop in order: the channel first, while its node still runs.
        let _held = (cb, b);
        panic!("the application fails while it holds a node and a stalled channel");
    });
    let joined = app.join();
    let message = joined
        .expect_err("the application thread panicked")
        .downcast::<&str>()
        .expect("the panic's own message");
    assert!(message.contains("the application fails"), "{message}");
    // a sees its peer go and keeps working.
    let deadline = secs(10);
    while !a.peers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "a still lists the node that went away"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    a.shutdown_blocking(secs(5));
}

#[test]
fn native_panic_in_the_application_unwinds_without_aborting() {
    panic_with_a_stalled_receiver(true);
}

#[test]
fn compat_panic_in_the_application_unwinds_without_aborting() {
    panic_with_a_stalled_receiver(false);
}
