//! `make soak`'s samples (cometbft/localnet/e2e.sh with `DURATION`): parsing, the growth check
//! (a least-squares line through each node's RSS and fd count after the warm-up) and the chart.
//!
//! The samples file has `unix_s,phase,node,pid,rss_kb,fds,height` rows, one per node every
//! sampling interval; the latency file (`localnet-load -series`) has
//! `unix_s,height_max,committed,p50_ms,p99_ms` rows.

use std::path::Path;

use plotters::prelude::*;

use crate::charts::load_font;

/// One node's sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since the epoch.
    pub t: u64,
    /// What the run was doing: `warm-up`, `<n>:<perturbation>` (the perturbation, its heal and
    /// observation), `quiet` (between perturbations) or `final`.
    pub phase: String,
    /// The node's index.
    pub node: usize,
    /// Its process id (0 while it is down).
    pub pid: u32,
    /// Resident set, KiB (none while it is down).
    pub rss_kb: Option<u64>,
    /// Open file descriptors (none while it is down).
    pub fds: Option<u64>,
    /// Its latest height (none when its RPC did not answer).
    pub height: Option<u64>,
}

/// One interval of the load generator's series.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    /// Seconds since the epoch.
    pub t: u64,
    /// Transactions committed in the interval.
    pub committed: u64,
    /// Their commit latency p99, ms.
    pub p99_ms: f64,
}

fn field<T: std::str::FromStr>(f: Option<&str>) -> Option<T> {
    f.and_then(|s| s.trim().parse().ok())
}

/// Parses the samples file; rows that do not parse are skipped.
pub fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Some(Sample {
                t: field(f.first().copied())?,
                phase: f.get(1)?.to_string(),
                node: field(f.get(2).copied())?,
                pid: field(f.get(3).copied())?,
                rss_kb: field(f.get(4).copied()),
                fds: field(f.get(5).copied()),
                height: field(f.get(6).copied()),
            })
        })
        .collect()
}

/// Parses the latency file; rows that do not parse are skipped.
pub fn parse_latency(text: &str) -> Vec<LatencyRow> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Some(LatencyRow {
                t: field(f.first().copied())?,
                committed: field(f.get(2).copied())?,
                p99_ms: field(f.get(4).copied())?,
            })
        })
        .collect()
}

/// The least-squares slope of `pts` (y per x unit); none with fewer than 3 points or no spread.
pub fn slope(pts: &[(f64, f64)]) -> Option<f64> {
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The bounds of the growth check.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The part of the run (from its start) left out as warm-up, 0..1.
    pub skip: f64,
    /// RSS may grow over the analysed window by this fraction of its mean…
    pub rss_frac: f64,
    /// …or by this many MiB, whichever is larger.
    pub rss_min_mib: f64,
    /// Open fds may grow over the analysed window by this many.
    pub fds: f64,
}

/// One node's verdict.
#[derive(Debug, Clone)]
pub struct NodeTrend {
    /// The node's index.
    pub node: usize,
    /// Samples fitted (of the process analysed, quiet phases where there are enough).
    pub samples: usize,
    /// Mean RSS over the window, MiB.
    pub rss_mean_mib: f64,
    /// Fitted RSS growth over the window, MiB (slope × window).
    pub rss_growth_mib: f64,
    /// The RSS bound, MiB.
    pub rss_bound_mib: f64,
    /// Fitted fd growth over the window.
    pub fds_growth: f64,
    /// Lowest and highest fd count in the window.
    pub fds_range: (u64, u64),
    /// Whether both stayed within their bounds.
    pub ok: bool,
}

/// Whether a sample was taken while no perturbation was running.
fn is_quiet(s: &Sample) -> bool {
    s.phase == "quiet" || s.phase == "final"
}

