package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	f, err := parseFaults("delay=50ms jitter=30ms loss=0.02 rto=300ms hold=0.1 holdfor=150ms")
	if err != nil {
		t.Fatal(err)
	}
	want := faults{delay: 50 * time.Millisecond, jitter: 30 * time.Millisecond, loss: 0.02,
		rto: 300 * time.Millisecond, hold: 0.1, holdfor: 150 * time.Millisecond}
	if f != want {
		t.Fatalf("got %v, want %v", f, want)
	}
	for _, bad := range []string{"delay", "loss=2", "jitter=-1s", "colour=red", "delay=fast"} {
		if _, err := parseFaults(bad); err == nil {
			t.Errorf("parseFaults(%q) accepted", bad)
		}
	}
}

// Every chunk is delayed by delay±jitter, plus rto when it stalls and holdfor when it is held.
func TestDueBounds(t *testing.T) {
	f := faults{delay: 50 * time.Millisecond, jitter: 20 * time.Millisecond, loss: 0.5,
		rto: 200 * time.Millisecond, hold: 0.5, holdfor: 100 * time.Millisecond}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var stalls, holds int
	for range 2000 {
		at, stalled, held := f.due(now, r)
		lo, hi := 30*time.Millisecond, 70*time.Millisecond
		if stalled {
			lo, hi = lo+f.rto, hi+f.rto
			stalls++
		}
		if held {
			lo, hi = lo+f.holdfor, hi+f.holdfor
			holds++
		}
		if d := at.Sub(now); d < lo || d > hi {
			t.Fatalf("delay %v outside [%v, %v] (stalled %v, held %v)", d, lo, hi, stalled, held)
		}
	}
	if stalls < 800 || stalls > 1200 || holds < 800 || holds > 1200 {
		t.Errorf("%d stalls and %d holds in 2000 draws at probability 0.5", stalls, holds)
	}
}

// Bytes through the proxy arrive whole and in order, no sooner than the configured delay, and
// the counters see the stalls the faults file asked for.
func TestForwardsInOrderWithDelay(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	file := filepath.Join(t.TempDir(), "faults")
	if err := os.WriteFile(file, []byte("delay=40ms loss=1 rto=10ms"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProxy(16)
	go p.watchFaults(ctx, file)
	for p.current.Load().delay == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := free.Addr().String()
	free.Close()
	if err := p.serve(ctx, addr, echo.Addr().String()); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 200_000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	start := time.Now()
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	// Both directions add delay + rto: at least 100 ms for the round trip.
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("echo through the proxy took %v, want at least 100 ms", el)
	}
	for i := range got {
		if got[i] != msg[i] {
			t.Fatalf("byte %d differs: the stream was reordered or corrupted", i)
		}
	}
	if p.stalls.Load() == 0 || p.stalls.Load() != p.chunks.Load() {
		t.Errorf("%d stalls of %d chunks with loss=1", p.stalls.Load(), p.chunks.Load())
	}
}
