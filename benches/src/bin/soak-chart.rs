//! `soak-chart`: the chart, table and growth check of `make soak` (see
//! `ringwire_benches::soak`). Exits 1 when a node's RSS or fd count trends upwards after the
//! warm-up.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use ringwire_benches::soak::{self, Bounds, Fitted};

#[derive(Parser, Debug)]
#[command(
    name = "soak-chart",
    about = "chart and growth check of make soak's samples"
)]
struct Cli {
    /// The samples CSV (unix_s,phase,node,pid,rss_kb,fds,height).
    #[arg(long)]
    samples: PathBuf,
    /// The load's latency CSV (localnet-load -series); optional.
    #[arg(long)]
    latency: Option<PathBuf>,
    /// The chart to write.
    #[arg(long)]
    png: PathBuf,
    /// The Markdown table to write.
    #[arg(long)]
    md: PathBuf,
    /// The chart's title and the command named in the table.
    #[arg(long, default_value = "make soak")]
    title: String,
    /// The part of the run left out as warm-up.
    #[arg(long, default_value_t = 1.0 / 3.0)]
    skip: f64,
    /// A restarted process's own warm-up, seconds: its quiet samples this soon after its start
    /// are left out.
    #[arg(long, default_value_t = 120)]
    process_warmup_s: u64,
    /// RSS may grow over the analysed window by this fraction of its mean…
    #[arg(long, default_value_t = 0.25)]
    rss_frac: f64,
    /// …or by this many MiB, whichever is larger.
    #[arg(long, default_value_t = 32.0)]
    rss_min_mib: f64,
    /// Open fds may grow over the analysed window by this many.
    #[arg(long, default_value_t = 4.0)]
    fds: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let samples = match std::fs::read_to_string(&cli.samples) {
        Ok(t) => soak::parse_samples(&t),
        Err(e) => {
            eprintln!("soak-chart: {}: {e}", cli.samples.display());
            return ExitCode::from(2);
        }
    };
    let latency = cli
        .latency
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| soak::parse_latency(&t))
        .unwrap_or_default();
    let bounds = Bounds {
        skip: cli.skip,
        process_warmup_s: cli.process_warmup_s,
        rss_frac: cli.rss_frac,
        rss_min_mib: cli.rss_min_mib,
        fds: cli.fds,
    };
    let trends = soak::trends(&samples, bounds);
    let chart_note = match soak::draw(&cli.png, &cli.title, &samples, &latency) {
        Ok(()) => format!("Chart: `{}`.", cli.png.display()),
        Err(e) => {
            eprintln!("soak-chart: {e}");
            format!("No chart: {e}.")
        }
    };
    let span_min = match (
        samples.iter().map(|s| s.t).min(),
        samples.iter().map(|s| s.t).max(),
    ) {
        (Some(a), Some(b)) => (b - a) as f64 / 60.0,
        _ => 0.0,
    };
    let p99s: Vec<f64> = latency
        .iter()
        .filter(|r| r.committed > 0)
        .map(|r| r.p99_ms)
        .collect();
    let median_p99 = {
        let mut v = p99s.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let mut md = format!(
        "# Soak: {}\n\n{span_min:.1} minutes sampled; the first {:.0} % is warm-up. For each node, a \
         least-squares line goes through the level its RSS and open fds return to between \
         perturbations over the rest: the lowest value of each quiet phase (at least 2 samples, \
         {} s or more after the node's process started), over all its processes there; a node \
         with fewer than 3 such phases is fitted on its longest-running process's samples. The \
         line must rise by at most max({:.0} % of the mean, {} MiB) and {} fds over that window. \
         Commit latency p99 per sampling interval: median {median_p99:.0} ms over {} intervals. \
         {chart_note}\n\n\
         | node | fitted | points (processes) | RSS mean MiB | RSS growth over window MiB (bound) | fds min–max | fd growth | verdict |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        cli.title,
        cli.skip * 100.0,
        cli.process_warmup_s,
        cli.rss_frac * 100.0,
        cli.rss_min_mib,
        cli.fds,
        p99s.len(),
    );
    let mut ok = !trends.is_empty();
    for t in &trends {
        ok &= t.ok;
        md.push_str(&format!(
            "| node{} | {} | {} ({}) | {:.0} | {:+.1} ({:.0}) | {}–{} | {:+.1} | {} |\n",
            t.node,
            match t.fitted {
                Fitted::QuietFloors => "quiet-phase floors",
                Fitted::LongestProcess => "longest process",
            },
            t.samples,
            t.processes,
            t.rss_mean_mib,
            t.rss_growth_mib,
            t.rss_bound_mib,
            t.fds_range.0,
            t.fds_range.1,
            t.fds_growth,
            if t.ok { "no growth" } else { "GROWS" }
        ));
    }
    print!("{md}");
    if let Err(e) = std::fs::write(&cli.md, &md) {
        eprintln!("soak-chart: {}: {e}", cli.md.display());
        return ExitCode::from(2);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "soak-chart: a node's RSS or fds trend upwards after the warm-up (or no samples)"
        );
        ExitCode::FAILURE
    }
}
