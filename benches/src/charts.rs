//! PNG charts drawn with `plotters`: throughput bars per case and latency percentile curves.
//!
//! Text needs a TrueType font; the first of [`FONT_CANDIDATES`] (or `$RINGWIRE_BENCH_FONT`) that
//! exists is loaded at run time. Without one the charts are skipped and the report says so.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plan::Scenario;
use crate::results::{CaseResult, Results, RowStatus, ScenarioResult};

/// Fonts tried in order.
pub const FONT_CANDIDATES: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
];

const FONT: &str = "sans-serif";

/// Loads a font for chart text; the error says none was found.
pub fn load_font() -> Result<String, String> {
    let env = std::env::var("RINGWIRE_BENCH_FONT").ok();
    for path in env.iter().map(String::as_str).chain(FONT_CANDIDATES) {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                return Ok(path.to_owned());
            }
        }
    }
    Err(format!(
        "charts skipped: no TrueType font found (tried {}; set RINGWIRE_BENCH_FONT)",
        FONT_CANDIDATES.join(", ")
    ))
}

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

const COLORS: [RGBColor; 10] = [
    RGBColor(90, 90, 90),
    RGBColor(150, 150, 150),
    RGBColor(190, 190, 190),
    RGBColor(214, 96, 77),
    RGBColor(244, 165, 130),
    RGBColor(118, 42, 131),
    RGBColor(33, 102, 172),
    RGBColor(67, 147, 195),
    RGBColor(146, 197, 222),
    RGBColor(27, 120, 55),
];

fn color_of(system: crate::system::System) -> RGBColor {
    let i = crate::system::System::ALL
        .iter()
        .position(|&s| s == system)
        .unwrap_or(0);
    COLORS[i % COLORS.len()]
}

fn bars(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    case: &CaseResult,
) -> DrawResult<()> {
    let rows: Vec<_> = case
        .rows
        .iter()
        .filter(|r| r.status == RowStatus::Measured)
        .filter_map(|r| r.metrics.get(&case.primary).map(|s| (r, s)))
        .collect();
    let n = rows.len().max(1) as i32;
    let top = rows
        .iter()
        .map(|(_, s)| s.max)
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.3;
    let labels: Vec<String> = rows.iter().map(|(r, _)| r.label.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(230)
        // `(a..b).into_segmented()` has a segment for every value of a..=b.
        .build_cartesian_2d(0f64..top, (0..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(case.primary.as_str())
        .y_labels(n as usize)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style((FONT, 14))
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, (r, s))| {
        let i = i as i32;
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (s.median, SegmentValue::Exact(i + 1)),
            ],
            color_of(r.system).filled(),
        );
        bar.set_margin(8, 8, 0, 0);
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, (_, s))| {
        PathElement::new(
            vec![
                (s.min, SegmentValue::CenterOf(i as i32)),
                (s.max, SegmentValue::CenterOf(i as i32)),
            ],
            BLACK.stroke_width(2),
        )
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, (_, s))| {
        Text::new(
            format!(" {}", crate::report::fmt_num(s.median)),
            (s.max, SegmentValue::CenterOf(i as i32)),
            (FONT, 14),
        )
    }))?;
    Ok(())
}

/// x position of quantile `q` on a "nines" axis: 0.9 → 1, 0.99 → 2, …
fn nines(q: f64) -> f64 {
    -(1.0 - q).max(1e-9).log10()
}

fn percentile_label(x: f64) -> String {
    if x < 0.5 {
        return "p0".to_owned();
    }
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("p{s}")
}

fn curves(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    legend: &DrawingArea<BitMapBackend<'_>, Shift>,
    scenario: &ScenarioResult,
) -> DrawResult<()> {
    let mut series = Vec::new();
    for case in &scenario.cases {
        for r in case.rows.iter().filter(|r| !r.curve.is_empty()) {
            series.push((
                format!("{} ({})", r.label, case.condition),
                r.system,
                case.condition == "idle",
                &r.curve,
            ));
        }
    }
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.3.iter().map(|p| p.1))
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if series.is_empty() {
        (1.0, 10.0)
    } else {
        (lo.max(0.1) * 0.8, hi * 1.5)
    };
    let mut chart = ChartBuilder::on(area)
        .caption("S3 round-trip time by percentile", (FONT, 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..5.0, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile (curves start at p50)")
        .y_desc("round trip, µs")
        .x_labels(6)
        .x_label_formatter(&|x| percentile_label(*x))
        .label_style((FONT, 14))
        .draw()?;
    let mut entries = Vec::new();
    for (label, system, idle, curve) in series {
        let color = color_of(system);
        let width = if idle { 1 } else { 3 };
        let pts: Vec<(f64, f64)> = curve.iter().map(|&(q, us)| (nines(q), us)).collect();
        chart.draw_series(LineSeries::new(pts, color.stroke_width(width)))?;
        entries.push((label, color, width));
    }
    // The legend gets its own panel, so it never hides a curve.
    for (i, (label, color, width)) in entries.into_iter().enumerate() {
        let y = 60 + 24 * i as i32;
        legend.draw(&PathElement::new(
            vec![(5, y), (35, y)],
            color.stroke_width(width),
        ))?;
        legend.draw(&Text::new(label, (42, y - 8), (FONT, 13)))?;
    }
    Ok(())
}

/// Draws every chart into `dir`; returns (scenario, file name) pairs, or why nothing was drawn.
pub fn draw_all(results: &Results, dir: &Path) -> Result<Vec<(Scenario, String)>, String> {
    load_font()?;
    let mut written = Vec::new();
    for s in &results.scenarios {
        if s.skipped.is_some() {
            continue;
        }
        let sid = s.id.id().to_ascii_lowercase();
        if s.id == Scenario::S3 {
            let has = s
                .cases
                .iter()
                .any(|c| c.rows.iter().any(|r| !r.curve.is_empty()));
            if has {
                let name = format!("{sid}-latency.png");
                let path = dir.join(&name);
                let root = BitMapBackend::new(&path, (1200, 600)).into_drawing_area();
                root.fill(&WHITE).map_err(|e| e.to_string())?;
                let (plot, legend) = root.split_horizontally(860);
                curves(&plot, &legend, s).map_err(|e| format!("{name}: {e}"))?;
                root.present().map_err(|e| format!("{name}: {e}"))?;
                written.push((s.id, name));
            }
            continue;
        }
        for case in &s.cases {
            let measured = case
                .rows
                .iter()
                .filter(|r| r.status == RowStatus::Measured)
                .count();
            if measured == 0 {
                continue;
            }
            let name = if s.cases.len() == 1 {
                format!("{sid}.png")
            } else {
                format!("{sid}-{}.png", slug(&case.condition))
            };
            let path = dir.join(&name);
            let height = 90 + 55 * measured as u32;
            let root = BitMapBackend::new(&path, (1000, height.max(220))).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let title = format!(
                "{} {} — {} (median, whiskers min–max)",
                s.id.id(),
                case.condition,
                case.primary
            );
            bars(&root, &title, case).map_err(|e| format!("{name}: {e}"))?;
            root.present().map_err(|e| format!("{name}: {e}"))?;
            written.push((s.id, name));
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_axis() {
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(percentile_label(2.0), "p99");
        assert_eq!(percentile_label(3.0), "p99.9");
        assert_eq!(slug("1000 peers"), "1000-peers");
    }
}
