//! `ringwire_node_open_channel` with a send queue capacity of 0 takes the node's default, the
//! configuration's `limits.channel_send_queue_capacity`; an explicit capacity is kept.

mod support;

use std::ffi::c_char;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use ringwire_ffi::channel::*;
use ringwire_ffi::node::*;
use ringwire_ffi::result::*;

const OK: ringwire_result = ringwire_result::Ok;
const CHANNEL: u8 = 0x50;

/// A node started through the C ABI from a TOML file holding `limits` (the body of its
/// `[limits]` section), listening on a free loopback port.
fn node_from_toml(name: &str, limits: &str) -> (*mut ringwire_node, PathBuf) {
    support::node_from_toml(
        name,
        "ffi-send-queue",
        &format!("[engine]\ndriver = \"epoll\"\nshards = 1\n\n[limits]\n{limits}\n"),
    )
}

fn open(n: *const ringwire_node, queue: usize) -> *mut ringwire_channel {
    let mut ch = null_mut();
    // SAFETY: a live node and a valid out-pointer.
    let r = unsafe { ringwire_node_open_channel(n, CHANNEL, 1, queue, 1 << 20, &mut ch) };
    assert_eq!(r, OK);
    ch
}

/// How many 1 KiB messages a node with `limits` accepts for a peer that never reads, on a
/// channel opened with `queue`, before the channel stays full.
fn accepted_before_full(name: &str, limits: &str, queue: usize) -> usize {
    // The receiver stalls quickly: a small window and receive queue, and it never reads.
    let (b, dir_b) = node_from_toml(
        &format!("{name}-b"),
        "native_window = 16384\nrecv_queue_capacity = 1",
    );
    let (a, dir_a) = node_from_toml(&format!("{name}-a"), limits);
    let (ca, cb) = (open(a, queue), open(b, 64));
    let mut addr = [0 as c_char; 64];
    let mut w = 0;
    let mut idb = ringwire_node_id::default();
    let body = [0x5Au8; 1024];
    let mut accepted = 0;
    // SAFETY: live handles until freed below; buffers and out-pointers valid as declared.
    unsafe {
        assert_eq!(
            ringwire_node_listen_addr(b, addr.as_mut_ptr(), 64, &mut w),
            OK
        );
        assert_eq!(ringwire_node_get_id(b, &mut idb), OK);
        assert_eq!(ringwire_node_dial(a, addr.as_ptr(), &idb, null_mut()), OK);
        let env = ringwire_envelope {
            to: ringwire_to::Peer as u32,
            peer: idb,
            role: null(),
            fanout: ringwire_fanout::All as u32,
            fanout_count: 0,
            fanout_fraction: 0.0,
            payload: body.as_ptr(),
            payload_len: body.len(),
            deliver_within_ms: 0,
        };
        loop {
            assert!(accepted < 10_000, "the stalled peer never pushed back");
            let mut q = 0;
            match ringwire_channel_send(ca, &env, 1, 0, &mut q) {
                OK => accepted += 1,
                // Full may be momentary while the shard drains; it is final once a short
                // wait also fails.
                ringwire_result::Full => match ringwire_channel_send(ca, &env, 1, 300, &mut q) {
                    OK => accepted += 1,
                    ringwire_result::Timeout | ringwire_result::Full => break,
                    r => panic!("unexpected {r:?}"),
                },
                r => panic!("unexpected {r:?}"),
            }
        }
        for ch in [ca, cb] {
            ringwire_channel_free(ch);
        }
        for n in [a, b] {
            ringwire_node_free(n);
        }
    }
    for d in [dir_a, dir_b] {
        let _ = std::fs::remove_dir_all::<&Path>(&d);
    }
    accepted
}

#[test]
fn a_channel_opened_without_a_queue_capacity_gets_the_configured_default() {
    // The same stalled peer three times: only the sender's channel queue differs. A channel
    // holds its capacity in the connection's queue and as many again waiting for room, so
    // each message of capacity shows twice in the count.
    let configured = accepted_before_full("cfg", "channel_send_queue_capacity = 2", 0);
    let explicit = accepted_before_full("explicit", "", 2);
    let default = accepted_before_full("default", "", 0);
    eprintln!("accepted: key 2 → {configured}, explicit 2 → {explicit}, default 64 → {default}");
    assert!(
        configured.abs_diff(explicit) <= 2,
        "capacity 0 under channel_send_queue_capacity = 2 ({configured}) acts as 2 ({explicit})"
    );
    assert!(
        default >= explicit + 100,
        "capacity 0 without the key is the default 64 ({default} vs {explicit})"
    );
}
