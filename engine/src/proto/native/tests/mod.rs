//! Multiplexer tests: two `Mux`es driven against each other through sealed records in
//! simulated time, scripted peers that send exact frames, and property tests.

mod basic;
mod budgets;
mod busy;
mod close;
mod codec;
mod deadline;
mod errors;
mod flow;
mod keepalive;
mod pair;
mod prop;
mod requests;
