//! `latest.md`: one table per scenario condition with medians, spreads and ratios to the anchors.

use std::fmt::Write as _;

use crate::plan::Scenario;
use crate::results::{CaseResult, Results, RowResult, RowStatus, ScenarioResult, metric};
use crate::s9;
use crate::system::System;

/// Formats a figure with sensible precision.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 100_000.0 {
        // Thousands separators for large counts.
        let s = format!("{:.0}", v);
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A ratio with two significant digits below 0.1, so small ratios do not read as zero.
pub fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        return "–".to_owned();
    }
    let a = r.abs();
    if a >= 10.0 {
        format!("{r:.1}×")
    } else if a >= 0.1 || a == 0.0 {
        format!("{r:.2}×")
    } else {
        let decimals = (-a.log10()).ceil() as usize + 1;
        format!("{r:.decimals$}×")
    }
}

fn ratio(row: &RowResult, anchor: Option<&RowResult>, metric: &str) -> String {
    match (row.median(metric), anchor.and_then(|a| a.median(metric))) {
        (Some(v), Some(a)) if a != 0.0 => fmt_ratio(v / a),
        _ => "–".to_owned(),
    }
}

fn status_text(row: &RowResult) -> Option<String> {
    match &row.status {
        RowStatus::Measured => None,
        RowStatus::Pending(why) => Some(why.clone()),
        RowStatus::Skipped(why) => Some(format!("skipped: {why}")),
        RowStatus::Failed(why) => {
            let short: String = why.chars().take(160).collect();
            Some(format!(
                "failed: {}",
                short.replace('|', "/").replace('\n', " ")
            ))
        }
    }
}

/// The figure columns of a case: latency shows three percentiles, the rest their primary.
fn figure_columns(case: &CaseResult) -> Vec<&str> {
    if case.primary == metric::P99_US {
        vec![metric::P50_US, metric::P99_US, metric::P999_US]
    } else {
        vec![case.primary.as_str()]
    }
}

/// Extra median columns after the ratios.
fn extra_columns(case: &CaseResult) -> Vec<&'static str> {
    match case.primary.as_str() {
        metric::MB_S => vec![metric::CPU_S_PER_GB],
        metric::MSGS_S => vec![metric::MB_S, metric::CPU_S_PER_GB],
        metric::P99_US => vec![metric::ROUND_TRIPS],
        metric::DELIVERED_S => vec![metric::RSS_PER_PEER_KIB],
        metric::HANDSHAKES_S => vec![metric::HANDSHAKES_CPU_S],
        _ => vec![],
    }
}

/// A row's medians of two figures as "a / b" ("–" for one not measured).
fn pair(row: &RowResult, a: &str, b: &str) -> String {
    let m = |k: &str| row.median(k).map_or("–".into(), fmt_num);
    format!("{} / {}", m(a), m(b))
}

