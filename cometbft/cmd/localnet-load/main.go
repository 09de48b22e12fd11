// Command localnet-load offers a fixed rate of kvstore transactions to a running validator
// network, watches every node commit them, and reports what a validator operator would ask of
// the network: committed transactions per second, commit latency (p50, p99), block interval,
// CPU seconds per node, and each node's peers by protocol. It prints a live table while it
// runs and a summary at the end (text, and JSON with -json).
//
// Transactions are sent round-robin to the nodes' RPC (`broadcast_tx_async`); a transaction's
// commit latency is the time from its send to the moment the node it was sent to reports the
// block that holds it (polled every -poll). Node i is described by -rpc, -kind, -pid and -log
// at the same position; -pid and -log may be empty for a node (no CPU figure, no protocol
// split). With -series it also appends a CSV row (time, highest height, transactions
// committed in the interval and their commit latency p50/p99) every -series-every, for
// `make soak`'s chart.
//
//	localnet-load -rpc 127.0.0.1:26657,127.0.0.1:26667 -kind stock,ringwire \
//	    -pid 1234,1240 -log node0.log,node1.log -rate 200 -size 256 -duration 30s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

type options struct {
	rpc      []string
	kinds    []string
	pids     []string
	logs     []string
	rate     int
	size     int
	warmup   time.Duration
	duration time.Duration
	poll     time.Duration
	table    time.Duration
	jsonOut  string
	label    string
	// series, when set, is a CSV file that gets a row every seriesEvery.
	series      string
	seriesEvery time.Duration
}

func list(s string, n int) []string {
	if s == "" {
		return make([]string, n)
	}
	out := strings.Split(s, ",")
	for len(out) < n {
		out = append(out, "")
	}
	return out
}

func parse() (options, error) {
	var o options
	var rpc, kinds, pids, logs string
	flag.StringVar(&rpc, "rpc", "", "comma-separated host:port of each node's RPC (required)")
	flag.StringVar(&kinds, "kind", "", "comma-separated kind of each node, e.g. stock,ringwire")
	flag.StringVar(&pids, "pid", "", "comma-separated process id of each node (CPU seconds)")
	flag.StringVar(&logs, "log", "", "comma-separated log file of each node (peers by protocol; ringwire nodes)")
	flag.IntVar(&o.rate, "rate", 200, "transactions offered per second, over all nodes")
	flag.IntVar(&o.size, "size", 256, "bytes per transaction")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "load before the measured window")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "measured window")
	flag.DurationVar(&o.poll, "poll", 20*time.Millisecond, "how often each node's height is read")
	flag.DurationVar(&o.table, "table", 2*time.Second, "live table interval (0: none)")
	flag.StringVar(&o.jsonOut, "json", "", "write the summary as JSON to this file")
	flag.StringVar(&o.label, "label", "", "a name for this run in the summary")
	flag.StringVar(&o.series, "series", "", "append a CSV row (time, highest height, commits and commit latency p50/p99 of the interval) to this file every -series-every")
	flag.DurationVar(&o.seriesEvery, "series-every", 5*time.Second, "interval of the -series rows")
	flag.Parse()
	if rpc == "" {
		return o, fmt.Errorf("-rpc is required")
	}
	o.rpc = strings.Split(rpc, ",")
	n := len(o.rpc)
	o.kinds, o.pids, o.logs = list(kinds, n), list(pids, n), list(logs, n)
	if o.rate <= 0 || o.size < 16 || o.duration <= 0 || o.poll <= 0 || o.seriesEvery <= 0 {
		return o, fmt.Errorf("-rate must be positive, -size at least 16, -duration, -poll and -series-every positive")
	}
	return o, nil
}

func main() {
	o, err := parse()
	if err != nil {
		fmt.Fprintln(os.Stderr, "localnet-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "localnet-load:", err)
		os.Exit(1)
	}
	s.print(os.Stdout)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "localnet-load:", err)
			os.Exit(1)
		}
	}
}
