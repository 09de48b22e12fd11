//! ringwire's benchmarks: criterion micro-benches in `benches/benches/` and the end-to-end
//! harness `ringwire-bench`, which measures ringwire against raw TCP and stock CometBFT
//! MConnection side by side (`benches/README.md` has the method, systems, scenarios and goals).
//!
//! Layout of the harness:
//! - [`plan`]: scenarios S1–S7 and S9, modes (smoke, quick, full) and the spec of each
//!   measurement;
//! - [`system`]: the systems and the [`system::Driver`] that starts each one's processes
//!   (the extension point for the engine's rows);
//! - [`child`]: the protocol every child process follows, and the raw TCP children;
//! - [`runner`]: one measurement, two processes (S9: one), CPU time from `getrusage`;
//! - [`s9`]: S9's summary (`ringwire testnet --s9 --json`, `mconnbench run`), figures and goal;
//! - [`suite`]: repetitions, alternation, figures;
//! - [`results`], [`report`], [`charts`]: `latest.json`, `latest.md` and the PNG charts;
//! - [`machine`], [`netns`]: what the run was made on, and S6's shaped link;
//! - [`soak`]: `make soak`'s samples, growth check and chart (the `soak-chart` binary).

pub mod charts;
pub mod child;
pub mod machine;
pub mod netns;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod s9;
pub mod soak;
pub mod stats;
pub mod suite;
pub mod system;
