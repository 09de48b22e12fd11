//! What a switch for stock CometBFT needs from the C ABI: a peer's NodeInfo, address and
//! protocol (`ringwire_node_peers`, `ringwire_node_peer_info`), the NodeInfo this node
//! announces (`ringwire_config_set_node_info`), and channels with compression and room to grow
//! (`ringwire_node_open_channel_with`), and channels registered before the node starts
//! (`ringwire_config_add_channel`).

use std::ffi::{CStr, c_char};
use std::mem::offset_of;
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

use prost::Message as _;
use ringwire::proto::wire;
use ringwire_ffi::channel::*;
use ringwire_ffi::config::*;
use ringwire_ffi::node::*;
use ringwire_ffi::peer::*;
use ringwire_ffi::result::*;

const OK: ringwire_result = ringwire_result::Ok;

/// A started node (`seed`) on loopback, after `tune` ran on its config.
fn node(seed: u8, tune: impl FnOnce(*mut ringwire_config)) -> *mut ringwire_node {
    let mut cfg = null_mut();
    let mut n = null_mut();
    // SAFETY: valid out-pointers and NUL-terminated strings; the config freed once.
    unsafe {
        assert_eq!(ringwire_config_new(&mut cfg), OK);
        assert_eq!(ringwire_config_set_key_seed(cfg, [seed; 32].as_ptr()), OK);
        assert_eq!(ringwire_config_set_network(cfg, c"ffi-peers".as_ptr()), OK);
        assert_eq!(ringwire_config_set_listen(cfg, c"127.0.0.1:0".as_ptr()), OK);
        tune(cfg);
        assert_eq!(ringwire_node_start(cfg, &mut n), OK);
        ringwire_config_free(cfg);
    }
    n
}

fn listen_addr(n: *const ringwire_node) -> String {
    let mut buf = [0 as c_char; 64];
    let mut w = 0;
    // SAFETY: a live node and a 64-byte buffer.
    let r = unsafe { ringwire_node_listen_addr(n, buf.as_mut_ptr(), 64, &mut w) };
    assert_eq!(r, OK);
    // SAFETY: NUL-terminated by the call.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn node_id(n: *const ringwire_node) -> ringwire_node_id {
    let mut id = ringwire_node_id::default();
    // SAFETY: a live node and a valid out-pointer.
    assert_eq!(unsafe { ringwire_node_get_id(n, &mut id) }, OK);
    id
}

/// `from` dials `to` and waits for the connection.
fn connect(from: *const ringwire_node, to: *const ringwire_node) {
    let addr = std::ffi::CString::new(listen_addr(to)).unwrap();
    // SAFETY: a live node, a NUL-terminated address, NULL optional pointers.
    let r = unsafe { ringwire_node_dial(from, addr.as_ptr(), null(), null_mut()) };
    assert_eq!(r, OK);
}

