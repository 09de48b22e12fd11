//! The C ABI called as C would: NULL arguments, freeing NULL, use after stop, the panic
//! boundary, and two nodes on loopback exchanging messages and a request.

use std::ffi::{CStr, c_char};
use std::ptr::{null, null_mut};

use ringwire_ffi::channel::*;
use ringwire_ffi::config::*;
use ringwire_ffi::node::*;
use ringwire_ffi::result::*;
use ringwire_ffi::*;

const OK: ringwire_result = ringwire_result::Ok;

fn node(seed: u8) -> *mut ringwire_node {
    let mut cfg = null_mut();
    // SAFETY: valid out-pointers and NUL-terminated strings throughout.
    unsafe {
        assert_eq!(ringwire_config_new(&mut cfg), OK);
        assert_eq!(ringwire_config_set_key_seed(cfg, [seed; 32].as_ptr()), OK);
        assert_eq!(ringwire_config_set_network(cfg, c"ffi-test".as_ptr()), OK);
        assert_eq!(ringwire_config_set_listen(cfg, c"127.0.0.1:0".as_ptr()), OK);
        assert_eq!(
            ringwire_config_set_driver(cfg, ringwire_driver::Epoll as u32),
            OK
        );
        let mut n = null_mut();
        assert_eq!(ringwire_node_start(cfg, &mut n), OK);
        ringwire_config_free(cfg);
        n
    }
}

fn listen_addr(n: *const ringwire_node) -> [c_char; 64] {
    let mut buf = [0 as c_char; 64];
    let mut w = 0;
    // SAFETY: a live node and a 64-byte buffer.
    let r = unsafe { ringwire_node_listen_addr(n, buf.as_mut_ptr(), 64, &mut w) };
    assert_eq!(r, OK);
    buf
}

/// Opens channel `id` (priority 1) on `n`, with room for `queue` waiting messages of up to
/// `max` bytes.
fn open_channel(
    n: *const ringwire_node,
    id: u8,
    queue: usize,
    max: usize,
) -> *mut ringwire_channel {
    let mut ch = null_mut();
    // SAFETY: the handle is validated by the call; a valid out-pointer.
    let r = unsafe { ringwire_node_open_channel(n, id, 1, queue, max, &mut ch) };
    assert_eq!(r, OK);
    ch
}

fn node_id(n: *const ringwire_node) -> ringwire_node_id {
    let mut id = ringwire_node_id::default();
    // SAFETY: the handle is validated by the call; a valid out-pointer.
    let r = unsafe { ringwire_node_get_id(n, &mut id) };
    assert_eq!(r, OK);
    id
}

/// Node `seed` with channel `id` open, room for `queue` waiting messages of up to 1 KiB.
fn node_with_channel(
    seed: u8,
    id: u8,
    queue: usize,
) -> (*mut ringwire_node, *mut ringwire_channel) {
    let n = node(seed);
    (n, open_channel(n, id, queue, 1024))
}

/// Two started nodes, for `a` to dial `b` at `addr` on loopback; a channel open on both once
/// [`TwoNodes::with_channel`] has opened one (NULL until then).
struct TwoNodes {
    a: *mut ringwire_node,
    b: *mut ringwire_node,
    ca: *mut ringwire_channel,
    cb: *mut ringwire_channel,
    ida: ringwire_node_id,
    idb: ringwire_node_id,
    /// `b`'s listen address, NUL-terminated.
    addr: [c_char; 64],
}

fn two_nodes(a: *mut ringwire_node, b: *mut ringwire_node) -> TwoNodes {
    TwoNodes {
        a,
        b,
        ca: null_mut(),
        cb: null_mut(),
        ida: node_id(a),
        idb: node_id(b),
        addr: listen_addr(b),
    }
}

impl TwoNodes {
    /// Opens the same channel on both nodes (see [`open_channel`]).
    fn with_channel(self, id: u8, queue: usize, max: usize) -> Self {
        Self {
            ca: open_channel(self.a, id, queue, max),
            cb: open_channel(self.b, id, queue, max),
            ..self
        }
    }

    /// Frees the channels, then the nodes, each once.
    fn free(self) {
        // SAFETY: handles this value owns, freed once; freeing NULL is allowed.
        unsafe {
            ringwire_channel_free(self.ca);
            ringwire_channel_free(self.cb);
            ringwire_node_free(self.a);
            ringwire_node_free(self.b);
        }
    }
}

/// An array for `ringwire_node_poll_events` to fill.
fn event_slots<const N: usize>() -> [ringwire_peer_event; N] {
    [ringwire_peer_event {
        kind: 0,
        peer: ringwire_node_id::default(),
        outbound: false,
        native: false,
        reason: [0; 128],
    }; N]
}

#[test]
fn abi_version_is_set() {
    assert_eq!(ringwire_abi_version(), 3);
}

