//! Shared by the ffi integration tests: a node started through the C ABI from a TOML file.

use std::ffi::CString;
use std::path::PathBuf;
use std::ptr::null_mut;

use ringwire::config::NodeKeyFile;
use ringwire_ffi::config::*;
use ringwire_ffi::node::*;
use ringwire_ffi::result::*;

/// A node of network `network` started through the C ABI from a TOML file whose tail (after
/// its `[node]` and `[p2p]` sections) is `tail`, listening on a free loopback port; its
/// scratch folder is returned for removal.
pub(crate) fn node_from_toml(
    name: &str,
    network: &str,
    tail: &str,
) -> (*mut ringwire_node, PathBuf) {
    let dir = std::env::temp_dir().join(format!("ringwire-ffi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let key = dir.join("node_key.json");
    NodeKeyFile::load_or_generate(&key).expect("node key");
    let toml = format!(
        "[node]\nnetwork = \"{network}\"\nnode_key_file = \"{}\"\n\n[p2p]\nladdr = \"127.0.0.1:0\"\npex = false\n\n{tail}",
        key.display()
    );
    let path = dir.join("ringwire.toml");
    std::fs::write(&path, toml).expect("write config");
    let path = CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
    let (mut cfg, mut node) = (null_mut(), null_mut());
    // SAFETY: NUL-terminated path, valid out-pointers, the config freed once.
    unsafe {
        assert_eq!(
            ringwire_config_load_toml(path.as_ptr(), &mut cfg),
            ringwire_result::Ok
        );
        assert_eq!(ringwire_node_start(cfg, &mut node), ringwire_result::Ok);
        ringwire_config_free(cfg);
    }
    (node, dir)
}
