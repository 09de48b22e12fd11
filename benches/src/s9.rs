//! S9, overload without stale buildup: the summary a mesh run prints, its figures and the
//! scenario's goal.
//!
//! A run is one process of N nodes fully meshed over loopback, each broadcasting 1,000
//! votes/s of 200 B (highest priority), 20 block parts/s of 64 KiB (lowest) and sending 100
//! requests/s (64 B, answered with 1 KiB, 2 s deadline, one outstanding per node):
//! `ringwire testnet --s9 --json` for the engine's rows (`cli/src/testnet.rs`, with delivery
//! deadlines of 300 ms for votes and 1 s for block parts) and `mconnbench run --scenario=s9`
//! for stock MConnection (`interop/cmd/mconnbench/s9.go`, no deadlines: what is queued is
//! delivered, however old). Both print the same summary fields where they apply
//! ([`MeshReport`]); fields one of them lacks stay out of its row.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::results::{RowResult, metric};

/// The goal is checked on the run of this many nodes.
pub const GOAL_NODES: usize = 32;
/// Goal: p99 age of delivered votes at most this, ms.
pub const GOAL_VOTE_P99_MS: f64 = 500.0;
/// Goal: at least this share of requests answered within their deadline, percent.
pub const GOAL_REQUESTS_PCT: f64 = 95.0;
/// The goal as the report states it.
pub const GOAL: &str = "S9 at 32 nodes: p99 age of delivered votes ≤ 500 ms and ≥ 95 % of \
                        requests answered within their deadline";

/// Delivered age of one kind of message.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Age {
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Messages the age was taken of.
    pub delivered: u64,
}

/// Ages per kind. A request's age is taken when the serving node gets it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Ages {
    /// Votes.
    pub vote: Age,
    /// Block parts.
    pub block_part: Age,
    /// Requests, at the server.
    pub request: Age,
}

/// Messages delivered per kind, all nodes together.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Kinds {
    /// Votes.
    pub vote: u64,
    /// Block parts.
    pub block_part: u64,
    /// Requests, at the server.
    pub request: u64,
    /// Responses, at the requester.
    pub response: u64,
}

/// Request round trips the requesters saw (answered requests), µs.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RoundTrips {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Round trips measured.
    pub samples: u64,
}

/// The summary of one S9 run: the fields of `ringwire testnet --s9 --json` that the figures
/// use (others are ignored), which `mconnbench run --scenario=s9` prints as well.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MeshReport {
    /// Nodes in the mesh.
    pub nodes: usize,
    /// The I/O driver (`io_uring`, `epoll`) or `mconnection`.
    pub driver: String,
    /// How long traffic ran, seconds.
    pub duration_s: f64,
    /// Delivered age per kind.
    pub age: Ages,
    /// Deliveries per kind.
    pub by_kind: Kinds,
    /// Requests issued.
    pub requests_issued: u64,
    /// Requests answered within their deadline.
    pub requests_answered_in_deadline: u64,
    /// Request round trips.
    pub request_rtt_us: RoundTrips,
    /// Drops by reason: ringwire's `expired_before_send`, `expired_before_delivery`,
    /// `fanout_lagging`, `refused_by_connection`; MConnection's `send_queue_full`.
    pub drops: BTreeMap<String, u64>,
    /// ringwire only: sends that found no room within their wait, and failed requests.
    pub send_errors: Option<u64>,
}

/// Drop reasons of the summary and the metric each becomes.
const DROPS: [(&str, &str); 5] = [
    ("expired_before_send", metric::EXPIRED_BEFORE_SEND),
    ("expired_before_delivery", metric::EXPIRED_BEFORE_DELIVERY),
    ("fanout_lagging", metric::FANOUT_LAGGING),
    ("refused_by_connection", metric::REFUSED_BY_CONNECTION),
    ("send_queue_full", metric::SEND_QUEUE_FULL),
];

/// Parses a summary line (the JSON, without the `RESULT ` prefix).
pub fn parse(json: &str) -> Result<MeshReport, String> {
    let r: MeshReport =
        serde_json::from_str(json).map_err(|e| format!("bad S9 summary {json:?}: {e}"))?;
    if r.nodes == 0 {
        return Err(format!("not an S9 summary (no node count): {json:?}"));
    }
    Ok(r)
}

