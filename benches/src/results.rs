//! The results of a run, as written to `latest.json` and read by the report and the charts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::machine::Machine;
use crate::plan::{Params, Scenario, Spec};
use crate::stats::Stat;
use crate::system::{MconnConfig, System};

/// Metric names (the keys of [`RowResult::metrics`]).
pub mod metric {
    /// Payload megabytes (10⁶ bytes) per second delivered to the receiver.
    pub const MB_S: &str = "MB/s";
    /// Messages per second delivered to the receiver.
    pub const MSGS_S: &str = "msgs/s";
    /// CPU seconds of both processes per payload gigabyte (10⁹ bytes) delivered.
    pub const CPU_S_PER_GB: &str = "CPU-s/GB";
    /// Round-trip time, 50th percentile, microseconds.
    pub const P50_US: &str = "p50 µs";
    /// Round-trip time, 99th percentile, microseconds.
    pub const P99_US: &str = "p99 µs";
    /// Round-trip time, 99.9th percentile, microseconds.
    pub const P999_US: &str = "p999 µs";
    /// Round trips measured in the window.
    pub const ROUND_TRIPS: &str = "round trips";
    /// Messages per second delivered to all peers together.
    pub const DELIVERED_S: &str = "delivered msgs/s";
    /// Broadcaster resident memory added per connected peer, KiB.
    pub const RSS_PER_PEER_KIB: &str = "RSS KiB/peer";
    /// Completed handshakes per second.
    pub const HANDSHAKES_S: &str = "handshakes/s";
    /// Handshakes per CPU-second of both processes.
    pub const HANDSHAKES_CPU_S: &str = "handshakes/CPU-s";
    /// S9: delivered age of votes (send call to receiving application), 50th percentile, ms.
    pub const VOTE_AGE_P50_MS: &str = "vote age p50 ms";
    /// S9: delivered age of votes, 99th percentile, ms.
    pub const VOTE_AGE_P99_MS: &str = "vote age p99 ms";
    /// S9: delivered age of block parts, 50th percentile, ms.
    pub const PART_AGE_P50_MS: &str = "block part age p50 ms";
    /// S9: delivered age of block parts, 99th percentile, ms.
    pub const PART_AGE_P99_MS: &str = "block part age p99 ms";
    /// S9: age of requests when the serving node got them, 50th percentile, ms.
    pub const REQUEST_AGE_P50_MS: &str = "request age p50 ms";
    /// S9: age of requests when the serving node got them, 99th percentile, ms.
    pub const REQUEST_AGE_P99_MS: &str = "request age p99 ms";
    /// S9: request round trip at the requester (answered requests), 50th percentile, ms.
    pub const REQUEST_RTT_P50_MS: &str = "request RTT p50 ms";
    /// S9: request round trip at the requester (answered requests), 99th percentile, ms.
    pub const REQUEST_RTT_P99_MS: &str = "request RTT p99 ms";
    /// S9: requests issued by all nodes together.
    pub const REQUESTS_ISSUED: &str = "requests issued";
    /// S9: requests answered within their 2 s deadline.
    pub const REQUESTS_IN_DEADLINE: &str = "requests in deadline";
    /// S9: requests answered within their deadline, percent of those issued.
    pub const REQUESTS_IN_DEADLINE_PCT: &str = "requests in deadline %";
    /// S9: votes delivered to all nodes together.
    pub const VOTES_DELIVERED: &str = "votes delivered";
    /// S9, ringwire: messages dropped because their deadline passed before they were sent.
    pub const EXPIRED_BEFORE_SEND: &str = "expired before send";
    /// S9, ringwire: messages dropped because their deadline passed before delivery.
    pub const EXPIRED_BEFORE_DELIVERY: &str = "expired before delivery";
    /// S9, ringwire: broadcast copies skipped for a peer far behind.
    pub const FANOUT_LAGGING: &str = "fanout lagging";
    /// S9, ringwire: messages accepted for a peer that its connection then refused for good
    /// (too large for the peer, or the connection closing).
    pub const REFUSED_BY_CONNECTION: &str = "refused by connection";
    /// S9, MConnection: copies `TrySend` refused because the peer's channel queue was full.
    pub const SEND_QUEUE_FULL: &str = "send queue full";
    /// S9, ringwire: sends that found no room before their 100 ms wait ended, and requests
    /// that failed (no answer by their deadline).
    pub const SEND_ERRORS: &str = "send errors";
}

/// Whether a row has numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum RowStatus {
    /// At least one repetition succeeded.
    Measured,
    /// The system cannot run yet (engine or bindings pending, anchor binary missing).
    Pending(String),
    /// The scenario could not run here (e.g. not root for S6) or the mode leaves the row out.
    Skipped(String),
    /// Every repetition failed.
    Failed(String),
}

/// One system in one case.
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    /// The system.
    pub system: System,
    /// Its label.
    pub label: String,
    /// Whether there are numbers.
    pub status: RowStatus,
    /// Figures over the repetitions.
    pub metrics: BTreeMap<String, Stat>,
    /// Latency percentile curve over all repetitions: (quantile, µs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<(f64, f64)>,
    /// Errors of repetitions that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Whether the row's medians meet the scenario's goal, where a goal is checked per row
    /// (S9 at 32 nodes): "met" or "not met: …".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
}

impl RowResult {
    /// The median of `metric`, if measured.
    pub fn median(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).map(|s| s.median)
    }
}

/// One table: a condition of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// The condition ("64 KiB messages", "loaded", "1000 peers", …).
    pub condition: String,
    /// The metric the ratios use.
    pub primary: String,
    /// Whether larger values of the primary metric are better.
    pub higher_is_better: bool,
    /// The parameters both children received.
    pub spec: Spec,
    /// One row per system.
    pub rows: Vec<RowResult>,
}

impl CaseResult {
    /// The row of `system`, if the case has one.
    pub fn row(&self, system: System) -> Option<&RowResult> {
        self.rows.iter().find(|r| r.system == system)
    }
}

/// A scenario's tables.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// The scenario.
    pub id: Scenario,
    /// Its description.
    pub title: String,
    /// Why the whole scenario was skipped, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Notes on method for this scenario.
    pub notes: Vec<String>,
    /// One table per condition.
    pub cases: Vec<CaseResult>,
}

/// Where, when and how the run was made.
#[derive(Clone, Debug, Serialize)]
pub struct Meta {
    /// The command line.
    pub command: String,
    /// `git rev-parse HEAD` of the checkout.
    pub git_revision: String,
    /// Whether the checkout had uncommitted changes.
    pub git_dirty: bool,
    /// The machine.
    pub machine: Machine,
    /// Seconds since the Unix epoch at the start.
    pub started_unix: u64,
    /// Wall time of the whole run, seconds.
    pub duration_s: f64,
    /// Mode, repetitions, windows.
    pub params: Params,
    /// ringwire driver in use (io_uring / epoll); none until the engine lands.
    pub driver: String,
    /// ringwire shard count; none until the engine lands.
    pub shards: String,
    /// The stock MConnection configuration of the "stock defaults" rows.
    pub mconn_defaults: MconnConfig,
    /// The configuration of the "limits lifted" rows.
    pub mconn_lifted: MconnConfig,
    /// The CometBFT module version the anchor is built from.
    pub cometbft_version: String,
    /// Notes on method that apply to every scenario.
    pub notes: Vec<String>,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    /// Where, when and how.
    pub meta: Meta,
    /// Every scenario that was planned.
    pub scenarios: Vec<ScenarioResult>,
}
