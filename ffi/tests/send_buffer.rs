//! `ringwire_buffer_new` and `ringwire_channel_send_buffer`: a payload built in library memory
//! is sent without a copy (a local message arrives at the very address it was written to),
//! can be sent again and to a peer, outlives the caller's handle while queued, and bad
//! arguments get their codes.

mod support;

use std::ffi::c_char;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use ringwire_ffi::buffer::*;
use ringwire_ffi::channel::*;
use ringwire_ffi::node::*;
use ringwire_ffi::result::*;

const OK: ringwire_result = ringwire_result::Ok;
const CHANNEL: u8 = 0x51;
const LEN: usize = 64 * 1024;

/// A node started through the C ABI, listening on a free loopback port.
fn node(name: &str) -> (*mut ringwire_node, PathBuf) {
    support::node_from_toml(
        &format!("buf-{name}"),
        "ffi-send-buffer",
        "[engine]\nshards = 1\n",
    )
}

fn open(n: *const ringwire_node) -> *mut ringwire_channel {
    let mut ch = null_mut();
    // SAFETY: a live node and a valid out-pointer.
    let r = unsafe { ringwire_node_open_channel(n, CHANNEL, 1, 16, 1 << 20, &mut ch) };
    assert_eq!(r, OK);
    ch
}

fn envelope(to: ringwire_to, peer: ringwire_node_id) -> ringwire_envelope {
    ringwire_envelope {
        to: to as u32,
        peer,
        role: null(),
        fanout: ringwire_fanout::All as u32,
        fanout_count: 0,
        fanout_fraction: 0.0,
        // Ignored by the buffer send.
        payload: null(),
        payload_len: 0,
        deliver_within_ms: 0,
    }
}

/// A buffer of `LEN` bytes filled with a pattern through the data pointer.
fn filled() -> (*mut ringwire_buffer, *mut u8) {
    let (mut buf, mut data) = (null_mut(), null_mut());
    // SAFETY: valid out-pointers; then the `LEN` bytes at `data` are ours to write.
    unsafe {
        assert_eq!(ringwire_buffer_new(LEN, &mut buf, &mut data), OK);
        for i in 0..LEN {
            data.add(i).write((i * 7 % 251) as u8);
        }
    }
    (buf, data)
}

/// The next message on `ch` (waiting up to 10 s): its payload address and bytes.
fn receive(ch: *const ringwire_channel) -> (*const u8, Vec<u8>) {
    let mut msg = ringwire_message {
        peer: ringwire_node_id::default(),
        local: false,
        channel: 0,
        payload: null(),
        payload_len: 0,
        request_id: 0,
    };
    let (mut batch, mut n) = (null_mut(), 0);
    // SAFETY: a live channel, room for one message, valid out-pointers; the view is read
    // before the batch is released.
    unsafe {
        assert_eq!(
            ringwire_channel_recv(ch, &mut msg, 1, 10_000, &mut batch, &mut n),
            OK
        );
        assert_eq!(n, 1);
        let bytes = std::slice::from_raw_parts(msg.payload, msg.payload_len).to_vec();
        ringwire_batch_release(batch);
        (msg.payload, bytes)
    }
}

fn pattern() -> Vec<u8> {
    (0..LEN).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_local_buffer_send_arrives_at_the_address_it_was_written_to() {
    let (n, dir) = node("local");
    let ch = open(n);
    let (buf, data) = filled();
    let local = envelope(ringwire_to::Local, ringwire_node_id::default());
    // SAFETY: live handles and a valid envelope.
    unsafe {
        assert_eq!(ringwire_channel_send_buffer(ch, &local, buf, 1000), OK);
        assert_eq!(ringwire_channel_send_buffer(ch, &local, buf, 0), OK);
        ringwire_buffer_free(buf);
    }
    for _ in 0..2 {
        let (at, bytes) = receive(ch);
        assert_eq!(
            at,
            data.cast_const(),
            "the message is the buffer, not a copy"
        );
        assert!(bytes == pattern());
    }
    // SAFETY: live handles, freed once.
    unsafe {
        ringwire_channel_free(ch);
        ringwire_node_free(n);
    }
    let _ = std::fs::remove_dir_all::<&Path>(&dir);
}

#[test]
fn a_buffer_goes_to_a_peer_twice_and_outlives_its_handle() {
    let (a, dir_a) = node("a");
    let (b, dir_b) = node("b");
    let (ca, cb) = (open(a), open(b));
    let mut addr = [0 as c_char; 64];
    let mut w = 0;
    let mut idb = ringwire_node_id::default();
    let (buf, _) = filled();
    // SAFETY: live handles, buffers and out-pointers valid as declared.
    unsafe {
        assert_eq!(
            ringwire_node_listen_addr(b, addr.as_mut_ptr(), 64, &mut w),
            OK
        );
        assert_eq!(ringwire_node_get_id(b, &mut idb), OK);
        assert_eq!(ringwire_node_dial(a, addr.as_ptr(), &idb, null_mut()), OK);
        let to_b = envelope(ringwire_to::Peer, idb);
        assert_eq!(ringwire_channel_send_buffer(ca, &to_b, buf, 1000), OK);
        assert_eq!(ringwire_channel_send_buffer(ca, &to_b, buf, 1000), OK);
        // Freed while both messages may still be queued: they keep the bytes.
        ringwire_buffer_free(buf);
    }
    for _ in 0..2 {
        let (_, bytes) = receive(cb);
        assert!(bytes == pattern());
    }
    // SAFETY: live handles, freed once.
    unsafe {
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
}

#[test]
fn bad_buffer_arguments_get_their_codes() {
    let (n, dir) = node("bad");
    let ch = open(n);
    let local = envelope(ringwire_to::Local, ringwire_node_id::default());
    let (mut buf, mut data) = (null_mut(), null_mut());
    // SAFETY: valid or deliberately NULL out-pointers; handles live or deliberately freed.
    unsafe {
        assert_eq!(
            ringwire_buffer_new(usize::MAX, &mut buf, &mut data),
            ringwire_result::TooLarge
        );
        assert_eq!(
            ringwire_buffer_new(8, null_mut(), &mut data),
            ringwire_result::NullParameter
        );
        assert_eq!(ringwire_buffer_new(0, &mut buf, &mut data), OK);
        assert_eq!(ringwire_channel_send_buffer(ch, &local, buf, 0), OK);
        assert_eq!(
            ringwire_channel_send_buffer(ch, null(), buf, 0),
            ringwire_result::NullParameter
        );
        ringwire_buffer_free(buf);
        assert_eq!(
            ringwire_channel_send_buffer(ch, &local, buf, 0),
            ringwire_result::InvalidHandle
        );
        let mut unknown = local;
        unknown.to = 99;
        let (mut other, mut at) = (null_mut(), null_mut());
        assert_eq!(ringwire_buffer_new(1, &mut other, &mut at), OK);
        assert_eq!(
            ringwire_channel_send_buffer(ch, &unknown, other, 0),
            ringwire_result::InvalidArgument
        );
        ringwire_buffer_free(other);
        // A NULL free is ignored.
        ringwire_buffer_free(null_mut());
    }
    let (_, bytes) = receive(ch);
    assert!(bytes.is_empty());
    // SAFETY: live handles, freed once.
    unsafe {
        ringwire_channel_free(ch);
        ringwire_node_free(n);
    }
    let _ = std::fs::remove_dir_all::<&Path>(&dir);
}
