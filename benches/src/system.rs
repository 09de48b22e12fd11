//! The systems of the harness (the table in `benches/README.md`) and how each one is started.
//!
//! A [`Driver`] turns a [`Spec`] into the two child commands of a measurement (see
//! [`crate::child`] for the protocol they follow). The harness never looks inside a child: adding
//! a system means adding a [`System`] variant and a driver whose commands follow the protocol.
//!
//! **The engine's rows.** [`System::RingwireIoUring`], [`System::RingwireEpoll`] and
//! [`System::RingwireCompat`] run `ringwire-bench child ringwire --driver io-uring|epoll
//! [--compat] recv|send` ([`crate::child::ringwire`], a real node on each side) through
//! [`RingwireDriver`]. [`System::RingwireGo`] (S5) runs the bindings-go program the same way:
//! [`GoDriver`] builds `bindings-go/cmd/ringwire-bench-go` and runs it as the child, and S5's
//! table also has the io_uring and epoll rows, so Go and the Rust engine are compared in the
//! same run.
//!
//! **The libp2p anchor.** [`System::Lp2p`] (S1, S2, S3, S7) runs `interop/cmd/lp2pbench`, CometBFT's
//! own go-libp2p backend (package `lp2p`, QUIC over UDP), through [`Lp2pDriver`], which builds the
//! program on first use. Its receiver prints `LISTEN <host:port>/<peer-id>`: a libp2p dial needs
//! the peer ID as well as the address, and the runner hands the whole string to the sender's
//! `--addr`.
//!
//! **S9** is one process per measurement ([`Role::Solo`]): the engine's io_uring and epoll rows
//! run `ringwire testnet --s9 --json` (the `ringwire` command, [`RingwireCli`], built on first
//! use), the MConnection rows `mconnbench run --scenario=s9` with their rates and flush
//! throttle.
//!
//! No other part of the harness changes: tables, ratios and charts pick the rows up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::child::Workload;
use crate::plan::{Scenario, Spec};

/// One row of the systems table in `benches/README.md` (with the anchor variants the scenarios
/// need).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// Plaintext Rust std sockets, batched writes (S3: a connection per channel).
    RawTcp,
    /// Raw TCP writing one message per system call (S2).
    RawTcpPerMessage,
    /// Raw TCP with requests and load interleaved on one connection (S3).
    RawTcpInterleaved,
    /// Stock CometBFT MConnection over SecretConnection with stock node defaults.
    MconnDefaults,
    /// Stock CometBFT MConnection with the rate limits and flush throttle lifted.
    MconnLifted,
    /// CometBFT's go-libp2p backend (`lp2p`, QUIC) with its benchmark's lifted settings.
    Lp2p,
    /// ringwire native protocol, encrypted, io_uring driver.
    RingwireIoUring,
    /// ringwire native protocol, encrypted, epoll driver.
    RingwireEpoll,
    /// ringwire to ringwire forced to MConnection framing.
    RingwireCompat,
    /// ringwire through bindings-go.
    RingwireGo,
}

impl System {
    /// Every system, in table order.
    pub const ALL: [Self; 10] = [
        Self::RawTcp,
        Self::RawTcpPerMessage,
        Self::RawTcpInterleaved,
        Self::MconnDefaults,
        Self::MconnLifted,
        Self::Lp2p,
        Self::RingwireIoUring,
        Self::RingwireEpoll,
        Self::RingwireCompat,
        Self::RingwireGo,
    ];