#[test]
fn null_arguments_are_errors() {
    let nul = ringwire_result::NullParameter;
    // SAFETY: NULL is what is being tested; every function checks it.
    unsafe {
        assert_eq!(ringwire_config_new(null_mut()), nul);
        assert_eq!(ringwire_config_set_network(null_mut(), c"x".as_ptr()), nul);
        assert_eq!(ringwire_config_load_toml(null(), &mut null_mut()), nul);
        assert_eq!(ringwire_node_start(null(), &mut null_mut()), nul);
        assert_eq!(ringwire_node_stop(null(), 0), nul);
        let mut id = ringwire_node_id::default();
        assert_eq!(ringwire_node_get_id(null(), &mut id), nul);
        assert_eq!(
            ringwire_node_open_channel(null(), 1, 1, 1, 1, &mut null_mut()),
            nul
        );
        let mut q = 0;
        assert_eq!(ringwire_channel_send(null(), null(), 0, 0, &mut q), nul);
        let mut batch = null_mut();
        let mut count = 0;
        let mut msgs = [std::mem::zeroed::<ringwire_message>(); 1];
        assert_eq!(
            ringwire_channel_recv(null(), msgs.as_mut_ptr(), 1, 0, &mut batch, &mut count),
            nul
        );
        assert_eq!(ringwire_error_message(0, null_mut(), 0, null_mut()), nul);
        let mut cfg = null_mut();
        assert_eq!(ringwire_config_new(&mut cfg), OK);
        assert_eq!(ringwire_config_set_key_seed(cfg, null()), nul);
        assert_eq!(ringwire_config_set_network(cfg, null()), nul);
        ringwire_config_free(cfg);
    }
}

#[test]
fn freeing_null_is_fine() {
    // SAFETY: NULL is accepted by every free function.
    unsafe {
        ringwire_config_free(null_mut());
        ringwire_config_free(null_mut());
        ringwire_node_free(null_mut());
        ringwire_channel_free(null_mut());
        ringwire_batch_release(null_mut());
        ringwire_batch_release(null_mut());
    }
}

#[test]
fn a_panic_becomes_a_result_code() {
    assert_eq!(ringwire_internal_panic_for_tests(), ringwire_result::Panic);
    // And the library keeps working on this thread.
    assert_eq!(ringwire_internal_panic_for_tests(), ringwire_result::Panic);
    let mut buf = [0 as c_char; 128];
    let mut w = 0;
    // SAFETY: a 128-byte buffer and a valid out-pointer.
    let r = unsafe {
        ringwire_error_message(ringwire_result::Panic as u32, buf.as_mut_ptr(), 128, &mut w)
    };
    assert_eq!(r, OK);
    // SAFETY: the function wrote a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(text.len(), w);
    assert!(text.contains("panicked"));
}

#[test]
fn error_texts_need_room_and_unknown_codes_are_named() {
    let mut buf = [0 as c_char; 4];
    let mut w = 0;
    // SAFETY: buffers as declared.
    unsafe {
        assert_eq!(
            ringwire_error_message(0, buf.as_mut_ptr(), 4, &mut w),
            ringwire_result::BufferTooSmall
        );
        let mut big = [0 as c_char; 128];
        assert_eq!(
            ringwire_error_message(9999, big.as_mut_ptr(), 128, &mut w),
            OK
        );
        assert!(
            CStr::from_ptr(big.as_ptr())
                .to_str()
                .unwrap()
                .contains("unknown")
        );
    }
}

#[test]
fn bad_enum_values_and_config_files_are_errors() {
    // SAFETY: valid pointers throughout.
    unsafe {
        let mut cfg = null_mut();
        assert_eq!(ringwire_config_new(&mut cfg), OK);
        assert_eq!(
            ringwire_config_set_driver(cfg, 77),
            ringwire_result::InvalidArgument
        );
        assert_eq!(
            ringwire_config_set_listen(cfg, c"not an address".as_ptr()),
            ringwire_result::InvalidArgument
        );
        let mut n = null_mut();
        assert_eq!(ringwire_node_start(cfg, &mut n), ringwire_result::NodeKey);
        assert!(n.is_null(), "outputs are written only on success");
        ringwire_config_free(cfg);
        let mut out = null_mut();
        assert_eq!(
            ringwire_config_load_toml(c"/nonexistent/ringwire.toml".as_ptr(), &mut out),
            ringwire_result::Config
        );
        assert!(out.is_null());
        let mut buf = [0 as c_char; 1025];
        let mut w = 0;
        assert_eq!(ringwire_last_error(buf.as_mut_ptr(), buf.len(), &mut w), OK);
        assert!(w > 0, "the detail names the problem");
    }
}

