//! The harness runs real raw TCP children over loopback and gets their reports: a bulk window,
//! latency samples and handshakes. These check behaviour (reports arrive, figures are present),
//! never speed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringwire_benches::child::{Load, Workload};
use ringwire_benches::plan::{Case, Spec};
use ringwire_benches::runner::{Placement, measure};
use ringwire_benches::suite::figures;
use ringwire_benches::system::{RawTcpDriver, System};

fn spec(workload: Workload, size: usize) -> Spec {
    let ms = Duration::from_millis;
    Spec::new(workload, size, ms(20), ms(100))
}

fn driver(system: System) -> RawTcpDriver {
    RawTcpDriver {
        system,
        exe: PathBuf::from(env!("CARGO_BIN_EXE_ringwire-bench")),
    }
}

fn figure(case: &Case, system: System) -> Vec<(&'static str, f64)> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let scratch =
        std::env::temp_dir().join(format!("ringwire-bench-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let m = measure(&driver(system), &case.spec, &Placement::default(), &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    figures(case, &m.expect("measurement succeeds")).expect("figures")
}

#[test]
fn bulk_reports_a_window_and_cpu() {
    for (system, size) in [(System::RawTcp, 64 << 10), (System::RawTcpPerMessage, 256)] {
        let case = Case {
            condition: "t".into(),
            spec: spec(Workload::Bulk, size),
        };
        let f = figure(&case, system);
        let get = |k: &str| f.iter().find(|(n, _)| *n == k).map(|x| x.1);
        assert!(get("msgs/s").is_some_and(|v| v > 0.0), "{system:?}: {f:?}");
        assert!(get("CPU-s/GB").is_some(), "{system:?}: {f:?}");
    }
}

#[test]
fn latency_idle_and_loaded_return_samples() {
    for system in [System::RawTcp, System::RawTcpInterleaved] {
        for load in [Load::None, Load::Bulk] {
            let case = Case {
                condition: "t".into(),
                spec: Spec {
                    load,
                    ..spec(Workload::Latency, 256)
                },
            };
            let f = figure(&case, system);
            let trips = f
                .iter()
                .find(|(n, _)| *n == "round trips")
                .map_or(0.0, |x| x.1);
            assert!(trips > 0.0, "{system:?} {load:?}: {f:?}");
        }
    }
}

#[test]
fn handshakes_and_fanout_report() {
    let hs = Case {
        condition: "t".into(),
        spec: spec(Workload::Handshake, 0),
    };
    assert!(
        figure(&hs, System::RawTcp)
            .iter()
            .any(|(n, v)| *n == "handshakes/s" && *v > 0.0)
    );
    let fan = Case {
        condition: "t".into(),
        spec: Spec {
            peers: 5,
            ..spec(Workload::Fanout, 1024)
        },
    };
    let f = figure(&fan, System::RawTcp);
    assert!(
        f.iter().any(|(n, v)| *n == "delivered msgs/s" && *v > 0.0),
        "{f:?}"
    );
}