    /// The name used on the command line and in JSON.
    pub fn key(self) -> &'static str {
        match self {
            Self::RawTcp => "raw-tcp",
            Self::RawTcpPerMessage => "raw-tcp-per-message",
            Self::RawTcpInterleaved => "raw-tcp-interleaved",
            Self::MconnDefaults => "mconn-defaults",
            Self::MconnLifted => "mconn-lifted",
            Self::Lp2p => "lp2p",
            Self::RingwireIoUring => "ringwire-io-uring",
            Self::RingwireEpoll => "ringwire-epoll",
            Self::RingwireCompat => "ringwire-compat",
            Self::RingwireGo => "ringwire-go",
        }
    }

    /// Parses [`System::key`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.key() == s.trim())
    }

    /// The label used in tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Self::RawTcp => "raw TCP",
            Self::RawTcpPerMessage => "raw TCP, 1 msg/syscall",
            Self::RawTcpInterleaved => "raw TCP, 1 conn interleaved",
            Self::MconnDefaults => "MConnection (stock defaults)",
            Self::MconnLifted => "MConnection (limits lifted)",
            Self::Lp2p => "CometBFT lp2p (go-libp2p, QUIC)",
            Self::RingwireIoUring => "ringwire io_uring",
            Self::RingwireEpoll => "ringwire epoll",
            Self::RingwireCompat => "ringwire compat",
            Self::RingwireGo => "ringwire from Go",
        }
    }

    /// Whether this system has a row in `scenario`'s table.
    pub fn applies_to(self, scenario: Scenario) -> bool {
        use Scenario::*;
        match self {
            Self::RawTcp => !matches!(scenario, S5 | S9),
            Self::RawTcpPerMessage => scenario == S2,
            Self::RawTcpInterleaved => scenario == S3,
            Self::MconnDefaults | Self::MconnLifted => {
                matches!(scenario, S1 | S2 | S3 | S4 | S7 | S9)
            }
            Self::Lp2p => matches!(scenario, S1 | S2 | S3 | S7),
            // In S5 as the Rust engine's figure beside the Go row; in S9 through `ringwire
            // testnet`.
            Self::RingwireIoUring | Self::RingwireEpoll => true,
            Self::RingwireCompat => matches!(scenario, S1 | S2 | S3 | S4 | S7),
            Self::RingwireGo => scenario == S5,
        }
    }
}

/// Whether a driver can run a scenario now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// It runs.
    Ready,
    /// It cannot run yet or here; the row says why.
    Pending(String),
}

/// The side of a measurement a command is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role<'a> {
    /// Listens and prints `LISTEN <addr>`.
    Receiver,
    /// Dials the receiver's address.
    Sender(&'a str),
    /// The only process of a one-process measurement (S9's mesh): no `LISTEN` line, one
    /// summary.
    Solo,
}

/// Starts the child processes of one system.
pub trait Driver {
    /// The system this driver runs.
    fn system(&self) -> System;
    /// Whether `scenario` can run now.
    fn availability(&self, scenario: Scenario) -> Availability;
    /// The command for one side of a measurement (not yet spawned).
    fn command(&self, role: Role<'_>, spec: &Spec) -> Command;
}

fn role_args(cmd: &mut Command, role: Role<'_>) {
    match role {
        Role::Receiver => {
            cmd.arg("recv");
        }
        Role::Sender(addr) => {
            cmd.args(["send", "--addr", addr]);
        }
        Role::Solo => {
            cmd.arg("run");
        }
    }
}

/// Raw TCP children: this binary, `child raw recv|send`.
#[derive(Debug)]
pub struct RawTcpDriver {
    /// Which raw variant.
    pub system: System,
    /// This executable.
    pub exe: PathBuf,
}

impl Driver for RawTcpDriver {
    fn system(&self) -> System {
        self.system
    }

    fn availability(&self, _scenario: Scenario) -> Availability {
        Availability::Ready
    }

