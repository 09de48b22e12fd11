//! `ringwire testnet --json`: a short run on each driver ends with a parseable summary.

use std::process::Command;

use serde_json::Value;

fn testnet(driver: &str) -> Option<Value> {
    testnet_with(driver, &[])
}

fn testnet_with(driver: &str, extra: &[&str]) -> Option<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_ringwire"))
        .args([
            "testnet",
            "--nodes",
            "4",
            "--duration",
            "3s",
            "--driver",
            driver,
            "--json",
        ])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if driver == "io_uring" && !out.status.success() && err.contains("io_uring") {
        eprintln!("skipped: io_uring is not available here: {err}");
        return None;
    }
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    let summary: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    Some(summary)
}

fn check(summary: &Value, driver: &str) {
    assert_eq!(summary["driver"], driver, "{summary}");
    assert_eq!(summary["nodes"], 4);
    assert!(summary["messages"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["bytes"].as_u64().unwrap() > 0, "{summary}");
    assert!(
        summary["latency_us"]["p50"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(
        summary["latency_us"]["p99"].as_u64() >= summary["latency_us"]["p50"].as_u64(),
        "{summary}"
    );
    for kind in ["vote", "block_part", "request", "response"] {
        assert!(
            summary["by_kind"][kind].as_u64().unwrap() > 0,
            "{kind}: {summary}"
        );
    }
    let per_node = summary["per_node"].as_array().unwrap();
    assert_eq!(per_node.len(), 4);
    for n in per_node {
        assert_eq!(n["peers"], 3, "{summary}");
    }
}

#[test]
fn testnet_on_epoll_prints_a_json_summary() {
    let s = testnet("epoll").unwrap();
    check(&s, "epoll");
}

#[test]
fn testnet_on_io_uring_prints_a_json_summary() {
    if let Some(s) = testnet("io_uring") {
        check(&s, "io_uring");
    }
}

/// `--s9`: the summary adds the delivered age per kind, the requests answered within their
/// deadline and the drops by reason (a light 4-node run: nothing should expire, but the
/// counters are there and the figures are consistent).
#[test]
fn testnet_s9_reports_ages_requests_and_drops() {
    let s = testnet_with("epoll", &["--s9"]).unwrap();
    check(&s, "epoll");
    assert_eq!(s["s9"], true, "{s}");
    assert_eq!(s["vote_ttl_ms"], 300, "{s}");
    for kind in ["vote", "block_part", "request"] {
        let a = &s["age"][kind];
        assert!(a["delivered"].as_u64().unwrap() > 0, "{kind}: {s}");
        assert!(
            a["p99_ms"].as_f64().unwrap() >= a["p50_ms"].as_f64().unwrap(),
            "{kind}: {s}"
        );
    }
    let issued = s["requests_issued"].as_u64().unwrap();
    let answered = s["requests_answered_in_deadline"].as_u64().unwrap();
    assert!(issued > 0 && answered <= issued, "{s}");
    for reason in [
        "expired_before_send",
        "expired_before_delivery",
        "fanout_lagging",
        "refused_by_connection",
    ] {
        assert!(s["drops"][reason].is_u64(), "{reason}: {s}");
    }
}
