//! `ringwire keygen` and `ringwire show-node-id`.

use std::path::Path;

use ringwire::config::{Config, NodeKeyError, NodeKeyFile};

use crate::{Failure, KeySource};

/// Writes a fresh key to `out` (atomically, mode 0600) and prints its node ID. An existing file
/// is replaced only with `force`.
pub(crate) fn keygen(out: &Path, force: bool) -> Result<(), Failure> {
    let key = NodeKeyFile::generate()?;
    let written = if force {
        key.write(out)
    } else {
        key.write_new(out)
    };
    match written {
        Ok(()) => {}
        Err(NodeKeyError::Exists { path }) => {
            return Err(Failure(format!(
                "{} already exists; pass --force to replace it (the node's identity changes)",
                path.display()
            )));
        }
        Err(e) => return Err(e.into()),
    }
    println!("{}", key.node_id());
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Prints the node ID of the key the arguments point at.
pub(crate) fn show_node_id(source: KeySource) -> Result<(), Failure> {
    let path = match source {
        KeySource {
            node_key: Some(file),
            ..
        } => file,
        KeySource {
            home: Some(home), ..
        } => Config::cometbft_node_key_path(home)?,
        KeySource {
            config: Some(file), ..
        } => Config::load(file)?.node_key_path(),
        // clap requires exactly one of the three.
        KeySource { .. } => return Err(Failure("give --home, --node-key or --config".into())),
    };
    println!("{}", NodeKeyFile::load(path)?.node_id());
    Ok(())
}
