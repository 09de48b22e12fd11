//! What the run was made on: CPU, cores, kernel, toolchains, git revision.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// The machine description recorded with every run.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical CPUs online.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Distribution (`PRETTY_NAME` of `/etc/os-release`).
    pub os: String,
    /// Memory, from `/proc/meminfo`.
    pub memory: String,
    /// `go version`.
    pub go: String,
    /// `rustc --version` of the toolchain on the path.
    pub rustc: String,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once([':', '='])?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
    })
}

impl Machine {
    /// Reads the description of this machine.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let unknown = || "unknown".to_owned();
        Self {
            cpu_model: field(&cpuinfo, "model name").unwrap_or_else(unknown),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| unknown()),
            os: field(&os_release, "PRETTY_NAME").unwrap_or_else(unknown),
            memory: field(&meminfo, "MemTotal").unwrap_or_else(unknown),
            go: first_line("go", &["version"]),
            rustc: first_line("rustc", &["--version"]),
        }
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        format!(
            "{} ({} logical CPUs, {} memory), Linux {}, {}",
            self.cpu_model, self.cores, self.memory, self.kernel, self.os
        )
    }
}

/// `(revision, dirty)` of the git checkout at `repo`.
pub fn git_revision(repo: &Path) -> (String, bool) {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let rev = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    (rev, dirty)
}
