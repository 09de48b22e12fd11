//! Runs the planned scenarios: every system of a case in turn, the order rotated each
//! repetition so that drift on a shared machine hits all systems alike.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hdrhistogram::Histogram;

use crate::child::Workload;
use crate::netns::{self, ShapedLink};
use crate::plan::{Case, Params, Scenario, cases};
use crate::results::{CaseResult, RowResult, RowStatus, ScenarioResult, metric};
use crate::runner::{Measurement, Placement, measure};
use crate::s9;
use crate::stats::{self, Stat};
use crate::system::{Availability, Driver, System};

/// S6 caps the link at this rate.
pub const S6_RATE_MBIT: u32 = 100;

/// The systems a smoke run measures: the two anchors that prove the plumbing end to end and
/// one ringwire row that proves the engine's children work.
pub const SMOKE_SYSTEMS: [System; 3] =
    [System::RawTcp, System::MconnLifted, System::RingwireIoUring];

/// What the suite needs to run.
pub struct Suite {
    /// Mode parameters.
    pub params: Params,
    /// One driver per system.
    pub drivers: Vec<Box<dyn Driver>>,
    /// Scratch directory for samples files.
    pub scratch: PathBuf,
    /// Restricts the systems run (from `--systems`); empty means all.
    pub only: Vec<System>,
}

/// The metric a case's ratios use, and whether larger is better.
fn primary(workload: Workload, size: usize) -> (&'static str, bool) {
    match workload {
        Workload::Bulk if size >= 4096 => (metric::MB_S, true),
        Workload::Bulk => (metric::MSGS_S, true),
        Workload::Latency => (metric::P99_US, false),
        Workload::Fanout => (metric::DELIVERED_S, true),
        Workload::Handshake => (metric::HANDSHAKES_S, true),
        Workload::S9 => (metric::VOTE_AGE_P99_MS, false),
    }
}

/// Figures of one measurement.
pub fn figures(case: &Case, m: &Measurement) -> Result<Vec<(&'static str, f64)>, String> {
    let spec = &case.spec;
    let rate = |r: &crate::child::ChildReport, what: &str| -> Result<f64, String> {
        if r.window_secs > 0.0 {
            Ok(r.window_messages as f64 / r.window_secs)
        } else {
            Err(format!("{what} reported no window"))
        }
    };
    let cpu = m.sender_cpu_s + m.receiver_cpu_s;
    Ok(match spec.workload {
        Workload::Bulk => {
            let r = &m.receiver;
            let msgs = rate(r, "receiver")?;
            let mut f = vec![
                (metric::MB_S, r.window_bytes as f64 / r.window_secs / 1e6),
                (metric::MSGS_S, msgs),
            ];
            if r.total_bytes > 0 {
                f.push((metric::CPU_S_PER_GB, cpu / (r.total_bytes as f64 / 1e9)));
            }
            f
        }
        Workload::Latency => {
            if m.samples_ns.is_empty() {
                return Err("no round trips measured".to_owned());
            }
            let mut h = stats::latency_histogram();
            stats::record_all(&mut h, &m.samples_ns);
            vec![
                (metric::P50_US, stats::quantile_us(&h, 0.5)),
                (metric::P99_US, stats::quantile_us(&h, 0.99)),
                (metric::P999_US, stats::quantile_us(&h, 0.999)),
                (metric::ROUND_TRIPS, m.samples_ns.len() as f64),
            ]
        }
        Workload::Fanout => {
            let s = &m.sender;
            let mut f = vec![(metric::DELIVERED_S, rate(&m.receiver, "receiver")?)];
            if s.connections > 0 && s.rss_kib > 0 {
                let added = s.rss_kib.saturating_sub(s.rss_base_kib) as f64;
                f.push((metric::RSS_PER_PEER_KIB, added / s.connections as f64));
            }
            f
        }
        Workload::Handshake => {
            let per_s = rate(&m.sender, "sender")?;
            let active = (spec.warmup + spec.duration).as_secs_f64();
            let mut f = vec![(metric::HANDSHAKES_S, per_s)];
            if cpu > 0.0 {
                // Rate divided by the average number of cores both processes kept busy.
                f.push((metric::HANDSHAKES_CPU_S, per_s / (cpu / active)));
            }
            f
        }
        Workload::S9 => {
            let mesh = m.mesh.as_ref().ok_or("the mesh printed no summary")?;
            if mesh.nodes != spec.nodes {
                return Err(format!(
                    "the mesh ran {} nodes, {} were asked for",
                    mesh.nodes, spec.nodes
                ));
            }
            s9::figures(mesh)
        }
    })
}

