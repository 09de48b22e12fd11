//! Strangers against a node made through the C ABI (`ringwire-abi-node`), on real sockets, on
//! both drivers (docs/RELIABILITY.md, "Figures"): a slowloris crowd and an accept flood under
//! `prlimit`, a handshake CPU burn from many addresses beside an honest peer, a
//! partial-message flood on every channel, control-frame floods (stock and native), PEX abuse. The attacks live in
//! `ringwire_test_support::adversary`; `cli/tests/adversarial.rs` runs the same ones against
//! `ringwire node`. They run one at a time (they measure the node's process and the machine's
//! CPU); `--nocapture` prints the figures.

use std::sync::Mutex;

use ringwire_test_support::adversary;
use ringwire_test_support::target::Maker;

/// One attack at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn each_driver(attack: fn(&Maker, &str) -> String) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let maker = Maker::CAbi(env!("CARGO_BIN_EXE_ringwire-abi-node").into());
    for driver in ["io_uring", "epoll"] {
        let figures = attack(&maker, driver);
        eprintln!("figures: {} {driver}: {figures}", maker.name());
    }
}

/// Not a test: the attacker process the attacks start (returns at once otherwise).
#[test]
fn adversary_role() {
    adversary::role_if_requested();
}

#[test]
fn a_slowloris_crowd_and_an_accept_flood_leave_descriptors_and_memory_at_baseline() {
    each_driver(adversary::slowloris);
}

#[test]
fn a_handshake_burn_from_many_addresses_is_held_to_the_accept_and_handshake_rates_and_every_honest_request_is_answered()
 {
    each_driver(adversary::handshake_burn);
}

#[test]
fn a_partial_message_flood_on_every_channel_is_disconnected_within_the_memory_budget() {
    each_driver(adversary::partial_flood);
}

#[test]
fn control_frame_floods_are_disconnected_with_their_reason_and_counted() {
    each_driver(adversary::control_floods);
}

#[test]
fn pex_floods_eclipse_and_overwrite_attempts_are_refused() {
    each_driver(adversary::pex_abuse);
}
