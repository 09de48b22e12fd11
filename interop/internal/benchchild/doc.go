// Package benchchild is what the Go anchors of the benchmark harness
// (benches/, binary ringwire-bench) share, whatever transport they measure:
// the child protocol (the flags the harness passes, the "LISTEN <addr>" and
// "RESULT <json>" lines it reads back, the samples file) and the
// transport-free shape of the measurements (the receiver's counting window,
// the latency sender's ping loop, the handshake sender's repeat loop).
//
// A program (cmd/mconnbench, cmd/lp2pbench) keeps only what belongs to its
// transport: how it listens, connects, sends and notices a hang-up.
package benchchild
