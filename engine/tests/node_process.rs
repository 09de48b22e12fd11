//! Two nodes in separate processes over loopback TCP: every channel, 1 byte to 16 MiB, native
//! and forced compat, every byte checked (the child echoes). Killing the child process brings
//! the peer down on this side.

use ringwire::proto::conn::{ChannelDescriptor, Mode};
use ringwire::router::{DownReason, Envelope, Origin, PeerEvent};
use ringwire_test_support::child::{announce_and_wait, spawn_child};
use ringwire_test_support::node::*;

const CHILD_ENV: &str = "RINGWIRE_TEST_ECHO_CHILD";
const SIZES: [usize; 6] = [
    1,
    255,
    16 * 1024,
    1024 * 1024 + 1,
    4 * 1024 * 1024,
    16 * 1024 * 1024,
];

fn channels() -> [ChannelDescriptor; 3] {
    [
        chan(0x20, 10, 17 << 20),
        chan(0x30, 5, 17 << 20),
        chan(0x40, 1, 17 << 20),
    ]
}

/// The echo node; runs only in the child process the parent test starts.
#[test]
fn echo_child() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let native = mode == "native";
    let node = tcp_node(7, native, &channels());
    for desc in channels() {
        let (sender, mut receiver) = node.open_channel(desc).unwrap().split();
        std::thread::spawn(move || {
            loop {
                let Some(m) = receiver.recv_blocking(secs(3600)) else {
                    return;
                };
                let Origin::Peer(from) = m.origin else {
                    continue;
                };
                if sender
                    .send_blocking(Envelope::peer(from, m.payload), secs(60))
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    announce_and_wait(&node);
}

fn exchange_with_child(native: bool) {
    let mode = if native { "native" } else { "compat" };
    let (mut child, addr, child_id) = spawn_child("echo_child", CHILD_ENV, mode);
    let a = tcp_node(1, native, &channels());
    let mut events = a.peer_events();
    let info = a
        .dial_blocking(addr, Some(child_id))
        .expect("dial the child");
    assert_eq!(info.mode, if native { Mode::Native } else { Mode::Compat });
    let mut chans: Vec<_> = channels()
        .into_iter()
        .map(|d| a.open_channel(d).unwrap())
        .collect();
    std::thread::scope(|s| {
        for (ci, ch) in chans.iter().enumerate() {
            let sender = ch.sender();
            s.spawn(move || {
                for (k, &len) in SIZES.iter().enumerate() {
                    let p = payload(len, (ci * 8 + k) as u8);
                    sender
                        .send_blocking(Envelope::peer(child_id, p), secs(60))
                        .unwrap();
                }
            });
        }
        for (ci, ch) in chans.iter_mut().enumerate() {
            for (k, &len) in SIZES.iter().enumerate() {
                let m = ch.recv_blocking(secs(60)).expect("echo arrives");
                assert_eq!(m.origin, Origin::Peer(child_id));
                assert!(
                    m.payload == payload(len, (ci * 8 + k) as u8),
                    "{len} bytes differ"
                );
            }
        }
    });

    // Kill the other process: the peer goes down with a socket reason.
    child.kill().unwrap();
    let _ = child.wait();
    loop {
        match wait_down(&mut events) {
            PeerEvent::Down { node_id, reason } if node_id == child_id => {
                assert!(matches!(reason, DownReason::Io(_)), "{reason}");
                break;
            }
            _ => continue,
        }
    }
    assert!(a.peers().is_empty());
    a.shutdown_blocking(secs(5));
}

#[test]
fn native_exchange_with_another_process() {
    exchange_with_child(true);
}

#[test]
fn compat_exchange_with_another_process() {
    exchange_with_child(false);
}