/// Fits each node's RSS and fds over the part of the run after `bounds.skip`. A node restarted
/// in the window is judged on its longest-running process there. Only the samples of the quiet
/// phases (between perturbations, and after the last) are fitted when there are at least 3:
/// a perturbation raises memory while it lasts (a node serving block sync to a restarted peer,
/// a paused node's backlog) and that is not growth; what a leak leaves behind shows in the
/// level memory returns to between perturbations.
pub fn trends(samples: &[Sample], bounds: Bounds) -> Vec<NodeTrend> {
    let (Some(t0), Some(t1)) = (
        samples.iter().map(|s| s.t).min(),
        samples.iter().map(|s| s.t).max(),
    ) else {
        return Vec::new();
    };
    let from = t0 as f64 + (t1 - t0) as f64 * bounds.skip;
    let nodes = samples.iter().map(|s| s.node).max().map_or(0, |m| m + 1);
    let mut out = Vec::new();
    for node in 0..nodes {
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.node == node && s.t as f64 >= from && s.pid != 0 && s.rss_kb.is_some())
            .collect();
        let mut by_pid: Vec<(u32, usize)> = Vec::new();
        for s in &mine {
            match by_pid.iter_mut().find(|(p, _)| *p == s.pid) {
                Some(e) => e.1 += 1,
                None => by_pid.push((s.pid, 1)),
            }
        }
        let Some(&(pid, _)) = by_pid.iter().max_by_key(|e| e.1) else {
            continue;
        };
        let mut proc_samples: Vec<&&Sample> = mine.iter().filter(|s| s.pid == pid).collect();
        if proc_samples.iter().filter(|s| is_quiet(s)).count() >= 3 {
            proc_samples.retain(|s| is_quiet(s));
        }
        let rss: Vec<(f64, f64)> = proc_samples
            .iter()
            .filter_map(|s| Some((s.t as f64, s.rss_kb? as f64 / 1024.0)))
            .collect();
        let fds: Vec<(f64, f64)> = proc_samples
            .iter()
            .filter_map(|s| Some((s.t as f64, s.fds? as f64)))
            .collect();
        let span = rss.last().map_or(0.0, |l| l.0) - rss.first().map_or(0.0, |f| f.0);
        let mean = rss.iter().map(|p| p.1).sum::<f64>() / rss.len().max(1) as f64;
        let rss_growth = slope(&rss).unwrap_or(0.0) * span;
        let fds_growth = slope(&fds).unwrap_or(0.0) * span;
        let bound = (mean * bounds.rss_frac).max(bounds.rss_min_mib);
        let lo = fds.iter().map(|p| p.1 as u64).min().unwrap_or(0);
        let hi = fds.iter().map(|p| p.1 as u64).max().unwrap_or(0);
        out.push(NodeTrend {
            node,
            samples: rss.len(),
            rss_mean_mib: mean,
            rss_growth_mib: rss_growth,
            rss_bound_mib: bound,
            fds_growth,
            fds_range: (lo, hi),
            ok: rss.len() >= 3 && rss_growth <= bound && fds_growth <= bounds.fds,
        });
    }
    out
}

