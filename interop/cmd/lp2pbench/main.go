// Command lp2pbench is the go-libp2p anchor of the benchmark harness
// (benches/, binary ringwire-bench). It runs one side of one measurement with
// CometBFT's own libp2p backend, package github.com/cometbft/cometbft/lp2p:
// an lp2p.Host (go-libp2p over QUIC on UDP loopback, TLS 1.3 with libp2p peer
// IDs) and an lp2p.Switch with one reactor, exactly as a node built with
// p2p.libp2p.enabled = true wires them. Messages travel as they do between
// such nodes: every Peer.Send opens a new QUIC stream for its channel's
// protocol (/p2p/cometbft/1.0.0/channel/0xNN), writes one length-prefixed
// protobuf message and closes the stream; the receiving Switch hands it to
// the reactor through its priority queue and worker pool.
//
// The harness starts two processes of this program per measurement:
//
//	lp2pbench recv -scenario S [flags]            listens, prints "LISTEN <host:port>/<peer-id>"
//	lp2pbench send -scenario S -addr A [flags]    connects to A
//
// and both print one line "RESULT <json>" before they exit (see
// internal/benchchild/report.go).
// The LISTEN line carries the receiver's libp2p peer ID after the UDP
// address, because a libp2p dial needs both; the harness passes the string
// through to the sender's -addr unchanged. Scenarios:
//
//	bulk       the sender sends -size-byte messages flat out on one channel
//	           (priority 5); the receiver counts them over a window that opens
//	           -warmup-ms after the first message and lasts -duration-ms,
//	           reports, closes the connection and exits.
//	latency    the sender sends -size-byte requests (the first 8 bytes a
//	           little-endian sequence number) on a priority-10 channel and
//	           waits for each echo; with -load bulk, senders keep a priority-1
//	           channel saturated with -bulk-size messages in the same
//	           direction. Round-trip times of the window go to -samples
//	           (little-endian u64 nanoseconds).
//	handshake  the sender connects (host.Connect: QUIC handshake with TLS 1.3
//	           and libp2p peer authentication, then the identify exchange that
//	           Connect waits for) and closes the connection, over and over;
//	           the receiver accepts until the harness ends it (it prints no
//	           RESULT line).
//
// Messages are abci RequestEcho protobufs whose Message field is the payload,
// as in the lp2p package's own benchmark (lp2p/bench_test.go); payload counts
// are the -size application bytes, not the protobuf or stream framing.
//
// Configuration: the "maxed out" settings of lp2p/bench_test.go, i.e. the
// libp2p resource manager off (p2p.libp2p.limits.mode = "disabled") and the
// reactor worker pool at 64 to 128 workers with a 500 ms latency threshold
// (p2p.libp2p.scaler). Peer.Send is synchronous (it returns once the stream
// is written and closed), so "flat out" means -send-concurrency goroutines
// calling Send at once, as a node's reactors do from their own goroutines.
//
// Usage (from interop/): go build -o /tmp/lp2pbench ./cmd/lp2pbench
package main

import (
	"errors"
	"flag"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

// options are the shared flags and the send concurrency.
type options struct {
	benchchild.Options
	sendConcurrency int
}

// help is how the shared flags read in this program.
var help = benchchild.FlagHelp{
	Scenario:  "bulk | latency | handshake",
	Peers:     1,
	PeersHelp: "accepted for the harness; lp2pbench always uses one connection",
	Listen:    "recv: UDP address to listen on",
	Addr:      "send: receiver as host:port/peer-id (its LISTEN line)",
}

func parse(role string, args []string) (*options, error) {
	fs := flag.NewFlagSet("lp2pbench "+role, flag.ContinueOnError)
	o := &options{}
	fs.IntVar(&o.sendConcurrency, "send-concurrency", defaultSendConcurrency,
		"bulk and latency load: goroutines calling Peer.Send at once")
	if err := o.Parse(fs, role, args, help); err != nil {
		return nil, err
	}
	if o.sendConcurrency < 1 {
		return nil, errors.New("-send-concurrency must be at least 1")
	}
	return o, nil
}

func main() {
	usage := []string{"usage: lp2pbench recv|send -scenario bulk|latency|handshake [flags]"}
	benchchild.Main("lp2pbench", usage, parse, map[string]func(*options) error{
		"bulk/recv":      bulkRecv,
		"bulk/send":      bulkSend,
		"latency/recv":   latencyRecv,
		"latency/send":   latencySend,
		"handshake/recv": handshakeRecv,
		"handshake/send": handshakeSend,
	})
}
