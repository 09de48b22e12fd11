//! Freeing a channel closes its eventfd at once, even though the engine's queue may keep the
//! last waker a receive registered until the node stops. A test binary of its own, so that
//! no other test opens descriptors while this one counts them.

use std::ptr::null_mut;

use ringwire_ffi::channel::*;
use ringwire_ffi::config::*;
use ringwire_ffi::node::*;
use ringwire_ffi::result::*;

const OK: ringwire_result = ringwire_result::Ok;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn freeing_a_channel_closes_its_eventfd_before_the_node_stops() {
    let mut cfg = null_mut();
    let mut n = null_mut();
    // SAFETY: valid out-pointers and NUL-terminated strings; the config is freed after use.
    unsafe {
        assert_eq!(ringwire_config_new(&mut cfg), OK);
        assert_eq!(ringwire_config_set_key_seed(cfg, [21; 32].as_ptr()), OK);
        assert_eq!(ringwire_config_set_network(cfg, c"ffi-test".as_ptr()), OK);
        assert_eq!(ringwire_node_start(cfg, &mut n), OK);
        ringwire_config_free(cfg);
    }
    let before = open_fds();
    let mut channels = Vec::new();
    // Fourteen channels: with PEX on channel 0x00 and the capability channel, a NodeInfo's
    // sixteen places are full.
    for id in 0x40..0x4e {
        let mut ch = null_mut();
        // SAFETY: a live node and valid out-pointers.
        unsafe {
            assert_eq!(ringwire_node_open_channel(n, id, 1, 8, 1024, &mut ch), OK);
            // An empty receive leaves the eventfd with the engine's queue as its waker.
            let mut msgs = [std::mem::zeroed::<ringwire_message>(); 1];
            let (mut batch, mut count) = (null_mut(), 0);
            assert_eq!(
                ringwire_channel_recv(ch, msgs.as_mut_ptr(), 1, 0, &mut batch, &mut count),
                OK
            );
            assert_eq!(count, 0);
        }
        channels.push(ch);
    }
    assert_eq!(open_fds(), before + 14, "one eventfd per open channel");
    for ch in channels {
        // SAFETY: a live channel, freed once.
        unsafe { ringwire_channel_free(ch) };
    }
    assert_eq!(
        open_fds(),
        before,
        "every eventfd closed by its channel's free"
    );
    // SAFETY: a live node.
    unsafe { ringwire_node_free(n) };
}