/// The figures of one run. Ages are left out for a kind nothing of was delivered, drops for a
/// reason the system does not have.
pub fn figures(r: &MeshReport) -> Vec<(&'static str, f64)> {
    let mut f = Vec::new();
    for (age, p50, p99) in [
        (
            &r.age.vote,
            metric::VOTE_AGE_P50_MS,
            metric::VOTE_AGE_P99_MS,
        ),
        (
            &r.age.block_part,
            metric::PART_AGE_P50_MS,
            metric::PART_AGE_P99_MS,
        ),
        (
            &r.age.request,
            metric::REQUEST_AGE_P50_MS,
            metric::REQUEST_AGE_P99_MS,
        ),
    ] {
        if age.delivered > 0 {
            f.push((p50, age.p50_ms));
            f.push((p99, age.p99_ms));
        }
    }
    if r.request_rtt_us.samples > 0 {
        f.push((
            metric::REQUEST_RTT_P50_MS,
            r.request_rtt_us.p50 as f64 / 1000.0,
        ));
        f.push((
            metric::REQUEST_RTT_P99_MS,
            r.request_rtt_us.p99 as f64 / 1000.0,
        ));
    }
    f.push((metric::VOTES_DELIVERED, r.by_kind.vote as f64));
    f.push((metric::REQUESTS_ISSUED, r.requests_issued as f64));
    f.push((
        metric::REQUESTS_IN_DEADLINE,
        r.requests_answered_in_deadline as f64,
    ));
    if r.requests_issued > 0 {
        f.push((
            metric::REQUESTS_IN_DEADLINE_PCT,
            100.0 * r.requests_answered_in_deadline as f64 / r.requests_issued as f64,
        ));
    }
    for (key, name) in DROPS {
        if let Some(&n) = r.drops.get(key) {
            f.push((name, n as f64));
        }
    }
    if let Some(n) = r.send_errors {
        f.push((metric::SEND_ERRORS, n as f64));
    }
    f
}