    fn command(&self, role: Role<'_>, spec: &Spec) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(["child", "raw"]);
        role_args(&mut cmd, role);
        cmd.args(spec.child_args());
        match self.system {
            System::RawTcpPerMessage => {
                cmd.arg("--per-message-write");
            }
            System::RawTcpInterleaved => {
                cmd.arg("--interleaved");
            }
            _ => {}
        }
        cmd
    }
}

/// ringwire children: this binary, `child ringwire --driver … [--compat] recv|send`; for S9
/// `ringwire testnet --s9 --json --nodes N --duration D --driver …`.
#[derive(Debug)]
pub struct RingwireDriver {
    /// io_uring, epoll or compat.
    pub system: System,
    /// This executable.
    pub exe: PathBuf,
    /// Shard threads per node.
    pub shards: usize,
    /// The `ringwire` command, for S9.
    pub cli: Arc<RingwireCli>,
}

impl RingwireDriver {
    /// The driver of `system` (io_uring, epoll or compat) running `exe`'s children, and S9
    /// through `cli`.
    pub fn new(system: System, exe: PathBuf, shards: usize, cli: Arc<RingwireCli>) -> Self {
        Self {
            system,
            exe,
            shards,
            cli,
        }
    }

    /// The `--driver` value of this row (compat runs on io_uring).
    pub fn engine_driver(&self) -> &'static str {
        match self.system {
            System::RingwireEpoll => "epoll",
            _ => "io-uring",
        }
    }

    /// S9's one process: `ringwire testnet --s9 --json` with this row's driver and shards (the
    /// testnet's own delivery deadlines: 300 ms for votes, 1 s for block parts).
    fn testnet(&self, spec: &Spec) -> Command {
        let bin = match self.cli.binary() {
            Ok(b) => b.as_path(),
            Err(_) => Path::new("ringwire"),
        };
        let mut cmd = Command::new(bin);
        cmd.args(["testnet", "--s9", "--json"]);
        cmd.arg(format!("--nodes={}", spec.nodes));
        cmd.arg(format!("--duration={}ms", spec.duration.as_millis()));
        cmd.arg(format!("--driver={}", self.engine_driver()));
        cmd.arg(format!("--shards={}", self.shards));
        if self.system == System::RingwireCompat {
            cmd.arg("--compat");
        }
        cmd
    }
}

impl Driver for RingwireDriver {
    fn system(&self) -> System {
        self.system
    }

    fn availability(&self, scenario: Scenario) -> Availability {
        if scenario != Scenario::S9 {
            return Availability::Ready;
        }
        match self.cli.binary() {
            Ok(_) => Availability::Ready,
            Err(why) => Availability::Pending(why.clone()),
        }
    }

    fn command(&self, role: Role<'_>, spec: &Spec) -> Command {
        if spec.workload == Workload::S9 {
            return self.testnet(spec);
        }
        let mut cmd = Command::new(&self.exe);
        cmd.args(["child", "ringwire", "--driver", self.engine_driver()]);
        cmd.arg(format!("--shards={}", self.shards));
        if self.system == System::RingwireCompat {
            cmd.arg("--compat");
        }
        role_args(&mut cmd, role);
        cmd.args(spec.child_args());
        cmd
    }
}

/// The environment variable naming a prebuilt `ringwire` command; without it [`RingwireCli`]
/// builds one.
pub const RINGWIRE_CLI_ENV: &str = "RINGWIRE_CLI";

/// A program a driver builds on first use, unless the environment variable `env` names one
/// already built.
#[derive(Debug)]
struct BuiltOnce {
    env: &'static str,
    binary: OnceLock<Result<PathBuf, String>>,
}

impl BuiltOnce {
    /// Not built yet.
    fn new(env: &'static str) -> Self {
        Self {
            env,
            binary: OnceLock::new(),
        }
    }

    /// Already built at `binary`.
    fn prebuilt(env: &'static str, binary: PathBuf) -> Self {
        let b = Self::new(env);
        let _ = b.binary.set(Ok(binary));
        b
    }

    /// The program: the one `env` names, or what `build` makes, on the first call.
    fn get(&self, build: impl FnOnce() -> Result<PathBuf, String>) -> &Result<PathBuf, String> {
        self.binary
            .get_or_init(|| match std::env::var_os(self.env) {
                Some(p) if Path::new(&p).exists() => Ok(PathBuf::from(p)),
                Some(p) => Err(format!(
                    "{}={} does not exist",
                    self.env,
                    p.to_string_lossy()
                )),
                None => build(),
            })
    }
}

