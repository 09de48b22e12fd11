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
// and both print one line "RESULT <json>" before they exit (see
// internal/benchchild/report.go). Scenarios:
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
	"time"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

// options are the shared flags and those of MConnection and S9.
type options struct {
	benchchild.Options
	nodes         int
	sendRate      int64
	recvRate      int64
	flushThrottle time.Duration
	maxPayload    int
}

// help is how the shared flags read in this program.
var help = benchchild.FlagHelp{
	Scenario:  "bulk | latency | handshake | fanout | s9",
	Peers:     100,
	PeersHelp: "fanout: number of connections",
	Listen:    "recv: address to listen on",
	Addr:      "send: address to dial",
}

func parse(role string, args []string) (*options, error) {
	fs := flag.NewFlagSet("mconnbench "+role, flag.ContinueOnError)
	o := &options{}
	fs.IntVar(&o.nodes, "nodes", 8, "s9: number of nodes in the mesh")
	fs.Int64Var(&o.sendRate, "send-rate", 5120000, "MConnection send rate, bytes/s (stock node default)")
	fs.Int64Var(&o.recvRate, "recv-rate", 5120000, "MConnection receive rate, bytes/s (stock node default)")
	fs.DurationVar(&o.flushThrottle, "flush-throttle", 10*time.Millisecond, "MConnection flush throttle (stock node default)")
	fs.IntVar(&o.maxPayload, "max-payload", 1024, "MConnection max packet payload (stock default)")
	if err := o.Parse(fs, role, args, help); err != nil {
		return nil, err
	}
	return o, nil
}

func main() {
	usage := []string{
		"usage: mconnbench recv|send -scenario bulk|latency|handshake|fanout [flags]",
		"       mconnbench run -scenario s9 -nodes N [flags]",
	}
	benchchild.Main("mconnbench", usage, parse, map[string]func(*options) error{
		"bulk/recv":      bulkRecv,
		"bulk/send":      bulkSend,
		"latency/recv":   latencyRecv,
		"latency/send":   latencySend,
		"handshake/recv": handshakeRecv,
		"handshake/send": handshakeSend,
		"fanout/recv":    fanoutRecv,
		"fanout/send":    fanoutSend,
		"s9/run":         s9Run,
	})
}
