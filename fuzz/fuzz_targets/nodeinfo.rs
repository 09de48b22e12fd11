//! Peer bytes into `NodeInfo::decode_delimited`: nothing panics, a decoded NodeInfo is checked
//! with `validate` and `compatible_with` (both ways) against a fixed valid one, and re-encoding
//! it yields bytes that decode to the same NodeInfo, are stable under another round, and are
//! needed in full (every shorter prefix asks for more bytes).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringwire::proto::nodeinfo::{
    MAX_NODE_INFO_SIZE, NodeInfo, NodeInfoError, NodeInfoOther, ProtocolVersion,
    STOCK_BLOCK_PROTOCOL, STOCK_P2P_PROTOCOL, ringwire_channels,
};

fn ours() -> &'static NodeInfo {
    static OURS: OnceLock<NodeInfo> = OnceLock::new();
    OURS.get_or_init(|| {
        let info = NodeInfo {
            protocol_version: ProtocolVersion {
                p2p: STOCK_P2P_PROTOCOL,
                block: STOCK_BLOCK_PROTOCOL,
                app: 1,
            },
            node_id: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            listen_addr: "tcp://0.0.0.0:26656".to_owned(),
            network: "fuzz-chain".to_owned(),
            version: "0.40.0".to_owned(),
            channels: ringwire_channels(),
            moniker: "fuzz".to_owned(),
            other: NodeInfoOther {
                tx_index: "on".to_owned(),
                rpc_address: "tcp://127.0.0.1:26657".to_owned(),
            },
        };
        info.validate().expect("the fixed NodeInfo is valid");
        info
    })
}

fuzz_target!(|data: &[u8]| {
    let ours = ours();
    let (info, used) = match NodeInfo::decode_delimited(data) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return,
        Err(NodeInfoError::TooLarge { declared, max }) => {
            assert_eq!(max, MAX_NODE_INFO_SIZE);
            assert!(declared > MAX_NODE_INFO_SIZE as u64);
            return;
        }
        Err(_) => return,
    };
    assert!(used <= data.len() && used <= MAX_NODE_INFO_SIZE + 10);
    assert_eq!(NodeInfo::decode_delimited(&data[..used - 1]), Ok(None));

    let valid = info.validate().is_ok();
    let _ = info.compatible_with(ours);
    let _ = ours.compatible_with(&info);
    let _ = info.advertises_native();
    // Same block version, same network, and every listed channel is one it has.
    assert!(info.compatible_with(&info).is_ok());

    let mut encoded = Vec::new();
    info.encode_delimited(&mut encoded);
    let (again, again_used) = NodeInfo::decode_delimited(&encoded)
        .expect("our encoding decodes")
        .expect("our encoding is complete");
    assert_eq!(again, info, "the round trip changed the NodeInfo");
    assert_eq!(again_used, encoded.len());
    assert_eq!(NodeInfo::from_wire(info.to_wire()), info);
    let mut twice = Vec::new();
    again.encode_delimited(&mut twice);
    assert_eq!(twice, encoded, "re-encoding is not stable");
    assert_eq!(again.validate().is_ok(), valid);
});
