//! Runs one measurement: spawns the receiver, waits for its `LISTEN` line, spawns the sender,
//! waits for both, and collects their reports and CPU time. S9 spawns one process, waits for
//! it and parses its summary.
//!
//! CPU time comes from `getrusage(RUSAGE_CHILDREN)` read right after each child is reaped, so
//! the difference between two readings is exactly the reaped child's user + system time (all
//! its threads, from exec to exit). The harness runs one measurement at a time, so no other
//! child is reaped in between.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

use crate::child::{ChildReport, Workload};
use crate::plan::Spec;
use crate::s9::{self, MeshReport};
use crate::system::{Driver, Role};

/// Keep this much of a child's standard error for error messages.
const STDERR_TAIL: usize = 4096;
/// How long the receiver may take to print `LISTEN`.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often exits are polled.
const POLL: Duration = Duration::from_millis(2);

/// Both sides' reports and costs of one measurement.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// The receiver's report.
    pub receiver: ChildReport,
    /// The sender's report.
    pub sender: ChildReport,
    /// Receiver CPU (user + system), seconds.
    pub receiver_cpu_s: f64,
    /// Sender CPU (user + system), seconds.
    pub sender_cpu_s: f64,
    /// Wall time from spawning the receiver to reaping the last child, seconds.
    pub wall_s: f64,
    /// Latency samples in nanoseconds (latency workloads only).
    pub samples_ns: Vec<u64>,
    /// S9's summary (the one process's CPU is `sender_cpu_s`).
    pub mesh: Option<MeshReport>,
}

/// Prefixes that place a side of a measurement, e.g. `ip netns exec <ns>`.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// Wraps the receiver command.
    pub receiver: Vec<String>,
    /// Wraps the sender command.
    pub sender: Vec<String>,
}

fn children_cpu_s() -> f64 {
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

fn wrap(cmd: Command, prefix: &[String]) -> Command {
    let Some((first, rest)) = prefix.split_first() else {
        return cmd;
    };
    let mut w = Command::new(first);
    w.args(rest).arg(cmd.get_program()).args(cmd.get_args());
    w
}

/// A spawned child with its output being collected.
struct Running {
    name: &'static str,
    child: Child,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<String>,
    listen: Option<Receiver<String>>,
    exit: Option<std::process::ExitStatus>,
    cpu_s: f64,
}

impl Running {
    fn spawn(name: &'static str, mut cmd: Command) -> Result<Self, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{name}: cannot start {:?}: {e}", cmd.get_program()))?;
        let out = child.stdout.take().ok_or("no stdout pipe")?;
        let mut err = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, rx) = sync_channel(1);
        let stdout = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("LISTEN ") {
                    let _ = tx.try_send(addr.trim().to_owned());
                }
                lines.push(line);
            }
            lines
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            if s.len() > STDERR_TAIL {
                let cut = s.len() - STDERR_TAIL;
                let cut = (cut..s.len())
                    .find(|&i| s.is_char_boundary(i))
                    .unwrap_or(s.len());
                s = s.split_off(cut);
            }
            s
        });
        Ok(Self {
            name,
            child,
            stdout,
            stderr,
            listen: Some(rx),
            exit: None,
            cpu_s: 0.0,
        })
    }

    /// Reaps the child if it has exited; charges it the CPU reaped with it.
    fn poll(&mut self, cpu_mark: &mut f64) -> Result<bool, String> {
        if self.exit.is_some() {
            return Ok(true);
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let now = children_cpu_s();
                self.cpu_s = (now - *cpu_mark).max(0.0);
                *cpu_mark = now;
                self.exit = Some(status);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(format!("{}: wait: {e}", self.name)),
        }
    }

    fn kill(&mut self, cpu_mark: &mut f64) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                let now = children_cpu_s();
                self.cpu_s = (now - *cpu_mark).max(0.0);
                *cpu_mark = now;
                self.exit = Some(status);
            }
        }
    }

    /// Joins the output readers; returns the report or a message with the error output.
    fn finish(self) -> Result<(ChildReport, f64), String> {
        let name = self.name;
        let (json, cpu_s, stderr) = self.finish_json(false)?;
        let report = serde_json::from_str(&json)
            .map_err(|e| with_stderr(format!("{name}: bad RESULT line {json:?}: {e}"), &stderr))?;
        Ok((report, cpu_s))
    }

    /// Joins the output readers; returns the JSON of the `RESULT` line (or, without one and
    /// when `bare` allows it, of the last line that is a JSON object, as `ringwire testnet
    /// --json` prints its summary), the CPU time and the error output, or a message with the
    /// error output.
    fn finish_json(self, bare: bool) -> Result<(String, f64, String), String> {
        let lines = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.join().unwrap_or_default();
        let fail = |what: String| with_stderr(what, &stderr);
        match self.exit {
            Some(s) if s.success() => {}
            Some(s) => return Err(fail(format!("{} exited with {s}", self.name))),
            None => return Err(fail(format!("{} did not exit", self.name))),
        }
        let json = lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("RESULT "))
            .or_else(|| {
                let last_object = lines.iter().rev().find(|l| l.starts_with('{'));
                last_object.filter(|_| bare).map(String::as_str)
            })
            .ok_or_else(|| fail(format!("{} printed no RESULT line", self.name)))?
            .to_owned();
        Ok((json, self.cpu_s, stderr))
    }
}

