// Command ringwire-bench-go is the Go child of the benchmark harness (benches/, scenario S5:
// S1, S2 and 4 KiB messages through bindings-go). It follows the harness's child protocol
// (benches/src/child/mod.rs): `ringwire-bench-go recv [flags]` listens, prints
// `LISTEN <addr>`, receives on one channel and prints `RESULT <json>` once its measured window
// has closed; `ringwire-bench-go send --addr <addr> [flags]` dials and sends flat out until the
// receiver goes away, then prints its own `RESULT` line. Only the `bulk` workload with the
// `pattern` payload is implemented, which is all S5 needs.
//
// The sender sends as a Go node would pick by size: messages of at least 4 KiB as one library
// Buffer sent over and over with SendBuffer (no payload copy, one call per message), smaller
// ones 256 envelopes per call (SendBatch, which copies them into shared chunks);
// RINGWIRE_BENCH_GO_SEND=buffer or =batch forces one way. The receiver drains with
// ReceiveBatchNext, one call per batch (which also releases the one before). Build it against the release library:
//
//	CGO_LDFLAGS=-L<cargo target>/release go build ./cmd/ringwire-bench-go
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

// channelID is the channel the measurement runs on.
const channelID = 0x20

// sendBatch is how many envelopes one SendBatch call carries.
const sendBatch = 256

// options are the harness's child flags (the same names for every child).
type options struct {
	scenario   string
	size       int
	bulkSize   int
	load       string
	peers      int
	warmup     time.Duration
	duration   time.Duration
	listen     string
	addr       string
	samples    string
	payload    string
	perMessage bool
	interleave bool
}

func parse(role string, args []string) (options, error) {
	var o options
	var warmupMs, durationMs int64
	fs := flag.NewFlagSet("ringwire-bench-go "+role, flag.ContinueOnError)
	fs.StringVar(&o.scenario, "scenario", "bulk", "workload (only bulk)")
	fs.IntVar(&o.size, "size", 65536, "message size in bytes")
	fs.IntVar(&o.bulkSize, "bulk-size", 65536, "load message size (latency; unused)")
	fs.StringVar(&o.load, "load", "none", "load beside latency requests (unused)")
	fs.IntVar(&o.peers, "peers", 100, "fan-out connections (unused)")
	fs.Int64Var(&warmupMs, "warmup-ms", 500, "warm-up before the window, ms")
	fs.Int64Var(&durationMs, "duration-ms", 2000, "measured window, ms")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "receiver: listen address")
	fs.StringVar(&o.addr, "addr", "", "sender: address to dial")
	fs.StringVar(&o.samples, "samples", "", "latency samples file (unused)")
	fs.StringVar(&o.payload, "payload", "pattern", "payload contents (only pattern)")
	fs.BoolVar(&o.perMessage, "per-message-write", false, "raw TCP only (ignored)")
	fs.BoolVar(&o.interleave, "interleaved", false, "raw TCP only (ignored)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.warmup = time.Duration(warmupMs) * time.Millisecond
	o.duration = time.Duration(durationMs) * time.Millisecond
	switch {
	case o.scenario != "bulk":
		return o, fmt.Errorf("scenario %q is not implemented (only bulk)", o.scenario)
	case o.payload != "pattern":
		return o, fmt.Errorf("payload %q is not implemented (only pattern)", o.payload)
	case o.size <= 0:
		return o, errors.New("--size must be positive")
	case role == "send" && o.addr == "":
		return o, errors.New("send needs --addr")
	}
	return o, nil
}

// report is the child protocol's RESULT line; fields without a value stay zero.
type report struct {
	WindowMessages uint64  `json:"window_messages"`
	WindowBytes    uint64  `json:"window_bytes"`
	WindowSecs     float64 `json:"window_secs"`
	TotalMessages  uint64  `json:"total_messages"`
	TotalBytes     uint64  `json:"total_bytes"`
	Samples        uint64  `json:"samples"`
	Connections    uint64  `json:"connections"`
	RSSBaseKiB     uint64  `json:"rss_base_kib"`
	RSSKiB         uint64  `json:"rss_kib"`
}

func printResult(r report) {
	j, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", j)
}

