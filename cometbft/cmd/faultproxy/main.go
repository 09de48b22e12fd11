// Command faultproxy forwards TCP connections and injects the faults of a bad network path into
// them: per-chunk delay and jitter, "loss", and delivery held back so that chunks of different
// connections arrive in another order than they were sent. It is the e2e suite's stand-in for
// netem, which these kernels lack (cometbft/localnet/e2e.sh, docs/E2E.md).
//
// Each -route listen=target pair accepts on listen and dials target for every connection; the
// bytes each side reads (a chunk: what one read returned, at most 16 KiB) are delivered to the
// other side no earlier than
//
//	read time + delay ± jitter (uniform) [+ rto with probability loss] [+ holdfor with probability hold]
//
// and never before the chunk read before it on the same direction, so each connection's byte
// stream stays intact and in order. TCP hides packet loss from the application: a lost segment
// shows up as a stall of one retransmission timeout followed by a burst, which is what a "loss"
// here is. A held chunk delays its own connection only, so chunks sent later on other
// connections overtake it: messages of different peers are reordered.
//
// The faults are read from -faults, a file of space-separated key=value pairs (delay=50ms
// jitter=30ms loss=0.02 rto=200ms hold=0.05 holdfor=150ms); the file is read again every 500 ms,
// so a test switches faults on and off by rewriting it. A missing or empty file means no faults.
// Every -stats interval and at exit the proxy prints its counters on stderr.
//
// -bind sets the address it dials from, so that a test can cut the proxy's links by address.
//
//	faultproxy -route 10.0.0.253:36001=10.0.0.1:26656 -bind 10.0.0.253 -faults /tmp/faults -stats 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type routes []string

func (r *routes) String() string     { return strings.Join(*r, ",") }
func (r *routes) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	var rs routes
	flag.Var(&rs, "route", "listen=target (repeatable): accept on listen, forward to target")
	faults := flag.String("faults", "", "file with the faults (key=value pairs), reread every 500 ms")
	every := flag.Duration("stats", 10*time.Second, "print the counters this often (0: only at exit)")
	bind := flag.String("bind", "", "local address the proxy dials targets from (default: the kernel's choice)")
	queue := flag.Int("queue", 256, "chunks in flight per direction of a connection before reading pauses")
	flag.Parse()
	if len(rs) == 0 || *queue <= 0 {
		fmt.Fprintln(os.Stderr, "faultproxy: at least one -route listen=target and a positive -queue")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	p := newProxy(*queue)
	if *bind != "" {
		p.dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(*bind)}
	}
	go p.watchFaults(ctx, *faults)
	for _, r := range rs {
		listen, target, ok := strings.Cut(r, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "faultproxy: route %q is not listen=target\n", r)
			os.Exit(2)
		}
		if err := p.serve(ctx, listen, target); err != nil {
			fmt.Fprintln(os.Stderr, "faultproxy:", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "faultproxy: %d routes up: %s\n", len(rs), rs.String())
	var tick <-chan time.Time
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			p.printStats(os.Stderr)
		case <-ctx.Done():
			p.printStats(os.Stderr)
			return
		}
	}
}
