//! `ringwire bench ARGS...`: runs the end-to-end benchmark harness, the `ringwire-bench`
//! binary of the `ringwire-benches` crate (see benches/README.md), with ARGS.
//!
//! It runs `ringwire-bench` from the directory of this executable when it was built there
//! (`cargo build --release --workspace` puts both in target/release), and otherwise
//! `cargo run --release -p ringwire-benches --bin ringwire-bench -- ARGS` (from a checkout).

use std::process::Command;

use crate::Failure;

/// Runs the harness and fails with its exit status.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let next_to_me = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("ringwire-bench")))
        .filter(|p| p.is_file());
    let mut cmd = match next_to_me {
        Some(path) => Command::new(path),
        None => {
            let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            c.args([
                "run",
                "--release",
                "-p",
                "ringwire-benches",
                "--bin",
                "ringwire-bench",
                "--",
            ]);
            c
        }
    };
    let status = cmd
        .args(args)
        .status()
        .map_err(|e| Failure(format!("cannot run the benchmark harness: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure(format!("the benchmark harness failed ({status})")))
    }
}
