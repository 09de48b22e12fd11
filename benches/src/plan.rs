//! Scenarios S1–S7 and S9, the run modes and the parameters each mode gives them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::child::{Load, Payload, Workload};

/// A scenario of the harness (the table in `benches/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scenario {
    /// Bulk: 64 KiB messages, one connection.
    S1,
    /// Small: 256-byte messages, one connection.
    S2,
    /// Latency: 256-byte request/response on a high-priority channel, idle and loaded.
    S3,
    /// Fan-out: one node broadcasts 1 KiB messages to 100 and 1,000 peers.
    S4,
    /// Go: S1, S2 and 4 KiB messages through bindings-go.
    S5,
    /// Compression over a 100 Mbit/s shaped veth between network namespaces.
    S6,
    /// Handshakes per second.
    S7,
    /// Overload without stale buildup: N nodes in one process, fully meshed, consensus-like
    /// mix past what the machine carries (one process per measurement, not a pair).
    S9,
}

impl Scenario {
    /// All scenarios in order.
    pub const ALL: [Self; 8] = [
        Self::S1,
        Self::S2,
        Self::S3,
        Self::S4,
        Self::S5,
        Self::S6,
        Self::S7,
        Self::S9,
    ];

    /// "S1" … "S7", "S9".
    pub fn id(self) -> &'static str {
        match self {
            Self::S1 => "S1",
            Self::S2 => "S2",
            Self::S3 => "S3",
            Self::S4 => "S4",
            Self::S5 => "S5",
            Self::S6 => "S6",
            Self::S7 => "S7",
            Self::S9 => "S9",
        }
    }

    /// One-line description for headings.
    pub fn title(self) -> &'static str {
        match self {
            Self::S1 => "bulk: 64 KiB messages, one connection, two processes",
            Self::S2 => "small: 256-byte messages, one connection",
            Self::S3 => {
                "latency: 256-byte request/response on a high-priority channel, idle and while a \
                 low-priority channel is saturated with 64 KiB messages"
            }
            Self::S4 => "fan-out: one node broadcasts 1 KiB messages to N connected peers",
            Self::S5 => "Go: S1, S2 and 4 KiB messages through bindings-go",
            Self::S6 => {
                "compression: two namespaces over a veth capped at 100 Mbit/s (tc htb), \
                 compressible and random payloads"
            }
            Self::S7 => "handshakes: new connections per second until established",
            Self::S9 => {
                "overload without stale buildup: N nodes in one process, fully meshed, each \
                 broadcasting 1,000 votes/s (200 B) and 20 block parts/s (64 KiB) and sending \
                 100 requests/s (64 B, answered with 1 KiB, 2 s deadline)"
            }
        }
    }

    /// Parses "s1" / "S1".
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.id().eq_ignore_ascii_case(s.trim()))
    }
}

/// How long and how often.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Seconds in all: proves the harness works (used by `make test`).
    Smoke,
    /// The whole suite in a few minutes (`make bench`).
    Quick,
    /// Longer windows and more repetitions, for published numbers.
    Full,
}

/// Durations and repetitions of one mode.
#[derive(Clone, Debug, Serialize)]
pub struct Params {
    /// The mode.
    pub mode: Mode,
    /// Repetitions of every measurement (systems alternate within each repetition).
    pub reps: usize,
    /// Warm-up before each window, ms.
    pub warmup_ms: u64,
    /// S1 window, ms.
    pub bulk_ms: u64,
    /// S2, S3, S4, S6 and S7 window, ms.
    pub short_ms: u64,
    /// Peer counts of S4.
    pub fanout_peers: Vec<usize>,
    /// Node counts of S9.
    pub mesh_nodes: Vec<usize>,
    /// How long each S9 run carries traffic, ms (no warm-up: the mesh is up before it starts).
    pub mesh_ms: u64,
    /// Scenarios to run.
    pub scenarios: Vec<Scenario>,
    /// Smoke runs only the systems of `suite::SMOKE_SYSTEMS` (the anchors and one ringwire row).
    pub anchors_only: bool,
}