/// The `ringwire` command (crate `ringwire-cli`), whose `testnet --s9` runs the engine's S9
/// rows.
///
/// The program is the one `RINGWIRE_CLI` names, or is built on first use with `cargo build
/// --release --locked -p ringwire-cli` into the harness's own target directory, so it is
/// `<target>/release/ringwire` from this tree (nothing to do when it is up to date, as after
/// `cargo build --release -p ringwire-benches -p ringwire-cli`). A failed build makes the S9
/// rows of the engine pending with the reason; a run without S9 never builds it.
#[derive(Debug)]
pub struct RingwireCli {
    /// The repository root.
    pub repo: PathBuf,
    /// Cargo's target directory.
    pub target: PathBuf,
    binary: BuiltOnce,
}

impl RingwireCli {
    /// A command built when first asked for (or taken from `RINGWIRE_CLI`).
    pub fn new(repo: PathBuf, target: PathBuf) -> Self {
        Self {
            repo,
            target,
            binary: BuiltOnce::new(RINGWIRE_CLI_ENV),
        }
    }

    /// An already built command.
    pub fn prebuilt(binary: PathBuf) -> Self {
        Self {
            repo: PathBuf::new(),
            target: PathBuf::new(),
            binary: BuiltOnce::prebuilt(RINGWIRE_CLI_ENV, binary),
        }
    }

    /// The program, built on the first call.
    pub fn binary(&self) -> &Result<PathBuf, String> {
        self.binary.get(|| self.build())
    }

    fn build(&self) -> Result<PathBuf, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("ringwire-bench: building the ringwire command (release) for S9");
        let status = Command::new(cargo)
            .args(["build", "--release", "--locked", "-p", "ringwire-cli"])
            .env("CARGO_TARGET_DIR", &self.target)
            .current_dir(&self.repo)
            .status()
            .map_err(|e| format!("ringwire command not built: cannot run cargo ({e})"))?;
        if !status.success() {
            return Err(format!(
                "ringwire command not built: `cargo build -p ringwire-cli` exited with {status}"
            ));
        }
        Ok(self.target.join("release/ringwire"))
    }
}

/// MConnection settings of one anchor row.
#[derive(Clone, Debug, Serialize)]
pub struct MconnConfig {
    /// Send rate limit, bytes/s.
    pub send_rate: u64,
    /// Receive rate limit, bytes/s.
    pub recv_rate: u64,
    /// Flush throttle, as Go writes durations.
    pub flush_throttle: String,
    /// Maximum packet payload, bytes.
    pub max_payload: u32,
}

impl MconnConfig {
    /// The stock node defaults (CometBFT `config.DefaultP2PConfig`).
    pub fn stock() -> Self {
        Self {
            send_rate: 5_120_000,
            recv_rate: 5_120_000,
            flush_throttle: "10ms".to_owned(),
            max_payload: 1024,
        }
    }

    /// Limits lifted: rates of 1 TiB/s and the given flush throttle; the packet payload stays
    /// at the protocol's default.
    pub fn lifted(flush_throttle: &str) -> Self {
        Self {
            send_rate: 1 << 40,
            recv_rate: 1 << 40,
            flush_throttle: flush_throttle.to_owned(),
            max_payload: 1024,
        }
    }
}

/// The stock CometBFT anchor: `interop/cmd/mconnbench`.
#[derive(Debug)]
pub struct MconnDriver {
    /// Defaults or lifted.
    pub system: System,
    /// The built `mconnbench` binary, or why there is none.
    pub binary: Result<PathBuf, String>,
    /// Rates and throttle passed to both sides.
    pub config: MconnConfig,
}

impl Driver for MconnDriver {
    fn system(&self) -> System {
        self.system
    }

    fn availability(&self, _scenario: Scenario) -> Availability {
        match &self.binary {
            Ok(_) => Availability::Ready,
            Err(why) => Availability::Pending(why.clone()),
        }
    }

