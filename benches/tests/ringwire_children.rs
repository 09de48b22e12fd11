//! The harness runs real ringwire children (a node on each side) over loopback and gets their
//! reports for every workload. These check behaviour (reports arrive, figures are present),
//! never speed. The epoll driver runs here so the test does not depend on io_uring being
//! allowed; `make bench-smoke` measures the io_uring row.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringwire_benches::child::{Load, Payload, Workload};
use ringwire_benches::plan::{Case, Spec};
use ringwire_benches::runner::{Placement, measure};
use ringwire_benches::suite::figures;
use ringwire_benches::system::{RingwireCli, RingwireDriver, System};

fn spec(workload: Workload, size: usize) -> Spec {
    let ms = Duration::from_millis;
    Spec::new(workload, size, ms(20), ms(150))
}

fn figure(spec: Spec, system: System) -> Vec<(&'static str, f64)> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let scratch =
        std::env::temp_dir().join(format!("ringwire-bench-rw-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let case = Case {
        condition: "t".into(),
        spec,
    };
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_ringwire-bench"));
    // S9's command is never asked for here.
    let cli = Arc::new(RingwireCli::prebuilt(PathBuf::from("ringwire")));
    let driver = RingwireDriver::new(system, exe, 1, cli);
    let m = measure(&driver, &case.spec, &Placement::default(), &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    figures(&case, &m.expect("measurement succeeds")).expect("figures")
}

fn get(f: &[(&'static str, f64)], key: &str) -> f64 {
    f.iter().find(|(n, _)| *n == key).map_or(0.0, |x| x.1)
}

#[test]
fn bulk_native_and_compat_deliver_messages() {
    for system in [System::RingwireEpoll, System::RingwireCompat] {
        let f = figure(spec(Workload::Bulk, 256), system);
        assert!(get(&f, "msgs/s") > 0.0, "{system:?}: {f:?}");
    }
    let f = figure(
        Spec {
            payload: Payload::Compressible,
            ..spec(Workload::Bulk, 64 << 10)
        },
        System::RingwireEpoll,
    );
    assert!(get(&f, "MB/s") > 0.0, "compressible: {f:?}");
}

#[test]
fn latency_idle_and_loaded_return_samples() {
    for load in [Load::None, Load::Bulk] {
        let f = figure(
            Spec {
                load,
                ..spec(Workload::Latency, 256)
            },
            System::RingwireEpoll,
        );
        assert!(get(&f, "round trips") > 0.0, "{load:?}: {f:?}");
    }
}

#[test]
fn handshakes_and_fanout_report() {
    let f = figure(spec(Workload::Handshake, 0), System::RingwireEpoll);
    assert!(get(&f, "handshakes/s") > 0.0, "{f:?}");
    let f = figure(
        Spec {
            peers: 5,
            ..spec(Workload::Fanout, 1024)
        },
        System::RingwireEpoll,
    );
    assert!(get(&f, "delivered msgs/s") > 0.0, "{f:?}");
    assert!(get(&f, "RSS KiB/peer") >= 0.0, "{f:?}");
}
