//! `ringwire node`: runs one node from a ringwire file or a CometBFT home until SIGINT or
//! SIGTERM.
//!
//! Without an application attached the node carries the ten stock channels and drains them:
//! messages are counted (metrics) and dropped, and requests are answered with their own
//! payload, so an operator can probe a channel's round trip. With `[p2p] pex` on (the default,
//! as in stock) channel 0x00 runs peer exchange instead. One log line per peer up and
//! per peer down, with the reason. Metrics (`[metrics]`) and the admin endpoint (`[admin]`)
//! run when enabled; `--metrics ADDR` and `--admin ADDR` enable them from the command line.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use metrics_util::MetricKindMask;
use ringwire::config::{AdminAddress, Config};
use ringwire::proto::conn::ChannelDescriptor;
use ringwire::router::{Channel, Direction, PeerEvent};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::{Failure, admin, run};

/// How often metrics are refreshed from the node's counters.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a shutdown may take to close connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Options of `ringwire node`.
pub(crate) struct NodeArgs {
    pub(crate) config: Option<PathBuf>,
    pub(crate) home: Option<PathBuf>,
    pub(crate) metrics: Option<String>,
    pub(crate) admin: Option<String>,
}

/// Loads the configuration named by the arguments, with the command-line overrides.
pub(crate) fn load(args: &NodeArgs) -> Result<Config, Failure> {
    let mut config = match (&args.config, &args.home) {
        (Some(file), _) => Config::load(file)?,
        (None, Some(home)) => Config::from_cometbft_home(home)?,
        (None, None) => return Err(Failure("give --config FILE or --home DIR".into())),
    };
    if let Some(m) = &args.metrics {
        config.metrics.enabled = true;
        config.metrics.listen = ringwire::config::parse_socket_addr(m)
            .map_err(|e| Failure(format!("--metrics: {e}")))?;
    }
    if let Some(a) = &args.admin {
        config.admin.enabled = true;
        config.admin.listen = a
            .parse::<AdminAddress>()
            .map_err(|e| Failure(format!("--admin: {e}")))?;
    }
    config.validate()?;
    Ok(config)
}

/// Runs the node until a signal.
pub(crate) fn run(args: NodeArgs) -> Result<(), Failure> {
    crate::logging::init("info");
    let config = load(&args)?;
    let (key, generated) = config.load_or_generate_node_key()?;
    if generated {
        tracing::info!(path = %config.node_key_path().display(), "generated a new node key");
    }
    // Signals are caught before anything starts, so an early one still stops cleanly.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure(format!("cannot catch signals: {e}")))?;

    if config.metrics.enabled {
        PrometheusBuilder::new()
            .with_http_listener(config.metrics.listen)
            // Counters and gauges of gone peers leave; the reporter keeps every other series
            // updated (histograms are the node's own and stay).
            .idle_timeout(
                MetricKindMask::COUNTER | MetricKindMask::GAUGE,
                Some(config.metrics.idle_series_timeout),
            )
            .set_buckets_for_metric(
                Matcher::Full(ringwire::metrics::MESSAGE_LATENCY_SECONDS.to_owned()),
                ringwire::metrics::LATENCY_BUCKETS,
            )
            .and_then(|b| b.install())
            .map_err(|e| Failure(format!("metrics.listen {}: {e}", config.metrics.listen)))?;
        tracing::info!(listen = %config.metrics.listen, "metrics served under /metrics");
    }

    let mut b = run::builder(&config, key)?;
    // With `[p2p] pex` on (stock's default) channel 0x00 belongs to peer exchange; the node
    // carries and drains the other stock channels.
    let drained: Vec<ChannelDescriptor> = ChannelDescriptor::stock()
        .into_iter()
        .filter(|d| !config.p2p.pex || d.id != ringwire::pex::PEX_CHANNEL)
        .collect();
    for desc in drained.iter().cloned() {
        b = b.channel(desc);
    }
    // Subscribed before the node accepts or dials, so no early peer goes unreported.
    let (node, mut events) = b
        .start_with_events()
        .map_err(|e| Failure(format!("cannot start the node: {e}")))?;
    println!(
        "node {} listening on {} (driver {})",
        node.node_id(),
        node.listen_addr()
            .map_or_else(|| "-".to_owned(), |a| a.to_string()),
        node.driver()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for desc in drained {
        let ch = node
            .open_channel(desc)
            .map_err(|e| Failure(format!("cannot open a channel: {e}")))?;
        threads.push(spawn_drain(ch, stop.clone())?);
    }
    {
        let stop2 = stop.clone();
        threads.push(thread("ringwire-events", move || {
            while !stop2.load(Ordering::Acquire) {
                match events.recv_blocking(Instant::now() + Duration::from_millis(200)) {
                    Some(PeerEvent::Up {
                        peer,
                        direction,
                        addr,
                    }) => tracing::info!(
                        peer = %peer.node_id,
                        direction = match direction {
                            Direction::Inbound => "inbound",
                            Direction::Outbound => "outbound",
                        },
                        addr = ?addr,
                        protocol = ?peer.mode,
                        "peer up"
                    ),
                    Some(PeerEvent::Down { node_id, reason }) => {
                        ringwire::metrics::record_down(&reason);
                        tracing::info!(peer = %node_id, %reason, "peer down");
                    }
                    None => {}
                }
            }
        })?);
    }
    if config.metrics.enabled {
        let node2 = node.clone();
        let stop2 = stop.clone();
        let namespace = config.metrics.namespace.clone();
        threads.push(thread("ringwire-metrics", move || {
            let mut reporter = ringwire::metrics::Reporter::new(&namespace);
            while !stop2.load(Ordering::Acquire) {
                reporter.report(&node2);
                std::thread::sleep(REPORT_INTERVAL);
            }
        })?);
    }
    let admin = if config.admin.enabled {
        Some(admin::serve(
            node.clone(),
            &config.admin.listen,
            &config.home_dir(),
        )?)
    } else {
        None
    };

    let signal = signals.forever().next();
    tracing::info!(signal = ?signal, "stopping");
    drop(admin);
    // The helper threads stop first: a closed channel would answer their receives at once.
    stop.store(true, Ordering::Release);
    node.shutdown_blocking(Instant::now() + SHUTDOWN_GRACE);
    for t in threads {
        let _ = t.join();
    }
    tracing::info!("stopped");
    Ok(())
}

fn thread(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, Failure> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| Failure(format!("cannot start a thread: {e}")))
}

/// Drains one channel: drops messages, answers requests with their payload.
fn spawn_drain(
    mut ch: Channel,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, Failure> {
    thread("ringwire-drain", move || {
        while !stop.load(Ordering::Acquire) {
            if let Some(mut msg) = ch.recv_blocking(Instant::now() + Duration::from_millis(200))
                && let Some(req) = msg.request.take()
            {
                let _ = ch.respond(req, msg.payload);
            }
        }
    })
}