    fn command(&self, role: Role<'_>, spec: &Spec) -> Command {
        let bin = self.binary.as_deref().unwrap_or(Path::new("mconnbench"));
        let mut cmd = Command::new(bin);
        role_args(&mut cmd, role);
        cmd.args(spec.child_args());
        cmd.arg(format!("--send-rate={}", self.config.send_rate));
        cmd.arg(format!("--recv-rate={}", self.config.recv_rate));
        cmd.arg(format!("--flush-throttle={}", self.config.flush_throttle));
        cmd.arg(format!("--max-payload={}", self.config.max_payload));
        cmd
    }
}

/// The environment variable naming a prebuilt `lp2pbench`; without it [`Lp2pDriver`] builds one.
pub const LP2P_CHILD_ENV: &str = "RINGWIRE_LP2PBENCH";

/// CometBFT's go-libp2p backend: `lp2pbench recv|send <flags>` (`interop/cmd/lp2pbench`, a Go
/// program in the interop module that follows the child protocol with package `lp2p` of the
/// CometBFT version pinned in `interop/go.mod`).
///
/// The program is the one `RINGWIRE_LP2PBENCH` names, or is built on first use with `go build`
/// into `<target>/lp2pbench/`. A failed build makes the row pending with the reason. The
/// children take only the protocol flags: the lifted configuration (resource manager off,
/// 64–128 reactor workers) and the send concurrency are the program's defaults.
#[derive(Debug)]
pub struct Lp2pDriver {
    /// The repository root.
    pub repo: PathBuf,
    /// Cargo's target directory: the program goes to `<target>/lp2pbench/`.
    pub target: PathBuf,
    binary: BuiltOnce,
}

impl Lp2pDriver {
    /// A driver that builds the program when first asked (or uses `RINGWIRE_LP2PBENCH`).
    pub fn new(repo: PathBuf, target: PathBuf) -> Self {
        Self {
            repo,
            target,
            binary: BuiltOnce::new(LP2P_CHILD_ENV),
        }
    }

    /// A driver for an already built program.
    pub fn prebuilt(binary: PathBuf) -> Self {
        Self {
            repo: PathBuf::new(),
            target: PathBuf::new(),
            binary: BuiltOnce::prebuilt(LP2P_CHILD_ENV, binary),
        }
    }

    /// The program, built on the first call.
    fn binary(&self) -> &Result<PathBuf, String> {
        self.binary.get(|| self.build())
    }

    fn build(&self) -> Result<PathBuf, String> {
        eprintln!("ringwire-bench: building interop/cmd/lp2pbench");
        let out = self.target.join("lp2pbench/lp2pbench");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg("./cmd/lp2pbench")
            .current_dir(self.repo.join("interop"))
            .status()
            .map_err(|e| format!("lp2p anchor not built: cannot run `go` ({e})"))?;
        if status.success() {
            Ok(out)
        } else {
            Err(format!(
                "lp2p anchor not built: `go build ./cmd/lp2pbench` exited with {status}"
            ))
        }
    }
}

impl Driver for Lp2pDriver {
    fn system(&self) -> System {
        System::Lp2p
    }

    fn availability(&self, _scenario: Scenario) -> Availability {
        match self.binary() {
            Ok(_) => Availability::Ready,
            Err(why) => Availability::Pending(why.clone()),
        }
    }

    fn command(&self, role: Role<'_>, spec: &Spec) -> Command {
        let bin = match self.binary() {
            Ok(b) => b.as_path(),
            Err(_) => Path::new("lp2pbench"),
        };
        let mut cmd = Command::new(bin);
        role_args(&mut cmd, role);
        cmd.args(spec.child_args());
        cmd
    }
}

/// The environment variable naming a prebuilt `ringwire-bench-go`; without it [`GoDriver`]
/// builds one.
pub const GO_CHILD_ENV: &str = "RINGWIRE_BENCH_GO";

