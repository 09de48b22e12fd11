package benchchild

import (
	"errors"
	"flag"
	"time"
)

// Options are the flags every anchor takes, as the harness passes them
// (Spec::child_args in benches/src/plan.rs). A program embeds them in its
// own options beside the flags of its transport.
type Options struct {
	// Scenario is bulk, latency, handshake or one the program adds.
	Scenario string
	// Size is the message size in bytes (latency: the request size).
	Size int
	// BulkSize is the size of the latency scenario's low-priority load.
	BulkSize int
	// Load is the latency scenario's load: none or bulk.
	Load string
	// Peers is the number of connections where a scenario has several.
	Peers int
	// Warmup passes before the measured window opens.
	Warmup time.Duration
	// Duration is the length of the measured window.
	Duration time.Duration
	// Listen is the receiver's listen address.
	Listen string
	// Addr is the receiver as the sender reaches it: its LISTEN line.
	Addr string
	// Samples is the file for the latency round trips; empty for none.
	Samples string
}

// Common returns o itself, so that a program's options embedding Options
// satisfy the Common interface.
func (o *Options) Common() *Options {
	return o
}

// FlagHelp is what differs between the programs in the shared flags: the
// help texts that name their scenarios and addresses, and the default of
// -peers.
type FlagHelp struct {
	// Scenario is the help of -scenario: the scenarios the program runs.
	Scenario string
	// Peers is the default of -peers.
	Peers int
	// PeersHelp is the help of -peers.
	PeersHelp string
	// Listen is the help of -listen.
	Listen string
	// Addr is the help of -addr.
	Addr string
}

// Parse adds the shared flags to fs, which may hold the program's own flags
// already, parses args into o and the program's flags, and checks that a
// sender was given -addr.
func (o *Options) Parse(fs *flag.FlagSet, role string, args []string, help FlagHelp) error {
	var warmupMs, durationMs int
	fs.StringVar(&o.Scenario, "scenario", "bulk", help.Scenario)
	fs.IntVar(&o.Size, "size", 65536, "message size in bytes")
	fs.IntVar(&o.BulkSize, "bulk-size", 65536, "latency: size of the low-priority load messages")
	fs.StringVar(&o.Load, "load", "none", "latency: none | bulk")
	fs.IntVar(&o.Peers, "peers", help.Peers, help.PeersHelp)
	fs.IntVar(&warmupMs, "warmup-ms", 500, "warm-up before the measured window")
	fs.IntVar(&durationMs, "duration-ms", 2000, "length of the measured window")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", help.Listen)
	fs.StringVar(&o.Addr, "addr", "", help.Addr)
	fs.StringVar(&o.Samples, "samples", "", "latency: file for round-trip samples")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Warmup = time.Duration(warmupMs) * time.Millisecond
	o.Duration = time.Duration(durationMs) * time.Millisecond
	if role == "send" && o.Addr == "" {
		return errors.New("send needs -addr")
	}
	return nil
}