/// Whether a row of the [`GOAL_NODES`] run meets [`GOAL`] on its medians: "met", or "not met"
/// with what missed; `None` without the figures.
pub fn goal(row: &RowResult) -> Option<String> {
    let p99 = row.median(metric::VOTE_AGE_P99_MS)?;
    let pct = row.median(metric::REQUESTS_IN_DEADLINE_PCT)?;
    let mut missed = Vec::new();
    if p99 > GOAL_VOTE_P99_MS {
        missed.push(format!(
            "vote age p99 {p99:.0} ms > {GOAL_VOTE_P99_MS:.0} ms"
        ));
    }
    if pct < GOAL_REQUESTS_PCT {
        missed.push(format!(
            "{pct:.1} % of requests in deadline < {GOAL_REQUESTS_PCT:.0} %"
        ));
    }
    Some(if missed.is_empty() {
        "met".to_owned()
    } else {
        format!("not met: {}", missed.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::results::RowStatus;
    use crate::stats::Stat;
    use crate::system::System;

    /// `ringwire testnet --s9 --json --nodes 4 --duration 2s --driver epoll`, as printed.
    const TESTNET: &str = r#"{"age":{"block_part":{"delivered":480,"p50_ms":0.73,"p99_ms":4.027},"request":{"delivered":800,"p50_ms":0.106,"p99_ms":1.185},"vote":{"delivered":24000,"p50_ms":0.157,"p99_ms":1.325}},"by_kind":{"block_part":480,"request":800,"response":800,"vote":24000},"bytes":37127680,"compat":false,"driver":"epoll","drops":{"expired_before_delivery":0,"expired_before_send":0,"fanout_lagging":0,"refused_by_connection":0},"duration_s":2.000272305,"latency_us":{"max":4351,"p50":158,"p99":1354,"samples":25280},"mb_per_s":18.561312830854796,"messages":26080,"messages_per_s":13038.224813096134,"native_busy_window":null,"native_window":0,"nodes":4,"part_ttl_ms":1000,"per_node":[{"id":"afdf51a82b8beeea02d8b39e9ddbed9b4b543b94","peers":3,"received_bytes":9281984,"received_messages":6521}],"recv_queue":0,"request_rtt_us":{"p50":224,"p99":1638,"samples":800},"requests_answered_in_deadline":800,"requests_issued":800,"s9":true,"send_errors":0,"tcp_recv_buffer":0,"vote_ttl_ms":300,"write_batch":0}"#;

    /// `mconnbench run --scenario=s9 --nodes=4 --duration-ms=2000`, the JSON of its RESULT line.
    const MCONN: &str = r#"{"nodes":4,"driver":"mconnection","duration_s":2.000695203,"age":{"vote":{"p50_ms":1.445,"p99_ms":21.471,"delivered":23960},"block_part":{"p50_ms":10.351,"p99_ms":21.407,"delivered":480},"request":{"p50_ms":9.983,"p99_ms":20.511,"delivered":419}},"by_kind":{"vote":23960,"block_part":480,"request":419,"response":417},"requests_issued":421,"requests_answered_in_deadline":417,"requests_timed_out":0,"request_rtt_us":{"p50":19807,"p99":39935,"samples":417},"drops":{"send_queue_full":12},"send_queue_full":{"vote":12,"block_part":0,"request":0,"response":0},"connection_errors":0,"send_rate":5120000,"recv_rate":5120000,"flush_throttle":"10ms"}"#;

    fn get(f: &[(&'static str, f64)], key: &str) -> Option<f64> {
        f.iter().find(|(k, _)| *k == key).map(|x| x.1)
    }

    #[test]
    fn testnet_summary_becomes_the_row_metrics() {
        let r = parse(TESTNET).expect("parse");
        assert_eq!((r.nodes, r.driver.as_str()), (4, "epoll"));
        let f = figures(&r);
        assert_eq!(get(&f, metric::VOTE_AGE_P50_MS), Some(0.157));
        assert_eq!(get(&f, metric::VOTE_AGE_P99_MS), Some(1.325));
        assert_eq!(get(&f, metric::PART_AGE_P99_MS), Some(4.027));
        assert_eq!(get(&f, metric::REQUEST_AGE_P50_MS), Some(0.106));
        assert_eq!(get(&f, metric::REQUEST_RTT_P99_MS), Some(1.638));
        assert_eq!(get(&f, metric::VOTES_DELIVERED), Some(24000.0));
        assert_eq!(get(&f, metric::REQUESTS_ISSUED), Some(800.0));
        assert_eq!(get(&f, metric::REQUESTS_IN_DEADLINE), Some(800.0));
        assert_eq!(get(&f, metric::REQUESTS_IN_DEADLINE_PCT), Some(100.0));
        for m in [
            metric::EXPIRED_BEFORE_SEND,
            metric::EXPIRED_BEFORE_DELIVERY,
            metric::FANOUT_LAGGING,
            metric::REFUSED_BY_CONNECTION,
            metric::SEND_ERRORS,
        ] {
            assert_eq!(get(&f, m), Some(0.0), "{m}");
        }
        // Stock MConnection's reason is not ringwire's.
        assert_eq!(get(&f, metric::SEND_QUEUE_FULL), None);
    }

    #[test]
    fn mconnbench_result_becomes_the_row_metrics() {
        let r = parse(MCONN).expect("parse");
        assert_eq!((r.nodes, r.driver.as_str()), (4, "mconnection"));
        let f = figures(&r);
        assert_eq!(get(&f, metric::VOTE_AGE_P99_MS), Some(21.471));
        assert_eq!(get(&f, metric::PART_AGE_P50_MS), Some(10.351));
        assert_eq!(get(&f, metric::REQUEST_AGE_P99_MS), Some(20.511));
        assert_eq!(get(&f, metric::VOTES_DELIVERED), Some(23960.0));
        let pct = get(&f, metric::REQUESTS_IN_DEADLINE_PCT).expect("pct");
        assert!((pct - 100.0 * 417.0 / 421.0).abs() < 1e-9, "{pct}");
        assert_eq!(get(&f, metric::SEND_QUEUE_FULL), Some(12.0));
        // No deadlines, no fan-out skipping, no send waits: those columns stay empty.
        for m in [
            metric::EXPIRED_BEFORE_SEND,
            metric::FANOUT_LAGGING,
            metric::SEND_ERRORS,
        ] {
            assert_eq!(get(&f, m), None, "{m}");
        }
    }

    #[test]
    fn nothing_delivered_leaves_ages_out_and_bad_lines_fail() {
        let f = figures(&parse(r#"{"nodes":32,"requests_issued":0}"#).expect("parse"));
        assert_eq!(get(&f, metric::VOTE_AGE_P99_MS), None);
        assert_eq!(get(&f, metric::REQUESTS_IN_DEADLINE_PCT), None);
        assert_eq!(get(&f, metric::VOTES_DELIVERED), Some(0.0));
        assert!(parse("{}").is_err());
        assert!(parse("not json").is_err());
    }

    fn row(p99: f64, pct: f64) -> RowResult {
        let mut metrics = BTreeMap::new();
        for (k, v) in [
            (metric::VOTE_AGE_P99_MS, p99),
            (metric::REQUESTS_IN_DEADLINE_PCT, pct),
        ] {
            metrics.insert(k.to_owned(), Stat::of(&[v]).expect("stat"));
        }
        RowResult {
            system: System::RingwireIoUring,
            label: "ringwire io_uring".into(),
            status: RowStatus::Measured,
            metrics,
            curve: Vec::new(),
            errors: Vec::new(),
            goal: None,
        }
    }

    #[test]
    fn goal_is_checked_on_medians() {
        assert_eq!(goal(&row(401.9, 99.3)).as_deref(), Some("met"));
        assert_eq!(
            goal(&row(1482.0, 30.6)).as_deref(),
            Some("not met: vote age p99 1482 ms > 500 ms; 30.6 % of requests in deadline < 95 %")
        );
        assert_eq!(
            // Just below the goal stays below it when printed.
            goal(&row(500.0, 94.8)).as_deref(),
            Some("not met: 94.8 % of requests in deadline < 95 %")
        );
        let mut empty = row(1.0, 100.0);
        empty.metrics.clear();
        assert_eq!(goal(&empty), None);
    }
}
