// Command mconnbench is the stock CometBFT anchor of the benchmark harness
// (benches/, binary ringwire-bench). It runs one side of one measurement over
// loopback TCP with stock CometBFT's own p2p/conn: MConnection over
// SecretConnection, exactly as a node wires them (no NodeInfo exchange, which
// costs nothing per message).
//
// The harness starts two processes of this program per measurement:
//
//	mconnbench recv -scenario S [flags]            listens, prints "LISTEN <addr>"
//	mconnbench send -scenario S -addr A [flags]    dials A
//
// and both print one line "RESULT <json>" before they exit (see report.go).
// Scenarios:
//
//	bulk       the sender queues -size-byte messages flat out on one channel;
//	           the receiver counts them over a window that opens -warmup-ms
//	           after the first message and lasts -duration-ms, reports, exits.
//	latency    the sender sends -size-byte requests on a high-priority channel
//	           and waits for each echo; with -load bulk a second goroutine keeps
//	           a low-priority channel saturated with -bulk-size messages in the
//	           same direction. Round-trip times of the window go to -samples
//	           (little-endian u64 nanoseconds).
//	handshake  the sender dials, completes the SecretConnection handshake and
//	           closes, over and over; the receiver accepts until the harness
//	           ends it (it prints no RESULT line).
//	fanout     the sender dials -peers connections and broadcasts -size-byte
//	           messages to every one; the receiver accepts them all and counts.
//
// Scenario s9 (overload without stale buildup) is one process, not a pair:
//
//	mconnbench run -scenario s9 -nodes N -duration-ms D [flags]
//
// starts N nodes in this process, fully meshed over loopback, runs the S9
// mix of `ringwire testnet --s9` for D ms and prints one RESULT line with the
// same summary fields (s9.go).
//
// Rate limits and the flush throttle come from -send-rate, -recv-rate and
// -flush-throttle, so one binary gives both the stock defaults and the
// limits-lifted configuration.
//
// Usage (from interop/): go build -o /tmp/mconnbench ./cmd/mconnbench
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// options are the flags shared by both roles.
type options struct {
	scenario      string
	size          int
	bulkSize      int
	load          string
	peers         int
	nodes         int
	warmup        time.Duration
	duration      time.Duration
	listen        string
	addr          string
	samples       string
	sendRate      int64
	recvRate      int64
	flushThrottle time.Duration
	maxPayload    int
}

func parse(role string, args []string) (*options, error) {
	fs := flag.NewFlagSet("mconnbench "+role, flag.ContinueOnError)
	o := &options{}
	var warmupMs, durationMs int
	fs.StringVar(&o.scenario, "scenario", "bulk", "bulk | latency | handshake | fanout | s9")
	fs.IntVar(&o.size, "size", 65536, "message size in bytes")
	fs.IntVar(&o.bulkSize, "bulk-size", 65536, "latency: size of the low-priority load messages")
	fs.StringVar(&o.load, "load", "none", "latency: none | bulk")
	fs.IntVar(&o.peers, "peers", 100, "fanout: number of connections")
	fs.IntVar(&o.nodes, "nodes", 8, "s9: number of nodes in the mesh")
	fs.IntVar(&warmupMs, "warmup-ms", 500, "warm-up before the measured window")
	fs.IntVar(&durationMs, "duration-ms", 2000, "length of the measured window")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "recv: address to listen on")
	fs.StringVar(&o.addr, "addr", "", "send: address to dial")
	fs.StringVar(&o.samples, "samples", "", "latency: file for round-trip samples")
	fs.Int64Var(&o.sendRate, "send-rate", 5120000, "MConnection send rate, bytes/s (stock node default)")
	fs.Int64Var(&o.recvRate, "recv-rate", 5120000, "MConnection receive rate, bytes/s (stock node default)")
	fs.DurationVar(&o.flushThrottle, "flush-throttle", 10*time.Millisecond, "MConnection flush throttle (stock node default)")
	fs.IntVar(&o.maxPayload, "max-payload", 1024, "MConnection max packet payload (stock default)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.warmup = time.Duration(warmupMs) * time.Millisecond
	o.duration = time.Duration(durationMs) * time.Millisecond
	if role == "send" && o.addr == "" {
		return nil, fmt.Errorf("send needs -addr")
	}
	return o, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mconnbench recv|send -scenario bulk|latency|handshake|fanout [flags]")
		fmt.Fprintln(os.Stderr, "       mconnbench run -scenario s9 -nodes N [flags]")
		os.Exit(2)
	}
	role := os.Args[1]
	o, err := parse(role, os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "mconnbench:", err)
		os.Exit(2)
	}
	if err := run(role, o); err != nil {
		fmt.Fprintln(os.Stderr, "mconnbench:", role, o.scenario+":", err)
		os.Exit(1)
	}
}

func run(role string, o *options) error {
	switch o.scenario + "/" + role {
	case "bulk/recv":
		return bulkRecv(o)
	case "bulk/send":
		return bulkSend(o)
	case "latency/recv":
		return latencyRecv(o)
	case "latency/send":
		return latencySend(o)
	case "handshake/recv":
		return handshakeRecv(o)
	case "handshake/send":
		return handshakeSend(o)
	case "fanout/recv":
		return fanoutRecv(o)
	case "fanout/send":
		return fanoutSend(o)
	case "s9/run":
		return s9Run(o)
	}
	return fmt.Errorf("unknown scenario/role %s/%s", o.scenario, role)
}