const NODE_COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// One line of a panel: its legend, colour and (minutes, value) points.
type Line = (String, RGBColor, Vec<(f64, f64)>);

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    x_max: f64,
    lines: &[Line],
) -> DrawResult<()> {
    let y_max = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max.max(1.0), 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc(y_desc)
        .label_style(("sans-serif", 13))
        .draw()?;
    for (label, color, pts) in lines {
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if lines.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}

/// Draws RSS, fds and height per node and the commit latency p99 over time into `png`.
pub fn draw(
    png: &Path,
    title: &str,
    samples: &[Sample],
    latency: &[LatencyRow],
) -> Result<(), String> {
    load_font()?;
    let t0 = samples.iter().map(|s| s.t).min().unwrap_or(0);
    let minutes = |t: u64| t.saturating_sub(t0) as f64 / 60.0;
    let x_max = samples.iter().map(|s| minutes(s.t)).fold(0.0, f64::max);
    let nodes = samples.iter().map(|s| s.node).max().map_or(0, |m| m + 1);
    let per_node = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<Line> {
        (0..nodes)
            .map(|n| {
                let pts = samples
                    .iter()
                    .filter(|s| s.node == n)
                    .filter_map(|s| Some((minutes(s.t), f(s)?)))
                    .collect();
                (format!("node{n}"), NODE_COLORS[n % NODE_COLORS.len()], pts)
            })
            .collect()
    };
    let rss = per_node(&|s| Some(s.rss_kb? as f64 / 1024.0));
    let fds = per_node(&|s| Some(s.fds? as f64));
    let height = per_node(&|s| Some(s.height? as f64));
    let p99 = vec![(
        "p99".to_owned(),
        NODE_COLORS[3],
        latency
            .iter()
            .filter(|r| r.committed > 0)
            .map(|r| (minutes(r.t), r.p99_ms))
            .collect(),
    )];
    let root = BitMapBackend::new(png, (1200, 1400)).into_drawing_area();
    let run = || -> DrawResult<()> {
        root.fill(&WHITE)?;
        let (head, body) = root.split_vertically(40);
        head.draw(&Text::new(title.to_owned(), (15, 10), ("sans-serif", 22)))?;
        let areas = body.split_evenly((4, 1));
        panel(&areas[0], "resident set per node", "RSS, MiB", x_max, &rss)?;
        panel(
            &areas[1],
            "open file descriptors per node",
            "fds",
            x_max,
            &fds,
        )?;
        panel(
            &areas[2],
            "committed height per node",
            "height",
            x_max,
            &height,
        )?;
        panel(
            &areas[3],
            "commit latency p99 of the load, per interval",
            "ms",
            x_max,
            &p99,
        )?;
        root.present()?;
        Ok(())
    };
    run().map_err(|e| format!("{}: {e}", png.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(
        node: usize,
        pid: u32,
        rss: impl Fn(u64) -> u64,
        fds: impl Fn(u64) -> u64,
    ) -> Vec<Sample> {
        (0..300)
            .map(|i| Sample {
                t: 1_000 + i * 10,
                phase: "quiet".to_owned(),
                node,
                pid,
                rss_kb: Some(rss(i)),
                fds: Some(fds(i)),
                height: Some(i),
            })
            .collect()
    }

    const BOUNDS: Bounds = Bounds {
        skip: 1.0 / 3.0,
        rss_frac: 0.1,
        rss_min_mib: 16.0,
        fds: 4.0,
    };

    #[test]
    fn slope_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 * x as f64 + 1.0)).collect();
        assert!((slope(&pts).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(slope(&pts[..2]), None);
    }

    #[test]
    fn flat_and_noisy_passes_a_leak_fails() {
        // 200 MiB with ±8 MiB of noise: no trend.
        let flat = series(0, 7, |i| (200 * 1024) + (i % 7) * 2048, |i| 40 + i % 3);
        // +1 MiB per sample: 200 MiB over the analysed window.
        let leak = series(1, 8, |i| (200 * 1024) + i * 1024, |_| 40);
        // one fd more every 10 samples.
        let fd_leak = series(2, 9, |_| 200 * 1024, |i| 40 + i / 10);
        let all: Vec<Sample> = flat.into_iter().chain(leak).chain(fd_leak).collect();
        let t = trends(&all, BOUNDS);
        assert_eq!(t.len(), 3);
        assert!(t[0].ok, "{:?}", t[0]);
        assert!(!t[1].ok && t[1].rss_growth_mib > 150.0, "{:?}", t[1]);
        assert!(!t[2].ok && t[2].fds_growth > 15.0, "{:?}", t[2]);
    }

    #[test]
    fn a_restart_is_judged_on_the_longest_process() {
        // The first process grows and is replaced early in the window by a flat one.
        let mut s = series(0, 1, |i| 100 * 1024 + i * 4096, |_| 30);
        for x in s.iter_mut().skip(110) {
            x.pid = 2;
            x.rss_kb = Some(90 * 1024);
        }
        let t = trends(&s, BOUNDS);
        assert!(t[0].ok, "{:?}", t[0]);
    }

    #[test]
    fn only_quiet_samples_are_fitted_when_there_are_enough() {
        // Memory rises during each perturbation late in the run and is back between them.
        let mut s = series(0, 3, |_| 100 * 1024, |_| 30);
        for x in s.iter_mut().skip(200) {
            if x.t % 300 < 150 {
                x.phase = "9:kill-ringwire".to_owned();
                x.rss_kb = Some(250 * 1024);
            }
        }
        assert!(trends(&s, BOUNDS)[0].ok, "{:?}", trends(&s, BOUNDS)[0]);
        // The same bumps with no quiet samples at all are fitted as they are.
        for x in s.iter_mut() {
            x.phase = "1:pause".to_owned();
        }
        assert!(!trends(&s, BOUNDS)[0].ok);
    }

    #[test]
    fn parses_rows_and_skips_bad_ones() {
        let s = parse_samples(
            "unix_s,phase,node,pid,rss_kb,fds,height\n10,warm-up,1,42,2048,30,7\n11,x,1,0,,,\nbad\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].rss_kb, Some(2048));
        assert_eq!(s[0].phase, "warm-up");
        assert_eq!(s[1].rss_kb, None);
        let l = parse_latency("unix_s,height_max,committed,p50_ms,p99_ms\n10,5,20,300,650\n");
        assert_eq!(l[0].p99_ms, 650.0);
    }
}
