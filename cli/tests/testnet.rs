//! `ringwire testnet --json`: a short run on each driver ends with a parseable summary.

use std::process::Command;

use serde_json::Value;

fn testnet(driver: &str) -> Option<Value> {
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
