//! The `ringwire` command.
//!
//! - `ringwire keygen [--out FILE] [--force]` writes a new node key in CometBFT's
//!   `node_key.json` format and prints its node ID.
//! - `ringwire show-node-id (--home DIR | --node-key FILE | --config FILE)` prints a node ID.
//! - `ringwire config default` prints every configuration key with its default and its
//!   documentation; `ringwire config check (FILE | --home DIR)` validates a ringwire file or
//!   a CometBFT home and names every key that is wrong.
//!
//! Results go to stdout, diagnostics to stderr. Exit status: 0 on success, 1 when the work
//! failed (a bad file, a key that exists), 2 for a usage error.

mod config_cmd;
mod keys;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Peer-to-peer networking engine for CometBFT-style nodes.
#[derive(Debug, Parser)]
#[command(name = "ringwire", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a node key (CometBFT's node_key.json format) and print its node ID.
    Keygen {
        /// Where to write the key.
        #[arg(long, value_name = "FILE", default_value = "node_key.json")]
        out: PathBuf,
        /// Replace an existing key file (the old identity is lost).
        #[arg(long)]
        force: bool,
    },
    /// Print the node ID of a node key.
    ShowNodeId(KeySource),
    /// Print or check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Where to find a node key: exactly one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct KeySource {
    /// A CometBFT home directory (the key named by config/config.toml, by default
    /// config/node_key.json).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// A node_key.json file.
    #[arg(long, value_name = "FILE")]
    node_key: Option<PathBuf>,
    /// A ringwire configuration file (its node.node_key_file).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the default configuration: every key, its default value and its documentation.
    Default,
    /// Validate a ringwire configuration file, or a CometBFT home directory with --home.
    Check {
        /// The ringwire TOML file.
        #[arg(
            value_name = "FILE",
            required_unless_present = "home",
            conflicts_with = "home"
        )]
        file: Option<PathBuf>,
        /// A CometBFT home directory (config/config.toml and genesis.json are read).
        #[arg(long, value_name = "DIR")]
        home: Option<PathBuf>,
    },
}

/// A failure to report on stderr; the message names the file and key where there is one.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen { out, force } => keys::keygen(&out, force),
        Command::ShowNodeId(source) => keys::show_node_id(source),
        Command::Config(ConfigCommand::Default) => config_cmd::print_default(),
        Command::Config(ConfigCommand::Check { file, home }) => config_cmd::check(file, home),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            for line in message.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}
