//! NodeInfo against vectors produced by stock CometBFT code (`testdata/nodeinfo.json`, made by
//! `make golden`), and ringwire's own NodeInfo vector (`testdata/ringwire_nodeinfo.hex`) that the
//! Go interop tests decode and validate with stock code.
//!
//! Set `RINGWIRE_UPDATE_GOLDEN=1` to rewrite `ringwire_nodeinfo.hex`.

use ringwire::proto::nodeinfo::{
    NodeInfo, NodeInfoError, NodeInfoOther, ProtocolVersion, STOCK_BLOCK_PROTOCOL,
    STOCK_P2P_PROTOCOL, ringwire_channels,
};
use ringwire_test_support::golden::{assert_stock_bytes, golden_json, testdata};
use serde::Deserialize;

#[derive(Deserialize)]
struct NiProtocol {
    p2p: u64,
    block: u64,
    app: u64,
}

#[derive(Deserialize)]
struct NiOther {
    tx_index: String,
    rpc_address: String,
}

#[derive(Deserialize)]
struct Ni {
    protocol_version: NiProtocol,
    default_node_id: String,
    listen_addr: String,
    network: String,
    version: String,
    channels: String,
    moniker: String,
    other: NiOther,
}

impl Ni {
    fn to_node_info(&self) -> NodeInfo {
        NodeInfo {
            protocol_version: ProtocolVersion {
                p2p: self.protocol_version.p2p,
                block: self.protocol_version.block,
                app: self.protocol_version.app,
            },
            node_id: self.default_node_id.clone(),
            listen_addr: self.listen_addr.clone(),
            network: self.network.clone(),
            version: self.version.clone(),
            channels: hex::decode(&self.channels).expect("channels hex"),
            moniker: self.moniker.clone(),
            other: NodeInfoOther {
                tx_index: self.other.tx_index.clone(),
                rpc_address: self.other.rpc_address.clone(),
            },
        }
    }
}

#[derive(Deserialize)]
struct Encoding {
    name: String,
    node_info: Ni,
    encoded: String,
}

#[derive(Deserialize)]
struct ValidateCase {
    name: String,
    node_info: Ni,
    ok: bool,
    error: String,
}

#[derive(Deserialize)]
struct CompatCase {
    name: String,
    a: Ni,
    b: Ni,
    ok: bool,
    error: String,
}

#[derive(Deserialize)]
struct NodeInfoFile {
    cometbft_version: String,
    encodings: Vec<Encoding>,
    validate_cases: Vec<ValidateCase>,
    compat_cases: Vec<CompatCase>,
}

fn load() -> NodeInfoFile {
    let file: NodeInfoFile = golden_json("nodeinfo.json");
    assert!(!file.cometbft_version.is_empty());
    file
}

/// ringwire's verdict on case `name` is stock's: both accept or both refuse.
fn assert_same_verdict(
    name: &str,
    stock_ok: bool,
    stock_error: &str,
    ours: Result<(), NodeInfoError>,
) {
    assert_eq!(
        ours.is_ok(),
        stock_ok,
        "{}: stock says {:?}, ringwire says {:?}",
        name,
        stock_error,
        ours
    );
}

#[test]
fn encodings_match_stock_bytes() {
    let file = load();
    assert!(!file.encodings.is_empty());
    for e in &file.encodings {
        let info = e.node_info.to_node_info();
        let mut out = Vec::new();
        info.encode_delimited(&mut out);
        let raw = assert_stock_bytes(&e.name, &out, &e.encoded);
        let (back, used) = NodeInfo::decode_delimited(&raw)
            .unwrap_or_else(|err| panic!("{}: {err}", e.name))
            .unwrap_or_else(|| panic!("{}: incomplete", e.name));
        assert_eq!(used, raw.len(), "{}", e.name);
        assert_eq!(back, info, "{}: decoded NodeInfo differs", e.name);
    }
}

#[test]
fn validate_verdicts_match_stock() {
    let file = load();
    assert!(!file.validate_cases.is_empty());
    for c in &file.validate_cases {
        let ours = c.node_info.to_node_info().validate();
        assert_same_verdict(&c.name, c.ok, &c.error, ours);
    }
}

#[test]
fn compat_verdicts_match_stock() {
    let file = load();
    assert!(!file.compat_cases.is_empty());
    for c in &file.compat_cases {
        let ours = c.a.to_node_info().compatible_with(&c.b.to_node_info());
        assert_same_verdict(&c.name, c.ok, &c.error, ours);
    }
}

/// The representative NodeInfo a ringwire node sends; the Go interop tests check that stock
/// decodes and accepts these exact bytes.
fn ringwire_sample() -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: STOCK_P2P_PROTOCOL,
            block: STOCK_BLOCK_PROTOCOL,
            app: 0,
        },
        node_id: "0123456789abcdef0123456789abcdef01234567".into(),
        listen_addr: "tcp://127.0.0.1:26656".into(),
        network: "ringwire-test".into(),
        version: "0.1.0".into(),
        channels: ringwire_channels(),
        moniker: "ringwire".into(),
        other: NodeInfoOther {
            tx_index: "on".into(),
            rpc_address: "tcp://127.0.0.1:26657".into(),
        },
    }
}

#[test]
fn ringwire_nodeinfo_vector() {
    let info = ringwire_sample();
    info.validate().unwrap();
    assert!(info.advertises_native());
    let mut out = Vec::new();
    info.encode_delimited(&mut out);
    let line = format!("{}\n", hex::encode(&out));
    let path = testdata("ringwire_nodeinfo.hex");
    if std::env::var("RINGWIRE_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &line).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate with RINGWIRE_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        committed.trim_end(),
        line.trim_end(),
        "ringwire's NodeInfo encoding changed; regenerate with RINGWIRE_UPDATE_GOLDEN=1 and rerun the Go interop tests"
    );
}
