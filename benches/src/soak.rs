//! `make soak`'s samples (cometbft/localnet/e2e.sh with `DURATION`): parsing, the growth check
//! (a least-squares line through the level each node's RSS and fd count return to between
//! perturbations, after the warm-up; see [`trends`]) and the chart.
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
    /// A restarted process's own warm-up, seconds: its quiet samples this soon after its start
    /// are left out (a node that has just restarted block-syncs and fills its caches).
    pub process_warmup_s: u64,
    /// RSS may grow over the analysed window by this fraction of its mean…
    pub rss_frac: f64,
    /// …or by this many MiB, whichever is larger.
    pub rss_min_mib: f64,
    /// Open fds may grow over the analysed window by this many.
    pub fds: f64,
}

/// How a node's verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fitted {
    /// A line through the floor (lowest value) of each quiet phase after the warm-up, over all
    /// of the node's processes there.
    QuietFloors,
    /// Too few quiet phases: a line through the samples of the node's longest-running process
    /// in the window (its quiet samples where there are at least 3).
    LongestProcess,
}

/// One node's verdict.
#[derive(Debug, Clone)]
pub struct NodeTrend {
    /// The node's index.
    pub node: usize,
    /// What was fitted.
    pub fitted: Fitted,
    /// Points fitted (quiet-phase floors, or samples).
    pub samples: usize,
    /// Processes of the node the fitted points come from.
    pub processes: usize,
    /// Mean RSS over the fitted points, MiB.
    pub rss_mean_mib: f64,
    /// Fitted RSS growth over the window, MiB (slope × window).
    pub rss_growth_mib: f64,
    /// The RSS bound, MiB.
    pub rss_bound_mib: f64,
    /// Fitted fd growth over the window.
    pub fds_growth: f64,
    /// Lowest and highest fd count of the node's samples in the window.
    pub fds_range: (u64, u64),
    /// Whether both stayed within their bounds.
    pub ok: bool,
}

/// Whether a sample was taken while no perturbation was running.
fn is_quiet(s: &Sample) -> bool {
    s.phase == "quiet" || s.phase == "final"
}