#[test]
fn use_after_stop_returns_stopped() {
    let (n, ch) = node_with_channel(7, 0x20, 8);
    // SAFETY: a live node handle until free; valid out-pointers.
    unsafe {
        assert_eq!(ringwire_node_stop(n, 2000), OK);
        assert_eq!(ringwire_node_stop(n, 2000), ringwire_result::Stopped);
        let mut id = ringwire_node_id::default();
        assert_eq!(ringwire_node_get_id(n, &mut id), ringwire_result::Stopped);
        assert_eq!(
            ringwire_node_open_channel(n, 0x21, 1, 8, 1024, &mut null_mut()),
            ringwire_result::Stopped
        );
        let env = envelope(ringwire_to::Local, b"x");
        let mut q = 99;
        assert_eq!(
            ringwire_channel_send(ch, &env, 1, 100, &mut q),
            ringwire_result::Stopped
        );
        assert_eq!(q, 0);
        let mut msgs = [std::mem::zeroed::<ringwire_message>(); 4];
        let (mut batch, mut count) = (null_mut(), 0);
        let mut r = OK;
        for _ in 0..100 {
            r = ringwire_channel_recv(ch, msgs.as_mut_ptr(), 4, 50, &mut batch, &mut count);
            if r != OK {
                break;
            }
        }
        assert_eq!(r, ringwire_result::Stopped);
        ringwire_channel_free(ch);
        ringwire_node_free(n);
    }
}

#[test]
fn two_nodes_exchange_messages_and_a_request() {
    let p = two_nodes(node(1), node(2)).with_channel(0x40, 64, 1 << 20);
    // SAFETY: live handles until freed; buffers and out-pointers valid as declared.
    unsafe {
        let mut got = ringwire_node_id::default();
        assert_eq!(
            ringwire_node_dial(p.a, p.addr.as_ptr(), &p.idb, &mut got),
            OK
        );
        assert_eq!(got, p.idb);
        let mut stats = ringwire_node_stats::default();
        assert_eq!(ringwire_node_get_stats(p.a, &mut stats), OK);
        assert_eq!(stats.peers, 1);

        // Both sides see the peer come up.
        let mut evs = event_slots::<4>();
        let mut n = 0;
        assert_eq!(
            ringwire_node_poll_events(p.b, evs.as_mut_ptr(), 4, 5000, &mut n),
            OK
        );
        assert_eq!(n, 1);
        assert_eq!(evs[0].kind, ringwire_peer_event_kind::Up as u32);
        assert_eq!(evs[0].peer, p.ida);
        assert!(!evs[0].outbound);

        // a → b: a batch of three.
        let payloads: [&[u8]; 3] = [b"one", b"two two", &[7u8; 5000]];
        let envs: Vec<_> = payloads
            .iter()
            .map(|body| ringwire_envelope {
                peer: p.idb,
                ..envelope(ringwire_to::Peer, body)
            })
            .collect();
        let mut q = 0;
        assert_eq!(
            ringwire_channel_send(p.ca, envs.as_ptr(), 3, 5000, &mut q),
            OK
        );
        assert_eq!(q, 3);
        let mut fd = -1;
        assert_eq!(ringwire_channel_fd(p.cb, &mut fd), OK);
        assert!(fd >= 0);
        let mut received: Vec<Vec<u8>> = Vec::new();
        let mut msgs = [std::mem::zeroed::<ringwire_message>(); 8];
        while received.len() < 3 {
            let (mut batch, mut count) = (null_mut(), 0);
            assert_eq!(
                ringwire_channel_recv(p.cb, msgs.as_mut_ptr(), 8, 5000, &mut batch, &mut count),
                OK
            );
            assert!(count > 0, "messages arrive");
            for m in &msgs[..count] {
                assert_eq!(m.peer, p.ida);
                assert_eq!(m.channel, 0x40);
                assert_eq!(m.request_id, 0);
                received.push(std::slice::from_raw_parts(m.payload, m.payload_len).to_vec());
            }
            ringwire_batch_release(batch);
        }
        assert_eq!(
            received,
            payloads.iter().map(|p| p.to_vec()).collect::<Vec<_>>()
        );

        // b asks a; a answers from its receive loop on another thread.
        let ca_addr = p.ca as usize;
        let responder = std::thread::spawn(move || {
            let ca = ca_addr as *const ringwire_channel;
            let mut msgs = [std::mem::zeroed::<ringwire_message>(); 1];
            let (mut batch, mut count) = (null_mut(), 0);
            assert_eq!(
                ringwire_channel_recv(ca, msgs.as_mut_ptr(), 1, 5000, &mut batch, &mut count),
                OK
            );
            assert_eq!(count, 1);
            let m = msgs[0];
            assert_ne!(m.request_id, 0);
            let mut answer = std::slice::from_raw_parts(m.payload, m.payload_len).to_vec();
            answer.reverse();
            ringwire_batch_release(batch);
            assert_eq!(
                ringwire_channel_respond(ca, m.request_id, answer.as_ptr(), answer.len()),
                OK
            );
            assert_eq!(
                ringwire_channel_respond(ca, m.request_id, answer.as_ptr(), answer.len()),
                ringwire_result::UnknownRequest
            );
        });
        let mut resp = std::mem::zeroed::<ringwire_message>();
        let mut batch = null_mut();
        let ask = b"ping?";
        assert_eq!(
            ringwire_channel_request(
                p.cb,
                &p.ida,
                ask.as_ptr(),
                ask.len(),
                5000,
                &mut resp,
                &mut batch
            ),
            OK
        );
        assert_eq!(
            std::slice::from_raw_parts(resp.payload, resp.payload_len),
            b"?gnip"
        );
        ringwire_batch_release(batch);
        responder.join().unwrap();

        assert_eq!(ringwire_node_disconnect(p.a, &p.idb), OK);
    }
    p.free();
}

