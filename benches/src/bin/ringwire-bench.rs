//! `ringwire-bench`: the end-to-end benchmark harness (see the `ringwire_benches` crate docs and
//! `benches/README.md`). `--quick` (default) runs the whole suite in a few minutes, `--full` runs
//! longer windows for published numbers, `--smoke` runs the anchors for a few seconds to prove
//! the harness works. Results go to `latest.json`, `latest.md` and PNG charts in `--out`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use ringwire_benches::child::{self, ChildArgs};
use ringwire_benches::machine::{Machine, git_revision};
use ringwire_benches::plan::{Mode, Params, Scenario};
use ringwire_benches::results::{Meta, Results, RowStatus};
use ringwire_benches::suite::{SMOKE_SYSTEMS, Suite};
use ringwire_benches::system::{MconnConfig, RINGWIRE_SHARDS, System, drivers};
use ringwire_benches::{charts, report};

#[derive(Parser, Debug)]
#[command(
    name = "ringwire-bench",
    about = "ringwire against raw TCP and stock MConnection, side by side"
)]
struct Cli {
    #[command(subcommand)]
    child: Option<Sub>,
    /// The whole suite in a few minutes (the default).
    #[arg(long, conflicts_with_all = ["full", "smoke"])]
    quick: bool,
    /// Longer windows and more repetitions, for published numbers.
    #[arg(long, conflicts_with = "smoke")]
    full: bool,
    /// A few seconds: raw TCP, the MConnection anchor and ringwire io_uring, results in a
    /// temporary directory.
    #[arg(long)]
    smoke: bool,
    /// Where latest.json, latest.md and the charts go (default benches/results, or a
    /// temporary directory for --smoke).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these scenarios, e.g. S1,S3.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Only these systems, e.g. raw-tcp,mconn-lifted.
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// Repetitions per measurement (overrides the mode).
    #[arg(long)]
    reps: Option<usize>,
    /// A prebuilt interop/cmd/mconnbench; built with `go build` when absent.
    #[arg(long)]
    mconnbench: Option<PathBuf>,
    /// Flush throttle of the limits-lifted MConnection rows (Go duration).
    #[arg(long, default_value = "100us")]
    mconn_lifted_flush: String,
    /// Repository root (default: the checkout this binary was built from).
    #[arg(long)]
    repo: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// One side of a measurement (started by the harness itself).
    #[command(hide = true)]
    Child {
        #[command(subcommand)]
        kind: ChildKind,
    },
}

#[derive(Subcommand, Debug)]
enum ChildKind {
    /// Raw TCP with std sockets.
    Raw {
        #[command(subcommand)]
        role: RoleCmd,
    },
    /// A ringwire node through the engine's node API.
    Ringwire {
        #[command(flatten)]
        engine: child::ringwire::EngineArgs,
        #[command(subcommand)]
        role: RoleCmd,
    },
}

#[derive(Subcommand, Debug)]
enum RoleCmd {
    /// Listen, print LISTEN, receive.
    Recv(ChildArgs),
    /// Dial --addr, send.
    Send(ChildArgs),
}