impl Suite {
    fn runs(&self, system: System) -> bool {
        (self.only.is_empty() || self.only.contains(&system))
            && (!self.params.anchors_only || SMOKE_SYSTEMS.contains(&system))
    }

    /// Runs every planned scenario; `log` receives progress lines.
    pub fn run(&self, log: &mut dyn FnMut(&str)) -> Vec<ScenarioResult> {
        self.params
            .scenarios
            .iter()
            .map(|&s| self.run_scenario(s, log))
            .collect()
    }

    fn run_scenario(&self, scenario: Scenario, log: &mut dyn FnMut(&str)) -> ScenarioResult {
        let mut result = ScenarioResult {
            id: scenario,
            title: scenario.title().to_owned(),
            skipped: None,
            notes: notes(scenario),
            cases: Vec::new(),
        };
        let mut placement = Placement::default();
        let mut listen = None;
        let _link = if scenario == Scenario::S6 {
            match netns::check().and_then(|()| ShapedLink::create(S6_RATE_MBIT)) {
                Ok(link) => {
                    placement = link.placement();
                    listen = Some(link.listen_addr());
                    Some(link)
                }
                Err(why) => {
                    log(&why);
                    result.skipped = Some(why);
                    None
                }
            }
        } else {
            None
        };
        for mut case in cases(scenario, &self.params) {
            case.spec.listen.clone_from(&listen);
            let skipped = result.skipped.clone();
            let case_result = self.run_case(scenario, &case, &placement, skipped, log);
            result.cases.push(case_result);
        }
        result
    }

    fn run_case(
        &self,
        scenario: Scenario,
        case: &Case,
        placement: &Placement,
        skipped: Option<String>,
        log: &mut dyn FnMut(&str),
    ) -> CaseResult {
        let (primary, higher_is_better) = primary(case.spec.workload, case.spec.size);
        let mut rows: Vec<RowResult> = Vec::new();
        let mut active: Vec<(usize, &dyn Driver)> = Vec::new();
        for d in &self.drivers {
            let system = d.system();
            if !system.applies_to(scenario) {
                continue;
            }
            // A system this run leaves out is not asked for its availability, which may mean
            // building its program (the Go rows).
            let availability = if self.runs(system) {
                d.availability(scenario)
            } else {
                Availability::Ready
            };
            let status = match (availability, &skipped) {
                (Availability::Pending(why), _) => RowStatus::Pending(why),
                (Availability::Ready, Some(why)) => RowStatus::Skipped(why.clone()),
                (Availability::Ready, None) if !self.runs(system) => {
                    RowStatus::Skipped(format!("not run in {:?} mode", self.params.mode))
                }
                (Availability::Ready, None) => {
                    active.push((rows.len(), d.as_ref()));
                    RowStatus::Failed("no repetition succeeded".to_owned())
                }
            };
            rows.push(RowResult {
                system,
                label: system.label().to_owned(),
                status,
                metrics: BTreeMap::new(),
                curve: Vec::new(),
                errors: Vec::new(),
                goal: None,
            });
        }
        let mut values: Vec<BTreeMap<&'static str, Vec<f64>>> = vec![BTreeMap::new(); rows.len()];
        let mut hists: Vec<Option<Histogram<u64>>> = vec![None; rows.len()];
        let reps = self.params.reps;
        for rep in 0..reps {
            let n = active.len();
            for k in 0..n {
                let (row, driver) = active[(k + rep) % n];
                let label = driver.system().label();
                let tag = format!(
                    "[{} {}] {}/{} {label}",
                    scenario.id(),
                    case.condition,
                    rep + 1,
                    reps
                );
                match measure(driver, &case.spec, placement, &self.scratch)
                    .and_then(|m| figures(case, &m).map(|f| (m, f)))
                {
                    Ok((m, figs)) => {
                        let main = figs
                            .iter()
                            .find(|(k, _)| *k == primary)
                            .map_or(0.0, |f| f.1);
                        log(&format!("{tag}: {main:.1} {primary}"));
                        for (k, v) in figs {
                            values[row].entry(k).or_default().push(v);
                        }
                        if !m.samples_ns.is_empty() {
                            let h = hists[row].get_or_insert_with(stats::latency_histogram);
                            stats::record_all(h, &m.samples_ns);
                        }
                    }
                    Err(e) => {
                        log(&format!("{tag}: FAILED: {e}"));
                        rows[row].errors.push(e);
                    }
                }
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            if let RowStatus::Failed(_) = row.status {
                if values[i].is_empty() {
                    row.status = RowStatus::Failed(
                        row.errors
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "no repetition".to_owned()),
                    );
                } else {
                    row.status = RowStatus::Measured;
                }
            }
            for (k, v) in &values[i] {
                if let Some(s) = Stat::of(v) {
                    row.metrics.insert((*k).to_owned(), s);
                }
            }
            if let Some(h) = &hists[i] {
                row.curve = stats::percentile_curve(h);
            }
            if scenario == Scenario::S9 && case.spec.nodes == s9::GOAL_NODES {
                row.goal = s9::goal(row);
            }
        }
        CaseResult {
            condition: case.condition.clone(),
            primary: primary.to_owned(),
            higher_is_better,
            spec: case.spec.clone(),
            rows,
        }
    }
}