/// Waits until `n` has `count` peers up.
fn wait_peers(n: *const ringwire_node, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = 0;
        // SAFETY: a live node and a valid out-pointer.
        let r = unsafe { ringwire_node_peer_count(n, &mut c) };
        assert_eq!(r, OK);
        if c >= count {
            return;
        }
        assert!(Instant::now() < deadline, "{c} peers, want {count}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn empty_info() -> ringwire_peer_info {
    ringwire_peer_info {
        size: size_of::<ringwire_peer_info>(),
        peer: ringwire_node_id::default(),
        outbound: 9,
        native: 9,
        remote_addr: [0; 64],
        node_info_len: 0,
    }
}

#[test]
fn a_peers_node_info_address_and_protocol_are_readable() {
    let settings = ringwire_node_info_settings {
        moniker: c"alpha".as_ptr(),
        version: c"0.40.0".as_ptr(),
        app_protocol: 7,
        tx_index: c"on".as_ptr(),
        rpc_address: c"tcp://0.0.0.0:26657".as_ptr(),
        ..ringwire_node_info_settings::default()
    };
    // SAFETY: a live config and a settings struct with its size set.
    let a = node(1, |cfg| unsafe {
        assert_eq!(ringwire_config_set_node_info(cfg, &settings), OK);
    });
    let b = node(2, |_| {});
    connect(b, a);
    let a_id = node_id(a);

    let mut ids = [ringwire_node_id::default(); 4];
    let (mut count, mut total) = (0, 0);
    // SAFETY: a live node; room for 4 IDs; valid out-pointers.
    let r = unsafe { ringwire_node_peers(b, ids.as_mut_ptr(), 4, &mut count, &mut total) };
    assert_eq!((r, count, total), (OK, 1, 1));
    assert_eq!(ids[0], a_id);

    let mut info = empty_info();
    let mut buf = vec![0u8; RINGWIRE_MAX_NODE_INFO_SIZE];
    // SAFETY: a live node, a valid ID, a sized struct and a buffer of the stated length.
    let r = unsafe { ringwire_node_peer_info(b, &a_id, &mut info, buf.as_mut_ptr(), buf.len()) };
    assert_eq!(r, OK);
    assert_eq!((info.peer, info.outbound, info.native), (a_id, 1, 1));
    // SAFETY: the library wrote a NUL-terminated address.
    let remote = unsafe { CStr::from_ptr(info.remote_addr.as_ptr()) };
    assert_eq!(remote.to_str().unwrap(), listen_addr(a));
    // The bytes are stock's DefaultNodeInfo: stock's own message type decodes them.
    let ni = wire::DefaultNodeInfo::decode(&buf[..info.node_info_len]).expect("NodeInfo bytes");
    assert_eq!(ni.moniker, "alpha");
    assert_eq!(ni.version, "0.40.0");
    assert_eq!(ni.network, "ffi-peers");
    let pv = ni.protocol_version.expect("protocol versions");
    assert_eq!((pv.p2p, pv.block, pv.app), (8, 11, 7));
    let other = ni.other.expect("other");
    assert_eq!(other.tx_index, "on");
    assert_eq!(other.rpc_address, "tcp://0.0.0.0:26657");

    // The other side sees an inbound peer with the defaults (once it has it up too).
    wait_peers(a, 1);
    let mut back = empty_info();
    let b_id = node_id(b);
    // SAFETY: as above.
    let r = unsafe { ringwire_node_peer_info(a, &b_id, &mut back, buf.as_mut_ptr(), buf.len()) };
    assert_eq!((r, back.outbound), (OK, 0));
    let ni = wire::DefaultNodeInfo::decode(&buf[..back.node_info_len]).unwrap();
    assert_eq!(ni.moniker, "ringwire");
    assert_eq!(ni.other.unwrap().tx_index, "off");

    // A buffer too small says how much is needed; an unknown peer is gone.
    let mut small = empty_info();
    // SAFETY: as above, with a 4-byte buffer.
    let r = unsafe { ringwire_node_peer_info(b, &a_id, &mut small, buf.as_mut_ptr(), 4) };
    assert_eq!(r, ringwire_result::BufferTooSmall);
    assert_eq!(small.node_info_len, info.node_info_len);
    let stranger = ringwire_node_id { bytes: [7; 20] };
    // SAFETY: as above.
    let r = unsafe { ringwire_node_peer_info(b, &stranger, &mut small, buf.as_mut_ptr(), 64) };
    assert_eq!(r, ringwire_result::PeerGone);
    // SAFETY: each handle freed once.
    unsafe {
        ringwire_node_free(a);
        ringwire_node_free(b);
    }
}

#[test]
fn bad_node_info_settings_are_refused() {
    let mut cfg = null_mut();
    // SAFETY: a valid out-pointer; the config is freed once.
    unsafe { assert_eq!(ringwire_config_new(&mut cfg), OK) };
    let cases = [
        ringwire_node_info_settings {
            tx_index: c"maybe".as_ptr(),
            ..Default::default()
        },
        ringwire_node_info_settings {
            moniker: c"  ".as_ptr(),
            ..Default::default()
        },
        ringwire_node_info_settings {
            version: c"caf\xc3\xa9".as_ptr(),
            ..Default::default()
        },
        ringwire_node_info_settings {
            size: 0,
            ..Default::default()
        },
    ];
    for s in cases {
        // SAFETY: a live config and a struct valid for its whole size.
        let r = unsafe { ringwire_config_set_node_info(cfg, &s) };
        assert_eq!(r, ringwire_result::InvalidArgument, "{s:?}");
    }
    // SAFETY: the config is freed once.
    unsafe { ringwire_config_free(cfg) };
}

/// Receives one message on `ch` within 10 s.
fn recv_len(ch: *const ringwire_channel) -> usize {
    let mut msgs = [ringwire_message {
        peer: ringwire_node_id::default(),
        local: false,
        channel: 0,
        payload: null(),
        payload_len: 0,
        request_id: 0,
    }; 1];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (mut batch, mut n) = (null_mut(), 0);
        // SAFETY: a live channel, room for one message, valid out-pointers.
        let r = unsafe { ringwire_channel_recv(ch, msgs.as_mut_ptr(), 1, 200, &mut batch, &mut n) };
        assert_eq!(r, OK);
        if n == 1 {
            let len = msgs[0].payload_len;
            // SAFETY: a batch of this receive, released once.
            unsafe { ringwire_batch_release(batch) };
            return len;
        }
        assert!(Instant::now() < deadline, "no message");
    }
}

