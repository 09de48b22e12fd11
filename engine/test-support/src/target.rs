//! A node under attack in its own process, made one of the two ways an operator makes one:
//! the `ringwire node` command, or a program of the C ABI (`ringwire-abi-node`, in `ffi/`).
//! Both read the same configuration file; the test reads the process's descriptors and memory
//! from `/proc` and the node's counters through the node's own interface (the admin endpoint's
//! `stats`, or the C ABI's `ringwire_node_get_stats`).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ringwire::config::NodeKeyFile;
use ringwire::proto::secret::NodeId;
use serde_json::Value;

/// How the node under attack is made.
#[derive(Clone, Debug)]
pub enum Maker {
    /// `ringwire node --config FILE`; the path of the `ringwire` binary.
    Command(PathBuf),
    /// `ringwire-abi-node FILE`; the path of that binary.
    CAbi(PathBuf),
}

impl Maker {
    /// A short name for figures: `ringwire node` or `C ABI`.
    pub fn name(&self) -> &'static str {
        match self {
            Maker::Command(_) => "ringwire node",
            Maker::CAbi(_) => "C ABI",
        }
    }
}

/// A node process under attack; killed when dropped.
pub struct Target {
    maker: Maker,
    child: Child,
    /// The C ABI program's command input (its end stops it).
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    dir: PathBuf,
    /// The node's ID.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Target {
    /// Starts a node made by `maker` in `dir` from a configuration holding `sections` (TOML
    /// sections other than `[node]` and `[admin]`, which are added: the network `network`, a
    /// node key generated in `dir`, and for the command an admin socket).
    pub fn start(maker: &Maker, dir: &Path, network: &str, sections: &str) -> Target {
        Target::start_wrapped(maker, dir, network, sections, &[])
    }

    /// [`Target::start`] under `wrapper`, a command prefix that ends by executing the node's
    /// program in its own process (`ip netns exec NS`, `unshare -T …`, `prlimit …`, a cgroup's
    /// shell), so [`Target::pid`] is still the node's process.
    pub fn start_wrapped(
        maker: &Maker,
        dir: &Path,
        network: &str,
        sections: &str,
        wrapper: &[String],
    ) -> Target {
        let key = dir.join("node_key.json");
        NodeKeyFile::load_or_generate(&key).expect("node key");
        let mut text = format!(
            "[node]\nmoniker = \"target\"\nnetwork = \"{network}\"\nnode_key_file = \"{}\"\n\n{sections}\n",
            key.display()
        );
        if matches!(maker, Maker::Command(_)) {
            text.push_str("\n[admin]\nenabled = true\nlisten = \"unix://admin.sock\"\n");
        }
        let config = dir.join("ringwire.toml");
        std::fs::write(&config, text).expect("write the configuration");
        let (exe, args, stdin) = match maker {
            Maker::Command(exe) => (exe, vec!["node", "--config"], Stdio::null()),
            Maker::CAbi(exe) => (exe, Vec::new(), Stdio::piped()),
        };
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(args).arg(&config).stdin(stdin);
        // The log goes to a file: a pipe nobody reads would stall a node that logs a lot.
        let log = std::fs::File::create(dir.join("node.log")).expect("log file");
        let mut child = cmd
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the node process");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        // "node ID listening on ADDR ..."
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 5 || words[0] != "node" {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
            panic!(
                "{}: unexpected first line {line:?}; stderr: {err}",
                maker.name()
            );
        }
        Target {
            maker: maker.clone(),
            stdin: child.stdin.take(),
            id: words[1].parse().expect("node ID"),
            addr: words[4].parse().expect("listen address"),
            child,
            stdout,
            dir: dir.to_owned(),
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `sig` (a name `kill` knows: `STOP`, `CONT`, `KILL`…) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process's open descriptors.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory the process has had, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// CPU time the process has used (user and system), in clock ticks (1/100 s).
    pub fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|w| w.parse().unwrap_or(0))
            .collect();
        // utime and stime are fields 14 and 15 of stat; here 12 and 13 (from 0, after state).
        f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
    }

    /// Caps the process's descriptors with `prlimit`.
    pub fn limit_fds(&self, n: usize) {
        let ok = Command::new("prlimit")
            .args([
                "--pid",
                &self.pid().to_string(),
                &format!("--nofile={n}:{n}"),
            ])
            .status()
            .expect("prlimit")
            .success();
        assert!(ok, "prlimit");
    }

    /// The node's counters, named as `ringwire stats` names them.
    pub fn stats(&mut self) -> Value {
        match &self.maker {
            Maker::Command(exe) => {
                let out = Command::new(exe)
                    .args(["stats", "--config", "ringwire.toml"])
                    .current_dir(&self.dir)
                    .output()
                    .expect("ringwire stats");
                assert!(
                    out.status.success(),
                    "ringwire stats: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let v: Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
                v["stats"].clone()
            }
            Maker::CAbi(_) => {
                let stdin = self.stdin.as_mut().expect("the program's input");
                writeln!(stdin, "stats").expect("write a command");
                stdin.flush().expect("flush");
                let mut line = String::new();
                loop {
                    line.clear();
                    let n = self.stdout.read_line(&mut line).expect("read an answer");
                    assert!(n > 0, "the C ABI program ended");
                    if let Some(json) = line.strip_prefix("stats ") {
                        return serde_json::from_str(json).expect("stats JSON");
                    }
                }
            }
        }
    }

    /// Counter `name` of [`Target::stats`].
    pub fn stat(&mut self, name: &str) -> u64 {
        let s = self.stats();
        s[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name} in {s}"))
    }

    /// Waits up to `within` for counter `name` to reach `at_least`; returns its value.
    pub fn wait_stat(&mut self, name: &str, at_least: u64, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let v = self.stat(name);
            if v >= at_least || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the node the way its operator would (SIGTERM for the command, end of input for
    /// the C ABI program) and returns its exit code and log.
    pub fn stop(mut self) -> (Option<i32>, String) {
        match self.maker {
            Maker::Command(_) => {
                let _ = Command::new("kill")
                    .args(["-TERM", &self.pid().to_string()])
                    .status();
            }
            Maker::CAbi(_) => drop(self.stdin.take()),
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
        (status.and_then(|s| s.code()), log)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
