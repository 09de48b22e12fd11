package ringwire

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// sendBatchLen is how many envelopes the benchmark's sender hands the library per call.
const sendBatchLen = 256

// BenchmarkGoToGo measures Go-to-Go throughput through the binding: two nodes in this process
// on loopback, one connection, one channel (send queue 1024), a sender goroutine and a
// receiving loop, the workload of the engine's node_throughput measurement (see
// `make go-bench`, which runs that Rust measurement and this benchmark one after the other).
//
// Modes: "batch" sends with SendBatch, 256 envelopes per call, the binding's full-speed path;
// "single" calls Send once per message (one call into C per message, so it cannot meet the
// target of 0.1 calls per message and is shown for comparison). Both receive with
// ReceiveBatchNext: one call per batch of up to 256, which also releases the previous batch.
//
// Metrics: msgs/s, MB/s (payload), cgo-calls/msg (every call into C on both sides, divided by
// the messages), and x-rust, the ratio to the Rust engine's msgs/s for the same size when
// RINGWIRE_RUST_FIGURES names a file holding node_throughput's output.
func BenchmarkGoToGo(b *testing.B) {
	for _, size := range []int{4096, 256} {
		for _, mode := range []string{"batch", "single"} {
			b.Run(fmt.Sprintf("size=%d/%s", size, mode), func(b *testing.B) {
				benchThroughput(b, size, mode == "batch")
			})
		}
	}
}

func benchThroughput(b *testing.B, size int, batched bool) {
	_, _, ca, cb, _, idb := pairDesc(b, ChannelDesc{ID: 0x46, SendQueueCapacity: 1024})
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i*31 + 7)
	}
	envs := make([]Envelope, sendBatchLen)
	for i := range envs {
		envs[i] = Envelope{To: ToPeer, Peer: idb, Payload: msg}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	total := b.N
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	calls0 := cgoCalls.Load()
	start := time.Now()
	sendErr := make(chan error, 1)
	go func() {
		if !batched {
			for range total {
				if err := ca.Send(ctx, idb, msg); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- nil
			return
		}
		for left := total; left > 0; {
			n := min(left, len(envs))
			if err := ca.SendBatch(ctx, envs[:n]); err != nil {
				sendErr <- err
				return
			}
			left -= n
		}
		sendErr <- nil
	}()
	got := 0
	var batch *Batch
	for got < total {
		var err error
		if batch, err = cb.ReceiveBatchNext(ctx, batch); err != nil {
			b.Fatalf("receive after %d of %d: %v", got, total, err)
		}
		got += batch.Len()
	}
	batch.Release()
	elapsed := time.Since(start)
	calls := cgoCalls.Load() - calls0
	b.StopTimer()
	if err := <-sendErr; err != nil {
		b.Fatal(err)
	}
	rate := float64(total) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(float64(calls)/float64(total), "cgo-calls/msg")
	if rust := rustFigure(b, size); rust > 0 {
		b.ReportMetric(rate/rust, "x-rust")
	}
}

// rustLine matches node_throughput's output: "driver=… mode=native size=256: 123 msg/s, …".
var rustLine = regexp.MustCompile(`mode=native (?:lent=\d+ )?size=(\d+): (\d+) msg/s`)

// rustFigure is the Rust engine's msgs/s for size from the file RINGWIRE_RUST_FIGURES names
// (the last matching line), or 0.
func rustFigure(b *testing.B, size int) float64 {
	path := os.Getenv("RINGWIRE_RUST_FIGURES")
	if path == "" {
		return 0
	}
	f, err := os.Open(path)
	if err != nil {
		b.Logf("RINGWIRE_RUST_FIGURES: %v", err)
		return 0
	}
	defer f.Close()
	var rate float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := rustLine.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != strconv.Itoa(size) {
			continue
		}
		rate, _ = strconv.ParseFloat(m[2], 64)
	}
	return rate
}
