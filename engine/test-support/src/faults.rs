//! What the fault tests (`docs/RELIABILITY.md` rows 12–21) put a node through, on the real
//! kernel: a network namespace joined by a veth pair whose link a test takes down and up or
//! caps with `tc` htb, a cgroup v1 memory cgroup, and the wrappers (`ip netns exec`,
//! `unshare -T`, `prlimit`, the cgroup) a node process is started under.
//!
//! Each piece is a guard: what it creates has a name unique to this process and is removed
//! when the guard drops, also while a failed test unwinds. Creating them needs root; a test
//! asks [`skip_unless_root`] first, which prints why it skips.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether this process runs as root (effective user ID 0, from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// True when the test may run; otherwise prints why `test` skips (it needs root for `what`)
/// and returns false. CI runs as root, so there a fault test never skips.
pub fn skip_unless_root(test: &str, what: &str) -> bool {
    if is_root() {
        return true;
    }
    eprintln!("SKIP {test}: needs root for {what}; this process is not root");
    false
}

/// The driver under test as a configuration value (`RINGWIRE_DRIVER`, default `auto`), for
/// node processes.
pub fn driver_name() -> String {
    std::env::var("RINGWIRE_DRIVER").unwrap_or_else(|_| "auto".to_owned())
}

/// Runs `args` (a command and its arguments) and panics with its output unless it succeeds.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `args` and ignores how it ends (for clean-up).
fn run_quietly(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).output();
}

/// Guards made by this process so far (names and subnets stay unique within it).
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A network namespace joined to this one by a veth pair: `host_ip` on this side, `ns_ip` in
/// the namespace (a /30 of its own). Dropping it deletes the pair and the namespace.
pub struct NetNs {
    /// The namespace's name (`ip netns`).
    pub name: String,
    /// The veth end on this side.
    pub host_if: String,
    /// The veth end inside the namespace.
    pub ns_if: String,
    /// The address of `host_if`.
    pub host_ip: std::net::Ipv4Addr,
    /// The address of `ns_if`.
    pub ns_ip: std::net::Ipv4Addr,
}

impl NetNs {
    /// Creates the namespace and the pair, addresses both ends and sets both up (and the
    /// namespace's loopback).
    pub fn new() -> NetNs {
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{n}", pid % 100_000);
        let octet2 = 200 + (n % 50) as u8;
        let octet3 = (pid % 250) as u8;
        let ns = NetNs {
            name: format!("ringwire-fault-{tag}"),
            host_if: format!("rwf{tag}h"),
            ns_if: format!("rwf{tag}n"),
            host_ip: [10, octet2, octet3, 1].into(),
            ns_ip: [10, octet2, octet3, 2].into(),
        };
        // From here on the guard exists, so a failed step below still cleans up.
        run(&["ip", "netns", "add", &ns.name]);
        run(&[
            "ip",
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns.ns_if,
        ]);
        run(&["ip", "link", "set", &ns.ns_if, "netns", &ns.name]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", ns.host_ip),
            "dev",
            &ns.host_if,
        ]);
        run(&["ip", "link", "set", &ns.host_if, "up"]);
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", ns.ns_ip),
            "dev",
            &ns.ns_if,
        ]);
        ns.exec(&["ip", "link", "set", &ns.ns_if, "up"]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `args` inside the namespace (and panics unless it succeeds).
    pub fn exec(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&all);
    }

    /// The command prefix that runs a program inside the namespace.
    pub fn wrapper(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Takes the namespace's end of the link down: nothing passes either way, and neither side
    /// is told (this side's end only loses its carrier), as when a cable is cut or a host
    /// freezes. The namespace's routes over the link go with it.
    pub fn link_down(&self) {
        self.exec(&["ip", "link", "set", &self.ns_if, "down"]);
    }

    /// Brings the namespace's end back up (with its address and route).
    pub fn link_up(&self) {
        self.exec(&["ip", "link", "set", &self.ns_if, "up"]);
    }

    /// Caps what this side sends into the namespace at `rate` (`tc` htb, e.g. `50mbit`).
    pub fn cap(&self, rate: &str) {
        run(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.host_if,
            "root",
            "handle",
            "1:",
            "htb",
            "default",
            "10",
        ]);
        run(&[
            "tc",
            "class",
            "replace",
            "dev",
            &self.host_if,
            "parent",
            "1:",
            "classid",
            "1:10",
            "htb",
            "rate",
            rate,
            "ceil",
            rate,
        ]);
    }

    /// Removes the cap.
    pub fn uncap(&self) {
        run_quietly(&["tc", "qdisc", "del", "dev", &self.host_if, "root"]);
    }

    /// `tc -s` statistics of this side's qdiscs, one line (for figures).
    pub fn qdisc_stats(&self) -> String {
        let out = Command::new("tc")
            .args(["-s", "qdisc", "show", "dev", &self.host_if])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

impl Default for NetNs {
    fn default() -> Self {
        NetNs::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; the namespace goes once its last process has.
        run_quietly(&["ip", "link", "del", &self.host_if]);
        run_quietly(&["ip", "netns", "del", &self.name]);
    }
}

/// The cgroup v1 memory controller's mount point.
pub const MEMORY_CGROUPS: &str = "/sys/fs/cgroup/memory";

/// A cgroup v1 memory cgroup with a limit, for one node process. Dropping it removes the
/// cgroup (after its processes are gone; drop the process first).
pub struct MemCgroup {
    /// The cgroup's directory.
    pub path: PathBuf,
}

impl MemCgroup {
    /// Creates a cgroup whose tasks may use at most `limit` bytes (`memory.limit_in_bytes`,
    /// no swap on these machines).
    pub fn new(limit: u64) -> MemCgroup {
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(MEMORY_CGROUPS)
            .join(format!("ringwire-fault-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("create the cgroup {}: {e}", path.display()));
        let cg = MemCgroup { path };
        cg.write("memory.limit_in_bytes", &limit.to_string());
        cg
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.path.join(file), value)
            .unwrap_or_else(|e| panic!("write {value} to {}/{file}: {e}", self.path.display()));
    }

    /// A number from one of the cgroup's files (`memory.failcnt`, `memory.max_usage_in_bytes`…).
    pub fn read(&self, file: &str) -> u64 {
        std::fs::read_to_string(self.path.join(file))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A field of `memory.oom_control` (`under_oom`, `oom_kill`).
    pub fn oom_control(&self, field: &str) -> u64 {
        std::fs::read_to_string(self.path.join("memory.oom_control"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The command prefix that runs a program inside this cgroup from its first instruction:
    /// a shell that moves itself into the cgroup and then becomes the program.
    pub fn wrapper(&self) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!(
                "echo $$ > {}/cgroup.procs && exec \"$@\"",
                self.path.display()
            ),
            "sh".into(),
        ]
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // A cgroup can be removed only once its tasks have left; a killed process leaves
        // within moments.
        let end = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.path).is_err() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The monotonic clock's reading (seconds since boot, without suspend) as `/proc/uptime`
/// gives boot time; used to size time-namespace offsets.
pub fn uptime_secs() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split('.').next()?.parse().ok())
        .unwrap_or(0)
}

/// The command prefix that starts a program in a new time namespace whose monotonic and boot
/// clocks read `offset` seconds more (or fewer, when negative) than this one's
/// (`unshare -T`; the program enters the namespace at its `exec`).
pub fn time_namespace(offset: i64) -> Vec<String> {
    vec![
        "unshare".into(),
        "--time".into(),
        format!("--monotonic={offset}"),
        format!("--boottime={offset}"),
    ]
}