/// S9's table: ages per kind, requests in deadline, votes delivered, drops by reason, and the
/// goal where it is checked. A "–" is a figure the system does not have (no such drop reason)
/// or a kind nothing of was delivered.
fn s9_table(out: &mut String, case: &CaseResult) {
    let lifted = case.row(System::MconnLifted);
    let defaults = case.row(System::MconnDefaults);
    let drops = [
        metric::EXPIRED_BEFORE_SEND,
        metric::EXPIRED_BEFORE_DELIVERY,
        metric::FANOUT_LAGGING,
        metric::REFUSED_BY_CONNECTION,
        metric::SEND_QUEUE_FULL,
        metric::SEND_ERRORS,
    ];
    let with_goal = case.rows.iter().any(|r| r.goal.is_some());
    let mut head: Vec<String> = [
        "system",
        "vote age p50 / p99 ms",
        "block part age p50 / p99 ms",
        "request age p50 / p99 ms",
        "requests in deadline / issued",
        "in deadline %",
        "votes delivered",
    ]
    .map(String::from)
    .to_vec();
    head.extend(drops.iter().map(|d| d.to_string()));
    head.push(format!("spread of {}", metric::VOTE_AGE_P99_MS));
    head.push("vote p99 × MConn lifted".into());
    head.push("vote p99 × MConn defaults".into());
    if with_goal {
        head.push("S9 goal".into());
    }
    head.push("reps".into());
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(head.len()));
    for row in &case.rows {
        let mut cells = vec![row.label.clone()];
        if let Some(text) = status_text(row) {
            cells.push(text);
            cells.resize(head.len(), String::new());
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            continue;
        }
        let m = |k: &str| row.median(k).map_or("–".into(), fmt_num);
        cells.push(pair(row, metric::VOTE_AGE_P50_MS, metric::VOTE_AGE_P99_MS));
        cells.push(pair(row, metric::PART_AGE_P50_MS, metric::PART_AGE_P99_MS));
        cells.push(pair(
            row,
            metric::REQUEST_AGE_P50_MS,
            metric::REQUEST_AGE_P99_MS,
        ));
        cells.push(pair(
            row,
            metric::REQUESTS_IN_DEADLINE,
            metric::REQUESTS_ISSUED,
        ));
        cells.push(m(metric::REQUESTS_IN_DEADLINE_PCT));
        cells.push(m(metric::VOTES_DELIVERED));
        cells.extend(drops.iter().map(|d| m(d)));
        cells.push(
            row.metrics
                .get(metric::VOTE_AGE_P99_MS)
                .map_or("–".into(), |s| {
                    format!("{}–{}", fmt_num(s.min), fmt_num(s.max))
                }),
        );
        cells.push(ratio(row, lifted, metric::VOTE_AGE_P99_MS));
        cells.push(ratio(row, defaults, metric::VOTE_AGE_P99_MS));
        if with_goal {
            cells.push(row.goal.clone().unwrap_or_else(|| "–".into()));
        }
        cells.push(
            row.metrics
                .get(metric::VOTES_DELIVERED)
                .map_or(0, |s| s.values.len())
                .to_string(),
        );
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

fn case_table(out: &mut String, scenario: &ScenarioResult, case: &CaseResult) {
    if scenario.id == Scenario::S9 {
        return s9_table(out, case);
    }
    let raw = case.row(System::RawTcp);
    let per_msg = case.row(System::RawTcpPerMessage);
    let lifted = case.row(System::MconnLifted);
    let defaults = case.row(System::MconnDefaults);
    // Tables with the Go row (S5) compare every row with the Rust engine's io_uring row.
    let rust = case
        .row(System::RingwireGo)
        .and(case.row(System::RingwireIoUring));
    let idle = (scenario.id == Scenario::S3 && case.condition == "loaded")
        .then(|| scenario.cases.iter().find(|c| c.condition == "idle"))
        .flatten();
    let figs = figure_columns(case);
    let extras = extra_columns(case);
    let mut head: Vec<String> = vec!["system".into()];
    head.extend(figs.iter().map(|f| format!("{f} (median)")));
    head.push(format!("spread of {}", case.primary));
    head.push("× raw TCP".into());
    if per_msg.is_some() {
        head.push("× raw TCP 1 msg/syscall".into());
    }
    head.push("× MConn lifted".into());
    head.push("× MConn defaults".into());
    if rust.is_some() {
        head.push("× ringwire io_uring (Go/Rust)".into());
    }
    if idle.is_some() {
        head.push("p99 loaded ÷ idle".into());
    }
    head.extend(extras.iter().map(|e| e.to_string()));
    head.push("reps".into());
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(head.len()));
    for row in &case.rows {
        let mut cells = vec![row.label.clone()];
        if let Some(text) = status_text(row) {
            cells.push(text);
            cells.resize(head.len(), String::new());
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            continue;
        }
        for f in &figs {
            cells.push(row.median(f).map_or("–".into(), fmt_num));
        }
        cells.push(row.metrics.get(&case.primary).map_or("–".into(), |s| {
            format!(
                "{}–{} (±{:.0}%)",
                fmt_num(s.min),
                fmt_num(s.max),
                s.spread_pct() / 2.0
            )
        }));
        cells.push(ratio(row, raw, &case.primary));
        if per_msg.is_some() {
            cells.push(ratio(row, per_msg, &case.primary));
        }
        cells.push(ratio(row, lifted, &case.primary));
        cells.push(ratio(row, defaults, &case.primary));
        if rust.is_some() {
            cells.push(ratio(row, rust, &case.primary));
        }
        if let Some(idle) = idle {
            cells.push(ratio(row, idle.row(row.system), metric::P99_US));
        }
        for e in &extras {
            cells.push(row.median(e).map_or("–".into(), fmt_num));
        }
        cells.push(
            row.metrics
                .get(&case.primary)
                .map_or(0, |s| s.values.len())
                .to_string(),
        );
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

/// Renders the whole report; `charts` lists the chart files written per scenario.
pub fn markdown(results: &Results, charts: &[(Scenario, String)]) -> String {
    let m = &results.meta;
    let mut out = String::new();
    let _ = writeln!(out, "# ringwire benchmarks ({:?} run)\n", m.params.mode);
    let _ = writeln!(
        out,
        "Every figure is a median over {} repetition(s) measured side by side in this run; \
         systems alternate within each repetition. Ratios divide a row's median by the anchor's \
         median of the same figure. Spread is min–max over the repetitions (± half the range as \
         a share of the median).\n",
        m.params.reps
    );
    let _ = writeln!(out, "- machine: {}", m.machine.summary());
    let _ = writeln!(out, "- toolchains: {}; {}", m.machine.rustc, m.machine.go);
    let dirty = if m.git_dirty {
        " (with uncommitted changes)"
    } else {
        ""
    };
    let _ = writeln!(out, "- git revision: `{}`{dirty}", m.git_revision);
    let _ = writeln!(out, "- command: `{}`", m.command);
    let _ = writeln!(
        out,
        "- durations: warm-up {} ms, S1 window {} ms, other windows {} ms; whole run {:.0} s",
        m.params.warmup_ms, m.params.bulk_ms, m.params.short_ms, m.duration_s
    );
    let _ = writeln!(out, "- ringwire driver: {}; shards: {}", m.driver, m.shards);
    let d = &m.mconn_defaults;
    let l = &m.mconn_lifted;
    let _ = writeln!(
        out,
        "- MConnection: CometBFT {} `p2p/conn` over SecretConnection; stock defaults = send/recv \
         {}/{} B/s, flush throttle {}, payload {} B; limits lifted = send/recv {}/{} B/s, flush \
         throttle {}, payload {} B",
        m.cometbft_version,
        d.send_rate,
        d.recv_rate,
        d.flush_throttle,
        d.max_payload,
        l.send_rate,
        l.recv_rate,
        l.flush_throttle,
        l.max_payload
    );
    for n in &m.notes {
        let _ = writeln!(out, "- {n}");
    }
    for s in &results.scenarios {
        let _ = writeln!(out, "\n## {} — {}\n", s.id.id(), s.title);
        if let Some(why) = &s.skipped {
            let _ = writeln!(out, "**{why}**\n");
        }
        if s.id == Scenario::S9 {
            let _ = writeln!(
                out,
                "Goal: {}. Each measurement runs the mesh for {} ms.\n",
                s9::GOAL,
                m.params.mesh_ms
            );
        }
        for case in &s.cases {
            let better = if case.higher_is_better {
                "higher"
            } else {
                "lower"
            };
            let _ = writeln!(
                out,
                "### {} {} — {} ({better} is better)\n",
                s.id.id(),
                case.condition,
                case.primary
            );
            case_table(&mut out, s, case);
            out.push('\n');
        }
        for n in &s.notes {
            let _ = writeln!(out, "- {n}");
        }
        for (id, file) in charts {
            if *id == s.id {
                let _ = writeln!(out, "\n![{} chart]({file})", s.id.id());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::{Mode, Params, cases};
    use crate::stats::Stat;

    fn row(system: System, figures: &[(&str, f64)], goal: Option<&str>) -> RowResult {
        let metrics: BTreeMap<String, Stat> = figures
            .iter()
            .map(|&(k, v)| (k.to_owned(), Stat::of(&[v, v]).expect("stat")))
            .collect();
        RowResult {
            system,
            label: system.label().to_owned(),
            status: RowStatus::Measured,
            metrics,
            curve: Vec::new(),
            errors: Vec::new(),
            goal: goal.map(str::to_owned),
        }
    }

    #[test]
    fn s9_table_has_ages_requests_drops_and_the_goal() {
        let spec = cases(Scenario::S9, &Params::for_mode(Mode::Quick))[1]
            .spec
            .clone();
        let case = CaseResult {
            condition: "32 nodes".into(),
            primary: metric::VOTE_AGE_P99_MS.into(),
            higher_is_better: false,
            spec,
            rows: vec![
                row(
                    System::MconnLifted,
                    &[
                        (metric::VOTE_AGE_P50_MS, 320.0),
                        (metric::VOTE_AGE_P99_MS, 2000.0),
                        (metric::REQUESTS_IN_DEADLINE, 120.0),
                        (metric::REQUESTS_ISSUED, 165.0),
                        (metric::VOTES_DELIVERED, 1_343_060.0),
                        (metric::SEND_QUEUE_FULL, 588_981.0),
                    ],
                    Some("not met: vote age p99 2000 ms > 500 ms"),
                ),
                row(
                    System::RingwireIoUring,
                    &[
                        (metric::VOTE_AGE_P50_MS, 64.6),
                        (metric::VOTE_AGE_P99_MS, 400.0),
                        (metric::REQUESTS_IN_DEADLINE_PCT, 99.3),
                        (metric::EXPIRED_BEFORE_SEND, 142_011.0),
                    ],
                    Some("met"),
                ),
            ],
        };
        let mut out = String::new();
        s9_table(&mut out, &case);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        let cols = lines[0].matches('|').count();
        assert!(
            lines.iter().all(|l| l.matches('|').count() == cols),
            "{out}"
        );
        assert!(lines[0].contains("vote age p50 / p99 ms") && lines[0].contains("S9 goal"));
        assert!(lines[2].contains("| 320 / 2000 |"), "{}", lines[2]);
        assert!(lines[2].contains("| 120 / 165 |"), "{}", lines[2]);
        assert!(lines[2].contains("| 1,343,060 |"), "{}", lines[2]);
        assert!(lines[3].contains("| 64.6 / 400 |"), "{}", lines[3]);
        assert!(lines[3].contains("| 0.20× |"), "{}", lines[3]);
        assert!(lines[3].contains("| met |"), "{}", lines[3]);
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(123_456.0), "123,456");
        assert_eq!(fmt_num(512.4), "512");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(fmt_num(73.0), "73");
        assert_eq!(fmt_ratio(22.43), "22.4×");
        assert_eq!(fmt_ratio(0.25), "0.25×");
        assert_eq!(fmt_ratio(0.0047), "0.0047×");
        assert_eq!(fmt_ratio(0.04), "0.040×");
    }
}