// rssKiB is this process's resident set, KiB (0 when unreadable).
func rssKiB() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				v, _ := strconv.ParseUint(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

func startNode(seed byte, listen string, o options) (*ringwire.Node, *ringwire.Channel, error) {
	n, err := ringwire.NewNode(ringwire.Config{
		Seed:    bytes.Repeat([]byte{seed}, 32),
		Network: "ringwire-bench",
		Listen:  listen,
		Shards:  1,
	})
	if err != nil {
		return nil, nil, err
	}
	ch, err := n.OpenChannel(ringwire.ChannelDesc{
		ID:                  channelID,
		SendQueueCapacity:   1024,
		RecvMessageCapacity: max(o.size, 1<<20),
	})
	if err != nil {
		_ = n.Close()
		return nil, nil, err
	}
	return n, ch, nil
}

// recv listens, then counts what arrives until the window (which opens o.warmup after the
// first message) has lasted o.duration.
func recv(o options) error {
	base := rssKiB()
	n, ch, err := startNode(1, o.listen, o)
	if err != nil {
		return err
	}
	defer n.Close()
	defer ch.Close()
	addr, err := n.ListenAddr()
	if err != nil {
		return err
	}
	fmt.Printf("LISTEN %s\n", addr)
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.duration+60*time.Second)
	defer cancel()
	var msgs, byts uint64
	var first, t0 time.Time
	var m0, b0 uint64
	var b *ringwire.Batch
	defer func() { b.Release() }()
	for {
		if b, err = ch.ReceiveBatchNext(ctx, b); err != nil {
			return fmt.Errorf("receive after %d messages: %w", msgs, err)
		}
		for _, m := range b.Messages() {
			byts += uint64(len(m.Payload))
		}
		msgs += uint64(b.Len())
		now := time.Now()
		switch {
		case first.IsZero():
			first = now
		case t0.IsZero():
			if now.Sub(first) >= o.warmup {
				t0, m0, b0 = now, msgs, byts
			}
		case now.Sub(t0) >= o.duration:
			printResult(report{
				WindowMessages: msgs - m0,
				WindowBytes:    byts - b0,
				WindowSecs:     now.Sub(t0).Seconds(),
				TotalMessages:  msgs,
				TotalBytes:     byts,
				Connections:    1,
				RSSBaseKiB:     base,
				RSSKiB:         rssKiB(),
			})
			return nil
		}
	}
}

// send dials o.addr and sends until the receiver goes away.
func send(o options) error {
	base := rssKiB()
	n, ch, err := startNode(2, "", o)
	if err != nil {
		return err
	}
	defer n.Close()
	defer ch.Close()
	peer, err := n.Dial(o.addr, nil)
	if err != nil {
		return err
	}
	rss := rssKiB()
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.duration+60*time.Second)
	defer cancel()
	// The receiver ends the measurement by closing: stop at its down event.
	go func() {
		for {
			evs, err := n.PollEvents(ctx)
			if err != nil {
				return
			}
			for _, e := range evs {
				if e.Kind == ringwire.PeerDown && e.Peer == peer {
					cancel()
					return
				}
			}
		}
	}()
	msg := make([]byte, o.size)
	for i := range msg {
		msg[i] = byte(i)*31 + 7
	}
	if useBuffers(o.size) {
		msgs, err := sendBuffers(ctx, ch, peer, msg)
		if err != nil {
			return err
		}
		printResult(report{
			TotalMessages: msgs,
			TotalBytes:    msgs * uint64(o.size),
			Connections:   1,
			RSSBaseKiB:    base,
			RSSKiB:        rss,
		})
		return nil
	}
	envs := make([]ringwire.Envelope, sendBatch)
	for i := range envs {
		envs[i] = ringwire.Envelope{To: ringwire.ToPeer, Peer: peer, Payload: msg}
	}
	// Counts whole batches: the part of a batch queued before the send failed (the receiver
	// left) is not counted. The receiver's count is the measurement.
	var msgs uint64
	for ctx.Err() == nil {
		if err := ch.SendBatch(ctx, envs); err != nil {
			break
		}
		msgs += sendBatch
	}
	printResult(report{
		TotalMessages: msgs,
		TotalBytes:    msgs * uint64(o.size),
		Connections:   1,
		RSSBaseKiB:    base,
		RSSKiB:        rss,
	})
	return nil
}

// bufferFrom is the smallest message sent from a library Buffer by default: from there on the
// copy SendBatch makes costs more than one library call per message
// (docs/PERFORMANCE.md, "The Go binding").
const bufferFrom = 4096

// useBuffers says whether messages of size bytes go out with SendBuffer.
func useBuffers(size int) bool {
	switch os.Getenv("RINGWIRE_BENCH_GO_SEND") {
	case "buffer":
		return true
	case "batch":
		return false
	}
	return size >= bufferFrom
}

// sendBuffers sends msg, copied once into a library Buffer, with SendBuffer until ctx ends:
// every message refers to the same bytes, as the Rust child's clones of one payload do.
func sendBuffers(ctx context.Context, ch *ringwire.Channel, peer ringwire.NodeID, msg []byte) (uint64, error) {
	buf, err := ringwire.NewBuffer(len(msg))
	if err != nil {
		return 0, err
	}
	defer buf.Release()
	copy(buf.Bytes(), msg)
	var msgs uint64
	for ctx.Err() == nil {
		if err := ch.SendBuffer(ctx, peer, buf); err != nil {
			break
		}
		msgs++
	}
	return msgs, nil
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "recv" && os.Args[1] != "send") {
		fmt.Fprintln(os.Stderr, "usage: ringwire-bench-go recv|send [flags]")
		os.Exit(2)
	}
	role := os.Args[1]
	o, err := parse(role, os.Args[2:])
	if err == nil {
		if role == "recv" {
			err = recv(o)
		} else {
			err = send(o)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ringwire-bench-go %s: %v\n", role, err)
		os.Exit(1)
	}
}
