//! Property tests for the codecs without a proptest of their own: NodeInfo round-trips and never
//! panics on arbitrary bytes, and a whole `Connection` survives arbitrary wire bytes in any
//! chunking, before and after a real handshake.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use ringwire::proto::conn::{Connection, ConnectionConfig, Event};
use ringwire::proto::nodeinfo::{NodeInfo, NodeInfoOther, ProtocolVersion};
use ringwire::proto::secret::NodeKey;

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",   // printable ASCII
        any::<String>(), // anything UTF-8
    ]
}

prop_compose! {
    fn arb_node_info()(
        p2p in any::<u64>(), block in any::<u64>(), app in any::<u64>(),
        node_id in arb_string(), listen_addr in arb_string(), network in arb_string(),
        version in arb_string(), channels in proptest::collection::vec(any::<u8>(), 0..20),
        moniker in arb_string(), tx_index in arb_string(), rpc_address in arb_string(),
    ) -> NodeInfo {
        NodeInfo {
            protocol_version: ProtocolVersion { p2p, block, app },
            node_id, listen_addr, network, version, channels, moniker,
            other: NodeInfoOther { tx_index, rpc_address },
        }
    }
}

fn base_info() -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        node_id: String::new(),
        listen_addr: "tcp://127.0.0.1:26656".into(),
        network: "test-chain".into(),
        version: "0.1.0".into(),
        channels: Vec::new(),
        moniker: "ringwire".into(),
        other: NodeInfoOther {
            tx_index: "on".into(),
            rpc_address: String::new(),
        },
    }
}

fn connection(seed: u8, eph: u8, now: Instant) -> Connection {
    let config = ConnectionConfig::new(NodeKey::from_seed([seed; 32]), base_info());
    Connection::new(config, [eph; 32], now).expect("valid config")
}

/// Runs a real handshake between `a` and `b` until both have sent their NodeInfo.
fn handshake(a: &mut Connection, b: &mut Connection, now: Instant) {
    for _ in 0..8 {
        let mut ab = Vec::new();
        let mut ba = Vec::new();
        while a.poll_transmit(now, &mut ab) {}
        while b.poll_transmit(now, &mut ba) {}
        let _ = b.handle_input(now, &ab);
        let _ = a.handle_input(now, &ba);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn node_info_round_trips(info in arb_node_info()) {
        let mut buf = Vec::new();
        info.encode_delimited(&mut buf);
        let decoded = NodeInfo::decode_delimited(&buf).expect("decodes");
        let (back, used) = decoded.expect("complete");
        prop_assert_eq!(used, buf.len());
        prop_assert_eq!(&back, &info);
        // Every prefix is either "need more" or an error, never a panic or a wrong message.
        for cut in 0..buf.len() {
            if let Ok(Some((_, used))) = NodeInfo::decode_delimited(&buf[..cut]) {
                prop_assert!(used <= cut);
            }
        }
        let _ = back.validate();
        let _ = back.compatible_with(&base_info());
    }

    #[test]
    fn node_info_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(Some((info, used))) = NodeInfo::decode_delimited(&bytes) {
            prop_assert!(used <= bytes.len());
            let _ = info.validate();
        }
    }

    #[test]
    fn connection_survives_arbitrary_wire_bytes(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1200), 0..12),
        after_handshake in any::<bool>(),
    ) {
        let now = Instant::now();
        let mut a = connection(1, 0xA1, now);
        if after_handshake {
            let mut b = connection(2, 0xB2, now);
            handshake(&mut a, &mut b, now);
        }
        let mut t = now;
        for chunk in &chunks {
            t += Duration::from_millis(100);
            let _ = a.handle_input(t, chunk);
            let mut out = Vec::new();
            while a.poll_transmit(t, &mut out) {}
            while let Some(ev) = a.poll_event() {
                if let Event::Closed(_) = ev {
                    prop_assert!(a.is_closed());
                }
            }
            let _ = a.handle_timeout(t);
        }
    }
}