impl Params {
    /// The parameters of `mode`.
    pub fn for_mode(mode: Mode) -> Self {
        match mode {
            Mode::Smoke => Self {
                mode,
                reps: 1,
                warmup_ms: 100,
                bulk_ms: 1000,
                short_ms: 200,
                fanout_peers: vec![10],
                // S9 is not in the smoke plan, so that the smoke run stays seconds long; these
                // are the smallest mesh worth running.
                mesh_nodes: vec![4],
                mesh_ms: 1000,
                scenarios: vec![
                    Scenario::S1,
                    Scenario::S2,
                    Scenario::S3,
                    Scenario::S4,
                    Scenario::S7,
                ],
                anchors_only: true,
            },
            Mode::Quick => Self {
                mode,
                reps: 3,
                warmup_ms: 300,
                bulk_ms: 2000,
                short_ms: 1500,
                fanout_peers: vec![100, 1000],
                // Below saturation and the goal's size: about 3 minutes of the run.
                mesh_nodes: vec![8, 32],
                mesh_ms: 5000,
                scenarios: Scenario::ALL.to_vec(),
                anchors_only: false,
            },
            // About 18 minutes on two cores: 5 repetitions of 5 s (S1) and 3.5 s windows.
            Mode::Full => Self {
                mode,
                reps: 5,
                warmup_ms: 500,
                bulk_ms: 5000,
                short_ms: 3500,
                fanout_peers: vec![100, 1000],
                // As docs/PERFORMANCE.md runs it: 10 s at 8, 16 and 32 nodes (about 13 minutes).
                mesh_nodes: vec![8, 16, 32],
                mesh_ms: 10_000,
                scenarios: Scenario::ALL.to_vec(),
                anchors_only: false,
            },
        }
    }
}

/// Everything a child needs to know about one measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Spec {
    /// What the children do.
    pub workload: Workload,
    /// Message (or request) size, bytes.
    pub size: usize,
    /// Load message size for latency, bytes.
    pub bulk_size: usize,
    /// Load beside latency requests.
    pub load: Load,
    /// Connections for fan-out.
    pub peers: usize,
    /// Nodes of an S9 mesh (0 for the other workloads).
    pub nodes: usize,
    /// Payload contents.
    pub payload: Payload,
    /// Warm-up before the window.
    pub warmup: Duration,
    /// The window.
    pub duration: Duration,
    /// Where the latency sender writes its samples (set by the runner).
    #[serde(skip)]
    pub samples: Option<PathBuf>,
    /// Receiver listen address (S6 listens inside a namespace); loopback when `None`.
    pub listen: Option<String>,
}

impl Spec {
    /// `workload` with `size`-byte messages, `warmup` and a window of `duration`; one peer,
    /// patterned payloads, no load (64 KiB load messages when one is set), loopback.
    pub fn new(workload: Workload, size: usize, warmup: Duration, duration: Duration) -> Self {
        Self {
            workload,
            size,
            bulk_size: 64 << 10,
            load: Load::None,
            peers: 1,
            nodes: 0,
            payload: Payload::Pattern,
            warmup,
            duration,
            samples: None,
            listen: None,
        }
    }

    /// [`Spec::new`] with the warm-up of `params` and a window of `window_ms`.
    fn planned(workload: Workload, size: usize, params: &Params, window_ms: u64) -> Self {
        let ms = Duration::from_millis;
        Self::new(workload, size, ms(params.warmup_ms), ms(window_ms))
    }

    /// The flags of [`crate::child::ChildArgs`] that describe this spec.
    pub fn child_args(&self) -> Vec<String> {
        let load = match self.load {
            Load::None => "none",
            Load::Bulk => "bulk",
        };
        let mut a = vec![
            format!("--scenario={}", self.workload.as_str()),
            format!("--size={}", self.size),
            format!("--bulk-size={}", self.bulk_size),
            format!("--load={load}"),
            format!("--peers={}", self.peers),
            format!("--warmup-ms={}", self.warmup.as_millis()),
            format!("--duration-ms={}", self.duration.as_millis()),
        ];
        if self.payload != Payload::Pattern {
            let p = if self.payload == Payload::Random {
                "random"
            } else {
                "compressible"
            };
            a.push(format!("--payload={p}"));
        }
        if self.workload == Workload::S9 {
            a.push(format!("--nodes={}", self.nodes));
        }
        if let Some(l) = &self.listen {
            a.push(format!("--listen={l}"));
        }
        if let Some(s) = &self.samples {
            a.push(format!("--samples={}", s.display()));
        }
        a
    }

    /// A generous bound on how long the measurement may take before it is killed.
    pub fn deadline(&self) -> Duration {
        let setup = Duration::from_secs(20 + (self.peers as u64) / 20 + self.nodes as u64);
        self.warmup + self.duration + setup
    }
}

/// One table of a scenario: a condition and the spec that realises it.
#[derive(Clone, Debug)]
pub struct Case {
    /// Shown in the table heading ("64 KiB", "idle", "1000 peers", …).
    pub condition: String,
    /// What the children run.
    pub spec: Spec,
}

