//! A node (or any work) in a second process. The test binary starts itself with one test
//! selected and an environment variable set; that test (which returns at once without the
//! variable) starts a node, announces it with [`announce_and_wait`], and lives until the parent
//! closes its stdin; or it prints `READY …` itself and works until the parent kills it
//! ([`spawn_ready`]).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use ringwire::node::Node;
use ringwire::proto::secret::NodeId;

/// Runs this test binary's test `test` alone, with `env` set to `value`, and waits for the node
/// it starts to announce itself. Returns the child process and that node's address and ID.
pub fn spawn_child(test: &str, env: &str, value: &str) -> (Child, SocketAddr, NodeId) {
    let (mut child, ready) = spawn_ready(test, env, value);
    let mut parts = ready.split(' ');
    let parsed = (
        parts.next().and_then(|a| a.parse().ok()),
        parts.next().and_then(|i| i.parse().ok()),
    );
    let (Some(addr), Some(id)) = parsed else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child announced {ready:?}, not an address and an ID");
    };
    (child, addr, id)
}

/// Runs this test binary's test `test` alone, with `env` set to `value`, and waits until it
/// prints a line with `READY `; returns the child process and the rest of that line. The
/// child's stdout is read no further (it may keep printing nothing; it must not fill the pipe).
pub fn spawn_ready(test: &str, env: &str, value: &str) -> (Child, String) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, value)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let ready = child.stdout.take().and_then(|stdout| {
        // The harness may print "test NAME ... " on the same line first.
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.split_once("READY ").map(|(_, r)| r.to_owned()))
    });
    let Some(ready) = ready else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child never became ready");
    };
    (child, ready)
}

/// In the child: tells the parent where `node` listens, then lives until the parent closes
/// stdin (or kills the process), and exits without running the rest of the harness.
pub fn announce_and_wait(node: &Node) -> ! {
    println!("READY {} {}", node.listen_addr().unwrap(), node.node_id());
    // Live until the parent closes our stdin (or kills us).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    std::process::exit(0);
}
