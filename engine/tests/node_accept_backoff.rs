//! `[limits] accept_backoff` (`docs/RELIABILITY.md` rows 2 and 19): a node out of file descriptors
//! pauses its listener for that long after each failed accept instead of spinning.
//!
//! The node runs in a child process (this test binary, one test selected) built from its
//! configuration. Once it listens, the parent lowers the child's `RLIMIT_NOFILE` to its lowest
//! free descriptor with `prlimit`, so every accept fails with EMFILE, and connects two sockets
//! that wait in the backlog. The child counts its failed accepts (`NodeStats::accept_errors`)
//! over two seconds.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Lines, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{ChildStdout, Command, Stdio};
use std::time::Duration;

use ringwire_test_support::node::*;

const CHILD_ENV: &str = "RINGWIRE_TEST_ACCEPT_BACKOFF";
const WINDOW: Duration = Duration::from_secs(2);

/// The node under test; runs only in the child process, with `accept_backoff` from the
/// environment.
#[test]
fn accept_backoff_child() {
    let Some(backoff) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let toml = format!(
        "[p2p]\nladdr = \"127.0.0.1:0\"\npex = false\n\n[engine]\nshards = 1\n\n[limits]\n\
         accept_backoff = \"{}\"\n",
        backoff.to_str().unwrap()
    );
    let node = builder_from_toml(1, &toml)
        .start()
        .expect("child node starts");
    println!("READY {}", node.listen_addr().unwrap());
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    // The parent lowered our descriptor limit and connected: count over the window.
    stdin.read_line(&mut line).unwrap();
    let before = node.stats().accept_errors;
    std::thread::sleep(WINDOW);
    let failed = node.stats().accept_errors - before;
    println!("ERRORS {failed}");
    line.clear();
    let _ = stdin.read_line(&mut line);
    std::process::exit(0);
}

/// The next line of the child's output holding `tag`, with what follows it.
fn expect(lines: &mut Lines<BufReader<ChildStdout>>, tag: &str) -> String {
    lines
        .map_while(Result::ok)
        .find_map(|l| l.split_once(tag).map(|(_, rest)| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("the child never printed {tag:?}"))
}

/// The lowest descriptor number process `pid` does not use: with `RLIMIT_NOFILE` at this value
/// it can open none.
fn lowest_free_fd(pid: u32) -> u32 {
    let used: HashSet<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !used.contains(n)).unwrap()
}

/// Failed accepts within the window for a node with `accept_backoff = backoff`, out of
/// descriptors with connections waiting.
fn failed_accepts(backoff: &str) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "accept_backoff_child", "--nocapture"])
        .args(["--test-threads=1"])
        .env(CHILD_ENV, backoff)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: SocketAddr = expect(&mut lines, "READY ").parse().unwrap();
    let limit = lowest_free_fd(child.id());
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", child.id()))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("this test needs prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
    // Two connections wait in the backlog; the kernel has no descriptor to hand them out with.
    let _waiting: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    let failed = expect(&mut lines, "ERRORS ").parse().unwrap();
    drop(stdin);
    let _ = child.wait();
    println!("accept_backoff = {backoff}: {failed} failed accepts in {WINDOW:?}");
    failed
}

#[test]
fn the_listener_pauses_for_accept_backoff_after_each_failed_accept() {
    // 500 ms: at most one failure per pause in the two-second window (the old fixed 50 ms
    // pause would give about 40).
    let slow = failed_accepts("500ms");
    assert!((1..=5).contains(&slow), "{slow} failed accepts with 500 ms");
    // 20 ms: the same descriptor shortage fails far more often.
    let fast = failed_accepts("20ms");
    assert!(fast >= 20, "{fast} failed accepts with 20 ms");
}