/// The cases of a scenario under `params`.
pub fn cases(scenario: Scenario, params: &Params) -> Vec<Case> {
    let short = params.short_ms;
    match scenario {
        Scenario::S1 => vec![Case {
            condition: "64 KiB messages".into(),
            spec: Spec::planned(Workload::Bulk, 64 << 10, params, params.bulk_ms),
        }],
        Scenario::S2 => vec![Case {
            condition: "256 B messages".into(),
            spec: Spec::planned(Workload::Bulk, 256, params, short),
        }],
        Scenario::S3 => {
            let idle = Spec::planned(Workload::Latency, 256, params, short);
            let loaded = Spec {
                load: Load::Bulk,
                ..idle.clone()
            };
            vec![
                Case {
                    condition: "idle".into(),
                    spec: idle,
                },
                Case {
                    condition: "loaded".into(),
                    spec: loaded,
                },
            ]
        }
        Scenario::S4 => params
            .fanout_peers
            .iter()
            .map(|&peers| Case {
                condition: format!("{peers} peers"),
                spec: Spec {
                    peers,
                    ..Spec::planned(Workload::Fanout, 1024, params, short)
                },
            })
            .collect(),
        Scenario::S5 => vec![
            Case {
                condition: "S1 through Go".into(),
                spec: Spec::planned(Workload::Bulk, 64 << 10, params, params.bulk_ms),
            },
            Case {
                condition: "S2 through Go".into(),
                spec: Spec::planned(Workload::Bulk, 256, params, short),
            },
            // The size of the Go binding's throughput goal (4 KiB at ≥ 0.8× the Rust engine).
            Case {
                condition: "4 KiB through Go".into(),
                spec: Spec::planned(Workload::Bulk, 4096, params, short),
            },
        ],
        Scenario::S6 => [Payload::Compressible, Payload::Random]
            .into_iter()
            .map(|payload| Case {
                condition: if payload == Payload::Random {
                    "random"
                } else {
                    "compressible"
                }
                .into(),
                spec: Spec {
                    payload,
                    ..Spec::planned(Workload::Bulk, 64 << 10, params, short)
                },
            })
            .collect(),
        Scenario::S7 => vec![Case {
            condition: "sequential dials".into(),
            spec: Spec::planned(Workload::Handshake, 0, params, short),
        }],
        Scenario::S9 => params
            .mesh_nodes
            .iter()
            .map(|&nodes| Case {
                condition: format!("{nodes} nodes"),
                spec: Spec {
                    nodes,
                    ..Spec::new(
                        Workload::S9,
                        0,
                        Duration::ZERO,
                        Duration::from_millis(params.mesh_ms),
                    )
                },
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_parses_and_has_cases_in_quick_and_full() {
        for mode in [Mode::Quick, Mode::Full] {
            let p = Params::for_mode(mode);
            for s in Scenario::ALL {
                assert_eq!(Scenario::parse(&s.id().to_lowercase()), Some(s));
                assert!(!s.title().is_empty());
                assert!(p.scenarios.contains(&s), "{mode:?} plans {s:?}");
                assert!(!cases(s, &p).is_empty(), "{mode:?} {s:?}");
            }
        }
        assert_eq!(Scenario::parse("S8"), None);
    }

    #[test]
    fn s9_meshes_per_mode_and_smoke_leaves_it_out() {
        let nodes = |mode| {
            cases(Scenario::S9, &Params::for_mode(mode))
                .iter()
                .map(|c| c.spec.nodes)
                .collect::<Vec<_>>()
        };
        assert_eq!(nodes(Mode::Quick), [8, 32]);
        assert_eq!(nodes(Mode::Full), [8, 16, 32]);
        assert!(
            !Params::for_mode(Mode::Smoke)
                .scenarios
                .contains(&Scenario::S9)
        );
        let full = &cases(Scenario::S9, &Params::for_mode(Mode::Full))[2];
        assert_eq!(full.condition, "32 nodes");
        assert_eq!(full.spec.warmup, Duration::ZERO);
        assert_eq!(full.spec.duration, Duration::from_secs(10));
        assert!(full.spec.child_args().contains(&"--nodes=32".to_owned()));
        // The mesh takes a while to dial: the deadline grows with it.
        assert!(full.spec.deadline() >= Duration::from_secs(60));
        // Pairs never get the flag.
        let s1 = &cases(Scenario::S1, &Params::for_mode(Mode::Full))[0];
        assert!(
            !s1.spec
                .child_args()
                .iter()
                .any(|a| a.starts_with("--nodes"))
        );
    }
}
