//! The `ringwire` command. Subcommands arrive with the CLI issue; for now it prints the
//! version so the binary target is built and tested from the start.

fn main() {
    println!("ringwire {}", env!("CARGO_PKG_VERSION"));
}