/// `what`, with the child's error output when it has any.
fn with_stderr(what: String, stderr: &str) -> String {
    let tail = stderr.trim();
    if tail.is_empty() {
        what
    } else {
        format!("{what}; stderr: {tail}")
    }
}

/// Runs one measurement of `driver` on `spec`. `scratch` holds the samples file.
pub fn measure(
    driver: &dyn Driver,
    spec: &Spec,
    placement: &Placement,
    scratch: &Path,
) -> Result<Measurement, String> {
    if spec.workload == Workload::S9 {
        return measure_solo(driver, spec, placement);
    }
    let mut spec = spec.clone();
    let samples_path = scratch.join(format!("samples-{}.bin", std::process::id()));
    let _ = std::fs::remove_file(&samples_path);
    if spec.workload == Workload::Latency {
        spec.samples = Some(samples_path.clone());
    }
    let started = Instant::now();
    let deadline = started + spec.deadline();
    let mut cpu_mark = children_cpu_s();

    let recv_cmd = wrap(driver.command(Role::Receiver, &spec), &placement.receiver);
    let mut recv = Running::spawn("receiver", recv_cmd)?;
    let listen = recv.listen.take().ok_or("listen channel missing")?;
    let addr = match listen.recv_timeout(LISTEN_TIMEOUT) {
        Ok(a) => a,
        Err(_) => {
            recv.kill(&mut cpu_mark);
            let why = recv.finish().err().unwrap_or_default();
            return Err(format!("receiver printed no LISTEN line: {why}"));
        }
    };
    let send_cmd = wrap(
        driver.command(Role::Sender(&addr), &spec),
        &placement.sender,
    );
    let mut send = match Running::spawn("sender", send_cmd) {
        Ok(s) => s,
        Err(e) => {
            recv.kill(&mut cpu_mark);
            return Err(e);
        }
    };

    let mut timed_out = false;
    // A handshake receiver serves until it is told to stop.
    let stop_receiver = spec.workload == Workload::Handshake;
    loop {
        let s = send.poll(&mut cpu_mark)?;
        if s && stop_receiver {
            recv.kill(&mut cpu_mark);
        }
        let r = recv.poll(&mut cpu_mark)?;
        if s && r {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        std::thread::sleep(POLL);
    }
    if timed_out {
        send.kill(&mut cpu_mark);
        recv.kill(&mut cpu_mark);
    }
    let wall_s = started.elapsed().as_secs_f64();
    let recv_cpu_s = recv.cpu_s;
    let recv_result = recv.finish();
    let send_result = send.finish();
    if timed_out {
        let detail = [&recv_result, &send_result]
            .iter()
            .filter_map(|r| r.as_ref().err().cloned())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(format!(
            "timed out after {:.0} s: {detail}",
            spec.deadline().as_secs_f64()
        ));
    }
    let (receiver, receiver_cpu_s) = match recv_result {
        Err(_) if stop_receiver => (ChildReport::default(), recv_cpu_s),
        other => other?,
    };
    let (sender, sender_cpu_s) = send_result?;
    let samples_ns = if spec.samples.is_some() {
        let bytes = std::fs::read(&samples_path).map_err(|e| format!("samples file: {e}"))?;
        let _ = std::fs::remove_file(&samples_path);
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Measurement {
        receiver,
        sender,
        receiver_cpu_s,
        sender_cpu_s,
        wall_s,
        samples_ns,
        mesh: None,
    })
}

/// Runs S9's one process (`Role::Solo`) to its end and parses its summary.
fn measure_solo(
    driver: &dyn Driver,
    spec: &Spec,
    placement: &Placement,
) -> Result<Measurement, String> {
    let started = Instant::now();
    let deadline = started + spec.deadline();
    let mut cpu_mark = children_cpu_s();
    let cmd = wrap(driver.command(Role::Solo, spec), &placement.sender);
    let mut run = Running::spawn("mesh", cmd)?;
    while !run.poll(&mut cpu_mark)? {
        if Instant::now() >= deadline {
            run.kill(&mut cpu_mark);
            let why = run.finish_json(true).err().unwrap_or_default();
            return Err(format!(
                "timed out after {:.0} s: {why}",
                spec.deadline().as_secs_f64()
            ));
        }
        std::thread::sleep(POLL);
    }
    let wall_s = started.elapsed().as_secs_f64();
    let (json, cpu_s, stderr) = run.finish_json(true)?;
    let mesh = s9::parse(&json).map_err(|e| with_stderr(e, &stderr))?;
    Ok(Measurement {
        sender_cpu_s: cpu_s,
        wall_s,
        mesh: Some(mesh),
        ..Measurement::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Mode, Params, Scenario, cases};
    use crate::system::Availability;

    /// A one-process "mesh" that prints `stdout` and exits with `code`.
    struct Script {
        stdout: String,
        code: i32,
    }

    impl Driver for Script {
        fn system(&self) -> crate::system::System {
            crate::system::System::RingwireEpoll
        }

        fn availability(&self, _scenario: Scenario) -> Availability {
            Availability::Ready
        }

        fn command(&self, role: Role<'_>, _spec: &Spec) -> Command {
            assert_eq!(role, Role::Solo);
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!("printf '%s\\n' \"$0\"; exit {}", self.code))
                .arg(&self.stdout);
            cmd
        }
    }

    fn run(stdout: &str, code: i32) -> Result<Measurement, String> {
        let spec = &cases(Scenario::S9, &Params::for_mode(Mode::Quick))[0].spec;
        let d = Script {
            stdout: stdout.to_owned(),
            code,
        };
        measure(&d, spec, &Placement::default(), Path::new("/nonexistent"))
    }

    #[test]
    fn s9_runs_one_process_and_reads_a_bare_or_result_summary() {
        let bare = r#"{"nodes":8,"age":{"vote":{"p50_ms":1.5,"p99_ms":9.0,"delivered":10}}}"#;
        let m = run(bare, 0).expect("bare JSON summary");
        let mesh = m.mesh.expect("mesh report");
        assert_eq!((mesh.nodes, mesh.age.vote.p99_ms), (8, 9.0));
        let m = run(&format!("RESULT {bare}"), 0).expect("RESULT summary");
        assert_eq!(m.mesh.expect("mesh report").nodes, 8);
    }

    #[test]
    fn s9_failures_say_why() {
        let e = run("no summary here", 0).expect_err("no summary");
        assert!(e.contains("no RESULT line"), "{e}");
        let e = run(r#"{"nodes":8}"#, 3).expect_err("exit status");
        assert!(e.contains("exited with"), "{e}");
        let e = run(r#"{"other":1}"#, 0).expect_err("not a summary");
        assert!(e.contains("not an S9 summary"), "{e}");
    }
}