/// ringwire through bindings-go: `ringwire-bench-go recv|send <flags>`
/// (`bindings-go/cmd/ringwire-bench-go`, a Go program that follows the child protocol).
///
/// The program is the one `RINGWIRE_BENCH_GO` names, or is built on first use: the release C
/// library (`cargo build --release -p ringwire-ffi` into the harness's own target directory),
/// then `go build` against it. A failed build makes the row pending with the reason.
#[derive(Debug)]
pub struct GoDriver {
    /// The repository root.
    pub repo: PathBuf,
    /// Cargo's target directory: the library is built in `<target>/release` and the program
    /// goes to `<target>/ringwire-bench-go/`.
    pub target: PathBuf,
    binary: BuiltOnce,
}

impl GoDriver {
    /// A driver that builds the program when first asked (or uses `RINGWIRE_BENCH_GO`).
    pub fn new(repo: PathBuf, target: PathBuf) -> Self {
        Self {
            repo,
            target,
            binary: BuiltOnce::new(GO_CHILD_ENV),
        }
    }

    /// A driver for an already built program.
    pub fn prebuilt(binary: PathBuf) -> Self {
        Self {
            repo: PathBuf::new(),
            target: PathBuf::new(),
            binary: BuiltOnce::prebuilt(GO_CHILD_ENV, binary),
        }
    }

    /// The program, built on the first call.
    fn binary(&self) -> &Result<PathBuf, String> {
        self.binary.get(|| self.build())
    }

    fn build(&self) -> Result<PathBuf, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("ringwire-bench: building the release C library and bindings-go's child");
        run_build(
            Command::new(cargo)
                .args(["build", "--release", "--locked", "-p", "ringwire-ffi"])
                .env("CARGO_TARGET_DIR", &self.target)
                .current_dir(&self.repo),
            "cargo build -p ringwire-ffi",
        )?;
        let out = self.target.join("ringwire-bench-go/ringwire-bench-go");
        // `go build -o` keeps an existing program whose Go inputs did not change, even when the
        // C library it links did: remove it, so the program always links the library just
        // built.
        match std::fs::remove_file(&out) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "Go child not built: removing {}: {e}",
                    out.display()
                ));
            }
        }
        // bindings-go finds the library through pkg-config (`ringwire-static`): a file for
        // the release library just built, as `make go-pc` writes one.
        let pc_dir = self.target.join("pkgconfig/release");
        let libs = format!(
            "-L{} -l:libringwire_ffi.a -lpthread -ldl -lm",
            self.target.join("release").display()
        );
        let pc = format!(
            "prefix={repo}\nincludedir={repo}/include\n\nName: ringwire-static\n\
             Description: ringwire's C API, the release build of this tree\nVersion: 0\n\
             Cflags: -I${{includedir}}\nLibs: {libs}\n",
            repo = self.repo.display(),
        );
        std::fs::create_dir_all(&pc_dir)
            .and_then(|()| std::fs::write(pc_dir.join("ringwire-static.pc"), pc))
            .map_err(|e| format!("Go child not built: writing its pkg-config file: {e}"))?;
        run_build(
            Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg("./cmd/ringwire-bench-go")
                .env("PKG_CONFIG_PATH", &pc_dir)
                // Go's build cache keys bindings-go on the CGO_* variables, not on what
                // pkg-config answers: without this, a bindings-go built against the debug
                // library (by `make go-bindings`) is reused and the debug library linked.
                .env("CGO_LDFLAGS", &libs)
                .current_dir(self.repo.join("bindings-go")),
            "go build ./cmd/ringwire-bench-go",
        )?;
        Ok(out)
    }
}

/// Runs one build step; the error names it.
fn run_build(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("Go child not built: cannot run `{what}` ({e})"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("Go child not built: `{what}` exited with {status}"))
    }
}

impl Driver for GoDriver {
    fn system(&self) -> System {
        System::RingwireGo
    }

