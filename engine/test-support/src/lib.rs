//! Helpers shared by the workspace's integration tests. A library, so each test binary uses
//! what it needs and nothing is dead code; the binaries stay separate, because some of them
//! measure their own process (memory, throughput) and must not share it with other tests.

pub mod adversary;
pub mod book;
pub mod child;
pub mod compress;
pub mod configured;
pub mod fault_proxy;
pub mod faults;
pub mod golden;
pub mod node;
pub mod process;
pub mod raw_native;
pub mod raw_stock;
pub mod target;
