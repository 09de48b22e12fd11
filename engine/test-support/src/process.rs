//! Tests that run `ringwire` processes: start and stop a node, signals, ports, metrics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `ringwire node`; killed when dropped.
pub struct NodeProcess {
    /// The process.
    pub child: Child,
    /// The node ID it printed.
    pub id: String,
    /// The address it listens on.
    pub addr: String,
    /// Held open so that the node's later writes to stdout do not fail.
    _stdout: BufReader<ChildStdout>,
}

impl NodeProcess {
    /// Starts `EXE node ARGS` in `dir`, where `exe` is the `ringwire` binary under test, and
    /// waits for its "listening" line.
    pub fn start(exe: &str, args: &[&str], dir: &Path) -> NodeProcess {
        let mut child = Command::new(exe)
            .arg("node")
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ringwire node");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // "node ID listening on ADDR (driver D)"
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() >= 5 && words[0] == "node",
            "unexpected first line {line:?}; stderr: {}",
            {
                let _ = child.kill();
                let mut e = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut e);
                e
            }
        );
        NodeProcess {
            id: words[1].to_owned(),
            addr: words[4].to_owned(),
            child,
            _stdout: stdout,
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and stderr.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        signal(&self.child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "node did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        (status.code(), err)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with kill(1).
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET /metrics` on `addr`.
pub fn http_get_metrics(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics address");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// Retries `f` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the admin command `args` of the `ringwire` binary `bin` against the node configured
/// by `ringwire.toml` in `dir`; returns its JSON answer (the command must succeed).
pub fn admin(bin: &str, dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin)
        .args(args)
        .args(["--config", "ringwire.toml"])
        .current_dir(dir)
        .output()
        .expect("the admin command runs");
    assert!(
        out.status.success(),
        "ringwire {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the admin answer is JSON")
}