    fn availability(&self, _scenario: Scenario) -> Availability {
        match self.binary() {
            Ok(_) => Availability::Ready,
            Err(why) => Availability::Pending(why.clone()),
        }
    }

    fn command(&self, role: Role<'_>, spec: &Spec) -> Command {
        let bin = match self.binary() {
            Ok(b) => b.as_path(),
            Err(_) => Path::new("ringwire-bench-go"),
        };
        let mut cmd = Command::new(bin);
        role_args(&mut cmd, role);
        cmd.args(spec.child_args());
        cmd
    }
}

/// Cargo's target directory, from this executable's path (`<target>/<profile>/ringwire-bench`,
/// or `<target>/<profile>/deps/…` for a test).
fn target_dir(exe: &Path) -> PathBuf {
    let mut dir = exe.parent().unwrap_or(Path::new("."));
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().unwrap_or(dir);
    }
    dir.parent().unwrap_or(dir).to_owned()
}

/// A system whose implementation has not landed: every row says so.
#[derive(Debug)]
pub struct PendingDriver {
    /// The system.
    pub system: System,
    /// Why it cannot run.
    pub reason: String,
}

impl Driver for PendingDriver {
    fn system(&self) -> System {
        self.system
    }

    fn availability(&self, _scenario: Scenario) -> Availability {
        Availability::Pending(self.reason.clone())
    }

    fn command(&self, _role: Role<'_>, _spec: &Spec) -> Command {
        Command::new("false")
    }
}

/// Shard threads per ringwire node in the benchmark (one: sender and receiver share the
/// machine's cores).
pub const RINGWIRE_SHARDS: usize = 1;