fn run_child(kind: ChildKind) -> ExitCode {
    let (name, result) = match &kind {
        ChildKind::Raw { role } => (
            "raw",
            match role {
                RoleCmd::Recv(a) => child::raw::recv(a),
                RoleCmd::Send(a) => child::raw::send(a),
            },
        ),
        ChildKind::Ringwire { engine, role } => (
            "ringwire",
            match role {
                RoleCmd::Recv(a) => child::ringwire::recv(engine, a),
                RoleCmd::Send(a) => child::ringwire::send(engine, a),
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringwire-bench child {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build_mconnbench(repo: &Path, scratch: &Path) -> Result<PathBuf, String> {
    let out = scratch.join("mconnbench");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg("./cmd/mconnbench")
        .current_dir(repo.join("interop"))
        .status()
        .map_err(|e| format!("MConnection anchor not built: cannot run `go` ({e})"))?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!(
            "MConnection anchor not built: `go build ./cmd/mconnbench` exited with {status}"
        ))
    }
}

fn cometbft_version(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("interop/go.mod"))
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some("github.com/cometbft/cometbft"))
                    .then(|| it.next().map(str::to_owned))?
            })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::Child { kind }) = cli.child {
        return run_child(kind);
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringwire-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mode = if cli.smoke {
        Mode::Smoke
    } else if cli.full {
        Mode::Full
    } else {
        Mode::Quick
    };
    let mut params = Params::for_mode(mode);
    if !cli.scenarios.is_empty() {
        let wanted: Vec<Scenario> = cli
            .scenarios
            .iter()
            .map(|s| Scenario::parse(s).ok_or_else(|| format!("unknown scenario {s:?}")))
            .collect::<Result<_, _>>()?;
        params.scenarios.retain(|s| wanted.contains(s));
    }
    if let Some(r) = cli.reps {
        params.reps = r.max(1);
    }
    let only: Vec<System> = cli
        .systems
        .iter()
        .map(|s| System::parse(s).ok_or_else(|| format!("unknown system {s:?}")))
        .collect::<Result<_, _>>()?;
    let repo = match &cli.repo {
        Some(r) => r.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    let repo = repo
        .canonicalize()
        .map_err(|e| format!("repository {}: {e}", repo.display()))?;
    let out = match (&cli.out, mode) {
        (Some(o), _) => o.clone(),
        (None, Mode::Smoke) => {
            std::env::temp_dir().join(format!("ringwire-bench-smoke-{}", std::process::id()))
        }
        (None, _) => repo.join("benches/results"),
    };
    // A smoke run without --out cleans up after checking its files.
    let remove_out = cli.out.is_none() && mode == Mode::Smoke;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let scratch = std::env::temp_dir().join(format!("ringwire-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;

    let mconnbench = match &cli.mconnbench {
        Some(p) if p.exists() => Ok(p.clone()),
        Some(p) => Err(format!("MConnection anchor not found at {}", p.display())),
        None => {
            eprintln!("ringwire-bench: building interop/cmd/mconnbench");
            build_mconnbench(&repo, &scratch)
        }
    };
    if let Err(e) = &mconnbench {
        eprintln!("ringwire-bench: {e}");
        if mode == Mode::Smoke {
            return Err(format!("smoke run needs the MConnection anchor: {e}"));
        }
    }
    let lifted = MconnConfig::lifted(&cli.mconn_lifted_flush);
    let suite = Suite {
        params: params.clone(),
        drivers: drivers(&exe, mconnbench, &cli.mconn_lifted_flush),
        scratch: scratch.clone(),
        only,
    };
    eprintln!(
        "ringwire-bench: {mode:?} run, {} repetition(s), scenarios {:?}",
        params.reps,
        params.scenarios.iter().map(|s| s.id()).collect::<Vec<_>>()
    );
    let scenarios = suite.run(&mut |line| eprintln!("  {line}"));
    let _ = std::fs::remove_dir_all(&scratch);

    let (git_revision, git_dirty) = git_revision(&repo);
    let results = Results {
        meta: Meta {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            git_revision,
            git_dirty,
            machine: Machine::detect(),
            started_unix,
            duration_s: started.elapsed().as_secs_f64(),
            params,
            driver: "ringwire io_uring row: io_uring; ringwire epoll row: epoll; ringwire compat \
                     row: io_uring with the native protocol off (stock MConnection framing); \
                     S4 peers: epoll nodes, one shard each; S9: `ringwire testnet --s9` with \
                     the row's driver, one process of N nodes"
                .to_owned(),
            shards: format!(
                "{RINGWIRE_SHARDS} per ringwire node (sender and receiver each run one node; \
                 S9: every node of the mesh)"
            ),
            mconn_defaults: MconnConfig::stock(),
            mconn_lifted: lifted,
            cometbft_version: cometbft_version(&repo),
            notes: vec![
                "Sender and receiver are separate processes on 127.0.0.1 (S6: two network \
                 namespaces; S9: one process running the whole mesh); each measurement spawns \
                 them afresh."
                    .to_owned(),
                "MB = 10^6 bytes, GB = 10^9 bytes; sizes count payload only (no framing)."
                    .to_owned(),
            ],
        },
        scenarios,
    };
    let mut results = results;
    let charts = match charts::draw_all(&results, &out) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringwire-bench: {e}");
            results.meta.notes.push(e);
            Vec::new()
        }
    };
    let json =
        serde_json::to_string_pretty(&results).map_err(|e| format!("encode results: {e}"))?;
    std::fs::write(out.join("latest.json"), json).map_err(|e| format!("latest.json: {e}"))?;
    let md = report::markdown(&results, &charts);
    std::fs::write(out.join("latest.md"), &md).map_err(|e| format!("latest.md: {e}"))?;
    eprintln!(
        "ringwire-bench: wrote latest.json, latest.md and {} chart(s) to {} in {:.0} s",
        charts.len(),
        out.display(),
        started.elapsed().as_secs_f64()
    );

    if mode == Mode::Smoke {
        let mut missing = Vec::new();
        for s in &results.scenarios {
            for c in &s.cases {
                for r in &c.rows {
                    let must = SMOKE_SYSTEMS.contains(&r.system);
                    if must && r.status != RowStatus::Measured {
                        missing.push(format!(
                            "{} {} {}: {:?}",
                            s.id.id(),
                            c.condition,
                            r.label,
                            r.status
                        ));
                    }
                }
            }
        }
        for f in ["latest.json", "latest.md"] {
            let ok = std::fs::metadata(out.join(f)).is_ok_and(|m| m.len() > 0);
            if !ok {
                missing.push(format!("{f} was not written"));
            }
        }
        if charts.is_empty() && charts::load_font().is_ok() {
            missing.push("no chart was drawn".to_owned());
        }
        for (_, name) in &charts {
            if !out.join(name).exists() {
                missing.push(format!("{name} was not written"));
            }
        }
        if remove_out {
            let _ = std::fs::remove_dir_all(&out);
        }
        if !missing.is_empty() {
            eprintln!(
                "ringwire-bench: smoke run FAILED:\n  {}",
                missing.join("\n  ")
            );
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("ringwire-bench: smoke run passed");
    }
    Ok(ExitCode::SUCCESS)
}