/// Method notes shown under each scenario.
fn notes(scenario: Scenario) -> Vec<String> {
    let s = |x: &str| x.to_owned();
    match scenario {
        Scenario::S1 | Scenario::S2 => vec![
            s(
                "The receiver times a window that opens after the warm-up following its first message; \
               MB/s and msgs/s count payload bytes and messages delivered inside it.",
            ),
            s(
                "CPU-s/GB: user + system time of both processes over their whole life (getrusage of \
               the reaped children) divided by the payload bytes the receiver got in that life.",
            ),
            s(
                "Raw TCP frames are a u32 length and the payload; the batching sender writes up to \
               64 KiB of whole frames per write(2), the 1 msg/syscall variant one frame per write.",
            ),
            s(
                "CometBFT lp2p (QUIC over UDP loopback): every Peer.Send opens a QUIC stream, \
               writes one length-prefixed protobuf (abci RequestEcho carrying the payload) and \
               closes it; 16 goroutines call Send at once; resource manager off, 64–128 reactor \
               workers (the maxed-out settings of lp2p/bench_test.go).",
            ),
        ],
        Scenario::S3 => vec![
            s(
                "The requester sends a 256-byte request and waits for the echo; round trips are timed \
               in the requester (closed loop, one outstanding request).",
            ),
            s(
                "Loaded: a second thread/goroutine keeps a low-priority channel saturated with 64 KiB \
               messages in the same direction as the requests.",
            ),
            s(
                "Raw TCP gives each channel its own connection (the best a transport can do); \
               raw TCP 1 conn interleaved puts requests and load frames on one connection with a \
               channel byte, so a request queues behind load already in the socket buffers.",
            ),
            s(
                "MConnection: requests on channel 0x20 (priority 10), load on 0x21 (priority 1). \
               ringwire: requests on channel 0x41 (priority 10), load on 0x42 (priority 1) of \
               the same connection; the load keeps its channel's send queue full (4 MiB). \
               Ratios on p99; lower is better, so a ratio below 1 beats the anchor.",
            ),
            s(
                "CometBFT lp2p: requests on 0x20 (priority 10), load on 0x21 (priority 1), each \
               message a QUIC stream of its own on one connection, the load from 16 goroutines; \
               the receiving Switch orders deliveries to the reactor by channel priority.",
            ),
        ],
        Scenario::S4 => vec![s(
            "The broadcaster writes every 1 KiB message to every peer; one receiver process plays \
               all the peers and counts deliveries. RSS KiB/peer is the broadcaster's VmRSS with \
               all peers connected minus before dialling, divided by the peer count. \
               ringwire: the hub node broadcasts on one channel (64-message queue per peer, \
               best effort per peer) and waits a little whenever the node counts fan-out drops; \
               the peers are epoll nodes with one shard each in the receiver process; the \
               io_uring hub reads through a shard-wide pool of 256 provided buffers.",
        )],
        Scenario::S5 => vec![s(
            "Two Go processes (bindings-go/cmd/ringwire-bench-go) running S1 (64 KiB), S2 (256 B) \
               and 4 KiB messages through the C ABI: the sender hands the library 256 envelopes per call (SendBatch), the \
               receiver drains batches (ReceiveBatchNext, one call per batch). The io_uring and \
               epoll rows are the Rust engine on the same workload in the same run; Go/Rust is \
               the ratio of the Go row to them.",
        )],
        Scenario::S6 => vec![s(
            "Sender and receiver run in two network namespaces joined by a veth pair, both ends \
               capped with tc htb at 100 Mbit/s. Raw TCP shows the cap with nothing compressed, \
               so × raw TCP is the ratio to compression off; ringwire rows run encrypted with \
               zstd compression on for the channel (Compression::Auto).",
        )],
        Scenario::S7 => vec![s(
            "One dialer at a time: connect, complete the handshake, close (SO_LINGER 0). Raw TCP \
               is the three-way handshake; MConnection is TCP plus the stock SecretConnection \
               handshake (X25519, ed25519 signatures); ringwire dials until the peer is up \
               (TCP, SecretConnection, NodeInfo exchange, admission) and disconnects, eight \
               local identities taking turns. CometBFT lp2p is host.Connect (QUIC with TLS 1.3 \
               and libp2p peer IDs, then the identify exchange Connect waits for) and closing the \
               connection, all dials from one identity and one UDP socket. handshakes/CPU-s \
               divides the rate by the average number of cores both processes kept busy.",
        )],
        Scenario::S9 => vec![
            s(
                "One process per measurement: N nodes fully meshed over loopback, each \
               broadcasting 1,000 votes/s of 200 B (highest priority) and 20 block parts/s of \
               64 KiB (lowest priority) and sending 100 requests/s of 64 B (priority between), \
               to its peers in turn, answered with 1 KiB; one request outstanding per node, \
               given up after 2 s, so a node issues fewer when answers are slow. Figures cover \
               the whole traffic period (no warm-up; the mesh is up before it starts).",
            ),
            s(
                "Age: from the send call to the receiving application, on one clock (one \
               process); a request's age is taken when the serving node gets it. Requests in \
               deadline counts answers back within 2 s; its % is taken per repetition. Each \
               column is the median over the repetitions on its own.",
            ),
            s(
                "ringwire rows: `ringwire testnet --s9 --json` (one shard per node), votes on \
               channel 0x22 with a 300 ms delivery deadline, block parts on 0x21 with 1 s, \
               requests on 0x40 (request/response with a 2 s deadline). Drops: expired before \
               send / before delivery (deadline passed), fanout lagging (broadcast copies \
               skipped for a far-behind peer), refused by connection; send errors are sends \
               that found no room within 100 ms and requests that failed.",
            ),
            s(
                "MConnection rows: `interop/cmd/mconnbench run --scenario=s9`, stock CometBFT \
               MConnection over SecretConnection between N in-process nodes, the same mix, \
               pacing and channel ids, priorities votes 10, requests 5, block parts 1, stock \
               send queues (100, 1000, 100 messages); requests and answers are messages with \
               an id on channel 0x40. No delivery deadlines: whatever was queued is delivered, \
               however old. Broadcasts and answers use TrySend; send queue full counts the \
               copies it refused.",
            ),
            s(
                "The goal is the io_uring row's; the goal column checks every row of the \
               32-node table on its medians. On a small shared machine this scenario is an \
               overload by design: its figures move with whatever else runs.",
            ),
        ],
    }
}
