//! `ringwire config default` and `ringwire config check`.

use std::path::PathBuf;

use ringwire::config::Config;

use crate::Failure;

/// Prints the default configuration with every key documented.
pub(crate) fn print_default() -> Result<(), Failure> {
    print!("{}", Config::default_toml_with_comments());
    Ok(())
}

/// Validates a ringwire file or a CometBFT home; every problem is reported with its key.
pub(crate) fn check(file: Option<PathBuf>, home: Option<PathBuf>) -> Result<(), Failure> {
    let (what, config) = match (file, home) {
        (Some(file), _) => (file.display().to_string(), Config::load(&file)?),
        (None, Some(home)) => (
            home.display().to_string(),
            Config::from_cometbft_home(&home)?,
        ),
        // clap requires one of the two.
        (None, None) => return Err(Failure("give a FILE or --home DIR".into())),
    };
    println!(
        "{what}: ok (network {:?}, listening on {}, node key {})",
        config.node.network,
        config.p2p.laddr,
        config.node_key_path().display()
    );
    Ok(())
}
