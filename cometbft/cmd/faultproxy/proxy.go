package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// faults is what the proxy does to each chunk.
type faults struct {
	delay, jitter time.Duration
	loss          float64 // probability that a chunk stalls for rto
	rto           time.Duration
	hold          float64 // probability that a chunk is held back for holdfor
	holdfor       time.Duration
}

func (f faults) String() string {
	return fmt.Sprintf("delay=%v jitter=%v loss=%g rto=%v hold=%g holdfor=%v",
		f.delay, f.jitter, f.loss, f.rto, f.hold, f.holdfor)
}

// parseFaults reads space-separated key=value pairs; unknown keys and bad values are errors.
func parseFaults(s string) (faults, error) {
	f := faults{rto: 200 * time.Millisecond, holdfor: 100 * time.Millisecond}
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return f, fmt.Errorf("%q is not key=value", kv)
		}
		var err error
		switch k {
		case "delay":
			f.delay, err = time.ParseDuration(v)
		case "jitter":
			f.jitter, err = time.ParseDuration(v)
		case "rto":
			f.rto, err = time.ParseDuration(v)
		case "holdfor":
			f.holdfor, err = time.ParseDuration(v)
		case "loss":
			f.loss, err = strconv.ParseFloat(v, 64)
		case "hold":
			f.hold, err = strconv.ParseFloat(v, 64)
		default:
			return f, fmt.Errorf("unknown fault %q", k)
		}
		if err != nil {
			return f, fmt.Errorf("%s: %w", k, err)
		}
	}
	if f.delay < 0 || f.jitter < 0 || f.rto < 0 || f.holdfor < 0 ||
		f.loss < 0 || f.loss > 1 || f.hold < 0 || f.hold > 1 {
		return f, fmt.Errorf("negative duration or probability outside [0, 1]")
	}
	return f, nil
}

// due is when a chunk read at now may be delivered, and whether it stalled or was held.
func (f faults) due(now time.Time, r *rand.Rand) (at time.Time, stalled, held bool) {
	d := f.delay
	if f.jitter > 0 {
		d += time.Duration(r.Int64N(int64(2*f.jitter)+1)) - f.jitter
	}
	if f.loss > 0 && r.Float64() < f.loss {
		d += f.rto
		stalled = true
	}
	if f.hold > 0 && r.Float64() < f.hold {
		d += f.holdfor
		held = true
	}
	return now.Add(max(d, 0)), stalled, held
}

// proxy holds the current faults and the counters.
type proxy struct {
	queue   int
	dialer  net.Dialer
	current atomic.Pointer[faults]
	conns, open,
	chunks, bytes, stalls, holds atomic.Int64
}

func newProxy(queue int) *proxy {
	p := &proxy{queue: queue, dialer: net.Dialer{Timeout: 5 * time.Second}}
	p.current.Store(&faults{})
	return p
}

// watchFaults rereads the faults file every 500 ms until ctx ends.
func (p *proxy) watchFaults(ctx context.Context, path string) {
	last := ""
	for {
		text := ""
		if path != "" {
			if b, err := os.ReadFile(path); err == nil {
				text = strings.TrimSpace(string(b))
			}
		}
		if text != last {
			if f, err := parseFaults(text); err != nil {
				fmt.Fprintf(os.Stderr, "faultproxy: %s: %v (faults unchanged)\n", path, err)
			} else {
				p.current.Store(&f)
				fmt.Fprintf(os.Stderr, "faultproxy: faults now %v\n", f)
			}
			last = text
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (p *proxy) printStats(w io.Writer) {
	fmt.Fprintf(w, "faultproxy: stats conns=%d open=%d chunks=%d bytes=%d stalls=%d holds=%d faults=[%v]\n",
		p.conns.Load(), p.open.Load(), p.chunks.Load(), p.bytes.Load(), p.stalls.Load(), p.holds.Load(),
		*p.current.Load())
}

// serve listens on listen and forwards each accepted connection to target until ctx ends.
func (p *proxy) serve(ctx context.Context, listen, target string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			go p.forward(c, target)
		}
	}()
	return nil
}

// forward dials target for an accepted connection and pumps both directions; either side's
// end closes both.
func (p *proxy) forward(in net.Conn, target string) {
	out, err := p.dialer.Dial("tcp", target)
	if err != nil {
		in.Close()
		return
	}
	p.conns.Add(1)
	p.open.Add(1)
	defer p.open.Add(-1)
	var once sync.Once
	closeBoth := func() { once.Do(func() { in.Close(); out.Close() }) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(in, out, closeBoth) }()
	go func() { defer wg.Done(); p.pump(out, in, closeBoth) }()
	wg.Wait()
}

type chunk struct {
	at   time.Time
	data []byte
}

// pump reads chunks from src and writes each to dst at its due time, in order; a bounded
// queue between the two stops reading while it is full.
func (p *proxy) pump(src, dst net.Conn, closeBoth func()) {
	q := make(chan chunk, p.queue)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.data); err != nil {
				closeBoth()
				for range q { // drain so the reader is not stuck on a full queue
				}
				return
			}
		}
	}()
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var last time.Time
	for {
		buf := make([]byte, 16<<10)
		n, err := src.Read(buf)
		if n > 0 {
			at, stalled, held := p.current.Load().due(time.Now(), r)
			if at.Before(last) {
				at = last // in order within the connection
			}
			last = at
			p.chunks.Add(1)
			p.bytes.Add(int64(n))
			if stalled {
				p.stalls.Add(1)
			}
			if held {
				p.holds.Add(1)
			}
			q <- chunk{at: at, data: buf[:n]}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	closeBoth()
}