#[test]
fn channels_open_with_options_compression_included_and_older_structs_still_work() {
    let a = node(3, |_| {});
    let b = node(4, |_| {});
    let zstd = ringwire_channel_options {
        priority: 2,
        recv_message_capacity: 1 << 20,
        compression: ringwire_compression::Auto as u32,
        ..Default::default()
    };
    // A program built before `compression` existed passes a shorter struct: it is off.
    let older = ringwire_channel_options {
        size: offset_of!(ringwire_channel_options, compression),
        compression: 77,
        ..zstd
    };
    let (mut ca, mut cb, mut oa, mut ob) = (null_mut(), null_mut(), null_mut(), null_mut());
    // SAFETY: live nodes, sized structs, valid out-pointers.
    unsafe {
        assert_eq!(ringwire_node_open_channel_with(a, 0x20, &zstd, &mut ca), OK);
        assert_eq!(ringwire_node_open_channel_with(b, 0x20, &zstd, &mut cb), OK);
        assert_eq!(
            ringwire_node_open_channel_with(a, 0x21, &older, &mut oa),
            OK
        );
        assert_eq!(
            ringwire_node_open_channel_with(b, 0x21, &older, &mut ob),
            OK
        );
        let bad = ringwire_channel_options {
            compression: 77,
            ..zstd
        };
        let mut x = null_mut();
        assert_eq!(
            ringwire_node_open_channel_with(a, 0x22, &bad, &mut x),
            ringwire_result::InvalidArgument
        );
    }
    connect(a, b);
    let b_id = node_id(b);
    let payload = vec![b'z'; 256 * 1024];
    for ch in [ca, oa] {
        let env = ringwire_envelope {
            to: ringwire_to::Peer as u32,
            peer: b_id,
            role: null(),
            fanout: 0,
            fanout_count: 0,
            fanout_fraction: 0.0,
            payload: payload.as_ptr(),
            payload_len: payload.len(),
            deliver_within_ms: 0,
        };
        let mut queued = 0;
        // SAFETY: a live channel, one valid envelope, a valid out-pointer.
        let r = unsafe { ringwire_channel_send(ch, &env, 1, 5000, &mut queued) };
        assert_eq!(r, OK);
    }
    assert_eq!(recv_len(cb), payload.len());
    assert_eq!(recv_len(ob), payload.len());
    // SAFETY: each handle freed once.
    unsafe {
        for ch in [ca, cb, oa, ob] {
            ringwire_channel_free(ch);
        }
        ringwire_node_free(a);
        ringwire_node_free(b);
    }
}

/// Waits up to `ms` for `fd` to be readable.
fn readable(fd: std::ffi::c_int, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n == 1 && p.revents & libc::POLLIN != 0
}

fn events(n: *const ringwire_node) -> Vec<ringwire_peer_event> {
    let mut evs = [ringwire_peer_event {
        kind: 0,
        peer: ringwire_node_id::default(),
        outbound: false,
        native: false,
        reason: [0; 128],
    }; 8];
    let mut count = 0;
    // SAFETY: a live node, room for 8 events, a valid out-pointer; no wait.
    let r = unsafe { ringwire_node_poll_events(n, evs.as_mut_ptr(), 8, 0, &mut count) };
    assert_eq!(r, OK);
    evs[..count].to_vec()
}