/// Fits each node's RSS and fd count over the part of the run after `bounds.skip`.
///
/// What is fitted is the level memory returns to between perturbations: for each quiet phase
/// (a run of consecutive quiet samples of one process, at least `process_warmup_s` after that
/// process started), its lowest RSS and lowest fd count. A Go node's heap swings by 100 MiB and
/// more within a quiet minute (it grows to twice the live data between collections) and a
/// perturbation raises memory while it lasts (a node serving block sync to a restarted peer);
/// neither moves the floor, and a leak does: what leaked stays through every collection. The
/// floors of all the node's processes are fitted together, so a node restarted by the schedule
/// is judged over the whole window on the level each of its processes settles at (state that
/// survives a restart and grows, such as an address book, shows there); a leak inside one
/// process of a node restarted every few minutes is the concern of the nodes that are never
/// restarted, which run the same code. With fewer than 3 such phases (a short run), a line
/// goes through the samples of the node's longest-running process in the window instead.
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
        let all: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.node == node && s.pid != 0 && s.rss_kb.is_some())
            .collect();
        let mine: Vec<&Sample> = all.iter().copied().filter(|s| s.t as f64 >= from).collect();
        let lo = mine.iter().filter_map(|s| s.fds).min().unwrap_or(0);
        let hi = mine.iter().filter_map(|s| s.fds).max().unwrap_or(0);
        let floors = quiet_floors(&all, &mine, bounds.process_warmup_s);
        let (fitted, rss, fds, processes) = if floors.len() >= 3 {
            let mut pids: Vec<u32> = floors.iter().map(|f| f.pid).collect();
            pids.sort_unstable();
            pids.dedup();
            (
                Fitted::QuietFloors,
                floors.iter().map(|f| (f.t, f.rss_mib)).collect::<Vec<_>>(),
                floors.iter().map(|f| (f.t, f.fds)).collect::<Vec<_>>(),
                pids.len(),
            )
        } else {
            let (rss, fds) = longest_process(&mine);
            (Fitted::LongestProcess, rss, fds, 1)
        };
        let span = rss.last().map_or(0.0, |l| l.0) - rss.first().map_or(0.0, |f| f.0);
        let mean = rss.iter().map(|p| p.1).sum::<f64>() / rss.len().max(1) as f64;
        let rss_growth = slope(&rss).unwrap_or(0.0) * span;
        let fds_growth = slope(&fds).unwrap_or(0.0) * span;
        let bound = (mean * bounds.rss_frac).max(bounds.rss_min_mib);
        out.push(NodeTrend {
            node,
            fitted,
            samples: rss.len(),
            processes,
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

/// One quiet phase's floor.
struct Floor {
    pid: u32,
    /// The middle of the phase, seconds since the epoch.
    t: f64,
    rss_mib: f64,
    fds: f64,
}

/// The floors of the quiet phases among `window` (one node's samples in time order), leaving
/// out each process's first `warmup_s` seconds (its start is its first sample in `all`). A
/// phase needs 2 samples: one sample is no floor.
fn quiet_floors(all: &[&Sample], window: &[&Sample], warmup_s: u64) -> Vec<Floor> {
    let started = |pid: u32| all.iter().find(|s| s.pid == pid).map_or(0, |s| s.t);
    let mut phases: Vec<Vec<&Sample>> = Vec::new();
    let mut open = false;
    for s in window {
        if !is_quiet(s) || s.t < started(s.pid) + warmup_s {
            open = false;
            continue;
        }
        match phases.last_mut() {
            Some(p) if open && p[0].pid == s.pid => p.push(s),
            _ => phases.push(vec![s]),
        }
        open = true;
    }
    phases
        .into_iter()
        .filter(|p| p.len() >= 2)
        .map(|p| Floor {
            pid: p[0].pid,
            t: (p[0].t + p[p.len() - 1].t) as f64 / 2.0,
            rss_mib: p.iter().filter_map(|s| s.rss_kb).min().unwrap_or(0) as f64 / 1024.0,
            fds: p.iter().filter_map(|s| s.fds).min().unwrap_or(0) as f64,
        })
        .collect()
}

/// Points to fit: (seconds since the epoch, value).
type Series = Vec<(f64, f64)>;

/// (time, RSS MiB) and (time, fds) of the longest-running process among `window`: its quiet
/// samples where there are at least 3, else all of them.
fn longest_process(window: &[&Sample]) -> (Series, Series) {
    let mut by_pid: Vec<(u32, usize)> = Vec::new();
    for s in window {
        match by_pid.iter_mut().find(|(p, _)| *p == s.pid) {
            Some(e) => e.1 += 1,
            None => by_pid.push((s.pid, 1)),
        }
    }
    let Some(&(pid, _)) = by_pid.iter().max_by_key(|e| e.1) else {
        return (Vec::new(), Vec::new());
    };
    let mut picked: Vec<&&Sample> = window.iter().filter(|s| s.pid == pid).collect();
    if picked.iter().filter(|s| is_quiet(s)).count() >= 3 {
        picked.retain(|s| is_quiet(s));
    }
    let rss = picked
        .iter()
        .filter_map(|s| Some((s.t as f64, s.rss_kb? as f64 / 1024.0)))
        .collect();
    let fds = picked
        .iter()
        .filter_map(|s| Some((s.t as f64, s.fds? as f64)))
        .collect();
    (rss, fds)
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
        process_warmup_s: 120,
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

    /// An hour sampled every 10 s: quiet phases of 60 s between 60 s perturbations, RSS as
    /// `rss(sample index)` MiB, over pids from `pid(index)`.
    fn scheduled(rss: impl Fn(u64) -> u64, pid: impl Fn(u64) -> u32) -> Vec<Sample> {
        (0..360)
            .map(|i| Sample {
                t: 1_000 + i * 10,
                phase: if (i / 6) % 2 == 0 {
                    "quiet".to_owned()
                } else {
                    format!("{}:pause", i / 12 + 1)
                },
                node: 0,
                pid: pid(i),
                rss_kb: Some(rss(i) * 1024),
                fds: Some(40),
                height: Some(i),
            })
            .collect()
    }

    #[test]
    fn heap_swings_within_quiet_phases_are_no_growth_and_a_rising_floor_is() {
        // A collected heap: 150 MiB, doubling towards 300 before each collection, in no
        // particular phase; the late swings reach higher than the early ones.
        let swings = |i: u64| 150 + if i % 5 == 4 { 100 + i / 3 } else { 0 };
        let t = trends(&scheduled(swings, |_| 7), BOUNDS);
        assert_eq!(t[0].fitted, Fitted::QuietFloors);
        assert!(t[0].ok, "{:?}", t[0]);
        // The same swings over a floor that rises 1 MiB a minute: 40 MiB over the window.
        let leak = |i: u64| swings(i) + i / 6;
        let t = trends(&scheduled(leak, |_| 7), BOUNDS);
        assert!(!t[0].ok && t[0].rss_growth_mib > 30.0, "{:?}", t[0]);
    }

    #[test]
    fn a_node_restarted_every_few_minutes_is_judged_on_the_floors_of_all_its_processes() {
        // A new process every 7 minutes: it starts at 110 MiB, settles at 150 after its own
        // warm-up, and its last quiet phase before the next restart catches a 300 MiB swing
        // (the shape that a fit through one such process calls +130 MiB of growth).
        let pid = |i: u64| 100 + (i / 42) as u32;
        let rss = |i: u64| match i % 42 {
            0..=8 => 110 + (i % 42) * 4,
            36..=41 if !i.is_multiple_of(3) => 300,
            _ => 150,
        };
        let t = trends(&scheduled(rss, pid), BOUNDS);
        assert_eq!(t[0].fitted, Fitted::QuietFloors);
        assert!(t[0].processes > 3, "{:?}", t[0]);
        assert!(t[0].ok && t[0].rss_growth_mib.abs() < 5.0, "{:?}", t[0]);
        // Each new process settling 10 MiB higher than the last is growth.
        let rising = |i: u64| rss(i) + (i / 42) * 10;
        assert!(!trends(&scheduled(rising, pid), BOUNDS)[0].ok);
    }

    #[test]
    fn a_quiet_phase_soon_after_a_restart_is_left_out() {
        // A process started late in the window ramps from 50 MiB for its first 2 minutes.
        let pid = |i: u64| if i < 300 { 1 } else { 2 };
        let rss = |i: u64| {
            if (300..312).contains(&i) {
                50 + (i - 300) * 8
            } else {
                150
            }
        };
        let t = trends(&scheduled(rss, pid), BOUNDS);
        assert!(t[0].ok && t[0].rss_growth_mib.abs() < 1.0, "{:?}", t[0]);
        let no_warmup = Bounds {
            process_warmup_s: 0,
            ..BOUNDS
        };
        let t = trends(&scheduled(rss, pid), no_warmup);
        assert!(t[0].rss_growth_mib < -1.0, "{:?}", t[0]);
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