#[test]
fn freed_and_foreign_handles_are_errors_not_crashes() {
    let (n, ch) = node_with_channel(9, 0x22, 8);
    // SAFETY: the handles are used only through the API, which validates them.
    unsafe {
        ringwire_channel_free(ch);
        ringwire_channel_free(ch);
        let mut fd = 0;
        assert_eq!(
            ringwire_channel_fd(ch, &mut fd),
            ringwire_result::InvalidHandle
        );
        ringwire_node_free(n);
        ringwire_node_free(n);
        let mut id = ringwire_node_id::default();
        assert_eq!(
            ringwire_node_get_id(n, &mut id),
            ringwire_result::InvalidHandle
        );
        assert_eq!(ringwire_node_stop(n, 0), ringwire_result::InvalidHandle);

        // A pointer this library never made.
        let bogus = 0x1000 as *mut ringwire_node;
        assert_eq!(
            ringwire_node_get_id(bogus, &mut id),
            ringwire_result::InvalidHandle
        );
        ringwire_node_free(bogus);
        let mut cfg = null_mut();
        assert_eq!(ringwire_config_new(&mut cfg), OK);
        ringwire_config_free(cfg);
        assert_eq!(
            ringwire_config_set_shards(cfg, 2),
            ringwire_result::InvalidHandle
        );
        assert_eq!(
            ringwire_node_start(cfg, &mut null_mut()),
            ringwire_result::InvalidHandle
        );
        ringwire_batch_release(0x2000 as *mut ringwire_batch);
    }
}

#[test]
fn local_envelopes_loop_back_and_wake_the_eventfd() {
    let (n, ch) = node_with_channel(11, 0x23, 8);
    // SAFETY: live handles until freed; buffers valid as declared.
    unsafe {
        let mut fd = -1;
        assert_eq!(ringwire_channel_fd(ch, &mut fd), OK);
        let env = envelope(ringwire_to::Local, b"self");
        let mut q = 0;
        assert_eq!(ringwire_channel_send(ch, &env, 1, 1000, &mut q), OK);
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        assert_eq!(
            libc::poll(&mut p, 1, 5000),
            1,
            "the eventfd becomes readable"
        );
        let mut msgs = [std::mem::zeroed::<ringwire_message>(); 2];
        let (mut batch, mut count) = (null_mut(), 0);
        assert_eq!(
            ringwire_channel_recv(ch, msgs.as_mut_ptr(), 2, 0, &mut batch, &mut count),
            OK
        );
        assert_eq!(count, 1);
        assert!(msgs[0].local);
        assert_eq!(
            std::slice::from_raw_parts(msgs[0].payload, msgs[0].payload_len),
            b"self"
        );
        ringwire_batch_release(batch);
        // Nothing waits: a receive without waiting gives 0 and no batch.
        assert_eq!(
            ringwire_channel_recv(ch, msgs.as_mut_ptr(), 2, 0, &mut batch, &mut count),
            OK
        );
        assert_eq!(count, 0);
        assert!(batch.is_null());
        p.revents = 0;
        assert_eq!(
            libc::poll(&mut p, 1, 0),
            0,
            "an empty receive leaves the eventfd unreadable (a poller must not spin)"
        );
        // Three wait and two fit: the eventfd stays readable after the first receive, and
        // is unreadable once the queue is empty again.
        for _ in 0..3 {
            assert_eq!(ringwire_channel_send(ch, &env, 1, 1000, &mut q), OK);
        }
        assert_eq!(
            libc::poll(&mut p, 1, 5000),
            1,
            "readable when messages wait"
        );
        let mut got = 0;
        while got < 3 {
            assert_eq!(
                ringwire_channel_recv(ch, msgs.as_mut_ptr(), 2, 1000, &mut batch, &mut count),
                OK
            );
            got += count;
            ringwire_batch_release(batch);
            if got < 3 {
                assert_eq!(libc::poll(&mut p, 1, 0), 1, "still readable: one waits");
            }
        }
        assert_eq!(
            ringwire_channel_recv(ch, msgs.as_mut_ptr(), 2, 0, &mut batch, &mut count),
            OK
        );
        assert_eq!(count, 0);
        assert_eq!(libc::poll(&mut p, 1, 0), 0, "unreadable once drained");
        ringwire_channel_free(ch);
        ringwire_node_free(n);
    }
}