/// One driver per system, in table order.
pub fn drivers(
    exe: &Path,
    mconnbench: Result<PathBuf, String>,
    lifted_flush: &str,
) -> Vec<Box<dyn Driver>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cli = Arc::new(RingwireCli::new(repo, target_dir(exe)));
    System::ALL
        .iter()
        .map(|&system| -> Box<dyn Driver> {
            match system {
                System::RawTcp | System::RawTcpPerMessage | System::RawTcpInterleaved => {
                    Box::new(RawTcpDriver {
                        system,
                        exe: exe.to_owned(),
                    })
                }
                System::MconnDefaults => Box::new(MconnDriver {
                    system,
                    binary: mconnbench.clone(),
                    config: MconnConfig::stock(),
                }),
                System::MconnLifted => Box::new(MconnDriver {
                    system,
                    binary: mconnbench.clone(),
                    config: MconnConfig::lifted(lifted_flush),
                }),
                System::RingwireIoUring | System::RingwireEpoll | System::RingwireCompat => {
                    Box::new(RingwireDriver::new(
                        system,
                        exe.to_owned(),
                        RINGWIRE_SHARDS,
                        cli.clone(),
                    ))
                }
                System::Lp2p => Box::new(Lp2pDriver::new(
                    Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
                    target_dir(exe),
                )),
                System::RingwireGo => Box::new(GoDriver::new(
                    Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
                    target_dir(exe),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Mode, Params, cases};

    #[test]
    fn go_driver_runs_the_go_child_with_the_protocol_flags() {
        let d = GoDriver::prebuilt(PathBuf::from("/x/ringwire-bench-go"));
        assert_eq!(d.availability(Scenario::S5), Availability::Ready);
        let case = &cases(Scenario::S5, &Params::for_mode(Mode::Quick))[1];
        let cmd = d.command(Role::Sender("127.0.0.1:9"), &case.spec);
        assert_eq!(cmd.get_program(), "/x/ringwire-bench-go");
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(&args[..3], ["send", "--addr", "127.0.0.1:9"]);
        assert!(args.contains(&"--scenario=bulk".to_owned()));
        assert!(args.contains(&"--size=256".to_owned()));
    }

    #[test]
    fn lp2p_driver_passes_the_receiver_string_through() {
        let d = Lp2pDriver::prebuilt(PathBuf::from("/x/lp2pbench"));
        assert_eq!(d.availability(Scenario::S1), Availability::Ready);
        let case = &cases(Scenario::S3, &Params::for_mode(Mode::Quick))[1];
        let cmd = d.command(Role::Sender("127.0.0.1:9/12D3KooWExample"), &case.spec);
        assert_eq!(cmd.get_program(), "/x/lp2pbench");
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            &args[..3],
            ["send", "--addr", "127.0.0.1:9/12D3KooWExample"]
        );
        assert!(args.contains(&"--scenario=latency".to_owned()));
        assert!(args.contains(&"--load=bulk".to_owned()));
    }

    #[test]
    fn lp2p_rows_are_s1_s2_s3_and_s7() {
        let with: Vec<_> = Scenario::ALL
            .into_iter()
            .filter(|&s| System::Lp2p.applies_to(s))
            .collect();
        assert_eq!(
            with,
            [Scenario::S1, Scenario::S2, Scenario::S3, Scenario::S7]
        );
        assert_eq!(System::parse("lp2p"), Some(System::Lp2p));
    }

    #[test]
    fn target_dir_from_the_executable() {
        assert_eq!(
            target_dir(Path::new("/t/release/ringwire-bench")),
            Path::new("/t")
        );
        assert_eq!(
            target_dir(Path::new("/t/debug/deps/x-123")),
            Path::new("/t")
        );
    }

    fn args_of(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn s9_rows_are_the_engine_and_the_mconnection_anchors() {
        let with: Vec<_> = System::ALL
            .into_iter()
            .filter(|&s| s.applies_to(Scenario::S9))
            .collect();
        assert_eq!(
            with,
            [
                System::MconnDefaults,
                System::MconnLifted,
                System::RingwireIoUring,
                System::RingwireEpoll
            ]
        );
    }

    #[test]
    fn s9_ringwire_rows_run_the_testnet() {
        let case = &cases(Scenario::S9, &Params::for_mode(Mode::Quick))[1];
        let cli = Arc::new(RingwireCli::prebuilt(PathBuf::from("/x/ringwire")));
        let d = RingwireDriver::new(System::RingwireEpoll, PathBuf::from("/x/bench"), 1, cli);
        assert_eq!(d.availability(Scenario::S9), Availability::Ready);
        let cmd = d.command(Role::Solo, &case.spec);
        assert_eq!(cmd.get_program(), "/x/ringwire");
        assert_eq!(
            args_of(&cmd),
            [
                "testnet",
                "--s9",
                "--json",
                "--nodes=32",
                "--duration=5000ms",
                "--driver=epoll",
                "--shards=1"
            ]
        );
        // The other scenarios still run this binary's child.
        let s1 = &cases(Scenario::S1, &Params::for_mode(Mode::Quick))[0];
        assert_eq!(
            d.command(Role::Receiver, &s1.spec).get_program(),
            "/x/bench"
        );
    }

    #[test]
    fn s9_mconnection_rows_run_one_mconnbench_with_their_limits() {
        let case = &cases(Scenario::S9, &Params::for_mode(Mode::Quick))[0];
        let d = MconnDriver {
            system: System::MconnLifted,
            binary: Ok(PathBuf::from("/x/mconnbench")),
            config: MconnConfig::lifted("100us"),
        };
        let args = args_of(&d.command(Role::Solo, &case.spec));
        assert_eq!(args[0], "run");
        for want in [
            "--scenario=s9",
            "--nodes=8",
            "--duration-ms=5000",
            "--flush-throttle=100us",
            "--send-rate=1099511627776",
        ] {
            assert!(args.contains(&want.to_owned()), "{want} not in {args:?}");
        }
    }

    #[test]
    fn s5_has_the_go_row_beside_the_rust_engine() {
        assert!(System::RingwireGo.applies_to(Scenario::S5));
        assert!(System::RingwireIoUring.applies_to(Scenario::S5));
        assert!(!System::RingwireGo.applies_to(Scenario::S1));
    }
}
