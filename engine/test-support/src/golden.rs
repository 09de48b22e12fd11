//! The vectors under `testdata/` at the top of the repository (stock ones made by
//! `make golden`, ringwire's own ones written by its tests).

use std::path::PathBuf;

use serde::de::DeserializeOwned;

/// The path of `testdata/NAME`.
pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata")).join(name)
}

/// Reads and parses the JSON vector file `testdata/NAME`; a missing or malformed file fails the
/// test.
pub fn golden_json<T: DeserializeOwned>(name: &str) -> T {
    let path = testdata(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; the vectors are committed (regenerate with `make golden`)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} parses: {e}"))
}

/// Checks that `ours` are the bytes stock wrote for case `name` (`stock`, in hex), and returns
/// stock's bytes.
pub fn assert_stock_bytes(name: &str, ours: &[u8], stock: &str) -> Vec<u8> {
    assert_eq!(
        hex::encode(ours),
        stock,
        "{name}: encoding differs from stock"
    );
    hex::decode(stock).expect("hex in the vector file")
}