/// The node ID stock CometBFT derives from the fixtures' node_key.json.
const FIXTURE_ID: &str = "65b60673d6ed884bf01c2c222d82ada0740f29ac";

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/fixtures")
        .join(name)
}

fn hex_id(n: *const ringwire_node) -> String {
    let mut buf = [0 as c_char; 41];
    let mut w = 0;
    // SAFETY: a 41-byte buffer; the handle is validated by the call.
    let r = unsafe { ringwire_node_get_id_hex(n, buf.as_mut_ptr(), buf.len(), &mut w) };
    assert_eq!(r, OK);
    assert_eq!(w, 40);
    // SAFETY: the call wrote a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

fn start_from(cfg: *mut ringwire_config) -> *mut ringwire_node {
    // SAFETY: a live config; valid out-pointer.
    unsafe {
        assert_eq!(ringwire_config_set_listen(cfg, c"127.0.0.1:0".as_ptr()), OK);
        assert_eq!(ringwire_config_set_shards(cfg, 1), OK);
        assert_eq!(
            ringwire_config_set_driver(cfg, ringwire_driver::Epoll as u32),
            OK
        );
        let mut n = null_mut();
        assert_eq!(ringwire_node_start(cfg, &mut n), OK);
        ringwire_config_free(cfg);
        n
    }
}

#[test]
fn a_cometbft_home_keeps_its_node_id() {
    let home = std::ffi::CString::new(fixture("cometbft-v0.40").to_str().unwrap()).unwrap();
    let mut cfg = null_mut();
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    let r = unsafe { ringwire_config_load_cometbft_home(home.as_ptr(), &mut cfg) };
    assert_eq!(r, OK);
    let n = start_from(cfg);
    assert_eq!(hex_id(n), FIXTURE_ID);
    // SAFETY: a live node.
    unsafe { ringwire_node_free(n) };
}

#[test]
fn a_toml_file_sets_the_key_and_network() {
    let dir = std::env::temp_dir().join(format!("ringwire-ffi-toml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = fixture("cometbft-v0.40/config/node_key.json");
    let file = dir.join("ringwire.toml");
    std::fs::write(
        &file,
        format!(
            "[node]\nnetwork = \"toml-net\"\nnode_key_file = {:?}\n\n[p2p]\nladdr = \"tcp://127.0.0.1:0\"\n",
            key.to_str().unwrap()
        ),
    )
    .unwrap();
    let path = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
    let mut cfg = null_mut();
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    let r = unsafe { ringwire_config_load_toml(path.as_ptr(), &mut cfg) };
    if r != OK {
        let mut buf = [0 as c_char; 1025];
        let mut w = 0;
        // SAFETY: a 1025-byte buffer.
        unsafe { ringwire_last_error(buf.as_mut_ptr(), buf.len(), &mut w) };
        // SAFETY: NUL-terminated by the call.
        panic!("load: {r:?}: {:?}", unsafe { CStr::from_ptr(buf.as_ptr()) });
    }
    let n = start_from(cfg);
    assert_eq!(hex_id(n), FIXTURE_ID);
    // SAFETY: a live node.
    unsafe { ringwire_node_free(n) };
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unknown_toml_key_is_a_config_error_with_detail() {
    let dir = std::env::temp_dir().join(format!("ringwire-ffi-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ringwire.toml");
    std::fs::write(&file, "[p2p]\nno_such_key = 1\n").unwrap();
    let path = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
    let mut cfg = null_mut();
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    let r = unsafe { ringwire_config_load_toml(path.as_ptr(), &mut cfg) };
    assert_eq!(r, ringwire_result::Config);
    assert!(cfg.is_null());
    let mut buf = [0 as c_char; 1025];
    let mut w = 0;
    // SAFETY: a 1025-byte buffer.
    let r = unsafe { ringwire_last_error(buf.as_mut_ptr(), buf.len(), &mut w) };
    assert_eq!(r, OK);
    // SAFETY: NUL-terminated by the call.
    let detail = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert!(detail.contains("no_such_key"), "{detail}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn freeing_a_channel_ends_a_receive_waiting_on_another_thread() {
    let (n, ch) = node_with_channel(12, 0x24, 8);
    let addr = ch as usize;
    let waiter = std::thread::spawn(move || {
        let mut msgs = [envelope_view(); 1];
        let (mut batch, mut count) = (null_mut(), 0);
        // SAFETY: the handle is validated by the call; buffers as declared.
        unsafe {
            ringwire_channel_recv(
                addr as *const ringwire_channel,
                msgs.as_mut_ptr(),
                1,
                60_000,
                &mut batch,
                &mut count,
            )
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: a live channel, freed once; the waiting call holds its own reference.
    unsafe { ringwire_channel_free(ch) };
    assert_eq!(waiter.join().unwrap(), ringwire_result::Stopped);
    // SAFETY: a live node.
    unsafe { ringwire_node_free(n) };
}

fn envelope(to: ringwire_to, payload: &[u8]) -> ringwire_envelope {
    ringwire_envelope {
        to: to as u32,
        peer: ringwire_node_id::default(),
        role: null(),
        fanout: ringwire_fanout::All as u32,
        fanout_count: 0,
        fanout_fraction: 0.0,
        payload: payload.as_ptr(),
        payload_len: payload.len(),
        deliver_within_ms: 0,
    }
}

/// Receives exactly one message on `ch` within five seconds and returns its bytes.
fn recv_one(ch: *const ringwire_channel) -> (ringwire_node_id, Vec<u8>) {
    let mut msgs = [envelope_view(); 2];
    let (mut batch, mut count) = (null_mut(), 0);
    // SAFETY: the handle is validated by the call; buffers as declared.
    let r =
        unsafe { ringwire_channel_recv(ch, msgs.as_mut_ptr(), 2, 5000, &mut batch, &mut count) };
    assert_eq!(r, OK);
    assert_eq!(count, 1);
    // SAFETY: the view is valid until the batch is released, below.
    let bytes =
        unsafe { std::slice::from_raw_parts(msgs[0].payload, msgs[0].payload_len) }.to_vec();
    // SAFETY: a batch from the call above.
    unsafe { ringwire_batch_release(batch) };
    (msgs[0].peer, bytes)
}

fn envelope_view() -> ringwire_message {
    ringwire_message {
        peer: ringwire_node_id::default(),
        local: false,
        channel: 0,
        payload: null(),
        payload_len: 0,
        request_id: 0,
    }
}

#[test]
fn broadcast_and_role_sends_reach_the_peer() {
    let mut cfg = null_mut();
    // SAFETY: valid pointers and NUL-terminated strings.
    unsafe {
        assert_eq!(ringwire_config_new(&mut cfg), OK);
        assert_eq!(ringwire_config_set_key_seed(cfg, [22; 32].as_ptr()), OK);
        assert_eq!(ringwire_config_set_network(cfg, c"ffi-test".as_ptr()), OK);
        assert_eq!(ringwire_config_add_capability(cfg, c"archive".as_ptr()), OK);
    }
    let p = two_nodes(node(21), start_from(cfg)).with_channel(0x50, 16, 4096);
    // SAFETY: live handles until freed; buffers and out-pointers valid as declared.
    unsafe {
        assert_eq!(
            ringwire_node_dial(p.a, p.addr.as_ptr(), null(), null_mut()),
            OK
        );

        // The dialer's own Up event is already waiting: a poll that does not wait finds it.
        let mut evs = event_slots::<2>();
        let mut n = 0;
        assert_eq!(
            ringwire_node_poll_events(p.a, evs.as_mut_ptr(), 2, 0, &mut n),
            OK
        );
        assert_eq!(n, 1);
        assert_eq!(evs[0].peer, p.idb);
        assert!(evs[0].outbound);
        assert!(evs[0].native);

        // The listener registers the peer on its own schedule: wait for its Up event before
        // broadcasting from it.
        assert_eq!(
            ringwire_node_poll_events(p.b, evs.as_mut_ptr(), 2, 5000, &mut n),
            OK
        );
        assert_eq!(n, 1);
        assert_eq!(evs[0].peer, p.ida);

        let mut q = 0;
        let bcast = envelope(ringwire_to::Broadcast, b"to all");
        assert_eq!(ringwire_channel_send(p.cb, &bcast, 1, 5000, &mut q), OK);
        assert_eq!(recv_one(p.ca), (p.idb, b"to all".to_vec()));

        let mut role = envelope(ringwire_to::Role, b"to archives");
        role.role = c"archive".as_ptr();
        assert_eq!(ringwire_channel_send(p.ca, &role, 1, 5000, &mut q), OK);
        assert_eq!(recv_one(p.cb), (p.ida, b"to archives".to_vec()));

        let mut bad = envelope(ringwire_to::Role, b"x");
        bad.role = c"archive".as_ptr();
        bad.fanout = 42;
        assert_eq!(
            ringwire_channel_send(p.ca, &bad, 1, 0, &mut q),
            ringwire_result::InvalidArgument
        );
        assert_eq!(q, 0);
    }
    p.free();
}

#[test]
fn a_bad_envelope_stops_the_batch_at_its_index() {
    let (n, ch) = node_with_channel(31, 0x25, 8);
    // SAFETY: live handles until freed; buffers as declared.
    unsafe {
        let mut envs = [
            envelope(ringwire_to::Local, b"first"),
            envelope(ringwire_to::Local, b"second"),
            envelope(ringwire_to::Local, b"third"),
        ];
        envs[1].payload = null();
        let mut q = 0;
        let r = ringwire_channel_send(ch, envs.as_ptr(), 3, 1000, &mut q);
        assert_eq!(r, ringwire_result::NullParameter);
        assert_eq!(q, 1, "the first envelope was queued, the second failed");
        assert_eq!(recv_one(ch).1, b"first");

        // Text results need room for the NUL.
        let mut buf = [0 as c_char; 40];
        let mut w = 0;
        assert_eq!(
            ringwire_node_get_id_hex(n, buf.as_mut_ptr(), 40, &mut w),
            ringwire_result::BufferTooSmall
        );
        ringwire_channel_free(ch);
        ringwire_node_free(n);
    }
}

#[test]
fn a_banned_peer_is_disconnected_and_refused() {
    let p = two_nodes(node(41), node(42));
    // SAFETY: live handles until freed; buffers as declared.
    unsafe {
        assert_eq!(
            ringwire_node_dial(p.a, p.addr.as_ptr(), &p.idb, null_mut()),
            OK
        );
        assert_eq!(ringwire_node_ban(p.a, &p.idb, 60_000), OK);
        let mut evs = event_slots::<4>();
        // Up, then Down.
        let mut seen_down = false;
        for _ in 0..4 {
            let mut n = 0;
            assert_eq!(
                ringwire_node_poll_events(p.a, evs.as_mut_ptr(), 4, 5000, &mut n),
                OK
            );
            if evs[..n]
                .iter()
                .any(|e| e.kind == ringwire_peer_event_kind::Down as u32 && e.peer == p.idb)
            {
                seen_down = true;
                break;
            }
        }
        assert!(seen_down, "the banned peer goes down");
        assert_eq!(
            ringwire_node_dial(p.a, p.addr.as_ptr(), &p.idb, null_mut()),
            ringwire_result::Dial
        );
    }
    p.free();
}

/// A caller that waits only in its own poller and drains with `ringwire_channel_recv_next`
/// (timeout 0) gets every message while a sender keeps sending: the eventfd is never left
/// unreadable while messages wait, although it is written once per drain, not per message.
#[test]
fn a_poller_driven_loop_with_recv_next_misses_nothing() {
    const TOTAL: usize = 20_000;
    let (n, ch) = node_with_channel(12, 0x24, 64);
    let addr = ch as usize;
    let sender = std::thread::spawn(move || {
        let ch = addr as *const ringwire_channel;
        for i in 0..TOTAL {
            let p = (i as u32).to_le_bytes();
            let env = envelope(ringwire_to::Local, &p);
            let mut q = 0;
            // SAFETY: a live handle (freed only after this thread is joined).
            let r = unsafe { ringwire_channel_send(ch, &env, 1, 5000, &mut q) };
            assert_eq!(r, OK);
        }
    });
    let mut fd = -1;
    // SAFETY: a live handle; out-pointer valid.
    assert_eq!(unsafe { ringwire_channel_fd(ch, &mut fd) }, OK);
    let mut msgs = [envelope_view(); 16];
    let mut batch = null_mut();
    let mut next = 0u32;
    let mut calls = 0usize;
    while (next as usize) < TOTAL {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut p, 1, 5000) };
        assert_eq!(ready, 1, "stalled at {next}");
        let mut count = 0;
        // SAFETY: a live handle; the released batch is not read afterwards; buffers valid.
        let r = unsafe {
            ringwire_channel_recv_next(ch, batch, msgs.as_mut_ptr(), 16, 0, &mut batch, &mut count)
        };
        assert_eq!(r, OK);
        calls += 1;
        for m in &msgs[..count] {
            // SAFETY: views valid until `batch` is released by the next call.
            let b = unsafe { std::slice::from_raw_parts(m.payload, m.payload_len) };
            assert_eq!(b, next.to_le_bytes(), "in order");
            next += 1;
        }
    }
    sender.join().unwrap();
    assert!(calls <= TOTAL, "{calls} receive calls for {TOTAL} messages");
    // SAFETY: the last batch, then live handles, each freed once.
    unsafe {
        ringwire_batch_release(batch);
        ringwire_channel_free(ch);
        ringwire_node_free(n);
    }
}

/// Message `i` of `many_small_and_large_payloads_arrive_intact_and_in_order`: lengths from 0
/// to 24,000 bytes, some empty (sent with a NULL pointer).
fn numbered(i: usize) -> Vec<u8> {
    let len = if i.is_multiple_of(7) {
        0
    } else {
        (i * 997) % 24_000
    };
    (0..len).map(|k| (k * 31 + i * 7) as u8).collect()
}

#[test]
fn many_small_and_large_payloads_arrive_intact_and_in_order() {
    const N: usize = 1200;
    let p = two_nodes(node(31), node(32)).with_channel(0x41, 64, 1 << 20);
    // SAFETY: live handles until freed; buffers and out-pointers valid as declared.
    unsafe {
        let mut got = ringwire_node_id::default();
        assert_eq!(
            ringwire_node_dial(p.a, p.addr.as_ptr(), &p.idb, &mut got),
            OK
        );
        let ca_addr = p.ca as usize;
        let sender = std::thread::spawn(move || {
            let messages: Vec<Vec<u8>> = (0..N).map(numbered).collect();
            for batch in messages.chunks(100) {
                let envs: Vec<_> = batch
                    .iter()
                    .map(|body| ringwire_envelope {
                        peer: p.idb,
                        // An empty payload may come with a NULL pointer.
                        payload: if body.is_empty() {
                            null()
                        } else {
                            body.as_ptr()
                        },
                        ..envelope(ringwire_to::Peer, body)
                    })
                    .collect();
                let mut q = 0;
                let r = ringwire_channel_send(
                    ca_addr as *const ringwire_channel,
                    envs.as_ptr(),
                    envs.len(),
                    10_000,
                    &mut q,
                );
                assert_eq!((r, q), (OK, envs.len()));
            }
        });
        let mut msgs = [envelope_view(); 64];
        let mut next = 0;
        while next < N {
            let (mut batch, mut count) = (null_mut(), 0);
            assert_eq!(
                ringwire_channel_recv(p.cb, msgs.as_mut_ptr(), 64, 10_000, &mut batch, &mut count),
                OK
            );
            assert!(count > 0, "messages arrive");
            for m in &msgs[..count] {
                let bytes = if m.payload_len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(m.payload, m.payload_len)
                };
                assert_eq!(bytes, numbered(next), "message {next}");
                next += 1;
            }
            ringwire_batch_release(batch);
        }
        sender.join().unwrap();
    }
    p.free();
}

#[test]
fn a_cancel_token_fired_on_another_thread_ends_a_waiting_request_and_dial() {
    use ringwire_ffi::cancel::*;
    use std::time::{Duration, Instant};
    let p = two_nodes(node(41), node(42)).with_channel(0x44, 8, 1 << 16);
    // SAFETY: live handles until freed; buffers and out-pointers valid as declared; the
    // threads get handles as integers and use them only while the handles live.
    unsafe {
        assert_eq!(
            ringwire_node_dial(p.a, p.addr.as_ptr(), &p.idb, null_mut()),
            OK
        );
        let mut cancel = null_mut();
        assert_eq!(ringwire_cancel_new(&mut cancel), OK);

        // a asks b, whose application holds the request unanswered.
        let (ca, idb, tok) = (p.ca as usize, p.idb, cancel as usize);
        let asker = std::thread::spawn(move || {
            let mut resp = std::mem::zeroed::<ringwire_message>();
            let mut batch = null_mut();
            let r = ringwire_channel_request_cancellable(
                ca as *const ringwire_channel,
                &idb,
                b"anyone?".as_ptr(),
                7,
                30_000,
                tok as *const ringwire_cancel,
                &mut resp,
                &mut batch,
            );
            (r, Instant::now())
        });
        let mut msgs = [std::mem::zeroed::<ringwire_message>(); 1];
        let (mut batch, mut count) = (null_mut(), 0);
        assert_eq!(
            ringwire_channel_recv(p.cb, msgs.as_mut_ptr(), 1, 5000, &mut batch, &mut count),
            OK
        );
        assert_ne!(msgs[0].request_id, 0);
        ringwire_batch_release(batch);
        let fired = Instant::now();
        assert_eq!(ringwire_cancel_fire(cancel), OK);
        let (r, returned) = asker.join().unwrap();
        assert_eq!(r, ringwire_result::Cancelled);
        assert!(returned - fired < Duration::from_millis(500));

        // A fired token ends a later call before it starts.
        let mut peer = ringwire_node_id::default();
        assert_eq!(
            ringwire_node_dial_cancellable(p.a, p.addr.as_ptr(), null(), cancel, &mut peer),
            ringwire_result::Cancelled
        );
        ringwire_cancel_free(cancel);
        assert_eq!(
            ringwire_node_dial_cancellable(p.a, p.addr.as_ptr(), null(), cancel, &mut peer),
            ringwire_result::InvalidHandle
        );

        // A dial stuck in its handshake (the address accepts and never speaks).
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std::ffi::CString::new(silent.local_addr().unwrap().to_string()).unwrap();
        let holder = std::thread::spawn(move || silent.accept().map(|(s, _)| s));
        let mut cancel = null_mut();
        assert_eq!(ringwire_cancel_new(&mut cancel), OK);
        let tok = cancel as usize;
        let firer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            (
                ringwire_cancel_fire(tok as *const ringwire_cancel),
                Instant::now(),
            )
        });
        let r = ringwire_node_dial_cancellable(p.a, addr.as_ptr(), null(), cancel, &mut peer);
        let returned = Instant::now();
        let (fire, fired) = firer.join().unwrap();
        assert_eq!((fire, r), (OK, ringwire_result::Cancelled));
        assert!(returned - fired < Duration::from_millis(500));
        ringwire_cancel_free(cancel);
        drop(holder.join().unwrap());
    }
    p.free();
}
