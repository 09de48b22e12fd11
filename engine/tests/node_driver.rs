//! Driver selection: the configured driver runs, and under a seccomp filter that denies
//! `io_uring_setup` (as Docker's default profile does) `auto` falls back to epoll while
//! `io_uring` fails with a clear error.

use std::process::Command;

use bytes::Bytes;
use ringwire::node::StartError;
use ringwire::router::Envelope;
use ringwire::rt::driver::{DriverError, ProbeFailure};
use ringwire::rt::{Driver, DriverKind};
use ringwire_test_support::node::*;

#[test]
fn the_configured_driver_runs() {
    let node = builder(1).start().expect("start");
    match driver() {
        Driver::Epoll => assert_eq!(node.driver(), DriverKind::Epoll),
        Driver::IoUring => assert_eq!(node.driver(), DriverKind::IoUring),
        Driver::Auto => {}
    }
    node.shutdown_blocking(secs(5));
}

const CHILD_ENV: &str = "RINGWIRE_TEST_SECCOMP_CHILD";

/// Runs in a child process (the parent test sets `CHILD_ENV`); a no-op otherwise.
#[test]
fn seccomp_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    ringwire::rt::seccomp::deny_io_uring_setup().expect("install the seccomp filter");

    let err = builder(1)
        .driver(Driver::IoUring)
        .start()
        .expect_err("io_uring must be refused");
    match &err {
        StartError::Driver(DriverError::IoUringUnavailable(ProbeFailure::Denied)) => {}
        other => panic!("unexpected error: {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("io_uring") && text.contains("seccomp"),
        "{text}"
    );

    let a = builder(1)
        .driver(Driver::Auto)
        .start()
        .expect("auto starts");
    let b = builder(2)
        .driver(Driver::Auto)
        .start()
        .expect("auto starts");
    assert_eq!(a.driver(), DriverKind::Epoll);
    assert_eq!(b.driver(), DriverKind::Epoll);
    let desc = chan(0x20, 1, 1024);
    let ca = a.open_channel(desc.clone()).unwrap();
    let mut cb = b.open_channel(desc).unwrap();
    a.connect_memory_blocking(&b).expect("connect");
    ca.send_blocking(
        Envelope::peer(b.node_id(), Bytes::from_static(b"hi")),
        secs(5),
    )
    .unwrap();
    assert_eq!(cb.recv_blocking(secs(5)).unwrap().payload, &b"hi"[..]);
    a.shutdown_blocking(secs(5));
    b.shutdown_blocking(secs(5));
    println!("SECCOMP-CHILD-OK: {text}");
}

#[test]
fn auto_falls_back_under_seccomp_and_io_uring_fails_fast() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "seccomp_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("SECCOMP-CHILD-OK"),
        "child did not run:\n{stdout}\n{stderr}"
    );
}