#[test]
fn peer_events_wake_a_poller_on_the_events_descriptor_and_say_why_a_peer_left() {
    let a = node(5, |_| {});
    let mut fd = -1;
    // SAFETY: a live node and a valid out-pointer.
    assert_eq!(unsafe { ringwire_node_events_fd(a, &mut fd) }, OK);
    // Readable at first; a poll that finds nothing leaves it unreadable.
    assert!(readable(fd, 0));
    assert!(events(a).is_empty());
    assert!(!readable(fd, 0), "nothing waits");

    let b = node(6, |_| {});
    connect(b, a);
    assert!(readable(fd, 5000), "an Up event makes it readable");
    let up = events(a);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].kind, ringwire_peer_event_kind::Up as u32);
    assert_eq!(up[0].peer, node_id(b));
    assert_eq!(up[0].reason[0], 0, "up events carry no reason");

    let a_id = node_id(a);
    // SAFETY: a live node and a valid ID.
    assert_eq!(unsafe { ringwire_node_disconnect(b, &a_id) }, OK);
    assert!(readable(fd, 5000), "a Down event makes it readable");
    let down = events(a);
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].kind, ringwire_peer_event_kind::Down as u32);
    // SAFETY: NUL-terminated by the library.
    let reason = unsafe { CStr::from_ptr(down[0].reason.as_ptr()) };
    assert!(!reason.to_bytes().is_empty(), "a down event says why");
    // SAFETY: each handle freed once.
    unsafe {
        ringwire_node_free(a);
        ringwire_node_free(b);
    }
}

#[test]
fn channels_added_to_the_config_are_in_the_node_info_of_the_first_connection() {
    let opts = ringwire_channel_options {
        priority: 5,
        send_queue_capacity: 3,
        recv_message_capacity: 4096,
        ..Default::default()
    };
    let add = |cfg: *mut ringwire_config| {
        // SAFETY: a live config and a sized struct.
        unsafe {
            assert_eq!(ringwire_config_add_channel(cfg, 0x30, &opts), OK);
            assert_eq!(ringwire_config_add_channel(cfg, 0x31, &opts), OK);
            assert_eq!(
                ringwire_config_add_channel(cfg, 0x30, &opts),
                ringwire_result::InvalidArgument,
                "an ID is added once"
            );
            let bad = ringwire_channel_options {
                priority: 0,
                ..opts
            };
            assert_eq!(
                ringwire_config_add_channel(cfg, 0x32, &bad),
                ringwire_result::InvalidArgument
            );
        }
    };
    let a = node(5, add);
    let b = node(6, add);
    // Nothing is opened yet: the first connection still carries the channels.
    connect(b, a);
    let a_id = node_id(a);
    let mut info = empty_info();
    let mut buf = vec![0u8; RINGWIRE_MAX_NODE_INFO_SIZE];
    // SAFETY: a live node, a valid ID, a sized struct and a buffer of the stated length.
    let r = unsafe { ringwire_node_peer_info(b, &a_id, &mut info, buf.as_mut_ptr(), buf.len()) };
    assert_eq!(r, OK);
    let ni = wire::DefaultNodeInfo::decode(&buf[..info.node_info_len]).unwrap();
    assert!(
        ni.channels.contains(&0x30) && ni.channels.contains(&0x31),
        "channels {:02x?}",
        ni.channels
    );
    assert!(!ni.channels.contains(&0x32));
    wait_peers(a, 1);
    let (mut ca, mut cb, mut x) = (null_mut(), null_mut(), null_mut());
    // SAFETY: live nodes, sized structs, valid out-pointers.
    unsafe {
        assert_eq!(ringwire_node_open_channel_with(a, 0x30, &opts, &mut ca), OK);
        assert_eq!(ringwire_node_open_channel_with(b, 0x30, &opts, &mut cb), OK);
        let other = ringwire_channel_options {
            priority: 6,
            ..opts
        };
        assert_eq!(
            ringwire_node_open_channel_with(a, 0x31, &other, &mut x),
            ringwire_result::Channel,
            "other options than the config's"
        );
    }
    let payload = [7u8; 100];
    let env = ringwire_envelope {
        to: ringwire_to::Peer as u32,
        peer: node_id(b),
        role: null(),
        fanout: 0,
        fanout_count: 0,
        fanout_fraction: 0.0,
        payload: payload.as_ptr(),
        payload_len: payload.len(),
        deliver_within_ms: 0,
    };
    let mut queued = 0;
    // SAFETY: a live channel, one valid envelope, a valid out-pointer.
    let r = unsafe { ringwire_channel_send(ca, &env, 1, 5000, &mut queued) };
    assert_eq!(r, OK);
    assert_eq!(recv_len(cb), payload.len());
    // SAFETY: each handle freed once.
    unsafe {
        ringwire_channel_free(ca);
        ringwire_channel_free(cb);
        ringwire_node_free(a);
        ringwire_node_free(b);
    }
}
