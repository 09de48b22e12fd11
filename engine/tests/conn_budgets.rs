//! `[limits]` budgets applied to whole connections: settings made by `Config::connection_config`
//! from TOML, connections run on the deterministic in-memory network with simulated time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::config::Config;
use ringwire::proto::budget::PartialBudgetError;
use ringwire::proto::conn::{ConnError, Connection, ConnectionConfig, Event, Mode};
use ringwire::proto::mconn::MConnError;
use ringwire::proto::native::MuxError;
use ringwire::proto::nodeinfo::{NodeInfo, NodeInfoError, ProtocolVersion};
use ringwire::proto::secret::NodeKey;
use ringwire::proto::sim::{LinkConfig, Sim};

const A: usize = 0;
const B: usize = 1;

fn node_info() -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        listen_addr: "tcp://127.0.0.1:26656".into(),
        network: "test-chain".into(),
        version: "0.1.0".into(),
        moniker: "ringwire".into(),
        ..NodeInfo::default()
    }
}

/// The connection settings `toml` gives node `seed`.
fn from_toml(toml: &str, seed: u8, native: bool) -> ConnectionConfig {
    let config = Config::from_toml_str(toml).expect("valid configuration");
    let mut c = config.connection_config(NodeKey::from_seed([seed; 32]), node_info());
    c.offer_native = native;
    c
}

fn sim(a: ConnectionConfig, b: ConnectionConfig) -> Sim<Connection> {
    let now = Instant::now();
    let mut sim = Sim::new(now);
    sim.add(Connection::new(a, [0xA1; 32], now).expect("config a"));
    sim.add(Connection::new(b, [0xB2; 32], now).expect("config b"));
    sim.connect(A, B, LinkConfig::default());
    sim
}

/// Runs until `who` closes (taking its events); its reason.
fn failure(sim: &mut Sim<Connection>, who: usize) -> ConnError {
    let deadline = sim.now() + Duration::from_secs(30);
    let mut reason = None;
    sim.run_until(deadline, |sim| {
        while let Some(ev) = sim.endpoint_mut(who).poll_event() {
            if let Event::Closed(e) = ev {
                reason = Some(e);
            }
        }
        reason.is_some()
    });
    reason.expect("connection did not fail")
}

/// Runs until both sides are connected.
fn connect(sim: &mut Sim<Connection>) {
    let mut up = [false, false];
    let deadline = sim.now() + Duration::from_secs(5);
    let ok = sim.run_until(deadline, |sim| {
        for (i, u) in up.iter_mut().enumerate() {
            while let Some(ev) = sim.endpoint_mut(i).poll_event() {
                match ev {
                    Event::Connected(_) => *u = true,
                    other => panic!("endpoint {i}: {other:?}"),
                }
            }
        }
        up == [true, true]
    });
    assert!(ok, "no connection");
}

#[test]
fn max_node_info_size_caps_the_peers_node_info() {
    let limited = "[limits]\nmax_node_info_size = 1024\n";
    for (moniker, fits) in [(700, true), (1500, false)] {
        let a = from_toml(limited, 1, true);
        let mut b = from_toml("", 2, true);
        b.node_info.moniker = "m".repeat(moniker);
        let mut sim = sim(a, b);
        if fits {
            connect(&mut sim);
            continue;
        }
        match failure(&mut sim, A) {
            ConnError::NodeInfo(NodeInfoError::TooLarge { declared, max }) => {
                assert_eq!(max, 1024);
                assert!(declared > 1024, "{declared}");
            }
            other => panic!("wrong reason: {other:?}"),
        }
        // The default (stock's 10240) takes the same NodeInfo.
        let mut b = from_toml("", 2, true);
        b.node_info.moniker = "m".repeat(moniker);
        connect(&mut self::sim(from_toml("", 1, true), b));
    }
}

#[test]
fn max_partial_bytes_per_peer_ends_a_peer_with_too_many_unfinished_messages() {
    let toml = "[limits]\nmax_message_size = 65536\nmax_partial_bytes_per_peer = 65536\n";
    for native in [false, true] {
        let mut sim = sim(from_toml(toml, 1, native), from_toml(toml, 2, native));
        connect(&mut sim);
        let mode = sim.endpoint(B).mode();
        assert_eq!(mode, Some(if native { Mode::Native } else { Mode::Compat }));
        // One message of the largest size arrives...
        let big = Bytes::from(vec![5u8; 65536]);
        sim.endpoint_mut(A).send(0x40, big.clone()).unwrap();
        sim.advance(Duration::from_millis(100));
        match sim.endpoint_mut(B).poll_event() {
            Some(Event::Message(m)) => assert_eq!(m.payload, big),
            other => panic!("native={native}: {other:?}"),
        }
        // ...but two of 60 KiB on two channels at once, chunks interleaved, hold more.
        let msg = Bytes::from(vec![6u8; 60 * 1024]);
        sim.endpoint_mut(A).send(0x40, msg.clone()).unwrap();
        sim.endpoint_mut(A).send(0x61, msg).unwrap();
        let reason = failure(&mut sim, B);
        let budget = match &reason {
            ConnError::MConn(MConnError::PartialBudget(e)) if !native => e,
            ConnError::Mux(MuxError::PartialBudget(e)) if native => e,
            other => panic!("native={native}: wrong reason: {other:?}"),
        };
        assert!(matches!(
            budget,
            PartialBudgetError::Peer { limit: 65536, .. }
        ));
        assert!(reason.exceeded_budget().is_some());
    }
}

#[test]
fn native_recv_queue_capacity_bounds_waiting_messages_and_keepalive_still_runs() {
    let toml = "[limits]\nnative_recv_queue_capacity = 4\n";
    let mut sim = sim(from_toml(toml, 1, true), from_toml(toml, 2, true));
    connect(&mut sim);
    let sent: Vec<Bytes> = (0..300u32)
        .map(|i| Bytes::from(vec![i as u8; 100 + i as usize]))
        .collect();
    for m in &sent {
        sim.endpoint_mut(A).send(0x40, m.clone()).unwrap();
    }
    // B's application takes nothing for a minute: twelve native keepalive rounds.
    let end = sim.now() + Duration::from_secs(60);
    while sim.now() < end {
        sim.advance(Duration::from_millis(250));
        assert!(sim.endpoint(B).native_queued_messages().unwrap() <= 4);
    }
    assert!(!sim.endpoint(A).is_closed() && !sim.endpoint(B).is_closed());
    let b = sim.endpoint(B).native_stats().unwrap();
    assert!(b.data_frames_held > 0, "{b:?}");
    // Then it drains: everything arrives, in order.
    let mut got = Vec::new();
    let deadline = sim.now() + Duration::from_secs(30);
    sim.run_until(deadline, |sim| {
        while let Some(ev) = sim.endpoint_mut(B).poll_event() {
            match ev {
                Event::Message(m) => got.push(m.payload),
                other => panic!("{other:?}"),
            }
        }
        got.len() == sent.len()
    });
    assert_eq!(got, sent);
}
