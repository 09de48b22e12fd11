//! Shared helpers for ringwire's benchmarks. The end-to-end harness arrives with the benchmark
//! issue; the criterion micro-benches live in `benches/benches/`.
