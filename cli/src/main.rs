//! The `ringwire` command.
//!
//! - `ringwire keygen [--out FILE] [--force]` writes a new node key in CometBFT's
//!   `node_key.json` format and prints its node ID.
//! - `ringwire show-node-id (--home DIR | --node-key FILE | --config FILE)` prints a node ID.
//! - `ringwire config default` prints every configuration key with its default and its
//!   documentation; `ringwire config check (FILE | --home DIR)` validates a ringwire file or
//!   a CometBFT home and names every key that is wrong.
//! - `ringwire node (--config FILE | --home DIR) [--metrics ADDR] [--admin ADDR]` runs a node
//!   until SIGINT or SIGTERM ([`node_cmd`]).
//! - `ringwire testnet --nodes N [--duration D] [--driver D] [--json]` runs N nodes in this
//!   process on loopback with consensus-like traffic and prints live and final statistics
//!   ([`testnet`]).
//! - `ringwire peers | dial ID@HOST:PORT | disconnect ID | ban ID [--for D]` talk to a running
//!   node's admin endpoint ([`admin`]).
//! - `ringwire bench ARGS...` runs the end-to-end benchmark harness ([`bench`]).
//!
//! Results go to stdout, diagnostics to stderr. Exit status: 0 on success, 1 when the work
//! failed (a bad file, a key that exists), 2 for a usage error.

mod admin;
mod admin_view;
mod bench;
mod config_cmd;
mod keys;
mod logging;
mod node_cmd;
mod run;
mod testnet;

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
    /// Run a node until SIGINT or SIGTERM.
    Node {
        /// A ringwire TOML configuration file.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "home",
            conflicts_with = "home"
        )]
        config: Option<PathBuf>,
        /// A CometBFT home directory (config/config.toml [p2p], config/node_key.json; a
        /// missing node key is generated).
        #[arg(long, value_name = "DIR")]
        home: Option<PathBuf>,
        /// Serve Prometheus metrics on this address (overrides [metrics]).
        #[arg(long, value_name = "IP:PORT")]
        metrics: Option<String>,
        /// Serve the admin endpoint here: unix://PATH or a loopback IP:PORT (overrides [admin]).
        #[arg(long, value_name = "ADDR")]
        admin: Option<String>,
    },
    /// Run N nodes in this process on loopback with consensus-like traffic.
    Testnet(testnet::TestnetArgs),
    /// List the peers of a running node (admin endpoint): direction, protocol, capabilities,
    /// score, uptime, keepalive RTT, bytes and queue depth per channel.
    Peers(AdminTarget),
    /// List the address book of a running node (admin endpoint), banned addresses and bans
    /// by score included.
    Book(AdminTarget),
    /// Make a running node dial its seeds now (admin endpoint).
    DialSeeds(AdminTarget),
    /// Print the counters of a running node (admin endpoint): refusals, budget disconnects,
    /// drops; one JSON object.
    Stats(AdminTarget),
    /// Make a running node dial a peer (admin endpoint).
    Dial {
        /// The peer, as ID@HOST:PORT.
        #[arg(value_name = "ID@HOST:PORT")]
        addr: String,
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Make a running node close its connection to a peer (admin endpoint).
    Disconnect {
        /// The peer's node ID.
        id: String,
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Make a running node ban a peer (admin endpoint).
    Ban {
        /// The peer's node ID.
        id: String,
        /// How long (default 24h).
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Run the end-to-end benchmark harness (ringwire-bench); arguments, --help included,
    /// are passed on.
    #[command(disable_help_flag = true)]
    Bench {
        /// Arguments for ringwire-bench (try --help).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Which node's admin endpoint to talk to.
#[derive(Debug, Args)]
struct AdminTarget {
    /// The endpoint: unix://PATH or IP:PORT.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["config", "home"])]
    admin: Option<String>,
    /// The node's ringwire configuration file (its [admin] listen).
    #[arg(long, value_name = "FILE", conflicts_with = "home")]
    config: Option<PathBuf>,
    /// The node's home directory (the default admin socket under it).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
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

/// Sends one admin request and prints the answer as JSON.
fn admin_call(target: AdminTarget, req: admin::Request) -> Result<(), Failure> {
    use ringwire::config::{AdminAddress, Config};
    let (addr, home) = match target {
        AdminTarget { admin: Some(a), .. } => (
            a.parse::<AdminAddress>()
                .map_err(|e| Failure(format!("--admin: {e}")))?,
            PathBuf::from("."),
        ),
        AdminTarget {
            config: Some(file), ..
        } => {
            let c = Config::load(file)?;
            (c.admin.listen.clone(), c.home_dir())
        }
        AdminTarget {
            home: Some(home), ..
        } => (Config::default().admin.listen, home),
        _ => {
            let c = Config::default();
            (c.admin.listen.clone(), c.home_dir())
        }
    };
    let answer = admin::call(&addr, &home, &req)?;
    println!("{answer}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen { out, force } => keys::keygen(&out, force),
        Command::ShowNodeId(source) => keys::show_node_id(source),
        Command::Config(ConfigCommand::Default) => config_cmd::print_default(),
        Command::Config(ConfigCommand::Check { file, home }) => config_cmd::check(file, home),
        Command::Node {
            config,
            home,
            metrics,
            admin,
        } => node_cmd::run(node_cmd::NodeArgs {
            config,
            home,
            metrics,
            admin,
        }),
        Command::Testnet(args) => testnet::run(args),
        Command::Peers(target) => admin_call(target, admin::Request::Peers),
        Command::Stats(target) => admin_call(target, admin::Request::Stats),
        Command::Book(target) => admin_call(target, admin::Request::Book),
        Command::DialSeeds(target) => admin_call(target, admin::Request::DialSeeds),
        Command::Dial { addr, target } => admin_call(target, admin::Request::Dial { addr }),
        Command::Disconnect { id, target } => admin_call(target, admin::Request::Disconnect { id }),
        Command::Ban {
            id,
            duration,
            target,
        } => admin_call(target, admin::Request::Ban { id, duration }),
        Command::Bench { args } => bench::run(&args),
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
